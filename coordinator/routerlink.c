/*
 * routerlink: see routerlink.h. Owns the pending commands (each with its
 * frame as sent) and the deferred calls; the socket is agents.c's.
 */
#include "routerlink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "coord_state.h"
#include "log.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

/* ---- commands ---- */

static void s_link_send(void *ctx, const char *agent, Godwit__Command *cmd, uint64_t timeout_ms,
                        agentlink_result_cb cb, void *arg)
{
    coord_t *c = ctx;
    pending_t *p = xcalloc(1, sizeof *p);
    snprintf(p->id, sizeof p->id, "%llu.%llu", (unsigned long long)c->epoch,
             (unsigned long long)++c->next_cmd);
    snprintf(p->agent, sizeof p->agent, "%s", agent);
    p->cb = cb;
    p->arg = arg;
    p->deadline_mono = units_mono_ms() + timeout_ms;
    p->next = c->pending;
    c->pending = p;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    if (c->stopping) {
        p->early_error = "coordinator stopping";
        return;
    }
    if (!a) {
        p->early_error = "no such agent in the allow-list";
        return;
    }
    if (a->state != LINK_CONNECTED) {
        p->early_error = "agent is not connected";
        return;
    }
    cmd->id = p->id;
    cmd->epoch = c->epoch;
    cmd->claim = &c->claim_msg;
    cmd->deadline_unix_ms = units_now_ms() + timeout_ms;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_COMMAND;
    env.command = cmd;
    env.msg_id = ++c->next_msg_id;
    env.sent_at_ms = units_now_ms();
    p->frame = wire_encode(&env, &p->frame_len);
    if (!p->frame) {
        p->early_error = "command too large";
        return;
    }
    if (agents_send_frame(c, a, p->frame, p->frame_len) != 0)
        p->early_error = "cannot send to the agent";
    else
        log_info_about(log_about_agent(agent), "agent %s: command %s sent", agent, p->id);
}

void routerlink_resend_pending(coord_t *c, fleet_agent_t *a)
{
    for (pending_t *p = c->pending; p; p = p->next) {
        if (p->frame && !p->early_error && strcmp(p->agent, a->name) == 0) {
            log_info_about(log_about_agent(a->name),
                           "agent %s: re-sending command %s after reconnect", a->name, p->id);
            agents_send_frame(c, a, p->frame, p->frame_len);
        }
    }
}

static const Godwit__Report *s_link_report(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a ? a->report : NULL;
}

static uint64_t s_link_report_age_ms(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    if (!a || !a->report || !a->last_report_mono)
        return UINT64_MAX;
    uint64_t now = units_mono_ms();
    return now > a->last_report_mono ? now - a->last_report_mono : 0;
}

static void s_link_defer(void *ctx, void (*fn)(void *arg), void *arg)
{
    coord_t *c = ctx;
    deferred_t *d = xcalloc(1, sizeof *d);
    d->fn = fn;
    d->arg = arg;
    deferred_t **tail = &c->deferred;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
}

static double s_link_rtt_ms(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a && a->rtt_samples ? a->rtt_ms : -1;
}

static const char *s_link_role(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a && a->state == LINK_CONNECTED ? a->role : NULL;
}

static const char *s_link_refused(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a && a->state == LINK_REFUSED ? a->refused : NULL;
}

static const char *s_link_jurisdiction(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a && a->state == LINK_CONNECTED ? a->jurisdiction : NULL;
}

static const char *s_link_site(void *ctx, const char *agent)
{
    coord_t *c = ctx;
    fleet_agent_t *a = fleet_find(c->fleet, agent);
    return a && a->hellos && a->role[0] ? a->site : NULL;
}

static uint64_t s_link_now_ms(void *ctx)
{
    (void)ctx;
    return units_now_ms();
}

static uint64_t s_link_mono_us(void *ctx)
{
    (void)ctx;
    return units_mono_us();
}

static const agentlink_ops_t s_link_ops = {
    .send = s_link_send,
    .defer = s_link_defer,
    .report = s_link_report,
    .report_age_ms = s_link_report_age_ms,
    .rtt_ms = s_link_rtt_ms,
    .role = s_link_role,
    .refused = s_link_refused,
    .jurisdiction = s_link_jurisdiction,
    .site = s_link_site,
    .now_ms = s_link_now_ms,
    .mono_us = s_link_mono_us,
};

void routerlink_init(coord_t *c) { c->link = (agentlink_t){ .ops = &s_link_ops, .ctx = c }; }

/* ---- the tick and the stop ---- */

void routerlink_run_deferred(coord_t *c)
{
    while (c->deferred) {
        deferred_t *d = c->deferred;
        c->deferred = d->next;
        d->fn(d->arg);
        free(d);
    }
}

void routerlink_expire(coord_t *c, uint64_t now)
{
    for (pending_t **pp = &c->pending; *pp;) {
        pending_t *p = *pp;
        if (p->early_error || now >= p->deadline_mono) {
            *pp = p->next;
            p->cb(p->agent, NULL, p->early_error ? p->early_error : "timed out waiting for the agent",
                  p->arg);
            free(p->frame);
            free(p);
            pp = &c->pending; /* the callback may have added commands */
        } else {
            pp = &p->next;
        }
    }
}

void routerlink_fail_pending(coord_t *c, const char *error)
{
    while (c->pending) {
        pending_t *p = c->pending;
        c->pending = p->next;
        p->cb(p->agent, NULL, error, p->arg);
        free(p->frame);
        free(p);
    }
}
