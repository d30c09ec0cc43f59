/*
 * standby_status: the StandbyStatus step on the target: one round trip on
 * the local server (standby.h: standby_status_sql) and a look at the
 * standby data directory's marker for the slot (ours). The server not
 * answering fails the step with libpq's reason.
 *
 * Owns: its copy of the slot's name, its connection.
 */
#ifndef GODWIT_STANDBY_STATUS_H
#define GODWIT_STANDBY_STATUS_H

#include "step.h"

/* NULL for an invalid request (no callback then). */
step_t *standby_status_start(uv_loop_t *loop, const step_local_t *local,
                             const Godwit__StandbyStatus *req, step_done_cb done, void *arg);

#endif
