/*
 * access_roles: see access_roles.h. Roles by name, attributes as CREATE
 * ROLE and ALTER ROLE options, memberships as GRANT and REVOKE; settings
 * through access_setting.h.
 */
#include "access_roles.h"

#include <stdlib.h>
#include <string.h>

#include "access_buf.h"
#include "access_json.h"
#include "access_setting.h"
#include "xalloc.h"

static const struct {
    const char *key, *on, *off;
} s_attrs[] = {
    { "login", "LOGIN", "NOLOGIN" },
    { "inherit", "INHERIT", "NOINHERIT" },
    { "createdb", "CREATEDB", "NOCREATEDB" },
    { "createrole", "CREATEROLE", "NOCREATEROLE" },
    { "replication", "REPLICATION", "NOREPLICATION" },
    { "bypassrls", "BYPASSRLS", "NOBYPASSRLS" },
};

static int s_connlimit(const cJSON *role)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(role, "connlimit");
    return cJSON_IsNumber(n) ? n->valueint : -1;
}

/* CREATE ROLE as the source has it, never with SUPERUSER. Caller frees. */
static char *s_create_role_sql(access_cmp_t *c, const cJSON *role)
{
    access_buf_t b = { 0 };
    char *name = access_cmp_ident(c, access_json_str(role, "name"));
    access_buf_addf(&b, "CREATE ROLE %s WITH NOSUPERUSER", name);
    for (size_t i = 0; i < sizeof s_attrs / sizeof *s_attrs; i++)
        access_buf_addf(&b, " %s",
                        access_json_true(role, s_attrs[i].key) ? s_attrs[i].on : s_attrs[i].off);
    access_buf_addf(&b, " CONNECTION LIMIT %d", s_connlimit(role));
    const char *until = access_json_str(role, "validuntil");
    if (until) {
        char *lit = access_cmp_literal(c, until);
        access_buf_addf(&b, " VALID UNTIL %s", lit);
        free(lit);
    }
    access_buf_addf(&b, ";");
    free(name);
    return access_buf_take(&b);
}

/* GRANT group TO member with the membership's options as the source has
 * them (inherit and set only where both sides know them: 16 and later).
 * Caller frees. */
char *access_roles_grant_sql(access_cmp_t *c, const char *member, const cJSON *m)
{
    char *g = access_cmp_ident(c, access_cmp_owner_on_target(c, access_json_str(m, "role")));
    char *r = access_cmp_ident(c, member);
    access_buf_t opts = { 0 };
    if (access_json_true(m, "admin"))
        access_buf_addf(&opts, "ADMIN OPTION");
    if (c->dst_version >= 160000) {
        const cJSON *inh = cJSON_GetObjectItemCaseSensitive(m, "inherit");
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(m, "set");
        if (cJSON_IsBool(inh))
            access_buf_addf(&opts, "%sINHERIT %s", opts.n ? ", " : "",
                            cJSON_IsTrue(inh) ? "TRUE" : "FALSE");
        if (cJSON_IsBool(set))
            access_buf_addf(&opts, "%sSET %s", opts.n ? ", " : "",
                            cJSON_IsTrue(set) ? "TRUE" : "FALSE");
    }
    char *o = access_buf_take(&opts);
    char *sql = xasprintf("GRANT %s TO %s%s%s;", g, r, o[0] ? " WITH " : "", o);
    free(o);
    free(g);
    free(r);
    return sql;
}

/* A membership of member in a superuser: what SET ROLE turns into one. */
bool access_roles_superuser_membership(const access_cmp_t *c, const cJSON *m)
{
    return access_json_true(m, "super") || access_json_eq(access_json_str(m, "role"), c->src_boot);
}

/* The statements that create role on the target as the source has it:
 * CREATE ROLE, its memberships (not in a superuser) and its settings.
 * Counted into plan when given. Each statement is added to stmts. */
void access_roles_create(access_cmp_t *c, const cJSON *role,
                         void (*add)(void *arg, char *sql, int what), void *arg)
{
    const char *name = access_json_str(role, "name");
    add(arg, s_create_role_sql(c, role), 0);
    const cJSON *m;
    cJSON_ArrayForEach(m, access_json_arr(role, "memberof"))
        if (!access_roles_superuser_membership(c, m))
            add(arg, access_roles_grant_sql(c, name, m), 1);
    const cJSON *v;
    cJSON_ArrayForEach(v, access_json_arr(role, "config"))
        if (cJSON_IsString(v))
            add(arg, access_setting_stmt(c, name, false, v->valuestring, NULL), 2);
    cJSON_ArrayForEach(v, access_json_arr(role, "dbconfig"))
        if (cJSON_IsString(v))
            add(arg, access_setting_stmt(c, name, true, v->valuestring, NULL), 2);
}

static void s_join_add(void *arg, char *sql, int what)
{
    (void)what;
    access_buf_t *b = arg;
    access_buf_addf(b, "%s%s", b->n ? " " : "", sql);
    free(sql);
}

/* The memberships of one role that exists on both sides. */
static void s_memberships_compare(access_cmp_t *c, const char *name, const cJSON *sr,
                                  const cJSON *dr, access_buf_t *stmt, access_buf_t *problem)
{
    const cJSON *sm = access_json_arr(sr, "memberof"), *dm = access_json_arr(dr, "memberof");
    const cJSON *m;
    cJSON_ArrayForEach(m, sm) {
        const char *g = access_json_str(m, "role");
        const cJSON *d = access_json_by_name(dm, "role", access_cmp_owner_on_target(c, g));
        bool differs = !d || access_json_true(m, "admin") != access_json_true(d, "admin");
        if (d && c->dst_version >= 160000) {
            const char *opt[2] = { "inherit", "set" };
            for (int k = 0; k < 2; k++) {
                const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, opt[k]);
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, opt[k]);
                if (cJSON_IsBool(a) && cJSON_IsBool(b) && cJSON_IsTrue(a) != cJSON_IsTrue(b))
                    differs = true;
            }
        }
        if (!differs)
            continue;
        access_buf_addf(problem, "%s%s in %s%s on the source", problem->n ? "; " : "",
                        d ? "a membership with other options" : "a member", g,
                        access_json_true(m, "admin") ? " (with admin option)" : "");
        char *sql = access_roles_grant_sql(c, name, m);
        access_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
        free(sql);
        if (d && !access_json_true(m, "admin") && access_json_true(d, "admin")) {
            char *gq = access_cmp_ident(c, access_cmp_owner_on_target(c, g)),
                 *rq = access_cmp_ident(c, name);
            access_buf_addf(stmt, " REVOKE ADMIN OPTION FOR %s FROM %s;", gq, rq);
            free(gq);
            free(rq);
        }
    }
    cJSON_ArrayForEach(m, dm) {
        const char *g = access_json_str(m, "role");
        const char *on_src = access_json_eq(g, c->dst_boot) ? c->src_boot : g;
        if (access_json_by_name(sm, "role", on_src))
            continue;
        access_buf_addf(problem, "%sa member of %s on the target only", problem->n ? "; " : "", g);
        char *gq = access_cmp_ident(c, g), *rq = access_cmp_ident(c, name);
        access_buf_addf(stmt, "%sREVOKE %s FROM %s;", stmt->n ? " " : "", gq, rq);
        free(gq);
        free(rq);
    }
}

void access_roles_compare(access_cmp_t *c)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, access_json_arr(c->src, "missing")) {
        const char *name = cJSON_GetStringValue(it);
        if (name)
            access_cmp_diff(c, ACCESS_APP_ROLE_UNKNOWN, false, xasprintf("role %s", name),
                            xasprintf("the application role %s does not exist on the source", name),
                            NULL);
    }
    const cJSON *sr;
    cJSON_ArrayForEach(sr, access_json_arr(c->src, "roles")) {
        const char *name = access_json_str(sr, "name");
        if (!name)
            continue;
        const cJSON *dr = access_json_by_name(access_json_arr(c->dst, "roles"), "name", name);
        if (!dr && !access_cmp_dst_has_role(c, name)) {
            access_buf_t b = { 0 };
            access_roles_create(c, sr, s_join_add, &b);
            const cJSON *m;
            const char *super_group = NULL;
            cJSON_ArrayForEach(m, access_json_arr(sr, "memberof"))
                if (access_roles_superuser_membership(c, m))
                    super_group = access_json_str(m, "role");
            if (super_group && !access_json_true(sr, "super"))
                access_cmp_diff(
                    c, ACCESS_ROLE_SUPERUSER, true, xasprintf("role %s", name),
                    xasprintf("role %s is a member of the superuser %s on the source and does "
                              "not exist on the target (godwit creates it only without that "
                              "membership)",
                              name, super_group),
                    access_buf_take(&b));
            else if (access_json_true(sr, "super"))
                access_cmp_diff(
                    c, ACCESS_ROLE_SUPERUSER, true, xasprintf("role %s", name),
                    xasprintf("role %s is a superuser on the source and does not exist on "
                              "the target (godwit creates it only without SUPERUSER)",
                              name),
                    access_buf_take(&b));
            else
                access_cmp_diff(c, ACCESS_ROLE_MISSING, true, xasprintf("role %s", name),
                                xasprintf("role %s does not exist on the target", name),
                                access_buf_take(&b));
            continue;
        }
        if (!dr)
            continue; /* the target's bootstrap superuser: not described, not comparable */
        access_buf_t stmt = { 0 }, problem = { 0 };
        /* attributes */
        access_buf_t attrs = { 0 };
        bool super = access_json_true(sr, "super");
        if (super != access_json_true(dr, "super")) {
            access_buf_addf(&attrs, " %s", super ? "SUPERUSER" : "NOSUPERUSER");
            access_buf_addf(&problem, "%s on the source only", super ? "SUPERUSER" : "NOSUPERUSER");
        }
        for (size_t i = 0; i < sizeof s_attrs / sizeof *s_attrs; i++) {
            bool a = access_json_true(sr, s_attrs[i].key), b = access_json_true(dr, s_attrs[i].key);
            if (a == b || (c->fenced && i == 0 && a && !b))
                continue; /* our fence holds LOGIN back on a fenced target */
            access_buf_addf(&attrs, " %s", a ? s_attrs[i].on : s_attrs[i].off);
            access_buf_addf(&problem, "%s%s on the source, %s on the target", problem.n ? "; " : "",
                            a ? s_attrs[i].on : s_attrs[i].off, b ? s_attrs[i].on : s_attrs[i].off);
        }
        if (s_connlimit(sr) != s_connlimit(dr)) {
            access_buf_addf(&attrs, " CONNECTION LIMIT %d", s_connlimit(sr));
            access_buf_addf(&problem, "%sCONNECTION LIMIT %d on the source, %d on the target",
                            problem.n ? "; " : "", s_connlimit(sr), s_connlimit(dr));
        }
        const char *su = access_json_str(sr, "validuntil"), *du = access_json_str(dr, "validuntil");
        if (!access_json_eq(su, du)) {
            char *lit = access_cmp_literal(c, su ? su : "infinity");
            access_buf_addf(&attrs, " VALID UNTIL %s", lit);
            free(lit);
            access_buf_addf(&problem, "%sVALID UNTIL %s on the source, %s on the target",
                            problem.n ? "; " : "", su ? su : "(none)", du ? du : "(none)");
        }
        if (attrs.n) {
            char *r = access_cmp_ident(c, name);
            access_buf_addf(&stmt, "ALTER ROLE %s%s;", r, attrs.s);
            free(r);
        }
        free(access_buf_take(&attrs));
        s_memberships_compare(c, name, sr, dr, &stmt, &problem);
        access_setting_compare(c, name, false, access_json_arr(sr, "config"),
                               access_json_arr(dr, "config"), &stmt, &problem);
        access_setting_compare(c, name, true, access_json_arr(sr, "dbconfig"),
                               access_json_arr(dr, "dbconfig"), &stmt, &problem);
        if (problem.n) {
            char *p = access_buf_take(&problem);
            bool to_super = (super && !access_json_true(dr, "super"));
            access_cmp_diff(c, to_super ? ACCESS_ROLE_SUPERUSER : ACCESS_ROLE, false,
                            xasprintf("role %s", name), xasprintf("role %s differs: %s", name, p),
                            access_buf_take(&stmt));
            free(p);
        } else {
            free(access_buf_take(&stmt));
        }
    }
}

/* ---- the bootstrap superuser --------------------------------------------- */

void access_roles_bootstrap_compare(access_cmp_t *c)
{
    if (strcmp(c->src_boot, c->dst_boot) == 0)
        return;
    size_t owned = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, access_json_arr(c->src, "objects"))
        owned +=
            access_json_eq(access_json_str(o, "owner"), c->src_boot) && !access_json_true(o, "ext");
    cJSON_ArrayForEach(o, access_json_arr(c->src, "defacls"))
        owned += access_json_eq(access_json_str(o, "role"), c->src_boot);
    if (!owned)
        return;
    /* absent: the target has no role of that name, so a restore that names
     * owners cannot give them to it */
    bool absent = access_json_in_strings(access_json_arr(c->dst, "missing"), c->src_boot);
    access_cmp_diff(
        c, ACCESS_BOOTSTRAP, absent, xasprintf("role %s", c->src_boot),
        xasprintf("the source's bootstrap superuser is %s, the target's is %s: %zu objects "
                  "and default privileges of %s on the source %s",
                  c->src_boot, c->dst_boot, owned, c->src_boot,
                  absent ? "name a role the target does not have"
                         : "would belong to the target's role of that name, which is not "
                           "its bootstrap superuser"),
        NULL);
}
