/*
 * access_cmp: one comparison of two access catalogs (access.h), as the parts
 * that compare (access_roles, access_setting, access_acl, access_objects,
 * access_defacls, access_policies) and the roles step's plan (access_plan)
 * share it: both documents, the bootstrap superusers' names, the caller's
 * quoting, the list the differences go to and the first quoting failure.
 *
 * Roles are compared as tokens (access_cmp_who): the bootstrap superuser
 * as such, PUBLIC as such, an object's owner as such, any other role by
 * name.
 *
 * What it owns: err (the caller takes it); the documents, the quoting and
 * the list are the caller's. It never builds SQL text from a name without
 * the caller's quoting.
 */
#ifndef GODWIT_ACCESS_CMP_H
#define GODWIT_ACCESS_CMP_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "errors.h"
#include "access.h"

typedef struct {
    const cJSON *src, *dst;
    const char *src_boot, *dst_boot;   /* the bootstrap superusers' names */
    const char *dst_db;
    int dst_version;
    bool fenced;
    const access_quote_t *q;
    access_diffs_t *out;
    char *err;                          /* the first quoting failure */
} access_cmp_t;

/* Sets c up to compare dst (the target) with src (the source) into out;
 * false when a document lacks its bootstrap superuser or dst its database
 * name. */
bool access_cmp_init(access_cmp_t *c, const cJSON *src, const cJSON *dst, bool fenced,
                     const access_quote_t *q, access_diffs_t *out)
    GODWIT_MUSTCHECK;

char *access_cmp_ident(access_cmp_t *c, const char *name);
char *access_cmp_literal(access_cmp_t *c, const char *value);

/* Appends a difference to c->out; takes object, problem and statement
 * (malloc'd; statement NULL: nothing can fix it). */
void access_cmp_diff(access_cmp_t *c, access_kind_t kind, bool absent, char *object,
                     char *problem, char *statement);

char *access_cmp_who(const char *name, const char *owner, const char *boot);
char *access_cmp_who_sql(access_cmp_t *c, const char *who, const char *owner);
char *access_cmp_who_text(const char *who);
const char *access_cmp_owner_on_target(const access_cmp_t *c, const char *src_owner);
bool access_cmp_dst_has_role(const access_cmp_t *c, const char *name);

#endif
