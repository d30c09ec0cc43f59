/*
 * promote: the Promote step on the target, inside the cutover's write
 * pause (proto/godwit.proto, docs/physical.md): wait until the standby has
 * replayed the source's final LSN, promote it, give LOGIN back to the
 * application roles the source's fence took it from (the fence came with
 * the WAL), then read the final check's rows (rowcheck.h) on the new
 * primary. Already promoted: only the roles and the check.
 *
 * Round trips: one for the wait, the promotion and the roles (a simple
 * query of several statements, a COMMIT between the promotion and the
 * roles: a transaction begun during recovery stays read-only), then one per
 * table of the final check. The connection is the freezer's kept one to the
 * database when it has one (as SetSequences'), else a new one: a connect
 * inside the pause (one handshake, ~1 ms on a local socket) is the cost.
 *
 * Owns: its copy of the request, the check's rows until they go into the
 * result, its connection while it runs (given back to the freezer when the
 * step ends well).
 */
#ifndef GODWIT_PROMOTE_H
#define GODWIT_PROMOTE_H

#include "freezer.h"
#include "step.h"

#define PROMOTE_DEFAULT_WAIT_MS 10000

/* NULL for an invalid request (no callback then). */
step_t *promote_start(freezer_t *f, const Godwit__Promote *req, step_done_cb done, void *arg);

#endif
