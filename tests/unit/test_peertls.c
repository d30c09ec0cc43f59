/*
 * peertls: which peers leave the host, and which sslmode verifies them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "peertls.h"

static void test_local_hosts(void **state)
{
    (void)state;
    const char *local[] = { NULL, "", "/var/run/postgresql", "@abstract", "localhost",
                            "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1",
                            "0.0.0.0", "::" };
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        assert_true(peertls_host_is_local(local[i]));
    const char *away[] = { "10.0.0.5", "128.0.0.1", "192.168.1.1", "db.example.org",
                           "localhost.example.org", "2001:db8::1", "::ffff:10.0.0.1", "126.255.255.255" };
    for (size_t i = 0; i < sizeof away / sizeof *away; i++)
        assert_false(peertls_host_is_local(away[i]));
}

static void test_sslmodes(void **state)
{
    (void)state;
    char why[256];
    why[0] = '\0';
    assert_true(peertls_check("127.0.0.1", NULL, why, sizeof why));
    assert_true(peertls_check("127.0.0.1", "disable", why, sizeof why));
    assert_true(peertls_check("db.oslo.example", "verify-full", why, sizeof why));
    assert_string_equal(why, "");
    assert_false(peertls_check("db.oslo.example", NULL, why, sizeof why));
    assert_non_null(strstr(why, "unset (libpq's default, prefer)"));
    const char *weak[] = { "disable", "allow", "prefer", "require", "verify-ca", "bogus" };
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++) {
        assert_false(peertls_check("10.1.2.3", weak[i], why, sizeof why));
        assert_non_null(strstr(why, weak[i]));
    }
    assert_non_null(strstr(why, "does not know"));
    assert_false(peertls_check("10.1.2.3", "verify-ca", why, sizeof why));
    assert_non_null(strstr(why, "names this host"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_hosts),
        cmocka_unit_test(test_sslmodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
