/*
 * basebackup: the BaseBackup step on the target (proto/godwit.proto,
 * docs/physical.md): this agent's standby data directory (the config's
 * postgres.standby) made a physical standby of the peer, streaming from
 * the slot, then the server started. Idempotent (standby.h: the markers):
 *
 *   data directory       what the step does
 *   ours for the slot    starts the server if it does not answer; answers
 *   partial, this slot   removes it (a killed pg_basebackup's), as missing
 *   missing or empty     the slot looked up on the peer (created by
 *                        pg_basebackup -C only if it is not there), then
 *                        pg_basebackup, the marker, the start command
 *   anything else        FAILED, nothing touched
 *
 * pg_basebackup runs as a child in a process group of its own (with the
 * config's run_as in front), the peer's address, user, sslmode and
 * passfile in its environment, never on its command line; its progress
 * goes into the engine's standby_progress_t as it reads it. A cancel kills
 * the group and waits for it. Answered with a StandbyStatusResult.
 *
 * Owns: its copy of the request's names, the child while it runs, the
 * result until it is handed over. Borrows local (and its standby section
 * and peers) and the engine's progress record, which outlive it; after a
 * cancel it no longer touches the record.
 */
#ifndef GODWIT_BASEBACKUP_H
#define GODWIT_BASEBACKUP_H

#include "standby.h"
#include "step.h"

/* Why req cannot run on this agent (malloc'd, caller frees), or NULL: no
 * standby section in its config, a peer it does not list, a slot name
 * that is not godwit's. */
char *basebackup_refusal(const step_local_t *local, const Godwit__BaseBackup *req);

/* Starts the step (checked by basebackup_refusal first); NULL for an
 * invalid request. */
step_t *basebackup_start(uv_loop_t *loop, const step_local_t *local, standby_progress_t *progress,
                         const Godwit__BaseBackup *req, step_done_cb done, void *arg);

#endif
