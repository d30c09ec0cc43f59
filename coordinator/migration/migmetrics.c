/*
 * migmetrics: see migmetrics.h. The families are rows of one table, each
 * with the function that writes one migration's samples of it, so the
 * text keeps every family's samples together (the format wants that)
 * whatever the number of migrations.
 */
#include "migmetrics.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lsn.h"

/* Write pauses, in seconds: the milliseconds a cutover aims at, then the
 * seconds an abort is bounded by. */
static const double s_pause_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
                                         0.2,   0.3,  0.5,   1,    2,     5 };
static const char *const s_kind_names[] = { "cutover", "rollback", "rehearsal" };
static_assert(sizeof s_kind_names / sizeof s_kind_names[0] == MIGMETRICS__KINDS, "kinds");
static_assert(sizeof ((migration_t *)0)->pause_hist / sizeof(promtext_hist_t) == MIGMETRICS__KINDS,
              "one histogram per kind");

/* Outcomes of a verified table and of a cutover (cutreport.c): the label
 * values these families may take; anything else an agent says is not a
 * label value (it would be unbounded). */
static const char *const s_table_outcomes[] = { "equal", "different", "skipped", NULL };
static const char *const s_cutover_outcomes[] = { "done", "refused", "rolled_back", "unknown",
                                                  NULL };

void migmetrics_init(migration_t *g)
{
    for (size_t k = 0; k < MIGMETRICS__KINDS; k++)
        promtext_hist_init(&g->pause_hist[k], s_pause_bounds,
                           sizeof s_pause_bounds / sizeof s_pause_bounds[0]);
}

void migmetrics_cutover_done(migration_t *g, const cJSON *report)
{
    /* null when nothing was paused, or the pause began before a restart */
    const cJSON *wp = cJSON_GetObjectItem(report, "write_pause_ms");
    if (!cJSON_IsNumber(wp))
        return;
    const char *dir = cJSON_GetStringValue(cJSON_GetObjectItem(report, "direction"));
    migmetrics_kind_t k = cJSON_IsTrue(cJSON_GetObjectItem(report, "dry_run")) ? MIGMETRICS_REHEARSAL
                          : dir && strcmp(dir, "back") == 0                   ? MIGMETRICS_ROLLBACK
                                                                              : MIGMETRICS_CUTOVER;
    promtext_hist_observe(&g->pause_hist[k], cJSON_GetNumberValue(wp) / 1000.0);
}

/* ---- one migration's samples of each family ---- */

typedef void (*s_fn)(const migration_t *g, promtext_t *p, const char *name);

#define LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void s_one(promtext_t *p, const char *name, const migration_t *g, double v)
{
    promtext_sample(p, name, LABELS("migration", g->m->name), v);
}

static void s_phase(const migration_t *g, promtext_t *p, const char *name)
{
    for (int s = 0; s < M__COUNT; s++)
        promtext_sample(p, name, LABELS("migration", g->m->name, "phase",
                                        migration_state_name((mstate_t)s)),
                        s == (int)g->state ? 1 : 0);
}

static void s_phase_since(const migration_t *g, promtext_t *p, const char *name)
{
    if (g->state_since_ms)
        s_one(p, name, g, (double)g->state_since_ms / 1000.0);
}

/* Our slot on the source, from the source agent's latest report. */
static const Godwit__Slot *s_slot(const migration_t *g, const Godwit__Report **rep)
{
    *rep = agentlink_report(g->env->link, g->m->source.agent);
    return migration_report_slot(*rep, g->objname);
}

static void s_lag_bytes(const migration_t *g, promtext_t *p, const char *name)
{
    const Godwit__Report *rep;
    const Godwit__Slot *slot = s_slot(g, &rep);
    if (slot && slot->confirmed_flush_lsn)
        s_one(p, name, g, (double)lsn_diff(rep->postgres->current_lsn, slot->confirmed_flush_lsn));
}

static void s_lag_seconds(const migration_t *g, promtext_t *p, const char *name)
{
    const Godwit__Report *rep;
    const Godwit__Slot *slot = s_slot(g, &rep);
    if (slot && slot->has_replay_lag)
        s_one(p, name, g, slot->replay_lag_seconds);
}

static void s_retained(const migration_t *g, promtext_t *p, const char *name)
{
    const Godwit__Report *rep;
    const Godwit__Slot *slot = s_slot(g, &rep);
    if (slot)
        s_one(p, name, g, (double)slot->retained_bytes);
}

static void s_copy_done(const migration_t *g, promtext_t *p, const char *name)
{
    if (g->state == M_COPY && g->copy.total)
        s_one(p, name, g, (double)g->copy.done);
}

static void s_copy_total(const migration_t *g, promtext_t *p, const char *name)
{
    if (g->state == M_COPY && g->copy.total)
        s_one(p, name, g, (double)g->copy.total);
}

/* Only for a migration whose plan gives an import profile. */
static void s_import_pending(const migration_t *g, promtext_t *p, const char *name)
{
    char why[512];
    if (importprof_wanted(g))
        s_one(p, name, g, importprof_pending(g, why, sizeof why) ? 1 : 0);
}

static void s_tables_ready(const migration_t *g, promtext_t *p, const char *name)
{
    if (!g->sync)
        return;
    size_t ready = 0;
    for (size_t i = 0; i < g->sync->n_tables; i++)
        ready += strcmp(g->sync->tables[i]->state, "ready") == 0;
    s_one(p, name, g, (double)ready);
}

static void s_tables(const migration_t *g, promtext_t *p, const char *name)
{
    if (g->sync)
        s_one(p, name, g, (double)g->sync->n_tables);
}

static void s_apply_errors(const migration_t *g, promtext_t *p, const char *name)
{
    if (g->sync)
        s_one(p, name, g, (double)g->sync->apply_error_count);
}

/* The last verify that finished (a running one has no result yet). */
static const cJSON *s_verify(const migration_t *g)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(g->verify_last, "state"));
    return state && strcmp(state, "running") != 0 ? g->verify_last : NULL;
}

static void s_verify_tables(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *v = s_verify(g);
    const cJSON *tables = cJSON_GetObjectItem(v, "tables");
    if (!cJSON_IsArray(tables))
        return;
    for (size_t k = 0; s_table_outcomes[k]; k++) {
        size_t n = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tables) {
            const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(t, "outcome"));
            n += o && strcmp(o, s_table_outcomes[k]) == 0;
        }
        promtext_sample(p, name, LABELS("migration", g->m->name, "outcome", s_table_outcomes[k]),
                        (double)n);
    }
}

static void s_verify_equal(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *v = s_verify(g);
    if (v)
        s_one(p, name, g,
              strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(v, "state")), "equal") == 0);
}

static void s_verify_finished(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *at = cJSON_GetObjectItem(s_verify(g), "finished_at_ms");
    if (cJSON_IsNumber(at))
        s_one(p, name, g, cJSON_GetNumberValue(at) / 1000.0);
}

static void s_pause(const migration_t *g, promtext_t *p, const char *name)
{
    for (size_t k = 0; k < MIGMETRICS__KINDS; k++)
        promtext_histogram(p, name, LABELS("migration", g->m->name, "kind", s_kind_names[k]),
                           &g->pause_hist[k]);
}

/* The last cutover, rollback or rehearsal that finished. */
static const cJSON *s_cutover(const migration_t *g)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(g->cutover_last, "state"));
    return state && (strcmp(state, "done") == 0 || strcmp(state, "aborted") == 0)
               ? g->cutover_last : NULL;
}

static void s_cutover_steps(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *tl = cJSON_GetObjectItem(s_cutover(g), "timeline");
    int n = cJSON_GetArraySize(tl);
    /* A step tried again has an entry per try: one sample per step, the
     * time of all its tries. */
    for (int i = 0; i < n; i++) {
        const char *step = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(tl, i), "step"));
        if (!step)
            continue;
        bool first = true;
        double ms = 0;
        for (int j = 0; j < n && first; j++) {
            const cJSON *e = cJSON_GetArrayItem(tl, j);
            const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(e, "step"));
            if (!s || strcmp(s, step) != 0)
                continue;
            if (j < i)
                first = false;
            else
                ms += cJSON_GetNumberValue(cJSON_GetObjectItem(e, "ms"));
        }
        if (first)
            promtext_sample(p, name, LABELS("migration", g->m->name, "step", step), ms / 1000.0);
    }
}

static void s_cutover_pause(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *wp = cJSON_GetObjectItem(s_cutover(g), "write_pause_ms");
    if (cJSON_IsNumber(wp))
        s_one(p, name, g, cJSON_GetNumberValue(wp) / 1000.0);
}

static void s_cutover_finished(const migration_t *g, promtext_t *p, const char *name)
{
    const cJSON *at = cJSON_GetObjectItem(s_cutover(g), "finished_at_ms");
    if (cJSON_IsNumber(at))
        s_one(p, name, g, cJSON_GetNumberValue(at) / 1000.0);
}

static void s_cutover_outcome(const migration_t *g, promtext_t *p, const char *name)
{
    const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(s_cutover(g), "outcome"));
    for (size_t k = 0; o && s_cutover_outcomes[k]; k++)
        promtext_sample(p, name, LABELS("migration", g->m->name, "outcome", s_cutover_outcomes[k]),
                        strcmp(o, s_cutover_outcomes[k]) == 0);
}

typedef struct {
    const char *name;
    promtext_type_t type;
    const char *help;
    s_fn fn;
} s_family_t;

static const s_family_t s_families[] = {
    { "godwit_migration_phase", PROMTEXT_GAUGE,
      "1 for the phase (state) the migration is in, 0 for the others.", s_phase },
    { "godwit_migration_phase_since_timestamp_seconds", PROMTEXT_GAUGE,
      "When the migration entered its current phase (Unix time).", s_phase_since },
    { "godwit_migration_lag_bytes", PROMTEXT_GAUGE,
      "WAL the target has not confirmed: the source's current LSN minus our slot's "
      "confirmed_flush_lsn.", s_lag_bytes },
    { "godwit_migration_lag_seconds", PROMTEXT_GAUGE,
      "Replay lag of our slot's WAL sender on the source (while the slot is active).",
      s_lag_seconds },
    { "godwit_migration_slot_retained_wal_bytes", PROMTEXT_GAUGE,
      "WAL our slot keeps on the source: its current LSN minus the slot's restart_lsn.",
      s_retained },
    { "godwit_migration_copy_done_bytes", PROMTEXT_GAUGE,
      "Bytes copied so far by the running copy phase.", s_copy_done },
    { "godwit_migration_copy_total_bytes", PROMTEXT_GAUGE,
      "Bytes the running copy phase has to copy (the tables' sizes on the source).",
      s_copy_total },
    { "godwit_migration_tables", PROMTEXT_GAUGE,
      "Tables of the migration's subscription, from the target's latest sync status.", s_tables },
    { "godwit_migration_tables_ready", PROMTEXT_GAUGE,
      "Tables of the subscription in state ready.", s_tables_ready },
    { "godwit_migration_import_profile_pending", PROMTEXT_GAUGE,
      "1 while the target's import profile is applied or its revert has not been confirmed "
      "(the cutover gate refuses), 0 once reverted or before it was applied.",
      s_import_pending },
    { "godwit_migration_apply_errors_total", PROMTEXT_COUNTER,
      "Apply errors of the subscription's workers (pg_stat_subscription_stats on the target).",
      s_apply_errors },
    { "godwit_verify_last_tables", PROMTEXT_GAUGE,
      "Tables of the last finished verify by outcome.", s_verify_tables },
    { "godwit_verify_last_equal", PROMTEXT_GAUGE,
      "1 if the last finished verify found both sides equal, 0 if not.", s_verify_equal },
    { "godwit_verify_last_finished_timestamp_seconds", PROMTEXT_GAUGE,
      "When the last verify finished (Unix time).", s_verify_finished },
    { "godwit_cutover_write_pause_seconds", PROMTEXT_HISTOGRAM,
      "Write pauses measured since the coordinator started: first proxy pause sent to last "
      "resume answered, by kind (cutover, rollback, rehearsal).", s_pause },
    { "godwit_cutover_last_write_pause_seconds", PROMTEXT_GAUGE,
      "The write pause of the last finished cutover, rollback or rehearsal.", s_cutover_pause },
    { "godwit_cutover_last_step_seconds", PROMTEXT_GAUGE,
      "Time each step of the last finished cutover, rollback or rehearsal took.",
      s_cutover_steps },
    { "godwit_cutover_last_outcome", PROMTEXT_GAUGE,
      "1 for the outcome of the last finished cutover, rollback or rehearsal, 0 for the others.",
      s_cutover_outcome },
    { "godwit_cutover_last_finished_timestamp_seconds", PROMTEXT_GAUGE,
      "When the last cutover, rollback or rehearsal finished (Unix time).", s_cutover_finished },
};

void migmetrics_render(const migration_t *first, promtext_t *p)
{
    for (size_t f = 0; f < sizeof s_families / sizeof s_families[0]; f++) {
        promtext_family(p, s_families[f].name, s_families[f].type, s_families[f].help);
        for (const migration_t *g = first; g; g = g->next)
            s_families[f].fn(g, p, s_families[f].name);
    }
}
