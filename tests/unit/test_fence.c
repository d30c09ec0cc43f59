/*
 * test_fence: agent/fence.c, the agent's defence against stale coordinators
 * and repeated commands.
 *
 * Covers a fresh state dir (highest epoch 0, dir created 0700); a new epoch
 * persisted to STATE/epoch before fence_admit returns EXECUTE; a lower epoch
 * refused as STALE with a reason; a running id answered IN_PROGRESS and a
 * finished one REPLAYed with the very bytes it completed with; a reopened
 * fence keeping the epoch (and so still refusing the old coordinator); a
 * malformed epoch file failing fence_open with the path in the error; an
 * epoch that cannot be persisted giving FENCE_ERROR and changing nothing; and
 * the oldest id forgotten once more than FENCE_REMEMBER are remembered.
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

#include "fence.h"
#include "fsutil.h"
#include "log.h"
#include "tmpdir.h"
#include "xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

/* Opens a fence on STATE = dir/state; fails the test if it cannot. */
static fence_t *s_open(const char *state_dir)
{
    char err[512] = "";
    fence_t *f = fence_open(state_dir, err, sizeof err);
    if (!f)
        fail_msg("fence_open %s: %s", state_dir, err);
    return f;
}

/* Admits id at epoch and checks the verdict; returns the error text. */
static fence_verdict_t s_admit(fence_t *f, const char *id, uint64_t epoch, const uint8_t **result,
                               size_t *len, char *err, size_t errlen)
{
    err[0] = '\0';
    *result = NULL;
    *len = 0;
    return fence_admit(f, id, epoch, result, len, err, errlen);
}

/* The epoch file's content; caller frees. NULL if absent. */
static char *s_epoch_text(const char *state_dir)
{
    char *path = xasprintf("%s/epoch", state_dir);
    char *text = NULL;
    int rc = fsutil_read_small(path, 64, &text, NULL);
    free(path);
    if (rc == -ENOENT)
        return NULL;
    assert_int_equal(rc, 0);
    return text;
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
    fence_t *f = s_open(sd);
    assert_int_equal(fence_highest(f), 0);
    struct stat st;
    assert_int_equal(stat(sd, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_null(s_epoch_text(sd)); /* nothing persisted until an epoch arrives */
    fence_close(&f);
    assert_null(f);
    fence_close(&f); /* NULL is fine */
    free(sd);
}

static void test_admit_stale_replay_reopen(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    fence_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];

    /* Epoch 3 arrives: executed, and on disk before fence_admit returned. */
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_EXECUTE);
    assert_int_equal(fence_highest(f), 3);
    char *text = s_epoch_text(sd);
    assert_non_null(text);
    assert_string_equal(text, "3\n");
    free(text);
    char *epoch_path = xasprintf("%s/epoch", sd);
    struct stat st;
    assert_int_equal(stat(epoch_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    free(epoch_path);

    /* An older coordinator: refused with a reason naming both epochs. */
    assert_int_equal(s_admit(f, "2.1", 2, &res, &len, err, sizeof err), FENCE_STALE);
    assert_non_null(strstr(err, "epoch 2"));
    assert_non_null(strstr(err, "3"));
    assert_null(res);
    /* Even for an id the fence knows. */
    assert_int_equal(s_admit(f, "3.1", 2, &res, &len, err, sizeof err), FENCE_STALE);

    /* The same id again while it runs: nothing to do. */
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_IN_PROGRESS);
    assert_null(res);

    /* A second command of the same epoch runs; the file is unchanged. */
    assert_int_equal(s_admit(f, "3.2", 3, &res, &len, err, sizeof err), FENCE_EXECUTE);

    /* Completed: the re-sent id gets exactly the stored bytes (a copy). */
    uint8_t result[] = { 0x0a, 0x03, '3', '.', '1', 0x10, 0x01, 0x00, 0xff };
    fence_complete(f, "3.1", result, sizeof result);
    uint8_t original[sizeof result];
    memcpy(original, result, sizeof result);
    memset(result, 0xAA, sizeof result);
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_REPLAY);
    assert_non_null(res);
    assert_int_equal(len, sizeof original);
    assert_memory_equal(res, original, sizeof original);
    /* And again: a replay does not use it up. */
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_REPLAY);
    assert_memory_equal(res, original, sizeof original);

    /* A second fence_complete for the same id keeps the first result, and one
     * for an unknown id is ignored. */
    uint8_t other[] = { 1, 2, 3 };
    fence_complete(f, "3.1", other, sizeof other);
    fence_complete(f, "9.9", other, sizeof other);
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_REPLAY);
    assert_int_equal(len, sizeof original);
    assert_memory_equal(res, original, sizeof original);
    assert_int_equal(s_admit(f, "9.9", 3, &res, &len, err, sizeof err), FENCE_EXECUTE);

    /* An empty result is remembered as done, not as running. */
    fence_complete(f, "3.2", other, 0);
    assert_int_equal(s_admit(f, "3.2", 3, &res, &len, err, sizeof err), FENCE_REPLAY);
    assert_int_equal(len, 0);
    fence_close(&f);

    /* A restarted agent: the epoch survives, so epoch 2 is still refused.
     * Ids live in memory only (fence.h: never executed twice "by this
     * process"), so a known id of the current epoch runs again. */
    f = s_open(sd);
    assert_int_equal(fence_highest(f), 3);
    assert_int_equal(s_admit(f, "2.5", 2, &res, &len, err, sizeof err), FENCE_STALE);
    assert_non_null(strstr(err, "epoch 2"));
    assert_int_equal(s_admit(f, "3.1", 3, &res, &len, err, sizeof err), FENCE_EXECUTE);

    /* A newer epoch moves the file forward; the previous one is now stale. */
    assert_int_equal(s_admit(f, "4.1", 4, &res, &len, err, sizeof err), FENCE_EXECUTE);
    text = s_epoch_text(sd);
    assert_string_equal(text, "4\n");
    free(text);
    assert_int_equal(s_admit(f, "3.7", 3, &res, &len, err, sizeof err), FENCE_STALE);
    fence_close(&f);

    /* Large epochs survive the file. */
    f = s_open(sd);
    assert_int_equal(fence_highest(f), 4);
    assert_int_equal(s_admit(f, "max.1", UINT64_MAX, &res, &len, err, sizeof err), FENCE_EXECUTE);
    fence_close(&f);
    f = s_open(sd);
    assert_int_equal(fence_highest(f), UINT64_MAX);
    fence_close(&f);

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
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write_epoch(sd, bad[i]);
        char err[512] = "";
        fence_t *f = fence_open(sd, err, sizeof err);
        if (f) {
            fail_msg("epoch file \"%s\" accepted as %" PRIu64, bad[i], fence_highest(f));
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
    assert_null(fence_open(sd, err, sizeof err));
    assert_non_null(strstr(err, epoch_path));

    /* Without the trailing newline it is still fine. */
    s_write_epoch(sd, "12");
    fence_t *f = s_open(sd);
    assert_int_equal(fence_highest(f), 12);
    fence_close(&f);
    free(epoch_path);
    free(sd);
}

static void test_unwritable_epoch(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    fence_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];

    /* A folder where the epoch file goes: the rename onto it fails, even
     * for root. */
    char *epoch_path = xasprintf("%s/epoch", sd);
    assert_int_equal(mkdir(epoch_path, 0700), 0);
    assert_int_equal(s_admit(f, "5.1", 5, &res, &len, err, sizeof err), FENCE_ERROR);
    assert_non_null(strstr(err, "cannot persist epoch 5"));
    assert_non_null(strstr(err, epoch_path));
    assert_int_equal(fence_highest(f), 0); /* not raised in memory either */

    /* The id was not recorded: once the disk is fixed, it runs. */
    assert_int_equal(rmdir(epoch_path), 0);
    char *tmp = xasprintf("%s.tmp.%ld", epoch_path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1); /* the temp file was removed */
    free(tmp);
    assert_int_equal(s_admit(f, "5.1", 5, &res, &len, err, sizeof err), FENCE_EXECUTE);
    assert_int_equal(fence_highest(f), 5);
    char *text = s_epoch_text(sd);
    assert_string_equal(text, "5\n");
    free(text);
    fence_close(&f);

    /* fence_open on a state dir whose epoch is a folder fails, naming it. */
    assert_int_equal(unlink(epoch_path), 0);
    assert_int_equal(mkdir(epoch_path, 0700), 0);
    err[0] = '\0';
    assert_null(fence_open(sd, err, sizeof err));
    assert_non_null(strstr(err, epoch_path));
    free(epoch_path);
    free(sd);
}

static void test_remember_bound(void **state)
{
    char *sd = xasprintf("%s/state", (const char *)*state);
    fence_t *f = s_open(sd);
    const uint8_t *res;
    size_t len;
    char err[512];
    char id[32];

    /* FENCE_REMEMBER + 1 commands, each completed with its number. */
    for (uint32_t i = 0; i <= FENCE_REMEMBER; i++) {
        snprintf(id, sizeof id, "1.%" PRIu32, i);
        assert_int_equal(s_admit(f, id, 1, &res, &len, err, sizeof err), FENCE_EXECUTE);
        fence_complete(f, id, (const uint8_t *)&i, sizeof i);
    }
    /* The newest FENCE_REMEMBER are replayed with their own results. */
    for (uint32_t i = 1; i <= FENCE_REMEMBER; i++) {
        snprintf(id, sizeof id, "1.%" PRIu32, i);
        if (s_admit(f, id, 1, &res, &len, err, sizeof err) != FENCE_REPLAY)
            fail_msg("id %s forgotten too early", id);
        assert_int_equal(len, sizeof i);
        uint32_t got;
        memcpy(&got, res, sizeof got);
        assert_int_equal(got, i);
    }
    /* The oldest is forgotten: it would run again. */
    assert_int_equal(s_admit(f, "1.0", 1, &res, &len, err, sizeof err), FENCE_EXECUTE);
    /* ...which in turn pushed out the next oldest, "1.1"; admitting that
     * pushes out "1.2", and "1.3" is now the oldest still remembered. */
    assert_int_equal(s_admit(f, "1.1", 1, &res, &len, err, sizeof err), FENCE_EXECUTE);
    assert_int_equal(s_admit(f, "1.3", 1, &res, &len, err, sizeof err), FENCE_REPLAY);
    assert_int_equal(s_admit(f, "1.0", 1, &res, &len, err, sizeof err), FENCE_IN_PROGRESS);
    assert_int_equal(s_admit(f, "1.1", 1, &res, &len, err, sizeof err), FENCE_IN_PROGRESS);
    assert_int_equal(s_admit(f, "1.2", 1, &res, &len, err, sizeof err), FENCE_EXECUTE);
    fence_close(&f);
    free(sd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    log_init("test_fence", LOG_WARN);
    const struct CMUnitTest tests[] = {
        T(test_fresh_dir),
        T(test_admit_stale_replay_reopen),
        T(test_malformed_epoch_file),
        T(test_unwritable_epoch),
        T(test_remember_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
