/*
 * vwindow: see vwindow.h. The window keeps every change of its table as a
 * record, in the order decoding gave them (which is commit order: decoding
 * emits a transaction whole, at its commit):
 *   keyed     one record per key touched: the new row (values, possibly
 *             with unchanged TOASTed ones still to fill in), or "absent"
 *             (a delete, or the old key of an update that changed the key);
 *   multiset  one record per row added (+1) or removed (-1), hashed at once
 *             (an update is both; its unchanged values come from the old row
 *             in the same message, which REPLICA IDENTITY FULL carries whole);
 *   either    a record for a TRUNCATE of the table.
 * Sealing sorts keyed records by key (then arrival), so one key's history is
 * a run found by binary search.
 *
 * A version counts as visible only at the end of its transaction (the last
 * record of that key in it): the target never shows a row in the middle of
 * one of the source's transactions.
 */
#include "vwindow.h"
#include "xalloc.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char vwindow_unchanged[] = "(unchanged TOAST value)";

typedef struct {
    char *key;              /* keyed: encoded; multiset: NULL */
    size_t seq;             /* arrival order */
    size_t txn;             /* 1-based among the transactions that changed the table */
    bool truncate;          /* a TRUNCATE of the table (nothing else set) */
    bool absent;            /* keyed: the row is gone after this */
    int sign;               /* multiset: +1 added, -1 removed */
    char **values;          /* n_columns owned strings (NULL: SQL NULL; may be
                               VWINDOW_UNCHANGED, keyed only); NULL when absent */
    uint8_t hash[VWINDOW_HASH_LEN]; /* multiset */
} w_change_t;

typedef struct {
    const char *key;        /* borrowed from a change */
    size_t last_seq;
} w_key_t;

struct vwindow {
    char *schema, *name;
    char **columns;
    size_t n_columns;
    size_t *key;
    size_t n_key;
    bool sealed;

    /* The relation as the last Relation message for it described it. */
    uint32_t relid;         /* 0: not seen yet */
    bool have_rel;
    size_t n_rel;           /* its columns */
    size_t *ours_to_rel;    /* n_columns: where each compared column is in its tuples */

    /* Transactions: the one being fed, and how many changed the table. */
    bool txn_counted;
    size_t n_txn;

    w_change_t *ch;
    size_t n_ch, cap_ch;
    size_t n_truncates;

    w_key_t *keys;          /* sealed, keyed: distinct keys, latest change first */
    size_t n_keys;
};

/* ---- rows ---------------------------------------------------------------- */

static bool s_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

void vwindow_row_hash(char *const *values, size_t n, uint8_t out[VWINDOW_HASH_LEN])
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        if (values[i])
            cap += 2 * strlen(values[i]) + 3;
    char *buf = xmalloc(cap), *p = buf;
    *p++ = '(';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        const char *v = values[i];
        if (!v)
            continue;
        bool quote = v[0] == '\0';
        for (const char *t = v; *t && !quote; t++)
            quote = *t == '"' || *t == '\\' || *t == '(' || *t == ')' || *t == ',' ||
                    s_is_space(*t);
        if (quote)
            *p++ = '"';
        for (const char *t = v; *t; t++) {
            if (*t == '"' || *t == '\\')
                *p++ = *t;
            *p++ = *t;
        }
        if (quote)
            *p++ = '"';
    }
    *p++ = ')';
    crypto_hash_sha256(out, (const unsigned char *)buf, (unsigned long long)(p - buf));
    free(buf);
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool vwindow_hash_parse(const char *hex, uint8_t out[VWINDOW_HASH_LEN])
{
    if (!hex || strlen(hex) != 2 * VWINDOW_HASH_LEN)
        return false;
    for (size_t i = 0; i < VWINDOW_HASH_LEN; i++) {
        int hi = s_hex(hex[2 * i]), lo = s_hex(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

char *vwindow_key_encode(char *const *values, size_t n)
{
    size_t len = 1;
    for (size_t k = 0; k < n; k++)
        len += strlen(values[k]) + 24;
    char *out = xmalloc(len), *p = out;
    for (size_t k = 0; k < n; k++)
        p += sprintf(p, "%zu:%s", strlen(values[k]), values[k]);
    *p = '\0';
    return out;
}

char **vwindow_key_decode(const char *enc, size_t n)
{
    char **out = xcalloc(n ? n : 1, sizeof *out);
    const char *p = enc;
    for (size_t k = 0; k < n; k++) {
        char *colon;
        unsigned long len = strtoul(p, &colon, 10);
        if (colon == p || *colon != ':' || strlen(colon + 1) < len) {
            for (size_t j = 0; j < k; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
        out[k] = xmalloc(len + 1);
        memcpy(out[k], colon + 1, len);
        out[k][len] = '\0';
        p = colon + 1 + len;
    }
    return out;
}

static uint64_t s_be56(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 7; i++)
        v = v << 8 | b[i];
    return v;
}

void vwindow_bucket_add(vwindow_bucket_t *buckets, const uint8_t hash[VWINDOW_HASH_LEN], int sign)
{
    vwindow_bucket_t *b = &buckets[hash[0]];
    uint64_t v1 = s_be56(hash + 1), v2 = s_be56(hash + 8);
    if (sign > 0) {
        b->n++;
        b->s1 += v1;
        b->s2 += v2;
    } else {
        b->n--;
        b->s1 -= v1;
        b->s2 -= v2;
    }
}

/* ---- a window ------------------------------------------------------------ */

static char *s_strndup(const char *data, size_t len)
{
    char *s = xmalloc(len + 1);
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

vwindow_t *vwindow_new(const char *schema, const char *name, char *const *columns,
                       size_t n_columns, const size_t *key, size_t n_key)
{
    if (!schema || !name || !columns || n_columns == 0 || (n_key && !key))
        return NULL;
    for (size_t i = 0; i < n_key; i++)
        if (key[i] >= n_columns)
            return NULL;
    vwindow_t *w = xcalloc(1, sizeof *w);
    w->schema = xstrdup(schema);
    w->name = xstrdup(name);
    w->n_columns = n_columns;
    w->columns = xcalloc(n_columns, sizeof *w->columns);
    for (size_t i = 0; i < n_columns; i++)
        w->columns[i] = xstrdup(columns[i]);
    w->n_key = n_key;
    w->key = xcalloc(n_key ? n_key : 1, sizeof *w->key);
    if (n_key)
        memcpy(w->key, key, n_key * sizeof *key);
    w->ours_to_rel = xcalloc(n_columns, sizeof *w->ours_to_rel);
    return w;
}

static void s_values_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        if (v[i] != VWINDOW_UNCHANGED)
            free(v[i]);
    free(v);
}

void vwindow_destroy(vwindow_t **wp)
{
    vwindow_t *w = wp ? *wp : NULL;
    if (!w)
        return;
    *wp = NULL;
    for (size_t i = 0; i < w->n_ch; i++) {
        free(w->ch[i].key);
        s_values_free(w->ch[i].values, w->n_columns);
    }
    free(w->ch);
    free(w->keys);
    for (size_t i = 0; i < w->n_columns; i++)
        free(w->columns[i]);
    free(w->columns);
    free(w->key);
    free(w->ours_to_rel);
    free(w->schema);
    free(w->name);
    free(w);
}

static w_change_t *s_add(vwindow_t *w)
{
    if (w->n_ch == w->cap_ch) {
        w->cap_ch = w->cap_ch ? 2 * w->cap_ch : 64;
        w->ch = xrealloc(w->ch, w->cap_ch * sizeof *w->ch);
    }
    w_change_t *c = &w->ch[w->n_ch];
    memset(c, 0, sizeof *c);
    c->seq = w->n_ch++;
    if (!w->txn_counted) {
        w->txn_counted = true;
        w->n_txn++;
    }
    c->txn = w->n_txn;
    return c;
}

static bool s_failf(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool s_failf(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return false;
}

static bool s_relation(vwindow_t *w, const pgoutput_msg_t *m, char *why, size_t whylen)
{
    if (strcmp(m->nspname, w->schema) != 0 || strcmp(m->relname, w->name) != 0) {
        if (w->have_rel && m->relid == w->relid)
            w->have_rel = false; /* that id names another relation now */
        return true;
    }
    for (size_t i = 0; i < w->n_columns; i++) {
        size_t r = 0;
        while (r < m->n_relcols && strcmp(m->relcols[r].name, w->columns[i]) != 0)
            r++;
        if (r == m->n_relcols)
            return s_failf(why, whylen, "the source's changes of %s do not carry its column %s",
                           w->name, w->columns[i]);
        w->ours_to_rel[i] = r;
    }
    w->relid = m->relid;
    w->n_rel = m->n_relcols;
    w->have_rel = true;
    return true;
}

/* The compared columns of a tuple, copied; NULL with why if it does not
 * fit the relation or carries binary values. */
static char **s_values(const vwindow_t *w, const pgoutput_tuple_t *t, char *why, size_t whylen)
{
    if (t->n != w->n_rel) {
        snprintf(why, whylen, "a change of %s has %u columns, its relation %zu", w->name,
                 (unsigned)t->n, w->n_rel);
        return NULL;
    }
    char **v = xcalloc(w->n_columns, sizeof *v);
    for (size_t i = 0; i < w->n_columns; i++) {
        const pgoutput_col_t *c = &t->cols[w->ours_to_rel[i]];
        if (c->kind == 'n')
            v[i] = NULL;
        else if (c->kind == 'u')
            v[i] = VWINDOW_UNCHANGED;
        else if (c->kind == 't')
            v[i] = s_strndup(c->data, c->len);
        else {
            s_values_free(v, w->n_columns);
            snprintf(why, whylen, "a change of %s carries a binary value", w->name);
            return NULL;
        }
    }
    return v;
}

/* The encoded key of a row's values; NULL if a key value is missing. */
static char *s_key_of(const vwindow_t *w, char *const *v)
{
    char **k = xcalloc(w->n_key, sizeof *k);
    for (size_t i = 0; i < w->n_key; i++) {
        k[i] = v[w->key[i]];
        if (!k[i] || k[i] == VWINDOW_UNCHANGED) {
            free(k);
            return NULL;
        }
    }
    char *enc = vwindow_key_encode(k, w->n_key);
    free(k);
    return enc;
}

static bool s_has_unchanged(const vwindow_t *w, char *const *v)
{
    for (size_t i = 0; i < w->n_columns; i++)
        if (v[i] == VWINDOW_UNCHANGED)
            return true;
    return false;
}

/* new's unchanged values from old (a whole row). */
static void s_fill_from(const vwindow_t *w, char **new, char *const *old)
{
    for (size_t i = 0; i < w->n_columns; i++)
        if (new[i] == VWINDOW_UNCHANGED && old[i] != VWINDOW_UNCHANGED)
            new[i] = old[i] ? xstrdup(old[i]) : NULL;
}

static bool s_keyed(vwindow_t *w, const pgoutput_msg_t *m, char *why, size_t whylen)
{
    char **old = NULL, **new = NULL;
    char *old_key = NULL, *new_key = NULL;
    bool ok = false;
    if (m->old_kind) {
        old = s_values(w, &m->old_tuple, why, whylen);
        if (!old)
            goto out;
        old_key = s_key_of(w, old);
        if (!old_key) {
            s_failf(why, whylen, "a change of %s does not carry the old row's key", w->name);
            goto out;
        }
    }
    if (m->kind != 'D') {
        new = s_values(w, &m->new_tuple, why, whylen);
        if (!new)
            goto out;
        if (old && m->old_kind == 'O')
            s_fill_from(w, new, old);
        for (size_t i = 0; old && i < w->n_key; i++)
            if (new[w->key[i]] == VWINDOW_UNCHANGED)
                new[w->key[i]] = old[w->key[i]] ? xstrdup(old[w->key[i]]) : NULL;
        new_key = s_key_of(w, new);
        if (!new_key) {
            s_failf(why, whylen, "a change of %s does not carry the row's key", w->name);
            goto out;
        }
    }
    if (old_key && (!new_key || strcmp(old_key, new_key) != 0)) {
        w_change_t *c = s_add(w);
        c->key = old_key;
        c->absent = true;
        old_key = NULL;
    }
    if (new_key) {
        w_change_t *c = s_add(w);
        c->key = new_key;
        c->values = new;
        new_key = NULL;
        new = NULL;
    }
    ok = true;
out:
    s_values_free(old, w->n_columns);
    s_values_free(new, w->n_columns);
    free(old_key);
    free(new_key);
    return ok;
}

static bool s_multiset(vwindow_t *w, const pgoutput_msg_t *m, char *why, size_t whylen)
{
    char **old = NULL, **new = NULL;
    if (m->kind != 'I') {
        if (m->old_kind != 'O')
            return s_failf(why, whylen, "a change of %s without the old row (it is compared as "
                           "a multiset: its replica identity must be FULL)", w->name);
        old = s_values(w, &m->old_tuple, why, whylen);
        if (!old)
            return false;
        if (s_has_unchanged(w, old)) {
            s_values_free(old, w->n_columns);
            return s_failf(why, whylen, "a change of %s leaves its old row incomplete",
                           w->name);
        }
    }
    if (m->kind != 'D') {
        new = s_values(w, &m->new_tuple, why, whylen);
        if (!new) {
            s_values_free(old, w->n_columns);
            return false;
        }
        if (old)
            s_fill_from(w, new, old);
        if (s_has_unchanged(w, new)) {
            s_values_free(old, w->n_columns);
            s_values_free(new, w->n_columns);
            return s_failf(why, whylen, "a change of %s leaves a TOASTed value out", w->name);
        }
    }
    if (old) {
        w_change_t *c = s_add(w);
        c->sign = -1;
        c->values = old;
        vwindow_row_hash(old, w->n_columns, c->hash);
    }
    if (new) {
        w_change_t *c = s_add(w);
        c->sign = 1;
        c->values = new;
        vwindow_row_hash(new, w->n_columns, c->hash);
    }
    return true;
}

bool vwindow_feed(vwindow_t *w, const pgoutput_msg_t *m, char *why, size_t whylen)
{
    if (w->sealed)
        return s_failf(why, whylen, "the window of %s was sealed", w->name);
    switch (m->kind) {
    case 'B':
        w->txn_counted = false;
        return true;
    case 'R':
        return s_relation(w, m, why, whylen);
    case 'I':
    case 'U':
    case 'D':
        if (!w->have_rel || m->relid != w->relid)
            return true;
        return w->n_key ? s_keyed(w, m, why, whylen) : s_multiset(w, m, why, whylen);
    case 'T':
        for (uint32_t i = 0; i < m->n_relids; i++) {
            if (w->have_rel && m->relids[i] == w->relid) {
                w_change_t *c = s_add(w);
                c->truncate = true;
                w->n_truncates++;
                break;
            }
        }
        return true;
    default:
        return true;
    }
}

static int s_change_cmp(const void *a, const void *b)
{
    const w_change_t *x = a, *y = b;
    int c = strcmp(x->key ? x->key : "", y->key ? y->key : "");
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_key_cmp(const void *a, const void *b)
{
    const w_key_t *x = a, *y = b;
    return x->last_seq > y->last_seq ? -1 : x->last_seq < y->last_seq;
}

void vwindow_seal(vwindow_t *w)
{
    if (w->sealed)
        return;
    w->sealed = true;
    if (!w->n_key || w->n_ch == 0)
        return;
    qsort(w->ch, w->n_ch, sizeof *w->ch, s_change_cmp);
    w->keys = xcalloc(w->n_ch, sizeof *w->keys);
    for (size_t i = 0; i < w->n_ch; i++) {
        const w_change_t *c = &w->ch[i];
        if (c->truncate)
            continue;
        if (w->n_keys && strcmp(w->keys[w->n_keys - 1].key, c->key) == 0) {
            w->keys[w->n_keys - 1].last_seq = c->seq;
            continue;
        }
        w->keys[w->n_keys++] = (w_key_t){ c->key, c->seq };
    }
    if (w->n_keys)
        qsort(w->keys, w->n_keys, sizeof *w->keys, s_key_cmp);
}

uint64_t vwindow_changes(const vwindow_t *w)
{
    return w->n_ch;
}

uint64_t vwindow_transactions(const vwindow_t *w)
{
    return w->n_txn;
}

/* ---- keyed --------------------------------------------------------------- */

size_t vwindow_key_count(const vwindow_t *w)
{
    return w->n_keys;
}

const char *vwindow_key_at(const vwindow_t *w, size_t i)
{
    return i < w->n_keys ? w->keys[i].key : NULL;
}

/* The first record of key in the sealed keyed window, or n_ch. */
static size_t s_first(const vwindow_t *w, const char *key)
{
    size_t lo = 0, hi = w->n_ch;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = w->ch[mid].key ? w->ch[mid].key : "";
        if (strcmp(k, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->n_ch && w->ch[lo].key && strcmp(w->ch[lo].key, key) == 0)
        return lo;
    return w->n_ch;
}

bool vwindow_has_key(const vwindow_t *w, const char *key)
{
    return w->n_key && w->sealed && s_first(w, key) < w->n_ch;
}

bool vwindow_needs_base(const vwindow_t *w, const char *key)
{
    if (!w->n_key || !w->sealed)
        return false;
    size_t i = s_first(w, key);
    return i < w->n_ch && !w->ch[i].absent && s_has_unchanged(w, w->ch[i].values);
}

bool vwindow_judge(const vwindow_t *w, const char *key, const uint8_t *src, const uint8_t *dst,
                   char *const *base, vwindow_verdict_t *verdict, char *why, size_t whylen)
{
    if (!w->n_key || !w->sealed)
        return s_failf(why, whylen, "the window of %s is not a sealed keyed one", w->name);
    uint8_t h[VWINDOW_HASH_LEN];
    if (base) {
        if (!src)
            return s_failf(why, whylen, "%s: a source row was given for a key the source does "
                           "not have", w->name);
        vwindow_row_hash(base, w->n_columns, h);
        if (memcmp(h, src, VWINDOW_HASH_LEN) != 0)
            return s_failf(why, whylen, "%s: the source's row text could not be reproduced from "
                           "its values (key %s)", w->name, key);
    }
    bool match = (!src && !dst) || (src && dst && memcmp(src, dst, VWINDOW_HASH_LEN) == 0);
    bool ever_present = src != NULL;
    /* The row's values as of the record before: base (or unknown when no
     * base was given), nothing once absent. */
    char *const *cur = src ? base : NULL;
    bool cur_known = src ? base != NULL : true;
    char **a = xcalloc(w->n_columns, sizeof *a), **b = xcalloc(w->n_columns, sizeof *b);
    bool ok = true;
    for (size_t i = s_first(w, key); i < w->n_ch && strcmp(w->ch[i].key, key) == 0; i++) {
        const w_change_t *c = &w->ch[i];
        bool visible = i + 1 >= w->n_ch || strcmp(w->ch[i + 1].key, key) != 0 ||
                       w->ch[i + 1].txn != c->txn;
        if (c->absent) {
            cur = NULL;
            cur_known = true;
            if (visible && !dst)
                match = true;
            continue;
        }
        char **res = cur == a ? b : a;
        for (size_t k = 0; k < w->n_columns; k++) {
            res[k] = c->values[k];
            if (res[k] != VWINDOW_UNCHANGED)
                continue;
            if (!cur_known || !cur) {
                snprintf(why, whylen, "%s: a change of key %s leaves a TOASTed value out and %s",
                         w->name, key, cur_known ? "the row had no earlier version"
                                                 : "the source's row was not given");
                ok = false;
                goto out;
            }
            res[k] = cur[k];
        }
        cur = res;
        cur_known = true;
        ever_present = true;
        if (visible && dst) {
            vwindow_row_hash(res, w->n_columns, h);
            if (memcmp(h, dst, VWINDOW_HASH_LEN) == 0)
                match = true;
        }
    }
    if (!dst && w->n_truncates)
        match = true;
    if (match)
        *verdict = VWINDOW_CONSISTENT;
    else if (!dst)
        *verdict = VWINDOW_MISSING;
    else if (!ever_present)
        *verdict = VWINDOW_EXTRA;
    else
        *verdict = VWINDOW_CHANGED;
out:
    free(a);
    free(b);
    return ok;
}

/* ---- multiset ------------------------------------------------------------ */

static bool s_differs(const vwindow_bucket_t *a, const vwindow_bucket_t *b)
{
    return a->n != b->n || a->s1 != b->s1 || a->s2 != b->s2;
}

static size_t s_count_mismatch(const vwindow_bucket_t *st, const vwindow_bucket_t *dst)
{
    size_t m = 0;
    for (size_t b = 0; b < VWINDOW_BUCKETS; b++)
        m += s_differs(&st[b], &dst[b]);
    return m;
}

/* Applies change c to st, keeping *mism (buckets differing from dst). */
static void s_apply(const w_change_t *c, vwindow_bucket_t *st, const vwindow_bucket_t *dst,
                    size_t *mism)
{
    if (c->truncate) {
        memset(st, 0, VWINDOW_BUCKETS * sizeof *st);
        *mism = s_count_mismatch(st, dst);
        return;
    }
    size_t b = c->hash[0];
    bool was = s_differs(&st[b], &dst[b]);
    vwindow_bucket_add(st, c->hash, c->sign);
    bool now = s_differs(&st[b], &dst[b]);
    *mism = *mism - was + now;
}

size_t vwindow_multiset_match(const vwindow_t *w, const vwindow_bucket_t *src,
                              const vwindow_bucket_t *dst, size_t *prefix, bool *mismatched)
{
    vwindow_bucket_t *st = xcalloc(VWINDOW_BUCKETS, sizeof *st);
    memcpy(st, src, VWINDOW_BUCKETS * sizeof *st);
    size_t mism = s_count_mismatch(st, dst);
    size_t best = 0, best_mism = mism;
    for (size_t i = 0; i < w->n_ch; i++) {
        s_apply(&w->ch[i], st, dst, &mism);
        bool txn_end = i + 1 >= w->n_ch || w->ch[i + 1].txn != w->ch[i].txn;
        if (txn_end && mism <= best_mism) {
            best = w->ch[i].txn;
            best_mism = mism;
        }
    }
    /* The flags for the best prefix. */
    memcpy(st, src, VWINDOW_BUCKETS * sizeof *st);
    mism = s_count_mismatch(st, dst);
    for (size_t i = 0; i < w->n_ch && w->ch[i].txn <= best; i++)
        s_apply(&w->ch[i], st, dst, &mism);
    for (size_t b = 0; b < VWINDOW_BUCKETS; b++)
        mismatched[b] = s_differs(&st[b], &dst[b]);
    free(st);
    *prefix = best;
    return best_mism;
}

typedef struct {
    const uint8_t *hash;
    int expected;           /* +1 / -1: the source at X and the window's changes */
    int target;             /* 1: a row of the target */
    char *const *values;
} s_entry_t;

static int s_entry_cmp(const void *a, const void *b)
{
    return memcmp(((const s_entry_t *)a)->hash, ((const s_entry_t *)b)->hash, VWINDOW_HASH_LEN);
}

uint64_t vwindow_multiset_diff(const vwindow_t *w, size_t prefix, const bool *buckets,
                               const vwindow_row_t *src, size_t n_src, const vwindow_row_t *dst,
                               size_t n_dst, vwindow_diff_cb cb, void *arg)
{
    /* A truncate within the prefix: the source's rows at X and the changes
     * before it are gone. */
    size_t from = 0;
    bool truncated = false;
    for (size_t i = 0; i < w->n_ch && w->ch[i].txn <= prefix; i++) {
        if (w->ch[i].truncate) {
            from = i + 1;
            truncated = true;
        }
    }
    size_t n = n_src + n_dst + w->n_ch;
    s_entry_t *e = xcalloc(n ? n : 1, sizeof *e);
    size_t k = 0;
    for (size_t i = 0; !truncated && i < n_src; i++)
        if (buckets[src[i].hash[0]])
            e[k++] = (s_entry_t){ src[i].hash, 1, 0, src[i].values };
    for (size_t i = from; i < w->n_ch && w->ch[i].txn <= prefix; i++) {
        const w_change_t *c = &w->ch[i];
        if (!c->truncate && buckets[c->hash[0]])
            e[k++] = (s_entry_t){ c->hash, c->sign, 0, c->values };
    }
    for (size_t i = 0; i < n_dst; i++)
        if (buckets[dst[i].hash[0]])
            e[k++] = (s_entry_t){ dst[i].hash, 0, 1, dst[i].values };
    if (k)
        qsort(e, k, sizeof *e, s_entry_cmp);
    uint64_t diffs = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i;
        long expected = 0, target = 0;
        char *const *exp_values = NULL, *const *dst_values = NULL;
        for (; j < k && memcmp(e[j].hash, e[i].hash, VWINDOW_HASH_LEN) == 0; j++) {
            expected += e[j].expected;
            target += e[j].target;
            if (e[j].target)
                dst_values = e[j].values;
            else if (e[j].expected > 0 || !exp_values)
                exp_values = e[j].values;
        }
        for (long d = expected - target; d > 0; d--, diffs++)
            cb(VWINDOW_MISSING, exp_values, arg);
        for (long d = target - expected; d > 0; d--, diffs++)
            cb(VWINDOW_EXTRA, dst_values, arg);
        i = j;
    }
    free(e);
    return diffs;
}
