/*
 * access_setting: see access_setting.h. Splits list settings the way the
 * server stores them and writes ALTER ROLE ... SET / RESET.
 */
#include "access_setting.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* GUC_LIST_QUOTE settings: stored as a list whose elements may be double
 * quoted; set again element by element. */
static const char *const s_list_settings[] = {
    "local_preload_libraries", "search_path",       "session_preload_libraries",
    "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories",
};

static bool s_is_list_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof s_list_settings / sizeof *s_list_settings; i++)
        if (strlen(s_list_settings[i]) == len && strncasecmp(name, s_list_settings[i], len) == 0)
            return true;
    return false;
}

char *access_setting_sql(const char *setting, const access_quote_t *q)
{
    const char *eq = setting ? strchr(setting, '=') : NULL;
    if (!eq || eq == setting)
        return NULL;
    char *name = xasprintf("%.*s", (int)(eq - setting), setting);
    char *qname = q->ident(q->ctx, name);
    const char *value = eq + 1;
    access_buf_t b = { 0 };
    bool ok = qname != NULL;
    if (ok)
        access_buf_addf(&b, "%s TO ", qname);
    if (ok && s_is_list_setting(name, strlen(name))) {
        /* "a, \"b c\", d": split at commas outside double quotes; "" inside
         * quotes is one quote; whitespace around an element goes. */
        const char *p = value;
        bool first = true;
        while (ok) {
            while (*p == ' ' || *p == '\t')
                p++;
            access_buf_t el = { 0 };
            if (*p == '"') {
                p++;
                while (*p && !(*p == '"' && p[1] != '"')) {
                    if (*p == '"')
                        p++;
                    access_buf_addf(&el, "%c", *p++);
                }
                if (*p == '"')
                    p++;
                while (*p == ' ' || *p == '\t')
                    p++;
            } else {
                const char *start = p;
                while (*p && *p != ',')
                    p++;
                const char *end = p;
                while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                    end--;
                access_buf_addf(&el, "%.*s", (int)(end - start), start);
            }
            char *text = access_buf_take(&el);
            char *lit = q->literal(q->ctx, text);
            free(text);
            if (!lit) {
                ok = false;
                break;
            }
            access_buf_addf(&b, "%s%s", first ? "" : ", ", lit);
            free(lit);
            first = false;
            if (*p != ',')
                break;
            p++;
        }
    } else if (ok) {
        char *lit = q->literal(q->ctx, value);
        if (lit)
            access_buf_addf(&b, "%s", lit);
        ok = lit != NULL;
        free(lit);
    }
    free(name);
    free(qname);
    char *out = access_buf_take(&b);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* "ALTER ROLE r [IN DATABASE d] SET ..." (value NULL: RESET name). Caller
 * frees. */
char *access_setting_stmt(access_cmp_t *c, const char *role, bool in_db, const char *setting,
                          const char *reset_name)
{
    char *r = access_cmp_ident(c, role);
    char *d = in_db ? access_cmp_ident(c, c->dst_db) : NULL;
    char *what;
    if (reset_name) {
        char *n = access_cmp_ident(c, reset_name);
        what = xasprintf("RESET %s", n);
        free(n);
    } else {
        char *set = access_setting_sql(setting, c->q);
        if (!set && !c->err)
            c->err = xasprintf("cannot write role %s's setting \"%s\" as SQL", role, setting);
        what = xasprintf("SET %s", set ? set : setting);
        free(set);
    }
    char *sql = d ? xasprintf("ALTER ROLE %s IN DATABASE %s %s;", r, d, what)
                  : xasprintf("ALTER ROLE %s %s;", r, what);
    free(what);
    free(d);
    free(r);
    return sql;
}

/* The setting name of "name=value" (caller frees). */
static char *s_setting_name(const char *setting)
{
    const char *eq = strchr(setting, '=');
    return eq ? xasprintf("%.*s", (int)(eq - setting), setting) : xstrdup(setting);
}

/* The entry of list whose name is that of setting, or NULL. */
static const char *s_setting_find(const cJSON *list, const char *name)
{
    size_t n = strlen(name);
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *v = cJSON_GetStringValue(it);
        if (v && strncasecmp(v, name, n) == 0 && v[n] == '=')
            return v;
    }
    return NULL;
}

/* Settings of role, from the source's list to the target's. */
void access_setting_compare(access_cmp_t *c, const char *role, bool in_db, const cJSON *sl,
                            const cJSON *dl, access_buf_t *stmt, access_buf_t *problem)
{
    const char *where = in_db ? " in the database" : "";
    const cJSON *it;
    cJSON_ArrayForEach(it, sl) {
        const char *v = cJSON_GetStringValue(it);
        if (!v)
            continue;
        char *name = s_setting_name(v);
        const char *d = s_setting_find(dl, name);
        if (!d || strcmp(d, v) != 0) {
            char *sql = access_setting_stmt(c, role, in_db, v, NULL);
            access_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
            access_buf_addf(problem, "%s%s is %s on the source, %s on the target",
                            problem->n ? "; " : "", name, v + strlen(name) + 1,
                            d ? d + strlen(name) + 1 : "not set");
            free(sql);
        }
        free(name);
    }
    cJSON_ArrayForEach(it, dl) {
        const char *v = cJSON_GetStringValue(it);
        if (!v)
            continue;
        char *name = s_setting_name(v);
        if (!s_setting_find(sl, name)) {
            char *sql = access_setting_stmt(c, role, in_db, NULL, name);
            access_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
            access_buf_addf(problem, "%s%s is set%s on the target only", problem->n ? "; " : "",
                            name, where);
            free(sql);
        }
        free(name);
    }
}
