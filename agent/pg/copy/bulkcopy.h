/*
 * bulkcopy: the BulkCopy step on the target (the copy phase), under the
 * contract of step.h. The data of the publication's tables is copied in the
 * snapshot our slot exported when it was created, by parallel workers in
 * chunks, and our subscription is then created on that slot without copying:
 * streaming starts exactly where the copy's snapshot ends.
 *
 * The agent also asks a running copy how it stands (bulkcopy_progress) and
 * recognises it by database and name, to join a re-sent command to it and
 * to stop it before our objects are dropped.
 */
#ifndef GODWIT_BULKCOPY_H
#define GODWIT_BULKCOPY_H

#include <stdbool.h>

#include "step.h"

/* done's payload is a Godwit__BulkCopyResult. NULL (done not called) for
 * invalid arguments. */
step_t *bulkcopy_start(uv_loop_t *loop, const step_local_t *local, const Godwit__BulkCopy *req,
                       step_done_cb done, void *arg);

/* Whether step, which bulkcopy_start returned, copies into database for the
 * subscription name. */
bool bulkcopy_is(const step_t *step, const char *database, const char *name);

/* Where the copy stands, per table: a malloc'd result the caller frees with
 * godwit__sync_status_result__free_unpacked(). step is one bulkcopy_start
 * returned. */
Godwit__SyncStatusResult *bulkcopy_progress(const step_t *step);

#endif
