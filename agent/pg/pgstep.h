/*
 * pgstep: what the PostgreSQL engine's steps share beyond the step
 * interface (step.h): the connections they open and the marker on the
 * objects they create. Every step runs on the step runtime (steprun.h)
 * and starts through the engine's table (pg_engine.c); each declares its
 * start in its own header:
 *
 *   roles.c          ApplyRoles (the roles the database needs, before its schema)
 *   schema.c         ApplySchema (pg_dump/pg_restore as child processes; the
 *                    dump's entries in toc.c, the programs' environment in
 *                    pgtools.c, the temp folder in workdir.c)
 *   publication.c    EnsurePublication (on the source)
 *   subscription.c   EnsureSubscription (and its attach variant),
 *                    SetSubscriptionEnabled (on the target)
 *   slot.c           EnsureSlot (on the new primary of a cutover)
 *   sync_status.c    SyncStatus (on the target)
 *   drop.c           DropObjects (on either side)
 *                    (these five share replobj.c: godwit's replication objects)
 *   snaphold.c       HoldSnapshot (on the source: the copy's slot and the
 *                    snapshot it exports, kept)
 *   bulkcopy.c       BulkCopy (the copy in the held snapshot)
 *   verify_table.c   VerifyTable (phase 6: the rows, source against target),
 *                    with vtstep.c (its state), vttable.c (the table),
 *                    vtbatch.c (a batch: slot, snapshots, window), vtchunk.c
 *                    and vtmultiset.c (the comparison), vtresult.c (the result)
 *   verify_schema.c  VerifySchema, VerifyRoles (the schema and the application
 *                    roles' privileges, source against target)
 *   preflight.c      PreflightSource, PreflightTarget (phase 1, read only)
 *   freezer.c        FreezeSource (the cutover's write fence)
 *   sequences.c      SetSequences;  tune.c  TuneSubscription (the cutover)
 *   physical/        the physical path (standby.h): BaseBackup, StandbyStatus,
 *                    Promote, DropObjects.standby_of_slot, Rejoin (the way back)
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
 * deadline is the real bound). pgstep_local_conn: the local server's
 * database, as local says. pgstep_remote_conn: the database remote names on
 * the peer it names (step_peer; NULL if local has no such peer);
 * replication: a walsender for replication commands. pgstep_local_walsender:
 * a walsender of the local server's database. */
pgconn_t *pgstep_local_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                            const char *database, const char *app, const char *options);
pgconn_t *pgstep_local_walsender(uv_loop_t *loop, const char *name, const step_local_t *local,
                                 const char *database, const char *app, const char *options);
pgconn_t *pgstep_remote_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                             const Godwit__ReplicationConn *remote, bool replication,
                             const char *app, const char *options);

/* A walsender's look at the replication slot called name (simple
 * protocol; name quoted as a literal for c): slot_type, plugin, database
 * and here (in c's database). Caller frees; NULL if name cannot be quoted. */
char *pgstep_slot_lookup_sql(pgconn_t *c, const char *name);
/* Whether row 0 of that lookup is a slot as godwit makes them: logical,
 * pgoutput, in the connection's database. If not, *what describes the
 * slot found ("physical, database none"; caller frees). */
bool pgstep_slot_ours(const PGresult *res, char **what);

/* The comment godwit puts on a publication or subscription it creates,
 * in the transaction that creates it (caller frees). An object is godwit's
 * only if its comment is exactly this for its own name: a renamed one is
 * not. */
char *pgstep_marker(const char *name);

#endif
