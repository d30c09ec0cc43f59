/*
 * cfgmem: what the fields a schema describes own, and moving them between
 * structs: the bytes each field takes, the strings and lists to free, the
 * scratch copy's commit into the caller's struct or its discard.
 *
 * Owns nothing itself; frees what the struct it is given owns, as the
 * schema describes it. Never allocates.
 */
#include "cfgmem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a leaf field occupies at its offset; 0 for a section. */
static size_t s_field_size(cfg_type_t type)
{
    switch (type) {
    case CFG_STRING:
    case CFG_PATH:
    case CFG_ENDPOINT:
    case CFG_LABEL:
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
    case CFG_RETIRED:
        return 0;
    }
    assert(!"cfg: unknown field type in schema");
    return 0;
}

static bool s_is_string(cfg_type_t type)
{
    return type == CFG_STRING || type == CFG_PATH || type == CFG_ENDPOINT || type == CFG_LABEL;
}

/* One past the last byte any field of the schema (sections included, not
 * what is inside list items) touches: the size of the scratch copy, and at
 * most a list's item_size for a list's children. */
size_t cfgmem_extent(const cfg_field_t *schema)
{
    size_t end = 0;
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_RETIRED)
            continue;
        size_t e = f->type == CFG_SECTION ? cfgmem_extent(f->children)
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

void cfgmem_strings_free(cfg_strings_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Frees a list's items (what each holds, then the array) and zeroes it. */
void cfgmem_list_free(const cfg_field_t *f, cfg_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        cfgmem_free(f->children, (unsigned char *)l->items + i * f->item_size);
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
    case CFG_LABEL:
        free(*(char **)(void *)at);
        *(char **)(void *)at = NULL;
        return;
    case CFG_STRING_LIST:
        cfgmem_strings_free((cfg_strings_t *)(void *)at);
        return;
    case CFG_LIST:
        cfgmem_list_free(f, (cfg_list_t *)(void *)at);
        return;
    case CFG_SECTION:
        cfgmem_free(f->children, base);
        return;
    case CFG_INT:
    case CFG_BOOL:
    case CFG_DURATION_MS:
    case CFG_BYTES:
    case CFG_ENUM:
    case CFG_RETIRED:
        return;
    }
    assert(!"cfg: unknown field type in schema");
}

/* Frees the strings and lists scratch holds that orig does not: the ones
 * this load allocated. Used when a load fails. */
void cfgmem_discard_new(const cfg_field_t *schema, void *scratch, const void *orig)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_SECTION)
            cfgmem_discard_new(f->children, scratch, orig);
        else if (s_owned(f, scratch) != s_owned(f, orig))
            s_free_field(f, scratch);
    }
}

/* Moves every field from scratch into out. A string or list this load set
 * replaces, and frees, the default the caller had put there. */
void cfgmem_commit(const cfg_field_t *schema, const void *scratch, void *out)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_RETIRED)
            continue;
        if (f->type == CFG_SECTION) {
            cfgmem_commit(f->children, scratch, out);
            continue;
        }
        if (s_owned(f, out) != s_owned(f, scratch))
            s_free_field(f, out);
        memcpy((unsigned char *)out + f->offset, (const unsigned char *)scratch + f->offset,
               s_field_size(f->type));
    }
}

/* True if the struct at base holds no string and no list of schema's (a
 * section's included): item defaults must not, or items would share them.
 * Only asserted, by the list loader in cfg.c. */
bool cfgmem_holds_nothing(const cfg_field_t *schema, const void *base)
{
    for (const cfg_field_t *f = schema; f->key; f++) {
        if (f->type == CFG_SECTION ? !cfgmem_holds_nothing(f->children, base)
                                   : s_owned(f, base) != NULL)
            return false;
    }
    return true;
}

/* What cfg_free does: every field of schema in the struct at base. */
void cfgmem_free(const cfg_field_t *schema, void *base)
{
    for (const cfg_field_t *f = schema; f->key; f++)
        s_free_field(f, base);
}
