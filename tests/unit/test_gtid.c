/*
 * test_gtid: MariaDB GTID lists parsed, and the transactions one position
 * is behind another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "gtid.h"

static void test_parse(void **state)
{
    (void)state;
    gtid_t *g = NULL;
    size_t n = 0;
    assert_true(gtid_list_parse("0-1-5,1-2-3", &g, &n));
    assert_int_equal(n, 2);
    assert_int_equal(g[0].domain, 0);
    assert_int_equal(g[0].server, 1);
    assert_int_equal(g[0].seq, 5);
    assert_int_equal(g[1].domain, 1);
    assert_int_equal(g[1].seq, 3);
    free(g);
    assert_true(gtid_list_parse("", &g, &n));
    assert_null(g);
    assert_int_equal(n, 0);
    assert_true(gtid_list_parse("0-1-5,\n1-2-3", &g, &n)); /* the server's line breaks */
    assert_int_equal(n, 2);
    free(g);
    const char *bad[] = { "0-1", "0-1-x", "a-1-2", "0-1-2;", "4294967296-1-2", NULL };
    for (size_t i = 0; bad[i]; i++) {
        assert_false(gtid_list_parse(bad[i], &g, &n));
        assert_null(g);
        assert_int_equal(n, 0);
    }
}

static void test_behind(void **state)
{
    (void)state;
    assert_int_equal(gtid_behind("0-1-45", "0-1-40"), 5);
    assert_int_equal(gtid_behind("0-1-45,1-3-10", "0-1-40,1-3-8"), 7);
    assert_int_equal(gtid_behind("0-1-40", "0-1-45"), 0);   /* ahead: nothing to apply */
    assert_int_equal(gtid_behind("0-1-45", "0-2-45"), 0);   /* the domain counts, not the server */
    assert_int_equal(gtid_behind("0-1-45,1-3-1", "0-1-45"), -1);
    assert_int_equal(gtid_behind("", "0-1-3"), 0);
    assert_int_equal(gtid_behind("x", "0-1-3"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
