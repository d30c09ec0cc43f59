/*
 * fence: see fence.h. Owns the remembered ids and results.
 */
#include "fence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

typedef struct {
    char *id;        /* NULL: free slot */
    uint8_t *result; /* NULL while running */
    size_t len;
} fence_entry_t;

struct fence {
    char *epoch_path;
    uint64_t highest;
    fence_entry_t ring[FENCE_REMEMBER];
    size_t next; /* oldest entry is overwritten */
};

fence_t *fence_open(const char *state_dir, char *err, size_t errlen)
{
    int rc = fsutil_mkdirs(state_dir, 0700);
    if (rc != 0) {
        snprintf(err, errlen, "state_dir %s: %s", state_dir, strerror(-rc));
        return NULL;
    }
    fence_t *f = xcalloc(1, sizeof *f);
    f->epoch_path = xasprintf("%s/epoch", state_dir);
    char *text = NULL;
    rc = fsutil_read_small(f->epoch_path, 64, &text, NULL);
    if (rc == 0) {
        /* Digits and at most one newline: strtoull alone would take "-1"
         * as UINT64_MAX and fence out every coordinator for good. */
        char *end = NULL;
        errno = 0;
        unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
        if (errno || !end || end == text || !(end[0] == '\0' || (end[0] == '\n' && end[1] == '\0'))) {
            snprintf(err, errlen, "%s: malformed epoch \"%.20s\"", f->epoch_path, text);
            free(text);
            fence_close(&f);
            return NULL;
        }
        f->highest = v;
        free(text);
    } else if (rc != -ENOENT) {
        snprintf(err, errlen, "%s: %s", f->epoch_path, strerror(-rc));
        fence_close(&f);
        return NULL;
    }
    return f;
}

uint64_t fence_highest(const fence_t *f) { return f->highest; }

static fence_entry_t *s_find(fence_t *f, const char *id)
{
    for (size_t i = 0; i < FENCE_REMEMBER; i++)
        if (f->ring[i].id && strcmp(f->ring[i].id, id) == 0)
            return &f->ring[i];
    return NULL;
}

fence_verdict_t fence_admit(fence_t *f, const char *id, uint64_t epoch, const uint8_t **result,
                            size_t *len, char *err, size_t errlen)
{
    if (epoch < f->highest) {
        snprintf(err, errlen, "epoch %" PRIu64 " is older than %" PRIu64 ", the highest seen",
                 epoch, f->highest);
        return FENCE_STALE;
    }
    fence_entry_t *e = s_find(f, id);
    if (e) {
        if (!e->result)
            return FENCE_IN_PROGRESS;
        *result = e->result;
        *len = e->len;
        return FENCE_REPLAY;
    }
    if (epoch > f->highest) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", epoch);
        int rc = fsutil_write_atomic(f->epoch_path, buf, (size_t)n, 0600);
        if (rc != 0) {
            snprintf(err, errlen, "cannot persist epoch %" PRIu64 " to %s: %s", epoch,
                     f->epoch_path, strerror(-rc));
            return FENCE_ERROR;
        }
        log_info("coordinator epoch %" PRIu64 " (was %" PRIu64 ")", epoch, f->highest);
        f->highest = epoch;
    }
    e = &f->ring[f->next];
    f->next = (f->next + 1) % FENCE_REMEMBER;
    free(e->id);
    free(e->result);
    e->id = xstrdup(id);
    e->result = NULL;
    e->len = 0;
    return FENCE_EXECUTE;
}

void fence_complete(fence_t *f, const char *id, const uint8_t *result, size_t len)
{
    fence_entry_t *e = s_find(f, id);
    if (!e || e->result)
        return;
    e->result = xmalloc(len);
    memcpy(e->result, result, len);
    e->len = len;
}

void fence_close(fence_t **fp)
{
    fence_t *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    for (size_t i = 0; i < FENCE_REMEMBER; i++) {
        free(f->ring[i].id);
        free(f->ring[i].result);
    }
    free(f->epoch_path);
    free(f);
}
