/*
 * rejoin: the Rejoin step (proto/godwit.proto, docs/physical.md), the
 * physical path's way back: on the old primary's agent after a switch,
 * its server made a standby of the peer (the new primary), streaming from
 * the physical slot `slot` on it, so that a rollback can promote it again.
 *
 *   server answers, in recovery, streams through slot   answered at once
 *   else: the slot on the peer (created if missing: immediately reserved;
 *   a logical slot of that name fails the step), the stop command (its
 *   failure tolerated if the server no longer answers), pg_rewind (skipped
 *   when the directory already holds our settings for slot: a run that
 *   got past it), the recovery settings (recoveryconf.h), the start
 *   command, a connection attempt every S_PROBE_MS until it answers, the
 *   standby's state.
 *
 * The data directory is the config's postgres.standby.data_directory: the
 * old primary's own. It never gets godwit's marker (standby.h), so that a
 * DropObjects.standby_of_slot keeps refusing it; one pg_rewind copied from
 * the peer (a standby godwit made there) is removed.
 *
 * pg_rewind runs as run_as in a process group of its own, the peer's
 * host, port, user, dbname and sslmode in its --source-server string, the
 * passfile in its environment (never a password on its command line); its
 * error reaches the coordinator as it wrote it. A cancel kills the group
 * and waits for it (a pg_rewind killed half-way may leave the directory
 * unusable: pg_rewind's own warning).
 *
 * Owns: its copy of the request's names, the child while it runs, its
 * connection. Borrows local (its standby section and peers).
 */
#ifndef GODWIT_REJOIN_H
#define GODWIT_REJOIN_H

#include "step.h"

/* Why req cannot run on this agent (malloc'd, caller frees), or NULL: no
 * standby section in its config, a slot name that is not godwit's, a
 * peer it does not list. */
char *rejoin_refusal(const step_local_t *local, const Godwit__Rejoin *req);

/* Starts the step (checked by rejoin_refusal first); NULL for an invalid
 * request. Answered with a StandbyStatusResult. */
step_t *rejoin_start(uv_loop_t *loop, const step_local_t *local, const Godwit__Rejoin *req,
                     step_done_cb done, void *arg);

#endif
