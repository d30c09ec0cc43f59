/*
 * test_vwindow: agent/vwindow.c, the judgements verify draws from a window
 * of the source's changes, fed pgoutput messages built by hand:
 *   - a row's hash is SHA-256 of the text PostgreSQL prints for the row
 *     (vectors computed by a PostgreSQL 15 server);
 *   - keyed: the target's row is consistent when it is the source's row at X
 *     or a version the window gave it at the end of a transaction (an
 *     unchanged TOASTed value filled in from the version before, the
 *     source's row given for it), absent after a delete, a key change or a
 *     TRUNCATE; otherwise changed, missing or extra;
 *   - a multiset: the prefix of the window's transactions that explains the
 *     target, and the rows that differ when none does.
 * Pure functions: no files, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vwindow.h"

/* ---- building messages ---- */

static pgoutput_col_t col_t(const char *v)
{
    if (!v)
        return (pgoutput_col_t){ 'n', NULL, 0 };
    if (v == VWINDOW_UNCHANGED)
        return (pgoutput_col_t){ 'u', NULL, 0 };
    return (pgoutput_col_t){ 't', v, (uint32_t)strlen(v) };
}

/* A tuple of 3 columns (id, v, big) in a static buffer per slot. */
static pgoutput_tuple_t tup(int slot, const char *a, const char *b, const char *c)
{
    static pgoutput_col_t cols[4][3];
    cols[slot][0] = col_t(a);
    cols[slot][1] = col_t(b);
    cols[slot][2] = col_t(c);
    return (pgoutput_tuple_t){ 3, cols[slot] };
}

static void feed(vwindow_t *w, pgoutput_msg_t m)
{
    char why[256] = "";
    if (!vwindow_feed(w, &m, why, sizeof why))
        fail_msg("feed refused: %s", why);
}

static void begin(vwindow_t *w)
{
    feed(w, (pgoutput_msg_t){ .kind = 'B' });
}

static void commit(vwindow_t *w)
{
    feed(w, (pgoutput_msg_t){ .kind = 'C' });
}

static pgoutput_relcol_t s_relcols[3] = {
    { 1, "id", 23, -1 }, { 0, "v", 25, -1 }, { 0, "big", 25, -1 },
};

static void relation(vwindow_t *w, uint32_t relid, const char *name)
{
    feed(w, (pgoutput_msg_t){ .kind = 'R', .relid = relid, .nspname = "public", .relname = name,
                              .replident = 'd', .n_relcols = 3, .relcols = s_relcols });
}

static void insert(vwindow_t *w, uint32_t relid, const char *a, const char *b, const char *c)
{
    feed(w, (pgoutput_msg_t){ .kind = 'I', .relid = relid, .new_tuple = tup(0, a, b, c) });
}

static void update(vwindow_t *w, char old_kind, pgoutput_tuple_t old, pgoutput_tuple_t new)
{
    feed(w, (pgoutput_msg_t){ .kind = 'U', .relid = 10, .old_kind = old_kind, .old_tuple = old,
                              .new_tuple = new });
}

static void delete(vwindow_t *w, char old_kind, pgoutput_tuple_t old)
{
    feed(w, (pgoutput_msg_t){ .kind = 'D', .relid = 10, .old_kind = old_kind, .old_tuple = old });
}

static char *s_cols[3] = { "id", "v", "big" };

static vwindow_t *keyed(void)
{
    size_t key[1] = { 0 };
    vwindow_t *w = vwindow_new("public", "t", s_cols, 3, key, 1);
    assert_non_null(w);
    relation(w, 10, "t");
    return w;
}

static void hash3(const char *a, const char *b, const char *c, uint8_t out[VWINDOW_HASH_LEN])
{
    char *v[3] = { (char *)a, (char *)b, (char *)c };
    vwindow_row_hash(v, 3, out);
}

static char *key1(const char *id)
{
    char *v[1] = { (char *)id };
    return vwindow_key_encode(v, 1);
}

static vwindow_verdict_t judge(vwindow_t *w, const char *id, const uint8_t *src, const uint8_t *dst,
                               char *const *base)
{
    char *k = key1(id);
    vwindow_verdict_t v = VWINDOW_CHANGED;
    char why[256] = "";
    if (!vwindow_judge(w, k, src, dst, base, &v, why, sizeof why))
        fail_msg("judge refused: %s", why);
    free(k);
    return v;
}

/* ---- rows ---- */

static void hex(const uint8_t *h, char *out)
{
    for (int i = 0; i < VWINDOW_HASH_LEN; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_row_hash_vectors(void **state)
{
    (void)state;
    char out[65];
    uint8_t h[VWINDOW_HASH_LEN];
    /* SELECT encode(sha256(convert_to(ROW(1,'a b',NULL::text,'',E'q"\\','(x)',E'\t','é,')::text,
     * 'UTF8')),'hex') on PostgreSQL 15: (1,"a b",,"","q""\\","(x)","	","é,") */
    char *v1[8] = { "1", "a b", NULL, "", "q\"\\", "(x)", "\t", "\xc3\xa9," };
    vwindow_row_hash(v1, 8, h);
    hex(h, out);
    assert_string_equal(out, "71d346e86863b80d584cb21b7d1a4859b91290b6aeee241daa2b84e628e06adc");
    char *v2[1] = { "plain" };
    vwindow_row_hash(v2, 1, h);
    hex(h, out);
    assert_string_equal(out, "0a27f51e1d80329a20b42f219d3bf5084ec76a10d80ec0209967a6f34ed7b321");
    char *v3[1] = { NULL };
    vwindow_row_hash(v3, 1, h);
    hex(h, out);
    assert_string_equal(out, "2e38e77b22c314a449e91fafed92a43826ac6aa403ae6a8acb6cf58239fbaf5d");
    uint8_t back[VWINDOW_HASH_LEN];
    assert_true(vwindow_hash_parse(out, back));
    assert_memory_equal(back, h, VWINDOW_HASH_LEN);
    assert_false(vwindow_hash_parse("abc", back));
    assert_false(vwindow_hash_parse(NULL, back));
    out[5] = 'g';
    assert_false(vwindow_hash_parse(out, back));
}

static void test_key_encoding(void **state)
{
    (void)state;
    char *v[3] = { "a:b", "", "12" };
    char *enc = vwindow_key_encode(v, 3);
    assert_string_equal(enc, "3:a:b0:2:12");
    char **dec = vwindow_key_decode(enc, 3);
    assert_non_null(dec);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(dec[i], v[i]);
        free(dec[i]);
    }
    free(dec);
    free(enc);
    assert_null(vwindow_key_decode("5:ab", 1));
    assert_null(vwindow_key_decode("x", 1));
    assert_null(vwindow_key_decode("1:a", 2));
}

/* ---- keyed ---- */

static void test_keyed_versions(void **state)
{
    (void)state;
    vwindow_t *w = keyed();
    /* txn 1: row 1 updated twice (only the second is ever visible); txn 2:
     * row 1 again, its TOASTed value unchanged; row 3 deleted; row 5
     * inserted. Another table's insert in between. */
    begin(w);
    update(w, 0, (pgoutput_tuple_t){ 0 }, tup(1, "1", "mid", "B1"));
    relation(w, 11, "other");
    insert(w, 11, "1", "not ours", NULL);
    update(w, 0, (pgoutput_tuple_t){ 0 }, tup(1, "1", "one", "B1"));
    commit(w);
    begin(w);
    update(w, 0, (pgoutput_tuple_t){ 0 }, tup(1, "1", "two", VWINDOW_UNCHANGED));
    delete(w, 'K', tup(2, "3", NULL, NULL));
    insert(w, 10, "5", "five", NULL);
    commit(w);
    vwindow_seal(w);
    assert_int_equal(vwindow_changes(w), 5);
    assert_int_equal(vwindow_transactions(w), 2);
    assert_int_equal(vwindow_key_count(w), 3);

    uint8_t x1[32], one[32], two[32], mid[32], other[32];
    hash3("1", "zero", "B0", x1);  /* the source's row 1 at X */
    hash3("1", "one", "B1", one);
    hash3("1", "two", "B1", two);  /* its TOAST from the version before */
    hash3("1", "mid", "B1", mid);
    hash3("1", "tampered", "B1", other);
    assert_int_equal(judge(w, "1", x1, one, NULL), VWINDOW_CONSISTENT);
    assert_int_equal(judge(w, "1", x1, two, NULL), VWINDOW_CONSISTENT);
    assert_int_equal(judge(w, "1", x1, x1, NULL), VWINDOW_CONSISTENT);
    /* Inside a transaction: never visible on the target. */
    assert_int_equal(judge(w, "1", x1, mid, NULL), VWINDOW_CHANGED);
    assert_int_equal(judge(w, "1", x1, other, NULL), VWINDOW_CHANGED);
    assert_int_equal(judge(w, "1", x1, NULL, NULL), VWINDOW_MISSING);

    uint8_t x3[32], five[32], five_bad[32];
    hash3("3", "three", NULL, x3);
    assert_int_equal(judge(w, "3", x3, NULL, NULL), VWINDOW_CONSISTENT); /* deleted */
    assert_int_equal(judge(w, "3", x3, x3, NULL), VWINDOW_CONSISTENT);   /* not yet */
    hash3("5", "five", NULL, five);
    hash3("5", "evil", NULL, five_bad);
    assert_int_equal(judge(w, "5", NULL, five, NULL), VWINDOW_CONSISTENT);
    assert_int_equal(judge(w, "5", NULL, NULL, NULL), VWINDOW_CONSISTENT); /* not yet */
    assert_int_equal(judge(w, "5", NULL, five_bad, NULL), VWINDOW_CHANGED);

    /* Recent keys: the latest change first (5, then 3, then 1). */
    char *k5 = key1("5"), *k3 = key1("3"), *k1 = key1("1");
    assert_string_equal(vwindow_key_at(w, 0), k5);
    assert_string_equal(vwindow_key_at(w, 1), k3);
    assert_string_equal(vwindow_key_at(w, 2), k1);
    assert_null(vwindow_key_at(w, 3));
    assert_true(vwindow_has_key(w, k1));
    char *k9 = key1("9");
    assert_false(vwindow_has_key(w, k9));
    assert_false(vwindow_needs_base(w, k1)); /* its first change carries every value */
    free(k1), free(k3), free(k5), free(k9);
    vwindow_destroy(&w);
    assert_null(w);
}

static void test_keyed_toast_needs_base(void **state)
{
    (void)state;
    vwindow_t *w = keyed();
    begin(w);
    update(w, 0, (pgoutput_tuple_t){ 0 }, tup(1, "2", "new", VWINDOW_UNCHANGED));
    commit(w);
    vwindow_seal(w);
    char *k2 = key1("2");
    assert_true(vwindow_needs_base(w, k2));
    uint8_t x[32], now[32], bad_big[32];
    hash3("2", "old", "TOASTED", x);
    hash3("2", "new", "TOASTED", now);
    hash3("2", "new", "TAMPERED", bad_big);
    char *base[3] = { "2", "old", "TOASTED" };
    assert_int_equal(judge(w, "2", x, now, base), VWINDOW_CONSISTENT);
    /* A TOAST value changed on the target alone. */
    assert_int_equal(judge(w, "2", x, bad_big, base), VWINDOW_CHANGED);
    /* Without the source's row it cannot judge; with a row that is not the
     * source's it refuses. */
    vwindow_verdict_t v;
    char why[256];
    assert_false(vwindow_judge(w, k2, x, now, NULL, &v, why, sizeof why));
    char *wrong[3] = { "2", "other", "TOASTED" };
    assert_false(vwindow_judge(w, k2, x, now, wrong, &v, why, sizeof why));
    assert_non_null(strstr(why, "could not be reproduced"));
    free(k2);
    vwindow_destroy(&w);
}

static void test_keyed_key_change_and_truncate(void **state)
{
    (void)state;
    vwindow_t *w = keyed();
    begin(w);
    update(w, 'K', tup(2, "7", NULL, NULL), tup(1, "8", "moved", "b"));
    commit(w);
    vwindow_seal(w);
    uint8_t x7[32], eight[32];
    hash3("7", "moved", "b", x7);
    hash3("8", "moved", "b", eight);
    assert_int_equal(judge(w, "7", x7, NULL, NULL), VWINDOW_CONSISTENT);
    assert_int_equal(judge(w, "8", NULL, eight, NULL), VWINDOW_CONSISTENT);
    /* A row the target has that the source never had: extra. */
    assert_int_equal(judge(w, "9", NULL, eight, NULL), VWINDOW_EXTRA);
    vwindow_destroy(&w);

    w = keyed();
    begin(w);
    uint32_t rel = 10;
    feed(w, (pgoutput_msg_t){ .kind = 'T', .n_relids = 1, .relids = &rel });
    commit(w);
    vwindow_seal(w);
    uint8_t x4[32];
    hash3("4", "four", NULL, x4);
    assert_int_equal(judge(w, "4", x4, NULL, NULL), VWINDOW_CONSISTENT);
    vwindow_destroy(&w);
}

static void test_refusals(void **state)
{
    (void)state;
    char why[256] = "";
    /* A relation without one of the compared columns. */
    size_t key[1] = { 0 };
    char *cols4[4] = { "id", "v", "big", "gone" };
    vwindow_t *w = vwindow_new("public", "t", cols4, 4, key, 1);
    pgoutput_msg_t r = { .kind = 'R', .relid = 10, .nspname = "public", .relname = "t",
                         .n_relcols = 3, .relcols = s_relcols };
    assert_false(vwindow_feed(w, &r, why, sizeof why));
    assert_non_null(strstr(why, "gone"));
    vwindow_destroy(&w);
    /* A tuple that does not fit its relation. */
    w = keyed();
    static pgoutput_col_t one[1] = { { 't', "1", 1 } };
    pgoutput_msg_t ins = { .kind = 'I', .relid = 10, .new_tuple = { 1, one } };
    assert_false(vwindow_feed(w, &ins, why, sizeof why));
    vwindow_destroy(&w);
    /* Bad arguments. */
    assert_null(vwindow_new("public", "t", s_cols, 0, key, 1));
    size_t bad[1] = { 5 };
    assert_null(vwindow_new("public", "t", s_cols, 3, bad, 1));
    /* A multiset fed an update without its old row. */
    w = vwindow_new("public", "t", s_cols, 3, NULL, 0);
    relation(w, 10, "t");
    pgoutput_msg_t up = { .kind = 'U', .relid = 10, .new_tuple = tup(0, "1", "x", "y") };
    assert_false(vwindow_feed(w, &up, why, sizeof why));
    assert_non_null(strstr(why, "FULL"));
    vwindow_destroy(&w);
}

/* ---- a multiset ---- */

static void add(vwindow_bucket_t *b, const char *x, const char *y, int sign)
{
    uint8_t h[32];
    hash3(x, y, NULL, h);
    vwindow_bucket_add(b, h, sign);
}

typedef struct {
    int missing, extra;
    char last[64];
} diffs_t;

static void on_diff(vwindow_verdict_t kind, char *const *values, void *arg)
{
    diffs_t *d = arg;
    if (kind == VWINDOW_MISSING)
        d->missing++;
    else if (kind == VWINDOW_EXTRA)
        d->extra++;
    snprintf(d->last, sizeof d->last, "%s/%s", values[0], values[1]);
}

static void test_multiset(void **state)
{
    (void)state;
    vwindow_t *w = vwindow_new("public", "t", s_cols, 3, NULL, 0);
    relation(w, 10, "t");
    /* txn 1 inserts c; txn 2 deletes a; txn 3 updates b to b2. */
    begin(w);
    insert(w, 10, "c", "3", NULL);
    commit(w);
    begin(w);
    delete(w, 'O', tup(2, "a", "1", NULL));
    commit(w);
    begin(w);
    update(w, 'O', tup(2, "b", "2", NULL), tup(1, "b", "22", NULL));
    commit(w);
    vwindow_seal(w);
    assert_int_equal(vwindow_transactions(w), 3);

    vwindow_bucket_t *src = calloc(VWINDOW_BUCKETS, sizeof *src);
    vwindow_bucket_t *dst = calloc(VWINDOW_BUCKETS, sizeof *dst);
    bool mism[VWINDOW_BUCKETS];
    size_t prefix = 99;
    add(src, "a", "1", 1);
    add(src, "b", "2", 1);
    add(src, "a", "1", 1); /* a duplicate: a multiset */
    /* The target after txn 1. */
    memcpy(dst, src, VWINDOW_BUCKETS * sizeof *dst);
    add(dst, "c", "3", 1);
    assert_int_equal(vwindow_multiset_match(w, src, dst, &prefix, mism), 0);
    assert_int_equal(prefix, 1);
    /* After all three. */
    add(dst, "a", "1", -1);
    add(dst, "b", "2", -1);
    add(dst, "b", "22", 1);
    assert_int_equal(vwindow_multiset_match(w, src, dst, &prefix, mism), 0);
    assert_int_equal(prefix, 3);
    /* Before any. */
    assert_int_equal(vwindow_multiset_match(w, src, src, &prefix, mism), 0);
    assert_int_equal(prefix, 0);
    /* After txn 1, plus a row planted on the target: no prefix explains it. */
    memcpy(dst, src, VWINDOW_BUCKETS * sizeof *dst);
    add(dst, "c", "3", 1);
    add(dst, "mallory", "was here", 1);
    size_t left = vwindow_multiset_match(w, src, dst, &prefix, mism);
    assert_true(left >= 1);
    assert_int_equal(prefix, 1);
    /* The rows of the flagged buckets, read by SQL on both sides. */
    char *ra[3] = { "a", "1", NULL }, *rb[3] = { "b", "2", NULL }, *rc[3] = { "c", "3", NULL };
    char *rm[3] = { "mallory", "was here", NULL };
    vwindow_row_t s_rows[3], d_rows[5];
    char **sv[3] = { ra, rb, ra }, **dv[5] = { ra, rb, ra, rc, rm };
    for (int i = 0; i < 3; i++) {
        vwindow_row_hash(sv[i], 3, s_rows[i].hash);
        s_rows[i].values = sv[i];
    }
    for (int i = 0; i < 5; i++) {
        vwindow_row_hash(dv[i], 3, d_rows[i].hash);
        d_rows[i].values = dv[i];
    }
    diffs_t d = { 0, 0, "" };
    assert_int_equal(vwindow_multiset_diff(w, prefix, mism, s_rows, 3, d_rows, 5, on_diff, &d), 1);
    assert_int_equal(d.extra, 1);
    assert_int_equal(d.missing, 0);
    assert_string_equal(d.last, "mallory/was here");
    /* A row deleted on the target alone: missing (one of the duplicates). */
    bool all[VWINDOW_BUCKETS];
    for (int b = 0; b < VWINDOW_BUCKETS; b++)
        all[b] = true;
    d = (diffs_t){ 0, 0, "" };
    assert_int_equal(vwindow_multiset_diff(w, 1, all, s_rows, 3, d_rows + 1, 3, on_diff, &d), 1);
    assert_int_equal(d.missing, 1);
    assert_string_equal(d.last, "a/1");
    free(src);
    free(dst);
    vwindow_destroy(&w);
}

static void test_multiset_truncate(void **state)
{
    (void)state;
    vwindow_t *w = vwindow_new("public", "t", s_cols, 3, NULL, 0);
    relation(w, 10, "t");
    begin(w);
    uint32_t rel = 10;
    feed(w, (pgoutput_msg_t){ .kind = 'T', .n_relids = 1, .relids = &rel });
    insert(w, 10, "n", "1", NULL);
    commit(w);
    vwindow_seal(w);
    vwindow_bucket_t *src = calloc(VWINDOW_BUCKETS, sizeof *src);
    vwindow_bucket_t *dst = calloc(VWINDOW_BUCKETS, sizeof *dst);
    add(src, "old", "1", 1);
    add(src, "old", "2", 1);
    add(dst, "n", "1", 1);
    bool mism[VWINDOW_BUCKETS];
    size_t prefix = 0;
    assert_int_equal(vwindow_multiset_match(w, src, dst, &prefix, mism), 0);
    assert_int_equal(prefix, 1);
    free(src);
    free(dst);
    vwindow_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_hash_vectors),
        cmocka_unit_test(test_key_encoding),
        cmocka_unit_test(test_keyed_versions),
        cmocka_unit_test(test_keyed_toast_needs_base),
        cmocka_unit_test(test_keyed_key_change_and_truncate),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_multiset),
        cmocka_unit_test(test_multiset_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
