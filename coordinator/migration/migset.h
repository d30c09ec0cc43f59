/*
 * migset: the migrations of a coordinator (migration.h: each one's
 * machine). The set owns them, loads them from the journal at start (each
 * resumes where it was), ticks them from the coordinator's periodic tick,
 * and takes the operator's commands (start, abort, pause, resume, verify,
 * cutover, rollback, cleanup, status), each found by name and made a row
 * of the machine, or refused with why. What the process uses (coord.c);
 * it reaches agents only through agentlink.h.
 */
#ifndef GODWIT_MIGSET_H
#define GODWIT_MIGSET_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "agentlink.h"
#include "journal.h"
#include "migration.h"
#include "plan.h"
#include "promtext.h"

typedef struct migset migset_t;

/* Loads every migration from the journal (they resume where they were). */

migset_t *migset_new(const agentlink_t *link, journal_t *j);

/* How many copies (the copy phase: a snapshot read by parallel workers)
 * run at once from one source agent, into one target agent, and over one
 * link (from the source's site to the target's); a migration whose copy
 * would pass any waits in copy, queued in start order. 0: no cap. The
 * defaults: MIGSET_COPIES_PER_SOURCE and _TARGET, no cap per link. */
typedef struct {
    int64_t per_source;
    int64_t per_target;
    int64_t per_link;   /* copies at once between two sites (the agents' site labels; an
                           agent without one is a site of its own) */
} migset_caps_t;
/* The journal's meta key of the fleet's pause. */
#define MIGSET_FLEET_PAUSED_KEY "fleet_paused"
#define MIGSET_COPIES_PER_SOURCE 2
#define MIGSET_COPIES_PER_TARGET 2
void migset_set_caps(migset_t *ms, migset_caps_t caps);
/* The caps and the copies running and queued, for status. Caller deletes. */
cJSON *migset_copies_json(const migset_t *ms);

/* The fleet paused (pause true) or resumed: while paused no copy starts
 * and no wave opens (the queued ones wait; a restart keeps it so, it is
 * journaled), and every migration the operator's pause applies to is
 * paused; resume lets the copies start and resumes every paused
 * migration. wave (not 0): only that wave's migrations pause or resume,
 * the fleet's flag stays. Appends to changed the names of those paused or
 * resumed, to skipped {name, why} for the others. False with err if the
 * journal refused or the schedule has no such wave. */
bool migset_fleet_pause(migset_t *ms, bool pause, unsigned wave, cJSON *changed, cJSON *skipped,
                        char *err, size_t errlen) GODWIT_MUSTCHECK;
/* Every migration of the fleet (wave 0) or of one wave of its schedule
 * that abort applies to moves toward aborted (a scheduled one is aborted
 * at once: nothing of it exists yet); the names into changed, {name, why}
 * of the others into skipped. False with err for a wave the schedule
 * does not have. */
bool migset_fleet_abort(migset_t *ms, unsigned wave, cJSON *changed, cJSON *skipped, char *err,
                        size_t errlen) GODWIT_MUSTCHECK;

/* Whether the fleet is paused (migset_fleet_pause). */
bool migset_fleet_paused(const migset_t *ms);

/* A new schedule of waves (waves.h) for the migrations started next with
 * a wave; false with err while the current one has migrations waiting for
 * their wave. */
bool migset_schedule(migset_t *ms, const plan_waves_t *pw, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
/* The operator's go for the schedule's next wave (waves.h, waves_go). */
bool migset_fleet_go(migset_t *ms, bool accept_failures, unsigned *wave, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
/* The schedule for status (waves.h, waves_json). Caller deletes. */
cJSON *migset_waves_json(const migset_t *ms);
void migset_destroy(migset_t **mp);

/* The observer of every move (migration.h, migration_move_cb): one per
 * set (NULL: none). */
void migset_on_move(migset_t *ms, migration_move_cb cb, void *arg);

/* Called from the coordinator's tick: starts due steps. */
void migset_tick(migset_t *ms);

/* Journals and starts m (copied): at once (wave 0) or, in the schedule
 * migset_schedule began, when its wave opens (it waits as scheduled);
 * false with err if the name is taken. */
bool migset_start(migset_t *ms, const plan_migration_t *m, unsigned wave, char *err,
                  size_t errlen) GODWIT_MUSTCHECK;
/* Moves m toward aborted; false with err if unknown or already streaming
 * past the point where abort applies. */
bool migset_abort(migset_t *ms, const char *name, char *err, size_t errlen)
    GODWIT_MUSTCHECK;

/* Pauses (disables the subscription; the slot keeps WAL, protection stays
 * on) or resumes (enables it, then rechecks the copy) m; false with err if
 * unknown or not in a state where that applies. */
bool migset_pause(migset_t *ms, const char *name, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
bool migset_resume(migset_t *ms, const char *name, char *err, size_t errlen)
    GODWIT_MUSTCHECK;

/* Starts verify (phase 6) of a streaming m over the tables of its
 * subscription; true if started or already running, false with err
 * otherwise. The report shows in status as "verify" and is journaled when
 * it ends (the last one survives a restart). */
bool migset_verify(migset_t *ms, const char *name, char *err, size_t errlen)
    GODWIT_MUSTCHECK;

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
                    char *err, size_t errlen) GODWIT_MUSTCHECK;

/* The cutover (back: the rollback; or its rehearsal) of the n migrations
 * names in one write pause (cutgroup.h): each passes its gates, or none
 * starts (*refused, err naming the one); every proxy of theirs switched,
 * or none. */
bool migset_cutover_group(migset_t *ms, const char *const *names, size_t n, bool back,
                          bool dry_run,
                          bool *refused, char *err, size_t errlen) GODWIT_MUSTCHECK;

/* Drops every object of ours on both sides of a switched m (blue's
 * subscription to green, green's publication and slot for it, blue's
 * publication): no rollback afterwards; blue stays fenced. */
bool migset_cleanup(migset_t *ms, const char *name, char *err, size_t errlen)
    GODWIT_MUSTCHECK;

/* Journals an event of kind with detail for migration name, in its state
 * now (the operator's commands, for its audit trail); false if there is
 * no migration of that name. */
bool migset_note(migset_t *ms, const char *name, const char *kind, const char *detail);
/* The state name of migration name (static), or NULL if there is none. */
const char *migset_state(migset_t *ms, const char *name);

/* The migrations' Prometheus families (migmetrics.h) into p. */
void migset_metrics(const migset_t *ms, promtext_t *p);

/* Status of one migration (name) or all (NULL), schema in docs/migrate.md;
 * NULL if name is unknown. Caller deletes. */
cJSON *migset_status(migset_t *ms, const char *name);

#endif
