/*
 * access_defacls: see access_defacls.h. ALTER DEFAULT PRIVILEGES through
 * access_acl.h.
 */
#include "access_defacls.h"

#include <stdlib.h>
#include <string.h>

#include "access_acl.h"
#include "access_json.h"
#include "xalloc.h"

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
    cJSON_ArrayForEach(d, access_json_arr(doc, "defacls")) {
        char *w = access_cmp_who(access_json_str(d, "role"), NULL, boot);
        bool same = strcmp(w, who) == 0 && access_json_eq(access_json_str(d, "schema"), schema) &&
                    access_json_eq(access_json_str(d, "type"), type);
        free(w);
        if (same)
            return d;
    }
    return NULL;
}

/* One (role, schema, type) key, with the entry on either side (one may be
 * NULL). */
static void s_defacl_compare_one(access_cmp_t *c, const cJSON *se, const cJSON *de)
{
    const cJSON *any = se ? se : de;
    const char *role = access_json_str(any, "role"), *schema = access_json_str(any, "schema"),
               *type = access_json_str(any, "type");
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
    const cJSON *sacl =
        se ? access_json_arr(se, "acl") : schema ? NULL : access_json_arr(de, "base");
    const cJSON *dacl =
        de ? access_json_arr(de, "acl") : schema ? NULL : access_json_arr(se, "base");
    access_acl_t sa = access_acl_read(sacl, NULL, c->src_boot);
    access_acl_t da = access_acl_read(dacl, NULL, c->dst_boot);
    /* the role as a token of its own side, as SQL on the target */
    char *who = access_cmp_who(role, NULL, se ? c->src_boot : c->dst_boot);
    char *rq = access_cmp_who_sql(c, who, NULL);
    char *sq = schema ? access_cmp_ident(c, schema) : NULL;
    char *prefix = sq ? xasprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s ", rq, sq)
                      : xasprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s ", rq);
    char *object = schema ? xasprintf("default privileges of %s on %s in schema %s", role,
                                      label, schema)
                          : xasprintf("default privileges of %s on %s", role, label);
    access_acl_at_t at = { .prefix = prefix, .on = objects, .priv_suffix = "", .owner = NULL,
                        .kind = ACCESS_DEFAULT_PRIVILEGES, .object = object, .absent = !de };
    access_acl_compare(c, &at, &sa, &da);
    free(object);
    free(prefix);
    free(sq);
    free(rq);
    free(who);
    access_acl_free(&sa);
    access_acl_free(&da);
}

void access_defacls_compare(access_cmp_t *c)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, access_json_arr(c->src, "defacls")) {
        char *who = access_cmp_who(access_json_str(d, "role"), NULL, c->src_boot);
        const cJSON *other = s_defacl_find(c->dst, c->dst_boot, who, access_json_str(d, "schema"),
                                           access_json_str(d, "type"));
        s_defacl_compare_one(c, d, other);
        free(who);
    }
    cJSON_ArrayForEach(d, access_json_arr(c->dst, "defacls")) {
        char *who = access_cmp_who(access_json_str(d, "role"), NULL, c->dst_boot);
        if (!s_defacl_find(c->src, c->src_boot, who, access_json_str(d, "schema"),
                           access_json_str(d, "type")))
            s_defacl_compare_one(c, NULL, d);
        free(who);
    }
}
