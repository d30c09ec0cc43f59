/*
 * lsn: PostgreSQL log sequence numbers ("16/B374D848") as uint64_t.
 * Pure functions, no allocation.
 */
#ifndef GODWIT_LSN_H
#define GODWIT_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSN_INVALID UINT64_C(0)
#define LSN_STRLEN 18 /* "FFFFFFFF/FFFFFFFF" + NUL */

/* Parses "X/Y" (hex, each part at most 8 digits, upper or lower case). */
bool lsn_parse(const char *s, uint64_t *out);
/* Formats as PostgreSQL does ("0/16B3748"); buf at least LSN_STRLEN; returns buf. */
const char *lsn_format(uint64_t lsn, char *buf, size_t len);
/* a - b in bytes, 0 if b >= a (never wraps). */
uint64_t lsn_diff(uint64_t a, uint64_t b);

#endif
