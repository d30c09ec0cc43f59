/*
 * access_policies: see access_policies.h. CREATE POLICY as the source has
 * it, DROP POLICY for what the target has only.
 */
#include "access_policies.h"

#include <stdlib.h>
#include <string.h>

#include "access_buf.h"
#include "access_json.h"
#include "access_objects.h"
#include "xalloc.h"

static const char *s_policy_cmd(const char *cmd)
{
    switch (cmd && cmd[0] && !cmd[1] ? cmd[0] : 0) {
    case 'r':
        return "SELECT";
    case 'a':
        return "INSERT";
    case 'w':
        return "UPDATE";
    case 'd':
        return "DELETE";
    default:
        return "ALL";
    }
}

/* qsort's comparison of two char * elements (qsort passes their addresses). */
static int s_strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A policy's roles as sorted tokens joined by ",", to compare. Caller
 * frees. */
static char *s_policy_roles_key(const cJSON *p, const char *boot)
{
    const cJSON *roles = access_json_arr(p, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    char **v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *v);
    size_t k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
        v[k++] = access_cmp_who(cJSON_IsString(r) ? r->valuestring : NULL, NULL, boot);
    qsort(v, k, sizeof *v, s_strptr_cmp);
    access_buf_t b = { 0 };
    for (size_t i = 0; i < k; i++) {
        access_buf_addf(&b, "%s%s", i ? "," : "", v[i]);
        free(v[i]);
    }
    free(v);
    return access_buf_take(&b);
}


/* CREATE POLICY as the source has it. Caller frees. */
static char *s_create_policy_sql(access_cmp_t *c, const cJSON *p)
{
    char *name = access_cmp_ident(c, access_json_str(p, "name"));
    access_buf_t roles = { 0 };
    const cJSON *r;
    const cJSON *list = access_json_arr(p, "roles");
    int n = list ? cJSON_GetArraySize(list) : 0;
    char **v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *v);
    size_t k = 0;
    cJSON_ArrayForEach(r, list) {
        char *who = access_cmp_who(cJSON_IsString(r) ? r->valuestring : NULL, NULL, c->src_boot);
        v[k++] = access_cmp_who_sql(c, who, NULL);
        free(who);
    }
    qsort(v, k, sizeof *v, s_strptr_cmp);
    for (size_t i = 0; i < k; i++) {
        access_buf_addf(&roles, "%s%s", i ? ", " : "", v[i]);
        free(v[i]);
    }
    free(v);
    char *rl = access_buf_take(&roles);
    const char *qual = access_json_str(p, "qual"), *check = access_json_str(p, "check");
    access_buf_t b = { 0 };
    access_buf_addf(&b, "CREATE POLICY %s ON %s AS %s FOR %s TO %s", name,
                    access_json_str(p, "table"),
                    access_json_true(p, "permissive") ? "PERMISSIVE" : "RESTRICTIVE",
                    s_policy_cmd(access_json_str(p, "cmd")), rl[0] ? rl : "PUBLIC");
    if (qual)
        access_buf_addf(&b, " USING (%s)", qual);
    if (check)
        access_buf_addf(&b, " WITH CHECK (%s)", check);
    access_buf_addf(&b, ";");
    free(rl);
    free(name);
    return access_buf_take(&b);
}

static const cJSON *s_policy_find(const cJSON *doc, const char *table, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, access_json_arr(doc, "policies"))
        if (access_json_eq(access_json_str(p, "table"), table) &&
            access_json_eq(access_json_str(p, "name"), name))
            return p;
    return NULL;
}

/* Whether doc has a table (any relation that can have policies) of this
 * identity. */
static bool s_has_table(const cJSON **index, size_t n, const char *id)
{
    static const char *const kinds[] = { "table", "view", "materialized view", "foreign table" };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        cJSON *key = cJSON_CreateObject();
        cJSON_AddStringToObject(key, "type", kinds[i]);
        cJSON_AddStringToObject(key, "id", id);
        bool found = access_objects_find(index, n, key) != NULL;
        cJSON_Delete(key);
        if (found)
            return true;
    }
    return false;
}

void access_policies_compare(access_cmp_t *c, const cJSON **dindex, size_t dn)
{
    const cJSON *sp;
    cJSON_ArrayForEach(sp, access_json_arr(c->src, "policies")) {
        const char *table = access_json_str(sp, "table"), *name = access_json_str(sp, "name");
        if (!table || !name || !s_has_table(dindex, dn, table))
            continue;
        const cJSON *dp = s_policy_find(c->dst, table, name);
        char *object = xasprintf("policy %s on %s", name, table);
        if (!dp) {
            access_cmp_diff(c, ACCESS_POLICY, true, object,
                            xasprintf("policy %s on %s exists on the source only", name, table),
                            s_create_policy_sql(c, sp));
            continue;
        }
        char *sk = s_policy_roles_key(sp, c->src_boot), *dk = s_policy_roles_key(dp, c->dst_boot);
        access_buf_t problem = { 0 };
        if (!access_json_eq(access_json_str(sp, "cmd"), access_json_str(dp, "cmd")))
            access_buf_addf(&problem, "it is FOR %s on the source, FOR %s on the target",
                            s_policy_cmd(access_json_str(sp, "cmd")),
                            s_policy_cmd(access_json_str(dp, "cmd")));
        if (access_json_true(sp, "permissive") != access_json_true(dp, "permissive"))
            access_buf_addf(&problem, "%sit is %s on the source only", problem.n ? "; " : "",
                            access_json_true(sp, "permissive") ? "PERMISSIVE" : "RESTRICTIVE");
        if (strcmp(sk, dk) != 0)
            access_buf_addf(&problem, "%sits roles differ", problem.n ? "; " : "");
        if (!access_json_eq(access_json_str(sp, "qual"), access_json_str(dp, "qual")))
            access_buf_addf(&problem, "%sUSING is (%s) on the source, (%s) on the target",
                            problem.n ? "; " : "",
                            access_json_str(sp, "qual") ? access_json_str(sp, "qual") : "none",
                            access_json_str(dp, "qual") ? access_json_str(dp, "qual") : "none");
        if (!access_json_eq(access_json_str(sp, "check"), access_json_str(dp, "check")))
            access_buf_addf(&problem, "%sWITH CHECK is (%s) on the source, (%s) on the target",
                            problem.n ? "; " : "",
                            access_json_str(sp, "check") ? access_json_str(sp, "check") : "none",
                            access_json_str(dp, "check") ? access_json_str(dp, "check") : "none");
        free(sk);
        free(dk);
        if (problem.n) {
            char *pname = access_cmp_ident(c, name);
            char *create = s_create_policy_sql(c, sp);
            char *p = access_buf_take(&problem);
            access_cmp_diff(c, ACCESS_POLICY, false, object,
                            xasprintf("policy %s on %s differs: %s", name, table, p),
                            xasprintf("DROP POLICY %s ON %s; %s", pname, table, create));
            free(p);
            free(create);
            free(pname);
        } else {
            free(object);
        }
    }
    const cJSON *dp;
    cJSON_ArrayForEach(dp, access_json_arr(c->dst, "policies")) {
        const char *table = access_json_str(dp, "table"), *name = access_json_str(dp, "name");
        if (!table || !name || s_policy_find(c->src, table, name))
            continue;
        char *pname = access_cmp_ident(c, name);
        access_cmp_diff(c, ACCESS_POLICY, false, xasprintf("policy %s on %s", name, table),
                        xasprintf("policy %s on %s exists on the target only", name, table),
                        xasprintf("DROP POLICY %s ON %s;", pname, table));
        free(pname);
    }
}
