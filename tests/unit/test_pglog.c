/*
 * test_pglog: agent/pglog.c, following the server log for the errors of
 * logical replication workers.
 *
 * Covers: what was in the file before the first poll is not reported; an
 * apply error with DETAIL and CONTEXT arrives as one message with its
 * origin, once the next line shows it complete; an error with no origin but
 * a subscription named in its text; errors of ordinary sessions ignored; a
 * line split across two polls; a tab continuation line; rotation (a new,
 * shorter file) read from its start; a missing file; and the origin names
 * of the apply worker and of a table's copy.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pglog.h"
#include "tmpdir.h"
#include "xalloc.h"

typedef struct {
    int n;
    char origin[8][64], sub[8][64], msg[8][2048];
} seen_t;

static void s_cb(const char *origin, const char *sub, const char *msg, void *arg)
{
    seen_t *s = arg;
    if (s->n >= 8)
        return;
    snprintf(s->origin[s->n], sizeof s->origin[0], "%s", origin);
    snprintf(s->sub[s->n], sizeof s->sub[0], "%s", sub);
    snprintf(s->msg[s->n], sizeof s->msg[0], "%s", msg);
    s->n++;
}

static void s_append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define P "2026-11-22 02:27:03.174 UTC [17570] "

static void test_apply_error_after_start(void **state)
{
    char *path = xasprintf("%s/log", (char *)*state);
    s_append(path, P "ERROR:  old error\n" P "CONTEXT:  processing remote data for replication "
                     "origin \"pg_1\" during message type \"INSERT\"\n" P "LOG:  x\n");
    pglog_t *l = pglog_new(path);
    seen_t s = { 0 };
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    assert_int_equal(s.n, 0); /* history */
    s_append(path, P "LOG:  logical replication apply worker for subscription \"godwit_shop\" "
                     "has started\n"
                     P "ERROR:  duplicate key value violates unique constraint \"customers_pkey\"\n"
                     P "DETAIL:  Key (id)=(2001) already exists.\n"
                     P "CONTEXT:  processing remote data for replication origin \"pg_16466\" during "
                     "message type \"INSERT\" for replication target relation \"public.customers\" "
                     "in transaction 900, finished at 0/3A0\n");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    assert_int_equal(s.n, 0); /* not complete until the next line */
    s_append(path, P "LOG:  background worker \"logical replication worker\" (PID 1) exited with "
                     "exit code 1\n");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.origin[0], "pg_16466");
    assert_string_equal(s.sub[0], "");
    assert_non_null(strstr(s.msg[0], "ERROR:  duplicate key value violates unique constraint "
                                     "\"customers_pkey\"; DETAIL:  Key (id)=(2001) already exists.; "
                                     "CONTEXT:  processing remote data"));
    assert_int_equal(pglog_origin_subid(s.origin[0]), 16466);
    pglog_free(&l);
    assert_null(l);
    free(path);
}

static void test_subscription_named_and_sessions_ignored(void **state)
{
    char *path = xasprintf("%s/log", (char *)*state);
    s_append(path, "");
    pglog_t *l = pglog_new(path);
    seen_t s = { 0 };
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    s_append(path, P "ERROR:  relation \"nope\" does not exist at character 15\n"
                     P "STATEMENT:  SELECT * FROM nope\n"
                     P "ERROR:  could not connect to the publisher: connection refused\n"
                     "\tIs the server running on that host?\n"
                     P "CONTEXT:  apply worker for subscription \"godwit_shop\"\n"
                     P "LOG:  y\n");
    /* split a line across polls */
    s_append(path, P "ERROR:  logical replication target relation \"public.t\" is missing "
                     "replicated col");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    s_append(path, "umn: \"note\"\n" P "CONTEXT:  processing remote data for replication origin "
                   "\"pg_7_16384\" during message type \"INSERT\"\n" P "LOG:  z\n");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.sub[0], "godwit_shop");
    assert_non_null(strstr(s.msg[0], "publisher: connection refused Is the server running"));
    assert_non_null(strstr(s.msg[1], "missing replicated column: \"note\""));
    assert_string_equal(s.origin[1], "pg_7_16384");
    assert_int_equal(pglog_origin_subid(s.origin[1]), 7);
    pglog_free(&l);
    free(path);
}

static void test_rotation_and_missing_file(void **state)
{
    char *path = xasprintf("%s/log", (char *)*state);
    pglog_t *l = pglog_new(path);
    seen_t s = { 0 };
    assert_int_equal(pglog_poll(l, s_cb, &s), -ENOENT);
    s_append(path, P "LOG:  a long line to make the first file longer than the second one\n");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    /* rotate as logrotate does: the old file moved away, a new one in its place */
    char *old = xasprintf("%s.1", path);
    assert_int_equal(rename(path, old), 0);
    free(old);
    s_append(path, P "FATAL:  x\n" P "CONTEXT:  replication origin \"pg_9\"\n" P "LOG:  \n");
    assert_int_equal(pglog_poll(l, s_cb, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.origin[0], "pg_9");
    assert_int_equal(pglog_origin_subid("pg_x"), 0);
    assert_int_equal(pglog_origin_subid("godwit"), 0);
    assert_int_equal(pglog_origin_subid(NULL), 0);
    pglog_free(&l);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_error_after_start, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_subscription_named_and_sessions_ignored,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_missing_file, tmpdir_setup,
                                        tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
