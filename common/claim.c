/*
 * claim: see claim.h. Owns nothing.
 */
#include "claim.h"

#include <sodium.h>
#include <string.h>

/* Domain separation: a signature made for anything else never verifies as
 * a claim, and a claim never serves as another signature of ours. */
static const char s_prefix[] = "godwit epoch claim v1"; /* and its NUL */

#define CLAIM_SIGNED_LEN (sizeof s_prefix + 8 + CLAIM_INSTANCE_LEN)

static void s_signed_bytes(const claim_t *c, uint8_t out[CLAIM_SIGNED_LEN])
{
    memcpy(out, s_prefix, sizeof s_prefix);
    for (int i = 0; i < 8; i++)
        out[sizeof s_prefix + (size_t)i] = (uint8_t)(c->epoch >> (56 - 8 * i));
    memcpy(out + sizeof s_prefix + 8, c->instance, CLAIM_INSTANCE_LEN);
}

void claim_make(claim_t *c, uint64_t epoch, const uint8_t sk[CLAIM_SECRET_LEN])
{
    uint8_t instance[CLAIM_INSTANCE_LEN];
    randombytes_buf(instance, sizeof instance);
    claim_sign(c, epoch, instance, sk);
}

void claim_sign(claim_t *c, uint64_t epoch, const uint8_t instance[CLAIM_INSTANCE_LEN],
                const uint8_t sk[CLAIM_SECRET_LEN])
{
    c->epoch = epoch;
    memcpy(c->instance, instance, CLAIM_INSTANCE_LEN);
    uint8_t msg[CLAIM_SIGNED_LEN];
    s_signed_bytes(c, msg);
    crypto_sign_detached(c->sig, NULL, msg, sizeof msg, sk);
}

bool claim_verify(const claim_t *c, const uint8_t pk[CLAIM_PUBLIC_LEN])
{
    uint8_t msg[CLAIM_SIGNED_LEN];
    s_signed_bytes(c, msg);
    return crypto_sign_verify_detached(c->sig, msg, sizeof msg, pk) == 0;
}

bool claim_equal(const claim_t *a, const claim_t *b)
{
    return a->epoch == b->epoch && memcmp(a->instance, b->instance, sizeof a->instance) == 0 &&
           memcmp(a->sig, b->sig, sizeof a->sig) == 0;
}

bool claim_from_msg(const Godwit__EpochClaim *m, claim_t *out)
{
    if (!m || m->instance.len != CLAIM_INSTANCE_LEN || m->signature.len != CLAIM_SIG_LEN)
        return false;
    out->epoch = m->epoch;
    memcpy(out->instance, m->instance.data, CLAIM_INSTANCE_LEN);
    memcpy(out->sig, m->signature.data, CLAIM_SIG_LEN);
    return true;
}

void claim_to_msg(const claim_t *c, Godwit__EpochClaim *m)
{
    godwit__epoch_claim__init(m);
    m->epoch = c->epoch;
    m->instance.data = (uint8_t *)c->instance;
    m->instance.len = CLAIM_INSTANCE_LEN;
    m->signature.data = (uint8_t *)c->sig;
    m->signature.len = CLAIM_SIG_LEN;
}

void claim_format(const claim_t *c, char *buf)
{
    sodium_bin2hex(buf, 2 * CLAIM_INSTANCE_LEN + 1, c->instance, CLAIM_INSTANCE_LEN);
    buf[2 * CLAIM_INSTANCE_LEN] = ' ';
    sodium_bin2hex(buf + 2 * CLAIM_INSTANCE_LEN + 1, 2 * CLAIM_SIG_LEN + 1, c->sig, CLAIM_SIG_LEN);
}

static bool s_hex(const char *text, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++) {
        char h = text[i];
        if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f')))
            return false;
    }
    size_t got = 0;
    return sodium_hex2bin(out, len / 2, text, len, NULL, &got, NULL) == 0 && got == len / 2;
}

bool claim_parse(const char *text, size_t len, claim_t *out)
{
    if (len != CLAIM_TEXT_LEN || text[2 * CLAIM_INSTANCE_LEN] != ' ')
        return false;
    claim_t c = *out;
    if (!s_hex(text, 2 * CLAIM_INSTANCE_LEN, c.instance) ||
        !s_hex(text + 2 * CLAIM_INSTANCE_LEN + 1, 2 * CLAIM_SIG_LEN, c.sig))
        return false;
    *out = c;
    return true;
}
