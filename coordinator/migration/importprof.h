/*
 * importprof: a migration's import profile (plan.h import_profile;
 * docs/import-profile.md): server settings of the target relaxed for the
 * initial load and put back after it, with a revert that cannot be
 * forgotten.
 *
 *   tune     the state before the copy (migration.c): the target's
 *            settings are READ and that state is journaled (event
 *            "import_profile", stage "read") before anything changes;
 *            then APPLY, journaled as "applied", and the copy starts.
 *   window   tune, copy, catchup, postdata: the initial load. Leaving it
 *            any way (post-data done, an abort, protection, a pause) makes
 *            the revert due.
 *   revert   the tick sends REVERT with the recorded state until the
 *            target's agent answers that every setting is back (it checks
 *            the effective values itself), every 5 s, also after a restart
 *            of the coordinator (the record is read back from the journal)
 *            and after one of the agent (ALTER SYSTEM outlives both);
 *            journaled as "reverted". The cutover gate refuses while the
 *            revert is due (importprof_pending).
 *
 * Migrations into the same target server share its settings: the state
 * recorded is the one before the first of them changed anything (a READ
 * takes, setting by setting, what another migration on that target
 * recorded and has not reverted), and the revert waits while another one
 * still loads there.
 */
#ifndef GODWIT_IMPORTPROF_H
#define GODWIT_IMPORTPROF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit.pb-c.h"

typedef enum {
    IMPORTPROF_NONE = 0,  /* nothing recorded: nothing was changed */
    IMPORTPROF_READ,      /* the state before is recorded; the profile may be applied */
    IMPORTPROF_APPLIED,   /* applied */
    IMPORTPROF_REVERTED,  /* back to the recorded state, checked by the agent */
} importprof_stage_t;

typedef struct migration migration_t;

/* What a migration keeps of its profile (inside migration_t). */
typedef struct {
    importprof_stage_t stage;
    cJSON *record;          /* the journaled record (see importprof.c), owned; NULL: none */
    bool busy;              /* a REVERT is in flight */
    bool tuning;            /* the tune step's command is in flight (stale or not): no
                               REVERT may run beside an APPLY on the agent */
    uint64_t next_mono;     /* the next REVERT no earlier than this */
    char *error;            /* the last REVERT's failure, owned */
    char held_by[128];      /* the migration whose load on the same target holds the
                               revert back; "" when none does */
} importprof_t;

/* Reads g's record back from the journal (at load). */
void importprof_load(migration_t *g);
void importprof_clear(importprof_t *ip);

/* Whether the plan gives g a profile. */
bool importprof_wanted(const migration_t *g);

/* The ImportProfile command for g in mode into cmd, its parts in the
 * caller's storage (settings and ptrs: PLAN_IMPORT_SETTINGS_MAX each),
 * borrowing from g's plan and record (valid while g is): READ names the
 * plan's settings; APPLY and REVERT carry the record's values and state
 * before. */
void importprof_command(const migration_t *g, Godwit__ImportProfile__Mode mode,
                        Godwit__Command *cmd, Godwit__ImportProfile *req,
                        Godwit__ImportSetting *settings, Godwit__ImportSetting **ptrs);
/* The mode of the tune step's command: READ while nothing is recorded,
 * else APPLY. */
Godwit__ImportProfile__Mode importprof_tune_mode(const migration_t *g);

/* The tune step's answer r: recorded and journaled. True when the profile
 * is applied (the step is done); false when the state before was just
 * recorded (send the step again) or could not be journaled (why set). */
bool importprof_answered(migration_t *g, const Godwit__ImportProfileResult *r, char *why,
                         size_t whylen);

/* The revert duty (migration_tick). */
void importprof_tick(migration_t *g, uint64_t now);

/* Whether a revert is due or under way (the cutover gate refuses); then
 * why, for the operator. */
bool importprof_pending(const migration_t *g, char *why, size_t whylen);

/* The profile for status (NULL when the plan gives none), caller owns:
 * {"state", "settings": [{"name", "value", "was", "now"}], "error",
 * "held_by"}. */
cJSON *importprof_status(const migration_t *g);

#endif
