/*
 * escape: makes text that came from elsewhere (an agent's event message, a
 * host name, a server's error) safe to print on one line of a log or a
 * terminal.
 *
 * Control characters are written as C escapes: \n, \r, \t, and \xNN for
 * the other C0 controls, DEL and every byte that is not part of valid UTF-8;
 * the C1 controls (U+0080-U+009F, which some terminals obey like ESC [) and
 * the Unicode line separators and bidirectional overrides (U+2028, U+2029,
 * U+200E, U+200F, U+202A-U+202E, U+2066-U+2069, which can make a line read
 * differently from what it holds) as \u{XXXX}. Everything else, valid UTF-8
 * included, passes unchanged. A backslash is not escaped: escaping is for
 * the screen, not a reversible encoding.
 *
 * Never allocates except escape_dup, whose result the caller frees.
 */
#ifndef GODWIT_ESCAPE_H
#define GODWIT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Escapes the len bytes at in into out (outlen bytes, NUL-terminated; cut
 * short, at a character boundary, when it does not fit). Returns the
 * length written. */
size_t escape_text(const char *in, size_t len, char *out, size_t outlen);
/* Whether the NUL-terminated s holds anything escape_text would change. */
bool escape_needed(const char *s);
/* The escaped copy of a NUL-terminated string; the caller frees. */
char *escape_dup(const char *s);

#endif
