/* toc: the dump's table of contents and what ApplySchema makes of it
 * (toc.h). */
#include "toc.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define S_NAMES_SHOWN 5 /* objects named in an error */

static const struct {
    const char *name; /* as the source query writes it, and the target query reads it */
    toc_kind_t kind;
} s_kinds[] = {
    {"table", TOC_K_TABLE},
    {"index", TOC_K_INDEX},
    {"relation", TOC_K_RELATION},
    {"constraint", TOC_K_CONSTRAINT},
    {"trigger", TOC_K_TRIGGER},
    {"rule", TOC_K_RULE},
    {"policy", TOC_K_POLICY},
    {"event trigger", TOC_K_EVENT_TRIGGER},
};

/* Orders tables asked for by schema, then name. */
static int s_cmp_want(const void *a, const void *b)
{
    const toc_want_t *x = a, *y = b;
    int c = strcmp(x->schema, y->schema);
    return c ? c : strcmp(x->name, y->name);
}

/* True when the entry's description is desc, or desc followed by more words
 * ("PUBLICATION" matches "PUBLICATION TABLE" too). */
static bool s_desc_is(const toc_entry_t *e, const char *desc)
{
    size_t n = strlen(desc);
    return strncmp(e->desc, desc, n) == 0 && (e->desc[n] == ' ' || e->desc[n] == '\0');
}

static bool s_desc_exact(const toc_entry_t *e, const char *desc)
{
    size_t n = strlen(desc);
    return strncmp(e->desc, desc, n) == 0 && e->desc[n] == ' ';
}

void toc_clear(toc_t *t)
{
    for (size_t i = 0; i < t->n_entries; i++) {
        free(t->entries[i].deps);
        free(t->entries[i].schema);
        free(t->entries[i].table);
        free(t->entries[i].name);
    }
    free(t->entries);
    free(t->by_id);
    free(t->asked);
    free(t->text);
    for (size_t i = 0; i < t->n_want; i++) {
        free(t->want[i].schema);
        free(t->want[i].name);
    }
    free(t->want);
    memset(t, 0, sizeof *t);
}

void toc_want_set(toc_t *t, Godwit__TableRef *const *tables, size_t n)
{
    if (n == 0)
        return;
    t->want = xcalloc(n, sizeof *t->want);
    for (size_t i = 0; i < n; i++) {
        t->want[i].schema = xstrdup(tables[i]->schema);
        t->want[i].name = xstrdup(tables[i]->name);
    }
    qsort(t->want, n, sizeof *t->want, s_cmp_want);
    for (size_t i = 0; i < n; i++) {
        if (t->n_want > 0 && s_cmp_want(&t->want[t->n_want - 1], &t->want[i]) == 0) {
            free(t->want[i].schema);
            free(t->want[i].name);
        } else {
            t->want[t->n_want++] = t->want[i];
        }
    }
}

static int s_cmp_id(const void *a, const void *b, void *arg)
{
    const toc_entry_t *e = arg;
    int x = e[*(const size_t *)a].id, y = e[*(const size_t *)b].id;
    return (x > y) - (x < y);
}

static toc_entry_t *s_find(toc_t *t, int id)
{
    size_t lo = 0, hi = t->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int v = t->entries[t->by_id[mid]].id;
        if (v == id)
            return &t->entries[t->by_id[mid]];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Sets flag on every entry without any of skip that depends, directly or
 * transitively, on an entry with flag. */
static void s_spread(toc_t *t, unsigned flag, unsigned skip)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < t->n_entries; i++) {
            toc_entry_t *e = &t->entries[i];
            if (e->flags & skip)
                continue;
            for (size_t d = 0; d < e->n_deps; d++) {
                toc_entry_t *de = s_find(t, e->deps[d]);
                if (de && (de->flags & flag)) {
                    e->flags |= flag;
                    changed = true;
                    break;
                }
            }
        }
    }
}

/* Parses "ID; CLS OID DESC ..." into a new entry. false if malformed. */
static bool s_parse_entry(toc_t *t, char *line)
{
    char *p = line, *end;
    long id = strtol(p, &end, 10);
    if (end == p || *end != ';' || end[1] != ' ' || id < 0 || id > INT32_MAX)
        return false;
    p = end + 2;
    unsigned long cls = strtoul(p, &end, 10);
    if (end == p || *end != ' ')
        return false;
    p = end + 1;
    unsigned long oid = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || cls > UINT32_MAX || oid > UINT32_MAX)
        return false;
    if (t->n_entries == t->cap_entries) {
        t->cap_entries = t->cap_entries ? 2 * t->cap_entries : 256;
        t->entries = xrealloc(t->entries, t->cap_entries * sizeof *t->entries);
    }
    toc_entry_t *e = &t->entries[t->n_entries++];
    memset(e, 0, sizeof *e);
    e->id = (int)id;
    e->cls = (uint32_t)cls;
    e->oid = (uint32_t)oid;
    e->line = line;
    e->desc = end + 1;
    return true;
}

/* Parses ";\tdepends on: 6 851" into e's dependencies. */
static bool s_parse_deps(toc_entry_t *e, const char *list)
{
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            return true;
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id > INT32_MAX)
            return false;
        if (e->n_deps == e->cap_deps) {
            e->cap_deps = e->cap_deps ? 2 * e->cap_deps : 4;
            e->deps = xrealloc(e->deps, e->cap_deps * sizeof *e->deps);
        }
        e->deps[e->n_deps++] = (int)id;
        p = end;
    }
}

char *toc_parse(toc_t *t, const char *text, size_t text_len)
{
    static const char deps_prefix[] = ";\tdepends on:";
    size_t lineno = 0;
    char *next;
    t->text = xmalloc(text_len + 1);
    memcpy(t->text, text, text_len + 1);
    for (char *line = t->text; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (line[0] == '\0')
            continue;
        if (strncmp(line, deps_prefix, sizeof deps_prefix - 1) == 0) {
            if (t->n_entries == 0 ||
                !s_parse_deps(&t->entries[t->n_entries - 1], line + sizeof deps_prefix - 1))
                return xasprintf("cannot read line %zu of pg_restore --list: %s", lineno, line);
            continue;
        }
        if (line[0] == ';')
            continue;
        if (!s_parse_entry(t, line))
            return xasprintf("cannot read line %zu of pg_restore --list: %s", lineno, line);
    }
    t->by_id = xmalloc((t->n_entries ? t->n_entries : 1) * sizeof *t->by_id);
    for (size_t i = 0; i < t->n_entries; i++)
        t->by_id[i] = i;
    qsort_r(t->by_id, t->n_entries, sizeof *t->by_id, s_cmp_id, t->entries);
    for (size_t i = 1; i < t->n_entries; i++)
        if (t->entries[t->by_id[i]].id == t->entries[t->by_id[i - 1]].id)
            return xasprintf("pg_restore --list shows dump id %d twice",
                             t->entries[t->by_id[i]].id);
    return NULL;
}

char *toc_mark_post(toc_t *t, const char *text)
{
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (line[0] != ';' && line[0] != '\n' && line[0] != '\r') {
            char *end;
            long id = strtol(line, &end, 10);
            toc_entry_t *e = (end != line && *end == ';') ? s_find(t, (int)id) : NULL;
            if (!e)
                return xasprintf("pg_restore --list --section=post-data shows an entry the full "
                                 "list does not have: %.*s",
                                 (int)(nl ? nl - line : (ptrdiff_t)strlen(line)), line);
            e->flags |= TOC_POST;
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

void toc_mark_excluded(toc_t *t)
{
    for (size_t i = 0; i < t->n_entries; i++) {
        toc_entry_t *e = &t->entries[i];
        if (s_desc_is(e, "PUBLICATION") || s_desc_is(e, "SUBSCRIPTION") ||
            s_desc_is(e, "DATABASE"))
            e->flags |= TOC_EXCLUDED;
        else if (e->cls == 0 && e->oid == 0 &&
                 (s_desc_exact(e, "ENCODING") || s_desc_exact(e, "STDSTRINGS") ||
                  s_desc_exact(e, "SEARCHPATH")))
            e->flags |= TOC_SPECIAL;
    }
    /* and whatever depends on those (comments, security labels) */
    s_spread(t, TOC_EXCLUDED, TOC_EXCLUDED);
}

/* Moves the keys from post to pre, and the entries that only hang on moved
 * ones and on pre-data (a comment on a primary key, the ATTACH of a
 * partition's primary-key index to its parent's). */
void toc_move_keys(toc_t *t)
{
    for (size_t i = 0; i < t->n_entries; i++) {
        toc_entry_t *e = &t->entries[i];
        if ((e->flags & (TOC_POST | TOC_KEY | TOC_EXCLUDED | TOC_OUT)) == (TOC_POST | TOC_KEY))
            e->flags |= TOC_MOVED;
    }
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < t->n_entries; i++) {
            toc_entry_t *e = &t->entries[i];
            if ((e->flags & (TOC_POST | TOC_MOVED | TOC_EXCLUDED | TOC_OUT)) != TOC_POST ||
                e->cls != 0 ||
                !(s_desc_exact(e, "COMMENT") || s_desc_exact(e, "SECURITY LABEL") ||
                  s_desc_exact(e, "INDEX ATTACH")))
                continue;
            bool on_moved = false, on_post = false;
            for (size_t d = 0; d < e->n_deps; d++) {
                toc_entry_t *de = s_find(t, e->deps[d]);
                if (!de)
                    continue;
                if (de->flags & TOC_MOVED)
                    on_moved = true;
                else if (de->flags & TOC_POST)
                    on_post = true;
            }
            if (on_moved && !on_post) {
                e->flags |= TOC_MOVED;
                changed = true;
            }
        }
    }
}

static int s_cmp_oid(const void *a, const void *b, void *arg)
{
    const toc_entry_t *e = arg;
    uint32_t x = e[*(const size_t *)a].oid, y = e[*(const size_t *)b].oid;
    return (x > y) - (x < y);
}

/* The TABLE entry of table oid, among tabs (sorted by oid). */
static toc_entry_t *s_find_table(toc_t *t, const size_t *tabs, size_t n_tabs, uint32_t oid)
{
    size_t lo = 0, hi = n_tabs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = t->entries[tabs[mid]].oid;
        if (v == oid)
            return &t->entries[tabs[mid]];
        if (v < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* "schema.name" of a catalog-named entry, else its description. The caller
 * frees. */
static char *s_entry_text(const toc_entry_t *e)
{
    if (e->name && e->schema && e->schema[0])
        return xasprintf("%s.%s", e->schema, e->name);
    return xstrdup(e->desc);
}

char *toc_scope(toc_t *t, const char *source_db)
{
    if (t->n_want == 0)
        return NULL;
    size_t *tabs = xmalloc((t->n_entries ? t->n_entries : 1) * sizeof *tabs);
    size_t n_tabs = 0;
    for (size_t i = 0; i < t->n_entries; i++) {
        toc_entry_t *e = &t->entries[i];
        if (e->kind != TOC_K_TABLE || !s_desc_exact(e, "TABLE") || (e->flags & TOC_EXCLUDED))
            continue;
        tabs[n_tabs++] = i;
        toc_want_t key = {.schema = e->schema, .name = e->name};
        toc_want_t *w = bsearch(&key, t->want, t->n_want, sizeof *t->want, s_cmp_want);
        if (w) {
            w->found = true;
            e->flags |= TOC_IN;
        }
    }
    char *names = NULL, *err = NULL;
    size_t n_names = 0;
    for (size_t i = 0; i < t->n_want; i++) {
        if (t->want[i].found)
            continue;
        char *n = xasprintf("%s.%s", t->want[i].schema, t->want[i].name);
        toc_name_add(&names, &n_names, n);
        free(n);
    }
    if (n_names > 0) {
        err = xasprintf("the source database %s has no table %s (asked for %zu %s)",
                        source_db, names, t->n_want, t->n_want == 1 ? "table" : "tables");
        goto out;
    }

    /* partitions of tables in scope, at any depth */
    qsort_r(tabs, n_tabs, sizeof *tabs, s_cmp_oid, t->entries);
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < n_tabs; i++) {
            toc_entry_t *e = &t->entries[tabs[i]];
            if ((e->flags & TOC_IN) || !e->parent)
                continue;
            toc_entry_t *p = s_find_table(t, tabs, n_tabs, e->parent);
            if (p && (p->flags & TOC_IN)) {
                e->flags |= TOC_IN;
                changed = true;
            }
        }
    }
    for (size_t i = 0; i < n_tabs; i++)
        if (!(t->entries[tabs[i]].flags & TOC_IN))
            t->entries[tabs[i]].flags |= TOC_OUT;

    /* what depends on them; a table in scope stays (checked below) */
    s_spread(t, TOC_OUT, TOC_OUT | TOC_IN);

    /* a table in scope, or a default of one, that needs what is out of it
     * (a partition's own parent is fine: its attachment is a separate entry) */
    for (size_t i = 0; i < t->n_entries; i++) {
        toc_entry_t *e = &t->entries[i];
        bool table = e->flags & TOC_IN;
        if (!table && !((e->flags & TOC_OUT) && s_desc_exact(e, "DEFAULT")))
            continue;
        for (size_t d = 0; d < e->n_deps; d++) {
            toc_entry_t *de = s_find(t, e->deps[d]);
            if (!de)
                continue;
            if (table && (de->flags & TOC_OUT) &&
                !(de->kind == TOC_K_TABLE && de->oid == e->parent)) {
                char *a = s_entry_text(e), *b = s_entry_text(de);
                char *n = xasprintf("table %s needs %s", a, b);
                toc_name_add(&names, &n_names, n);
                free(n);
                free(b);
                free(a);
                break;
            }
            if (!table && (de->flags & TOC_IN)) {
                char *a = s_entry_text(de);
                char *n = xasprintf("%s (a column default of %s)", e->desc, a);
                toc_name_add(&names, &n_names, n);
                free(n);
                free(a);
                break;
            }
        }
    }
    if (n_names > 0)
        err = xasprintf("the tables asked for need objects of tables that were not asked for: "
                        "%s; ask for those tables too",
                        names);
out:
    free(names);
    free(tabs);
    return err;
}

bool toc_selected(const toc_entry_t *e, bool post)
{
    if (e->flags & (TOC_EXCLUDED | TOC_OUT))
        return false;
    bool pre = !(e->flags & TOC_POST) || (e->flags & TOC_MOVED);
    return post ? !pre : pre;
}

toc_kind_t toc_kind_parse(const char *v)
{
    for (size_t i = 0; v && i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (strcmp(v, s_kinds[i].name) == 0)
            return s_kinds[i].kind;
    return TOC_K_NONE;
}

const char *toc_kind_name(toc_kind_t k)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (s_kinds[i].kind == k)
            return s_kinds[i].name;
    return "object";
}

bool toc_checkable_post(toc_kind_t k)
{
    return k == TOC_K_INDEX || k == TOC_K_CONSTRAINT || k == TOC_K_TRIGGER || k == TOC_K_RULE ||
           k == TOC_K_POLICY || k == TOC_K_EVENT_TRIGGER;
}

char *toc_check_json(const toc_t *t, bool post, size_t *n_checked)
{
    cJSON *a = cJSON_CreateArray();
    *n_checked = 0;
    for (size_t i = 0; i < t->n_entries; i++) {
        const toc_entry_t *e = &t->entries[i];
        if (!toc_selected(e, post) || !e->name)
            continue;
        if (post ? !toc_checkable_post(e->kind) : e->kind != TOC_K_TABLE)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "k", toc_kind_name(e->kind));
        cJSON_AddStringToObject(o, "s", e->schema);
        cJSON_AddStringToObject(o, "t", e->table);
        cJSON_AddStringToObject(o, "n", e->name);
        cJSON_AddItemToArray(a, o);
        (*n_checked)++;
    }
    char *out = NULL;
    if (*n_checked > 0) {
        char *text = cJSON_PrintUnformatted(a);
        out = xstrdup(text); /* one allocator for everything the step owns */
        cJSON_free(text);
    }
    cJSON_Delete(a);
    return out;
}

/* "{1,2,3}" for the catalog ids of the entries that have one. */
void toc_catalog_ids(toc_t *t, char **cls_out, char **oids_out)
{
    t->asked = xmalloc((t->n_entries ? t->n_entries : 1) * sizeof *t->asked);
    size_t cap = 64;
    char *cls = xmalloc(cap), *oids = xmalloc(cap);
    size_t lc = 0, lo = 0;
    cls[lc++] = '{';
    oids[lo++] = '{';
    for (size_t i = 0; i < t->n_entries; i++) {
        const toc_entry_t *e = &t->entries[i];
        if (e->cls == 0 || e->oid == 0)
            continue;
        if (lc + 16 > cap || lo + 16 > cap) {
            cap *= 2;
            cls = xrealloc(cls, cap);
            oids = xrealloc(oids, cap);
        }
        const char *sep = t->n_asked ? "," : "";
        lc += (size_t)sprintf(cls + lc, "%s%" PRIu32, sep, e->cls);
        lo += (size_t)sprintf(oids + lo, "%s%" PRIu32, sep, e->oid);
        t->asked[t->n_asked++] = i;
    }
    cls[lc++] = '}';
    cls[lc] = '\0';
    oids[lo++] = '}';
    oids[lo] = '\0';
    *cls_out = cls;
    *oids_out = oids;
}

/* At most S_NAMES_SHOWN names. */
void toc_name_add(char **list, size_t *n, const char *name)
{
    if (++*n > S_NAMES_SHOWN) {
        if (*n == S_NAMES_SHOWN + 1) {
            char *l = xasprintf("%s, ...", *list);
            free(*list);
            *list = l;
        }
        return;
    }
    char *l = *list ? xasprintf("%s, %s", *list, name) : xstrdup(name);
    free(*list);
    *list = l;
}

char *toc_list_text(const toc_t *t, bool post, size_t *len_out)
{
    size_t len = 0;
    for (size_t i = 0; i < t->n_entries; i++) {
        const toc_entry_t *e = &t->entries[i];
        if (toc_selected(e, post) || (e->flags & TOC_SPECIAL))
            len += strlen(e->line) + 1;
    }
    char *text = xmalloc(len + 1);
    size_t n_text = 0;
    for (size_t i = 0; i < t->n_entries; i++) {
        const toc_entry_t *e = &t->entries[i];
        if (!toc_selected(e, post) && !(e->flags & TOC_SPECIAL))
            continue;
        size_t n = strlen(e->line);
        memcpy(text + n_text, e->line, n);
        n_text += n;
        text[n_text++] = '\n';
    }
    text[n_text] = '\0';
    *len_out = n_text;
    return text;
}
