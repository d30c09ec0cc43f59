/*
 * config: schema-driven loading of YAML config files and plans into plain C
 * structs, through libyaml's document API (the whole file is composed into a
 * node tree first, then walked against the schema).
 *
 * What it guarantees:
 *   - Strict: unknown keys, duplicate keys, wrong node kinds, nulls, values
 *     out of range and missing required fields all refuse the whole file. The
 *     first problem in document order wins; missing required fields of a
 *     mapping are reported after its keys were checked, with the line of that
 *     mapping.
 *   - One error format: "NAME:LINE: dotted.field: message" (the field part is
 *     left out when there is no field, e.g. for a YAML syntax error).
 *   - Transactional: values are parsed into a scratch copy of the schema's
 *     fields and written to the caller's struct only when the whole file was
 *     good. On error the caller's struct is untouched, defaults included, and
 *     everything the load allocated is freed; on success a loaded string or
 *     list replaces (and frees) the default it overrides.
 *   - Lists: a list is built whole in its own items array (each item zeroed,
 *     or a copy of the row's item_defaults), and stored at its offset only
 *     once every item loaded; an item that fails frees the array and
 *     everything in it. Error paths name items by index:
 *     "migrations[1].tables[0]".
 *
 * Owns: while loading, the yaml parser, the document, the scratch copy and
 * the list being built, all released before returning. After a successful
 * load the strings and lists in the caller's struct belong to that struct
 * (cfg_free).
 *
 * Never: follows anything but the schema (aliases are read where the schema
 * leads, never expanded into the document), reads a file or a string larger
 * than S_MAX_FILE, lets collections nest deeper than S_MAX_DEPTH (the
 * document is composed here from libyaml's events, so the bound holds before
 * libyaml's quadratic walk of nested flow levels can cost anything), loads
 * more than S_MAX_ITEMS list items in all (an alias counts each time it is
 * used, so a small file cannot fan out into millions), logs, or keeps any
 * state between calls: a thread may load while another does.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <yaml.h>

#include "fsutil.h"
#include "units.h"
#include "xalloc.h"

#define S_MAX_FILE ((size_t)1 << 20) /* 1 MiB: a config file, not a data file */
#define S_MAX_PATH 256                /* dotted field path */
#define S_MAX_DEPTH 64                /* nested mappings and sequences */
#define S_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)
/* List items loaded per file, all lists together. A file without aliases
 * cannot reach it (every item takes at least one byte of S_MAX_FILE); with
 * aliases it bounds the work and memory a small file can ask for. */
#define S_MAX_ITEMS ((size_t)1 << 20)

/* One load in progress. Borrows everything; owns nothing. Which struct the
 * schema's offsets index (the scratch copy or a list item) is passed down
 * with each call as base. */
typedef struct {
    const char *name;        /* file path or the caller's label, for messages */
    yaml_document_t *doc;
    size_t items_left;       /* list items still allowed (S_MAX_ITEMS) */
    char *err;
    size_t errlen;
} s_load_t;

/* ---- errors ------------------------------------------------------------ */

static bool s_fail(s_load_t *ld, size_t line0, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "NAME:LINE: PATH: message" into ld->err; returns false. line0 is
 * libyaml's 0-based line. */
static bool s_fail(s_load_t *ld, size_t line0, const char *path, const char *fmt, ...)
{
    if (!ld->err || ld->errlen == 0)
        return false;
    int n;
    if (path && *path)
        n = snprintf(ld->err, ld->errlen, "%s:%zu: %s: ", ld->name, line0 + 1, path);
    else
        n = snprintf(ld->err, ld->errlen, "%s:%zu: ", ld->name, line0 + 1);
    if (n >= 0 && (size_t)n < ld->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* A plain scalar YAML reads as null: "", "~", "null", "Null", "NULL". A
 * quoted "null" is the string. */
static bool s_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)node->data.scalar.value;
    return node->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Describes what a node is, for "got ..." in messages: null, a mapping, a
 * sequence or the scalar quoted (shortened, control bytes escaped). */
static const char *s_describe(const yaml_node_t *node, char *buf, size_t len)
{
    if (!node)
        return "nothing";
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        break;
    default:
        return "nothing";
    }
    if (s_is_null(node))
        return "null";
    const char *v = (const char *)node->data.scalar.value;
    size_t vlen = node->data.scalar.length;

    assert(len >= 16);
    size_t o = 0;
    const size_t limit = len - 8; /* room for '"', "...", '"' and NUL */
    buf[o++] = '"';
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;
        if (o + need > limit) {
            /* Do not leave half a UTF-8 character before the "...". */
            size_t lead = o;
            while (lead > 1 && ((unsigned char)buf[lead - 1] & 0xc0) == 0x80)
                lead--;
            if (lead > 1) {
                unsigned char b0 = (unsigned char)buf[lead - 1];
                size_t want = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 1;
                if (o - (lead - 1) < want)
                    o = lead - 1;
            }
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 4)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        else {
            if (need == 2)
                buf[o++] = '\\';
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

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

/* ---- schema walking ---------------------------------------------------- */

/* Bytes a leaf field occupies at its offset; 0 for a section. */
static size_t s_field_size(cfg_type_t type)
{
    switch (type) {
    case CFG_STRING:
    case CFG_PATH:
    case CFG_ENDPOINT:
        return sizeof(char *);
    case CFG_INT:
    case CFG_DURATION_MS:
    case CFG_BYTES:
        return sizeof(int64_t);
    case CFG_BOOL:
        return sizeof(bool);
    case CFG_ENUM:
        return sizeof(int);
    case CFG_STRING_LIST:
        return sizeof(cfg_strings_t);
    case CFG_LIST:
        return sizeof(cfg_list_t);
    case CFG_SECTION:
        return 0;
    }
    assert(!"cfg: unknown field type in schema");
    return 0;
}

static bool s_is_string(cfg_type_t type)
{
    return type == CFG_STRING || type == CFG_PATH || type == CFG_ENDPOINT;
}

/* One past the last byte any field of the schema (sections included, not
 * what is inside list items) touches: the size of the scratch copy, and at
 * most a list's item_size for a list's children. */
static size_t s_extent(const cfg_field_t *schema)
{
    size_t end = 0;
    for (const cfg_field_t *f = schema; f->key; f++) {
        size_t e = f->type == CFG_SECTION ? s_extent(f->children)
                                          : f->offset + s_field_size(f->type);
        if (e > end)
            end = e;
    }
    return end;
}

/* The heap block the field at base owns (a string, a list's items array),
 * or NULL: tells a value this load made from the one the caller put there. */
static const void *s_owned(const cfg_field_t *f, const void *base)
{
    const unsigned char *at = (const unsigned char *)base + f->offset;
    if (s_is_string(f->type))
        return *(char *const *)(const void *)at;
    if (f->type == CFG_STRING_LIST)
        return ((const cfg_strings_t *)(const void *)at)->items;
    if (f->type == CFG_LIST)
        return ((const cfg_list_t *)(const void *)at)->items;
    return NULL;
}

static void s_strings_free(cfg_strings_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Frees a list's items (what each holds, then the array) and zeroes it. */
static void s_list_free(const cfg_field_t *f, cfg_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        cfg_free(f->children, (unsigned char *)l->items + i * f->item_size);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Frees what the field at base owns and zeroes it; a section's fields too. */
static void s_free_field(const cfg_field_t *f, void *base)
{
    unsigned char *at = (unsigned char *)base + f->offset;
    switch (f->type) {
    case CFG_STRING:
    case CFG_PATH:
    case CFG_ENDPOINT:
        free(*(char **)(void *)at);
        *(char **)(void *)at = NULL;
        return;
    case CFG_STRING_LIST:
        s_strings_free((cfg_strings_t *)(void *)at);
        return;
    case CFG_LIST:
        s_list_free(f, (cfg_list_t *)(void *)at);
        return;
    case CFG_SECTION:
        cfg_free(f->children, base);
        return;
    case CFG_INT:
    case CFG_BOOL:
    case CFG_DURATION_MS:
    case CFG_BYTES:
    case CFG_ENUM:
        return;
    }
    assert(!"cfg: unknown field type in schema");
}

/* Frees the strings and lists scratch holds that orig does not: the ones
 * this load allocated. Used when a load fails. */
static void s_discard_new(const cfg_field_t *schema, void *scratch, const void *orig)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_SECTION)
            s_discard_new(f->children, scratch, orig);
        else if (s_owned(f, scratch) != s_owned(f, orig))
            s_free_field(f, scratch);
    }
}

/* Moves every field from scratch into out. A string or list this load set
 * replaces, and frees, the default the caller had put there. */
static void s_commit(const cfg_field_t *schema, const void *scratch, void *out)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_SECTION) {
            s_commit(f->children, scratch, out);
            continue;
        }
        if (s_owned(f, out) != s_owned(f, scratch))
            s_free_field(f, out);
        memcpy((unsigned char *)out + f->offset, (const unsigned char *)scratch + f->offset,
               s_field_size(f->type));
    }
}

static bool s_load_mapping(s_load_t *ld, const cfg_field_t *schema, yaml_node_t *map,
                           unsigned char *base, const char *prefix);

/* Checks a list's item count against f's [min, max] (max 0 = no bound). */
static bool s_count_ok(s_load_t *ld, const cfg_field_t *f, const yaml_node_t *seq, size_t n,
                       const char *path)
{
    assert(f->min >= 0 && (f->max == 0 || f->max >= f->min));
    uint64_t lo = (uint64_t)f->min, hi = (uint64_t)f->max;
    if (n >= lo && (hi == 0 || n <= hi))
        return true;
    char want[80];
    if (hi != 0 && lo == hi)
        snprintf(want, sizeof want, "exactly %llu item%s", (unsigned long long)lo,
                 lo == 1 ? "" : "s");
    else if (hi != 0 && lo == 0)
        snprintf(want, sizeof want, "at most %llu item%s", (unsigned long long)hi,
                 hi == 1 ? "" : "s");
    else if (hi != 0)
        snprintf(want, sizeof want, "%llu to %llu items", (unsigned long long)lo,
                 (unsigned long long)hi);
    else
        snprintf(want, sizeof want, "at least %llu item%s", (unsigned long long)lo,
                 lo == 1 ? "" : "s");
    return s_fail(ld, seq->start_mark.line, path, "expected %s, got %zu", want, n);
}

/* Item i of seq, counted against S_MAX_ITEMS; NULL after reporting. */
static yaml_node_t *s_item(s_load_t *ld, yaml_node_t *seq, size_t i, const char *ipath)
{
    yaml_node_t *item = yaml_document_get_node(ld->doc, seq->data.sequence.items.start[i]);
    if (ld->items_left == 0) {
        s_fail(ld, item->start_mark.line, ipath,
               "more than %zu list items in the file (an alias used too often?)", S_MAX_ITEMS);
        return NULL;
    }
    ld->items_left--;
    return item;
}

/* A sequence of non-empty scalars into a cfg_strings_t at f's offset. */
static bool s_load_strings(s_load_t *ld, const cfg_field_t *f, yaml_node_t *seq,
                           unsigned char *base, const char *path)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (!s_count_ok(ld, f, seq, n, path))
        return false;
    cfg_strings_t l = { n ? xcalloc(n, sizeof(char *)) : NULL, 0 };
    char ipath[S_MAX_PATH], got[96];
    for (size_t i = 0; i < n; i++) {
        if (snprintf(ipath, sizeof ipath, "%s[%zu]", path, i) >= (int)sizeof ipath) {
            s_fail(ld, seq->start_mark.line, path, "nested too deeply");
            goto fail;
        }
        yaml_node_t *item = s_item(ld, seq, i, ipath);
        if (!item)
            goto fail;
        size_t line = item->start_mark.line;
        if (item->type != YAML_SCALAR_NODE || s_is_null(item)) {
            s_fail(ld, line, ipath, "expected a string, got %s", s_describe(item, got, sizeof got));
            goto fail;
        }
        const char *v = (const char *)item->data.scalar.value;
        if (strlen(v) != item->data.scalar.length) {
            s_fail(ld, line, ipath, "expected a string without NUL bytes");
            goto fail;
        }
        if (!*v) {
            s_fail(ld, line, ipath, "expected a non-empty string, got \"\"");
            goto fail;
        }
        l.items[l.count++] = xstrdup(v);
    }
    memcpy(base + f->offset, &l, sizeof l);
    return true;
fail:
    s_strings_free(&l);
    return false;
}

/* True if the struct at base holds no string and no list of schema's (a
 * section's included): item defaults must not, or items would share them.
 * Only asserted, hence unused under NDEBUG. */
static __attribute__((unused)) bool s_holds_nothing(const cfg_field_t *schema, const void *base)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_SECTION ? !s_holds_nothing(f->children, base) : s_owned(f, base) != NULL)
            return false;
    }
    return true;
}

/* A sequence of mappings into a cfg_list_t at f's offset: each item an
 * item_size struct, zeroed or a copy of f->item_defaults, filled by
 * f->children at offsets from the item's start. */
static bool s_load_list(s_load_t *ld, const cfg_field_t *f, yaml_node_t *seq, unsigned char *base,
                        const char *path)
{
    assert(f->children && f->item_size > 0 && s_extent(f->children) <= f->item_size);
    assert(!f->item_defaults || s_holds_nothing(f->children, f->item_defaults));
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (!s_count_ok(ld, f, seq, n, path))
        return false;
    /* Every item is set up front (zeroed, or defaults holding nothing to
     * free), so on failure all n can be freed alike, loaded, half loaded or
     * not reached. */
    cfg_list_t l = { n ? xcalloc(n, f->item_size) : NULL, n };
    for (size_t i = 0; f->item_defaults && i < n; i++)
        memcpy((unsigned char *)l.items + i * f->item_size, f->item_defaults, f->item_size);
    char ipath[S_MAX_PATH], got[96];
    for (size_t i = 0; i < n; i++) {
        if (snprintf(ipath, sizeof ipath, "%s[%zu]", path, i) >= (int)sizeof ipath) {
            s_fail(ld, seq->start_mark.line, path, "nested too deeply");
            goto fail;
        }
        yaml_node_t *item = s_item(ld, seq, i, ipath);
        if (!item)
            goto fail;
        if (item->type != YAML_MAPPING_NODE) {
            s_fail(ld, item->start_mark.line, ipath, "expected a mapping, got %s",
                   s_describe(item, got, sizeof got));
            goto fail;
        }
        unsigned char *it = (unsigned char *)l.items + i * f->item_size;
        if (!s_load_mapping(ld, f->children, item, it, ipath))
            goto fail;
        const char *field = NULL;
        char why[256] = "";
        if (f->item_check && !f->item_check(it, &field, why, sizeof why)) {
            char fpath[S_MAX_PATH + 64];
            snprintf(fpath, sizeof fpath, "%s%s%s", ipath, field ? "." : "", field ? field : "");
            s_fail(ld, item->start_mark.line, fpath, "%s", why);
            goto fail;
        }
    }
    memcpy(base + f->offset, &l, sizeof l);
    return true;
fail:
    s_list_free(f, &l);
    return false;
}

/* Parses one value node into the struct at base, at f's offset. */
static bool s_load_value(s_load_t *ld, const cfg_field_t *f, yaml_node_t *node,
                         unsigned char *base, const char *path)
{
    char gotbuf[96], range[80];
    size_t line = node->start_mark.line;

    if (f->type == CFG_SECTION) {
        if (node->type != YAML_MAPPING_NODE)
            return s_fail(ld, line, path, "expected a mapping, got %s",
                          s_describe(node, gotbuf, sizeof gotbuf));
        return s_load_mapping(ld, f->children, node, base, path);
    }
    if (f->type == CFG_STRING_LIST || f->type == CFG_LIST) {
        if (node->type != YAML_SEQUENCE_NODE)
            return s_fail(ld, line, path, "expected a list of %s, got %s",
                          f->type == CFG_LIST ? "mappings" : "strings",
                          s_describe(node, gotbuf, sizeof gotbuf));
        return f->type == CFG_LIST ? s_load_list(ld, f, node, base, path)
                                   : s_load_strings(ld, f, node, base, path);
    }

    /* Every leaf is a non-null scalar without NUL bytes. */
    const char *v = NULL;
    if (node->type == YAML_SCALAR_NODE && !s_is_null(node) &&
        strlen((const char *)node->data.scalar.value) == node->data.scalar.length)
        v = (const char *)node->data.scalar.value;
    bool has_nul = node->type == YAML_SCALAR_NODE &&
                   strlen((const char *)node->data.scalar.value) != node->data.scalar.length;
    const char *got = s_describe(node, gotbuf, sizeof gotbuf);
    unsigned char *at = base + f->offset;

    switch (f->type) {
    case CFG_STRING:
    case CFG_PATH: {
        const char *what = f->type == CFG_PATH ? "path" : "string";
        if (has_nul)
            return s_fail(ld, line, path, "expected a %s without NUL bytes", what);
        if (!v || !*v)
            return s_fail(ld, line, path, "expected a non-empty %s, got %s", what, got);
        *(char **)(void *)at = xstrdup(v);
        return true;
    }
    case CFG_ENDPOINT:
        if (!v || !s_endpoint_ok(v))
            return s_fail(ld, line, path,
                          "expected tcp://HOST:PORT (PORT 1-65535) or ipc:///absolute/path, got %s",
                          got);
        if (strncmp(v, "ipc://", 6) == 0 && strlen(v + 6) >= S_SUN_PATH)
            return s_fail(ld, line, path, "ipc path longer than %zu bytes, too long for a unix socket",
                          S_SUN_PATH - 1);
        *(char **)(void *)at = xstrdup(v);
        return true;
    case CFG_INT: {
        int64_t n;
        if (!v || !s_parse_int(v, &n) || !s_in_range(f, n))
            return s_fail(ld, line, path, "expected an integer%s, got %s",
                          s_fmt_range(f, range, sizeof range), got);
        memcpy(at, &n, sizeof n);
        return true;
    }
    case CFG_DURATION_MS: {
        int64_t n;
        if (!v || !units_parse_duration_ms(v, &n) || !s_in_range(f, n))
            return s_fail(ld, line, path, "expected a duration with a unit (ms, s, m, h)%s, got %s",
                          s_fmt_range(f, range, sizeof range), got);
        memcpy(at, &n, sizeof n);
        return true;
    }
    case CFG_BYTES: {
        int64_t n;
        if (!v || !units_parse_bytes(v, &n) || !s_in_range(f, n))
            return s_fail(ld, line, path, "expected a size like 512, 64kB, 10MB or 1GiB%s, got %s",
                          s_fmt_range(f, range, sizeof range), got);
        memcpy(at, &n, sizeof n);
        return true;
    }
    case CFG_BOOL: {
        bool b;
        if (!v || !s_parse_bool(v, &b))
            return s_fail(ld, line, path, "expected true or false (yes/no, on/off), got %s", got);
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
        return s_fail(ld, line, path, "expected one of [%s], got %s", list, got);
    }
    case CFG_SECTION:
    case CFG_STRING_LIST:
    case CFG_LIST:
        break;
    }
    assert(!"cfg: unhandled field type");
    return false;
}

/* Checks map's keys against schema, loads each value into the struct at
 * base, then reports the first missing required field (with map's line).
 * prefix is the dotted path of map ("" at the top level). */
static bool s_load_mapping(s_load_t *ld, const cfg_field_t *schema, yaml_node_t *map,
                           unsigned char *base, const char *prefix)
{
    size_t nfields = 0;
    while (schema[nfields].key)
        nfields++;
    /* Line (0-based) where each schema row was seen, or SIZE_MAX. */
    size_t seen_stack[32];
    size_t *seen = nfields <= 32 ? seen_stack : xmalloc(nfields * sizeof *seen);
    for (size_t i = 0; i < nfields; i++)
        seen[i] = SIZE_MAX;

    bool ok = true;
    char path[S_MAX_PATH], got[96];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         ok && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            ok = s_fail(ld, k->start_mark.line, prefix, "expected a scalar key, got %s",
                        s_describe(k, got, sizeof got));
            break;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool key_has_nul = strlen(key) != k->data.scalar.length;
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);

        size_t i = 0;
        while (i < nfields && (key_has_nul || strcmp(schema[i].key, key) != 0))
            i++;
        if (i == nfields) {
            char known[512];
            size_t o = 0;
            known[0] = '\0';
            for (size_t j = 0; j < nfields && o < sizeof known; j++)
                o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", j ? ", " : "",
                                      schema[j].key);
            ok = s_fail(ld, k->start_mark.line, path, "unknown key (known: %s)", known);
            break;
        }
        if (seen[i] != SIZE_MAX) {
            ok = s_fail(ld, k->start_mark.line, path, "duplicate key (first at line %zu)",
                        seen[i] + 1);
            break;
        }
        seen[i] = k->start_mark.line;
        ok = s_load_value(ld, &schema[i], v, base, path);
    }

    for (size_t i = 0; ok && i < nfields; i++) {
        if (schema[i].required && seen[i] == SIZE_MAX) {
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", schema[i].key);
            ok = s_fail(ld, map->start_mark.line, path, "missing required field");
        }
    }
    if (seen != seen_stack)
        free(seen);
    return ok;
}

/* ---- the document ------------------------------------------------------ */

/* 0-based line of a byte offset in text (for reader errors, which have no
 * mark). */
static size_t s_line_of_offset(const char *text, size_t len, size_t off)
{
    size_t line = 0;
    for (size_t i = 0; i < off && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static bool s_yaml_error(s_load_t *ld, const yaml_parser_t *parser, const char *text, size_t len)
{
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return s_fail(ld, 0, NULL, "YAML parser out of memory");
    case YAML_READER_ERROR:
        return s_fail(ld, s_line_of_offset(text, len, parser->problem_offset), NULL,
                      "YAML error: %s", problem);
    default:
        if (parser->context)
            return s_fail(ld, parser->problem_mark.line, NULL, "YAML syntax error: %s (%s at line %zu)",
                          problem, parser->context, parser->context_mark.line + 1);
        return s_fail(ld, parser->problem_mark.line, NULL, "YAML syntax error: %s", problem);
    }
}

/* ---- composing the document ------------------------------------------ */

/* One open collection while composing: its node, the key of the mapping
 * pair whose value comes next (0: none), the items so far (for the path of
 * an error) and the last key read. */
typedef struct {
    int node;
    bool mapping;
    int key;
    size_t items;
    char last_key[48];
} s_open_t;

typedef struct {
    char *name;
    int node;
} s_anchor_t;

/* Composition in progress: the open collections and the anchors seen. */
typedef struct {
    yaml_document_t *doc;
    s_open_t open[S_MAX_DEPTH];
    size_t depth;
    s_anchor_t *anchors;
    size_t n_anchors;
} s_compose_t;

/* The dotted path of the collection being composed, for an error. */
static void s_compose_path(const s_compose_t *cp, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cp->depth && o + 1 < len; i++) {
        const s_open_t *op = &cp->open[i];
        int n;
        /* An outer collection holds the inner one as its last item so far;
         * the innermost is where the next item goes. */
        size_t at = i + 1 < cp->depth && op->items ? op->items - 1 : op->items;
        if (op->mapping)
            n = snprintf(buf + o, len - o, "%s%s", o ? "." : "", op->last_key);
        else
            n = snprintf(buf + o, len - o, "[%zu]", at);
        if (n < 0 || (size_t)n >= len - o) {
            /* Keep the start of a long path and say it was cut. */
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        o += (size_t)n;
    }
}

/* Adds node (just made) to the open collection, or makes it the root. */
static bool s_compose_attach(s_load_t *ld, s_compose_t *cp, int node, const yaml_mark_t *mark)
{
    if (cp->depth == 0)
        return true; /* the root: the document's first node */
    s_open_t *op = &cp->open[cp->depth - 1];
    if (!op->mapping) {
        op->items++;
        return yaml_document_append_sequence_item(cp->doc, op->node, node) ||
               s_fail(ld, mark->line, NULL, "YAML parser out of memory");
    }
    if (!op->key) {
        op->key = node;
        yaml_node_t *k = yaml_document_get_node(cp->doc, node);
        if (k->type == YAML_SCALAR_NODE)
            snprintf(op->last_key, sizeof op->last_key, "%.*s",
                     (int)(k->data.scalar.length < 40 ? k->data.scalar.length : 40),
                     (const char *)k->data.scalar.value);
        else
            snprintf(op->last_key, sizeof op->last_key, "(key)");
        return true;
    }
    int key = op->key;
    op->key = 0;
    op->items++;
    return yaml_document_append_mapping_pair(cp->doc, op->node, key, node) ||
           s_fail(ld, mark->line, NULL, "YAML parser out of memory");
}

/* Sets a new node's marks (the document API leaves them zero) and records
 * its anchor, if any. */
static void s_compose_mark(s_compose_t *cp, int node, const yaml_event_t *ev,
                           const yaml_char_t *anchor)
{
    yaml_node_t *n = yaml_document_get_node(cp->doc, node);
    n->start_mark = ev->start_mark;
    n->end_mark = ev->end_mark;
    if (anchor) {
        cp->anchors = xrealloc(cp->anchors, (cp->n_anchors + 1) * sizeof *cp->anchors);
        cp->anchors[cp->n_anchors].name = xstrdup((const char *)anchor);
        cp->anchors[cp->n_anchors].node = node;
        cp->n_anchors++;
    }
}

/* Handles one event inside the document; *done once its root is complete. */
static bool s_compose_event(s_load_t *ld, s_compose_t *cp, const yaml_event_t *ev, bool *done)
{
    const yaml_char_t *tag = NULL, *anchor = NULL;
    int node = 0;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        /* The latest node of that name (YAML lets an anchor be redefined). */
        for (size_t i = cp->n_anchors; i-- > 0 && !node;)
            if (strcmp(cp->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
                node = cp->anchors[i].node;
        if (!node)
            return s_fail(ld, ev->start_mark.line, NULL, "YAML syntax error: found undefined alias");
        break;
    case YAML_SCALAR_EVENT:
        tag = ev->data.scalar.tag;
        anchor = ev->data.scalar.anchor;
        node = yaml_document_add_scalar(cp->doc, tag, ev->data.scalar.value,
                                        (int)ev->data.scalar.length, ev->data.scalar.style);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        if (cp->depth == S_MAX_DEPTH) {
            char path[S_MAX_PATH];
            s_compose_path(cp, path, sizeof path);
            return s_fail(ld, ev->start_mark.line, path,
                          "nested deeper than %d levels, refused", S_MAX_DEPTH);
        }
        if (mapping) {
            tag = ev->data.mapping_start.tag;
            anchor = ev->data.mapping_start.anchor;
            node = yaml_document_add_mapping(cp->doc, tag, ev->data.mapping_start.style);
        } else {
            tag = ev->data.sequence_start.tag;
            anchor = ev->data.sequence_start.anchor;
            node = yaml_document_add_sequence(cp->doc, tag, ev->data.sequence_start.style);
        }
        if (!node)
            return s_fail(ld, ev->start_mark.line, NULL, "YAML parser out of memory");
        s_compose_mark(cp, node, ev, anchor);
        if (!s_compose_attach(ld, cp, node, &ev->start_mark))
            return false;
        cp->open[cp->depth++] = (s_open_t){ .node = node, .mapping = mapping };
        return true;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        assert(cp->depth > 0); /* libyaml pairs them */
        yaml_node_t *n = yaml_document_get_node(cp->doc, cp->open[cp->depth - 1].node);
        n->end_mark = ev->end_mark;
        cp->depth--;
        *done = cp->depth == 0;
        return true;
    }
    default:
        return true;
    }
    if (!node)
        return s_fail(ld, ev->start_mark.line, NULL, "YAML parser out of memory");
    if (ev->type == YAML_SCALAR_EVENT)
        s_compose_mark(cp, node, ev, anchor);
    if (!s_compose_attach(ld, cp, node, &ev->start_mark))
        return false;
    *done = cp->depth == 0;
    return true;
}

/* Composes the single document of text into doc (initialized here; the
 * caller deletes it, also on failure), from libyaml's events rather than
 * its own composer: collections may nest at most S_MAX_DEPTH deep. libyaml
 * keeps one possible simple key per open flow collection and walks them all
 * at every token, so a file of N nested "[" costs it N^2 steps (seconds at
 * 50,000, minutes at 200,000); refusing at S_MAX_DEPTH keeps every file
 * linear. An empty stream leaves doc without a root; a second document is
 * an error. */
static bool s_compose(s_load_t *ld, yaml_parser_t *parser, yaml_document_t *doc,
                      const char *text, size_t len)
{
    s_compose_t cp = { .doc = doc };
    bool ok = false, in_doc = false, done = false, ended = false;
    size_t second = 0;   /* 1 + line of a second document's content */
    size_t skipped = 0;  /* depth inside that second document */
    memset(doc, 0, sizeof *doc); /* deletable even if initializing fails */
    if (!yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1))
        return s_fail(ld, 0, NULL, "YAML parser out of memory");
    while (!ended) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            s_yaml_error(ld, parser, text, len);
            goto out;
        }
        bool good = true;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            ended = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_doc = true;
            break;
        case YAML_DOCUMENT_END_EVENT:
            in_doc = false;
            break;
        default:
            if (!in_doc)
                break;
            if (!done) {
                good = s_compose_event(ld, &cp, &ev, &done);
                break;
            }
            /* A second document would be silently ignored: refused where
             * its content starts (an empty one is harmless), once the
             * parser has read to the end, so a syntax error in it is
             * reported first. It is not composed, but bounded alike. */
            if (!second)
                second = ev.start_mark.line + 1;
            if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
                if (++skipped > S_MAX_DEPTH)
                    good = s_fail(ld, ev.start_mark.line, NULL,
                                  "nested deeper than %d levels, refused", S_MAX_DEPTH);
            } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
                skipped--;
            }
        }
        yaml_event_delete(&ev);
        if (!good)
            goto out;
    }
    if (second) {
        s_fail(ld, second - 1, NULL, "expected a single YAML document, found a second one");
        goto out;
    }
    ok = true;
out:
    for (size_t i = 0; i < cp.n_anchors; i++)
        free(cp.anchors[i].name);
    free(cp.anchors);
    return ok;
}

/* Parses text (len bytes) and loads its single document into base. */
static bool s_load_text(s_load_t *ld, const cfg_field_t *schema, const char *text, size_t len,
                        unsigned char *base)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool ok = false;

    if (!yaml_parser_initialize(&parser))
        return s_fail(ld, 0, NULL, "YAML parser out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!s_compose(ld, &parser, &doc, text, len))
        goto out;
    ld->doc = &doc;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        s_fail(ld, 0, NULL, "empty file, expected a mapping of settings");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        char got[96];
        s_fail(ld, root->start_mark.line, NULL, "expected a mapping at the top level, got %s",
               s_describe(root, got, sizeof got));
        goto out;
    }
    ok = s_load_mapping(ld, schema, root, base, "");
out:
    ld->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return ok;
}

/* The transaction around s_load_text: scratch copy in, commit or discard. */
static bool s_load(const char *name, const char *text, size_t len, const cfg_field_t *schema,
                   void *out, char *err, size_t errlen)
{
    size_t extent = s_extent(schema);
    unsigned char *scratch = xmalloc(extent);
    memcpy(scratch, out, extent);
    s_load_t ld = {
        .name = name, .doc = NULL, .items_left = S_MAX_ITEMS, .err = err, .errlen = errlen
    };
    bool ok = s_load_text(&ld, schema, text, len, scratch);
    if (ok)
        s_commit(schema, scratch, out);
    else
        s_discard_new(schema, scratch, out);
    free(scratch);
    return ok;
}

bool cfg_load_string(const char *name, const char *text, const cfg_field_t *schema, void *out,
                     char *err, size_t errlen)
{
    assert(name && text && schema && out);
    size_t len = strlen(text);
    if (len > S_MAX_FILE) {
        if (err && errlen)
            snprintf(err, errlen, "%s: larger than %zu KiB, refused", name, S_MAX_FILE >> 10);
        return false;
    }
    return s_load(name, text, len, schema, out, err, errlen);
}

bool cfg_load(const char *path, const cfg_field_t *schema, void *out, char *err, size_t errlen)
{
    assert(path && schema && out);
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small(path, S_MAX_FILE, &text, &len);
    if (rc == -EFBIG) {
        if (err && errlen)
            snprintf(err, errlen, "%s: file is larger than %zu KiB, refused", path,
                     S_MAX_FILE >> 10);
        return false;
    }
    if (rc != 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        return false;
    }
    bool ok = s_load(path, text, len, schema, out, err, errlen);
    free(text);
    return ok;
}

void cfg_free(const cfg_field_t *schema, void *out)
{
    for (const cfg_field_t *f = schema; f->key; f++)
        s_free_field(f, out);
}
