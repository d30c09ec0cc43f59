/*
 * mykey: see mykey.h. Text only: no connection, no state, no logging.
 */
#include "mykey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mytext.h"
#include "xalloc.h"

static bool s_in(const char *type, const char *const *list)
{
    for (size_t i = 0; type && list[i]; i++)
        if (strcmp(type, list[i]) == 0)
            return true;
    return false;
}

mykey_kind_t mykey_kind(const char *data_type)
{
    static const char *const numeric[] = { "tinyint", "smallint", "mediumint", "int", "bigint",
                                           "decimal", "double", "year", NULL };
    if (s_in(data_type, numeric))
        return MYKEY_NUM;
    if (data_type && strcmp(data_type, "float") == 0)
        return MYKEY_FLOAT;
    return MYKEY_HEX;
}

bool mykey_range_type(const char *data_type)
{
    static const char *const ok[] = { "tinyint", "smallint", "mediumint", "int", "bigint",
                                      "decimal", "year", "char", "varchar", "binary",
                                      "varbinary", "tinytext", "text", "mediumtext", "longtext",
                                      "tinyblob", "blob", "mediumblob", "longblob", "date",
                                      "time", "datetime", "timestamp", NULL };
    return s_in(data_type, ok);
}

char *mykey_select(const char *qcol, mykey_kind_t kind)
{
    switch (kind) {
    case MYKEY_HEX:
        return xasprintf("HEX(%s)", qcol);
    case MYKEY_FLOAT:
        return xasprintf("CAST(%s AS DOUBLE)", qcol);
    case MYKEY_NUM:
    default:
        return xstrdup(qcol);
    }
}

bool mykey_number_text(const char *v)
{
    bool digit = false;
    if (!v || !v[0])
        return false;
    for (; *v; v++) {
        if (*v >= '0' && *v <= '9')
            digit = true;
        else if (!(*v == '-' || *v == '+' || *v == '.' || *v == 'e' || *v == 'E'))
            return false;
    }
    return digit;
}

bool mykey_hex_text(const char *v)
{
    if (!v)
        return false;
    for (; *v; v++)
        if (!((*v >= '0' && *v <= '9') || (*v >= 'A' && *v <= 'F') || (*v >= 'a' && *v <= 'f')))
            return false;
    return true;
}

bool mykey_literal_add(mytext_buf_t *b, const char *v, mykey_kind_t kind, const char *charset)
{
    if (kind != MYKEY_HEX) {
        if (!mykey_number_text(v))
            return false;
        mytext_add(b, v);
        return true;
    }
    if (!mykey_hex_text(v))
        return false;
    if (mytext_plain_name(charset) && strcmp(charset, "binary") != 0) {
        mytext_add(b, "_");
        mytext_add(b, charset);
        mytext_add(b, " ");
    }
    mytext_add(b, strlen(v) % 2 ? "X'0" : "X'");
    mytext_add(b, v);
    mytext_add(b, "'");
    return true;
}

char *mykey_literal(const char *v, mykey_kind_t kind, const char *charset)
{
    mytext_buf_t b = { 0 };
    if (!mykey_literal_add(&b, v, kind, charset)) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* One side of a range: k1 OP1 v1 OR (k1 = v1 AND k2 OP1 v2) OR ...; the
 * last term's operator is last_op (upper: <=), the others op. */
static bool s_side(mytext_buf_t *b, const mykey_key_t *key, const char *const *v, const char *op,
                   const char *last_op)
{
    char **lit = xcalloc(key->n, sizeof *lit);
    bool ok = true;
    for (size_t i = 0; i < key->n && ok; i++) {
        lit[i] = mykey_literal(v[i], key->kind[i], key->charset ? key->charset[i] : NULL);
        ok = lit[i] != NULL;
    }
    if (ok) {
        mytext_add(b, "(");
        for (size_t k = 0; k < key->n; k++) {
            if (k)
                mytext_add(b, " OR ");
            mytext_add(b, "(");
            for (size_t e = 0; e <= k; e++) {
                if (e)
                    mytext_add(b, " AND ");
                mytext_add(b, key->cols[e]);
                mytext_add(b, e < k ? " = " : k + 1 == key->n ? last_op : op);
                mytext_add(b, lit[e]);
            }
            mytext_add(b, ")");
        }
        mytext_add(b, ")");
    }
    for (size_t i = 0; i < key->n; i++)
        free(lit[i]);
    free(lit);
    return ok;
}

bool mykey_range_where(const mykey_key_t *key, const char *const *lower, size_t n_lower,
                       const char *const *upper, size_t n_upper, char **out)
{
    *out = NULL;
    if ((n_lower != 0 && n_lower != key->n) || (n_upper != 0 && n_upper != key->n))
        return false;
    mytext_buf_t b = { 0 };
    bool ok = true;
    if (n_lower)
        ok = s_side(&b, key, lower, " > ", " > ");
    if (ok && n_upper) {
        if (n_lower)
            mytext_add(&b, " AND ");
        ok = s_side(&b, key, upper, " < ", " <= ");
    }
    if (!ok) {
        free(b.s);
        return false;
    }
    *out = b.s ? b.s : xstrdup("TRUE");
    return true;
}

char *mykey_order_by(const mykey_key_t *key)
{
    mytext_buf_t b = { 0 };
    mytext_add(&b, "");
    for (size_t k = 0; k < key->n; k++) {
        if (k)
            mytext_add(&b, ", ");
        mytext_add(&b, key->cols[k]);
    }
    return b.s;
}

bool mykey_bound_text(const char *const *v, size_t n, char **out)
{
    *out = NULL;
    if (n == 0)
        return true;
    mytext_buf_t b = { 0 };
    mytext_add(&b, "");
    for (size_t i = 0; i < n; i++) {
        if (!v[i] || strchr(v[i], ',')) {
            free(b.s);
            return false;
        }
        if (i)
            mytext_add(&b, ",");
        mytext_add(&b, v[i]);
    }
    *out = b.s;
    return true;
}

/* text cut at every sep: at least one piece. */
static size_t s_split(const char *text, char sep, char ***out)
{
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == sep;
    char **v = xcalloc(n, sizeof *v);
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, sep);
        size_t len = end ? (size_t)(end - start) : strlen(start);
        v[i] = xmalloc(len + 1);
        memcpy(v[i], start, len);
        v[i][len] = '\0';
        start = end ? end + 1 : start + len;
    }
    *out = v;
    return n;
}

size_t mykey_bound_parse(const char *text, char ***out)
{
    *out = NULL;
    if (!text)
        return 0;
    return s_split(text, ',', out);
}

size_t mykey_lines(const char *text, char ***out)
{
    *out = NULL;
    if (!text || !text[0])
        return 0;
    return s_split(text, '\n', out);
}

void mykey_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}
