/*
 * srcpath: the path of a file of the source tree, for unit tests that read
 * the project's own files (example configs and plans). The root is
 * $GODWIT_SRC, else derived from this header's own path.
 * Header-only: every unit test is one source file.
 */
#ifndef GODWIT_TEST_SRCPATH_H
#define GODWIT_TEST_SRCPATH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes the root joined with rel (e.g. "deploy/plan.example.yaml") into
 * buf, len bytes. */
static inline void srcpath(char *buf, size_t len, const char *rel)
{
    const char *env = getenv("GODWIT_SRC");
    if (env && *env) {
        snprintf(buf, len, "%s/%s", env, rel);
        return;
    }
    const char *me = __FILE__;
    const char *cut = strstr(me, "tests/unit/srcpath.h");
    if (!cut) {
        snprintf(buf, len, "%s", rel);
        return;
    }
    snprintf(buf, len, "%.*s%s", (int)(cut - me), me, rel);
}

#endif
