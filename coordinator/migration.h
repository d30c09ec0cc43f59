/*
 * migration: one PostgreSQL migration driven through its phases by a
 * transition table (migration.c: s_states, each state's step; s_rows, every
 * move as from, event, to, why), journaled. The rows, by event:
 *
 *   done         roles -> schema -> publish -> copy -> catchup -> postdata -> streaming;
 *                each undoing state to the next (abort_target -> abort_source -> aborted,
 *                ..., unfollow_source -> switched, cleanup_target -> done)
 *   abort        roles..streaming, pausing, paused, resuming -> abort_target
 *   protect      copy..streaming, pausing, paused, resuming -> protect_source
 *                -> protect_target -> aborted (the source at risk from our slot)
 *   pause        catchup, postdata, streaming -> pausing -> paused
 *   resume       paused, pausing -> resuming -> catchup
 *   switched     streaming -> switched (a cutover, cutover.h)
 *   rolled_back  switched -> streaming (a rollback)
 *   protect_green switched -> unfollow_target -> unfollow_source -> switched
 *   cleanup      switched -> cleanup_source -> cleanup_target -> done
 *
 * copy is one long step on the target (BulkCopy): the slot with an exported
 * snapshot, the tables copied in it in parallel, the subscription created
 * on the slot without copying. While it runs its progress is polled
 * (BulkCopyStatus) for status. catchup polls SyncStatus until the tables
 * are ready and the slot is close to the source's WAL.
 *
 * Source protection: when our slot's retained WAL would pass the plan's
 * slot_wal_limit within three report intervals at the current WAL rate, or
 * the source's free disk falls below source_disk_floor, the coordinator
 * drops our slot and publication on the source first (never waiting for
 * the target), then our subscription on the target, and says why.
 *
 * Each state has one step, an idempotent agent command. The order is always:
 * journal the intent, send the command, and only when it succeeded journal
 * the move to the next state (one SQLite transaction). A crash anywhere
 * leaves the migration in a state whose step is simply run again after a
 * restart: the agent finds it done and says so. A failed step is retried
 * with backoff; its error is kept for status.
 *
 * The migrations of a coordinator live in one migset, which owns them and
 * ticks them from the coordinator's periodic tick.
 */
#ifndef GODWIT_MIGRATION_H
#define GODWIT_MIGRATION_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentlink.h"
#include "journal.h"
#include "plan.h"

typedef struct migset migset_t;

/* Loads every migration from the journal (they resume where they were). */

migset_t *migset_new(const agentlink_t *link, journal_t *j);
void migset_destroy(migset_t **mp);

/* Called after every move a migration makes (from, event and to as
 * status names them), once journaled, and for an event accepted without a
 * move (to is from: already under way); the names are static. One
 * observer per set (NULL: none). */
typedef void (*migset_move_cb)(const char *migration, const char *from, const char *event,
                               const char *to, void *arg);
void migset_on_move(migset_t *ms, migset_move_cb cb, void *arg);

/* The transition table (migration.c, s_rows): how many rows, and row i's
 * from, event and to (static names); false past the end. */
size_t migration_rows(void);
bool migration_row(size_t i, const char **from, const char **event, const char **to);

/* Called from the coordinator's tick: starts due steps. */
void migset_tick(migset_t *ms);

/* Journals and starts m (copied); false with err if the name is taken. */
bool migset_start(migset_t *ms, const plan_migration_t *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Moves m toward aborted; false with err if unknown or already streaming
 * past the point where abort applies. */
bool migset_abort(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Whether the source is at risk from our slot, from the source agent's
 * report (now_ms: wall clock, to age its figures): writes the reason into
 * why and returns true. slot_limit and disk_floor of 0 are not checked. */
bool migration_source_at_risk(const Godwit__Report *rep, const char *slot, int64_t slot_limit,
                              int64_t disk_floor, uint64_t now_ms, char *why, size_t whylen);

/* Pauses (disables the subscription; the slot keeps WAL, protection stays
 * on) or resumes (enables it, then rechecks the copy) m; false with err if
 * unknown or not in a state where that applies. */
bool migset_pause(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool migset_resume(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Starts verify (phase 6) of a streaming m over the tables of its
 * subscription; true if started or already running, false with err
 * otherwise. The report shows in status as "verify" and is journaled when
 * it ends (the last one survives a restart). */
bool migset_verify(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* An agent saw an error of a logical replication worker in its server's
 * log (object: the subscription it is about): kept on the migration whose
 * subscription that is, journaled when it changes, shown in status. */
void migset_replication_error(migset_t *ms, const char *agent, const char *object,
                              const char *message);

/* Starts the cutover (phase 7; cutover.h) of m, or its rehearsal, after
 * checking the gates: streaming, the last verify equal, every table ready,
 * no replication error in the last minute, every agent involved connected,
 * every proxy reachable as its agent last reported it (cutgate.h),
 * lag under max_lag and the predicted pause inside max_write_pause. back:
 * the rollback, from switched, with blue following green (green's slot for
 * it active, its lag within limits). False with err (naming the gate) when
 * refused (*refused then set; clear for any other failure). */
bool migset_cutover(migset_t *ms, const char *name, bool back, bool dry_run, bool *refused,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Drops every object of ours on both sides of a switched m (blue's
 * subscription to green, green's publication and slot for it, blue's
 * publication): no rollback afterwards; blue stays fenced. */
bool migset_cleanup(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Status of one migration (name) or all (NULL), schema in docs/migrate.md;
 * NULL if name is unknown. Caller deletes. */
cJSON *migset_status(migset_t *ms, const char *name);

#endif
