/*
 * cfgread: the config loader's typed field readers (private to the loader,
 * see cfg.h for the field types).
 */
#ifndef GODWIT_CFGREAD_H
#define GODWIT_CFGREAD_H

#include <stdbool.h>
#include <yaml.h>

#include "cfgerr.h"
#include "cfg.h"

/* Reads node into the struct at base at f's offset, for a scalar field
 * type (not CFG_SECTION, CFG_STRING_LIST, CFG_LIST or CFG_RETIRED); a
 * string stored is malloc'd and owned by that struct. false after writing
 * the error (at path) to e. */
bool cfgread_scalar(const cfgerr_t *e, const cfg_field_t *f, const yaml_node_t *node,
                    unsigned char *base, const char *path);

#endif
