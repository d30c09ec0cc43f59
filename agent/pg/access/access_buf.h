/*
 * access_buf: a growing string, for the problems and statements the access
 * comparison writes. The buffer owns its text until access_buf_take hands
 * it to the caller. Running out of memory ends the process (xalloc.h).
 */
#ifndef GODWIT_ACCESS_BUF_H
#define GODWIT_ACCESS_BUF_H

#include <stddef.h>

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
} access_buf_t;

/* Appends the formatted text. */
void access_buf_addf(access_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The string built (never NULL); the caller frees it. b is empty again. */
char *access_buf_take(access_buf_t *b);

#endif
