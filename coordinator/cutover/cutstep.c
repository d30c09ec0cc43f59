/*
 * cutstep: see cutstep.h. Every command goes through s_send_to, which
 * counts it in flight; s_on_result counts it back.
 */
#include "cutstep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutgroup.h"
#include "cutjournal.h"
#include "cutreport.h"
#include "finalcheck.h"
#include "log.h"
#include "lsn.h"
#include "wire.h"
#include "xalloc.h"

/* A command in flight: which cutover, and which proxy (-1: not a proxy's). */
typedef struct {
    cutover_t *cu;
    int proxy;
} cmdctx_t;

static void s_send_fence(cutover_t *cu, const char *agent, const char *database,
                         Godwit__FreezeSource__Mode mode);
static Godwit__FreezeSource s_fence_req(const cutover_t *cu, const char *database,
                                        Godwit__FreezeSource__Mode mode);
static void s_send_fence_req(cutover_t *cu, const char *agent, Godwit__FreezeSource *fs);
static void s_final_check(cutover_t *cu);

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

/* What an abort must know of the promote: answered with a position, or
 * FAILED saying the promotion was (or may have been) asked for, `to` is a
 * primary whose roles may log in, fenced again for good before `from` is
 * unfenced (K_REFENCE); FAILED otherwise (the final position was not
 * replayed in time), it is still a standby, which accepts no writes; not
 * answered, it is unknown, and `from` stays fenced (never two writable
 * sides). */
static void s_promote_answered(cutover_t *cu, const Godwit__Result *r, const char *error)
{
    /* MariaDB: a position once writable, or FAILED after the wait (our
     * connection stopped, the fence lifted or the server made writable
     * may have been done): `to` may take writes. */
    bool writable = r && r->payload_case == GODWIT__RESULT__PAYLOAD_PROMOTE &&
                    (r->promote->promote_requested ||
                     (cu->mariadb ? r->promote->promoted_gtid && r->promote->promoted_gtid[0]
                                  : r->promote->promoted_lsn != 0));
    if (writable) {
        cu->to_fenced = true;
        cu->to_lift_sent = true;
    } else if (!r) {
        free(cu->target_left);
        cu->target_left = xasprintf("unknown: the promote was sent and not answered (%s); %s "
                                    "may be a primary now", error ? error : "no answer",
                                    cu->to_backend);
    }
}

/* MariaDB: what the abort could not give `to` back (its replication, or
 * the lift of the fence it made there): the report's "target_left". */
static void s_target_left(cutover_t *cu, const char *why)
{
    free(cu->target_left);
    cu->target_left = cu->state == K_UNFENCE_TO
        ? xasprintf("fenced: the fence the abort made on %s could not be lifted (%s); it "
                    "replicates from %s again", cu->to_backend, why, cu->from_backend)
        : xasprintf("%s: its replication connection %s could not be started again (%s); the "
                    "fence the abort made there stays", cu->to_backend, cu->sub_name, why);
    log_error_about(cutover_about(cu), "migration %s: %s", cu->migration, cu->target_left);
}

/* MariaDB: a replication connection's state (ReplicaStatus in the check,
 * MyFollow's answer in the rejoin and the restore). It must exist with no
 * error; in the check, `to`'s must also run both threads: the promote
 * waits for it to execute the final GTID. */
static void s_replica_answered(cutover_t *cu, const char *agent,
                               const Godwit__ReplicaStatusResult *rs)
{
    const char *conn = cu->state == K_REJOIN ? cu->new_name : cu->sub_name;
    const Godwit__MariadbReplica *rp = rs->exists ? rs->replica : NULL;
    char what[800];
    if (!rp) {
        snprintf(what, sizeof what, "replication connection %s does not exist", conn);
        s_detail(cu, agent, what, NULL);
        s_fail(cu, agent, what);
        if (cu->state == K_ABORT_RESTORE)
            s_target_left(cu, what);
        return;
    }
    const char *err = rp->last_error ? rp->last_error : "";
    snprintf(what, sizeof what, "replication connection %s: I/O thread %s, SQL thread %s, "
             "gtid_slave_pos %s%s%s", conn, rp->io_running ? "running" : "stopped",
             rp->sql_running ? "running" : "stopped",
             rs->gtid_slave_pos && rs->gtid_slave_pos[0] ? rs->gtid_slave_pos : "(empty)",
             err[0] ? ", error: " : "", err);
    s_detail(cu, agent, what, NULL);
    if (err[0]) {
        char *why = xasprintf("replication connection %s reports an error: %s", conn, err);
        s_fail(cu, agent, why);
        if (cu->state == K_ABORT_RESTORE)
            s_target_left(cu, why);
        free(why);
    } else if (cu->state == K_CHECK && (!rp->io_running || !rp->sql_running)) {
        char *why = xasprintf("replication connection %s is stopped (%s%s%s): the target does "
                              "not replicate from the source", conn,
                              rp->io_running ? "" : "I/O thread",
                              !rp->io_running && !rp->sql_running ? ", " : "",
                              rp->sql_running ? "" : "SQL thread");
        s_fail(cu, agent, why);
        free(why);
    }
}

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
    if (cu->state == K_PROMOTE && strcmp(agent, cu->to_agent) == 0)
        s_promote_answered(cu, r, error);
    if (ok && cu->state == K_REFENCE)
        cu->refenced = true;
    if (!ok) {
        const char *why = r ? (r->message && r->message[0] ? r->message : "failed") : error;
        s_fail(cu, agent, why);
        s_detail(cu, agent, why, NULL);
        if (cu->mariadb && (cu->state == K_ABORT_RESTORE || cu->state == K_UNFENCE_TO))
            s_target_left(cu, why);
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
        if (cu->state == K_CHECK && strcmp(agent, cu->to_agent) == 0 && f->fenced) {
            cu->to_fenced = true;
            cu->to_was_fenced = true;
        }
        if (cu->state == K_CHECK)
            snprintf(what, sizeof what, "connection kept for the pause%s",
                     f->fenced ? " (fenced)" : "");
        else if (cu->state == K_REFENCE)
            snprintf(what, sizeof what, "fenced again, for good");
        else if (cu->state == K_UNFENCE_TO)
            snprintf(what, sizeof what, "fence lifted%s", f->already ? " (already)" : "");
        else if (cu->mariadb && cu->state == K_FREEZE)
            snprintf(what, sizeof what, "final GTID %s", f->final_gtid ? f->final_gtid : "");
        else
            snprintf(what, sizeof what, "%s%s", f->final_lsn ? "final LSN " : "fence",
                     f->final_lsn ? lsn_format(f->final_lsn, pos, sizeof pos)
                                  : (f->already ? " (already)" : ""));
        s_detail(cu, agent, what, s_timed(f->steps, f->n_steps));
        if (cu->state == K_SEQUENCES && f->n_checked) { /* KEEP: `from`'s rows */
            if (cu->kept)
                godwit__freeze_source_result__free_unpacked(cu->kept, NULL);
            cu->kept = wire_copy(f);
        }
        if (cu->state == K_FREEZE) {
            /* keep the sequences and the final LSN for the next step */
            if (cu->freeze)
                godwit__freeze_source_result__free_unpacked(cu->freeze, NULL);
            cu->freeze = wire_copy(f);
            if (cu->mariadb) {
                free(cu->final_gtid);
                cu->final_gtid = xstrdup(f->final_gtid ? f->final_gtid : "");
                cutreport_set(cu, "final_gtid", cJSON_CreateString(cu->final_gtid));
            } else {
                cutreport_set(cu, "final_lsn",
                              cJSON_CreateString(lsn_format(f->final_lsn, pos, sizeof pos)));
            }
            cutreport_set(cu, "sessions_terminated", cJSON_CreateNumber(f->terminated));
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_VERIFY_ROLES) {
        const Godwit__VerifyRolesResult *v = r->verify_roles;
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < v->n_findings; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "object", v->findings[i]->object);
            cJSON_AddStringToObject(o, "problem", v->findings[i]->problem);
            cJSON_AddStringToObject(o, "statement", v->findings[i]->statement);
            cJSON_AddItemToArray(list, o);
        }
        cutreport_set(cu, "role_findings", list);
        char what[64];
        snprintf(what, sizeof what, "%zu roles checked, %zu findings", (size_t)v->roles,
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
        cutreport_set(cu, "sequences", cJSON_CreateNumber(r->set_sequences->set));
        if (cu->seqs)
            godwit__set_sequences_result__free_unpacked(cu->seqs, NULL);
        cu->seqs = wire_copy(r->set_sequences);
        if (!cu->dry_run && r->set_sequences->lsn) {
            char pos[32];
            cu->switch_lsn = r->set_sequences->lsn;
            cutreport_set(cu, "switch_lsn", cJSON_CreateString(lsn_format(cu->switch_lsn, pos,
                                                                   sizeof pos)));
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_STANDBY_STATUS) {
        const Godwit__StandbyStatusResult *ss = r->standby_status;
        char what[160], pos[32];
        snprintf(what, sizeof what, "standby %s, replayed to %s", ss->streaming ? "streaming"
                 : "not streaming", lsn_format(ss->replay_lsn, pos, sizeof pos));
        s_detail(cu, agent, what, NULL);
        if (!ss->in_recovery)
            s_fail(cu, agent, cu->state == K_REJOIN ? "the server did not start as a standby"
                                                    : "the target is not a standby any more");
        else if (!ss->streaming && cu->state == K_CHECK) /* a rejoined one starts to */
            s_fail(cu, agent, "the standby does not stream from the source (see its log)");
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_REPLICA_STATUS) {
        s_replica_answered(cu, agent, r->replica_status);
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_PROMOTE && cu->mariadb) {
        const Godwit__PromoteResult *p = r->promote;
        const char *gtid = p->promoted_gtid ? p->promoted_gtid : "";
        char what[600];
        snprintf(what, sizeof what, "%s at GTID %s, %u account(s) unlocked",
                 p->already ? "promoted already" : "promoted", gtid[0] ? gtid : "(empty)",
                 p->roles);
        s_detail(cu, agent, what, s_timed(p->steps, p->n_steps));
        if (!cu->dry_run) {
            /* where `from` starts to follow `to` (the rejoin) */
            free(cu->switch_gtid);
            cu->switch_gtid = xstrdup(gtid);
            cutreport_set(cu, "switch_gtid", cJSON_CreateString(gtid));
        }
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_PROMOTE) {
        const Godwit__PromoteResult *p = r->promote;
        char what[160], pos[32], pos2[32];
        snprintf(what, sizeof what, "%s at %s (replayed to %s), %u role(s) given LOGIN",
                 p->already ? "promoted already" : "promoted",
                 lsn_format(p->promoted_lsn, pos, sizeof pos),
                 lsn_format(p->replayed_lsn, pos2, sizeof pos2), p->roles);
        s_detail(cu, agent, what, s_timed(p->steps, p->n_steps));
        cutreport_set(cu, "promoted_lsn", cJSON_CreateString(pos));
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_ENSURE_SLOT) {
        char what[96], pos[32];
        snprintf(what, sizeof what, "slot %s %s at %s", cu->new_name,
                 r->ensure_slot->created ? "created" : "found",
                 lsn_format(r->ensure_slot->confirmed_lsn, pos, sizeof pos));
        s_detail(cu, agent, what, NULL);
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD__NOT_SET && cu->mariadb &&
               (cu->state == K_REJOIN || cu->state == K_ABORT_RESTORE)) {
        s_fail(cu, agent, "MyFollow answered without the connection's state");
        if (cu->state == K_ABORT_RESTORE)
            s_target_left(cu, "MyFollow answered without the connection's state");
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD__NOT_SET) {
        s_detail(cu, agent, "done", NULL);
    } else {
        s_fail(cu, agent, "unexpected answer");
    }
    if (cu->state == K_SWITCH && cu->inflight > 0 && !cu->step_error)
        cutover_failpoint(cu, "cutover-during-switch");
    if (cu->inflight == 0) {
        if (cu->cancelled) {
            cutover_free(cu);
            return;
        }
        if (cu->state == K_SEQUENCES && cu->seqs && !cu->step_error)
            s_final_check(cu);
        cutover_step_over(cu);
    }
}

void cutstep_answers_free(cutover_t *cu)
{
    if (cu->kept)
        godwit__freeze_source_result__free_unpacked(cu->kept, NULL);
    if (cu->seqs)
        godwit__set_sequences_result__free_unpacked(cu->seqs, NULL);
    cu->kept = NULL;
    cu->seqs = NULL;
}

/* The final check (finalcheck.h), once every answer of the sequences step
 * is in: `from`'s rows, read with KEEP in the same step (with FREEZE in a
 * rehearsal, which sends no KEEP), against `to`'s, read with the
 * sequences; a difference fails the step (the cutover aborts) naming the
 * key. */
static void s_final_check(cutover_t *cu)
{
    if (!cu->n_checks)
        return;
    const Godwit__FreezeSourceResult *from = cu->kept ? cu->kept : cu->freeze;
    const Godwit__SetSequencesResult *r = cu->seqs;
    const char *agent = cu->to_agent;
    size_t diffs = 0;
    cJSON *rep = finalcheck_compare(cu->checks, cu->n_checks, from ? from->checked : NULL,
                                    from ? from->n_checked : 0, r->checked, r->n_checked,
                                    &diffs);
    char *sum = finalcheck_summary(rep);
    if (diffs) {
        char *why = xasprintf("the final check found %zu difference%s: %s", diffs,
                              diffs == 1 ? "" : "s", sum);
        log_error_about(cutover_about(cu), "migration %s: %s", cu->migration, why);
        s_fail(cu, agent, why);
        free(why);
    } else {
        log_info_about(cutover_about(cu),
                       "migration %s: final check: %.0f keys of %zu tables read on both sides, "
                       "equal", cu->migration,
                       cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "keys")), cu->n_checks);
    }
    free(sum);
    cutreport_set(cu, "final_check", rep);
}

/* ---- sending ------------------------------------------------------------ */

/* proxy: the index of the proxy the command is for, -1 if none. */
static void s_send_to(cutover_t *cu, const char *agent, Godwit__Command *cmd, int proxy)
{
    cmdctx_t *ctx = xmalloc(sizeof *ctx); /* freed by s_on_result */
    ctx->cu = cu;
    ctx->proxy = proxy;
    cu->inflight++;
    agentlink_send(cu->link, agent, cmd, cutover_timeout(cu), s_on_result, ctx);
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
    bool abort = cutover_step_bounded(cu->state);
    if ((cu->state == K_SWITCH || (cu->state == K_SWITCH_RESUME && !cutover_resume_maybe(cu))) &&
        !cu->forward_only) {
        /* All or none: a switch sent to some only would have to be undone. */
        for (size_t i = 0; i < cu->n_proxies; i++) {
            if (!agentlink_role(cu->link, cu->proxy_agents[i])) {
                s_fail(cu, cu->proxy_agents[i], "not connected: no proxy was sent the switch");
                s_detail(cu, cu->proxy_agents[i], "not connected", NULL);
                cutover_step_over(cu);
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
        cutover_step_over(cu);
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

/* Every path's check: `from` records its roles (accounts on MariaDB) now,
 * armed, so that the freeze writes no file inside the pause; `to` says
 * whether our fence holds it and opens the connection the pause's step
 * there will use. */
static void s_send_arm_and_prepare(cutover_t *cu)
{
    Godwit__FreezeSource arm =
        s_fence_req(cu, cu->from_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
    arm.arm = true;
    if (cu->group) {
        /* The armed file must outlive the wait for the group's slowest
         * check and the group's pause before the freeze renames it: the
         * check step's bound for a group of this size, the pause's budget,
         * then the freeze's own lease. */
        arm.lease_ms += CUTOVER_CHECK_MS(cutgroup_size(cu->group)) + cu->max_pause_ms;
    }
    s_send_fence_req(cu, cu->from_agent, &arm);
    s_send_fence(cu, cu->to_agent, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
}

/* The physical path's check: `to` is a standby that streams from `from`
 * (its roles are `from`'s, replayed: nothing to compare, no subscription
 * to tune, no fence of ours on it); `from` records its roles now (armed),
 * as on the logical path; both open the connections the pause uses. */
static void s_check_physical(cutover_t *cu)
{
    Godwit__StandbyStatus st = GODWIT__STANDBY_STATUS__INIT;
    st.slot = cu->sub_name;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_STANDBY_STATUS;
    cmd.standby_status = &st;
    s_send(cu, cu->to_agent, &cmd);
    /* `to` opens now the connection the promote will use (read-only
     * there: a standby), so that none is opened inside the pause. */
    s_send_arm_and_prepare(cu);
}

/* MariaDB's check: `to` replicates from `from` through our connection
 * (both threads running, no error: the promote waits for it to execute
 * the final GTID); `from` records its accounts now (armed, its lease as on
 * the physical path); `to` says whether our fence holds it (a rollback's
 * blue) and opens the connection the promote uses. No role comparison
 * (the accounts are the server's, copied by nothing of ours), no
 * subscription, no slot. */
static void s_check_mariadb(cutover_t *cu)
{
    Godwit__ReplicaStatus rs = GODWIT__REPLICA_STATUS__INIT;
    rs.connection = cu->sub_name;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_REPLICA_STATUS;
    cmd.replica_status = &rs;
    s_send(cu, cu->to_agent, &cmd);
    s_send_arm_and_prepare(cu);
}

/* Before the pause: can the application roles work on `to`? Our
 * subscription's commits made synchronous; unless rehearsing, the slot for
 * the other direction made now, outside the pause (creating a slot waits
 * for the running transactions). */
void cutstep_check(cutover_t *cu)
{
    /* The pause's journal writes should not be the ones that run an
     * automatic checkpoint, which syncs the database file as well (the
     * write before the PAUSE took 40-80 ms at times under load). */
    journal_checkpoint(cu->journal);
    if (cu->physical) {
        s_check_physical(cu);
        return;
    }
    if (cu->mariadb) {
        s_check_mariadb(cu);
        return;
    }
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
    s_send_arm_and_prepare(cu);
    s_send_fence(cu, cu->to_agent, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE);
}

/* After a rehearsal or an abort: our subscription's asynchronous commits
 * back (see TuneSubscription in the protocol), and the slot made for the
 * other direction dropped (it would keep `to`'s WAL). */
void cutstep_restore(cutover_t *cu)
{
    if (cu->mariadb) {
        if (!cu->promote_sent) {
            s_detail(cu, cu->to_agent, "nothing to restore (the promote was not sent: the target "
                     "still replicates)", NULL);
            cutover_step_over(cu);
            return;
        }
        /* The promote may have stopped our connection: started again from
         * where it stopped (the target executed nothing of its own: it was
         * fenced again, or never writable). */
        Godwit__MyFollow mf = GODWIT__MY_FOLLOW__INIT;
        mf.database = cu->to_database;
        mf.connection = cu->sub_name;
        mf.source = &cu->to_reads_from;
        mf.gtid = (char *)"";
        Godwit__Command cmd = GODWIT__COMMAND__INIT;
        cmd.action_case = GODWIT__COMMAND__ACTION_MY_FOLLOW;
        cmd.my_follow = &mf;
        s_send(cu, cu->to_agent, &cmd);
        return;
    }
    if (cu->physical) {
        s_detail(cu, cu->to_agent, "nothing to restore (no subscription on the physical path)",
                 NULL);
        cutover_step_over(cu);
        return;
    }
    s_send_tune(cu, false);
    if (cu->follow && !cu->dry_run)
        s_send_drop(cu, cu->to_agent, cu->to_database, NULL, cu->new_name);
}

void cutstep_pause(cutover_t *cu)
{
    /* From here a restart rolls back. A group's members write it together
     * when the last reaches the pause (cutgroup.c). */
    if (!cu->group)
        cutjournal_write(cu, "started");
    cu->pause_started_us = agentlink_mono_us(cu->link);
    cu->budget_end_us = cu->pause_started_us + cu->max_pause_ms * 1000;
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_PAUSE, NULL);
}

/* Also the one proxy's switch and resume (K_SWITCH_RESUME: s_send_proxies
 * sets then_resume by the state). */
void cutstep_switch_to(cutover_t *cu)
{
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_SWITCH, cu->to_backend);
}

void cutstep_switch_back(cutover_t *cu)
{
    s_send_proxies(cu, GODWIT__PROXY_ACTION__OP__OP_SWITCH, cu->from_backend);
}

void cutstep_resume(cutover_t *cu)
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
    /* The final check's rows: read once at PREPARE (the server loads the
     * tables' catalog entries), then by KEEP, in the sequences step, on
     * `from` (while `to` waits for the final LSN: off the pause's path);
     * by FREEZE in a rehearsal, which sends no KEEP. */
    if (mode == GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE ||
        mode == GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP ||
        (mode == GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE && cu->dry_run)) {
        fs.check = cu->checks;
        fs.n_check = cu->n_checks;
    }
    return fs;
}

static void s_send_fence_req(cutover_t *cu, const char *agent, Godwit__FreezeSource *fs)
{
    /* A group's databases on `from`'s server are fenced at once: the
     * roles' LOGIN is the server's (cutgroup.h). */
    if (strcmp(agent, cu->from_agent) == 0) {
        fs->n_group_databases = cu->n_group_dbs;
        fs->group_databases = cu->group_dbs;
    }
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

void cutstep_freeze(cutover_t *cu)
{
    cu->fence_sent = true;
    s_send_fence(cu, cu->from_agent, cu->from_database, GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE);
}

void cutstep_unfreeze(cutover_t *cu)
{
    if (cu->state == K_UNFREEZE && cu->target_left) {
        /* Never two writable sides: `to` may be writable. */
        free(cu->source_left);
        cu->source_left = xasprintf("fenced: not lifted, since %s may be writable (%s)",
                                    cu->to_backend, cu->target_left);
        log_error_about(cutover_about(cu), "migration %s: %s stays fenced: %s", cu->migration,
                        cu->from_backend, cu->source_left);
        s_detail(cu, cu->from_agent, cu->source_left, NULL);
        cutover_step_over(cu);
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
                log_error_about(cutover_about(cu),
                                "migration %s: %s stays fenced: proxy %s of agent %s may point at "
                                "%s", cu->migration, cu->from_backend, cu->proxies[i],
                                cu->proxy_agents[i], cu->to_backend);
                s_detail(cu, cu->from_agent, cu->source_left, NULL);
                cutover_step_over(cu);
                return;
            }
        }
        if (!cu->fence_sent) {
            s_detail(cu, cu->from_agent, "skipped (never fenced)", NULL);
            cutover_step_over(cu);
            return;
        }
        /* Every proxy sent the switch is back: from here a restarted
         * coordinator rolls back, whatever the time (`from` may be
         * writable again). */
        for (size_t i = 0; cu->tries == 0 && i < cu->n_proxies; i++) {
            if (cu->px[i].switch_sent) {
                cutjournal_write(cu, "unfreezing");
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
void cutstep_refence(cutover_t *cu)
{
    if (!cu->to_fenced || !cu->to_lift_sent) {
        s_detail(cu, cu->to_agent, "skipped (its fence was not lifted)", NULL);
        cutover_step_over(cu);
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

/* MariaDB, the end of an abort after the promote: `to` replicates again
 * (the restore), so the fence the abort made there (K_REFENCE) is lifted:
 * it had none before the pause. */
void cutstep_unfence_to(cutover_t *cu)
{
    s_send_fence(cu, cu->to_agent, cu->to_database, GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE);
}

/* `to`'s sequences, once it has received `from`'s stream up to the final
 * LSN (it waits for that itself), and its WAL position, where the other
 * direction starts; at once, unless rehearsing, the fence on `from` made permanent
 * and our fence on `to` lifted, if it has one (a rollback's blue, or green
 * after a rollback): `from` can never become writable by itself once a
 * proxy may point at `to`, and `to` takes logins before traffic arrives. */
void cutstep_sequences(cutover_t *cu)
{
    cutstep_answers_free(cu); /* a try's answers only */
    Godwit__SetSequences ss = GODWIT__SET_SEQUENCES__INIT;
    ss.database = cu->to_database;
    if (cu->freeze) {
        ss.n_sequences = cu->freeze->n_sequences;
        ss.sequences = cu->freeze->sequences;
        /* `to` waits for the final LSN itself: no trip back to `from`. */
        ss.final_lsn = cu->freeze->final_lsn;
        ss.subscription = cu->sub_name;
        uint64_t left = cutover_timeout(cu);
        ss.wait_timeout_ms = left > 50 ? left - 50 : left;
        /* The final check: `from` reads its rows with KEEP, sent with this
         * (in a rehearsal FREEZE read them: only if it did). */
        if (!cu->dry_run || cu->freeze->n_checked == cu->n_checks) {
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

void cutstep_promote(cutover_t *cu)
{
    Godwit__Promote pr = GODWIT__PROMOTE__INIT;
    pr.database = cu->to_database;
    if (cu->freeze)
        cu->final_lsn = cu->freeze->final_lsn;
    pr.final_lsn = cu->final_lsn;
    if (cu->mariadb) {
        /* `to` executes the final GTID, stops our connection, becomes
         * writable (recovered: final_gtid from the "promoting" record). */
        pr.final_lsn = 0;
        pr.final_gtid = cu->final_gtid ? cu->final_gtid : (char *)"";
        pr.replica_connection = cu->sub_name;
        cu->promote_sent = true;
    }
    /* From here a restart goes forward: the target agent finishes the
     * promote on its own (written once, not per try). */
    if (cu->tries == 0 && !cu->forward_only)
        cutjournal_write(cu, "promoting");
    uint64_t left = cutover_timeout(cu);
    pr.wait_timeout_ms = left > 50 ? left - 50 : left;
    pr.n_app_roles = cu->n_app_roles;
    pr.app_roles = cu->app_roles;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_PROMOTE;
    cmd.promote = &pr;
    s_send(cu, cu->to_agent, &cmd);
    s_send_fence(cu, cu->from_agent, cu->from_database, GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP);
    cutover_failpoint(cu, "cutover-during-promote");
}

/* MariaDB's rejoin: `from` replicates from `to` through new_name from the
 * switch GTID (`to`'s position once writable: nothing before it is `to`'s
 * own). */
static void s_rejoin_mariadb(cutover_t *cu)
{
    if (!cu->switch_gtid) {
        log_error_about(cutover_about(cu),
                        "migration %s: the switch position is not known (a journal from an older "
                        "build): %s does not follow %s", cu->migration, cu->from_backend,
                        cu->to_backend);
        cutreport_set(cu, "follow", cJSON_CreateString("the switch position is not known"));
        cutover_goto(cu, K_DONE);
        return;
    }
    Godwit__MyFollow mf = GODWIT__MY_FOLLOW__INIT;
    mf.database = cu->from_database;
    mf.connection = cu->new_name;
    mf.source = &cu->from_reads_to;
    mf.gtid = cu->switch_gtid;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_MY_FOLLOW;
    cmd.my_follow = &mf;
    s_send(cu, cu->from_agent, &cmd);
}

void cutstep_rejoin(cutover_t *cu)
{
    if (cu->mariadb) {
        s_rejoin_mariadb(cu);
        return;
    }
    Godwit__Rejoin rj = GODWIT__REJOIN__INIT;
    rj.peer = cu->from_reads_to.peer;
    rj.slot = cu->new_name;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_REJOIN;
    cmd.rejoin = &rj;
    s_send(cu, cu->from_agent, &cmd);
}

/* ---- after the switch: `from` follows `to` ------------------------------
 * Without origin filtering (PostgreSQL 16's origin = none), changes would
 * go round in a loop if both subscriptions lived at once, so the old one is
 * dropped first (its slot with it, or by itself if the subscription could
 * not reach it); the slot made before the pause is moved to the switch
 * position, past what `to` had replicated in; then `from` subscribes to it
 * without copying. */

void cutstep_drop_old(cutover_t *cu)
{
    s_send_drop(cu, cu->to_agent, cu->to_database, cu->sub_name, NULL);
}

void cutstep_drop_old_slot(cutover_t *cu)
{
    s_send_drop(cu, cu->from_agent, cu->from_database, NULL, cu->sub_name);
}

void cutstep_advance(cutover_t *cu)
{
    if (!cu->switch_lsn) {
        log_error_about(cutover_about(cu),
                        "migration %s: the switch position is not known (a journal from an older "
                        "build): %s does not follow %s", cu->migration, cu->from_backend,
                        cu->to_backend);
        cutreport_set(cu, "follow", cJSON_CreateString("the switch position is not known"));
        cutover_goto(cu, K_DONE);
        return;
    }
    s_send_ensure_slot(cu, cu->switch_lsn);
}

void cutstep_follow(cutover_t *cu)
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

