/*
 * test_units: common/units.c. Durations and byte sizes as operators write
 * them (every unit, fractions that come out whole), every kind of junk,
 * sign and overflow refused, the human-readable printing at each unit
 * boundary, and the two clocks. Pure functions: no files, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "units.h"

static void test_duration_good(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        { "0ms", 0 },           { "0s", 0 },
        { "1ms", 1 },           { "250ms", 250 },
        { "2s", 2000 },         { "1.5s", 1500 },
        { "0.25s", 250 },       { "1.500s", 1500 },
        { "0.001s", 1 },        { "1m", 60000 },
        { "1.5m", 90000 },      { "10m", 600000 },
        { "1h", 3600000 },      { "0.5h", 1800000 },
        { "24h", 86400000 },    { "250 ms", 250 },
        { "007s", 7000 },       { "9223372036854775807ms", INT64_MAX },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        if (!units_parse_duration_ms(cases[i].in, &v))
            fail_msg("refused \"%s\"", cases[i].in);
        assert_int_equal(v, cases[i].ms);
    }
}

static void test_duration_junk(void **state)
{
    static const char *const junk[] = {
        "",       "5",       "0",        "1.5",     "ms",      "s",
        "-1s",    "+1s",     " 1s",      "1s ",     "1 s ",    "1S",
        "1sec",   "1min",    "1d",       "1us",     "1.s",     ".5s",
        "1..5s",  "1.5.0s",  "0.5ms",    "1.0001s", "1e3ms",   "0x10s",
        "1s1",    "1ms\n",   "1\ts",     "1,5s",    "1_000ms", "1m30s",
        "9223372036854775808ms",          "2562047788016h",
        "99999999999999999999999ms",      "1.0000000001h",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int64_t v = 42;
        if (units_parse_duration_ms(junk[i], &v))
            fail_msg("accepted \"%s\" as %lld ms", junk[i], (long long)v);
        assert_int_equal(v, 42); /* untouched on failure */
    }
    int64_t v = 42;
    assert_false(units_parse_duration_ms(NULL, &v));
}

static void test_bytes_good(void **state)
{
    static const struct {
        const char *in;
        int64_t bytes;
    } cases[] = {
        { "0", 0 },
        { "512", 512 },
        { "512B", 512 },
        { "64kB", 64 * 1024 },
        { "64KB", 64 * 1024 },
        { "64 kB", 64 * 1024 },
        { "10MB", 10 * 1024 * 1024 },
        { "1GB", INT64_C(1) << 30 },
        { "2TB", INT64_C(2) << 40 },
        { "1KiB", 1024 },
        { "1MiB", 1 << 20 },
        { "1GiB", INT64_C(1) << 30 },
        { "1TiB", INT64_C(1) << 40 },
        { "1.5GiB", (INT64_C(3) << 30) / 2 },
        { "0.5kB", 512 },
        { "9223372036854775807", INT64_MAX },
        { "8388607TiB", INT64_C(8388607) << 40 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        if (!units_parse_bytes(cases[i].in, &v))
            fail_msg("refused \"%s\"", cases[i].in);
        assert_int_equal(v, cases[i].bytes);
    }
}

static void test_bytes_junk(void **state)
{
    static const char *const junk[] = {
        "",        "B",        "kB",       "-1",      "+1",      "-1kB",
        " 1",      "1 ",       "1kb",      "1mb",     "1Kb",     "1k",
        "1M",      "1G",       "1PiB",     "1PB",     "1 KiB ",  "1.kB",
        ".5kB",    "0.1kB",    "1.5",      "1.5B",    "1e3",     "0x10",
        "1_000",   "1,024",    "10MBs",    "1MiB1",   "1\n",
        "9223372036854775808", "8388608TiB", "18446744073709551616",
        "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int64_t v = 42;
        if (units_parse_bytes(junk[i], &v))
            fail_msg("accepted \"%s\" as %lld", junk[i], (long long)v);
        assert_int_equal(v, 42);
    }
    int64_t v = 42;
    assert_false(units_parse_bytes(NULL, &v));
}

static void test_fmt_bytes(void **state)
{
    static const struct {
        uint64_t in;
        const char *out;
    } cases[] = {
        { 0, "0 B" },
        { 1, "1 B" },
        { 1023, "1023 B" },
        { 1024, "1.0 KiB" },
        { 1536, "1.5 KiB" },
        { 1048575, "1.0 MiB" },          /* would round to "1024.0 KiB" */
        { 1048576, "1.0 MiB" },
        { 12897485, "12.3 MiB" },
        { UINT64_C(4) << 30, "4.00 GiB" },
        { (UINT64_C(5) << 40) / 4, "1.25 TiB" },
        { UINT64_C(1) << 50, "1.00 PiB" },
        { UINT64_MAX, "16.00 EiB" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ptr_equal(units_fmt_bytes(cases[i].in, buf, sizeof buf), buf);
        assert_string_equal(buf, cases[i].out);
    }
    /* A short buffer is truncated, never overrun. */
    char small[4];
    units_fmt_bytes(UINT64_C(4) << 30, small, sizeof small);
    assert_string_equal(small, "4.0");
}

static void test_fmt_duration(void **state)
{
    static const struct {
        uint64_t in;
        const char *out;
    } cases[] = {
        { 0, "0 ms" },
        { 850, "850 ms" },
        { 999, "999 ms" },
        { 1000, "1.0 s" },
        { 3250, "3.2 s" },
        { 59999, "59.9 s" },
        { 60000, "1m00s" },
        { 245000, "4m05s" },
        { 3599999, "59m59s" },
        { 3600000, "1h00m" },
        { 7380000, "2h03m" },
        { 86399999, "23h59m" },
        { 86400000, "1d00h" },
        { 3 * 86400000 + 4 * 3600000 + 59 * 60000, "3d04h" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ptr_equal(units_fmt_duration_ms(cases[i].in, buf, sizeof buf), buf);
        assert_string_equal(buf, cases[i].out);
    }
}

static void test_clocks(void **state)
{
    /* Wall clock: after 2020-01-01 and between two reads of time() taken
     * around it (a loaded machine may deschedule us between the calls). */
    uint64_t before = (uint64_t)time(NULL) * 1000;
    uint64_t now = units_now_ms();
    uint64_t after = (uint64_t)time(NULL) * 1000;
    assert_true(now > UINT64_C(1577836800000));
    assert_true(now + 1000 >= before && now < after + 1000);

    /* Monotonic: never goes back, and follows a 20 ms sleep. */
    uint64_t a = units_mono_ms();
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    uint64_t b = units_mono_ms();
    assert_true(b >= a + 19);
    assert_true(b - a < 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_junk),
        cmocka_unit_test(test_bytes_good),    cmocka_unit_test(test_bytes_junk),
        cmocka_unit_test(test_fmt_bytes),     cmocka_unit_test(test_fmt_duration),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
