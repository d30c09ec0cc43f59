/*
 * lsn: parsing, printing and subtracting PostgreSQL log sequence numbers.
 *
 * PostgreSQL prints an LSN as two hexadecimal halves, "%X/%X", the high and
 * low 32 bits of a 64-bit WAL position. This file owns the one strict reader
 * of that text (whatever the server, pg_waldump or an operator hands us) and
 * the matching printer. It owns no state and never allocates; it must never
 * accept a half-parsed value: junk anywhere means false and *out untouched.
 */
#include "lsn.h"

#include <stdio.h>

/* Reads 1..8 hex digits from *sp into *out and advances *sp past them.
 * Returns false for no digit or a ninth one. */
static bool s_parse_half(const char **sp, uint32_t *out)
{
    const char *s = *sp;
    uint32_t v = 0;
    int n = 0;
    for (;; s++, n++) {
        unsigned d;
        char ch = *s;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            break;
        if (n == 8)
            return false;
        v = (v << 4) | d;
    }
    if (n == 0)
        return false;
    *sp = s;
    *out = v;
    return true;
}

bool lsn_parse(const char *s, uint64_t *out)
{
    uint32_t hi, lo;
    if (!s || !out)
        return false;
    if (!s_parse_half(&s, &hi))
        return false;
    if (*s++ != '/')
        return false;
    if (!s_parse_half(&s, &lo))
        return false;
    if (*s != '\0')
        return false;
    *out = ((uint64_t)hi << 32) | lo;
    return true;
}

const char *lsn_format(uint64_t lsn, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
    return buf;
}

uint64_t lsn_diff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}
