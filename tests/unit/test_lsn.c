/*
 * test_lsn: common/lsn.c against the text PostgreSQL prints ("16/B374D848"):
 * round trips through parse and format, both letter cases, every kind of
 * junk refused, and a difference that never wraps below zero.
 * Pure functions: no files, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lsn.h"

static void test_parse_basic(void **state)
{
    uint64_t v = 1;
    assert_true(lsn_parse("0/0", &v));
    assert_int_equal(v, 0);
    assert_true(lsn_parse("0/16B3748", &v));
    assert_int_equal(v, 0x16B3748);
    assert_true(lsn_parse("16/B374D848", &v));
    assert_int_equal(v, UINT64_C(0x16B374D848));
    assert_true(lsn_parse("FFFFFFFF/FFFFFFFF", &v));
    assert_int_equal(v, UINT64_MAX);
    assert_true(lsn_parse("00000001/00000000", &v));
    assert_int_equal(v, UINT64_C(0x100000000));
}

static void test_parse_case(void **state)
{
    uint64_t a = 0, b = 0, c = 0;
    assert_true(lsn_parse("ab/cdef0123", &a));
    assert_true(lsn_parse("AB/CDEF0123", &b));
    assert_true(lsn_parse("aB/CdEf0123", &c));
    assert_int_equal(a, UINT64_C(0xABCDEF0123));
    assert_int_equal(a, b);
    assert_int_equal(a, c);
}

static void test_parse_junk(void **state)
{
    static const char *const junk[] = {
        "",          "/",          "1/",         "/1",          "1",
        "G/0",       "0/G",        "0/1g",       "1//2",        "1/2/3",
        " 1/2",      "1/2 ",       "1 /2",       "1/ 2",        "-1/2",
        "+1/2",      "0x1/2",      "1/0x2",      "123456789/0", "0/123456789",
        "1/2\n",     "1.0/2",      "1/2x",       "\xff/1",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        uint64_t v = 42;
        if (lsn_parse(junk[i], &v))
            fail_msg("accepted junk \"%s\"", junk[i]);
        assert_int_equal(v, 42); /* untouched on failure */
    }
    uint64_t v;
    assert_false(lsn_parse(NULL, &v));
    assert_false(lsn_parse("1/2", NULL));
}

static void test_format(void **state)
{
    char buf[LSN_STRLEN];
    assert_string_equal(lsn_format(0, buf, sizeof buf), "0/0");
    assert_string_equal(lsn_format(0x16B3748, buf, sizeof buf), "0/16B3748");
    assert_string_equal(lsn_format(UINT64_C(0x16B374D848), buf, sizeof buf), "16/B374D848");
    assert_string_equal(lsn_format(UINT64_MAX, buf, sizeof buf), "FFFFFFFF/FFFFFFFF");
    assert_int_equal(strlen(buf), LSN_STRLEN - 1);
    assert_ptr_equal(lsn_format(1, buf, sizeof buf), buf);
    /* A short buffer is truncated, still terminated. */
    char small[4];
    lsn_format(UINT64_MAX, small, sizeof small);
    assert_string_equal(small, "FFF");
}

static void test_round_trip(void **state)
{
    static const uint64_t values[] = {
        0, 1, 0xF, 0x10, 0xFFFFFFFF, UINT64_C(0x100000000), UINT64_C(0x16B374D848),
        UINT64_C(0x8000000000000000), UINT64_MAX - 1, UINT64_MAX,
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[LSN_STRLEN];
        uint64_t back = 0;
        assert_true(lsn_parse(lsn_format(values[i], buf, sizeof buf), &back));
        assert_int_equal(back, values[i]);
    }
    /* Text -> number -> text gives PostgreSQL's form (upper case, no zeros). */
    static const char *const in[] = {"0/0", "000/0001", "ab/cd", "FFFFFFFF/0"};
    static const char *const want[] = {"0/0", "0/1", "AB/CD", "FFFFFFFF/0"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char buf[LSN_STRLEN];
        uint64_t v;
        assert_true(lsn_parse(in[i], &v));
        assert_string_equal(lsn_format(v, buf, sizeof buf), want[i]);
    }
}

static void test_diff(void **state)
{
    assert_int_equal(lsn_diff(10, 3), 7);
    assert_int_equal(lsn_diff(3, 10), 0);
    assert_int_equal(lsn_diff(5, 5), 0);
    assert_int_equal(lsn_diff(UINT64_MAX, 0), UINT64_MAX);
    assert_int_equal(lsn_diff(0, UINT64_MAX), 0);
    assert_int_equal(lsn_diff(UINT64_C(0x100000000), 0xFFFFFFFF), 1);
    assert_int_equal(lsn_diff(LSN_INVALID, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic), cmocka_unit_test(test_parse_case),
        cmocka_unit_test(test_parse_junk),  cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
