/*
 * migration: see migration.h. The table s_states below is the state
 * machine: for each state, which side runs its step, how to build the
 * command (migcmd.h), and where success leads. Owns each migration's plan
 * copy and its latest copy status. Never blocks: steps are agent commands.
 */
#include "migration.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copydone.h"
#include "log.h"
#include "lsn.h"
#include "migcmd.h"
#include "migmetrics.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

#define S_CATCHUP_LAG_BYTES (16u << 20) /* catchup ends once the slot is this close */
#define S_PROGRESS_MS 1000              /* copy progress polls */
#define S_REVERSE_POLL_MS 2000          /* MariaDB, switched: the way back's poll */

/* The callback argument of one sent step: which migration, which send,
 * and whether it was the import profile's (importprof.h: its answer
 * clears g->import.tuning even when stale). */
typedef struct {
    migration_t *g;
    uint64_t gen;
    bool import;
} step_token_t;

/* The states and their steps. `poll_ms` > 0: the step is a status poll
 * that repeats until its condition holds (catchup: every table ready and the
 * slot close) or forever (streaming); otherwise its success is the event
 * MEV_DONE at once. Where each event leads is s_rows. */
static const struct {
    mstate_t state;
    const char *name;
    bool on_target;         /* which agent runs the step */
    migcmd_fn build;
    uint64_t timeout_ms;
    uint64_t poll_ms;
    const char *comment;
} s_states[M__COUNT] = {
    { M_SCHEMA, "schema", true, migcmd_schema_pre, 30 * 60000, 0,
      "pre-data schema, primary keys and replica identities on the target" },
    { M_PUBLISH, "publish", false, migcmd_publish, 60000, 0,
      "our publication on the source" },
    { M_COPY, "copy", true, migcmd_copy, 24 * 3600000, 0,
      "our slot and its snapshot held on the source, every table copied in that snapshot by "
      "parallel workers, then our subscription on that slot" },
    { M_CATCHUP, "catchup", true, migcmd_sync, 30000, 250,
      "waiting until the subscription has applied what was written during the copy" },
    { M_POSTDATA, "postdata", true, migcmd_schema_post, 4 * 3600000, 0,
      "secondary indexes, foreign keys, triggers on the target" },
    { M_STREAMING, "streaming", true, migcmd_sync, 30000, 2000,
      "following the source until cutover" },
    { M_ABORT_TARGET, "abort_target", true, migcmd_drop_target, 120000, 0,
      "dropping our subscription on the target" },
    { M_ABORT_SOURCE, "abort_source", false, migcmd_drop_source, 120000, 0,
      "dropping our publication and slot on the source" },
    { M_PROTECT_SOURCE, "protect_source", false, migcmd_drop_source, 60000, 0,
      "protecting the source: dropping our slot and publication there first" },
    { M_PROTECT_TARGET, "protect_target", true, migcmd_drop_target, 120000, 0,
      "protecting the source: dropping our subscription on the target" },
    { M_PAUSING, "pausing", true, migcmd_disable, 60000, 0,
      "disabling our subscription on the target" },
    { M_PAUSED, "paused", false, NULL, 0, 0,
      "paused by the operator; the slot keeps WAL on the source, protection stays on" },
    { M_RESUMING, "resuming", true, migcmd_enable, 60000, 0,
      "enabling our subscription on the target, then waiting for it to catch up" },
    { M_ABORTED, "aborted", false, NULL, 0, 0,
      "nothing of ours is left" },
    { M_SWITCHED, "switched", false, NULL, 0, 0,
      "cut over: traffic goes to green; blue is fenced and follows green (unless "
      "cutover.reverse is off), ready for a rollback" },
    { M_CLEANUP_SOURCE, "cleanup_source", false, migcmd_drop_source, 120000, 0,
      "cleanup: dropping our subscription, publication and slot on blue" },
    { M_CLEANUP_TARGET, "cleanup_target", true, migcmd_drop_target, 120000, 0,
      "cleanup: dropping our subscription, publication and slot on green" },
    { M_DONE, "done", false, NULL, 0, 0,
      "done: traffic goes to green; blue stays fenced and follows nothing; nothing of ours is "
      "left on either side" },
    { M_UNFOLLOW_TARGET, "unfollow_target", true, migcmd_unfollow_target, 60000, 0,
      "protecting green: dropping its slot for blue first (no rollback then)" },
    { M_UNFOLLOW_SOURCE, "unfollow_source", false, migcmd_unfollow_source, 120000, 0,
      "protecting green: dropping blue's subscription to green" },
    { M_ROLES, "roles", true, migcmd_roles, 10 * 60000, 0,
      "the roles the database needs on the target, and its owner and privileges" },
    { M_SCHEDULED, "scheduled", false, NULL, 0, 0,
      "waiting for its wave of the fleet's schedule; nothing of ours exists yet" },
    { M_TUNE, "tune", true, migcmd_import_profile, 60000, 0,
      "the plan's import profile on the target, its settings' state before journaled first" },
    { M_BASEBACKUP, "basebackup", true, migcmd_base_backup, 7 * 24 * 3600000ULL, 0,
      "physical: pg_basebackup of the whole source server into the target's standby data "
      "directory, streaming from our physical slot, then the standby started" },
};

static const char *s_name(mstate_t s) { return s < M__COUNT ? s_states[s].name : "?"; }

static const char *const s_event_names[MEV__COUNT] = {
    "done", "abort", "pause", "resume", "protect", "protect_green", "switched", "rolled_back",
    "cleanup", "wave",
};

/* The transitions: every move a migration makes is one row; an event with
 * no row for the current state is refused (the caller says why to the
 * operator). A row whose `to` is its `from` accepts the event without a
 * move (asked again while it is already under way). Entering a state
 * starts its step (s_states). */
typedef struct {
    mstate_t from;
    mevent_t event;
    mstate_t to;
    const char *why;
} s_row_t;

static const s_row_t s_rows[] = {
    { M_SCHEDULED, MEV_WAVE, M_ROLES, "its wave opened" },
    { M_ROLES, MEV_DONE, M_SCHEMA, "the roles exist on the target" },
    { M_SCHEMA, MEV_DONE, M_PUBLISH, "the pre-data schema is on the target" },
    { M_PUBLISH, MEV_DONE, M_TUNE, "our publication is on the source" },
    { M_TUNE, MEV_DONE, M_COPY, "the import profile is applied, or the plan gives none" },
    { M_COPY, MEV_DONE, M_CATCHUP, "every table is copied; our subscription exists" },
    { M_CATCHUP, MEV_DONE, M_POSTDATA, "every table is ready and the slot is close" },
    { M_POSTDATA, MEV_DONE, M_STREAMING, "the post-data schema is on the target" },
    { M_ABORT_TARGET, MEV_DONE, M_ABORT_SOURCE, "our subscription is gone from the target" },
    { M_ABORT_SOURCE, MEV_DONE, M_ABORTED, "our publication and slot are gone from the source" },
    { M_PROTECT_SOURCE, MEV_DONE, M_PROTECT_TARGET, "our slot is gone from the source" },
    { M_PROTECT_TARGET, MEV_DONE, M_ABORTED, "our subscription is gone from the target" },
    { M_PAUSING, MEV_DONE, M_PAUSED, "our subscription is disabled" },
    { M_RESUMING, MEV_DONE, M_CATCHUP, "our subscription is enabled" },
    { M_CLEANUP_SOURCE, MEV_DONE, M_CLEANUP_TARGET, "nothing of ours is left on blue" },
    { M_CLEANUP_TARGET, MEV_DONE, M_DONE, "nothing of ours is left on green" },
    { M_UNFOLLOW_TARGET, MEV_DONE, M_UNFOLLOW_SOURCE, "green's slot for blue is gone" },
    { M_UNFOLLOW_SOURCE, MEV_DONE, M_SWITCHED, "blue follows green no more" },

    { M_SCHEDULED, MEV_ABORT, M_ABORTED, "abort before its wave: nothing of ours exists" },
    { M_ROLES, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_SCHEMA, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PUBLISH, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_TUNE, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_COPY, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_CATCHUP, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_POSTDATA, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_STREAMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PAUSING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PAUSED, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_RESUMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_ABORT_TARGET, MEV_ABORT, M_ABORT_TARGET, "already aborting" },
    { M_ABORT_SOURCE, MEV_ABORT, M_ABORT_SOURCE, "already aborting" },
    { M_PROTECT_SOURCE, MEV_ABORT, M_PROTECT_SOURCE, "already stopping" },
    { M_PROTECT_TARGET, MEV_ABORT, M_PROTECT_TARGET, "already stopping" },

    { M_CATCHUP, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_POSTDATA, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_STREAMING, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_PAUSING, MEV_PAUSE, M_PAUSING, "already pausing" },
    { M_PAUSED, MEV_PAUSE, M_PAUSED, "already paused" },
    { M_PAUSED, MEV_RESUME, M_RESUMING, "resume a paused migration" },
    { M_PAUSING, MEV_RESUME, M_RESUMING, "resume a migration being paused" },
    { M_RESUMING, MEV_RESUME, M_RESUMING, "already resuming" },

    { M_COPY, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_CATCHUP, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_POSTDATA, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_STREAMING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_PAUSING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_PAUSED, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_RESUMING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_SWITCHED, MEV_PROTECT_GREEN, M_UNFOLLOW_TARGET, "green's slot for blue: drop it first" },

    { M_STREAMING, MEV_SWITCHED, M_SWITCHED, "the cutover switched traffic to green" },
    { M_SWITCHED, MEV_ROLLED_BACK, M_STREAMING, "the rollback switched traffic to blue" },
    { M_SWITCHED, MEV_CLEANUP, M_CLEANUP_SOURCE, "cleanup after the cutover" },
    { M_CLEANUP_SOURCE, MEV_CLEANUP, M_CLEANUP_SOURCE, "already cleaning up" },
    { M_CLEANUP_TARGET, MEV_CLEANUP, M_CLEANUP_TARGET, "already cleaning up" },
    { M_DONE, MEV_CLEANUP, M_DONE, "already cleaned up" },
};

#define S_NROWS (sizeof s_rows / sizeof s_rows[0])

/* The physical path's transitions (method: physical, docs/physical.md),
 * the whole table for such a migration: a standby instead of roles,
 * schema, publication and copy; no pause (the standby replays as it
 * receives). Its abort removes the standby first, then our slot. After the
 * switch blue is a standby of green (cutover.reverse on) through green's
 * slot revname: the rollback's way back, which protection (its WAL on
 * green) drops, and cleanup drops with our slot on blue. */
static const s_row_t s_rows_physical[] = {
    { M_SCHEDULED, MEV_WAVE, M_BASEBACKUP, "its wave opened" },
    { M_BASEBACKUP, MEV_DONE, M_STREAMING, "the standby runs and streams from our slot" },
    { M_ABORT_TARGET, MEV_DONE, M_ABORT_SOURCE, "the standby is gone from the target" },
    { M_ABORT_SOURCE, MEV_DONE, M_ABORTED, "our physical slot is gone from the source" },
    { M_PROTECT_SOURCE, MEV_DONE, M_PROTECT_TARGET, "our slot is gone from the source" },
    { M_PROTECT_TARGET, MEV_DONE, M_ABORTED, "the standby is gone from the target" },
    { M_CLEANUP_SOURCE, MEV_DONE, M_CLEANUP_TARGET, "our physical slot is gone from blue" },
    { M_CLEANUP_TARGET, MEV_DONE, M_DONE, "blue's slot on green is gone: blue follows nothing" },
    { M_UNFOLLOW_TARGET, MEV_DONE, M_SWITCHED, "blue's slot on green is gone" },

    { M_SCHEDULED, MEV_ABORT, M_ABORTED, "abort before its wave: nothing of ours exists" },
    { M_BASEBACKUP, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_STREAMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_ABORT_TARGET, MEV_ABORT, M_ABORT_TARGET, "already aborting" },
    { M_ABORT_SOURCE, MEV_ABORT, M_ABORT_SOURCE, "already aborting" },
    { M_PROTECT_SOURCE, MEV_ABORT, M_PROTECT_SOURCE, "already stopping" },
    { M_PROTECT_TARGET, MEV_ABORT, M_PROTECT_TARGET, "already stopping" },

    { M_BASEBACKUP, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_STREAMING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },

    { M_STREAMING, MEV_SWITCHED, M_SWITCHED, "the cutover promoted green and switched traffic" },
    { M_SWITCHED, MEV_ROLLED_BACK, M_STREAMING, "the rollback promoted blue and switched traffic" },
    { M_SWITCHED, MEV_PROTECT_GREEN, M_UNFOLLOW_TARGET, "blue's slot on green: drop it" },
    { M_SWITCHED, MEV_CLEANUP, M_CLEANUP_SOURCE, "cleanup after the cutover" },
    { M_CLEANUP_SOURCE, MEV_CLEANUP, M_CLEANUP_SOURCE, "already cleaning up" },
    { M_CLEANUP_TARGET, MEV_CLEANUP, M_CLEANUP_TARGET, "already cleaning up" },
    { M_DONE, MEV_CLEANUP, M_DONE, "already cleaned up" },
};

#define S_NROWS_PHYSICAL (sizeof s_rows_physical / sizeof s_rows_physical[0])

/* MariaDB's transitions (engine: mariadb, docs/mariadb.md), the whole
 * table for such a migration: the target agent copies the database in one
 * snapshot and replicates from its GTID position (one step: M_COPY), then
 * follows the source. Nothing of ours is on the source (a replica reads
 * the binary log without a slot), so the abort only removes the
 * replication connection and the copy from the target. The cutover
 * (cutover.h) promotes the target and switches traffic; while switched,
 * the source follows the target through revname (unless cutover.reverse
 * is off), polled by s_reverse_poll. Cleanup after the cutover removes
 * that connection from the source, then the stopped one from the target,
 * keeping the database (DropObjects.keep_database). */
static const s_row_t s_rows_mariadb[] = {
    { M_SCHEDULED, MEV_WAVE, M_COPY, "its wave opened" },
    { M_COPY, MEV_DONE, M_STREAMING,
      "the database is copied at its snapshot's GTID position; the target replicates from there" },
    { M_ABORT_TARGET, MEV_DONE, M_ABORTED,
      "our replication connection and the copy are gone from the target" },

    { M_SCHEDULED, MEV_ABORT, M_ABORTED, "abort before its wave: nothing of ours exists" },
    { M_COPY, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_STREAMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_ABORT_TARGET, MEV_ABORT, M_ABORT_TARGET, "already aborting" },

    { M_STREAMING, MEV_SWITCHED, M_SWITCHED,
      "the cutover promoted green (its replication stopped) and switched traffic" },
    { M_SWITCHED, MEV_ROLLED_BACK, M_STREAMING,
      "the rollback promoted blue and switched traffic; green replicates from blue again" },
    { M_SWITCHED, MEV_CLEANUP, M_CLEANUP_SOURCE, "cleanup after the cutover" },
    { M_CLEANUP_SOURCE, MEV_DONE, M_CLEANUP_TARGET,
      "blue's connection for the way back is gone: blue follows green no more" },
    { M_CLEANUP_TARGET, MEV_DONE, M_DONE,
      "green's stopped connection is gone; the database stays, its comment cleared" },
    { M_CLEANUP_SOURCE, MEV_CLEANUP, M_CLEANUP_SOURCE, "already cleaning up" },
    { M_CLEANUP_TARGET, MEV_CLEANUP, M_CLEANUP_TARGET, "already cleaning up" },
    { M_DONE, MEV_CLEANUP, M_DONE, "already cleaned up" },
};

#define S_NROWS_MARIADB (sizeof s_rows_mariadb / sizeof s_rows_mariadb[0])

/* The row for event in state from of m's table, or NULL. */
static const s_row_t *s_row_of(const plan_migration_t *m, mstate_t from, mevent_t event)
{
    bool physical = m->method == PLAN_METHOD_PHYSICAL;
    bool mariadb = m->engine == PLAN_ENGINE_MARIADB;
    const s_row_t *rows = mariadb ? s_rows_mariadb : physical ? s_rows_physical : s_rows;
    size_t n = mariadb ? S_NROWS_MARIADB : physical ? S_NROWS_PHYSICAL : S_NROWS;
    for (size_t i = 0; i < n; i++)
        if (rows[i].from == from && rows[i].event == event)
            return &rows[i];
    return NULL;
}

size_t migration_rows(void) { return S_NROWS; }

bool migration_row(size_t i, const char **from, const char **event, const char **to)
{
    if (i >= S_NROWS)
        return false;
    *from = s_name(s_rows[i].from);
    *event = s_event_names[s_rows[i].event];
    *to = s_name(s_rows[i].to);
    return true;
}

bool migration_state_parse(const char *name, mstate_t *out)
{
    for (int i = 0; i < M__COUNT; i++) {
        if (strcmp(s_states[i].name, name) == 0) {
            *out = (mstate_t)i;
            return true;
        }
    }
    return false;
}

const char *migration_state_name(mstate_t s) { return s_name(s); }

bool migration_copy_phase(const migration_t *g) { return g->state == M_TUNE || g->state == M_COPY; }

const char *migration_event_name(mevent_t e) { return e < MEV__COUNT ? s_event_names[e] : "?"; }

const char *migration_doing(mstate_t s) { return s < M__COUNT ? s_states[s].comment : "?"; }

bool migration_stays(const migration_t *g, mevent_t event)
{
    const s_row_t *row = s_row_of(g->m, g->state, event);
    return row && row->to == g->state;
}

/* ---- running steps ---- */

static void s_set_error(migration_t *g, const char *error)
{
    free(g->last_error);
    g->last_error = error ? xstrdup(error) : NULL;
}

/* Whether g's state has nothing to do for it (tune without an import
 * profile): it moves on at once, sending nothing, whether it was just
 * entered or loaded from the journal. */
static bool s_nothing_to_do(migration_t *g)
{
    if (g->state != M_TUNE || importprof_wanted(g))
        return false;
    migration_fire(g, MEV_DONE, "the plan gives no import profile");
    return true;
}

static void s_hold_end(migration_t *g);

/* The one place a migration changes state (migration.h). */
fire_t migration_fire(migration_t *g, mevent_t event, const char *detail)
{
    const s_row_t *row = s_row_of(g->m, g->state, event);
    if (!row)
        return FIRE_NO_ROW;
    mstate_t to = row->to;
    if (to == g->state) {
        if (g->env->on_move)
            g->env->on_move(g->m->name, s_name(to), s_event_names[event], s_name(to),
                            g->env->on_move_arg);
        return FIRE_STAYS;
    }
    char err[512];
    if (!journal_migration_move(g->env->journal, g->m->name, s_name(g->state), s_name(to), detail,
                                err, sizeof err)) {
        log_error_about(log_about_migration(g->m->name), "migration %s: %s", g->m->name, err);
        return FIRE_JOURNAL;
    }
    log_info_about(log_about_migration(g->m->name), "migration %s: from %s to %s on %s (%s): %s",
                   g->m->name, s_name(g->state), s_name(to), s_event_names[event],
                   row->why, detail);
    if (g->env->on_move)
        g->env->on_move(g->m->name, s_name(g->state), s_event_names[event], s_name(to),
                        g->env->on_move_arg);
    if (g->state == M_COPY && g->hold_snapshot[0])
        s_hold_end(g);
    g->state = to;
    g->state_since_ms = agentlink_now_ms(g->env->link);
    if (to != M_COPY && to != M_TUNE) {
        g->copy_slot = false;
        g->copy_queued[0] = '\0';
    }
    g->attempts = 0;
    s_set_error(g, NULL);
    /* MariaDB: the last poll was of the connection the state before
     * replicated through (switched: the way back's) */
    if (g->replica)
        godwit__replica_status_result__free_unpacked(g->replica, NULL);
    g->replica = NULL;
    g->io_down_mono = 0;
    g->next_try_mono = 0;
    g->busy = false;
    g->hold_busy = false;
    g->gen++;
    s_nothing_to_do(g);
    return FIRE_MOVED;
}

/* The slot called name in an agent's report (borrowed from rep), or NULL:
 * no report, no PostgreSQL figures in it, or no such slot. */
const Godwit__Slot *migration_report_slot(const Godwit__Report *rep, const char *name)
{
    for (size_t i = 0; rep && rep->postgres && i < rep->postgres->n_slots; i++)
        if (strcmp(rep->postgres->slots[i]->name, name) == 0)
            return rep->postgres->slots[i];
    return NULL;
}

/* How far our slot's confirmed position is behind the source's WAL, from
 * the source agent's latest report; false if the report has no such slot. */
static bool s_lag_bytes(migration_t *g, uint64_t *lag)
{
    const Godwit__Report *rep = agentlink_report(g->env->link, g->m->source.agent);
    const Godwit__Slot *sl = migration_report_slot(rep, g->objname);
    if (!sl || !sl->confirmed_flush_lsn)
        return false;
    *lag = lsn_diff(rep->postgres->current_lsn, sl->confirmed_flush_lsn);
    return true;
}

/* The answer to a copy progress poll: the running copy's tables. */
static void s_progress_done(const char *agent, const Godwit__Result *r,
                            const char *error, void *arg)
{
    step_token_t *tok = arg;
    migration_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    free(tok);
    g->progress_busy = false;
    if (stale || g->state != M_COPY || !r || r->status != GODWIT__STATUS__STATUS_OK ||
        r->payload_case != GODWIT__RESULT__PAYLOAD_SYNC_STATUS || !r->sync_status->exists)
        return;
    size_t copied = copydone_count(g->sync);
    if (g->sync)
        godwit__sync_status_result__free_unpacked(g->sync, NULL);
    g->sync = wire_copy(r->sync_status);
    copyeta_sample(&g->copy, g->sync, agentlink_mono_ms(g->env->link));
    if (g->copy_point[0] && copydone_count(g->sync) > copied) {
        /* a table more copied whole: a restarted coordinator gives it to
         * the copy's next run in the same snapshot */
        char *json = copydone_json(g->copy_point, g->sync);
        journal_event(g->env->journal, g->m->name, s_name(g->state), "copy_done", json);
        free(json);
    }
}

/* While the copy runs (its command in flight), asks the target how it
 * stands, every S_PROGRESS_MS. */
static void s_progress_poll(migration_t *g, uint64_t now)
{
    if (g->state != M_COPY || !g->busy || g->hold_busy || g->progress_busy ||
        now < g->next_progress_mono)
        return;
    g->next_progress_mono = now + S_PROGRESS_MS;
    g->progress_busy = true;
    migcmd_t c;
    migcmd_copy_status(&c, g);
    step_token_t *tok = xmalloc(sizeof *tok);
    tok->g = g;
    tok->gen = g->gen;
    agentlink_send(g->env->link, g->m->target.agent, &c.cmd, S_PROGRESS_MS * 5,
                       s_progress_done, tok);
    migcmd_release(&c);
}

/* A step's command failed (r: the agent's answer, or NULL and error): the
 * same step again after a backoff that doubles per failure in a row. */
static void s_step_failed(migration_t *g, const char *agent, const Godwit__Result *r,
                          const char *error)
{
    char msg[640];
    mstate_t st = g->state;
    uint64_t now = agentlink_mono_ms(g->env->link);
    snprintf(msg, sizeof msg, "%s step on %s failed: %s", s_name(st), agent,
             r ? (r->message[0] ? r->message : "no reason given") : error);
    g->attempts++;
    uint64_t backoff = 1000u << (g->attempts < 5 ? g->attempts : 5);
    g->next_try_mono = now + backoff;
    if (!g->last_error || strcmp(g->last_error, msg) != 0)
        journal_event(g->env->journal, g->m->name, s_name(st), "failed", msg);
    log_warn_about(log_about_migration(g->m->name), "migration %s: %s (attempt %u, next in %"
                   PRIu64 " ms)", g->m->name, msg, g->attempts, backoff);
    s_set_error(g, msg);
}

/* The physical path's answers: the standby made (basebackup) or its state
 * (the streaming poll). A standby that no longer replays, or replays
 * without streaming from the source, is the migration's error until it
 * does again. */
static void s_standby_answered(migration_t *g, mstate_t st, const Godwit__StandbyStatusResult *ss,
                               uint64_t now)
{
    char msg[512];
    if (g->standby)
        godwit__standby_status_result__free_unpacked(g->standby, NULL);
    g->standby = wire_copy(ss);
    if (st == M_BASEBACKUP) {
        snprintf(msg, sizeof msg, "%s: %s in %s", s_states[st].comment,
                 ss->already ? "found done already" : ss->started ? "done, started" : "done",
                 ss->data_directory);
        migration_fire(g, MEV_DONE, msg);
        return;
    }
    g->next_try_mono = now + s_states[st].poll_ms;
    g->attempts = 0;
    if (!ss->in_recovery)
        s_set_error(g, "the target is no longer a standby (promoted outside a cutover?)");
    else if (!ss->streaming)
        s_set_error(g, "the standby does not stream from the source (its WAL receiver is not "
                       "streaming: see its PostgreSQL log)");
    else
        s_set_error(g, NULL);
}

/* MariaDB's streaming poll: our replication connection's state. One that
 * is gone, or whose threads stopped, is the migration's error (the
 * server's own message) until it runs again. */
static void s_replica_answered(migration_t *g, mstate_t st, const Godwit__ReplicaStatusResult *rs,
                               uint64_t now)
{
    char msg[640];
    if (g->replica)
        godwit__replica_status_result__free_unpacked(g->replica, NULL);
    g->replica = wire_copy(rs);
    /* switched: the way back, blue reading green (s_reverse_poll) */
    bool back = st == M_SWITCHED;
    const char *conn = back ? g->revname : g->objname;
    g->next_try_mono = now + (back ? S_REVERSE_POLL_MS : s_states[st].poll_ms);
    g->attempts = 0;
    const Godwit__MariadbReplica *rp = rs->replica;
    if (rs->exists && rp && !rp->io_running) {
        if (!g->io_down_mono)
            g->io_down_mono = now;
    } else {
        g->io_down_mono = 0;
    }
    /* The source's protection: its binary logs are its own, purged after
     * binlog_expire_logs_seconds whether a replica read them or not. An
     * I/O thread that has not read for half of that is the migration's
     * error: past it, only a new copy recovers. */
    const Godwit__Report *src =
        agentlink_report(g->env->link, back ? g->m->target.agent : g->m->source.agent);
    uint64_t expire = src && src->mariadb ? src->mariadb->binlog_expire_seconds : 0;
    uint64_t down_s = g->io_down_mono ? (now - g->io_down_mono) / 1000 : 0;
    char retention[256] = "";
    if (expire && down_s * 2 >= expire)
        snprintf(retention, sizeof retention, "; it has not read the source's binary log for %"
                 PRIu64 " s, half of the source's retention (binlog_expire_logs_seconds %" PRIu64
                 "): once the source purges what it has not read, only a new copy (abort, "
                 "start) recovers", down_s, expire);
    if (!rs->exists || !rp) {
        if (back) {
            snprintf(msg, sizeof msg, "blue's replication connection %s (the way back) is missing: "
                     "blue does not follow green", conn);
            s_set_error(g, msg);
        } else {
            s_set_error(g, "our replication connection is missing on the target");
        }
    } else if (!rp->io_running || !rp->sql_running) {
        snprintf(msg, sizeof msg, "%s replication connection %s%s is stopped (%s%s%s)%s%s%s",
                 back ? "blue's" : "the target's", conn, back ? " (the way back)" : "",
                 rp->io_running ? "" : "I/O thread",
                 !rp->io_running && !rp->sql_running ? ", " : "",
                 rp->sql_running ? "" : "SQL thread", rp->last_error[0] ? ": " : "",
                 rp->last_error, retention);
        s_set_error(g, msg);
    } else {
        s_set_error(g, NULL);
    }
}

static void s_step_answered(const char *agent, const Godwit__Result *r, const char *error,
                            void *arg)
{
    step_token_t *tok = arg;
    migration_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    if (tok->import)
        g->import.tuning = false;
    free(tok);
    if (stale)
        return; /* a forced move (abort, protection) left the state it was for */
    g->busy = false;
    mstate_t st = g->state;
    uint64_t now = agentlink_mono_ms(g->env->link);
    char msg[640];
    if (!r || r->status != GODWIT__STATUS__STATUS_OK) {
        s_step_failed(g, agent, r, error);
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_STANDBY_STATUS) {
        s_standby_answered(g, st, r->standby_status, now);
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_REPLICA_STATUS) {
        s_replica_answered(g, st, r->replica_status, now);
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_MY_COPY) {
        const Godwit__MyCopyResult *mc = r->my_copy;
        if (mc->already_done)
            snprintf(msg, sizeof msg, "the copy was found done already (our replication "
                     "connection exists; the target's gtid_slave_pos %s)", mc->gtid_pos);
        else
            snprintf(msg, sizeof msg, "%u tables, %" PRIu64 " rows copied in %.1f s at GTID "
                     "position %s; the target replicates from there", mc->tables, mc->rows,
                     mc->copy_ms / 1000.0, mc->gtid_pos[0] ? mc->gtid_pos : "(empty)");
        migration_fire(g, MEV_DONE, msg);
        return;
    }
    if (s_states[st].poll_ms) {
        if (r->payload_case == GODWIT__RESULT__PAYLOAD_SYNC_STATUS) {
            if (g->sync)
                godwit__sync_status_result__free_unpacked(g->sync, NULL);
            g->sync = wire_copy(r->sync_status);
        }
        g->next_try_mono = now + s_states[st].poll_ms;
        g->attempts = 0; /* the failures in a row end with an answer */
        if (!g->sync || !g->sync->exists) {
            s_set_error(g, "the subscription is missing on the target");
            return;
        }
        if (g->sync->apply_error_count || g->sync->sync_error_count) {
            snprintf(msg, sizeof msg, "the target reports %" PRIu64 " apply and %" PRIu64
                     " copy errors (see its PostgreSQL log)",
                     g->sync->apply_error_count, g->sync->sync_error_count);
            s_set_error(g, msg);
        } else {
            s_set_error(g, NULL);
        }
        uint64_t lag = 0;
        if (st == M_CATCHUP && g->sync->all_ready && s_lag_bytes(g, &lag) &&
            lag < S_CATCHUP_LAG_BYTES) {
            snprintf(msg, sizeof msg, "%zu tables ready, %" PRIu64 " bytes behind the source",
                     g->sync->n_tables, lag);
            migration_fire(g, MEV_DONE, msg);
        }
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_IMPORT_PROFILE) {
        char why[512] = "";
        if (importprof_answered(g, r->import_profile, why, sizeof why)) {
            migration_fire(g, MEV_DONE, "the import profile is applied on the target");
        } else if (why[0]) {
            g->next_try_mono = now + 1000;
            s_set_error(g, why);
        } else {
            g->next_try_mono = now; /* recorded: the apply follows at once */
        }
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_BULK_COPY &&
        (r->bulk_copy->slot_dropped || r->bulk_copy->snapshot_gone ||
         (!r->bulk_copy->already_done && !g->hold_snapshot[0]))) {
        /* The way cleared for a new snapshot: a stale slot dropped (or
         * found gone), or the snapshot given gone with its hold. The copy
         * starts again from its first table, at once. */
        const Godwit__BulkCopyResult *bc = r->bulk_copy;
        snprintf(msg, sizeof msg, "%s", bc->snapshot_gone
                 ? "the copy's snapshot no longer exists on the source (its agent or server "
                   "restarted): a new slot and snapshot, the copy from its first table"
                 : "our slot was on the source without its snapshot (its agent restarted, or "
                   "the hold's lease ran out): dropped; a new slot and snapshot, the copy from "
                   "its first table");
        journal_event(g->env->journal, g->m->name, s_name(st), "restart", msg);
        log_warn_about(log_about_migration(g->m->name), "migration %s: %s", g->m->name, msg);
        if (bc->snapshot_gone)
            s_hold_end(g);
        g->hold_snapshot[0] = '\0';
        g->hold_point[0] = '\0';
        g->next_try_mono = now;
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_BULK_COPY) {
        const Godwit__BulkCopyResult *bc = r->bulk_copy;
        if (bc->copied) {
            if (g->sync)
                godwit__sync_status_result__free_unpacked(g->sync, NULL);
            g->sync = wire_copy(bc->copied);
        }
        if (bc->already_done)
            snprintf(msg, sizeof msg, "the copy was found done already (our subscription exists)");
        else
            snprintf(msg, sizeof msg, "%zu tables copied; streaming from %s",
                     bc->copied ? bc->copied->n_tables : 0, bc->consistent_point);
        migration_fire(g, MEV_DONE, msg);
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA) {
        snprintf(msg, sizeof msg, "%s: %s", s_states[st].comment,
                 r->apply_schema->already_done ? "found done already" : "applied");
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_APPLY_ROLES) {
        const Godwit__ApplyRolesResult *ar = r->apply_roles;
        if (ar->already_done)
            snprintf(msg, sizeof msg, "%s: found done already (every role exists)",
                     s_states[st].comment);
        else
            snprintf(msg, sizeof msg, "%s: %zu role(s) created, %u membership(s), %u setting(s), "
                     "%u password(s), %u change(s) to the database", s_states[st].comment,
                     ar->n_created, ar->memberships, ar->settings, ar->passwords,
                     ar->database_changes);
        if (ar->superusers)
            log_warn_about(log_about_migration(g->m->name),
                           "migration %s: %u role(s) that are superusers on the source were "
                           "created " "without SUPERUSER on the target; verify reports them",
                           g->m->name, ar->superusers);
    } else {
        snprintf(msg, sizeof msg, "%s: done", s_states[st].comment);
    }
    migration_fire(g, MEV_DONE, msg);
}

static void s_run(migration_t *g);

/* A step's answer; when it moved the migration on, the next state's step
 * goes at once rather than at the next tick (100 ms: a migration's moves
 * from start to streaming waited about 0.3 s for ticks). A state of the
 * copy phase without a copy slot waits for the tick's admission. */
static void s_step_done(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    migration_t *g = ((step_token_t *)arg)->g;
    mstate_t before = g->state;
    s_step_answered(agent, r, error, arg);
    if (g->state != before && !g->busy && s_states[g->state].build &&
        (!migration_copy_phase(g) || g->copy_slot))
        s_run(g);
}

static void s_send(migration_t *g, Godwit__Command *cmd)
{
    const char *agent = s_states[g->state].on_target ? g->m->target.agent : g->m->source.agent;
    g->busy = true;
    step_token_t *tok = xmalloc(sizeof *tok);
    tok->g = g;
    tok->gen = ++g->gen;
    tok->import = cmd->action_case == GODWIT__COMMAND__ACTION_IMPORT_PROFILE;
    if (tok->import)
        g->import.tuning = true;
    agentlink_send(g->env->link, agent, cmd, s_states[g->state].timeout_ms, s_step_done, tok);
}

/* ---- the copy's snapshot, held on the source ---- */

/* How long the source agent holds the copy's snapshot after the last word
 * from us, and how often the copy renews it. */
#define S_HOLD_LEASE_MS 120000
#define S_HOLD_RENEW_MS 20000
#define S_HOLD_CMD_MS 60000     /* a hold's command: a slot's creation at most */

/* The hold's answer to the copy's first command: the copy follows in that
 * snapshot, or clears a stale slot. */
static void s_hold_done(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    step_token_t *tok = arg;
    migration_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    free(tok);
    if (stale)
        return;
    g->busy = false;
    g->hold_busy = false;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK) {
        s_step_failed(g, agent, r, error);
        return;
    }
    const Godwit__HoldSnapshotResult *h =
        r->payload_case == GODWIT__RESULT__PAYLOAD_HOLD_SNAPSHOT ? r->hold_snapshot : NULL;
    if (!h || (!h->held && !h->stale) ||
        (h->held && (strlen(h->snapshot) >= sizeof g->hold_snapshot ||
                     strlen(h->consistent_point) >= sizeof g->hold_point))) {
        Godwit__Result bad = *r;
        bad.message = (char *)"the source agent gave no snapshot for our slot";
        s_step_failed(g, agent, &bad, NULL);
        return;
    }
    if (h->held) {
        if (h->created)
            log_info_about(log_about_migration(g->m->name),
                           "migration %s: our slot created on the source, consistent at %s; its "
                           "snapshot %s held by the source agent", g->m->name,
                           h->consistent_point, h->snapshot);
        snprintf(g->hold_snapshot, sizeof g->hold_snapshot, "%s", h->snapshot);
        snprintf(g->hold_point, sizeof g->hold_point, "%s", h->consistent_point);
        g->hold_renew_mono = agentlink_mono_ms(g->env->link) + S_HOLD_RENEW_MS;
    } else {
        g->hold_snapshot[0] = '\0';
        g->hold_point[0] = '\0';
    }
    migcmd_t c;
    migcmd_copy(&c, g);
    if (c.u.bulk_copy.n_done)
        log_info_about(log_about_migration(g->m->name),
                       "migration %s: the copy goes on in the same snapshot: %zu table(s) "
                       "copied whole already", g->m->name, c.u.bulk_copy.n_done);
    s_send(g, &c.cmd);
    migcmd_release(&c);
    if (g->hold_snapshot[0])
        snprintf(g->copy_point, sizeof g->copy_point, "%s", g->hold_point);
}

/* The copy's first command: the snapshot held on the source. */
static void s_hold_send(migration_t *g, bool create, uint32_t lease_ms, agentlink_result_cb cb,
                        void *arg)
{
    migcmd_t c;
    migcmd_hold(&c, g, create, lease_ms);
    agentlink_send(g->env->link, g->m->source.agent, &c.cmd, S_HOLD_CMD_MS, cb, arg);
    migcmd_release(&c);
}

/* A token for a command sent at generation gen. */
static step_token_t *s_token(migration_t *g, uint64_t gen)
{
    step_token_t *tok = xmalloc(sizeof *tok);
    tok->g = g;
    tok->gen = gen;
    tok->import = false;
    return tok;
}

static void s_hold_start(migration_t *g)
{
    g->busy = true;
    g->hold_busy = true;
    s_hold_send(g, true, S_HOLD_LEASE_MS, s_hold_done, s_token(g, ++g->gen));
}

static void s_hold_renewed(const char *agent, const Godwit__Result *r, const char *error,
                           void *arg)
{
    step_token_t *tok = arg;
    migration_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    free(tok);
    g->hold_renew_busy = false;
    if (stale)
        return;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK ||
        r->payload_case != GODWIT__RESULT__PAYLOAD_HOLD_SNAPSHOT || !r->hold_snapshot->held)
        log_warn_about(log_about_migration(g->m->name),
                       "migration %s: renewing the hold of the copy's snapshot on %s: %s",
                       g->m->name, agent,
                       r && r->status != GODWIT__STATUS__STATUS_OK ? r->message
                       : r ? "the source holds it no more (the copy runs on; a copy that fails "
                             "now starts over)"
                           : error);
}

/* While the copy runs, its snapshot's hold is renewed; the renewal creates
 * nothing. */
static void s_hold_renew(migration_t *g, uint64_t now)
{
    if (g->state != M_COPY || !g->hold_snapshot[0] || g->hold_renew_busy ||
        now < g->hold_renew_mono)
        return;
    g->hold_renew_mono = now + S_HOLD_RENEW_MS;
    g->hold_renew_busy = true;
    s_hold_send(g, false, S_HOLD_LEASE_MS, s_hold_renewed, s_token(g, g->gen));
}

static void s_hold_ended(const char *agent, const Godwit__Result *r, const char *error,
                         void *arg)
{
    char *name = arg;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK)
        log_warn_about(log_about_migration(name),
                       "migration %s: ending the hold of the copy's snapshot on %s: %s (its "
                       "lease ends it)", name, agent, r ? r->message : error);
    free(name);
}

/* The snapshot is not needed any more (the copy is over, or left): its
 * hold ends now rather than when its lease runs out. */
static void s_hold_end(migration_t *g)
{
    s_hold_send(g, false, 0, s_hold_ended, xstrdup(g->m->name));
    g->hold_snapshot[0] = '\0';
    g->hold_point[0] = '\0';
}

static void s_run(migration_t *g)
{
    if (!s_states[g->state].build)
        return;
    if (s_nothing_to_do(g)) /* loaded in it from the journal */
        return;
    if (!s_states[g->state].poll_ms)
        journal_event(g->env->journal, g->m->name, s_name(g->state), "intent",
                      s_states[g->state].comment);
    if (g->state == M_COPY && g->m->engine != PLAN_ENGINE_MARIADB) {
        /* two commands: the hold on the source first */
        s_hold_start(g);
        return;
    }
    migcmd_t c;
    s_states[g->state].build(&c, g);
    s_send(g, &c.cmd);
    migcmd_release(&c);
}


bool migration_source_at_risk(const Godwit__Report *rep, const char *slot, int64_t slot_limit,
                              int64_t disk_floor, uint64_t now_ms, char *why, size_t whylen)
{
    if (!rep)
        return false;
    if (disk_floor > 0 && rep->disk && rep->disk->ok &&
        rep->disk->free_bytes < (uint64_t)disk_floor) {
        char a[32], b[32];
        snprintf(why, whylen, "the source's free disk (%s) is below source_disk_floor (%s)",
                 units_fmt_bytes(rep->disk->free_bytes, a, sizeof a),
                 units_fmt_bytes((uint64_t)disk_floor, b, sizeof b));
        return true;
    }
    const Godwit__Slot *s = migration_report_slot(rep, slot);
    if (slot_limit > 0 && s) {
        /* The figures are as old as their reading, reports come once per
         * interval, and dropping the slot takes a round trip: act on where
         * the slot will be three intervals after the reading at the current
         * WAL rate, not where it was. The age is clamped to [0, 10 s] since
         * it crosses two hosts' clocks. */
        double interval_s = rep->interval_ms ? rep->interval_ms / 1000.0 : 1.0;
        double age_s = 0;
        if (rep->postgres->collected_at_ms && now_ms > rep->postgres->collected_at_ms)
            age_s = (double)(now_ms - rep->postgres->collected_at_ms) / 1000.0;
        if (age_s > 10)
            age_s = 10;
        double rate = rep->postgres->has_wal_rate && rep->postgres->wal_bytes_per_sec > 0
                          ? rep->postgres->wal_bytes_per_sec
                          : 0;
        double projected = (double)s->retained_bytes + (3.0 * interval_s + age_s) * rate;
        if (projected >= (double)slot_limit) {
            char a[32], b[32], c[32];
            snprintf(why, whylen,
                     "slot %s retains %s of WAL on the source and, at %s/s, would pass "
                     "slot_wal_limit (%s) within three reports",
                     slot, units_fmt_bytes(s->retained_bytes, a, sizeof a),
                     units_fmt_bytes((uint64_t)rate, b, sizeof b),
                     units_fmt_bytes((uint64_t)slot_limit, c, sizeof c));
            return true;
        }
    }
    return false;
}

/* States in which our slot exists on the source: those protection leaves. */
static bool s_slot_may_exist(const migration_t *g)
{
    return s_row_of(g->m, g->state, MEV_PROTECT) != NULL;
}

/* After the cutover green is blue's source: the same limits protect green
 * from its slot for blue (while it exists). */
static void s_protect_green(migration_t *g)
{
    const plan_migration_t *m = g->m;
    const Godwit__Report *rep = agentlink_report(g->env->link, m->target.agent);
    bool has_slot = migration_report_slot(rep, g->revname) != NULL;
    char why[512];
    if (!has_slot || g->cutover ||
        !migration_source_at_risk(rep, g->revname, m->options.slot_wal_limit_bytes,
                                  m->options.source_disk_floor_bytes,
                                  agentlink_now_ms(g->env->link), why, sizeof why))
        return;
    log_error_about(log_about_migration(m->name),
                    "migration %s: protecting green from its slot for blue: %s; blue stops "
                    "following " "green (no rollback without losing green's writes)", m->name, why);
    char detail[640];
    snprintf(detail, sizeof detail, "protecting green (blue's source after the cutover): %s", why);
    if (migration_fire(g, MEV_PROTECT_GREEN, detail) == FIRE_MOVED) {
        free(g->stopped_because);
        g->stopped_because = xasprintf("blue stopped following green: on green, %s", why);
    }
}

static void s_protect(migration_t *g)
{
    const plan_migration_t *m = g->m;
    if (!m->options.slot_wal_limit_bytes && !m->options.source_disk_floor_bytes)
        return;
    if (g->state == M_SWITCHED) {
        s_protect_green(g);
        return;
    }
    if (!s_slot_may_exist(g))
        return;
    char why[512];
    if (!migration_source_at_risk(agentlink_report(g->env->link, m->source.agent), g->objname,
                                  m->options.slot_wal_limit_bytes,
                                  m->options.source_disk_floor_bytes,
                                  agentlink_now_ms(g->env->link), why, sizeof why))
        return;
    log_error_about(log_about_migration(m->name),
                    "migration %s: protecting the source: %s; dropping our slot now", m->name, why);
    char detail[600];
    snprintf(detail, sizeof detail, "source protection: %s", why);
    if (migration_fire(g, MEV_PROTECT, detail) == FIRE_MOVED) {
        free(g->stopped_because);
        g->stopped_because = xstrdup(why);
    }
}

#define S_VSLOT_GRACE_MS 10000
/* The check looks at the source's report at most this often (a report
 * comes once a second; the tick, ten times): a fleet's ticks scan fewer
 * slot lists. */
#define S_VSLOT_EVERY_MS 1000

static void s_vslot_done(const char *agent, const Godwit__Result *r, const char *error,
                         void *arg)
{
    migration_t *g = arg;
    g->vslot_busy = false;
    g->vslot_seen_mono = 0;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK)
        log_warn_about(log_about_migration(g->m->name),
                       "migration %s: dropping the verify slot %s left on %s failed: %s",
                       g->m->name, g->verifyname, agent, r ? r->message : error);
    else
        log_info_about(log_about_migration(g->m->name),
                       "migration %s: the verify slot %s left on %s is dropped", g->m->name,
                       g->verifyname, agent);
}

/* A verify slot the source still reports S_VSLOT_GRACE_MS after no verify
 * runs was left by a target agent that died mid-verify: it would hold WAL
 * back for ever, so the source agent drops it. */
static void s_vslot_check(migration_t *g, uint64_t now)
{
    if (g->vslot_busy || now < g->vslot_next_mono)
        return;
    g->vslot_next_mono = now + S_VSLOT_EVERY_MS;
    if (g->verify || !s_slot_may_exist(g)) {
        g->vslot_seen_mono = 0;
        return;
    }
    const Godwit__Report *rep = agentlink_report(g->env->link, g->m->source.agent);
    if (!migration_report_slot(rep, g->verifyname)) {
        g->vslot_seen_mono = 0;
        return;
    }
    if (!g->vslot_seen_mono) {
        g->vslot_seen_mono = now;
        return;
    }
    if (now - g->vslot_seen_mono < S_VSLOT_GRACE_MS)
        return;
    log_warn_about(log_about_migration(g->m->name),
                   "migration %s: the verify slot %s is on the source and no verify runs: "
                   "dropping it", g->m->name, g->verifyname);
    migcmd_t c;
    migcmd_drop_verify_slot(&c, g);
    g->vslot_busy = true;
    agentlink_send(g->env->link, g->m->source.agent, &c.cmd, 60000, s_vslot_done, g);
    migcmd_release(&c);
}

/* ---- a failed "restore apply", again ---------------------------------- */

#define S_APPLY_ASYNC_RETRY_MS 5000

void migration_cutover_ended(migration_t *g, const cJSON *report)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(report, "timeline")) {
        const char *step = cJSON_GetStringValue(cJSON_GetObjectItem(t, "step"));
        if (step && strcmp(step, "restore apply") == 0 &&
            cJSON_IsFalse(cJSON_GetObjectItem(t, "ok"))) {
            const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(report, "direction"));
            g->apply_async_due = true;
            g->apply_async_back = d && strcmp(d, "back") == 0;
            g->apply_async_next_mono = 0;
            return;
        }
    }
}

static void s_apply_async_done(const char *agent, const Godwit__Result *r, const char *error,
                               void *arg)
{
    migration_t *g = arg;
    g->apply_async_busy = false;
    if (r && r->status == GODWIT__STATUS__STATUS_OK) {
        g->apply_async_due = false;
        log_info_about(log_about_migration(g->m->name),
                       "migration %s: our subscription on %s commits asynchronously again "
                       "(the cutover's restore apply had failed)", g->m->name, agent);
        return;
    }
    g->apply_async_next_mono = agentlink_mono_ms(g->env->link) + S_APPLY_ASYNC_RETRY_MS;
    log_warn_about(log_about_migration(g->m->name),
                   "migration %s: turning our subscription's synchronous commits off on %s "
                   "failed (again in %d s): %s", g->m->name, agent,
                   S_APPLY_ASYNC_RETRY_MS / 1000, r ? r->message : error);
}

/* The subscription a cutover left committing synchronously (its restore
 * apply failed) goes back to asynchronous commits as soon as its agent is
 * there; a cutover running restores it itself at its end, and a migration
 * that moved on no longer has it. */
static void s_apply_async(migration_t *g, uint64_t now)
{
    if (!g->apply_async_due || g->apply_async_busy || now < g->apply_async_next_mono)
        return;
    if (g->cutover || g->state != (g->apply_async_back ? M_SWITCHED : M_STREAMING)) {
        g->apply_async_due = false;
        return;
    }
    const char *agent = g->apply_async_back ? g->m->source.agent : g->m->target.agent;
    if (!agentlink_role(g->env->link, agent)) {
        g->apply_async_next_mono = now + 1000;
        return;
    }
    migcmd_t c;
    migcmd_apply_async(&c, g, g->apply_async_back);
    g->apply_async_busy = true;
    agentlink_send(g->env->link, agent, &c.cmd, 30000, s_apply_async_done, g);
    migcmd_release(&c);
}

/* MariaDB, switched, blue following green (cutover.reverse on): the way
 * back's connection polled as the streaming poll polls ours (the forward
 * one on green is stopped by the promote: no error of the migration's).
 * Its answer is s_replica_answered's. Reverse off: nothing polled. */
static void s_reverse_poll(migration_t *g, uint64_t now)
{
    if (g->m->engine != PLAN_ENGINE_MARIADB || g->state != M_SWITCHED ||
        g->m->cutover.reverse_off || g->busy || now < g->next_try_mono)
        return;
    migcmd_t c;
    migcmd_reverse_status(&c, g);
    g->busy = true;
    step_token_t *tok = xmalloc(sizeof *tok); /* freed by s_step_answered */
    tok->g = g;
    tok->gen = ++g->gen;
    tok->import = false;
    agentlink_send(g->env->link, g->m->source.agent, &c.cmd, 30000, s_step_done, tok);
    migcmd_release(&c);
}

void migration_tick(migration_t *g, uint64_t now)
{
    s_protect(g);
    if (g->verify && g->state != M_STREAMING) {
        log_warn_about(log_about_migration(g->m->name),
                       "migration %s: verify stopped: the migration is %s now", g->m->name,
                       s_name(g->state));
        verify_cancel(&g->verify);
    }
    verify_tick(g->verify);
    s_vslot_check(g, now);
    s_apply_async(g, now);
    s_hold_renew(g, now);
    importprof_tick(g, now);
    cutover_tick(g->cutover);
    s_reverse_poll(g, now);
    if (!g->busy && s_states[g->state].build && now >= g->next_try_mono &&
        (!migration_copy_phase(g) || g->copy_slot))
        s_run(g);
    s_progress_poll(g, now);
}

/* ---- lifetime ---- */

migration_t *migration_new(const migration_env_t *env, const char *label, const char *json,
                           mstate_t state)
{
    migration_t *g = xcalloc(1, sizeof *g);
    char err[512];
    if (!plan_load_string(label, json, &g->plan, err, sizeof err)) {
        log_error_about(log_about_migration(label), "migration %s: cannot read its spec: %s", label,
                        err);
        free(g);
        return NULL;
    }
    g->env = env;
    g->m = plan_at(&g->plan, 0);
    snprintf(g->objname, sizeof g->objname, "godwit_%s", g->m->name);
    snprintf(g->revname, sizeof g->revname, "godwit_%s_rev", g->m->name);
    snprintf(g->verifyname, sizeof g->verifyname, "godwit_%s_verify", g->m->name);
    g->state = state;
    migmetrics_init(g);
    g->state_since_ms = agentlink_now_ms(env->link);
    char *last = journal_last_event(env->journal, g->m->name, "verify");
    if (last) {
        g->verify_last = cJSON_Parse(last);
        free(last);
    }
    last = journal_last_event(env->journal, g->m->name, "cutover");
    if (last) {
        g->cutover_last = cJSON_Parse(last);
        free(last);
        if (g->cutover_last)
            migration_cutover_ended(g, g->cutover_last);
    }
    /* A copy admitted before a restart may still run on its agent: it
     * keeps its slot, whatever the caps are now. */
    last = migration_copy_phase(g) ? journal_last_event(env->journal, g->m->name, "copy_slot")
                                   : NULL;
    g->copy_slot = last != NULL;
    free(last);
    /* The tables copied whole in the copy's snapshot, for its next run. */
    last = migration_copy_phase(g) ? journal_last_event(env->journal, g->m->name, "copy_done")
                                   : NULL;
    g->sync = last ? copydone_load(last, g->copy_point, sizeof g->copy_point) : NULL;
    free(last);
    importprof_load(g);
    return g;
}

void migration_destroy(migration_t **gp)
{
    migration_t *g = *gp;
    if (!g)
        return;
    *gp = NULL;
    verify_cancel(&g->verify);
    cJSON_Delete(g->verify_last);
    cutover_cancel(&g->cutover);
    cJSON_Delete(g->cutover_last);
    importprof_clear(&g->import);
    free(g->repl_error);
    if (g->sync)
        godwit__sync_status_result__free_unpacked(g->sync, NULL);
    if (g->standby)
        godwit__standby_status_result__free_unpacked(g->standby, NULL);
    if (g->replica)
        godwit__replica_status_result__free_unpacked(g->replica, NULL);
    free(g->last_error);
    free(g->stopped_because);
    plan_free(&g->plan);
    free(g);
}
