/*
 * agents: see agents.h. The ROUTER socket's traffic with the agents:
 * receives and judges their messages, sends pings, answers godwitctl's.
 *
 * It must never let a message an agent can forge stop the coordinator: it
 * stops as fenced only on an epoch claim that verifies with its own
 * signing key and proves a newer coordinator or a twin (s_judge_claim),
 * and considers a refusal only for a command it sent that agent. Anything
 * else of the kind is logged (rate-limited), counted, ignored, and the
 * agent is marked suspect.
 */
#include "agents.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "coord_state.h"
#include "log.h"
#include "routerlink.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* draft option in libzmq 4.3 */
#endif

#define COORD_RECV_BUDGET 512
#define MONITOR_ENDPOINT "inproc://godwit-router-monitor"

static uint64_t s_us(void) { return uv_hrtime() / 1000; }

/* ---- sending ---- */

int agents_send_frame(coord_t *c, const fleet_agent_t *a, const uint8_t *frame, size_t len)
{
    const void *parts[2] = { a->rid, frame };
    size_t lens[2] = { a->rid_len, len };
    int rc = zuv_send_parts(c->router_watch, c->router, parts, lens, 2);
    if (rc == 0)
        c->sent++;
    if (rc != 0 && rc != -EAGAIN)
        log_warn_about(log_about_agent(a->name), "agent %s: send failed: %s", a->name,
                       zmq_strerror(-rc));
    return rc;
}

static int s_send(coord_t *c, const fleet_agent_t *a, Godwit__Envelope *env)
{
    env->msg_id = ++c->next_msg_id;
    env->sent_at_ms = units_now_ms();
    size_t len = 0;
    uint8_t *buf = wire_encode(env, &len);
    if (!buf) {
        log_error_about(log_about_agent(a->name), "agent %s: message too large to send", a->name);
        return -EMSGSIZE;
    }
    int rc = agents_send_frame(c, a, buf, len);
    free(buf);
    return rc;
}

uint64_t agents_ping(coord_t *c, fleet_agent_t *a)
{
    uint64_t n = ++c->next_cmd;
    char id[48];
    snprintf(id, sizeof id, "%llu.%llu", (unsigned long long)c->epoch, (unsigned long long)n);
    Godwit__Ping ping = GODWIT__PING__INIT;
    ping.nonce = n;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.id = id;
    cmd.epoch = c->epoch;
    cmd.deadline_unix_ms = units_now_ms() + (uint64_t)c->cfg->lost_after_ms;
    cmd.claim = &c->claim_msg;
    cmd.action_case = GODWIT__COMMAND__ACTION_PING;
    cmd.ping = &ping;
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    uint64_t sent = s_us();
    a->last_ping_nonce = n;
    if (s_send(c, a, &env) != 0)
        return 0;
    a->ping_nonce = n;
    a->ping_sent_us = sent;
    return n;
}


/* Logs a warning about agent a unless lines of that kind from it are being
 * suppressed (then counted; the limiter reports them later). */
static void s_agent_warn(coord_t *c, const fleet_agent_t *a, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_agent_warn(coord_t *c, const fleet_agent_t *a, const char *kind, const char *fmt, ...)
{
    char key[200];
    snprintf(key, sizeof key, "agent %s: %s", a->name, kind);
    uint64_t before = 0;
    if (!ratelimit_allow(c->agent_log, key, units_mono_ms(), &before))
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (before)
        log_warn_about(log_about_agent(a->name),
                       "agent %s: %s (and %llu more of the same not logged before)", a->name, msg,
                       (unsigned long long)before);
    else
        log_warn_about(log_about_agent(a->name), "agent %s: %s", a->name, msg);
}

/* Something only a forger would send: logged (rate-limited), counted, and
 * the agent is marked suspect in status; nothing else changes. */
static void s_suspect(coord_t *c, fleet_agent_t *a, const char *why)
{
    c->suspect_messages++;
    a->suspect_count++;
    a->suspect_at_ms = units_now_ms();
    snprintf(a->suspect, sizeof a->suspect, "%.*s", (int)sizeof a->suspect - 1, why); /* cut to fit */
    s_agent_warn(c, a, "suspect messages", "%s: ignored; the agent is marked suspect", why);
}

/* What an epoch claim an agent presents proves (docs/protocol.md, "Epochs"). */
typedef enum {
    CLAIM_NONE,     /* no claim and no epoch of ours or newer: nothing to judge */
    CLAIM_OLDER,    /* a genuine claim of an older epoch */
    CLAIM_OURS,     /* our own claim */
    CLAIM_NEWER,    /* a genuine claim of a newer epoch: a newer coordinator exists */
    CLAIM_TWIN,     /* a genuine claim of our epoch from another start: a twin exists */
    CLAIM_UNPROVEN, /* an epoch of ours or newer without a claim, or a claim that does
                       not verify or disagrees with the epoch stated beside it */
} claim_verdict_t;

/* Judges the claim m an agent presents for the epoch it states (its highest
 * seen); why gets the reason for CLAIM_UNPROVEN. Only a claim signed with
 * our signing key counts: an agent cannot make one. */
static claim_verdict_t s_judge_claim(const coord_t *c, const Godwit__EpochClaim *m, uint64_t stated,
                                     char *why, size_t whylen)
{
    if (!m) {
        if (stated < c->epoch)
            return CLAIM_NONE;
        snprintf(why, whylen, "states epoch %llu (ours is %llu) without a claim to prove it",
                 (unsigned long long)stated, (unsigned long long)c->epoch);
        return CLAIM_UNPROVEN;
    }
    claim_t cl;
    if (!claim_from_msg(m, &cl)) {
        snprintf(why, whylen, "presents a malformed epoch claim");
        return CLAIM_UNPROVEN;
    }
    if (cl.epoch != stated) {
        snprintf(why, whylen, "presents a claim of epoch %llu but states epoch %llu",
                 (unsigned long long)cl.epoch, (unsigned long long)stated);
        return CLAIM_UNPROVEN;
    }
    if (!claim_verify(&cl, c->sign_pk)) {
        snprintf(why, whylen, "presents a claim of epoch %llu that does not verify with our signing key",
                 (unsigned long long)cl.epoch);
        return CLAIM_UNPROVEN;
    }
    if (cl.epoch > c->epoch)
        return CLAIM_NEWER;
    if (cl.epoch < c->epoch)
        return CLAIM_OLDER;
    return claim_equal(&cl, &c->claim) ? CLAIM_OURS : CLAIM_TWIN;
}

static const char *s_role_name(Godwit__Role r)
{
    return r == GODWIT__ROLE__ROLE_SOURCE   ? "source"
           : r == GODWIT__ROLE__ROLE_TARGET ? "target"
           : r == GODWIT__ROLE__ROLE_PROXY  ? "proxy"
                                            : NULL;
}

/* Stops this coordinator as fenced: what proved it is in why. */
static void s_fenced(coord_t *c, fleet_agent_t *a, const char *why)
{
    snprintf(a->last_refusal, sizeof a->last_refusal, "%.*s", (int)sizeof a->last_refusal - 1,
             why); /* cut to fit */
    log_error_about(log_about_agent(a->name), "agent %s: %s; this coordinator is fenced and stops",
                    a->name, why);
    coord_stop(c, COORD_EXIT_FENCED);
}

static void s_on_hello(coord_t *c, fleet_agent_t *a, const Godwit__Hello *h, uint64_t now_ms)
{
    /* The role is the key's to grant (its allow-list entry), not the
     * agent's to claim. */
    const char *role = s_role_name(h->role);
    unsigned bit = role ? keys_role_bit(role) : 0;
    if (!(bit & a->allowed_roles)) {
        char allowed[64];
        keys_roles_format(a->allowed_roles, allowed, sizeof allowed);
        if (role)
            snprintf(a->refused, sizeof a->refused,
                     "hello claims role %s; its key may take only %s (the roles line of its "
                     "allowed .pub file)", role, allowed);
        else
            snprintf(a->refused, sizeof a->refused, "hello claims no known role (%d); its key may "
                     "take %s", (int)h->role, allowed);
        c->refused_role++;
        a->role[0] = '\0';
        s_agent_warn(c, a, "refused hellos", "%s: refused", a->refused);
        fleet_event(a, LINK_EV_REFUSED, units_mono_ms(), a->refused);
        return;
    }
    a->refused[0] = '\0';
    snprintf(a->role, sizeof a->role, "%s", role);
    snprintf(a->version, sizeof a->version, "%s", h->agent_version);
    snprintf(a->hostname, sizeof a->hostname, "%s", h->hostname);
    /* A label the agent's own config check would refuse is not one. */
    snprintf(a->jurisdiction, sizeof a->jurisdiction, "%s",
             cfg_label_ok(h->jurisdiction) ? h->jurisdiction : "");
    snprintf(a->site, sizeof a->site, "%s", cfg_label_ok(h->site) ? h->site : "");
    a->report_interval_ms = h->report_interval_ms;
    a->agent_started_at_ms = h->started_at_ms;
    a->connected_since_ms = now_ms;
    a->hellos++;
    char reason[256];
    snprintf(reason, sizeof reason, "hello from %s (role %s, version %s, epoch seen %llu)",
             a->peer_address, a->role, a->version, (unsigned long long)h->highest_epoch);
    fleet_event(a, LINK_EV_HELLO, units_mono_ms(), reason);
    /* An epoch of ours or newer counts only with a claim signed by our
     * key. A newer one: a newer coordinator exists. Ours from another
     * start: a twin on a copy of our journal took our epoch and reached
     * this agent first; it would run our commands and the twin's alike
     * (same ids even). Either way stop before sending anything. */
    char why[256];
    switch (s_judge_claim(c, h->claim, h->highest_epoch, why, sizeof why)) {
    case CLAIM_NEWER:
        snprintf(why, sizeof why, "hello: agent holds a valid claim of epoch %llu, newer than ours "
                 "(%llu): a newer coordinator exists", (unsigned long long)h->highest_epoch,
                 (unsigned long long)c->epoch);
        s_fenced(c, a, why);
        return;
    case CLAIM_TWIN:
        snprintf(why, sizeof why, "hello: agent holds a valid claim of our epoch %llu from another "
                 "coordinator start (a twin on a copy of our journal)",
                 (unsigned long long)h->highest_epoch);
        s_fenced(c, a, why);
        return;
    case CLAIM_UNPROVEN: {
        char what[300];
        snprintf(what, sizeof what, "hello %s", why);
        s_suspect(c, a, what);
        break;
    }
    case CLAIM_NONE:
    case CLAIM_OLDER:
    case CLAIM_OURS:
        a->highest_epoch = h->highest_epoch;
        break;
    }
    routerlink_resend_pending(c, a);
}

static void s_ctl_ping_done(coord_t *c, ctl_ping_t **pp, const char *error, double rtt_ms)
{
    ctl_ping_t *p = *pp;
    *pp = p->next;
    if (error) {
        control_reply_error(p->req, error);
    } else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", true);
        cJSON_AddStringToObject(r, "agent", p->agent);
        cJSON_AddNumberToObject(r, "rtt_ms", rtt_ms);
        control_reply(p->req, r);
    }
    free(p);
}

void agents_ctl_ping(coord_t *c, control_req_t *req, fleet_agent_t *a)
{
    ctl_ping_t *p = xcalloc(1, sizeof *p);
    p->req = req;
    snprintf(p->agent, sizeof p->agent, "%s", a->name);
    p->sent_us = s_us();
    p->nonce = agents_ping(c, a);
    p->deadline_mono = units_mono_ms() + (uint64_t)c->cfg->lost_after_ms;
    p->next = c->ctl_pings;
    c->ctl_pings = p;
    if (!p->nonce)
        s_ctl_ping_done(c, &c->ctl_pings, "cannot send to the agent", 0);
}

void agents_expire_ctl_pings(coord_t *c, uint64_t now)
{
    for (ctl_ping_t **pp = &c->ctl_pings; *pp;) {
        if (now >= (*pp)->deadline_mono)
            s_ctl_ping_done(c, pp, "timed out waiting for the agent", 0);
        else
            pp = &(*pp)->next;
    }
}

void agents_fail_ctl_pings(coord_t *c, const char *error)
{
    while (c->ctl_pings)
        s_ctl_ping_done(c, &c->ctl_pings, error, 0);
}

/* Whether command id is one this coordinator sent agent a and awaits: a
 * pending command, its last ping, or a godwitctl ping. */
static bool s_awaited(coord_t *c, const fleet_agent_t *a, const char *id, pending_t **pending,
                      ctl_ping_t ***ctl)
{
    *pending = NULL;
    *ctl = NULL;
    for (pending_t *p = c->pending; p; p = p->next) {
        if (strcmp(p->id, id) == 0 && strcmp(p->agent, a->name) == 0) {
            *pending = p;
            return true;
        }
    }
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%llu.", (unsigned long long)c->epoch);
    if (strncmp(id, prefix, (size_t)n) != 0 || id[n] < '0' || id[n] > '9')
        return false;
    char *end = NULL;
    unsigned long long nonce = strtoull(id + n, &end, 10);
    if (!end || *end)
        return false;
    for (ctl_ping_t **pp = &c->ctl_pings; *pp; pp = &(*pp)->next) {
        if ((*pp)->nonce == nonce && strcmp((*pp)->agent, a->name) == 0) {
            *ctl = pp;
            return true;
        }
    }
    return nonce && nonce == a->last_ping_nonce;
}

static void s_on_result(coord_t *c, fleet_agent_t *a, const Godwit__Result *r)
{
    pending_t *pending = NULL;
    ctl_ping_t **ctl = NULL;
    bool awaited = s_awaited(c, a, r->command_id, &pending, &ctl);
    if (r->status == GODWIT__STATUS__STATUS_STALE_EPOCH) {
        /* A refusal for a newer coordinator or a twin: considered only
         * for a command we sent this agent, and acted on only with a claim
         * signed by our key that proves it. */
        char why[256], what[400];
        if (!awaited) {
            snprintf(what, sizeof what, "refusal (stale epoch) of command %s, which was never "
                     "sent to it or is answered already", r->command_id);
            s_suspect(c, a, what);
            return;
        }
        switch (s_judge_claim(c, r->claim, r->highest_epoch, why, sizeof why)) {
        case CLAIM_NEWER:
        case CLAIM_TWIN:
            snprintf(what, sizeof what, "command %s refused: stale epoch %llu, agent holds a valid "
                     "claim of %s %llu", r->command_id, (unsigned long long)r->epoch,
                     r->highest_epoch > c->epoch ? "the newer epoch" : "our epoch from a twin,",
                     (unsigned long long)r->highest_epoch);
            s_fenced(c, a, what);
            return;
        case CLAIM_UNPROVEN:
            snprintf(what, sizeof what, "refusal (stale epoch) of command %s %s", r->command_id, why);
            break;
        default:
            snprintf(what, sizeof what, "refusal (stale epoch) of command %s with a claim of "
                     "epoch %llu, which is not newer than ours", r->command_id,
                     (unsigned long long)r->highest_epoch);
        }
        s_suspect(c, a, what);
        /* The command was refused all the same: its waiter hears so below. */
    } else if (awaited && r->highest_epoch <= c->epoch && r->highest_epoch > a->highest_epoch) {
        a->highest_epoch = r->highest_epoch;
    }
    /* A refusal is the link's business; a command that ran and FAILED is
     * logged, with its context, by whoever waits for it. */
    if (r->status != GODWIT__STATUS__STATUS_OK && r->status != GODWIT__STATUS__STATUS_FAILED) {
        snprintf(a->last_refusal, sizeof a->last_refusal, "command %s: status %d: %s",
                 r->command_id, r->status, r->message);
        log_warn_about(log_about_agent(a->name), "agent %s: %s", a->name, a->last_refusal);
    }
    if (r->payload_case != GODWIT__RESULT__PAYLOAD_PING) {
        if (pending) {
            for (pending_t **pp = &c->pending; *pp; pp = &(*pp)->next) {
                if (*pp == pending) {
                    *pp = pending->next;
                    break;
                }
            }
            pending->cb(a->name, r, NULL, pending->arg);
            free(pending->frame);
            free(pending);
            return;
        }
        if (ctl) { /* a godwitctl ping refused (no ping payload): say why */
            s_ctl_ping_done(c, ctl, r->message[0] ? r->message : "refused by the agent", 0);
            return;
        }
        log_debug("agent %s: result for %s that nobody waits for", a->name, r->command_id);
        return;
    }
    uint64_t nonce = r->ping->nonce;
    double rtt = -1;
    if (nonce && nonce == a->ping_nonce) {
        rtt = (double)(s_us() - a->ping_sent_us) / 1000.0;
        a->ping_nonce = 0;
        fleet_record_rtt(c->fleet, a, rtt, units_mono_ms());
    }
    for (ctl_ping_t **pp = &c->ctl_pings; *pp; pp = &(*pp)->next) {
        if ((*pp)->nonce == nonce && strcmp((*pp)->agent, a->name) == 0) {
            double own = (double)(s_us() - (*pp)->sent_us) / 1000.0;
            s_ctl_ping_done(c, pp, r->status == GODWIT__STATUS__STATUS_OK ? NULL : r->message,
                            own);
            break;
        }
    }
}

static void s_on_event(coord_t *c, fleet_agent_t *a, const Godwit__Event *e)
{
    if (strcmp(e->code, "replication.error") == 0)
        migset_replication_error(c->migs, a->name, e->object, e->message);
    switch (e->severity) {
    case GODWIT__SEVERITY__SEVERITY_ERROR:
        log_error_about(log_about_agent(a->name), "agent %s: event %s: %s%s%s", a->name, e->code,
                        e->message, e->object[0] ? " on " : "", e->object);
        break;
    case GODWIT__SEVERITY__SEVERITY_WARNING:
        log_warn_about(log_about_agent(a->name), "agent %s: event %s: %s%s%s", a->name, e->code,
                       e->message, e->object[0] ? " on " : "", e->object);
        break;
    default:
        log_info_about(log_about_agent(a->name), "agent %s: event %s: %s%s%s", a->name, e->code,
                       e->message, e->object[0] ? " on " : "", e->object);
    }
}

static void s_handle(coord_t *c, zmq_msg_t *rid, zmq_msg_t *frame)
{
    c->messages++;
    const char *user = zmq_msg_gets(frame, "User-Id");
    const char *peer = zmq_msg_gets(frame, "Peer-Address");
    fleet_agent_t *a = user ? fleet_find(c->fleet, user) : NULL;
    if (!a) {
        /* ZAP only admits allow-listed names, so this is a bug or a race
         * with an allow-list reload; refuse to act on it. */
        log_warn("message from unauthenticated peer %s (user \"%s\") dropped", peer ? peer : "?",
                 user ? user : "");
        c->bad_messages++;
        return;
    }
    /* max_message is enforced here, where the sender is known: libzmq's
     * own limit (ZMQ_MAXMSGSIZE, set above it for memory's sake) drops the
     * connection and tells nothing but a disconnect. */
    if (zmq_msg_size(frame) > (size_t)c->cfg->max_message_bytes) {
        c->bad_messages++;
        c->oversize_messages++;
        s_agent_warn(c, a, "bad messages", "bad message (%zu bytes) dropped: over max_message (%lld "
                     "bytes)", zmq_msg_size(frame), (long long)c->cfg->max_message_bytes);
        return;
    }
    const char *reason = NULL;
    Godwit__Envelope *env =
        wire_decode(zmq_msg_data(frame), zmq_msg_size(frame), &reason);
    if (!env) {
        s_agent_warn(c, a, "bad messages", "bad message (%zu bytes) dropped: %s",
                     zmq_msg_size(frame), reason);
        c->bad_messages++;
        return;
    }
    uint64_t now_ms = units_now_ms(), now_mono = units_mono_ms();
    if (peer)
        snprintf(a->peer_address, sizeof a->peer_address, "%s", peer);
    fleet_touch(a, zmq_msg_data(rid), zmq_msg_size(rid), now_ms, now_mono);
    if (a->state == LINK_REFUSED && env->body_case != GODWIT__ENVELOPE__BODY_HELLO) {
        /* Its hello was refused: nothing it says counts until one is
         * accepted. Counted, not logged: the refusal was. */
        a->dropped_refused++;
        wire_free(&env);
        return;
    }
    switch (env->body_case) {
    case GODWIT__ENVELOPE__BODY_HELLO:
        c->received[COORD_MSG_HELLO]++;
        s_on_hello(c, a, env->hello, now_ms);
        break;
    case GODWIT__ENVELOPE__BODY_REPORT:
        c->received[COORD_MSG_REPORT]++;
        if (a->state != LINK_CONNECTED)
            fleet_event(a, LINK_EV_MESSAGE, now_mono, "report");
        fleet_set_report(a, &env->report, now_mono);
        break;
    case GODWIT__ENVELOPE__BODY_RESULT:
        c->received[COORD_MSG_RESULT]++;
        if (a->state != LINK_CONNECTED)
            fleet_event(a, LINK_EV_MESSAGE, now_mono, "result");
        s_on_result(c, a, env->result);
        break;
    case GODWIT__ENVELOPE__BODY_EVENT:
        c->received[COORD_MSG_EVENT]++;
        s_on_event(c, a, env->event);
        break;
    case GODWIT__ENVELOPE__BODY_PROGRESS:
        c->received[COORD_MSG_PROGRESS]++;
        log_debug("agent %s: progress on %s: %llu/%llu %s", a->name, env->progress->command_id,
                  (unsigned long long)env->progress->done,
                  (unsigned long long)env->progress->total, env->progress->unit);
        break;
    default:
        c->received[COORD_MSG_OTHER]++;
        log_warn_about(log_about_agent(a->name), "agent %s: unexpected %s message dropped", a->name,
                       wire_body_name(env));
        c->bad_messages++;
    }
    wire_free(&env);
}

static void s_router_readable(zuv_t *w, void *sock, void *arg)
{
    coord_t *c = arg;
    for (int i = 0; i < COORD_RECV_BUDGET && !c->stopping; i++) {
        zmq_msg_t parts[2];
        int n = 0;
        int rc = zuv_recv_parts(sock, parts, 2, &n);
        if (rc == -EAGAIN)
            break;
        if (rc != 0 || n != 2) {
            log_warn("malformed multipart message dropped (%s)",
                     rc ? zmq_strerror(-rc) : "wrong frame count");
            c->bad_messages++;
            for (int k = 0; k < n; k++)
                zmq_msg_close(&parts[k]);
            continue;
        }
        s_handle(c, &parts[0], &parts[1]);
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
    }
}

/* One event of the ROUTER's monitor: failed handshakes counted and logged
 * (rate-limited), the rest at debug. */
static void s_monitor_event(uint16_t ev, uint32_t value, const char *ep, void *arg)
{
    coord_t *c = arg;
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
        ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        c->handshake_failed++;
        /* libzmq 4.3's monitor names our endpoint, not the peer: these
         * are limited per endpoint and kind of failure. */
        char key[320];
        snprintf(key, sizeof key, "%s: %s", ep, zuv_event_name(ev));
        uint64_t before = 0;
        if (!ratelimit_allow(c->refusal_log, key, units_mono_ms(), &before))
            return;
        if (before)
            log_warn("refused a connection on %s: %s (code 0x%x; and %llu more of the same not "
                     "logged before)", ep, zuv_event_name(ev), value, (unsigned long long)before);
        else
            log_warn("refused a connection on %s: %s (code 0x%x)", ep, zuv_event_name(ev), value);
    } else {
        log_debug("router %s: %s (%u)", ep, zuv_event_name(ev), value);
    }
}

static void s_monitor_readable(zuv_t *w, void *sock, void *arg)
{
    (void)w;
    zuv_monitor_drain(sock, COORD_RECV_BUDGET, s_monitor_event, arg);
}

static bool s_setopt_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) != 0) {
        log_error("router: setsockopt %s: %s", name, zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}

bool agents_router_setup(coord_t *c)
{
    const coord_config_t *cfg = c->cfg;
    c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
    if (!c->router)
        return false;
    /* No ZMQ_ROUTER_MANDATORY: with it, libzmq answers every ZMQ_EVENTS
     * read (which zuv must do after each send) by walking all peer pipes,
     * making each send cost O(agents). A message to an agent that has gone
     * is dropped instead; heartbeats tell us it is gone.
     * No ZMTP heartbeats either (see tcp_keepalive in docs/config.md):
     * libzmq cancels timers by a linear scan, once per message on a
     * connection with heartbeats, O(agents) per message again. */
    /* Twice max_message: s_handle enforces max_message itself, where it
     * can count and name a bigger message; this bounds memory. Past it
     * libzmq drops the connection, reporting only a disconnect. */
    int64_t maxmsg = cfg->max_message_bytes * 2;
    int enforce = 1;
    bool ok = s_setopt_int(c->router, ZMQ_CURVE_SERVER, 1, "CURVE_SERVER") &&
              zmq_setsockopt(c->router, ZMQ_CURVE_SECRETKEY, c->keys.secret_z85, KEYS_Z85_LEN) == 0 &&
              zmq_setsockopt(c->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) == 0 &&
              zmq_setsockopt(c->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) == 0 &&
              s_setopt_int(c->router, ZMQ_HANDSHAKE_IVL, (int)cfg->handshake_timeout_ms, "HANDSHAKE_IVL") &&
              s_setopt_int(c->router, ZMQ_TCP_KEEPALIVE, 1, "TCP_KEEPALIVE") &&
              s_setopt_int(c->router, ZMQ_TCP_KEEPALIVE_IDLE, (int)(cfg->tcp_keepalive_ms / 1000), "TCP_KEEPALIVE_IDLE") &&
              s_setopt_int(c->router, ZMQ_TCP_KEEPALIVE_INTVL, (int)(cfg->tcp_keepalive_ms / 3000) ? (int)(cfg->tcp_keepalive_ms / 3000) : 1, "TCP_KEEPALIVE_INTVL") &&
              s_setopt_int(c->router, ZMQ_TCP_KEEPALIVE_CNT, 3, "TCP_KEEPALIVE_CNT") &&
              s_setopt_int(c->router, ZMQ_ROUTER_HANDOVER, 1, "ROUTER_HANDOVER") &&
              s_setopt_int(c->router, ZMQ_LINGER, 0, "LINGER") &&
              s_setopt_int(c->router, ZMQ_SNDHWM, 1000, "SNDHWM") &&
              s_setopt_int(c->router, ZMQ_RCVHWM, 100000, "RCVHWM");
    if (!ok) {
        log_error("router: socket options: %s", zmq_strerror(zmq_errno()));
        return false;
    }
    if (zmq_setsockopt(c->router, ZMQ_ZAP_ENFORCE_DOMAIN, &enforce, sizeof enforce) != 0)
        log_warn("router: this libzmq has no ZMQ_ZAP_ENFORCE_DOMAIN; the ZAP handler checks the "
                 "domain itself");
    if (zmq_socket_monitor(c->router, MONITOR_ENDPOINT,
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_ACCEPTED |
                               ZMQ_EVENT_DISCONNECTED) != 0)
        return false;
    c->monitor = zmq_socket(c->zctx, ZMQ_PAIR);
    if (!c->monitor || zmq_connect(c->monitor, MONITOR_ENDPOINT) != 0)
        return false;
    s_setopt_int(c->monitor, ZMQ_LINGER, 0, "LINGER");
    c->monitor_watch = zuv_new(c->loop, c->monitor, s_monitor_readable, c);
    c->router_watch = zuv_new(c->loop, c->router, s_router_readable, c);
    if (!c->monitor_watch || !c->router_watch)
        return false;
    if (zmq_bind(c->router, cfg->listen) != 0) {
        log_error("cannot listen on %s: %s", cfg->listen, zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}
