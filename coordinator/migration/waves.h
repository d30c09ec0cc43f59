/*
 * waves: the fleet's schedule. A plan with `waves` (plan.h, plan_waves_t)
 * starts its migrations in waves: every migration is journaled at once,
 * the ones of later waves in state scheduled; the canary starts at once,
 * and each later wave opens when every migration of the waves before it
 * has passed (streaming and verified equal, or already cut over) or failed
 * (aborted, stopped by protection, verified different, or failing a step
 * again and again), no more have failed than the error budget (plus those
 * the operator accepted), the fleet is not paused, and, with go: operator,
 * the operator said `godwitctl fleet go`. A failed migration never stops
 * the others of its wave. The schedule verifies each streaming migration
 * of an open wave itself (again after a verify that could not finish).
 *
 * One schedule runs at a time; its settings and progress are journal meta
 * (waves.c, s_keys), each migration's wave in its "created" event, so
 * a restarted coordinator resumes the schedule exactly. One of the
 * machine's modules (migration.h): it reads the migrations' struct.
 */
#ifndef GODWIT_WAVES_H
#define GODWIT_WAVES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "journal.h"
#include "migration.h"
#include "plan.h"

/* A step failed this many times in a row: the migration counts as failed
 * for the error budget (it counts as pending again once it moves on). */
#define WAVES_FAILING_ATTEMPTS 5
/* A verify the schedule started that could not finish is started again
 * after this long. */
#define WAVES_VERIFY_RETRY_MS 30000

typedef struct {
    uint64_t schedule;    /* the current schedule (1, 2, ...); 0: there never was one */
    int go;               /* plan_go_t */
    int64_t error_budget;
    unsigned opened;      /* the highest wave opened */
    unsigned go_given;    /* the highest wave the operator let open (fleet go) */
    int64_t accepted;     /* failures the operator accepted (fleet go --accept-failures) */
    char waiting[400];    /* why the next wave has not opened; "" when none waits */
} waves_t;

/* Starts a verify of g (the set's migset_verify); false with err if it
 * could not. */
typedef bool (*waves_verify_fn)(migration_t *g, void *arg, char *err, size_t errlen);

/* The schedule as the journal has it (none: schedule 0). */
void waves_load(waves_t *w, journal_t *j);

/* A new schedule with pw's settings, journaled; false with err if the
 * current one still has migrations waiting for their wave (migs: the
 * set's list). */
bool waves_begin(waves_t *w, journal_t *j, const migration_t *migs, const plan_waves_t *pw,
                 char *err, size_t errlen) GODWIT_MUSTCHECK;

/* The detail of the "created" event of a migration of wave in the
 * current schedule (journal_migration_create_detail), into buf. */
void waves_detail(const waves_t *w, unsigned wave, char *buf, size_t len);

/* g's schedule and wave from its "created" event (none: 0): a migration
 * loaded from the journal. */
void waves_read(migration_t *g, journal_t *j);
/* g is of wave in the current schedule (what waves_detail journaled). */
void waves_assign(const waves_t *w, migration_t *g, unsigned wave);

/* Called from the set's tick (now: monotonic ms): verifies the streaming
 * migrations of the open waves that need it, and opens the next wave when
 * its gate passes (else says why in w->waiting). */
void waves_tick(waves_t *w, journal_t *j, migration_t *migs, bool fleet_paused, uint64_t now,
                waves_verify_fn verify, void *arg);

/* The operator's go: the next wave may open once its gate passes; with
 * accept_failures, the failures so far no longer count against the
 * budget. Journaled; *wave is the wave it applies to. False with err when
 * no wave waits. */
bool waves_go(waves_t *w, journal_t *j, const migration_t *migs, bool accept_failures,
              unsigned *wave, char *err, size_t errlen) GODWIT_MUSTCHECK;

/* Whether g belongs to the current schedule's wave (any wave: 0). */
bool waves_member(const waves_t *w, const migration_t *g, unsigned wave);

/* The schedule for status (docs/migrate.md "waves"), or JSON null when
 * there is none. Caller deletes. */
cJSON *waves_json(const waves_t *w, const migration_t *migs);

#endif
