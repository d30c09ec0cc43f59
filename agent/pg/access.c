/*
 * access: see access.h for what it reads and what "the same" means.
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

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *s_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static bool s_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const cJSON *s_arr(const cJSON *o, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsArray(a) ? a : NULL;
}

static bool s_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
} s_buf_t;

static void s_buf_addf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_buf_addf(s_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = NULL;
    int len = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (len < 0)
        piece = xstrdup(""), len = 0;
    if (b->n + (size_t)len + 1 > b->cap) {
        b->cap = (b->n + (size_t)len + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, piece, (size_t)len + 1);
    b->n += (size_t)len;
    free(piece);
}

/* The string built (never NULL); the caller frees it. */
static char *s_buf_take(s_buf_t *b)
{
    char *s = b->s ? b->s : xstrdup("");
    b->s = NULL;
    b->n = b->cap = 0;
    return s;
}

/* ---- one comparison ------------------------------------------------------ */

typedef struct {
    const cJSON *src, *dst;
    const char *src_boot, *dst_boot;   /* the bootstrap superusers' names */
    const char *dst_db;
    int dst_version;
    bool fenced;
    const access_quote_t *q;
    access_diffs_t *out;
    char *err;                          /* the first quoting failure */
} s_cmp_t;

/* name quoted for SQL (caller frees); on failure the name itself, with the
 * comparison marked failed (it reports that instead of any statement). */
static char *s_ident(s_cmp_t *c, const char *name)
{
    char *q = c->q->ident(c->q->ctx, name);
    if (!q) {
        if (!c->err)
            c->err = xasprintf("cannot quote the name \"%s\" for SQL", name);
        return xstrdup(name);
    }
    return q;
}

static char *s_literal(s_cmp_t *c, const char *value)
{
    char *q = c->q->literal(c->q->ctx, value);
    if (!q) {
        if (!c->err)
            c->err = xasprintf("cannot quote the value \"%s\" for SQL", value);
        return xstrdup("''");
    }
    return q;
}

static void s_diff(s_cmp_t *c, access_kind_t kind, bool absent, char *object, char *problem,
                   char *statement)
{
    access_diffs_t *d = c->out;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    access_diff_t *x = &d->v[d->n++];
    x->kind = kind;
    x->absent = absent;
    x->restored = false;
    x->object = object;
    x->problem = problem;
    x->statement = statement ? statement : xstrdup("");
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

/* Who a role is, compared across sides: the bootstrap superuser as such,
 * PUBLIC (NULL) as such, any other role by name. Tokens start with a
 * character a name is compared past: "B", "P", "O" (the object's owner) or
 * "n" followed by the name. Caller frees. */
static char *s_who(const char *name, const char *owner, const char *boot)
{
    if (!name)
        return xstrdup("P");
    if (owner && strcmp(name, owner) == 0)
        return xstrdup("O");
    if (boot && strcmp(name, boot) == 0)
        return xstrdup("B");
    return xasprintf("n%s", name);
}

/* A role token as SQL on the target (caller frees); owner: the name the
 * owner token stands for there (already mapped). */
static char *s_who_sql(s_cmp_t *c, const char *who, const char *owner)
{
    switch (who[0]) {
    case 'P':
        return xstrdup("PUBLIC");
    case 'O':
        return owner ? s_ident(c, owner) : xstrdup("PUBLIC");
    case 'B':
        return s_ident(c, c->dst_boot);
    default:
        return s_ident(c, who + 1);
    }
}

/* A role token in a sentence (caller frees). */
static char *s_who_text(const char *who)
{
    switch (who[0]) {
    case 'P':
        return xstrdup("PUBLIC");
    case 'O':
        return xstrdup("the owner");
    case 'B':
        return xstrdup("the bootstrap superuser");
    default:
        return xstrdup(who + 1);
    }
}

/* An owner name on the source, as the name it must have on the target
 * (the bootstrap superuser is the target's). Borrowed. */
static const char *s_owner_on_target(const s_cmp_t *c, const char *src_owner)
{
    return src_owner && strcmp(src_owner, c->src_boot) == 0 ? c->dst_boot : src_owner;
}

/* ---- privileges ---------------------------------------------------------- */

typedef struct {
    char *who;          /* token, s_who */
    const char *priv;   /* borrowed from the document */
    bool grantable;
} s_ace_t;

typedef struct {
    s_ace_t *v;
    size_t n;
} s_acl_t;

static int s_ace_cmp(const void *a, const void *b)
{
    const s_ace_t *x = a, *y = b;
    int r = strcmp(x->who, y->who);
    return r ? r : strcmp(x->priv, y->priv);
}

/* The privileges of a document's ACL array, sorted; owner and boot of that
 * side name whose entries are the owner's and the bootstrap superuser's. */
static s_acl_t s_acl_read(const cJSON *acl, const char *owner, const char *boot)
{
    s_acl_t a = { 0 };
    int n = cJSON_IsArray(acl) ? cJSON_GetArraySize(acl) : 0;
    a.v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *a.v);
    const cJSON *e;
    cJSON_ArrayForEach(e, acl) {
        const cJSON *g = cJSON_GetArrayItem(e, 0);
        const char *priv = cJSON_GetStringValue(cJSON_GetArrayItem(e, 1));
        if (!priv)
            continue;
        a.v[a.n].who = s_who(cJSON_IsString(g) ? g->valuestring : NULL, owner, boot);
        a.v[a.n].priv = priv;
        a.v[a.n].grantable = cJSON_IsTrue(cJSON_GetArrayItem(e, 2));
        a.n++;
    }
    qsort(a.v, a.n, sizeof *a.v, s_ace_cmp);
    return a;
}

static void s_acl_free(s_acl_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].who);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

/* Privilege lists of one grantee, by what the target must do. */
enum { L_GRANT, L_GRANT_OPTION, L_REVOKE, L_REVOKE_OPTION, L__COUNT };

/* Where a privilege statement goes: "<prefix>GRANT <privs> ON <on> TO <who>",
 * each privilege followed by priv_suffix (a column list). */
typedef struct {
    const char *prefix;       /* "" or "ALTER DEFAULT PRIVILEGES ... " */
    const char *on;           /* "TABLE public.t", "TABLES", "DATABASE shop" */
    const char *priv_suffix;  /* "" or " (col)" */
    const char *owner;        /* the name the owner token stands for on the target */
    access_kind_t kind;
    const char *object;       /* for the finding */
    bool absent;
} s_privs_at_t;

static void s_privs_emit(s_cmp_t *c, const s_privs_at_t *at, const char *who, s_buf_t lists[])
{
    if (!lists[L_GRANT].n && !lists[L_GRANT_OPTION].n && !lists[L_REVOKE].n &&
        !lists[L_REVOKE_OPTION].n)
        return;
    char *who_sql = s_who_sql(c, who, at->owner);
    char *who_text = s_who_text(who);
    s_buf_t stmt = { 0 }, problem = { 0 };
    if (at->kind == ACCESS_DEFAULT_PRIVILEGES)
        s_buf_addf(&problem, "%s for %s differ:", at->object, who_text);
    else
        s_buf_addf(&problem, "privileges of %s on %s differ:", who_text, at->object);
    static const char *const what[L__COUNT] = {
        [L_GRANT] = "on the source only",
        [L_GRANT_OPTION] = "with grant option on the source only",
        [L_REVOKE] = "on the target only",
        [L_REVOKE_OPTION] = "with grant option on the target only",
    };
    const char *sep = " ";
    for (int l = 0; l < L__COUNT; l++) {
        if (!lists[l].n)
            continue;
        s_buf_addf(&problem, "%s%s %s", sep, what[l], lists[l].s);
        sep = "; ";
        const char *tail = l == L_GRANT_OPTION ? " WITH GRANT OPTION" : "";
        if (l == L_GRANT || l == L_GRANT_OPTION)
            s_buf_addf(&stmt, "%s%sGRANT %s ON %s TO %s%s;", stmt.n ? " " : "", at->prefix,
                       lists[l].s, at->on, who_sql, tail);
        else
            s_buf_addf(&stmt, "%s%sREVOKE %s%s ON %s FROM %s;", stmt.n ? " " : "", at->prefix,
                       l == L_REVOKE_OPTION ? "GRANT OPTION FOR " : "", lists[l].s, at->on,
                       who_sql);
    }
    s_diff(c, at->kind, at->absent, xstrdup(at->object), s_buf_take(&problem),
           s_buf_take(&stmt));
    free(who_sql);
    free(who_text);
}

/* Compares two sorted privilege sets and adds one finding per grantee that
 * differs, with the GRANTs and REVOKEs that make the target's the
 * source's. */
static void s_privs_compare(s_cmp_t *c, const s_privs_at_t *at, const s_acl_t *sa,
                            const s_acl_t *da)
{
    size_t i = 0, j = 0;
    const char *cur = NULL;
    s_buf_t lists[L__COUNT] = { { 0 } };
    for (;;) {
        const s_ace_t *x = i < sa->n ? &sa->v[i] : NULL, *y = j < da->n ? &da->v[j] : NULL;
        int cmp = !x ? 1 : !y ? -1 : s_ace_cmp(x, y);
        const s_ace_t *e = cmp <= 0 ? x : y;
        if (!e || (cur && strcmp(cur, e->who) != 0)) {
            if (cur)
                s_privs_emit(c, at, cur, lists);
            for (int l = 0; l < L__COUNT; l++)
                free(s_buf_take(&lists[l]));
        }
        if (!e)
            break;
        cur = e->who;
        int l = -1;
        if (cmp < 0)
            l = x->grantable ? L_GRANT_OPTION : L_GRANT;
        else if (cmp > 0)
            l = L_REVOKE;
        else if (x->grantable && !y->grantable)
            l = L_GRANT_OPTION;
        else if (!x->grantable && y->grantable)
            l = L_REVOKE_OPTION;
        if (l >= 0)
            s_buf_addf(&lists[l], "%s%s%s", lists[l].n ? ", " : "", e->priv, at->priv_suffix);
        if (cmp <= 0)
            i++;
        if (cmp >= 0)
            j++;
    }
}

/* ---- roles --------------------------------------------------------------- */

static const cJSON *s_by_name(const cJSON *list, const char *key, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (s_eq(s_str(it, key), name))
            return it;
    return NULL;
}

static bool s_in_strings(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (s_eq(cJSON_GetStringValue(it), name))
            return true;
    return false;
}

/* Whether the target has a role of this name (described or not: its
 * bootstrap superuser and predefined roles are not described). */
static bool s_dst_has_role(const s_cmp_t *c, const char *name)
{
    return s_by_name(s_arr(c->dst, "roles"), "name", name) ||
           !s_in_strings(s_arr(c->dst, "missing"), name);
}

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
static char *s_create_role_sql(s_cmp_t *c, const cJSON *role)
{
    s_buf_t b = { 0 };
    char *name = s_ident(c, s_str(role, "name"));
    s_buf_addf(&b, "CREATE ROLE %s WITH NOSUPERUSER", name);
    for (size_t i = 0; i < sizeof s_attrs / sizeof *s_attrs; i++)
        s_buf_addf(&b, " %s", s_true(role, s_attrs[i].key) ? s_attrs[i].on : s_attrs[i].off);
    s_buf_addf(&b, " CONNECTION LIMIT %d", s_connlimit(role));
    const char *until = s_str(role, "validuntil");
    if (until) {
        char *lit = s_literal(c, until);
        s_buf_addf(&b, " VALID UNTIL %s", lit);
        free(lit);
    }
    s_buf_addf(&b, ";");
    free(name);
    return s_buf_take(&b);
}

/* GRANT group TO member with the membership's options as the source has
 * them (inherit and set only where both sides know them: 16 and later).
 * Caller frees. */
static char *s_grant_role_sql(s_cmp_t *c, const char *member, const cJSON *m)
{
    char *g = s_ident(c, s_owner_on_target(c, s_str(m, "role")));
    char *r = s_ident(c, member);
    s_buf_t opts = { 0 };
    if (s_true(m, "admin"))
        s_buf_addf(&opts, "ADMIN OPTION");
    if (c->dst_version >= 160000) {
        const cJSON *inh = cJSON_GetObjectItemCaseSensitive(m, "inherit");
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(m, "set");
        if (cJSON_IsBool(inh))
            s_buf_addf(&opts, "%sINHERIT %s", opts.n ? ", " : "",
                       cJSON_IsTrue(inh) ? "TRUE" : "FALSE");
        if (cJSON_IsBool(set))
            s_buf_addf(&opts, "%sSET %s", opts.n ? ", " : "", cJSON_IsTrue(set) ? "TRUE" : "FALSE");
    }
    char *o = s_buf_take(&opts);
    char *sql = xasprintf("GRANT %s TO %s%s%s;", g, r, o[0] ? " WITH " : "", o);
    free(o);
    free(g);
    free(r);
    return sql;
}

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
    s_buf_t b = { 0 };
    bool ok = qname != NULL;
    if (ok)
        s_buf_addf(&b, "%s TO ", qname);
    if (ok && s_is_list_setting(name, strlen(name))) {
        /* "a, \"b c\", d": split at commas outside double quotes; "" inside
         * quotes is one quote; whitespace around an element goes. */
        const char *p = value;
        bool first = true;
        while (ok) {
            while (*p == ' ' || *p == '\t')
                p++;
            s_buf_t el = { 0 };
            if (*p == '"') {
                p++;
                while (*p && !(*p == '"' && p[1] != '"')) {
                    if (*p == '"')
                        p++;
                    s_buf_addf(&el, "%c", *p++);
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
                s_buf_addf(&el, "%.*s", (int)(end - start), start);
            }
            char *text = s_buf_take(&el);
            char *lit = q->literal(q->ctx, text);
            free(text);
            if (!lit) {
                ok = false;
                break;
            }
            s_buf_addf(&b, "%s%s", first ? "" : ", ", lit);
            free(lit);
            first = false;
            if (*p != ',')
                break;
            p++;
        }
    } else if (ok) {
        char *lit = q->literal(q->ctx, value);
        if (lit)
            s_buf_addf(&b, "%s", lit);
        ok = lit != NULL;
        free(lit);
    }
    free(name);
    free(qname);
    char *out = s_buf_take(&b);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* "ALTER ROLE r [IN DATABASE d] SET ..." (value NULL: RESET name). Caller
 * frees. */
static char *s_setting_stmt(s_cmp_t *c, const char *role, bool in_db, const char *setting,
                            const char *reset_name)
{
    char *r = s_ident(c, role);
    char *d = in_db ? s_ident(c, c->dst_db) : NULL;
    char *what;
    if (reset_name) {
        char *n = s_ident(c, reset_name);
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
static void s_settings_compare(s_cmp_t *c, const char *role, bool in_db, const cJSON *sl,
                               const cJSON *dl, s_buf_t *stmt, s_buf_t *problem)
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
            char *sql = s_setting_stmt(c, role, in_db, v, NULL);
            s_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
            s_buf_addf(problem, "%s%s is %s on the source, %s on the target", problem->n ? "; " : "",
                       name, v + strlen(name) + 1, d ? d + strlen(name) + 1 : "not set");
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
            char *sql = s_setting_stmt(c, role, in_db, NULL, name);
            s_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
            s_buf_addf(problem, "%s%s is set%s on the target only", problem->n ? "; " : "", name,
                       where);
            free(sql);
        }
        free(name);
    }
}

/* A membership of member in a superuser: what SET ROLE turns into one. */
static bool s_superuser_membership(const s_cmp_t *c, const cJSON *m)
{
    return s_true(m, "super") || s_eq(s_str(m, "role"), c->src_boot);
}

/* The statements that create role on the target as the source has it:
 * CREATE ROLE, its memberships (not in a superuser) and its settings.
 * Counted into plan when given. Each statement is added to stmts. */
static void s_role_create(s_cmp_t *c, const cJSON *role, void (*add)(void *arg, char *sql,
                                                                      int what), void *arg)
{
    const char *name = s_str(role, "name");
    add(arg, s_create_role_sql(c, role), 0);
    const cJSON *m;
    cJSON_ArrayForEach(m, s_arr(role, "memberof"))
        if (!s_superuser_membership(c, m))
            add(arg, s_grant_role_sql(c, name, m), 1);
    const cJSON *v;
    cJSON_ArrayForEach(v, s_arr(role, "config"))
        if (cJSON_IsString(v))
            add(arg, s_setting_stmt(c, name, false, v->valuestring, NULL), 2);
    cJSON_ArrayForEach(v, s_arr(role, "dbconfig"))
        if (cJSON_IsString(v))
            add(arg, s_setting_stmt(c, name, true, v->valuestring, NULL), 2);
}

static void s_join_add(void *arg, char *sql, int what)
{
    (void)what;
    s_buf_t *b = arg;
    s_buf_addf(b, "%s%s", b->n ? " " : "", sql);
    free(sql);
}

/* The memberships of one role that exists on both sides. */
static void s_memberships_compare(s_cmp_t *c, const char *name, const cJSON *sr, const cJSON *dr,
                                  s_buf_t *stmt, s_buf_t *problem)
{
    const cJSON *sm = s_arr(sr, "memberof"), *dm = s_arr(dr, "memberof");
    const cJSON *m;
    cJSON_ArrayForEach(m, sm) {
        const char *g = s_str(m, "role");
        const cJSON *d = s_by_name(dm, "role", s_owner_on_target(c, g));
        bool differs = !d || s_true(m, "admin") != s_true(d, "admin");
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
        s_buf_addf(problem, "%s%s in %s%s on the source", problem->n ? "; " : "",
                   d ? "a membership with other options" : "a member", g,
                   s_true(m, "admin") ? " (with admin option)" : "");
        char *sql = s_grant_role_sql(c, name, m);
        s_buf_addf(stmt, "%s%s", stmt->n ? " " : "", sql);
        free(sql);
        if (d && !s_true(m, "admin") && s_true(d, "admin")) {
            char *gq = s_ident(c, s_owner_on_target(c, g)), *rq = s_ident(c, name);
            s_buf_addf(stmt, " REVOKE ADMIN OPTION FOR %s FROM %s;", gq, rq);
            free(gq);
            free(rq);
        }
    }
    cJSON_ArrayForEach(m, dm) {
        const char *g = s_str(m, "role");
        const char *on_src = s_eq(g, c->dst_boot) ? c->src_boot : g;
        if (s_by_name(sm, "role", on_src))
            continue;
        s_buf_addf(problem, "%sa member of %s on the target only", problem->n ? "; " : "", g);
        char *gq = s_ident(c, g), *rq = s_ident(c, name);
        s_buf_addf(stmt, "%sREVOKE %s FROM %s;", stmt->n ? " " : "", gq, rq);
        free(gq);
        free(rq);
    }
}

static void s_roles_compare(s_cmp_t *c)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, s_arr(c->src, "missing")) {
        const char *name = cJSON_GetStringValue(it);
        if (name)
            s_diff(c, ACCESS_APP_ROLE_UNKNOWN, false, xasprintf("role %s", name),
                   xasprintf("the application role %s does not exist on the source", name),
                   NULL);
    }
    const cJSON *sr;
    cJSON_ArrayForEach(sr, s_arr(c->src, "roles")) {
        const char *name = s_str(sr, "name");
        if (!name)
            continue;
        const cJSON *dr = s_by_name(s_arr(c->dst, "roles"), "name", name);
        if (!dr && !s_dst_has_role(c, name)) {
            s_buf_t b = { 0 };
            s_role_create(c, sr, s_join_add, &b);
            const cJSON *m;
            const char *super_group = NULL;
            cJSON_ArrayForEach(m, s_arr(sr, "memberof"))
                if (s_superuser_membership(c, m))
                    super_group = s_str(m, "role");
            if (super_group && !s_true(sr, "super"))
                s_diff(c, ACCESS_ROLE_SUPERUSER, true, xasprintf("role %s", name),
                       xasprintf("role %s is a member of the superuser %s on the source and does "
                                 "not exist on the target (godwit creates it only without that "
                                 "membership)",
                                 name, super_group),
                       s_buf_take(&b));
            else if (s_true(sr, "super"))
                s_diff(c, ACCESS_ROLE_SUPERUSER, true, xasprintf("role %s", name),
                       xasprintf("role %s is a superuser on the source and does not exist on "
                                 "the target (godwit creates it only without SUPERUSER)",
                                 name),
                       s_buf_take(&b));
            else
                s_diff(c, ACCESS_ROLE_MISSING, true, xasprintf("role %s", name),
                       xasprintf("role %s does not exist on the target", name), s_buf_take(&b));
            continue;
        }
        if (!dr)
            continue; /* the target's bootstrap superuser: not described, not comparable */
        s_buf_t stmt = { 0 }, problem = { 0 };
        /* attributes */
        s_buf_t attrs = { 0 };
        bool super = s_true(sr, "super");
        if (super != s_true(dr, "super")) {
            s_buf_addf(&attrs, " %s", super ? "SUPERUSER" : "NOSUPERUSER");
            s_buf_addf(&problem, "%s on the source only", super ? "SUPERUSER" : "NOSUPERUSER");
        }
        for (size_t i = 0; i < sizeof s_attrs / sizeof *s_attrs; i++) {
            bool a = s_true(sr, s_attrs[i].key), b = s_true(dr, s_attrs[i].key);
            if (a == b || (c->fenced && i == 0 && a && !b))
                continue; /* our fence holds LOGIN back on a fenced target */
            s_buf_addf(&attrs, " %s", a ? s_attrs[i].on : s_attrs[i].off);
            s_buf_addf(&problem, "%s%s on the source, %s on the target", problem.n ? "; " : "",
                       a ? s_attrs[i].on : s_attrs[i].off, b ? s_attrs[i].on : s_attrs[i].off);
        }
        if (s_connlimit(sr) != s_connlimit(dr)) {
            s_buf_addf(&attrs, " CONNECTION LIMIT %d", s_connlimit(sr));
            s_buf_addf(&problem, "%sCONNECTION LIMIT %d on the source, %d on the target",
                       problem.n ? "; " : "", s_connlimit(sr), s_connlimit(dr));
        }
        const char *su = s_str(sr, "validuntil"), *du = s_str(dr, "validuntil");
        if (!s_eq(su, du)) {
            char *lit = s_literal(c, su ? su : "infinity");
            s_buf_addf(&attrs, " VALID UNTIL %s", lit);
            free(lit);
            s_buf_addf(&problem, "%sVALID UNTIL %s on the source, %s on the target",
                       problem.n ? "; " : "", su ? su : "(none)", du ? du : "(none)");
        }
        if (attrs.n) {
            char *r = s_ident(c, name);
            s_buf_addf(&stmt, "ALTER ROLE %s%s;", r, attrs.s);
            free(r);
        }
        free(s_buf_take(&attrs));
        s_memberships_compare(c, name, sr, dr, &stmt, &problem);
        s_settings_compare(c, name, false, s_arr(sr, "config"), s_arr(dr, "config"), &stmt,
                           &problem);
        s_settings_compare(c, name, true, s_arr(sr, "dbconfig"), s_arr(dr, "dbconfig"), &stmt,
                           &problem);
        if (problem.n) {
            char *p = s_buf_take(&problem);
            bool to_super = (super && !s_true(dr, "super"));
            s_diff(c, to_super ? ACCESS_ROLE_SUPERUSER : ACCESS_ROLE, false,
                   xasprintf("role %s", name), xasprintf("role %s differs: %s", name, p),
                   s_buf_take(&stmt));
            free(p);
        } else {
            free(s_buf_take(&stmt));
        }
    }
}

/* ---- the bootstrap superuser and the database ----------------------------- */

static void s_bootstrap_compare(s_cmp_t *c)
{
    if (strcmp(c->src_boot, c->dst_boot) == 0)
        return;
    size_t owned = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, s_arr(c->src, "objects"))
        owned += s_eq(s_str(o, "owner"), c->src_boot) && !s_true(o, "ext");
    cJSON_ArrayForEach(o, s_arr(c->src, "defacls"))
        owned += s_eq(s_str(o, "role"), c->src_boot);
    if (!owned)
        return;
    /* absent: the target has no role of that name, so a restore that names
     * owners cannot give them to it */
    bool absent = s_in_strings(s_arr(c->dst, "missing"), c->src_boot);
    s_diff(c, ACCESS_BOOTSTRAP, absent, xasprintf("role %s", c->src_boot),
           xasprintf("the source's bootstrap superuser is %s, the target's is %s: %zu objects "
                     "and default privileges of %s on the source %s",
                     c->src_boot, c->dst_boot, owned, c->src_boot,
                     absent ? "name a role the target does not have"
                            : "would belong to the target's role of that name, which is not "
                              "its bootstrap superuser"),
           NULL);
}

static void s_database_compare(s_cmp_t *c)
{
    const char *so = s_str(c->src, "owner"), *dobj = s_str(c->dst, "owner");
    const char *want = s_owner_on_target(c, so);
    char *db = s_ident(c, c->dst_db);
    char *object = xasprintf("database %s", c->dst_db);
    char *sw = s_who(so, NULL, c->src_boot), *dw = s_who(dobj, NULL, c->dst_boot);
    if (strcmp(sw, dw) != 0 && want) {
        char *r = s_ident(c, want);
        s_diff(c, ACCESS_DATABASE, false, xstrdup(object),
               xasprintf("the database's owner is %s on the source, %s on the target",
                         so ? so : "?", dobj ? dobj : "?"),
               xasprintf("ALTER DATABASE %s OWNER TO %s;", db, r));
        free(r);
    }
    free(sw);
    free(dw);
    s_acl_t sa = s_acl_read(s_arr(c->src, "acl"), so, c->src_boot);
    s_acl_t da = s_acl_read(s_arr(c->dst, "acl"), dobj, c->dst_boot);
    char *on = xasprintf("DATABASE %s", db);
    s_privs_at_t at = { .prefix = "", .on = on, .priv_suffix = "", .owner = want,
                        .kind = ACCESS_DATABASE, .object = object };
    s_privs_compare(c, &at, &sa, &da);
    s_acl_free(&sa);
    s_acl_free(&da);
    free(on);
    free(object);
    free(db);
}

/* ---- objects ------------------------------------------------------------- */

static const struct {
    const char *type;   /* pg_identify_object's */
    const char *alter;  /* ALTER <this> ... OWNER TO */
    const char *grant;  /* GRANT ... ON <this>; NULL: no privileges */
} s_types[] = {
    { "table", "TABLE", "TABLE" },
    { "view", "VIEW", "TABLE" },
    { "materialized view", "MATERIALIZED VIEW", "TABLE" },
    { "foreign table", "FOREIGN TABLE", "TABLE" },
    { "sequence", "SEQUENCE", "SEQUENCE" },
    { "function", "FUNCTION", "FUNCTION" },
    { "procedure", "PROCEDURE", "PROCEDURE" },
    { "aggregate", "AGGREGATE", "ROUTINE" },
    { "schema", "SCHEMA", "SCHEMA" },
    { "type", "TYPE", "TYPE" },
    { "domain", "DOMAIN", "DOMAIN" },
    { "foreign-data wrapper", "FOREIGN DATA WRAPPER", "FOREIGN DATA WRAPPER" },
    { "server", "SERVER", "FOREIGN SERVER" },
    { "collation", "COLLATION", NULL },
    { "conversion", "CONVERSION", NULL },
    { "operator", "OPERATOR", NULL },
    { "operator class", "OPERATOR CLASS", NULL },
    { "operator family", "OPERATOR FAMILY", NULL },
    { "text search configuration", "TEXT SEARCH CONFIGURATION", NULL },
    { "text search dictionary", "TEXT SEARCH DICTIONARY", NULL },
    { "statistics object", "STATISTICS", NULL },
    { "event trigger", "EVENT TRIGGER", NULL },
};

static int s_type_index(const char *type)
{
    for (size_t i = 0; type && i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(s_types[i].type, type) == 0)
            return (int)i;
    return -1;
}

static int s_obj_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    const char *xt = s_str(x, "type"), *yt = s_str(y, "type");
    int r = strcmp(xt ? xt : "", yt ? yt : "");
    if (r)
        return r;
    const char *xi = s_str(x, "id"), *yi = s_str(y, "id");
    return strcmp(xi ? xi : "", yi ? yi : "");
}

/* dst's objects sorted by (type, identity), for s_obj_find. Caller frees. */
static const cJSON **s_obj_index(const cJSON *doc, size_t *n)
{
    const cJSON *objs = s_arr(doc, "objects");
    int count = objs ? cJSON_GetArraySize(objs) : 0;
    const cJSON **v = xcalloc(count > 0 ? (size_t)count : 1, sizeof *v);
    size_t k = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, objs)
        v[k++] = o;
    qsort(v, k, sizeof *v, s_obj_cmp);
    *n = k;
    return v;
}

static const cJSON *s_obj_find(const cJSON **index, size_t n, const cJSON *key)
{
    const cJSON **hit = bsearch(&key, index, n, sizeof *index, s_obj_cmp);
    return hit ? *hit : NULL;
}

static void s_columns_compare(s_cmp_t *c, const cJSON *so, const cJSON *dobj, const char *id,
                              const char *owner)
{
    const cJSON *sc = s_arr(so, "cols"), *dc = s_arr(dobj, "cols");
    const char *so_owner = s_str(so, "owner"), *do_owner = s_str(dobj, "owner");
    for (int side = 0; side < 2; side++) {
        const cJSON *col, *list = side == 0 ? sc : dc;
        cJSON_ArrayForEach(col, list) {
            const char *name = s_str(col, "name");
            if (!name)
                continue;
            const cJSON *other = s_by_name(side == 0 ? dc : sc, "name", name);
            if (side == 1 && other)
                continue; /* compared from the source's side */
            const cJSON *scol = side == 0 ? col : other, *dcol = side == 0 ? other : col;
            s_acl_t sa = s_acl_read(scol ? s_arr(scol, "acl") : NULL, so_owner, c->src_boot);
            s_acl_t da = s_acl_read(dcol ? s_arr(dcol, "acl") : NULL, do_owner, c->dst_boot);
            char *qcol = s_ident(c, name);
            char *suffix = xasprintf(" (%s)", qcol);
            char *on = xasprintf("TABLE %s", id);
            char *object = xasprintf("column %s.%s", id, name);
            s_privs_at_t at = { .prefix = "", .on = on, .priv_suffix = suffix, .owner = owner,
                                .kind = ACCESS_PRIVILEGES, .object = object };
            s_privs_compare(c, &at, &sa, &da);
            free(object);
            free(on);
            free(suffix);
            free(qcol);
            s_acl_free(&sa);
            s_acl_free(&da);
        }
    }
}

static void s_rls_compare(s_cmp_t *c, const cJSON *so, const cJSON *dobj, const char *id)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(so, "rls");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dobj, "rls");
    if (!cJSON_IsArray(s) || !cJSON_IsArray(d))
        return;
    static const char *const on[2] = { "ENABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY" };
    static const char *const off[2] = { "DISABLE ROW LEVEL SECURITY",
                                        "NO FORCE ROW LEVEL SECURITY" };
    s_buf_t stmt = { 0 }, problem = { 0 };
    for (int k = 0; k < 2; k++) {
        bool a = cJSON_IsTrue(cJSON_GetArrayItem(s, k)), b = cJSON_IsTrue(cJSON_GetArrayItem(d, k));
        if (a == b)
            continue;
        s_buf_addf(&stmt, "%sALTER TABLE %s %s;", stmt.n ? " " : "", id, a ? on[k] : off[k]);
        s_buf_addf(&problem, "%srow-level security is %s on the %s only", problem.n ? "; " : "",
                   k ? "forced" : "enabled", a ? "source" : "target");
    }
    if (problem.n)
        s_diff(c, ACCESS_POLICY, false, xasprintf("table %s", id), s_buf_take(&problem),
               s_buf_take(&stmt));
    else
        free(s_buf_take(&stmt));
}

static void s_objects_compare(s_cmp_t *c, const cJSON **dindex, size_t dn)
{
    const cJSON *so;
    cJSON_ArrayForEach(so, s_arr(c->src, "objects")) {
        const cJSON *dobj = s_obj_find(dindex, dn, so);
        if (!dobj)
            continue; /* on the source only: the schema comparison's business */
        size_t first = c->out->n;
        const char *type = s_str(so, "type"), *id = s_str(so, "id");
        if (!type || !id)
            continue;
        int t = s_type_index(type);
        const char *so_owner = s_str(so, "owner"), *do_owner = s_str(dobj, "owner");
        const char *want = s_owner_on_target(c, so_owner);
        char *object = xasprintf("%s %s", type, id);
        bool ext = s_true(so, "ext") || s_true(dobj, "ext");
        char *sw = s_who(so_owner, NULL, c->src_boot), *dw = s_who(do_owner, NULL, c->dst_boot);
        if (!ext && strcmp(sw, dw) != 0 && want) {
            char *r = s_ident(c, want);
            s_diff(c, ACCESS_OWNER, false, xstrdup(object),
                   xasprintf("%s is owned by %s on the source, by %s on the target", object,
                             so_owner ? so_owner : "?", do_owner ? do_owner : "?"),
                   t >= 0 ? xasprintf("ALTER %s %s OWNER TO %s;", s_types[t].alter, id, r)
                          : NULL);
            free(r);
        }
        free(sw);
        free(dw);
        if (t >= 0 && s_types[t].grant) {
            s_acl_t sa = s_acl_read(s_arr(so, "acl"), so_owner, c->src_boot);
            s_acl_t da = s_acl_read(s_arr(dobj, "acl"), do_owner, c->dst_boot);
            char *on = xasprintf("%s %s", s_types[t].grant, id);
            s_privs_at_t at = { .prefix = "", .on = on, .priv_suffix = "", .owner = want,
                                .kind = ACCESS_PRIVILEGES, .object = object };
            s_privs_compare(c, &at, &sa, &da);
            free(on);
            s_acl_free(&sa);
            s_acl_free(&da);
            s_columns_compare(c, so, dobj, id, want);
        }
        s_rls_compare(c, so, dobj, id);
        bool restored = ext || (strcmp(type, "schema") == 0 && strcmp(id, "public") == 0);
        for (size_t i = first; i < c->out->n; i++)
            c->out->v[i].restored = restored;
        free(object);
    }
}

/* ---- default privileges -------------------------------------------------- */

static const struct {
    char type;
    const char *objects, *label;
} s_defacl_types[] = {
    { 'r', "TABLES", "tables" },       { 'S', "SEQUENCES", "sequences" },
    { 'f', "FUNCTIONS", "functions" }, { 'T', "TYPES", "types" },
    { 'n', "SCHEMAS", "schemas" },
};

/* The entry of doc's defacls for role token who, schema (NULL: global) and
 * type, or NULL. */
static const cJSON *s_defacl_find(const cJSON *doc, const char *boot, const char *who,
                                  const char *schema, const char *type)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, s_arr(doc, "defacls")) {
        char *w = s_who(s_str(d, "role"), NULL, boot);
        bool same = strcmp(w, who) == 0 && s_eq(s_str(d, "schema"), schema) &&
                    s_eq(s_str(d, "type"), type);
        free(w);
        if (same)
            return d;
    }
    return NULL;
}

/* One (role, schema, type) key, with the entry on either side (one may be
 * NULL). */
static void s_defacl_compare_one(s_cmp_t *c, const cJSON *se, const cJSON *de)
{
    const cJSON *any = se ? se : de;
    const char *role = s_str(any, "role"), *schema = s_str(any, "schema"), *type = s_str(any, "type");
    if (!role || !type)
        return;
    const char *objects = NULL, *label = NULL;
    for (size_t i = 0; i < sizeof s_defacl_types / sizeof *s_defacl_types; i++)
        if (type[0] == s_defacl_types[i].type && !type[1]) {
            objects = s_defacl_types[i].objects;
            label = s_defacl_types[i].label;
        }
    if (!objects)
        return;
    /* A missing entry: nothing beyond the built-in default, which a global
     * entry replaces (base) and an entry for one schema adds to (none). */
    const cJSON *sacl = se ? s_arr(se, "acl") : schema ? NULL : s_arr(de, "base");
    const cJSON *dacl = de ? s_arr(de, "acl") : schema ? NULL : s_arr(se, "base");
    s_acl_t sa = s_acl_read(sacl, NULL, c->src_boot);
    s_acl_t da = s_acl_read(dacl, NULL, c->dst_boot);
    /* the role as a token of its own side, as SQL on the target */
    char *who = s_who(role, NULL, se ? c->src_boot : c->dst_boot);
    char *rq = s_who_sql(c, who, NULL);
    char *sq = schema ? s_ident(c, schema) : NULL;
    char *prefix = sq ? xasprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s ", rq, sq)
                      : xasprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s ", rq);
    char *object = schema ? xasprintf("default privileges of %s on %s in schema %s", role,
                                      label, schema)
                          : xasprintf("default privileges of %s on %s", role, label);
    s_privs_at_t at = { .prefix = prefix, .on = objects, .priv_suffix = "", .owner = NULL,
                        .kind = ACCESS_DEFAULT_PRIVILEGES, .object = object, .absent = !de };
    s_privs_compare(c, &at, &sa, &da);
    free(object);
    free(prefix);
    free(sq);
    free(rq);
    free(who);
    s_acl_free(&sa);
    s_acl_free(&da);
}

static void s_defacls_compare(s_cmp_t *c)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, s_arr(c->src, "defacls")) {
        char *who = s_who(s_str(d, "role"), NULL, c->src_boot);
        const cJSON *other = s_defacl_find(c->dst, c->dst_boot, who, s_str(d, "schema"),
                                           s_str(d, "type"));
        s_defacl_compare_one(c, d, other);
        free(who);
    }
    cJSON_ArrayForEach(d, s_arr(c->dst, "defacls")) {
        char *who = s_who(s_str(d, "role"), NULL, c->dst_boot);
        if (!s_defacl_find(c->src, c->src_boot, who, s_str(d, "schema"), s_str(d, "type")))
            s_defacl_compare_one(c, NULL, d);
        free(who);
    }
}

/* ---- policies ------------------------------------------------------------ */

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

/* A policy's roles as sorted tokens joined by ",", to compare. Caller
 * frees. */
static char *s_policy_roles_key(const cJSON *p, const char *boot)
{
    const cJSON *roles = s_arr(p, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    char **v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *v);
    size_t k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
        v[k++] = s_who(cJSON_IsString(r) ? r->valuestring : NULL, NULL, boot);
    qsort(v, k, sizeof *v, (int (*)(const void *, const void *))strcmp);
    s_buf_t b = { 0 };
    for (size_t i = 0; i < k; i++) {
        s_buf_addf(&b, "%s%s", i ? "," : "", v[i]);
        free(v[i]);
    }
    free(v);
    return s_buf_take(&b);
}

static int s_strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* CREATE POLICY as the source has it. Caller frees. */
static char *s_create_policy_sql(s_cmp_t *c, const cJSON *p)
{
    char *name = s_ident(c, s_str(p, "name"));
    s_buf_t roles = { 0 };
    const cJSON *r;
    const cJSON *list = s_arr(p, "roles");
    int n = list ? cJSON_GetArraySize(list) : 0;
    char **v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *v);
    size_t k = 0;
    cJSON_ArrayForEach(r, list) {
        char *who = s_who(cJSON_IsString(r) ? r->valuestring : NULL, NULL, c->src_boot);
        v[k++] = s_who_sql(c, who, NULL);
        free(who);
    }
    qsort(v, k, sizeof *v, s_strptr_cmp);
    for (size_t i = 0; i < k; i++) {
        s_buf_addf(&roles, "%s%s", i ? ", " : "", v[i]);
        free(v[i]);
    }
    free(v);
    char *rl = s_buf_take(&roles);
    const char *qual = s_str(p, "qual"), *check = s_str(p, "check");
    s_buf_t b = { 0 };
    s_buf_addf(&b, "CREATE POLICY %s ON %s AS %s FOR %s TO %s", name, s_str(p, "table"),
               s_true(p, "permissive") ? "PERMISSIVE" : "RESTRICTIVE", s_policy_cmd(s_str(p, "cmd")),
               rl[0] ? rl : "PUBLIC");
    if (qual)
        s_buf_addf(&b, " USING (%s)", qual);
    if (check)
        s_buf_addf(&b, " WITH CHECK (%s)", check);
    s_buf_addf(&b, ";");
    free(rl);
    free(name);
    return s_buf_take(&b);
}

static const cJSON *s_policy_find(const cJSON *doc, const char *table, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, s_arr(doc, "policies"))
        if (s_eq(s_str(p, "table"), table) && s_eq(s_str(p, "name"), name))
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
        bool found = s_obj_find(index, n, key) != NULL;
        cJSON_Delete(key);
        if (found)
            return true;
    }
    return false;
}

static void s_policies_compare(s_cmp_t *c, const cJSON **dindex, size_t dn)
{
    const cJSON *sp;
    cJSON_ArrayForEach(sp, s_arr(c->src, "policies")) {
        const char *table = s_str(sp, "table"), *name = s_str(sp, "name");
        if (!table || !name || !s_has_table(dindex, dn, table))
            continue;
        const cJSON *dp = s_policy_find(c->dst, table, name);
        char *object = xasprintf("policy %s on %s", name, table);
        if (!dp) {
            s_diff(c, ACCESS_POLICY, true, object,
                   xasprintf("policy %s on %s exists on the source only", name, table),
                   s_create_policy_sql(c, sp));
            continue;
        }
        char *sk = s_policy_roles_key(sp, c->src_boot), *dk = s_policy_roles_key(dp, c->dst_boot);
        s_buf_t problem = { 0 };
        if (!s_eq(s_str(sp, "cmd"), s_str(dp, "cmd")))
            s_buf_addf(&problem, "it is FOR %s on the source, FOR %s on the target",
                       s_policy_cmd(s_str(sp, "cmd")), s_policy_cmd(s_str(dp, "cmd")));
        if (s_true(sp, "permissive") != s_true(dp, "permissive"))
            s_buf_addf(&problem, "%sit is %s on the source only", problem.n ? "; " : "",
                       s_true(sp, "permissive") ? "PERMISSIVE" : "RESTRICTIVE");
        if (strcmp(sk, dk) != 0)
            s_buf_addf(&problem, "%sits roles differ", problem.n ? "; " : "");
        if (!s_eq(s_str(sp, "qual"), s_str(dp, "qual")))
            s_buf_addf(&problem, "%sUSING is (%s) on the source, (%s) on the target",
                       problem.n ? "; " : "", s_str(sp, "qual") ? s_str(sp, "qual") : "none",
                       s_str(dp, "qual") ? s_str(dp, "qual") : "none");
        if (!s_eq(s_str(sp, "check"), s_str(dp, "check")))
            s_buf_addf(&problem, "%sWITH CHECK is (%s) on the source, (%s) on the target",
                       problem.n ? "; " : "", s_str(sp, "check") ? s_str(sp, "check") : "none",
                       s_str(dp, "check") ? s_str(dp, "check") : "none");
        free(sk);
        free(dk);
        if (problem.n) {
            char *pname = s_ident(c, name);
            char *create = s_create_policy_sql(c, sp);
            char *p = s_buf_take(&problem);
            s_diff(c, ACCESS_POLICY, false, object,
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
    cJSON_ArrayForEach(dp, s_arr(c->dst, "policies")) {
        const char *table = s_str(dp, "table"), *name = s_str(dp, "name");
        if (!table || !name || s_policy_find(c->src, table, name))
            continue;
        char *pname = s_ident(c, name);
        s_diff(c, ACCESS_POLICY, false, xasprintf("policy %s on %s", name, table),
               xasprintf("policy %s on %s exists on the target only", name, table),
               xasprintf("DROP POLICY %s ON %s;", pname, table));
        free(pname);
    }
}

/* ---- entry points -------------------------------------------------------- */

cJSON *access_parse(const char *text, char **err)
{
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    const char *missing = NULL;
    if (!cJSON_IsObject(doc))
        missing = "a JSON object";
    else if (!s_str(doc, "db"))
        missing = "db";
    else if (!s_str(doc, "bootstrap"))
        missing = "bootstrap";
    else if (!s_arr(doc, "roles"))
        missing = "roles";
    else if (!s_arr(doc, "objects"))
        missing = "objects";
    else if (!s_arr(doc, "defacls"))
        missing = "defacls";
    else if (!s_arr(doc, "policies"))
        missing = "policies";
    else if (!s_arr(doc, "missing"))
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
    const cJSON *roles = s_arr(src, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    char **v = xcalloc((size_t)n + 1, sizeof *v);
    size_t k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
        if (s_str(r, "name"))
            v[k++] = (char *)s_str(r, "name");
    /* and the source's bootstrap superuser: whether the target has a role of
     * that name tells how owners named after it would be restored */
    if (s_str(src, "bootstrap"))
        v[k++] = (char *)s_str(src, "bootstrap");
    char *out = pgconn_text_array(v, k);
    free(v);
    return out;
}

static bool s_cmp_init(s_cmp_t *c, const cJSON *src, const cJSON *dst, bool fenced,
                       const access_quote_t *q, access_diffs_t *out)
{
    memset(c, 0, sizeof *c);
    c->src = src;
    c->dst = dst;
    c->src_boot = s_str(src, "bootstrap");
    c->dst_boot = s_str(dst, "bootstrap");
    c->dst_db = s_str(dst, "db");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(dst, "version");
    c->dst_version = cJSON_IsNumber(v) ? v->valueint : 0;
    c->fenced = fenced;
    c->q = q;
    c->out = out;
    return c->src_boot && c->dst_boot && c->dst_db;
}

bool access_compare(const cJSON *src, const cJSON *dst, bool fenced, const access_quote_t *q,
                    access_diffs_t *out, char **err)
{
    s_cmp_t c;
    if (!s_cmp_init(&c, src, dst, fenced, q, out)) {
        *err = xstrdup("the access catalogs are incomplete");
        return false;
    }
    size_t dn;
    const cJSON **dindex = s_obj_index(dst, &dn);
    s_roles_compare(&c);
    s_bootstrap_compare(&c);
    s_database_compare(&c);
    s_objects_compare(&c, dindex, dn);
    s_defacls_compare(&c);
    s_policies_compare(&c, dindex, dn);
    free(dindex);
    if (c.err) {
        *err = c.err;
        return false;
    }
    return true;
}

/* ---- the roles step's plan ------------------------------------------------ */

static void s_plan_add(access_plan_t *p, char *sql)
{
    if (p->n_stmts == p->cap_stmts) {
        p->cap_stmts = p->cap_stmts ? 2 * p->cap_stmts : 16;
        p->stmts = xrealloc(p->stmts, p->cap_stmts * sizeof *p->stmts);
    }
    p->stmts[p->n_stmts++] = sql;
}

/* Collects a created role's statements by kind: CREATE first, then the
 * rest once every role exists. */
typedef struct {
    access_plan_t *plan;
    access_plan_t later;
} s_plan_ctx_t;

static void s_plan_collect(void *arg, char *sql, int what)
{
    s_plan_ctx_t *x = arg;
    if (what == 0) {
        s_plan_add(x->plan, sql);
        return;
    }
    x->plan->n_memberships += what == 1;
    x->plan->n_settings += what == 2;
    s_plan_add(&x->later, sql);
}

bool access_plan_roles(const cJSON *src, const cJSON *dst, const access_quote_t *q,
                       access_plan_t *plan, char **err)
{
    memset(plan, 0, sizeof *plan);
    access_diffs_t diffs = { 0 };
    s_cmp_t c;
    if (!s_cmp_init(&c, src, dst, false, q, &diffs)) {
        *err = xstrdup("the access catalogs are incomplete");
        return false;
    }
    const cJSON *roles = s_arr(src, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    plan->created = xcalloc(n > 0 ? (size_t)n : 1, sizeof *plan->created);
    s_plan_ctx_t x = { .plan = plan };
    const cJSON *r;
    cJSON_ArrayForEach(r, roles) {
        const char *name = s_str(r, "name");
        if (!name || s_dst_has_role(&c, name))
            continue;
        plan->created[plan->n_created++] = name;
        plan->n_superuser += s_true(r, "super");
        s_role_create(&c, r, s_plan_collect, &x);
    }
    /* Roles that exist already, members of a role created now: that
     * membership is new, like the role. */
    cJSON_ArrayForEach(r, roles) {
        const char *name = s_str(r, "name");
        if (!name || !s_dst_has_role(&c, name))
            continue;
        bool created = false;
        for (size_t i = 0; i < plan->n_created; i++)
            created |= strcmp(plan->created[i], name) == 0;
        if (created)
            continue;
        const cJSON *m;
        cJSON_ArrayForEach(m, s_arr(r, "memberof")) {
            const char *g = s_str(m, "role");
            bool new_group = false;
            for (size_t i = 0; g && i < plan->n_created; i++)
                new_group |= strcmp(plan->created[i], g) == 0;
            if (new_group && !s_superuser_membership(&c, m)) {
                s_plan_add(&x.later, s_grant_role_sql(&c, name, m));
                plan->n_memberships++;
            }
        }
    }
    for (size_t i = 0; i < x.later.n_stmts; i++)
        s_plan_add(plan, x.later.stmts[i]);
    free(x.later.stmts);
    /* the database's owner and privileges as the source has them */
    s_database_compare(&c);
    for (size_t i = 0; i < diffs.n; i++) {
        s_plan_add(plan, diffs.v[i].statement);
        diffs.v[i].statement = NULL;
        plan->n_database++;
    }
    access_diffs_free(&diffs);
    if (c.err) {
        *err = c.err;
        access_plan_free(plan);
        return false;
    }
    return true;
}

void access_plan_free(access_plan_t *p)
{
    for (size_t i = 0; p && i < p->n_stmts; i++)
        free(p->stmts[i]);
    if (p) {
        free(p->stmts);
        free(p->created);
        memset(p, 0, sizeof *p);
    }
}
