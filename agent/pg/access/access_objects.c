/*
 * access_objects: see access_objects.h. ALTER ... OWNER TO and the
 * privileges (access_acl.h) of each object both sides have; ALTER TABLE
 * ... ROW LEVEL SECURITY.
 */
#include "access_objects.h"

#include <stdlib.h>
#include <string.h>

#include "access_acl.h"
#include "access_buf.h"
#include "access_json.h"
#include "xalloc.h"

/* ---- the database --------------------------------------------------------- */

void access_objects_database_compare(access_cmp_t *c)
{
    const char *so = access_json_str(c->src, "owner"), *dobj = access_json_str(c->dst, "owner");
    const char *want = access_cmp_owner_on_target(c, so);
    char *db = access_cmp_ident(c, c->dst_db);
    char *object = xasprintf("database %s", c->dst_db);
    char *sw = access_cmp_who(so, NULL, c->src_boot), *dw = access_cmp_who(dobj, NULL, c->dst_boot);
    if (strcmp(sw, dw) != 0 && want) {
        char *r = access_cmp_ident(c, want);
        access_cmp_diff(c, ACCESS_DATABASE, false, xstrdup(object),
                        xasprintf("the database's owner is %s on the source, %s on the target",
                                  so ? so : "?", dobj ? dobj : "?"),
                        xasprintf("ALTER DATABASE %s OWNER TO %s;", db, r));
        free(r);
    }
    free(sw);
    free(dw);
    access_acl_t sa = access_acl_read(access_json_arr(c->src, "acl"), so, c->src_boot);
    access_acl_t da = access_acl_read(access_json_arr(c->dst, "acl"), dobj, c->dst_boot);
    char *on = xasprintf("DATABASE %s", db);
    access_acl_at_t at = { .prefix = "", .on = on, .priv_suffix = "", .owner = want,
                        .kind = ACCESS_DATABASE, .object = object };
    access_acl_compare(c, &at, &sa, &da);
    access_acl_free(&sa);
    access_acl_free(&da);
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
    const char *xt = access_json_str(x, "type"), *yt = access_json_str(y, "type");
    int r = strcmp(xt ? xt : "", yt ? yt : "");
    if (r)
        return r;
    const char *xi = access_json_str(x, "id"), *yi = access_json_str(y, "id");
    return strcmp(xi ? xi : "", yi ? yi : "");
}

/* dst's objects sorted by (type, identity), for access_objects_find. Caller frees. */
const cJSON **access_objects_index(const cJSON *doc, size_t *n)
{
    const cJSON *objs = access_json_arr(doc, "objects");
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

const cJSON *access_objects_find(const cJSON **index, size_t n, const cJSON *key)
{
    const cJSON **hit = bsearch(&key, index, n, sizeof *index, s_obj_cmp);
    return hit ? *hit : NULL;
}

static void s_columns_compare(access_cmp_t *c, const cJSON *so, const cJSON *dobj, const char *id,
                              const char *owner)
{
    const cJSON *sc = access_json_arr(so, "cols"), *dc = access_json_arr(dobj, "cols");
    const char *so_owner = access_json_str(so, "owner"), *do_owner = access_json_str(dobj, "owner");
    for (int side = 0; side < 2; side++) {
        const cJSON *col, *list = side == 0 ? sc : dc;
        cJSON_ArrayForEach(col, list) {
            const char *name = access_json_str(col, "name");
            if (!name)
                continue;
            const cJSON *other = access_json_by_name(side == 0 ? dc : sc, "name", name);
            if (side == 1 && other)
                continue; /* compared from the source's side */
            const cJSON *scol = side == 0 ? col : other, *dcol = side == 0 ? other : col;
            access_acl_t sa =
                access_acl_read(scol ? access_json_arr(scol, "acl") : NULL, so_owner, c->src_boot);
            access_acl_t da =
                access_acl_read(dcol ? access_json_arr(dcol, "acl") : NULL, do_owner, c->dst_boot);
            char *qcol = access_cmp_ident(c, name);
            char *suffix = xasprintf(" (%s)", qcol);
            char *on = xasprintf("TABLE %s", id);
            char *object = xasprintf("column %s.%s", id, name);
            access_acl_at_t at = { .prefix = "", .on = on, .priv_suffix = suffix, .owner = owner,
                                .kind = ACCESS_PRIVILEGES, .object = object };
            access_acl_compare(c, &at, &sa, &da);
            free(object);
            free(on);
            free(suffix);
            free(qcol);
            access_acl_free(&sa);
            access_acl_free(&da);
        }
    }
}

static void s_rls_compare(access_cmp_t *c, const cJSON *so, const cJSON *dobj, const char *id)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(so, "rls");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dobj, "rls");
    if (!cJSON_IsArray(s) || !cJSON_IsArray(d))
        return;
    static const char *const on[2] = { "ENABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY" };
    static const char *const off[2] = { "DISABLE ROW LEVEL SECURITY",
                                        "NO FORCE ROW LEVEL SECURITY" };
    access_buf_t stmt = { 0 }, problem = { 0 };
    for (int k = 0; k < 2; k++) {
        bool a = cJSON_IsTrue(cJSON_GetArrayItem(s, k)), b = cJSON_IsTrue(cJSON_GetArrayItem(d, k));
        if (a == b)
            continue;
        access_buf_addf(&stmt, "%sALTER TABLE %s %s;", stmt.n ? " " : "", id, a ? on[k] : off[k]);
        access_buf_addf(&problem, "%srow-level security is %s on the %s only",
                        problem.n ? "; " : "", k ? "forced" : "enabled", a ? "source" : "target");
    }
    if (problem.n)
        access_cmp_diff(c, ACCESS_POLICY, false, xasprintf("table %s", id),
                        access_buf_take(&problem), access_buf_take(&stmt));
    else
        free(access_buf_take(&stmt));
}

void access_objects_compare(access_cmp_t *c, const cJSON **dindex, size_t dn)
{
    const cJSON *so;
    cJSON_ArrayForEach(so, access_json_arr(c->src, "objects")) {
        const cJSON *dobj = access_objects_find(dindex, dn, so);
        if (!dobj)
            continue; /* on the source only: the schema comparison's business */
        size_t first = c->out->n;
        const char *type = access_json_str(so, "type"), *id = access_json_str(so, "id");
        if (!type || !id)
            continue;
        int t = s_type_index(type);
        const char *so_owner = access_json_str(so, "owner"),
                   *do_owner = access_json_str(dobj, "owner");
        const char *want = access_cmp_owner_on_target(c, so_owner);
        char *object = xasprintf("%s %s", type, id);
        bool ext = access_json_true(so, "ext") || access_json_true(dobj, "ext");
        char *sw = access_cmp_who(so_owner, NULL, c->src_boot),
             *dw = access_cmp_who(do_owner, NULL, c->dst_boot);
        if (!ext && strcmp(sw, dw) != 0 && want) {
            char *r = access_cmp_ident(c, want);
            access_cmp_diff(c, ACCESS_OWNER, false, xstrdup(object),
                            xasprintf("%s is owned by %s on the source, by %s on the target",
                                      object, so_owner ? so_owner : "?", do_owner ? do_owner : "?"),
                            t >= 0 ? xasprintf("ALTER %s %s OWNER TO %s;", s_types[t].alter, id, r)
                                   : NULL);
            free(r);
        }
        free(sw);
        free(dw);
        if (t >= 0 && s_types[t].grant) {
            access_acl_t sa = access_acl_read(access_json_arr(so, "acl"), so_owner, c->src_boot);
            access_acl_t da = access_acl_read(access_json_arr(dobj, "acl"), do_owner, c->dst_boot);
            char *on = xasprintf("%s %s", s_types[t].grant, id);
            access_acl_at_t at = { .prefix = "", .on = on, .priv_suffix = "", .owner = want,
                                .kind = ACCESS_PRIVILEGES, .object = object };
            access_acl_compare(c, &at, &sa, &da);
            free(on);
            access_acl_free(&sa);
            access_acl_free(&da);
            s_columns_compare(c, so, dobj, id, want);
        }
        s_rls_compare(c, so, dobj, id);
        bool restored = ext || (strcmp(type, "schema") == 0 && strcmp(id, "public") == 0);
        for (size_t i = first; i < c->out->n; i++)
            c->out->v[i].restored = restored;
        free(object);
    }
}
