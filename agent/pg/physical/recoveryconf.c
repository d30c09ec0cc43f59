/*
 * recoveryconf: see recoveryconf.h. String building and one small file
 * rewrite; nothing kept between calls.
 */
#include "recoveryconf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "xalloc.h"

#define S_AUTO_MAX (1024 * 1024) /* postgresql.auto.conf is a few lines */

/* ---- a growing string ------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static char *s_done(s_buf_t *b)
{
    if (!b->p)
        return xstrdup("");
    return b->p;
}

/* ---- quoting ---------------------------------------------------------------- */

char *recoveryconf_conn_value(const char *v)
{
    bool plain = v[0] != '\0';
    for (const char *c = v; plain && *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
            plain = false;
    if (plain)
        return xstrdup(v);
    s_buf_t b = { 0 };
    s_puts(&b, "'");
    for (const char *c = v; *c; c++) {
        if (*c == '\'' || *c == '\\')
            s_puts(&b, "\\");
        s_put(&b, c, 1);
    }
    s_puts(&b, "'");
    return s_done(&b);
}

char *recoveryconf_guc_quote(const char *v)
{
    s_buf_t b = { 0 };
    s_puts(&b, "'");
    for (const char *c = v; *c; c++) {
        if (*c == '\'' || *c == '\\')
            s_put(&b, c, 1);
        s_put(&b, c, 1);
    }
    s_puts(&b, "'");
    return s_done(&b);
}

static void s_kv(s_buf_t *b, const char *key, const char *value)
{
    if (!value || !value[0])
        return;
    if (b->len)
        s_puts(b, " ");
    s_puts(b, key);
    s_puts(b, "=");
    char *q = recoveryconf_conn_value(value);
    s_puts(b, q);
    free(q);
}

char *recoveryconf_conninfo(const agent_peer_t *peer, bool with_passfile, const char *dbname,
                            const char *app)
{
    char port[24];
    snprintf(port, sizeof port, "%" PRId64, peer->port);
    s_buf_t b = { 0 };
    s_kv(&b, "host", peer->host);
    s_kv(&b, "port", port);
    s_kv(&b, "user", peer->user);
    if (with_passfile)
        s_kv(&b, "passfile", peer->passfile);
    s_kv(&b, "sslmode", peer->sslmode);
    s_kv(&b, "dbname", dbname);
    s_kv(&b, "application_name", app);
    return s_done(&b);
}

/* ---- postgresql.auto.conf ---------------------------------------------------- */

/* The key a line of postgresql.conf sets ([start, start+len)), or len 0
 * for a comment, a blank line or something else. *value: after the '='
 * (or the blanks that may stand for it), or NULL. */
static size_t s_line_key(const char *line, size_t n, const char **start, const char **value)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t k = i;
    while (i < n && (isalnum((unsigned char)line[i]) || line[i] == '_' || line[i] == '.'))
        i++;
    if (i == k || isdigit((unsigned char)line[k]))
        return 0;
    *start = line + k;
    size_t len = i - k;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i < n && line[i] == '=')
        i++;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    *value = line + i;
    return len;
}

static bool s_key_is(const char *key, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(key, name, len) == 0;
}

char *recoveryconf_rewrite(const char *old, const char *conninfo, const char *slot)
{
    s_buf_t b = { 0 };
    for (const char *line = old; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *key = NULL, *value = NULL;
        size_t klen = s_line_key(line, n, &key, &value);
        bool ours = klen && (s_key_is(key, klen, "primary_conninfo") ||
                             s_key_is(key, klen, "primary_slot_name"));
        if (!ours) {
            s_put(&b, line, n);
            s_puts(&b, "\n");
        }
        line = nl ? nl + 1 : line + n;
    }
    char *qc = recoveryconf_guc_quote(conninfo);
    char *qs = recoveryconf_guc_quote(slot);
    s_puts(&b, "primary_conninfo = ");
    s_puts(&b, qc);
    s_puts(&b, "\nprimary_slot_name = ");
    s_puts(&b, qs);
    s_puts(&b, "\n");
    free(qc);
    free(qs);
    return s_done(&b);
}

/* The value of a postgresql.conf line ([v, v+n)), unquoted (the parser's
 * rules: '' and \' for a quote, \\ for a backslash). Caller frees. */
static char *s_unquote(const char *v, size_t n)
{
    s_buf_t b = { 0 };
    if (n == 0 || v[0] != '\'') {
        size_t k = 0;
        while (k < n && v[k] != ' ' && v[k] != '\t' && v[k] != '#' && v[k] != '\r')
            k++;
        s_put(&b, v, k);
        return s_done(&b);
    }
    for (size_t i = 1; i < n; i++) {
        if (v[i] == '\\' && i + 1 < n) {
            s_put(&b, v + ++i, 1);
        } else if (v[i] == '\'') {
            if (i + 1 < n && v[i + 1] == '\'')
                s_put(&b, v + ++i, 1);
            else
                break;
        } else {
            s_put(&b, v + i, 1);
        }
    }
    return s_done(&b);
}

bool recoveryconf_sets_slot(const char *text, const char *slot)
{
    bool sets = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *key = NULL, *value = NULL;
        size_t klen = s_line_key(line, n, &key, &value);
        if (klen && s_key_is(key, klen, "primary_slot_name")) {
            char *v = s_unquote(value, n - (size_t)(value - line));
            sets = strcmp(v, slot) == 0;
            free(v);
        }
        line = nl ? nl + 1 : line + n;
    }
    return sets;
}

bool recoveryconf_present(const char *dir, const char *slot)
{
    char *signal = xasprintf("%s/%s", dir, RECOVERYCONF_SIGNAL);
    bool there = access(signal, F_OK) == 0;
    free(signal);
    if (!there)
        return false;
    char *path = xasprintf("%s/%s", dir, RECOVERYCONF_AUTO);
    char *text = NULL;
    int rc = fsutil_read_small(path, S_AUTO_MAX, &text, NULL);
    free(path);
    bool sets = rc == 0 && recoveryconf_sets_slot(text, slot);
    free(text);
    return sets;
}

/* Gives path dir's owner when the agent is root (the server's user must
 * own its files: it rewrites postgresql.auto.conf on ALTER SYSTEM and
 * removes standby.signal on promotion). 0 or -errno. */
static int s_own_like(const char *path, const char *dir)
{
    if (geteuid() != 0)
        return 0;
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    if (chown(path, st.st_uid, st.st_gid) != 0)
        return -errno;
    return 0;
}

int recoveryconf_write(const char *dir, const char *conninfo, const char *slot,
                       const char **what)
{
    *what = RECOVERYCONF_AUTO;
    char *path = xasprintf("%s/%s", dir, RECOVERYCONF_AUTO);
    char *old = NULL;
    int rc = fsutil_read_small(path, S_AUTO_MAX, &old, NULL);
    if (rc == 0 || rc == -ENOENT) {
        char *text = recoveryconf_rewrite(old, conninfo, slot);
        rc = fsutil_write_atomic(path, text, strlen(text), 0600);
        if (rc == 0)
            rc = s_own_like(path, dir);
        free(text);
    }
    free(old);
    free(path);
    if (rc != 0)
        return rc;
    *what = RECOVERYCONF_SIGNAL;
    path = xasprintf("%s/%s", dir, RECOVERYCONF_SIGNAL);
    rc = fsutil_write_atomic(path, "", 0, 0600);
    if (rc == 0)
        rc = s_own_like(path, dir);
    free(path);
    return rc;
}
