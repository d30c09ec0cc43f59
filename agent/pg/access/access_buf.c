/*
 * access_buf: see access_buf.h. Owns the text until it is taken.
 */
#include "access_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"


void access_buf_addf(access_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = NULL;
    int len = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (len < 0)
        piece = xstrdup(""), len = 0;
    if (b->n + (size_t)len + 1 > b->cap) {
        b->cap = (b->n + (size_t)len + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, piece, (size_t)len + 1);
    b->n += (size_t)len;
    free(piece);
}

/* The string built (never NULL); the caller frees it. */
char *access_buf_take(access_buf_t *b)
{
    char *s = b->s ? b->s : xstrdup("");
    b->s = NULL;
    b->n = b->cap = 0;
    return s;
}
