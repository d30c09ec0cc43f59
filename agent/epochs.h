/*
 * epochs: the agent's epoch fence, its defence against stale coordinators,
 * twin coordinators, forged epochs and repeated commands. (The write fence
 * on a database during a cutover is another thing: the freezer, pg/cutover/freezer.h.)
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
 * in-memory table (EPOCHS_REMEMBER ids): a command re-sent after a reconnect
 * is answered with its first result, or ignored while it is still running,
 * never executed twice by this process.
 */
#ifndef GODWIT_EPOCHS_H
#define GODWIT_EPOCHS_H

#include <stddef.h>
#include <stdint.h>

#include "claim.h"

#define EPOCHS_REMEMBER 1024

typedef struct epochs epochs_t;

typedef enum {
    EPOCHS_EXECUTE,     /* new command from a current coordinator: run it */
    EPOCHS_STALE,       /* epoch below the highest seen: refuse */
    EPOCHS_TWIN,        /* the highest epoch, from another coordinator instance: refuse */
    EPOCHS_BAD_CLAIM,   /* no claim, or one that does not verify or names another epoch */
    EPOCHS_REPLAY,      /* done before: answer with the remembered result */
    EPOCHS_IN_PROGRESS, /* still running: say nothing, the result will come */
    EPOCHS_ERROR,       /* the new epoch could not be persisted: refuse */
} epochs_verdict_t;

/* Reads the epoch file in the state dir (epoch 0 and no claim if absent),
 * creating the dir (0700). verify_key (CLAIM_PUBLIC_LEN bytes, copied) is
 * the coordinator's signing public key. NULL with err filled if the file is
 * unreadable or malformed. */
epochs_t *epochs_open(const char *state_dir, const uint8_t *verify_key, char *err, size_t errlen);
uint64_t epochs_highest(const epochs_t *f);
/* The verified claim of the highest epoch, or NULL if the agent holds none
 * (fresh, or an epoch file from before claims). Borrowed until the next
 * epochs_admit. */
const claim_t *epochs_claim(const epochs_t *f);

/* Decides on a command of epoch with its claim (NULL: the command carried
 * none, or a malformed one). On EPOCHS_REPLAY result and len point at the
 * packed Result, borrowed until the next epochs_ call. On EPOCHS_EXECUTE the id
 * is recorded as running. Every refusal fills err. */
epochs_verdict_t epochs_admit(epochs_t *f, const char *id, uint64_t epoch, const claim_t *claim,
                            const uint8_t **result, size_t *len, char *err, size_t errlen);
/* Stores the packed result of a command admitted with EPOCHS_EXECUTE (copied). */
void epochs_complete(epochs_t *f, const char *id, const uint8_t *result, size_t len);
void epochs_close(epochs_t **fp);

#endif
