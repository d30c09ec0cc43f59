/*
 * test_tcplink: the TCP window arithmetic of preflight's link checks
 * (common/tcplink.c) and the reading of the limits from a /proc/sys laid
 * out in a temporary folder.
 */
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
#include "tcplink.h"
#include "tmpdir.h"

static void test_parse_max(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_true(tcplink_parse_max("4096\t131072\t6291456", &v));
    assert_int_equal(v, 6291456);
    assert_true(tcplink_parse_max("4096 16384 4194304\n", &v));
    assert_int_equal(v, 4194304);
    assert_false(tcplink_parse_max("4096 16384", &v));
    assert_false(tcplink_parse_max("4096 16384 x", &v));
    assert_false(tcplink_parse_max("1 2 3 4", &v));
}

/* 1 Gbit/s at 25 ms needs about 3 MB; 4 MiB at 25 ms carries about 1.3 Gbit/s. */
static void test_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(tcplink_bdp_bytes(1000, 25), 3125000);
    assert_int_equal(tcplink_bdp_bytes(0, 25), 0);
    double c = tcplink_ceiling_mbit(4194304, 25);
    assert_true(c > 1342 && c < 1343);
}

static void s_write(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_read_limits(void **state)
{
    const char *dir = *state;
    char path[512];
    tcplink_limits_t l;
    tcplink_read_limits(dir, &l); /* nothing there: all unknown */
    assert_int_equal(l.rmem_max, 0);
    assert_int_equal(l.wmem_max, 0);
    assert_string_equal(l.congestion, "");
    snprintf(path, sizeof path, "%s/proc/sys/net/ipv4", dir);
    assert_int_equal(fsutil_mkdirs(path, 0700), 0);
    s_write(dir, "proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n");
    s_write(dir, "proc/sys/net/ipv4/tcp_wmem", "garbage\n");
    s_write(dir, "proc/sys/net/ipv4/tcp_congestion_control", "cubic\n");
    tcplink_read_limits(dir, &l);
    assert_int_equal(l.rmem_max, 6291456);
    assert_int_equal(l.wmem_max, 0);
    assert_string_equal(l.congestion, "cubic");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_max),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test_setup_teardown(test_read_limits, tmpdir_setup, tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
