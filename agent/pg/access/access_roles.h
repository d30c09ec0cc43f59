/*
 * access_roles: the roles the database needs, compared by name between the
 * sides (attributes, memberships, settings), the statements that create
 * one on the target as the source has it (never with SUPERUSER, never a
 * membership in a superuser), and the bootstrap superusers' names.
 *
 * Nothing here keeps state; every statement goes through the comparison's
 * quoting (access_cmp.h).
 */
#ifndef GODWIT_ACCESS_ROLES_H
#define GODWIT_ACCESS_ROLES_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "access_cmp.h"

/* Adds the differences of the roles src describes (and the application
 * roles it lacks) to c->out. */
void access_roles_compare(access_cmp_t *c);
/* Adds a difference when the bootstrap superusers' names differ and the
 * source has objects or default privileges of its own. */
void access_roles_bootstrap_compare(access_cmp_t *c);

void access_roles_create(access_cmp_t *c, const cJSON *role,
                         void (*add)(void *arg, char *sql, int what), void *arg);
char *access_roles_grant_sql(access_cmp_t *c, const char *member, const cJSON *m);
bool access_roles_superuser_membership(const access_cmp_t *c, const cJSON *m);

#endif
