/*
 * tmpdir: a fresh folder under /tmp for each cmocka test, removed with all
 * its contents afterwards (also when the test failed). Use as
 *   cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)
 * and find the folder's path (a string the teardown frees) in *state.
 * Header-only: every unit test is one source file.
 */
#ifndef GODWIT_TEST_TMPDIR_H
#define GODWIT_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "xalloc.h"

static int tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int tmpdir_setup(void **state)
{
    char tmpl[] = "/tmp/godwit-test-XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    *state = xstrdup(tmpl);
    return 0;
}

static int tmpdir_teardown(void **state)
{
    char *dir = *state;
    nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return 0;
}

#endif
