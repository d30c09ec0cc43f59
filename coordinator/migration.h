/*
 * migration: one PostgreSQL migration driven through its phases by a
 * transition table (migration.c, s_states), journaled.
 *
 *   schema -> publish -> subscribe -> copy -> postdata -> streaming
 *   any state before streaming -(abort)-> abort_target -> abort_source -> aborted
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

#include "coord.h"
#include "journal.h"
#include "plan.h"

typedef struct migset migset_t;

/* Loads every migration from the journal (they resume where they were). */
migset_t *migset_new(coord_t *c, journal_t *j);
void migset_destroy(migset_t **mp);

/* Called from the coordinator's tick: starts due steps. */
void migset_tick(migset_t *ms);

/* Journals and starts m (copied); false with err if the name is taken. */
bool migset_start(migset_t *ms, const plan_migration_t *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Moves m toward aborted; false with err if unknown or already streaming
 * past the point where abort applies. */
bool migset_abort(migset_t *ms, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Status of one migration (name) or all (NULL), schema in docs/migrate.md;
 * NULL if name is unknown. Caller deletes. */
cJSON *migset_status(migset_t *ms, const char *name);

#endif
