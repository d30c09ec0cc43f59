/*
 * ratelimit: how often one kind of log line may be written, so a peer that
 * keeps failing (an unknown key redialling, a plaintext client, an agent
 * sending forged claims) cannot fill the log.
 *
 * Events are grouped by a key (a peer address, an agent name). The first
 * event of a key in a window is allowed (the caller logs it); the rest of
 * that window are suppressed and counted. Once the window is over,
 * ratelimit_flush reports each key's count of suppressed events (and starts
 * its next window as if that report were its line), or the key's next
 * allowed event carries the count, so the log says how many lines it did not
 * write. Across all keys at most max_lines
 * events are allowed per window: a peer with many addresses is capped too.
 * The table holds at most max_keys keys (least recently active evicted
 * once its count is flushed); events past that are counted under the key
 * RATELIMIT_OTHERS.
 *
 * Mechanism only: the caller decides what is logged, and passes the time
 * (monotonic ms), so tests drive it without a clock.
 */
#ifndef GODWIT_RATELIMIT_H
#define GODWIT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define RATELIMIT_OTHERS "(other peers)"

typedef struct ratelimit ratelimit_t;

ratelimit_t *ratelimit_new(uint64_t window_ms, size_t max_keys, unsigned max_lines);
void ratelimit_destroy(ratelimit_t **rlp);

/* An event of key at now_ms: true if the caller should log it, with
 * *unreported set to the events of the key suppressed before and not yet
 * reported (to say so on the same line); false if it was suppressed (and
 * counted). Keys longer than 127 bytes are cut. */
bool ratelimit_allow(ratelimit_t *rl, const char *key, uint64_t now_ms, uint64_t *unreported)
    GODWIT_MUSTCHECK;

typedef void (*ratelimit_report_cb)(const char *key, uint64_t suppressed, uint64_t window_ms,
                                    void *arg);
/* Calls cb for each key whose window has ended with events suppressed in
 * it, then starts that key afresh. */
void ratelimit_flush(ratelimit_t *rl, uint64_t now_ms, ratelimit_report_cb cb, void *arg);

/* Events suppressed since the start, over all keys. */
uint64_t ratelimit_suppressed_total(const ratelimit_t *rl);

#endif
