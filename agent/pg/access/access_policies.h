/*
 * access_policies: row-level security policies, compared between the sides
 * by table and name (command, permissive, roles, USING, WITH CHECK), on the
 * tables both sides have.
 */
#ifndef GODWIT_ACCESS_POLICIES_H
#define GODWIT_ACCESS_POLICIES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "access_cmp.h"

/* dindex: the target's objects (access_objects_index). */
void access_policies_compare(access_cmp_t *c, const cJSON **dindex, size_t dn);

#endif
