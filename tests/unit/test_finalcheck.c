/*
 * test_finalcheck: the cutover's final check (coordinator/finalcheck.c).
 * The questions come from a verify report's recent keys (tables without a
 * key or without recent keys, a report not equal, an old report without
 * the table's schema and name: nothing asked); the answers of both sides
 * compare by key whatever their order, and each kind of difference is
 * found with its key (changed, missing on the target, extra on the
 * target), keys whose values would run together are kept apart, and an
 * answer that does not fit its question counts as a difference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "finalcheck.h"
#include "xalloc.h"

static const char *s_report_text =
    "{\"state\": \"equal\", \"tables\": ["
    " {\"table\": \"public.hot\", \"recent\": {\"schema\": \"public\", \"name\": \"hot\","
    "   \"key_columns\": [\"id\", \"region\"], \"keys\": [[\"1\", \"0\"], [\"2\", \"1\"], [\"3\"]]}},"
    " {\"table\": \"public.keyless\", \"recent\": {\"schema\": \"public\", \"name\": \"keyless\","
    "   \"key_columns\": [], \"keys\": []}},"
    " {\"table\": \"public.quiet\", \"recent\": {\"schema\": \"public\", \"name\": \"quiet\","
    "   \"key_columns\": [\"id\"], \"keys\": []}},"
    " {\"table\": \"public.old\", \"recent\": {\"key_columns\": [\"id\"], \"keys\": [[\"1\"]]}},"
    " {\"table\": \"s.t\", \"recent\": {\"schema\": \"s\", \"name\": \"t\","
    "   \"key_columns\": [\"k\"], \"keys\": [[\"a\"], [\"b\"]]}}]}";

static Godwit__CheckedRows *s_answer(const char *schema, const char *name, size_t w, size_t n,
                                     const char *const *vals)
{
    /* vals: n rows of w key values then the md5 */
    Godwit__CheckedRows *c = xmalloc(sizeof *c);
    godwit__checked_rows__init(c);
    c->table = xmalloc(sizeof *c->table);
    godwit__table_ref__init(c->table);
    c->table->schema = xstrdup(schema);
    c->table->name = xstrdup(name);
    c->rows = n ? xcalloc(n, sizeof *c->rows) : NULL;
    for (size_t i = 0; i < n; i++) {
        Godwit__RowDigest *d = xmalloc(sizeof *d);
        godwit__row_digest__init(d);
        d->key = xcalloc(w, sizeof *d->key);
        for (size_t k = 0; k < w; k++)
            d->key[k] = xstrdup(vals[i * (w + 1) + k]);
        d->n_key = w;
        d->md5 = xstrdup(vals[i * (w + 1) + w]);
        c->rows[c->n_rows++] = d;
    }
    return c;
}

static void s_free_answers(Godwit__CheckedRows **from, Godwit__CheckedRows **to, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        godwit__checked_rows__free_unpacked(from[i], NULL);
        godwit__checked_rows__free_unpacked(to[i], NULL);
    }
}

static void test_questions(void **state)
{
    (void)state;
    cJSON *rep = cJSON_Parse(s_report_text);
    size_t n = 0;
    Godwit__CheckRows **q = finalcheck_questions_new(rep, &n);
    assert_int_equal(n, 2);
    assert_string_equal(q[0]->table->name, "hot");
    assert_int_equal(q[0]->n_key_columns, 2);
    assert_int_equal(q[0]->n_keys, 2); /* the one-value key is not a key of it */
    assert_string_equal(q[0]->keys[1]->key[1], "1");
    assert_string_equal(q[1]->table->schema, "s");
    assert_int_equal(q[1]->n_keys, 2);
    finalcheck_free(q, n);

    cJSON_ReplaceItemInObject(rep, "state", cJSON_CreateString("different"));
    assert_null(finalcheck_questions_new(rep, &n));
    assert_int_equal(n, 0);
    assert_null(finalcheck_questions_new(NULL, &n));
    cJSON_Delete(rep);
}

static void test_equal_in_any_order(void **state)
{
    (void)state;
    cJSON *rep = cJSON_Parse(s_report_text);
    size_t n = 0, diffs = 99;
    Godwit__CheckRows **q = finalcheck_questions_new(rep, &n);
    const char *a0[] = { "1", "0", "m1", "2", "1", "m2" }, *b0[] = { "2", "1", "m2", "1", "0", "m1" };
    const char *a1[] = { "a", "x" }, *b1[] = { "a", "x" }; /* b deleted on both: no row */
    Godwit__CheckedRows *from[2] = { s_answer("public", "hot", 2, 2, a0),
                                     s_answer("s", "t", 1, 1, a1) };
    Godwit__CheckedRows *to[2] = { s_answer("public", "hot", 2, 2, b0),
                                   s_answer("s", "t", 1, 1, b1) };
    cJSON *out = finalcheck_compare(q, n, from, 2, to, 2, &diffs);
    assert_int_equal(diffs, 0);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(out, "keys")), 4);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(out, "rows")), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "differences")), 0);
    char *sum = finalcheck_summary(out);
    assert_string_equal(sum, "no difference");
    free(sum);
    cJSON_Delete(out);
    s_free_answers(from, to, 2);
    finalcheck_free(q, n);
    cJSON_Delete(rep);
}

static void test_each_kind_with_its_key(void **state)
{
    (void)state;
    cJSON *rep = cJSON_Parse(s_report_text);
    size_t n = 0, diffs = 0;
    Godwit__CheckRows **q = finalcheck_questions_new(rep, &n);
    /* hot: (1,0) changed, (2,1) missing on the target; s.t: b extra. */
    const char *a0[] = { "1", "0", "m1", "2", "1", "m2" }, *b0[] = { "1", "0", "CHANGED" };
    const char *a1[] = { "a", "x" }, *b1[] = { "a", "x", "b", "y" };
    Godwit__CheckedRows *from[2] = { s_answer("public", "hot", 2, 2, a0),
                                     s_answer("s", "t", 1, 1, a1) };
    Godwit__CheckedRows *to[2] = { s_answer("public", "hot", 2, 1, b0),
                                   s_answer("s", "t", 1, 2, b1) };
    cJSON *out = finalcheck_compare(q, n, from, 2, to, 2, &diffs);
    assert_int_equal(diffs, 3);
    cJSON *list = cJSON_GetObjectItem(out, "differences");
    cJSON *d0 = cJSON_GetArrayItem(list, 0), *d1 = cJSON_GetArrayItem(list, 1),
          *d2 = cJSON_GetArrayItem(list, 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "kind")), "changed");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "table")), "public.hot");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d0, "key"), "region")), "0");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d1, "kind")),
                        "missing_on_target");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d1, "key"), "id")), "2");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d2, "kind")), "extra_on_target");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d2, "key"), "k")), "b");
    char *sum = finalcheck_summary(out);
    assert_string_equal(sum,
                        "table public.hot key {\"id\":\"1\",\"region\":\"0\"} changed (and 2 more)");
    free(sum);
    cJSON_Delete(out);
    s_free_answers(from, to, 2);
    finalcheck_free(q, n);
    cJSON_Delete(rep);
}

/* Keys ("a;", "b") and ("a", ";b") would read the same joined naively. */
static void test_keys_kept_apart(void **state)
{
    (void)state;
    cJSON *rep = cJSON_Parse("{\"state\": \"equal\", \"tables\": [{\"recent\": {\"schema\": \"p\","
                             " \"name\": \"t\", \"key_columns\": [\"x\", \"y\"],"
                             " \"keys\": [[\"a;\", \"b\"], [\"a\", \";b\"]]}}]}");
    size_t n = 0, diffs = 0;
    Godwit__CheckRows **q = finalcheck_questions_new(rep, &n);
    assert_int_equal(n, 1);
    const char *a[] = { "a;", "b", "m" }, *b[] = { "a", ";b", "m" };
    Godwit__CheckedRows *from = s_answer("p", "t", 2, 1, a), *to = s_answer("p", "t", 2, 1, b);
    cJSON *out = finalcheck_compare(q, n, &from, 1, &to, 1, &diffs);
    assert_int_equal(diffs, 2);
    cJSON_Delete(out);
    s_free_answers(&from, &to, 1);
    finalcheck_free(q, n);
    cJSON_Delete(rep);
}

static void test_unanswered(void **state)
{
    (void)state;
    cJSON *rep = cJSON_Parse(s_report_text);
    size_t n = 0, diffs = 0;
    Godwit__CheckRows **q = finalcheck_questions_new(rep, &n);
    const char *a[] = { "1", "0", "m1" };
    Godwit__CheckedRows *from[1] = { s_answer("public", "other", 2, 1, a) };
    Godwit__CheckedRows *to[1] = { s_answer("public", "hot", 2, 1, a) };
    cJSON *out = finalcheck_compare(q, n, from, 1, to, 1, &diffs);
    assert_int_equal(diffs, 2); /* hot answered for another table; s.t not at all */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(out, "differences"), 1), "kind")),
                        "unanswered");
    cJSON_Delete(out);
    s_free_answers(from, to, 1);
    finalcheck_free(q, n);
    cJSON_Delete(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_questions),
        cmocka_unit_test(test_equal_in_any_order),
        cmocka_unit_test(test_each_kind_with_its_key),
        cmocka_unit_test(test_keys_kept_apart),
        cmocka_unit_test(test_unanswered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
