/*
 * sync_status: the SyncStatus step (see sync_status.c), under the contract
 * of step.h.
 */
#ifndef GODWIT_SYNC_STATUS_H
#define GODWIT_SYNC_STATUS_H

#include "step.h"

/* Payload: a SyncStatusResult. NULL (done not called) only for invalid
 * arguments. */
step_t *sync_status_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__SyncStatus *req, step_done_cb done, void *arg);

#endif
