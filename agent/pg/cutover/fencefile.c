/*
 * fencefile: see fencefile.h. Owns nothing past a call.
 */
#include "fencefile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "xalloc.h"

static char *s_path(const char *state_dir, const char *kind, const char *database)
{
    size_t n = strlen(database);
    char *hex = xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)database[i]);
    char *p = xasprintf("%s/%s-%s.json", state_dir, kind, hex);
    free(hex);
    return p;
}

char *fencefile_path(const char *state_dir, const char *database)
{
    return s_path(state_dir, "freeze", database);
}

char *fencefile_armed_path(const char *state_dir, const char *database)
{
    return s_path(state_dir, "armed", database);
}

cJSON *fencefile_read(const char *path, char *why, size_t whylen)
{
    char *text = NULL;
    size_t len = 0;
    why[0] = '\0';
    int rc = fsutil_read_small(path, 1 << 20, &text, &len);
    if (rc != 0) {
        if (rc != -ENOENT)
            snprintf(why, whylen, "%s: %s", path, strerror(-rc));
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "%s: not a fence file", path);
        return NULL;
    }
    return j;
}

int fencefile_write(const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j);
    int rc = fsutil_write_atomic(path, text, strlen(text), 0600);
    cJSON_free(text);
    return rc;
}
