/*
 * test_promtext: common/promtext.c, Prometheus's text exposition format.
 *
 * Covers HELP and TYPE lines (HELP's backslash and newline escaped),
 * samples without and with labels, label values with backslash, double
 * quote and newline escaped, numbers (integers exact, fractions in their
 * shortest exact form, NaN and the infinities), a histogram's cumulative
 * _bucket lines with le after the caller's labels, +Inf, _sum and _count
 * (observations on a bound, between bounds and above the last one), and
 * promtext_take handing over the text and starting empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promtext.h"

static void test_family_and_samples(void **state)
{
    (void)state;
    promtext_t *p = promtext_new();
    promtext_family(p, "godwit_x_total", PROMTEXT_COUNTER, "Things\\done\nso far.");
    promtext_sample(p, "godwit_x_total", NULL, 42);
    promtext_sample(p, "godwit_x_total", (const char *const[]){ "type", "report", NULL }, 7);
    promtext_sample(p, "godwit_x_total",
                    (const char *const[]){ "a", "q\"uo\\te\nnl", "b", "", NULL }, 0.25);
    size_t len = 0;
    const char *t = promtext_text(p, &len);
    assert_string_equal(t, "# HELP godwit_x_total Things\\\\done\\nso far.\n"
                           "# TYPE godwit_x_total counter\n"
                           "godwit_x_total 42\n"
                           "godwit_x_total{type=\"report\"} 7\n"
                           "godwit_x_total{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"} 0.25\n");
    assert_int_equal(len, strlen(t));
    promtext_destroy(&p);
    assert_null(p);
    promtext_destroy(&p); /* NULL: harmless */
}

static void test_numbers(void **state)
{
    (void)state;
    char b[40];
    assert_string_equal(promtext_number(0, b, sizeof b), "0");
    assert_string_equal(promtext_number(-3, b, sizeof b), "-3");
    assert_string_equal(promtext_number(1e15, b, sizeof b), "1000000000000000");
    assert_string_equal(promtext_number(18446744073709551616.0, b, sizeof b),
                        "1.8446744073709552e+19");
    assert_string_equal(promtext_number(0.1, b, sizeof b), "0.1");
    assert_string_equal(promtext_number(0.005, b, sizeof b), "0.005");
    assert_string_equal(promtext_number(1.0 / 3, b, sizeof b), "0.33333333333333331");
    assert_true(strtod(promtext_number(1.0 / 3, b, sizeof b), NULL) == 1.0 / 3);
    assert_string_equal(promtext_number(NAN, b, sizeof b), "NaN");
    assert_string_equal(promtext_number(INFINITY, b, sizeof b), "+Inf");
    assert_string_equal(promtext_number(-INFINITY, b, sizeof b), "-Inf");
}

static const double s_bounds[] = { 0.01, 0.05, 0.1 };

static void test_histogram(void **state)
{
    (void)state;
    promtext_hist_t h;
    promtext_hist_init(&h, s_bounds, 3);
    promtext_hist_observe(&h, 0.01);  /* on the first bound: in it */
    promtext_hist_observe(&h, 0.07);  /* between */
    promtext_hist_observe(&h, 0.08);
    promtext_hist_observe(&h, 2.5);   /* above the last: only +Inf */
    promtext_t *p = promtext_new();
    promtext_family(p, "godwit_pause_seconds", PROMTEXT_HISTOGRAM, "Pause.");
    promtext_histogram(p, "godwit_pause_seconds", (const char *const[]){ "migration", "shop", NULL },
                       &h);
    promtext_hist_t empty;
    promtext_hist_init(&empty, s_bounds, 3);
    promtext_histogram(p, "godwit_pause_seconds", NULL, &empty);
    assert_string_equal(promtext_text(p, NULL),
                        "# HELP godwit_pause_seconds Pause.\n"
                        "# TYPE godwit_pause_seconds histogram\n"
                        "godwit_pause_seconds_bucket{migration=\"shop\",le=\"0.01\"} 1\n"
                        "godwit_pause_seconds_bucket{migration=\"shop\",le=\"0.05\"} 1\n"
                        "godwit_pause_seconds_bucket{migration=\"shop\",le=\"0.1\"} 3\n"
                        "godwit_pause_seconds_bucket{migration=\"shop\",le=\"+Inf\"} 4\n"
                        "godwit_pause_seconds_sum{migration=\"shop\"} 2.66\n"
                        "godwit_pause_seconds_count{migration=\"shop\"} 4\n"
                        "godwit_pause_seconds_bucket{le=\"0.01\"} 0\n"
                        "godwit_pause_seconds_bucket{le=\"0.05\"} 0\n"
                        "godwit_pause_seconds_bucket{le=\"0.1\"} 0\n"
                        "godwit_pause_seconds_bucket{le=\"+Inf\"} 0\n"
                        "godwit_pause_seconds_sum 0\n"
                        "godwit_pause_seconds_count 0\n");
    promtext_destroy(&p);
}

static void test_take(void **state)
{
    (void)state;
    promtext_t *p = promtext_new();
    promtext_family(p, "up_things", PROMTEXT_GAUGE, "Up.");
    /* Long enough to grow the buffer several times. */
    char value[3000];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 10; i++)
        promtext_sample(p, "up_things", (const char *const[]){ "k", value, NULL }, i);
    size_t len = 0;
    char *t = promtext_take(p, &len);
    assert_int_equal(len, strlen(t));
    assert_true(len > 10 * sizeof value);
    assert_non_null(strstr(t, "\"} 9\n"));
    free(t);
    assert_string_equal(promtext_text(p, &len), "");
    assert_int_equal(len, 0);
    promtext_family(p, "up_things", PROMTEXT_GAUGE, "Up.");
    promtext_sample(p, "up_things", NULL, 1);
    assert_string_equal(promtext_text(p, NULL), "# HELP up_things Up.\n# TYPE up_things gauge\n"
                                                "up_things 1\n");
    promtext_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
