/*
 * mypromote: the MariaDB target's Promote in the cutover's write pause
 * (proto/godwit.proto: Promote, PromoteResult), on the local server only.
 *
 * In order, each a TimedStep:
 *   "final position executed": SELECT MASTER_GTID_WAIT(final_gtid, the
 *     wait in seconds): 0, reached; -1, FAILED "executed only up to
 *     <@@gtid_slave_pos>, not the final position <final_gtid>, in N ms".
 *     A connection that is stopped already (or gone) is not waited for:
 *     the position is reached or it never will be.
 *   "stop replication": STOP SLAVE 'replica_connection' (a connection gone
 *     already is fine). From here a failure answers with the result and
 *     promote_requested = true: the server may be writable.
 *   "lift fence": a fence of ours on this server (a rollback's old
 *     source, myfence.h) is lifted as UNFREEZE lifts it: the accounts not
 *     locked before unlocked (PromoteResult.roles counts them), the
 *     record removed.
 *   "writable": SET GLOBAL read_only = OFF.
 *   "events": ALTER EVENT db.ev ENABLE for each event of the database whose
 *     information_schema.EVENTS.STATUS is 'SLAVESIDE_DISABLED' (the copy
 *     and MyFollow made them so; one DISABLED stays so).
 *   promoted_gtid = @@global.gtid_binlog_pos.
 * Already promoted (the connection stopped and the final position
 * executed): the same stages (each finds nothing to do), already = true.
 *
 * The session runs sql_log_bin = 0: the promotion's own statements are
 * not events of the new primary's binary log, so promoted_gtid is the
 * position at the switch, and the old source that follows it (MyFollow)
 * finds no GTID of ours before the application's.
 *
 * Trust: only a connection name step_godwit_name accepts is stopped.
 * Ownership: the step owns its session and its copy of the request; the
 * fence keeper is borrowed (it outlives the engine's steps).
 */
#ifndef GODWIT_MYPROMOTE_H
#define GODWIT_MYPROMOTE_H

#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"
#include "myfence.h"
#include "step.h"

typedef struct {
    myconn_params_t server;        /* the local server; its database and init are ignored */
    uint64_t statement_timeout_ms; /* one statement's limit (the wait has its own) */
    myfence_t *fence;              /* the fence keeper of this server (borrowed) */
} mypromote_local_t;

/* done gets a malloc'd PromoteResult, or the error (with the result when
 * promote_requested). NULL with *why (malloc'd) for a request refused
 * before anything runs: no final_gtid, no database, a connection name
 * step_godwit_name refuses, a final check (not available for MariaDB). */
step_t *mypromote_start(uv_loop_t *loop, const mypromote_local_t *local,
                        const Godwit__Promote *req, step_done_cb done, void *arg, char **why);

#endif
