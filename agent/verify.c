/*
 * verify: the target agent's VerifyTable step (phase 6): one table's rows
 * compared, source against target, while replication runs. See the
 * VerifyTable message in proto/godwit.proto for the contract.
 *
 * Two connections: `src` to the source database with the replication role's
 * credentials (it can read every published table: the copy needs that), and
 * `dst` to the local target database. Both read only, in REPEATABLE READ
 * snapshots, with the settings that change how a value prints pinned, so
 * both sides print a row the same way.
 *
 * The one rule that makes a live comparison sound: a target read starts
 * only after the target has applied the source's WAL position of the source
 * read before it (v_wait: our subscription's replication origin progress on
 * the target, or our slot's confirmed position on the source, whichever
 * gets there first; the slot's position is what moves when the source
 * writes only non-commit WAL). So the target always shows the source at the
 * point of that read or later.
 *
 * With a primary key:
 *   pass    a snapshot pair (source, wait, target) taken back to back, then
 *           chunks of chunk_rows rows in key order summed on both sides at
 *           once: equal chunks are done;
 *   ranges  up to V_RANGE_ROUNDS times: the key ranges of the chunks that
 *           differed (the source's chunk bounds), summed on both sides in a
 *           new snapshot pair: equal ranges are done;
 *   rows    up to `rounds` times: the rows of the remaining ranges read on
 *           the source (S1), then on the target (T), then on the source again
 *           (S2). A row whose target version equals S1's or S2's is
 *           consistent (it was the source's row at a point the target passed
 *           through); a row whose source version held still (S1 = S2) while
 *           the target's differs is different, which is what a row changed on
 *           the target alone looks like; anything else was in flux and is
 *           read again in the next round.
 * Without a key: the table's row count and the sum of its sorted row sums
 * (a multiset), with the same pass and the same S1/T/S2 rule for the whole
 * table.
 *
 * SQL: names go into the text only through PQescapeIdentifier, key types
 * only as the server's own format_type(), values always as parameters.
 *
 * VerifySchema and VerifyRoles use the same two connections, read-only,
 * without snapshots: VerifySchema compares the tables' columns,
 * constraints and indexes, then (as VerifyRoles does alone) who owns what
 * and who may do what, through access.h's one reader and one comparison;
 * each difference is a finding with the statement to run on the target.
 *
 * Owns: both connections, a timer (the first stage, one loop turn after the
 * start, and the waits), a copy of the request, the chunk lists and row
 * sets of the round in hand, and the result being built. Freed in the
 * timer's close callback; each pgconn frees itself once closed.
 */
#include "step.h"
#include "access.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V_DEFAULT_CHUNK_ROWS 5000
#define V_DEFAULT_ROUNDS 20
#define V_DEFAULT_TIMEOUT_MS (3600 * 1000)
#define V_RANGE_ROUNDS 3
#define V_RANGES_PER_ROUND 20       /* ranges read row by row per round */
#define V_MAX_DIFFS 100             /* reported keys; diff_count counts all */
#define V_WAIT_POLL_MS 5
#define V_WAIT_LIMIT_MS 60000
#define V_DEADLINE_SLACK_MS 1000

#define V_ROW_MD5 "pg_catalog.md5((t.*)::pg_catalog.text)"

#define V_PRINT_OPTIONS                                                                        \
    " -c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"      \
    " -c bytea_output=hex -c lc_monetary=C"

typedef struct v_step v_step_t;
typedef void (*v_fn)(v_step_t *s);

/* A chunk of the pass: its row count, sum and first key (n_keys values). */
typedef struct {
    uint64_t rows;
    char md5[33];
    char **first;
} v_chunk_t;

/* A key range: lower inclusive, upper exclusive; NULL for an open end. Both
 * borrowed from the source's chunk list. */
typedef struct {
    char **lower, **upper;
    bool done;
} v_range_t;

/* One row of a row read: its key (encoded, v_key_encode) and sum. */
typedef struct {
    char *key;
    char md5[33];
    size_t range;               /* index into ranges */
} v_row_t;

typedef struct {
    v_row_t *v;
    size_t n, cap;
} v_rows_t;

typedef enum { SIDE_SRC = 0, SIDE_DST = 1 } v_side_t;

struct v_step {
    step_t base;
    uv_loop_t *loop;
    uv_timer_t timer;
    step_done_cb done;
    void *arg;
    bool disposed;

    pgconn_t *conn[2];          /* SIDE_SRC, SIDE_DST */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;        /* statement timeout of the reads */
    char *label;
    char *what;                 /* the statement in flight, for messages */
    Godwit__VerifyTable *req;   /* our own copy */
    uint64_t started_ms;
    unsigned chunk_rows, rounds;

    /* The table, from the source's catalog. */
    size_t n_keys;
    char **key_types;           /* format_type() of each key column */
    char *table_sql;            /* "schema"."name" */
    char *key_order;            /* t."a", t."b" */
    char *key_text;             /* (t."a")::pg_catalog.text AS k1, ... */

    /* Where a sequence of statements goes on. */
    unsigned pending;           /* statements in flight on both sides */
    v_fn then;                  /* runs when pending drops to 0 */
    v_fn pair_then;             /* v_pair: runs once the target's snapshot is taken */
    v_fn snap_then[2];          /* v_src_snapshot, v_dst_snapshot: after the snapshot */
    uint64_t src_lsn;           /* position of the current source snapshot */
    uint64_t wait_until_ms;

    /* The pass. */
    v_chunk_t *chunks[2];
    size_t n_chunks[2];
    uint64_t total[2];
    char whole_md5[2][33];      /* keyless */

    /* Ranges and rows. */
    v_range_t *ranges;
    size_t n_ranges;
    size_t batch[V_RANGES_PER_ROUND]; /* indexes into ranges, this round */
    size_t n_batch, next;
    uint64_t range_rows[2][V_RANGES_PER_ROUND];
    char range_md5[2][V_RANGES_PER_ROUND][33];
    v_rows_t s1, t, s2, *reading;
    v_side_t reading_side;
    v_fn rows_then;             /* after a side's rows are read and its read ended */
    v_rows_t found;             /* keys reported different, sorted */
    unsigned range_round, row_round;
    uint64_t unsettled;
    char whole_s1[80], whole_t[80], whole_s2[80];
    char *whole_reading;

    Godwit__VerifyTableResult *result;

    /* VerifySchema or VerifyRoles instead (req and result are NULL then). */
    Godwit__VerifyRoles *rreq;
    bool roles_fenced;          /* our fence holds the target: its roles lack LOGIN */
    Godwit__VerifySchema *sreq;
    Godwit__VerifySchemaResult *sres;
    cJSON *catalog[2];          /* each side's tables, from v_catalog_sql */
    cJSON *access[2];           /* each side's roles and privileges (access.h) */
    v_fn first;                 /* the first stage after connecting */
};

/* ---- small things ------------------------------------------------------- */

static void v_rows_clear(v_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].key);
    r->n = 0;
}

static void v_rows_free(v_rows_t *r)
{
    v_rows_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

/* key is taken, md5 copied. */
static void v_rows_add(v_rows_t *r, char *key_taken, const char *md5, size_t range)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    r->v[r->n].key = key_taken;
    snprintf(r->v[r->n].md5, sizeof r->v[r->n].md5, "%s", md5);
    r->v[r->n].range = range;
    r->n++;
}

static int v_row_cmp(const void *a, const void *b)
{
    return strcmp(((const v_row_t *)a)->key, ((const v_row_t *)b)->key);
}

/* Sorts a set by key (an empty set has no array: qsort must not see it). */
static void v_rows_sort(v_rows_t *r)
{
    if (r->n)
        qsort(r->v, r->n, sizeof *r->v, v_row_cmp);
}

/* The n values of a key as one string, each as "<length>:<value>" so that
 * no value can run into the next. Caller frees. */
static char *v_key_encode(const PGresult *res, int row, size_t n)
{
    size_t len = 1;
    for (size_t k = 0; k < n; k++)
        len += (size_t)PQgetlength(res, row, (int)k) + 24;
    char *out = xmalloc(len), *p = out;
    for (size_t k = 0; k < n; k++)
        p += sprintf(p, "%d:%s", PQgetlength(res, row, (int)k), PQgetvalue(res, row, (int)k));
    *p = '\0';
    return out;
}

/* The values of an encoded key, for a RowDiff (caller frees each and the
 * array). */
static char **v_key_decode(const char *enc, size_t n)
{
    char **out = xcalloc(n ? n : 1, sizeof *out);
    const char *p = enc;
    for (size_t k = 0; k < n; k++) {
        char *colon;
        unsigned long len = strtoul(p, &colon, 10);
        out[k] = xmalloc(len + 1);
        memcpy(out[k], colon + 1, len);
        out[k][len] = '\0';
        p = colon + 1 + len;
    }
    return out;
}

static void v_chunks_free(v_chunk_t *c, size_t n, size_t n_keys)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n_keys; k++)
            free(c[i].first[k]);
        free(c[i].first);
    }
    free(c);
}

/* ---- finishing ---------------------------------------------------------- */

static void v_on_timer_closed(uv_handle_t *h)
{
    v_step_t *s = h->data;
    if (s->req)
        godwit__verify_table__free_unpacked(s->req, NULL);
    if (s->result)
        godwit__verify_table_result__free_unpacked(s->result, NULL);
    if (s->sreq)
        godwit__verify_schema__free_unpacked(s->sreq, NULL);
    if (s->rreq)
        godwit__verify_roles__free_unpacked(s->rreq, NULL);
    if (s->sres)
        godwit__verify_schema_result__free_unpacked(s->sres, NULL);
    cJSON_Delete(s->catalog[SIDE_SRC]);
    cJSON_Delete(s->catalog[SIDE_DST]);
    cJSON_Delete(s->access[SIDE_SRC]);
    cJSON_Delete(s->access[SIDE_DST]);
    for (size_t i = 0; i < s->n_keys; i++)
        free(s->key_types[i]);
    free(s->key_types);
    for (int side = 0; side < 2; side++)
        v_chunks_free(s->chunks[side], s->n_chunks[side], s->n_keys);
    free(s->ranges);
    v_rows_free(&s->s1);
    v_rows_free(&s->t);
    v_rows_free(&s->s2);
    v_rows_free(&s->found);
    free(s->table_sql);
    free(s->key_order);
    free(s->key_text);
    free(s->label);
    free(s->what);
    free(s);
}

static void v_dispose(v_step_t *s)
{
    if (s->disposed)
        return;
    s->disposed = true;
    s->done = NULL;
    pgconn_destroy(&s->conn[SIDE_SRC]);
    pgconn_destroy(&s->conn[SIDE_DST]);
    uv_close((uv_handle_t *)&s->timer, v_on_timer_closed);
}

static void v_cancel(step_t *base)
{
    v_dispose((v_step_t *)base);
}

static void v_finish(v_step_t *s, const char *error)
{
    step_done_cb done = s->done;
    void *arg = s->arg;
    ProtobufCMessage *payload = NULL;
    char *why = NULL;
    if (error) {
        why = xasprintf("%s: %s", s->label, error);
    } else if (s->sres) {
        log_info("verify %s: %zu findings over %u %s", s->label, s->sres->n_findings,
                 s->sres->tables, s->rreq ? "roles" : "tables");
        payload = &s->sres->base;
        s->sres = NULL;
    } else {
        s->result->seconds = (double)(units_mono_ms() - s->started_ms) / 1000.0;
        log_info("verify %s: %s (%" PRIu64 " rows on the source, %u chunks, %u re-checked, "
                 "%u row rounds, %.2f s)",
                 s->label, s->result->outcome, s->result->source_rows, s->result->chunks,
                 s->result->chunks_rechecked, s->result->rounds, s->result->seconds);
        payload = &s->result->base;
        s->result = NULL;
    }
    v_dispose(s);
    if (done)
        done(payload, why, arg);
    else if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    free(why);
}

static void v_failf(v_step_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void v_failf(v_step_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    v_finish(s, why ? why : "out of memory");
    free(why);
}

static void v_fail_query(v_step_t *s, v_side_t side, const pgconn_result_t *r)
{
    char *what = xasprintf("%s on the %s", s->what ? s->what : "a statement",
                           side == SIDE_SRC ? "source" : "target");
    char *why = pgconn_result_message(what, r);
    v_finish(s, why);
    free(why);
    free(what);
}

/* ---- statements --------------------------------------------------------- */

/* Sends sql on one side; cb gets s. Counts it in pending. false after
 * ending the step. */
static bool v_send(v_step_t *s, v_side_t side, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb)
{
    free(s->what);
    s->what = xstrdup(what);
    int rc = pgconn_query(s->conn[side], sql, nparams, params, s->timeout_ms + V_DEADLINE_SLACK_MS,
                          cb, s);
    if (rc != 0) {
        v_failf(s, "%s: cannot send the statement: %s", what, strerror(-rc));
        return false;
    }
    s->pending++;
    return true;
}

/* A statement's callback got here: false if the step ended (error). */
static bool v_arrived(v_step_t *s, pgconn_t *c, const pgconn_result_t *r)
{
    s->pending--;
    if (s->disposed)
        return false;
    if (!r->ok) {
        v_fail_query(s, c == s->conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST, r);
        return false;
    }
    return true;
}

/* Runs s->then once nothing is in flight any more. */
static void v_maybe_then(v_step_t *s)
{
    if (s->pending == 0 && !s->disposed) {
        v_fn fn = s->then;
        s->then = NULL;
        if (fn)
            fn(s);
    }
}

static void v_on_plain(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_maybe_then(s);
}

/* ---- connecting --------------------------------------------------------- */

static void v_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    v_step_t *s = arg;
    s->pending--;
    if (s->disposed)
        return;
    if (!ok) {
        v_failf(s, "cannot connect to the %s: %s", c == s->conn[SIDE_SRC] ? "source" : "target",
                error ? error : "unknown error");
        return;
    }
    v_maybe_then(s);
}

/* ---- the snapshot pair and the wait ------------------------------------- */

static void v_wait_poll(v_step_t *s);

static void v_on_src_lsn(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    if (!text || !lsn_parse(text, &s->src_lsn)) {
        v_failf(s, "%s: not an LSN: \"%s\"", s->what, text ? text : "(null)");
        return;
    }
    v_maybe_then(s);
}

/* Source: a new REPEATABLE READ snapshot and its WAL position (src_lsn),
 * then `then`. */
static void v_src_snapshot_lsn(v_step_t *s)
{
    s->then = s->snap_then[SIDE_SRC];
    /* The first statement takes the snapshot; the position read in it is
     * at or past every commit the snapshot sees. */
    v_send(s, SIDE_SRC, "reading the source's WAL position",
           "SELECT pg_catalog.pg_current_wal_lsn()::pg_catalog.text AS lsn", 0, NULL, v_on_src_lsn);
}

static void v_src_snapshot(v_step_t *s, v_fn then)
{
    s->snap_then[SIDE_SRC] = then;
    s->then = v_src_snapshot_lsn;
    v_send(s, SIDE_SRC, "starting a read on the source",
           "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, v_on_plain);
}

static void v_on_wait_timer(uv_timer_t *t)
{
    v_step_t *s = t->data;
    v_wait_poll(s);
}

static void v_wait_again(v_step_t *s)
{
    if (units_mono_ms() >= s->wait_until_ms) {
        char pos[32];
        lsn_format(s->src_lsn, pos, sizeof pos);
        v_failf(s, "the target did not reach the source's position %s within %s (is replication "
                   "stopped or far behind?)", pos, "60 s");
        return;
    }
    uv_timer_start(&s->timer, v_on_wait_timer, V_WAIT_POLL_MS, 0);
}

static void v_on_slot_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    uint64_t pos = 0;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    if (text && lsn_parse(text, &pos) && pos >= s->src_lsn)
        v_maybe_then(s);
    else
        v_wait_again(s);
}

static void v_on_origin_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) != 1) {
        v_failf(s, "our subscription \"%s\" is missing on the target%s", s->req->subscription, "");
        return;
    }
    uint64_t pos = 0;
    const char *text = pgconn_col(r->res, 0, "lsn");
    if (text && lsn_parse(text, &pos) && pos >= s->src_lsn) {
        v_maybe_then(s);
        return;
    }
    const char *params[1] = { s->req->slot };
    v_send(s, SIDE_SRC, "reading our slot's confirmed position",
           "SELECT COALESCE(s.confirmed_flush_lsn, '0/0')::pg_catalog.text AS lsn"
           " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
           1, params, v_on_slot_pos);
}

static void v_wait_poll(v_step_t *s)
{
    const char *params[1] = { s->req->subscription };
    v_send(s, SIDE_DST, "reading the target's replication progress",
           "SELECT COALESCE(pg_catalog.pg_replication_origin_progress('pg_' || s.oid, true),"
           " '0/0')::pg_catalog.text AS lsn FROM pg_catalog.pg_subscription s"
           " WHERE s.subname = $1 AND s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d"
           " WHERE d.datname = pg_catalog.current_database())",
           1, params, v_on_origin_pos);
}

/* Waits until the target has applied src_lsn, then runs then. */
static void v_wait(v_step_t *s, v_fn then)
{
    s->then = then;
    s->wait_until_ms = units_mono_ms() + V_WAIT_LIMIT_MS;
    v_wait_poll(s);
}

/* Target: a new REPEATABLE READ snapshot (after the wait), then `then`. */
static void v_dst_snapshot_take(v_step_t *s)
{
    s->then = s->snap_then[SIDE_DST];
    v_send(s, SIDE_DST, "taking the target's snapshot", "SELECT 1", 0, NULL, v_on_plain);
}

static void v_dst_snapshot(v_step_t *s, v_fn then)
{
    s->snap_then[SIDE_DST] = then;
    s->then = v_dst_snapshot_take;
    v_send(s, SIDE_DST, "starting a read on the target",
           "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, v_on_plain);
}

static void v_end_reads(v_step_t *s, v_fn then)
{
    s->then = then;
    if (!v_send(s, SIDE_SRC, "ending the read", "COMMIT", 0, NULL, v_on_plain))
        return;
    v_send(s, SIDE_DST, "ending the read", "COMMIT", 0, NULL, v_on_plain);
}

/* The pair: source snapshot, wait, target snapshot, then `then`. */
static void v_pair_dst(v_step_t *s)
{
    v_dst_snapshot(s, s->pair_then);
}

static void v_pair_wait(v_step_t *s)
{
    v_wait(s, v_pair_dst);
}

static void v_pair(v_step_t *s, v_fn then)
{
    s->pair_then = then;
    v_src_snapshot(s, v_pair_wait);
}

/* ---- results ------------------------------------------------------------ */

/* Sets a string field of a message we built (its initial value is
 * protobuf-c's shared empty string, never freed). taken is malloc'd. */
static void v_str_set(char **field, char *taken)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = taken;
}

static void v_outcome(v_step_t *s, const char *outcome)
{
    v_str_set(&s->result->outcome, xstrdup(outcome));
}

static void v_diff_add(v_step_t *s, const char *key, const char *kind)
{
    Godwit__VerifyTableResult *res = s->result;
    res->diff_count++;
    if (res->n_diffs >= V_MAX_DIFFS)
        return;
    Godwit__RowDiff *d = xmalloc(sizeof *d);
    godwit__row_diff__init(d);
    d->n_key = s->n_keys;
    d->key = v_key_decode(key, s->n_keys);
    d->kind = xstrdup(kind);
    res->diffs = xrealloc(res->diffs, (res->n_diffs + 1) * sizeof *res->diffs);
    res->diffs[res->n_diffs++] = d;
}

static void v_done_ok(v_step_t *s)
{
    if (s->result->diff_count)
        v_outcome(s, "different");
    else if (s->unsettled)
        v_outcome(s, "unsettled");
    else
        v_outcome(s, "equal");
    s->result->unsettled_count = s->unsettled;
    v_finish(s, NULL);
}

/* ---- SQL pieces --------------------------------------------------------- */

static char *v_ident(v_step_t *s, const char *ident)
{
    char *q = pgconn_escape_identifier(s->conn[SIDE_SRC], ident);
    if (!q)
        v_failf(s, "cannot quote the name \"%s\" for SQL%s", ident, "");
    return q;
}

/* "$first::type1" or "ROW($first::type1, ...)" for the key. Caller frees. */
static char *v_param_key(const v_step_t *s, int first)
{
    char *row = xstrdup(s->n_keys > 1 ? "ROW(" : "");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *grown = xasprintf("%s%s$%d::%s", row, i ? ", " : "", first + (int)i, s->key_types[i]);
        free(row);
        row = grown;
    }
    if (s->n_keys > 1) {
        char *done = xasprintf("%s)", row);
        free(row);
        row = done;
    }
    return row;
}

/* The WHERE clause of a range with its values appended to params (room for
 * 2 * n_keys) from *np on. Caller frees. */
static char *v_range_where(const v_step_t *s, const v_range_t *rg, const char **params, int *np)
{
    char *lhs = s->n_keys > 1 ? xasprintf("ROW(%s)", s->key_order) : xstrdup(s->key_order);
    char *lo = NULL, *hi = NULL;
    if (rg->lower) {
        char *p = v_param_key(s, *np + 1);
        lo = xasprintf("%s >= %s", lhs, p);
        free(p);
        for (size_t i = 0; i < s->n_keys; i++)
            params[(*np)++] = rg->lower[i];
    }
    if (rg->upper) {
        char *p = v_param_key(s, *np + 1);
        hi = xasprintf("%s < %s", lhs, p);
        free(p);
        for (size_t i = 0; i < s->n_keys; i++)
            params[(*np)++] = rg->upper[i];
    }
    char *where;
    if (lo && hi)
        where = xasprintf(" WHERE %s AND %s", lo, hi);
    else if (lo || hi)
        where = xasprintf(" WHERE %s", lo ? lo : hi);
    else
        where = xstrdup("");
    free(lhs);
    free(lo);
    free(hi);
    return where;
}

/* ---- the key ------------------------------------------------------------ */

static const char v_key_sql[] =
    "SELECT a.attname::pg_catalog.text AS attname,"
    " pg_catalog.format_type(a.atttypid, a.atttypmod) AS type"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
    " LEFT JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY"
    "   k(attnum, ord) ON k.ord <= i.indnkeyatts"
    " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
    " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
    " ORDER BY k.ord";

static void v_pass(v_step_t *s);

static void v_on_keys(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) == 0) {
        v_failf(s, "no table %s.%s on the source", s->req->table->schema, s->req->table->name);
        return;
    }
    char *schema = v_ident(s, s->req->table->schema);
    if (!schema)
        return;
    char *name = v_ident(s, s->req->table->name);
    if (!name) {
        free(schema);
        return;
    }
    s->table_sql = xasprintf("%s.%s", schema, name);
    free(schema);
    free(name);
    size_t n = pgconn_col(r->res, 0, "attname") ? (size_t)PQntuples(r->res) : 0;
    Godwit__VerifyTableResult *out = s->result;
    out->key_columns = n ? xcalloc(n, sizeof *out->key_columns) : NULL;
    s->key_types = n ? xcalloc(n, sizeof *s->key_types) : NULL;
    char *order = xstrdup(""), *text = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const char *col = pgconn_col_str(r->res, (int)i, "attname");
        char *q = v_ident(s, col);
        if (!q) {
            free(order);
            free(text);
            return;
        }
        out->key_columns[out->n_key_columns++] = xstrdup(col);
        s->key_types[s->n_keys++] = xstrdup(pgconn_col_str(r->res, (int)i, "type"));
        char *o = xasprintf("%s%st.%s", order, i ? ", " : "", q);
        char *t = xasprintf("%s%s(t.%s)::pg_catalog.text AS k%zu", text, i ? ", " : "", q, i + 1);
        free(order);
        free(text);
        free(q);
        order = o;
        text = t;
    }
    s->key_order = order;
    s->key_text = text;
    v_maybe_then(s);
}

static void v_keys(v_step_t *s)
{
    s->then = v_pass;
    const char *params[2] = { s->req->table->schema, s->req->table->name };
    v_send(s, SIDE_SRC, "looking up the table's primary key", v_key_sql, 2, params, v_on_keys);
}

/* ---- keyless: the whole table ------------------------------------------- */

static char *v_whole_sql(const v_step_t *s)
{
    return xasprintf("SELECT pg_catalog.count(*) AS n,"
                     " pg_catalog.md5(COALESCE(pg_catalog.string_agg(x.h, ''"
                     " ORDER BY x.h COLLATE pg_catalog.\"C\"), '')) AS md5"
                     " FROM (SELECT " V_ROW_MD5 " AS h FROM %s t) x",
                     s->table_sql);
}

static void v_on_whole(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_side_t side = c == s->conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST;
    s->total[side] = pgconn_col_u64(r->res, 0, "n");
    snprintf(s->whole_md5[side], sizeof s->whole_md5[side], "%s", pgconn_col_str(r->res, 0, "md5"));
    if (s->whole_reading)
        snprintf(s->whole_reading, 80, "%" PRIu64 " %s", s->total[side], s->whole_md5[side]);
    v_maybe_then(s);
}

static void v_whole_round(v_step_t *s);

static void v_whole_judge(v_step_t *s)
{
    s->whole_reading = NULL;
    s->result->rounds++;
    bool t_s1 = strcmp(s->whole_t, s->whole_s1) == 0, t_s2 = strcmp(s->whole_t, s->whole_s2) == 0;
    if (t_s1 || t_s2) {
        v_done_ok(s);
        return;
    }
    if (strcmp(s->whole_s1, s->whole_s2) == 0) {
        /* The source held still around the target's read: a real difference. */
        unsigned long long sn = 0, tn = 0;
        sscanf(s->whole_s1, "%llu", &sn);
        sscanf(s->whole_t, "%llu", &tn);
        v_str_set(&s->result->detail, xasprintf("no primary key: %llu rows on the source, %llu on the "
                                      "target, and the rows differ", sn, tn));
        s->result->diff_count = sn > tn ? sn - tn : tn > sn ? tn - sn : 1;
        v_done_ok(s);
        return;
    }
    if (s->result->rounds >= s->rounds) {
        s->unsettled = 1;
        v_str_set(&s->result->detail, xstrdup("no primary key and its rows kept changing: "
                                              "compare it again once writes stop"));
        v_done_ok(s);
        return;
    }
    v_whole_round(s);
}

static void v_whole_s2_end(v_step_t *s)
{
    s->then = v_whole_judge;
    v_send(s, SIDE_SRC, "ending the read", "COMMIT", 0, NULL, v_on_plain);
}

static void v_whole_s2(v_step_t *s)
{
    s->then = v_whole_s2_end;
    s->whole_reading = s->whole_s2;
    char *sql = v_whole_sql(s);
    v_send(s, SIDE_SRC, "summing the table", sql, 0, NULL, v_on_whole);
    free(sql);
}

static void v_whole_t_end(v_step_t *s)
{
    s->then = NULL;
    if (!v_send(s, SIDE_DST, "ending the read", "COMMIT", 0, NULL, v_on_plain))
        return;
    v_src_snapshot(s, v_whole_s2);
}

static void v_whole_t(v_step_t *s)
{
    s->then = v_whole_t_end;
    s->whole_reading = s->whole_t;
    char *sql = v_whole_sql(s);
    v_send(s, SIDE_DST, "summing the table", sql, 0, NULL, v_on_whole);
    free(sql);
}

static void v_whole_t_snap(v_step_t *s)
{
    v_dst_snapshot(s, v_whole_t);
}

static void v_whole_wait(v_step_t *s)
{
    v_wait(s, v_whole_t_snap);
}

static void v_whole_s1_end(v_step_t *s)
{
    s->then = v_whole_wait;
    v_send(s, SIDE_SRC, "ending the read", "COMMIT", 0, NULL, v_on_plain);
}

static void v_whole_s1(v_step_t *s)
{
    s->then = v_whole_s1_end;
    s->whole_reading = s->whole_s1;
    char *sql = v_whole_sql(s);
    v_send(s, SIDE_SRC, "summing the table", sql, 0, NULL, v_on_whole);
    free(sql);
}

static void v_whole_round(v_step_t *s)
{
    v_src_snapshot(s, v_whole_s1);
}

static void v_whole_pass_judge(v_step_t *s)
{
    s->result->source_rows = s->total[SIDE_SRC];
    s->result->target_rows = s->total[SIDE_DST];
    s->result->chunks = 1;
    if (s->total[SIDE_SRC] == s->total[SIDE_DST] &&
        strcmp(s->whole_md5[SIDE_SRC], s->whole_md5[SIDE_DST]) == 0) {
        v_done_ok(s);
        return;
    }
    s->result->chunks_rechecked = 1;
    v_whole_round(s);
}

static void v_whole_pass_end(v_step_t *s)
{
    v_end_reads(s, v_whole_pass_judge);
}

static void v_whole_pass(v_step_t *s)
{
    s->then = v_whole_pass_end;
    s->whole_reading = NULL;
    char *sql = v_whole_sql(s);
    if (v_send(s, SIDE_SRC, "summing the table", sql, 0, NULL, v_on_whole))
        v_send(s, SIDE_DST, "summing the table", sql, 0, NULL, v_on_whole);
    free(sql);
}

/* ---- with a key: the pass ----------------------------------------------- */

static void v_range_round(v_step_t *s);

static void v_on_chunks(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_side_t side = c == s->conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST;
    int n = PQntuples(r->res);
    v_chunk_t *ch = xcalloc(n ? (size_t)n : 1, sizeof *ch);
    for (int i = 0; i < n; i++) {
        ch[i].rows = pgconn_col_u64(r->res, i, "n");
        snprintf(ch[i].md5, sizeof ch[i].md5, "%s", pgconn_col_str(r->res, i, "md5"));
        ch[i].first = xcalloc(s->n_keys, sizeof *ch[i].first);
        for (size_t k = 0; k < s->n_keys; k++)
            ch[i].first[k] = xstrdup(PQgetvalue(r->res, i, 2 + (int)k));
        s->total[side] += ch[i].rows;
    }
    s->chunks[side] = ch;
    s->n_chunks[side] = (size_t)n;
    v_maybe_then(s);
}

static bool v_key_equal(char *const *a, char *const *b, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(a[k], b[k]) != 0)
            return false;
    return true;
}

/* Compares the pass's chunks: the source chunks without an identical target
 * chunk at the same place become key ranges to look at again. */
static void v_chunk_judge(v_step_t *s)
{
    Godwit__VerifyTableResult *res = s->result;
    size_t ns = s->n_chunks[SIDE_SRC], nd = s->n_chunks[SIDE_DST];
    const v_chunk_t *cs = s->chunks[SIDE_SRC], *cd = s->chunks[SIDE_DST];
    res->source_rows = s->total[SIDE_SRC];
    res->target_rows = s->total[SIDE_DST];
    res->chunks = (uint32_t)(ns > nd ? ns : nd);
    s->ranges = xcalloc(ns ? ns : 1, sizeof *s->ranges);
    if (ns == 0) {
        if (nd > 0) /* every target row is extra: one open range */
            s->ranges[s->n_ranges++] = (v_range_t){ NULL, NULL, false };
    } else {
        for (size_t i = 0; i < ns; i++) {
            bool same = i < nd && cs[i].rows == cd[i].rows && strcmp(cs[i].md5, cd[i].md5) == 0 &&
                        v_key_equal(cs[i].first, cd[i].first, s->n_keys);
            /* Target chunks past the source's last all fall in its open range. */
            if (i == ns - 1 && nd > ns)
                same = false;
            if (!same)
                s->ranges[s->n_ranges++] = (v_range_t){ i ? cs[i].first : NULL,
                                                        i + 1 < ns ? cs[i + 1].first : NULL,
                                                        false };
        }
    }
    res->chunks_rechecked = (uint32_t)s->n_ranges;
    if (s->n_ranges == 0) {
        v_done_ok(s);
        return;
    }
    v_range_round(s);
}

static void v_chunk_pass_end(v_step_t *s)
{
    v_end_reads(s, v_chunk_judge);
}

static void v_chunk_pass(v_step_t *s)
{
    /* rn: a row's place in key order; a chunk is chunk_rows of them; its
     * sum is the md5 of its rows' md5s in key order; its first key comes
     * back as text, one column per key column. */
    char *firsts = xstrdup("");
    for (size_t k = 0; k < s->n_keys; k++) {
        char *grown = xasprintf("%s, pg_catalog.max(CASE WHEN (r.rn - 1) %% $1::pg_catalog.int8 = 0"
                                " THEN r.k%zu END) AS k%zu", firsts, k + 1, k + 1);
        free(firsts);
        firsts = grown;
    }
    char *sql = xasprintf(
        "SELECT pg_catalog.count(*) AS n,"
        " pg_catalog.md5(pg_catalog.string_agg(r.h, '' ORDER BY r.rn)) AS md5%s"
        " FROM (SELECT %s, " V_ROW_MD5 " AS h,"
        "   pg_catalog.row_number() OVER (ORDER BY %s) AS rn FROM %s t) r"
        " GROUP BY (r.rn - 1) / $1::pg_catalog.int8 ORDER BY (r.rn - 1) / $1::pg_catalog.int8",
        firsts, s->key_text, s->key_order, s->table_sql);
    free(firsts);
    char rows[16];
    snprintf(rows, sizeof rows, "%u", s->chunk_rows);
    const char *params[1] = { rows };
    s->then = v_chunk_pass_end;
    if (v_send(s, SIDE_SRC, "summing the table in chunks", sql, 1, params, v_on_chunks))
        v_send(s, SIDE_DST, "summing the table in chunks", sql, 1, params, v_on_chunks);
    free(sql);
}

/* ---- with a key: ranges summed again ------------------------------------ */

static void v_row_round(v_step_t *s);

static size_t v_undone(const v_step_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_ranges; i++)
        n += !s->ranges[i].done;
    return n;
}

static void v_on_range_sum(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_side_t side = c == s->conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST;
    s->range_rows[side][0] = pgconn_col_u64(r->res, 0, "n");
    snprintf(s->range_md5[side][0], 33, "%s", pgconn_col_str(r->res, 0, "md5"));
    v_maybe_then(s);
}

static void v_range_round_end(v_step_t *s)
{
    s->range_round++;
    if (v_undone(s) == 0)
        v_done_ok(s);
    else if (s->range_round < V_RANGE_ROUNDS)
        v_range_round(s);
    else
        v_row_round(s);
}

static void v_range_next(v_step_t *s);

static void v_range_send(v_step_t *s)
{
    const v_range_t *rg = &s->ranges[s->next];
    const char **params = xcalloc(2 * s->n_keys + 1, sizeof *params);
    int np = 0;
    char *where = v_range_where(s, rg, params, &np);
    char *sql = xasprintf("SELECT pg_catalog.count(*) AS n, pg_catalog.md5(COALESCE("
                          "pg_catalog.string_agg(" V_ROW_MD5 ", '' ORDER BY %s), '')) AS md5"
                          " FROM %s t%s",
                          s->key_order, s->table_sql, where);
    s->then = v_range_next;
    if (v_send(s, SIDE_SRC, "summing a key range", sql, np, params, v_on_range_sum))
        v_send(s, SIDE_DST, "summing a key range", sql, np, params, v_on_range_sum);
    free(sql);
    free(where);
    free(params);
}

/* After the sums of range `next` (if one was sent), on to the next undone
 * range; at the end, the reads end. */
static void v_range_next(v_step_t *s)
{
    if (s->next < s->n_ranges) {
        if (s->range_rows[SIDE_SRC][0] == s->range_rows[SIDE_DST][0] &&
            strcmp(s->range_md5[SIDE_SRC][0], s->range_md5[SIDE_DST][0]) == 0)
            s->ranges[s->next].done = true;
        s->next++;
    }
    while (s->next < s->n_ranges && s->ranges[s->next].done)
        s->next++;
    if (s->next >= s->n_ranges) {
        v_end_reads(s, v_range_round_end);
        return;
    }
    v_range_send(s);
}

static void v_range_first(v_step_t *s)
{
    s->next = 0;
    while (s->next < s->n_ranges && s->ranges[s->next].done)
        s->next++;
    if (s->next >= s->n_ranges) {
        v_end_reads(s, v_range_round_end);
        return;
    }
    v_range_send(s);
}

static void v_range_round(v_step_t *s)
{
    v_pair(s, v_range_first);
}

/* ---- with a key: rows between two source reads -------------------------- */

static void v_on_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    int n = PQntuples(r->res);
    size_t range = s->batch[s->next];
    for (int i = 0; i < n; i++)
        v_rows_add(s->reading, v_key_encode(r->res, i, s->n_keys),
                   PQgetvalue(r->res, i, (int)s->n_keys), range);
    s->next++;
    v_maybe_then(s);
}

static void v_rows_next(v_step_t *s)
{
    if (s->next >= s->n_batch) {
        s->then = s->rows_then;
        v_send(s, s->reading_side, "ending the read", "COMMIT", 0, NULL, v_on_plain);
        return;
    }
    const v_range_t *rg = &s->ranges[s->batch[s->next]];
    const char **params = xcalloc(2 * s->n_keys + 1, sizeof *params);
    int np = 0;
    char *where = v_range_where(s, rg, params, &np);
    char *sql = xasprintf("SELECT %s, " V_ROW_MD5 " AS h FROM %s t%s", s->key_text, s->table_sql,
                          where);
    s->then = v_rows_next;
    v_send(s, s->reading_side, "reading the rows of a key range", sql, np, params, v_on_rows);
    free(sql);
    free(where);
    free(params);
}

/* Reads the batch's rows on side into set (in the snapshot already taken),
 * ends the read, then runs then. */
static void v_rows_read(v_step_t *s, v_side_t side, v_rows_t *set, v_fn then)
{
    v_rows_clear(set);
    s->reading = set;
    s->reading_side = side;
    s->rows_then = then;
    s->next = 0;
    v_rows_next(s);
}

/* The row's md5 in a sorted set, or NULL if the key is not there. */
static const char *v_rows_find(const v_rows_t *set, const char *key)
{
    v_row_t probe = { .key = (char *)key };
    const v_row_t *hit = set->n ? bsearch(&probe, set->v, set->n, sizeof *set->v, v_row_cmp) : NULL;
    return hit ? hit->md5 : NULL;
}

static bool v_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Judges one key seen in any of the three reads; false if it was in flux. */
static bool v_judge_key(v_step_t *s, const char *key)
{
    const char *a = v_rows_find(&s->s1, key), *t = v_rows_find(&s->t, key),
               *b = v_rows_find(&s->s2, key);
    if (v_same(t, a) || v_same(t, b))
        return true;
    if (!v_same(a, b))
        return false;
    if (v_rows_find(&s->found, key))
        return true;
    v_diff_add(s, key, !t ? "missing_on_target" : !a ? "extra_on_target" : "changed");
    /* Each key is judged once per round: sorted at the round's end. */
    v_rows_add(&s->found, xstrdup(key), "", 0);
    return true;
}

static void v_row_judge(v_step_t *s)
{
    v_rows_t *sets[3] = { &s->s1, &s->t, &s->s2 };
    for (int i = 0; i < 3; i++)
        v_rows_sort(sets[i]);
    for (size_t i = 0; i < s->n_batch; i++)
        s->ranges[s->batch[i]].done = true;
    uint64_t in_flux = 0;
    for (int i = 0; i < 3; i++) {
        for (size_t j = 0; j < sets[i]->n; j++) {
            const v_row_t *row = &sets[i]->v[j];
            /* Each key once: judged where it is first seen. */
            if ((i >= 1 && v_rows_find(&s->s1, row->key)) ||
                (i == 2 && v_rows_find(&s->t, row->key)))
                continue;
            if (!v_judge_key(s, row->key)) {
                in_flux++;
                s->ranges[row->range].done = false;
            }
        }
    }
    v_rows_sort(&s->found);
    s->row_round++;
    s->result->rounds = s->row_round;
    if (v_undone(s) == 0) {
        v_done_ok(s);
        return;
    }
    if (s->row_round >= s->rounds) {
        s->unsettled = in_flux;
        v_done_ok(s);
        return;
    }
    v_row_round(s);
}

static void v_row_s2(v_step_t *s)
{
    v_rows_read(s, SIDE_SRC, &s->s2, v_row_judge);
}

static void v_row_t_done(v_step_t *s)
{
    v_src_snapshot(s, v_row_s2);
}

static void v_row_tgt(v_step_t *s)
{
    v_rows_read(s, SIDE_DST, &s->t, v_row_t_done);
}

static void v_row_t_snap(v_step_t *s)
{
    v_dst_snapshot(s, v_row_tgt);
}

static void v_row_s1_done(v_step_t *s)
{
    v_wait(s, v_row_t_snap);
}

static void v_row_s1(v_step_t *s)
{
    v_rows_read(s, SIDE_SRC, &s->s1, v_row_s1_done);
}

static void v_row_round(v_step_t *s)
{
    s->n_batch = 0;
    for (size_t i = 0; i < s->n_ranges && s->n_batch < V_RANGES_PER_ROUND; i++)
        if (!s->ranges[i].done)
            s->batch[s->n_batch++] = i;
    v_src_snapshot(s, v_row_s1);
}

/* ---- start -------------------------------------------------------------- */

static void v_pass(v_step_t *s)
{
    v_pair(s, s->n_keys ? v_chunk_pass : v_whole_pass);
}

static void v_connect(v_step_t *s)
{
    s->then = s->first;
    for (int side = 0; side < 2; side++) {
        int rc = pgconn_connect(s->conn[side], s->connect_timeout_ms, v_on_connect, s);
        if (rc != 0) {
            v_failf(s, "cannot start connecting: %s%s", strerror(-rc), "");
            return;
        }
        s->pending++;
    }
}

static void v_on_kick(uv_timer_t *t)
{
    v_connect(t->data);
}

static bool v_set(const char *v)
{
    return v && v[0];
}

/* The verify session settings: read-only, pinned output formats; for the
 * catalog comparisons (catalog), no JIT: the planner's estimates for the
 * access catalog's recursive query make it compile for a second or more
 * what runs in milliseconds. Caller frees. */
static char *v_options(uint64_t timeout_ms, bool catalog)
{
    return xasprintf("-c statement_timeout=%" PRIu64 " -c search_path="
                     " -c default_transaction_read_only=on%s" V_PRINT_OPTIONS,
                     timeout_ms, catalog ? " -c jit=off" : "");
}

/* A step with both connections (not yet connecting): the source through
 * source (the peer it names, step_remote_conn), the target's database
 * locally. NULL for invalid arguments. */
static v_step_t *v_new(uv_loop_t *loop, const step_local_t *local, const char *database,
                       const Godwit__ReplicationConn *source, uint64_t timeout_ms, bool catalog,
                       char *label, step_done_cb done, void *arg)
{
    if (!loop || !local || !v_set(local->host) || local->port < 1 || local->port > 65535 ||
        local->connect_timeout_ms <= 0 || !v_set(database) || !source || !v_set(source->peer) ||
        !v_set(source->dbname) || !done) {
        free(label);
        return NULL;
    }
    v_step_t *s = xcalloc(1, sizeof *s);
    s->timeout_ms = timeout_ms ? timeout_ms : V_DEFAULT_TIMEOUT_MS;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    char *options = v_options(s->timeout_ms, catalog);
    s->conn[SIDE_SRC] = step_remote_conn(loop, "verify source", local, source, false,
                                         "godwit-verify", options);
    s->conn[SIDE_DST] = step_local_conn(loop, "verify target", local, database, "godwit-verify",
                                        options);
    free(options);
    if (!s->conn[SIDE_SRC] || !s->conn[SIDE_DST]) {
        pgconn_destroy(&s->conn[SIDE_SRC]);
        pgconn_destroy(&s->conn[SIDE_DST]);
        free(s);
        free(label);
        return NULL;
    }
    s->base.cancel = v_cancel;
    s->loop = loop;
    s->done = done;
    s->arg = arg;
    s->started_ms = units_mono_ms();
    s->label = label;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    return s;
}

step_t *table_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg)
{
    if (!req || !req->table || !v_set(req->table->schema) || !v_set(req->table->name) ||
        !v_set(req->subscription) || !v_set(req->slot))
        return NULL;
    v_step_t *s = v_new(loop, local, req->database, req->source, req->timeout_ms, false,
                        xasprintf("table %s.%s", req->table->schema, req->table->name), done, arg);
    if (!s)
        return NULL;
    s->req = wire_copy(req);
    if (!s->req) {
        v_dispose(s);
        return NULL;
    }
    s->chunk_rows = req->chunk_rows ? req->chunk_rows : V_DEFAULT_CHUNK_ROWS;
    s->rounds = req->rounds ? req->rounds : V_DEFAULT_ROUNDS;
    s->result = xmalloc(sizeof *s->result);
    godwit__verify_table_result__init(s->result);
    s->result->table = xmalloc(sizeof *s->result->table);
    godwit__table_ref__init(s->result->table);
    s->result->table->schema = xstrdup(req->table->schema);
    s->result->table->name = xstrdup(req->table->name);
    s->first = v_keys;
    uv_timer_start(&s->timer, v_on_kick, 0, 0);
    return &s->base;
}

/* ---- VerifySchema ------------------------------------------------------- */

/* Every user table (or those in $1, a JSON array of [schema, name]) with its
 * columns, constraints and the indexes that no constraint owns, as one JSON
 * document; names come back raw and quoted (quote_ident) for statements. */
static const char v_catalog_sql[] =
    "SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "  'schema', n.nspname, 'name', c.relname,"
    "  'q', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
    "  'columns', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', a.attname, 'q', pg_catalog.quote_ident(a.attname),"
    "      'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'notnull', a.attnotnull,"
    "      'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')"
    "    FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d"
    "      ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "  'constraints', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', co.conname, 'q', pg_catalog.quote_ident(co.conname),"
    "      'def', pg_catalog.pg_get_constraintdef(co.oid)) ORDER BY co.conname), '[]')"
    "    FROM pg_catalog.pg_constraint co WHERE co.conrelid = c.oid),"
    "  'indexes', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', ic.relname, 'q', pg_catalog.quote_ident(n.nspname) || '.' ||"
    "      pg_catalog.quote_ident(ic.relname), 'def', pg_catalog.pg_get_indexdef(i.indexrelid))"
    "      ORDER BY ic.relname), '[]')"
    "    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    "    WHERE i.indrelid = c.oid AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
    "      WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid))"
    ") ORDER BY n.nspname, c.relname), '[]')::pg_catalog.text AS catalog"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'"
    " AND n.nspname !~ '^pg_'"
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid ="
    "   'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')"
    " AND (pg_catalog.jsonb_array_length($1::pg_catalog.jsonb) = 0 OR EXISTS (SELECT 1"
    "   FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) w"
    "   WHERE w->>0 = n.nspname AND w->>1 = c.relname))";

static void v_finding(v_step_t *s, const cJSON *table, const char *object_suffix,
                      bool rows_affected, char *problem_taken, char *statement_taken)
{
    Godwit__VerifySchemaResult *res = s->sres;
    Godwit__SchemaFinding *f = xmalloc(sizeof *f);
    godwit__schema_finding__init(f);
    const char *schema = cJSON_GetStringValue(cJSON_GetObjectItem(table, "schema"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(table, "name"));
    f->object = object_suffix ? xasprintf("%s.%s.%s", schema, name, object_suffix)
                              : xasprintf("%s.%s", schema, name);
    f->problem = problem_taken;
    f->statement = statement_taken;
    f->table = xmalloc(sizeof *f->table);
    godwit__table_ref__init(f->table);
    f->table->schema = xstrdup(schema);
    f->table->name = xstrdup(name);
    f->rows_affected = rows_affected;
    res->findings = xrealloc(res->findings, (res->n_findings + 1) * sizeof *res->findings);
    res->findings[res->n_findings++] = f;
}

static const char *v_js(const cJSON *o, const char *key)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return v ? v : "";
}

/* The item of list whose "name" is name, or NULL. */
static const cJSON *v_by_name(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (strcmp(v_js(it, "name"), name) == 0)
            return it;
    return NULL;
}

/* "col type [NOT NULL] [DEFAULT expr]". Caller frees. */
static char *v_column_def(const cJSON *col)
{
    const cJSON *dflt = cJSON_GetObjectItem(col, "default");
    return xasprintf("%s %s%s%s%s", v_js(col, "q"), v_js(col, "type"),
                     cJSON_IsTrue(cJSON_GetObjectItem(col, "notnull")) ? " NOT NULL" : "",
                     cJSON_IsString(dflt) ? " DEFAULT " : "",
                     cJSON_IsString(dflt) ? dflt->valuestring : "");
}

static void v_compare_columns(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const char *q = v_js(st, "q");
    const cJSON *scols = cJSON_GetObjectItem(st, "columns"), *dcols = cJSON_GetObjectItem(dt, "columns");
    const cJSON *c;
    cJSON_ArrayForEach(c, scols) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dcols, name);
        if (!d) {
            char *def = v_column_def(c);
            v_finding(s, st, name, true, xasprintf("column %s exists on the source only", name),
                      xasprintf("ALTER TABLE %s ADD COLUMN %s;", q, def));
            free(def);
            continue;
        }
        if (strcmp(v_js(c, "type"), v_js(d, "type")) != 0)
            v_finding(s, st, name, true,
                      xasprintf("column %s is %s on the source, %s on the target", name,
                                v_js(c, "type"), v_js(d, "type")),
                      xasprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s;", q, v_js(c, "q"),
                                v_js(c, "type")));
        bool sn = cJSON_IsTrue(cJSON_GetObjectItem(c, "notnull"));
        if (sn != cJSON_IsTrue(cJSON_GetObjectItem(d, "notnull")))
            v_finding(s, st, name, false,
                      xasprintf("column %s is %s on the source only", name,
                                sn ? "NOT NULL" : "nullable"),
                      xasprintf("ALTER TABLE %s ALTER COLUMN %s %s NOT NULL;", q, v_js(c, "q"),
                                sn ? "SET" : "DROP"));
        const cJSON *sd = cJSON_GetObjectItem(c, "default"), *dd = cJSON_GetObjectItem(d, "default");
        const char *sdv = cJSON_IsString(sd) ? sd->valuestring : NULL;
        const char *ddv = cJSON_IsString(dd) ? dd->valuestring : NULL;
        if (!v_same(sdv, ddv))
            v_finding(s, st, name, false,
                      xasprintf("column %s's default is %s on the source, %s on the target", name,
                                sdv ? sdv : "none", ddv ? ddv : "none"),
                      sdv ? xasprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;", q,
                                      v_js(c, "q"), sdv)
                          : xasprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT;", q,
                                      v_js(c, "q")));
    }
    cJSON_ArrayForEach(c, dcols) {
        const char *name = v_js(c, "name");
        if (!v_by_name(scols, name))
            v_finding(s, st, name, true, xasprintf("column %s exists on the target only", name),
                      xasprintf("ALTER TABLE %s DROP COLUMN %s;", q, v_js(c, "q")));
    }
}

static void v_compare_constraints(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const char *q = v_js(st, "q");
    const cJSON *sl = cJSON_GetObjectItem(st, "constraints"), *dl = cJSON_GetObjectItem(dt, "constraints");
    const cJSON *c;
    cJSON_ArrayForEach(c, sl) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dl, name);
        if (!d)
            v_finding(s, st, name, false, xasprintf("constraint %s exists on the source only", name),
                      xasprintf("ALTER TABLE %s ADD CONSTRAINT %s %s;", q, v_js(c, "q"),
                                v_js(c, "def")));
        else if (strcmp(v_js(c, "def"), v_js(d, "def")) != 0)
            v_finding(s, st, name, false,
                      xasprintf("constraint %s is %s on the source, %s on the target", name,
                                v_js(c, "def"), v_js(d, "def")),
                      xasprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s;", q,
                                v_js(c, "q"), v_js(c, "q"), v_js(c, "def")));
    }
    cJSON_ArrayForEach(c, dl) {
        const char *name = v_js(c, "name");
        if (!v_by_name(sl, name))
            v_finding(s, st, name, false, xasprintf("constraint %s exists on the target only", name),
                      xasprintf("ALTER TABLE %s DROP CONSTRAINT %s;", q, v_js(c, "q")));
    }
}

static void v_compare_indexes(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const cJSON *sl = cJSON_GetObjectItem(st, "indexes"), *dl = cJSON_GetObjectItem(dt, "indexes");
    const cJSON *c;
    cJSON_ArrayForEach(c, sl) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dl, name);
        if (!d)
            v_finding(s, st, name, false, xasprintf("index %s exists on the source only", name),
                      xasprintf("%s;", v_js(c, "def")));
        else if (strcmp(v_js(c, "def"), v_js(d, "def")) != 0)
            v_finding(s, st, name, false,
                      xasprintf("index %s is \"%s\" on the source, \"%s\" on the target", name,
                                v_js(c, "def"), v_js(d, "def")),
                      xasprintf("DROP INDEX %s; %s;", v_js(c, "q"), v_js(c, "def")));
    }
    cJSON_ArrayForEach(c, dl) {
        const char *name = v_js(c, "name");
        if (!v_by_name(sl, name))
            v_finding(s, st, name, false, xasprintf("index %s exists on the target only", name),
                      xasprintf("DROP INDEX %s;", v_js(c, "q")));
    }
}

/* The table of list with the same schema and name as t, or NULL. */
static const cJSON *v_same_table(const cJSON *list, const cJSON *t)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (strcmp(v_js(it, "schema"), v_js(t, "schema")) == 0 &&
            strcmp(v_js(it, "name"), v_js(t, "name")) == 0)
            return it;
    return NULL;
}

static void v_access_read(v_step_t *s);

static void v_schema_compare(v_step_t *s)
{
    const cJSON *src = s->catalog[SIDE_SRC], *dst = s->catalog[SIDE_DST];
    const cJSON *st;
    cJSON_ArrayForEach(st, src) {
        s->sres->tables++;
        const cJSON *dt = v_same_table(dst, st);
        if (!dt) {
            /* The whole table, to create on the target; its rows are not
             * replicated until the publication and subscription include it. */
            char *cols = xstrdup("");
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "columns")) {
                char *def = v_column_def(c);
                char *grown = xasprintf("%s%s%s", cols, cols[0] ? ", " : "", def);
                free(def);
                free(cols);
                cols = grown;
            }
            v_finding(s, st, NULL, true,
                      xstrdup("the table exists on the source only: it was created after the "
                              "schema phase and its rows are not being migrated"),
                      xasprintf("CREATE TABLE %s (%s); then add it to the migration (abort and "
                                "start again, or add it to the publication and refresh the "
                                "subscription)", v_js(st, "q"), cols));
            free(cols);
            continue;
        }
        v_compare_columns(s, st, dt);
        v_compare_constraints(s, st, dt);
        v_compare_indexes(s, st, dt);
    }
    v_access_read(s);
}

static void v_on_catalog(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_side_t side = c == s->conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "catalog") : NULL;
    s->catalog[side] = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsArray(s->catalog[side])) {
        v_failf(s, "reading the %s's catalog: not a JSON array", side == SIDE_SRC ? "source" : "target");
        return;
    }
    v_maybe_then(s);
}

static void v_schema_read(v_step_t *s)
{
    cJSON *want = cJSON_CreateArray();
    for (size_t i = 0; i < s->sreq->n_tables; i++) {
        const Godwit__TableRef *t = s->sreq->tables[i];
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(t && t->schema ? t->schema : ""));
        cJSON_AddItemToArray(pair, cJSON_CreateString(t && t->name ? t->name : ""));
        cJSON_AddItemToArray(want, pair);
    }
    char *json = cJSON_PrintUnformatted(want);
    cJSON_Delete(want);
    const char *params[1] = { json };
    s->then = v_schema_compare;
    if (v_send(s, SIDE_SRC, "reading the catalog", v_catalog_sql, 1, params, v_on_catalog))
        v_send(s, SIDE_DST, "reading the catalog", v_catalog_sql, 1, params, v_on_catalog);
    cJSON_free(json);
}

step_t *schema_verify_start(uv_loop_t *loop, const step_local_t *local,
                            const Godwit__VerifySchema *req, bool fenced, step_done_cb done,
                            void *arg)
{
    if (!req)
        return NULL;
    v_step_t *s = v_new(loop, local, req->database, req->source, 0, true,
                        xasprintf("schema of database %s", req->database), done, arg);
    if (!s)
        return NULL;
    s->sreq = wire_copy(req);
    if (!s->sreq) {
        v_dispose(s);
        return NULL;
    }
    s->sres = xmalloc(sizeof *s->sres);
    godwit__verify_schema_result__init(s->sres);
    s->roles_fenced = fenced;
    s->first = v_schema_read;
    uv_timer_start(&s->timer, v_on_kick, 0, 0);
    return &s->base;
}

/* ---- who owns what, who may do what (VerifySchema's second part, and
 * VerifyRoles): the access catalogs of both sides (access.h), the
 * source's first, whose roles the target's then describes too. */

static void v_access_finding(v_step_t *s, access_diff_t *d)
{
    Godwit__VerifySchemaResult *res = s->sres;
    Godwit__SchemaFinding *f = xmalloc(sizeof *f);
    godwit__schema_finding__init(f);
    f->object = d->object;
    f->problem = d->problem;
    f->statement = d->statement;
    d->object = d->problem = d->statement = NULL;
    res->findings = xrealloc(res->findings, (res->n_findings + 1) * sizeof *res->findings);
    res->findings[res->n_findings++] = f;
}

static void v_access_compare(v_step_t *s)
{
    access_quote_t q = access_quote_conn(s->conn[SIDE_DST]);
    access_diffs_t diffs = { 0 };
    char *err = NULL;
    if (!access_compare(s->access[SIDE_SRC], s->access[SIDE_DST], s->roles_fenced, &q, &diffs,
                        &err)) {
        access_diffs_free(&diffs);
        v_failf(s, "comparing roles and privileges: %s", err);
        free(err);
        return;
    }
    for (size_t i = 0; i < diffs.n; i++)
        if (diffs.v[i].kind != ACCESS_BOOTSTRAP) /* information: the names differ */
            v_access_finding(s, &diffs.v[i]);
    access_diffs_free(&diffs);
    if (s->rreq)
        s->sres->tables = (uint32_t)cJSON_GetArraySize(
            cJSON_GetObjectItemCaseSensitive(s->access[SIDE_SRC], "roles"));
    v_finish(s, NULL);
}

/* Stores a side's access catalog; false after ending the step. */
static bool v_access_store(v_step_t *s, v_side_t side, const pgconn_result_t *r)
{
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "access") : NULL;
    char *err = NULL;
    s->access[side] = access_parse(text, &err);
    if (!s->access[side]) {
        v_failf(s, "reading the %s's roles and privileges: %s",
                side == SIDE_SRC ? "source" : "target", err ? err : "no answer");
        free(err);
        return false;
    }
    return true;
}

static void v_on_access_dst(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r) || !v_access_store(s, SIDE_DST, r))
        return;
    v_access_compare(s);
}

static void v_on_access_src(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r) || !v_access_store(s, SIDE_SRC, r))
        return;
    char *names = access_role_names(s->access[SIDE_SRC]);
    const char *params[1] = { names };
    v_send(s, SIDE_DST, "reading the roles and privileges", access_catalog_sql, 1, params,
           v_on_access_dst);
    free(names);
}

static void v_access_read(v_step_t *s)
{
    char *const *roles = s->rreq ? s->rreq->roles : s->sreq->app_roles;
    size_t n = s->rreq ? s->rreq->n_roles : s->sreq->n_app_roles;
    char *list = pgconn_text_array(roles, n);
    const char *params[1] = { list };
    v_send(s, SIDE_SRC, "reading the roles and privileges", access_catalog_sql, 1, params,
           v_on_access_src);
    free(list);
}

step_t *roles_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyRoles *req, bool fenced, step_done_cb done,
                           void *arg)
{
    if (!req || req->n_roles == 0)
        return NULL;
    v_step_t *s = v_new(loop, local, req->database, req->source, 0, true,
                        xasprintf("roles in database %s", req->database), done, arg);
    if (!s)
        return NULL;
    s->rreq = wire_copy(req);
    if (!s->rreq) {
        v_dispose(s);
        return NULL;
    }
    s->sres = xmalloc(sizeof *s->sres);
    godwit__verify_schema_result__init(s->sres);
    s->roles_fenced = fenced;
    s->first = v_access_read;
    uv_timer_start(&s->timer, v_on_kick, 0, 0);
    return &s->base;
}
