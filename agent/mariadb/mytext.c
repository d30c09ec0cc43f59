/*
 * mytext: see mytext.h. SHOW GRANTS prints each grant as one statement,
 *   GRANT SELECT, INSERT ON `shop`.* TO `repl`@`%`
 *   GRANT SELECT (`id`) ON `shop`.`t` TO ...            (a column's)
 *   GRANT REPLICATION SLAVE ON *.* TO ... IDENTIFIED BY PASSWORD '...'
 *   GRANT `role` TO `user`@`%`                          (a role granted)
 * so a line is read as privileges, object and the rest, each keyword
 * found outside backticks, quotes and parentheses. MySQL 8 prints the
 * same shape (its dynamic privileges comma-separated without blanks).
 */
#include "mytext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

bool mytext_plain_name(const char *s)
{
    if (!s || !s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

void mytext_addn(mytext_buf_t *b, const char *str, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, str, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void mytext_add(mytext_buf_t *b, const char *str)
{
    mytext_addn(b, str, strlen(str));
}

char *mytext_ident(const char *ident)
{
    size_t n = 2;
    for (const char *c = ident; *c; c++)
        n += *c == '`' ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    *o++ = '`';
    for (const char *c = ident; *c; c++) {
        if (*c == '`')
            *o++ = '`';
        *o++ = *c;
    }
    *o++ = '`';
    *o = '\0';
    return out;
}

char *mytext_qname(const char *schema, const char *name)
{
    char *s = mytext_ident(schema), *n = mytext_ident(name);
    char *out = xasprintf("%s.%s", s, n);
    free(s);
    free(n);
    return out;
}

/* A run of decimal digits at *p (at most 5, so no overflow), moving *p
 * past it; false if there is none. */
static bool s_number(const char **p, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9' && n < 6) {
        v = v * 10 + (uint32_t)(**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || n > 5)
        return false;
    *out = v;
    return true;
}

uint32_t mytext_version_num(const char *s)
{
    if (!s)
        return 0;
    const char *p = s;
    uint32_t major, minor, patch = 0;
    if (!s_number(&p, &major) || *p++ != '.' || !s_number(&p, &minor))
        return 0;
    if (*p == '.') {
        p++;
        if (!s_number(&p, &patch))
            return 0;
    }
    if (minor > 99 || patch > 99 || major > 4000)
        return 0;
    return major * 10000 + minor * 100 + patch;
}

bool mytext_bool(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "ON") == 0 || strcasecmp(v, "YES") == 0 ||
                 strcasecmp(v, "TRUE") == 0);
}

bool mytext_db_match(const char *pattern, const char *name)
{
    for (;;) {
        char pc = *pattern;
        if (pc == '\0')
            return *name == '\0';
        if (pc == '%') {
            while (*pattern == '%')
                pattern++;
            if (*pattern == '\0')
                return true;
            for (const char *n = name; *n; n++)
                if (mytext_db_match(pattern, n))
                    return true;
            return false;
        }
        if (*name == '\0')
            return false;
        if (pc == '\\' && pattern[1]) {
            pattern++;
            pc = *pattern;
        } else if (pc == '_') {
            pattern++;
            name++;
            continue;
        }
        if (pc != *name)
            return false;
        pattern++;
        name++;
    }
}

/* ---- SHOW GRANTS --------------------------------------------------------- */

/* Where the keyword kw (" ON ", " TO ") starts in s, outside backticks,
 * quotes and parentheses; NULL if nowhere. */
static const char *s_find_top(const char *s, const char *kw)
{
    size_t kn = strlen(kw);
    char quote = 0;
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (quote) {
            if (*p == quote && p[1] == quote)
                p++; /* a doubled quote inside */
            else if (*p == quote)
                quote = 0;
            else if (*p == '\\' && quote != '`' && p[1])
                p++;
            continue;
        }
        if (*p == '`' || *p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            if (depth > 0)
                depth--;
        } else if (depth == 0 && strncasecmp(p, kw, kn) == 0) {
            return p;
        }
    }
    return NULL;
}

/* One identifier at *p, `quoted` (doubled backticks) or plain, copied
 * into a malloc'd string; *p moves past it. NULL if there is none. */
static char *s_ident(const char **p)
{
    const char *s = *p;
    if (*s == '`') {
        size_t cap = strlen(s), n = 0;
        char *out = xmalloc(cap + 1);
        for (s++; *s; s++) {
            if (*s == '`' && s[1] == '`') {
                out[n++] = '`';
                s++;
            } else if (*s == '`') {
                out[n] = '\0';
                *p = s + 1;
                return out;
            } else {
                out[n++] = *s;
            }
        }
        free(out); /* unterminated */
        return NULL;
    }
    size_t n = 0;
    while (s[n] && (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '$'))
        n++;
    if (n == 0)
        return NULL;
    char *out = xmalloc(n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
    return out;
}

/* The object of a grant: *.* (global), db.* (a database; *db set,
 * malloc'd), mysql.proc (the routines' definitions) or anything else (a
 * table, a routine, PROXY: not counted). */
typedef enum { S_OBJ_OTHER, S_OBJ_GLOBAL, S_OBJ_DB, S_OBJ_PROC } s_obj_t;

static s_obj_t s_object(const char *obj, size_t len, char **db)
{
    *db = NULL;
    if (len == 3 && strncmp(obj, "*.*", 3) == 0)
        return S_OBJ_GLOBAL;
    char *copy = xmalloc(len + 1);
    memcpy(copy, obj, len);
    copy[len] = '\0';
    const char *p = copy;
    char *name = s_ident(&p);
    s_obj_t kind = S_OBJ_OTHER;
    if (name && strcmp(p, ".*") == 0) {
        kind = S_OBJ_DB;
        *db = name;
        name = NULL;
    } else if (name && strcmp(name, "mysql") == 0 && *p == '.') {
        p++;
        char *table = s_ident(&p);
        if (table && strcmp(table, "proc") == 0 && *p == '\0')
            kind = S_OBJ_PROC;
        free(table);
    }
    free(name);
    free(copy);
    return kind;
}

/* Whether one privilege item (trimmed, len bytes) is the privilege word
 * priv on the whole object (no column list). */
static bool s_is(const char *item, size_t len, const char *priv)
{
    size_t n = strlen(priv);
    return len == n && strncasecmp(item, priv, n) == 0;
}

void mytext_grants_line(const char *line, const char *db, mytext_grants_t *g)
{
    if (!line || strncasecmp(line, "GRANT ", 6) != 0)
        return;
    const char *privs = line + 6;
    const char *on = s_find_top(privs, " ON ");
    if (!on)
        return; /* GRANT `role` TO ...: a role, not privileges */
    const char *obj = on + 4;
    const char *to = s_find_top(obj, " TO ");
    if (!to)
        return;
    const char *obj_end = to;
    while (obj_end > obj && obj_end[-1] == ' ')
        obj_end--;
    while (*obj == ' ')
        obj++;
    char *obj_db = NULL;
    s_obj_t kind = s_object(obj, (size_t)(obj_end - obj), &obj_db);
    bool on_db = kind == S_OBJ_DB && db && mytext_db_match(obj_db, db);
    bool on_mysql = kind == S_OBJ_PROC || (kind == S_OBJ_DB && mytext_db_match(obj_db, "mysql"));
    free(obj_db);
    if (kind == S_OBJ_OTHER || (kind == S_OBJ_DB && !on_db && !on_mysql))
        return;
    bool here = kind == S_OBJ_GLOBAL || on_db; /* the database's privileges */
    /* The privileges: items separated by commas outside parentheses; an
     * item with a column list ("SELECT (`id`)") is a column's. */
    const char *p = privs;
    while (p < on) {
        while (p < on && (*p == ' ' || *p == ','))
            p++;
        const char *start = p;
        int depth = 0;
        while (p < on && (depth > 0 || *p != ',')) {
            if (*p == '(')
                depth++;
            else if (*p == ')' && depth > 0)
                depth--;
            p++;
        }
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        size_t len = (size_t)(end - start);
        if (len == 0)
            continue;
        bool all = s_is(start, len, "ALL PRIVILEGES") || s_is(start, len, "ALL");
        bool select = all || s_is(start, len, "SELECT");
        if (here && select)
            g->select_db = true;
        if ((kind == S_OBJ_GLOBAL || on_mysql) && select)
            g->proc_select = true;
        if (here && (all || s_is(start, len, "SHOW VIEW")))
            g->show_view = true;
        if (here && (all || s_is(start, len, "TRIGGER")))
            g->trigger = true;
        if (here && (all || s_is(start, len, "EVENT")))
            g->event = true;
        if (kind == S_OBJ_GLOBAL && (all || s_is(start, len, "REPLICATION SLAVE")))
            g->replication_slave = true;
        if (kind == S_OBJ_GLOBAL && (all || s_is(start, len, "RELOAD")))
            g->reload = true;
    }
}

char *mytext_grants_grantee(const char *line)
{
    if (!line || strncasecmp(line, "GRANT ", 6) != 0)
        return NULL;
    const char *to = s_find_top(line + 6, " TO ");
    if (!to)
        return NULL;
    const char *start = to + 4;
    /* Up to the first blank outside quotes: `user`@`host`, `role`. */
    const char *end = s_find_top(start, " ");
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n == 0)
        return NULL;
    char *out = xmalloc(n + 1);
    memcpy(out, start, n);
    out[n] = '\0';
    return out;
}
