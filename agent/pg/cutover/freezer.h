/*
 * freezer: the source's write fence for the cutover (the FreezeSource
 * command; see proto/godwit.proto) and its lease.
 *
 * The fence: the application roles lose LOGIN, their sessions in the
 * database get drain_timeout_ms to end their transactions and are then
 * terminated; once none is left, no application commit can follow, and the
 * WAL position read then is the final LSN. default_transaction_read_only is
 * not the fence: a session can turn it off for itself.
 *
 * What each role had before (LOGIN or not) is written to
 * STATE_DIR/freeze-<database in hex>.json before any role is changed, so an
 * unfreeze restores exactly that, also after an agent restart; the file is
 * removed when the fence is lifted.
 *
 * The lease: a FREEZE holds for lease_ms unless renewed (another FREEZE) or
 * made permanent (KEEP); then the agent lifts the fence by itself and says so
 * with an event "freeze.lease_expired". An agent that starts and finds a
 * fence of its own that is not permanent gives it FREEZE_RESTART_LEASE_MS:
 * a coordinator that comes back in time decides; otherwise the source
 * becomes writable again rather than stay frozen forever.
 *
 * The connections kept for the write pause's next steps (PREPARE, or a
 * step that ended well) are the freezer's too: SetSequences (sequences.h)
 * takes its connection from them and gives it back.
 *
 * Owns: the lease timers, the kept connections, the running steps'
 * connections and requests.
 */
#ifndef GODWIT_FREEZER_H
#define GODWIT_FREEZER_H

#include <stdbool.h>

#include "pgconn.h"
#include "step.h"

#define FREEZE_RESTART_LEASE_MS 30000

typedef struct freezer freezer_t;

/* error: an event for the coordinator (code, message, object). */
typedef void (*freezer_event_cb)(bool error, const char *code, const char *message,
                                 const char *object, void *arg);

/* local is copied (its strings must outlive the freezer); state_dir holds
 * the fence files. Starts the restart leases of fences found there. */
freezer_t *freezer_new(uv_loop_t *loop, const step_local_t *local, const char *state_dir,
                       freezer_event_cb event, void *arg);
/* Cancels running steps and leases (a fence stays as it is: the next agent
 * finds its file). Clears *fp; memory goes in the close callbacks. */
void freezer_destroy(freezer_t **fp);

/* Whether our fence holds database (its file exists). */
bool freezer_fenced(const freezer_t *f, const char *database);

/* Runs one FreezeSource; the payload is a FreezeSourceResult. NULL for an
 * invalid request (no callback then). */
step_t *freezer_run(freezer_t *f, const Godwit__FreezeSource *req, step_done_cb done, void *arg);

/* The connections the freezer's steps, SetSequences' and TuneSubscription's
 * open: to database on the local server, statement_timeout
 * FREEZE_STATEMENT_TIMEOUT_MS (not yet connecting; pgstep.h). */
#define FREEZE_STATEMENT_TIMEOUT_MS 10000
pgconn_t *freezer_conn_new(uv_loop_t *loop, const step_local_t *local, const char *database);

/* A connection to database for a step: the kept one if it is to database
 * and still idle (the caller skips connecting: pgconn_is_ready), else a
 * new one. The caller owns it. */
pgconn_t *freezer_conn_take(freezer_t *f, const char *database);
/* A step that ended well hands its connection back (*cp cleared): kept if
 * it is idle, in a free place, else in place of one to another database,
 * else of the first; destroyed if it is not idle. */
void freezer_conn_give(freezer_t *f, const char *database, pgconn_t **cp);

/* The loop and the local settings f was made with. */
uv_loop_t *freezer_loop(const freezer_t *f);
const step_local_t *freezer_local(const freezer_t *f);

#endif
