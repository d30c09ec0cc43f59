/*
 * access_plan: what the roles step runs on the target before the schema is
 * restored, planned from the source's and the target's access catalogs
 * (access.h) with the same parts the comparison uses.
 *
 * What it owns: the plan's statements (access_plan_free); the role names
 * it lists are borrowed from the source's document. Nothing here does
 * I/O.
 */
#ifndef GODWIT_ACCESS_PLAN_H
#define GODWIT_ACCESS_PLAN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "access.h"

/* What the roles step runs on the target, in this order, in one
 * transaction: CREATE ROLE for each role src describes that dst lacks (never
 * with SUPERUSER), the memberships of the roles it creates (not membership
 * in a superuser), their settings (in the target database for the source
 * database's), then the database's owner and privileges as the source has
 * them. Roles that exist on the target are left as they are. created lists
 * the roles created (borrowed from src). */
typedef struct {
    char **stmts;            /* malloc'd statements */
    size_t n_stmts, cap_stmts;
    const char **created;    /* role names, borrowed from src */
    size_t n_created;
    size_t n_memberships, n_settings, n_database;
    size_t n_superuser;      /* superusers created without SUPERUSER */
} access_plan_t;

bool access_plan_roles(const cJSON *src, const cJSON *dst, const access_quote_t *q,
                       access_plan_t *plan, char **err) GODWIT_MUSTCHECK;
void access_plan_free(access_plan_t *p);

#endif
