/*
 * access_acl: privileges compared as sets of (grantee, privilege, grant
 * option), the grantor left out; the owner's own entries as the owner's,
 * whoever it is on each side. access_acl_compare adds one difference per
 * grantee that differs, with the GRANTs and REVOKEs that make the target's
 * privileges the source's; the objects, the database, columns and default
 * privileges all go through it.
 *
 * What it owns: the sets it reads (access_acl_free); the documents are the
 * caller's.
 */
#ifndef GODWIT_ACCESS_ACL_H
#define GODWIT_ACCESS_ACL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "access.h"
#include "access_cmp.h"

typedef struct {
    char *who;          /* token, access_cmp_who */
    const char *priv;   /* borrowed from the document */
    bool grantable;
} access_acl_entry_t;

typedef struct {
    access_acl_entry_t *v;
    size_t n;
} access_acl_t;

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
} access_acl_at_t;

access_acl_t access_acl_read(const cJSON *acl, const char *owner, const char *boot);
void access_acl_free(access_acl_t *a);
void access_acl_compare(access_cmp_t *c, const access_acl_at_t *at, const access_acl_t *sa,
                        const access_acl_t *da);

#endif
