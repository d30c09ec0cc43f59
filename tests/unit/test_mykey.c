/*
 * test_mykey: a MariaDB key's values as text and SQL (agent/mariadb/
 * mykey.c): the form of each DATA_TYPE, the literals (numbers bare, the
 * rest X'..' with the character set's introducer, odd hex padded, values
 * that are not of their form refused), the range of a composite key with
 * open and closed sides, and the bound and key-list texts of godwit_verify
 * and their parsing back; the literals as the copy appends them to its
 * INSERTs (mykey_literal_add). The statements these make were run against
 * MariaDB 10.11 by the verify (myverify.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mykey.h"
#include "mytext.h"

static void s_expect(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_kind(void **state)
{
    assert_int_equal(mykey_kind("int"), MYKEY_NUM);
    assert_int_equal(mykey_kind("bigint"), MYKEY_NUM);
    assert_int_equal(mykey_kind("decimal"), MYKEY_NUM);
    assert_int_equal(mykey_kind("year"), MYKEY_NUM);
    assert_int_equal(mykey_kind("double"), MYKEY_NUM);
    assert_int_equal(mykey_kind("float"), MYKEY_FLOAT);
    assert_int_equal(mykey_kind("varchar"), MYKEY_HEX);
    assert_int_equal(mykey_kind("datetime"), MYKEY_HEX);
    assert_int_equal(mykey_kind("bit"), MYKEY_HEX);
    assert_int_equal(mykey_kind(NULL), MYKEY_HEX);

    assert_true(mykey_range_type("int"));
    assert_true(mykey_range_type("decimal"));
    assert_true(mykey_range_type("varbinary"));
    assert_true(mykey_range_type("datetime"));
    assert_false(mykey_range_type("float"));
    assert_false(mykey_range_type("double"));
    assert_false(mykey_range_type("bit"));
    assert_false(mykey_range_type("enum"));
    assert_false(mykey_range_type(NULL));

    s_expect(mykey_select("`a`", MYKEY_NUM), "`a`");
    s_expect(mykey_select("`a`", MYKEY_HEX), "HEX(`a`)");
    s_expect(mykey_select("`a`", MYKEY_FLOAT), "CAST(`a` AS DOUBLE)");
}

static void test_literal(void **state)
{
    s_expect(mykey_literal("42", MYKEY_NUM, NULL), "42");
    s_expect(mykey_literal("-3.500", MYKEY_NUM, NULL), "-3.500");
    s_expect(mykey_literal("1.5e-07", MYKEY_FLOAT, NULL), "1.5e-07");
    assert_null(mykey_literal("1 OR 1=1", MYKEY_NUM, NULL));
    assert_null(mykey_literal("", MYKEY_NUM, NULL));
    assert_null(mykey_literal("e", MYKEY_NUM, NULL));
    assert_null(mykey_literal(NULL, MYKEY_NUM, NULL));

    s_expect(mykey_literal("41C3A9", MYKEY_HEX, "utf8mb4"), "_utf8mb4 X'41C3A9'");
    s_expect(mykey_literal("41c3a9", MYKEY_HEX, "latin1"), "_latin1 X'41c3a9'");
    s_expect(mykey_literal("0007", MYKEY_HEX, NULL), "X'0007'");
    s_expect(mykey_literal("0007", MYKEY_HEX, "binary"), "X'0007'");
    s_expect(mykey_literal("7", MYKEY_HEX, NULL), "X'07'");
    s_expect(mykey_literal("", MYKEY_HEX, "utf8mb4"), "_utf8mb4 X''");
    /* A character set that is not a plain name is no introducer. */
    s_expect(mykey_literal("41", MYKEY_HEX, "utf8 X'00' OR"), "X'41'");
    assert_null(mykey_literal("41'", MYKEY_HEX, NULL));
    assert_null(mykey_literal("4G", MYKEY_HEX, NULL));
    assert_null(mykey_literal(NULL, MYKEY_HEX, NULL));

    assert_true(mykey_number_text("0"));
    assert_false(mykey_number_text("0x10"));
    assert_true(mykey_hex_text(""));
    assert_false(mykey_hex_text(","));
}

/* What the copy (mycopy.c) writes a row's values with: each literal
 * appended to the INSERT being built, no character set; a value not of
 * its form appends nothing. */
static void test_literal_add(void **state)
{
    mytext_buf_t b = { 0 };
    mytext_add(&b, "(");
    assert_true(mykey_literal_add(&b, "42", MYKEY_NUM, NULL));
    mytext_add(&b, ", ");
    assert_true(mykey_literal_add(&b, "1.5e-07", MYKEY_FLOAT, NULL));
    mytext_add(&b, ", ");
    assert_true(mykey_literal_add(&b, "41C3A9", MYKEY_HEX, NULL));
    mytext_add(&b, ", ");
    assert_true(mykey_literal_add(&b, "7", MYKEY_HEX, NULL));
    mytext_add(&b, ", ");
    assert_true(mykey_literal_add(&b, "", MYKEY_HEX, NULL));
    mytext_add(&b, ", ");
    assert_true(mykey_literal_add(&b, "4142", MYKEY_HEX, "latin1"));
    size_t len = b.len;
    assert_false(mykey_literal_add(&b, "12:30", MYKEY_NUM, NULL));
    assert_false(mykey_literal_add(&b, "-", MYKEY_NUM, NULL));
    assert_false(mykey_literal_add(&b, "41'", MYKEY_HEX, "utf8mb4"));
    assert_int_equal(b.len, len);
    mytext_addn(&b, ")xyz", 1);
    assert_string_equal(b.s, "(42, 1.5e-07, X'41C3A9', X'07', X'', _latin1 X'4142')");
    free(b.s);

    assert_true(mytext_plain_name("utf8mb4_unicode_ci"));
    assert_false(mytext_plain_name("utf8 X"));
    assert_false(mytext_plain_name(""));
    assert_false(mytext_plain_name(NULL));
}

static const char *const s_cols[] = { "`a`", "`b`" };
static const mykey_kind_t s_kinds[] = { MYKEY_NUM, MYKEY_HEX };
static const char *const s_cs[] = { NULL, "utf8mb4" };

static void test_range(void **state)
{
    mykey_key_t one = { .n = 1, .cols = s_cols, .kind = s_kinds, .charset = s_cs };
    mykey_key_t two = { .n = 2, .cols = s_cols, .kind = s_kinds, .charset = s_cs };
    const char *lo1[] = { "10" }, *hi1[] = { "20" };
    const char *lo2[] = { "10", "4142" }, *hi2[] = { "20", "43" };
    char *w = NULL;

    assert_true(mykey_range_where(&one, NULL, 0, NULL, 0, &w));
    s_expect(w, "TRUE");
    assert_true(mykey_range_where(&one, lo1, 1, NULL, 0, &w));
    s_expect(w, "((`a` > 10))");
    assert_true(mykey_range_where(&one, NULL, 0, hi1, 1, &w));
    s_expect(w, "((`a` <= 20))");
    assert_true(mykey_range_where(&one, lo1, 1, hi1, 1, &w));
    s_expect(w, "((`a` > 10)) AND ((`a` <= 20))");

    assert_true(mykey_range_where(&two, lo2, 2, NULL, 0, &w));
    s_expect(w, "((`a` > 10) OR (`a` = 10 AND `b` > _utf8mb4 X'4142'))");
    assert_true(mykey_range_where(&two, NULL, 0, hi2, 2, &w));
    s_expect(w, "((`a` < 20) OR (`a` = 20 AND `b` <= _utf8mb4 X'43'))");
    assert_true(mykey_range_where(&two, lo2, 2, hi2, 2, &w));
    s_expect(w, "((`a` > 10) OR (`a` = 10 AND `b` > _utf8mb4 X'4142')) AND "
                "((`a` < 20) OR (`a` = 20 AND `b` <= _utf8mb4 X'43'))");

    /* A side with another count than the key's columns, or a value not of
     * its column's form: refused, nothing made. */
    assert_false(mykey_range_where(&two, lo1, 1, NULL, 0, &w));
    assert_null(w);
    assert_false(mykey_range_where(&one, lo2, 2, NULL, 0, &w));
    const char *bad_num[] = { "1;DROP", "41" }, *bad_hex[] = { "1", "41'" };
    assert_false(mykey_range_where(&two, bad_num, 2, NULL, 0, &w));
    assert_false(mykey_range_where(&two, NULL, 0, bad_hex, 2, &w));
    assert_null(w);

    s_expect(mykey_order_by(&two), "`a`, `b`");
}

static void test_bound_text(void **state)
{
    const char *v2[] = { "500", "53C3A931353030" }, *empty[] = { "" }, *comma[] = { "1,2" };
    char *t = NULL;
    assert_true(mykey_bound_text(v2, 2, &t));
    assert_string_equal(t, "500,53C3A931353030");
    char **back = NULL;
    assert_int_equal(mykey_bound_parse(t, &back), 2);
    assert_string_equal(back[0], "500");
    assert_string_equal(back[1], "53C3A931353030");
    mykey_strv_free(back, 2);
    free(t);

    /* Open: no text (SQL NULL), no values. */
    assert_true(mykey_bound_text(NULL, 0, &t));
    assert_null(t);
    assert_int_equal(mykey_bound_parse(NULL, &back), 0);
    assert_null(back);

    /* One empty value (HEX of '') is not open. */
    assert_true(mykey_bound_text(empty, 1, &t));
    assert_string_equal(t, "");
    assert_int_equal(mykey_bound_parse(t, &back), 1);
    assert_string_equal(back[0], "");
    mykey_strv_free(back, 1);
    free(t);

    /* Two values, the second empty. */
    assert_int_equal(mykey_bound_parse("7,", &back), 2);
    assert_string_equal(back[0], "7");
    assert_string_equal(back[1], "");
    mykey_strv_free(back, 2);

    assert_false(mykey_bound_text(comma, 1, &t));
    assert_null(t);
}

static void test_lines(void **state)
{
    char **v = NULL;
    assert_int_equal(mykey_lines(NULL, &v), 0);
    assert_null(v);
    assert_int_equal(mykey_lines("", &v), 0);
    assert_int_equal(mykey_lines("50.063\n50.125", &v), 2);
    assert_string_equal(v[0], "50.063");
    assert_string_equal(v[1], "50.125");
    mykey_strv_free(v, 2);
    assert_int_equal(mykey_lines("500,53C3", &v), 1);
    assert_string_equal(v[0], "500,53C3");
    mykey_strv_free(v, 1);
    mykey_strv_free(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind),        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_range),       cmocka_unit_test(test_bound_text),
        cmocka_unit_test(test_lines),       cmocka_unit_test(test_literal_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
