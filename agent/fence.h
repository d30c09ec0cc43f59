/*
 * fence: the agent's defence against stale coordinators, twin coordinators,
 * forged epochs and repeated commands.
 *
 * Every command carries its coordinator's signed epoch claim (common/claim.h).
 * A claim that does not verify with the coordinator's signing public key
 * (coordinator.signing_key in the agent's config) is refused before anything
 * else, so a peer holding only the coordinator's CURVE key cannot raise the
 * agent's epoch and fence out the real coordinator. The highest epoch seen
 * and its claim are persisted in STATE_DIR/epoch (tmp + fsync + rename)
 * before any command of that epoch is executed, so even after an agent
 * restart a paused or replaced coordinator (a lower epoch) is refused, and so
 * is a twin: a coordinator of the same epoch from another start (another
 * instance; two coordinators on copies of one journal).
 *
 * The epoch file is the epoch in decimal on its first line and, since
 * claims exist, "claim INSTANCE_HEX SIGNATURE_HEX" on the second. A file of
 * the first line alone (written before claims existed) is read as an epoch
 * without a claim: the first verified claim of that epoch is adopted. A
 * stored claim that does not verify (the signing key was replaced) is
 * dropped with a warning, keeping the epoch.
 *
 * Command ids are remembered with their packed result in a bounded
 * in-memory table (FENCE_REMEMBER ids): a command re-sent after a reconnect
 * is answered with its first result, or ignored while it is still running,
 * never executed twice by this process.
 */
#ifndef GODWIT_FENCE_H
#define GODWIT_FENCE_H

#include <stddef.h>
#include <stdint.h>

#include "claim.h"

#define FENCE_REMEMBER 1024

typedef struct fence fence_t;

typedef enum {
    FENCE_EXECUTE,     /* new command from a current coordinator: run it */
    FENCE_STALE,       /* epoch below the highest seen: refuse */
    FENCE_TWIN,        /* the highest epoch, from another coordinator instance: refuse */
    FENCE_BAD_CLAIM,   /* no claim, or one that does not verify or names another epoch */
    FENCE_REPLAY,      /* done before: answer with the remembered result */
    FENCE_IN_PROGRESS, /* still running: say nothing, the result will come */
    FENCE_ERROR,       /* the new epoch could not be persisted: refuse */
} fence_verdict_t;

/* Reads the epoch file in the state dir (epoch 0 and no claim if absent),
 * creating the dir (0700). verify_key (CLAIM_PUBLIC_LEN bytes, copied) is
 * the coordinator's signing public key. NULL with err filled if the file is
 * unreadable or malformed. */
fence_t *fence_open(const char *state_dir, const uint8_t *verify_key, char *err, size_t errlen);
uint64_t fence_highest(const fence_t *f);
/* The verified claim of the highest epoch, or NULL if the agent holds none
 * (fresh, or an epoch file from before claims). Borrowed until the next
 * fence_admit. */
const claim_t *fence_claim(const fence_t *f);

/* Decides on a command of epoch with its claim (NULL: the command carried
 * none, or a malformed one). On FENCE_REPLAY result and len point at the
 * packed Result, borrowed until the next fence call. On FENCE_EXECUTE the id
 * is recorded as running. Every refusal fills err. */
fence_verdict_t fence_admit(fence_t *f, const char *id, uint64_t epoch, const claim_t *claim,
                            const uint8_t **result, size_t *len, char *err, size_t errlen);
/* Stores the packed result of a command admitted with FENCE_EXECUTE (copied). */
void fence_complete(fence_t *f, const char *id, const uint8_t *result, size_t len);
void fence_close(fence_t **fp);

#endif
