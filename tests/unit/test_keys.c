/*
 * test_keys: common/keys.c, CURVE key pairs on disk, the allow-list with the
 * roles of each key, and the coordinator's signing pair.
 *
 * Covers keys_generate (modes 0600 / 0644, refusing to overwrite either file
 * and leaving the existing one byte for byte as it was, refusing bad names
 * without creating anything, the roles line), keys_load_secret (derives the
 * same public key; refuses group- or world-readable modes with a "chmod 600"
 * hint, a file owned by another user, symlinks, folders and malformed files;
 * accepts comments and blank lines), roles lists (parsed, refused with the
 * word it does not know), keys_allowlist_load / _find / _entry (NAME.pub
 * files only, each with its roles; one without a roles line or with a bad
 * one refused naming file and line; the same key under two names, a
 * malformed .pub, a missing folder), and the signing pair (written 0600 /
 * 0644, never overwritten, loaded back to the same key that verifies what
 * the secret signs, the secret file held to the same checks, malformed files
 * refused, never confused with a CURVE key).
 *
 * Files: every test gets its own mkdtemp folder under /tmp from its setup and
 * the teardown removes it, also when an assertion failed. The tests run as
 * root in CI, so nothing here relies on permissions stopping a write: modes
 * are checked with stat, not by trying to read.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "fsutil.h"
#include "keys.h"
#include "tmpdir.h"
#include "xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

/* Returns DIR/NAME; caller frees. */
static char *s_path(const char *dir, const char *name) { return xasprintf("%s/%s", dir, name); }

static void s_write(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    assert_int_equal(fsutil_write_atomic(path, text, strlen(text), mode), 0);
    assert_int_equal(chmod(path, mode), 0); /* whatever the umask */
}

/* Returns the file's text; caller frees. */
static char *s_read(const char *path)
{
    char *text = NULL;
    assert_int_equal(fsutil_read_small(path, 65536, &text, NULL), 0);
    return text;
}

static bool s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static mode_t s_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Number of entries in dir besides . and .. */
static int s_count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Generates NAME in dir and returns the pair. */
static keys_pair_t s_gen(const char *dir, const char *name)
{
    keys_pair_t kp;
    char err[512] = "";
    int rc = keys_generate(dir, name, KEYS_ROLE_SOURCE, &kp, err, sizeof err);
    if (rc != 0)
        fail_msg("keys_generate %s/%s: %d %s", dir, name, rc, err);
    assert_int_equal(strlen(kp.public_z85), KEYS_Z85_LEN);
    assert_int_equal(strlen(kp.secret_z85), KEYS_Z85_LEN);
    return kp;
}

/* ---- keys_generate ---------------------------------------------------- */

static void test_generate_writes_pair(void **state)
{
    const char *dir = *state;
    keys_pair_t kp = s_gen(dir, "agent-1");
    char *key = s_path(dir, "agent-1.key");
    char *pub = s_path(dir, "agent-1.pub");
    assert_int_equal(s_mode(key), 0600);
    assert_int_equal(s_mode(pub), 0644);

    /* Each file holds its key, and nothing holds the secret but NAME.key. */
    char *key_text = s_read(key);
    char *pub_text = s_read(pub);
    assert_non_null(strstr(key_text, kp.secret_z85));
    assert_null(strstr(key_text, kp.public_z85));
    assert_non_null(strstr(pub_text, kp.public_z85));
    assert_null(strstr(pub_text, kp.secret_z85));

    char err[512] = "";
    char public_z85[KEYS_Z85_LEN + 1];
    assert_int_equal(keys_load_public(pub, public_z85, err, sizeof err), 0);
    assert_string_equal(public_z85, kp.public_z85);
    free(key_text);
    free(pub_text);
    free(key);
    free(pub);

    /* Two pairs differ. */
    keys_pair_t other = s_gen(dir, "agent-2");
    assert_string_not_equal(other.public_z85, kp.public_z85);
    assert_string_not_equal(other.secret_z85, kp.secret_z85);
    assert_int_equal(s_count_entries(dir), 4);
}

static void test_generate_creates_dir(void **state)
{
    const char *dir = *state;
    char *sub = s_path(dir, "a/b/keys");
    s_gen(sub, "coordinator");
    assert_int_equal(s_mode(sub), 0700);
    char *key = s_path(sub, "coordinator.key");
    assert_true(s_exists(key));
    free(key);
    free(sub);
}

static void test_generate_refuses_existing(void **state)
{
    const char *dir = *state;
    char err[512];
    keys_pair_t kp;

    /* NAME.key exists: refused, untouched, and no NAME.pub appears. */
    char *key = s_path(dir, "k1.key");
    char *pub = s_path(dir, "k1.pub");
    s_write(key, "precious secret\n", 0600);
    err[0] = '\0';
    assert_int_equal(keys_generate(dir, "k1", 0, &kp, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "already exists"));
    assert_non_null(strstr(err, key));
    char *text = s_read(key);
    assert_string_equal(text, "precious secret\n");
    free(text);
    assert_false(s_exists(pub));
    free(key);
    free(pub);

    /* NAME.pub exists: refused, untouched, and no NAME.key appears. */
    key = s_path(dir, "k2.key");
    pub = s_path(dir, "k2.pub");
    s_write(pub, "precious public\n", 0644);
    err[0] = '\0';
    assert_int_equal(keys_generate(dir, "k2", 0, &kp, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, pub));
    text = s_read(pub);
    assert_string_equal(text, "precious public\n");
    free(text);
    assert_false(s_exists(key));
    free(key);
    free(pub);

    /* A second generate over a real pair changes neither file. */
    key = s_path(dir, "k3.key");
    pub = s_path(dir, "k3.pub");
    s_gen(dir, "k3");
    char *key_before = s_read(key);
    char *pub_before = s_read(pub);
    assert_int_equal(keys_generate(dir, "k3", 0, &kp, err, sizeof err), -EEXIST);
    char *key_after = s_read(key);
    char *pub_after = s_read(pub);
    assert_string_equal(key_before, key_after);
    assert_string_equal(pub_before, pub_after);
    assert_int_equal(s_mode(key), 0600);
    free(key_before);
    free(pub_before);
    free(key_after);
    free(pub_after);
    free(key);
    free(pub);
}

static void test_generate_refuses_bad_names(void **state)
{
    const char *dir = *state;
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    const char *bad[] = { "../x", "", ".hidden", long_name, "a/b", "a b", "x\n", "caf\xc3\xa9", "." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        keys_pair_t kp;
        char err[512] = "";
        assert_false(keys_name_valid(bad[i]));
        int rc = keys_generate(dir, bad[i], KEYS_ROLE_PROXY, &kp, err, sizeof err);
        if (rc != -EINVAL)
            fail_msg("name \"%s\": rc %d, expected -EINVAL", bad[i], rc);
        assert_non_null(strstr(err, "invalid key name"));
    }
    /* Nothing was created, not even outside the folder. */
    assert_int_equal(s_count_entries(dir), 0);
    char *escaped = xasprintf("%s/../x.key", dir);
    assert_false(s_exists(escaped));
    free(escaped);

    /* 64 characters and the whole alphabet are fine. */
    char max_name[65];
    memset(max_name, 'b', 64);
    max_name[64] = '\0';
    assert_true(keys_name_valid(max_name));
    s_gen(dir, max_name);
    s_gen(dir, "Az09._-x");
    assert_int_equal(s_count_entries(dir), 4);
}

/* ---- keys_load_secret ------------------------------------------------- */

static void test_load_secret_derives_public(void **state)
{
    const char *dir = *state;
    keys_pair_t kp = s_gen(dir, "agent");
    char *key = s_path(dir, "agent.key");
    keys_pair_t loaded;
    memset(&loaded, 0, sizeof loaded);
    char err[512] = "";
    int rc = keys_load_secret(key, &loaded, err, sizeof err);
    if (rc != 0)
        fail_msg("keys_load_secret: %s", err);
    assert_string_equal(loaded.secret_z85, kp.secret_z85);
    assert_string_equal(loaded.public_z85, kp.public_z85);

    /* A stricter mode than 0600 is fine too. */
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(keys_load_secret(key, &loaded, err, sizeof err), 0);
    assert_string_equal(loaded.public_z85, kp.public_z85);
    free(key);
}

static void test_load_secret_refuses_modes(void **state)
{
    const char *dir = *state;
    s_gen(dir, "agent");
    char *key = s_path(dir, "agent.key");
    static const mode_t modes[] = { 0640, 0604, 0644, 0660, 0606, 0610, 0601, 0620, 0602 };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(key, modes[i]), 0);
        keys_pair_t kp;
        char err[512] = "";
        int rc = keys_load_secret(key, &kp, err, sizeof err);
        if (rc != -EPERM)
            fail_msg("mode %04o: rc %d (%s), expected -EPERM", (unsigned)modes[i], rc, err);
        assert_non_null(strstr(err, "chmod 600"));
        assert_non_null(strstr(err, key));
    }
    free(key);
}

static void test_load_secret_refuses_non_files(void **state)
{
    const char *dir = *state;
    s_gen(dir, "agent");
    char *key = s_path(dir, "agent.key");
    char *link = s_path(dir, "link.key");
    char *sub = s_path(dir, "folder.key");
    char *missing = s_path(dir, "missing.key");
    keys_pair_t kp;
    char err[512];

    /* A symlink to a perfectly good key. */
    assert_int_equal(symlink(key, link), 0);
    err[0] = '\0';
    assert_true(keys_load_secret(link, &kp, err, sizeof err) < 0);
    assert_non_null(strstr(err, link));

    /* A folder, even a 0700 one. */
    assert_int_equal(mkdir(sub, 0700), 0);
    err[0] = '\0';
    assert_int_equal(keys_load_secret(sub, &kp, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));

    /* Nothing there. */
    err[0] = '\0';
    assert_int_equal(keys_load_secret(missing, &kp, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, missing));
    free(key);
    free(link);
    free(sub);
    free(missing);
}

static void test_load_secret_malformed(void **state)
{
    const char *dir = *state;
    keys_pair_t kp = s_gen(dir, "good");
    char *path = s_path(dir, "bad.key");
    char k39[KEYS_Z85_LEN];
    memcpy(k39, kp.secret_z85, KEYS_Z85_LEN - 1);
    k39[KEYS_Z85_LEN - 1] = '\0';
    char bad_char[KEYS_Z85_LEN + 1];
    memcpy(bad_char, kp.secret_z85, sizeof bad_char);
    bad_char[10] = '~'; /* not in the Z85 alphabet */
    char bad_quote[KEYS_Z85_LEN + 1];
    memcpy(bad_quote, kp.secret_z85, sizeof bad_quote);
    bad_quote[0] = '"';

    char *texts[] = {
        xasprintf("%s\n", k39),                                  /* 39 characters */
        xasprintf("%sA\n", kp.secret_z85),                       /* 41 characters */
        xasprintf("%s\n%s\n", kp.secret_z85, kp.secret_z85),     /* two key lines */
        xasprintf("%s\nnot a key\n", kp.secret_z85),             /* junk line */
        xasprintf("%s\n", bad_char),
        xasprintf("%s\n", bad_quote),
        xasprintf("# only a comment\n"),
        xasprintf("%s", ""),                                     /* empty file */
        xasprintf("%.20s %.20s\n", kp.secret_z85, kp.secret_z85 + 20), /* split by a space */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        s_write(path, texts[i], 0600);
        keys_pair_t out;
        char err[512] = "";
        int rc = keys_load_secret(path, &out, err, sizeof err);
        if (rc != -EINVAL)
            fail_msg("malformed key #%zu loaded: rc %d", i, rc);
        assert_non_null(strstr(err, "expected one 40-character Z85 key line"));
        assert_non_null(strstr(err, path));
        /* The message never carries key material. */
        assert_null(strstr(err, kp.secret_z85));
        free(texts[i]);
    }

    /* An oversized file is refused too. */
    char *huge = xmalloc(8192 + 1);
    memset(huge, '#', 8192);
    huge[8192] = '\0';
    s_write(path, huge, 0600);
    keys_pair_t out;
    char err[512] = "";
    assert_true(keys_load_secret(path, &out, err, sizeof err) < 0);
    free(huge);
    free(path);
}

static void test_load_secret_comments_and_blanks(void **state)
{
    const char *dir = *state;
    keys_pair_t kp = s_gen(dir, "good");
    char *path = s_path(dir, "commented.key");
    char *texts[] = {
        xasprintf("# a comment\n\n   \n# another\n%s\n\n# trailing\n", kp.secret_z85),
        xasprintf("%s", kp.secret_z85),                  /* no newline at the end */
        xasprintf("\r\n  %s  \r\n", kp.secret_z85),      /* CRLF and spaces around */
        xasprintf("\t%s\t\n#%s\n", kp.secret_z85, "x"),
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        s_write(path, texts[i], 0600);
        keys_pair_t out;
        char err[512] = "";
        int rc = keys_load_secret(path, &out, err, sizeof err);
        if (rc != 0)
            fail_msg("key file #%zu refused: %s", i, err);
        assert_string_equal(out.secret_z85, kp.secret_z85);
        assert_string_equal(out.public_z85, kp.public_z85);
        free(texts[i]);
    }
    free(path);
}

/* ---- allow-list ------------------------------------------------------- */

static void test_allowlist_load_and_find(void **state)
{
    const char *dir = *state;
    char *allow = s_path(dir, "allowed");
    keys_pair_t a = s_gen(allow, "alpha");
    keys_pair_t b = s_gen(allow, "beta");
    keys_pair_t c = s_gen(allow, "gamma.db-1");
    keys_pair_t stranger = s_gen(dir, "stranger");

    /* Things that are not NAME.pub are ignored: .key files, other suffixes,
     * a bare ".pub", a folder. */
    char *p;
    p = s_path(allow, "README.txt");
    s_write(p, "not a key\n", 0644);
    free(p);
    p = s_path(allow, "old.pub.bak");
    s_write(p, "junk\n", 0644);
    free(p);
    p = s_path(allow, ".pub");
    s_write(p, "junk\n", 0644);
    free(p);
    p = s_path(allow, "sub");
    assert_int_equal(mkdir(p, 0700), 0);
    free(p);

    keys_allowlist_t list;
    char err[512] = "";
    int rc = keys_allowlist_load(allow, &list, err, sizeof err);
    if (rc != 0)
        fail_msg("keys_allowlist_load: %s", err);
    assert_int_equal(list.count, 3);
    assert_string_equal(keys_allowlist_find(&list, a.public_z85), "alpha");
    assert_string_equal(keys_allowlist_find(&list, b.public_z85), "beta");
    assert_string_equal(keys_allowlist_find(&list, c.public_z85), "gamma.db-1");
    assert_null(keys_allowlist_find(&list, stranger.public_z85));
    assert_null(keys_allowlist_find(&list, a.secret_z85));
    assert_null(keys_allowlist_find(&list, ""));
    keys_allowlist_free(&list);
    assert_null(list.entries);
    assert_int_equal(list.count, 0);
    keys_allowlist_free(&list); /* twice is fine */

    /* An empty folder is an empty list, not an error. */
    char *empty = s_path(dir, "empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(keys_allowlist_load(empty, &list, err, sizeof err), 0);
    assert_int_equal(list.count, 0);
    assert_null(keys_allowlist_find(&list, a.public_z85));
    keys_allowlist_free(&list);
    free(empty);
    free(allow);
}

static void test_allowlist_duplicate_key(void **state)
{
    const char *dir = *state;
    char *allow = s_path(dir, "allowed");
    keys_pair_t a = s_gen(allow, "alpha");
    s_gen(allow, "beta");
    char *copy = s_path(allow, "alias.pub");
    char *text = xasprintf("# same key, other name\n%s\nroles: proxy\n", a.public_z85);
    s_write(copy, text, 0644);

    keys_allowlist_t list = { (keys_entry_t *)1, 99 }; /* overwritten on failure */
    char err[512] = "";
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "same public key"));
    assert_non_null(strstr(err, "\"alpha\""));
    assert_non_null(strstr(err, "\"alias\""));
    assert_null(list.entries);
    assert_int_equal(list.count, 0);
    free(text);
    free(copy);
    free(allow);
}

static void test_allowlist_malformed(void **state)
{
    const char *dir = *state;
    char *allow = s_path(dir, "allowed");
    s_gen(allow, "alpha");
    char *bad = s_path(allow, "broken.pub");
    s_write(bad, "# nothing but a comment and half a key\nabcdefghij\n", 0644);
    keys_allowlist_t list;
    char err[512] = "";
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, bad));
    assert_null(list.entries);
    assert_int_equal(list.count, 0);
    unlink(bad);

    /* A .pub whose NAME is not a valid key name. */
    char *odd = s_path(allow, "bad name.pub");
    keys_pair_t kp = s_gen(dir, "other");
    char *text = xasprintf("%s\nroles: source\n", kp.public_z85);
    s_write(odd, text, 0644);
    err[0] = '\0';
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "bad name"));
    assert_null(list.entries);
    unlink(odd);

    /* Back to a clean folder: loads again. */
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), 0);
    assert_int_equal(list.count, 1);
    keys_allowlist_free(&list);
    free(text);
    free(odd);
    free(bad);
    free(allow);
}

static void test_allowlist_missing_folder(void **state)
{
    const char *dir = *state;
    char *missing = s_path(dir, "no-such-folder");
    keys_allowlist_t list;
    char err[512] = "";
    assert_int_equal(keys_allowlist_load(missing, &list, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, missing));
    assert_null(list.entries);
    assert_int_equal(list.count, 0);

    /* A file where the folder should be. */
    char *file = s_path(dir, "plain-file");
    s_write(file, "x\n", 0644);
    err[0] = '\0';
    assert_int_equal(keys_allowlist_load(file, &list, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, file));
    free(file);
    free(missing);
}

/* ---- roles ------------------------------------------------------------ */

static void test_roles_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned roles;
    } good[] = {
        { "source", KEYS_ROLE_SOURCE },
        { "target", KEYS_ROLE_TARGET },
        { "proxy", KEYS_ROLE_PROXY },
        { "source, target", KEYS_ROLE_SOURCE | KEYS_ROLE_TARGET },
        { " proxy target ", KEYS_ROLE_PROXY | KEYS_ROLE_TARGET },
        { "source,,proxy,source", KEYS_ROLE_SOURCE | KEYS_ROLE_PROXY },
        { "source\ttarget,proxy", KEYS_ROLE_ALL },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        unsigned r = 0;
        char err[256] = "";
        if (keys_roles_parse(good[i].text, &r, err, sizeof err) != 0)
            fail_msg("\"%s\" refused: %s", good[i].text, err);
        assert_int_equal(r, good[i].roles);
    }
    static const char *const bad[] = { "", " , ", "sourse", "Source", "all", "source, *",
                                       "source target proxy admin" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned r = 99;
        char err[256] = "";
        if (keys_roles_parse(bad[i], &r, err, sizeof err) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(r, 99);
        assert_true(err[0] != '\0');
    }
    char err[256];
    assert_int_equal(keys_roles_parse("sourse", &(unsigned){ 0 }, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "\"sourse\""));
    assert_non_null(strstr(err, "source, target, proxy"));
    char buf[64];
    assert_string_equal(keys_roles_format(KEYS_ROLE_SOURCE | KEYS_ROLE_PROXY, buf, sizeof buf),
                        "source, proxy");
    assert_string_equal(keys_roles_format(KEYS_ROLE_ALL, buf, sizeof buf), "source, target, proxy");
    assert_string_equal(keys_roles_format(0, buf, sizeof buf), "none");
    assert_int_equal(keys_role_bit("target"), KEYS_ROLE_TARGET);
    assert_int_equal(keys_role_bit("targets"), 0);
}

static void test_generate_roles_line(void **state)
{
    const char *dir = *state;
    keys_pair_t kp;
    char err[512] = "";
    assert_int_equal(keys_generate(dir, "db1", KEYS_ROLE_SOURCE | KEYS_ROLE_TARGET, &kp, err,
                                   sizeof err), 0);
    char *pub = s_path(dir, "db1.pub");
    char *text = s_read(pub);
    assert_non_null(strstr(text, "\nroles: source, target\n"));
    free(text);
    /* A roles line is allowed, and ignored, where a plain public key is read. */
    char z85[KEYS_Z85_LEN + 1];
    assert_int_equal(keys_load_public(pub, z85, err, sizeof err), 0);
    assert_string_equal(z85, kp.public_z85);
    /* Without roles (a coordinator's key): no roles line. */
    assert_int_equal(keys_generate(dir, "coordinator", 0, &kp, err, sizeof err), 0);
    char *cpub = s_path(dir, "coordinator.pub");
    text = s_read(cpub);
    assert_null(strstr(text, "roles"));
    free(text);
    free(cpub);
    free(pub);
}

static void test_allowlist_roles(void **state)
{
    const char *dir = *state;
    char *allow = s_path(dir, "allowed");
    keys_pair_t a = s_gen(allow, "alpha"); /* roles: source */
    keys_pair_t b, c;
    char err[512] = "";
    assert_int_equal(keys_generate(allow, "beta", KEYS_ROLE_PROXY | KEYS_ROLE_TARGET, &b, err,
                                   sizeof err), 0);
    keys_allowlist_t list;
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), 0);
    assert_int_equal(keys_allowlist_entry(&list, a.public_z85)->roles, KEYS_ROLE_SOURCE);
    assert_int_equal(keys_allowlist_entry(&list, b.public_z85)->roles,
                     KEYS_ROLE_PROXY | KEYS_ROLE_TARGET);
    assert_string_equal(keys_allowlist_entry(&list, b.public_z85)->name, "beta");
    keys_allowlist_free(&list);

    /* A key without a roles line: no default, the whole list is refused,
     * naming the file and what to add. */
    assert_int_equal(keys_generate(allow, "gamma", 0, &c, err, sizeof err), 0);
    char *gamma = s_path(allow, "gamma.pub");
    err[0] = '\0';
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, gamma));
    assert_non_null(strstr(err, "roles: missing"));
    assert_null(list.entries);

    /* A roles line naming a role that does not exist: file and line. */
    char *text = xasprintf("# gamma\n%s\nroles: source, admin\n", c.public_z85);
    s_write(gamma, text, 0644);
    free(text);
    err[0] = '\0';
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    char *where = xasprintf("%s:3: roles: unknown role \"admin\"", gamma);
    if (!strstr(err, where))
        fail_msg("error \"%s\" does not say \"%s\"", err, where);
    free(where);

    /* Two roles lines, an empty one. */
    text = xasprintf("%s\nroles: source\nroles: proxy\n", c.public_z85);
    s_write(gamma, text, 0644);
    free(text);
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":3: roles: a second roles line"));
    text = xasprintf("%s\nroles:   \n", c.public_z85);
    s_write(gamma, text, 0644);
    free(text);
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, gamma));

    /* Fixed: loads. */
    text = xasprintf("%s\n  roles: proxy  \n", c.public_z85);
    s_write(gamma, text, 0644);
    free(text);
    assert_int_equal(keys_allowlist_load(allow, &list, err, sizeof err), 0);
    assert_int_equal(list.count, 3);
    assert_int_equal(keys_allowlist_entry(&list, c.public_z85)->roles, KEYS_ROLE_PROXY);
    keys_allowlist_free(&list);

    /* A roles line has no place in a secret key file. */
    char *key = s_path(allow, "alpha.key");
    text = xasprintf("%s\nroles: source\n", a.secret_z85);
    s_write(key, text, 0600);
    sodium_memzero(text, strlen(text));
    free(text);
    keys_pair_t out;
    assert_int_equal(keys_load_secret(key, &out, err, sizeof err), -EINVAL);
    assert_null(strstr(err, a.secret_z85));
    free(key);
    free(gamma);
    free(allow);
}

/* ---- file owner ------------------------------------------------------- */

static void test_load_secret_refuses_other_owner(void **state)
{
    const char *dir = *state;
    if (geteuid() != 0)
        skip(); /* only root can give a file away */
    s_gen(dir, "agent");
    unsigned char pk[KEYS_SIGN_PUBLIC_LEN], sk[KEYS_SIGN_SECRET_LEN];
    char err[512] = "";
    assert_int_equal(keys_sign_generate(dir, "coordinator", pk, err, sizeof err), 0);
    const char *files[] = { "agent.key", "coordinator.sign.key" };
    for (size_t i = 0; i < 2; i++) {
        char *path = s_path(dir, files[i]);
        /* 0600 and a regular file: only the owner is wrong. */
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(s_mode(path), 0600);
        err[0] = '\0';
        keys_pair_t kp;
        int rc = i == 0 ? keys_load_secret(path, &kp, err, sizeof err)
                        : keys_load_sign_secret(path, sk, pk, err, sizeof err);
        if (rc != -EPERM)
            fail_msg("%s owned by uid 65534 loaded: rc %d", files[i], rc);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "owned by uid 65534"));
        assert_non_null(strstr(err, "chown"));
        /* Given back: loads. */
        assert_int_equal(chown(path, geteuid(), getegid()), 0);
        rc = i == 0 ? keys_load_secret(path, &kp, err, sizeof err)
                    : keys_load_sign_secret(path, sk, pk, err, sizeof err);
        assert_int_equal(rc, 0);
        free(path);
    }
}

/* ---- the signing pair ------------------------------------------------- */

static void test_sign_pair(void **state)
{
    const char *dir = *state;
    unsigned char pk[KEYS_SIGN_PUBLIC_LEN], pk2[KEYS_SIGN_PUBLIC_LEN], pk3[KEYS_SIGN_PUBLIC_LEN];
    unsigned char sk[KEYS_SIGN_SECRET_LEN];
    char err[512] = "";
    char *sub = s_path(dir, "keys");
    assert_int_equal(keys_sign_generate(sub, "coordinator", pk, err, sizeof err), 0);
    char *key = s_path(sub, "coordinator.sign.key");
    char *pub = s_path(sub, "coordinator.sign.pub");
    assert_int_equal(s_mode(sub), 0700);
    assert_int_equal(s_mode(key), 0600);
    assert_int_equal(s_mode(pub), 0644);

    /* Loaded back: the same public key, from either file. */
    assert_int_equal(keys_load_sign_secret(key, sk, pk2, err, sizeof err), 0);
    assert_memory_equal(pk, pk2, sizeof pk);
    assert_int_equal(keys_load_sign_public(pub, pk3, err, sizeof err), 0);
    assert_memory_equal(pk, pk3, sizeof pk);
    /* The secret signs what the public key verifies. */
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)"x", 1, sk);
    assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"x", 1, pk3), 0);
    /* The public file holds nothing of the secret. */
    char *pub_text = s_read(pub), *key_text = s_read(key);
    char pk_hex[2 * KEYS_SIGN_PUBLIC_LEN + 1];
    sodium_bin2hex(pk_hex, sizeof pk_hex, pk, sizeof pk);
    assert_non_null(strstr(pub_text, pk_hex));
    assert_null(strstr(pub_text, "seed"));
    assert_null(strstr(key_text, pk_hex));

    /* Never overwritten. */
    assert_int_equal(keys_sign_generate(sub, "coordinator", pk2, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "refusing to overwrite"));
    char *pub_after = s_read(pub), *key_after = s_read(key);
    assert_string_equal(pub_text, pub_after);
    assert_string_equal(key_text, key_after);

    /* Not a CURVE key, and a CURVE key is not one: neither loader takes
     * the other's file. */
    char z85[KEYS_Z85_LEN + 1];
    assert_int_equal(keys_load_public(pub, z85, err, sizeof err), -EINVAL);
    keys_pair_t kp = s_gen(sub, "agent");
    char *apub = s_path(sub, "agent.pub"), *akey = s_path(sub, "agent.key");
    assert_int_equal(keys_load_sign_public(apub, pk2, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, apub));
    assert_int_equal(keys_load_sign_secret(akey, sk, pk2, err, sizeof err), -EINVAL);
    assert_null(strstr(err, kp.secret_z85));

    /* The secret file gets the CURVE secret's checks. */
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(keys_load_sign_secret(key, sk, pk2, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(key, 0600), 0);

    /* Malformed: no tag, short, two lines, not hex. */
    char *bad = s_path(sub, "bad.sign.pub");
    char *texts[] = {
        xasprintf("%s\n", pk_hex),
        xasprintf("ed25519: %.62s\n", pk_hex),
        xasprintf("ed25519: %s\ned25519: %s\n", pk_hex, pk_hex),
        xasprintf("ed25519: %.63sz\n", pk_hex),
        xasprintf("# nothing\n"),
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        s_write(bad, texts[i], 0644);
        err[0] = '\0';
        if (keys_load_sign_public(bad, pk2, err, sizeof err) != -EINVAL)
            fail_msg("malformed signing public key #%zu loaded", i);
        assert_non_null(strstr(err, bad));
        free(texts[i]);
    }
    char *missing = s_path(sub, "missing.sign.pub");
    assert_int_equal(keys_load_sign_public(missing, pk2, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, missing));
    free(missing);
    free(bad);
    free(apub);
    free(akey);
    free(pub_text);
    free(key_text);
    free(pub_after);
    free(key_after);
    free(key);
    free(pub);
    free(sub);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_generate_writes_pair),
        T(test_generate_creates_dir),
        T(test_generate_refuses_existing),
        T(test_generate_refuses_bad_names),
        T(test_load_secret_derives_public),
        T(test_load_secret_refuses_modes),
        T(test_load_secret_refuses_non_files),
        T(test_load_secret_malformed),
        T(test_load_secret_comments_and_blanks),
        T(test_allowlist_load_and_find),
        T(test_allowlist_duplicate_key),
        T(test_allowlist_malformed),
        T(test_allowlist_missing_folder),
        T(test_roles_parse),
        T(test_generate_roles_line),
        T(test_allowlist_roles),
        T(test_load_secret_refuses_other_owner),
        T(test_sign_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
