/*
 * test_config: common/cfg.c, the schema-driven YAML loader, and the two
 * real schemas built on it (agent/agent_config.c, coordinator/coord_config.c)
 * loading the example files in deploy/.
 *
 * Covers a good file loaded field by field (every type, nested sections),
 * every kind of error with its exact message (file, line, dotted field), the
 * caller's struct left exactly as given after a failed load (pre-filled heap
 * defaults included), and cfg_free. Lists get the same on a plan-like schema:
 * string lists, lists of mappings with a section, a string list and a list
 * inside each item, indexed error paths, count bounds and the alias limit.
 * Leaks are the sanitizer build's job: every test frees what it loaded, so
 * any leak in cfg.c shows there.
 *
 * Files: each test that needs one makes its own mkdtemp folder under /tmp and
 * removes it, also when an assertion fails (the group teardown sweeps).
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

#include "srcpath.h"

#include "agent_config.h"
#include "cfg.h"
#include "coord_config.h"
#include "log.h"
#include "xalloc.h"

/* ---- a test schema using every type ----------------------------------- */

enum { COLOR_RED = 0, COLOR_GREEN, COLOR_BLUE };
static const char *const s_colors[] = { "red", "green", "blue", NULL };

typedef struct {
    char *name;
    char *dir;
    int64_t count;
    bool enabled;
    int color;
    int64_t timeout_ms;
    int64_t limit;
    char *listen;
    int64_t any;
    struct {
        char *host;
        int64_t port;
        char *user;
        struct {
            char *mode;
            int64_t level;
        } tls;
    } db;
    struct {
        char *a;
    } opt;
    int not_in_schema; /* never touched by the loader */
} t_cfg_t;

#define F(k, t, field, req) { k, t, offsetof(t_cfg_t, field), req, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL }
#define R(k, t, field, req, lo, hi) \
    { k, t, offsetof(t_cfg_t, field), req, lo, hi, NULL, NULL, 0, NULL, NULL, NULL, NULL }

static const cfg_field_t s_tls[] = {
    F("mode", CFG_STRING, db.tls.mode, true),
    R("level", CFG_INT, db.tls.level, false, 0, 9),
    CFG_END,
};

static const cfg_field_t s_db[] = {
    F("host", CFG_STRING, db.host, false),
    R("port", CFG_INT, db.port, false, 1, 65535),
    F("user", CFG_STRING, db.user, true),
    { "tls", CFG_SECTION, 0, false, 0, 0, NULL, s_tls, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

static const cfg_field_t s_opt[] = {
    F("a", CFG_STRING, opt.a, true),
    CFG_END,
};

static const cfg_field_t s_schema[] = {
    F("name", CFG_STRING, name, true),
    F("dir", CFG_PATH, dir, false),
    R("count", CFG_INT, count, false, 1, 100),
    F("enabled", CFG_BOOL, enabled, false),
    { "color", CFG_ENUM, offsetof(t_cfg_t, color), false, 0, 0, s_colors, NULL, 0, NULL, NULL, NULL, NULL },
    R("timeout", CFG_DURATION_MS, timeout_ms, false, 100, 60000),
    R("limit", CFG_BYTES, limit, false, 4096, 64 << 20),
    F("listen", CFG_ENDPOINT, listen, false),
    F("any", CFG_INT, any, false),
    { "db", CFG_SECTION, 0, true, 0, 0, NULL, s_db, 0, NULL, NULL, NULL, NULL },
    { "opt", CFG_SECTION, 0, false, 0, 0, NULL, s_opt, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

#define KNOWN_TOP "name, dir, count, enabled, color, timeout, limit, listen, any, db, opt"

/* The smallest valid file, for tests that vary one key. */
#define MIN_DB "db:\n  user: u\n"

static void s_prefill(t_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->name = xstrdup("default-name");
    c->db.host = xstrdup("localhost");
    c->count = 7;
    c->timeout_ms = 1000;
    c->db.port = 5432;
    c->color = COLOR_GREEN;
    c->not_in_schema = 99;
}

/* Loads text into a pre-filled struct, expects failure with exactly
 * expected, and checks the struct is bit for bit as given. */
static void s_expect_error_at(const char *text, const char *expected, int line)
{
    t_cfg_t c, snap;
    char err[512] = "";
    s_prefill(&c);
    memcpy(&snap, &c, sizeof c);
    bool ok = cfg_load_string("t.yaml", text, s_schema, &c, err, sizeof err);
    if (ok) {
        cfg_free(s_schema, &c);
        fail_msg("line %d: accepted, expected: %s", line, expected);
    }
    if (strcmp(err, expected) != 0) {
        cfg_free(s_schema, &c);
        fail_msg("line %d:\n  got:      %s\n  expected: %s", line, err, expected);
    }
    assert_memory_equal(&c, &snap, sizeof c);
    assert_string_equal(c.name, "default-name");
    assert_string_equal(c.db.host, "localhost");
    cfg_free(s_schema, &c);
}
#define s_expect_error(text, expected) s_expect_error_at(text, expected, __LINE__)

/* ---- temp folders ----------------------------------------------------- */

typedef struct {
    char dir[64];
    char paths[4][128];
    int npaths;
} s_tmp_t;

static void s_tmp_init(s_tmp_t *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/godwit-test-config-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

/* Writes DIR/name with len bytes of text; returns its path (owned by t). */
static const char *s_tmp_write(s_tmp_t *t, const char *name, const char *text, size_t len)
{
    assert_true(t->npaths < 4);
    char *p = t->paths[t->npaths++];
    char full[sizeof t->paths[0]]; /* a separate buffer: p and t->dir share *t */
    snprintf(full, sizeof full, "%s/%s", t->dir, name);
    memcpy(p, full, sizeof full);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static void s_tmp_cleanup(s_tmp_t *t)
{
    for (int i = 0; i < t->npaths; i++)
        unlink(t->paths[i]);
    if (t->dir[0])
        rmdir(t->dir);
    t->dir[0] = '\0';
    t->npaths = 0;
}

/* ---- the source tree -------------------------------------------------- */

/* ---- good files ------------------------------------------------------- */

static const char s_good[] =
    "# every type\n"
    "name: alpha\n"
    "dir: /var/lib/x\n"
    "count: 42\n"
    "enabled: yes\n"
    "color: blue\n"
    "timeout: 1.5s\n"
    "limit: 10MB\n"
    "listen: tcp://[::1]:7400\n"
    "any: -5\n"
    "db:\n"
    "  host: db.example\n"
    "  port: 5433\n"
    "  user: app\n"
    "  tls:\n"
    "    mode: require\n"
    "    level: 3\n"
    "opt: {a: hello}\n";

static void s_check_good(const t_cfg_t *c)
{
    assert_string_equal(c->name, "alpha");
    assert_string_equal(c->dir, "/var/lib/x");
    assert_int_equal(c->count, 42);
    assert_true(c->enabled);
    assert_int_equal(c->color, COLOR_BLUE);
    assert_int_equal(c->timeout_ms, 1500);
    assert_int_equal(c->limit, 10 << 20);
    assert_string_equal(c->listen, "tcp://[::1]:7400");
    assert_int_equal(c->any, -5);
    assert_string_equal(c->db.host, "db.example");
    assert_int_equal(c->db.port, 5433);
    assert_string_equal(c->db.user, "app");
    assert_string_equal(c->db.tls.mode, "require");
    assert_int_equal(c->db.tls.level, 3);
    assert_string_equal(c->opt.a, "hello");
}

static void test_good_full(void **state)
{
    t_cfg_t c;
    char err[256] = "";
    memset(&c, 0, sizeof c);
    if (!cfg_load_string("t.yaml", s_good, s_schema, &c, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(err, "");
    s_check_good(&c);
    cfg_free(s_schema, &c);
}

/* Loaded strings replace (and free) the defaults; untouched fields keep
 * theirs; the field outside the schema is never written. */
static void test_good_over_defaults(void **state)
{
    t_cfg_t c;
    char err[256] = "";
    s_prefill(&c);
    assert_true(cfg_load_string("t.yaml", s_good, s_schema, &c, err, sizeof err));
    s_check_good(&c);
    assert_int_equal(c.not_in_schema, 99);
    cfg_free(s_schema, &c);

    s_prefill(&c);
    assert_true(cfg_load_string("t.yaml", "name: beta\n" MIN_DB, s_schema, &c, err, sizeof err));
    assert_string_equal(c.name, "beta");
    assert_string_equal(c.db.host, "localhost"); /* default kept */
    assert_string_equal(c.db.user, "u");
    assert_int_equal(c.count, 7);
    assert_int_equal(c.timeout_ms, 1000);
    assert_int_equal(c.db.port, 5432);
    assert_int_equal(c.color, COLOR_GREEN);
    assert_null(c.dir);
    assert_null(c.db.tls.mode); /* optional section left out: not checked */
    assert_null(c.opt.a);
    assert_int_equal(c.not_in_schema, 99);
    cfg_free(s_schema, &c);
}

static void test_good_forms(void **state)
{
    t_cfg_t c;
    char err[256] = "";
    memset(&c, 0, sizeof c);
    /* Flow style, quoted scalars, an alias, a quoted "null" as a string,
     * bool spellings, a document start marker. */
    const char *text = "---\n"
                       "{name: \"null\", enabled: Off, count: '100', listen: 'ipc:///run/x.sock',\n"
                       " db: &d {user: \"u s\", port: \"1\"}, opt: {a: ~x}}\n";
    assert_true(cfg_load_string("t.yaml", text, s_schema, &c, err, sizeof err));
    assert_string_equal(c.name, "null");
    assert_false(c.enabled);
    assert_int_equal(c.count, 100);
    assert_string_equal(c.listen, "ipc:///run/x.sock");
    assert_string_equal(c.db.user, "u s");
    assert_int_equal(c.db.port, 1);
    assert_string_equal(c.opt.a, "~x");
    cfg_free(s_schema, &c);

    static const char *const trues[] = { "true", "True", "TRUE", "yes", "Yes", "on", "ON" };
    for (size_t i = 0; i < sizeof trues / sizeof trues[0]; i++) {
        char text2[128];
        snprintf(text2, sizeof text2, "name: a\nenabled: %s\n" MIN_DB, trues[i]);
        memset(&c, 0, sizeof c);
        assert_true(cfg_load_string("t.yaml", text2, s_schema, &c, err, sizeof err));
        assert_true(c.enabled);
        cfg_free(s_schema, &c);
    }
}

static void test_endpoints(void **state)
{
    static const char *const good[] = {
        "tcp://127.0.0.1:7400", "tcp://coord.example:1", "tcp://*:65535",
        "tcp://[::1]:7400",     "tcp://[fe80::1%eth0]:80", "ipc:///run/godwit/c.sock",
        "ipc:///x",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        t_cfg_t c;
        char err[256] = "", text[256];
        memset(&c, 0, sizeof c);
        snprintf(text, sizeof text, "name: a\nlisten: '%s'\n" MIN_DB, good[i]);
        if (!cfg_load_string("t.yaml", text, s_schema, &c, err, sizeof err))
            fail_msg("refused %s: %s", good[i], err);
        assert_string_equal(c.listen, good[i]);
        cfg_free(s_schema, &c);
    }

    static const char *const bad[] = {
        "tcp://host",         "tcp://:7400",          "tcp://host:",      "tcp://host:0",
        "tcp://host:65536",   "tcp://host:123456",    "tcp://host:-1",    "tcp://host:80x",
        "tcp://::1:7400",     "tcp://[]:7400",        "tcp://[::1:7400",  "tcp://h ost:1",
        "tcp://host:1/x",     "tcp:/host:1",          "udp://host:1",     "host:7400",
        "TCP://host:1",       "ipc://",               "ipc:///",          "ipc://relative/x",
        "tcp://[[::1]]:1",    "tcp://host:+80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], expected[256];
        snprintf(text, sizeof text, "name: a\nlisten: '%s'\n" MIN_DB, bad[i]);
        snprintf(expected, sizeof expected,
                 "t.yaml:2: listen: expected tcp://HOST:PORT (PORT 1-65535) or "
                 "ipc:///absolute/path, got \"%s\"",
                 bad[i]);
        s_expect_error(text, expected);
    }

    char text[512], path[200];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    snprintf(text, sizeof text, "name: a\nlisten: ipc:///%s\n" MIN_DB, path);
    s_expect_error(text, "t.yaml:2: listen: ipc path longer than 107 bytes, too long for a "
                         "unix socket");
    s_expect_error("name: a\nlisten: ~\n" MIN_DB,
                   "t.yaml:2: listen: expected tcp://HOST:PORT (PORT 1-65535) or "
                   "ipc:///absolute/path, got null");
}

/* ---- each error ------------------------------------------------------- */

static void test_err_unknown_key(void **state)
{
    s_expect_error("name: a\ncolour: red\n" MIN_DB,
                   "t.yaml:2: colour: unknown key (known: " KNOWN_TOP ")");
    s_expect_error("name: a\ndb:\n  user: u\n  prot: 5432\n",
                   "t.yaml:4: db.prot: unknown key (known: host, port, user, tls)");
    s_expect_error("name: a\ndb:\n  user: u\n  tls:\n    mode: x\n    lvl: 1\n",
                   "t.yaml:6: db.tls.lvl: unknown key (known: mode, level)");
    /* Keys are case-sensitive and a NUL does not end them early. */
    s_expect_error("Name: a\n", "t.yaml:1: Name: unknown key (known: " KNOWN_TOP ")");
    s_expect_error("\"name\\0x\": a\n" MIN_DB,
                   "t.yaml:1: name: unknown key (known: " KNOWN_TOP ")");
    /* A key that is not a scalar. */
    s_expect_error("name: a\n? [x]\n: 1\n",
                   "t.yaml:2: expected a scalar key, got a sequence");
    s_expect_error("name: a\ndb:\n  {x: 1}: 2\n",
                   "t.yaml:3: db: expected a scalar key, got a mapping");
}

static void test_err_missing_required(void **state)
{
    /* Line of the enclosing mapping: its first key. */
    s_expect_error("dir: /x\n" MIN_DB, "t.yaml:1: name: missing required field");
    s_expect_error("# comment\n\nname: a\n", "t.yaml:3: db: missing required field");
    s_expect_error("name: a\ndb:\n  host: h\n  port: 1\n",
                   "t.yaml:3: db.user: missing required field");
    s_expect_error("name: a\ndb: {host: h}\n", "t.yaml:2: db.user: missing required field");
    s_expect_error("name: a\ndb:\n  user: u\n  tls:\n    level: 1\n",
                   "t.yaml:5: db.tls.mode: missing required field");
    /* An optional section, once given, must have its required fields. */
    s_expect_error("name: a\n" MIN_DB "opt: {}\n", "t.yaml:4: opt.a: missing required field");
    /* Keys are checked before missing fields are: first problem wins. */
    s_expect_error("db:\n  usr: u\n",
                   "t.yaml:2: db.usr: unknown key (known: host, port, user, tls)");
}

static void test_err_wrong_kind(void **state)
{
    s_expect_error("name: {a: 1}\n" MIN_DB,
                   "t.yaml:1: name: expected a non-empty string, got a mapping");
    s_expect_error("name:\n  - a\n" MIN_DB,
                   "t.yaml:2: name: expected a non-empty string, got a sequence");
    s_expect_error("name: a\ncount: [1, 2]\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got a sequence");
    s_expect_error("name: a\ndir: {x: y}\n" MIN_DB,
                   "t.yaml:2: dir: expected a non-empty path, got a mapping");
    s_expect_error("name: a\ndb: x\n", "t.yaml:2: db: expected a mapping, got \"x\"");
    s_expect_error("name: a\ndb:\n  - user\n", "t.yaml:3: db: expected a mapping, got a sequence");
    s_expect_error("name: a\ndb:\n", "t.yaml:2: db: expected a mapping, got null");
    s_expect_error("name: a\ndb:\n  user: u\n  tls: on\n",
                   "t.yaml:4: db.tls: expected a mapping, got \"on\"");
    s_expect_error("name: a\n" MIN_DB "opt: []\n", "t.yaml:4: opt: expected a mapping, got a sequence");
}

static void test_err_duplicate(void **state)
{
    s_expect_error("name: a\nname: b\n" MIN_DB, "t.yaml:2: name: duplicate key (first at line 1)");
    s_expect_error("name: a\ndb:\n  user: u\n  port: 1\n  port: 2\n",
                   "t.yaml:5: db.port: duplicate key (first at line 4)");
    s_expect_error("name: a\n" MIN_DB "db:\n  user: v\n",
                   "t.yaml:4: db: duplicate key (first at line 2)");
}

static void test_err_syntax(void **state)
{
    s_expect_error("name: a\n  b: c\n",
                   "t.yaml:2: YAML syntax error: mapping values are not allowed in this context");
    s_expect_error("name: a\ncount: [1, 2\ndb: 3\n",
                   "t.yaml:3: YAML syntax error: did not find expected ',' or ']' "
                   "(while parsing a flow sequence at line 2)");
    s_expect_error("name: a\n\tdb: x\n",
                   "t.yaml:2: YAML syntax error: found a tab character that violates indentation "
                   "(while scanning a plain scalar at line 1)");
    s_expect_error("name: a\n" MIN_DB "@x: 1\n",
                   "t.yaml:4: YAML syntax error: found character that cannot start any token "
                   "(while scanning for the next token at line 4)");
    s_expect_error("name: a\n" MIN_DB "opt: *nothing\n",
                   "t.yaml:4: YAML syntax error: found undefined alias");
    s_expect_error("name: a\nn: \"x\xff\"\n", "t.yaml:2: YAML error: invalid leading UTF-8 octet");
    /* A syntax error in a second document is still found (at the end of
     * input, line 6, where the parser ran out). */
    s_expect_error("name: a\n" MIN_DB "---\nx: [\n",
                   "t.yaml:6: YAML syntax error: did not find expected node content "
                   "(while parsing a flow node at line 6)");
}

static void test_err_top_level(void **state)
{
    s_expect_error("", "t.yaml:1: empty file, expected a mapping of settings");
    s_expect_error("# only comments\n\n", "t.yaml:1: empty file, expected a mapping of settings");
    s_expect_error("hello\n", "t.yaml:1: expected a mapping at the top level, got \"hello\"");
    s_expect_error("\n- a\n- b\n", "t.yaml:2: expected a mapping at the top level, got a sequence");
    s_expect_error("~\n", "t.yaml:1: expected a mapping at the top level, got null");
    s_expect_error("name: a\n" MIN_DB "---\nname: b\n",
                   "t.yaml:5: expected a single YAML document, found a second one");
}

/* text: PREFIX then n times UNIT then SUFFIX (malloc'd). */
static char *s_repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *t = xmalloc(lp + lu * n + ls + 1);
    memcpy(t, prefix, lp);
    for (size_t i = 0; i < n; i++)
        memcpy(t + lp + i * lu, unit, lu);
    memcpy(t + lp + lu * n, suffix, ls + 1);
    return t;
}

/* Nesting is bounded (64 levels, the top mapping included) before libyaml
 * composes anything: 200,000 nested "[" kept the loader busy for minutes
 * (libyaml walks every open flow level at each token). The error names the
 * path down to where the 65th level starts. */
static void test_err_nesting(void **state)
{
    char path[512] = "x";
    for (int i = 0; i < 63; i++)
        strcat(path, "[0]");
    char want[600];
    snprintf(want, sizeof want, "t.yaml:1: %s: nested deeper than 64 levels, refused", path);
    char *t = s_repeat("x: ", "[", 200000, "");
    s_expect_error(t, want);
    free(t);
    /* Flow mappings, and the level count: 64 is fine (the value is then
     * refused by the schema), 65 is not. */
    t = s_repeat("name: a\n" MIN_DB "any: ", "{a: ", 200000, "");
    char *apath = s_repeat("any", ".a", 63, "");
    snprintf(want, sizeof want, "t.yaml:4: %s: nested deeper than 64 levels, refused", apath);
    s_expect_error(t, want);
    free(apath);
    free(t);
    char *ok63 = s_repeat("name: ", "[", 63, "");
    char *close63 = s_repeat(ok63, "]", 63, "\n" MIN_DB);
    s_expect_error(close63, "t.yaml:1: name: expected a non-empty string, got a sequence");
    free(ok63);
    free(close63);
    char *deep64 = s_repeat("name: ", "[", 64, "");
    char *close64 = s_repeat(deep64, "]", 64, "\n" MIN_DB);
    snprintf(want, sizeof want, "t.yaml:1: name%s: nested deeper than 64 levels, refused",
             path + 1);
    s_expect_error(close64, want);
    free(deep64);
    free(close64);
    /* Block style nests by indentation: "- - - a". */
    t = s_repeat("name: a\n" MIN_DB "any:\n  ", "- ", 100000, "a\n");
    char *bpath = s_repeat("any", "[0]", 63, "");
    snprintf(want, sizeof want, "t.yaml:5: %s: nested deeper than 64 levels, refused", bpath);
    s_expect_error(t, want);
    free(bpath);
    free(t);
    /* A second document is not composed, but bounded alike. */
    t = s_repeat("name: a\n" MIN_DB "---\nx: ", "[", 200000, "");
    s_expect_error(t, "t.yaml:5: nested deeper than 64 levels, refused");
    free(t);
}

/* A string is held to the same size as a file (a plan travels as one). */
static void test_err_string_size(void **state)
{
    char *t = s_repeat("name: a\n" MIN_DB "#", "x", 1 << 20, "\n");
    s_expect_error(t, "t.yaml: larger than 1024 KiB, refused");
    free(t);
}

static void test_err_null_and_empty(void **state)
{
    s_expect_error("name: ~\n" MIN_DB, "t.yaml:1: name: expected a non-empty string, got null");
    s_expect_error("name: null\n" MIN_DB, "t.yaml:1: name: expected a non-empty string, got null");
    s_expect_error("name: NULL\n" MIN_DB, "t.yaml:1: name: expected a non-empty string, got null");
    s_expect_error("name:\n" MIN_DB, "t.yaml:1: name: expected a non-empty string, got null");
    s_expect_error("name: \"\"\n" MIN_DB, "t.yaml:1: name: expected a non-empty string, got \"\"");
    s_expect_error("name: a\ndir: ~\n" MIN_DB, "t.yaml:2: dir: expected a non-empty path, got null");
    s_expect_error("name: \"a\\0b\"\n" MIN_DB,
                   "t.yaml:1: name: expected a string without NUL bytes");
    s_expect_error("name: a\ndir: \"/a\\0b\"\n" MIN_DB,
                   "t.yaml:2: dir: expected a path without NUL bytes");
    s_expect_error("name: a\ncount: ~\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got null");
}

static void test_err_values(void **state)
{
    /* Integers. */
    s_expect_error("name: a\ncount: abc\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"abc\"");
    s_expect_error("name: a\ncount: 0\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"0\"");
    s_expect_error("name: a\ncount: 101\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"101\"");
    s_expect_error("name: a\ncount: 1.5\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"1.5\"");
    s_expect_error("name: a\ncount: 0x10\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"0x10\"");
    s_expect_error("name: a\ncount: +5\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"+5\"");
    s_expect_error("name: a\ncount: ' 5'\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \" 5\"");
    s_expect_error("name: a\nany: 9223372036854775808\n" MIN_DB,
                   "t.yaml:2: any: expected an integer, got \"9223372036854775808\"");
    s_expect_error("name: a\ndb:\n  user: u\n  port: abc\n",
                   "t.yaml:4: db.port: expected an integer from 1 to 65535, got \"abc\"");
    /* Booleans and enums. */
    s_expect_error("name: a\nenabled: maybe\n" MIN_DB,
                   "t.yaml:2: enabled: expected true or false (yes/no, on/off), got \"maybe\"");
    s_expect_error("name: a\nenabled: 1\n" MIN_DB,
                   "t.yaml:2: enabled: expected true or false (yes/no, on/off), got \"1\"");
    s_expect_error("name: a\ncolor: purple\n" MIN_DB,
                   "t.yaml:2: color: expected one of [red, green, blue], got \"purple\"");
    s_expect_error("name: a\ncolor: Red\n" MIN_DB,
                   "t.yaml:2: color: expected one of [red, green, blue], got \"Red\"");
    /* Durations: a unit is required, bounds are checked. */
    s_expect_error("name: a\ntimeout: 5\n" MIN_DB,
                   "t.yaml:2: timeout: expected a duration with a unit (ms, s, m, h) from "
                   "100ms to 1m, got \"5\"");
    s_expect_error("name: a\ntimeout: 50ms\n" MIN_DB,
                   "t.yaml:2: timeout: expected a duration with a unit (ms, s, m, h) from "
                   "100ms to 1m, got \"50ms\"");
    s_expect_error("name: a\ntimeout: 2m\n" MIN_DB,
                   "t.yaml:2: timeout: expected a duration with a unit (ms, s, m, h) from "
                   "100ms to 1m, got \"2m\"");
    s_expect_error("name: a\ntimeout: -1s\n" MIN_DB,
                   "t.yaml:2: timeout: expected a duration with a unit (ms, s, m, h) from "
                   "100ms to 1m, got \"-1s\"");
    /* Sizes. */
    s_expect_error("name: a\nlimit: 1kB\n" MIN_DB,
                   "t.yaml:2: limit: expected a size like 512, 64kB, 10MB or 1GiB from 4KiB "
                   "to 64MiB, got \"1kB\"");
    s_expect_error("name: a\nlimit: lots\n" MIN_DB,
                   "t.yaml:2: limit: expected a size like 512, 64kB, 10MB or 1GiB from 4KiB "
                   "to 64MiB, got \"lots\"");
    s_expect_error("name: a\nlimit: 65MiB\n" MIN_DB,
                   "t.yaml:2: limit: expected a size like 512, 64kB, 10MB or 1GiB from 4KiB "
                   "to 64MiB, got \"65MiB\"");
    /* A long or odd value is shortened and escaped in the message. */
    s_expect_error("name: a\ncount: \"x\\ty\\\"z\\\\\"\n" MIN_DB,
                   "t.yaml:2: count: expected an integer from 1 to 100, got \"x\\x09y\\\"z\\\\\"");
    char text[400], expected[400];
    char long_value[201];
    memset(long_value, 'v', 200);
    long_value[200] = '\0';
    snprintf(text, sizeof text, "name: a\ncount: %s\n" MIN_DB, long_value);
    snprintf(expected, sizeof expected,
             "t.yaml:2: count: expected an integer from 1 to 100, got \"%.87s...\"", long_value);
    s_expect_error(text, expected);
    /* Shortened on a UTF-8 character boundary: 43 two-byte characters fit,
     * the 44th would be cut in half. */
    char eacute[200] = "", eacute43[100] = "";
    for (int i = 0; i < 60; i++)
        strcat(eacute, "\xc3\xa9");
    for (int i = 0; i < 43; i++)
        strcat(eacute43, "\xc3\xa9");
    snprintf(text, sizeof text, "name: a\ncount: %s\n" MIN_DB, eacute);
    snprintf(expected, sizeof expected,
             "t.yaml:2: count: expected an integer from 1 to 100, got \"%s...\"", eacute43);
    s_expect_error(text, expected);
}

/* The error comes after several strings were already loaded (into the
 * scratch copy): they are freed, and the caller's struct and defaults stay
 * as given. s_expect_error checks the struct; the sanitizer build checks
 * that nothing leaked. */
static void test_err_late_leaves_struct(void **state)
{
    s_expect_error("name: replaced\n"
                   "dir: /x\n"
                   "listen: tcp://h:1\n"
                   "count: 50\n"
                   "db:\n"
                   "  host: replaced-too\n"
                   "  user: u\n"
                   "  tls: {mode: m}\n"
                   "opt: {a: b}\n"
                   "timeout: forever\n",
                   "t.yaml:10: timeout: expected a duration with a unit (ms, s, m, h) from "
                   "100ms to 1m, got \"forever\"");
    /* The same with a missing required field found last. */
    s_expect_error("name: replaced\ndb: {host: h2}\n", "t.yaml:2: db.user: missing required field");

    /* A NULL or zero-length err buffer is allowed. */
    t_cfg_t c;
    s_prefill(&c);
    assert_false(cfg_load_string("t.yaml", "name: [", s_schema, &c, NULL, 0));
    char one[1] = { 'x' };
    assert_false(cfg_load_string("t.yaml", "name: [", s_schema, &c, one, 0));
    assert_int_equal(one[0], 'x');
    assert_string_equal(c.name, "default-name");
    cfg_free(s_schema, &c);

    /* A short err buffer is truncated, not overrun. */
    char small[12];
    s_prefill(&c);
    assert_false(cfg_load_string("t.yaml", "name: a\ncolour: x\n", s_schema, &c, small, sizeof small));
    assert_string_equal(small, "t.yaml:2: c");
    cfg_free(s_schema, &c);
}

static void test_cfg_free(void **state)
{
    t_cfg_t c;
    char err[256];
    memset(&c, 0, sizeof c);
    assert_true(cfg_load_string("t.yaml", s_good, s_schema, &c, err, sizeof err));
    cfg_free(s_schema, &c);
    assert_null(c.name);
    assert_null(c.dir);
    assert_null(c.listen);
    assert_null(c.db.host);
    assert_null(c.db.user);
    assert_null(c.db.tls.mode);
    assert_null(c.opt.a);
    assert_int_equal(c.count, 42); /* only strings are touched */
    cfg_free(s_schema, &c);        /* twice is harmless */
}

/* ---- lists -------------------------------------------------------------- */

/* A plan-like schema: a list of migrations, each with a section, a string
 * list and a list of its own. Item schemas use offsets from the item's
 * start; the section inside an item too. */
typedef struct {
    char *kind;
    cfg_strings_t args;
} t_step_t;

typedef struct {
    char *name;
    struct {
        char *agent;
        int64_t port;
    } source;
    cfg_strings_t tables;
    cfg_list_t steps; /* of t_step_t */
    int64_t workers;
} t_mig_t;

typedef struct {
    char *title;
    cfg_strings_t tags;
    cfg_list_t migrations; /* of t_mig_t */
    struct {
        cfg_strings_t owners;
    } meta;
    int not_in_schema;
} t_plan_t;

static const cfg_field_t s_step[] = {
    { "kind", CFG_STRING, offsetof(t_step_t, kind), true, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "args", CFG_STRING_LIST, offsetof(t_step_t, args), false, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

static const cfg_field_t s_source[] = {
    { "agent", CFG_STRING, offsetof(t_mig_t, source.agent), true, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "port", CFG_INT, offsetof(t_mig_t, source.port), false, 1, 65535, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

static const cfg_field_t s_mig[] = {
    { "name", CFG_STRING, offsetof(t_mig_t, name), true, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "source", CFG_SECTION, 0, true, 0, 0, NULL, s_source, 0, NULL, NULL, NULL, NULL },
    { "tables", CFG_STRING_LIST, offsetof(t_mig_t, tables), true, 1, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "steps", CFG_LIST, offsetof(t_mig_t, steps), false, 0, 0, NULL, s_step, sizeof(t_step_t),
      NULL, NULL, NULL, NULL },
    { "workers", CFG_INT, offsetof(t_mig_t, workers), false, 1, 64, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

static const cfg_field_t s_meta[] = {
    { "owners", CFG_STRING_LIST, offsetof(t_plan_t, meta.owners), false, 2, 2, NULL, NULL, 0, NULL,
      NULL, NULL, NULL },
    CFG_END,
};

static const cfg_field_t s_plan[] = {
    { "title", CFG_STRING, offsetof(t_plan_t, title), false, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "tags", CFG_STRING_LIST, offsetof(t_plan_t, tags), false, 0, 3, NULL, NULL, 0, NULL, NULL, NULL, NULL },
    { "migrations", CFG_LIST, offsetof(t_plan_t, migrations), true, 1, 100, NULL, s_mig,
      sizeof(t_mig_t), NULL, NULL, NULL, NULL },
    { "meta", CFG_SECTION, 0, false, 0, 0, NULL, s_meta, 0, NULL, NULL, NULL, NULL },
    CFG_END,
};

/* The smallest valid plan, for tests that vary one key. */
#define MIN_MIGS "migrations:\n  - {name: m, source: {agent: a}, tables: [t]}\n"

static t_mig_t *s_mig_at(const t_plan_t *p, size_t i)
{
    assert_true(i < p->migrations.count);
    return &((t_mig_t *)p->migrations.items)[i];
}

static t_step_t *s_step_at(const t_mig_t *m, size_t i)
{
    assert_true(i < m->steps.count);
    return &((t_step_t *)m->steps.items)[i];
}

static void s_assert_strings(const cfg_strings_t *l, size_t n, const char *const *want)
{
    assert_int_equal(l->count, n);
    if (n == 0)
        assert_null(l->items);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->items[i], want[i]);
}

/* Heap defaults: a title and a one-tag list, as a caller would set them. */
static void s_plan_prefill(t_plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->title = xstrdup("default-title");
    p->tags.items = xmalloc(sizeof(char *));
    p->tags.items[0] = xstrdup("default-tag");
    p->tags.count = 1;
    p->not_in_schema = 99;
}

/* Loads text into a pre-filled plan, expects failure with exactly expected,
 * and checks the plan is bit for bit as given, defaults intact. */
static void s_expect_plan_error_at(const char *text, const char *expected, int line)
{
    t_plan_t p, snap;
    char err[512] = "";
    s_plan_prefill(&p);
    memcpy(&snap, &p, sizeof p);
    bool ok = cfg_load_string("plan.yaml", text, s_plan, &p, err, sizeof err);
    if (ok) {
        cfg_free(s_plan, &p);
        fail_msg("line %d: accepted, expected: %s", line, expected);
    }
    if (strcmp(err, expected) != 0) {
        cfg_free(s_plan, &p);
        fail_msg("line %d:\n  got:      %s\n  expected: %s", line, err, expected);
    }
    assert_memory_equal(&p, &snap, sizeof p);
    assert_string_equal(p.title, "default-title");
    assert_int_equal(p.tags.count, 1);
    assert_string_equal(p.tags.items[0], "default-tag");
    cfg_free(s_plan, &p);
}
#define s_expect_plan_error(text, expected) s_expect_plan_error_at(text, expected, __LINE__)

static void test_list_strings(void **state)
{
    t_plan_t p;
    char err[512] = "";

    /* Flow and block; quoted items; an alias of a whole list. */
    memset(&p, 0, sizeof p);
    const char *text = "tags: [a, 'b c', \"null\"]\n"
                       "migrations:\n"
                       "  - name: m\n"
                       "    source: {agent: a}\n"
                       "    tables: &t\n"
                       "      - public.orders\n"
                       "      - \"public.items\"\n"
                       "      - ~x\n"
                       "meta: {owners: [ann, bob]}\n";
    if (!cfg_load_string("plan.yaml", text, s_plan, &p, err, sizeof err))
        fail_msg("%s", err);
    s_assert_strings(&p.tags, 3, (const char *const[]){ "a", "b c", "null" });
    s_assert_strings(&s_mig_at(&p, 0)->tables, 3,
                     (const char *const[]){ "public.orders", "public.items", "~x" });
    s_assert_strings(&p.meta.owners, 2, (const char *const[]){ "ann", "bob" });
    cfg_free(s_plan, &p);

    /* An optional list left out, or given empty, is { NULL, 0 }. */
    memset(&p, 0, sizeof p);
    assert_true(cfg_load_string("plan.yaml", MIN_MIGS, s_plan, &p, err, sizeof err));
    s_assert_strings(&p.tags, 0, NULL);
    s_assert_strings(&p.meta.owners, 0, NULL);
    cfg_free(s_plan, &p);
    memset(&p, 0, sizeof p);
    assert_true(cfg_load_string("plan.yaml", "tags: []\n" MIN_MIGS, s_plan, &p, err, sizeof err));
    s_assert_strings(&p.tags, 0, NULL);
    cfg_free(s_plan, &p);

    /* An alias reused where the schema leads to another string list. */
    memset(&p, 0, sizeof p);
    assert_true(cfg_load_string("plan.yaml", "tags: &o [x, y]\nmeta: {owners: *o}\n" MIN_MIGS,
                                s_plan, &p, err, sizeof err));
    s_assert_strings(&p.tags, 2, (const char *const[]){ "x", "y" });
    s_assert_strings(&p.meta.owners, 2, (const char *const[]){ "x", "y" });
    assert_ptr_not_equal(p.tags.items[0], p.meta.owners.items[0]); /* each owns its copy */
    cfg_free(s_plan, &p);

    /* Over defaults: a list in the file replaces (and frees) the default
     * list whole; a list left out keeps it. */
    s_plan_prefill(&p);
    assert_true(cfg_load_string("plan.yaml", "tags: [n1, n2]\n" MIN_MIGS, s_plan, &p, err,
                                sizeof err));
    s_assert_strings(&p.tags, 2, (const char *const[]){ "n1", "n2" });
    assert_string_equal(p.title, "default-title");
    assert_int_equal(p.not_in_schema, 99);
    cfg_free(s_plan, &p);
    s_plan_prefill(&p);
    assert_true(cfg_load_string("plan.yaml", "tags: []\n" MIN_MIGS, s_plan, &p, err, sizeof err));
    s_assert_strings(&p.tags, 0, NULL);
    cfg_free(s_plan, &p);
    s_plan_prefill(&p);
    assert_true(cfg_load_string("plan.yaml", MIN_MIGS, s_plan, &p, err, sizeof err));
    s_assert_strings(&p.tags, 1, (const char *const[]){ "default-tag" });
    cfg_free(s_plan, &p);
}

static void test_list_strings_errors(void **state)
{
    /* Count bounds: at most 3, at least 1, exactly 2. */
    s_expect_plan_error("tags: [a, b, c, d]\n" MIN_MIGS,
                        "plan.yaml:1: tags: expected at most 3 items, got 4");
    s_expect_plan_error("title: x\ntags:\n  - a\n  - b\n  - c\n  - d\n" MIN_MIGS,
                        "plan.yaml:3: tags: expected at most 3 items, got 4");
    s_expect_plan_error("migrations:\n  - {name: m, source: {agent: a}, tables: []}\n",
                        "plan.yaml:2: migrations[0].tables: expected at least 1 item, got 0");
    s_expect_plan_error("meta: {owners: [a, b, c]}\n" MIN_MIGS,
                        "plan.yaml:1: meta.owners: expected exactly 2 items, got 3");
    /* A bad element: its own line and its index. */
    s_expect_plan_error("migrations:\n"
                        "  - name: m\n"
                        "    source: {agent: a}\n"
                        "    tables:\n"
                        "      - public.a\n"
                        "      - public.b\n"
                        "      - {schema: public, name: c}\n",
                        "plan.yaml:7: migrations[0].tables[2]: expected a string, got a mapping");
    s_expect_plan_error("tags: [a, [b]]\n" MIN_MIGS,
                        "plan.yaml:1: tags[1]: expected a string, got a sequence");
    s_expect_plan_error("tags:\n  - a\n  -\n  - c\n" MIN_MIGS,
                        "plan.yaml:3: tags[1]: expected a string, got null");
    s_expect_plan_error("tags: [a, ~]\n" MIN_MIGS,
                        "plan.yaml:1: tags[1]: expected a string, got null");
    s_expect_plan_error("tags: ['']\n" MIN_MIGS,
                        "plan.yaml:1: tags[0]: expected a non-empty string, got \"\"");
    s_expect_plan_error("tags: [\"a\\0b\"]\n" MIN_MIGS,
                        "plan.yaml:1: tags[0]: expected a string without NUL bytes");
    /* The wrong kind where a list is expected, and the reverse. */
    s_expect_plan_error("tags: a\n" MIN_MIGS,
                        "plan.yaml:1: tags: expected a list of strings, got \"a\"");
    s_expect_plan_error("tags: {a: 1}\n" MIN_MIGS,
                        "plan.yaml:1: tags: expected a list of strings, got a mapping");
    s_expect_plan_error("tags:\n" MIN_MIGS,
                        "plan.yaml:1: tags: expected a list of strings, got null");
    s_expect_plan_error("title: [a]\n" MIN_MIGS,
                        "plan.yaml:1: title: expected a non-empty string, got a sequence");
    s_expect_plan_error("meta: [owners]\n" MIN_MIGS,
                        "plan.yaml:1: meta: expected a mapping, got a sequence");
}

static const char s_plan_good[] =
    "title: move orders\n"
    "migrations:\n"
    "  - name: orders\n"
    "    source:\n"
    "      agent: db1\n"
    "      port: 5433\n"
    "    tables: [public.orders, public.items]\n"
    "    steps:\n"
    "      - kind: copy\n"
    "        args: [--jobs, '4']\n"
    "      - {kind: verify}\n"
    "    workers: 8\n"
    "  - name: users\n"
    "    tables:\n"
    "      - public.users\n"
    "    source: {agent: db2}\n";

static void s_check_plan_good(const t_plan_t *p)
{
    assert_string_equal(p->title, "move orders");
    assert_int_equal(p->migrations.count, 2);

    const t_mig_t *m = s_mig_at(p, 0);
    assert_string_equal(m->name, "orders");
    assert_string_equal(m->source.agent, "db1");
    assert_int_equal(m->source.port, 5433);
    s_assert_strings(&m->tables, 2, (const char *const[]){ "public.orders", "public.items" });
    assert_int_equal(m->steps.count, 2);
    assert_string_equal(s_step_at(m, 0)->kind, "copy");
    s_assert_strings(&s_step_at(m, 0)->args, 2, (const char *const[]){ "--jobs", "4" });
    assert_string_equal(s_step_at(m, 1)->kind, "verify");
    s_assert_strings(&s_step_at(m, 1)->args, 0, NULL);
    assert_int_equal(m->workers, 8);

    /* Items start zeroed: what the file leaves out is 0 / NULL. */
    m = s_mig_at(p, 1);
    assert_string_equal(m->name, "users");
    assert_string_equal(m->source.agent, "db2");
    assert_int_equal(m->source.port, 0);
    s_assert_strings(&m->tables, 1, (const char *const[]){ "public.users" });
    assert_null(m->steps.items);
    assert_int_equal(m->steps.count, 0);
    assert_int_equal(m->workers, 0);
}

static void test_list_items(void **state)
{
    t_plan_t p;
    char err[512] = "";
    memset(&p, 0, sizeof p);
    if (!cfg_load_string("plan.yaml", s_plan_good, s_plan, &p, err, sizeof err))
        fail_msg("%s", err);
    s_check_plan_good(&p);
    cfg_free(s_plan, &p);

    /* The same in flow style, over defaults; an alias to a whole item. */
    s_plan_prefill(&p);
    const char *flow = "{migrations: [{name: a, source: {agent: x}, tables: [t]},\n"
                       "              &m {name: b, source: {agent: y}, tables: [u, v],\n"
                       "                  steps: [{kind: k, args: [z]}]}, *m]}\n";
    if (!cfg_load_string("plan.yaml", flow, s_plan, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(p.migrations.count, 3);
    assert_string_equal(s_mig_at(&p, 0)->name, "a");
    assert_string_equal(s_mig_at(&p, 1)->source.agent, "y");
    assert_string_equal(s_mig_at(&p, 2)->name, "b");
    s_assert_strings(&s_mig_at(&p, 2)->tables, 2, (const char *const[]){ "u", "v" });
    s_assert_strings(&s_step_at(s_mig_at(&p, 2), 0)->args, 1, (const char *const[]){ "z" });
    assert_string_equal(p.title, "default-title");
    cfg_free(s_plan, &p);
}

static void test_list_items_errors(void **state)
{
    /* A required child missing in item 2 (index 1): the line of the mapping
     * that should hold it. */
    s_expect_plan_error("migrations:\n"
                        "  - name: a\n"
                        "    source: {agent: x}\n"
                        "    tables: [t]\n"
                        "  - name: b\n"
                        "    tables: [t]\n"
                        "    source:\n"
                        "      port: 5432\n",
                        "plan.yaml:8: migrations[1].source.agent: missing required field");
    s_expect_plan_error("migrations:\n"
                        "  - {name: a, source: {agent: x}, tables: [t]}\n"
                        "  - source: {agent: y}\n"
                        "    tables: [t]\n",
                        "plan.yaml:3: migrations[1].name: missing required field");
    /* An unknown key inside an item. */
    s_expect_plan_error("migrations:\n"
                        "  - name: a\n"
                        "    sorce: {agent: x}\n",
                        "plan.yaml:3: migrations[0].sorce: unknown key (known: name, source, "
                        "tables, steps, workers)");
    s_expect_plan_error("migrations:\n"
                        "  - name: a\n"
                        "    name: b\n",
                        "plan.yaml:3: migrations[0].name: duplicate key (first at line 2)");
    /* Count bounds: an empty list against min 1, and max. */
    s_expect_plan_error("title: t\nmigrations: []\n",
                        "plan.yaml:2: migrations: expected 1 to 100 items, got 0");
    char text[8192] = "migrations:\n";
    for (int i = 0; i < 101; i++)
        strcat(text, "  - {name: m, source: {agent: a}, tables: [t]}\n");
    s_expect_plan_error(text, "plan.yaml:2: migrations: expected 1 to 100 items, got 101");
    s_expect_plan_error("title: t\n", "plan.yaml:1: migrations: missing required field");
    /* The wrong kind: for the list, and for an item. */
    s_expect_plan_error("migrations: {name: a}\n",
                        "plan.yaml:1: migrations: expected a list of mappings, got a mapping");
    s_expect_plan_error("migrations: all\n",
                        "plan.yaml:1: migrations: expected a list of mappings, got \"all\"");
    s_expect_plan_error("migrations:\n",
                        "plan.yaml:1: migrations: expected a list of mappings, got null");
    s_expect_plan_error("migrations:\n"
                        "  - {name: a, source: {agent: x}, tables: [t]}\n"
                        "  - b\n",
                        "plan.yaml:3: migrations[1]: expected a mapping, got \"b\"");
    s_expect_plan_error("migrations: [[a]]\n",
                        "plan.yaml:1: migrations[0]: expected a mapping, got a sequence");
    s_expect_plan_error("migrations:\n  - {name: a, source: x, tables: [t]}\n",
                        "plan.yaml:2: migrations[0].source: expected a mapping, got \"x\"");
    /* A value inside an item, checked as anywhere else. */
    s_expect_plan_error("migrations:\n  - {name: a, source: {agent: x, port: 0}, tables: [t]}\n",
                        "plan.yaml:2: migrations[0].source.port: expected an integer from 1 to "
                        "65535, got \"0\"");
}

/* A list inside list items: its paths carry both indices. */
static void test_list_nested(void **state)
{
    const char *head = "migrations:\n"
                       "  - name: a\n"
                       "    source: {agent: x}\n"
                       "    tables: [t]\n"
                       "    steps:\n"
                       "      - kind: copy\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", head,
             "      - args: [x]\n");
    s_expect_plan_error(text, "plan.yaml:7: migrations[0].steps[1].kind: missing required field");
    snprintf(text, sizeof text, "%s%s", head,
             "      - kind: check\n"
             "        args: [x, [y]]\n");
    s_expect_plan_error(text,
                        "plan.yaml:8: migrations[0].steps[1].args[1]: expected a string, got a "
                        "sequence");
    snprintf(text, sizeof text, "%s%s", head,
             "      - kind: check\n"
             "        arg: [x]\n");
    s_expect_plan_error(text, "plan.yaml:8: migrations[0].steps[1].arg: unknown key (known: "
                              "kind, args)");
    snprintf(text, sizeof text, "%s%s", head, "      - copy\n");
    s_expect_plan_error(text, "plan.yaml:7: migrations[0].steps[1]: expected a mapping, got "
                              "\"copy\"");
    s_expect_plan_error("migrations:\n  - {name: a, source: {agent: x}, tables: [t], steps: x}\n",
                        "plan.yaml:2: migrations[0].steps: expected a list of mappings, got "
                        "\"x\"");

    /* Three levels load, each item owning its own copies. */
    t_plan_t p;
    char err[512] = "";
    memset(&p, 0, sizeof p);
    const char *good = "migrations:\n"
                       "  - name: a\n"
                       "    source: {agent: x}\n"
                       "    tables: [t]\n"
                       "    steps: &s\n"
                       "      - {kind: k1, args: [a1, a2]}\n"
                       "      - {kind: k2, args: [b1]}\n"
                       "  - {name: b, source: {agent: y}, tables: [u], steps: *s}\n";
    if (!cfg_load_string("plan.yaml", good, s_plan, &p, err, sizeof err))
        fail_msg("%s", err);
    for (size_t i = 0; i < 2; i++) {
        const t_mig_t *m = s_mig_at(&p, i);
        assert_int_equal(m->steps.count, 2);
        assert_string_equal(s_step_at(m, 0)->kind, "k1");
        s_assert_strings(&s_step_at(m, 0)->args, 2, (const char *const[]){ "a1", "a2" });
        assert_string_equal(s_step_at(m, 1)->kind, "k2");
        s_assert_strings(&s_step_at(m, 1)->args, 1, (const char *const[]){ "b1" });
    }
    assert_ptr_not_equal(s_step_at(s_mig_at(&p, 0), 0)->kind, s_step_at(s_mig_at(&p, 1), 0)->kind);
    cfg_free(s_plan, &p);
}

/* A failure after lists (nested ones included) were built: the plan is left
 * bit for bit as given with its default list, and nothing built stays
 * allocated (the sanitizer build checks the leaks). */
static void test_list_err_leaves_struct(void **state)
{
    s_expect_plan_error("title: replaced\n"
                        "tags: [r1, r2]\n"
                        "meta: {owners: [o1, o2]}\n"
                        "migrations:\n"
                        "  - name: a\n"
                        "    source: {agent: x}\n"
                        "    tables: [t1, t2]\n"
                        "    steps: [{kind: k, args: [a]}, {kind: l}]\n"
                        "  - name: b\n"
                        "    source: {agent: y}\n"
                        "    tables: [u]\n"
                        "    steps: [{kind: k, args: [a, b]}]\n"
                        "    workers: 65\n",
                        "plan.yaml:13: migrations[1].workers: expected an integer from 1 to 64, "
                        "got \"65\"");
    /* Failing inside an item's nested list, half way through it. */
    s_expect_plan_error("tags: [r1]\n"
                        "migrations:\n"
                        "  - {name: a, source: {agent: x}, tables: [t1]}\n"
                        "  - {name: b, source: {agent: y}, tables: [u],\n"
                        "     steps: [{kind: k, args: [a, b]}, {kind: l, args: [c, '']}]}\n",
                        "plan.yaml:5: migrations[1].steps[1].args[1]: expected a non-empty "
                        "string, got \"\"");
    /* A failure after the list, at the top level: the loaded list goes. */
    s_expect_plan_error(MIN_MIGS "tags: [a]\ntitle: ''\n",
                        "plan.yaml:4: title: expected a non-empty string, got \"\"");
    /* Missing required field found last. */
    s_expect_plan_error("tags: [a]\nmeta: {owners: [a, b]}\n",
                        "plan.yaml:1: migrations: missing required field");
}

/* Aliases cannot make a small file load millions of items: 1025 uses of a
 * 1024-item list go over the 1048576-item limit. */
static void test_list_alias_limit(void **state)
{
    size_t cap = 64 * 1024;
    char *text = xmalloc(cap);
    size_t o = (size_t)snprintf(text, cap, "migrations:\n  - {name: m, source: {agent: a}, "
                                           "tables: &t [");
    for (int i = 0; i < 1024; i++)
        o += (size_t)snprintf(text + o, cap - o, "%sx", i ? "," : "");
    o += (size_t)snprintf(text + o, cap - o, "]}\n");
    for (int i = 1; i < 1025; i++)
        o += (size_t)snprintf(text + o, cap - o, "  - {name: m, source: {agent: a}, tables: *t}\n");
    assert_true(o < cap);
    /* 1025 migrations would be refused by max 100 first: check with a
     * schema without that bound. */
    static const cfg_field_t unbounded[] = {
        { "migrations", CFG_LIST, offsetof(t_plan_t, migrations), true, 0, 0, NULL, s_mig,
          sizeof(t_mig_t), NULL, NULL, NULL, NULL },
        CFG_END,
    };
    t_plan_t p, snap;
    char err[512] = "";
    memset(&p, 0, sizeof p);
    memcpy(&snap, &p, sizeof p);
    assert_false(cfg_load_string("plan.yaml", text, unbounded, &p, err, sizeof err));
    /* Each migration is 1 + 1024 items: after 1023 of them 1048575, the
     * 1024th migration is the 1048576th item and its first table is one too
     * many. An item read through an alias has the line of the anchored
     * list. */
    assert_string_equal(err, "plan.yaml:2: migrations[1023].tables[0]: more than 1048576 "
                             "list items in the file (an alias used too often?)");
    assert_memory_equal(&p, &snap, sizeof p);
    free(text);
}

static void test_list_free(void **state)
{
    t_plan_t p;
    char err[512] = "";
    memset(&p, 0, sizeof p);
    assert_true(cfg_load_string("plan.yaml", "tags: [a]\nmeta: {owners: [a, b]}\n" MIN_MIGS,
                                s_plan, &p, err, sizeof err));
    cfg_free(s_plan, &p);
    assert_null(p.title);
    assert_null(p.tags.items);
    assert_int_equal(p.tags.count, 0);
    assert_null(p.meta.owners.items);
    assert_int_equal(p.meta.owners.count, 0);
    assert_null(p.migrations.items);
    assert_int_equal(p.migrations.count, 0);
    cfg_free(s_plan, &p); /* twice is harmless */

    memset(&p, 0, sizeof p);
    assert_true(cfg_load_string("plan.yaml", s_plan_good, s_plan, &p, err, sizeof err));
    cfg_free(s_plan, &p); /* nested lists: the sanitizer build checks nothing leaked */
    assert_null(p.migrations.items);
    assert_int_equal(p.migrations.count, 0);
}

/* Items start as a copy of the row's item_defaults: a key left out keeps
 * its default (a bool defaulting to true), a key given replaces it, item by
 * item; a failed load leaves nothing behind. */
typedef struct {
    char *name;
    bool hold;
    int64_t weight;
} t_px_t;

typedef struct {
    cfg_list_t proxies; /* of t_px_t */
} t_pxs_t;

/* A list whose items are named (unique) and a key that was retired: a
 * repeated name is refused at the repeat's line, naming the first and its
 * line; a retired key with its own message, and never listed as known. */
typedef struct {
    char *name;
    int64_t port;
} t_named_t;

typedef struct {
    cfg_list_t items; /* of t_named_t */
} t_named_list_t;

static const cfg_field_t s_named[] = {
    { .key = "name", .type = CFG_STRING, .offset = offsetof(t_named_t, name), .required = true },
    { .key = "port", .type = CFG_INT, .offset = offsetof(t_named_t, port), .min = 1, .max = 9 },
    { .key = "host", .type = CFG_RETIRED, .retired = "moved: write it in hosts.yaml" },
    CFG_END,
};

static const cfg_field_t s_named_list[] = {
    { .key = "items", .type = CFG_LIST, .offset = offsetof(t_named_list_t, items),
      .children = s_named, .item_size = sizeof(t_named_t), .unique = "name" },
    CFG_END,
};

static void test_list_unique_and_retired(void **state)
{
    (void)state;
    t_named_list_t l;
    char err[512] = "";
    memset(&l, 0, sizeof l);
    assert_true(cfg_load_string("t.yaml", "items:\n  - {name: a}\n  - {name: b, port: 2}\n",
                                s_named_list, &l, err, sizeof err));
    assert_int_equal(l.items.count, 2);
    assert_string_equal(((t_named_t *)l.items.items)[1].name, "b");
    cfg_free(s_named_list, &l);

    static const struct {
        const char *text, *want;
    } cases[] = {
        { "items:\n  - {name: a}\n  - {name: b}\n  - name: a\n    port: 3\n",
          "t.yaml:4: items[2].name: \"a\" is already items[0] (line 2)" },
        { "items:\n  - {name: a}\n  - {name: a}\n",
          "t.yaml:3: items[1].name: \"a\" is already items[0] (line 2)" },
        { "items:\n  - {name: a, host: h}\n",
          "t.yaml:2: items[0].host: moved: write it in hosts.yaml" },
        { "items:\n  - name: a\n    host: h\n    port: 1\n",
          "t.yaml:3: items[0].host: moved: write it in hosts.yaml" },
        { "items:\n  - {name: a, hots: h}\n",
          "t.yaml:2: items[0].hots: unknown key (known: name, port)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&l, 0, sizeof l);
        if (cfg_load_string("t.yaml", cases[i].text, s_named_list, &l, err, sizeof err))
            fail_msg("case %zu accepted", i);
        if (strcmp(err, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        assert_int_equal(l.items.count, 0); /* nothing left in the struct */
        assert_null(l.items.items);
    }
}

static void test_list_item_defaults(void **state)
{
    static const t_px_t defaults = { .hold = true, .weight = 7 };
    static const cfg_field_t px[] = {
        { .key = "name", .type = CFG_STRING, .offset = offsetof(t_px_t, name), .required = true },
        { .key = "hold", .type = CFG_BOOL, .offset = offsetof(t_px_t, hold) },
        { .key = "weight", .type = CFG_INT, .offset = offsetof(t_px_t, weight), .min = 0,
          .max = 100 },
        CFG_END,
    };
    static const cfg_field_t schema[] = {
        { .key = "proxies", .type = CFG_LIST, .offset = offsetof(t_pxs_t, proxies),
          .children = px, .item_size = sizeof(t_px_t), .item_defaults = &defaults },
        CFG_END,
    };
    t_pxs_t p;
    char err[512] = "";
    memset(&p, 0, sizeof p);
    if (!cfg_load_string("plan.yaml",
                         "proxies:\n  - {name: a}\n  - {name: b, hold: false}\n"
                         "  - {name: c, hold: yes, weight: 0}\n",
                         schema, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(p.proxies.count, 3);
    const t_px_t *it = p.proxies.items;
    assert_string_equal(it[0].name, "a");
    assert_true(it[0].hold);
    assert_int_equal(it[0].weight, 7);
    assert_false(it[1].hold);
    assert_int_equal(it[1].weight, 7);
    assert_true(it[2].hold);
    assert_int_equal(it[2].weight, 0);
    assert_ptr_not_equal(it[0].name, it[1].name);
    cfg_free(schema, &p);
    assert_null(p.proxies.items);

    /* A later item fails: the earlier ones, defaults and all, are freed
     * (the sanitizer build checks the leaks) and p is left as it was. */
    assert_false(cfg_load_string("plan.yaml",
                                 "proxies:\n  - {name: a}\n  - {name: b, hold: maybe}\n",
                                 schema, &p, err, sizeof err));
    assert_string_equal(err, "plan.yaml:3: proxies[1].hold: expected true or false (yes/no, "
                             "on/off), got \"maybe\"");
    assert_null(p.proxies.items);
    assert_int_equal(p.proxies.count, 0);
}

/* ---- files -------------------------------------------------------------- */

static void test_file_load(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    const char *good = s_tmp_write(t, "good.yaml", s_good, strlen(s_good));
    t_cfg_t c;
    char err[512] = "", expected[512];
    s_prefill(&c);
    assert_true(cfg_load(good, s_schema, &c, err, sizeof err));
    s_check_good(&c);
    cfg_free(s_schema, &c);

    /* The error names the path. */
    const char *bad_text = "name: a\ndb:\n  user: u\n  port: abc\n";
    const char *bad = s_tmp_write(t, "bad.yaml", bad_text, strlen(bad_text));
    s_prefill(&c);
    t_cfg_t snap = c;
    assert_false(cfg_load(bad, s_schema, &c, err, sizeof err));
    snprintf(expected, sizeof expected,
             "%s:4: db.port: expected an integer from 1 to 65535, got \"abc\"", bad);
    assert_string_equal(err, expected);
    assert_memory_equal(&c, &snap, sizeof c);

    /* Missing file, a folder: strerror and the path. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.yaml", t->dir);
    assert_false(cfg_load(missing, s_schema, &c, err, sizeof err));
    snprintf(expected, sizeof expected, "%s: cannot read: No such file or directory", missing);
    assert_string_equal(err, expected);
    assert_false(cfg_load(t->dir, s_schema, &c, err, sizeof err));
    snprintf(expected, sizeof expected, "%s: cannot read: Is a directory", t->dir);
    assert_string_equal(err, expected);
    assert_memory_equal(&c, &snap, sizeof c);

    /* Over 1 MiB: refused before parsing. Exactly 1 MiB is read. */
    size_t big_len = (size_t)1 << 20;
    char *big_text = xmalloc(big_len + 1);
    memset(big_text, '#', big_len + 1);
    memcpy(big_text, "name: a\ndb: {user: u}\n", 22);
    big_text[big_len - 1] = '\n';
    const char *fits = s_tmp_write(t, "fits.yaml", big_text, big_len);
    big_text[big_len] = '\n';
    const char *big = s_tmp_write(t, "big.yaml", big_text, big_len + 1);
    free(big_text);
    assert_false(cfg_load(big, s_schema, &c, err, sizeof err));
    snprintf(expected, sizeof expected, "%s: file is larger than 1024 KiB, refused", big);
    assert_string_equal(err, expected);
    assert_memory_equal(&c, &snap, sizeof c);
    if (!cfg_load(fits, s_schema, &c, err, sizeof err))
        fail_msg("1 MiB file refused: %s", err);
    assert_string_equal(c.name, "a");
    cfg_free(s_schema, &c);
    s_tmp_cleanup(t);
}

/* ---- the real schemas ------------------------------------------------- */

static void test_agent_example(void **state)
{
    char path[512], err[512] = "";
    srcpath(path, sizeof path, "deploy/agent.example.yaml");
    agent_config_t cfg;
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(cfg.name, "db1");
    assert_int_equal(cfg.role, AGENT_ROLE_SOURCE);
    assert_string_equal(agent_config_role_name(cfg.role), "source");
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_format, LOG_TEXT);
    assert_string_equal(cfg.jurisdiction, "eu");
    assert_string_equal(cfg.site, "fra");
    assert_string_equal(cfg.state_dir, "/var/lib/godwit/agent");
    assert_int_equal(cfg.report_interval_ms, 1000);
    assert_string_equal(cfg.coordinator.endpoint, "tcp://coordinator.example.internal:7400");
    assert_string_equal(cfg.coordinator.public_key, "/etc/godwit/keys/coordinator.pub");
    assert_string_equal(cfg.secret_key, "/etc/godwit/keys/db1.key");
    assert_true(cfg.has_postgres);
    assert_string_equal(cfg.postgres.host, "127.0.0.1");
    assert_int_equal(cfg.postgres.port, 5432);
    assert_string_equal(cfg.postgres.dbname, "postgres");
    assert_string_equal(cfg.postgres.user, "postgres");
    assert_string_equal(cfg.postgres.passfile, "/etc/godwit/pgpass");
    assert_string_equal(cfg.postgres.data_directory, "/var/lib/postgresql/16/main");
    assert_int_equal(cfg.postgres.connect_timeout_ms, 2000);
    assert_int_equal(cfg.postgres.statement_timeout_ms, 2000);
    assert_int_equal(cfg.peers.count, 1);
    const agent_peer_t *green = agent_config_peer_find(&cfg, "green-db");
    assert_non_null(green);
    assert_string_equal(green->host, "10.0.0.6");
    assert_int_equal(green->port, 5432);
    assert_string_equal(green->user, "godwit_repl");
    assert_string_equal(green->passfile, "/etc/godwit/pgpass");
    assert_string_equal(green->sslmode, "verify-full");
    agent_config_free(&cfg);
    assert_null(cfg.secret_key);
}

static void test_agent_proxy_example(void **state)
{
    char path[512], err[512] = "";
    srcpath(path, sizeof path, "deploy/agent.proxy.example.yaml");
    agent_config_t cfg;
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(cfg.role, AGENT_ROLE_PROXY);
    assert_false(cfg.has_postgres);
    assert_int_equal(cfg.proxies.count, 3);
    const agent_proxy_t *p = cfg.proxies.items;
    assert_int_equal(p[0].kind, PROXY_KIND_PGBOUNCER);
    assert_string_equal(p[0].pgbouncer.database, "app");
    assert_int_equal(p[0].pgbouncer.port, 6432);
    assert_int_equal(p[0].pause_timeout_ms, 10000);
    assert_int_equal(p[0].lease_ms, 30000);
    assert_int_equal(p[1].kind, PROXY_KIND_HAPROXY);
    assert_int_equal(p[1].on_pause_timeout, PROXY_ON_TIMEOUT_TERMINATE);
    assert_int_equal(p[1].haproxy.reload_argv.count, 3);
    assert_int_equal(p[1].lease_ms, 30000); /* default */
    assert_int_equal(p[2].kind, PROXY_KIND_NGINX);
    assert_string_equal(p[2].nginx.test_argv.items[1], "-t");
    char host[64];
    int port;
    assert_true(agent_config_split_hostport(p[2].green, host, sizeof host, &port));
    assert_string_equal(host, "10.0.0.12");
    assert_int_equal(port, 5432);
    agent_config_free(&cfg);
}

/* A proxy item is checked as a whole, with its line and field. */
static void test_agent_proxy_errors(void **state)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        { "  - {name: a, kind: nginx, blue: 'h:1', green: 'h:0',\n"
          "     nginx: {include_file: /f, test_argv: [t], reload_argv: [r], pid_file: /p}}\n",
          ":10: proxies[0].green: expected host:port, got \"h:0\"" },
        { "  - {name: a, kind: haproxy, blue: 'h:1', green: 'h:2'}\n",
          ":10: proxies[0].haproxy: missing: a proxy of kind haproxy needs this section" },
        { "  - {name: a, kind: pgbouncer, blue: 'h:1', green: 'h:2',\n"
          "     pgbouncer: {database: 'a b', include_file: /f}}\n",
          ":10: proxies[0].pgbouncer.database: expected a plain name" },
        { "  - {name: a, kind: pgbouncer, blue: 'h:1', green: 'h:2',\n"
          "     pgbouncer: {database: a, include_file: /f}}\n"
          "  - {name: a, kind: pgbouncer, blue: 'h:1', green: 'h:2',\n"
          "     pgbouncer: {database: b, include_file: /f}}\n",
          "proxies[1].name: \"a\" is already proxies[0]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048];
        int len = snprintf(text, sizeof text,
                           "role: proxy\nstate_dir: /s\nsecret_key: /k\ncoordinator:\n"
                           "  endpoint: tcp://h:1\n  public_key: /p\n\n\nproxies:\n%s",
                           cases[i].yaml);
        assert_true(len > 0 && (size_t)len < sizeof text);
        s_tmp_t t;
        s_tmp_init(&t);
        const char *path = s_tmp_write(&t, "agent.yaml", text, (size_t)len);
        agent_config_t cfg;
        char err[512] = "";
        bool ok = agent_config_load(path, &cfg, err, sizeof err);
        s_tmp_cleanup(&t);
        if (ok)
            fail_msg("case %zu loaded", i);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
    }
}

static void test_coord_example(void **state)
{
    char path[512], err[512] = "";
    srcpath(path, sizeof path, "deploy/coordinator.example.yaml");
    coord_config_t cfg;
    if (!coord_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(cfg.listen, "tcp://0.0.0.0:7400");
    assert_string_equal(cfg.secret_key, "/etc/godwit/keys/coordinator.key");
    assert_string_equal(cfg.allowed_keys, "/etc/godwit/allowed_keys");
    assert_string_equal(cfg.control_socket, "/run/godwit/coordinator.sock");
    assert_string_equal(cfg.journal, "/var/lib/godwit/coordinator/journal.db");
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_format, LOG_TEXT);
    assert_int_equal(cfg.ping_interval_ms, 1000);
    assert_int_equal(cfg.lost_after_ms, 3000);
    assert_int_equal(cfg.max_message_bytes, 1 << 20);
    assert_int_equal(cfg.handshake_timeout_ms, 5000);
    assert_int_equal(cfg.tcp_keepalive_ms, 10000);
    assert_string_equal(cfg.metrics.listen, "127.0.0.1:9187");
    assert_false(cfg.metrics.allow_remote);
    assert_int_equal(cfg.copies.per_source, 2);
    assert_int_equal(cfg.copies.per_target, 2);
    coord_config_free(&cfg);
}

/* One case of a coordinator config: the minimal one with extra appended,
 * written to the same file each time. want_error NULL: it must load, into
 * *cfg (the caller frees it), and this returns true; else it must be
 * refused with PATH:want_error, and this returns false. */
static bool s_coord_case(s_tmp_t *t, size_t i, const char *extra, const char *want_error,
                         coord_config_t *cfg)
{
    static const char base[] = "listen: tcp://127.0.0.1:7400\nsecret_key: k\nallowed_keys: a\n"
                               "control_socket: s\njournal: j\n";
    char text[512], err[512] = "", expected[640];
    snprintf(text, sizeof text, "%s%s", base, extra);
    t->npaths = 0; /* the same file each time: one path to clean up */
    const char *path = s_tmp_write(t, "coordinator.yaml", text, strlen(text));
    bool ok = coord_config_load(path, cfg, err, sizeof err);
    if (!want_error) {
        if (!ok)
            fail_msg("case %zu refused: %s", i, err);
        return true;
    }
    assert_false(ok);
    snprintf(expected, sizeof expected, "%s:%s", path, want_error);
    assert_string_equal(err, expected);
    return false;
}

/* The copy caps: 2, 2 and none per link when left out, 0 (no cap) to 1000, refused
 * outside with the line. */
static void test_coord_copies(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    struct {
        const char *copies;
        int64_t per_source, per_target, per_link; /* taken */
        const char *error;                        /* after "PATH:"; NULL: taken */
    } cases[] = {
        { "", 2, 2, 0, NULL },
        { "copies: {per_source: 4}\n", 4, 2, 0, NULL },
        { "copies: {per_source: 0, per_target: 1, per_link: 3}\n", 0, 1, 3, NULL },
        { "copies:\n  per_target: 1001\n", 0, 0, 0,
          "7: copies.per_target: expected an integer from 0 to 1000, got \"1001\"" },
        { "copies:\n  per_link: -1\n", 0, 0, 0,
          "7: copies.per_link: expected an integer from 0 to 1000, got \"-1\"" },
        { "copies: {per_sourc: 1}\n", 0, 0, 0,
          "6: copies.per_sourc: unknown key (known: per_source, per_target, per_link)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        coord_config_t cfg;
        if (!s_coord_case(t, i, cases[i].copies, cases[i].error, &cfg))
            continue;
        assert_int_equal(cfg.copies.per_source, cases[i].per_source);
        assert_int_equal(cfg.copies.per_target, cases[i].per_target);
        assert_int_equal(cfg.copies.per_link, cases[i].per_link);
        coord_config_free(&cfg);
    }
    s_tmp_cleanup(t);
}

/* The coordinator's metrics section: absent is off; a loopback address
 * (IPv4, IPv6, localhost) is taken; any other is refused at the listen
 * key's line unless allow_remote; a bad address is refused there too. */
static void test_coord_metrics(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    struct {
        const char *metrics;
        const char *listen;  /* taken: metrics.listen; NULL: refused with error */
        bool allow_remote;
        const char *error;   /* after "PATH:" */
    } cases[] = {
        { "", NULL, false, NULL },
        { "metrics: {listen: 127.0.0.1:9187}\n", "127.0.0.1:9187", false, NULL },
        { "metrics:\n  listen: \"[::1]:9187\"\n", "[::1]:9187", false, NULL },
        { "metrics: {listen: localhost:9187}\n", "localhost:9187", false, NULL },
        { "metrics: {listen: 0.0.0.0:9187, allow_remote: true}\n", "0.0.0.0:9187", true, NULL },
        { "metrics:\n  allow_remote: false\n  listen: 10.1.2.3:9187\n", NULL, false,
          "8: metrics.listen: \"10.1.2.3:9187\" is not a loopback address: the metrics endpoint "
          "has no authentication; set metrics.allow_remote: true to serve it beyond this host" },
        { "metrics:\n  listen: \"[::]:9187\"\n", NULL, false,
          "7: metrics.listen: \"[::]:9187\" is not a loopback address: the metrics endpoint "
          "has no authentication; set metrics.allow_remote: true to serve it beyond this host" },
        { "metrics:\n  listen: example.org:9187\n", NULL, false,
          "7: metrics.listen: expected an IPv4 address, [IPv6 address] or localhost before the "
          "port, got \"example.org:9187\"" },
        { "metrics:\n  listen: 127.0.0.1:0\n", NULL, false,
          "7: metrics.listen: expected HOST:PORT (PORT 1-65535), got \"127.0.0.1:0\"" },
        { "metrics: {allow_remote: true}\n", NULL, false, "6: metrics.listen: missing required field" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        coord_config_t cfg;
        if (!s_coord_case(t, i, cases[i].metrics, cases[i].error, &cfg))
            continue;
        if (cases[i].listen)
            assert_string_equal(cfg.metrics.listen, cases[i].listen);
        else
            assert_null(cfg.metrics.listen);
        assert_int_equal(cfg.metrics.allow_remote, cases[i].allow_remote);
        coord_config_free(&cfg);
    }
    s_tmp_cleanup(t);
}

/* Defaults applied by agent_config_load when the file leaves keys out; a
 * proxy agent has no postgres section. */
static void test_agent_minimal(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    const char *text = "role: proxy\n"
                       "state_dir: /var/lib/godwit/agent\n"
                       "coordinator:\n"
                       "  endpoint: tcp://10.0.0.1:7400\n"
                       "  public_key: /etc/godwit/keys/coordinator.pub\n"
                       "secret_key: /etc/godwit/keys/haproxy1.key\n";
    const char *path = s_tmp_write(t, "agent.yaml", text, strlen(text));
    agent_config_t cfg;
    char err[512] = "";
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(cfg.role, AGENT_ROLE_PROXY);
    assert_null(cfg.name);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.report_interval_ms, 1000);
    assert_false(cfg.has_postgres);
    assert_int_equal(cfg.postgres.port, 5432);
    agent_config_free(&cfg);
    s_tmp_cleanup(t);
}

/* postgres.standby (method: physical): its argv lists, and a missing
 * required command named with file, line and field. */
static void test_agent_standby(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    const char *head = "role: target\n"
                       "state_dir: /s\n"
                       "coordinator: {endpoint: 'tcp://h:1', public_key: /p}\n"
                       "secret_key: /k\n"
                       "postgres:\n"
                       "  data_directory: /d\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", head,
             "  standby:\n"
             "    data_directory: /var/lib/pg/green\n"
             "    run_as: [runuser, -u, postgres, --]\n"
             "    start: [pg_ctl, -D, /var/lib/pg/green, -w, start]\n"
             "    stop: [pg_ctl, -D, /var/lib/pg/green, -m, fast, -w, stop]\n");
    const char *path = s_tmp_write(t, "agent.yaml", text, strlen(text));
    agent_config_t cfg;
    char err[512] = "";
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_true(cfg.postgres.has_standby);
    assert_string_equal(cfg.postgres.standby.data_directory, "/var/lib/pg/green");
    assert_int_equal(cfg.postgres.standby.run_as.count, 4);
    assert_string_equal(cfg.postgres.standby.run_as.items[3], "--");
    assert_int_equal(cfg.postgres.standby.start.count, 5);
    assert_string_equal(cfg.postgres.standby.stop.items[6], "stop");
    agent_config_free(&cfg);

    /* Left out: not a physical target. */
    path = s_tmp_write(t, "plain.yaml", head, strlen(head));
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_false(cfg.postgres.has_standby);
    agent_config_free(&cfg);

    snprintf(text, sizeof text, "%s%s", head,
             "  standby:\n"
             "    data_directory: /g\n"
             "    start: [pg_ctl, start]\n");
    path = s_tmp_write(t, "nostop.yaml", text, strlen(text));
    assert_false(agent_config_load(path, &cfg, err, sizeof err));
    if (!strstr(err, "postgres.standby.stop: missing required field"))
        fail_msg("got \"%s\"", err);
    s_tmp_cleanup(t);
}

static void s_expect_agent_error(s_tmp_t *t, const char *file, const char *text,
                                 const char *msg_after_path)
{
    const char *path = s_tmp_write(t, file, text, strlen(text));
    agent_config_t cfg;
    char err[512] = "", expected[512];
    assert_false(agent_config_load(path, &cfg, err, sizeof err));
    snprintf(expected, sizeof expected, "%s%s", path, msg_after_path);
    assert_string_equal(err, expected);
    /* Nothing to free after a failure. */
    assert_null(cfg.name);
    assert_null(cfg.state_dir);
    assert_null(cfg.coordinator.endpoint);
    assert_null(cfg.coordinator.public_key);
    assert_null(cfg.secret_key);
    assert_null(cfg.postgres.host);
    assert_null(cfg.postgres.data_directory);
    assert_null(cfg.mariadb.user);
    assert_null(cfg.mariadb.host);
}

static void test_agent_wrong(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    s_expect_agent_error(t, "typo.yaml",
                         "name: db1\n"
                         "role: source\n"
                         "coordinatr:\n"
                         "  endpoint: tcp://10.0.0.1:7400\n"
                         "  public_key: /etc/godwit/keys/coordinator.pub\n"
                         "state_dir: /var/lib/godwit/agent\n"
                         "secret_key: /etc/godwit/keys/db1.key\n",
                         ":3: coordinatr: unknown key (known: name, role, log_level, log_format, "
                         "jurisdiction, site, state_dir, report_interval, coordinator, secret_key, postgres, mariadb, "
                         "proxies, peers)");
    s_expect_agent_error(t, "agent.yaml",
                         "name: db1\n"
                         "role: source\n"
                         "state_dir: /var/lib/godwit/agent\n"
                         "secret_key: /etc/godwit/keys/db1.key\n"
                         "postgres:\n"
                         "  data_directory: /var/lib/postgresql/16/main\n"
                         "  port: abc\n"
                         "coordinator:\n"
                         "  endpoint: tcp://10.0.0.1:7400\n"
                         "  public_key: /etc/godwit/keys/coordinator.pub\n",
                         ":7: postgres.port: expected an integer from 1 to 65535, got \"abc\"");
    s_expect_agent_error(t, "nocoord.yaml",
                         "role: target\n"
                         "state_dir: /var/lib/godwit/agent\n"
                         "secret_key: /etc/godwit/keys/db2.key\n",
                         ":1: coordinator: missing required field");
    s_expect_agent_error(t, "role.yaml",
                         "role: primary\n",
                         ":1: role: expected one of [source, target, proxy], got \"primary\"");
    s_tmp_cleanup(t); /* a fresh folder: it holds four files at most */
    s_tmp_init(t);
    s_expect_agent_error(t, "format.yaml",
                         "role: target\n"
                         "log_format: json\n",
                         ":2: log_format: expected one of [text, journal], got \"json\"");
    s_expect_agent_error(t, "jurisdiction.yaml",
                         "role: target\n"
                         "jurisdiction: EU West\n",
                         ":2: jurisdiction: expected a label of 1 to 32 of a-z, 0-9, _ and -, "
                         "got \"EU West\"");
    s_tmp_cleanup(t);
}

/* The peers list: the servers of the other side an agent may reach, by
 * name; port defaults to 5432; each problem refused with file, line and
 * field, a repeated name with the first one's line. */
static void test_agent_peers(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    static const char head[] = "role: target\n"
                               "state_dir: /var/lib/godwit/agent\n"
                               "secret_key: /etc/godwit/keys/green.key\n"
                               "coordinator: {endpoint: \"tcp://10.0.0.1:7400\", public_key: c.pub}\n";
    char text[2048];
    snprintf(text, sizeof text,
             "%speers:\n"
             "  - name: blue\n"
             "    host: 10.0.0.5\n"
             "    user: godwit_repl\n"
             "    passfile: /etc/godwit/pgpass\n"
             "  - {name: blue.tls, host: db.example.internal, port: 6432, user: r,"
             " sslmode: verify-full}\n",
             head);
    const char *path = s_tmp_write(t, "peers.yaml", text, strlen(text));
    agent_config_t cfg;
    char err[512] = "";
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(cfg.path, path);
    assert_int_equal(cfg.peers.count, 2);
    const agent_peer_t *blue = agent_config_peer_find(&cfg, "blue");
    assert_non_null(blue);
    assert_string_equal(blue->host, "10.0.0.5");
    assert_int_equal(blue->port, 5432);
    assert_string_equal(blue->user, "godwit_repl");
    assert_string_equal(blue->passfile, "/etc/godwit/pgpass");
    assert_null(blue->sslmode);
    const agent_peer_t *tls = agent_config_peer_find(&cfg, "blue.tls");
    assert_non_null(tls);
    assert_int_equal(tls->port, 6432);
    assert_string_equal(tls->sslmode, "verify-full");
    assert_null(tls->passfile);
    assert_null(agent_config_peer_find(&cfg, "green"));
    assert_null(agent_config_peer_find(&cfg, NULL));
    agent_config_free(&cfg);
    assert_null(cfg.path);

    static const struct {
        const char *peers, *want;
    } cases[] = {
        { "peers:\n  - {name: a, host: h, user: u}\n  - {name: b, host: h, user: u}\n"
          "  - {name: a, host: h2, user: u}\n",
          ":8: peers[2].name: \"a\" is already peers[0] (line 6)" },
        { "peers:\n  - {name: a, host: h, user: u, adress: x}\n",
          ":6: peers[0].adress: unknown key (known: name, host, port, user, sslmode, passfile, "
          "password_file)" },
        { "peers:\n  - {name: a, host: h, user: u, passfile: /p, password_file: /q}\n",
          ":6: peers[0].password_file: give passfile (a PostgreSQL peer) or password_file (a "
          "MariaDB peer), not both" },
        { "peers:\n  - {name: a, user: u}\n", ":6: peers[0].host: missing required field" },
        { "peers:\n  - {name: a, host: h}\n", ":6: peers[0].user: missing required field" },
        { "peers:\n  - {host: h, user: u}\n", ":6: peers[0].name: missing required field" },
        { "peers:\n  - {name: a, host: h, host: i, user: u}\n",
          ":6: peers[0].host: duplicate key (first at line 6)" },
        { "peers:\n  - {name: a, host: h, user: u, port: 0}\n",
          ":6: peers[0].port: expected an integer from 1 to 65535, got \"0\"" },
        { "peers:\n  - {name: a, host: h, user: u, sslmode: sometimes}\n",
          ":6: peers[0].sslmode: expected one of [disable, allow, prefer, require, verify-ca, "
          "verify-full], got \"sometimes\"" },
        { "peers:\n  - {name: \"a b\", host: h, user: u}\n",
          ":6: peers[0].name: expected a plain name (letters, digits, _, -, ., at most 63), got "
          "\"a b\"" },
        { "peers: []\n", ":5: peers: expected 1 to 64 items, got 0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_tmp_cleanup(t); /* a fresh folder: it holds four files at most */
        s_tmp_init(t);
        snprintf(text, sizeof text, "%s%s", head, cases[i].peers);
        s_expect_agent_error(t, "bad.yaml", text, cases[i].want);
    }
    s_tmp_cleanup(t);
}

/* The mariadb section: every key, the defaults, a peer's password_file
 * and port 3306; a file with both engines' sections refused at the line
 * of the second, either way round. */
static void test_agent_mariadb(void **state)
{
    s_tmp_t *t = *state;
    s_tmp_init(t);
    static const char head[] = "role: source\n"
                               "state_dir: /var/lib/godwit/agent\n"
                               "secret_key: /etc/godwit/keys/blue.key\n"
                               "coordinator: {endpoint: \"tcp://10.0.0.1:7400\", public_key: c.pub}\n";
    char text[2048];
    snprintf(text, sizeof text,
             "%smariadb:\n"
             "  host: 10.0.0.7\n"
             "  port: 3307\n"
             "  socket: /run/mysqld/mysqld.sock\n"
             "  user: godwit\n"
             "  password_file: /etc/godwit/mariadb.pass\n"
             "  database: shop\n"
             "  data_directory: /var/lib/mysql\n"
             "  connect_timeout: 5s\n"
             "  statement_timeout: 3s\n"
             "peers:\n"
             "  - {name: green, host: 10.0.0.8, user: godwit_repl,"
             " password_file: /etc/godwit/repl.pass}\n",
             head);
    const char *path = s_tmp_write(t, "full.yaml", text, strlen(text));
    agent_config_t cfg;
    char err[512] = "";
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_true(cfg.has_mariadb);
    assert_false(cfg.has_postgres);
    assert_string_equal(cfg.mariadb.host, "10.0.0.7");
    assert_int_equal(cfg.mariadb.port, 3307);
    assert_string_equal(cfg.mariadb.socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(cfg.mariadb.user, "godwit");
    assert_string_equal(cfg.mariadb.password_file, "/etc/godwit/mariadb.pass");
    assert_string_equal(cfg.mariadb.database, "shop");
    assert_string_equal(cfg.mariadb.data_directory, "/var/lib/mysql");
    assert_int_equal(cfg.mariadb.connect_timeout_ms, 5000);
    assert_int_equal(cfg.mariadb.statement_timeout_ms, 3000);
    const agent_peer_t *green = agent_config_peer_find(&cfg, "green");
    assert_non_null(green);
    assert_int_equal(green->port, 3306);
    assert_string_equal(green->password_file, "/etc/godwit/repl.pass");
    assert_null(green->passfile);
    agent_config_free(&cfg);

    /* Only the user: the defaults. */
    snprintf(text, sizeof text, "%smariadb: {user: godwit}\n", head);
    path = s_tmp_write(t, "min.yaml", text, strlen(text));
    if (!agent_config_load(path, &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_true(cfg.has_mariadb);
    assert_string_equal(cfg.mariadb.host, "127.0.0.1");
    assert_int_equal(cfg.mariadb.port, 3306);
    assert_null(cfg.mariadb.socket);
    assert_null(cfg.mariadb.password_file);
    assert_null(cfg.mariadb.database);
    assert_null(cfg.mariadb.data_directory);
    assert_int_equal(cfg.mariadb.connect_timeout_ms, 2000);
    assert_int_equal(cfg.mariadb.statement_timeout_ms, 2000);
    agent_config_free(&cfg);
    s_tmp_cleanup(t);

    static const struct {
        const char *body, *want;
    } cases[] = {
        { "postgres:\n  data_directory: /d\nmariadb:\n  user: godwit\n",
          ":8: mariadb: an agent runs one database engine: this file has a postgres and a "
          "mariadb section; keep the one of this host's server" },
        { "mariadb:\n  user: godwit\npostgres:\n  data_directory: /d\n",
          ":8: postgres: an agent runs one database engine: this file has a postgres and a "
          "mariadb section; keep the one of this host's server" },
        { "mariadb:\n  port: 3306\n", ":6: mariadb.user: missing required field" },
        { "mariadb:\n  user: u\n  port: 0\n",
          ":7: mariadb.port: expected an integer from 1 to 65535, got \"0\"" },
        { "mariadb:\n  user: u\n  passfile: /p\n",
          ":7: mariadb.passfile: unknown key (known: host, port, socket, user, password_file, "
          "database, data_directory, connect_timeout, statement_timeout)" },
        { "mariadb:\n  user: u\n  connect_timeout: 5\n",
          ":7: mariadb.connect_timeout: expected a duration with a unit (ms, s, m, h) from "
          "100ms to 10m, got \"5\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_tmp_cleanup(t);
        s_tmp_init(t);
        snprintf(text, sizeof text, "%s%s", head, cases[i].body);
        s_expect_agent_error(t, "bad.yaml", text, cases[i].want);
    }
    s_tmp_cleanup(t);
}

static int s_setup(void **state)
{
    *state = xmalloc(sizeof(s_tmp_t));
    memset(*state, 0, sizeof(s_tmp_t));
    return 0;
}

/* Removes what a failed test left behind. */
static int s_teardown(void **state)
{
    s_tmp_cleanup(*state);
    free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_full),
        cmocka_unit_test(test_good_over_defaults),
        cmocka_unit_test(test_good_forms),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_missing_required),
        cmocka_unit_test(test_err_wrong_kind),
        cmocka_unit_test(test_err_duplicate),
        cmocka_unit_test(test_err_syntax),
        cmocka_unit_test(test_err_top_level),
        cmocka_unit_test(test_err_nesting),
        cmocka_unit_test(test_err_string_size),
        cmocka_unit_test(test_err_null_and_empty),
        cmocka_unit_test(test_err_values),
        cmocka_unit_test(test_err_late_leaves_struct),
        cmocka_unit_test(test_cfg_free),
        cmocka_unit_test(test_list_strings),
        cmocka_unit_test(test_list_strings_errors),
        cmocka_unit_test(test_list_items),
        cmocka_unit_test(test_list_items_errors),
        cmocka_unit_test(test_list_nested),
        cmocka_unit_test(test_list_err_leaves_struct),
        cmocka_unit_test(test_list_alias_limit),
        cmocka_unit_test(test_list_free),
        cmocka_unit_test(test_list_item_defaults),
        cmocka_unit_test_setup_teardown(test_file_load, s_setup, s_teardown),
        cmocka_unit_test(test_list_unique_and_retired),
        cmocka_unit_test(test_agent_example),
        cmocka_unit_test(test_agent_proxy_example),
        cmocka_unit_test_setup_teardown(test_agent_peers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_agent_mariadb, s_setup, s_teardown),
        cmocka_unit_test(test_agent_proxy_errors),
        cmocka_unit_test(test_coord_example),
        cmocka_unit_test_setup_teardown(test_coord_metrics, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_coord_copies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_agent_minimal, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_agent_standby, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_agent_wrong, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
