/*
 * verify_table: the target agent's VerifyTable step (phase 6): one table's
 * rows compared, source against target, while the application writes and
 * replication runs, both sides as of one replication position (the stages
 * and their modules: verify_table.c). Payload: a VerifyTableResult.
 */
#ifndef GODWIT_VERIFY_TABLE_H
#define GODWIT_VERIFY_TABLE_H

#include "pgstep.h"

/* Returns NULL (and does not call done) only for invalid arguments. */
step_t *verify_table_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg);

#endif
