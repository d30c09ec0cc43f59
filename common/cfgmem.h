/*
 * cfgmem: what a schema's fields own in the struct they fill, and moving
 * it (private to the config loader, see cfg.h for the ownership rules).
 */
#ifndef GODWIT_CFGMEM_H
#define GODWIT_CFGMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"

/* One past the last byte any field of the schema touches (sections
 * included, not what is inside list items). */
size_t cfgmem_extent(const cfg_field_t *schema);

/* Frees a CFG_STRING_LIST value and zeroes it. */
void cfgmem_strings_free(cfg_strings_t *l);
/* Frees a CFG_LIST value (what each item holds, then the array), zeroes it. */
void cfgmem_list_free(const cfg_field_t *f, cfg_list_t *l);
/* Frees every string and list schema describes in the struct at base and
 * zeroes them (cfg_free). */
void cfgmem_free(const cfg_field_t *schema, void *base);

/* A failed load: frees what scratch holds that orig does not. */
void cfgmem_discard_new(const cfg_field_t *schema, void *scratch, const void *orig);
/* A good load: moves every field from scratch into out, freeing a default
 * a loaded string or list replaces. */
void cfgmem_commit(const cfg_field_t *schema, const void *scratch, void *out);

/* True if the struct at base holds no string and no list of schema's. */
bool cfgmem_holds_nothing(const cfg_field_t *schema, const void *base);

#endif
