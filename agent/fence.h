/*
 * fence: the agent's defence against stale coordinators and repeated
 * commands.
 *
 * The highest coordinator epoch the agent has seen is persisted in
 * STATE_DIR/epoch (tmp + fsync + rename) before any command of that epoch is
 * executed, so even after an agent restart a paused or replaced coordinator
 * (a lower epoch) is refused. Command ids are remembered with their packed
 * result in a bounded in-memory table (FENCE_REMEMBER ids): a command re-sent
 * after a reconnect is answered with its first result, or ignored while it
 * is still running, never executed twice by this process.
 */
#ifndef GODWIT_FENCE_H
#define GODWIT_FENCE_H

#include <stddef.h>
#include <stdint.h>

#define FENCE_REMEMBER 1024

typedef struct fence fence_t;

typedef enum {
    FENCE_EXECUTE,     /* new command from a current coordinator: run it */
    FENCE_STALE,       /* epoch below the highest seen: refuse */
    FENCE_REPLAY,      /* done before: answer with the remembered result */
    FENCE_IN_PROGRESS, /* still running: say nothing, the result will come */
    FENCE_ERROR,       /* the new epoch could not be persisted: refuse */
} fence_verdict_t;

/* Reads the epoch file in the state dir (0 if absent), creating the dir (0700).
 * NULL with err filled if the file is unreadable or malformed. */
fence_t *fence_open(const char *state_dir, char *err, size_t errlen);
uint64_t fence_highest(const fence_t *f);

/* Decides on a command. On FENCE_REPLAY result and len point at the packed
 * Result, borrowed until the next fence call. On FENCE_EXECUTE the id is
 * recorded as running. */
fence_verdict_t fence_admit(fence_t *f, const char *id, uint64_t epoch, const uint8_t **result,
                            size_t *len, char *err, size_t errlen);
/* Stores the packed result of a command admitted with FENCE_EXECUTE (copied). */
void fence_complete(fence_t *f, const char *id, const uint8_t *result, size_t len);
void fence_close(fence_t **fp);

#endif
