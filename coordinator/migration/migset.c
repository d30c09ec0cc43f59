/*
 * migset: see migset.h. The list of migrations and the operator's commands
 * on them, each a row of the machine (migration.c) found by name; the
 * cutover and verify of a migration are started and ended here.
 */
#include "migset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutgate.h"
#include "cutgroup.h"
#include "log.h"
#include "migmetrics.h"
#include "migstatus.h"
#include "waves.h"
#include "xalloc.h"

struct migset {
    migration_env_t env;  /* borrowed by every migration */
    migration_t *migs;    /* in start order */
    migration_t *retired; /* replaced aborted ones: a stale result may still name them */
    migset_caps_t caps;
    bool paused;          /* the fleet's pause: no copy starts (journal meta "fleet_paused") */
    waves_t waves;        /* the fleet's schedule (waves.h) */
};

/* The link a migration's copy crosses, "SITE->SITE" (an agent without a
 * site label stands for its own: "agent NAME"), into buf; false when
 * either agent has not said hello since the coordinator started (its site
 * is not known yet). */
static bool s_link_key(const agentlink_t *link, const plan_migration_t *m, char *buf, size_t len)
{
    const char *s = agentlink_site(link, m->source.agent), *t = agentlink_site(link, m->target.agent);
    if (!s || !t)
        return false;
    snprintf(buf, len, "%s%s -> %s%s", s[0] ? "" : "agent ", s[0] ? s : m->source.agent,
             t[0] ? "" : "agent ", t[0] ? t : m->target.agent);
    return true;
}

/* Running copies over the link called key. */
static int64_t s_link_copies(const agentlink_t *link, migration_t *const *running, size_t n,
                             const char *key)
{
    int64_t c = 0;
    char other[2 * 140];
    for (size_t i = 0; i < n; i++)
        c += s_link_key(link, running[i]->m, other, sizeof other) && strcmp(other, key) == 0;
    return c;
}

/* Copies holding a slot from agent (as their source) or into it (as their
 * target), among the running ones (few: the caps bound them). */
static int64_t s_copies(migration_t *const *running, size_t n, const char *agent, bool as_target)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += strcmp(as_target ? running[i]->m->target.agent : running[i]->m->source.agent,
                    agent) == 0;
    return c;
}

/* Appends g to the growing array *v of *n items (*cap allocated). */
static void s_push(migration_t ***v, size_t *n, size_t *cap, migration_t *g)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = g;
}

/* Gives a copy slot, in start order, to every migration in copy that
 * waits for one and whose source and target agents are under their caps;
 * the others say why they wait. An admission is journaled (a restarted
 * coordinator finds which copies may be running). Runs every tick: one
 * pass finds the running copies, and each waiting one is counted against
 * those alone, not against the whole fleet. */
static void s_admit_copies(migset_t *ms)
{
    size_t n = 0, cap = 0, waiting = 0;
    migration_t **running = NULL;
    for (migration_t *g = ms->migs; g; g = g->next) {
        if (!migration_copy_phase(g))
            continue;
        if (!g->copy_slot) {
            waiting++;
            continue;
        }
        s_push(&running, &n, &cap, g);
    }
    for (migration_t *g = ms->migs; waiting && g; g = g->next) {
        if (!migration_copy_phase(g) || g->copy_slot)
            continue;
        waiting--;
        const char *src = g->m->source.agent, *tgt = g->m->target.agent;
        if (ms->paused) {
            snprintf(g->copy_queued, sizeof g->copy_queued,
                     "queued: the fleet is paused (godwitctl fleet resume)");
            continue;
        }
        int64_t from = s_copies(running, n, src, false), into = s_copies(running, n, tgt, true);
        if (ms->caps.per_source && from >= ms->caps.per_source) {
            snprintf(g->copy_queued, sizeof g->copy_queued,
                     "queued: %lld copies from source %s running (copies.per_source %lld)",
                     (long long)from, src, (long long)ms->caps.per_source);
            continue;
        }
        if (ms->caps.per_target && into >= ms->caps.per_target) {
            snprintf(g->copy_queued, sizeof g->copy_queued,
                     "queued: %lld copies into target %s running (copies.per_target %lld)",
                     (long long)into, tgt, (long long)ms->caps.per_target);
            continue;
        }
        char key[2 * 140];
        if (ms->caps.per_link && !s_link_key(ms->env.link, g->m, key, sizeof key)) {
            snprintf(g->copy_queued, sizeof g->copy_queued,
                     "queued: waiting for the hellos of %s and %s (their sites, for "
                     "copies.per_link)", src, tgt);
            continue;
        }
        int64_t over = ms->caps.per_link ? s_link_copies(ms->env.link, running, n, key) : 0;
        if (ms->caps.per_link && over >= ms->caps.per_link) {
            snprintf(g->copy_queued, sizeof g->copy_queued,
                     "queued: %lld copies on link %s running (copies.per_link %lld)",
                     (long long)over, key, (long long)ms->caps.per_link);
            continue;
        }
        char detail[200];
        snprintf(detail, sizeof detail, "copy %lld of %lld from source %s, %lld of %lld into target %s",
                 (long long)from + 1, (long long)ms->caps.per_source, src, (long long)into + 1,
                 (long long)ms->caps.per_target, tgt);
        journal_event(ms->env.journal, g->m->name, migration_state_name(g->state), "copy_slot",
                      detail);
        log_info_about(log_about_migration(g->m->name), "migration %s: copy admitted: %s",
                       g->m->name, detail);
        g->copy_slot = true;
        g->copy_queued[0] = '\0';
        s_push(&running, &n, &cap, g);
    }
    free(running);
}

static bool s_wave_verify(migration_t *g, void *arg, char *err, size_t errlen)
{
    return migset_verify(arg, g->m->name, err, errlen);
}

void migset_tick(migset_t *ms)
{
    uint64_t now = agentlink_mono_ms(ms->env.link);
    waves_tick(&ms->waves, ms->env.journal, ms->migs, ms->paused, now, s_wave_verify, ms);
    s_admit_copies(ms);
    for (migration_t *g = ms->migs; g; g = g->next)
        migration_tick(g, now);
}

void migset_set_caps(migset_t *ms, migset_caps_t caps) { ms->caps = caps; }

cJSON *migset_copies_json(const migset_t *ms)
{
    int64_t running = 0, queued = 0;
    for (const migration_t *g = ms->migs; g; g = g->next) {
        running += migration_copy_phase(g) && g->copy_slot;
        queued += migration_copy_phase(g) && !g->copy_slot;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "per_source", (double)ms->caps.per_source);
    cJSON_AddNumberToObject(o, "per_target", (double)ms->caps.per_target);
    cJSON_AddNumberToObject(o, "per_link", (double)ms->caps.per_link);
    cJSON_AddNumberToObject(o, "running", (double)running);
    cJSON_AddNumberToObject(o, "queued", (double)queued);
    cJSON_AddBoolToObject(o, "fleet_paused", ms->paused);
    return o;
}

/* ---- the set ---- */

static migration_t *s_find(migset_t *ms, const char *name)
{
    for (migration_t *g = ms->migs; g; g = g->next)
        if (strcmp(g->m->name, name) == 0)
            return g;
    return NULL;
}

static void s_append(migset_t *ms, migration_t *g)
{
    migration_t **tail = &ms->migs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = g;
}

static void s_cutover_recover(migset_t *ms, migration_t *g);

static void s_load_one(const char *name, const char *spec, const char *state, void *arg)
{
    migset_t *ms = arg;
    mstate_t st;
    if (!migration_state_parse(state, &st)) {
        log_error_about(log_about_migration(name),
                        "migration %s: unknown state \"%s\" in the journal; left alone", name,
                        state);
        return;
    }
    migration_t *g = migration_new(&ms->env, name, spec, st);
    if (!g)
        return;
    waves_read(g, ms->env.journal);
    s_append(ms, g);
    if (st != M_ABORTED)
        log_info_about(log_about_migration(name), "migration %s: resuming in %s", name, state);
    s_cutover_recover(ms, g);
}

migset_t *migset_new(const agentlink_t *link, journal_t *j)
{
    migset_t *ms = xcalloc(1, sizeof *ms);
    ms->env.link = link;
    ms->env.journal = j;
    ms->env.migs = &ms->migs;
    ms->caps = (migset_caps_t){ .per_source = MIGSET_COPIES_PER_SOURCE,
                                .per_target = MIGSET_COPIES_PER_TARGET };
    int64_t paused = 0;
    ms->paused = journal_meta_get(j, MIGSET_FLEET_PAUSED_KEY, &paused) && paused;
    waves_load(&ms->waves, j);
    journal_migrations(j, s_load_one, ms);
    return ms;
}

void migset_on_move(migset_t *ms, migration_move_cb cb, void *arg)
{
    ms->env.on_move = cb;
    ms->env.on_move_arg = arg;
}

void migset_destroy(migset_t **mp)
{
    migset_t *ms = *mp;
    if (!ms)
        return;
    *mp = NULL;
    while (ms->migs) {
        migration_t *g = ms->migs;
        ms->migs = g->next;
        migration_destroy(&g);
    }
    while (ms->retired) {
        migration_t *g = ms->retired;
        ms->retired = g->next;
        migration_destroy(&g);
    }
    free(ms);
}

bool migset_schedule(migset_t *ms, const plan_waves_t *pw, char *err, size_t errlen)
{
    return waves_begin(&ms->waves, ms->env.journal, ms->migs, pw, err, errlen);
}

bool migset_fleet_go(migset_t *ms, bool accept_failures, unsigned *wave, char *err, size_t errlen)
{
    return waves_go(&ms->waves, ms->env.journal, ms->migs, accept_failures, wave, err, errlen);
}

bool migset_fleet_paused(const migset_t *ms) { return ms->paused; }

cJSON *migset_waves_json(const migset_t *ms) { return waves_json(&ms->waves, ms->migs); }

bool migset_start(migset_t *ms, const plan_migration_t *m, unsigned wave, char *err,
                  size_t errlen)
{
    migration_t *old = s_find(ms, m->name);
    if (old && old->state != M_ABORTED) {
        snprintf(err, errlen, "migration %s is already %s", m->name,
                 migration_state_name(old->state));
        return false;
    }
    char why[512];
    if (old && importprof_pending(old, why, sizeof why)) {
        /* Its record is the state to put back: a new start would read the
         * relaxed values as the state before. */
        snprintf(err, errlen, "migration %s is aborted but %s; start it again once that is done",
                 m->name, why);
        return false;
    }
    char *json = plan_migration_to_json(m);
    char detail[96] = "";
    mstate_t first = wave ? M_SCHEDULED
                     : m->engine == PLAN_ENGINE_MARIADB ? M_COPY
                     : m->method == PLAN_METHOD_PHYSICAL ? M_BASEBACKUP : M_ROLES;
    if (wave)
        waves_detail(&ms->waves, wave, detail, sizeof detail);
    bool ok = journal_migration_create_detail(ms->env.journal, m->name, json,
                                              migration_state_name(first), detail, err, errlen);
    migration_t *g = ok ? migration_new(&ms->env, m->name, json, first) : NULL;
    free(json);
    if (!g) {
        if (ok)
            snprintf(err, errlen, "migration %s: cannot read back its spec", m->name);
        return false;
    }
    if (old) {
        for (migration_t **pp = &ms->migs; *pp; pp = &(*pp)->next) {
            if (*pp == old) {
                *pp = old->next;
                break;
            }
        }
        /* A stale result may still name the old one: keep it until the end. */
        old->next = ms->retired;
        ms->retired = old;
    }
    if (wave)
        waves_assign(&ms->waves, g, wave);
    s_append(ms, g);
    log_info_about(log_about_migration(m->name),
                   "migration %s: %s (%s/%s on %s -> %s/%s on %s)", m->name,
                   wave ? "scheduled" : "started",
                   m->source.database, m->source.agent, m->source.agent, m->target.database,
                   m->target.agent, m->target.agent);
    return true;
}

/* Why the operator's event does not apply to g in its state. */
static void s_refusal(const migration_t *g, mevent_t event, char *err, size_t errlen)
{
    const char *name = g->m->name, *st = migration_state_name(g->state);
    switch (event) {
    case MEV_ABORT:
        if (g->state == M_ABORTED)
            snprintf(err, errlen, "migration %s is already aborted", name);
        else
            snprintf(err, errlen, "migration %s is %s: traffic has moved to green; abort "
                     "applies before the cutover (godwitctl rollback M moves it back, "
                     "godwitctl cleanup M drops our objects)", name, st);
        break;
    case MEV_PAUSE:
        if (g->m->engine == PLAN_ENGINE_MARIADB) {
            snprintf(err, errlen, "migration %s: engine mariadb: pause is not written for "
                     "MariaDB in this version; abort removes the copy and its replication", name);
            break;
        }
        if (g->m->method == PLAN_METHOD_PHYSICAL) {
            snprintf(err, errlen, "migration %s is physical: its standby replays as it receives "
                     "and is not paused; abort removes it", name);
            break;
        }
        snprintf(err, errlen,
                 "migration %s is %s: pause applies once the subscription exists (catchup, "
                 "postdata, streaming); before that, abort and start again", name, st);
        break;
    case MEV_RESUME:
        snprintf(err, errlen, "migration %s is %s, not paused", name, st);
        break;
    case MEV_CLEANUP:
        snprintf(err, errlen, "migration %s is %s: cleanup follows a cutover (switched); before "
                 "one, abort drops our objects", name, st);
        break;
    default:
        snprintf(err, errlen, "migration %s is %s: %s does not apply", name, st,
                 migration_event_name(event));
        break;
    }
}

/* The operator's event on the migration called name: true if it moved, or
 * if the event is already under way; false with err when there is no such
 * migration, a cutover runs (it finishes or rolls back on its own), the
 * event does not apply in its state, or the journal refused. */
static bool s_operator(migset_t *ms, const char *name, mevent_t event, const char *detail,
                       char *err, size_t errlen)
{
    migration_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return false;
    }
    if (g->cutover && !migration_stays(g, event)) {
        snprintf(err, errlen, "migration %s: a cutover is running; it finishes or rolls back on "
                 "its own", name);
        return false;
    }
    switch (migration_fire(g, event, detail)) {
    case FIRE_MOVED:
    case FIRE_STAYS:
        return true;
    case FIRE_NO_ROW:
        s_refusal(g, event, err, errlen);
        return false;
    case FIRE_JOURNAL:
    default:
        snprintf(err, errlen, "migration %s: the journal refused the change", name);
        return false;
    }
}

/* Appends {name, why} to skipped. */
static void s_skipped(cJSON *skipped, const char *name, const char *why)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "why", why);
    cJSON_AddItemToArray(skipped, o);
}

/* False with err when wave is not 0 and the schedule has no such wave. */
static bool s_wave_known(const migset_t *ms, unsigned wave, char *err, size_t errlen)
{
    for (const migration_t *g = ms->migs; wave && g; g = g->next)
        if (waves_member(&ms->waves, g, wave))
            return true;
    if (wave)
        snprintf(err, errlen, "the fleet's schedule has no wave %u", wave);
    return wave == 0;
}

bool migset_fleet_pause(migset_t *ms, bool pause, unsigned wave, cJSON *changed, cJSON *skipped,
                        char *err, size_t errlen)
{
    if (!s_wave_known(ms, wave, err, errlen))
        return false;
    if (!wave && !journal_meta_set(ms->env.journal, MIGSET_FLEET_PAUSED_KEY, pause ? 1 : 0)) {
        snprintf(err, errlen, "the journal refused to record the fleet's %s",
                 pause ? "pause" : "resume");
        return false;
    }
    if (!wave) {
        ms->paused = pause;
        log_info("fleet %s: %s", pause ? "paused" : "resumed",
                 pause ? "no copy starts, no wave opens; the migrations that can pause pause"
                       : "copies may start, waves may open");
    }
    for (migration_t *g = ms->migs; g; g = g->next) {
        char why[512];
        if (g->state == M_ABORTED || g->state == M_DONE || (wave && !waves_member(&ms->waves, g, wave)))
            continue;
        bool ok;
        if (pause) {
            ok = migset_pause(ms, g->m->name, why, sizeof why);
        } else if (g->state == M_PAUSED || g->state == M_PAUSING) {
            ok = migset_resume(ms, g->m->name, why, sizeof why);
        } else {
            snprintf(why, sizeof why, "not paused (%s)", migration_state_name(g->state));
            ok = false;
        }
        if (ok)
            cJSON_AddItemToArray(changed, cJSON_CreateString(g->m->name));
        else
            s_skipped(skipped, g->m->name, why);
    }
    return true;
}

bool migset_fleet_abort(migset_t *ms, unsigned wave, cJSON *changed, cJSON *skipped, char *err,
                        size_t errlen)
{
    if (!s_wave_known(ms, wave, err, errlen))
        return false;
    if (wave)
        log_info("wave %u: abort requested by the operator", wave);
    else
        log_info("fleet: abort requested by the operator");
    for (migration_t *g = ms->migs; g; g = g->next) {
        char why[512];
        if (g->state == M_ABORTED || g->state == M_DONE || (wave && !waves_member(&ms->waves, g, wave)))
            continue;
        if (migset_abort(ms, g->m->name, why, sizeof why))
            cJSON_AddItemToArray(changed, cJSON_CreateString(g->m->name));
        else
            s_skipped(skipped, g->m->name, why);
    }
    return true;
}

bool migset_abort(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_ABORT, "abort requested by the operator", err, errlen);
}

bool migset_pause(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_PAUSE, "pause requested by the operator", err, errlen);
}

bool migset_resume(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_RESUME, "resume requested by the operator", err, errlen);
}

/* ---- cutover ---- */

static bool s_is_back(const cJSON *report)
{
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(report, "direction"));
    return d && strcmp(d, "back") == 0;
}

static void s_cutover_done(cJSON *report, bool switched, void *arg)
{
    migration_t *g = arg;
    g->cutover = NULL; /* it ends itself after done */
    migmetrics_cutover_done(g, report);
    cJSON_Delete(g->cutover_last);
    g->cutover_last = report;
    migration_cutover_ended(g, report);
    if (!switched)
        return;
    const char *follow = cJSON_GetStringValue(cJSON_GetObjectItem(report, "follow"));
    char detail[600];
    if (s_is_back(report)) {
        snprintf(detail, sizeof detail, "rolled back: traffic goes to blue; green follows blue: %s",
                 follow ? follow : "?");
        migration_fire(g, MEV_ROLLED_BACK, detail);
    } else {
        snprintf(detail, sizeof detail, "cutover done: traffic goes to green; blue follows green: %s",
                 follow ? follow : "?");
        migration_fire(g, MEV_SWITCHED, detail);
    }
}

/* A cutover the journal says was under way when the coordinator stopped:
 * finished or rolled back now. */
static void s_cutover_recover(migset_t *ms, migration_t *g)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(g->cutover_last, "state"));
    bool back = s_is_back(g->cutover_last);
    if (!state || g->state != (back ? M_SWITCHED : M_STREAMING) ||
        (strcmp(state, "started") != 0 && strcmp(state, "switching") != 0 &&
         strcmp(state, "aborting") != 0 && strcmp(state, "unfreezing") != 0 &&
         strcmp(state, "promoting") != 0))
        return;
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(g->cutover_last, "dry_run"));
    g->cutover = cutover_start(ms->env.link, ms->env.journal, g->m, g->objname, g->revname,
                               back, dry, g->cutover_last, g->verify_last, s_cutover_done, g);
}

/* The agent as the link shows it, for the gates. */
static cutgate_agent_t s_gate_agent(migset_t *ms, const char *agent)
{
    cutgate_agent_t a = {
        .name = agent,
        .connected = agentlink_role(ms->env.link, agent) != NULL,
        .rtt_ms = agentlink_rtt_ms(ms->env.link, agent),
        .report = agentlink_report(ms->env.link, agent),
        .report_age_ms = agentlink_report_age_ms(ms->env.link, agent),
    };
    return a;
}

/* The gates (cutgate.h) over what g and the link show now: false with why
 * when the cutover (back: the rollback) must not start. */
static bool s_cutover_gates(migset_t *ms, migration_t *g, bool back, bool group, char *why,
                            size_t whylen)
{
    const plan_migration_t *m = g->m;
    size_t n = m->cutover.proxies.count;
    cutgate_agent_t *proxies = xcalloc(n ? n : 1, sizeof *proxies);
    for (size_t i = 0; i < n; i++)
        proxies[i] = s_gate_agent(ms, ((const plan_proxy_t *)m->cutover.proxies.items)[i].agent);
    const char *slot_name = back ? g->revname : g->objname;
    char import_why[512];
    bool import_pending = importprof_pending(g, import_why, sizeof import_why);
    cutgate_view_t v = {
        .m = m,
        .back = back,
        .state = migration_state_name(g->state),
        .verify_running = g->verify != NULL,
        .verify_last = g->verify_last,
        .has_sync = g->sync != NULL,
        .all_ready = g->sync && g->sync->all_ready,
        .standby = g->standby,
        .repl_error = g->repl_error,
        .repl_error_at_ms = g->repl_error_at_ms,
        .import_pending = import_pending ? import_why : NULL,
        .now_ms = agentlink_now_ms(ms->env.link),
        .source = s_gate_agent(ms, m->source.agent),
        .target = s_gate_agent(ms, m->target.agent),
        .proxies = proxies,
        .slot_name = slot_name,
        .slot = migration_report_slot(
            agentlink_report(ms->env.link, back ? m->target.agent : m->source.agent), slot_name),
        /* MariaDB: the poll of the connection this direction replicates
         * through (streaming: ours on the target; switched: the way back) */
        .replica = g->replica,
        .group = group,
    };
    bool ok = cutgate_check(&v, why, whylen);
    free(proxies);
    return ok;
}

/* The migration called name if a cutover (back: a rollback) may start on
 * it now; else NULL with why in err (*refused: a gate said no). */
static migration_t *s_cutover_ready(migset_t *ms, const char *name, bool back, bool group,
                                    bool *refused, char *err, size_t errlen)
{
    migration_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return NULL;
    }
    if (g->cutover) {
        snprintf(err, errlen, "migration %s: a cutover is already running", name);
        return NULL;
    }
    char why[700];
    if (!s_cutover_gates(ms, g, back, group, why, sizeof why)) {
        snprintf(err, errlen, "migration %s: %s refused: %s", name, back ? "rollback" : "cutover",
                 why);
        *refused = true;
        return NULL;
    }
    return g;
}

static void s_cutover_begin(migset_t *ms, migration_t *g, bool back, bool dry_run)
{
    g->cutover = cutover_start(ms->env.link, ms->env.journal, g->m, g->objname, g->revname, back,
                               dry_run, NULL, g->verify_last, s_cutover_done, g);
}

bool migset_cutover(migset_t *ms, const char *name, bool back, bool dry_run, bool *refused,
                    char *err, size_t errlen)
{
    *refused = false;
    migration_t *g = s_cutover_ready(ms, name, back, false, refused, err, errlen);
    if (g)
        s_cutover_begin(ms, g, back, dry_run);
    return g != NULL;
}

bool migset_cutover_group(migset_t *ms, const char *const *names, size_t n, bool back,
                          bool dry_run, bool *refused, char *err, size_t errlen)
{
    *refused = false;
    if (n < 2) {
        snprintf(err, errlen, "a cutover group has two databases or more");
        return false;
    }
    migration_t **gs = xcalloc(n, sizeof *gs);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        for (size_t k = 0; ok && k < i; k++)
            if (strcmp(names[k], names[i]) == 0) {
                snprintf(err, errlen, "migration %s is named twice", names[i]);
                ok = false;
            }
        if (ok && !(gs[i] = s_cutover_ready(ms, names[i], back, true, refused, err, errlen)))
            ok = false;
    }
    if (!ok && *refused) {
        size_t len = strlen(err);
        snprintf(err + len, errlen - len, " (nothing of the group started)");
    }
    if (ok) {
        cutgroup_t *grp = cutgroup_new(n);
        for (size_t i = 0; i < n; i++) {
            s_cutover_begin(ms, gs[i], back, dry_run);
            cutgroup_join(grp, gs[i]->cutover);
        }
        log_info("%s group of %zu migrations (%s, ...)%s started", back ? "rollback" : "cutover",
                 n, names[0], dry_run ? ": a rehearsal" : "");
    }
    free(gs);
    return ok;
}

bool migset_cleanup(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_CLEANUP,
                      "cleanup requested by the operator: no rollback after this", err, errlen);
}

/* ---- replication errors ---- */

void migset_replication_error(migset_t *ms, const char *agent, const char *object,
                              const char *message)
{
    for (migration_t *g = ms->migs; g; g = g->next) {
        if (strcmp(g->objname, object) != 0 || strcmp(g->m->target.agent, agent) != 0)
            continue;
        g->repl_error_at_ms = agentlink_now_ms(ms->env.link);
        if (g->repl_error && strcmp(g->repl_error, message) == 0) {
            g->repl_error_repeats++;
            return;
        }
        free(g->repl_error);
        g->repl_error = xstrdup(message);
        g->repl_error_repeats = 1;
        log_error_about(log_about_migration(g->m->name),
                        "migration %s: replication error on %s: %s", g->m->name, agent, message);
        journal_event(ms->env.journal, g->m->name, migration_state_name(g->state),
                      "replication_error", message);
        return;
    }
}

/* ---- verify ---- */

static void s_verify_done(cJSON *report, void *arg)
{
    migration_t *g = arg;
    g->verify = NULL; /* it ends itself after done */
    char *text = cJSON_PrintUnformatted(report);
    journal_event(g->env->journal, g->m->name, migration_state_name(g->state), "verify", text);
    free(text);
    cJSON_Delete(g->verify_last);
    g->verify_last = report;
}

/* Why a physical migration's standby cannot be compared now, or NULL: it
 * must be a streaming standby, and the verify slot is a logical one, which
 * needs wal_level logical on the source (as the source's agent reports
 * it). */
static const char *s_standby_unverifiable(const migset_t *ms, const migration_t *g)
{
    if (!g->standby)
        return "the standby has not reported its state yet; try again in a few seconds";
    if (!g->standby->in_recovery || !g->standby->streaming)
        return !g->standby->in_recovery ? "the target is not a standby any more"
                                        : "the standby does not stream from the source";
    const Godwit__Report *r = agentlink_report(ms->env.link, g->m->source.agent);
    const char *level = r && r->postgres ? r->postgres->wal_level : NULL;
    if (!level || !level[0])
        return "the source's agent has not reported its wal_level yet; try again in a few seconds";
    if (strcmp(level, "logical") != 0)
        return "verify reads the source's changes through a logical slot, which needs wal_level "
               "= logical on the source (docs/physical.md)";
    return NULL;
}

bool migset_verify(migset_t *ms, const char *name, char *err, size_t errlen)
{
    migration_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return false;
    }
    if (g->verify)
        return true;
    if (g->vslot_busy) {
        snprintf(err, errlen, "migration %s: a verify slot left on the source is being dropped; "
                 "try again in a few seconds", name);
        return false;
    }
    if (g->state != M_STREAMING) {
        snprintf(err, errlen, "migration %s is %s: verify compares a streaming migration", name,
                 migration_state_name(g->state));
        return false;
    }
    if (g->m->engine == PLAN_ENGINE_MARIADB) {
        g->verify = verify_start(ms->env.link, g->m, g->objname, NULL, NULL, 0, s_verify_done, g);
        journal_event(ms->env.journal, name, migration_state_name(g->state), "intent",
                      "verify every table: checksums the source's binary log carries as "
                      "statements");
        return true;
    }
    if (g->m->method == PLAN_METHOD_PHYSICAL) {
        const char *why = s_standby_unverifiable(ms, g);
        if (why) {
            snprintf(err, errlen, "migration %s: %s", name, why);
            return false;
        }
        g->verify = verify_start(ms->env.link, g->m, g->objname, NULL, NULL, 0, s_verify_done, g);
        journal_event(ms->env.journal, name, migration_state_name(g->state), "intent",
                      "verify every table of the standby's database");
        return true;
    }
    if (!g->sync || g->sync->n_tables == 0) {
        snprintf(err, errlen, "migration %s: the target has not reported its tables yet; try "
                 "again in a few seconds", name);
        return false;
    }
    size_t n = g->sync->n_tables;
    char **schemas = xcalloc(n, sizeof *schemas), **names = xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const Godwit__TableRef *t = g->sync->tables[i]->table;
        schemas[i] = t ? t->schema : (char *)"";
        names[i] = t ? t->name : (char *)"";
    }
    g->verify = verify_start(ms->env.link, g->m, g->objname, schemas, names, n, s_verify_done, g);
    free(schemas);
    free(names);
    journal_event(ms->env.journal, name, migration_state_name(g->state), "intent",
                  "verify every table");
    return true;
}

const char *migset_state(migset_t *ms, const char *name)
{
    migration_t *g = s_find(ms, name);
    return g ? migration_state_name(g->state) : NULL;
}

bool migset_note(migset_t *ms, const char *name, const char *kind, const char *detail)
{
    migration_t *g = s_find(ms, name);
    if (!g)
        return false;
    journal_event(ms->env.journal, name, migration_state_name(g->state), kind, detail);
    return true;
}

cJSON *migset_status(migset_t *ms, const char *name)
{
    if (name) {
        migration_t *g = s_find(ms, name);
        return g ? migstatus_json(g) : NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (migration_t *g = ms->migs; g; g = g->next)
        cJSON_AddItemToArray(arr, migstatus_json(g));
    return arr;
}

void migset_metrics(const migset_t *ms, promtext_t *p)
{
    migmetrics_render(ms->migs, p);
}
