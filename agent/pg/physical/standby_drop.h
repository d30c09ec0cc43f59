/*
 * standby_drop: DropObjects.standby_of_slot on the target: godwit's
 * standby of that slot stopped (the config's stop command) and its data
 * directory removed, with the partial marker of a pg_basebackup that did
 * not finish. Only a directory holding our marker for the slot (or, for a
 * killed pg_basebackup's, whose partial marker names it) is touched; one
 * whose standby.signal is gone was promoted, is a primary now, and is
 * refused too. A missing directory is fine. A stop command that fails is
 * tolerated when the server does not answer afterwards.
 *
 * Owns: its copy of the slot's name, the child while it runs.
 */
#ifndef GODWIT_STANDBY_DROP_H
#define GODWIT_STANDBY_DROP_H

#include "step.h"

/* Why req's standby_of_slot cannot be dropped here (malloc'd), or NULL
 * (also when it names none). */
char *standby_drop_refusal(const step_local_t *local, const Godwit__DropObjects *req);

/* NULL for an invalid request (no callback then). */
step_t *standby_drop_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg);

#endif
