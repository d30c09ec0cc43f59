/*
 * claim: a coordinator's signed epoch claim, the evidence behind every
 * fencing decision (docs/protocol.md, "Epochs").
 *
 * Each coordinator start takes an epoch from its journal and makes one claim:
 * that epoch, 16 random bytes naming this start (the instance: two
 * coordinators started on copies of one journal take the same epoch, never
 * the same instance) and an Ed25519 signature (libsodium crypto_sign) over a
 * domain-separation prefix, the epoch and the instance. Only a holder of the
 * coordinator's signing secret key can make a claim that verifies; an agent
 * or a thief of the coordinator's CURVE key cannot.
 *
 * Agents verify the claim of every command before they persist its epoch,
 * store the claim with the epoch, and present it back (hello, STALE_EPOCH
 * results); the coordinator stops as fenced only on a claim that verifies
 * with its own key and proves a newer epoch or a twin.
 *
 * Mechanism only, no policy: signing, verifying, conversion to and from the
 * wire message and the text form kept in the agent's epoch file. Never
 * allocates; the message form borrows the claim's bytes.
 */
#ifndef GODWIT_CLAIM_H
#define GODWIT_CLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "godwit.pb-c.h"

#define CLAIM_INSTANCE_LEN 16
#define CLAIM_SIG_LEN 64      /* crypto_sign_BYTES */
#define CLAIM_PUBLIC_LEN 32   /* crypto_sign_PUBLICKEYBYTES */
#define CLAIM_SECRET_LEN 64   /* crypto_sign_SECRETKEYBYTES */
/* "INSTANCE_HEX SIGNATURE_HEX": the text form, without the epoch. */
#define CLAIM_TEXT_LEN (2 * CLAIM_INSTANCE_LEN + 1 + 2 * CLAIM_SIG_LEN)

typedef struct {
    uint64_t epoch;
    uint8_t instance[CLAIM_INSTANCE_LEN];
    uint8_t sig[CLAIM_SIG_LEN];
} claim_t;

/* Makes the claim of epoch with a fresh random instance, signed with sk. */
void claim_make(claim_t *c, uint64_t epoch, const uint8_t sk[CLAIM_SECRET_LEN]);
/* The claim of epoch for a given instance, signed with sk (a coordinator
 * start signs each of its epochs with its one instance). */
void claim_sign(claim_t *c, uint64_t epoch, const uint8_t instance[CLAIM_INSTANCE_LEN],
                const uint8_t sk[CLAIM_SECRET_LEN]);
/* Whether c's signature verifies with pk. */
bool claim_verify(const claim_t *c, const uint8_t pk[CLAIM_PUBLIC_LEN])
    GODWIT_MUSTCHECK;
/* Two claims with the same epoch, instance and signature. */
bool claim_equal(const claim_t *a, const claim_t *b);

/* From a wire message: false if it is NULL or a field has the wrong length.
 * Says nothing about the signature (claim_verify does). */
bool claim_from_msg(const Godwit__EpochClaim *m, claim_t *out) GODWIT_MUSTCHECK;
/* Fills m (initialised here) with pointers into c, which must outlive m. */
void claim_to_msg(const claim_t *c, Godwit__EpochClaim *m);

/* The text form (CLAIM_TEXT_LEN characters and a NUL) into buf of at least
 * CLAIM_TEXT_LEN + 1 bytes. */
void claim_format(const claim_t *c, char *buf);
/* Parses the text form (exactly CLAIM_TEXT_LEN characters, lower-case hex)
 * into out, whose epoch is left as it was; false if it is not one. */
bool claim_parse(const char *text, size_t len, claim_t *out) GODWIT_MUSTCHECK;

#endif
