/*
 * cfg: schema-driven loading of YAML config files and plans into plain C
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
 *   - Retired keys (CFG_RETIRED) are refused with their own message, which
 *     says what to write instead; a key that must differ between the items
 *     of a list (cfg_field_t.unique) is refused when repeated, naming the
 *     first item and its line.
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
 * document is composed in cfgyaml.c from libyaml's events, so the bound
 * holds before libyaml's quadratic walk of nested flow levels can cost
 * anything), loads more than S_MAX_ITEMS list items in all (an alias counts
 * each time it is used, so a small file cannot fan out into millions), logs,
 * or keeps any state between calls: a thread may load while another does.
 *
 * This file walks the document against the schema (mappings, sections,
 * lists) and holds the transaction; the rest of the loader is in modules
 * of its own, private to it: cfgyaml.c composes the document, cfgread.c
 * reads the typed scalar fields, cfgerr.c words the errors, cfgmem.c frees
 * and moves what the fields own.
 */
#include "cfg.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cfgerr.h"
#include "cfgmem.h"
#include "cfgread.h"
#include "cfgyaml.h"
#include "fsutil.h"
#include "xalloc.h"

#define S_MAX_FILE ((size_t)1 << 20) /* 1 MiB: a config file, not a data file */
/* List items loaded per file, all lists together. A file without aliases
 * cannot reach it (every item takes at least one byte of S_MAX_FILE); with
 * aliases it bounds the work and memory a small file can ask for. */
#define S_MAX_ITEMS ((size_t)1 << 20)

/* One load in progress. Borrows everything; owns nothing. Which struct the
 * schema's offsets index (the scratch copy or a list item) is passed down
 * with each call as base. */
typedef struct {
    cfgerr_t e;              /* the file's name and where errors go */
    yaml_document_t *doc;
    size_t items_left;       /* list items still allowed (S_MAX_ITEMS) */
} s_load_t;

/* ---- schema walking ---------------------------------------------------- */

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
    return cfgerr_fail(&ld->e, seq->start_mark.line, path, "expected %s, got %zu", want, n);
}

/* Item i of seq, counted against S_MAX_ITEMS, with its path ("PATH[i]",
 * path being the list's) written into ipath (CFGERR_MAX_PATH bytes); NULL
 * after reporting. */
static yaml_node_t *s_item(s_load_t *ld, yaml_node_t *seq, size_t i, const char *path,
                           char *ipath)
{
    if (snprintf(ipath, CFGERR_MAX_PATH, "%s[%zu]", path, i) >= CFGERR_MAX_PATH) {
        cfgerr_fail(&ld->e, seq->start_mark.line, path, "nested too deeply");
        return NULL;
    }
    yaml_node_t *item = yaml_document_get_node(ld->doc, seq->data.sequence.items.start[i]);
    if (ld->items_left == 0) {
        cfgerr_fail(&ld->e, item->start_mark.line, ipath,
                    "more than %zu list items in the file (an alias used too often?)",
                    S_MAX_ITEMS);
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
    char ipath[CFGERR_MAX_PATH], got[96];
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = s_item(ld, seq, i, path, ipath);
        if (!item)
            goto fail;
        size_t line = item->start_mark.line;
        if (item->type != YAML_SCALAR_NODE || cfgyaml_is_null(item)) {
            cfgerr_fail(&ld->e, line, ipath, "expected a string, got %s",
                        cfgerr_describe(item, got, sizeof got));
            goto fail;
        }
        const char *v = (const char *)item->data.scalar.value;
        if (strlen(v) != item->data.scalar.length) {
            cfgerr_fail(&ld->e, line, ipath, "expected a string without NUL bytes");
            goto fail;
        }
        if (!*v) {
            cfgerr_fail(&ld->e, line, ipath, "expected a non-empty string, got \"\"");
            goto fail;
        }
        l.items[l.count++] = xstrdup(v);
    }
    memcpy(base + f->offset, &l, sizeof l);
    return true;
fail:
    cfgmem_strings_free(&l);
    return false;
}

/* f->unique: item i's value of that key differs from every earlier item's
 * (an item without the key is not compared). path is the list's. */
static bool s_unique_ok(s_load_t *ld, const cfg_field_t *f, yaml_node_t *seq,
                        const cfg_list_t *l, size_t i, const char *path)
{
    const cfg_field_t *key = f->children;
    while (key->key && strcmp(key->key, f->unique) != 0)
        key++;
    assert(key->key && key->type == CFG_STRING);
    const unsigned char *items = l->items;
    const char *v = *(char *const *)(const void *)(items + i * f->item_size + key->offset);
    for (size_t j = 0; v && j < i; j++) {
        const char *w = *(char *const *)(const void *)(items + j * f->item_size + key->offset);
        if (!w || strcmp(v, w) != 0)
            continue;
        char kpath[CFGERR_MAX_PATH + 64];
        snprintf(kpath, sizeof kpath, "%s[%zu].%s", path, i, f->unique);
        yaml_node_t *first = yaml_document_get_node(ld->doc, seq->data.sequence.items.start[j]);
        yaml_node_t *again = yaml_document_get_node(ld->doc, seq->data.sequence.items.start[i]);
        return cfgerr_fail(&ld->e, again->start_mark.line, kpath,
                           "\"%s\" is already %s[%zu] (line %zu)", v, path, j,
                           first->start_mark.line + 1);
    }
    return true;
}

/* A sequence of mappings into a cfg_list_t at f's offset: each item an
 * item_size struct, zeroed or a copy of f->item_defaults, filled by
 * f->children at offsets from the item's start. */
static bool s_load_list(s_load_t *ld, const cfg_field_t *f, yaml_node_t *seq, unsigned char *base,
                        const char *path)
{
    assert(f->children && f->item_size > 0 && cfgmem_extent(f->children) <= f->item_size);
    assert(!f->item_defaults || cfgmem_holds_nothing(f->children, f->item_defaults));
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (!s_count_ok(ld, f, seq, n, path))
        return false;
    /* Every item is set up front (zeroed, or defaults holding nothing to
     * free), so on failure all n can be freed alike, loaded, half loaded or
     * not reached. */
    cfg_list_t l = { n ? xcalloc(n, f->item_size) : NULL, n };
    for (size_t i = 0; f->item_defaults && i < n; i++)
        memcpy((unsigned char *)l.items + i * f->item_size, f->item_defaults, f->item_size);
    char ipath[CFGERR_MAX_PATH], got[96];
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = s_item(ld, seq, i, path, ipath);
        if (!item)
            goto fail;
        if (item->type != YAML_MAPPING_NODE) {
            cfgerr_fail(&ld->e, item->start_mark.line, ipath, "expected a mapping, got %s",
                        cfgerr_describe(item, got, sizeof got));
            goto fail;
        }
        unsigned char *it = (unsigned char *)l.items + i * f->item_size;
        if (!s_load_mapping(ld, f->children, item, it, ipath))
            goto fail;
        if (f->unique && !s_unique_ok(ld, f, seq, &l, i, path))
            goto fail;
        const char *field = NULL;
        char why[256] = "";
        if (f->item_check && !f->item_check(it, &field, why, sizeof why)) {
            char fpath[CFGERR_MAX_PATH + 64];
            snprintf(fpath, sizeof fpath, "%s%s%s", ipath, field ? "." : "", field ? field : "");
            cfgerr_fail(&ld->e, item->start_mark.line, fpath, "%s", why);
            goto fail;
        }
    }
    memcpy(base + f->offset, &l, sizeof l);
    return true;
fail:
    cfgmem_list_free(f, &l);
    return false;
}

/* f->item_check on a loaded section (map, at path): a problem is reported
 * at the line of the key it names when that is one of map's own keys, else
 * at the section's line. */
static bool s_section_check(s_load_t *ld, const cfg_field_t *f, yaml_node_t *map,
                            unsigned char *base, const char *path)
{
    const char *field = NULL;
    char why[256] = "";
    if (f->item_check(base, &field, why, sizeof why))
        return true;
    size_t line = map->start_mark.line;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         field && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, field) == 0)
            line = k->start_mark.line;
    }
    char fpath[CFGERR_MAX_PATH + 64];
    snprintf(fpath, sizeof fpath, "%s%s%s", path, field ? "." : "", field ? field : "");
    return cfgerr_fail(&ld->e, line, fpath, "%s", why);
}

/* Parses one value node into the struct at base, at f's offset. */
static bool s_load_value(s_load_t *ld, const cfg_field_t *f, yaml_node_t *node,
                         unsigned char *base, const char *path)
{
    char gotbuf[96];
    size_t line = node->start_mark.line;

    if (f->type == CFG_RETIRED) {
        assert(f->retired);
        return cfgerr_fail(&ld->e, line, path, "%s", f->retired);
    }
    if (f->type == CFG_SECTION) {
        if (node->type != YAML_MAPPING_NODE)
            return cfgerr_fail(&ld->e, line, path, "expected a mapping, got %s",
                               cfgerr_describe(node, gotbuf, sizeof gotbuf));
        if (!s_load_mapping(ld, f->children, node, base, path))
            return false;
        return !f->item_check || s_section_check(ld, f, node, base, path);
    }
    if (f->type == CFG_STRING_LIST || f->type == CFG_LIST) {
        if (node->type != YAML_SEQUENCE_NODE)
            return cfgerr_fail(&ld->e, line, path, "expected a list of %s, got %s",
                               f->type == CFG_LIST ? "mappings" : "strings",
                               cfgerr_describe(node, gotbuf, sizeof gotbuf));
        return f->type == CFG_LIST ? s_load_list(ld, f, node, base, path)
                                   : s_load_strings(ld, f, node, base, path);
    }
    return cfgread_scalar(&ld->e, f, node, base, path);
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
    char path[CFGERR_MAX_PATH], got[96];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         ok && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            ok = cfgerr_fail(&ld->e, k->start_mark.line, prefix, "expected a scalar key, got %s",
                             cfgerr_describe(k, got, sizeof got));
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
                if (schema[j].type != CFG_RETIRED)
                    o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", o ? ", " : "",
                                          schema[j].key);
            ok = cfgerr_fail(&ld->e, k->start_mark.line, path, "unknown key (known: %s)", known);
            break;
        }
        if (seen[i] != SIZE_MAX) {
            ok = cfgerr_fail(&ld->e, k->start_mark.line, path, "duplicate key (first at line %zu)",
                             seen[i] + 1);
            break;
        }
        seen[i] = k->start_mark.line;
        ok = s_load_value(ld, &schema[i], v, base, path);
    }

    for (size_t i = 0; ok && i < nfields; i++) {
        if (schema[i].required && seen[i] == SIZE_MAX) {
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", schema[i].key);
            ok = cfgerr_fail(&ld->e, map->start_mark.line, path, "missing required field");
        }
    }
    if (seen != seen_stack)
        free(seen);
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
        return cfgerr_fail(&ld->e, 0, NULL, "YAML parser out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!cfgyaml_compose(&ld->e, &parser, &doc, text, len))
        goto out;
    ld->doc = &doc;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        cfgerr_fail(&ld->e, 0, NULL, "empty file, expected a mapping of settings");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        char got[96];
        cfgerr_fail(&ld->e, root->start_mark.line, NULL,
                    "expected a mapping at the top level, got %s",
                    cfgerr_describe(root, got, sizeof got));
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
    size_t extent = cfgmem_extent(schema);
    unsigned char *scratch = xmalloc(extent);
    memcpy(scratch, out, extent);
    s_load_t ld = {
        .e = { .name = name, .err = err, .errlen = errlen }, .doc = NULL, .items_left = S_MAX_ITEMS
    };
    bool ok = s_load_text(&ld, schema, text, len, scratch);
    if (ok)
        cfgmem_commit(schema, scratch, out);
    else
        cfgmem_discard_new(schema, scratch, out);
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
    cfgmem_free(schema, out);
}

bool cfg_label_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CFG_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}
