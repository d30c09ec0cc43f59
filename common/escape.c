/*
 * escape: see escape.h. Owns nothing.
 */
#include "escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "xalloc.h"

/* Length of the valid UTF-8 sequence at p (of at most len bytes) and its
 * code point; 0 if the bytes there are not one (overlong forms, surrogates
 * and code points past U+10FFFF are not). */
static size_t s_utf8(const unsigned char *p, size_t len, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Code points that change how a line reads or where it ends. */
static bool s_bad_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The escape for the character at p, written into esc (at least 12 bytes);
 * returns how many input bytes it stands for, and sets *esc_len (0: the
 * bytes pass unchanged). */
static size_t s_next(const unsigned char *p, size_t len, char *esc, size_t *esc_len)
{
    unsigned char c = p[0];
    *esc_len = 0;
    if (c == '\n' || c == '\r' || c == '\t') {
        esc[0] = '\\';
        esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        *esc_len = 2;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        *esc_len = (size_t)snprintf(esc, 12, "\\x%02x", c);
        return 1;
    }
    if (c < 0x80)
        return 1;
    uint32_t cp = 0;
    size_t n = s_utf8(p, len, &cp);
    if (n == 0) {
        *esc_len = (size_t)snprintf(esc, 12, "\\x%02x", c);
        return 1;
    }
    if (s_bad_cp(cp))
        *esc_len = (size_t)snprintf(esc, 12, "\\u{%04x}", (unsigned)cp);
    return n;
}

size_t escape_text(const char *in, size_t len, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t used = 0;
    if (outlen == 0)
        return 0;
    while (len > 0) {
        char esc[12];
        size_t esc_len;
        size_t n = s_next(p, len, esc, &esc_len);
        const char *src = esc_len ? esc : (const char *)p;
        size_t w = esc_len ? esc_len : n;
        if (used + w >= outlen)
            break;
        memcpy(out + used, src, w);
        used += w;
        p += n;
        len -= n;
    }
    out[used] = '\0';
    return used;
}

bool escape_needed(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    while (len > 0) {
        char esc[12];
        size_t esc_len;
        size_t n = s_next(p, len, esc, &esc_len);
        if (esc_len)
            return true;
        p += n;
        len -= n;
    }
    return false;
}

char *escape_dup(const char *s)
{
    size_t len = strlen(s);
    size_t cap = len * 8 + 1; /* the longest escape is 8 bytes for one input byte or more */
    char *out = xmalloc(cap);
    escape_text(s, len, out, cap);
    return out;
}
