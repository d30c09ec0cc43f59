/*
 * test_bbprogress: agent/pg/physical/bbprogress.c against what PostgreSQL
 * 15's pg_basebackup --progress --verbose really wrote to a pipe (lines
 * ending in '\n') and to a terminal ('\r'), split across chunks anywhere,
 * mixed with its other messages. Pure functions: no files, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bbprogress.h"

static void test_parse_line(void **state)
{
    (void)state;
    uint64_t d = 1, t = 1;
    assert_true(bbprogress_parse_line("20046/93544 kB (21%), 0/1 tablespace "
                                      "(/tmp/x/base/5/16384      )", &d, &t));
    assert_int_equal(d, 20046ULL * 1024);
    assert_int_equal(t, 93544ULL * 1024);
    assert_true(bbprogress_parse_line("93554/93554 kB (100%), 1/1 tablespace       ", &d, &t));
    assert_int_equal(d, t);
    /* Right-aligned to the total's width; no estimate. */
    assert_true(bbprogress_parse_line("   12/93554 kB (0%), 0/1 tablespace", &d, &t));
    assert_int_equal(d, 12ULL * 1024);
    assert_true(bbprogress_parse_line("4096 kB (100%), 0/1 tablespace", &d, &t));
    assert_int_equal(d, 4096ULL * 1024);
    assert_int_equal(t, 0);
}

static void test_parse_refused(void **state)
{
    (void)state;
    uint64_t d = 7, t = 7;
    assert_false(bbprogress_parse_line("", &d, &t));
    assert_false(bbprogress_parse_line("pg_basebackup: checkpoint completed", &d, &t));
    assert_false(bbprogress_parse_line("pg_basebackup: write-ahead log start point: 0/7000028 "
                                       "on timeline 1", &d, &t));
    assert_false(bbprogress_parse_line("12/ kB (1%)", &d, &t));
    assert_false(bbprogress_parse_line("12/34 MB (1%)", &d, &t));
    assert_false(bbprogress_parse_line("99999999999999999999999/1 kB (1%)", &d, &t));
    assert_int_equal(d, 7);
    assert_int_equal(t, 7);
}

static const char s_pipe_output[] =
    "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n"
    "pg_basebackup: checkpoint completed\n"
    "pg_basebackup: created replication slot \"godwit_x\"\n"
    "20046/93544 kB (21%), 0/1 tablespace (/tmp/gwbb/bbtest/base/5/16384      )\n"
    "80894/93544 kB (86%), 0/1 tablespace (/tmp/gwbb/bbtest/base/4/1255_fsm   )\n"
    "93554/93554 kB (100%), 1/1 tablespace                                         \n"
    "pg_basebackup: base backup completed\n";

static void test_feed_chunks(void **state)
{
    (void)state;
    /* Every split point gives the same outcome. */
    size_t n = strlen(s_pipe_output);
    for (size_t cut = 0; cut <= n; cut++) {
        bbprogress_t p = { .len = 0 };
        bbprogress_feed(&p, s_pipe_output, cut);
        bbprogress_feed(&p, s_pipe_output + cut, n - cut);
        assert_true(p.seen);
        assert_int_equal(p.done_bytes, 93554ULL * 1024);
        assert_int_equal(p.total_bytes, 93554ULL * 1024);
    }
}

static void test_feed_terminal(void **state)
{
    (void)state;
    bbprogress_t p = { .len = 0 };
    const char *a = "  100/2000 kB (5%), 0/1 tablespace (/d/x)\r 1000/2000 kB (50%), 0/1 tab";
    bbprogress_feed(&p, a, strlen(a));
    assert_true(p.seen);
    assert_int_equal(p.done_bytes, 100ULL * 1024); /* the second is not complete yet */
    bbprogress_feed(&p, "lespace\r", 8);
    assert_int_equal(p.done_bytes, 1000ULL * 1024);
    assert_int_equal(p.total_bytes, 2000ULL * 1024);
}

static void test_feed_long_line(void **state)
{
    (void)state;
    bbprogress_t p = { .len = 0 };
    char big[3 * BBPROGRESS_LINE_MAX];
    memset(big, 'x', sizeof big);
    bbprogress_feed(&p, big, sizeof big);
    bbprogress_feed(&p, "\n5/10 kB (50%)\n", 15);
    assert_true(p.seen);
    assert_int_equal(p.done_bytes, 5 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_line),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_feed_chunks),
        cmocka_unit_test(test_feed_terminal),
        cmocka_unit_test(test_feed_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
