/*
 * fuzz_wire: libFuzzer target for common/wire.c, the one decoder every byte
 * from the network goes through before anything else reads it.
 *
 * Each input is handed to wire_decode as one frame. A refusal must come with
 * a reason. An accepted envelope must survive a round trip: re-encoded with
 * wire_encode it decodes again, to the same body kind and ids, and the second
 * encoding is byte for byte the first (the first may differ from the input,
 * which need not be canonical protobuf). Any violation aborts, which libFuzzer
 * reports as a crash with the input saved.
 *
 * Owns nothing between runs; frees everything it decodes or encodes, so the
 * leak checker sees any leak in the decoder. Built only with
 * -DGODWIT_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt); run with
 * tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Reports a broken invariant and aborts, so libFuzzer keeps the input. */
static void s_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_wire: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *reason = NULL;
    Godwit__Envelope *env = wire_decode(data, size, &reason);
    if (!env) {
        if (!reason || !reason[0])
            s_fail("refused without a reason", NULL);
        return 0;
    }
    if (strcmp(wire_body_name(env), "none") == 0)
        s_fail("accepted an envelope without a body", NULL);

    /* Re-encoding can grow the body (a 5-byte varint for a negative int32
     * enum re-encodes as 10 bytes), so near WIRE_MAX_BODY wire_encode may
     * refuse; that is its documented limit, not a failure. */
    size_t len1 = 0;
    uint8_t *buf1 = wire_encode(env, &len1);
    if (!buf1) {
        if (godwit__envelope__get_packed_size(env) <= WIRE_MAX_BODY)
            s_fail("wire_encode refused an envelope within the size limit", NULL);
        wire_free(&env);
        return 0;
    }

    Godwit__Envelope *env2 = wire_decode(buf1, len1, &reason);
    if (!env2)
        s_fail("re-encoded envelope refused", reason);
    if (env2->body_case != env->body_case)
        s_fail("body kind changed in the round trip", wire_body_name(env2));
    if (env2->msg_id != env->msg_id || env2->sent_at_ms != env->sent_at_ms)
        s_fail("envelope ids changed in the round trip", NULL);

    size_t len2 = 0;
    uint8_t *buf2 = wire_encode(env2, &len2);
    if (!buf2)
        s_fail("second wire_encode refused", NULL);
    if (len2 != len1 || memcmp(buf1, buf2, len1) != 0)
        s_fail("round trip not stable: the second encoding differs", wire_body_name(env));

    free(buf2);
    free(buf1);
    wire_free(&env2);
    wire_free(&env);
    return 0;
}
