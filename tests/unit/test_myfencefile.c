/*
 * test_myfencefile: agent/mariadb/myfencefile.c, the record of the MariaDB
 * fence (what an unfreeze, or an agent that restarts, lifts the fence
 * from).
 *
 * Covers the write/read round trip of every field (mode, the wall-clock
 * lease deadline, read_only before, each account with its locked_before,
 * names with quotes and backticks), the file's mode 0600 and no temporary
 * file left; a missing file (false, why empty); damaged files refused with
 * why naming the path: not JSON, truncated, another kind, an unknown mode,
 * no accounts, an account without its host, a deadline that is not a whole
 * number; the accounts as ALTER USER names (all, or only those unlocked
 * before the fence; backticks doubled) and the users' IN list (each user
 * once, through the caller's quoting, NULL when quoting fails).
 *
 * Files: every test gets its own mkdtemp folder (tmpdir.h).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fsutil.h"
#include "myfencefile.h"
#include "tmpdir.h"
#include "xalloc.h"

static void s_sample(myfence_rec_t *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->database = xstrdup("shop");
    rec->mode = MYFENCE_FENCED;
    rec->lease_deadline_ms = INT64_C(1796700000123);
    rec->read_only_before = false;
    myfencefile_add(rec, "app", "%", false);
    myfencefile_add(rec, "app", "10.0.0.%", true);
    myfencefile_add(rec, "o'brien`x", "localhost", false);
}

static void s_write_text(const char *path, const char *text)
{
    assert_int_equal(fsutil_write_atomic(path, text, strlen(text), 0600), 0);
}

static void test_round_trip(void **state)
{
    const char *dir = *state;
    char *path = myfencefile_path(dir);
    char *armed = myfencefile_armed_path(dir);
    assert_string_not_equal(path, armed);
    myfence_rec_t w, r;
    s_sample(&w);
    assert_int_equal(myfencefile_write(path, &w), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char why[256];
    assert_true(myfencefile_read(path, &r, why, sizeof why));
    assert_string_equal(r.database, "shop");
    assert_int_equal(r.mode, MYFENCE_FENCED);
    assert_true(r.lease_deadline_ms == INT64_C(1796700000123));
    assert_false(r.read_only_before);
    assert_int_equal(r.n_accounts, 3);
    assert_string_equal(r.accounts[1].user, "app");
    assert_string_equal(r.accounts[1].host, "10.0.0.%");
    assert_true(r.accounts[1].locked_before);
    assert_false(r.accounts[0].locked_before);
    assert_string_equal(r.accounts[2].user, "o'brien`x");
    myfencefile_clear(&r);

    /* Each mode, and read_only on, survive too; a rewrite replaces. */
    w.mode = MYFENCE_PERMANENT;
    w.lease_deadline_ms = 0;
    w.read_only_before = true;
    assert_int_equal(myfencefile_write(path, &w), 0);
    assert_true(myfencefile_read(path, &r, why, sizeof why));
    assert_int_equal(r.mode, MYFENCE_PERMANENT);
    assert_true(r.lease_deadline_ms == 0);
    assert_true(r.read_only_before);
    myfencefile_clear(&r);
    w.mode = MYFENCE_ARMED;
    assert_int_equal(myfencefile_write(armed, &w), 0);
    assert_true(myfencefile_read(armed, &r, why, sizeof why));
    assert_int_equal(r.mode, MYFENCE_ARMED);
    assert_string_equal(myfencefile_mode_name(r.mode), "armed");
    myfencefile_clear(&r);

    /* Only the two files: no temporary one left. */
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 2);
    myfencefile_clear(&w);
    myfencefile_clear(NULL);
    free(path);
    free(armed);
}

static void test_missing(void **state)
{
    char *path = myfencefile_path(*state);
    myfence_rec_t r;
    char why[256] = "x";
    assert_false(myfencefile_read(path, &r, why, sizeof why));
    assert_string_equal(why, "");
    assert_int_equal(r.n_accounts, 0);
    assert_null(r.database);
    free(path);
}

/* Each text is refused, with why naming the file. */
static void test_damaged(void **state)
{
    const char *dir = *state;
    char *path = myfencefile_path(dir);
    myfence_rec_t good;
    s_sample(&good);
    assert_int_equal(myfencefile_write(path, &good), 0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fsutil_read_small(path, 1 << 20, &text, &len), 0);
    myfencefile_clear(&good);

    const char *bad[] = {
        "",
        "not json",
        "[1, 2]",
        "{\"kind\": \"godwit fence\", \"version\": 1}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 2, \"database\": \"d\", \"mode\": "
        "\"fenced\", \"lease_deadline_ms\": 1, \"read_only_before\": false, \"accounts\": "
        "[{\"user\": \"a\", \"host\": \"%\", \"locked_before\": false}]}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 1, \"database\": \"d\", \"mode\": "
        "\"frozen\", \"lease_deadline_ms\": 1, \"read_only_before\": false, \"accounts\": "
        "[{\"user\": \"a\", \"host\": \"%\", \"locked_before\": false}]}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 1, \"database\": \"d\", \"mode\": "
        "\"fenced\", \"lease_deadline_ms\": 1, \"read_only_before\": false, \"accounts\": []}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 1, \"database\": \"d\", \"mode\": "
        "\"fenced\", \"lease_deadline_ms\": 1, \"read_only_before\": false, \"accounts\": "
        "[{\"user\": \"a\", \"locked_before\": false}]}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 1, \"database\": \"d\", \"mode\": "
        "\"fenced\", \"lease_deadline_ms\": 1.5, \"read_only_before\": false, \"accounts\": "
        "[{\"user\": \"a\", \"host\": \"%\", \"locked_before\": false}]}",
        "{\"kind\": \"godwit mariadb fence\", \"version\": 1, \"database\": \"d\", \"mode\": "
        "\"fenced\", \"lease_deadline_ms\": 1, \"accounts\": "
        "[{\"user\": \"a\", \"host\": \"%\", \"locked_before\": false}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_write_text(path, bad[i]);
        myfence_rec_t r;
        char why[512] = "";
        assert_false(myfencefile_read(path, &r, why, sizeof why));
        assert_non_null(strstr(why, path));
        assert_int_equal(r.n_accounts, 0);
        assert_null(r.database);
    }
    /* The good file cut short. */
    char *cut = xasprintf("%.*s", (int)(len / 2), text);
    s_write_text(path, cut);
    myfence_rec_t r;
    char why[512] = "";
    assert_false(myfencefile_read(path, &r, why, sizeof why));
    assert_non_null(strstr(why, "not JSON"));
    /* And whole again: read. */
    s_write_text(path, text);
    assert_true(myfencefile_read(path, &r, why, sizeof why));
    myfencefile_clear(&r);
    free(cut);
    free(text);
    free(path);
}

static char *s_quote(void *ctx, const char *s)
{
    int *calls = ctx;
    (*calls)++;
    return strcmp(s, "fail") == 0 ? NULL : xasprintf("'%s'", s);
}

static void test_sql(void **state)
{
    (void)state;
    myfence_rec_t rec;
    s_sample(&rec);
    size_t n = 0;
    char *all = myfencefile_accounts_sql(&rec, false, &n);
    assert_int_equal(n, 3);
    assert_string_equal(all, "`app`@`%`, `app`@`10.0.0.%`, `o'brien``x`@`localhost`");
    char *unlocked = myfencefile_accounts_sql(&rec, true, &n);
    assert_int_equal(n, 2);
    assert_string_equal(unlocked, "`app`@`%`, `o'brien``x`@`localhost`");
    int calls = 0;
    char *in = myfencefile_users_in(&rec, s_quote, &calls);
    assert_string_equal(in, "'app', 'o'brien`x'");
    assert_int_equal(calls, 2);
    free(all);
    free(unlocked);
    free(in);
    myfencefile_add(&rec, "fail", "%", false);
    assert_null(myfencefile_users_in(&rec, s_quote, &calls));
    myfencefile_clear(&rec);

    /* Every account locked before the fence: nothing to lock or unlock. */
    myfencefile_add(&rec, "app", "%", true);
    assert_null(myfencefile_accounts_sql(&rec, true, &n));
    assert_int_equal(n, 0);
    myfencefile_clear(&rec);
    assert_null(myfencefile_users_in(&rec, s_quote, &calls));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_missing),
        T(test_damaged),
        T(test_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
