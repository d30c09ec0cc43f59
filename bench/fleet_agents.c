/*
 * fleet_agents: simulated agents for the coordinator's fleet bench. Each
 * agent is a real CURVE ZeroMQ client with its own key (allow-listed by the
 * bench like any agent's), says hello with its role, reports once per
 * interval and answers every migration command at once with a successful
 * result of the payload the coordinator expects, so that a plan's
 * migrations go from `migrate start` (its preflight included) through
 * roles, schema, publish, copy, catchup and postdata to streaming without
 * any PostgreSQL behind them. Nothing is copied, nothing is applied: what
 * is measured is the coordinator's own cost of driving the migrations.
 *
 *   fleet_agents ENDPOINT SERVER_PUB_FILE KEY_DIR SECONDS NAME:ROLE...
 *       each NAME connects with KEY_DIR/NAME.key as role ROLE (source or
 *       target); prints one line of counters per agent at the end
 *
 * What the reports carry, as a real agent's would: the source lists a
 * logical slot and a publication godwit_<migration> for every publication
 * it was asked to create (the slot's confirmed position a few kB behind
 * the current WAL position, which advances at 256 kB/s: catchup ends on
 * it), the target a subscription for every copy it was asked to run, and
 * both the databases the commands named. Commands that are not part of
 * the way to streaming (verify, cutover, proxy) are answered FAILED.
 *
 * One thread, zmq_poll over the few sockets; it never blocks on a send.
 * SIGTERM or SIGINT ends it early, the counters printed all the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "keys.h"
#include "wire.h"
#include "xalloc.h"

#define S_MAX_AGENTS 16
#define S_INTERVAL_MS 1000
#define S_LSN_START 0x30000000ull
#define S_WAL_RATE 262144.0 /* bytes per second the simulated source writes */

/* The tables every simulated database has (pgbench's). */
static const char *const s_table_names[] = { "pgbench_accounts", "pgbench_branches",
                                        "pgbench_history", "pgbench_tellers" };
#define S_NTABLES (sizeof s_table_names / sizeof s_table_names[0])

/* A growing set of names, each kept once. */
typedef struct {
    char **v;
    size_t n, cap;
} names_t;

typedef struct {
    char name[64];
    bool target;
    void *sock;
    uint64_t next_report_ms;
    uint64_t seq;
    names_t dbs;  /* databases the commands named */
    names_t objs; /* source: publications (and their slots); target: subscriptions */
    uint64_t reports, commands, failed, send_failures;
    uint64_t by_action[32];
} sim_agent_t;

static uint64_t s_start_ms;
static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig) { s_stop = sig; }

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t s_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The simulated source's WAL position now. */
static uint64_t s_lsn(void)
{
    return S_LSN_START + (uint64_t)((double)(s_now_ms() - s_start_ms) * S_WAL_RATE / 1000.0);
}

static void s_names_add(names_t *s, const char *name)
{
    if (!name || !name[0])
        return;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = xstrdup(name);
}

static void s_names_free(names_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (names_t){ 0 };
}

static void s_send(sim_agent_t *a, Godwit__Envelope *env)
{
    size_t len;
    uint8_t *buf = wire_encode(env, &len);
    if (zmq_send(a->sock, buf, len, ZMQ_DONTWAIT) != (int)len)
        a->send_failures++;
    free(buf);
}

static void s_hello(sim_agent_t *a)
{
    Godwit__Hello h = GODWIT__HELLO__INIT;
    h.agent_version = (char *)"fleet_agents";
    h.protocol_version = WIRE_VERSION;
    h.role = a->target ? GODWIT__ROLE__ROLE_TARGET : GODWIT__ROLE__ROLE_SOURCE;
    h.hostname = a->name;
    h.claimed_name = a->name;
    h.started_at_ms = s_unix_ms();
    h.report_interval_ms = S_INTERVAL_MS;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    s_send(a, &env);
}

/* One report, as the real agent's: disk, server, databases, and our
 * objects (slots and publications on a source, subscriptions on a target). */
static void s_report(sim_agent_t *a)
{
    uint64_t lsn = s_lsn(), now = s_unix_ms();
    Godwit__Disk disk = GODWIT__DISK__INIT;
    disk.path = (char *)"/var/lib/postgresql/15/main";
    disk.ok = true;
    disk.size_bytes = 2000000000000ull;
    disk.free_bytes = 1500000000000ull;
    disk.free_inodes = 15000000;
    disk.device = (char *)"vda";
    disk.has_io = true;
    disk.write_bytes_per_sec = 1.5e6;
    disk.write_iops = 120;
    disk.util_percent = 3.5;

    size_t nd = a->dbs.n, no = a->objs.n;
    Godwit__Database *db = xcalloc(nd + 1, sizeof *db);
    Godwit__Database **dbp = xcalloc(nd + 1, sizeof *dbp);
    for (size_t i = 0; i < nd; i++) {
        db[i] = (Godwit__Database)GODWIT__DATABASE__INIT;
        db[i].name = a->dbs.v[i];
        db[i].size_bytes = 812345678;
        dbp[i] = &db[i];
    }
    Godwit__Slot *sl = xcalloc(no + 1, sizeof *sl);
    Godwit__Slot **slp = xcalloc(no + 1, sizeof *slp);
    Godwit__Publication *pu = xcalloc(no + 1, sizeof *pu);
    Godwit__Publication **pup = xcalloc(no + 1, sizeof *pup);
    Godwit__Subscription *su = xcalloc(no + 1, sizeof *su);
    Godwit__Subscription **sup = xcalloc(no + 1, sizeof *sup);
    for (size_t i = 0; i < no; i++) {
        if (!a->target) {
            sl[i] = (Godwit__Slot)GODWIT__SLOT__INIT;
            sl[i].name = a->objs.v[i];
            sl[i].type = (char *)"logical";
            sl[i].plugin = (char *)"pgoutput";
            sl[i].database = (char *)"app";
            sl[i].active = true;
            sl[i].retained_bytes = 65536;
            sl[i].restart_lsn = lsn - 65536;
            sl[i].confirmed_flush_lsn = lsn - 4096;
            sl[i].wal_status = (char *)"reserved";
            sl[i].has_replay_lag = true;
            slp[i] = &sl[i];
            pu[i] = (Godwit__Publication)GODWIT__PUBLICATION__INIT;
            pu[i].name = a->objs.v[i];
            pu[i].database = (char *)"app";
            pu[i].table_count = S_NTABLES;
            pup[i] = &pu[i];
        } else {
            su[i] = (Godwit__Subscription)GODWIT__SUBSCRIPTION__INIT;
            su[i].name = a->objs.v[i];
            su[i].database = (char *)"app";
            su[i].enabled = true;
            su[i].received_lsn = lsn - 4096;
            su[i].latest_end_lsn = lsn - 4096;
            su[i].has_last_msg = true;
            su[i].seconds_since_last_msg = 0.1;
            su[i].has_error_counts = true;
            su[i].oid = (uint32_t)(16384 + i);
            sup[i] = &su[i];
        }
    }
    Godwit__Postgres pg = GODWIT__POSTGRES__INIT;
    pg.reachable = true;
    pg.collected_at_ms = now;
    pg.server_version_num = 150020;
    pg.server_version = (char *)"15.20";
    pg.wal_level = (char *)"logical";
    pg.current_lsn = lsn;
    pg.has_wal_rate = true;
    pg.wal_bytes_per_sec = S_WAL_RATE;
    pg.max_slot_wal_keep_size_mb = -1;
    pg.n_databases = nd;
    pg.databases = dbp;
    if (!a->target) {
        pg.n_slots = no;
        pg.slots = slp;
        pg.n_publications = no;
        pg.publications = pup;
    } else {
        pg.n_subscriptions = no;
        pg.subscriptions = sup;
    }
    Godwit__Report r = GODWIT__REPORT__INIT;
    r.seq = ++a->seq;
    r.collected_at_ms = now;
    r.interval_ms = S_INTERVAL_MS;
    r.disk = &disk;
    r.postgres = &pg;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = &r;
    s_send(a, &env);
    a->reports++;
    free(db);
    free(dbp);
    free(sl);
    free(slp);
    free(pu);
    free(pup);
    free(su);
    free(sup);
}

/* The tables of a database, every one ready (for sync and copy results). */
typedef struct {
    Godwit__TableRef ref[S_NTABLES];
    Godwit__TableSync ts[S_NTABLES];
    Godwit__TableSync *tsp[S_NTABLES];
    Godwit__TableRef *refp[S_NTABLES];
    Godwit__SyncStatusResult ss;
} sim_tables_t;

static void s_tables(sim_tables_t *t, bool exists, const char *state)
{
    t->ss = (Godwit__SyncStatusResult)GODWIT__SYNC_STATUS_RESULT__INIT;
    t->ss.exists = exists;
    t->ss.enabled = exists;
    if (!exists)
        return;
    for (size_t i = 0; i < S_NTABLES; i++) {
        t->ref[i] = (Godwit__TableRef)GODWIT__TABLE_REF__INIT;
        t->ref[i].schema = (char *)"public";
        t->ref[i].name = (char *)s_table_names[i];
        t->refp[i] = &t->ref[i];
        t->ts[i] = (Godwit__TableSync)GODWIT__TABLE_SYNC__INIT;
        t->ts[i].table = &t->ref[i];
        t->ts[i].state = (char *)state;
        t->ts[i].bytes_done = 8192 * 100;
        t->ts[i].bytes_total = 8192 * 100;
        t->ts[i].rows_done = 1000;
        t->tsp[i] = &t->ts[i];
    }
    t->ss.n_tables = S_NTABLES;
    t->ss.tables = t->tsp;
    t->ss.all_ready = true;
}

/* Answers one command at once: OK with the payload its step expects, or
 * FAILED for an action the simulation does not play. */
static void s_answer(sim_agent_t *a, const Godwit__Command *c)
{
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = c->id;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.epoch = c->epoch;
    res.highest_epoch = c->epoch;
    a->commands++;
    if ((unsigned)c->action_case < 32)
        a->by_action[c->action_case]++;

    Godwit__PingResult ping = GODWIT__PING_RESULT__INIT;
    Godwit__PreflightResult pre = GODWIT__PREFLIGHT_RESULT__INIT;
    Godwit__SourceFacts facts = GODWIT__SOURCE_FACTS__INIT;
    Godwit__ApplyRolesResult roles = GODWIT__APPLY_ROLES_RESULT__INIT;
    Godwit__ApplySchemaResult schema = GODWIT__APPLY_SCHEMA_RESULT__INIT;
    Godwit__BulkCopyResult copy = GODWIT__BULK_COPY_RESULT__INIT;
    sim_tables_t tables;
    char point[32];

    switch (c->action_case) {
    case GODWIT__COMMAND__ACTION_PING:
        ping.nonce = c->ping->nonce;
        res.payload_case = GODWIT__RESULT__PAYLOAD_PING;
        res.ping = &ping;
        break;
    case GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE:
        s_names_add(&a->dbs, c->preflight_source->database);
        s_tables(&tables, true, "ready");
        facts.server_version_num = 150020;
        facts.server_version = (char *)"15.20";
        facts.database_size = 812345678;
        if (c->preflight_source->n_tables) {
            facts.n_tables = c->preflight_source->n_tables;
            facts.tables = c->preflight_source->tables;
        } else {
            facts.n_tables = S_NTABLES;
            facts.tables = tables.refp;
        }
        facts.tcp_wmem_max = 6291456;
        facts.tcp_congestion = (char *)"cubic";
        pre.facts = &facts;
        res.payload_case = GODWIT__RESULT__PAYLOAD_PREFLIGHT;
        res.preflight = &pre;
        break;
    case GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET:
        s_names_add(&a->dbs, c->preflight_target->database);
        res.payload_case = GODWIT__RESULT__PAYLOAD_PREFLIGHT;
        res.preflight = &pre;
        break;
    case GODWIT__COMMAND__ACTION_APPLY_ROLES:
        roles.database_changes = 1;
        res.payload_case = GODWIT__RESULT__PAYLOAD_APPLY_ROLES;
        res.apply_roles = &roles;
        break;
    case GODWIT__COMMAND__ACTION_APPLY_SCHEMA:
        schema.objects = 12;
        res.payload_case = GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA;
        res.apply_schema = &schema;
        break;
    case GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION:
        /* Our slot comes with the copy on the target; the report shows it
         * from here on (the bench does not care about the order). */
        s_names_add(&a->objs, c->ensure_publication->name);
        break;
    case GODWIT__COMMAND__ACTION_BULK_COPY:
        s_names_add(&a->objs, c->bulk_copy->name);
        s_tables(&tables, true, "copied");
        snprintf(point, sizeof point, "%X/%X", (unsigned)(s_lsn() >> 32), (unsigned)s_lsn());
        copy.copied = &tables.ss;
        copy.consistent_point = point;
        res.payload_case = GODWIT__RESULT__PAYLOAD_BULK_COPY;
        res.bulk_copy = &copy;
        break;
    case GODWIT__COMMAND__ACTION_BULK_COPY_STATUS:
        /* Each copy ends as soon as it starts: none is ever running. */
        s_tables(&tables, false, "");
        res.payload_case = GODWIT__RESULT__PAYLOAD_SYNC_STATUS;
        res.sync_status = &tables.ss;
        break;
    case GODWIT__COMMAND__ACTION_SYNC_STATUS:
        s_tables(&tables, true, "ready");
        res.payload_case = GODWIT__RESULT__PAYLOAD_SYNC_STATUS;
        res.sync_status = &tables.ss;
        break;
    case GODWIT__COMMAND__ACTION_DROP_OBJECTS:
    case GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED:
        break;
    default:
        res.status = GODWIT__STATUS__STATUS_FAILED;
        res.message = (char *)"not simulated by fleet_agents";
        a->failed++;
        break;
    }
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 2;
    env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
    env.result = &res;
    s_send(a, &env);
}

/* Receives and answers everything waiting on a's socket. */
static void s_drain(sim_agent_t *a)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        const char *reason;
        Godwit__Envelope *in = wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &reason);
        zmq_msg_close(&m);
        if (!in)
            continue;
        if (in->body_case == GODWIT__ENVELOPE__BODY_COMMAND)
            s_answer(a, in->command);
        wire_free(&in);
    }
}

static const char *s_action_name(int action)
{
    switch (action) {
    case GODWIT__COMMAND__ACTION_PING: return "ping";
    case GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE: return "preflight_source";
    case GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET: return "preflight_target";
    case GODWIT__COMMAND__ACTION_APPLY_ROLES: return "apply_roles";
    case GODWIT__COMMAND__ACTION_APPLY_SCHEMA: return "apply_schema";
    case GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION: return "ensure_publication";
    case GODWIT__COMMAND__ACTION_BULK_COPY: return "bulk_copy";
    case GODWIT__COMMAND__ACTION_BULK_COPY_STATUS: return "bulk_copy_status";
    case GODWIT__COMMAND__ACTION_SYNC_STATUS: return "sync_status";
    case GODWIT__COMMAND__ACTION_DROP_OBJECTS: return "drop_objects";
    case GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED: return "set_subscription_enabled";
    default: return NULL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: fleet_agents ENDPOINT SERVER_PUB_FILE KEY_DIR SECONDS "
                        "NAME:ROLE...\n");
        return 2;
    }
    const char *endpoint = argv[1], *keydir = argv[3];
    int seconds = atoi(argv[4]);
    char err[256], server_pub[KEYS_Z85_LEN + 1];
    if (keys_load_public(argv[2], server_pub, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int n = argc - 5;
    if (n > S_MAX_AGENTS) {
        fprintf(stderr, "at most %d agents\n", S_MAX_AGENTS);
        return 2;
    }
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    s_start_ms = s_now_ms();
    void *ctx = zmq_ctx_new();
    sim_agent_t *agents = xcalloc((size_t)n, sizeof *agents);
    zmq_pollitem_t items[S_MAX_AGENTS];
    for (int i = 0; i < n; i++) {
        sim_agent_t *a = &agents[i];
        const char *spec = argv[5 + i], *colon = strchr(spec, ':');
        if (!colon || (strcmp(colon + 1, "source") != 0 && strcmp(colon + 1, "target") != 0)) {
            fprintf(stderr, "%s: want NAME:source or NAME:target\n", spec);
            return 2;
        }
        snprintf(a->name, sizeof a->name, "%.*s", (int)(colon - spec), spec);
        a->target = strcmp(colon + 1, "target") == 0;
        char *path = xasprintf("%s/%s.key", keydir, a->name);
        keys_pair_t kp;
        int rc = keys_load_secret(path, &kp, err, sizeof err);
        free(path);
        if (rc != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        void *s = a->sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, hwm = 1000, ivl = 200;
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, KEYS_Z85_LEN);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp.public_z85, KEYS_Z85_LEN);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp.secret_z85, KEYS_Z85_LEN);
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        if (zmq_connect(s, endpoint) != 0) {
            fprintf(stderr, "connect: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        s_hello(a);
        a->next_report_ms = s_start_ms + (uint64_t)i * S_INTERVAL_MS / (uint64_t)n;
        items[i] = (zmq_pollitem_t){ .socket = s, .events = ZMQ_POLLIN };
    }
    uint64_t end = s_start_ms + (uint64_t)seconds * 1000;
    for (uint64_t now = s_now_ms(); now < end && !s_stop; now = s_now_ms()) {
        uint64_t wake = end;
        for (int i = 0; i < n; i++) {
            if (agents[i].next_report_ms <= now) {
                s_report(&agents[i]);
                agents[i].next_report_ms += S_INTERVAL_MS;
            }
            if (agents[i].next_report_ms < wake)
                wake = agents[i].next_report_ms;
        }
        long timeout = wake > now ? (long)(wake - now) : 0;
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR)
            break;
        for (int i = 0; i < n; i++)
            s_drain(&agents[i]);
    }
    for (int i = 0; i < n; i++) {
        sim_agent_t *a = &agents[i];
        printf("agent=%s role=%s reports=%" PRIu64 " commands=%" PRIu64 " failed=%" PRIu64
               " send_failures=%" PRIu64 " objects=%zu databases=%zu",
               a->name, a->target ? "target" : "source", a->reports, a->commands, a->failed,
               a->send_failures, a->objs.n, a->dbs.n);
        for (int k = 0; k < 32; k++) {
            const char *name = s_action_name(k);
            if (a->by_action[k] && name)
                printf(" %s=%" PRIu64, name, a->by_action[k]);
        }
        printf("\n");
        zmq_close(a->sock);
        s_names_free(&a->dbs);
        s_names_free(&a->objs);
    }
    fflush(stdout);
    zmq_ctx_term(ctx);
    free(agents);
    return 0;
}
