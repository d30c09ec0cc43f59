/*
 * test_epochs: agent/epochs.c, the agent's defence against stale coordinators,
 * twins, forged epochs and repeated commands.
 *
 * Covers a fresh state dir (highest epoch 0, no claim, dir created 0700); a
 * new epoch persisted to STATE/epoch with its claim before epochs_admit
 * returns EXECUTE; a lower epoch refused as STALE with a reason; a running id
 * answered IN_PROGRESS and a finished one REPLAYed with the very bytes it
 * completed with; a reopened fence keeping the epoch and its claim (and so
 * still refusing the old coordinator); claims that are missing, name another
 * epoch, are tampered with or signed by another key refused as BAD_CLAIM
 * without moving anything (what a thief of the CURVE key alone can send); a
 * twin (same epoch, another instance) refused as TWIN, also after a restart;
 * an epoch file from before claims (the number alone) read, its epoch
 * kept, and the first verified claim of that epoch adopted; a stored claim
 * that no longer verifies (the signing key replaced) dropped, the epoch
 * kept; a malformed epoch file failing epochs_open with the path in the
 * error; an epoch that cannot be persisted giving EPOCHS_ERROR and changing
 * nothing; and the oldest id forgotten once more than EPOCHS_REMEMBER are
 * remembered.
 *
 * Files: every test gets its own mkdtemp folder under /tmp from its setup and
 * the teardown removes it, also when an assertion failed. The tests run as
 * root in CI, where a chmod 0500 folder still takes writes; an unwritable
 * epoch is made by putting a folder where the epoch file goes, so the rename
 * onto it fails for root too.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "claim.h"
#include "epochs.h"
#include "fsutil.h"
#include "log.h"
#include "tmpdir.h"
#include "xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

/* The coordinator's signing pair, made once for the whole run. */
static uint8_t s_pk[CLAIM_PUBLIC_LEN], s_sk[CLAIM_SECRET_LEN];

/* The claim a coordinator start of epoch makes (its own random instance). */
static claim_t s_claim(uint64_t epoch)
{
    claim_t c;
    claim_make(&c, epoch, s_sk);
    return c;
}

/* Opens a fence on STATE = dir/state; fails the test if it cannot. */
static epochs_t *s_open(const char *state_dir)
{
    char err[512] = "";
    epochs_t *f = epochs_open(state_dir, s_pk, err, sizeof err);
    if (!f)
        fail_msg("epochs_open %s: %s", state_dir, err);
    return f;
}

/* Admits id at claim's epoch with claim; returns the verdict. */
static epochs_verdict_t s_admit(epochs_t *f, const char *id, const claim_t *claim,
                               const uint8_t **result, size_t *len, char *err, size_t errlen)
{
    err[0] = '\0';
    *result = NULL;
    *len = 0;
    return epochs_admit(f, id, claim->epoch, claim, result, len, err, errlen);
}

/* The epoch file's content; caller frees. NULL if absent. */
static char *s_epoch_text(const char *state_dir)
{
    char *path = xasprintf("%s/epoch", state_dir);
    char *text = NULL;
    int rc = fsutil_read_small(path, 1024, &text, NULL);
    free(path);
    if (rc == -ENOENT)
        return NULL;
    assert_int_equal(rc, 0);
    return text;
}

/* The epoch file's text must be claim's epoch and claim, as epochs.h says. */
static void s_check_text(const char *text, const claim_t *claim)
{
    char hex[CLAIM_TEXT_LEN + 1];
    claim_format(claim, hex);
    char *want = xasprintf("%" PRIu64 "\nclaim %s\n", claim->epoch, hex);
    assert_string_equal(text, want);
    free(want);
}

static void s_write_epoch(const char *state_dir, const char *text)
{
    char *path = xasprintf("%s/epoch", state_dir);
    assert_int_equal(fsutil_write_atomic(path, text, strlen(text), 0600), 0);
    free(path);
}

/* ---- tests ------------------------------------------------------------ */

static void test_fresh_dir(void **state)
{
    char *sd = xasprintf("%s/a/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    assert_int_equal(epochs_highest(f), 0);
    struct stat st;
    assert_int_equal(stat(sd, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_null(s_epoch_text(sd)); /* nothing persisted until an epoch arrives */
    epochs_close(&f);
    assert_null(f);
    epochs_close(&f); /* NULL is fine */
    free(sd);
}

static void test_admit_stale_replay_reopen(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    claim_t c2 = s_claim(2), c3 = s_claim(3), c4 = s_claim(4), cmax = s_claim(UINT64_MAX);
    assert_null(epochs_claim(f));

    /* Epoch 3 arrives: executed, and on disk before epochs_admit returned. */
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_int_equal(epochs_highest(f), 3);
    char *text = s_epoch_text(sd);
    assert_non_null(text);
    s_check_text(text, &c3);
    free(text);
    assert_non_null(epochs_claim(f));
    assert_true(claim_equal(epochs_claim(f), &c3));
    char *epoch_path = xasprintf("%s/epoch", sd);
    struct stat st;
    assert_int_equal(stat(epoch_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    free(epoch_path);

    /* An older coordinator: refused with a reason naming both epochs. */
    assert_int_equal(s_admit(f, "2.1", &c2, &res, &len, err, sizeof err), EPOCHS_STALE);
    assert_non_null(strstr(err, "epoch 2"));
    assert_non_null(strstr(err, "3"));
    assert_null(res);
    /* Even for an id the fence knows. */
    assert_int_equal(s_admit(f, "3.1", &c2, &res, &len, err, sizeof err), EPOCHS_STALE);

    /* The same id again while it runs: nothing to do. */
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_IN_PROGRESS);
    assert_null(res);

    /* A second command of the same epoch runs; the file is unchanged. */
    assert_int_equal(s_admit(f, "3.2", &c3, &res, &len, err, sizeof err), EPOCHS_EXECUTE);

    /* Completed: the re-sent id gets exactly the stored bytes (a copy). */
    uint8_t result[] = { 0x0a, 0x03, '3', '.', '1', 0x10, 0x01, 0x00, 0xff };
    epochs_complete(f, "3.1", result, sizeof result);
    uint8_t original[sizeof result];
    memcpy(original, result, sizeof result);
    memset(result, 0xAA, sizeof result);
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_REPLAY);
    assert_non_null(res);
    assert_int_equal(len, sizeof original);
    assert_memory_equal(res, original, sizeof original);
    /* And again: a replay does not use it up. */
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_REPLAY);
    assert_memory_equal(res, original, sizeof original);

    /* A second epochs_complete for the same id keeps the first result, and one
     * for an unknown id is ignored. */
    uint8_t other[] = { 1, 2, 3 };
    epochs_complete(f, "3.1", other, sizeof other);
    epochs_complete(f, "9.9", other, sizeof other);
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_REPLAY);
    assert_int_equal(len, sizeof original);
    assert_memory_equal(res, original, sizeof original);
    assert_int_equal(s_admit(f, "9.9", &c3, &res, &len, err, sizeof err), EPOCHS_EXECUTE);

    /* An empty result is remembered as done, not as running. */
    epochs_complete(f, "3.2", other, 0);
    assert_int_equal(s_admit(f, "3.2", &c3, &res, &len, err, sizeof err), EPOCHS_REPLAY);
    assert_int_equal(len, 0);
    epochs_close(&f);

    /* A restarted agent: the epoch survives, so epoch 2 is still refused.
     * Ids live in memory only (epochs.h: never executed twice "by this
     * process"), so a known id of the current epoch runs again. */
    f = s_open(sd);
    assert_int_equal(epochs_highest(f), 3);
    assert_non_null(epochs_claim(f));
    assert_true(claim_equal(epochs_claim(f), &c3));
    assert_int_equal(s_admit(f, "2.5", &c2, &res, &len, err, sizeof err), EPOCHS_STALE);
    assert_non_null(strstr(err, "epoch 2"));
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_EXECUTE);

    /* A newer epoch moves the file forward; the previous one is now stale. */
    assert_int_equal(s_admit(f, "4.1", &c4, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    text = s_epoch_text(sd);
    s_check_text(text, &c4);
    free(text);
    assert_int_equal(s_admit(f, "3.7", &c3, &res, &len, err, sizeof err), EPOCHS_STALE);
    epochs_close(&f);

    /* Large epochs survive the file. */
    f = s_open(sd);
    assert_int_equal(epochs_highest(f), 4);
    assert_int_equal(s_admit(f, "max.1", &cmax, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    epochs_close(&f);
    f = s_open(sd);
    assert_int_equal(epochs_highest(f), UINT64_MAX);
    epochs_close(&f);

    /* No temp files left behind. */
    char *tmp_glob = xasprintf("%s/epoch.tmp.%ld", sd, (long)getpid());
    assert_int_equal(access(tmp_glob, F_OK), -1);
    free(tmp_glob);
    free(sd);
}

static void test_malformed_epoch_file(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    assert_int_equal(fsutil_mkdirs(sd, 0700), 0);
    char *epoch_path = xasprintf("%s/epoch", sd);
    static const char *const bad[] = {
        "abc\n", "3x\n", "", "\n", "3 4\n", "0x10\n", "99999999999999999999999\n",
        /* strtoull takes these; the fence must not ("-1" would be UINT64_MAX). */
        "-1\n", "+8\n", " 7\n", "3\n4\n", "5\n\n",
        /* claim lines that are not one */
        "3\nclaim\n", "3\nclaim zz\n", "3\nclaim \n", "3\nclaims 00\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write_epoch(sd, bad[i]);
        char err[512] = "";
        epochs_t *f = epochs_open(sd, s_pk, err, sizeof err);
        if (f) {
            fail_msg("epoch file \"%s\" accepted as %" PRIu64, bad[i], epochs_highest(f));
        }
        if (!strstr(err, epoch_path))
            fail_msg("epoch file \"%s\": error \"%s\" does not name %s", bad[i], err, epoch_path);
    }

    /* An epoch file that is too big to be one is an error too. */
    char big[200];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_write_epoch(sd, big);
    char err[512] = "";
    assert_null(epochs_open(sd, s_pk, err, sizeof err));
    assert_non_null(strstr(err, epoch_path));

    /* A good claim line with anything after it, or cut short, or in upper
     * case: refused. */
    claim_t c = s_claim(3);
    char hex[CLAIM_TEXT_LEN + 1];
    claim_format(&c, hex);
    char upper[CLAIM_TEXT_LEN + 1];
    for (size_t i = 0; i <= CLAIM_TEXT_LEN; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    char *more[] = {
        xasprintf("3\nclaim %s\nextra\n", hex),
        xasprintf("3\nclaim %.*s\n", CLAIM_TEXT_LEN - 2, hex),
        xasprintf("3\nclaim %s0\n", hex),
        xasprintf("3\nclaim %s\n", upper),
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        s_write_epoch(sd, more[i]);
        err[0] = '\0';
        epochs_t *g = epochs_open(sd, s_pk, err, sizeof err);
        if (g)
            fail_msg("epoch file #%zu with a bad claim line accepted", i);
        assert_non_null(strstr(err, epoch_path));
        free(more[i]);
    }

    /* Without the trailing newline it is still fine. */
    s_write_epoch(sd, "12");
    epochs_t *f = s_open(sd);
    assert_int_equal(epochs_highest(f), 12);
    epochs_close(&f);
    free(epoch_path);
    free(sd);
}

static void test_unwritable_epoch(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    claim_t c5 = s_claim(5);

    /* A folder where the epoch file goes: the rename onto it fails, even
     * for root. */
    char *epoch_path = xasprintf("%s/epoch", sd);
    assert_int_equal(mkdir(epoch_path, 0700), 0);
    assert_int_equal(s_admit(f, "5.1", &c5, &res, &len, err, sizeof err), EPOCHS_ERROR);
    assert_non_null(strstr(err, "cannot persist epoch 5"));
    assert_non_null(strstr(err, epoch_path));
    assert_int_equal(epochs_highest(f), 0); /* not raised in memory either */
    assert_null(epochs_claim(f));

    /* The id was not recorded: once the disk is fixed, it runs. */
    assert_int_equal(rmdir(epoch_path), 0);
    char *tmp = xasprintf("%s.tmp.%ld", epoch_path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1); /* the temp file was removed */
    free(tmp);
    assert_int_equal(s_admit(f, "5.1", &c5, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_int_equal(epochs_highest(f), 5);
    char *text = s_epoch_text(sd);
    s_check_text(text, &c5);
    free(text);
    epochs_close(&f);

    /* epochs_open on a state dir whose epoch is a folder fails, naming it. */
    assert_int_equal(unlink(epoch_path), 0);
    assert_int_equal(mkdir(epoch_path, 0700), 0);
    err[0] = '\0';
    assert_null(epochs_open(sd, s_pk, err, sizeof err));
    assert_non_null(strstr(err, epoch_path));
    free(epoch_path);
    free(sd);
}

static void test_remember_bound(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    char id[32];
    claim_t c1 = s_claim(1);

    /* EPOCHS_REMEMBER + 1 commands, each completed with its number. */
    for (uint32_t i = 0; i <= EPOCHS_REMEMBER; i++) {
        snprintf(id, sizeof id, "1.%" PRIu32, i);
        assert_int_equal(s_admit(f, id, &c1, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
        epochs_complete(f, id, (const uint8_t *)&i, sizeof i);
    }
    /* The newest EPOCHS_REMEMBER are replayed with their own results. */
    for (uint32_t i = 1; i <= EPOCHS_REMEMBER; i++) {
        snprintf(id, sizeof id, "1.%" PRIu32, i);
        if (s_admit(f, id, &c1, &res, &len, err, sizeof err) != EPOCHS_REPLAY)
            fail_msg("id %s forgotten too early", id);
        assert_int_equal(len, sizeof i);
        uint32_t got;
        memcpy(&got, res, sizeof got);
        assert_int_equal(got, i);
    }
    /* The oldest is forgotten: it would run again. */
    assert_int_equal(s_admit(f, "1.0", &c1, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    /* ...which in turn pushed out the next oldest, "1.1"; admitting that
     * pushes out "1.2", and "1.3" is now the oldest still remembered. */
    assert_int_equal(s_admit(f, "1.1", &c1, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_int_equal(s_admit(f, "1.3", &c1, &res, &len, err, sizeof err), EPOCHS_REPLAY);
    assert_int_equal(s_admit(f, "1.0", &c1, &res, &len, err, sizeof err), EPOCHS_IN_PROGRESS);
    assert_int_equal(s_admit(f, "1.1", &c1, &res, &len, err, sizeof err), EPOCHS_IN_PROGRESS);
    assert_int_equal(s_admit(f, "1.2", &c1, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    epochs_close(&f);
    free(sd);
}

static void test_bad_claims(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    claim_t c2 = s_claim(2);
    assert_int_equal(s_admit(f, "2.1", &c2, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    char *before = s_epoch_text(sd);

    /* No claim at all. */
    err[0] = '\0';
    assert_int_equal(epochs_admit(f, "9.1", 9, NULL, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    assert_non_null(strstr(err, "no epoch claim"));
    /* A genuine claim of epoch 2 on a command of epoch 9: what a thief of
     * the CURVE key alone could try with the claim a hello showed it. */
    err[0] = '\0';
    assert_int_equal(epochs_admit(f, "9.2", 9, &c2, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    assert_non_null(strstr(err, "epoch 9"));
    /* Tampered: the epoch, the instance, the signature. */
    claim_t t = c2;
    t.epoch = 9;
    assert_int_equal(s_admit(f, "9.3", &t, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    assert_non_null(strstr(err, "does not verify"));
    t = c2;
    t.instance[0] ^= 1;
    assert_int_equal(s_admit(f, "2.4", &t, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    t = c2;
    t.sig[63] ^= 0x80;
    assert_int_equal(s_admit(f, "2.5", &t, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    /* Signed by another key. */
    uint8_t pk2[CLAIM_PUBLIC_LEN], sk2[CLAIM_SECRET_LEN];
    crypto_sign_keypair(pk2, sk2);
    claim_t other;
    claim_make(&other, 9, sk2);
    assert_int_equal(s_admit(f, "9.6", &other, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    /* An all-zero claim. */
    claim_t zero;
    memset(&zero, 0, sizeof zero);
    zero.epoch = 9;
    assert_int_equal(s_admit(f, "9.7", &zero, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);

    /* None of it moved the fence, in memory or on disk, nor was any id
     * recorded: the coordinator of epoch 2 goes on. */
    assert_int_equal(epochs_highest(f), 2);
    assert_true(claim_equal(epochs_claim(f), &c2));
    char *after = s_epoch_text(sd);
    assert_string_equal(before, after);
    assert_int_equal(s_admit(f, "2.2", &c2, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    free(before);
    free(after);
    epochs_close(&f);
    free(sd);
}

static void test_twin(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    /* Two coordinators on copies of one journal: both epoch 2, each its
     * own instance. The first to reach the agent is followed. */
    claim_t a = s_claim(2), b = s_claim(2);
    assert_int_equal(s_admit(f, "2.1", &a, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_int_equal(s_admit(f, "2.1", &b, &res, &len, err, sizeof err), EPOCHS_TWIN);
    assert_non_null(strstr(err, "another coordinator instance"));
    assert_int_equal(s_admit(f, "2.9", &b, &res, &len, err, sizeof err), EPOCHS_TWIN);
    assert_int_equal(s_admit(f, "2.2", &a, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_true(claim_equal(epochs_claim(f), &a));
    epochs_close(&f);

    /* After a restart the agent still follows the first. */
    f = s_open(sd);
    assert_true(claim_equal(epochs_claim(f), &a));
    assert_int_equal(s_admit(f, "2.3", &b, &res, &len, err, sizeof err), EPOCHS_TWIN);
    assert_int_equal(s_admit(f, "2.3", &a, &res, &len, err, sizeof err), EPOCHS_EXECUTE);

    /* A newer coordinator ends both. */
    claim_t c3 = s_claim(3);
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_int_equal(s_admit(f, "2.4", &a, &res, &len, err, sizeof err), EPOCHS_STALE);
    assert_int_equal(s_admit(f, "2.4", &b, &res, &len, err, sizeof err), EPOCHS_STALE);
    epochs_close(&f);
    free(sd);
}

static void test_epoch_file_before_claims(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    assert_int_equal(fsutil_mkdirs(sd, 0700), 0);
    s_write_epoch(sd, "4\n");
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    assert_int_equal(epochs_highest(f), 4);
    assert_null(epochs_claim(f)); /* a hello then carries no claim */
    /* An older coordinator is still refused by the number alone. */
    claim_t c3 = s_claim(3);
    assert_int_equal(s_admit(f, "3.1", &c3, &res, &len, err, sizeof err), EPOCHS_STALE);
    /* The first verified claim of epoch 4 is adopted and stored; another
     * instance of 4 is a twin from then on. */
    claim_t a = s_claim(4), b = s_claim(4);
    assert_int_equal(s_admit(f, "4.1", &a, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_true(claim_equal(epochs_claim(f), &a));
    char *text = s_epoch_text(sd);
    s_check_text(text, &a);
    free(text);
    assert_int_equal(s_admit(f, "4.2", &b, &res, &len, err, sizeof err), EPOCHS_TWIN);
    epochs_close(&f);
    free(sd);
}

static void test_stored_claim_of_another_key(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    epochs_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    claim_t c6 = s_claim(6);
    assert_int_equal(s_admit(f, "6.1", &c6, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    epochs_close(&f);

    /* The signing key was replaced: the stored claim no longer verifies.
     * The epoch stays (older coordinators stay refused); the claim goes. */
    uint8_t pk2[CLAIM_PUBLIC_LEN], sk2[CLAIM_SECRET_LEN];
    crypto_sign_keypair(pk2, sk2);
    err[0] = '\0';
    f = epochs_open(sd, pk2, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(epochs_highest(f), 6);
    assert_null(epochs_claim(f));
    claim_t n5, n6;
    claim_make(&n5, 5, sk2);
    claim_make(&n6, 6, sk2);
    assert_int_equal(s_admit(f, "5.1", &n5, &res, &len, err, sizeof err), EPOCHS_STALE);
    assert_int_equal(s_admit(f, "6.1", &n6, &res, &len, err, sizeof err), EPOCHS_EXECUTE);
    assert_true(claim_equal(epochs_claim(f), &n6));
    /* The old key's claims no longer verify at all. */
    assert_int_equal(s_admit(f, "6.2", &c6, &res, &len, err, sizeof err), EPOCHS_BAD_CLAIM);
    epochs_close(&f);
    free(sd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    log_init("test_epochs", LOG_ERROR);
    if (sodium_init() < 0)
        return 1;
    crypto_sign_keypair(s_pk, s_sk);
    const struct CMUnitTest tests[] = {
        T(test_fresh_dir),
        T(test_admit_stale_replay_reopen),
        T(test_malformed_epoch_file),
        T(test_unwritable_epoch),
        T(test_remember_bound),
        T(test_bad_claims),
        T(test_twin),
        T(test_epoch_file_before_claims),
        T(test_stored_claim_of_another_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
