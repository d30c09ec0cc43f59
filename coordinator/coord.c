/*
 * coord: see coord.h. Owns the ZeroMQ context and sockets, the ZAP handler,
 * the fleet, the journal, the control endpoint, the signing key and this
 * start's epoch claim (coord_state.h holds them). Never blocks the loop:
 * every socket operation is ZMQ_DONTWAIT.
 *
 * This file starts and stops the process and runs its one periodic tick;
 * the agents' messages are agents.c's, the machines' link routerlink.c's,
 * the control commands ctlserve.c's, the Prometheus endpoint metricsd.c's
 * (what it serves: metrics.c).
 */
#include "coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <zmq.h>

#include "agents.h"
#include "coord_state.h"
#include "ctlserve.h"
#include "log.h"
#include "metrics.h"
#include "routerlink.h"
#include "units.h"
#include "xalloc.h"

/* Refusal log lines: per peer (or agent) one per refusal_log_interval, at
 * most this many over all of them, and this many peers tracked. */
#define LOG_LIMIT_LINES 50
#define LOG_LIMIT_KEYS 256
#define COORD_TICK_MS 100

/* ---- periodic work ---- */

static void s_report_suppressed(const char *key, uint64_t n, uint64_t window_ms, void *arg)
{
    (void)arg;
    log_warn("%s: %llu more of the same not logged in the last %llu s", key, (unsigned long long)n,
             (unsigned long long)(window_ms / 1000));
}

static void s_tick(uv_timer_t *t)
{
    coord_t *c = t->data;
    uint64_t now = units_mono_ms();
    ratelimit_flush(c->refusal_log, now, s_report_suppressed, NULL);
    ratelimit_flush(c->agent_log, now, s_report_suppressed, NULL);
    routerlink_run_deferred(c);
    if (c->migs)
        migset_tick(c->migs);
    for (size_t i = 0; i < fleet_count(c->fleet); i++) {
        fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->state == LINK_CONNECTED && now - a->last_seen_mono > (uint64_t)c->cfg->lost_after_ms) {
            char reason[96];
            snprintf(reason, sizeof reason, "no message for %llu ms",
                     (unsigned long long)(now - a->last_seen_mono));
            fleet_event(a, LINK_EV_SILENT, now, reason);
        }
    }
    /* Each agent is pinged once per ping_interval, in its own slice of the
     * interval, so a big fleet sees a steady trickle instead of a burst. */
    uint64_t slices = (uint64_t)c->cfg->ping_interval_ms / COORD_TICK_MS;
    if (slices == 0)
        slices = 1;
    uint64_t slice = c->ticks++ % slices;
    for (size_t i = 0; i < fleet_count(c->fleet); i++) {
        fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->state == LINK_CONNECTED && i % slices == slice)
            agents_ping(c, a);
    }
    routerlink_expire(c, now);
    agents_expire_ctl_pings(c, now);
}

/* ---- lifecycle ---- */

static void s_on_signal(uv_signal_t *s, int signum)
{
    coord_t *c = s->data;
    log_info("signal %d: stopping", signum);
    coord_stop(c, COORD_EXIT_OK);
}

static void s_handle_closed(uv_handle_t *h)
{
    coord_t *c = h->data;
    c->open_handles--;
}

coord_t *coord_new(uv_loop_t *loop, const coord_config_t *cfg)
{
    char err[512];
    if (!zmq_has("curve")) {
        log_error("this libzmq was built without CURVE: refusing to run unencrypted");
        return NULL;
    }
    coord_t *c = xcalloc(1, sizeof *c);
    routerlink_init(c);
    c->loop = loop;
    c->cfg = cfg;
    c->started_at_ms = units_now_ms();
    c->exit_code = COORD_EXIT_OK;
    uv_timer_init(loop, &c->tick);
    uv_signal_init(loop, &c->sigint);
    uv_signal_init(loop, &c->sigterm);
    c->tick.data = c->sigint.data = c->sigterm.data = c;
    c->open_handles = 3;

    c->refusal_log = ratelimit_new((uint64_t)cfg->refusal_log_interval_ms, LOG_LIMIT_KEYS,
                                   LOG_LIMIT_LINES);
    c->agent_log = ratelimit_new((uint64_t)cfg->refusal_log_interval_ms, LOG_LIMIT_KEYS,
                                 LOG_LIMIT_LINES);
    if (keys_load_secret(cfg->secret_key, &c->keys, err, sizeof err) != 0 ||
        keys_load_sign_secret(cfg->signing_key, c->sign_sk, c->sign_pk, err, sizeof err) != 0 ||
        keys_allowlist_load(cfg->allowed_keys, &c->allow, err, sizeof err) != 0) {
        log_error("%s", err);
        goto fail;
    }
    if (c->allow.count == 0)
        log_warn("allowed keys folder %s has no .pub files: no agent can connect",
                 cfg->allowed_keys);
    c->journal = journal_open(cfg->journal, err, sizeof err);
    if (!c->journal) {
        log_error("%s", err);
        goto fail;
    }
    c->epoch = journal_next_epoch(c->journal, err, sizeof err);
    if (c->epoch == 0) {
        log_error("%s", err);
        goto fail;
    }
    /* This start's claim: the epoch and a random instance, signed. Agents
     * persist it with the epoch and present it back; it is what tells a
     * twin on a copy of this journal (same epoch, other instance) apart. */
    claim_make(&c->claim, c->epoch, c->sign_sk);
    claim_to_msg(&c->claim, &c->claim_msg);
    c->fleet = fleet_new(&c->allow);
    c->migs = migset_new(&c->link, c->journal);
    migset_set_caps(c->migs, (migset_caps_t){ .per_source = cfg->copies.per_source,
                                              .per_target = cfg->copies.per_target,
                                              .per_link = cfg->copies.per_link });
    c->zctx = zmq_ctx_new();
    /* The ZAP handler first: a CURVE server without one admits everyone. */
    c->zap = zap_new(loop, c->zctx, &c->allow, c->refusal_log);
    if (!c->zap || !agents_router_setup(c))
        goto fail;
    c->control = control_new(loop, cfg->control_socket, ctlserve_handle, c, err, sizeof err);
    if (!c->control) {
        log_error("%s", err);
        goto fail;
    }
    if (cfg->metrics.listen) {
        c->metricsd = metricsd_new(loop, cfg->metrics.listen, metrics_render, c, err, sizeof err);
        if (!c->metricsd) {
            log_error("%s", err);
            goto fail;
        }
    }
    uv_timer_start(&c->tick, s_tick, COORD_TICK_MS, COORD_TICK_MS);
    uv_signal_start(&c->sigint, s_on_signal, SIGINT);
    uv_signal_start(&c->sigterm, s_on_signal, SIGTERM);
    log_info("coordinator %s listening on %s (epoch %llu, %zu allowed agents, control %s)",
             GODWIT_VERSION, cfg->listen, (unsigned long long)c->epoch, c->allow.count,
             cfg->control_socket);
    return c;
fail:
    coord_stop(c, COORD_EXIT_ERROR);
    uv_run(loop, UV_RUN_DEFAULT);
    coord_destroy(&c);
    return NULL;
}

void coord_stop(coord_t *c, int exit_code)
{
    if (c->stopping)
        return;
    c->stopping = true;
    c->exit_code = exit_code;
    agents_fail_ctl_pings(c, "coordinator stopping");
    routerlink_fail_pending(c, "coordinator stopping");
    routerlink_run_deferred(c);
    control_destroy(&c->control);
    metricsd_destroy(&c->metricsd);
    zuv_destroy(&c->router_watch);
    zuv_destroy(&c->monitor_watch);
    if (c->router) {
        zmq_socket_monitor(c->router, NULL, 0);
        zmq_close(c->router);
        c->router = NULL;
    }
    if (c->monitor) {
        zmq_close(c->monitor);
        c->monitor = NULL;
    }
    zap_destroy(&c->zap);
    uv_close((uv_handle_t *)&c->tick, s_handle_closed);
    uv_close((uv_handle_t *)&c->sigint, s_handle_closed);
    uv_close((uv_handle_t *)&c->sigterm, s_handle_closed);
}

int coord_destroy(coord_t **cp)
{
    coord_t *c = *cp;
    if (!c)
        return COORD_EXIT_ERROR;
    *cp = NULL;
    int code = c->exit_code;
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    migset_destroy(&c->migs);
    fleet_destroy(&c->fleet);
    journal_close(&c->journal);
    keys_allowlist_free(&c->allow);
    ratelimit_destroy(&c->refusal_log);
    ratelimit_destroy(&c->agent_log);
    sodium_memzero(&c->keys, sizeof c->keys);
    sodium_memzero(c->sign_sk, sizeof c->sign_sk);
    free(c);
    return code;
}
