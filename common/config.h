/*
 * config: schema-driven YAML loading (libyaml's document API) for every
 * godwit config file and plan.
 *
 * A schema is a table of cfg_field_t rows ending with a row whose key is NULL.
 * cfg_load() fills a caller-owned struct at the rows' offsets; it refuses the
 * whole file on the first problem, with an error naming file, line and the
 * dotted field path, e.g.
 *   agent.yaml:7: postgres.port: expected an integer from 1 to 65535, got "abc"
 *   agent.yaml:3: coordinatr: unknown key (known: name, role, coordinator, ...)
 *   agent.yaml:1: postgres: missing required field
 * On failure nothing is left allocated in *out. Strings in *out are owned by
 * the struct and released by cfg_free() with the same schema.
 */
#ifndef GODWIT_CONFIG_H
#define GODWIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CFG_STRING,      /* char *, any non-empty scalar */
    CFG_PATH,        /* char *, non-empty, no NUL; not checked for existence */
    CFG_INT,         /* int64_t, within [min, max] */
    CFG_BOOL,        /* bool: true/false/yes/no/on/off */
    CFG_DURATION_MS, /* int64_t ms: "250ms", "2s", "1m", "1h"; a bare integer is refused */
    CFG_BYTES,       /* int64_t bytes: "512", "64kB", "10MB", "1GiB" */
    CFG_ENDPOINT,    /* char *, "tcp://HOST:PORT" (PORT 1-65535) or "ipc:///path" */
    CFG_ENUM,        /* int, index into enum_values */
    CFG_SECTION,     /* nested mapping described by children */
} cfg_type_t;

typedef struct cfg_field {
    const char *key;
    cfg_type_t type;
    size_t offset;                    /* offsetof() in the struct being filled */
    bool required;
    int64_t min, max;                 /* CFG_INT / DURATION / BYTES; max 0 = no bound */
    const char *const *enum_values;   /* CFG_ENUM, NULL-terminated */
    const struct cfg_field *children; /* CFG_SECTION: its rows; their offsets are
                                         from the start of the whole struct, like
                                         the top level's (a section's own offset is
                                         unused). A missing optional section is not
                                         checked for its required children. */
} cfg_field_t;

#define CFG_END { NULL, 0, 0, false, 0, 0, NULL, NULL }

/* Loads path against schema into out (which the caller zeroed and may have
 * pre-filled with defaults; a default string must be heap-allocated since
 * cfg_free() frees it). Returns true on success; on failure writes the error
 * into err (errlen bytes) and leaves out as it was given, defaults included. */
bool cfg_load(const char *path, const cfg_field_t *schema, void *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same, from a string; name is used in error messages in place of a path. */
bool cfg_load_string(const char *name, const char *text, const cfg_field_t *schema, void *out,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees every string the schema describes in out and zeroes those pointers. */
void cfg_free(const cfg_field_t *schema, void *out);

#endif
