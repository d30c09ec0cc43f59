/*
 * roles: the ApplyRoles step on the target host, under the contract of
 * step.h: the roles the database needs, made before its schema is restored
 * (which names them as owners and grantees). roles.c says how.
 */
#ifndef GODWIT_ROLES_H
#define GODWIT_ROLES_H

#include "step.h"

/* done's payload is a Godwit__ApplyRolesResult. NULL (done not called)
 * only for invalid arguments. */
step_t *roles_apply_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__ApplyRoles *req, step_done_cb done, void *arg);

#endif
