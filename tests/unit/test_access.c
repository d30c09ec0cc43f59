/*
 * test_access: agent/pg/access.c and its parts (access_*.c), the
 * comparison of two access catalogs (the JSON documents access_catalog_sql
 * reads on each side) and the roles step's plan: what counts as a
 * difference, what does not (the fence's LOGIN, the bootstrap superuser's
 * name, an owner's own privileges when the owner differs), and the
 * statement each difference comes with. The
 * documents are written here by hand in the catalog's shape; the
 * integration test test_roles.py reads real ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "access.h"
#include "access_plan.h"
#include "access_setting.h"
#include "xalloc.h"

/* Quoting as PQescapeIdentifier and PQescapeLiteral do it for plain text. */
static char *q_ident(void *ctx, const char *s)
{
    (void)ctx;
    size_t n = strlen(s);
    char *out = xmalloc(2 * n + 3), *o = out;
    *o++ = '"';
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            *o++ = '"';
        *o++ = *p;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static char *q_literal(void *ctx, const char *s)
{
    (void)ctx;
    size_t n = strlen(s);
    char *out = xmalloc(2 * n + 3), *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            *o++ = '\'';
        *o++ = *p;
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static const access_quote_t Q = { .ident = q_ident, .literal = q_literal, .ctx = NULL };

/* A catalog from JSON written with ' for " (readable in C). */
static cJSON *doc(const char *text)
{
    char *t = xstrdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    char *err = NULL;
    cJSON *d = access_parse(t, &err);
    if (!d)
        fail_msg("%s: %s", err, t);
    free(t);
    return d;
}

/* A JSON value written with ' for ". */
static cJSON *doc_value(const char *text)
{
    char *t = xstrdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *v = cJSON_Parse(t);
    assert_non_null(v);
    free(t);
    return v;
}

/* A whole catalog around the parts given (each a JSON value or ""). */
static cJSON *catalog(const char *boot, const char *roles, const char *objects,
                      const char *defacls, const char *policies)
{
    char *t = xasprintf("{'version': 150000, 'db': 'shop', 'bootstrap': '%s', 'authid': true,"
                        " 'owner': '%s', 'acl': [[null, 'CONNECT', false], ['%s', 'CONNECT', false],"
                        " ['%s', 'CREATE', false], ['%s', 'TEMPORARY', false]],"
                        " 'missing': [], 'roles': [%s], 'objects': [%s], 'defacls': [%s],"
                        " 'policies': [%s]}",
                        boot, boot, boot, boot, boot, roles, objects, defacls, policies);
    cJSON *d = doc(t);
    free(t);
    return d;
}

#define ROLE_APP                                                                               \
    "{'name': 'app', 'super': false, 'inherit': true, 'createrole': false, 'createdb': false," \
    " 'login': true, 'replication': false, 'bypassrls': false, 'connlimit': -1,"               \
    " 'validuntil': null, 'config': [], 'dbconfig': [], 'memberof': []}"

#define TABLE_T(owner, acl)                                                                    \
    "{'type': 'table', 'id': 'public.t', 'owner': '" owner "', 'ext': false, 'acl': " acl     \
    ", 'rls': [false, false], 'cols': null}"

#define OWNER_ALL(o)                                                                           \
    "['" o "', 'INSERT', false], ['" o "', 'SELECT', false], ['" o "', 'UPDATE', false],"     \
    " ['" o "', 'DELETE', false], ['" o "', 'TRUNCATE', false], ['" o "', 'REFERENCES', false]," \
    " ['" o "', 'TRIGGER', false]"

static access_diffs_t compare(const cJSON *src, const cJSON *dst, bool fenced)
{
    access_diffs_t d = { 0 };
    char *err = NULL;
    if (!access_compare(src, dst, fenced, &Q, &d, &err))
        fail_msg("compare: %s", err);
    return d;
}

static void print_diffs(const access_diffs_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_message("  %s | %s | %s | %s\n", access_kind_code(d->v[i].kind), d->v[i].object,
                      d->v[i].problem, d->v[i].statement);
}

static void test_same_catalog_no_difference(void **state)
{
    (void)state;
    cJSON *a = catalog("postgres", ROLE_APP, TABLE_T("app", "[" OWNER_ALL("app") "]"), "", "");
    cJSON *b = catalog("postgres", ROLE_APP, TABLE_T("app", "[" OWNER_ALL("app") "]"), "", "");
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 0);
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* The bootstrap superuser is compared as such: owning the database and a
 * table on both sides is the same, whatever its name. */
static void test_bootstrap_by_role_not_name(void **state)
{
    (void)state;
    cJSON *a = catalog("postgres", "", TABLE_T("postgres", "[" OWNER_ALL("postgres") "]"), "", "");
    cJSON *b = catalog("admin", "", TABLE_T("admin", "[" OWNER_ALL("admin") "]"), "", "");
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    /* only the information that the names differ */
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].kind, ACCESS_BOOTSTRAP);
    assert_string_equal(d.v[0].statement, "");
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* A role missing on the target: CREATE ROLE with its attributes (never
 * SUPERUSER), its memberships and its settings, list settings element by
 * element; a name with a quote, a space and a non-ASCII letter quoted. */
static void test_missing_role_statement(void **state)
{
    (void)state;
    /* written with real JSON quoting: the name holds a ', the setting a " */
    static const char src[] =
        "{\"version\": 150000, \"db\": \"shop\", \"bootstrap\": \"postgres\", \"authid\": true,"
        " \"owner\": \"postgres\", \"acl\": [[null, \"CONNECT\", false],"
        " [\"postgres\", \"CONNECT\", false], [\"postgres\", \"CREATE\", false],"
        " [\"postgres\", \"TEMPORARY\", false]], \"missing\": [], \"objects\": [],"
        " \"defacls\": [], \"policies\": [], \"roles\": [{\"name\": \"we'ird \u00fc\","
        " \"super\": false, \"inherit\": false, \"createrole\": true, \"createdb\": false,"
        " \"login\": true, \"replication\": false, \"bypassrls\": true, \"connlimit\": 5,"
        " \"validuntil\": \"2031-02-03 02:05:06.000000+00\","
        " \"config\": [\"search_path=app, \\\"$user\\\", public\", \"work_mem=8MB\"],"
        " \"dbconfig\": [\"statement_timeout=5s\"],"
        " \"memberof\": [{\"role\": \"grp\", \"super\": false, \"admin\": true,"
        " \"inherit\": null, \"set\": null}, {\"role\": \"boss\", \"super\": true,"
        " \"admin\": false, \"inherit\": null, \"set\": null}]}]}";
    char *err = NULL;
    cJSON *a = access_parse(src, &err);
    assert_non_null(a);
    cJSON *b = catalog("postgres", "", "", "", "");
    cJSON_DeleteItemFromObject(b, "missing");
    cJSON *miss = cJSON_AddArrayToObject(b, "missing");
    cJSON_AddItemToArray(miss, cJSON_CreateString("we'ird \xc3\xbc"));
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 1);
    /* a member of a superuser: preflight must block on it, not just inform */
    assert_int_equal(d.v[0].kind, ACCESS_ROLE_SUPERUSER);
    assert_non_null(strstr(d.v[0].problem, "member of the superuser boss"));
    assert_true(d.v[0].absent);
    assert_string_equal(
        d.v[0].statement,
        "CREATE ROLE \"we'ird \xc3\xbc\" WITH NOSUPERUSER LOGIN NOINHERIT NOCREATEDB CREATEROLE "
        "NOREPLICATION BYPASSRLS CONNECTION LIMIT 5 VALID UNTIL '2031-02-03 02:05:06.000000+00'; "
        "GRANT \"grp\" TO \"we'ird \xc3\xbc\" WITH ADMIN OPTION; "
        "ALTER ROLE \"we'ird \xc3\xbc\" SET \"search_path\" TO 'app', '$user', 'public'; "
        "ALTER ROLE \"we'ird \xc3\xbc\" SET \"work_mem\" TO '8MB'; "
        "ALTER ROLE \"we'ird \xc3\xbc\" IN DATABASE \"shop\" SET \"statement_timeout\" TO '5s';");
    /* membership in a superuser: not in the statement (SET ROLE would make
     * the role one) */
    assert_null(strstr(d.v[0].statement, "boss"));
    access_diffs_free(&d);

    /* The roles step's plan: CREATE first, then memberships and settings. */
    access_plan_t plan;
    assert_true(access_plan_roles(a, b, &Q, &plan, &err));
    assert_int_equal(plan.n_created, 1);
    assert_int_equal(plan.n_memberships, 1);
    assert_int_equal(plan.n_settings, 3);
    assert_true(strncmp(plan.stmts[0], "CREATE ROLE", 11) == 0);
    assert_true(strncmp(plan.stmts[1], "GRANT \"grp\"", 11) == 0);
    access_plan_free(&plan);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_setting_sql(void **state)
{
    (void)state;
    char *s = access_setting_sql("search_path=app, \"$user\", \"we\"\"ird\", public", &Q);
    assert_string_equal(s, "\"search_path\" TO 'app', '$user', 'we\"ird', 'public'");
    free(s);
    s = access_setting_sql("DateStyle=ISO, MDY", &Q);
    assert_string_equal(s, "\"DateStyle\" TO 'ISO, MDY'");
    free(s);
    s = access_setting_sql("myext.x=it's", &Q);
    assert_string_equal(s, "\"myext.x\" TO 'it''s'");
    free(s);
    assert_null(access_setting_sql("novalue", &Q));
}

/* Our fence takes LOGIN away on the target: not a difference then; any
 * other attribute still is. */
static void test_fence_login(void **state)
{
    (void)state;
    const char *fenced_app =
        "{'name': 'app', 'super': false, 'inherit': true, 'createrole': false, 'createdb': false,"
        " 'login': false, 'replication': false, 'bypassrls': false, 'connlimit': 3,"
        " 'validuntil': null, 'config': [], 'dbconfig': [], 'memberof': []}";
    cJSON *a = catalog("postgres", ROLE_APP, "", "", "");
    cJSON *b = catalog("postgres", fenced_app, "", "", "");
    access_diffs_t d = compare(a, b, true);
    print_diffs(&d);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].kind, ACCESS_ROLE);
    assert_string_equal(d.v[0].statement, "ALTER ROLE \"app\" CONNECTION LIMIT -1;");
    access_diffs_free(&d);
    d = compare(a, b, false);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].statement, "ALTER ROLE \"app\" LOGIN CONNECTION LIMIT -1;");
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* An owner difference is one finding: the owner's own privileges move with
 * ALTER ... OWNER, so they are not also listed. Grants differ per
 * grantee: GRANT what the target lacks, REVOKE what it has more, grant
 * options either way. */
static void test_owner_and_privileges(void **state)
{
    (void)state;
    cJSON *a = catalog("postgres", ROLE_APP,
                       TABLE_T("app", "[" OWNER_ALL("app") ", ['reader', 'SELECT', true],"
                                      " ['writer', 'INSERT', false], ['writer', 'UPDATE', false]]"),
                       "", "");
    cJSON *b = catalog("postgres", ROLE_APP,
                       TABLE_T("postgres", "[" OWNER_ALL("postgres") ", ['reader', 'SELECT', false],"
                                           " [null, 'SELECT', false]]"),
                       "", "");
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.v[0].kind, ACCESS_OWNER);
    assert_string_equal(d.v[0].statement, "ALTER TABLE public.t OWNER TO \"app\";");
    /* one finding per grantee: PUBLIC, then roles by name */
    assert_int_equal(d.v[1].kind, ACCESS_PRIVILEGES);
    assert_string_equal(d.v[1].statement, "REVOKE SELECT ON TABLE public.t FROM PUBLIC;");
    assert_string_equal(d.v[2].statement,
                        "GRANT SELECT ON TABLE public.t TO \"reader\" WITH GRANT OPTION;");
    assert_string_equal(d.v[3].statement, "GRANT INSERT, UPDATE ON TABLE public.t TO \"writer\";");
    access_diffs_free(&d);
    /* the other way round: a grant option the target has more */
    d = compare(b, a, false);
    print_diffs(&d);
    bool found = false;
    for (size_t i = 0; i < d.n; i++)
        found |= strcmp(d.v[i].statement,
                        "REVOKE GRANT OPTION FOR SELECT ON TABLE public.t FROM \"reader\";") == 0;
    assert_true(found);
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_columns_rls_policies(void **state)
{
    (void)state;
    const char *src_t =
        "{'type': 'table', 'id': 'public.t', 'owner': 'app', 'ext': false, 'acl': [" OWNER_ALL("app")
        "], 'rls': [true, true], 'cols': [{'name': 'pub', 'acl': [['reader', 'SELECT', false],"
        " ['reader', 'UPDATE', false]]}]}";
    const char *dst_t =
        "{'type': 'table', 'id': 'public.t', 'owner': 'app', 'ext': false, 'acl': [" OWNER_ALL("app")
        "], 'rls': [true, false], 'cols': [{'name': 'secret', 'acl': [['reader', 'SELECT', false]]}]}";
    const char *src_pol =
        "{'table': 'public.t', 'name': 'own rows', 'cmd': 'r', 'permissive': true,"
        " 'roles': ['reader', null], 'qual': '(owner = CURRENT_USER)', 'check': null},"
        "{'table': 'public.t', 'name': 'p2', 'cmd': '*', 'permissive': false,"
        " 'roles': [null], 'qual': 'true', 'check': 'false'}";
    const char *dst_pol =
        "{'table': 'public.t', 'name': 'own rows', 'cmd': 'r', 'permissive': true,"
        " 'roles': ['reader'], 'qual': '(owner = CURRENT_USER)', 'check': null},"
        "{'table': 'public.t', 'name': 'stray', 'cmd': 'w', 'permissive': true,"
        " 'roles': [null], 'qual': 'true', 'check': null},"
        "{'table': 'public.gone', 'name': 'x', 'cmd': 'w', 'permissive': true,"
        " 'roles': [null], 'qual': 'true', 'check': null}";
    cJSON *a = catalog("postgres", ROLE_APP, src_t, "", src_pol);
    cJSON *b = catalog("postgres", ROLE_APP, dst_t, "", dst_pol);
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    const char *want[] = {
        "GRANT SELECT (\"pub\"), UPDATE (\"pub\") ON TABLE public.t TO \"reader\";",
        "REVOKE SELECT (\"secret\") ON TABLE public.t FROM \"reader\";",
        "ALTER TABLE public.t FORCE ROW LEVEL SECURITY;",
        "DROP POLICY \"own rows\" ON public.t; CREATE POLICY \"own rows\" ON public.t AS "
        "PERMISSIVE FOR SELECT TO \"reader\", PUBLIC USING ((owner = CURRENT_USER));",
        "CREATE POLICY \"p2\" ON public.t AS RESTRICTIVE FOR ALL TO PUBLIC USING (true) "
        "WITH CHECK (false);",
        "DROP POLICY \"stray\" ON public.t;",
        "DROP POLICY \"x\" ON public.gone;",
    };
    assert_int_equal(d.n, sizeof want / sizeof *want);
    for (size_t i = 0; i < d.n; i++)
        assert_string_equal(d.v[i].statement, want[i]);
    assert_true(d.v[4].absent);   /* p2: created, not changed */
    assert_false(d.v[3].absent);
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* A policy's roles are a set: the same roles listed in another order on
 * each side are the same policy (no finding). */
static void test_policy_roles_in_another_order(void **state)
{
    (void)state;
    const char *t =
        "{'type': 'table', 'id': 'public.t', 'owner': 'app', 'ext': false, 'acl': [" OWNER_ALL("app")
        "], 'rls': [true, false], 'cols': null}";
    const char *src_pol =
        "{'table': 'public.t', 'name': 'mine', 'cmd': 'r', 'permissive': true,"
        " 'roles': ['reader', 'writer', 'auditor'], 'qual': 'true', 'check': null}";
    const char *dst_pol =
        "{'table': 'public.t', 'name': 'mine', 'cmd': 'r', 'permissive': true,"
        " 'roles': ['writer', 'auditor', 'reader'], 'qual': 'true', 'check': null}";
    cJSON *a = catalog("postgres", ROLE_APP, t, "", src_pol);
    cJSON *b = catalog("postgres", ROLE_APP, t, "", dst_pol);
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 0);
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Default privileges: a global entry replaces the built-in default (a
 * missing one is that default), an entry for one schema adds to it (a
 * missing one is nothing). */
static void test_default_privileges(void **state)
{
    (void)state;
    const char *src_d =
        "{'role': 'app', 'schema': 'public', 'type': 'r', 'acl': [['reader', 'SELECT', false]],"
        " 'base': null},"
        "{'role': 'app', 'schema': null, 'type': 'f', 'acl': [['app', 'EXECUTE', false]],"
        " 'base': [[null, 'EXECUTE', false], ['app', 'EXECUTE', false]]}";
    cJSON *a = catalog("postgres", ROLE_APP, "", src_d, "");
    cJSON *b = catalog("postgres", ROLE_APP, "", "", "");
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.v[0].kind, ACCESS_DEFAULT_PRIVILEGES);
    assert_true(d.v[0].absent);
    assert_string_equal(d.v[0].statement, "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" IN SCHEMA "
                                          "\"public\" GRANT SELECT ON TABLES TO \"reader\";");
    assert_string_equal(d.v[1].statement,
                        "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" REVOKE EXECUTE ON FUNCTIONS "
                        "FROM PUBLIC;");
    access_diffs_free(&d);
    /* the target has one the source does not */
    d = compare(b, a, false);
    print_diffs(&d);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.v[0].statement, "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" IN SCHEMA "
                                          "\"public\" REVOKE SELECT ON TABLES FROM \"reader\";");
    assert_string_equal(d.v[1].statement,
                        "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" GRANT EXECUTE ON FUNCTIONS "
                        "TO PUBLIC;");
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* The roles step: existing roles are left as they are (their differences
 * are verify's findings), a role that exists joins a group created now,
 * and the database gets the source's owner and privileges. */
static void test_plan_existing_and_database(void **state)
{
    (void)state;
    const char *src_roles =
        "{'name': 'app', 'super': false, 'inherit': true, 'createrole': false, 'createdb': true,"
        " 'login': true, 'replication': false, 'bypassrls': false, 'connlimit': -1,"
        " 'validuntil': null, 'config': [], 'dbconfig': [],"
        " 'memberof': [{'role': 'grp', 'super': false, 'admin': false, 'inherit': null,"
        " 'set': null}]},"
        "{'name': 'grp', 'super': false, 'inherit': true, 'createrole': false, 'createdb': false,"
        " 'login': false, 'replication': false, 'bypassrls': false, 'connlimit': -1,"
        " 'validuntil': 'infinity', 'config': [], 'dbconfig': [], 'memberof': []}";
    cJSON *a = catalog("postgres", src_roles, "", "", "");
    /* owned by app, and PUBLIC may not connect */
    cJSON_ReplaceItemInObject(a, "owner", cJSON_CreateString("app"));
    cJSON_ReplaceItemInObject(a, "acl", doc_value("[['app', 'CONNECT', false], ['app', 'CREATE',"
                                                  " false], ['app', 'TEMPORARY', false]]"));
    cJSON *b = catalog("postgres", ROLE_APP, "", "", ""); /* app exists, without CREATEDB */
    cJSON_DeleteItemFromObject(b, "missing");
    cJSON *miss = cJSON_AddArrayToObject(b, "missing");
    cJSON_AddItemToArray(miss, cJSON_CreateString("grp"));
    access_plan_t plan;
    char *err = NULL;
    assert_true(access_plan_roles(a, b, &Q, &plan, &err));
    for (size_t i = 0; i < plan.n_stmts; i++)
        print_message("  %s\n", plan.stmts[i]);
    const char *want[] = {
        "CREATE ROLE \"grp\" WITH NOSUPERUSER NOLOGIN INHERIT NOCREATEDB NOCREATEROLE "
        "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity';",
        "GRANT \"grp\" TO \"app\";",
        "ALTER DATABASE \"shop\" OWNER TO \"app\";",
        "REVOKE CONNECT ON DATABASE \"shop\" FROM PUBLIC;",
    };
    assert_int_equal(plan.n_stmts, sizeof want / sizeof *want);
    for (size_t i = 0; i < plan.n_stmts; i++)
        assert_string_equal(plan.stmts[i], want[i]);
    assert_int_equal(plan.n_created, 1);
    access_plan_free(&plan);
    /* verify still sees app's CREATEDB (left as it is) */
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    bool found = false, missing = false;
    for (size_t i = 0; i < d.n; i++) {
        found |= d.v[i].kind == ACCESS_ROLE && strstr(d.v[i].statement, "ALTER ROLE \"app\" CREATEDB");
        missing |= d.v[i].kind == ACCESS_ROLE_MISSING && d.v[i].absent &&
                   strcmp(d.v[i].object, "role grp") == 0;
    }
    assert_true(found);
    assert_true(missing);
    access_diffs_free(&d);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* A superuser on the source is never created as one. */
static void test_superuser_not_created(void **state)
{
    (void)state;
    const char *src_roles =
        "{'name': 'dba', 'super': true, 'inherit': true, 'createrole': true, 'createdb': true,"
        " 'login': true, 'replication': true, 'bypassrls': true, 'connlimit': -1,"
        " 'validuntil': null, 'config': [], 'dbconfig': [], 'memberof': []}";
    cJSON *a = catalog("postgres", src_roles, "", "", "");
    cJSON *b = catalog("postgres", "", "", "", "");
    cJSON_DeleteItemFromObject(b, "missing");
    cJSON *miss = cJSON_AddArrayToObject(b, "missing");
    cJSON_AddItemToArray(miss, cJSON_CreateString("dba"));
    access_diffs_t d = compare(a, b, false);
    print_diffs(&d);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].kind, ACCESS_ROLE_SUPERUSER);
    assert_non_null(strstr(d.v[0].statement, "NOSUPERUSER"));
    access_diffs_free(&d);
    access_plan_t plan;
    char *err = NULL;
    assert_true(access_plan_roles(a, b, &Q, &plan, &err));
    assert_int_equal(plan.n_superuser, 1);
    for (size_t i = 0; i < plan.n_stmts; i++)
        assert_null(strstr(plan.stmts[i], " SUPERUSER"));
    access_plan_free(&plan);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(access_parse("[]", &err));
    assert_non_null(strstr(err, "JSON object"));
    free(err);
    err = NULL;
    assert_null(access_parse("{\"db\": \"x\", \"bootstrap\": \"p\"}", &err));
    assert_non_null(strstr(err, "roles"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_catalog_no_difference),
        cmocka_unit_test(test_bootstrap_by_role_not_name),
        cmocka_unit_test(test_missing_role_statement),
        cmocka_unit_test(test_setting_sql),
        cmocka_unit_test(test_fence_login),
        cmocka_unit_test(test_owner_and_privileges),
        cmocka_unit_test(test_columns_rls_policies),
        cmocka_unit_test(test_policy_roles_in_another_order),
        cmocka_unit_test(test_default_privileges),
        cmocka_unit_test(test_plan_existing_and_database),
        cmocka_unit_test(test_superuser_not_created),
        cmocka_unit_test(test_parse_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
