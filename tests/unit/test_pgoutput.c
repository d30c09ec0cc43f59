/*
 * test_pgoutput: agent/pgoutput.c against messages built by hand, byte by
 * byte, as PostgreSQL's "Logical Replication Message Formats" lays them out
 * (protocol version 1): every message kind parsed with its fields; every
 * prefix of a valid message, trailing bytes, unknown kinds and tags, and
 * counts larger than the bytes there are refused with a reason; and a
 * deterministic stream of random and mutated messages never crashes or
 * reads out of bounds (run under ASan). Pure functions: no files, no
 * servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgoutput.h"

/* ---- a message builder ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} msg_t;

static void put8(msg_t *m, uint8_t v) { m->b[m->n++] = v; }
static void put16(msg_t *m, uint16_t v) { put8(m, (uint8_t)(v >> 8)); put8(m, (uint8_t)v); }
static void put32(msg_t *m, uint32_t v) { put16(m, (uint16_t)(v >> 16)); put16(m, (uint16_t)v); }
static void put64(msg_t *m, uint64_t v) { put32(m, (uint32_t)(v >> 32)); put32(m, (uint32_t)v); }
static void putstr(msg_t *m, const char *s)
{
    size_t len = strlen(s) + 1;
    memcpy(m->b + m->n, s, len);
    m->n += len;
}
static void putcol(msg_t *m, const char *text) /* NULL: 'n' */
{
    if (!text) {
        put8(m, 'n');
        return;
    }
    put8(m, 't');
    put32(m, (uint32_t)strlen(text));
    memcpy(m->b + m->n, text, strlen(text));
    m->n += strlen(text);
}

static msg_t begin_msg(void)
{
    msg_t m = { .n = 0 };
    put8(&m, 'B');
    put64(&m, 0x16B3748);
    put64(&m, 777);
    put32(&m, 4242);
    return m;
}

static msg_t relation_msg(void)
{
    msg_t m = { .n = 0 };
    put8(&m, 'R');
    put32(&m, 16384);
    putstr(&m, "public");
    putstr(&m, "t");
    put8(&m, 'd');
    put16(&m, 3);
    put8(&m, 1), putstr(&m, "id"), put32(&m, 23), put32(&m, 0xFFFFFFFF);
    put8(&m, 0), putstr(&m, "v"), put32(&m, 25), put32(&m, 0xFFFFFFFF);
    put8(&m, 0), putstr(&m, "big"), put32(&m, 25), put32(&m, 0xFFFFFFFF);
    return m;
}

static msg_t update_msg(void)
{
    msg_t m = { .n = 0 };
    put8(&m, 'U');
    put32(&m, 16384);
    put8(&m, 'K');
    put16(&m, 3);
    putcol(&m, "1"), putcol(&m, NULL), putcol(&m, NULL);
    put8(&m, 'N');
    put16(&m, 3);
    putcol(&m, "2"), putcol(&m, "changed"), put8(&m, 'u');
    return m;
}

static void test_begin_commit(void **state)
{
    (void)state;
    msg_t m = begin_msg();
    pgoutput_msg_t out;
    const char *why = NULL;
    assert_true(pgoutput_parse(m.b, m.n, &out, &why));
    assert_int_equal(out.kind, 'B');
    assert_int_equal(out.lsn, 0x16B3748);
    assert_int_equal(out.timestamp, 777);
    assert_int_equal(out.xid, 4242);
    pgoutput_msg_clear(&out);

    msg_t c = { .n = 0 };
    put8(&c, 'C');
    put8(&c, 0);
    put64(&c, UINT64_C(0x100000010));
    put64(&c, UINT64_C(0x100000040));
    put64(&c, 99);
    assert_true(pgoutput_parse(c.b, c.n, &out, &why));
    assert_int_equal(out.kind, 'C');
    assert_int_equal(out.lsn, UINT64_C(0x100000010));
    assert_int_equal(out.end_lsn, UINT64_C(0x100000040));
    pgoutput_msg_clear(&out);
}

static void test_relation(void **state)
{
    (void)state;
    msg_t m = relation_msg();
    pgoutput_msg_t out;
    const char *why = NULL;
    assert_true(pgoutput_parse(m.b, m.n, &out, &why));
    assert_int_equal(out.kind, 'R');
    assert_int_equal(out.relid, 16384);
    assert_string_equal(out.nspname, "public");
    assert_string_equal(out.relname, "t");
    assert_int_equal(out.replident, 'd');
    assert_int_equal(out.n_relcols, 3);
    assert_int_equal(out.relcols[0].flags, 1);
    assert_string_equal(out.relcols[0].name, "id");
    assert_int_equal(out.relcols[0].type_oid, 23);
    assert_int_equal(out.relcols[0].typmod, -1);
    assert_string_equal(out.relcols[2].name, "big");
    pgoutput_msg_clear(&out);
}

static void test_insert_update_delete(void **state)
{
    (void)state;
    pgoutput_msg_t out;
    const char *why = NULL;

    msg_t i = { .n = 0 };
    put8(&i, 'I');
    put32(&i, 16384);
    put8(&i, 'N');
    put16(&i, 3);
    putcol(&i, "7"), putcol(&i, ""), putcol(&i, NULL);
    assert_true(pgoutput_parse(i.b, i.n, &out, &why));
    assert_int_equal(out.kind, 'I');
    assert_int_equal(out.old_kind, 0);
    assert_int_equal(out.new_tuple.n, 3);
    assert_int_equal(out.new_tuple.cols[0].kind, 't');
    assert_int_equal(out.new_tuple.cols[0].len, 1);
    assert_memory_equal(out.new_tuple.cols[0].data, "7", 1);
    assert_int_equal(out.new_tuple.cols[1].kind, 't');
    assert_int_equal(out.new_tuple.cols[1].len, 0);
    assert_int_equal(out.new_tuple.cols[2].kind, 'n');
    pgoutput_msg_clear(&out);

    msg_t u = update_msg();
    assert_true(pgoutput_parse(u.b, u.n, &out, &why));
    assert_int_equal(out.kind, 'U');
    assert_int_equal(out.old_kind, 'K');
    assert_int_equal(out.old_tuple.n, 3);
    assert_memory_equal(out.old_tuple.cols[0].data, "1", 1);
    assert_int_equal(out.new_tuple.cols[2].kind, 'u');
    assert_memory_equal(out.new_tuple.cols[1].data, "changed", 7);
    pgoutput_msg_clear(&out);

    /* An update without an old tuple: straight to 'N'. */
    msg_t u2 = { .n = 0 };
    put8(&u2, 'U');
    put32(&u2, 16384);
    put8(&u2, 'N');
    put16(&u2, 1);
    putcol(&u2, "x");
    assert_true(pgoutput_parse(u2.b, u2.n, &out, &why));
    assert_int_equal(out.old_kind, 0);
    assert_int_equal(out.new_tuple.n, 1);
    pgoutput_msg_clear(&out);

    msg_t d = { .n = 0 };
    put8(&d, 'D');
    put32(&d, 16384);
    put8(&d, 'O');
    put16(&d, 2);
    putcol(&d, "1"), putcol(&d, "v");
    assert_true(pgoutput_parse(d.b, d.n, &out, &why));
    assert_int_equal(out.kind, 'D');
    assert_int_equal(out.old_kind, 'O');
    assert_int_equal(out.old_tuple.n, 2);
    assert_int_equal(out.new_tuple.n, 0);
    pgoutput_msg_clear(&out);
}

static void test_truncate_origin_type_message(void **state)
{
    (void)state;
    pgoutput_msg_t out;
    const char *why = NULL;
    msg_t t = { .n = 0 };
    put8(&t, 'T');
    put32(&t, 2);
    put8(&t, 1);
    put32(&t, 16384), put32(&t, 16390);
    assert_true(pgoutput_parse(t.b, t.n, &out, &why));
    assert_int_equal(out.n_relids, 2);
    assert_int_equal(out.relids[1], 16390);
    assert_int_equal(out.flags, 1);
    pgoutput_msg_clear(&out);

    msg_t o = { .n = 0 };
    put8(&o, 'O');
    put64(&o, 5);
    putstr(&o, "pg_16400");
    assert_true(pgoutput_parse(o.b, o.n, &out, &why));
    assert_string_equal(out.origin, "pg_16400");
    pgoutput_msg_clear(&out);

    msg_t y = { .n = 0 };
    put8(&y, 'Y');
    put32(&y, 16500);
    putstr(&y, "public");
    putstr(&y, "mood");
    assert_true(pgoutput_parse(y.b, y.n, &out, &why));
    assert_int_equal(out.relid, 16500);
    assert_string_equal(out.relname, "mood");
    pgoutput_msg_clear(&out);

    msg_t mm = { .n = 0 };
    put8(&mm, 'M');
    put8(&mm, 1);
    put64(&mm, 9);
    putstr(&mm, "godwit");
    put32(&mm, 3);
    memcpy(mm.b + mm.n, "a\0b", 3);
    mm.n += 3;
    assert_true(pgoutput_parse(mm.b, mm.n, &out, &why));
    assert_string_equal(out.prefix, "godwit");
    assert_int_equal(out.content_len, 3);
    pgoutput_msg_clear(&out);
}

/* Every prefix of a valid message is refused with a reason, and so is the
 * message with a byte more. */
static void check_cut(const msg_t *m)
{
    pgoutput_msg_t out;
    for (size_t len = 0; len < m->n; len++) {
        const char *why = NULL;
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
        memcpy(copy, m->b, len);
        if (pgoutput_parse(len ? copy : NULL, len, &out, &why))
            fail_msg("accepted a message of kind %c cut to %zu of %zu bytes", m->b[0], len, m->n);
        assert_non_null(why);
        assert_true(why[0] != '\0');
        assert_int_equal(out.kind, 0); /* nothing left to free */
        free(copy);
    }
    uint8_t *longer = malloc(m->n + 1);
    memcpy(longer, m->b, m->n);
    longer[m->n] = 0;
    const char *why = NULL;
    assert_false(pgoutput_parse(longer, m->n + 1, &out, &why));
    assert_string_equal(why, "bytes left after the message");
    free(longer);
}

static void test_cut_and_trailing(void **state)
{
    (void)state;
    msg_t b = begin_msg(), r = relation_msg(), u = update_msg();
    check_cut(&b);
    check_cut(&r);
    check_cut(&u);
}

static void test_refusals(void **state)
{
    (void)state;
    pgoutput_msg_t out;
    const char *why = NULL;

    uint8_t unknown[] = { 'Z', 0, 0 };
    assert_false(pgoutput_parse(unknown, sizeof unknown, &out, &why));
    assert_string_equal(why, "a message of an unknown type");

    /* A tuple column of an unknown kind. */
    msg_t i = { .n = 0 };
    put8(&i, 'I');
    put32(&i, 1);
    put8(&i, 'N');
    put16(&i, 1);
    put8(&i, 'x');
    assert_false(pgoutput_parse(i.b, i.n, &out, &why));
    assert_string_equal(why, "a tuple column of an unknown kind");

    /* An insert whose tag is not 'N'. */
    msg_t i2 = { .n = 0 };
    put8(&i2, 'I');
    put32(&i2, 1);
    put8(&i2, 'K');
    put16(&i2, 0);
    assert_false(pgoutput_parse(i2.b, i2.n, &out, &why));

    /* A delete without its old key. */
    msg_t d = { .n = 0 };
    put8(&d, 'D');
    put32(&d, 1);
    put8(&d, 'N');
    put16(&d, 0);
    assert_false(pgoutput_parse(d.b, d.n, &out, &why));

    /* Counts past the bytes: no huge allocation, a refusal. */
    msg_t t = { .n = 0 };
    put8(&t, 'T');
    put32(&t, 0xFFFFFFFF);
    put8(&t, 0);
    put32(&t, 1);
    assert_false(pgoutput_parse(t.b, t.n, &out, &why));
    assert_string_equal(why, "a truncate claims more relations than there are bytes");

    msg_t tu = { .n = 0 };
    put8(&tu, 'I');
    put32(&tu, 1);
    put8(&tu, 'N');
    put16(&tu, 0xFFFF);
    put8(&tu, 'n');
    assert_false(pgoutput_parse(tu.b, tu.n, &out, &why));
    assert_string_equal(why, "a tuple claims more columns than there are bytes");

    msg_t rel = { .n = 0 };
    put8(&rel, 'R');
    put32(&rel, 1);
    putstr(&rel, "s");
    putstr(&rel, "t");
    put8(&rel, 'f');
    put16(&rel, 500);
    put8(&rel, 0);
    assert_false(pgoutput_parse(rel.b, rel.n, &out, &why));
    assert_string_equal(why, "a relation claims more columns than there are bytes");

    /* A column length past the end. */
    msg_t big = { .n = 0 };
    put8(&big, 'I');
    put32(&big, 1);
    put8(&big, 'N');
    put16(&big, 1);
    put8(&big, 't');
    put32(&big, 0x7FFFFFFF);
    put8(&big, 'a');
    assert_false(pgoutput_parse(big.b, big.n, &out, &why));
    assert_string_equal(why, "a column's value is cut off");

    /* A string without its NUL. */
    msg_t o = { .n = 0 };
    put8(&o, 'O');
    put64(&o, 1);
    put8(&o, 'x');
    assert_false(pgoutput_parse(o.b, o.n, &out, &why));
    assert_string_equal(why, "an origin's name is not terminated");

    assert_false(pgoutput_parse(NULL, 0, &out, &why));
    assert_false(pgoutput_parse(o.b, 0, &out, &why));
}

/* xorshift: the same stream every run. */
static uint64_t s_rng = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static void test_garbage(void **state)
{
    (void)state;
    msg_t seeds[3] = { relation_msg(), update_msg(), begin_msg() };
    static const char kinds[] = "BCORYIUDTM";
    for (int round = 0; round < 20000; round++) {
        size_t len;
        uint8_t *buf;
        if (round % 2) {
            /* A valid message with a few bytes flipped, cut or not. */
            const msg_t *s = &seeds[rnd() % 3];
            len = s->n - (rnd() % 2 ? rnd() % s->n : 0);
            buf = malloc(len ? len : 1);
            memcpy(buf, s->b, len);
            for (int k = 0; k < 3 && len; k++)
                buf[rnd() % len] = (uint8_t)rnd();
        } else {
            len = rnd() % 64;
            buf = malloc(len ? len : 1);
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd();
            if (len)
                buf[0] = (uint8_t)kinds[rnd() % (sizeof kinds - 1)];
        }
        pgoutput_msg_t out;
        const char *why = NULL;
        if (pgoutput_parse(buf, len, &out, &why)) {
            /* Whatever it accepted points inside the buffer. */
            for (uint16_t c = 0; c < out.new_tuple.n; c++)
                if (out.new_tuple.cols[c].data)
                    assert_true((const uint8_t *)out.new_tuple.cols[c].data +
                                    out.new_tuple.cols[c].len <= buf + len);
            pgoutput_msg_clear(&out);
        } else {
            assert_non_null(why);
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_commit),
        cmocka_unit_test(test_relation),
        cmocka_unit_test(test_insert_update_delete),
        cmocka_unit_test(test_truncate_origin_type_message),
        cmocka_unit_test(test_cut_and_trailing),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
