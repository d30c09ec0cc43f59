/*
 * vtbatch: a batch of the VerifyTable step (see vtbatch.h): the verify
 * slot, the two snapshots, the window read from the source's WAL, and the
 * batch's end.
 *
 * The target is a subscriber of the source, or (req->standby) a physical
 * standby of it: then its replay position stands in for the subscription's
 * origin progress, in the wait and as Y, and the target is only read (a
 * hot standby runs nothing else).
 *
 * The replication commands and SET TRANSACTION SNAPSHOT take no
 * parameters: the slot's name goes in through PQescapeIdentifier and the
 * snapshot's through PQescapeLiteral. The slot lives only from its
 * creation to the window's read (window_ms); a batch that fails leaves it
 * behind only when the agent dies (the next verify, cleanup or abort drops
 * it).
 */
#include "vtbatch.h"
#include "log.h"
#include "lsn.h"
#include "pgoutput.h"
#include "units.h"
#include "vtchunk.h"
#include "vtresult.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_WAIT_POLL_MS 5
#define T_WAIT_LIMIT_MS 60000

/* ---- 1: the verify slot ------------------------------------------------- */

static void s_import(vtstep_t *s);
static void s_slot_create(vtstep_t *s);

/* The bound on creating the slot passed: who held it up, then our walsender
 * terminated (which removes the slot it was making). */
static void s_on_slot_stalled(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    if (s->snapshot) { /* made after all, just as the bound passed */
        vtstep_maybe_then(s);
        return;
    }
    const char *holders = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "holders")
                                                           : NULL;
    s->slot_exists = false;
    steprun_failf(&s->run, "creating the verify slot \"%s\" on the source waited %.1f s for the transactions "
               "running there to end (a logical slot's snapshot needs them finished) and was "
               "given up: %s; end them, or set idle_in_transaction_session_timeout on the source",
            s->req->verify_slot, (double)s->slot_wait_ms / 1000.0,
            holders ? holders : "no transaction with a transaction id is visible to our role");
}

static const char s_stalled_sql[] =
    "SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('process %s (%s, %s, in a transaction "
    "since %s)', a.pid, COALESCE(NULLIF(a.application_name, ''), 'no application_name'),"
    " COALESCE(a.state, 'state unknown'), a.xact_start), '; ' ORDER BY a.xact_start)"
    "  FROM (SELECT * FROM pg_catalog.pg_stat_activity a WHERE a.backend_xid IS NOT NULL"
    "   AND a.pid <> s.active_pid ORDER BY a.xact_start LIMIT 3) a) AS holders,"
    " pg_catalog.pg_terminate_backend(s.active_pid) AS terminated"
    " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL";

static void s_on_slot_timer(steprun_t *run)
{
    vtstep_t *s = (vtstep_t *)run;
    if (s->run.disposed || !s->slot_exists)
        return;
    s->slot_timed_out = true;
    const char *params[1] = { s->req->verify_slot };
    vtstep_send(s, VTSTEP_SRC, "looking for what holds the verify slot's creation up",
                s_stalled_sql, 1, params, s_on_slot_stalled);
}

static void s_on_slot_dropped_for_retry(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    /* 42704: gone meanwhile, which is what we wanted. */
    if (!r->ok && strcmp(r->sqlstate, "42704") != 0) {
        vtstep_fail_query(s, vtstep_side_of(s, c), r);
        return;
    }
    s->then = s_slot_create;
    vtstep_maybe_then(s);
}

static void s_on_holder_terminated(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    char *slot = vtstep_ident(s, VTSTEP_REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s WAIT", slot);
    vtstep_send_simple(s, VTSTEP_REPL, "dropping a verify slot left behind", sql,
                       s->timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_slot_dropped_for_retry);
    free(sql);
    free(slot);
}

static void s_on_slot_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    steprun_after_stop(&s->run);
    if (!r->ok && strcmp(r->sqlstate, "42710") == 0 && !s->create_retried) {
        /* Left behind by a verify whose agent died: its holder (if any) is
         * terminated, then it is dropped and made again. */
        s->slot_exists = false;
        s->create_retried = true;
        log_info("verify %s: a verify slot \"%s\" was left on the source; dropping it", s->run.label,
                 s->req->verify_slot);
        const char *params[1] = { s->req->verify_slot };
        vtstep_send(s, VTSTEP_SRC, "terminating the holder of a verify slot left behind",
                    "SELECT pg_catalog.pg_terminate_backend(s.active_pid) AS t"
                    " FROM pg_catalog.pg_replication_slots s"
                    " WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL",
                    1, params, s_on_holder_terminated);
        return;
    }
    if (!r->ok && s->slot_timed_out)
        return; /* our walsender, terminated: s_on_slot_stalled says why */
    if (!r->ok) {
        s->slot_exists = false;
        vtstep_fail_query(s, VTSTEP_REPL, r);
        return;
    }
    const char *snap = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "snapshot_name")
                                                        : NULL;
    const char *lsn = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "consistent_point")
                                                       : NULL;
    if (!snap || !lsn || !lsn_parse(lsn, &s->x)) {
        steprun_failf(&s->run, "creating the verify slot returned no snapshot or position");
        return;
    }
    s->snapshot = xstrdup(snap);
    if (s->batch == 1)
        s->result->source_lsn = s->x;
    log_debug("verify %s: batch %u: verify slot consistent at %s, snapshot %s", s->run.label, s->batch,
              lsn, snap);
    s->then = s_import;
    vtstep_maybe_then(s);
}

static void s_slot_create(vtstep_t *s)
{
    char *slot = vtstep_ident(s, VTSTEP_REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", slot);
    free(slot);
    s->slot_made_ms = units_mono_ms();
    /* pgconn's own deadline stays out of the way of ours: dropping the
     * connection would leave our walsender waiting, to make the slot
     * after all once the transactions end. */
    if (vtstep_send_simple(s, VTSTEP_REPL, "creating the verify slot", sql,
                           s->slot_wait_ms + s->timeout_ms + STEP_DEADLINE_SLACK_MS,
                           s_on_slot_created)) {
        s->slot_exists = true;
        steprun_after(&s->run, s->slot_wait_ms, s_on_slot_timer);
    }
    free(sql);
}

/* ---- 2-4: the snapshots ------------------------------------------------- */

static void s_wait_poll(vtstep_t *s);
static void s_dst_snapshot(vtstep_t *s);

static void s_import(vtstep_t *s)
{
    char *lit = pgconn_escape_literal(s->run.conn[VTSTEP_SRC], s->snapshot);
    if (!lit) {
        steprun_failf(&s->run, "cannot quote the snapshot name \"%s\"", s->snapshot);
        return;
    }
    char *sql = xasprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                          " SET TRANSACTION SNAPSHOT %s", lit);
    free(lit);
    s->then = s_wait_poll;
    s->wait_until_ms = units_mono_ms() + T_WAIT_LIMIT_MS;
    vtstep_send_simple(s, VTSTEP_SRC, "reading the source in the verify slot's snapshot", sql,
                       s->timeout_ms + STEP_DEADLINE_SLACK_MS, vtstep_on_plain);
    free(sql);
}

static void s_on_wait_timer(steprun_t *run)
{
    s_wait_poll((vtstep_t *)run);
}

static void s_wait_again(vtstep_t *s)
{
    if (units_mono_ms() >= s->wait_until_ms) {
        char pos[32];
        lsn_format(s->x, pos, sizeof pos);
        steprun_failf(&s->run, "the target did not %s the source's position %s within %d s (is "
                   "%s stopped or far behind?)", s->req->standby ? "replay up to" : "reach",
                   pos, T_WAIT_LIMIT_MS / 1000,
                   s->req->standby ? "the standby's WAL replay" : "replication");
        return;
    }
    steprun_after(&s->run, T_WAIT_POLL_MS, s_on_wait_timer);
}

/* The position in the one row's column lsn: false without one. */
static bool s_lsn_of(const pgconn_result_t *r, uint64_t *pos)
{
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    return text && lsn_parse(text, pos);
}

static void s_on_slot_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    uint64_t pos = 0;
    if (s_lsn_of(r, &pos) && pos >= s->x)
        s_dst_snapshot(s);
    else
        s_wait_again(s);
}

static const char s_origin_sql[] =
    "SELECT COALESCE(pg_catalog.pg_replication_origin_progress('pg_' || s.oid, true),"
    " '0/0')::pg_catalog.text AS lsn FROM pg_catalog.pg_subscription s"
    " WHERE s.subname = $1 AND s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d"
    " WHERE d.datname = pg_catalog.current_database())";

static void s_on_origin_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&s->run, "our subscription \"%s\" is missing on the target", s->req->subscription);
        return;
    }
    uint64_t pos = 0;
    if (s_lsn_of(r, &pos) && pos >= s->x) {
        s_dst_snapshot(s);
        return;
    }
    const char *params[1] = { s->req->slot };
    vtstep_send(s, VTSTEP_SRC, "reading our slot's confirmed position",
                "SELECT COALESCE(s.confirmed_flush_lsn, '0/0')::pg_catalog.text AS lsn"
                " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
                1, params, s_on_slot_pos);
}

/* A physical standby (req->standby): still one, and its replay position.
 * As the first statement of the target's read (Y), the snapshot comes
 * first and the position after: a standby makes a commit visible before
 * its replay position passes the commit's record. */
static const char s_replay_sql[] =
    "SELECT pg_catalog.pg_is_in_recovery() AS standby,"
    " pg_catalog.pg_last_wal_replay_lsn()::pg_catalog.text AS lsn";

/* The standby's replay position in *pos from an s_replay_sql row; false
 * after ending the step when the target is no standby or has none. */
static bool s_replay_of(vtstep_t *s, const pgconn_result_t *r, uint64_t *pos)
{
    if (!r->res || PQntuples(r->res) != 1 || !pgconn_col_bool(r->res, 0, "standby")) {
        steprun_failf(&s->run, "the target is not a standby any more (promoted?): a physical "
                      "migration's verify compares a standby");
        return false;
    }
    if (!s_lsn_of(r, pos)) {
        steprun_failf(&s->run, "the target standby reports no replay position");
        return false;
    }
    return true;
}

static void s_on_replay_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    uint64_t pos = 0;
    if (!s_replay_of(s, r, &pos))
        return;
    if (pos >= s->x)
        s_dst_snapshot(s);
    else
        s_wait_again(s);
}

static void s_wait_poll(vtstep_t *s)
{
    if (s->req->standby) {
        vtstep_send(s, VTSTEP_DST, "reading the target standby's replay position", s_replay_sql,
                    0, NULL, s_on_replay_pos);
        return;
    }
    const char *params[1] = { s->req->subscription };
    vtstep_send(s, VTSTEP_DST, "reading the target's replication progress", s_origin_sql, 1, params,
                s_on_origin_pos);
}

static void s_peek(vtstep_t *s);

static void s_on_dst_y(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    uint64_t y = 0;
    if (s->req->standby) {
        if (!s_replay_of(s, r, &y))
            return;
    } else if (!s_lsn_of(r, &y)) {
        steprun_failf(&s->run, "our subscription \"%s\" is missing on the target", s->req->subscription);
        return;
    }
    s->y = y > s->x ? y : s->x;
    s_peek(s);
}

static void s_on_dst_begun(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    /* The first statement takes the snapshot; the progress it reads (a
     * standby: its replay position) is at or past every commit the
     * snapshot shows. */
    if (s->req->standby) {
        vtstep_send(s, VTSTEP_DST, "taking the target's snapshot and its replay position",
                    s_replay_sql, 0, NULL, s_on_dst_y);
        return;
    }
    const char *params[1] = { s->req->subscription };
    vtstep_send(s, VTSTEP_DST, "taking the target's snapshot and its replication progress",
                s_origin_sql, 1, params, s_on_dst_y);
}

static void s_dst_snapshot(vtstep_t *s)
{
    vtstep_send(s, VTSTEP_DST, "starting a read on the target",
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, s_on_dst_begun);
}

/* ---- 5: the window ------------------------------------------------------ */

static void s_on_slot_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    s->slot_exists = false;
    vtstep_maybe_then(s);
}

/* A bytea in hex output ("\x...") into bytes; NULL if it is not one. */
static uint8_t *s_unhex(const char *text, size_t *len)
{
    if (!text || text[0] != '\\' || text[1] != 'x')
        return NULL;
    size_t n = strlen(text + 2);
    if (n % 2)
        return NULL;
    uint8_t *out = xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = text[2 + 2 * i + (size_t)k];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) {
                free(out);
                return NULL;
            }
            v = v << 4 | d;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return out;
}

static void s_on_peek(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    size_t key[64];
    for (size_t i = 0; i < s->n_keys && i < 64; i++)
        key[i] = s->key_idx[i];
    s->win = vwindow_new(s->req->table->schema, s->req->table->name, s->cols, s->n_cols, key,
                         s->n_keys);
    if (!s->win) {
        steprun_failf(&s->run, "cannot follow the table's changes (%zu key columns)", s->n_keys);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *buf = s_unhex(PQgetvalue(r->res, i, 0), &len);
        if (!buf) {
            steprun_failf(&s->run, "reading the verify slot's changes: row %d is not a bytea", i);
            return;
        }
        pgoutput_msg_t m;
        const char *bad = NULL;
        char why[512];
        bool ok = pgoutput_parse(buf, len, &m, &bad);
        if (ok)
            ok = vwindow_feed(s->win, &m, why, sizeof why);
        else
            snprintf(why, sizeof why, "a message it cannot read: %s", bad);
        pgoutput_msg_clear(&m);
        free(buf);
        if (!ok) {
            steprun_failf(&s->run, "reading the verify slot's changes: %s", why);
            return;
        }
    }
    vwindow_seal(s->win);
    Godwit__VerifyTableResult *res = s->result;
    uint64_t held = units_mono_ms() - s->slot_made_ms;
    if (held > res->window_ms)
        res->window_ms = held;
    res->window_from = s->x;
    res->window_to = s->y;
    res->window_changes += vwindow_changes(s->win);
    res->batches = s->batch;
    char xs[32], ys[32];
    lsn_format(s->x, xs, sizeof xs);
    lsn_format(s->y, ys, sizeof ys);
    log_debug("verify %s: batch %u: window (%s, %s]: %d messages, %" PRIu64 " changes of the "
              "table in %" PRIu64 " transactions; slot held %" PRIu64 " ms",
              s->run.label, s->batch, xs, ys, n, vwindow_changes(s->win),
              vwindow_transactions(s->win), held);
    /* The batch's keys for the final check, the later batches first. */
    size_t nk = vwindow_key_count(s->win);
    for (size_t i = 0; i < nk; i++)
        vtresult_recent_add(s, vwindow_key_at(s->win, i),
                            ((size_t)UINT32_MAX - s->batch) * 1000000 + i);
    /* The window's keys, to compare one by one and leave out of the sums. */
    if (s->n_keys && nk) {
        char ***dec = xcalloc(nk, sizeof *dec);
        char **col = xcalloc(nk, sizeof *col);
        for (size_t i = 0; i < nk; i++) {
            dec[i] = vwindow_key_decode(vwindow_key_at(s->win, i), s->n_keys);
            if (!dec[i]) {
                for (size_t j = 0; j < i; j++)
                    vtstep_strv_free(dec[j], s->n_keys);
                free(dec);
                free(col);
                steprun_failf(&s->run, "the window's key %zu does not decode", i);
                return;
            }
        }
        s->wk_arrays = xcalloc(s->n_keys, sizeof *s->wk_arrays);
        for (size_t k = 0; k < s->n_keys; k++) {
            for (size_t i = 0; i < nk; i++)
                col[i] = dec[i][k];
            s->wk_arrays[k] = pgconn_text_array(col, nk);
        }
        s->n_wk = nk;
        for (size_t i = 0; i < nk; i++)
            vtstep_strv_free(dec[i], s->n_keys);
        free(dec);
        free(col);
    }
    /* The slot goes now, while the pass runs. */
    char *slot = vtstep_ident(s, VTSTEP_REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s", slot);
    free(slot);
    s->then = vtchunk_pass;
    if (vtstep_send_simple(s, VTSTEP_REPL, "dropping the verify slot", sql,
                           s->timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_slot_dropped))
        vtstep_maybe_then(s); /* the drop is in flight: the pass starts when it is back */
    free(sql);
}

static void s_peek(vtstep_t *s)
{
    char y[32];
    lsn_format(s->y, y, sizeof y);
    const char *params[3] = { s->req->verify_slot, y, s->req->publication };
    vtstep_send(s, VTSTEP_SRC, "reading the verify slot's changes",
                "SELECT c.data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1,"
                " $2::pg_catalog.pg_lsn, NULL, 'proto_version', '1', 'publication_names', $3) c",
                3, params, s_on_peek);
}

/* ---- 7: the batch's end ------------------------------------------------- */

static void s_after_batch(vtstep_t *s)
{
    if (!s->more) {
        vtresult_done_ok(s);
        return;
    }
    vtbatch_begin(s);
}

void vtbatch_end(vtstep_t *s)
{
    s->then = s_after_batch;
    vtstep_send_both(s, "ending the read", "COMMIT", 0, NULL, vtstep_on_plain);
}

void vtbatch_begin(vtstep_t *s)
{
    if (s->more) {
        vtstep_strv_free(s->lo, s->lo ? s->n_keys : 0);
        s->lo = s->hi;
        s->hi = NULL;
    }
    vtstep_batch_reset(s);
    s->batch++;
    memset(s->buckets[VTSTEP_SRC], 0, VWINDOW_BUCKETS * sizeof *s->buckets[VTSTEP_SRC]);
    memset(s->buckets[VTSTEP_DST], 0, VWINDOW_BUCKETS * sizeof *s->buckets[VTSTEP_DST]);
    s_slot_create(s);
}
