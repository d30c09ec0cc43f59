/*
 * test_claim: common/claim.c, the coordinator's signed epoch claim.
 *
 * Covers a claim made and verified; every start a new random instance;
 * each field tampered with (epoch, instance, every byte of the signature)
 * and another key refused; the domain-separation prefix (a signature by the
 * same key over the same bytes without the prefix is no claim); the wire
 * form (round trip, wrong lengths and NULL refused); and the text form of
 * the agent's epoch file (round trip, lower-case hex only, exact length,
 * the separating blank).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "claim.h"

static uint8_t s_pk[CLAIM_PUBLIC_LEN], s_sk[CLAIM_SECRET_LEN];

static void test_make_verify(void **state)
{
    (void)state;
    claim_t a, b;
    claim_make(&a, 7, s_sk);
    claim_make(&b, 7, s_sk);
    assert_int_equal(a.epoch, 7);
    assert_true(claim_verify(&a, s_pk));
    assert_true(claim_verify(&b, s_pk));
    /* Two starts of the same epoch: different instances, different claims. */
    assert_memory_not_equal(a.instance, b.instance, CLAIM_INSTANCE_LEN);
    assert_false(claim_equal(&a, &b));
    claim_t copy = a;
    assert_true(claim_equal(&a, &copy));

    /* Any change breaks it. */
    claim_t t = a;
    t.epoch = 8;
    assert_false(claim_verify(&t, s_pk));
    t = a;
    t.epoch = 7 + (1ull << 32);
    assert_false(claim_verify(&t, s_pk));
    for (size_t i = 0; i < CLAIM_INSTANCE_LEN; i++) {
        t = a;
        t.instance[i] ^= 0x01;
        assert_false(claim_verify(&t, s_pk));
    }
    for (size_t i = 0; i < CLAIM_SIG_LEN; i++) {
        t = a;
        t.sig[i] ^= 0x40;
        if (claim_verify(&t, s_pk))
            fail_msg("signature byte %zu changed and still verifies", i);
    }
    /* Another key neither verifies ours nor makes ours. */
    uint8_t pk2[CLAIM_PUBLIC_LEN], sk2[CLAIM_SECRET_LEN];
    crypto_sign_keypair(pk2, sk2);
    assert_false(claim_verify(&a, pk2));
    claim_t other;
    claim_make(&other, 7, sk2);
    assert_false(claim_verify(&other, s_pk));
    /* Epoch 0 and the largest epoch are claims like any other. */
    claim_make(&t, 0, s_sk);
    assert_true(claim_verify(&t, s_pk));
    claim_make(&t, UINT64_MAX, s_sk);
    assert_true(claim_verify(&t, s_pk));
}

static void test_domain_separation(void **state)
{
    (void)state;
    /* The same key signing the epoch and instance without the prefix (as
     * some other use of the key might): not a claim. */
    claim_t c;
    claim_make(&c, 3, s_sk);
    uint8_t raw[8 + CLAIM_INSTANCE_LEN];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(c.epoch >> (56 - 8 * i));
    memcpy(raw + 8, c.instance, CLAIM_INSTANCE_LEN);
    crypto_sign_detached(c.sig, NULL, raw, sizeof raw, s_sk);
    assert_false(claim_verify(&c, s_pk));
    /* With the prefix, exactly as claim.h says, it is one. */
    static const char prefix[] = "godwit epoch claim v1";
    uint8_t msg[sizeof prefix + sizeof raw];
    memcpy(msg, prefix, sizeof prefix);
    memcpy(msg + sizeof prefix, raw, sizeof raw);
    crypto_sign_detached(c.sig, NULL, msg, sizeof msg, s_sk);
    assert_true(claim_verify(&c, s_pk));
}

static void test_wire_form(void **state)
{
    (void)state;
    claim_t c, back;
    claim_make(&c, 42, s_sk);
    Godwit__EpochClaim m;
    claim_to_msg(&c, &m);
    assert_int_equal(m.epoch, 42);
    assert_int_equal(m.instance.len, CLAIM_INSTANCE_LEN);
    assert_int_equal(m.signature.len, CLAIM_SIG_LEN);
    /* Packed and unpacked: the same claim. */
    size_t n = godwit__epoch_claim__get_packed_size(&m);
    uint8_t buf[256];
    assert_true(n <= sizeof buf);
    godwit__epoch_claim__pack(&m, buf);
    Godwit__EpochClaim *u = godwit__epoch_claim__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_true(claim_from_msg(u, &back));
    assert_true(claim_equal(&c, &back));
    assert_true(claim_verify(&back, s_pk));
    godwit__epoch_claim__free_unpacked(u, NULL);

    assert_false(claim_from_msg(NULL, &back));
    Godwit__EpochClaim bad = m;
    bad.instance.len = CLAIM_INSTANCE_LEN - 1;
    assert_false(claim_from_msg(&bad, &back));
    bad = m;
    bad.signature.len = CLAIM_SIG_LEN + 1;
    assert_false(claim_from_msg(&bad, &back));
    bad = m;
    bad.signature.len = 0;
    assert_false(claim_from_msg(&bad, &back));
}

static void test_text_form(void **state)
{
    (void)state;
    claim_t c;
    claim_make(&c, 9, s_sk);
    char text[CLAIM_TEXT_LEN + 1];
    claim_format(&c, text);
    assert_int_equal(strlen(text), CLAIM_TEXT_LEN);
    assert_int_equal(text[2 * CLAIM_INSTANCE_LEN], ' ');
    claim_t back;
    memset(&back, 0, sizeof back);
    back.epoch = 9; /* the text form leaves the epoch to the caller */
    assert_true(claim_parse(text, strlen(text), &back));
    assert_true(claim_equal(&c, &back));

    char bad[CLAIM_TEXT_LEN + 2];
    claim_t untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    claim_t out = untouched;
    /* One character short, one too many. */
    assert_false(claim_parse(text, CLAIM_TEXT_LEN - 1, &out));
    memcpy(bad, text, CLAIM_TEXT_LEN);
    bad[CLAIM_TEXT_LEN] = '0';
    assert_false(claim_parse(bad, CLAIM_TEXT_LEN + 1, &out));
    /* No blank between the two, upper case, not hex. */
    memcpy(bad, text, CLAIM_TEXT_LEN);
    bad[2 * CLAIM_INSTANCE_LEN] = '0';
    assert_false(claim_parse(bad, CLAIM_TEXT_LEN, &out));
    memcpy(bad, text, CLAIM_TEXT_LEN);
    for (size_t i = 0; i < CLAIM_TEXT_LEN; i++)
        if (bad[i] >= 'a' && bad[i] <= 'f')
            bad[i] = (char)(bad[i] - 32);
    if (memcmp(bad, text, CLAIM_TEXT_LEN) != 0)
        assert_false(claim_parse(bad, CLAIM_TEXT_LEN, &out));
    memcpy(bad, text, CLAIM_TEXT_LEN);
    bad[5] = 'g';
    assert_false(claim_parse(bad, CLAIM_TEXT_LEN, &out));
    memcpy(bad, text, CLAIM_TEXT_LEN);
    bad[CLAIM_TEXT_LEN - 1] = ' ';
    assert_false(claim_parse(bad, CLAIM_TEXT_LEN, &out));
    /* Nothing was written by a failed parse. */
    assert_memory_equal(&out, &untouched, sizeof out);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    crypto_sign_keypair(s_pk, s_sk);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_verify),
        cmocka_unit_test(test_domain_separation),
        cmocka_unit_test(test_wire_form),
        cmocka_unit_test(test_text_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
