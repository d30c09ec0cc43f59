/*
 * access: see access.h for what it reads and what "the same" means. This
 * file holds the catalog statement, reads its document, and runs one
 * comparison through its parts: the roles (access_roles.c, their settings
 * in access_setting.c), the database and the objects (access_objects.c),
 * default privileges (access_defacls.c) and policies (access_policies.c),
 * on a context they share (access_cmp.c) and privilege sets compared in
 * one place (access_acl.c). The roles step's plan is access_plan.c.
 *
 * The catalog document (access_catalog_sql), one JSON object:
 *   version    server_version_num
 *   db         the database's name; owner, acl: its owner and privileges
 *   bootstrap  the bootstrap superuser's name (oid 10)
 *   authid     whether this session can read pg_authid (password hashes)
 *   missing    the names of $1 that are no role here
 *   roles      the roles the database needs: owners of its objects,
 *              grantees of their privileges (columns, the database, default
 *              privileges too), roles named in its policies, the names in $1,
 *              and every role those are members of, at any depth; not the
 *              bootstrap superuser, not the predefined pg_* roles. Each with
 *              its attributes, its settings (config: everywhere; dbconfig: in
 *              this database) and memberof: the roles it is a member of
 *              (with admin, and from PostgreSQL 16 inherit and set).
 *   objects    every schema, relation (not indexes), function, type, foreign
 *              data wrapper and server with owner and privileges (NULL
 *              privileges read as the built-in default, acldefault), and the
 *              objects that only have an owner (collations, conversions,
 *              operators and their classes and families, text search
 *              configurations and dictionaries, statistics objects, event
 *              triggers); system schemas left out. Relations carry their
 *              columns' privileges and, tables, row-level security.
 *   defacls    pg_default_acl: role, schema (null: every schema), object
 *              type, privileges, and for a global entry the built-in default
 *              it replaces (base).
 *   policies   each policy: table, name, command, permissive, roles
 *              (null: PUBLIC), USING and WITH CHECK expressions.
 * A privilege is [grantee or null for PUBLIC, privilege, grantable].
 *
 * Comparing: privileges are sets of (grantee, privilege, grant option), the
 * grantor left out. The owner's own entries are compared as the owner's,
 * whoever it is on each side, so an owner difference is one finding (ALTER
 * ... OWNER moves the owner's entries along, as the fix does) and not also
 * a list of privileges. The bootstrap superuser is compared as such, by
 * role, not by name.
 *
 * What it must never do: build SQL text from a name without the caller's
 * quoting, or claim two catalogs equal that it did not compare.
 */
#include "access.h"

#include <stdlib.h>
#include <string.h>

#include "access_cmp.h"
#include "access_defacls.h"
#include "access_json.h"
#include "access_objects.h"
#include "access_policies.h"
#include "access_roles.h"
#include "pgconn.h"
#include "xalloc.h"

/* ---- the catalog statement ----------------------------------------------- */

/* An aclitem[] as [[grantee or null, privilege, grantable], ...], or null. */
#define A_ACL_JSON(acl)                                                                        \
    "(SELECT pg_catalog.json_agg(pg_catalog.json_build_array("                                 \
    "CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,"        \
    " a.privilege_type, a.is_grantable)) FROM pg_catalog.aclexplode(" acl ") a)"

/* Objects of a catalog with an owner and no privileges, in user schemas. */
#define A_OWNED(catalog, owner, nsp)                                                           \
    " UNION ALL SELECT 'pg_catalog." catalog "'::pg_catalog.regclass, x.oid, x." owner ","      \
    " NULL::pg_catalog.aclitem[] FROM pg_catalog." catalog " x JOIN ns ON ns.oid = x." nsp

const char access_catalog_sql[] =
    "WITH RECURSIVE"
    " db AS (SELECT d.oid, d.datdba,"
    "   COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba)) AS acl"
    "   FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),"
    " ns AS (SELECT n.oid FROM pg_catalog.pg_namespace n"
    "   WHERE n.nspname <> 'information_schema'"
    "   AND n.nspname !~ '^pg_(catalog$|toast|temp_)'),"
    " obj AS ("
    "  SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS cls, n.oid, n.nspowner AS owner,"
    "   COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)) AS acl"
    "   FROM pg_catalog.pg_namespace n JOIN ns ON ns.oid = n.oid"
    "  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relowner,"
    "   COALESCE(c.relacl, pg_catalog.acldefault(CASE WHEN c.relkind = 'S' THEN 's'"
    "    ELSE 'r' END::pg_catalog.\"char\", c.relowner))"
    "   FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace"
    "   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    "  UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.proowner,"
    "   COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))"
    "   FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace"
    "  UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, t.typowner,"
    "   COALESCE(t.typacl, pg_catalog.acldefault('T', t.typowner))"
    "   FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace"
    "   WHERE t.typtype <> 'm' AND (t.typrelid = 0 OR (SELECT c.relkind"
    "    FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')"
    "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)"
    "  UNION ALL SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, w.oid,"
    "   w.fdwowner, COALESCE(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner))"
    "   FROM pg_catalog.pg_foreign_data_wrapper w"
    "  UNION ALL SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass, s.oid,"
    "   s.srvowner, COALESCE(s.srvacl, pg_catalog.acldefault('S', s.srvowner))"
    "   FROM pg_catalog.pg_foreign_server s"
    A_OWNED("pg_collation", "collowner", "collnamespace")
    A_OWNED("pg_conversion", "conowner", "connamespace")
    A_OWNED("pg_operator", "oprowner", "oprnamespace")
    A_OWNED("pg_opclass", "opcowner", "opcnamespace")
    A_OWNED("pg_opfamily", "opfowner", "opfnamespace")
    A_OWNED("pg_ts_config", "cfgowner", "cfgnamespace")
    A_OWNED("pg_ts_dict", "dictowner", "dictnamespace")
    A_OWNED("pg_statistic_ext", "stxowner", "stxnamespace")
    "  UNION ALL SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, x.oid, x.evtowner,"
    "   NULL FROM pg_catalog.pg_event_trigger x),"
    " col AS (SELECT a.attrelid, a.attname, a.attacl FROM pg_catalog.pg_attribute a"
    "   JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace"
    "   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped"
    "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),"
    " pol AS (SELECT p.* FROM pg_catalog.pg_policy p"
    "   JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN ns ON ns.oid = c.relnamespace),"
    " used AS (SELECT o.owner AS r FROM obj o"
    "  UNION SELECT a.grantee FROM obj o, pg_catalog.aclexplode(o.acl) a"
    "  UNION SELECT a.grantee FROM col, pg_catalog.aclexplode(col.attacl) a"
    "  UNION SELECT db.datdba FROM db"
    "  UNION SELECT a.grantee FROM db, pg_catalog.aclexplode(db.acl) a"
    "  UNION SELECT d.defaclrole FROM pg_catalog.pg_default_acl d"
    "  UNION SELECT a.grantee FROM pg_catalog.pg_default_acl d,"
    "   pg_catalog.aclexplode(d.defaclacl) a"
    "  UNION SELECT pg_catalog.unnest(p.polroles) FROM pol p"
    "  UNION SELECT r.oid FROM pg_catalog.pg_roles r"
    "   WHERE r.rolname = ANY ($1::pg_catalog.text[])),"
    " closure(r) AS (SELECT u.r FROM used u WHERE u.r <> 0"
    "  UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m"
    "   JOIN closure c ON m.member = c.r) "
    "SELECT pg_catalog.json_build_object("
    " 'version', pg_catalog.current_setting('server_version_num')::pg_catalog.int4,"
    " 'db', pg_catalog.current_database(),"
    " 'bootstrap', (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = 10),"
    " 'authid', pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT'),"
    " 'owner', (SELECT pg_catalog.pg_get_userbyid(db.datdba) FROM db),"
    " 'acl', (SELECT " A_ACL_JSON("db.acl") " FROM db),"
    " 'missing', (SELECT COALESCE(pg_catalog.json_agg(w.n ORDER BY w.n), '[]')"
    "  FROM pg_catalog.unnest($1::pg_catalog.text[]) w(n)"
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = w.n)),"
    " 'roles', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "   'name', r.rolname, 'super', r.rolsuper, 'inherit', r.rolinherit,"
    "   'createrole', r.rolcreaterole, 'createdb', r.rolcreatedb, 'login', r.rolcanlogin,"
    "   'replication', r.rolreplication, 'bypassrls', r.rolbypassrls,"
    "   'connlimit', r.rolconnlimit,"
    "   'validuntil', CASE WHEN pg_catalog.isfinite(r.rolvaliduntil)"
    "    THEN pg_catalog.to_char(r.rolvaliduntil AT TIME ZONE 'UTC',"
    "     'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
    "    ELSE r.rolvaliduntil::pg_catalog.text END,"
    "   'config', (SELECT COALESCE(pg_catalog.json_agg(x ORDER BY x), '[]')"
    "    FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x"
    "    WHERE s.setrole = r.oid AND s.setdatabase = 0),"
    "   'dbconfig', (SELECT COALESCE(pg_catalog.json_agg(x ORDER BY x), '[]')"
    "    FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x"
    "    WHERE s.setrole = r.oid AND s.setdatabase = (SELECT db.oid FROM db)),"
    "   'memberof', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "     'role', g.rolname, 'super', g.rolsuper, 'admin', m.admin_option,"
    "     'inherit', pg_catalog.to_jsonb(m.*) -> 'inherit_option',"
    "     'set', pg_catalog.to_jsonb(m.*) -> 'set_option') ORDER BY g.rolname), '[]')"
    "    FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid"
    "    WHERE m.member = r.oid)"
    "  ) ORDER BY r.rolname), '[]')"
    "  FROM pg_catalog.pg_roles r WHERE r.oid IN (SELECT c.r FROM closure c)"
    "  AND r.oid <> 10 AND r.rolname !~ '^pg_'),"
    " 'objects', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "   'type', i.type, 'id', i.identity, 'owner', pg_catalog.pg_get_userbyid(o.owner),"
    "   'ext', EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = o.cls"
    "    AND e.objid = o.oid AND e.deptype = 'e'),"
    "   'acl', " A_ACL_JSON("o.acl") ","
    "   'rls', (SELECT pg_catalog.json_build_array(c.relrowsecurity, c.relforcerowsecurity)"
    "    FROM pg_catalog.pg_class c WHERE o.cls = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "    AND c.oid = o.oid AND c.relkind IN ('r', 'p')),"
    "   'cols', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('name', col.attname,"
    "     'acl', " A_ACL_JSON("col.attacl") ") ORDER BY col.attname)"
    "    FROM col WHERE o.cls = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "    AND col.attrelid = o.oid)"
    "  ) ORDER BY i.type, i.identity), '[]')"
    "  FROM obj o, pg_catalog.pg_identify_object(o.cls, o.oid, 0) i),"
    " 'defacls', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "   'role', pg_catalog.pg_get_userbyid(d.defaclrole),"
    "   'schema', (SELECT n.nspname FROM pg_catalog.pg_namespace n"
    "    WHERE n.oid = d.defaclnamespace),"
    "   'type', d.defaclobjtype, 'acl', " A_ACL_JSON("d.defaclacl") ","
    "   'base', CASE WHEN d.defaclnamespace = 0 THEN " A_ACL_JSON(
        "pg_catalog.acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's'"
        " ELSE d.defaclobjtype END::pg_catalog.\"char\", d.defaclrole)") " END)), '[]')"
    "  FROM pg_catalog.pg_default_acl d),"
    " 'policies', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "   'table', (pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass,"
    "    p.polrelid, 0)).identity,"
    "   'name', p.polname, 'cmd', p.polcmd, 'permissive', p.polpermissive,"
    "   'roles', (SELECT pg_catalog.json_agg(CASE WHEN x = 0 THEN NULL"
    "    ELSE pg_catalog.pg_get_userbyid(x) END) FROM pg_catalog.unnest(p.polroles) x),"
    "   'qual', pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
    "   'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))), '[]') FROM pol p)"
    ")::pg_catalog.text AS access";

/* ---- small things -------------------------------------------------------- */

static const char *const s_codes[ACCESS__COUNT] = {
    [ACCESS_APP_ROLE_UNKNOWN] = "app_role_unknown",
    [ACCESS_ROLE_MISSING] = "role_missing",
    [ACCESS_ROLE_SUPERUSER] = "role_superuser",
    [ACCESS_ROLE] = "role_differs",
    [ACCESS_BOOTSTRAP] = "bootstrap_superuser",
    [ACCESS_DATABASE] = "database_access",
    [ACCESS_OWNER] = "object_owner",
    [ACCESS_PRIVILEGES] = "object_privileges",
    [ACCESS_DEFAULT_PRIVILEGES] = "default_privileges",
    [ACCESS_POLICY] = "policy",
};

const char *access_kind_code(access_kind_t k)
{
    return k < ACCESS__COUNT && s_codes[k] ? s_codes[k] : "access";
}

static char *s_q_ident(void *ctx, const char *name)
{
    return pgconn_escape_identifier(ctx, name);
}

static char *s_q_literal(void *ctx, const char *value)
{
    return pgconn_escape_literal(ctx, value);
}

access_quote_t access_quote_conn(pgconn_t *c)
{
    access_quote_t q = { .ident = s_q_ident, .literal = s_q_literal, .ctx = c };
    return q;
}

void access_diffs_free(access_diffs_t *d)
{
    for (size_t i = 0; d && i < d->n; i++) {
        free(d->v[i].object);
        free(d->v[i].problem);
        free(d->v[i].statement);
    }
    if (d) {
        free(d->v);
        d->v = NULL;
        d->n = d->cap = 0;
    }
}

/* ---- entry points -------------------------------------------------------- */

cJSON *access_parse(const char *text, char **err)
{
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    const char *missing = NULL;
    if (!cJSON_IsObject(doc))
        missing = "a JSON object";
    else if (!access_json_str(doc, "db"))
        missing = "db";
    else if (!access_json_str(doc, "bootstrap"))
        missing = "bootstrap";
    else if (!access_json_arr(doc, "roles"))
        missing = "roles";
    else if (!access_json_arr(doc, "objects"))
        missing = "objects";
    else if (!access_json_arr(doc, "defacls"))
        missing = "defacls";
    else if (!access_json_arr(doc, "policies"))
        missing = "policies";
    else if (!access_json_arr(doc, "missing"))
        missing = "missing";
    if (missing) {
        if (err)
            *err = xasprintf("the access catalog is not as expected: no %s", missing);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

char *access_role_names(const cJSON *src)
{
    const cJSON *roles = access_json_arr(src, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    char **v = xcalloc((size_t)n + 1, sizeof *v);
    size_t k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
        if (access_json_str(r, "name"))
            v[k++] = (char *)access_json_str(r, "name");
    /* and the source's bootstrap superuser: whether the target has a role of
     * that name tells how owners named after it would be restored */
    if (access_json_str(src, "bootstrap"))
        v[k++] = (char *)access_json_str(src, "bootstrap");
    char *out = pgconn_text_array(v, k);
    free(v);
    return out;
}

bool access_compare(const cJSON *src, const cJSON *dst, bool fenced, const access_quote_t *q,
                    access_diffs_t *out, char **err)
{
    access_cmp_t c;
    if (!access_cmp_init(&c, src, dst, fenced, q, out)) {
        *err = xstrdup("the access catalogs are incomplete");
        return false;
    }
    size_t dn;
    const cJSON **dindex = access_objects_index(dst, &dn);
    access_roles_compare(&c);
    access_roles_bootstrap_compare(&c);
    access_objects_database_compare(&c);
    access_objects_compare(&c, dindex, dn);
    access_defacls_compare(&c);
    access_policies_compare(&c, dindex, dn);
    free(dindex);
    if (c.err) {
        *err = c.err;
        return false;
    }
    return true;
}
