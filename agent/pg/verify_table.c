/*
 * verify_table: the target agent's VerifyTable step (phase 6): one table's
 * rows compared, source against target, while the application writes and
 * replication runs, both sides as of one replication position. See the
 * VerifyTable message in proto/godwit.proto for the contract and
 * docs/migrate.md#verify for the reasoning and the figures.
 *
 * Three connections: `src` to the source database (the replication role's
 * credentials; it can read every published table, and pg_logical_slot_peek_*
 * needs the REPLICATION attribute it has), `repl`, a replication connection
 * to the same database, and `dst` to the local target database. src and dst
 * read only, in REPEATABLE READ snapshots, with the settings that change how
 * a value prints pinned and client_encoding UTF8, so both sides and the WAL
 * decoded on src print a row the same way.
 *
 * Per batch of at most batch_rows rows in key order (one batch for a
 * multiset):
 *   1. repl: CREATE_REPLICATION_SLOT <verify slot> LOGICAL pgoutput
 *      EXPORT_SNAPSHOT. The exported snapshot shows exactly the
 *      transactions that committed before the slot's consistent point X;
 *      the slot decodes every one after. Creating it waits for the
 *      transactions running on the source to end: bounded by slot_wait_ms,
 *      after which our walsender is terminated and the step fails naming
 *      the oldest transactions that held it (an idle-in-transaction
 *      session, typically).
 *   2. src: a REPEATABLE READ transaction importing that snapshot.
 *   3. wait until the target has applied X (our subscription's origin
 *      progress on the target, or our subscription slot's confirmed
 *      position on the source when the source commits nothing published).
 *   4. dst: a REPEATABLE READ transaction whose first statement reads the
 *      origin progress: the snapshot is taken before it runs, so what it
 *      reads, Y, bounds every source commit the snapshot shows (apply
 *      advances the origin before its commit becomes visible). Y is at
 *      least X.
 *   5. src: the slot's changes up to Y (pg_logical_slot_peek_binary_changes,
 *      pgoutput protocol 1, our publication), parsed (pgoutput.c) into the
 *      table's window (vwindow.c); then repl drops the slot. The slot lives
 *      only from 1 to here (window_ms): WAL it holds back is that of the
 *      replication lag, not of the comparison.
 *   6. both sides sum chunks of chunk_rows rows in key order at once; the
 *      source's chunks whose target twin differs are summed again on the
 *      target by the source's chunk bounds (width_bucket); the rows of those
 *      still differing are read on both sides as (key, hash). A key whose
 *      hashes differ is judged against the window: consistent when the
 *      target's row is the source's at X or a version the window gave it
 *      (its unchanged TOASTed values filled in from the version before,
 *      the source's row at X read for it when needed); otherwise different,
 *      with its key. Never "in flux": both snapshots hold still.
 *   7. both transactions end; the next batch starts at the first key the
 *      source's pass did not reach.
 * The key: the replica identity index (REPLICA IDENTITY USING INDEX), else
 * the primary key, else a unique index on NOT NULL columns; without one the
 * table is a multiset, compared by 256 buckets of row hashes (count and two
 * sums), explained by a prefix of the window's transactions
 * (vwindow_multiset_match), and when none explains it the rows of the
 * buckets that differ are read and the rows that differ reported by value.
 * A partitioned table is compared through its root, as our publication
 * publishes it (publish_via_partition_root).
 *
 * SQL: names go into the text only through PQescapeIdentifier, types only
 * as the server's own format_type(), values as parameters; the replication
 * commands and SET TRANSACTION SNAPSHOT take no parameters: the slot's name
 * through PQescapeIdentifier and the snapshot's through PQescapeLiteral.
 *
 * Owns: the three connections, a timer (the first stage one loop turn after
 * the start, the slot's bound, the waits), a copy of the request, the
 * batch's chunks, rows and window, and the result being built. Freed in the
 * timer's close callback; each pgconn frees itself once closed. Never calls
 * done twice or after step_cancel(), never blocks the loop, and leaves no
 * slot behind but when the agent dies mid-batch (then the next verify,
 * cleanup or abort drops it: the coordinator names it in DropObjects).
 */
#include "steprun.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "rowcheck.h"
#include "units.h"
#include "vwindow.h"
#include "wire.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_DEFAULT_CHUNK_ROWS 5000
#define T_DEFAULT_BATCH_ROWS 500000
#define T_DEFAULT_TIMEOUT_MS (3600 * 1000)
#define T_DEFAULT_SLOT_WAIT_MS 30000
#define T_MAX_DIFFS 100             /* reported rows; diff_count counts all */
#define T_MAX_RECENT 1000           /* keys for the final check */
#define T_VALUE_SHOWN 200           /* bytes of a multiset row's value in a report */
#define T_WAIT_POLL_MS 5
#define T_WAIT_LIMIT_MS 60000


typedef enum { SRC = 0, DST = 1, REPL = 2 } t_side_t;

static const char *const s_side_names[] = { "source", "target", "source (replication)" };

typedef struct t_step t_step_t;
typedef void (*t_fn)(t_step_t *s);

/* A chunk of the pass: rows, the md5 of its rows' hashes in key order, its
 * first key (n_keys text values). */
typedef struct {
    uint64_t rows;
    char md5[33];
    char **first;
} t_chunk_t;

/* A row read as (key, hash). */
typedef struct {
    char *key;              /* encoded (vwindow_key_encode) */
    uint8_t hash[VWINDOW_HASH_LEN];
} t_row_t;

typedef struct {
    t_row_t *v;
    size_t n, cap;
} t_rows_t;

/* A row read whole: the source's row at X of a key that needs it, or a
 * multiset's row. */
typedef struct {
    char *key;              /* keyed: encoded; multiset: NULL */
    uint8_t hash[VWINDOW_HASH_LEN];
    char **values;          /* n_cols, NULL for SQL NULL */
} t_full_t;

typedef struct {
    t_full_t *v;
    size_t n, cap;
} t_fulls_t;

typedef struct {
    char *key;
    size_t prio;            /* lower: changed more recently */
} t_recent_t;

struct t_step {
    steprun_t run;              /* first: conn[SRC], conn[DST], conn[REPL], label, what */
    Godwit__VerifyTable *req;   /* our own copy */
    uint64_t connect_timeout_ms, timeout_ms, slot_wait_ms, started_ms;
    unsigned chunk_rows;
    uint64_t batch_rows;        /* a multiple of chunk_rows */
    unsigned pending;           /* statements in flight */
    t_fn then;                  /* runs when pending drops to 0 */

    /* The table, from the source's catalog. */
    size_t n_cols;
    char **cols;                /* compared: not dropped, not generated, attnum order */
    size_t n_keys;
    size_t *key_idx;            /* into cols */
    char **key_types;           /* format_type() of each key column */
    char *table_sql;            /* "schema"."name" */
    char *hash_sql;             /* the row's hash (bytea) */
    char *key_order;            /* t."a", t."b" */
    char *key_lhs;              /* t."a" or ROW(t."a", t."b") */
    char *key_text;             /* (t."a")::pg_catalog.text AS k1, ... */
    char *col_text;             /* (t."c")::pg_catalog.text AS c1, ... */
    char *bucket_sql;           /* width_bucket of the key over $1.. (the bounds) */
    char *key_names;            /* a1, a2, ...: the columns of a ROWS FROM of keys */
    char *key_join;             /* t."a" = w.a1 AND ... */

    /* The batch. */
    unsigned batch;             /* 1-based */
    char **lo;                  /* first key of the batch (n_keys), NULL: from the start */
    char **hi;                  /* first key of the next batch, NULL: the last batch */
    char *snapshot;
    uint64_t x, y;
    uint64_t slot_made_ms;
    bool slot_exists;           /* ours, made by this step and not dropped yet */
    bool create_retried;
    bool slot_timed_out;
    uint64_t wait_until_ms;
    vwindow_t *win;
    char **wk_arrays;           /* the window's keys: one text[] literal per key column */
    size_t n_wk;                /* how many keys */

    t_chunk_t *chunks[2];
    size_t n_chunks[2];
    uint64_t total[2];
    bool more;                  /* the source's pass found rows past the batch */
    bool counting;              /* s_on_rows: the rows read count toward the totals */
    bool *flag;                 /* per source chunk: differs */
    uint64_t *resum_rows;       /* per source chunk: the target's rows in its range */
    char (*resum_md5)[33];
    t_rows_t rows[2];
    t_fulls_t base_rows;        /* keyed: the source's rows at X of keys that need them */
    char **need;                /* encoded keys whose judging needs the source's row */
    size_t n_need;

    /* A multiset. */
    vwindow_bucket_t *buckets[2];
    bool mismatched[VWINDOW_BUCKETS];
    size_t prefix;
    t_fulls_t mrows[2];

    t_recent_t *recent;
    size_t n_recent, cap_recent;

    Godwit__VerifyTableResult *result;
};

/* ---- small things ------------------------------------------------------- */

static void s_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void s_rows_clear(t_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].key);
    r->n = 0;
}

static void s_rows_free(t_rows_t *r)
{
    s_rows_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

static t_row_t *s_rows_add(t_rows_t *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    t_row_t *row = &r->v[r->n++];
    memset(row, 0, sizeof *row);
    return row;
}

static int s_row_cmp(const void *a, const void *b)
{
    return strcmp(((const t_row_t *)a)->key, ((const t_row_t *)b)->key);
}

static void s_fulls_clear(t_fulls_t *f, size_t n_cols)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].key);
        for (size_t k = 0; k < n_cols; k++)
            free(f->v[i].values[k]);
        free(f->v[i].values);
    }
    f->n = 0;
}

static void s_fulls_free(t_fulls_t *f, size_t n_cols)
{
    s_fulls_clear(f, n_cols);
    free(f->v);
    f->v = NULL;
    f->cap = 0;
}

static t_full_t *s_fulls_add(t_fulls_t *f)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->v = xrealloc(f->v, f->cap * sizeof *f->v);
    }
    t_full_t *row = &f->v[f->n++];
    memset(row, 0, sizeof *row);
    return row;
}

static int s_full_cmp(const void *a, const void *b)
{
    return strcmp(((const t_full_t *)a)->key, ((const t_full_t *)b)->key);
}

static void s_chunks_free(t_chunk_t *c, size_t n, size_t n_keys)
{
    for (size_t i = 0; c && i < n; i++)
        s_strv_free(c[i].first, c[i].first ? n_keys : 0);
    free(c);
}

/* The key values of row `row` of res (columns k1..kn first): encoded. */
static char *s_key_of_result(const PGresult *res, int row, size_t n)
{
    char **v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t k = 0; k < n; k++)
        v[k] = PQgetvalue(res, row, (int)k);
    char *enc = vwindow_key_encode(v, n);
    free(v);
    return enc;
}

/* Columns from..from+n of row `row` as a values array (NULL for SQL NULL).
 * Caller frees each and the array. */
static char **s_values_of_result(const PGresult *res, int row, int from, size_t n)
{
    char **v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = PQgetisnull(res, row, from + (int)i) ? NULL
                                                     : xstrdup(PQgetvalue(res, row, from + (int)i));
    return v;
}

/* ---- finishing ---------------------------------------------------------- */

static void s_batch_reset(t_step_t *s)
{
    for (int side = 0; side < 2; side++) {
        s_chunks_free(s->chunks[side], s->n_chunks[side], s->n_keys);
        s->chunks[side] = NULL;
        s->n_chunks[side] = 0;
        s->total[side] = 0;
        s_rows_clear(&s->rows[side]);
        s_fulls_clear(&s->mrows[side], s->n_cols);
    }
    s_fulls_clear(&s->base_rows, s->n_cols);
    s_strv_free(s->need, s->n_need);
    s->need = NULL;
    s->n_need = 0;
    free(s->flag);
    free(s->resum_rows);
    free(s->resum_md5);
    s->flag = NULL;
    s->resum_rows = NULL;
    s->resum_md5 = NULL;
    vwindow_destroy(&s->win);
    s_strv_free(s->wk_arrays, s->wk_arrays ? s->n_keys : 0);
    s->wk_arrays = NULL;
    s->n_wk = 0;
    free(s->snapshot);
    s->snapshot = NULL;
    s->more = false;
    s->counting = false;
    s->create_retried = false;
}

static void s_release(steprun_t *run)
{
    t_step_t *s = (t_step_t *)run;
    s_batch_reset(s);
    if (s->req)
        godwit__verify_table__free_unpacked(s->req, NULL);
    if (s->result)
        godwit__verify_table_result__free_unpacked(s->result, NULL);
    s_strv_free(s->cols, s->n_cols);
    s_strv_free(s->key_types, s->n_keys);
    free(s->key_idx);
    s_strv_free(s->lo, s->lo ? s->n_keys : 0);
    s_strv_free(s->hi, s->hi ? s->n_keys : 0);
    s_rows_free(&s->rows[SRC]);
    s_rows_free(&s->rows[DST]);
    s_fulls_free(&s->base_rows, s->n_cols);
    s_fulls_free(&s->mrows[SRC], s->n_cols);
    s_fulls_free(&s->mrows[DST], s->n_cols);
    free(s->buckets[SRC]);
    free(s->buckets[DST]);
    for (size_t i = 0; i < s->n_recent; i++)
        free(s->recent[i].key);
    free(s->recent);
    free(s->table_sql);
    free(s->hash_sql);
    free(s->key_order);
    free(s->key_lhs);
    free(s->key_text);
    free(s->col_text);
    free(s->bucket_sql);
    free(s->key_names);
    free(s->key_join);
    free(s);
}

static void s_finish(t_step_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (error) {
        if (s->slot_exists)
            log_warn("verify %s: the verify slot \"%s\" may be left on the source (dropped by the "
                     "next verify, cleanup or abort)", s->run.label, s->req->verify_slot);
    } else {
        Godwit__VerifyTableResult *r = s->result;
        r->seconds = (double)(units_mono_ms() - s->started_ms) / 1000.0;
        log_info("verify %s: %s (%" PRIu64 " rows on the source, %u chunks, %u re-checked, %u "
                 "batches, %" PRIu64 " changes in the windows, slot held at most %" PRIu64
                 " ms, %.2f s)",
                 s->run.label, r->outcome, r->source_rows, r->chunks, r->chunks_rechecked, r->batches,
                 r->window_changes, r->window_ms, r->seconds);
        payload = &r->base;
        s->result = NULL;
    }
    steprun_finish(&s->run, payload, error);
}

static t_side_t s_side_of(const t_step_t *s, const pgconn_t *c)
{
    return c == s->run.conn[SRC] ? SRC : c == s->run.conn[DST] ? DST : REPL;
}

static void s_fail_query(t_step_t *s, t_side_t side, const pgconn_result_t *r)
{
    steprun_fail_query(&s->run, s_side_names[side], r);
}

/* ---- statements --------------------------------------------------------- */

static bool s_send(t_step_t *s, t_side_t side, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, side, what, sql, nparams, params,
                  s->timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
    if (s->run.disposed)
        return false;
    s->pending++;
    return true;
}

/* Through the simple query protocol (replication commands, statements
 * without parameters sent together). */
static bool s_send_simple(t_step_t *s, t_side_t side, const char *what, const char *sql,
                          uint64_t timeout_ms, pgconn_result_cb cb)
{
    steprun_query_simple(&s->run, side, what, sql, timeout_ms, cb);
    if (s->run.disposed)
        return false;
    s->pending++;
    return true;
}

/* A statement's callback got here: false if the step ended (error). */
static bool s_arrived(t_step_t *s, pgconn_t *c, const pgconn_result_t *r)
{
    s->pending--;
    if (s->run.disposed)
        return false;
    if (!r->ok) {
        s_fail_query(s, s_side_of(s, c), r);
        return false;
    }
    return true;
}

static void s_maybe_then(t_step_t *s)
{
    if (s->pending == 0 && !s->run.disposed) {
        t_fn fn = s->then;
        s->then = NULL;
        if (fn)
            fn(s);
    }
}

static void s_on_plain(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    s_maybe_then(s);
}

static char *s_ident(t_step_t *s, t_side_t side, const char *ident)
{
    char *q = pgconn_escape_identifier(s->run.conn[side], ident);
    if (!q)
        steprun_failf(&s->run, "cannot quote the name \"%s\" for SQL", ident);
    return q;
}

/* ---- results ------------------------------------------------------------ */

static void s_str_set(char **field, char *taken)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = taken;
}

static const char *s_kind_name(vwindow_verdict_t v)
{
    return v == VWINDOW_MISSING ? "missing_on_target"
           : v == VWINDOW_EXTRA ? "extra_on_target"
                                : "changed";
}

/* values (n of them) taken. */
static void s_diff_add(t_step_t *s, char **values, size_t n, vwindow_verdict_t kind)
{
    Godwit__VerifyTableResult *res = s->result;
    res->diff_count++;
    if (res->n_diffs >= T_MAX_DIFFS) {
        s_strv_free(values, n);
        return;
    }
    Godwit__RowDiff *d = xmalloc(sizeof *d);
    godwit__row_diff__init(d);
    d->n_key = n;
    d->key = values;
    d->kind = xstrdup(s_kind_name(kind));
    res->diffs = xrealloc(res->diffs, (res->n_diffs + 1) * sizeof *res->diffs);
    res->diffs[res->n_diffs++] = d;
}

static void s_diff_key(t_step_t *s, const char *key, vwindow_verdict_t kind)
{
    char **v = vwindow_key_decode(key, s->n_keys);
    size_t n = s->n_keys;
    if (!v) { /* ours, so it decodes; still, never lose the key */
        v = xcalloc(1, sizeof *v);
        v[0] = xstrdup(key);
        n = 1;
    }
    s_diff_add(s, v, n, kind);
}

/* A multiset row's values for a report: long values cut at a character
 * boundary and marked. */
static char *s_shown(const char *v)
{
    if (!v)
        return xstrdup("NULL");
    size_t len = strlen(v);
    if (len <= T_VALUE_SHOWN)
        return xstrdup(v);
    size_t cut = T_VALUE_SHOWN;
    while (cut > 0 && ((unsigned char)v[cut] & 0xC0) == 0x80)
        cut--;
    return xasprintf("%.*s... (%zu bytes)", (int)cut, v, len);
}

static void s_on_multiset_diff(vwindow_verdict_t kind, char *const *values, void *arg)
{
    t_step_t *s = arg;
    char **shown = xcalloc(s->n_cols, sizeof *shown);
    for (size_t i = 0; i < s->n_cols; i++)
        shown[i] = s_shown(values ? values[i] : NULL);
    s_diff_add(s, shown, s->n_cols, kind);
}

static void s_recent_add(t_step_t *s, const char *key, size_t prio)
{
    if (s->n_recent == s->cap_recent) {
        s->cap_recent = s->cap_recent ? 2 * s->cap_recent : 256;
        s->recent = xrealloc(s->recent, s->cap_recent * sizeof *s->recent);
    }
    s->recent[s->n_recent++] = (t_recent_t){ xstrdup(key), prio };
}

static int s_recent_key_cmp(const void *a, const void *b)
{
    const t_recent_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->prio < y->prio ? -1 : x->prio > y->prio);
}

static int s_recent_prio_cmp(const void *a, const void *b)
{
    const t_recent_t *x = a, *y = b;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* The recent keys into the result: each once, the last batch's first. */
static void s_recent_result(t_step_t *s)
{
    Godwit__VerifyTableResult *res = s->result;
    if (!s->n_keys) {
        res->recent_count = res->window_changes;
        return;
    }
    if (s->n_recent)
        qsort(s->recent, s->n_recent, sizeof *s->recent, s_recent_key_cmp);
    size_t n = 0;
    for (size_t i = 0; i < s->n_recent; i++) {
        if (n && strcmp(s->recent[n - 1].key, s->recent[i].key) == 0) {
            free(s->recent[i].key);
            continue;
        }
        s->recent[n++] = s->recent[i];
    }
    s->n_recent = n;
    if (n)
        qsort(s->recent, n, sizeof *s->recent, s_recent_prio_cmp);
    res->recent_count = n;
    size_t keep = n < T_MAX_RECENT ? n : T_MAX_RECENT;
    res->recent = keep ? xcalloc(keep, sizeof *res->recent) : NULL;
    for (size_t i = 0; i < keep; i++) {
        Godwit__RowKey *k = xmalloc(sizeof *k);
        godwit__row_key__init(k);
        k->key = vwindow_key_decode(s->recent[i].key, s->n_keys);
        k->n_key = k->key ? s->n_keys : 0;
        res->recent[res->n_recent++] = k;
    }
}

static void s_done_ok(t_step_t *s)
{
    s_recent_result(s);
    s_str_set(&s->result->outcome, xstrdup(s->result->diff_count ? "different" : "equal"));
    s_finish(s, NULL);
}

/* ---- SQL pieces --------------------------------------------------------- */

/* "$first::type1" or "ROW($first::type1, ...)" for the key. Caller frees. */
static char *s_param_key(const t_step_t *s, int first)
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

/* " AND key >= lower AND key < upper" with the values appended to params
 * from *np on (either bound NULL: open). Caller frees. */
static char *s_range_sql(const t_step_t *s, char *const *lower, char *const *upper,
                         const char **params, int *np)
{
    char *out = xstrdup("");
    if (lower) {
        char *p = s_param_key(s, *np + 1);
        char *grown = xasprintf("%s AND %s >= %s", out, s->key_lhs, p);
        free(p);
        free(out);
        out = grown;
        for (size_t i = 0; i < s->n_keys; i++)
            params[(*np)++] = lower[i];
    }
    if (upper) {
        char *p = s_param_key(s, *np + 1);
        char *grown = xasprintf("%s AND %s < %s", out, s->key_lhs, p);
        free(p);
        free(out);
        out = grown;
        for (size_t i = 0; i < s->n_keys; i++)
            params[(*np)++] = upper[i];
    }
    return out;
}

/* "ROWS FROM (pg_catalog.unnest($first::type1[]), ...) w(a1, ...)": a
 * set of keys given as one text[] per key column. Caller frees. */
static char *s_keys_from(const t_step_t *s, int first)
{
    char *unn = xstrdup("");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *grown = xasprintf("%s%spg_catalog.unnest($%d::%s[])", unn, i ? ", " : "",
                                first + (int)i, s->key_types[i]);
        free(unn);
        unn = grown;
    }
    char *out = xasprintf("ROWS FROM (%s) w(%s)", unn, s->key_names);
    free(unn);
    return out;
}

/* " AND NOT EXISTS (the row's key among the window's keys)", the arrays
 * appended to params from *np on; "" when the window changed no key. The
 * window's keys are compared one by one (s_wkeys), everything else by sums.
 * Caller frees. */
static char *s_excl_sql(const t_step_t *s, const char **params, int *np)
{
    if (!s->n_wk)
        return xstrdup("");
    char *from = s_keys_from(s, *np + 1);
    for (size_t i = 0; i < s->n_keys; i++)
        params[(*np)++] = s->wk_arrays[i];
    char *out = xasprintf(" AND NOT EXISTS (SELECT 1 FROM %s WHERE %s)", from, s->key_join);
    free(from);
    return out;
}

/* ---- connecting --------------------------------------------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    t_step_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect to the %s: %s", s_side_names[s_side_of(s, c)],
                error ? error : "unknown error");
        return;
    }
    s_maybe_then(s);
}

/* ---- the table ---------------------------------------------------------- */

/* $1 schema, $2 name: the compared columns in attnum order (cols, a JSON
 * array of [name, type]) and the key: the replica identity index, else the
 * primary key, else the unique index on NOT NULL columns with the fewest
 * columns; usable when every column of it is compared and NOT NULL and it
 * is neither partial nor on expressions. key_cols: a JSON array of names. */
static const char s_table_sql[] =
    "WITH rel AS (SELECT c.oid, c.relreplident FROM pg_catalog.pg_class c"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')),"
    " cand AS (SELECT CASE WHEN i.indisreplident AND rel.relreplident = 'i' THEN 1"
    "    WHEN i.indisprimary THEN 2 ELSE 3 END AS rank,"
    "    CASE WHEN i.indisprimary THEN 'primary key'"
    "    WHEN i.indisreplident AND rel.relreplident = 'i' THEN 'replica identity index ' ||"
    "      pg_catalog.quote_ident(ic.relname)"
    "    ELSE 'unique index ' || pg_catalog.quote_ident(ic.relname) END AS kind,"
    "    ic.relname AS iname, i.indnkeyatts AS nk,"
    "    (SELECT pg_catalog.json_agg(a.attname ORDER BY k.ord)"
    "     FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)"
    "     JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum = k.attnum"
    "     WHERE k.ord <= i.indnkeyatts) AS cols,"
    "    (SELECT pg_catalog.bool_and(a.attnotnull AND a.attgenerated = '')"
    "     FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)"
    "     JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum = k.attnum"
    "     WHERE k.ord <= i.indnkeyatts) AND NOT (0 = ANY (i.indkey::pg_catalog.int2[]))"
    "     AS usable"
    "  FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid"
    "  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    "  WHERE i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL"
    "  AND i.indexprs IS NULL)"
    " SELECT rel.relreplident::pg_catalog.text AS replident,"
    "  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname,"
    "     pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0"
    "   AND NOT a.attisdropped AND a.attgenerated = '')::pg_catalog.text AS cols,"
    "  (SELECT c.kind FROM cand c WHERE c.usable ORDER BY c.rank, c.nk, c.iname LIMIT 1) AS key_kind,"
    "  (SELECT c.cols FROM cand c WHERE c.usable ORDER BY c.rank, c.nk, c.iname LIMIT 1)"
    "   ::pg_catalog.text AS key_cols"
    " FROM rel";

static void s_batch_begin(t_step_t *s);

/* Builds the SQL pieces from the table's columns and key. false after
 * ending the step. */
static bool s_table_sql_build(t_step_t *s, char **types)
{
    char *schema = s_ident(s, SRC, s->req->table->schema);
    if (!schema)
        return false;
    char *name = s_ident(s, SRC, s->req->table->name);
    if (!name) {
        free(schema);
        return false;
    }
    s->table_sql = xasprintf("%s.%s", schema, name);
    free(schema);
    free(name);
    char *row = xstrdup(""), *text = xstrdup("");
    for (size_t i = 0; i < s->n_cols; i++) {
        char *q = s_ident(s, SRC, s->cols[i]);
        if (!q) {
            free(row);
            free(text);
            return false;
        }
        char *r = xasprintf("%s%st.%s", row, i ? ", " : "", q);
        char *t = xasprintf("%s%s(t.%s)::pg_catalog.text AS c%zu", text, i ? ", " : "", q, i + 1);
        free(row);
        free(text);
        free(q);
        row = r;
        text = t;
    }
    s->hash_sql = xasprintf("pg_catalog.sha256(pg_catalog.convert_to(ROW(%s)::pg_catalog.text,"
                            " 'UTF8'))", row);
    s->col_text = text;
    free(row);
    if (!s->n_keys)
        return true;
    char *order = xstrdup(""), *ktext = xstrdup(""), *bounds = xstrdup(""), *unn = xstrdup("");
    char *join = xstrdup("");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *q = s_ident(s, SRC, s->cols[s->key_idx[i]]);
        if (!q) {
            free(order);
            free(ktext);
            free(bounds);
            free(unn);
            free(join);
            return false;
        }
        char *o = xasprintf("%s%st.%s", order, i ? ", " : "", q);
        char *t = xasprintf("%s%s(t.%s)::pg_catalog.text AS k%zu", ktext, i ? ", " : "", q, i + 1);
        char *b = xasprintf("%s%su.a%zu", bounds, i ? ", " : "", i + 1);
        char *u = xasprintf("%s%spg_catalog.unnest($%zu::%s[])", unn, i ? ", " : "", i + 1,
                            types[s->key_idx[i]]);
        char *j = xasprintf("%s%st.%s = w.a%zu", join, i ? " AND " : "", q, i + 1);
        free(order);
        free(ktext);
        free(bounds);
        free(unn);
        free(join);
        free(q);
        order = o;
        ktext = t;
        bounds = b;
        unn = u;
        join = j;
    }
    s->key_join = join;
    s->key_order = order;
    s->key_text = ktext;
    if (s->n_keys == 1) {
        s->key_lhs = xstrdup(order);
        s->bucket_sql = xasprintf("pg_catalog.width_bucket(%s, $1::%s[])", order,
                                  types[s->key_idx[0]]);
    } else {
        s->key_lhs = xasprintf("ROW(%s)", order);
        char *names = xstrdup("");
        for (size_t i = 0; i < s->n_keys; i++) {
            char *grown = xasprintf("%sa%zu, ", names, i + 1);
            free(names);
            names = grown;
        }
        s->bucket_sql = xasprintf("pg_catalog.width_bucket(ROW(%s), ARRAY(SELECT ROW(%s) FROM"
                                  " ROWS FROM (%s) WITH ORDINALITY u(%so) ORDER BY u.o))",
                                  order, bounds, unn, names);
        free(names);
    }
    free(bounds);
    free(unn);
    char *names = xstrdup("");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *grown = xasprintf("%s%sa%zu", names, i ? ", " : "", i + 1);
        free(names);
        names = grown;
    }
    s->key_names = names;
    return true;
}

static void s_on_table(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&s->run, "no table %s.%s on the source", s->req->table->schema, s->req->table->name);
        return;
    }
    const char *replident = pgconn_col_str(r->res, 0, "replident");
    cJSON *cols = cJSON_Parse(pgconn_col_str(r->res, 0, "cols"));
    cJSON *keys = pgconn_col(r->res, 0, "key_cols") ? cJSON_Parse(pgconn_col(r->res, 0, "key_cols"))
                                                    : NULL;
    int n = cJSON_GetArraySize(cols);
    if (!cJSON_IsArray(cols) || n == 0) {
        cJSON_Delete(cols);
        cJSON_Delete(keys);
        steprun_failf(&s->run, "the table has no columns to compare");
        return;
    }
    s->n_cols = (size_t)n;
    s->cols = xcalloc(s->n_cols, sizeof *s->cols);
    char **types = xcalloc(s->n_cols, sizeof *types);
    for (int i = 0; i < n; i++) {
        const cJSON *pair = cJSON_GetArrayItem(cols, i);
        const char *cn = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        const char *ct = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
        s->cols[i] = xstrdup(cn ? cn : "");
        types[i] = xstrdup(ct ? ct : "");
    }
    Godwit__VerifyTableResult *res = s->result;
    int nk = cJSON_GetArraySize(keys);
    if (cJSON_IsArray(keys) && nk > 0) {
        s->key_idx = xcalloc((size_t)nk, sizeof *s->key_idx);
        s->key_types = xcalloc((size_t)nk, sizeof *s->key_types);
        res->key_columns = xcalloc((size_t)nk, sizeof *res->key_columns);
        for (int k = 0; k < nk; k++) {
            const char *kn = cJSON_GetStringValue(cJSON_GetArrayItem(keys, k));
            size_t i = 0;
            while (i < s->n_cols && (!kn || strcmp(s->cols[i], kn) != 0))
                i++;
            if (i == s->n_cols) { /* the catalog's answer contradicts itself */
                cJSON_Delete(cols);
                cJSON_Delete(keys);
                s_strv_free(types, s->n_cols);
                steprun_failf(&s->run, "the key column %s is not among the table's columns", kn ? kn : "?");
                return;
            }
            s->key_idx[s->n_keys] = i;
            s->key_types[s->n_keys++] = xstrdup(types[i]);
            res->key_columns[res->n_key_columns++] = xstrdup(s->cols[i]);
        }
        s_str_set(&res->key_kind, xstrdup(pgconn_col_str(r->res, 0, "key_kind")));
    } else {
        s_str_set(&res->key_kind, xstrdup(strcmp(replident, "f") == 0 ? "multiset (REPLICA "
                                                                        "IDENTITY FULL)"
                                                                      : "multiset (no key)"));
        res->row_columns = xcalloc(s->n_cols, sizeof *res->row_columns);
        for (size_t i = 0; i < s->n_cols; i++)
            res->row_columns[res->n_row_columns++] = xstrdup(s->cols[i]);
    }
    cJSON_Delete(cols);
    cJSON_Delete(keys);
    bool ok = s_table_sql_build(s, types);
    s_strv_free(types, s->n_cols);
    if (!ok)
        return;
    s->buckets[SRC] = xcalloc(VWINDOW_BUCKETS, sizeof *s->buckets[SRC]);
    s->buckets[DST] = xcalloc(VWINDOW_BUCKETS, sizeof *s->buckets[DST]);
    log_debug("verify %s: compared %s on %zu columns", s->run.label, res->key_kind, s->n_cols);
    s->then = s_batch_begin;
    s_maybe_then(s);
}

static void s_table(t_step_t *s)
{
    int sv = pgconn_server_version(s->run.conn[SRC]);
    if (sv < 130000) {
        steprun_failf(&s->run, "the source runs PostgreSQL version number %d; verify needs 13 or later", sv);
        return;
    }
    const char *params[2] = { s->req->table->schema, s->req->table->name };
    s_send(s, SRC, "looking up the table's columns and key", s_table_sql, 2, params, s_on_table);
}

/* ---- 1: the verify slot ------------------------------------------------- */

static void s_import(t_step_t *s);
static void s_slot_create(t_step_t *s);

/* The bound on creating the slot passed: who held it up, then our walsender
 * terminated (which removes the slot it was making). */
static void s_on_slot_stalled(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    if (s->snapshot) { /* made after all, just as the bound passed */
        s_maybe_then(s);
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
    t_step_t *s = (t_step_t *)run;
    if (s->run.disposed || !s->slot_exists)
        return;
    s->slot_timed_out = true;
    const char *params[1] = { s->req->verify_slot };
    s_send(s, SRC, "looking for what holds the verify slot's creation up", s_stalled_sql, 1, params,
           s_on_slot_stalled);
}

static void s_on_slot_dropped_for_retry(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    /* 42704: gone meanwhile, which is what we wanted. */
    if (!r->ok && strcmp(r->sqlstate, "42704") != 0) {
        s_fail_query(s, s_side_of(s, c), r);
        return;
    }
    s->then = s_slot_create;
    s_maybe_then(s);
}

static void s_on_holder_terminated(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    char *slot = s_ident(s, REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s WAIT", slot);
    s_send_simple(s, REPL, "dropping a verify slot left behind", sql,
                  s->timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_slot_dropped_for_retry);
    free(sql);
    free(slot);
}

static void s_on_slot_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
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
        s_send(s, SRC, "terminating the holder of a verify slot left behind",
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
        s_fail_query(s, REPL, r);
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
    s_maybe_then(s);
}

static void s_slot_create(t_step_t *s)
{
    char *slot = s_ident(s, REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", slot);
    free(slot);
    s->slot_made_ms = units_mono_ms();
    /* pgconn's own deadline stays out of the way of ours: dropping the
     * connection would leave our walsender waiting, to make the slot
     * after all once the transactions end. */
    if (s_send_simple(s, REPL, "creating the verify slot", sql,
                      s->slot_wait_ms + s->timeout_ms + STEP_DEADLINE_SLACK_MS,
                      s_on_slot_created)) {
        s->slot_exists = true;
        steprun_after(&s->run, s->slot_wait_ms, s_on_slot_timer);
    }
    free(sql);
}

/* ---- 2-4: the snapshots ------------------------------------------------- */

static void s_wait_poll(t_step_t *s);
static void s_dst_snapshot(t_step_t *s);

static void s_import(t_step_t *s)
{
    char *lit = pgconn_escape_literal(s->run.conn[SRC], s->snapshot);
    if (!lit) {
        steprun_failf(&s->run, "cannot quote the snapshot name \"%s\"", s->snapshot);
        return;
    }
    char *sql = xasprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                          " SET TRANSACTION SNAPSHOT %s", lit);
    free(lit);
    s->then = s_wait_poll;
    s->wait_until_ms = units_mono_ms() + T_WAIT_LIMIT_MS;
    s_send_simple(s, SRC, "reading the source in the verify slot's snapshot", sql,
                  s->timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_plain);
    free(sql);
}

static void s_on_wait_timer(steprun_t *run)
{
    s_wait_poll((t_step_t *)run);
}

static void s_wait_again(t_step_t *s)
{
    if (units_mono_ms() >= s->wait_until_ms) {
        char pos[32];
        lsn_format(s->x, pos, sizeof pos);
        steprun_failf(&s->run, "the target did not reach the source's position %s within %d s (is "
                   "replication stopped or far behind?)", pos, T_WAIT_LIMIT_MS / 1000);
        return;
    }
    steprun_after(&s->run, T_WAIT_POLL_MS, s_on_wait_timer);
}

static void s_on_slot_pos(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    uint64_t pos = 0;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    if (text && lsn_parse(text, &pos) && pos >= s->x)
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
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&s->run, "our subscription \"%s\" is missing on the target", s->req->subscription);
        return;
    }
    uint64_t pos = 0;
    const char *text = pgconn_col(r->res, 0, "lsn");
    if (text && lsn_parse(text, &pos) && pos >= s->x) {
        s_dst_snapshot(s);
        return;
    }
    const char *params[1] = { s->req->slot };
    s_send(s, SRC, "reading our slot's confirmed position",
           "SELECT COALESCE(s.confirmed_flush_lsn, '0/0')::pg_catalog.text AS lsn"
           " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
           1, params, s_on_slot_pos);
}

static void s_wait_poll(t_step_t *s)
{
    const char *params[1] = { s->req->subscription };
    s_send(s, DST, "reading the target's replication progress", s_origin_sql, 1, params,
           s_on_origin_pos);
}

static void s_peek(t_step_t *s);

static void s_on_dst_y(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    uint64_t y = 0;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    if (!text || !lsn_parse(text, &y)) {
        steprun_failf(&s->run, "our subscription \"%s\" is missing on the target", s->req->subscription);
        return;
    }
    s->y = y > s->x ? y : s->x;
    s_peek(s);
}

static void s_on_dst_begun(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    /* The first statement takes the snapshot; the progress it reads is at
     * or past every commit the snapshot shows. */
    const char *params[1] = { s->req->subscription };
    s_send(s, DST, "taking the target's snapshot and its replication progress", s_origin_sql, 1,
           params, s_on_dst_y);
}

static void s_dst_snapshot(t_step_t *s)
{
    s_send(s, DST, "starting a read on the target",
           "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, s_on_dst_begun);
}

/* ---- 5: the window ------------------------------------------------------ */

static void s_pass(t_step_t *s);

static void s_on_slot_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    s->slot_exists = false;
    s_maybe_then(s);
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
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
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
        s_recent_add(s, vwindow_key_at(s->win, i), ((size_t)UINT32_MAX - s->batch) * 1000000 + i);
    /* The window's keys, to compare one by one and leave out of the sums. */
    if (s->n_keys && nk) {
        char ***dec = xcalloc(nk, sizeof *dec);
        char **col = xcalloc(nk, sizeof *col);
        for (size_t i = 0; i < nk; i++) {
            dec[i] = vwindow_key_decode(vwindow_key_at(s->win, i), s->n_keys);
            if (!dec[i]) {
                for (size_t j = 0; j < i; j++)
                    s_strv_free(dec[j], s->n_keys);
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
            s_strv_free(dec[i], s->n_keys);
        free(dec);
        free(col);
    }
    /* The slot goes now, while the pass runs. */
    char *slot = s_ident(s, REPL, s->req->verify_slot);
    if (!slot)
        return;
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s", slot);
    free(slot);
    s->then = s_pass;
    if (s_send_simple(s, REPL, "dropping the verify slot", sql,
                      s->timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_slot_dropped))
        s_maybe_then(s); /* the drop is in flight: the pass starts when it is back */
    free(sql);
}

static void s_peek(t_step_t *s)
{
    char y[32];
    lsn_format(s->y, y, sizeof y);
    const char *params[3] = { s->req->verify_slot, y, s->req->publication };
    s_send(s, SRC, "reading the verify slot's changes",
           "SELECT c.data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, $2::pg_catalog.pg_lsn,"
           " NULL, 'proto_version', '1', 'publication_names', $3) c",
           3, params, s_on_peek);
}

/* ---- 6: keyed: the pass ------------------------------------------------- */

static void s_resum(t_step_t *s);
static void s_wkeys(t_step_t *s);
static void s_batch_end(t_step_t *s);
static void s_multiset_pass(t_step_t *s);

static void s_on_chunks(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    t_side_t side = s_side_of(s, c);
    int n = PQntuples(r->res);
    t_chunk_t *ch = xcalloc((size_t)n + 1, sizeof *ch);
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
    s_maybe_then(s);
}

static bool s_key_equal(char *const *a, char *const *b, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(a[k], b[k]) != 0)
            return false;
    return true;
}

/* The source's pass: its last chunk beyond batch_rows holds the next
 * batch's first key. Then the chunks whose target twin differs. */
static void s_chunk_judge(t_step_t *s)
{
    size_t ns = s->n_chunks[SRC], nd = s->n_chunks[DST];
    t_chunk_t *cs = s->chunks[SRC];
    const t_chunk_t *cd = s->chunks[DST];
    if (s->total[SRC] > s->batch_rows && ns > 0) {
        /* Row batch_rows + 1: alone in the chunk past the batch. */
        s->more = true;
        s_strv_free(s->hi, s->hi ? s->n_keys : 0);
        s->hi = cs[ns - 1].first;
        cs[ns - 1].first = NULL;
        s->total[SRC] -= cs[ns - 1].rows;
        ns = --s->n_chunks[SRC];
    } else {
        s_strv_free(s->hi, s->hi ? s->n_keys : 0);
        s->hi = NULL;
    }
    Godwit__VerifyTableResult *res = s->result;
    res->source_rows += s->total[SRC];
    if (ns == 0) {
        /* An empty source: one chunk without rows, open at both ends. */
        s->n_chunks[SRC] = ns = 1;
    }
    res->chunks += (uint32_t)ns;
    s->flag = xcalloc(ns, sizeof *s->flag);
    s->resum_rows = xcalloc(ns, sizeof *s->resum_rows);
    s->resum_md5 = xcalloc(ns, sizeof *s->resum_md5);
    size_t flagged = 0;
    for (size_t i = 0; i < ns; i++) {
        bool same = cs[i].first ? i < nd && cs[i].rows == cd[i].rows &&
                                      strcmp(cs[i].md5, cd[i].md5) == 0 &&
                                      s_key_equal(cs[i].first, cd[i].first, s->n_keys)
                                : nd == 0;
        s->flag[i] = !same;
        flagged += !same;
    }
    /* More rows on the target from lo on than the source has up to hi:
     * some may lie in the last chunk's range (up to hi, or open). The
     * target's row past its batch, when it is the source's hi, is not one. */
    uint64_t dst_in = s->total[DST];
    if (s->more && nd == ns + 1 && cd[ns].rows == 1 && s_key_equal(cd[ns].first, s->hi, s->n_keys))
        dst_in--;
    if (dst_in > s->total[SRC] && !s->flag[ns - 1]) {
        s->flag[ns - 1] = true;
        flagged++;
    }
    res->chunks_rechecked += (uint32_t)flagged;
    if (flagged == 0) {
        res->target_rows += s->total[SRC];
        s_wkeys(s);
        return;
    }
    s_resum(s);
}

static void s_pass(t_step_t *s)
{
    if (!s->n_keys) {
        s_multiset_pass(s);
        return;
    }
    /* rn: a row's place in key order from lo; a chunk is chunk_rows of
     * them; its sum is the md5 of its rows' hashes in key order; its first
     * key comes back as text, one column per key column. LIMIT: the batch
     * and one row more, the next batch's first key. */
    char *firsts = xstrdup(""), *typed = xstrdup(""), *order = xstrdup("");
    for (size_t k = 0; k < s->n_keys; k++) {
        char *f = xasprintf("%s, pg_catalog.max(CASE WHEN (r.rn - 1) %% $2::pg_catalog.int8 = 0"
                            " THEN r.k%zu END) AS k%zu", firsts, k + 1, k + 1);
        char *q = s_ident(s, SRC, s->cols[s->key_idx[k]]);
        if (!q) {
            free(f);
            free(typed);
            free(order);
            return;
        }
        char *t = xasprintf("%st.%s AS o%zu, ", typed, q, k + 1);
        char *o = xasprintf("%s%sx.o%zu", order, k ? ", " : "", k + 1);
        free(q);
        free(firsts);
        free(typed);
        free(order);
        firsts = f;
        typed = t;
        order = o;
    }
    const char *params[2 + 3 * 64];
    char limit[32], rows[32];
    snprintf(limit, sizeof limit, "%" PRIu64, s->batch_rows + 1);
    snprintf(rows, sizeof rows, "%u", s->chunk_rows);
    params[0] = limit;
    params[1] = rows;
    int np = 2;
    char *range = s_range_sql(s, s->lo, NULL, params, &np);
    char *excl = s_excl_sql(s, params, &np);
    char *sql = xasprintf(
        "SELECT pg_catalog.count(*) AS n,"
        " pg_catalog.md5(pg_catalog.string_agg(r.h, ''::pg_catalog.bytea ORDER BY r.rn)) AS md5%s"
        " FROM (SELECT x.*, pg_catalog.row_number() OVER (ORDER BY %s) AS rn FROM ("
        "   SELECT %s%s, %s AS h FROM %s t WHERE true%s%s ORDER BY %s LIMIT $1::pg_catalog.int8)"
        " x) r GROUP BY (r.rn - 1) / $2::pg_catalog.int8 ORDER BY (r.rn - 1) / $2::pg_catalog.int8",
        firsts, order, typed, s->key_text, s->hash_sql, s->table_sql, range, excl, s->key_order);
    free(firsts);
    free(typed);
    free(order);
    free(range);
    free(excl);
    s->then = s_chunk_judge;
    if (s_send(s, SRC, "summing the table in chunks", sql, np, params, s_on_chunks))
        s_send(s, DST, "summing the table in chunks", sql, np, params, s_on_chunks);
    free(sql);
}

/* ---- 6: keyed: the window's keys ----------------------------------------- */

static void s_judge(t_step_t *s);
static void s_on_rows(pgconn_t *c, const pgconn_result_t *r, void *arg);

/* The rows of the window's keys within the batch, (key, hash) on both
 * sides: the sums left them out. */
static void s_wkeys(t_step_t *s)
{
    if (!s->n_wk) {
        s_judge(s);
        return;
    }
    const char **params = xcalloc(3 * s->n_keys + 1, sizeof *params);
    int np = 0;
    for (size_t k = 0; k < s->n_keys; k++)
        params[np++] = s->wk_arrays[k];
    char *from = s_keys_from(s, 1);
    char *range = s_range_sql(s, s->lo, s->hi, params, &np);
    char *sql = xasprintf("SELECT %s, pg_catalog.encode(%s, 'hex') AS h FROM %s t JOIN %s ON %s"
                          " WHERE true%s",
                          s->key_text, s->hash_sql, s->table_sql, from, s->key_join, range);
    s->counting = true;
    s->then = s_judge;
    if (s_send(s, SRC, "reading the rows of the keys the window changed", sql, np, params,
               s_on_rows))
        s_send(s, DST, "reading the rows of the keys the window changed", sql, np, params,
               s_on_rows);
    free(sql);
    free(range);
    free(from);
    free(params);
}

/* ---- 6: keyed: the target summed by the source's chunk bounds ----------- */

static void s_rows_read(t_step_t *s);

/* The key bounds of the source's chunks 1..ns-1 as n_keys text[] literals
 * (caller frees each and the array). */
static char **s_bounds(const t_step_t *s)
{
    size_t ns = s->n_chunks[SRC];
    char **out = xcalloc(s->n_keys, sizeof *out);
    char **col = xcalloc(ns ? ns : 1, sizeof *col);
    for (size_t k = 0; k < s->n_keys; k++) {
        size_t n = 0;
        for (size_t i = 1; i < ns; i++)
            col[n++] = s->chunks[SRC][i].first[k];
        out[k] = pgconn_text_array(col, n);
    }
    free(col);
    return out;
}

/* The region of the flagged chunks: lower and upper key (NULL: open). */
static void s_region(const t_step_t *s, char ***lower, char ***upper)
{
    size_t ns = s->n_chunks[SRC], first = ns, last = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!s->flag[i])
            continue;
        if (first == ns)
            first = i;
        last = i;
    }
    *lower = first == 0 ? s->lo : s->chunks[SRC][first].first;
    *upper = last + 1 < ns ? s->chunks[SRC][last + 1].first : s->hi;
}

/* Params: the bounds, then the region's keys; *np their count. Caller
 * frees the array and bounds[i] (returned in *bounds). */
static char *s_region_sql(t_step_t *s, const char ***params, int *np, char ***bounds)
{
    *bounds = s_bounds(s);
    *params = xcalloc(4 * s->n_keys + 2, sizeof **params);
    *np = 0;
    for (size_t k = 0; k < s->n_keys; k++)
        (*params)[(*np)++] = (*bounds)[k];
    char **lower, **upper;
    s_region(s, &lower, &upper);
    char *range = s_range_sql(s, lower, upper, *params, np);
    char *excl = s_excl_sql(s, *params, np);
    char *out = xasprintf("%s%s", range, excl);
    free(range);
    free(excl);
    return out;
}

static void s_on_resum(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    size_t ns = s->n_chunks[SRC];
    for (int i = 0; i < PQntuples(r->res); i++) {
        int64_t b = pgconn_col_i64(r->res, i, "b", -1);
        if (b < 0 || (size_t)b >= ns)
            continue;
        s->resum_rows[b] = pgconn_col_u64(r->res, i, "n");
        snprintf(s->resum_md5[b], 33, "%s", pgconn_col_str(r->res, i, "md5"));
    }
    s_maybe_then(s);
}

static void s_resum_judge(t_step_t *s)
{
    size_t ns = s->n_chunks[SRC], left = 0;
    uint64_t target = s->total[SRC];
    for (size_t i = 0; i < ns; i++) {
        if (!s->flag[i])
            continue;
        const t_chunk_t *c = &s->chunks[SRC][i];
        target = target - c->rows + s->resum_rows[i];
        if (c->rows == s->resum_rows[i] && strcmp(c->md5, s->resum_md5[i]) == 0)
            s->flag[i] = false;
        else
            left++;
    }
    s->result->target_rows += target;
    if (left == 0) {
        s_wkeys(s);
        return;
    }
    s_rows_read(s);
}

static void s_resum(t_step_t *s)
{
    const char **params;
    int np;
    char **bounds;
    char *range = s_region_sql(s, &params, &np, &bounds);
    char *sql = xasprintf("SELECT %s AS b, pg_catalog.count(*) AS n,"
                          " pg_catalog.md5(pg_catalog.string_agg(%s, ''::pg_catalog.bytea ORDER BY"
                          " %s)) AS md5 FROM %s t WHERE true%s GROUP BY 1",
                          s->bucket_sql, s->hash_sql, s->key_order, s->table_sql, range);
    s->then = s_resum_judge;
    s_send(s, DST, "summing the differing chunks' ranges", sql, np, params, s_on_resum);
    free(sql);
    free(range);
    free(params);
    s_strv_free(bounds, s->n_keys);
}

/* ---- 6: keyed: rows ----------------------------------------------------- */

static void s_on_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    t_side_t side = s_side_of(s, c);
    if (s->counting)
        *(side == SRC ? &s->result->source_rows : &s->result->target_rows) +=
            (uint64_t)PQntuples(r->res);
    for (int i = 0; i < PQntuples(r->res); i++) {
        t_row_t *row = s_rows_add(&s->rows[side]);
        row->key = s_key_of_result(r->res, i, s->n_keys);
        if (!vwindow_hash_parse(pgconn_col_str(r->res, i, "h"), row->hash)) {
            steprun_failf(&s->run, "reading rows: not a hash: \"%s\"", pgconn_col_str(r->res, i, "h"));
            return;
        }
    }
    s_maybe_then(s);
}

static void s_rows_read(t_step_t *s)
{
    const char **params;
    int np;
    char **bounds;
    char *range = s_region_sql(s, &params, &np, &bounds);
    char *flags = xstrdup("{");
    for (size_t i = 0; i < s->n_chunks[SRC]; i++) {
        if (!s->flag[i])
            continue;
        char *grown = xasprintf("%s%s%zu", flags, flags[1] ? "," : "", i);
        free(flags);
        flags = grown;
    }
    char *closed = xasprintf("%s}", flags);
    free(flags);
    params[np++] = closed;
    char *sql = xasprintf("SELECT %s, pg_catalog.encode(%s, 'hex') AS h FROM %s t WHERE true%s"
                          " AND %s = ANY ($%d::pg_catalog.int4[])",
                          s->key_text, s->hash_sql, s->table_sql, range, s->bucket_sql, np);
    s->then = s_wkeys;
    if (s_send(s, SRC, "reading the rows of the differing chunks", sql, np, params, s_on_rows))
        s_send(s, DST, "reading the rows of the differing chunks", sql, np, params, s_on_rows);
    free(sql);
    free(range);
    free(closed);
    free(params);
    s_strv_free(bounds, s->n_keys);
}

static const t_row_t *s_rows_find(const t_rows_t *set, const char *key)
{
    t_row_t probe = { .key = (char *)key };
    return set->n ? bsearch(&probe, set->v, set->n, sizeof *set->v, s_row_cmp) : NULL;
}

static const t_full_t *s_base_find(const t_fulls_t *set, const char *key)
{
    t_full_t probe = { .key = (char *)key };
    return set->n ? bsearch(&probe, set->v, set->n, sizeof *set->v, s_full_cmp) : NULL;
}

/* Every key whose hashes differ (or that one side lacks), once, in order:
 * fn(s, key) for each; false when fn ended the step. */
static bool s_each_differing(t_step_t *s, bool (*fn)(t_step_t *, const char *))
{
    const t_rows_t *a = &s->rows[SRC], *b = &s->rows[DST];
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->v[i].key, b->v[j].key);
        const char *key = c <= 0 ? a->v[i].key : b->v[j].key;
        bool differs = c != 0 || memcmp(a->v[i].hash, b->v[j].hash, VWINDOW_HASH_LEN) != 0;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        if (differs && !fn(s, key))
            return false;
    }
    return true;
}

static bool s_judge_key(t_step_t *s, const char *key)
{
    const t_row_t *a = s_rows_find(&s->rows[SRC], key), *b = s_rows_find(&s->rows[DST], key);
    /* Also a key the window did not change: a TRUNCATE in the window may
     * explain its absence. */
    vwindow_verdict_t v;
    const t_full_t *base = NULL;
    if (a && vwindow_needs_base(s->win, key))
        base = s_base_find(&s->base_rows, key);
    char why[512];
    if (!vwindow_judge(s->win, key, a ? a->hash : NULL, b ? b->hash : NULL,
                       base ? base->values : NULL, &v, why, sizeof why)) {
        steprun_failf(&s->run, "%s", why);
        return false;
    }
    if (v != VWINDOW_CONSISTENT)
        s_diff_key(s, key, v);
    return true;
}

static void s_judge_all(t_step_t *s)
{
    if (s_each_differing(s, s_judge_key))
        s_batch_end(s);
}

static bool s_collect_need(t_step_t *s, const char *key)
{
    if (s_rows_find(&s->rows[SRC], key) && vwindow_needs_base(s->win, key)) {
        s->need = xrealloc(s->need, (s->n_need + 1) * sizeof *s->need);
        s->need[s->n_need++] = xstrdup(key);
    }
    return true;
}

static void s_on_base(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    for (int i = 0; i < PQntuples(r->res); i++) {
        t_full_t *row = s_fulls_add(&s->base_rows);
        row->key = s_key_of_result(r->res, i, s->n_keys);
        row->values = s_values_of_result(r->res, i, (int)s->n_keys, s->n_cols);
    }
    if (s->base_rows.n)
        qsort(s->base_rows.v, s->base_rows.n, sizeof *s->base_rows.v, s_full_cmp);
    s_maybe_then(s);
}

static void s_judge(t_step_t *s)
{
    for (int side = 0; side < 2; side++)
        if (s->rows[side].n)
            qsort(s->rows[side].v, s->rows[side].n, sizeof *s->rows[side].v, s_row_cmp);
    s_each_differing(s, s_collect_need);
    if (s->n_need == 0) {
        s_judge_all(s);
        return;
    }
    /* The source's rows at X of the keys whose first change in the window
     * left TOASTed values out: one text[] per key column. */
    const char **params = xcalloc(s->n_keys, sizeof *params);
    char **arrays = xcalloc(s->n_keys, sizeof *arrays);
    char **col = xcalloc(s->n_need, sizeof *col);
    char ***decoded = xcalloc(s->n_need, sizeof *decoded);
    for (size_t i = 0; i < s->n_need; i++)
        decoded[i] = vwindow_key_decode(s->need[i], s->n_keys);
    for (size_t k = 0; k < s->n_keys; k++) {
        for (size_t i = 0; i < s->n_need; i++)
            col[i] = decoded[i] ? decoded[i][k] : (char *)"";
        arrays[k] = pgconn_text_array(col, s->n_need);
        params[k] = arrays[k];
    }
    char *from = s_keys_from(s, 1);
    char *sql = xasprintf("SELECT %s, %s FROM %s t JOIN %s ON %s", s->key_text, s->col_text,
                          s->table_sql, from, s->key_join);
    s->then = s_judge_all;
    s_send(s, SRC, "reading the source's rows whose changes left TOASTed values out", sql,
           (int)s->n_keys, params, s_on_base);
    free(sql);
    free(from);
    for (size_t i = 0; i < s->n_need; i++)
        s_strv_free(decoded[i], decoded[i] ? s->n_keys : 0);
    free(decoded);
    free(col);
    s_strv_free(arrays, s->n_keys);
    free(params);
}

/* ---- 7: the batch's end ------------------------------------------------- */

static void s_after_batch(t_step_t *s)
{
    if (!s->more) {
        s_done_ok(s);
        return;
    }
    s_batch_begin(s);
}

static void s_batch_end(t_step_t *s)
{
    s->then = s_after_batch;
    if (s_send(s, SRC, "ending the read", "COMMIT", 0, NULL, s_on_plain))
        s_send(s, DST, "ending the read", "COMMIT", 0, NULL, s_on_plain);
}

static void s_batch_begin(t_step_t *s)
{
    if (s->more) {
        s_strv_free(s->lo, s->lo ? s->n_keys : 0);
        s->lo = s->hi;
        s->hi = NULL;
    }
    s_batch_reset(s);
    s->batch++;
    memset(s->buckets[SRC], 0, VWINDOW_BUCKETS * sizeof *s->buckets[SRC]);
    memset(s->buckets[DST], 0, VWINDOW_BUCKETS * sizeof *s->buckets[DST]);
    s_slot_create(s);
}

/* ---- 6: a multiset ------------------------------------------------------ */

static void s_on_buckets(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    t_side_t side = s_side_of(s, c);
    for (int i = 0; i < PQntuples(r->res); i++) {
        int64_t b = pgconn_col_i64(r->res, i, "b", -1);
        if (b < 0 || b >= VWINDOW_BUCKETS)
            continue;
        vwindow_bucket_t *bk = &s->buckets[side][b];
        bk->n = pgconn_col_i64(r->res, i, "n", 0);
        bk->s1 = strtoull(pgconn_col_str(r->res, i, "s1"), NULL, 10);
        bk->s2 = strtoull(pgconn_col_str(r->res, i, "s2"), NULL, 10);
        s->total[side] += (uint64_t)bk->n;
    }
    s_maybe_then(s);
}

static void s_multiset_diff(t_step_t *s);

static void s_on_mrows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    t_step_t *s = arg;
    if (!s_arrived(s, c, r))
        return;
    t_side_t side = s_side_of(s, c);
    for (int i = 0; i < PQntuples(r->res); i++) {
        t_full_t *row = s_fulls_add(&s->mrows[side]);
        if (!vwindow_hash_parse(pgconn_col_str(r->res, i, "h"), row->hash)) {
            row->values = xcalloc(s->n_cols, sizeof *row->values);
            steprun_failf(&s->run, "reading rows: not a hash: \"%s\"", pgconn_col_str(r->res, i, "h"));
            return;
        }
        row->values = s_values_of_result(r->res, i, 1, s->n_cols);
    }
    s_maybe_then(s);
}

static void s_multiset_judge(t_step_t *s)
{
    Godwit__VerifyTableResult *res = s->result;
    res->source_rows = s->total[SRC];
    res->target_rows = s->total[DST];
    res->chunks = 1;
    size_t left = vwindow_multiset_match(s->win, s->buckets[SRC], s->buckets[DST], &s->prefix,
                                         s->mismatched);
    if (left == 0) {
        s_batch_end(s);
        return;
    }
    res->chunks_rechecked = 1;
    log_debug("verify %s: %zu of %d buckets differ after the window's first %zu transactions",
              s->run.label, left, VWINDOW_BUCKETS, s->prefix);
    char *list = xstrdup("{");
    for (int b = 0; b < VWINDOW_BUCKETS; b++) {
        if (!s->mismatched[b])
            continue;
        char *grown = xasprintf("%s%s%d", list, list[1] ? "," : "", b);
        free(list);
        list = grown;
    }
    char *closed = xasprintf("%s}", list);
    free(list);
    char *cols = xstrdup("");
    for (size_t i = 0; i < s->n_cols; i++) {
        char *grown = xasprintf("%s, x.c%zu", cols, i + 1);
        free(cols);
        cols = grown;
    }
    char *sql = xasprintf("SELECT pg_catalog.encode(x.h, 'hex') AS h%s FROM (SELECT %s AS h, %s"
                          " FROM %s t) x WHERE pg_catalog.get_byte(x.h, 0) = ANY ($1::pg_catalog.int4[])",
                          cols, s->hash_sql, s->col_text, s->table_sql);
    const char *params[1] = { closed };
    s->then = s_multiset_diff;
    if (s_send(s, SRC, "reading the rows of the differing buckets", sql, 1, params, s_on_mrows))
        s_send(s, DST, "reading the rows of the differing buckets", sql, 1, params, s_on_mrows);
    free(sql);
    free(cols);
    free(closed);
}

static void s_multiset_diff(t_step_t *s)
{
    vwindow_row_t *rows[2];
    for (int side = 0; side < 2; side++) {
        const t_fulls_t *f = &s->mrows[side];
        rows[side] = xcalloc(f->n ? f->n : 1, sizeof *rows[side]);
        for (size_t i = 0; i < f->n; i++) {
            memcpy(rows[side][i].hash, f->v[i].hash, VWINDOW_HASH_LEN);
            rows[side][i].values = f->v[i].values;
        }
    }
    uint64_t n = vwindow_multiset_diff(s->win, s->prefix, s->mismatched, rows[SRC],
                                       s->mrows[SRC].n, rows[DST], s->mrows[DST].n,
                                       s_on_multiset_diff, s);
    free(rows[SRC]);
    free(rows[DST]);
    if (n == 0) {
        /* Bucket sums differed and no row does: two rows' hashes would have
         * to collide in 56-bit sums; say so rather than call it equal. */
        steprun_failf(&s->run, "the buckets' sums differ but no row does: the digest cannot be trusted here");
        return;
    }
    s_str_set(&s->result->detail,
              xasprintf("no key: %" PRIu64 " rows on the source, %" PRIu64 " on the target; %" PRIu64
                        " rows differ (after the first %zu of the window's %" PRIu64
                        " transactions)",
                        s->total[SRC], s->total[DST], n, s->prefix, vwindow_transactions(s->win)));
    s_batch_end(s);
}

static void s_multiset_pass(t_step_t *s)
{
    char *sql = xasprintf(
        "SELECT pg_catalog.get_byte(x.h, 0) AS b, pg_catalog.count(*) AS n,"
        " (pg_catalog.sum(('x' || pg_catalog.encode(pg_catalog.substr(x.h, 2, 7), 'hex'))"
        "   ::pg_catalog.bit(56)::pg_catalog.int8) %% 18446744073709551616)::pg_catalog.text AS s1,"
        " (pg_catalog.sum(('x' || pg_catalog.encode(pg_catalog.substr(x.h, 9, 7), 'hex'))"
        "   ::pg_catalog.bit(56)::pg_catalog.int8) %% 18446744073709551616)::pg_catalog.text AS s2"
        " FROM (SELECT %s AS h FROM %s t) x GROUP BY 1",
        s->hash_sql, s->table_sql);
    s->then = s_multiset_judge;
    if (s_send(s, SRC, "summing the table's rows by hash bucket", sql, 0, NULL, s_on_buckets))
        s_send(s, DST, "summing the table's rows by hash bucket", sql, 0, NULL, s_on_buckets);
    free(sql);
}

/* ---- start -------------------------------------------------------------- */

static void s_connect(t_step_t *s)
{
    s->then = s_table;
    for (int side = 0; side < 3; side++) {
        int rc = pgconn_connect(s->run.conn[side], s->connect_timeout_ms, s_on_connect, s);
        if (rc != 0) {
            steprun_failf(&s->run, "cannot start connecting: %s", strerror(-rc));
            return;
        }
        s->pending++;
    }
}

static void s_first(steprun_t *run)
{
    s_connect((t_step_t *)run);
}

static bool s_set(const char *v)
{
    return v && v[0];
}

/* Our verify slot's name: godwit_<migration>_verify (the coordinator's
 * naming); the agent touches no other. */
static bool s_slot_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 14 && n < 64 && strncmp(name, "godwit_", 7) == 0 &&
           strcmp(name + n - 7, "_verify") == 0;
}

step_t *table_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg)
{
    if (!loop || !local || !s_set(local->host) || local->port < 1 || local->port > 65535 ||
        local->connect_timeout_ms <= 0 || !done || !req || !req->table ||
        !s_set(req->table->schema) || !s_set(req->table->name) || !s_set(req->subscription) ||
        !s_set(req->slot) || !s_set(req->publication) || !s_slot_name_ok(req->verify_slot) ||
        !s_set(req->database) || !req->source || !s_set(req->source->peer) ||
        !s_set(req->source->dbname))
        return NULL;
    t_step_t *s = xcalloc(1, sizeof *s);
    s->timeout_ms = req->timeout_ms ? req->timeout_ms : T_DEFAULT_TIMEOUT_MS;
    s->slot_wait_ms = req->slot_wait_ms ? req->slot_wait_ms : T_DEFAULT_SLOT_WAIT_MS;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    char *options = xasprintf("-c statement_timeout=%" PRIu64 " -c search_path="
                              " -c default_transaction_read_only=on" ROWCHECK_PRINT_OPTIONS,
                              s->timeout_ms);
    s->run.conn[SRC] = step_remote_conn(loop, "verify source", local, req->source, false,
                                    "godwit-verify", options);
    s->run.conn[REPL] = step_remote_conn(loop, "verify slot (source)", local, req->source, true,
                                     "godwit-verify-slot", "-c search_path=");
    s->run.conn[DST] = step_local_conn(loop, "verify target", local, req->database, "godwit-verify",
                                   options);
    free(options);
    if (!s->run.conn[SRC] || !s->run.conn[DST] || !s->run.conn[REPL]) {
        for (int i = 0; i < 3; i++)
            pgconn_destroy(&s->run.conn[i]);
        free(s);
        return NULL;
    }
    s->req = wire_copy(req);
    if (!s->req) {
        for (int i = 0; i < 3; i++)
            pgconn_destroy(&s->run.conn[i]);
        free(s);
        return NULL;
    }
    s->started_ms = units_mono_ms();
    s->chunk_rows = req->chunk_rows ? req->chunk_rows : T_DEFAULT_CHUNK_ROWS;
    uint64_t batch = req->batch_rows ? req->batch_rows : T_DEFAULT_BATCH_ROWS;
    batch = batch / s->chunk_rows * s->chunk_rows;
    s->batch_rows = batch ? batch : s->chunk_rows;
    s->result = xmalloc(sizeof *s->result);
    godwit__verify_table_result__init(s->result);
    s->result->table = xmalloc(sizeof *s->result->table);
    godwit__table_ref__init(s->result->table);
    s->result->table->schema = xstrdup(req->table->schema);
    s->result->table->name = xstrdup(req->table->name);
    steprun_start(&s->run, loop, xasprintf("table %s.%s", req->table->schema, req->table->name),
                  done, arg, s_release, s_first);
    return &s->run.base;
}
