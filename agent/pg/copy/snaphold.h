/*
 * snaphold: the HoldSnapshot command on the source (proto/godwit.proto):
 * the copy's slot and the snapshot it exports, held by the source agent.
 *
 * CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT exports a snapshot that lives
 * as long as the connection that created the slot stays idle. When the
 * target made that connection across the WAN, a reset of it (a partition
 * that resets connections, a NAT that forgets them) ended the snapshot and
 * the copy had to start over from the first table. Held here, on a local
 * connection, the snapshot outlives the target's connections: the target's
 * next run imports it again and copies only what was not copied whole.
 *
 * A hold lasts lease_ms after the last request that named it (the
 * coordinator renews it while the copy runs) and ends then, or when a
 * request with lease_ms 0 names it, or when the agent stops: its connection
 * is closed, which ends the snapshot (not the slot). A slot of that name
 * found without a hold is left alone (stale): only the target, which knows
 * whether our subscription uses it, drops it (BulkCopy without a snapshot).
 *
 * Owns: the holds (their connections, names, snapshots, lease timers) and
 * nothing of the running steps, which the agent cancels before
 * snaphold_destroy. A hold's memory goes in its timer's close callback.
 */
#ifndef GODWIT_SNAPHOLD_H
#define GODWIT_SNAPHOLD_H

#include <stdbool.h>
#include <uv.h>

#include "step.h"

typedef struct snaphold snaphold_t;

/* local is borrowed (it must outlive the registry). */
snaphold_t *snaphold_new(uv_loop_t *loop, const step_local_t *local);
/* Ends every hold (closing its connection) and frees the registry; clears
 * *hp. The steps that run on it must be cancelled first. */
void snaphold_destroy(snaphold_t **hp);

/* Runs one HoldSnapshot; the payload is a HoldSnapshotResult. NULL for an
 * invalid request (no callback then). */
step_t *snaphold_run(snaphold_t *h, const Godwit__HoldSnapshot *req, step_done_cb done,
                     void *arg);

#endif
