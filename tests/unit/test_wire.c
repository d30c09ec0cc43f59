/*
 * test_wire: common/wire.c, the framing and checking of every Envelope.
 *
 * Covers a round trip of every body kind (hello, report with disk and
 * postgres figures, command, result, progress, event) compared field by
 * field; the refusal, with the right reason, of every malformed frame (short
 * input, bad magic, another version, flags, a length that disagrees with the
 * input, an oversized length, a body that is not protobuf, an envelope that
 * breaks the protocol's rules); that no truncation of a valid frame ever
 * decodes; and that wire_encode refuses a body over WIRE_MAX_BODY while
 * accepting one exactly at it.
 *
 * Pure functions: no files, no sockets. Every buffer handed to wire_decode is
 * its own exact-size allocation, so the sanitizer build catches any read past
 * the end. Leaks are also the sanitizer build's job: every test frees what it
 * decoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"
#include "xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

/* Encodes env, checks the header, returns the frame (caller frees). */
static uint8_t *s_encode(Godwit__Envelope *env, size_t *lenp)
{
    uint8_t *buf = wire_encode(env, lenp);
    assert_non_null(buf);
    assert_true(*lenp >= WIRE_HEADER_LEN);
    assert_int_equal(buf[0], 'G');
    assert_int_equal(buf[1], 'W');
    assert_int_equal(buf[2], WIRE_VERSION);
    assert_int_equal(buf[3], 0);
    size_t body = (size_t)buf[4] << 24 | (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
    assert_int_equal(body, *lenp - WIRE_HEADER_LEN);
    assert_int_equal(env->version, WIRE_VERSION);
    return buf;
}

/* Decodes a private exact-size copy of buf[0..len). */
static Godwit__Envelope *s_decode(const uint8_t *buf, size_t len, const char **reason)
{
    uint8_t *copy = xmalloc(len);
    if (len > 0)
        memcpy(copy, buf, len);
    *reason = NULL;
    Godwit__Envelope *env = wire_decode(copy, len, reason);
    free(copy);
    return env;
}

/* Encodes, decodes and checks the envelope fields; returns the decoded one. */
static Godwit__Envelope *s_round_trip(Godwit__Envelope *in)
{
    size_t len = 0;
    uint8_t *buf = s_encode(in, &len);
    const char *reason = NULL;
    Godwit__Envelope *out = s_decode(buf, len, &reason);
    free(buf);
    if (!out)
        fail_msg("round trip of a %s refused: %s", wire_body_name(in), reason);
    assert_int_equal(out->version, WIRE_VERSION);
    assert_int_equal(out->msg_id, in->msg_id);
    assert_int_equal(out->sent_at_ms, in->sent_at_ms);
    assert_int_equal(out->body_case, in->body_case);
    assert_string_equal(wire_body_name(out), wire_body_name(in));
    return out;
}

/* A frame around an arbitrary body (caller frees). */
static uint8_t *s_frame(const uint8_t *body, size_t body_len, size_t *lenp)
{
    uint8_t *buf = xmalloc(WIRE_HEADER_LEN + body_len);
    buf[0] = 'G';
    buf[1] = 'W';
    buf[2] = WIRE_VERSION;
    buf[3] = 0;
    buf[4] = (uint8_t)(body_len >> 24);
    buf[5] = (uint8_t)(body_len >> 16);
    buf[6] = (uint8_t)(body_len >> 8);
    buf[7] = (uint8_t)body_len;
    if (body_len > 0)
        memcpy(buf + WIRE_HEADER_LEN, body, body_len);
    *lenp = WIRE_HEADER_LEN + body_len;
    return buf;
}

/* Asserts buf is refused with a reason containing want. */
static void s_refused(const uint8_t *buf, size_t len, const char *want)
{
    const char *reason = NULL;
    Godwit__Envelope *env = s_decode(buf, len, &reason);
    if (env) {
        wire_free(&env);
        fail_msg("accepted a frame that should fail with \"%s\"", want);
    }
    assert_non_null(reason);
    if (!strstr(reason, want))
        fail_msg("reason \"%s\", expected one containing \"%s\"", reason, want);
}

/* Encodes env with wire_encode and asserts the frame is refused with want. */
static void s_encoded_refused(Godwit__Envelope *env, const char *want)
{
    size_t len = 0;
    uint8_t *buf = s_encode(env, &len);
    s_refused(buf, len, want);
    free(buf);
}

/* A valid ping command envelope; ping and cmd are the caller's storage. */
static void s_command(Godwit__Envelope *env, Godwit__Command *cmd, Godwit__Ping *ping)
{
    *env = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
    *cmd = (Godwit__Command)GODWIT__COMMAND__INIT;
    *ping = (Godwit__Ping)GODWIT__PING__INIT;
    ping->nonce = UINT64_C(0xDEADBEEFCAFEF00D);
    cmd->id = "7.42";
    cmd->epoch = 7;
    cmd->deadline_unix_ms = UINT64_C(1700000000123);
    cmd->action_case = GODWIT__COMMAND__ACTION_PING;
    cmd->ping = ping;
    env->msg_id = 99;
    env->sent_at_ms = UINT64_C(1700000000000);
    env->body_case = GODWIT__ENVELOPE__BODY_COMMAND;
    env->command = cmd;
}

/* ---- round trips ------------------------------------------------------ */

static void test_round_trip_hello(void **state)
{
    char *caps[] = { "metrics.disk", "metrics.postgres", "ping" };
    Godwit__Hello hello = GODWIT__HELLO__INIT;
    hello.agent_version = "0.1.0";
    hello.protocol_version = WIRE_VERSION;
    hello.role = GODWIT__ROLE__ROLE_TARGET;
    hello.n_capabilities = 3;
    hello.capabilities = caps;
    hello.hostname = "green-db-1";
    hello.highest_epoch = UINT64_MAX;
    hello.started_at_ms = UINT64_C(1700000000001);
    hello.report_interval_ms = 5000;
    hello.claimed_name = "green";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.version = 77; /* wire_encode fills it */
    env.msg_id = 1;
    env.sent_at_ms = UINT64_C(1700000000002);
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &hello;

    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "hello");
    const Godwit__Hello *h = out->hello;
    assert_string_equal(h->agent_version, "0.1.0");
    assert_int_equal(h->protocol_version, WIRE_VERSION);
    assert_int_equal(h->role, GODWIT__ROLE__ROLE_TARGET);
    assert_int_equal(h->n_capabilities, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(h->capabilities[i], caps[i]);
    assert_string_equal(h->hostname, "green-db-1");
    assert_int_equal(h->highest_epoch, UINT64_MAX);
    assert_int_equal(h->started_at_ms, UINT64_C(1700000000001));
    assert_int_equal(h->report_interval_ms, 5000);
    assert_string_equal(h->claimed_name, "green");
    wire_free(&out);
    assert_null(out);
    wire_free(&out); /* NULL is fine */
}

static void test_round_trip_report(void **state)
{
    Godwit__Disk disk = GODWIT__DISK__INIT;
    disk.path = "/var/lib/postgresql/15/main";
    disk.ok = true;
    disk.size_bytes = UINT64_C(107374182400);
    disk.free_bytes = UINT64_C(53687091200);
    disk.free_inodes = 6553600;
    disk.device = "nvme0n1p2";
    disk.has_io = true;
    disk.read_bytes_per_sec = 1048576.5;
    disk.write_bytes_per_sec = 2097152.25;
    disk.read_iops = 120.0;
    disk.write_iops = 340.5;
    disk.util_percent = 12.75;

    Godwit__Database db1 = GODWIT__DATABASE__INIT, db2 = GODWIT__DATABASE__INIT;
    db1.name = "app";
    db1.size_bytes = UINT64_C(5368709120);
    db2.name = "postgres";
    db2.size_bytes = 8000000;
    Godwit__Database *dbs[] = { &db1, &db2 };

    Godwit__Slot slot1 = GODWIT__SLOT__INIT, slot2 = GODWIT__SLOT__INIT;
    slot1.name = "godwit_app";
    slot1.type = "logical";
    slot1.plugin = "pgoutput";
    slot1.database = "app";
    slot1.active = true;
    slot1.retained_bytes = 123456789;
    slot1.restart_lsn = UINT64_C(0x16B374D848);
    slot1.confirmed_flush_lsn = UINT64_C(0x16B374D900);
    slot1.wal_status = "reserved";
    slot1.has_spill = true;
    slot1.spill_bytes = 4096;
    slot2.name = "standby";
    slot2.type = "physical";
    slot2.wal_status = "lost";
    Godwit__Slot *slots[] = { &slot1, &slot2 };

    Godwit__Subscription sub = GODWIT__SUBSCRIPTION__INIT;
    sub.name = "godwit_sub";
    sub.database = "app";
    sub.enabled = true;
    sub.received_lsn = UINT64_C(0x16B374D800);
    sub.latest_end_lsn = UINT64_C(0x16B374D700);
    sub.has_last_msg = true;
    sub.seconds_since_last_msg = 0.5;
    sub.has_error_counts = true;
    sub.apply_error_count = 2;
    sub.sync_error_count = 1;
    Godwit__Subscription *subs[] = { &sub };

    Godwit__Publication pub = GODWIT__PUBLICATION__INIT;
    pub.name = "godwit_pub";
    pub.database = "app";
    pub.all_tables = true;
    pub.table_count = 42;
    Godwit__Publication *pubs[] = { &pub };

    Godwit__Postgres pg = GODWIT__POSTGRES__INIT;
    pg.reachable = true;
    pg.error = "";
    pg.collected_at_ms = UINT64_C(1700000000500);
    pg.server_version_num = 150020;
    pg.server_version = "15.2";
    pg.wal_level = "logical";
    pg.current_lsn = UINT64_C(0x16B374DA00);
    pg.has_wal_rate = true;
    pg.wal_bytes_per_sec = 65536.125;
    pg.max_slot_wal_keep_size_mb = -1;
    pg.n_databases = 2;
    pg.databases = dbs;
    pg.n_slots = 2;
    pg.slots = slots;
    pg.n_subscriptions = 1;
    pg.subscriptions = subs;
    pg.n_publications = 1;
    pg.publications = pubs;
    pg.in_recovery = false;

    Godwit__Report report = GODWIT__REPORT__INIT;
    report.seq = 17;
    report.collected_at_ms = UINT64_C(1700000000600);
    report.interval_ms = 5000;
    report.disk = &disk;
    report.postgres = &pg;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 2;
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = &report;

    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "report");
    const Godwit__Report *r = out->report;
    assert_int_equal(r->seq, 17);
    assert_int_equal(r->collected_at_ms, UINT64_C(1700000000600));
    assert_int_equal(r->interval_ms, 5000);

    const Godwit__Disk *d = r->disk;
    assert_non_null(d);
    assert_string_equal(d->path, disk.path);
    assert_true(d->ok);
    assert_string_equal(d->error, "");
    assert_int_equal(d->size_bytes, disk.size_bytes);
    assert_int_equal(d->free_bytes, disk.free_bytes);
    assert_int_equal(d->free_inodes, disk.free_inodes);
    assert_string_equal(d->device, "nvme0n1p2");
    assert_true(d->has_io);
    assert_true(d->read_bytes_per_sec == disk.read_bytes_per_sec);
    assert_true(d->write_bytes_per_sec == disk.write_bytes_per_sec);
    assert_true(d->read_iops == disk.read_iops);
    assert_true(d->write_iops == disk.write_iops);
    assert_true(d->util_percent == disk.util_percent);

    const Godwit__Postgres *p = r->postgres;
    assert_non_null(p);
    assert_true(p->reachable);
    assert_string_equal(p->error, "");
    assert_int_equal(p->collected_at_ms, pg.collected_at_ms);
    assert_int_equal(p->server_version_num, 150020);
    assert_string_equal(p->server_version, "15.2");
    assert_string_equal(p->wal_level, "logical");
    assert_int_equal(p->current_lsn, pg.current_lsn);
    assert_true(p->has_wal_rate);
    assert_true(p->wal_bytes_per_sec == pg.wal_bytes_per_sec);
    assert_true(p->max_slot_wal_keep_size_mb == -1);
    assert_false(p->in_recovery);

    assert_int_equal(p->n_databases, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(p->databases[i]->name, dbs[i]->name);
        assert_int_equal(p->databases[i]->size_bytes, dbs[i]->size_bytes);
    }

    assert_int_equal(p->n_slots, 2);
    for (size_t i = 0; i < 2; i++) {
        const Godwit__Slot *s = p->slots[i], *w = slots[i];
        assert_string_equal(s->name, w->name);
        assert_string_equal(s->type, w->type);
        assert_string_equal(s->plugin, w->plugin);
        assert_string_equal(s->database, w->database);
        assert_int_equal(s->active, w->active);
        assert_int_equal(s->retained_bytes, w->retained_bytes);
        assert_int_equal(s->restart_lsn, w->restart_lsn);
        assert_int_equal(s->confirmed_flush_lsn, w->confirmed_flush_lsn);
        assert_string_equal(s->wal_status, w->wal_status);
        assert_int_equal(s->has_spill, w->has_spill);
        assert_int_equal(s->spill_bytes, w->spill_bytes);
    }

    assert_int_equal(p->n_subscriptions, 1);
    const Godwit__Subscription *s = p->subscriptions[0];
    assert_string_equal(s->name, "godwit_sub");
    assert_string_equal(s->database, "app");
    assert_true(s->enabled);
    assert_int_equal(s->received_lsn, sub.received_lsn);
    assert_int_equal(s->latest_end_lsn, sub.latest_end_lsn);
    assert_true(s->has_last_msg);
    assert_true(s->seconds_since_last_msg == 0.5);
    assert_true(s->has_error_counts);
    assert_int_equal(s->apply_error_count, 2);
    assert_int_equal(s->sync_error_count, 1);

    assert_int_equal(p->n_publications, 1);
    const Godwit__Publication *u = p->publications[0];
    assert_string_equal(u->name, "godwit_pub");
    assert_string_equal(u->database, "app");
    assert_true(u->all_tables);
    assert_int_equal(u->table_count, 42);
    wire_free(&out);
}

static void test_round_trip_report_empty(void **state)
{
    /* A report with no disk and no postgres part is still a report. */
    Godwit__Report report = GODWIT__REPORT__INIT;
    report.seq = 1;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 3;
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = &report;
    Godwit__Envelope *out = s_round_trip(&env);
    assert_int_equal(out->report->seq, 1);
    assert_null(out->report->disk);
    assert_null(out->report->postgres);
    wire_free(&out);
}

static void test_round_trip_command(void **state)
{
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&env, &cmd, &ping);
    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "command");
    const Godwit__Command *c = out->command;
    assert_string_equal(c->id, "7.42");
    assert_int_equal(c->epoch, 7);
    assert_int_equal(c->deadline_unix_ms, UINT64_C(1700000000123));
    assert_int_equal(c->action_case, GODWIT__COMMAND__ACTION_PING);
    assert_non_null(c->ping);
    assert_int_equal(c->ping->nonce, UINT64_C(0xDEADBEEFCAFEF00D));
    wire_free(&out);
}

static void test_round_trip_result(void **state)
{
    Godwit__PingResult pr = GODWIT__PING_RESULT__INIT;
    pr.nonce = 12345;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = "7.42";
    res.status = GODWIT__STATUS__STATUS_STALE_EPOCH;
    res.message = "epoch 7 is older than 8";
    res.epoch = 7;
    res.highest_epoch = 8;
    res.replayed = true;
    res.payload_case = GODWIT__RESULT__PAYLOAD_PING;
    res.ping = &pr;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = UINT64_MAX;
    env.sent_at_ms = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
    env.result = &res;

    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "result");
    const Godwit__Result *r = out->result;
    assert_string_equal(r->command_id, "7.42");
    assert_int_equal(r->status, GODWIT__STATUS__STATUS_STALE_EPOCH);
    assert_string_equal(r->message, "epoch 7 is older than 8");
    assert_int_equal(r->epoch, 7);
    assert_int_equal(r->highest_epoch, 8);
    assert_true(r->replayed);
    assert_int_equal(r->payload_case, GODWIT__RESULT__PAYLOAD_PING);
    assert_int_equal(r->ping->nonce, 12345);
    wire_free(&out);
}

static void test_round_trip_progress(void **state)
{
    Godwit__Progress prog = GODWIT__PROGRESS__INIT;
    prog.command_id = "7.43";
    prog.done = 1000;
    prog.total = 5000;
    prog.unit = "rows";
    prog.message = "copying public.orders";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 5;
    env.body_case = GODWIT__ENVELOPE__BODY_PROGRESS;
    env.progress = &prog;

    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "progress");
    const Godwit__Progress *p = out->progress;
    assert_string_equal(p->command_id, "7.43");
    assert_int_equal(p->done, 1000);
    assert_int_equal(p->total, 5000);
    assert_string_equal(p->unit, "rows");
    assert_string_equal(p->message, "copying public.orders");
    wire_free(&out);
}

static void test_round_trip_event(void **state)
{
    Godwit__Event ev = GODWIT__EVENT__INIT;
    ev.severity = GODWIT__SEVERITY__SEVERITY_WARNING;
    ev.code = "db.unreachable";
    ev.message = "connection refused \xe2\x80\x94 retrying"; /* UTF-8 survives */
    ev.object = "app";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 6;
    env.body_case = GODWIT__ENVELOPE__BODY_EVENT;
    env.event = &ev;

    Godwit__Envelope *out = s_round_trip(&env);
    assert_string_equal(wire_body_name(out), "event");
    const Godwit__Event *e = out->event;
    assert_int_equal(e->severity, GODWIT__SEVERITY__SEVERITY_WARNING);
    assert_string_equal(e->code, "db.unreachable");
    assert_string_equal(e->message, ev.message);
    assert_string_equal(e->object, "app");
    wire_free(&out);
}

/* ---- framing refusals ------------------------------------------------- */

static void test_refuse_short(void **state)
{
    s_refused(NULL, 0, "truncated");
    static const uint8_t seven[7] = { 'G', 'W', WIRE_VERSION, 0, 0, 0, 0 };
    for (size_t n = 1; n <= sizeof seven; n++)
        s_refused(seven, n, "truncated");
}

static void test_refuse_header(void **state)
{
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&env, &cmd, &ping);
    size_t len = 0;
    uint8_t *good = s_encode(&env, &len);
    uint8_t *buf = xmalloc(len);

    static const struct {
        size_t at;
        uint8_t value;
        const char *want;
    } cases[] = {
        { 0, 'g', "magic" },
        { 0, 'W', "magic" },
        { 1, 'G', "magic" },
        { 1, 0, "magic" },
        { 2, 0, "version" },
        { 2, WIRE_VERSION + 1, "version" },
        { 2, 0xff, "version" },
        { 3, 1, "flags" },
        { 3, 0x80, "flags" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buf, good, len);
        buf[cases[i].at] = cases[i].value;
        s_refused(buf, len, cases[i].want);
    }
    /* And the unmodified frame is fine. */
    const char *reason = NULL;
    Godwit__Envelope *out = s_decode(good, len, &reason);
    assert_non_null(out);
    wire_free(&out);
    free(buf);
    free(good);
}

static void test_refuse_length(void **state)
{
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&env, &cmd, &ping);
    size_t len = 0;
    uint8_t *good = s_encode(&env, &len);

    /* Length larger than the input: the last byte is missing. */
    s_refused(good, len - 1, "truncated");

    /* Length smaller than the input: one trailing byte. */
    uint8_t *longer = xmalloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = 0;
    s_refused(longer, len + 1, "trailing");
    free(longer);

    /* A header alone claiming one body byte less than there is. */
    uint8_t *buf = xmalloc(len);
    memcpy(buf, good, len);
    buf[7] = (uint8_t)(buf[7] - 1);
    s_refused(buf, len, "trailing");

    /* Lengths over the limit are refused before anything is read. */
    static const uint32_t over[] = { WIRE_MAX_BODY + 1, WIRE_MAX_BODY * 2, UINT32_MAX };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        uint8_t hdr[WIRE_HEADER_LEN] = { 'G', 'W', WIRE_VERSION, 0, (uint8_t)(over[i] >> 24),
                                         (uint8_t)(over[i] >> 16), (uint8_t)(over[i] >> 8),
                                         (uint8_t)over[i] };
        s_refused(hdr, sizeof hdr, "oversized");
    }
    /* Exactly the limit, with nothing behind it, is merely truncated. */
    uint8_t hdr[WIRE_HEADER_LEN] = { 'G', 'W', WIRE_VERSION, 0,
                                     (uint8_t)(WIRE_MAX_BODY >> 24), (uint8_t)(WIRE_MAX_BODY >> 16),
                                     (uint8_t)(WIRE_MAX_BODY >> 8), (uint8_t)WIRE_MAX_BODY };
    s_refused(hdr, sizeof hdr, "truncated");
    free(buf);
    free(good);
}

static void test_refuse_garbage_body(void **state)
{
    static const struct {
        const char *what;
        size_t len;
        uint8_t bytes[16];
    } bodies[] = {
        { "varint that never ends", 10, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
        { "wire type 7", 2, { 0x0f, 0x01 } },
        { "field number 0", 2, { 0x00, 0x01 } },
        { "length past the end", 4, { 0x52, 0x7f, 0x08, 0x01 } },          /* hello, 127 bytes */
        { "group start", 2, { 0x0b, 0x0c } },                               /* deprecated groups */
        { "string as varint", 2, { 0x08, 0x80 } },                          /* version, cut varint */
        { "nested garbage", 4, { 0x52, 0x02, 0xff, 0xff } },               /* hello { junk } */
        { "fixed64 cut short", 4, { 0x09, 0x01, 0x02, 0x03 } },
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        size_t len = 0;
        uint8_t *buf = s_frame(bodies[i].bytes, bodies[i].len, &len);
        const char *reason = NULL;
        Godwit__Envelope *env = s_decode(buf, len, &reason);
        if (env) {
            wire_free(&env);
            fail_msg("accepted garbage body: %s", bodies[i].what);
        }
        if (!strstr(reason, "not a valid envelope"))
            fail_msg("garbage body (%s): reason \"%s\"", bodies[i].what, reason);
        free(buf);
    }

    /* Random bodies, from a fixed seed so a failure repeats: never accepted,
     * always with a reason, never a crash. */
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);
    uint8_t body[256];
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + (size_t)(x % sizeof body);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body[i] = (uint8_t)x;
        }
        size_t len = 0;
        uint8_t *buf = s_frame(body, n, &len);
        const char *reason = NULL;
        Godwit__Envelope *env = s_decode(buf, len, &reason);
        if (env) {
            wire_free(&env);
            fail_msg("accepted random body, round %d", round);
        }
        assert_non_null(reason);
        free(buf);
    }
}

/* ---- protocol-rule refusals ------------------------------------------- */

/* Found by fuzz_wire: protobuf-c keeps field number 0 as an unknown field
 * when its tag is spelled in two bytes (0x80 0x00), then refuses its own
 * re-encoding. The decoder must refuse it at any depth. */
static void test_refuse_field_zero(void **state)
{
    (void)state;
    static const uint8_t top[] = { 'G', 'W', 1, 0, 0, 0, 0, 9,
                                   0x08, 0x01, 0x10, 0x01, 0x7a, 0x00, 0x80, 0x00, 0x00 };
    const char *reason = NULL;
    assert_null(wire_decode(top, sizeof top, &reason));
    assert_string_equal(reason, "garbage: field number 0");
    /* The same inside a nested message: report { disk { field 0 } }. */
    static const uint8_t nested[] = { 'G', 'W', 1, 0, 0, 0, 0, 11,
                                      0x08, 0x01, 0x10, 0x01, 0x5a, 0x05, 0x22, 0x03, 0x80, 0x00, 0x00 };
    reason = NULL;
    assert_null(wire_decode(nested, sizeof nested, &reason));
    assert_string_equal(reason, "garbage: field number 0");
}

static void test_refuse_no_body(void **state)
{
    /* A valid protobuf (version and msg_id set) with no body at all. */
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 10;
    s_encoded_refused(&env, "no body");

    /* An empty body is a valid (empty) protobuf too; msg_id is checked first. */
    size_t len = 0;
    uint8_t *buf = s_frame(NULL, 0, &len);
    s_refused(buf, len, "version");
    free(buf);
}

static void test_refuse_msg_id_zero(void **state)
{
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&env, &cmd, &ping);
    env.msg_id = 0;
    s_encoded_refused(&env, "message id");
}

static void test_refuse_envelope_version(void **state)
{
    /* The frame says version 1 but the envelope inside says 2. */
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&env, &cmd, &ping);
    env.version = WIRE_VERSION + 1;
    size_t body_len = godwit__envelope__get_packed_size(&env);
    uint8_t *body = xmalloc(body_len);
    godwit__envelope__pack(&env, body);
    size_t len = 0;
    uint8_t *buf = s_frame(body, body_len, &len);
    s_refused(buf, len, "envelope version");
    free(buf);
    free(body);

    /* A hello announcing another protocol version. */
    Godwit__Hello hello = GODWIT__HELLO__INIT;
    hello.protocol_version = WIRE_VERSION + 1;
    Godwit__Envelope henv = GODWIT__ENVELOPE__INIT;
    henv.msg_id = 1;
    henv.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    henv.hello = &hello;
    s_encoded_refused(&henv, "hello: unsupported protocol version");
}

static void test_refuse_command_incomplete(void **state)
{
    Godwit__Envelope env;
    Godwit__Command cmd;
    Godwit__Ping ping;

    s_command(&env, &cmd, &ping);
    cmd.id = "";
    s_encoded_refused(&env, "command: id missing");

    s_command(&env, &cmd, &ping);
    cmd.epoch = 0;
    s_encoded_refused(&env, "command: epoch missing");

    s_command(&env, &cmd, &ping);
    cmd.deadline_unix_ms = 0;
    s_encoded_refused(&env, "command: deadline missing");

    s_command(&env, &cmd, &ping);
    cmd.action_case = GODWIT__COMMAND__ACTION__NOT_SET;
    cmd.ping = NULL;
    s_encoded_refused(&env, "command: no action");
}

static void test_refuse_result_without_id(void **state)
{
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 8;
    env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
    env.result = &res;
    s_encoded_refused(&env, "result: command id missing");

    Godwit__Progress prog = GODWIT__PROGRESS__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_PROGRESS;
    env.progress = &prog;
    s_encoded_refused(&env, "progress: command id missing");
}

/* ---- truncation ------------------------------------------------------- */

static void test_every_truncation(void **state)
{
    char *caps[] = { "ping" };
    Godwit__Hello hello = GODWIT__HELLO__INIT;
    hello.protocol_version = WIRE_VERSION;
    hello.n_capabilities = 1;
    hello.capabilities = caps;
    hello.hostname = "h";
    Godwit__Slot slot = GODWIT__SLOT__INIT;
    slot.name = "s";
    slot.retained_bytes = 1;
    Godwit__Slot *slots[] = { &slot };
    Godwit__Postgres pg = GODWIT__POSTGRES__INIT;
    pg.reachable = true;
    pg.n_slots = 1;
    pg.slots = slots;
    Godwit__Disk disk = GODWIT__DISK__INIT;
    disk.path = "/d";
    disk.util_percent = 1.5;
    Godwit__Report report = GODWIT__REPORT__INIT;
    report.seq = 1;
    report.disk = &disk;
    report.postgres = &pg;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = "1.1";
    res.status = GODWIT__STATUS__STATUS_OK;
    Godwit__Progress prog = GODWIT__PROGRESS__INIT;
    prog.command_id = "1.1";
    prog.done = 3;
    Godwit__Event ev = GODWIT__EVENT__INIT;
    ev.code = "x.y";
    ev.severity = GODWIT__SEVERITY__SEVERITY_INFO;

    Godwit__Envelope envs[6];
    Godwit__Command cmd;
    Godwit__Ping ping;
    s_command(&envs[0], &cmd, &ping);
    for (size_t i = 1; i < 6; i++) {
        envs[i] = (Godwit__Envelope)GODWIT__ENVELOPE__INIT;
        envs[i].msg_id = i + 1;
        envs[i].sent_at_ms = UINT64_C(1700000000000);
    }
    envs[1].body_case = GODWIT__ENVELOPE__BODY_HELLO;
    envs[1].hello = &hello;
    envs[2].body_case = GODWIT__ENVELOPE__BODY_REPORT;
    envs[2].report = &report;
    envs[3].body_case = GODWIT__ENVELOPE__BODY_RESULT;
    envs[3].result = &res;
    envs[4].body_case = GODWIT__ENVELOPE__BODY_PROGRESS;
    envs[4].progress = &prog;
    envs[5].body_case = GODWIT__ENVELOPE__BODY_EVENT;
    envs[5].event = &ev;

    for (size_t k = 0; k < 6; k++) {
        size_t len = 0;
        uint8_t *buf = s_encode(&envs[k], &len);
        const char *reason = NULL;
        Godwit__Envelope *whole = s_decode(buf, len, &reason);
        if (!whole)
            fail_msg("%s frame refused: %s", wire_body_name(&envs[k]), reason);
        wire_free(&whole);
        for (size_t n = 0; n < len; n++) {
            Godwit__Envelope *env = s_decode(buf, n, &reason);
            if (env) {
                wire_free(&env);
                fail_msg("%s frame cut to %zu of %zu bytes decoded", wire_body_name(&envs[k]),
                         n, len);
            }
            assert_non_null(reason);
        }
        free(buf);
    }
}

/* ---- size limit on the encoder ---------------------------------------- */

static void test_encode_size_limit(void **state)
{
    /* Find the message length that packs to exactly WIRE_MAX_BODY. */
    size_t cap = WIRE_MAX_BODY + 16;
    char *text = xmalloc(cap + 1);
    memset(text, 'x', cap);
    Godwit__Event ev = GODWIT__EVENT__INIT;
    ev.code = "big";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    size_t n = WIRE_MAX_BODY - 64;
    for (int i = 0; i < 4; i++) {
        text[n] = '\0';
        ev.message = text;
        size_t packed = godwit__envelope__get_packed_size(&env);
        text[n] = 'x';
        n += WIRE_MAX_BODY - packed;
    }
    text[n] = '\0';
    ev.message = text;
    assert_int_equal(godwit__envelope__get_packed_size(&env), WIRE_MAX_BODY);

    /* At the limit: encoded and decoded. */
    size_t len = 0;
    uint8_t *buf = wire_encode(&env, &len);
    assert_non_null(buf);
    assert_int_equal(len, WIRE_HEADER_LEN + WIRE_MAX_BODY);
    const char *reason = NULL;
    Godwit__Envelope *out = s_decode(buf, len, &reason);
    if (!out)
        fail_msg("frame at the size limit refused: %s", reason);
    assert_int_equal(strlen(out->event->message), n);
    wire_free(&out);
    free(buf);

    /* One byte over: refused, *lenp untouched. */
    text[n] = 'x';
    text[n + 1] = '\0';
    len = 12345;
    buf = wire_encode(&env, &len);
    assert_null(buf);
    assert_int_equal(len, 12345);

    /* Far over. */
    memset(text, 'x', cap);
    text[cap] = '\0';
    assert_null(wire_encode(&env, &len));
    free(text);
}

static void test_body_names(void **state)
{
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    assert_string_equal(wire_body_name(&env), "none");
    static const struct {
        Godwit__Envelope__BodyCase c;
        const char *name;
    } names[] = {
        { GODWIT__ENVELOPE__BODY_HELLO, "hello" },       { GODWIT__ENVELOPE__BODY_REPORT, "report" },
        { GODWIT__ENVELOPE__BODY_COMMAND, "command" },   { GODWIT__ENVELOPE__BODY_RESULT, "result" },
        { GODWIT__ENVELOPE__BODY_PROGRESS, "progress" }, { GODWIT__ENVELOPE__BODY_EVENT, "event" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        env.body_case = names[i].c;
        assert_string_equal(wire_body_name(&env), names[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_hello),
        cmocka_unit_test(test_round_trip_report),
        cmocka_unit_test(test_round_trip_report_empty),
        cmocka_unit_test(test_round_trip_command),
        cmocka_unit_test(test_round_trip_result),
        cmocka_unit_test(test_round_trip_progress),
        cmocka_unit_test(test_round_trip_event),
        cmocka_unit_test(test_refuse_short),
        cmocka_unit_test(test_refuse_header),
        cmocka_unit_test(test_refuse_length),
        cmocka_unit_test(test_refuse_garbage_body),
        cmocka_unit_test(test_refuse_field_zero),
        cmocka_unit_test(test_refuse_no_body),
        cmocka_unit_test(test_refuse_msg_id_zero),
        cmocka_unit_test(test_refuse_envelope_version),
        cmocka_unit_test(test_refuse_command_incomplete),
        cmocka_unit_test(test_refuse_result_without_id),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_encode_size_limit),
        cmocka_unit_test(test_body_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
