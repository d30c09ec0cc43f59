/*
 * cfgerr: the config loader's error messages (private to the loader: see
 * cfg.h for the format callers see). Every message is
 * "NAME:LINE: dotted.field: message", written into the caller's buffer.
 */
#ifndef GODWIT_CFGERR_H
#define GODWIT_CFGERR_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#define CFGERR_MAX_PATH 256 /* dotted field path */

/* Where a load's errors go. Borrows everything. */
typedef struct {
    const char *name; /* file path or the caller's label, for messages */
    char *err;
    size_t errlen;
} cfgerr_t;

/* Writes "NAME:LINE: PATH: message" into e->err (PATH left out when NULL or
 * ""); returns false. line0 is libyaml's 0-based line. */
bool cfgerr_fail(const cfgerr_t *e, size_t line0, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What node is, for "got ..." in messages: "null", "a mapping", "a
 * sequence", "nothing" or the scalar quoted into buf (len >= 16 bytes;
 * shortened, control bytes escaped). Returns buf or a constant. */
const char *cfgerr_describe(const yaml_node_t *node, char *buf, size_t len);

#endif
