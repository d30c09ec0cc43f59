/*
 * access_defacls: default privileges (pg_default_acl), compared between the
 * sides by (role, schema, object type); a missing entry reads as the
 * built-in default.
 */
#ifndef GODWIT_ACCESS_DEFACLS_H
#define GODWIT_ACCESS_DEFACLS_H

#include "access_cmp.h"

void access_defacls_compare(access_cmp_t *c);

#endif
