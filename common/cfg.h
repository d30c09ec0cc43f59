/*
 * cfg: schema-driven YAML loading (libyaml's document API) for every
 * godwit config file and plan.
 *
 * A schema is a table of cfg_field_t rows ending with a row whose key is NULL.
 * cfg_load() fills a caller-owned struct at the rows' offsets; it refuses the
 * whole file on the first problem, with an error naming file, line and the
 * dotted field path, e.g.
 *   agent.yaml:7: postgres.port: expected an integer from 1 to 65535, got "abc"
 *   agent.yaml:3: coordinatr: unknown key (known: name, role, coordinator, ...)
 *   agent.yaml:1: postgres: missing required field
 *   plan.yaml:14: migrations[1].source.agent: missing required field
 * On failure nothing is left allocated in *out. Strings and lists in *out are
 * owned by the struct and released by cfg_free() with the same schema.
 */
#ifndef GODWIT_CFG_H
#define GODWIT_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef enum {
    CFG_STRING,      /* char *, any non-empty scalar */
    CFG_PATH,        /* char *, non-empty, no NUL; not checked for existence */
    CFG_INT,         /* int64_t, within [min, max] */
    CFG_BOOL,        /* bool: true/false/yes/no/on/off */
    CFG_DURATION_MS, /* int64_t ms: "250ms", "2s", "1m", "1h"; a bare integer is refused */
    CFG_BYTES,       /* int64_t bytes: "512", "64kB", "10MB", "1GiB" */
    CFG_ENDPOINT,    /* char *, "tcp://HOST:PORT" (PORT 1-65535) or "ipc:///path" */
    CFG_LABEL,       /* char *, a label: cfg_label_ok() */
    CFG_ENUM,        /* int, index into enum_values */
    CFG_SECTION,     /* nested mapping described by children */
    CFG_STRING_LIST, /* cfg_strings_t, a sequence of non-empty scalars; [min, max] items */
    CFG_LIST,        /* cfg_list_t, a sequence of mappings, each filled into an
                        item_size struct by children; [min, max] items */
    CFG_RETIRED,     /* nothing stored: a key no longer accepted; given, it
                        refuses the file with the row's `retired` message
                        (what to write instead), never "unknown key" */
} cfg_type_t;

/* A CFG_STRING_LIST value: count strings; items and each string are
 * malloc'd and owned by the struct holding this (cfg_free). An empty or
 * absent list is { NULL, 0 }. */
typedef struct {
    char **items;
    size_t count;
} cfg_strings_t;

/* A CFG_LIST value: items is a malloc'd array of count structs of the row's
 * item_size bytes, so item i is at (char *)items + i * item_size (or
 * ((my_item_t *)items)[i]). What the items hold is owned by the struct
 * holding this (cfg_free). An empty or absent list is { NULL, 0 }. */
typedef struct {
    void *items;
    size_t count;
} cfg_list_t;

/* One row of a schema. Offsets are always from the start of the struct the
 * schema fills: the caller's struct at the top level, and inside a CFG_LIST,
 * one item. So:
 *   - CFG_SECTION does not start a new struct: its children's offsets are
 *     from the start of the same struct as the section row's own (the whole
 *     struct at the top level, e.g. offsetof(agent_config_t, postgres.port)),
 *     and the section's own offset is unused.
 *   - CFG_LIST does: its offset places the cfg_list_t, and its children's
 *     offsets are from the start of ONE ITEM (offsetof(my_item_t, name)),
 *     including the children of sections and lists nested in the item.
 * Rows are best written with designated initializers (.key = ..., as the
 * schemas in agent/ and coordinator/ are); members a row does not use are
 * 0 or NULL. */
typedef struct cfg_field {
    const char *key;
    cfg_type_t type;
    size_t offset;                    /* offsetof() in the struct being filled */
    bool required;
    int64_t min, max;                 /* CFG_INT / DURATION / BYTES: the value;
                                         CFG_STRING_LIST / LIST: the item count;
                                         max 0 = no upper bound */
    const char *const *enum_values;   /* CFG_ENUM, NULL-terminated */
    const struct cfg_field *children; /* CFG_SECTION, CFG_LIST: the rows of the
                                         nested mapping (offsets: see above). A
                                         missing optional section or list is not
                                         checked for its required children. */
    size_t item_size;                 /* CFG_LIST: sizeof one item; else 0 */
    /* CFG_LIST, optional: checks one loaded item as a whole (fields that
     * depend on each other). On false it sets *field to the key the problem
     * is about (NULL: the item itself) and writes why; the load fails with
     * the item's line and path, e.g. "agent.yaml:9: proxies[0].haproxy: ...".
     * CFG_SECTION, optional, the same for a section given in the file: it
     * is passed the struct the section's offsets index (see above), *field
     * is a key inside the section, and the error has that key's line, e.g.
     * "coordinator.yaml:12: metrics.listen: ..." (a section left out is not
     * checked). */
    bool (*item_check)(const void *item, const char **field, char *why, size_t whylen);
    /* CFG_LIST, optional: an item_size struct each item starts as a copy of
     * before its mapping is loaded (NULL: zeroed), so a key left out keeps
     * this value, e.g. a bool that defaults to true. Scalars only: the
     * defaults must hold no string and no list (asserted), since every item
     * owns what it holds. */
    const void *item_defaults;
    /* CFG_LIST, optional: the key of a CFG_STRING child whose value must
     * differ from item to item, e.g. "name"; a repeat refuses the file at
     * the repeating item's line: "peers[1].name: \"blue\" is already
     * peers[0] (line 12)". */
    const char *unique;
    /* CFG_RETIRED: why the key is refused and what to write instead. */
    const char *retired;
} cfg_field_t;

#define CFG_END { .key = NULL }

/* A label (a jurisdiction, say): 1 to CFG_LABEL_MAX of a-z, 0-9, _ and -. */
#define CFG_LABEL_MAX 32
bool cfg_label_ok(const char *s);


/* Loads path against schema into out (which the caller zeroed and may have
 * pre-filled with defaults; a default string or list must be heap-allocated
 * since cfg_free() frees it, and a list in the file replaces a default list
 * whole). Returns true on success; on failure writes the error into err
 * (errlen bytes) and leaves out as it was given, defaults included, with
 * nothing allocated. */
bool cfg_load(const char *path, const cfg_field_t *schema, void *out, char *err, size_t errlen)
    GODWIT_MUSTCHECK;

/* Same, from a string; name is used in error messages in place of a path. */
bool cfg_load_string(const char *name, const char *text, const cfg_field_t *schema, void *out,
                     char *err, size_t errlen) GODWIT_MUSTCHECK;

/* Frees every string and list the schema describes in out and zeroes them;
 * lists recursively (the strings and lists inside each item, then the items
 * array). Calling it again is harmless. */
void cfg_free(const cfg_field_t *schema, void *out);

#endif
