/*
 * vtchunk: the VerifyTable step's keyed comparison of a batch (see
 * vtchunk.h): the chunks, the key ranges of the batch and of the differing
 * chunks, the rows and their verdicts.
 *
 * SQL: the pieces vttable.c built; key values only as parameters, a set of
 * keys as one text[] per key column.
 */
#include "vtchunk.h"
#include "vtbatch.h"
#include "vtmultiset.h"
#include "vtresult.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQL pieces --------------------------------------------------------- */

/* "$first::type1" or "ROW($first::type1, ...)" for the key. Caller frees. */
static char *s_param_key(const vtstep_t *s, int first)
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

/* " AND key <op> bound" appended to *out, the bound's values to params
 * from *np on. */
static void s_bound_sql(const vtstep_t *s, char **out, const char *op, char *const *bound,
                        const char **params, int *np)
{
    char *p = s_param_key(s, *np + 1);
    char *grown = xasprintf("%s AND %s %s %s", *out, s->key_lhs, op, p);
    free(p);
    free(*out);
    *out = grown;
    for (size_t i = 0; i < s->n_keys; i++)
        params[(*np)++] = bound[i];
}

/* " AND key >= lower AND key < upper" with the values appended to params
 * from *np on (either bound NULL: open). Caller frees. */
static char *s_range_sql(const vtstep_t *s, char *const *lower, char *const *upper,
                         const char **params, int *np)
{
    char *out = xstrdup("");
    if (lower)
        s_bound_sql(s, &out, ">=", lower, params, np);
    if (upper)
        s_bound_sql(s, &out, "<", upper, params, np);
    return out;
}

/* "ROWS FROM (pg_catalog.unnest($first::type1[]), ...) w(a1, ...)": a
 * set of keys given as one text[] per key column. Caller frees. */
static char *s_keys_from(const vtstep_t *s, int first)
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
static char *s_excl_sql(const vtstep_t *s, const char **params, int *np)
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

/* ---- 6: keyed: the pass ------------------------------------------------- */

static void s_resum(vtstep_t *s);
static void s_wkeys(vtstep_t *s);

static void s_on_chunks(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    vtstep_side_t side = vtstep_side_of(s, c);
    int n = PQntuples(r->res);
    vtstep_chunk_t *ch = xcalloc((size_t)n + 1, sizeof *ch);
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
    vtstep_maybe_then(s);
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
static void s_chunk_judge(vtstep_t *s)
{
    size_t ns = s->n_chunks[VTSTEP_SRC], nd = s->n_chunks[VTSTEP_DST];
    vtstep_chunk_t *cs = s->chunks[VTSTEP_SRC];
    const vtstep_chunk_t *cd = s->chunks[VTSTEP_DST];
    if (s->total[VTSTEP_SRC] > s->batch_rows && ns > 0) {
        /* Row batch_rows + 1: alone in the chunk past the batch. */
        s->more = true;
        vtstep_strv_free(s->hi, s->hi ? s->n_keys : 0);
        s->hi = cs[ns - 1].first;
        cs[ns - 1].first = NULL;
        s->total[VTSTEP_SRC] -= cs[ns - 1].rows;
        ns = --s->n_chunks[VTSTEP_SRC];
    } else {
        vtstep_strv_free(s->hi, s->hi ? s->n_keys : 0);
        s->hi = NULL;
    }
    Godwit__VerifyTableResult *res = s->result;
    res->source_rows += s->total[VTSTEP_SRC];
    if (ns == 0) {
        /* An empty source: one chunk without rows, open at both ends. */
        s->n_chunks[VTSTEP_SRC] = ns = 1;
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
    uint64_t dst_in = s->total[VTSTEP_DST];
    if (s->more && nd == ns + 1 && cd[ns].rows == 1 && s_key_equal(cd[ns].first, s->hi, s->n_keys))
        dst_in--;
    if (dst_in > s->total[VTSTEP_SRC] && !s->flag[ns - 1]) {
        s->flag[ns - 1] = true;
        flagged++;
    }
    res->chunks_rechecked += (uint32_t)flagged;
    if (flagged == 0) {
        res->target_rows += s->total[VTSTEP_SRC];
        s_wkeys(s);
        return;
    }
    s_resum(s);
}

void vtchunk_pass(vtstep_t *s)
{
    if (!s->n_keys) {
        vtmultiset_pass(s);
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
        char *q = vtstep_ident(s, VTSTEP_SRC, s->cols[s->key_idx[k]]);
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
    vtstep_send_both(s, "summing the table in chunks", sql, np, params, s_on_chunks);
    free(sql);
}

/* ---- 6: keyed: the window's keys ----------------------------------------- */

static void s_judge(vtstep_t *s);
static void s_on_rows(pgconn_t *c, const pgconn_result_t *r, void *arg);

/* The rows of the window's keys within the batch, (key, hash) on both
 * sides: the sums left them out. */
static void s_wkeys(vtstep_t *s)
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
    vtstep_send_both(s, "reading the rows of the keys the window changed", sql, np, params,
                     s_on_rows);
    free(sql);
    free(range);
    free(from);
    free(params);
}

/* ---- 6: keyed: the target summed by the source's chunk bounds ----------- */

static void s_rows_read(vtstep_t *s);

/* The key bounds of the source's chunks 1..ns-1 as n_keys text[] literals
 * (caller frees each and the array). */
static char **s_bounds(const vtstep_t *s)
{
    size_t ns = s->n_chunks[VTSTEP_SRC];
    char **out = xcalloc(s->n_keys, sizeof *out);
    char **col = xcalloc(ns ? ns : 1, sizeof *col);
    for (size_t k = 0; k < s->n_keys; k++) {
        size_t n = 0;
        for (size_t i = 1; i < ns; i++)
            col[n++] = s->chunks[VTSTEP_SRC][i].first[k];
        out[k] = pgconn_text_array(col, n);
    }
    free(col);
    return out;
}

/* The region of the flagged chunks: lower and upper key (NULL: open). */
static void s_region(const vtstep_t *s, char ***lower, char ***upper)
{
    size_t ns = s->n_chunks[VTSTEP_SRC], first = ns, last = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!s->flag[i])
            continue;
        if (first == ns)
            first = i;
        last = i;
    }
    *lower = first == 0 ? s->lo : s->chunks[VTSTEP_SRC][first].first;
    *upper = last + 1 < ns ? s->chunks[VTSTEP_SRC][last + 1].first : s->hi;
}

/* A statement over the region: its condition (range), and its params: the
 * bounds, then the region's keys, np of them (room for one more). */
typedef struct {
    const char **params;
    int np;
    char **bounds;
    char *range;
} t_region_t;

/* Fills g; s_region_free frees what it holds. */
static void s_region_sql(vtstep_t *s, t_region_t *g)
{
    g->bounds = s_bounds(s);
    g->params = xcalloc(4 * s->n_keys + 2, sizeof *g->params);
    g->np = 0;
    for (size_t k = 0; k < s->n_keys; k++)
        g->params[g->np++] = g->bounds[k];
    char **lower, **upper;
    s_region(s, &lower, &upper);
    char *range = s_range_sql(s, lower, upper, g->params, &g->np);
    char *excl = s_excl_sql(s, g->params, &g->np);
    g->range = xasprintf("%s%s", range, excl);
    free(range);
    free(excl);
}

static void s_region_free(const vtstep_t *s, t_region_t *g)
{
    free(g->range);
    free(g->params);
    vtstep_strv_free(g->bounds, s->n_keys);
}

static void s_on_resum(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    size_t ns = s->n_chunks[VTSTEP_SRC];
    for (int i = 0; i < PQntuples(r->res); i++) {
        int64_t b = pgconn_col_i64(r->res, i, "b", -1);
        if (b < 0 || (size_t)b >= ns)
            continue;
        s->resum_rows[b] = pgconn_col_u64(r->res, i, "n");
        snprintf(s->resum_md5[b], 33, "%s", pgconn_col_str(r->res, i, "md5"));
    }
    vtstep_maybe_then(s);
}

static void s_resum_judge(vtstep_t *s)
{
    size_t ns = s->n_chunks[VTSTEP_SRC], left = 0;
    uint64_t target = s->total[VTSTEP_SRC];
    for (size_t i = 0; i < ns; i++) {
        if (!s->flag[i])
            continue;
        const vtstep_chunk_t *c = &s->chunks[VTSTEP_SRC][i];
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

static void s_resum(vtstep_t *s)
{
    t_region_t g;
    s_region_sql(s, &g);
    char *sql = xasprintf("SELECT %s AS b, pg_catalog.count(*) AS n,"
                          " pg_catalog.md5(pg_catalog.string_agg(%s, ''::pg_catalog.bytea ORDER BY"
                          " %s)) AS md5 FROM %s t WHERE true%s GROUP BY 1",
                          s->bucket_sql, s->hash_sql, s->key_order, s->table_sql, g.range);
    s->then = s_resum_judge;
    vtstep_send(s, VTSTEP_DST, "summing the differing chunks' ranges", sql, g.np, g.params,
                s_on_resum);
    free(sql);
    s_region_free(s, &g);
}

/* ---- 6: keyed: rows ----------------------------------------------------- */

static void s_on_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    vtstep_side_t side = vtstep_side_of(s, c);
    if (s->counting)
        *(side == VTSTEP_SRC ? &s->result->source_rows : &s->result->target_rows) +=
            (uint64_t)PQntuples(r->res);
    for (int i = 0; i < PQntuples(r->res); i++) {
        vtstep_row_t *row = vtstep_rows_add(&s->rows[side]);
        row->key = vtstep_key_of_result(r->res, i, s->n_keys);
        if (!vwindow_hash_parse(pgconn_col_str(r->res, i, "h"), row->hash)) {
            steprun_failf(&s->run, "reading rows: not a hash: \"%s\"", pgconn_col_str(r->res, i, "h"));
            return;
        }
    }
    vtstep_maybe_then(s);
}

static void s_rows_read(vtstep_t *s)
{
    t_region_t g;
    s_region_sql(s, &g);
    char *closed = vtstep_flags_array(s->flag, s->n_chunks[VTSTEP_SRC]);
    g.params[g.np++] = closed;
    char *sql = xasprintf("SELECT %s, pg_catalog.encode(%s, 'hex') AS h FROM %s t WHERE true%s"
                          " AND %s = ANY ($%d::pg_catalog.int4[])",
                          s->key_text, s->hash_sql, s->table_sql, g.range, s->bucket_sql, g.np);
    s->then = s_wkeys;
    vtstep_send_both(s, "reading the rows of the differing chunks", sql, g.np, g.params, s_on_rows);
    free(sql);
    free(closed);
    s_region_free(s, &g);
}

static const vtstep_row_t *s_rows_find(const vtstep_rows_t *set, const char *key)
{
    vtstep_row_t probe = { .key = (char *)key };
    return set->n ? bsearch(&probe, set->v, set->n, sizeof *set->v, vtstep_row_cmp) : NULL;
}

static const vtstep_full_t *s_base_find(const vtstep_fulls_t *set, const char *key)
{
    vtstep_full_t probe = { .key = (char *)key };
    return set->n ? bsearch(&probe, set->v, set->n, sizeof *set->v, vtstep_full_cmp) : NULL;
}

/* Every key whose hashes differ (or that one side lacks), once, in order:
 * fn(s, key) for each; false when fn ended the step. */
static bool s_each_differing(vtstep_t *s, bool (*fn)(vtstep_t *, const char *))
{
    const vtstep_rows_t *a = &s->rows[VTSTEP_SRC], *b = &s->rows[VTSTEP_DST];
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

static bool s_judge_key(vtstep_t *s, const char *key)
{
    const vtstep_row_t *a = s_rows_find(&s->rows[VTSTEP_SRC], key),
                       *b = s_rows_find(&s->rows[VTSTEP_DST], key);
    /* Also a key the window did not change: a TRUNCATE in the window may
     * explain its absence. */
    vwindow_verdict_t v;
    const vtstep_full_t *base = NULL;
    if (a && vwindow_needs_base(s->win, key))
        base = s_base_find(&s->base_rows, key);
    char why[512];
    if (!vwindow_judge(s->win, key, a ? a->hash : NULL, b ? b->hash : NULL,
                       base ? base->values : NULL, &v, why, sizeof why)) {
        steprun_failf(&s->run, "%s", why);
        return false;
    }
    if (v != VWINDOW_CONSISTENT)
        vtresult_diff_key(s, key, v);
    return true;
}

static void s_judge_all(vtstep_t *s)
{
    if (s_each_differing(s, s_judge_key))
        vtbatch_end(s);
}

static bool s_collect_need(vtstep_t *s, const char *key)
{
    if (s_rows_find(&s->rows[VTSTEP_SRC], key) && vwindow_needs_base(s->win, key)) {
        s->need = xrealloc(s->need, (s->n_need + 1) * sizeof *s->need);
        s->need[s->n_need++] = xstrdup(key);
    }
    return true;
}

static void s_on_base(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    for (int i = 0; i < PQntuples(r->res); i++) {
        vtstep_full_t *row = vtstep_fulls_add(&s->base_rows);
        row->key = vtstep_key_of_result(r->res, i, s->n_keys);
        row->values = vtstep_values_of_result(r->res, i, (int)s->n_keys, s->n_cols);
    }
    if (s->base_rows.n)
        qsort(s->base_rows.v, s->base_rows.n, sizeof *s->base_rows.v, vtstep_full_cmp);
    vtstep_maybe_then(s);
}

static void s_judge(vtstep_t *s)
{
    for (int side = 0; side < 2; side++)
        if (s->rows[side].n)
            qsort(s->rows[side].v, s->rows[side].n, sizeof *s->rows[side].v, vtstep_row_cmp);
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
    vtstep_send(s, VTSTEP_SRC, "reading the source's rows whose changes left TOASTed values out",
                sql, (int)s->n_keys, params, s_on_base);
    free(sql);
    free(from);
    for (size_t i = 0; i < s->n_need; i++)
        vtstep_strv_free(decoded[i], decoded[i] ? s->n_keys : 0);
    free(decoded);
    free(col);
    vtstep_strv_free(arrays, s->n_keys);
    free(params);
}
