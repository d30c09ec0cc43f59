/*
 * test_fsutil: common/fsutil.c, the atomic file writes agent and
 * coordinator keep their state with.
 *
 * Covers a durable write replacing a file whole (no temporary file left
 * behind); the unsynced write, whose new content readers see at once and
 * which fsutil_sync_path then makes durable (what the PgBouncer driver does
 * after the RESUME of a switch that goes on as the resume); sync_path on a
 * missing file giving -ENOENT; a write into a folder that does not exist
 * giving -ENOENT and creating nothing; read_small's bound (-EFBIG).
 *
 * Files: every test gets its own mkdtemp folder (tmpdir.h), removed by the
 * teardown also when an assertion failed.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "tmpdir.h"
#include "xalloc.h"

/* How many entries dir holds besides . and .. */
static int s_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void s_assert_content(const char *path, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(fsutil_read_small(path, 4096, &got, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
}

static void test_write_replaces_whole(void **state)
{
    char *path = xasprintf("%s/f", (const char *)*state);
    assert_int_equal(fsutil_write_atomic(path, "first, longer\n", 14, 0644), 0);
    assert_int_equal(fsutil_write_atomic(path, "second\n", 7, 0644), 0);
    s_assert_content(path, "second\n");
    assert_int_equal(s_entries(*state), 1); /* no temporary file left */
    free(path);
}

static void test_unsynced_then_synced(void **state)
{
    char *path = xasprintf("%s/include.ini", (const char *)*state);
    assert_int_equal(fsutil_write_atomic(path, "shop = host=blue\n", 17, 0644), 0);
    assert_int_equal(fsutil_write_atomic_unsynced(path, "shop = host=green\n", 18, 0644), 0);
    s_assert_content(path, "shop = host=green\n"); /* readers see it at once */
    assert_int_equal(s_entries(*state), 1);
    assert_int_equal(fsutil_sync_path(path), 0);
    s_assert_content(path, "shop = host=green\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644 & ~umask(022));
    free(path);
}

static void test_sync_missing(void **state)
{
    char *path = xasprintf("%s/none", (const char *)*state);
    assert_int_equal(fsutil_sync_path(path), -ENOENT);
    free(path);
}

static void test_write_into_missing_folder(void **state)
{
    char *path = xasprintf("%s/no/such/f", (const char *)*state);
    assert_int_equal(fsutil_write_atomic(path, "x", 1, 0644), -ENOENT);
    assert_int_equal(fsutil_write_atomic_unsynced(path, "x", 1, 0644), -ENOENT);
    assert_int_equal(s_entries(*state), 0);
    free(path);
}

static void test_read_small_bound(void **state)
{
    char *path = xasprintf("%s/big", (const char *)*state);
    assert_int_equal(fsutil_write_atomic(path, "0123456789", 10, 0600), 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fsutil_read_small(path, 9, &out, &len), -EFBIG);
    assert_null(out);
    assert_int_equal(fsutil_read_small(path, 10, &out, &len), 0);
    assert_int_equal(len, 10);
    free(out);
    free(path);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_write_replaces_whole), T(test_unsynced_then_synced), T(test_sync_missing),
        T(test_write_into_missing_folder), T(test_read_small_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
