/*
 * verify_schema: the target agent's VerifySchema and VerifyRoles steps
 * (phase 6 and the cutover's gate): the migrated tables' schema and the
 * application roles' privileges, compared source against target
 * (verify_schema.c). Payload: a VerifySchemaResult.
 */
#ifndef GODWIT_VERIFY_SCHEMA_H
#define GODWIT_VERIFY_SCHEMA_H

#include <stdbool.h>

#include "pgstep.h"

/* Each returns NULL (and does not call done) only for invalid arguments.
 * fenced: our fence holds the target database (freezer.h): its roles'
 * missing LOGIN is the fence's, not a finding (VerifySchema's roles part
 * and VerifyRoles alike). */
step_t *verify_schema_start(uv_loop_t *loop, const step_local_t *local,
                            const Godwit__VerifySchema *req, bool fenced, step_done_cb done,
                            void *arg);
step_t *verify_schema_roles_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__VerifyRoles *req, bool fenced,
                                  step_done_cb done, void *arg);

#endif
