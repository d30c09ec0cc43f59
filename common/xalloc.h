/*
 * xalloc: the one out-of-memory policy of godwit. A process that cannot
 * allocate a few hundred bytes cannot do anything safe, so these log and
 * abort instead of returning NULL; callers never check for NULL from them.
 * Memory from these functions is released with free().
 */
#ifndef GODWIT_XALLOC_H
#define GODWIT_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a copy of s (NULL stays NULL); caller frees. */
char *xstrdup(const char *s);
/* Returns a new formatted string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
