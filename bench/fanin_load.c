/*
 * fanin_load: the coordinator fan-in load generator. It plays N agents, each
 * with its own CURVE key pair allowed by the coordinator, each on its own
 * ZeroMQ connection: it says hello, sends a realistic report (disk and a
 * PostgreSQL section with a database, a slot and a subscription) once per
 * interval, spread evenly over the interval, and answers every ping command
 * at once, so the coordinator's own round-trip figures measure the path
 * coordinator -> agent -> coordinator.
 *
 *   fanin_load keys N DIR
 *       writes DIR/allowed/loadNNNNN.pub (the allow-list) and DIR/secrets
 *   fanin_load run ENDPOINT SERVER_PUB_FILE DIR N SECONDS [INTERVAL_MS]
 *       prints "reports_sent=.. pings_answered=.. connected=.." at the end
 *
 * One thread, epoll over every socket's ZMQ_FD (so the cost follows the
 * messages, not the number of sockets); it never blocks on a send.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fsutil.h"
#include "keys.h"
#include "wire.h"
#include "xalloc.h"

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int s_keys(int n, const char *dir)
{
    char *allowed = xasprintf("%s/allowed", dir);
    fsutil_mkdirs(allowed, 0755);
    char *secrets = xasprintf("%s/secrets", dir);
    FILE *f = fopen(secrets, "w");
    if (!f) {
        perror(secrets);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char pub[41], sec[41];
        zmq_curve_keypair(pub, sec);
        char *path = xasprintf("%s/load%05d.pub", allowed, i);
        FILE *p = fopen(path, "w");
        if (!p) {
            perror(path);
            return 1;
        }
        fprintf(p, "%s\nroles: source\n", pub); /* each says hello as a source */
        fclose(p);
        free(path);
        fprintf(f, "%s\n", sec);
    }
    fclose(f);
    chmod(secrets, 0600);
    free(allowed);
    free(secrets);
    return 0;
}

/* A report like a source agent's, packed once. Caller frees. */
static uint8_t *s_report_frame(size_t *len)
{
    Godwit__Disk disk = GODWIT__DISK__INIT;
    disk.path = (char *)"/var/lib/postgresql/15/main";
    disk.ok = true;
    disk.size_bytes = 270000000000ull;
    disk.free_bytes = 85000000000ull;
    disk.free_inodes = 15000000;
    disk.device = (char *)"vda";
    disk.has_io = true;
    disk.write_bytes_per_sec = 1.5e6;
    disk.write_iops = 120;
    disk.util_percent = 3.5;
    Godwit__Database db = GODWIT__DATABASE__INIT;
    db.name = (char *)"app";
    db.size_bytes = 812345678;
    Godwit__Database *dbs[] = { &db };
    Godwit__Slot slot = GODWIT__SLOT__INIT;
    slot.name = (char *)"godwit_app";
    slot.type = (char *)"logical";
    slot.plugin = (char *)"pgoutput";
    slot.database = (char *)"app";
    slot.active = true;
    slot.retained_bytes = 123456;
    slot.restart_lsn = 0x3000000;
    slot.confirmed_flush_lsn = 0x3001000;
    slot.wal_status = (char *)"reserved";
    Godwit__Slot *slots[] = { &slot };
    Godwit__Postgres pg = GODWIT__POSTGRES__INIT;
    pg.reachable = true;
    pg.collected_at_ms = 1;
    pg.server_version_num = 150020;
    pg.server_version = (char *)"15.20";
    pg.wal_level = (char *)"logical";
    pg.current_lsn = 0x3002000;
    pg.has_wal_rate = true;
    pg.wal_bytes_per_sec = 250000;
    pg.max_slot_wal_keep_size_mb = -1;
    pg.n_databases = 1;
    pg.databases = dbs;
    pg.n_slots = 1;
    pg.slots = slots;
    Godwit__Report r = GODWIT__REPORT__INIT;
    r.seq = 1;
    r.interval_ms = 1000;
    r.disk = &disk;
    r.postgres = &pg;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = &r;
    return wire_encode(&env, len);
}

static uint8_t *s_hello_frame(size_t *len)
{
    Godwit__Hello h = GODWIT__HELLO__INIT;
    h.agent_version = (char *)"fanin_load";
    h.protocol_version = WIRE_VERSION;
    h.role = GODWIT__ROLE__ROLE_SOURCE;
    h.hostname = (char *)"load";
    h.report_interval_ms = 1000;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    return wire_encode(&env, len);
}

static void s_answer(void *sock, const zmq_msg_t *m, uint64_t *answered)
{
    const char *reason;
    Godwit__Envelope *in = wire_decode(zmq_msg_data((zmq_msg_t *)m), zmq_msg_size((zmq_msg_t *)m), &reason);
    if (!in)
        return;
    if (in->body_case == GODWIT__ENVELOPE__BODY_COMMAND &&
        in->command->action_case == GODWIT__COMMAND__ACTION_PING) {
        Godwit__PingResult pr = GODWIT__PING_RESULT__INIT;
        pr.nonce = in->command->ping->nonce;
        Godwit__Result res = GODWIT__RESULT__INIT;
        res.command_id = in->command->id;
        res.status = GODWIT__STATUS__STATUS_OK;
        res.epoch = in->command->epoch;
        res.highest_epoch = in->command->epoch;
        res.payload_case = GODWIT__RESULT__PAYLOAD_PING;
        res.ping = &pr;
        Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
        env.msg_id = 2;
        env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
        env.result = &res;
        size_t len;
        uint8_t *buf = wire_encode(&env, &len);
        if (zmq_send(sock, buf, len, ZMQ_DONTWAIT) == (int)len)
            (*answered)++;
        free(buf);
    }
    wire_free(&in);
}

/* Receives and answers everything waiting on sock (ZMQ_EVENTS is the truth). */
static void s_drain(void *sock, uint64_t *answered)
{
    for (;;) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) != 0 || !(events & ZMQ_POLLIN))
            return;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        s_answer(sock, &m, answered);
        zmq_msg_close(&m);
    }
}

static int s_run(const char *endpoint, const char *server_pub_file, const char *dir, int n,
                 int seconds, int interval_ms)
{
    char err[256], server_pub[41];
    if (keys_load_public(server_pub_file, server_pub, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char *secrets_path = xasprintf("%s/secrets", dir);
    FILE *f = fopen(secrets_path, "r");
    free(secrets_path);
    if (!f) {
        perror("secrets");
        return 1;
    }
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    void **socks = xcalloc((size_t)n, sizeof *socks);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t hello_len, report_len;
    uint8_t *hello = s_hello_frame(&hello_len);
    uint8_t *report = s_report_frame(&report_len);
    for (int i = 0; i < n; i++) {
        char sec[64], pub[41];
        if (!fgets(sec, sizeof sec, f)) {
            fprintf(stderr, "secrets: only %d keys for %d agents\n", i, n);
            return 1;
        }
        sec[40] = '\0';
        zmq_curve_public(pub, sec);
        void *s = socks[i] = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, hwm = 10, ivl = 200;
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        if (zmq_connect(s, endpoint) != 0) {
            fprintf(stderr, "connect: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        zmq_send(s, hello, hello_len, ZMQ_DONTWAIT);
        int fd;
        size_t fdlen = sizeof fd;
        zmq_getsockopt(s, ZMQ_FD, &fd, &fdlen);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    fclose(f);
    uint64_t start = s_now_ms(), end = start + (uint64_t)seconds * 1000;
    uint64_t sent = 0, send_fail = 0, answered = 0;
    int next = 0;          /* next socket due */
    uint64_t round = 0;    /* which interval we are in */
    while (s_now_ms() < end) {
        uint64_t now = s_now_ms();
        /* Socket i is due at start + round*interval + i*interval/n. */
        for (;;) {
            uint64_t due = start + round * (uint64_t)interval_ms + (uint64_t)next * (uint64_t)interval_ms / (uint64_t)n;
            if (due > now)
                break;
            if (zmq_send(socks[next], report, report_len, ZMQ_DONTWAIT) == (int)report_len)
                sent++;
            else
                send_fail++;
            /* A send can swallow the edge of an incoming message. */
            s_drain(socks[next], &answered);
            if (++next == n) {
                next = 0;
                round++;
            }
        }
        uint64_t due = start + round * (uint64_t)interval_ms + (uint64_t)next * (uint64_t)interval_ms / (uint64_t)n;
        int timeout = due > now ? (int)(due - now) : 0;
        if (timeout > 5)
            timeout = 5;
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, timeout);
        for (int j = 0; j < k; j++)
            s_drain(socks[evs[j].data.u32], &answered);
    }
    printf("reports_sent=%" PRIu64 " report_send_failures=%" PRIu64 " pings_answered=%" PRIu64 "\n",
           sent, send_fail, answered);
    for (int i = 0; i < n; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(ctx);
    free(socks);
    close(ep);
    free(hello);
    free(report);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "keys") == 0)
        return s_keys(atoi(argv[2]), argv[3]);
    if ((argc == 7 || argc == 8) && strcmp(argv[1], "run") == 0)
        return s_run(argv[2], argv[3], argv[4], atoi(argv[5]), atoi(argv[6]),
                     argc == 8 ? atoi(argv[7]) : 1000);
    fprintf(stderr, "usage: fanin_load keys N DIR\n"
                    "       fanin_load run ENDPOINT SERVER_PUB_FILE DIR N SECONDS [INTERVAL_MS]\n");
    return 2;
}
