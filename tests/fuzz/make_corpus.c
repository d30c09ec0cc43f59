/*
 * make_corpus: writes the seed corpus for fuzz_wire, one valid frame per body
 * kind (hello, report, command, result, progress, event), each built with
 * wire_encode so the seeds follow the real encoder.
 *
 * Usage: make_corpus DIR (DIR must exist). Writes DIR/<kind>.frame and
 * nothing else; exits non-zero if a frame cannot be encoded or written.
 * Seeds fill most fields so the fuzzer starts from every field number and
 * wire type the protocol uses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "wire.h"

/* Encodes env and writes it to DIR/NAME.frame; false (and a message) on failure. */
static bool s_write_seed(const char *dir, const char *name, Godwit__Envelope *env)
{
    size_t len = 0;
    uint8_t *buf = wire_encode(env, &len);
    if (!buf) {
        fprintf(stderr, "make_corpus: %s: wire_encode refused\n", name);
        return false;
    }
    const char *reason = NULL;
    Godwit__Envelope *check = wire_decode(buf, len, &reason);
    if (!check) {
        fprintf(stderr, "make_corpus: %s: own frame refused: %s\n", name, reason);
        free(buf);
        return false;
    }
    wire_free(&check);

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.frame", dir, name);
    FILE *fp = fopen(path, "wb");
    bool ok = fp && fwrite(buf, 1, len, fp) == len;
    if (fp && fclose(fp) != 0)
        ok = false;
    if (!ok)
        perror(path);
    free(buf);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    bool ok = true;

    char *caps[] = { "metrics.disk", "metrics.postgres", "ping" };
    Godwit__Hello hello = GODWIT__HELLO__INIT;
    hello.agent_version = GODWIT_VERSION;
    hello.protocol_version = WIRE_VERSION;
    hello.role = GODWIT__ROLE__ROLE_SOURCE;
    hello.n_capabilities = 3;
    hello.capabilities = caps;
    hello.hostname = "blue-db-1";
    hello.highest_epoch = 7;
    hello.started_at_ms = UINT64_C(1700000000000);
    hello.report_interval_ms = 5000;
    hello.claimed_name = "blue";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.sent_at_ms = UINT64_C(1700000000001);
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    ok &= s_write_seed(dir, "hello", &env);

    Godwit__Disk disk = GODWIT__DISK__INIT;
    disk.path = "/var/lib/postgresql/15/main";
    disk.ok = true;
    disk.size_bytes = UINT64_C(107374182400);
    disk.free_bytes = UINT64_C(53687091200);
    disk.free_inodes = 6553600;
    disk.device = "nvme0n1";
    disk.has_io = true;
    disk.read_bytes_per_sec = 1048576.5;
    disk.write_bytes_per_sec = 2097152.25;
    disk.read_iops = 120;
    disk.write_iops = 340;
    disk.util_percent = 12.5;
    Godwit__Database db = GODWIT__DATABASE__INIT;
    db.name = "app";
    db.size_bytes = UINT64_C(5368709120);
    Godwit__Database *dbs[] = { &db };
    Godwit__Slot slot = GODWIT__SLOT__INIT;
    slot.name = "godwit_app";
    slot.type = "logical";
    slot.plugin = "pgoutput";
    slot.database = "app";
    slot.active = true;
    slot.retained_bytes = 123456;
    slot.restart_lsn = UINT64_C(0x16B374D848);
    slot.confirmed_flush_lsn = UINT64_C(0x16B374D900);
    slot.wal_status = "reserved";
    slot.has_spill = true;
    slot.spill_bytes = 4096;
    Godwit__Slot *slots[] = { &slot };
    Godwit__Subscription sub = GODWIT__SUBSCRIPTION__INIT;
    sub.name = "godwit_sub";
    sub.database = "app";
    sub.enabled = true;
    sub.received_lsn = UINT64_C(0x16B374D800);
    sub.latest_end_lsn = UINT64_C(0x16B374D700);
    sub.has_last_msg = true;
    sub.seconds_since_last_msg = 0.25;
    sub.has_error_counts = true;
    sub.apply_error_count = 1;
    sub.sync_error_count = 2;
    Godwit__Subscription *subs[] = { &sub };
    Godwit__Publication pub = GODWIT__PUBLICATION__INIT;
    pub.name = "godwit_pub";
    pub.database = "app";
    pub.all_tables = true;
    pub.table_count = 12;
    Godwit__Publication *pubs[] = { &pub };
    Godwit__Postgres pg = GODWIT__POSTGRES__INIT;
    pg.reachable = true;
    pg.error = "";
    pg.collected_at_ms = UINT64_C(1700000000100);
    pg.server_version_num = 150020;
    pg.server_version = "15.2";
    pg.wal_level = "logical";
    pg.current_lsn = UINT64_C(0x16B374DA00);
    pg.has_wal_rate = true;
    pg.wal_bytes_per_sec = 65536.5;
    pg.max_slot_wal_keep_size_mb = -1;
    pg.n_databases = 1;
    pg.databases = dbs;
    pg.n_slots = 1;
    pg.slots = slots;
    pg.n_subscriptions = 1;
    pg.subscriptions = subs;
    pg.n_publications = 1;
    pg.publications = pubs;
    pg.in_recovery = true;
    Godwit__Report report = GODWIT__REPORT__INIT;
    report.seq = 3;
    report.collected_at_ms = UINT64_C(1700000000200);
    report.interval_ms = 5000;
    report.disk = &disk;
    report.postgres = &pg;
    env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    env.msg_id = 2;
    env.sent_at_ms = UINT64_C(1700000000201);
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = &report;
    ok &= s_write_seed(dir, "report", &env);

    Godwit__Ping ping = GODWIT__PING__INIT;
    ping.nonce = UINT64_C(0xDEADBEEFCAFEF00D);
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.id = "7.1";
    cmd.epoch = 7;
    cmd.deadline_unix_ms = UINT64_C(1700000005000);
    cmd.action_case = GODWIT__COMMAND__ACTION_PING;
    cmd.ping = &ping;
    env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    env.msg_id = 3;
    env.sent_at_ms = UINT64_C(1700000000300);
    env.body_case = GODWIT__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    ok &= s_write_seed(dir, "command", &env);

    Godwit__PingResult pr = GODWIT__PING_RESULT__INIT;
    pr.nonce = ping.nonce;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = "7.1";
    res.status = GODWIT__STATUS__STATUS_OK;
    res.message = "pong";
    res.epoch = 7;
    res.highest_epoch = 7;
    res.replayed = true;
    res.payload_case = GODWIT__RESULT__PAYLOAD_PING;
    res.ping = &pr;
    env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    env.msg_id = 4;
    env.sent_at_ms = UINT64_C(1700000000400);
    env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
    env.result = &res;
    ok &= s_write_seed(dir, "result", &env);

    Godwit__Progress prog = GODWIT__PROGRESS__INIT;
    prog.command_id = "7.2";
    prog.done = 1000;
    prog.total = 5000;
    prog.unit = "rows";
    prog.message = "copying public.orders";
    env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    env.msg_id = 5;
    env.sent_at_ms = UINT64_C(1700000000500);
    env.body_case = GODWIT__ENVELOPE__BODY_PROGRESS;
    env.progress = &prog;
    ok &= s_write_seed(dir, "progress", &env);

    Godwit__Event ev = GODWIT__EVENT__INIT;
    ev.severity = GODWIT__SEVERITY__SEVERITY_ERROR;
    ev.code = "db.unreachable";
    ev.message = "connection refused";
    ev.object = "app";
    env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    env.msg_id = 6;
    env.sent_at_ms = UINT64_C(1700000000600);
    env.body_case = GODWIT__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    ok &= s_write_seed(dir, "event", &env);

    return ok ? 0 : 1;
}
