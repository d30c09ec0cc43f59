/*
 * ratelimit: see ratelimit.h. Owns its table: max_keys entries and one for
 * RATELIMIT_OTHERS, searched linearly (refusals are rare events; the table
 * is small).
 */
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

typedef struct {
    char key[128];          /* "" : a free entry */
    uint64_t window_start;
    uint64_t last_ms;       /* last event, for eviction */
    uint64_t suppressed;    /* in this window (and any earlier one not reported) */
    bool spoke;             /* this window's line was allowed (or reported) */
} rl_entry_t;

struct ratelimit {
    uint64_t window_ms;
    size_t max_keys;
    unsigned max_lines;
    rl_entry_t *entries;    /* max_keys, then the RATELIMIT_OTHERS entry */
    uint64_t lines_start;
    unsigned lines;         /* allowed in the global window */
    uint64_t total;
};

ratelimit_t *ratelimit_new(uint64_t window_ms, size_t max_keys, unsigned max_lines)
{
    ratelimit_t *rl = xcalloc(1, sizeof *rl);
    rl->window_ms = window_ms ? window_ms : 1;
    rl->max_keys = max_keys;
    rl->max_lines = max_lines;
    rl->entries = xcalloc(max_keys + 1, sizeof *rl->entries);
    snprintf(rl->entries[max_keys].key, sizeof rl->entries[max_keys].key, "%s", RATELIMIT_OTHERS);
    return rl;
}

void ratelimit_destroy(ratelimit_t **rlp)
{
    ratelimit_t *rl = *rlp;
    if (!rl)
        return;
    *rlp = NULL;
    free(rl->entries);
    free(rl);
}

static bool s_window_over(const ratelimit_t *rl, const rl_entry_t *e, uint64_t now)
{
    return now - e->window_start >= rl->window_ms;
}

/* The entry of key: found, or a free one, or the least recently active one
 * with nothing left to report, or the RATELIMIT_OTHERS entry. */
static rl_entry_t *s_entry(ratelimit_t *rl, const char *key, uint64_t now)
{
    char cut[sizeof rl->entries[0].key];
    snprintf(cut, sizeof cut, "%s", key);
    rl_entry_t *spare = NULL;
    for (size_t i = 0; i < rl->max_keys; i++) {
        rl_entry_t *e = &rl->entries[i];
        if (e->key[0] && strcmp(e->key, cut) == 0)
            return e;
        bool reusable = !e->key[0] || (e->suppressed == 0 && s_window_over(rl, e, now));
        if (reusable && (!spare || !e->key[0] || (spare->key[0] && e->last_ms < spare->last_ms)))
            spare = e;
    }
    if (!spare)
        return &rl->entries[rl->max_keys];
    memset(spare, 0, sizeof *spare);
    memcpy(spare->key, cut, sizeof spare->key);
    spare->window_start = now;
    return spare;
}

bool ratelimit_allow(ratelimit_t *rl, const char *key, uint64_t now_ms, uint64_t *unreported)
{
    rl_entry_t *e = s_entry(rl, key, now_ms);
    e->last_ms = now_ms;
    if (s_window_over(rl, e, now_ms)) {
        e->window_start = now_ms;
        e->spoke = false;
    }
    if (now_ms - rl->lines_start >= rl->window_ms) {
        rl->lines_start = now_ms;
        rl->lines = 0;
    }
    if (!e->spoke && rl->lines < rl->max_lines) {
        e->spoke = true;
        rl->lines++;
        *unreported = e->suppressed;
        e->suppressed = 0;
        return true;
    }
    e->suppressed++;
    rl->total++;
    return false;
}

void ratelimit_flush(ratelimit_t *rl, uint64_t now_ms, ratelimit_report_cb cb, void *arg)
{
    for (size_t i = 0; i <= rl->max_keys; i++) {
        rl_entry_t *e = &rl->entries[i];
        if (!e->key[0] || e->suppressed == 0 || !s_window_over(rl, e, now_ms))
            continue;
        uint64_t n = e->suppressed;
        e->suppressed = 0;
        e->window_start = now_ms;
        e->spoke = true; /* the report is this window's line */
        cb(e->key, n, rl->window_ms, arg);
    }
}

uint64_t ratelimit_suppressed_total(const ratelimit_t *rl) { return rl->total; }
