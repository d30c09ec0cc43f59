/*
 * fuzz_pgoutput: libFuzzer target for agent/pg/verify/pgoutput.c, the parser of the
 * logical decoding messages verify reads from the source, and for
 * agent/pg/verify/vwindow.c, which follows them.
 *
 * An input is a sequence of messages, each a 2-byte big-endian length and
 * that many bytes (the rest, if shorter, is one last message). Each is
 * parsed; a refusal must come with a reason; an accepted message is fed to
 * two windows on a table "s"."t" (a, b, c), one keyed on a, one a multiset,
 * which may refuse it with a reason but must not crash. At the end both are
 * sealed, every key they hold is judged, and the multiset matched against
 * empty digests. Any violation aborts, which libFuzzer reports as a crash
 * with the input saved.
 *
 * Owns nothing between runs; frees everything, so the leak checker sees a
 * leak. Built only with -DGODWIT_FUZZ=ON and clang (tests/fuzz/
 * CMakeLists.txt); run with tests/fuzz/run.sh BUILD SECONDS fuzz_pgoutput.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"
#include "vwindow.h"

static void s_fail(const char *what)
{
    fprintf(stderr, "fuzz_pgoutput: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *cols[3] = { "a", "b", "c" };
    size_t key[1] = { 0 };
    vwindow_t *keyed = vwindow_new("s", "t", cols, 3, key, 1);
    vwindow_t *multi = vwindow_new("s", "t", cols, 3, NULL, 0);
    bool keyed_ok = true, multi_ok = true;
    size_t at = 0;
    while (at < size) {
        size_t len = size - at;
        if (len >= 2) {
            size_t want = (size_t)data[at] << 8 | data[at + 1];
            at += 2;
            len = want < size - at ? want : size - at;
        }
        /* An exact copy: ASan sees any read past the message. */
        uint8_t *msg = malloc(len ? len : 1);
        memcpy(msg, data + at, len);
        at += len;
        pgoutput_msg_t m;
        const char *why = NULL;
        if (!pgoutput_parse(len ? msg : NULL, len, &m, &why)) {
            if (!why || !why[0])
                s_fail("refused without a reason");
            free(msg);
            continue;
        }
        char reason[256] = "";
        if (keyed_ok && !vwindow_feed(keyed, &m, reason, sizeof reason)) {
            if (!reason[0])
                s_fail("a window refused without a reason");
            keyed_ok = false;
        }
        reason[0] = '\0';
        if (multi_ok && !vwindow_feed(multi, &m, reason, sizeof reason)) {
            if (!reason[0])
                s_fail("a window refused without a reason");
            multi_ok = false;
        }
        pgoutput_msg_clear(&m);
        free(msg);
    }
    vwindow_seal(keyed);
    vwindow_seal(multi);
    uint8_t h[VWINDOW_HASH_LEN] = { 0 };
    char *base[3] = { "x", NULL, "" };
    for (size_t i = 0; i < vwindow_key_count(keyed); i++) {
        const char *k = vwindow_key_at(keyed, i);
        vwindow_verdict_t v;
        char reason[256];
        (void)vwindow_judge(keyed, k, h, h, vwindow_needs_base(keyed, k) ? base : NULL, &v,
                            reason, sizeof reason);
        (void)vwindow_judge(keyed, k, NULL, h, NULL, &v, reason, sizeof reason);
    }
    vwindow_bucket_t *empty = calloc(VWINDOW_BUCKETS, sizeof *empty);
    bool mism[VWINDOW_BUCKETS];
    size_t prefix;
    (void)vwindow_multiset_match(multi, empty, empty, &prefix, mism);
    free(empty);
    vwindow_destroy(&keyed);
    vwindow_destroy(&multi);
    return 0;
}
