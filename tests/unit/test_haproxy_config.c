/*
 * test_haproxy_config: the HAProxy driver's rewrite of its config file after
 * a switch (agent/proxy_haproxy.c, proxy_haproxy_config_switch): in the
 * named backend only, the new server's line loses `disabled` and the old
 * one's gains it, everything else byte for byte (comments, other backends,
 * a `listen` section of the same name elsewhere untouched); switching back
 * restores the original; a backend without both lines is an error naming
 * what is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_haproxy.h"

static const char s_cfg[] =
    "global\n"
    "  stats socket /run/admin.sock mode 600 level admin\n"
    "defaults\n"
    "  mode tcp\n"
    "frontend pg\n"
    "  bind 127.0.0.1:6432\n"
    "  default_backend pg\n"
    "backend other\n"
    "  server blue 10.0.0.1:5432 disabled\n"
    "  server green 10.0.0.2:5432\n"
    "backend pg\n"
    "  # the primary\n"
    "  server blue 127.0.0.1:5432 check   # blue\n"
    "\tserver green 127.0.0.1:5433 disabled check\n";

static void test_switch_and_back(void **state)
{
    (void)state;
    char err[256] = "";
    char *green = proxy_haproxy_config_switch(s_cfg, "pg", "green", "blue", err, sizeof err);
    assert_non_null(green);
    assert_string_equal(green,
                        "global\n"
                        "  stats socket /run/admin.sock mode 600 level admin\n"
                        "defaults\n"
                        "  mode tcp\n"
                        "frontend pg\n"
                        "  bind 127.0.0.1:6432\n"
                        "  default_backend pg\n"
                        "backend other\n"
                        "  server blue 10.0.0.1:5432 disabled\n"
                        "  server green 10.0.0.2:5432\n"
                        "backend pg\n"
                        "  # the primary\n"
                        "  server blue 127.0.0.1:5432 check disabled   # blue\n"
                        "\tserver green 127.0.0.1:5433 check\n");
    /* Idempotent: again gives the same text. */
    char *again = proxy_haproxy_config_switch(green, "pg", "green", "blue", err, sizeof err);
    assert_non_null(again);
    assert_string_equal(again, green);
    /* Back to blue: blue enabled, green disabled. */
    char *blue = proxy_haproxy_config_switch(green, "pg", "blue", "green", err, sizeof err);
    assert_non_null(blue);
    assert_non_null(strstr(blue, "  server blue 127.0.0.1:5432 check   # blue\n"));
    assert_non_null(strstr(blue, "\tserver green 127.0.0.1:5433 check disabled\n"));
    assert_non_null(strstr(blue, "backend other\n  server blue 10.0.0.1:5432 disabled\n"));
    free(blue);
    free(again);
    free(green);
}

static void test_missing_lines(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(proxy_haproxy_config_switch(s_cfg, "nope", "green", "blue", err, sizeof err));
    assert_non_null(strstr(err, "server green"));
    assert_non_null(strstr(err, "nope"));
    assert_null(proxy_haproxy_config_switch(s_cfg, "pg", "green", "amber", err, sizeof err));
    assert_non_null(strstr(err, "server amber"));
    /* No trailing newline, a listen section. */
    char *t = proxy_haproxy_config_switch("listen pg\n  server a x:1 disabled\n  server b y:2",
                                          "pg", "a", "b", err, sizeof err);
    assert_non_null(t);
    assert_string_equal(t, "listen pg\n  server a x:1\n  server b y:2 disabled");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_and_back),
        cmocka_unit_test(test_missing_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
