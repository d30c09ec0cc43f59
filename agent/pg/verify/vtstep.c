/*
 * vtstep: the VerifyTable step's state and what every stage of it uses
 * (see vtstep.h): the containers of rows read, the statements on the three
 * connections, and the freeing of a batch and of the step.
 */
#include "vtstep.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

const char *const vtstep_side_names[] = { "source", "target", "source (replication)" };

/* ---- small things ------------------------------------------------------- */

void vtstep_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void s_rows_clear(vtstep_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].key);
    r->n = 0;
}

static void s_rows_free(vtstep_rows_t *r)
{
    s_rows_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

void *vtstep_grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n == *cap) {
        *cap = *cap ? 2 * *cap : first;
        v = xrealloc(v, *cap * size);
    }
    return v;
}

vtstep_row_t *vtstep_rows_add(vtstep_rows_t *r)
{
    r->v = vtstep_grow(r->v, r->n, &r->cap, sizeof *r->v, 256);
    vtstep_row_t *row = &r->v[r->n++];
    memset(row, 0, sizeof *row);
    return row;
}

int vtstep_row_cmp(const void *a, const void *b)
{
    return strcmp(((const vtstep_row_t *)a)->key, ((const vtstep_row_t *)b)->key);
}

static void s_fulls_clear(vtstep_fulls_t *f, size_t n_cols)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].key);
        for (size_t k = 0; k < n_cols; k++)
            free(f->v[i].values[k]);
        free(f->v[i].values);
    }
    f->n = 0;
}

static void s_fulls_free(vtstep_fulls_t *f, size_t n_cols)
{
    s_fulls_clear(f, n_cols);
    free(f->v);
    f->v = NULL;
    f->cap = 0;
}

vtstep_full_t *vtstep_fulls_add(vtstep_fulls_t *f)
{
    f->v = vtstep_grow(f->v, f->n, &f->cap, sizeof *f->v, 64);
    vtstep_full_t *row = &f->v[f->n++];
    memset(row, 0, sizeof *row);
    return row;
}

int vtstep_full_cmp(const void *a, const void *b)
{
    return strcmp(((const vtstep_full_t *)a)->key, ((const vtstep_full_t *)b)->key);
}

static void s_chunks_free(vtstep_chunk_t *c, size_t n, size_t n_keys)
{
    for (size_t i = 0; c && i < n; i++)
        vtstep_strv_free(c[i].first, c[i].first ? n_keys : 0);
    free(c);
}

char *vtstep_flags_array(const bool *flags, size_t n)
{
    char *list = xstrdup("{");
    for (size_t i = 0; i < n; i++) {
        if (!flags[i])
            continue;
        char *grown = xasprintf("%s%s%zu", list, list[1] ? "," : "", i);
        free(list);
        list = grown;
    }
    char *closed = xasprintf("%s}", list);
    free(list);
    return closed;
}

char *vtstep_key_of_result(const PGresult *res, int row, size_t n)
{
    char **v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t k = 0; k < n; k++)
        v[k] = PQgetvalue(res, row, (int)k);
    char *enc = vwindow_key_encode(v, n);
    free(v);
    return enc;
}

char **vtstep_values_of_result(const PGresult *res, int row, int from, size_t n)
{
    char **v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = PQgetisnull(res, row, from + (int)i) ? NULL
                                                     : xstrdup(PQgetvalue(res, row, from + (int)i));
    return v;
}

/* ---- finishing ---------------------------------------------------------- */

void vtstep_batch_reset(vtstep_t *s)
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
    vtstep_strv_free(s->need, s->n_need);
    s->need = NULL;
    s->n_need = 0;
    free(s->flag);
    free(s->resum_rows);
    free(s->resum_md5);
    s->flag = NULL;
    s->resum_rows = NULL;
    s->resum_md5 = NULL;
    vwindow_destroy(&s->win);
    vtstep_strv_free(s->wk_arrays, s->wk_arrays ? s->n_keys : 0);
    s->wk_arrays = NULL;
    s->n_wk = 0;
    free(s->snapshot);
    s->snapshot = NULL;
    s->more = false;
    s->counting = false;
    s->create_retried = false;
}

void vtstep_release(steprun_t *run)
{
    vtstep_t *s = (vtstep_t *)run;
    vtstep_batch_reset(s);
    if (s->req)
        godwit__verify_table__free_unpacked(s->req, NULL);
    if (s->result)
        godwit__verify_table_result__free_unpacked(s->result, NULL);
    vtstep_strv_free(s->cols, s->n_cols);
    vtstep_strv_free(s->key_types, s->n_keys);
    free(s->key_idx);
    vtstep_strv_free(s->lo, s->lo ? s->n_keys : 0);
    vtstep_strv_free(s->hi, s->hi ? s->n_keys : 0);
    s_rows_free(&s->rows[VTSTEP_SRC]);
    s_rows_free(&s->rows[VTSTEP_DST]);
    s_fulls_free(&s->base_rows, s->n_cols);
    s_fulls_free(&s->mrows[VTSTEP_SRC], s->n_cols);
    s_fulls_free(&s->mrows[VTSTEP_DST], s->n_cols);
    free(s->buckets[VTSTEP_SRC]);
    free(s->buckets[VTSTEP_DST]);
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

vtstep_side_t vtstep_side_of(const vtstep_t *s, const pgconn_t *c)
{
    return c == s->run.conn[VTSTEP_SRC]   ? VTSTEP_SRC
           : c == s->run.conn[VTSTEP_DST] ? VTSTEP_DST
                                          : VTSTEP_REPL;
}

void vtstep_fail_query(vtstep_t *s, vtstep_side_t side, const pgconn_result_t *r)
{
    steprun_fail_query(&s->run, vtstep_side_names[side], r);
}

/* ---- statements --------------------------------------------------------- */

bool vtstep_send(vtstep_t *s, vtstep_side_t side, const char *what, const char *sql, int nparams,
                 const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, side, what, sql, nparams, params,
                  s->timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
    if (s->run.disposed)
        return false;
    s->pending++;
    return true;
}

void vtstep_send_both(vtstep_t *s, const char *what, const char *sql, int nparams,
                      const char *const *params, pgconn_result_cb cb)
{
    if (vtstep_send(s, VTSTEP_SRC, what, sql, nparams, params, cb))
        vtstep_send(s, VTSTEP_DST, what, sql, nparams, params, cb);
}

bool vtstep_send_simple(vtstep_t *s, vtstep_side_t side, const char *what, const char *sql,
                        uint64_t timeout_ms, pgconn_result_cb cb)
{
    steprun_query_simple(&s->run, side, what, sql, timeout_ms, cb);
    if (s->run.disposed)
        return false;
    s->pending++;
    return true;
}

bool vtstep_arrived(vtstep_t *s, pgconn_t *c, const pgconn_result_t *r)
{
    s->pending--;
    if (s->run.disposed)
        return false;
    if (!r->ok) {
        vtstep_fail_query(s, vtstep_side_of(s, c), r);
        return false;
    }
    return true;
}

void vtstep_maybe_then(vtstep_t *s)
{
    if (s->pending == 0 && !s->run.disposed) {
        vtstep_fn fn = s->then;
        s->then = NULL;
        if (fn)
            fn(s);
    }
}

void vtstep_on_plain(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    vtstep_maybe_then(s);
}

char *vtstep_ident(vtstep_t *s, vtstep_side_t side, const char *ident)
{
    char *q = pgconn_escape_identifier(s->run.conn[side], ident);
    if (!q)
        steprun_failf(&s->run, "cannot quote the name \"%s\" for SQL", ident);
    return q;
}
