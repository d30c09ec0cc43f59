/*
 * cfgread: the config loader's typed field readers. Turns one scalar node
 * into a field's C value (string, path, endpoint, integer, duration, size,
 * bool, enum) at the field's offset, with the field's bounds checked and
 * the message naming what was expected, bounds included, when it is not.
 *
 * Owns nothing: a string read is a malloc'd copy stored in the struct being
 * filled (cfg.c frees it or commits it). Never logs.
 */
#include "cfgread.h"
#include "cfgerr.h"
#include "cfgyaml.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "units.h"
#include "xalloc.h"

#define S_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

/* "100ms", "10m": the largest unit that divides v exactly, for bounds. */
static const char *s_fmt_ms(int64_t v, char *buf, size_t len)
{
    if (v != 0 && v % 3600000 == 0)
        snprintf(buf, len, "%lldh", (long long)(v / 3600000));
    else if (v != 0 && v % 60000 == 0)
        snprintf(buf, len, "%lldm", (long long)(v / 60000));
    else if (v != 0 && v % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(v / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)v);
    return buf;
}

/* "4KiB", "64MiB", "512B": the largest binary unit that divides v exactly. */
static const char *s_fmt_bytes(int64_t v, char *buf, size_t len)
{
    static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (u < 4 && v != 0 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%lld%s", (long long)v, names[u]);
    return buf;
}

/* " from A to B", " of at least A" or "" for a field's bounds (max 0 = no
 * upper bound; min 0 with it = no bound at all). */
static const char *s_fmt_range(const cfg_field_t *f, char *buf, size_t len)
{
    char lo[32], hi[32];
    const char *(*fmt)(int64_t, char *, size_t) = NULL;
    if (f->type == CFG_DURATION_MS)
        fmt = s_fmt_ms;
    else if (f->type == CFG_BYTES)
        fmt = s_fmt_bytes;

    if (f->max == 0 && f->min == 0)
        buf[0] = '\0';
    else if (fmt && f->max != 0)
        snprintf(buf, len, " from %s to %s", fmt(f->min, lo, sizeof lo), fmt(f->max, hi, sizeof hi));
    else if (fmt)
        snprintf(buf, len, " of at least %s", fmt(f->min, lo, sizeof lo));
    else if (f->max != 0)
        snprintf(buf, len, " from %lld to %lld", (long long)f->min, (long long)f->max);
    else
        snprintf(buf, len, " of at least %lld", (long long)f->min);
    return buf;
}

static bool s_in_range(const cfg_field_t *f, int64_t v)
{
    if (f->min == 0 && f->max == 0)
        return true;
    if (v < f->min)
        return false;
    return f->max == 0 || v <= f->max;
}

/* ---- scalar parsers ---------------------------------------------------- */

/* Optional '-' and decimal digits, within int64_t. */
static bool s_parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    for (const char *q = p; q < end; q++) /* strtoll also took blanks, '+' */
        if (*q < '0' || *q > '9')
            return false;
    *out = v;
    return true;
}

static bool s_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", NULL };
    static const char *const no[] = { "false", "no", "off", NULL };
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Printable, no blank: endpoints go to zmq_bind/zmq_connect verbatim. */
static bool s_endpoint_chars_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

/* "tcp://HOST:PORT" (HOST non-empty, "[v6]" bracketed, "*" allowed) or
 * "ipc:///absolute/path"; the caller checks the ipc path's length. */
static bool s_endpoint_ok(const char *s)
{
    if (!s_endpoint_chars_ok(s))
        return false;
    if (strncmp(s, "ipc://", 6) == 0) {
        const char *path = s + 6;
        return path[0] == '/' && path[1] != '\0';
    }
    if (strncmp(s, "tcp://", 6) != 0)
        return false;
    const char *host = s + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    size_t hlen = (size_t)(colon - host);
    if (host[0] == '[') {
        /* "[...]" with something inside and no other bracket. */
        if (hlen < 3 || host[hlen - 1] != ']')
            return false;
        for (size_t i = 1; i < hlen - 1; i++)
            if (host[i] == '[' || host[i] == ']')
                return false;
    } else {
        for (size_t i = 0; i < hlen; i++)
            if (host[i] == ':' || host[i] == '[' || host[i] == ']' || host[i] == '/')
                return false;
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5)
        return false;
    long v = 0;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 65535;
}

/* Parses one scalar value node into the struct at base, at f's offset: the
 * leaf types, every type but CFG_SECTION, CFG_STRING_LIST, CFG_LIST and
 * CFG_RETIRED. */
bool cfgread_scalar(const cfgerr_t *e, const cfg_field_t *f, const yaml_node_t *node,
                    unsigned char *base, const char *path)
{
    char gotbuf[96], range[80];
    size_t line = node->start_mark.line;

    /* Every leaf is a non-null scalar without NUL bytes. */
    const char *v = NULL;
    if (node->type == YAML_SCALAR_NODE && !cfgyaml_is_null(node) &&
        strlen((const char *)node->data.scalar.value) == node->data.scalar.length)
        v = (const char *)node->data.scalar.value;
    bool has_nul = node->type == YAML_SCALAR_NODE &&
                   strlen((const char *)node->data.scalar.value) != node->data.scalar.length;
    const char *got = cfgerr_describe(node, gotbuf, sizeof gotbuf);
    unsigned char *at = base + f->offset;

    switch (f->type) {
    case CFG_STRING:
    case CFG_PATH: {
        const char *what = f->type == CFG_PATH ? "path" : "string";
        if (has_nul)
            return cfgerr_fail(e, line, path, "expected a %s without NUL bytes", what);
        if (!v || !*v)
            return cfgerr_fail(e, line, path, "expected a non-empty %s, got %s", what, got);
        *(char **)(void *)at = xstrdup(v);
        return true;
    }
    case CFG_LABEL:
        if (!v || !cfg_label_ok(v))
            return cfgerr_fail(e, line, path,
                               "expected a label of 1 to %d of a-z, 0-9, _ and -, got %s",
                               CFG_LABEL_MAX, got);
        *(char **)(void *)at = xstrdup(v);
        return true;
    case CFG_ENDPOINT:
        if (!v || !s_endpoint_ok(v))
            return cfgerr_fail(
                e, line, path,
                "expected tcp://HOST:PORT (PORT 1-65535) or ipc:///absolute/path, got %s", got);
        if (strncmp(v, "ipc://", 6) == 0 && strlen(v + 6) >= S_SUN_PATH)
            return cfgerr_fail(e, line, path,
                               "ipc path longer than %zu bytes, too long for a unix socket",
                               S_SUN_PATH - 1);
        *(char **)(void *)at = xstrdup(v);
        return true;
    case CFG_INT:
    case CFG_DURATION_MS:
    case CFG_BYTES: {
        /* The three int64_t types differ only in their parser and wording. */
        bool (*parse)(const char *, int64_t *) = s_parse_int;
        const char *what = "an integer";
        if (f->type == CFG_DURATION_MS) {
            parse = units_parse_duration_ms;
            what = "a duration with a unit (ms, s, m, h)";
        } else if (f->type == CFG_BYTES) {
            parse = units_parse_bytes;
            what = "a size like 512, 64kB, 10MB or 1GiB";
        }
        int64_t n;
        if (!v || !parse(v, &n) || !s_in_range(f, n))
            return cfgerr_fail(e, line, path, "expected %s%s, got %s", what,
                               s_fmt_range(f, range, sizeof range), got);
        memcpy(at, &n, sizeof n);
        return true;
    }
    case CFG_BOOL: {
        bool b;
        if (!v || !s_parse_bool(v, &b))
            return cfgerr_fail(e, line, path, "expected true or false (yes/no, on/off), got %s",
                               got);
        memcpy(at, &b, sizeof b);
        return true;
    }
    case CFG_ENUM: {
        assert(f->enum_values && f->enum_values[0]);
        for (int i = 0; v && f->enum_values[i]; i++) {
            if (strcmp(v, f->enum_values[i]) == 0) {
                memcpy(at, &i, sizeof i);
                return true;
            }
        }
        char list[256];
        size_t o = 0;
        list[0] = '\0';
        for (int i = 0; f->enum_values[i] && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                                  f->enum_values[i]);
        return cfgerr_fail(e, line, path, "expected one of [%s], got %s", list, got);
    }
    case CFG_SECTION:
    case CFG_STRING_LIST:
    case CFG_LIST:
    case CFG_RETIRED:
        break;
    }
    assert(!"cfg: unhandled field type");
    return false;
}
