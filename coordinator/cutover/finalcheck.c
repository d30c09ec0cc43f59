/*
 * finalcheck: see finalcheck.h.
 */
#include "finalcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* ---- the questions ------------------------------------------------------ */

static char **fc_strings(const cJSON *arr, size_t *n)
{
    *n = 0;
    int len = cJSON_GetArraySize(arr);
    if (len <= 0)
        return NULL;
    char **v = xcalloc((size_t)len, sizeof *v);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            for (size_t i = 0; i < *n; i++)
                free(v[i]);
            free(v);
            *n = 0;
            return NULL;
        }
        v[(*n)++] = xstrdup(it->valuestring);
    }
    return v;
}

/* One table's question, or NULL when it has no key or nothing recent (or
 * is malformed: an old report without "schema" and "name"). */
static Godwit__CheckRows *fc_question(const cJSON *table)
{
    const cJSON *rec = cJSON_GetObjectItem(table, "recent");
    const char *schema = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "schema"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "name"));
    const cJSON *keys = cJSON_GetObjectItem(rec, "keys");
    if (!schema || !name || cJSON_GetArraySize(keys) <= 0)
        return NULL;
    size_t w = 0;
    char **cols = fc_strings(cJSON_GetObjectItem(rec, "key_columns"), &w);
    if (!w)
        return NULL;
    Godwit__CheckRows *q = xmalloc(sizeof *q);
    godwit__check_rows__init(q);
    q->table = xmalloc(sizeof *q->table);
    godwit__table_ref__init(q->table);
    q->table->schema = xstrdup(schema);
    q->table->name = xstrdup(name);
    q->key_columns = cols;
    q->n_key_columns = w;
    q->keys = xcalloc((size_t)cJSON_GetArraySize(keys), sizeof *q->keys);
    const cJSON *k;
    cJSON_ArrayForEach(k, keys)
    {
        size_t kw = 0;
        char **vals = fc_strings(k, &kw);
        if (kw != w) { /* not a key of this table: left out */
            for (size_t i = 0; i < kw; i++)
                free(vals[i]);
            free(vals);
            continue;
        }
        Godwit__RowKey *rk = xmalloc(sizeof *rk);
        godwit__row_key__init(rk);
        rk->key = vals;
        rk->n_key = kw;
        q->keys[q->n_keys++] = rk;
    }
    if (!q->n_keys) {
        godwit__check_rows__free_unpacked(q, NULL);
        return NULL;
    }
    return q;
}

Godwit__CheckRows **finalcheck_questions_new(const cJSON *verify, size_t *n)
{
    *n = 0;
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(verify, "state"));
    const cJSON *tables = cJSON_GetObjectItem(verify, "tables");
    if (!state || strcmp(state, "equal") != 0 || cJSON_GetArraySize(tables) <= 0)
        return NULL;
    Godwit__CheckRows **q = xcalloc((size_t)cJSON_GetArraySize(tables), sizeof *q);
    const cJSON *t;
    cJSON_ArrayForEach(t, tables)
    {
        Godwit__CheckRows *one = fc_question(t);
        if (one)
            q[(*n)++] = one;
    }
    if (!*n) {
        free(q);
        return NULL;
    }
    return q;
}

void finalcheck_free(Godwit__CheckRows **q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        godwit__check_rows__free_unpacked(q[i], NULL);
    free(q);
}

/* ---- the comparison ----------------------------------------------------- */

/* A row of an answer, its key as one string (each value length-prefixed,
 * so no separator can be forged by a value). */
typedef struct {
    char *key;
    const Godwit__RowDigest *row;
} fc_row_t;

static int fc_row_cmp(const void *a, const void *b)
{
    return strcmp(((const fc_row_t *)a)->key, ((const fc_row_t *)b)->key);
}

static fc_row_t *fc_rows(const Godwit__CheckedRows *c, size_t *n)
{
    *n = c->n_rows;
    fc_row_t *v = c->n_rows ? xcalloc(c->n_rows, sizeof *v) : NULL;
    for (size_t i = 0; i < c->n_rows; i++) {
        size_t len = 1;
        for (size_t k = 0; k < c->rows[i]->n_key; k++)
            len += strlen(c->rows[i]->key[k]) + 24;
        char *s = xmalloc(len);
        size_t at = 0;
        s[0] = '\0';
        for (size_t k = 0; k < c->rows[i]->n_key; k++)
            at += (size_t)snprintf(s + at, len - at, "%zu:%s;", strlen(c->rows[i]->key[k]),
                                   c->rows[i]->key[k]);
        v[i].key = s;
        v[i].row = c->rows[i];
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, fc_row_cmp);
    return v;
}

static void fc_rows_free(fc_row_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

static void fc_add(cJSON *list, size_t *count, const Godwit__CheckRows *q,
                   const Godwit__RowDigest *row, const char *kind)
{
    (*count)++;
    if (cJSON_GetArraySize(list) >= FINALCHECK_MAX_SHOWN)
        return;
    cJSON *d = cJSON_CreateObject();
    char name[600];
    snprintf(name, sizeof name, "%s.%s", q->table->schema, q->table->name);
    cJSON_AddStringToObject(d, "table", name);
    cJSON *key = cJSON_AddObjectToObject(d, "key");
    for (size_t k = 0; row && k < row->n_key && k < q->n_key_columns; k++)
        cJSON_AddStringToObject(key, q->key_columns[k], row->key[k]);
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddItemToArray(list, d);
}

static bool fc_fits(const Godwit__CheckRows *q, const Godwit__CheckedRows *a)
{
    if (!a || !a->table || !a->table->schema || !a->table->name ||
        strcmp(a->table->schema, q->table->schema) != 0 ||
        strcmp(a->table->name, q->table->name) != 0)
        return false;
    for (size_t i = 0; i < a->n_rows; i++)
        if (a->rows[i]->n_key != q->n_key_columns || !a->rows[i]->md5)
            return false;
    return true;
}

cJSON *finalcheck_compare(Godwit__CheckRows *const *q, size_t n,
                          Godwit__CheckedRows *const *from, size_t n_from,
                          Godwit__CheckedRows *const *to, size_t n_to, size_t *differences)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    size_t count = 0, keys = 0, rows = 0;
    for (size_t t = 0; t < n; t++) {
        keys += q[t]->n_keys;
        const Godwit__CheckedRows *a = t < n_from ? from[t] : NULL;
        const Godwit__CheckedRows *b = t < n_to ? to[t] : NULL;
        if (!fc_fits(q[t], a) || !fc_fits(q[t], b)) {
            fc_add(list, &count, q[t], NULL, "unanswered");
            continue;
        }
        rows += a->n_rows;
        size_t na, nb;
        fc_row_t *ra = fc_rows(a, &na), *rb = fc_rows(b, &nb);
        size_t i = 0, j = 0;
        while (i < na || j < nb) {
            int c = i == na ? 1 : j == nb ? -1 : strcmp(ra[i].key, rb[j].key);
            if (c < 0) {
                fc_add(list, &count, q[t], ra[i++].row, "missing_on_target");
            } else if (c > 0) {
                fc_add(list, &count, q[t], rb[j++].row, "extra_on_target");
            } else {
                if (strcmp(ra[i].row->md5, rb[j].row->md5) != 0)
                    fc_add(list, &count, q[t], ra[i].row, "changed");
                i++;
                j++;
            }
        }
        fc_rows_free(ra, na);
        fc_rows_free(rb, nb);
    }
    cJSON_AddNumberToObject(o, "tables", (double)n);
    cJSON_AddNumberToObject(o, "keys", (double)keys);
    cJSON_AddNumberToObject(o, "rows", (double)rows);
    cJSON_AddItemToObject(o, "differences", list);
    cJSON_AddNumberToObject(o, "difference_count", (double)count);
    *differences = count;
    return o;
}

char *finalcheck_summary(const cJSON *report)
{
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(report, "differences"), 0);
    double count = cJSON_GetNumberValue(cJSON_GetObjectItem(report, "difference_count"));
    if (!first)
        return xstrdup("no difference");
    char *key = cJSON_PrintUnformatted(cJSON_GetObjectItem(first, "key"));
    char more[48] = "";
    if (count > 1)
        snprintf(more, sizeof more, " (and %.0f more)", count - 1);
    char *s = xasprintf("table %s key %s %s%s",
                        cJSON_GetStringValue(cJSON_GetObjectItem(first, "table")),
                        key ? key : "{}",
                        cJSON_GetStringValue(cJSON_GetObjectItem(first, "kind")), more);
    free(key);
    return s;
}
