/*
 * vtmultiset: the VerifyTable step's comparison of a table without a key
 * (see vtmultiset.h): the buckets, the rows of those that differ, and the
 * rows reported.
 */
#include "vtmultiset.h"
#include "log.h"
#include "vtbatch.h"
#include "vtresult.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- 6: a multiset ------------------------------------------------------ */

static void s_on_buckets(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    vtstep_side_t side = vtstep_side_of(s, c);
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
    vtstep_maybe_then(s);
}

static void s_multiset_diff(vtstep_t *s);

static void s_on_mrows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    vtstep_side_t side = vtstep_side_of(s, c);
    for (int i = 0; i < PQntuples(r->res); i++) {
        vtstep_full_t *row = vtstep_fulls_add(&s->mrows[side]);
        if (!vwindow_hash_parse(pgconn_col_str(r->res, i, "h"), row->hash)) {
            row->values = xcalloc(s->n_cols, sizeof *row->values);
            steprun_failf(&s->run, "reading rows: not a hash: \"%s\"", pgconn_col_str(r->res, i, "h"));
            return;
        }
        row->values = vtstep_values_of_result(r->res, i, 1, s->n_cols);
    }
    vtstep_maybe_then(s);
}

static void s_multiset_judge(vtstep_t *s)
{
    Godwit__VerifyTableResult *res = s->result;
    res->source_rows = s->total[VTSTEP_SRC];
    res->target_rows = s->total[VTSTEP_DST];
    res->chunks = 1;
    size_t left = vwindow_multiset_match(s->win, s->buckets[VTSTEP_SRC], s->buckets[VTSTEP_DST],
                                         &s->prefix, s->mismatched);
    if (left == 0) {
        vtbatch_end(s);
        return;
    }
    res->chunks_rechecked = 1;
    log_debug("verify %s: %zu of %d buckets differ after the window's first %zu transactions",
              s->run.label, left, VWINDOW_BUCKETS, s->prefix);
    char *closed = vtstep_flags_array(s->mismatched, VWINDOW_BUCKETS);
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
    vtstep_send_both(s, "reading the rows of the differing buckets", sql, 1, params, s_on_mrows);
    free(sql);
    free(cols);
    free(closed);
}

static void s_multiset_diff(vtstep_t *s)
{
    vwindow_row_t *rows[2];
    for (int side = 0; side < 2; side++) {
        const vtstep_fulls_t *f = &s->mrows[side];
        rows[side] = xcalloc(f->n ? f->n : 1, sizeof *rows[side]);
        for (size_t i = 0; i < f->n; i++) {
            memcpy(rows[side][i].hash, f->v[i].hash, VWINDOW_HASH_LEN);
            rows[side][i].values = f->v[i].values;
        }
    }
    uint64_t n = vwindow_multiset_diff(s->win, s->prefix, s->mismatched, rows[VTSTEP_SRC],
                                       s->mrows[VTSTEP_SRC].n, rows[VTSTEP_DST],
                                       s->mrows[VTSTEP_DST].n, vtresult_on_multiset_diff, s);
    free(rows[VTSTEP_SRC]);
    free(rows[VTSTEP_DST]);
    if (n == 0) {
        /* Bucket sums differed and no row does: two rows' hashes would have
         * to collide in 56-bit sums; say so rather than call it equal. */
        steprun_failf(&s->run, "the buckets' sums differ but no row does: the digest cannot be trusted here");
        return;
    }
    vtresult_str_set(&s->result->detail,
                     xasprintf("no key: %" PRIu64 " rows on the source, %" PRIu64
                               " on the target; %" PRIu64
                               " rows differ (after the first %zu of the window's %" PRIu64
                               " transactions)",
                               s->total[VTSTEP_SRC], s->total[VTSTEP_DST], n, s->prefix,
                               vwindow_transactions(s->win)));
    vtbatch_end(s);
}

void vtmultiset_pass(vtstep_t *s)
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
    vtstep_send_both(s, "summing the table's rows by hash bucket", sql, 0, NULL, s_on_buckets);
    free(sql);
}
