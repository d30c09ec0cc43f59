/*
 * cutover: see cutover.h. s_steps is the machine: each step sends its
 * commands (to several agents at once where it can), and moves on when all
 * of them came back. Nothing here blocks; the write pause is measured from
 * the first PAUSE sent to the last RESUME answered.
 */
#include "cutover.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finalcheck.h"
#include "log.h"
#include "planwire.h"
#include "lsn.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

#define CU_ABORT_STEP_TIMEOUT_MS 10000
#define CU_RETRY_MS 1000
#define CU_ABORT_MIN_TRY_MS 500 /* an abort step begun past the abort's deadline */
/* One try of an abort step: short enough that a command sent to an agent
 * that died before the coordinator noticed is tried again (and the agent,
 * back, reached) within cutover.abort_timeout. */
#define CU_ABORT_TRY_MS 3000

typedef enum {
    K_CHECK = 0,
    K_PAUSE,
    K_FREEZE,
    K_SEQUENCES,
    K_SWITCH,
    K_RESUME,
    K_DONE,
    K_BACK,
    K_UNFREEZE,
    K_UNPAUSE,
    K_ABORTED,
    K_DRY_UNFREEZE,
    K_DRY_RESUME,
    K_DRY_RESTORE,
    K_ABORT_RESTORE,
    K_DROP_OLD,
    K_DROP_OLD_SLOT,
    K_ADVANCE,
    K_FOLLOW,
    K_SWITCH_RESUME,
    K_REFENCE,
    K__COUNT
} kstate_t;

typedef struct cutover cutover_t;
typedef void (*send_fn)(cutover_t *cu);

/* What the cutover did to one proxy, for the abort (which undoes only what
 * was done) and the report (how each proxy was left). */
typedef struct {
    bool pause_sent;            /* PAUSE sent: it may hold traffic */
    bool switch_sent;           /* SWITCH to `to` sent: it may point there */
    bool switch_ok;             /* ... and the proxy confirmed it */
    bool step_ok;               /* its command of the current step was confirmed */
    bool resume_maybe;          /* switch and resume sent, not known to have failed before
                                   the resume: traffic may flow to `to` */
    char *unknown;              /* the abort gave up on it: why (owned), or NULL */
} pxrec_t;

/* A command in flight: which cutover, and which proxy (-1: not a proxy's). */
typedef struct {
    cutover_t *cu;
    int proxy;
} cmdctx_t;

static void s_send_check(cutover_t *cu);
static void s_send_fence(cutover_t *cu, const char *agent, const char *database,
                         Godwit__FreezeSource__Mode mode);
static void s_send_pause(cutover_t *cu);
static void s_send_freeze(cutover_t *cu);
static void s_send_sequences(cutover_t *cu);
static void s_send_switch_to(cutover_t *cu);
static void s_send_switch_back(cutover_t *cu);
static void s_send_resume(cutover_t *cu);
static void s_send_unfreeze(cutover_t *cu);
static void s_send_refence(cutover_t *cu);
static void s_send_restore(cutover_t *cu);
static void s_send_drop_old(cutover_t *cu);
static void s_send_drop_old_slot(cutover_t *cu);
static void s_send_advance(cutover_t *cu);
static void s_send_follow(cutover_t *cu);
static void s_final_check(cutover_t *cu, const char *agent, const Godwit__SetSequencesResult *r);

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
    send_fn send;
    kstate_t next, next_dry;
    bool critical, best_effort;
    unsigned tries;
    bool bounded;               /* an abort step: gives up at cutover.abort_timeout */
} s_steps[K__COUNT] = {
    { K_CHECK, "check roles", s_send_check, K_PAUSE, K_PAUSE, false, false, 0, false },
    { K_PAUSE, "pause", s_send_pause, K_FREEZE, K_FREEZE, true, false, 0, false },
    { K_FREEZE, "freeze", s_send_freeze, K_SEQUENCES, K_SEQUENCES, true, false, 0, false },
    { K_SEQUENCES, "sequences", s_send_sequences, K_SWITCH, K_DRY_UNFREEZE, true, false, 0,
      false },
    { K_SWITCH, "switch", s_send_switch_to, K_RESUME, K_RESUME, true, false, 0, false },
    { K_RESUME, "resume", s_send_resume, K_DROP_OLD, K_DONE, false, false, 0, false },
    { K_DONE, "done", NULL, K_DONE, K_DONE, false, false, 0, false },
    { K_BACK, "switch back", s_send_switch_back, K_REFENCE, K_REFENCE, false, false, 0, true },
    { K_UNFREEZE, "unfreeze", s_send_unfreeze, K_UNPAUSE, K_UNPAUSE, false, false, 0, true },
    { K_UNPAUSE, "resume on old side", s_send_resume, K_ABORT_RESTORE, K_ABORT_RESTORE, false,
      false, 0, true },
    { K_ABORTED, "aborted", NULL, K_ABORTED, K_ABORTED, false, false, 0, false },
    { K_DRY_UNFREEZE, "unfreeze", s_send_unfreeze, K_DRY_RESUME, K_DRY_RESUME, false, false, 0,
      false },
    { K_DRY_RESUME, "resume", s_send_resume, K_DRY_RESTORE, K_DRY_RESTORE, false, false, 0, false },
    { K_DRY_RESTORE, "restore apply", s_send_restore, K_DONE, K_DONE, false, true, 0, false },
    { K_ABORT_RESTORE, "restore apply", s_send_restore, K_ABORTED, K_ABORTED, false, true, 0,
      true },
    { K_DROP_OLD, "drop old subscription", s_send_drop_old, K_DROP_OLD_SLOT, K_DONE, false,
      false, CU_FOLLOW_TRIES, false },
    { K_DROP_OLD_SLOT, "drop old slot", s_send_drop_old_slot, K_ADVANCE, K_DONE, false, false,
      CU_FOLLOW_TRIES, false },
    { K_ADVANCE, "advance new slot", s_send_advance, K_FOLLOW, K_DONE, false, false,
      CU_FOLLOW_TRIES, false },
    { K_FOLLOW, "follow", s_send_follow, K_DONE, K_DONE, false, false, CU_FOLLOW_TRIES,
      false },
    { K_SWITCH_RESUME, "switch and resume", s_send_switch_to, K_DROP_OLD, K_DONE, true, false, 0,
      false },
    { K_REFENCE, "fence again", s_send_refence, K_UNFREEZE, K_UNFREEZE, false, false, 0, true },
};

struct cutover {
    const agentlink_t *link;
    journal_t *journal;
    char *migration;
    bool back;                  /* a rollback: from green to blue */
    /* from: the side traffic leaves (fenced); to: the side it goes to. */
    char *from_agent, *from_database, *to_agent, *to_database;
    const char *from_backend, *to_backend; /* "blue", "green" */
    char *sub_name;             /* our subscription on `to`, its slot on `from` */
    char *new_name;             /* after the switch: publication and slot on `to`,
                                   subscription on `from` */
    bool follow;                /* set up replication to -> from after the switch */
    Godwit__ReplicationConn to_reads_from, from_reads_to; /* strings owned */
    planwire_tables_t tables; /* the plan's, owned */
    char **app_roles;
    size_t n_app_roles;
    char **proxy_agents, **proxies;
    bool *holds;                /* per proxy: false, never paused nor resumed (plan's hold) */
    pxrec_t *px;                /* per proxy: what was sent to it and how it was left */
    size_t n_proxies;
    uint64_t max_pause_ms, drain_ms, lease_ms;
    uint64_t abort_timeout_ms;  /* the plan's cutover.abort_timeout */
    uint64_t abort_end_us;      /* an abort gives up on what it cannot reach then; 0: no abort */
    bool fence_sent;            /* FREEZE sent to `from` (or recovered: it may have been) */
    char *source_left;          /* the abort could not lift `from`'s fence: why (owned) */
    bool to_fenced;             /* our fence held `to` before the pause (PREPARE said so:
                                   a rollback's blue, green after a rollback) */
    bool to_lift_sent;          /* the sequences step lifted it (or recovered: may have) */
    char *target_left;          /* the abort could not fence `to` again: why (owned) */
    bool dry_run;
    bool forward_only;          /* recovered in "switching": never roll back */
    bool prepared;              /* the new slot was made before the pause */
    uint64_t switch_lsn;        /* `to`'s WAL position at the switch (0: unknown) */
    unsigned tries;             /* failures of the current step */
    kstate_t state;
    unsigned inflight;          /* commands of the current step not yet answered */
    char *step_error;           /* the first failure of the current step */
    uint64_t step_started_us, started_us, pause_started_us, budget_end_us;
    uint64_t retry_at_mono;
    bool cancelled;
    bool refused;               /* ended at the role check, nothing changed */
    Godwit__FreezeSourceResult *freeze; /* the source's answer to FREEZE, owned */
    Godwit__CheckRows **checks; /* the final check's questions (finalcheck.h), owned */
    size_t n_checks;
    cJSON *report;
    cJSON *step_detail;         /* what the agents said in the current step */
    double proxy_paused_ms;
    char *failpoint;            /* GODWIT_FAILPOINT at the start (tests only), or NULL */
    cutover_done_cb done;
    void *arg;
};

/* Tests kill the coordinator at exact points of the sequence: with
 * GODWIT_FAILPOINT=cutover-after-<step> ("pause", "freeze", "sequences",
 * "switch") it dies by SIGKILL once that step succeeded (and was journaled),
 * with cutover-during-switch once the first proxy switched and before the
 * others answered. Like a kill -9: nothing is cleaned up. The same points
 * with "stop-" after "cutover-" (cutover-stop-after-freeze) stop it with
 * SIGSTOP instead, as a VM freeze or a long pause would: after a SIGCONT it
 * goes on from there as if no time had passed. */
static void s_failpoint(const cutover_t *cu, const char *point)
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

/* ---- the report --------------------------------------------------------- */

static double s_ms_since(const cutover_t *cu, uint64_t us)
{
    return (double)(agentlink_mono_us(cu->link) - us) / 1000.0;
}

static void s_timeline(cutover_t *cu, bool ok, const char *detail)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "step", s_steps[cu->state].name);
    cJSON_AddNumberToObject(t, "at_ms", (double)(cu->step_started_us - cu->started_us) / 1000.0);
    cJSON_AddNumberToObject(t, "ms", s_ms_since(cu, cu->step_started_us));
    cJSON_AddBoolToObject(t, "ok", ok);
    if (detail)
        cJSON_AddStringToObject(t, "detail", detail);
    if (cu->step_detail) {
        cJSON_AddItemToObject(t, "agents", cu->step_detail);
        cu->step_detail = NULL;
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(cu->report, "timeline"), t);
}

static void s_set(cutover_t *cu, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItem(cu->report, key))
        cJSON_ReplaceItemInObject(cu->report, key, v);
    else
        cJSON_AddItemToObject(cu->report, key, v);
}

static void s_journal(cutover_t *cu, const char *state)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "state", state);
    cJSON_AddBoolToObject(j, "dry_run", cu->dry_run);
    cJSON_AddStringToObject(j, "direction", cu->back ? "back" : "forward");
    cJSON_AddNumberToObject(j, "at_ms", (double)agentlink_now_ms(cu->link));
    cJSON_AddBoolToObject(j, "to_fenced", cu->to_fenced);
    if (cu->switch_lsn) {
        char pos[32];
        cJSON_AddStringToObject(j, "switch_lsn", lsn_format(cu->switch_lsn, pos, sizeof pos));
    }
    /* The proxies sent the switch (they may point at `to`): what an abort,
     * also a restarted coordinator's, switches back. */
    cJSON *sw = cJSON_AddArrayToObject(j, "switched");
    for (size_t i = 0; i < cu->n_proxies; i++)
        if (cu->px[i].switch_sent)
            cJSON_AddItemToArray(sw, cJSON_CreateNumber((double)i));
    char *text = cJSON_PrintUnformatted(j);
    journal_event(cu->journal, cu->migration, cu->back ? "switched" : "streaming", "cutover",
                  text);
    free(text);
    cJSON_Delete(j);
}

/* ---- lifetime ----------------------------------------------------------- */

static void s_free(cutover_t *cu)
{
    free(cu->migration);
    free(cu->from_agent);
    free(cu->from_database);
    free(cu->to_agent);
    free(cu->to_database);
    free(cu->sub_name);
    free(cu->new_name);
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
    if (cu->freeze)
        godwit__freeze_source_result__free_unpacked(cu->freeze, NULL);
    finalcheck_free(cu->checks, cu->n_checks);
    cJSON_Delete(cu->report);
    cJSON_Delete(cu->step_detail);
    free(cu);
}

/* The end: journals the report, frees cu, hands the report to done. */
static void s_end(cutover_t *cu)
{
    bool switched = cu->state == K_DONE && !cu->dry_run;
    bool unknown = cu->source_left != NULL || cu->target_left != NULL;
    cJSON *pl = cJSON_CreateArray();
    for (size_t i = 0; i < cu->n_proxies; i++) {
        const pxrec_t *x = &cu->px[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "agent", cu->proxy_agents[i]);
        cJSON_AddStringToObject(o, "proxy", cu->proxies[i]);
        cJSON_AddBoolToObject(o, "switch_sent", x->switch_sent);
        cJSON_AddBoolToObject(o, "switch_confirmed", x->switch_ok);
        const char *left = x->unknown ? "unknown" : switched ? cu->to_backend : cu->from_backend;
        cJSON_AddStringToObject(o, "left", left);
        if (x->unknown) {
            cJSON_AddStringToObject(o, "why", x->unknown);
            unknown = true;
        }
        cJSON_AddItemToArray(pl, o);
    }
    s_set(cu, "proxies", pl);
    if (cu->source_left)
        s_set(cu, "source_left", cJSON_CreateString(cu->source_left));
    if (cu->target_left)
        s_set(cu, "target_left", cJSON_CreateString(cu->target_left));
    /* done, refused (the role check: nothing changed), rolled_back
     * (traffic on the old side, writable), unknown (aborted, and a proxy or
     * the old side's fence could not be brought back: see proxies). */
    const char *outcome = cu->state == K_DONE ? (unknown ? "unknown" : "done")
                          : cu->refused ? "refused" : unknown ? "unknown" : "rolled_back";
    s_set(cu, "outcome", cJSON_CreateString(outcome));
    s_set(cu, "state", cJSON_CreateString(cu->state == K_DONE ? "done" : "aborted"));
    s_set(cu, "finished_at_ms", cJSON_CreateNumber((double)agentlink_now_ms(cu->link)));
    char *text = cJSON_PrintUnformatted(cu->report);
    journal_event(cu->journal, cu->migration, cu->back ? "switched" : "streaming", "cutover",
                  text);
    free(text);
    /* null when nothing was paused, or the pause began before a restart */
    const cJSON *wp = cJSON_GetObjectItem(cu->report, "write_pause_ms");
    char pause[64] = "no write pause measured";
    if (cJSON_IsNumber(wp))
        snprintf(pause, sizeof pause, "write pause %.1f ms", cJSON_GetNumberValue(wp));
    log_info("migration %s: %s%s %s; %s", cu->migration, cu->back ? "rollback" : "cutover",
             cu->dry_run ? " rehearsal" : "", cu->state == K_DONE ? "done" : "aborted", pause);
    cutover_done_cb done = cu->done;
    void *arg = cu->arg;
    cJSON *report = cu->report;
    cu->report = NULL;
    bool cancelled = cu->cancelled;
    s_free(cu);
    if (!cancelled)
        done(report, switched, arg);
    else
        cJSON_Delete(report);
}

static void s_run(cutover_t *cu);

/* The one place the cutover changes state: logged as "from X to Y". */
static void s_goto(cutover_t *cu, kstate_t to)
{
    if (to != cu->state)
        log_info("migration %s: %s%s from %s to %s", cu->migration,
                 cu->back ? "rollback" : "cutover", cu->dry_run ? " rehearsal" : "",
                 s_steps[cu->state].name, s_steps[to].name);
    cu->state = to;
    cu->tries = 0;
    for (size_t i = 0; i < cu->n_proxies; i++)
        cu->px[i].step_ok = false;
    free(cu->step_error);
    cu->step_error = NULL;
    if (to == K_DONE || to == K_ABORTED) {
        s_end(cu);
        return;
    }
    s_run(cu);
}

static void s_abort(cutover_t *cu, const char *why)
{
    log_error("migration %s: %s aborted at %s: %s", cu->migration,
              cu->back ? "rollback" : "cutover", s_steps[cu->state].name, why);
    s_set(cu, "reason", cJSON_CreateString(why));
    cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
    s_journal(cu, "aborting"); /* with the proxies to switch back */
    s_goto(cu, K_BACK);
}

/* The abort's deadline passed with the current step's commands not all
 * confirmed: what did not answer is given up on and reported unknown, and
 * the abort goes on. */
static void s_give_up(cutover_t *cu)
{
    kstate_t st = cu->state;
    log_error("migration %s: %s failed (%s) and the abort's %llu ms (cutover.abort_timeout) are "
              "over: giving up on it", cu->migration, s_steps[st].name, cu->step_error,
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
        cu->target_left = xasprintf("unknown: its fence, lifted by the sequences step, could not "
                                    "be made again (%s); %s stays fenced", cu->step_error,
                                    cu->from_backend);
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
            log_error("migration %s: proxy %s of agent %s left in an unknown state: %s",
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
    return !cu->dry_run && !cu->forward_only &&
           s_one_holder(cu->n_proxies, cu->n_proxies > 0 && cu->holds[0]);
}

unsigned cutover_pause_trips(const plan_migration_t *m)
{
    size_t n = m->cutover.proxies.count;
    const plan_proxy_t *p = m->cutover.proxies.items;
    return s_one_holder(n, n > 0 && p[0].hold) ? 4 : 5;
}

/* Switch and resume sent and not known to have failed before the resume. */
static bool s_resume_maybe(const cutover_t *cu)
{
    for (size_t i = 0; i < cu->n_proxies; i++)
        if (cu->px[i].resume_maybe)
            return true;
    return false;
}

/* A step's commands are all back. */
static void s_step_over(cutover_t *cu)
{
    kstate_t st = cu->state;
    if (cu->step_error) {
        s_timeline(cu, false, cu->step_error);
        if (st == K_CHECK) { /* nothing paused or fenced: refused */
            cu->refused = true;
            s_set(cu, "reason", cJSON_CreateString(cu->step_error));
            log_error("migration %s: cutover refused: %s", cu->migration, cu->step_error);
            s_goto(cu, K_ABORT_RESTORE);
            return;
        }
        if (s_steps[st].best_effort) {
            log_warn("migration %s: cutover step %s failed (%s); going on", cu->migration,
                     s_steps[st].name, cu->step_error);
            s_goto(cu, s_steps[st].next);
            return;
        }
        if (st == K_SWITCH_RESUME && s_resume_maybe(cu)) {
            /* Traffic may flow to `to` already: never back. Again until
             * the abort's deadline, then given up on. */
            if (!cu->abort_end_us)
                cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
            if (agentlink_mono_us(cu->link) + CU_RETRY_MS * 1000 > cu->abort_end_us) {
                s_give_up(cu);
                s_set(cu, "reason", cJSON_CreateString(cu->step_error));
                s_goto(cu, s_steps[st].next);
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
            s_goto(cu, s_steps[st].next);
            return;
        }
        if (s_steps[st].tries && ++cu->tries >= s_steps[st].tries) {
            log_error("migration %s: %s failed %u times (%s): no replication from %s to %s",
                      cu->migration, s_steps[st].name, cu->tries, cu->step_error,
                      cu->to_backend, cu->from_backend);
            char *why = xasprintf("%s: %s", s_steps[st].name, cu->step_error);
            s_set(cu, "follow", cJSON_CreateString(why));
            free(why);
            s_goto(cu, K_DONE);
            return;
        }
        log_warn("migration %s: cutover step %s failed (%s); again in %d ms", cu->migration,
                 s_steps[st].name, cu->step_error, CU_RETRY_MS);
        free(cu->step_error);
        cu->step_error = NULL;
        cu->retry_at_mono = agentlink_mono_ms(cu->link) + CU_RETRY_MS;
        return;
    }
    s_timeline(cu, true, NULL);
    if (st == K_RESUME || st == K_DRY_RESUME || st == K_UNPAUSE || st == K_SWITCH_RESUME) {
        if (cu->pause_started_us) {
            s_set(cu, "write_pause_ms", cJSON_CreateNumber(s_ms_since(cu, cu->pause_started_us)));
            s_set(cu, "proxy_paused_ms", cJSON_CreateNumber(cu->proxy_paused_ms));
        }
    }
    kstate_t next = cu->dry_run ? s_steps[st].next_dry : s_steps[st].next;
    if (st == K_DROP_OLD_SLOT && !cu->follow) {
        s_set(cu, "follow", cJSON_CreateString("off"));
        next = K_DONE;
    }
    if (st == K_FOLLOW)
        s_set(cu, "follow", cJSON_CreateString("streaming"));
    if (next == K_SWITCH) {
        s_journal(cu, "switching"); /* from here a restart finishes the switch */
        if (s_merge(cu))
            next = K_SWITCH_RESUME;
    }
    char point[64];
    snprintf(point, sizeof point, "cutover-after-%s", s_steps[st].name);
    s_failpoint(cu, point);
    s_goto(cu, next);
}

/* The step's first failure: "agent: why". */
static void s_fail(cutover_t *cu, const char *agent, const char *why)
{
    if (cu->step_error)
        return;
    cu->step_error = xasprintf("%s: %s", agent, why);
}

static void s_detail(cutover_t *cu, const char *agent, const char *what, cJSON *extra)
{
    if (!cu->step_detail)
        cu->step_detail = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "agent", agent);
    cJSON_AddStringToObject(o, "what", what);
    if (extra)
        cJSON_AddItemToObject(o, "steps", extra);
    cJSON_AddItemToArray(cu->step_detail, o);
}

static cJSON *s_timed(Godwit__TimedStep **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", v[i]->name);
        cJSON_AddNumberToObject(o, "ms", v[i]->ms);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* ---- results ------------------------------------------------------------ */

static void s_on_result(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    cmdctx_t *ctx = arg;
    cutover_t *cu = ctx->cu;
    int proxy = ctx->proxy;
    free(ctx);
    cu->inflight--;
    bool ok = r && r->status == GODWIT__STATUS__STATUS_OK;
    if (ok && proxy >= 0 && !cu->cancelled) {
        cu->px[proxy].step_ok = true;
        if (cu->state == K_SWITCH || cu->state == K_SWITCH_RESUME)
            cu->px[proxy].switch_ok = true;
    }
    if (!ok && proxy >= 0 && cu->state == K_SWITCH_RESUME &&
        (!r || (r->payload_case == GODWIT__RESULT__PAYLOAD_PROXY && r->proxy->resume_sent)))
        cu->px[proxy].resume_maybe = true; /* no answer, or the resume itself failed */
    if (!ok) {
        const char *why = r ? (r->message && r->message[0] ? r->message : "failed") : error;
        s_fail(cu, agent, why);
        s_detail(cu, agent, why, NULL);
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_PROXY) {
        const Godwit__ProxyState *p = r->proxy;
        cJSON *steps = cJSON_CreateArray();
        for (size_t i = 0; i < p->n_steps; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", p->steps[i]->name);
            cJSON_AddNumberToObject(o, "ms", (double)p->steps[i]->ms);
            cJSON_AddItemToArray(steps, o);
        }
        char what[200];
        snprintf(what, sizeof what, "proxy %s: %s%s%s", p->proxy, p->backend[0] ? p->backend : "?",
                 p->paused ? ", paused" : "", p->already ? " (already)" : "");
        s_detail(cu, agent, what, steps);
        if ((double)p->paused_ms > cu->proxy_paused_ms)
            cu->proxy_paused_ms = (double)p->paused_ms;
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_FREEZE_SOURCE) {
        const Godwit__FreezeSourceResult *f = r->freeze_source;
        char what[200], pos[32];
        if (cu->state == K_CHECK && strcmp(agent, cu->to_agent) == 0 && f->fenced)
            cu->to_fenced = true;
        if (cu->state == K_CHECK)
            snprintf(what, sizeof what, "connection kept for the pause%s",
                     f->fenced ? " (fenced)" : "");
        else if (cu->state == K_REFENCE)
            snprintf(what, sizeof what, "fenced again, for good");
        else
            snprintf(what, sizeof what, "%s%s", f->final_lsn ? "final LSN " : "fence",
                     f->final_lsn ? lsn_format(f->final_lsn, pos, sizeof pos)
                                  : (f->already ? " (already)" : ""));
        s_detail(cu, agent, what, s_timed(f->steps, f->n_steps));
        if (cu->state == K_FREEZE) {
            /* keep the sequences and the final LSN for the next step */
            if (cu->freeze)
                godwit__freeze_source_result__free_unpacked(cu->freeze, NULL);
            cu->freeze = wire_copy(f);
            s_set(cu, "final_lsn", cJSON_CreateString(lsn_format(f->final_lsn, pos, sizeof pos)));
            s_set(cu, "sessions_terminated", cJSON_CreateNumber(f->terminated));
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_VERIFY_ROLES) {
        const Godwit__VerifySchemaResult *v = r->verify_roles;
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < v->n_findings; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "object", v->findings[i]->object);
            cJSON_AddStringToObject(o, "problem", v->findings[i]->problem);
            cJSON_AddStringToObject(o, "statement", v->findings[i]->statement);
            cJSON_AddItemToArray(list, o);
        }
        s_set(cu, "role_findings", list);
        char what[64];
        snprintf(what, sizeof what, "%zu roles checked, %zu findings", (size_t)v->tables,
                 v->n_findings);
        s_detail(cu, agent, what, NULL);
        if (v->n_findings) {
            char *why = xasprintf("the application roles cannot work on green as on blue (%zu "
                                  "findings, first: %s; run: %s)", v->n_findings,
                                  v->findings[0]->problem, v->findings[0]->statement);
            s_fail(cu, agent, why);
            free(why);
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_SET_SEQUENCES) {
        char what[64];
        snprintf(what, sizeof what, "%u sequences set", r->set_sequences->set);
        s_detail(cu, agent, what, s_timed(r->set_sequences->steps, r->set_sequences->n_steps));
        s_set(cu, "sequences", cJSON_CreateNumber(r->set_sequences->set));
        s_final_check(cu, agent, r->set_sequences);
        if (!cu->dry_run && r->set_sequences->lsn) {
            char pos[32];
            cu->switch_lsn = r->set_sequences->lsn;
            s_set(cu, "switch_lsn", cJSON_CreateString(lsn_format(cu->switch_lsn, pos,
                                                                   sizeof pos)));
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_ENSURE_SLOT) {
        char what[96], pos[32];
        snprintf(what, sizeof what, "slot %s %s at %s", cu->new_name,
                 r->ensure_slot->created ? "created" : "found",
                 lsn_format(r->ensure_slot->confirmed_lsn, pos, sizeof pos));
        s_detail(cu, agent, what, NULL);
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD__NOT_SET) {
        s_detail(cu, agent, "done", NULL);
    } else {
        s_fail(cu, agent, "unexpected answer");
    }
    if (cu->state == K_SWITCH && cu->inflight > 0 && !cu->step_error)
        s_failpoint(cu, "cutover-during-switch");
    if (cu->inflight == 0) {
        if (cu->cancelled) {
            s_free(cu);
            return;
        }
        s_step_over(cu);
    }
}

/* The final check (finalcheck.h): `from`'s rows, read with FREEZE, against
 * `to`'s, read with the sequences; a difference fails the step (the
 * cutover aborts) naming the key. */
static void s_final_check(cutover_t *cu, const char *agent, const Godwit__SetSequencesResult *r)
{
    if (!cu->n_checks)
        return;
    size_t diffs = 0;
    cJSON *rep = finalcheck_compare(cu->checks, cu->n_checks,
                                    cu->freeze ? cu->freeze->checked : NULL,
                                    cu->freeze ? cu->freeze->n_checked : 0, r->checked,
                                    r->n_checked, &diffs);
    char *sum = finalcheck_summary(rep);
    if (diffs) {
        char *why = xasprintf("the final check found %zu difference%s: %s", diffs,
                              diffs == 1 ? "" : "s", sum);
        log_error("migration %s: %s", cu->migration, why);
        s_fail(cu, agent, why);
        free(why);
    } else {
        log_info("migration %s: final check: %.0f keys of %zu tables read on both sides, equal",
                 cu->migration, cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "keys")),
                 cu->n_checks);
    }
    free(sum);
    s_set(cu, "final_check", rep);
}

/* ---- sending ------------------------------------------------------------ */

/* The timeout of a command of the current step: what is left of the write
 * pause's budget for critical steps, else a fixed bound. 0: no time left. */
static uint64_t s_timeout(const cutover_t *cu)
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
    if (!s_steps[cu->state].critical || cu->forward_only)
        return CU_ABORT_STEP_TIMEOUT_MS;
    uint64_t now = agentlink_mono_us(cu->link);
    return now >= cu->budget_end_us ? 0 : (cu->budget_end_us - now + 999) / 1000;
}

/* proxy: the index of the proxy the command is for, -1 if none. */
static void s_send_to(cutover_t *cu, const char *agent, Godwit__Command *cmd, int proxy)
{
    cmdctx_t *ctx = xmalloc(sizeof *ctx); /* freed by s_on_result */
    ctx->cu = cu;
    ctx->proxy = proxy;
    cu->inflight++;
    agentlink_send(cu->link, agent, cmd, s_timeout(cu), s_on_result, ctx);
}

static void s_send(cutover_t *cu, const char *agent, Godwit__Command *cmd)
{
    s_send_to(cu, agent, cmd, -1);
}

/* Sends op to every proxy, except PAUSE and RESUME to a proxy that cannot
 * hold traffic (hold: false): the freeze alone stops writes through it. A
 * step where every proxy was skipped has nothing in flight, so no result
 * will end it: it is over here, at once. Callers send nothing after this
 * (cu may be gone when it returns). */
static void s_send_proxies(cutover_t *cu, Godwit__ProxyAction__Op op, const char *backend)
{
    bool abort = s_steps[cu->state].bounded;
    if ((cu->state == K_SWITCH || (cu->state == K_SWITCH_RESUME && !s_resume_maybe(cu))) &&
        !cu->forward_only) {
        /* All or none: a switch sent to some only would have to be undone. */
        for (size_t i = 0; i < cu->n_proxies; i++) {
            if (!agentlink_role(cu->link, cu->proxy_agents[i])) {
                s_fail(cu, cu->proxy_agents[i], "not connected: no proxy was sent the switch");
                s_detail(cu, cu->proxy_agents[i], "not connected", NULL);
                s_step_over(cu);
                return;
            }
        }
    }
    for (size_t i = 0; i < cu->n_proxies; i++) {
        pxrec_t *x = &cu->px[i];
        if (!cu->holds[i] && (op == GODWIT__PROXY_ACTION__OP__OP_PAUSE ||
                              op == GODWIT__PROXY_ACTION__OP__OP_RESUME)) {
            if (cu->tries == 0) {
                char what[300];
                snprintf(what, sizeof what, "proxy %s: skipped (hold: false)", cu->proxies[i]);
                s_detail(cu, cu->proxy_agents[i], what, NULL);
            }
            continue;
        }
        if (abort) {
            /* Undo only what was done, once confirmed; never again what
             * was given up on. */
            bool needed = op == GODWIT__PROXY_ACTION__OP__OP_SWITCH ? x->switch_sent
                                                                    : x->pause_sent;
            if (x->step_ok || x->unknown)
                continue;
            if (!needed) {
                if (cu->tries == 0) {
                    char what[300];
                    snprintf(what, sizeof what, "proxy %s: skipped (never %s)", cu->proxies[i],
                             op == GODWIT__PROXY_ACTION__OP__OP_SWITCH ? "switched" : "paused");
                    s_detail(cu, cu->proxy_agents[i], what, NULL);
                }
                continue;
            }
        }
        if (op == GODWIT__PROXY_ACTION__OP__OP_PAUSE)
            x->pause_sent = true;
        if (op == GODWIT__PROXY_ACTION__OP__OP_SWITCH && !abort)
            x->switch_sent = true;
        Godwit__ProxyAction pa = GODWIT__PROXY_ACTION__INIT;
        pa.proxy = cu->proxies[i];
        pa.op = op;
        pa.backend = (char *)(backend ? backend : "");
        pa.lease_ms = cu->lease_ms;
        pa.pause_timeout_ms = cu->drain_ms;
        pa.then_resume = cu->state == K_SWITCH_RESUME;
        Godwit__Command cmd = GODWIT__COMMAND__INIT;
        cmd.action_case = GODWIT__COMMAND__ACTION_PROXY_ACTION;
        cmd.proxy_action = &pa;
        s_send_to(cu, cu->proxy_agents[i], &cmd, (int)i);
    }
    if (cu->inflight == 0)
        s_step_over(cu);
}

/* Our subscription's commits synchronous (on) or not: with them flushed at
 * once, the freeze sees its final LSN confirmed in milliseconds. */
static void s_send_tune(cutover_t *cu, bool on)
{
    Godwit__TuneSubscription ts = GODWIT__TUNE_SUBSCRIPTION__INIT;
    ts.database = cu->to_database;
    ts.name = cu->sub_name;
    ts.synchronous_commit = on;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION;
    cmd.tune_subscription = &ts;
    s_send(cu, cu->to_agent, &cmd);
}

/* `to`'s publication and slot new_name; advance_to 0: made (before the
 * pause), else moved to the switch position (after it). */
static void s_send_ensure_slot(cutover_t *cu, uint64_t advance_to)
{
    Godwit__EnsureSlot es = GODWIT__ENSURE_SLOT__INIT;
    es.database = cu->to_database;
    es.name = cu->new_name;
    es.n_tables = cu->tables.n;
    es.tables = cu->tables.ptrs;
    es.advance_to = advance_to;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_ENSURE_SLOT;
    cmd.ensure_slot = &es;
    s_send(cu, cu->to_agent, &cmd);
}

static void s_send_drop(cutover_t *cu, const char *agent, const char *database,
                        const char *subscription, const char *slot)
{
    Godwit__DropObjects d = GODWIT__DROP_OBJECTS__INIT;
    d.database = (char *)database;
    d.subscription = (char *)(subscription ? subscription : "");
    d.publication = (char *)"";
    d.slot = (char *)(slot ? slot : "");
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_DROP_OBJECTS;
    cmd.drop_objects = &d;
    s_send(cu, agent, &cmd);
}

/* Before the pause: can the application roles work on `to`? Our
 * subscription's commits made synchronous; unless rehearsing, the slot for
 * the other direction made now, outside the pause (creating a slot waits
 * for the running transactions). */
static void s_send_check(cutover_t *cu)
{
    /* The pause's journal writes should not be the ones that run an
     * automatic checkpoint, which syncs the database file as well (the
     * write before the PAUSE took 40-80 ms at times under load). */
    journal_checkpoint(cu->journal);
    Godwit__VerifyRoles vr = GODWIT__VERIFY_ROLES__INIT;
    vr.database = cu->to_database;
    vr.source = &cu->to_reads_from;
    vr.n_roles = cu->n_app_roles;
    vr.roles = cu->app_roles;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_VERIFY_ROLES;
    cmd.verify_roles = &vr;
    s_send(cu, cu->to_agent, &cmd);
    s_send_tune(cu, true);
    if (cu->follow && !cu->dry_run)
        s_send_ensure_slot(cu, 0);
    /* Both sides open now the connections the pause's steps will use;
     * `to` two, since its sequences and the lift of its fence run at once. */
    s_send_fence(cu, cu->from_agent, cu->from_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
    s_send_fence(cu, cu->to_agent, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
    s_send_fence(cu, cu->to_agent, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
}

/* After a rehearsal or an abort: our subscription's asynchronous commits
 * back (see TuneSubscription in the protocol), and the slot made for the
 * other direction dropped (it would keep `to`'s WAL). */
static void s_send_restore(cutover_t *cu)
{
    s_send_tune(cu, false);
    if (cu->follow && !cu->dry_run)
        s_send_drop(cu, cu->to_agent, cu->to_database, NULL, cu->new_name);
}

static void s_send_pause(cutover_t *cu)
{
    s_journal(cu, "started"); /* from here a restart rolls back */
    cu->pause_started_us = agentlink_mono_us(cu->link);
    cu->budget_end_us = cu->pause_started_us + cu->max_pause_ms * 1000;
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_PAUSE, NULL);
}

/* Also the one proxy's switch and resume (K_SWITCH_RESUME: s_send_proxies
 * sets then_resume by the state). */
static void s_send_switch_to(cutover_t *cu)
{
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_SWITCH, cu->to_backend);
}

static void s_send_switch_back(cutover_t *cu)
{
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_SWITCH, cu->from_backend);
}

static void s_send_resume(cutover_t *cu)
{
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_RESUME, NULL);
}

/* The FreezeSource of mode for database (cu's roles and checks borrowed). */
static Godwit__FreezeSource s_fence_req(const cutover_t *cu, const char *database,
                                        Godwit__FreezeSource__Mode mode)
{
    Godwit__FreezeSource fs = GODWIT__FREEZE_SOURCE__INIT;
    fs.database = (char *)database;
    fs.mode = mode;
    fs.n_app_roles = cu->n_app_roles;
    fs.app_roles = cu->app_roles;
    fs.drain_timeout_ms = cu->drain_ms;
    /* Half the proxies' lease: left alone, the fence is lifted before the
     * proxies resume by themselves, so they never resume into a side that
     * refuses the application's logins (PgBouncer would then refuse its
     * clients for server_login_retry). */
    fs.lease_ms = cu->lease_ms / 2;
    if (mode == GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE ||
        mode == GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE) {
        fs.check = cu->checks;
        fs.n_check = cu->n_checks;
    }
    return fs;
}

static void s_send_fence_req(cutover_t *cu, const char *agent, Godwit__FreezeSource *fs)
{
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_FREEZE_SOURCE;
    cmd.freeze_source = fs;
    s_send(cu, agent, &cmd);
}

static void s_send_fence(cutover_t *cu, const char *agent, const char *database,
                         Godwit__FreezeSource__Mode mode)
{
    Godwit__FreezeSource fs = s_fence_req(cu, database, mode);
    s_send_fence_req(cu, agent, &fs);
}

static void s_send_freeze(cutover_t *cu)
{
    cu->fence_sent = true;
    s_send_fence(cu, cu->from_agent, cu->from_database, GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE);
}

static void s_send_unfreeze(cutover_t *cu)
{
    if (cu->state == K_UNFREEZE && cu->target_left) {
        /* Never two writable sides: `to` may be writable. */
        free(cu->source_left);
        cu->source_left = xasprintf("fenced: not lifted, since %s may be writable (%s)",
                                    cu->to_backend, cu->target_left);
        log_error("migration %s: %s stays fenced: %s", cu->migration, cu->from_backend,
                  cu->source_left);
        s_detail(cu, cu->from_agent, cu->source_left, NULL);
        s_step_over(cu);
        return;
    }
    if (cu->state == K_UNFREEZE) {
        /* Never two writable sides: while a proxy that was sent the switch
         * may still point at `to`, `from` stays fenced. */
        for (size_t i = 0; i < cu->n_proxies; i++) {
            if (cu->px[i].switch_sent && cu->px[i].unknown) {
                free(cu->source_left);
                cu->source_left = xasprintf("fenced: not lifted, since proxy %s of agent %s "
                                            "may point at %s", cu->proxies[i],
                                            cu->proxy_agents[i], cu->to_backend);
                log_error("migration %s: %s stays fenced: proxy %s of agent %s may point at %s",
                          cu->migration, cu->from_backend, cu->proxies[i], cu->proxy_agents[i],
                          cu->to_backend);
                s_detail(cu, cu->from_agent, cu->source_left, NULL);
                s_step_over(cu);
                return;
            }
        }
        if (!cu->fence_sent) {
            s_detail(cu, cu->from_agent, "skipped (never fenced)", NULL);
            s_step_over(cu);
            return;
        }
        /* Every proxy sent the switch is back: from here a restarted
         * coordinator rolls back, whatever the time (`from` may be
         * writable again). */
        for (size_t i = 0; cu->tries == 0 && i < cu->n_proxies; i++) {
            if (cu->px[i].switch_sent) {
                s_journal(cu, "unfreezing");
                break;
            }
        }
    }
    s_send_fence(cu, cu->from_agent, cu->from_database,
                 GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE);
}

/* An abort after the sequences step lifted our fence on `to` (a rollback's
 * blue, green after a rollback): `to` fenced again, for good, before
 * `from`'s fence is lifted: never two writable sides. Nothing to do when
 * `to` was not fenced before the pause or the lift was never sent. */
static void s_send_refence(cutover_t *cu)
{
    if (!cu->to_fenced || !cu->to_lift_sent) {
        s_detail(cu, cu->to_agent, "skipped (its fence was not lifted)", NULL);
        s_step_over(cu);
        return;
    }
    Godwit__FreezeSource fs =
        s_fence_req(cu, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE);
    fs.permanent = true; /* for good at once: no lease, no rows to read */
    fs.lease_ms = 0;
    fs.check = NULL;
    fs.n_check = 0;
    s_send_fence_req(cu, cu->to_agent, &fs);
}

/* `to`'s sequences, once it has received `from`'s stream up to the final
 * LSN (it waits for that itself), and its WAL position, where the other
 * direction starts; at once, unless rehearsing, the fence on `from` made permanent
 * and our fence on `to` lifted, if it has one (a rollback's blue, or green
 * after a rollback): `from` can never become writable by itself once a
 * proxy may point at `to`, and `to` takes logins before traffic arrives. */
static void s_send_sequences(cutover_t *cu)
{
    Godwit__SetSequences ss = GODWIT__SET_SEQUENCES__INIT;
    ss.database = cu->to_database;
    if (cu->freeze) {
        ss.n_sequences = cu->freeze->n_sequences;
        ss.sequences = cu->freeze->sequences;
        /* `to` waits for the final LSN itself: no trip back to `from`. */
        ss.final_lsn = cu->freeze->final_lsn;
        ss.subscription = cu->sub_name;
        uint64_t left = s_timeout(cu);
        ss.wait_timeout_ms = left > 50 ? left - 50 : left;
        /* The final check: only against what `from` answered (a FREEZE
         * recovered from the journal has no rows). */
        if (cu->freeze->n_checked == cu->n_checks) {
            ss.check = cu->checks;
            ss.n_check = cu->n_checks;
        }
    }
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_SET_SEQUENCES;
    cmd.set_sequences = &ss;
    s_send(cu, cu->to_agent, &cmd);
    if (!cu->dry_run) {
        s_send_fence(cu, cu->from_agent, cu->from_database,
                     GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP);
        s_send_fence(cu, cu->to_agent, cu->to_database,
                     GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE);
        cu->to_lift_sent = true;
    }
}

/* ---- after the switch: `from` follows `to` ------------------------------
 * Without origin filtering (PostgreSQL 16's origin = none), changes would
 * go round in a loop if both subscriptions lived at once, so the old one is
 * dropped first (its slot with it, or by itself if the subscription could
 * not reach it); the slot made before the pause is moved to the switch
 * position, past what `to` had replicated in; then `from` subscribes to it
 * without copying. */

static void s_send_drop_old(cutover_t *cu)
{
    s_send_drop(cu, cu->to_agent, cu->to_database, cu->sub_name, NULL);
}

static void s_send_drop_old_slot(cutover_t *cu)
{
    s_send_drop(cu, cu->from_agent, cu->from_database, NULL, cu->sub_name);
}

static void s_send_advance(cutover_t *cu)
{
    if (!cu->switch_lsn) {
        log_error("migration %s: the switch position is not known (a journal from an older "
                  "build): %s does not follow %s", cu->migration, cu->from_backend,
                  cu->to_backend);
        s_set(cu, "follow", cJSON_CreateString("the switch position is not known"));
        s_goto(cu, K_DONE);
        return;
    }
    s_send_ensure_slot(cu, cu->switch_lsn);
}

static void s_send_follow(cutover_t *cu)
{
    Godwit__EnsureSubscription es = GODWIT__ENSURE_SUBSCRIPTION__INIT;
    es.database = cu->from_database;
    es.name = cu->new_name;
    es.source = &cu->from_reads_to;
    es.publication = cu->new_name;
    es.attach = true;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_ENSURE_SUBSCRIPTION;
    cmd.ensure_subscription = &es;
    s_send(cu, cu->from_agent, &cmd);
}

static void s_run(cutover_t *cu)
{
    cu->step_started_us = agentlink_mono_us(cu->link);
    cu->retry_at_mono = 0;
    if (s_steps[cu->state].critical && !cu->forward_only && cu->pause_started_us &&
        s_timeout(cu) == 0) {
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
    cu->checks = finalcheck_questions_new(verify, &cu->n_checks);
    const char *fp = getenv("GODWIT_FAILPOINT");
    cu->failpoint = fp && fp[0] ? xstrdup(fp) : NULL;
    cu->done = done;
    cu->arg = arg;
    cu->started_us = agentlink_mono_us(cu->link);
    cu->report = cJSON_CreateObject();
    cJSON_AddStringToObject(cu->report, "state", "running");
    cJSON_AddBoolToObject(cu->report, "dry_run", dry_run);
    cJSON_AddStringToObject(cu->report, "direction", back ? "back" : "forward");
    cJSON_AddStringToObject(cu->report, "to", cu->to_backend);
    cJSON_AddNumberToObject(cu->report, "started_at_ms", (double)agentlink_now_ms(cu->link));
    cJSON_AddNullToObject(cu->report, "finished_at_ms");
    cJSON_AddNullToObject(cu->report, "reason");
    cJSON_AddNullToObject(cu->report, "write_pause_ms");
    cJSON_AddArrayToObject(cu->report, "timeline");
    const char *rstate = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "state"))
                                 : NULL;
    const char *rlsn = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "switch_lsn"))
                               : NULL;
    if (rlsn && !lsn_parse(rlsn, &cu->switch_lsn))
        cu->switch_lsn = 0;
    if (recover && !rstate)
        rstate = "started";
    /* The proxies the journal says were sent the switch ("started": none;
     * an older journal without the list: all may have been). */
    bool any_switched = false;
    if (rstate) {
        const cJSON *sw, *sl = cJSON_GetObjectItem(recover, "switched");
        if (!cJSON_IsArray(sl) && strcmp(rstate, "started") != 0) {
            for (size_t i = 0; i < cu->n_proxies; i++)
                cu->px[i].switch_sent = true;
        }
        cJSON_ArrayForEach(sw, sl)
        {
            if (cJSON_IsNumber(sw) && sw->valuedouble >= 0 &&
                (size_t)sw->valuedouble < cu->n_proxies)
                cu->px[(size_t)sw->valuedouble].switch_sent = true;
        }
        for (size_t i = 0; i < cu->n_proxies; i++)
            any_switched = any_switched || cu->px[i].switch_sent;
    }
    /* Stopped while aborting with proxies switched (blue fenced for good,
     * green has every transaction): rolling back is safe only while no
     * switched proxy's lease (renewed by the switch, at most
     * max_write_pause before "aborting") can have run out and resumed
     * traffic on green; later, the switch is finished instead. */
    const cJSON *rat = recover ? cJSON_GetObjectItem(recover, "at_ms") : NULL;
    bool stale = !cJSON_IsNumber(rat) ||
                 (double)agentlink_now_ms(cu->link) - rat->valuedouble + (double)cu->max_pause_ms >=
                     (double)cu->lease_ms;
    bool forward = rstate && (strcmp(rstate, "switching") == 0 ||
                              (strcmp(rstate, "aborting") == 0 && any_switched && stale));
    if (forward) {
        log_warn("migration %s: the coordinator stopped while %s the proxies; finishing the "
                 "switch", cu->migration, strcmp(rstate, "switching") == 0
                                              ? "switching"
                                              : "switching back (longer than a lease ago)");
        s_set(cu, "recovered_from", cJSON_CreateString(rstate));
        cu->forward_only = true;
        cu->state = K_SWITCH;
    } else if (rstate) {
        log_warn("migration %s: the coordinator stopped during the cutover (%s); rolling back",
                 cu->migration, rstate);
        s_set(cu, "recovered_from", cJSON_CreateString(rstate));
        s_set(cu, "reason", cJSON_CreateString("the coordinator restarted during the cutover"));
        /* Any proxy may have been paused and the fence sent; only those the
         * journal names were sent the switch. */
        cu->fence_sent = true;
        for (size_t i = 0; i < cu->n_proxies; i++)
            cu->px[i].pause_sent = true;
        /* and the sequences step may have lifted `to`'s fence */
        cu->to_fenced = cJSON_IsTrue(cJSON_GetObjectItem(recover, "to_fenced"));
        cu->to_lift_sent = cu->to_fenced;
        cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
        cu->state = K_BACK;
    } else {
        cu->state = K_CHECK;
    }
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
        s_free(cu);
}
