/*
 * rowcheck: see rowcheck.h.
 */
#include "rowcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* What one statement may bind (the protocol counts parameters in 16 bits). */
#define RC_MAX_PARAMS 65535

char *rowcheck_sql(pgconn_t *conn, const Godwit__CheckRows *c, const char ***params,
                   int *nparams, char *why, size_t whylen)
{
    *params = NULL;
    *nparams = 0;
    if (!c->table || !c->table->schema || !c->table->name || c->n_key_columns == 0) {
        snprintf(why, whylen, "a table of the final check has no name or no key column");
        return NULL;
    }
    size_t w = c->n_key_columns;
    if (c->n_keys > RC_MAX_PARAMS / w) {
        snprintf(why, whylen, "table %s.%s: %zu keys of %zu columns are more than one statement "
                 "binds", c->table->schema, c->table->name, c->n_keys, w);
        return NULL;
    }
    for (size_t i = 0; i < c->n_keys; i++)
        if (c->keys[i]->n_key != w) {
            snprintf(why, whylen, "table %s.%s: a key of %zu values for %zu key columns",
                     c->table->schema, c->table->name, c->keys[i]->n_key, w);
            return NULL;
        }
    char *schema = pgconn_escape_identifier(conn, c->table->schema);
    char *name = pgconn_escape_identifier(conn, c->table->name);
    char **cols = xcalloc(w, sizeof *cols);
    bool ok = schema && name;
    for (size_t k = 0; ok && k < w; k++)
        ok = (cols[k] = pgconn_escape_identifier(conn, c->key_columns[k])) != NULL;
    if (!ok) {
        snprintf(why, whylen, "table %s.%s: cannot quote a name", c->table->schema,
                 c->table->name);
        free(schema);
        free(name);
        for (size_t k = 0; k < w; k++)
            free(cols[k]);
        free(cols);
        return NULL;
    }
    /* SELECT (t.a)::text AS k1, ..., md5(to_jsonb(t)::text) AS h FROM s.n t
     * WHERE (t.a, t.b) IN (($1, $2), ...): no keys, no rows (WHERE false). */
    size_t cap = 256 + 64 * w + c->n_keys * (w * 10 + 6) + strlen(schema) + strlen(name);
    for (size_t k = 0; k < w; k++)
        cap += 2 * strlen(cols[k]);
    char *sql = xmalloc(cap);
    size_t len = 0;
#define RC_PUT(...) len += (size_t)snprintf(sql + len, cap - len, __VA_ARGS__)
    RC_PUT("SELECT ");
    for (size_t k = 0; k < w; k++)
        RC_PUT("(t.%s)::pg_catalog.text AS k%zu, ", cols[k], k + 1);
    RC_PUT("pg_catalog.md5(pg_catalog.to_jsonb(t)::pg_catalog.text) AS h FROM %s.%s t WHERE ",
           schema, name);
    if (c->n_keys == 0) {
        RC_PUT("false");
    } else {
        RC_PUT(w > 1 ? "(" : "");
        for (size_t k = 0; k < w; k++)
            RC_PUT("%st.%s", k ? ", " : "", cols[k]);
        RC_PUT("%s IN (", w > 1 ? ")" : "");
        for (size_t i = 0; i < c->n_keys; i++) {
            RC_PUT("%s%s", i ? ", " : "", w > 1 ? "(" : "");
            for (size_t k = 0; k < w; k++)
                RC_PUT("%s$%zu", k ? ", " : "", i * w + k + 1);
            RC_PUT("%s", w > 1 ? ")" : "");
        }
        RC_PUT(")");
    }
#undef RC_PUT
    free(schema);
    free(name);
    for (size_t k = 0; k < w; k++)
        free(cols[k]);
    free(cols);
    if (len >= cap) { /* cap is an upper bound: cannot happen */
        free(sql);
        snprintf(why, whylen, "table %s.%s: the statement did not fit", c->table->schema,
                 c->table->name);
        return NULL;
    }
    if (c->n_keys) {
        *params = xcalloc(c->n_keys * w, sizeof **params);
        for (size_t i = 0; i < c->n_keys; i++)
            for (size_t k = 0; k < w; k++)
                (*params)[i * w + k] = c->keys[i]->key[k];
    }
    *nparams = (int)(c->n_keys * w);
    return sql;
}

int rowcheck_send(pgconn_t *conn, const Godwit__CheckRows *c, uint64_t timeout_ms,
                  pgconn_result_cb cb, void *arg, char *why, size_t whylen)
{
    const char **params = NULL;
    int np = 0;
    char *sql = rowcheck_sql(conn, c, &params, &np, why, whylen);
    if (!sql)
        return -1;
    int rc = pgconn_query(conn, sql, np, params, timeout_ms, cb, arg);
    free(sql);
    free(params);
    if (rc != 0) {
        snprintf(why, whylen, "cannot send the statement: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

Godwit__CheckedRows *rowcheck_rows_new(const Godwit__CheckRows *c, const PGresult *res)
{
    Godwit__CheckedRows *out = xmalloc(sizeof *out);
    godwit__checked_rows__init(out);
    out->table = xmalloc(sizeof *out->table);
    godwit__table_ref__init(out->table);
    out->table->schema = xstrdup(c->table && c->table->schema ? c->table->schema : "");
    out->table->name = xstrdup(c->table && c->table->name ? c->table->name : "");
    int n = res ? PQntuples(res) : 0;
    size_t w = c->n_key_columns;
    if (n > 0)
        out->rows = xcalloc((size_t)n, sizeof *out->rows);
    for (int i = 0; i < n; i++) {
        Godwit__RowDigest *d = xmalloc(sizeof *d);
        godwit__row_digest__init(d);
        d->key = w ? xcalloc(w, sizeof *d->key) : NULL;
        for (size_t k = 0; k < w; k++) {
            char col[32];
            snprintf(col, sizeof col, "k%zu", k + 1);
            d->key[k] = xstrdup(pgconn_col_str(res, i, col));
        }
        d->n_key = w;
        d->md5 = xstrdup(pgconn_col_str(res, i, "h"));
        out->rows[out->n_rows++] = d;
    }
    return out;
}
