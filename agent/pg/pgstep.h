/*
 * pgstep: the PostgreSQL engine's steps (step.h is their contract with the
 * agent): the connections they open and how each starts. Every one runs on
 * the step runtime (steprun.h) and starts through the engine's action
 * table (pg_engine.c).
 *
 *   roles.c   ApplyRoles           (the roles the database needs, before its schema)
 *   schema.c  ApplySchema          (pg_dump/pg_restore as child processes)
 *   steps.c   EnsurePublication, EnsureSubscription, SyncStatus, DropObjects,
 *             SetSubscriptionEnabled, EnsureSlot
 *   verify_table.c  VerifyTable (phase 6: the rows, source against target)
 *   verify_schema.c VerifySchema, VerifyRoles (the schema and the
 *             application roles' privileges, source against target)
 *   bulkcopy.c BulkCopy (the copy through the slot's exported snapshot; its
 *             workers in copyworker.c, its primary keys in copykeys.c, what
 *             they share in copystep.c)
 *   freeze.c  FreezeSource (the cutover's write fence on the source)
 *   sequences.c SetSequences (the cutover: the target's sequences)
 *   tune.c    TuneSubscription (the cutover: the subscription's synchronous_commit)
 *
 * All database work is libpq's asynchronous API (pgconn) or child
 * processes started with uv_spawn and an argv array (never a shell);
 * nothing blocks the loop.
 */
#ifndef GODWIT_PGSTEP_H
#define GODWIT_PGSTEP_H

#include "pgconn.h"
#include "step.h"

/* A statement's client-side deadline is the server's statement_timeout
 * plus this: the server's own timeout, with its message, comes first. */
#define STEP_DEADLINE_SLACK_MS 1000

/* The connections steps open (not yet connecting; pgconn.h), NULL for
 * invalid parameters. app is the application_name, options the startup
 * options ("-c statement_timeout=... -c search_path="), NULL for none;
 * libpq's connect_timeout is connect_timeout_ms in whole seconds (pgconn's
 * deadline is the real bound). step_local_conn: the local server's
 * database, as local says. step_remote_conn: the database remote names on
 * the peer it names (step_peer; NULL if local has no such peer);
 * replication: a walsender for replication commands. */
pgconn_t *step_local_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                          const char *database, const char *app, const char *options);
pgconn_t *step_remote_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                           const Godwit__ReplicationConn *remote, bool replication,
                           const char *app, const char *options);

/* The comment godwit puts on a publication or subscription it creates,
 * in the transaction that creates it (caller frees). An object is godwit's
 * only if its comment is exactly this for its own name: a renamed one is
 * not. */
char *step_marker(const char *name);

/* Each returns NULL (and does not call done) only for invalid arguments. */
step_t *roles_apply_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__ApplyRoles *req, step_done_cb done, void *arg);
step_t *schema_apply_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__ApplySchema *req, step_done_cb done, void *arg);
step_t *publication_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                 const Godwit__EnsurePublication *req, step_done_cb done, void *arg);
step_t *subscription_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
/* The same subscription created on the existing slot req->name without
 * copying (copy_data = false, create_slot = false): the data was copied in
 * the slot's exported snapshot already (bulkcopy.c). */
step_t *subscription_attach_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
/* EnsureSlot: our publication and a logical slot of that name, created if
 * missing; with advance_to, the slot moved forward to it. Payload: an
 * EnsureSlotResult. */
step_t *slot_ensure_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__EnsureSlot *req, step_done_cb done, void *arg);
step_t *sync_status_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__SyncStatus *req, step_done_cb done, void *arg);
step_t *subscription_set_enabled_start(uv_loop_t *loop, const step_local_t *local,
                                       const Godwit__SetSubscriptionEnabled *req,
                                       step_done_cb done, void *arg);
step_t *table_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg);
step_t *schema_verify_start(uv_loop_t *loop, const step_local_t *local,
                            const Godwit__VerifySchema *req, bool fenced, step_done_cb done,
                            void *arg);
/* fenced: our fence holds the target database (freeze.h): its roles'
 * missing LOGIN is the fence's, not a finding (VerifySchema's roles part
 * and VerifyRoles alike). */
step_t *roles_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyRoles *req, bool fenced, step_done_cb done,
                           void *arg);
step_t *objects_drop_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg);

#endif
