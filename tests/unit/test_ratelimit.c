/*
 * test_ratelimit: common/ratelimit.c, the limit on refusal log lines.
 *
 * Covers one allowed event per key per window and the rest counted; the
 * count reported by flush once the window is over (not before), and the
 * report standing for that window's line; the count carried by the next
 * allowed event when no flush came between; keys independent of each other;
 * the global cap on lines per window over all keys; a full table sending
 * new keys to RATELIMIT_OTHERS and evicting a key only once it has nothing
 * left to report; and long keys cut, not overflowing. Time is passed in, so
 * nothing here sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

typedef struct {
    char keys[16][160];
    uint64_t counts[16];
    int n;
} reports_t;

static void s_collect(const char *key, uint64_t n, uint64_t window_ms, void *arg)
{
    reports_t *r = arg;
    assert_int_equal(window_ms, 1000);
    assert_true(r->n < 16);
    snprintf(r->keys[r->n], sizeof r->keys[0], "%s", key);
    r->counts[r->n++] = n;
}

static bool s_allow(ratelimit_t *rl, const char *key, uint64_t now, uint64_t *before)
{
    uint64_t b = 0;
    bool ok = ratelimit_allow(rl, key, now, &b);
    if (before)
        *before = b;
    return ok;
}

static void test_one_line_per_window(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1000, 8, 100);
    uint64_t before = 99;
    assert_true(s_allow(rl, "10.0.0.1", 5000, &before));
    assert_int_equal(before, 0);
    for (int i = 1; i <= 9; i++)
        assert_false(s_allow(rl, "10.0.0.1", 5000 + (uint64_t)i * 100, NULL));
    assert_int_equal(ratelimit_suppressed_total(rl), 9);
    /* Not over yet: nothing to report. */
    reports_t r = { .n = 0 };
    ratelimit_flush(rl, 5999, s_collect, &r);
    assert_int_equal(r.n, 0);
    /* Over: the count, once. */
    ratelimit_flush(rl, 6000, s_collect, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.keys[0], "10.0.0.1");
    assert_int_equal(r.counts[0], 9);
    ratelimit_flush(rl, 6001, s_collect, &r);
    assert_int_equal(r.n, 1);
    /* The report was this window's line: a flood goes on as one report per
     * window. */
    assert_false(s_allow(rl, "10.0.0.1", 6100, NULL));
    assert_false(s_allow(rl, "10.0.0.1", 6200, NULL));
    ratelimit_flush(rl, 7000, s_collect, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.counts[1], 2);
    /* Quiet for a window: the next one is logged again. */
    assert_true(s_allow(rl, "10.0.0.1", 9000, &before));
    assert_int_equal(before, 0);
    ratelimit_destroy(&rl);
    assert_null(rl);
    ratelimit_destroy(&rl);
}

static void test_carried_count_and_keys(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1000, 8, 100);
    uint64_t before = 0;
    assert_true(s_allow(rl, "a", 0, NULL));
    assert_false(s_allow(rl, "a", 10, NULL));
    assert_false(s_allow(rl, "a", 20, NULL));
    /* Another key is not held back by the first. */
    assert_true(s_allow(rl, "b", 30, NULL));
    /* No flush came: the next allowed line of "a" carries its count. */
    assert_true(s_allow(rl, "a", 1500, &before));
    assert_int_equal(before, 2);
    reports_t r = { .n = 0 };
    ratelimit_flush(rl, 5000, s_collect, &r);
    assert_int_equal(r.n, 0);
    ratelimit_destroy(&rl);
}

static void test_global_cap(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1000, 64, 3);
    char key[16];
    int allowed = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "10.0.0.%d", i);
        allowed += s_allow(rl, key, 100, NULL);
    }
    assert_int_equal(allowed, 3);
    assert_int_equal(ratelimit_suppressed_total(rl), 7);
    /* Each suppressed key reports its own count once its window is over. */
    reports_t r = { .n = 0 };
    ratelimit_flush(rl, 1100, s_collect, &r);
    assert_int_equal(r.n, 7);
    for (int i = 0; i < r.n; i++)
        assert_int_equal(r.counts[i], 1);
    ratelimit_destroy(&rl);
}

static void test_full_table(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1000, 2, 100);
    assert_true(s_allow(rl, "a", 0, NULL));
    assert_true(s_allow(rl, "b", 0, NULL));
    assert_false(s_allow(rl, "a", 1, NULL)); /* "a" has a count to report */
    /* Full: "c" goes to the others' entry (its first line still allowed). */
    assert_true(s_allow(rl, "c", 2, NULL));
    assert_false(s_allow(rl, "d", 3, NULL));
    reports_t r = { .n = 0 };
    ratelimit_flush(rl, 1002, s_collect, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.keys[0], "a");
    assert_string_equal(r.keys[1], RATELIMIT_OTHERS);
    /* "b" has nothing to report and its window is over: "e" takes it. */
    assert_true(s_allow(rl, "e", 2000, NULL));
    assert_false(s_allow(rl, "e", 2001, NULL));
    ratelimit_flush(rl, 3001, s_collect, &r);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.keys[2], "e");
    ratelimit_destroy(&rl);
}

static void test_long_key(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1000, 4, 100);
    char key[1000];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    assert_true(s_allow(rl, key, 0, NULL));
    assert_false(s_allow(rl, key, 1, NULL));
    reports_t r = { .n = 0 };
    ratelimit_flush(rl, 1000, s_collect, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(strlen(r.keys[0]), 127);
    ratelimit_destroy(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line_per_window),
        cmocka_unit_test(test_carried_count_and_keys),
        cmocka_unit_test(test_global_cap),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_long_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
