/*
 * promtext: see promtext.h. Owns one growing buffer and the name of the
 * family last begun (to assert that samples follow their header).
 */
#include "promtext.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct promtext {
    char *buf;
    size_t len, cap;
    char family[128];
    promtext_type_t type;
};

/* ---- histogram figures ---- */

void promtext_hist_init(promtext_hist_t *h, const double *bounds, size_t n)
{
    assert(n <= PROMTEXT_HIST_MAX);
    for (size_t i = 1; i < n; i++)
        assert(bounds[i - 1] < bounds[i]);
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

void promtext_hist_observe(promtext_hist_t *h, double v)
{
    for (size_t i = 0; i < h->n; i++) {
        if (v <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    }
    h->sum += v;
    h->count++;
}

/* ---- the buffer ---- */

promtext_t *promtext_new(void)
{
    promtext_t *p = xcalloc(1, sizeof *p);
    p->cap = 4096;
    p->buf = xmalloc(p->cap);
    p->buf[0] = '\0';
    return p;
}

void promtext_destroy(promtext_t **pp)
{
    promtext_t *p = *pp;
    if (!p)
        return;
    *pp = NULL;
    free(p->buf);
    free(p);
}

static void s_put(promtext_t *p, const char *s, size_t n)
{
    if (p->len + n + 1 > p->cap) {
        while (p->len + n + 1 > p->cap)
            p->cap *= 2;
        p->buf = xrealloc(p->buf, p->cap);
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void s_puts(promtext_t *p, const char *s)
{
    s_put(p, s, strlen(s));
}

/* s with backslash and newline escaped, and double quotes too if quote. */
static void s_escaped(promtext_t *p, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            s_puts(p, "\\\\");
        else if (*s == '\n')
            s_puts(p, "\\n");
        else if (quote && *s == '"')
            s_puts(p, "\\\"");
        else
            s_put(p, s, 1);
    }
}

/* Used only in assertions (unused, so compiled out, under NDEBUG). */
__attribute__((unused)) static bool s_valid_name(const char *s, bool colon)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return true;
}

const char *promtext_number(double v, char *buf, size_t len)
{
    assert(len >= 32);
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact */
        snprintf(buf, len, "%.0f", v);
    else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, len, "%.17g", v);
    }
    return buf;
}

/* ---- families and samples ---- */

static const char *const s_type_names[] = { "gauge", "counter", "histogram" };

void promtext_family(promtext_t *p, const char *name, promtext_type_t type, const char *help)
{
    assert(s_valid_name(name, true) && strlen(name) < sizeof p->family);
    snprintf(p->family, sizeof p->family, "%s", name);
    p->type = type;
    s_puts(p, "# HELP ");
    s_puts(p, name);
    s_puts(p, " ");
    s_escaped(p, help, false);
    s_puts(p, "\n# TYPE ");
    s_puts(p, name);
    s_puts(p, " ");
    s_puts(p, s_type_names[type]);
    s_puts(p, "\n");
}

/* name{k="v",...,extra_k="extra_v"} (no braces without labels) */
static void s_series(promtext_t *p, const char *name, const char *suffix,
                     const char *const *labels, const char *extra_k, const char *extra_v)
{
    s_puts(p, name);
    s_puts(p, suffix);
    bool any = (labels && labels[0]) || extra_k;
    if (!any)
        return;
    s_puts(p, "{");
    bool first = true;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        assert(labels[i + 1] && s_valid_name(labels[i], false));
        s_puts(p, first ? "" : ",");
        first = false;
        s_puts(p, labels[i]);
        s_puts(p, "=\"");
        s_escaped(p, labels[i + 1], true);
        s_puts(p, "\"");
    }
    if (extra_k) {
        s_puts(p, first ? "" : ",");
        s_puts(p, extra_k);
        s_puts(p, "=\"");
        s_escaped(p, extra_v, true);
        s_puts(p, "\"");
    }
    s_puts(p, "}");
}

static void s_value(promtext_t *p, double v)
{
    char num[40];
    s_puts(p, " ");
    s_puts(p, promtext_number(v, num, sizeof num));
    s_puts(p, "\n");
}

void promtext_sample(promtext_t *p, const char *name, const char *const *labels, double value)
{
    assert(strcmp(name, p->family) == 0 && p->type != PROMTEXT_HISTOGRAM);
    s_series(p, name, "", labels, NULL, NULL);
    s_value(p, value);
}

void promtext_histogram(promtext_t *p, const char *name, const char *const *labels,
                        const promtext_hist_t *h)
{
    assert(strcmp(name, p->family) == 0 && p->type == PROMTEXT_HISTOGRAM);
    char le[40];
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->counts[i];
        s_series(p, name, "_bucket", labels, "le", promtext_number(h->bounds[i], le, sizeof le));
        s_value(p, (double)cum);
    }
    s_series(p, name, "_bucket", labels, "le", "+Inf");
    s_value(p, (double)h->count);
    s_series(p, name, "_sum", labels, NULL, NULL);
    s_value(p, h->sum);
    s_series(p, name, "_count", labels, NULL, NULL);
    s_value(p, (double)h->count);
}

const char *promtext_text(const promtext_t *p, size_t *len)
{
    if (len)
        *len = p->len;
    return p->buf;
}

char *promtext_take(promtext_t *p, size_t *len)
{
    char *out = p->buf;
    if (len)
        *len = p->len;
    p->cap = 4096;
    p->len = 0;
    p->buf = xmalloc(p->cap);
    p->buf[0] = '\0';
    p->family[0] = '\0';
    return out;
}
