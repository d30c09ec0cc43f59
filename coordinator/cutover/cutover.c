/*
 * cutover: see cutover.h. s_steps is the machine: each step sends its
 * commands (cutstep.c; to several agents at once where it can), and moves
 * on when all of them came back. Owns every move (cutover_goto), the
 * step's end (cutover_step_over: next, retry, abort, give up) and the
 * cutover's lifetime; the journal's records and the recovery are
 * cutjournal.c's, the report cutreport.c's. Nothing here blocks; the write
 * pause is measured from the first PAUSE sent to the last RESUME answered.
 */
#include "cutover.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutgroup.h"
#include "cutjournal.h"
#include "cutreport.h"
#include "cutstep.h"
#include "finalcheck.h"
#include "log.h"
#include "planwire.h"
#include "xalloc.h"

#define CU_RETRY_MS 1000

#define CU_ABORT_MIN_TRY_MS 500 /* an abort step begun past the abort's deadline */
/* One try of an abort step: short enough that a command sent to an agent
 * that died before the coordinator noticed is tried again (and the agent,
 * back, reached) within cutover.abort_timeout. */
#define CU_ABORT_TRY_MS 3000

/* critical: inside the write pause's budget, a failure aborts; bounded: an
 * abort step, whose commands go only to what the cutover changed and which
 * gives up on an agent it cannot reach by the abort's deadline (the
 * proxy, or the source's fence, is then reported unknown); best effort:
 * a failure is reported and the machine goes on; otherwise a failure is
 * retried until the step succeeds, or (tries > 0) that many times, after
 * which the replication in the other direction is given up and the machine
 * ends (traffic is on the new side already). */
#define CU_FOLLOW_TRIES 30
static const struct {
    kstate_t state;
    const char *name;
    cutstep_fn send;
    kstate_t next, next_dry;
    bool critical, best_effort;
    unsigned tries;
    bool bounded;               /* an abort step: gives up at cutover.abort_timeout */
} s_steps[K__COUNT] = {
    { K_CHECK, "check roles", cutstep_check, K_PAUSE, K_PAUSE, false, false, 0, false },
    { K_PAUSE, "pause", cutstep_pause, K_FREEZE, K_FREEZE, true, false, 0, false },
    { K_FREEZE, "freeze", cutstep_freeze, K_SEQUENCES, K_SEQUENCES, true, false, 0, false },
    { K_SEQUENCES, "sequences", cutstep_sequences, K_SWITCH, K_DRY_UNFREEZE, true, false, 0,
      false },
    { K_SWITCH, "switch", cutstep_switch_to, K_RESUME, K_RESUME, true, false, 0, false },
    { K_RESUME, "resume", cutstep_resume, K_DROP_OLD, K_DONE, false, false, 0, false },
    { K_DONE, "done", NULL, K_DONE, K_DONE, false, false, 0, false },
    { K_BACK, "switch back", cutstep_switch_back, K_REFENCE, K_REFENCE, false, false, 0, true },
    { K_UNFREEZE, "unfreeze", cutstep_unfreeze, K_UNPAUSE, K_UNPAUSE, false, false, 0, true },
    { K_UNPAUSE, "resume on old side", cutstep_resume, K_ABORT_RESTORE, K_ABORT_RESTORE, false,
      false, 0, true },
    { K_ABORTED, "aborted", NULL, K_ABORTED, K_ABORTED, false, false, 0, false },
    { K_DRY_UNFREEZE, "unfreeze", cutstep_unfreeze, K_DRY_RESUME, K_DRY_RESUME, false, false, 0,
      false },
    { K_DRY_RESUME, "resume", cutstep_resume, K_DRY_RESTORE, K_DRY_RESTORE, false, false, 0,
      false },
    { K_DRY_RESTORE, "restore apply", cutstep_restore, K_DONE, K_DONE, false, true, 0, false },
    { K_ABORT_RESTORE, "restore apply", cutstep_restore, K_ABORTED, K_ABORTED, false, true, 0,
      true },
    { K_DROP_OLD, "drop old subscription", cutstep_drop_old, K_DROP_OLD_SLOT, K_DONE, false,
      false, CU_FOLLOW_TRIES, false },
    { K_DROP_OLD_SLOT, "drop old slot", cutstep_drop_old_slot, K_ADVANCE, K_DONE, false, false,
      CU_FOLLOW_TRIES, false },
    { K_ADVANCE, "advance new slot", cutstep_advance, K_FOLLOW, K_DONE, false, false,
      CU_FOLLOW_TRIES, false },
    { K_FOLLOW, "follow", cutstep_follow, K_DONE, K_DONE, false, false, CU_FOLLOW_TRIES,
      false },
    { K_SWITCH_RESUME, "switch and resume", cutstep_switch_to, K_DROP_OLD, K_DONE, true, false, 0,
      false },
    { K_REFENCE, "fence again", cutstep_refence, K_UNFREEZE, K_UNFREEZE, false, false, 0, true },
    { K_PROMOTE, "promote", cutstep_promote, K_SWITCH, K_DRY_UNFREEZE, true, false, 0, false },
    { K_REJOIN, "rejoin", cutstep_rejoin, K_DONE, K_DONE, false, false, CU_FOLLOW_TRIES, false },
    /* MariaDB: after the restore started `to`'s replication again, the
     * fence the abort made there lifted (it had none before the pause). */
    { K_UNFENCE_TO, "lift the target's fence", cutstep_unfence_to, K_ABORTED, K_ABORTED, false,
      true, 0, true },
};

/* Tests kill the coordinator at exact points of the sequence: with
 * GODWIT_FAILPOINT=cutover-after-<step> ("pause", "freeze", "sequences",
 * "switch") it dies by SIGKILL once that step succeeded (and was journaled),
 * with cutover-during-switch once the first proxy switched and before the
 * others answered. Like a kill -9: nothing is cleaned up. The same points
 * with "stop-" after "cutover-" (cutover-stop-after-freeze) stop it with
 * SIGSTOP instead, as a VM freeze or a long pause would: after a SIGCONT it
 * goes on from there as if no time had passed. */
void cutover_failpoint(const cutover_t *cu, const char *point)
{
    static const char kill_prefix[] = "cutover-", stop_prefix[] = "cutover-stop-";
    if (!cu->failpoint)
        return;
    if (strcmp(cu->failpoint, point) == 0) {
        log_error("failpoint %s: killing the coordinator", point);
        raise(SIGKILL);
    } else if (strncmp(cu->failpoint, stop_prefix, sizeof stop_prefix - 1) == 0 &&
               strncmp(point, kill_prefix, sizeof kill_prefix - 1) == 0 &&
               strcmp(cu->failpoint + sizeof stop_prefix - 1, point + sizeof kill_prefix - 1) == 0) {
        log_error("failpoint %s: stopping the coordinator (SIGSTOP)", cu->failpoint);
        raise(SIGSTOP);
        log_warn("failpoint %s: continued", cu->failpoint);
    }
}

const char *cutover_step_name(kstate_t s) { return s_steps[s].name; }

log_about_t cutover_about(const cutover_t *cu)
{
    return (log_about_t){ .migration = cu->migration, .agent = NULL,
                          .step = s_steps[cu->state].name };
}

bool cutover_step_bounded(kstate_t s) { return s_steps[s].bounded; }

/* ---- lifetime ----------------------------------------------------------- */

void cutover_free(cutover_t *cu)
{
    free(cu->migration);
    free(cu->from_agent);
    free(cu->from_database);
    free(cu->to_agent);
    free(cu->to_database);
    free(cu->sub_name);
    free(cu->new_name);
    free(cu->final_gtid);
    free(cu->switch_gtid);
    planwire_conn_free(&cu->to_reads_from);
    planwire_conn_free(&cu->from_reads_to);
    planwire_tables_free(&cu->tables);
    for (size_t i = 0; i < cu->n_app_roles; i++)
        free(cu->app_roles[i]);
    free(cu->app_roles);
    for (size_t i = 0; i < cu->n_proxies; i++) {
        free(cu->proxy_agents[i]);
        free(cu->proxies[i]);
    }
    for (size_t i = 0; cu->px && i < cu->n_proxies; i++)
        free(cu->px[i].unknown);
    free(cu->px);
    free(cu->source_left);
    free(cu->target_left);
    free(cu->proxy_agents);
    free(cu->proxies);
    free(cu->holds);
    free(cu->step_error);
    free(cu->failpoint);
    if (cu->group)
        cutgroup_leave(cu);
    for (size_t i = 0; i < cu->n_group_dbs; i++)
        free(cu->group_dbs[i]);
    free(cu->group_dbs);
    if (cu->freeze)
        godwit__freeze_source_result__free_unpacked(cu->freeze, NULL);
    cutstep_answers_free(cu);
    finalcheck_free(cu->checks, cu->n_checks);
    cJSON_Delete(cu->report);
    cJSON_Delete(cu->step_detail);
    free(cu);
}

/* The end: journals the report, frees cu, hands the report to done. */
static void s_end(cutover_t *cu)
{
    bool switched = cu->state == K_DONE && !cu->dry_run;
    cutreport_finish(cu, switched);
    cutjournal_report(cu);
    /* null when nothing was paused, or the pause began before a restart */
    const cJSON *wp = cJSON_GetObjectItem(cu->report, "write_pause_ms");
    char pause[64] = "no write pause measured";
    if (cJSON_IsNumber(wp))
        snprintf(pause, sizeof pause, "write pause %.1f ms", cJSON_GetNumberValue(wp));
    log_info_about(cutover_about(cu), "migration %s: %s%s %s; %s", cu->migration, cu->back ?
                   "rollback" : "cutover", cu->dry_run ? " rehearsal" : "", cu->state == K_DONE ?
                   "done" : "aborted", pause);
    cutover_done_cb done = cu->done;
    void *arg = cu->arg;
    cJSON *report = cu->report;
    cu->report = NULL;
    bool cancelled = cu->cancelled;
    cutover_free(cu);
    if (!cancelled)
        done(report, switched, arg);
    else
        cJSON_Delete(report);
}

static void s_run(cutover_t *cu);

/* The one place the cutover changes state: logged as "from X to Y". */
/* The step to comes next (logged, with when if not NULL); nothing sent. */
static void s_enter(cutover_t *cu, kstate_t to, const char *when)
{
    if (to != cu->state)
        log_info_about(cutover_about(cu), "migration %s: %s%s from %s to %s%s", cu->migration,
                       cu->back ? "rollback" : "cutover", cu->dry_run ? " rehearsal" : "",
                       s_steps[cu->state].name, s_steps[to].name, when ? when : "");
    cu->state = to;
    cu->tries = 0;
    for (size_t i = 0; i < cu->n_proxies; i++)
        cu->px[i].step_ok = false;
    free(cu->step_error);
    cu->step_error = NULL;
}

void cutover_goto(cutover_t *cu, kstate_t to)
{
    s_enter(cu, to, NULL);
    if (to == K_DONE || to == K_ABORTED) {
        s_end(cu);
        return;
    }
    if (cu->group && cutgroup_step(to)) {
        cutgroup_arrive(cu); /* with the others, or it waits for them */
        return;
    }
    s_run(cu);
}

void cutover_run(cutover_t *cu) { s_run(cu); }

/* cutover_goto, but the step is sent ms from now, by cutover_tick. */
static void s_goto_later(cutover_t *cu, kstate_t to, uint64_t ms)
{
    char when[48];
    snprintf(when, sizeof when, " (in %llu ms)", (unsigned long long)ms);
    s_enter(cu, to, when);
    cu->retry_at_mono = agentlink_mono_ms(cu->link) + ms;
}

static void s_abort(cutover_t *cu, const char *why)
{
    log_error_about(cutover_about(cu), "migration %s: %s aborted at %s: %s", cu->migration,
                    cu->back ? "rollback" : "cutover", s_steps[cu->state].name, why);
    cutreport_set(cu, "reason", cJSON_CreateString(why));
    cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
    cutjournal_write(cu, "aborting"); /* with the proxies to switch back */
    if (cu->group)
        cutgroup_abort(cu, why); /* the others too; they undo what they did */
    cutover_goto(cu, K_BACK);
}

void cutover_abort(cutover_t *cu, const char *why) { s_abort(cu, why); }

/* The abort's deadline passed with the current step's commands not all
 * confirmed: what did not answer is given up on and reported unknown, and
 * the abort goes on. */
static void s_give_up(cutover_t *cu)
{
    kstate_t st = cu->state;
    log_error_about(cutover_about(cu),
                    "migration %s: %s failed (%s) and the abort's %llu ms (cutover.abort_timeout) "
                    "are over: giving up on it", cu->migration, s_steps[st].name, cu->step_error,
                    (unsigned long long)cu->abort_timeout_ms);
    if (st == K_UNFREEZE) {
        free(cu->source_left);
        cu->source_left = xasprintf("unknown: the unfreeze was not confirmed (%s); a fence that "
                                    "is not permanent is lifted by the agent itself (its lease, "
                                    "or 30 s after it restarts)", cu->step_error);
        return;
    }
    if (st == K_REFENCE) {
        free(cu->target_left);
        cu->target_left = xasprintf("unknown: its fence, lifted by the %s step, could not "
                                    "be made again (%s); %s stays fenced",
                                    cu->physical || cu->mariadb ? "promote" : "sequences",
                                    cu->step_error, cu->from_backend);
        return;
    }
    for (size_t i = 0; i < cu->n_proxies; i++) {
        pxrec_t *x = &cu->px[i];
        if (x->unknown || x->step_ok)
            continue;
        if (st == K_SWITCH_RESUME)
            x->unknown = xasprintf("the switch to %s and its resume were sent and not confirmed "
                                   "(%s): traffic may flow to %s, or be held until the proxy's "
                                   "lease resumes it (%s stays fenced)", cu->to_backend,
                                   cu->step_error, cu->to_backend, cu->from_backend);
        else if (st == K_BACK && x->switch_sent)
            x->unknown = xasprintf("the switch back to %s was not confirmed (%s)",
                                   cu->from_backend, cu->step_error);
        else if (st == K_UNPAUSE && x->pause_sent && cu->holds[i])
            x->unknown = xasprintf("the resume was not confirmed (%s): if its agent runs, its "
                                   "lease (%llu ms) resumes it by itself", cu->step_error,
                                   (unsigned long long)cu->lease_ms);
        if (x->unknown)
            log_error_about(cutover_about(cu),
                            "migration %s: proxy %s of agent %s left in an unknown state: %s",
                            cu->migration, cu->proxies[i], cu->proxy_agents[i], x->unknown);
    }
}

/* Switch and resume in one command, one trip less in the write pause:
 * only with one proxy, which holds traffic (with two, a failed switch of
 * one must be undone on both before any resumes), and not after a restart
 * (which finishes the switch step by step). */
static bool s_one_holder(size_t n_proxies, bool first_holds)
{
    return n_proxies == 1 && first_holds;
}

static bool s_merge(const cutover_t *cu)
{
    /* Not in a group: no member resumes before every member switched. */
    return !cu->dry_run && !cu->forward_only && !cu->group &&
           s_one_holder(cu->n_proxies, cu->n_proxies > 0 && cu->holds[0]);
}

unsigned cutover_pause_trips(const plan_migration_t *m)
{
    size_t n = m->cutover.proxies.count;
    const plan_proxy_t *p = m->cutover.proxies.items;
    return s_one_holder(n, n > 0 && p[0].hold) ? 4 : 5;
}

/* Switch and resume sent and not known to have failed before the resume. */
bool cutover_resume_maybe(const cutover_t *cu)
{
    for (size_t i = 0; i < cu->n_proxies; i++)
        if (cu->px[i].resume_maybe)
            return true;
    return false;
}

/* A step's commands are all back. */
void cutover_step_over(cutover_t *cu)
{
    kstate_t st = cu->state;
    if (cu->step_error) {
        cutreport_timeline(cu, false, cu->step_error);
        if (st == K_CHECK) { /* nothing paused or fenced: refused */
            cu->refused = true;
            cutreport_set(cu, "reason", cJSON_CreateString(cu->step_error));
            log_error_about(cutover_about(cu), "migration %s: cutover refused: %s", cu->migration,
                            cu->step_error);
            if (cu->group)
                cutgroup_abort(cu, cu->step_error);
            cutover_goto(cu, K_ABORT_RESTORE);
            return;
        }
        if (s_steps[st].best_effort) {
            log_warn_about(cutover_about(cu), "migration %s: cutover step %s failed (%s); going on",
                           cu->migration, s_steps[st].name, cu->step_error);
            cutover_goto(cu, s_steps[st].next);
            return;
        }
        if (st == K_SWITCH_RESUME && cutover_resume_maybe(cu)) {
            /* Traffic may flow to `to` already: never back. Again until
             * the abort's deadline, then given up on. */
            if (!cu->abort_end_us)
                cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
            if (agentlink_mono_us(cu->link) + CU_RETRY_MS * 1000 > cu->abort_end_us) {
                s_give_up(cu);
                cutreport_set(cu, "reason", cJSON_CreateString(cu->step_error));
                cutover_goto(cu, s_steps[st].next);
                return;
            }
        } else if (s_steps[st].critical && !cu->forward_only) {
            char why[800];
            snprintf(why, sizeof why, "%s: %s", s_steps[st].name, cu->step_error);
            s_abort(cu, why);
            return;
        }
        if (s_steps[st].bounded && !s_steps[st].best_effort &&
            agentlink_mono_us(cu->link) + CU_RETRY_MS * 1000 > cu->abort_end_us) {
            s_give_up(cu);
            cutover_goto(cu, s_steps[st].next);
            return;
        }
        if (s_steps[st].tries && ++cu->tries >= s_steps[st].tries) {
            log_error_about(cutover_about(cu),
                            "migration %s: %s failed %u times (%s): no replication from %s to %s",
                            cu->migration, s_steps[st].name, cu->tries, cu->step_error,
                            cu->to_backend, cu->from_backend);
            char *why = xasprintf("%s: %s", s_steps[st].name, cu->step_error);
            cutreport_set(cu, "follow", cJSON_CreateString(why));
            free(why);
            cutover_goto(cu, K_DONE);
            return;
        }
        log_warn_about(cutover_about(cu),
                       "migration %s: cutover step %s failed (%s); again in %d ms", cu->migration,
                       s_steps[st].name, cu->step_error, CU_RETRY_MS);
        free(cu->step_error);
        cu->step_error = NULL;
        cu->retry_at_mono = agentlink_mono_ms(cu->link) + CU_RETRY_MS;
        return;
    }
    cutreport_timeline(cu, true, NULL);
    if (st == K_RESUME || st == K_DRY_RESUME || st == K_UNPAUSE || st == K_SWITCH_RESUME) {
        if (cu->pause_started_us) {
            cutreport_set(cu, "write_pause_ms",
                          cJSON_CreateNumber(cutreport_ms_since(cu, cu->pause_started_us)));
            cutreport_set(cu, "proxy_paused_ms", cJSON_CreateNumber(cu->proxy_paused_ms));
        }
    }
    kstate_t next = cu->dry_run ? s_steps[st].next_dry : s_steps[st].next;
    bool promotes = cu->physical || cu->mariadb; /* `to` is a standby or a replica */
    if (promotes && next == K_SEQUENCES)
        next = cu->dry_run ? K_DRY_UNFREEZE : K_PROMOTE; /* a rehearsal promotes nothing */
    if (cu->mariadb && st == K_ABORT_RESTORE && cu->refenced && !cu->to_was_fenced)
        next = K_UNFENCE_TO; /* `to` replicates again: its fence of the abort lifted */
    if (promotes && next == K_DROP_OLD) {
        /* `from` becomes a standby of `to` (the way back), or nothing */
        next = cu->follow ? K_REJOIN : K_DONE;
        if (!cu->follow)
            cutreport_set(cu, "follow", cJSON_CreateString("off"));
    }
    if (st == K_DROP_OLD_SLOT && !cu->follow) {
        cutreport_set(cu, "follow", cJSON_CreateString("off"));
        next = K_DONE;
    }
    if (st == K_FOLLOW || st == K_REJOIN)
        cutreport_set(cu, "follow", cJSON_CreateString("streaming"));
    if (next == K_SWITCH) {
        /* From here a restart finishes the switch. A group's members write
         * it together when the last reaches the switch (cutgroup.c). */
        if (!cu->group)
            cutjournal_write(cu, "switching");
        if (s_merge(cu))
            next = K_SWITCH_RESUME;
    }
    char point[64];
    snprintf(point, sizeof point, "cutover-after-%s", s_steps[st].name);
    cutover_failpoint(cu, point);
    if (next == K_DROP_OLD) {
        /* The application first (CUTOVER_SETTLE_MS): the step runs on a tick. */
        s_goto_later(cu, next, CUTOVER_SETTLE_MS);
        return;
    }
    cutover_goto(cu, next);
}

/* ---- running a step ----------------------------------------------------- */

/* The timeout of a command of the current step: what is left of the write
 * pause's budget for critical steps, else a fixed bound. 0: no time left. */
uint64_t cutover_timeout(const cutover_t *cu)
{
    if (s_steps[cu->state].bounded || (cu->state == K_SWITCH_RESUME && cu->abort_end_us)) {
        /* Within the abort's deadline; a step that begins after it (the
         * one before gave up) still gets a short try. */
        uint64_t now = agentlink_mono_us(cu->link);
        uint64_t left = now >= cu->abort_end_us ? 0 : (cu->abort_end_us - now + 999) / 1000;
        if (left < CU_ABORT_MIN_TRY_MS)
            left = CU_ABORT_MIN_TRY_MS;
        return left < CU_ABORT_TRY_MS ? left : CU_ABORT_TRY_MS;
    }
    if (cu->state == K_REJOIN && cu->physical)
        return CUTOVER_REJOIN_MS;
    if (!s_steps[cu->state].critical || cu->forward_only)
        return CUTOVER_CHECK_MS(cu->n_group_dbs);
    uint64_t now = agentlink_mono_us(cu->link);
    return now >= cu->budget_end_us ? 0 : (cu->budget_end_us - now + 999) / 1000;
}

static void s_run(cutover_t *cu)
{
    cu->step_started_us = agentlink_mono_us(cu->link);
    cu->retry_at_mono = 0;
    if (s_steps[cu->state].critical && !cu->forward_only && cu->pause_started_us &&
        cutover_timeout(cu) == 0) {
        s_abort(cu, "past max_write_pause");
        return;
    }
    s_steps[cu->state].send(cu);
}

/* ---- the interface ------------------------------------------------------ */

/* rc filled with copies of conn's peer and database. */
cutover_t *cutover_start(const agentlink_t *link, journal_t *j, const plan_migration_t *m, const char *objname,
                         const char *revname, bool back, bool dry_run, const cJSON *recover,
                         const cJSON *verify, cutover_done_cb done, void *arg)
{
    cutover_t *cu = xcalloc(1, sizeof *cu);
    cu->link = link;
    cu->journal = j;
    cu->migration = xstrdup(m->name);
    cu->back = back;
    const plan_side_t *from = back ? &m->target : &m->source, *to = back ? &m->source : &m->target;
    cu->from_agent = xstrdup(from->agent);
    cu->from_database = xstrdup(from->database);
    cu->to_agent = xstrdup(to->agent);
    cu->to_database = xstrdup(to->database);
    cu->from_backend = back ? "green" : "blue";
    cu->to_backend = back ? "blue" : "green";
    cu->sub_name = xstrdup(back ? revname : objname);
    cu->new_name = xstrdup(back ? objname : revname);
    /* Back, blue must follow green again: the migration goes on streaming. */
    cu->follow = back || !m->cutover.reverse_off;
    cu->physical = m->method == PLAN_METHOD_PHYSICAL;
    cu->mariadb = m->engine == PLAN_ENGINE_MARIADB;
    Godwit__ReplicationConn green_reads_blue = planwire_forward(m);
    Godwit__ReplicationConn blue_reads_green = planwire_reverse(m);
    planwire_conn_copy(&cu->to_reads_from, back ? &blue_reads_green : &green_reads_blue);
    planwire_conn_copy(&cu->from_reads_to, back ? &green_reads_blue : &blue_reads_green);
    planwire_tables_copy(&cu->tables, m);
    cu->n_app_roles = m->cutover.app_roles.count;
    cu->app_roles = xcalloc(cu->n_app_roles ? cu->n_app_roles : 1, sizeof *cu->app_roles);
    for (size_t i = 0; i < cu->n_app_roles; i++)
        cu->app_roles[i] = xstrdup(m->cutover.app_roles.items[i]);
    cu->n_proxies = m->cutover.proxies.count;
    cu->proxy_agents = xcalloc(cu->n_proxies ? cu->n_proxies : 1, sizeof *cu->proxy_agents);
    cu->proxies = xcalloc(cu->n_proxies ? cu->n_proxies : 1, sizeof *cu->proxies);
    cu->holds = xcalloc(cu->n_proxies ? cu->n_proxies : 1, sizeof *cu->holds);
    cu->px = xcalloc(cu->n_proxies ? cu->n_proxies : 1, sizeof *cu->px);
    for (size_t i = 0; i < cu->n_proxies; i++) {
        const plan_proxy_t *p = (const plan_proxy_t *)m->cutover.proxies.items + i;
        cu->proxy_agents[i] = xstrdup(p->agent);
        cu->proxies[i] = xstrdup(p->proxy);
        cu->holds[i] = p->hold;
    }
    cu->max_pause_ms = (uint64_t)m->cutover.max_write_pause_ms;
    cu->drain_ms = (uint64_t)m->cutover.drain_timeout_ms;
    cu->lease_ms = (uint64_t)m->cutover.lease_ms;
    cu->abort_timeout_ms = (uint64_t)(m->cutover.abort_timeout_ms ? m->cutover.abort_timeout_ms
                                                                  : 10000);
    cu->dry_run = dry_run;
    /* MariaDB: no final check (its fence reads no rows; mycheck's
     * verify compares chunks, not keys). */
    cu->checks = cu->mariadb ? NULL : finalcheck_questions_new(verify, &cu->n_checks);
    const char *fp = getenv("GODWIT_FAILPOINT");
    cu->failpoint = fp && fp[0] ? xstrdup(fp) : NULL;
    cu->done = done;
    cu->arg = arg;
    cu->started_us = agentlink_mono_us(cu->link);
    cutreport_start(cu);
    cutjournal_recover(cu, recover);
    /* The first step is sent on the next tick (cutover_tick): never from
     * inside this call. */
    cu->retry_at_mono = 1;
    return cu;
}

void cutover_tick(cutover_t *cu)
{
    if (cu && cu->inflight == 0 && cu->retry_at_mono && agentlink_mono_ms(cu->link) >= cu->retry_at_mono)
        s_run(cu);
}

const cJSON *cutover_report(const cutover_t *cu)
{
    return cu->report;
}

void cutover_cancel(cutover_t **cup)
{
    cutover_t *cu = *cup;
    if (!cu)
        return;
    *cup = NULL;
    cu->cancelled = true;
    if (cu->inflight == 0)
        cutover_free(cu);
}
