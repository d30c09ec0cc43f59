/*
 * test_escape: common/escape.c, and common/log.c writing every message
 * through it.
 *
 * Covers plain ASCII and valid UTF-8 passing unchanged; \n \r \t and the
 * other C0 controls, DEL and ESC escaped; invalid UTF-8 (stray continuation
 * bytes, overlong forms, surrogates, truncated sequences, bytes past
 * U+10FFFF) escaped byte by byte; C1 controls, line separators and bidi
 * overrides escaped as \u{XXXX}; a cut at the end of the output buffer never
 * splitting an escape or a character; escape_needed and escape_dup; and a
 * log line with a forged newline and escape sequence written as one line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "escape.h"
#include "log.h"

static void s_check(const char *in, size_t len, const char *want)
{
    char out[512];
    size_t n = escape_text(in, len, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("escaped \"%s\", want \"%s\"", out, want);
    assert_int_equal(n, strlen(want));
}

#define CHECK(lit, want) s_check(lit, sizeof(lit) - 1, want)

static void test_plain_passes(void **state)
{
    (void)state;
    CHECK("agent db1: command 3.7 done", "agent db1: command 3.7 done");
    CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6 \xe4\xb8\xad", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6 \xe4\xb8\xad");
    CHECK("back\\slash stays", "back\\slash stays");
    CHECK("", "");
    assert_false(escape_needed("caf\xc3\xa9 ok"));
}

static void test_controls(void **state)
{
    (void)state;
    CHECK("a\nb", "a\\nb");
    CHECK("a\rb\tc", "a\\rb\\tc");
    CHECK("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    CHECK("bell\x07 del\x7f nul-less\x01", "bell\\x07 del\\x7f nul-less\\x01");
    CHECK("ok\n2030-01-01T00:00:00.000Z coordinator error: forged",
          "ok\\n2030-01-01T00:00:00.000Z coordinator error: forged");
    assert_true(escape_needed("x\ny"));
    assert_true(escape_needed("\x1b"));
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    CHECK("\x80", "\\x80");                       /* stray continuation byte */
    CHECK("\x9b" "31m", "\\x9b31m");              /* 8-bit CSI as a raw byte */
    CHECK("\xc0\xaf", "\\xc0\\xaf");              /* overlong '/' */
    CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf");     /* overlong, 3 bytes */
    CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");     /* a surrogate */
    CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    CHECK("\xf5\x80", "\\xf5\\x80");
    CHECK("ab\xe2\x82", "ab\\xe2\\x82");          /* cut short at the end */
    CHECK("\xe2\x82x", "\\xe2\\x82x");            /* cut short mid-string */
    CHECK("\xff\xfe", "\\xff\\xfe");
}

static void test_unicode_controls(void **state)
{
    (void)state;
    CHECK("\xc2\x9b" "31m", "\\u{009b}31m");      /* C1 CSI as UTF-8 */
    CHECK("\xc2\x85", "\\u{0085}");               /* NEL */
    CHECK("\xc2\xa0", "\xc2\xa0");                /* no-break space: fine */
    CHECK("a\xe2\x80\xa8" "b", "a\\u{2028}b");    /* line separator */
    CHECK("a\xe2\x80\xa9" "b", "a\\u{2029}b");
    CHECK("\xe2\x80\xae" "evil", "\\u{202e}evil"); /* right-to-left override */
    CHECK("\xe2\x81\xa6x\xe2\x81\xa9", "\\u{2066}x\\u{2069}");
    CHECK("\xe2\x80\x8f", "\\u{200f}");
    CHECK("\xe2\x80\x94", "\xe2\x80\x94");        /* an em dash: fine */
}

static void test_cut_and_dup(void **state)
{
    (void)state;
    char out[8];
    /* "ab" fits, "\x1b" (4 bytes) would not fit after "abc": cut before it. */
    size_t n = escape_text("abc\x1b", 4, out, 6);
    assert_string_equal(out, "abc");
    assert_int_equal(n, 3);
    /* A multi-byte character is never split. */
    n = escape_text("a\xe2\x82\xac", 4, out, 4);
    assert_string_equal(out, "a");
    n = escape_text("a\xe2\x82\xac", 4, out, 5);
    assert_string_equal(out, "a\xe2\x82\xac");
    assert_int_equal(escape_text("x", 1, out, 0), 0);
    n = escape_text("xyz", 3, out, 1);
    assert_string_equal(out, "");
    /* The worst case fits what escape_dup allocates. */
    char worst[64];
    for (size_t i = 0; i < sizeof worst - 1; i++)
        worst[i] = (char)(i % 2 ? 0x01 : 0xff);
    worst[sizeof worst - 1] = '\0';
    char *d = escape_dup(worst);
    assert_int_equal(strlen(d), 4 * (sizeof worst - 1));
    free(d);
    d = escape_dup("host\nforged");
    assert_string_equal(d, "host\\nforged");
    free(d);
}

static void test_log_line(void **state)
{
    (void)state;
    /* log_write's stderr, caught in a pipe. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    log_init("test", LOG_INFO);
    log_warn("agent %s: event %s", "rogue",
             "ok\n2030-01-01T00:00:00.000Z coordinator error: forged \x1b[2J\r");
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char buf[4096];
    ssize_t got = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(got > 0);
    buf[got] = '\0';
    /* One line, ending in its one newline; the forgery is inside it. */
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - buf, got - 1);
    assert_null(strchr(buf, '\x1b'));
    assert_null(strchr(buf, '\r'));
    assert_non_null(strstr(buf, " test warn: agent rogue: event ok\\n2030-01-01T00:00:00.000Z "
                                "coordinator error: forged \\x1b[2J\\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_passes),
        cmocka_unit_test(test_controls),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_unicode_controls),
        cmocka_unit_test(test_cut_and_dup),
        cmocka_unit_test(test_log_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
