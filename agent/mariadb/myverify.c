/*
 * myverify: see myverify.h. Each step is one chain of statements on its
 * one session, each sent from the previous one's callback; a failed
 * statement ends the step with myconn's wording of it.
 *
 * MyChecksum's chain: create godwit_verify; list the tables; their
 * columns; their primary keys; then for each range to cut (a whole table,
 * or a chunk of `within`) the loop bound -> replace -> read -> update,
 * one chunk a turn, until a bound query finds no row (or reaches the
 * range's upper bound); last, @@last_gtid. The bounds are taken one chunk
 * at a time, just before the chunk's REPLACE: rows written meanwhile only
 * move where chunks fall, never what a chunk means (its range), which is
 * what both servers evaluate.
 *
 * MariaDB 10.11, as checked on a server: the REPLACE ... SELECT in a
 * STATEMENT session is logged as the statement, with warning 1592
 * ("Unsafe statement written to the binary log using statement format
 * since BINLOG_FORMAT = STATEMENT. REPLACE... SELECT is unsafe ..."); the
 * replica's SQL thread computes this_* from its own rows. SET SESSION
 * binlog_format without SUPER/BINLOG ADMIN fails at connection (1227).
 * GROUP_CONCAT's SEPARATOR takes a literal only: the line break is written
 * in the literal as it is, which no sql_mode reinterprets.
 *
 * What it owns: the step, its session, the tables read, the ranges, the
 * result being built, copies of the request. Its lifecycle is mystep's
 * (mystep.h): the chain starts one loop turn after the start, and the
 * timer's close callback frees the step.
 */
#include "myverify.h"

#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mykey.h"
#include "mystep.h"
#include "mytext.h"
#include "xalloc.h"

#define S_DEADLINE_SLACK_MS 1000
#define S_CHUNK_ROWS_DEFAULT 1000
#define S_CHUNK_TRIES 20          /* a chunk rolled back by a lock conflict: sent again */
#define S_CHUNK_RETRY_MS 20       /* ... after this, doubled each time up to S_CHUNK_RETRY_MAX_MS */
#define S_CHUNK_RETRY_MAX_MS 1000
#define S_KEYS_MAX_ROWS 20        /* a chunk of at most this many rows keeps its keys */
#define S_WAIT_MS_DEFAULT 60000
#define S_NAME_MAX 64             /* godwit_verify's run and tbl: varchar(64) */
#define S_TABLE "godwit_verify"

typedef struct {
    char *name;                   /* as the server spells it */
    char *ident;                  /* quoted */
    size_t n_cols;
    char **cols;                  /* quoted */
    char **types;                 /* DATA_TYPE */
    mykey_kind_t *kind;
    char **charset;               /* NULL: none */
    size_t n_pk;
    char **pk_names;              /* as the server spells them */
    char **pk_cols;               /* quoted, key order */
    mykey_kind_t *pk_kind;
    char **pk_charset;
    bool ranged;                  /* chunks are ranges of the key */
    bool planned;                 /* a range of it is cut: a table of the result */
    uint32_t chunks;
    uint64_t rows;
} s_table_t;

/* A range to cut into chunks: a whole table, or a chunk of `within`. */
typedef struct {
    s_table_t *t;
    char **lower, **upper;
    size_t n_lower, n_upper;
} s_range_t;

typedef struct myverify myverify_t;

struct myverify {
    mystep_t step;                /* first: the lifecycle (mystep.h) */
    uv_loop_t *loop;
    myconn_t *conn;
    void (*first)(myverify_t *v); /* the chain's first statement */
    uint64_t timeout_ms;          /* each statement's deadline, its connection included */
    uint64_t t_start;
    char *database;
    char *run;
    char *run_lit;                /* run as a string literal */
    char *db_lit;                 /* MyChecksum: database as a string literal */

    /* MyChecksum */
    bool finish;
    uint32_t chunk_rows;
    char **want;                  /* the request's tables; n_want 0: every base table */
    size_t n_want;
    Godwit__MyChunk **within;     /* copies of the request's */
    size_t n_within;
    s_table_t *tables;
    size_t n_tables;
    s_range_t *ranges;
    size_t n_ranges, range;       /* the range being cut */
    char **cur_lower;             /* the chunk's lower bound: the previous one's upper */
    size_t n_cur_lower;
    char **cur_upper;             /* the chunk's upper bound */
    size_t n_cur_upper;
    bool last;                    /* the chunk is its range's last */
    char *tbl_lit;                /* the chunk's table as a string literal */
    uint32_t chunk;
    unsigned chunk_tries;         /* the chunk's statement rolled back by a lock conflict */
    Godwit__MyChecksumResult *sum;

    /* MyChecksumCompare */
    char *gtid;
    uint32_t wait_ms;
    Godwit__MyChecksumCompareResult *cmp;
};

/* ---- ending ------------------------------------------------------------------ */

static void s_table_free(s_table_t *t)
{
    mykey_strv_free(t->cols, t->n_cols);
    mykey_strv_free(t->types, t->n_cols);
    mykey_strv_free(t->charset, t->n_cols);
    free(t->kind);
    mykey_strv_free(t->pk_names, t->n_pk);
    mykey_strv_free(t->pk_cols, t->n_pk);
    mykey_strv_free(t->pk_charset, t->n_pk);
    free(t->pk_kind);
    free(t->name);
    free(t->ident);
}

static void s_close(mystep_t *s)
{
    myconn_destroy(&((myverify_t *)s)->conn);
}

static void s_release(mystep_t *s)
{
    myverify_t *v = (myverify_t *)s;
    for (size_t i = 0; i < v->n_tables; i++)
        s_table_free(&v->tables[i]);
    free(v->tables);
    for (size_t i = 0; i < v->n_ranges; i++) {
        mykey_strv_free(v->ranges[i].lower, v->ranges[i].n_lower);
        mykey_strv_free(v->ranges[i].upper, v->ranges[i].n_upper);
    }
    free(v->ranges);
    for (size_t i = 0; i < v->n_within; i++)
        godwit__my_chunk__free_unpacked(v->within[i], NULL);
    free(v->within);
    mykey_strv_free(v->want, v->n_want);
    mykey_strv_free(v->cur_lower, v->n_cur_lower);
    mykey_strv_free(v->cur_upper, v->n_cur_upper);
    if (v->sum)
        godwit__my_checksum_result__free_unpacked(v->sum, NULL);
    if (v->cmp)
        godwit__my_checksum_compare_result__free_unpacked(v->cmp, NULL);
    free(v->tbl_lit);
    free(v->database);
    free(v->run);
    free(v->run_lit);
    free(v->db_lit);
    free(v->gtid);
    free(v);
}

static void s_log_error(mystep_t *s, const char *error)
{
    myverify_t *v = (myverify_t *)s;
    log_warn("verify run %s of database %s: %s", v->run, v->database, error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* Ends the step with its result: MyChecksum's, or MyChecksumCompare's. */
static void s_succeed(myverify_t *v)
{
    ProtobufCMessage *payload = NULL;
    if (v->sum) {
        payload = &v->sum->base;
        v->sum = NULL;
    } else if (v->cmp) {
        payload = &v->cmp->base;
        v->cmp = NULL;
    }
    mystep_finish(&v->step, payload, NULL);
}

/* ---- running ----------------------------------------------------------------- */

/* Sends sql; what names it in a failure. A timeout other than the step's
 * when timeout_ms is not 0. */
static void s_query_t(myverify_t *v, const char *what, const char *sql, uint64_t timeout_ms,
                      myconn_cb cb)
{
    mystep_query(&v->step, v->conn, what, sql, timeout_ms ? timeout_ms : v->timeout_ms, cb, v);
}

static void s_query(myverify_t *v, const char *what, const char *sql, myconn_cb cb)
{
    s_query_t(v, what, sql, 0, cb);
}

/* s as a string literal of the session; NULL (the step ended) when the
 * connection is gone. */
static char *s_literal(myverify_t *v, const char *s)
{
    char *lit = myconn_escape_literal(v->conn, s);
    if (!lit)
        mystep_failf(&v->step, "%s: the connection is gone",
                     v->step.what ? v->step.what : "quoting a value");
    return lit;
}

static void s_on_kick(mystep_t *s)
{
    myverify_t *v = (myverify_t *)s;
    v->t_start = uv_now(v->loop);
    v->first(v);
}

static char **s_strv_dup(char *const *v, size_t n)
{
    if (n == 0)
        return NULL;
    char **d = xcalloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = xstrdup(v[i] ? v[i] : "");
    return d;
}

static bool s_strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* ---- MyChecksum: the table ------------------------------------------------- */

static void s_on_gtid(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    const char *g = r->n_rows == 1 ? myconn_col(r, 0, "gtid") : NULL;
    if (!g || !g[0]) {
        mystep_failf(&v->step, "%s: the session logged no GTID (is the binary log on?)",
                     v->step.what);
        return;
    }
    v->sum->gtid = xstrdup(g); /* was protobuf-c's empty default */
    v->sum->seconds = (double)(uv_now(v->loop) - v->t_start) / 1000.0;
    uint32_t chunks = 0;
    uint64_t rows = 0;
    v->sum->tables = xcalloc(v->n_tables ? v->n_tables : 1, sizeof *v->sum->tables);
    for (size_t i = 0; i < v->n_tables; i++) {
        const s_table_t *t = &v->tables[i];
        if (!t->planned)
            continue;
        Godwit__MyChecksumTable *st = xmalloc(sizeof *st);
        godwit__my_checksum_table__init(st);
        st->table = xstrdup(t->name);
        st->n_key_columns = t->n_pk;
        st->key_columns = s_strv_dup(t->pk_names, t->n_pk);
        st->chunks = t->chunks;
        st->source_rows = t->rows;
        v->sum->tables[v->sum->n_tables++] = st;
        chunks += t->chunks;
        rows += t->rows;
    }
    log_info("verify run %s of database %s: %u chunks of %zu tables checksummed on the source "
             "(%" PRIu64 " rows) in %.1f s, up to GTID %s",
             v->run, v->database, chunks, v->sum->n_tables, rows, v->sum->seconds, g);
    s_succeed(v);
}

static void s_read_gtid(myverify_t *v)
{
    s_query(v, "reading the session's last GTID (@@last_gtid)", "SELECT @@last_gtid AS gtid",
            s_on_gtid);
}

static void s_on_dropped(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    log_info("verify of database %s: table " S_TABLE " dropped", v->database);
    s_succeed(v);
}

static void s_drop(myverify_t *v)
{
    s_query(v, "dropping table " S_TABLE, "DROP TABLE IF EXISTS " S_TABLE, s_on_dropped);
}

/* ---- MyChecksum: chunks ------------------------------------------------------ */

static void s_range_next(myverify_t *v);
static void s_bound(myverify_t *v);

static mykey_key_t s_key(const s_table_t *t)
{
    return (mykey_key_t){ .n = t->n_pk,
                          .cols = (const char *const *)t->pk_cols,
                          .kind = t->pk_kind,
                          .charset = (const char *const *)t->pk_charset };
}

/* The WHERE condition from lower to upper of table t; NULL (the step
 * ended) for a value that is not of its column's form. */
static char *s_where(myverify_t *v, const s_table_t *t, char **lower, size_t n_lower,
                     char **upper, size_t n_upper)
{
    mykey_key_t key = s_key(t);
    char *w = NULL;
    if (!mykey_range_where(&key, (const char *const *)lower, n_lower,
                           (const char *const *)upper, n_upper, &w)) {
        mystep_failf(&v->step,
                     "table %s: a chunk's bounds are not %zu values of its key's columns "
                     "(a number's text, or hex digits)",
                     t->name, t->n_pk);
        return NULL;
    }
    return w;
}

/* The chunk's figures, as the source computed them, into its row: the
 * statement replicates, so the replica's row gets them too. */
static void s_on_updated(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    if (v->last) {
        v->range++;
        s_range_next(v);
        return;
    }
    mykey_strv_free(v->cur_lower, v->n_cur_lower);
    v->cur_lower = v->cur_upper;
    v->n_cur_lower = v->n_cur_upper;
    v->cur_upper = NULL;
    v->n_cur_upper = 0;
    s_bound(v);
}

static void s_on_read_back(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    s_table_t *t = v->ranges[v->range].t;
    const char *cnt = r->n_rows == 1 ? myconn_col(r, 0, "cnt") : NULL;
    const char *hash = r->n_rows == 1 ? myconn_col(r, 0, "hash") : NULL;
    const char *keys = r->n_rows == 1 ? myconn_col(r, 0, "k") : NULL;
    if (!cnt || !hash || !mykey_hex_text(hash)) {
        mystep_failf(&v->step, "%s: chunk %u of table %s has no figures", v->step.what, v->chunk,
                     t->name);
        return;
    }
    t->rows += strtoull(cnt, NULL, 10);
    char *hash_lit = xasprintf("'%s'", hash);
    char *keys_lit = keys ? s_literal(v, keys) : xstrdup("NULL");
    if (!keys_lit) {
        free(hash_lit);
        return;
    }
    char *sql = xasprintf("UPDATE " S_TABLE " SET src_cnt = %llu, src_hash = %s, src_keys = %s"
                          " WHERE run = %s AND tbl = %s AND chunk = %u",
                          strtoull(cnt, NULL, 10), hash_lit, keys_lit, v->run_lit, v->tbl_lit,
                          v->chunk);
    char *what = xasprintf("writing the source's figures of chunk %u of table %s", v->chunk,
                           t->name);
    s_query(v, what, sql, s_on_updated);
    free(what);
    free(sql);
    free(hash_lit);
    free(keys_lit);
}

static void s_replace(myverify_t *v);

/* A chunk's statement chosen as a deadlock's victim, or that waited too
 * long for a lock (the application's transactions update rows of the
 * chunk in another order: a hot row), was rolled back and is not in the
 * binary log: it is sent again, S_CHUNK_TRIES times at most, the first
 * S_CHUNK_RETRY_MS later, each wait twice the last up to
 * S_CHUNK_RETRY_MAX_MS (sent again at once, it met the same hot row's
 * lock order and lost again: 10 tries in 0.4 s all deadlocked under 1200
 * transactions a second on one row), as pt-table-checksum retries its
 * chunks. */
static void s_replace_again(mystep_t *s)
{
    s_replace((myverify_t *)s);
}

static void s_on_replaced(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok && (r->errnum == ER_LOCK_DEADLOCK || r->errnum == ER_LOCK_WAIT_TIMEOUT) &&
        ++v->chunk_tries < S_CHUNK_TRIES) {
        s_table_t *t = v->ranges[v->range].t;
        log_info("verify run %s: chunk %u of table %s: %s (%u); again (try %u of %d)", v->run,
                 v->chunk, t->name, r->error ? r->error : "", r->errnum, v->chunk_tries + 1,
                 S_CHUNK_TRIES);
        t->chunks--; /* s_replace numbers it again */
        uint64_t ms = (uint64_t)S_CHUNK_RETRY_MS << (v->chunk_tries < 6 ? v->chunk_tries - 1 : 6);
        mystep_after(&v->step, ms < S_CHUNK_RETRY_MAX_MS ? ms : S_CHUNK_RETRY_MAX_MS,
                     s_replace_again);
        return;
    }
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    v->chunk_tries = 0;
    s_table_t *t = v->ranges[v->range].t;
    char *sql = xasprintf("SELECT this_cnt AS cnt, this_hash AS hash, this_keys AS k"
                          " FROM " S_TABLE " WHERE run = %s AND tbl = %s AND chunk = %u",
                          v->run_lit, v->tbl_lit, v->chunk);
    char *what = xasprintf("reading the figures of chunk %u of table %s", v->chunk, t->name);
    s_query(v, what, sql, s_on_read_back);
    free(what);
    free(sql);
}

/* The row hash and the keys of table t's rows, for the REPLACE's select
 * list (mykey.h's forms, ISNULL flags after the values). */
static void s_add_figures(mytext_buf_t *b, const s_table_t *t)
{
    mytext_add(b, "COUNT(*), LPAD(CONV(BIT_XOR(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('#'");
    for (size_t j = 0; j < t->n_cols; j++) {
        char *sel = mykey_select(t->cols[j], t->kind[j]);
        mytext_add(b, ", ");
        mytext_add(b, sel);
        free(sel);
    }
    mytext_add(b, ", CONCAT(");
    for (size_t j = 0; j < t->n_cols; j++) {
        mytext_add(b, j ? ", ISNULL(" : "ISNULL(");
        mytext_add(b, t->cols[j]);
        mytext_add(b, ")");
    }
    mytext_add(b, "))), 1, 16), 16, 10) AS UNSIGNED)), 10, 16), 16, '0'), ");
    if (t->n_pk == 0) {
        mytext_add(b, "NULL");
        return;
    }
    char n[16];
    snprintf(n, sizeof n, "%d", S_KEYS_MAX_ROWS);
    mytext_add(b, "IF(COUNT(*) <= ");
    mytext_add(b, n);
    mytext_add(b, ", GROUP_CONCAT(CONCAT_WS(','");
    for (size_t k = 0; k < t->n_pk; k++) {
        char *sel = mykey_select(t->pk_cols[k], t->pk_kind[k]);
        mytext_add(b, ", ");
        mytext_add(b, sel);
        free(sel);
    }
    mytext_add(b, ") ORDER BY ");
    mykey_key_t key = s_key(t);
    char *order = mykey_order_by(&key);
    mytext_add(b, order);
    free(order);
    /* A line break in the literal itself: SEPARATOR takes no expression. */
    mytext_add(b, " SEPARATOR '\n'), NULL)");
}

/* A bound as godwit_verify keeps it: its text as a literal, or NULL. */
static char *s_bound_literal(myverify_t *v, char **vals, size_t n)
{
    char *text = NULL;
    if (!mykey_bound_text((const char *const *)vals, n, &text)) {
        mystep_failf(&v->step, "table %s: a bound's value holds a ','",
                     v->ranges[v->range].t->name);
        return NULL;
    }
    if (!text)
        return xstrdup("NULL");
    char *lit = s_literal(v, text);
    free(text);
    return lit;
}

/* The chunk from cur_lower to cur_upper: its figures, computed by the
 * statement that replicates as a statement. */
static void s_replace(myverify_t *v)
{
    s_table_t *t = v->ranges[v->range].t;
    v->chunk = ++t->chunks;
    char *where = s_where(v, t, v->cur_lower, v->n_cur_lower, v->cur_upper, v->n_cur_upper);
    if (!where)
        return;
    char *lo = s_bound_literal(v, v->cur_lower, v->n_cur_lower);
    char *hi = lo ? s_bound_literal(v, v->cur_upper, v->n_cur_upper) : NULL;
    if (!hi) {
        free(where);
        free(lo);
        return;
    }
    mytext_buf_t b = { 0 };
    char *head = xasprintf("REPLACE INTO " S_TABLE " (run, tbl, chunk, lo, hi, this_cnt, "
                           "this_hash, this_keys) SELECT %s, %s, %u, %s, %s, ",
                           v->run_lit, v->tbl_lit, v->chunk, lo, hi);
    mytext_add(&b, head);
    s_add_figures(&b, t);
    mytext_add(&b, " FROM ");
    mytext_add(&b, t->ident);
    mytext_add(&b, " WHERE ");
    mytext_add(&b, where);
    char *what = xasprintf("checksumming chunk %u of table %s", v->chunk, t->name);
    s_query(v, what, b.s, s_on_replaced);
    free(what);
    free(b.s);
    free(head);
    free(where);
    free(lo);
    free(hi);
}

static void s_on_bound(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    s_range_t *rg = &v->ranges[v->range];
    s_table_t *t = rg->t;
    mykey_strv_free(v->cur_upper, v->n_cur_upper);
    v->cur_upper = NULL;
    v->n_cur_upper = 0;
    if (r->n_rows == 0) {
        /* Fewer rows than a chunk are left: up to the range's end. */
        v->cur_upper = s_strv_dup(rg->upper, rg->n_upper);
        v->n_cur_upper = rg->n_upper;
        v->last = true;
    } else {
        if (r->n_cols != t->n_pk) {
            mystep_failf(&v->step, "%s: %zu columns returned, %zu expected", v->step.what,
                         r->n_cols, t->n_pk);
            return;
        }
        for (size_t k = 0; k < t->n_pk; k++)
            if (!r->rows[0][k]) {
                mystep_failf(&v->step, "%s: a primary key column read as NULL", v->step.what);
                return;
            }
        v->cur_upper = s_strv_dup(r->rows[0], t->n_pk);
        v->n_cur_upper = t->n_pk;
        /* Exactly at the range's end: nothing is left above it. */
        v->last = s_strv_equal(v->cur_upper, v->n_cur_upper, rg->upper, rg->n_upper);
    }
    s_replace(v);
}

/* The next chunk's upper bound: the key of the row chunk_rows - 1 after
 * cur_lower, within the range. */
static void s_bound(myverify_t *v)
{
    s_range_t *rg = &v->ranges[v->range];
    s_table_t *t = rg->t;
    char *where = s_where(v, t, v->cur_lower, v->n_cur_lower, rg->upper, rg->n_upper);
    if (!where)
        return;
    mytext_buf_t b = { 0 };
    mytext_add(&b, "SELECT ");
    for (size_t k = 0; k < t->n_pk; k++) {
        char *sel = mykey_select(t->pk_cols[k], t->pk_kind[k]);
        if (k)
            mytext_add(&b, ", ");
        mytext_add(&b, sel);
        free(sel);
    }
    mykey_key_t key = s_key(t);
    char *order = mykey_order_by(&key);
    char *tail = xasprintf(" FROM %s WHERE %s ORDER BY %s LIMIT 1 OFFSET %u", t->ident, where,
                           order, v->chunk_rows - 1);
    mytext_add(&b, tail);
    char *what = xasprintf("finding the end of chunk %u of table %s", t->chunks + 1, t->name);
    s_query(v, what, b.s, s_on_bound);
    free(what);
    free(b.s);
    free(tail);
    free(order);
    free(where);
}

/* The next range, or the end. */
static void s_range_next(myverify_t *v)
{
    if (v->step.disposed)
        return;
    if (v->range == v->n_ranges) {
        s_read_gtid(v);
        return;
    }
    s_range_t *rg = &v->ranges[v->range];
    free(v->tbl_lit);
    v->tbl_lit = s_literal(v, rg->t->name);
    if (!v->tbl_lit)
        return;
    mykey_strv_free(v->cur_lower, v->n_cur_lower);
    v->cur_lower = s_strv_dup(rg->lower, rg->n_lower);
    v->n_cur_lower = rg->n_lower;
    mykey_strv_free(v->cur_upper, v->n_cur_upper);
    v->cur_upper = NULL;
    v->n_cur_upper = 0;
    v->last = false;
    if (rg->t->ranged) {
        s_bound(v);
        return;
    }
    /* One chunk: the whole table. */
    v->last = true;
    s_replace(v);
}

/* ---- MyChecksum: the tables -------------------------------------------------- */

static s_table_t *s_table_find(myverify_t *v, const char *name)
{
    for (size_t i = 0; name && i < v->n_tables; i++)
        if (strcmp(v->tables[i].name, name) == 0)
            return &v->tables[i];
    return NULL;
}

/* The ranges to cut and the result's tables, once the tables are known. */
static void s_plan(myverify_t *v)
{
    for (size_t i = 0; i < v->n_tables; i++) {
        s_table_t *t = &v->tables[i];
        t->ranged = t->n_pk > 0;
        for (size_t k = 0; k < t->n_pk; k++) {
            size_t j = 0;
            while (j < t->n_cols && strcmp(t->cols[j], t->pk_cols[k]) != 0)
                j++;
            if (j == t->n_cols) {
                mystep_failf(&v->step, "table %s: primary key column %s is not among its columns",
                             t->name, t->pk_names[k]);
                return;
            }
            t->pk_kind[k] = t->kind[j];
            t->pk_charset[k] = t->charset[j] ? xstrdup(t->charset[j]) : NULL;
            t->ranged = t->ranged && mykey_range_type(t->types[j]);
        }
        if (t->n_pk > 0 && !t->ranged)
            log_warn("verify run %s of database %s: table %s has a primary key of a type "
                     "chunks are not cut on: it is one chunk",
                     v->run, v->database, t->name);
    }
    if (v->n_within == 0) {
        v->ranges = xcalloc(v->n_tables ? v->n_tables : 1, sizeof *v->ranges);
        for (size_t i = 0; i < v->n_tables; i++) {
            v->ranges[v->n_ranges++] = (s_range_t){ .t = &v->tables[i] };
            v->tables[i].planned = true;
        }
    } else {
        v->ranges = xcalloc(v->n_within, sizeof *v->ranges);
        for (size_t i = 0; i < v->n_within; i++) {
            const Godwit__MyChunk *w = v->within[i];
            s_table_t *t = s_table_find(v, w->table);
            if (!t) {
                mystep_failf(&v->step, "within: table %s is not a table of database %s", w->table,
                             v->database);
                return;
            }
            if (!t->ranged && (w->n_lower || w->n_upper)) {
                mystep_failf(&v->step,
                             "within: table %s is one chunk (no primary key to cut on): its "
                             "chunk has no bounds",
                             t->name);
                return;
            }
            if ((w->n_lower && w->n_lower != t->n_pk) || (w->n_upper && w->n_upper != t->n_pk)) {
                mystep_failf(&v->step,
                             "within: a chunk of table %s has bounds of %zu and %zu values; its "
                             "key has %zu columns",
                             t->name, w->n_lower, w->n_upper, t->n_pk);
                return;
            }
            t->planned = true;
            v->ranges[v->n_ranges++] = (s_range_t){
                .t = t,
                .lower = s_strv_dup(w->lower, w->n_lower),
                .n_lower = w->n_lower,
                .upper = s_strv_dup(w->upper, w->n_upper),
                .n_upper = w->n_upper,
            };
        }
    }
    log_info("verify run %s of database %s: %zu tables, %zu ranges, %u rows a chunk", v->run,
             v->database, v->n_tables, v->n_ranges, v->chunk_rows);
    v->range = 0;
    s_range_next(v);
}

static void s_on_pk(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        s_table_t *t = s_table_find(v, myconn_col(r, i, "tbl"));
        const char *col = myconn_col(r, i, "col");
        if (!t || !col)
            continue;
        size_t k = t->n_pk++;
        t->pk_names = xrealloc(t->pk_names, t->n_pk * sizeof *t->pk_names);
        t->pk_cols = xrealloc(t->pk_cols, t->n_pk * sizeof *t->pk_cols);
        t->pk_kind = xrealloc(t->pk_kind, t->n_pk * sizeof *t->pk_kind);
        t->pk_charset = xrealloc(t->pk_charset, t->n_pk * sizeof *t->pk_charset);
        t->pk_names[k] = xstrdup(col);
        t->pk_cols[k] = mytext_ident(col);
        t->pk_kind[k] = MYKEY_HEX;
        t->pk_charset[k] = NULL;
    }
    s_plan(v);
}

static void s_on_columns(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        s_table_t *t = s_table_find(v, myconn_col(r, i, "tbl"));
        const char *col = myconn_col(r, i, "col");
        const char *type = myconn_col(r, i, "type");
        const char *cs = myconn_col(r, i, "cs");
        if (!t || !col || !type)
            continue;
        size_t j = t->n_cols++;
        t->cols = xrealloc(t->cols, t->n_cols * sizeof *t->cols);
        t->types = xrealloc(t->types, t->n_cols * sizeof *t->types);
        t->kind = xrealloc(t->kind, t->n_cols * sizeof *t->kind);
        t->charset = xrealloc(t->charset, t->n_cols * sizeof *t->charset);
        t->cols[j] = mytext_ident(col);
        t->types[j] = xstrdup(type);
        t->kind[j] = mykey_kind(type);
        t->charset[j] = cs ? xstrdup(cs) : NULL;
    }
    for (size_t i = 0; i < v->n_tables; i++)
        if (v->tables[i].n_cols == 0) {
            mystep_failf(&v->step, "table %s: no columns read", v->tables[i].name);
            return;
        }
    char *sql = xasprintf("SELECT TABLE_NAME AS tbl, COLUMN_NAME AS col"
                          " FROM information_schema.STATISTICS"
                          " WHERE TABLE_SCHEMA = %s AND INDEX_NAME = 'PRIMARY'"
                          " ORDER BY TABLE_NAME, SEQ_IN_INDEX",
                          v->db_lit);
    s_query(v, "reading the tables' primary keys", sql, s_on_pk);
    free(sql);
}

/* information_schema compares names case-insensitively: the answer is
 * filtered here by the exact bytes. */
static void s_on_tables(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    v->tables = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *v->tables);
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *db = myconn_col(r, i, "db");
        const char *name = myconn_col(r, i, "name");
        if (!db || !name || strcmp(db, v->database) != 0 || strcmp(name, S_TABLE) == 0 ||
            s_table_find(v, name))
            continue;
        bool wanted = v->n_want == 0;
        for (size_t k = 0; k < v->n_want && !wanted; k++)
            wanted = strcmp(v->want[k], name) == 0;
        if (!wanted)
            continue;
        s_table_t *t = &v->tables[v->n_tables++];
        t->name = xstrdup(name);
        t->ident = mytext_ident(name);
    }
    for (size_t k = 0; k < v->n_want; k++)
        if (!s_table_find(v, v->want[k])) {
            mystep_failf(&v->step, "table %s is not a base table of database %s", v->want[k],
                         v->database);
            return;
        }
    char *sql = xasprintf("SELECT TABLE_NAME AS tbl, COLUMN_NAME AS col, DATA_TYPE AS type,"
                          " CHARACTER_SET_NAME AS cs"
                          " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
                          " ORDER BY TABLE_NAME, ORDINAL_POSITION",
                          v->db_lit);
    s_query(v, "reading the tables' columns", sql, s_on_columns);
    free(sql);
}

static void s_on_created(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    /* The literals the statements below share, made once: the session's
     * character set stays the same (SET NAMES, at every connection). */
    free(v->run_lit);
    v->run_lit = s_literal(v, v->run);
    v->db_lit = v->run_lit ? s_literal(v, v->database) : NULL;
    if (!v->db_lit)
        return;
    /* A system-versioned table is a base table with its history. */
    char *sql = xasprintf("SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name"
                          " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                          " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"
                          " ORDER BY TABLE_NAME",
                          v->db_lit);
    s_query(v, "reading the database's tables", sql, s_on_tables);
    free(sql);
}

static void s_create(myverify_t *v);

/* The session's first statement, so that a refused init statement (SET
 * SESSION binlog_format needs SUPER or BINLOG ADMIN) is reported as what
 * it is; and a check that the format is the one the verify rests on. */
static void s_on_format(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    const char *f = r->n_rows == 1 ? myconn_col(r, 0, "f") : NULL;
    if (!f || strcmp(f, "STATEMENT") != 0) {
        mystep_failf(&v->step, "%s: the session's binlog_format is %s, not STATEMENT", v->step.what,
                     f ? f : "NULL");
        return;
    }
    v->finish ? s_drop(v) : s_create(v);
}

static void s_session(myverify_t *v)
{
    s_query(v,
            "opening a session with binlog_format = STATEMENT (SET SESSION binlog_format "
            "needs SUPER or BINLOG ADMIN)",
            "SELECT @@SESSION.binlog_format AS f", s_on_format);
}

/* utf8mb4_bin: a table's name is compared as its bytes, whatever the
 * database's character set. */
static void s_create(myverify_t *v)
{
    s_query(v, "creating table " S_TABLE,
            "CREATE TABLE IF NOT EXISTS " S_TABLE " (run varchar(64) NOT NULL,"
            " tbl varchar(64) NOT NULL, chunk int unsigned NOT NULL, lo text, hi text,"
            " this_cnt bigint, this_hash char(16), this_keys mediumtext, src_cnt bigint,"
            " src_hash char(16), src_keys mediumtext, PRIMARY KEY (run, tbl, chunk))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            s_on_created);
}

/* ---- MyChecksumCompare --------------------------------------------------------- */

static uint64_t s_u64(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

static void s_on_different(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    Godwit__MyChecksumCompareResult *cmp = v->cmp;
    cmp->different = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *cmp->different);
    for (size_t i = 0; i < r->n_rows; i++) {
        Godwit__MyChunk *ch = xmalloc(sizeof *ch);
        godwit__my_chunk__init(ch);
        const char *tbl = myconn_col(r, i, "tbl");
        const char *src_cnt = myconn_col(r, i, "src_cnt");
        const char *src_hash = myconn_col(r, i, "src_hash");
        const char *this_hash = myconn_col(r, i, "this_hash");
        ch->table = xstrdup(tbl ? tbl : "");
        ch->chunk = (uint32_t)s_u64(myconn_col(r, i, "chunk"));
        ch->n_lower = mykey_bound_parse(myconn_col(r, i, "lo"), &ch->lower);
        ch->n_upper = mykey_bound_parse(myconn_col(r, i, "hi"), &ch->upper);
        ch->source_rows = s_u64(src_cnt);
        ch->source_hash = xstrdup(src_hash ? src_hash : "");
        ch->target_rows = s_u64(myconn_col(r, i, "this_cnt"));
        ch->target_hash = xstrdup(this_hash ? this_hash : "");
        ch->n_source_keys = mykey_lines(myconn_col(r, i, "src_keys"), &ch->source_keys);
        ch->n_target_keys = mykey_lines(myconn_col(r, i, "this_keys"), &ch->target_keys);
        if (!src_cnt || !src_hash)
            log_warn("verify run %s of database %s: chunk %u of table %s has no source "
                     "figures on the target (the source's UPDATE of them has not arrived): "
                     "taken as different",
                     v->run, v->database, ch->chunk, ch->table);
        cmp->different[cmp->n_different++] = ch;
    }
    log_info("verify run %s of database %s: %u chunks on the target (%" PRIu64 " rows), %zu "
             "different",
             v->run, v->database, cmp->chunks, cmp->target_rows, cmp->n_different);
    s_succeed(v);
}

static void s_on_counted(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    v->cmp->chunks = (uint32_t)s_u64(r->n_rows == 1 ? myconn_col(r, 0, "n") : NULL);
    v->cmp->target_rows = s_u64(r->n_rows == 1 ? myconn_col(r, 0, "nrows") : NULL);
    char *sql = xasprintf("SELECT tbl, chunk, lo, hi, this_cnt, this_hash, this_keys, src_cnt,"
                          " src_hash, src_keys FROM " S_TABLE " WHERE run = %s"
                          " AND (this_cnt IS NULL OR src_cnt IS NULL OR this_hash IS NULL"
                          " OR src_hash IS NULL OR this_cnt <> src_cnt OR this_hash <> src_hash)"
                          " ORDER BY tbl, chunk",
                          v->run_lit);
    s_query(v, "reading the run's chunks that differ", sql, s_on_different);
    free(sql);
}

static void s_count(myverify_t *v)
{
    free(v->run_lit);
    v->run_lit = s_literal(v, v->run);
    if (!v->run_lit)
        return;
    char *sql = xasprintf("SELECT COUNT(*) AS n, COALESCE(SUM(this_cnt), 0) AS nrows"
                          " FROM " S_TABLE " WHERE run = %s",
                          v->run_lit);
    s_query(v, "counting the run's chunks", sql, s_on_counted);
    free(sql);
}

static void s_on_waited(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myverify_t *v = arg;
    if (!r->ok) {
        mystep_fail_query(&v->step, NULL, r);
        return;
    }
    const char *w = r->n_rows == 1 ? myconn_col(r, 0, "w") : NULL;
    if (w && strcmp(w, "-1") == 0) {
        mystep_failf(&v->step, "the target did not reach the source's position %s in %g s", v->gtid,
                     v->wait_ms / 1000.0);
        return;
    }
    if (!w || strcmp(w, "0") != 0) {
        mystep_failf(&v->step, "%s: answered %s", v->step.what, w ? w : "NULL");
        return;
    }
    s_count(v);
}

static void s_wait(myverify_t *v)
{
    char *sql = xasprintf("SELECT MASTER_GTID_WAIT('%s', %u.%03u) AS w", v->gtid,
                          v->wait_ms / 1000, v->wait_ms % 1000);
    char *what = xasprintf("waiting for the source's position %s (MASTER_GTID_WAIT)", v->gtid);
    s_query_t(v, what, sql, v->timeout_ms + v->wait_ms, s_on_waited);
    free(what);
    free(sql);
}

/* ---- starting ------------------------------------------------------------------ */

/* A GTID list as the server writes one: digits, '-' and ','. */
static bool s_gtid_text(const char *s)
{
    if (!s || !s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == ','))
            return false;
    return true;
}

static bool s_name_ok(const char *s)
{
    return s && s[0] && strlen(s) <= S_NAME_MAX;
}

static myverify_t *s_new(uv_loop_t *loop, const myverify_local_t *local, const char *label,
                         const char *database, const char *const *init,
                         void (*first)(myverify_t *), step_done_cb done, void *arg)
{
    myconn_params_t sp = local->server;
    sp.database = database;
    sp.init = init;
    myconn_t *conn = myconn_new(loop, label, &sp);
    if (!conn)
        return NULL;
    myverify_t *v = xcalloc(1, sizeof *v);
    mystep_init(&v->step, loop, &s_ops, done, arg);
    v->loop = loop;
    v->conn = conn;
    v->first = first;
    v->timeout_ms =
        local->server.connect_timeout_ms + local->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    v->database = xstrdup(database);
    return v;
}

static bool s_local_ok(uv_loop_t *loop, const myverify_local_t *local, step_done_cb done)
{
    return loop && local && done && local->statement_timeout_ms > 0;
}

step_t *myverify_checksum_start(uv_loop_t *loop, const myverify_local_t *local,
                                const Godwit__MyChecksum *req, step_done_cb done, void *arg,
                                char **why)
{
    if (!s_local_ok(loop, local, done) || !req) {
        *why = xstrdup("my_checksum: invalid request");
        return NULL;
    }
    if (!req->database || !req->database[0]) {
        *why = xstrdup("my_checksum: no database: nothing was done");
        return NULL;
    }
    if (!req->finish && !s_name_ok(req->run)) {
        *why = xasprintf("my_checksum: run \"%s\" is not a name of 1 to %d characters: nothing "
                         "was done",
                         req->run ? req->run : "", S_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < req->n_within; i++)
        if (!req->within[i] || !req->within[i]->table || !req->within[i]->table[0]) {
            *why = xstrdup("my_checksum: a chunk of within names no table: nothing was done");
            return NULL;
        }
    /* STATEMENT: the replica runs the REPLACE ... SELECT over its own rows. */
    const char *init[] = { "SET SESSION binlog_format = 'STATEMENT'", "SET NAMES utf8mb4",
                           "SET SESSION time_zone = '+00:00'",
                           "SET SESSION group_concat_max_len = 1048576", NULL };
    myverify_t *v = s_new(loop, local, "agent my_checksum", req->database, init,
                          s_session, done, arg);
    if (!v) {
        *why = xstrdup("my_checksum: invalid connection parameters for the local server");
        return NULL;
    }
    v->finish = req->finish;
    v->run = xstrdup(req->run && req->run[0] ? req->run : "(finish)");
    v->chunk_rows = req->chunk_rows ? req->chunk_rows : S_CHUNK_ROWS_DEFAULT;
    v->n_want = req->n_tables;
    v->want = s_strv_dup(req->tables, req->n_tables);
    if (req->n_within) {
        v->within = xcalloc(req->n_within, sizeof *v->within);
        for (size_t i = 0; i < req->n_within; i++) {
            /* A copy: the request is borrowed for the start call only. */
            Godwit__MyChunk *w = xmalloc(sizeof *w);
            godwit__my_chunk__init(w);
            w->table = xstrdup(req->within[i]->table);
            w->n_lower = req->within[i]->n_lower;
            w->lower = s_strv_dup(req->within[i]->lower, w->n_lower);
            w->n_upper = req->within[i]->n_upper;
            w->upper = s_strv_dup(req->within[i]->upper, w->n_upper);
            v->within[v->n_within++] = w;
        }
    }
    v->sum = xmalloc(sizeof *v->sum);
    godwit__my_checksum_result__init(v->sum);
    return mystep_defer(&v->step, s_on_kick);
}

step_t *myverify_compare_start(uv_loop_t *loop, const myverify_local_t *local,
                               const Godwit__MyChecksumCompare *req, step_done_cb done,
                               void *arg, char **why)
{
    if (!s_local_ok(loop, local, done) || !req) {
        *why = xstrdup("my_checksum_compare: invalid request");
        return NULL;
    }
    if (!req->database || !req->database[0] || !s_name_ok(req->run)) {
        *why = xasprintf("my_checksum_compare: a database and a run (1 to %d characters) are "
                         "needed: nothing was done",
                         S_NAME_MAX);
        return NULL;
    }
    if (!s_gtid_text(req->gtid)) {
        *why = xasprintf("my_checksum_compare: \"%s\" is not a GTID position (domain-server-"
                         "sequence): nothing was done",
                         req->gtid ? req->gtid : "");
        return NULL;
    }
    const char *init[] = { "SET SESSION TRANSACTION READ ONLY", NULL };
    myverify_t *v = s_new(loop, local, "agent my_checksum_compare", req->database, init, s_wait,
                          done, arg);
    if (!v) {
        *why = xstrdup("my_checksum_compare: invalid connection parameters for the local "
                       "server");
        return NULL;
    }
    v->run = xstrdup(req->run);
    v->gtid = xstrdup(req->gtid);
    v->wait_ms = req->wait_ms ? req->wait_ms : S_WAIT_MS_DEFAULT;
    v->cmp = xmalloc(sizeof *v->cmp);
    godwit__my_checksum_compare_result__init(v->cmp);
    return mystep_defer(&v->step, s_on_kick);
}
