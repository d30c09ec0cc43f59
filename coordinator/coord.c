/*
 * coord: see coord.h. Owns the ZeroMQ context and sockets, the ZAP handler,
 * the fleet, the journal, the control endpoint, the signing key and this
 * start's epoch claim. Never blocks the loop: every socket operation is
 * ZMQ_DONTWAIT.
 *
 * It must never let a message an agent can forge stop it: it stops as
 * fenced only on an epoch claim that verifies with its own signing key and
 * proves a newer coordinator or a twin (s_judge_claim), and considers a
 * refusal only for a command it sent that agent. Anything else of the kind
 * is logged (rate-limited), counted, ignored, and the agent is marked
 * suspect.
 */
#include "coord.h"
#include "agentlink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>
#include <zmq.h>

#include "claim.h"
#include "control.h"
#include "ctlcmd.h"
#include "fleet.h"
#include "journal.h"
#include "plan.h"
#include "plancheck.h"
#include "proxycmd.h"
#include "migset.h"
#include "keys.h"
#include "log.h"
#include "ratelimit.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"
#include "zap.h"
#include "zuv.h"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* draft option in libzmq 4.3 */
#endif

#define COORD_TICK_MS 100
#define COORD_RECV_BUDGET 512
#define RTT_WINDOW_MS 10000
#define PREFLIGHT_TIMEOUT_MS 60000
#define MONITOR_ENDPOINT "inproc://godwit-router-monitor"
/* Refusal log lines: per peer (or agent) one per refusal_log_interval, at
 * most this many over all of them, and this many peers tracked. */
#define LOG_LIMIT_LINES 50
#define LOG_LIMIT_KEYS 256

typedef struct ctl_ping {
    control_req_t *req;
    char agent[128];
    uint64_t nonce;
    uint64_t sent_us;
    uint64_t deadline_mono;
    struct ctl_ping *next;
} ctl_ping_t;

/* A command sent to an agent whose result is awaited. */
typedef struct pending {
    char id[48];
    char agent[128];
    uint64_t deadline_mono;
    agentlink_result_cb cb;
    void *arg;
    const char *early_error; /* set: fail on the next tick (never from the send call) */
    uint8_t *frame;          /* the command as sent, re-sent when the agent reconnects */
    size_t frame_len;
    struct pending *next;
} pending_t;

typedef struct deferred {
    void (*fn)(void *arg);
    void *arg;
    struct deferred *next;
} deferred_t;

struct coord {
    uv_loop_t *loop;
    const coord_config_t *cfg;
    keys_pair_t keys;
    keys_allowlist_t allow;
    uint8_t sign_sk[KEYS_SIGN_SECRET_LEN];
    uint8_t sign_pk[KEYS_SIGN_PUBLIC_LEN];
    journal_t *journal;
    uint64_t epoch;
    claim_t claim;                /* this start's claim of epoch */
    Godwit__EpochClaim claim_msg; /* points into claim; sent with every command */
    void *zctx;
    zap_t *zap;
    void *router;
    zuv_t *router_watch;
    void *monitor;
    zuv_t *monitor_watch;
    control_t *control;
    fleet_t *fleet;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    uint64_t next_msg_id;
    uint64_t next_cmd;
    uint64_t ticks;
    uint64_t started_at_ms;
    uint64_t messages, bad_messages, handshake_failed;
    uint64_t oversize_messages;   /* counted in bad_messages too */
    uint64_t refused_role;        /* hellos refused: a role the key may not take */
    uint64_t suspect_messages;    /* fencing claims and refusals without proof, ignored */
    ratelimit_t *refusal_log;     /* ZAP and handshake refusals, per peer address */
    ratelimit_t *agent_log;       /* suspect messages, bad messages: per agent and kind */
    ctl_ping_t *ctl_pings;
    pending_t *pending;
    deferred_t *deferred;
    migset_t *migs;
    agentlink_t link;             /* what the machines use of this process (s_link_ops) */
    int open_handles;
    int exit_code;
    bool stopping;
};

static uint64_t s_us(void) { return uv_hrtime() / 1000; }

/* ---- sending ---- */

static int s_send_frame(coord_t *c, const fleet_agent_t *a, const uint8_t *frame, size_t len)
{
    const void *parts[2] = { a->rid, frame };
    size_t lens[2] = { a->rid_len, len };
    int rc = zuv_send_parts(c->router_watch, c->router, parts, lens, 2);
    if (rc != 0 && rc != -EAGAIN)
        log_warn("agent %s: send failed: %s", a->name, zmq_strerror(-rc));
    return rc;
}

static int s_send(coord_t *c, const fleet_agent_t *a, Godwit__Envelope *env)
{
    env->msg_id = ++c->next_msg_id;
    env->sent_at_ms = units_now_ms();
    size_t len = 0;
    uint8_t *buf = wire_encode(env, &len);
    if (!buf) {
        log_error("agent %s: message too large to send", a->name);
        return -EMSGSIZE;
    }
    int rc = s_send_frame(c, a, buf, len);
    free(buf);
    return rc;
}

/* Sends a ping command; returns its nonce (0 if not sent). */
static uint64_t s_send_ping(coord_t *c, fleet_agent_t *a)
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

/* ---- receiving ---- */

static void s_resend_pending(coord_t *c, fleet_agent_t *a);

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
        log_warn("agent %s: %s (and %llu more of the same not logged before)", a->name, msg,
                 (unsigned long long)before);
    else
        log_warn("agent %s: %s", a->name, msg);
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
    log_error("agent %s: %s; this coordinator is fenced and stops", a->name, why);
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
    s_resend_pending(c, a);
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
        log_warn("agent %s: %s", a->name, a->last_refusal);
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
        log_error("agent %s: event %s: %s%s%s", a->name, e->code, e->message,
                  e->object[0] ? " on " : "", e->object);
        break;
    case GODWIT__SEVERITY__SEVERITY_WARNING:
        log_warn("agent %s: event %s: %s%s%s", a->name, e->code, e->message,
                 e->object[0] ? " on " : "", e->object);
        break;
    default:
        log_info("agent %s: event %s: %s%s%s", a->name, e->code, e->message,
                 e->object[0] ? " on " : "", e->object);
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
        s_on_hello(c, a, env->hello, now_ms);
        break;
    case GODWIT__ENVELOPE__BODY_REPORT:
        if (a->state != LINK_CONNECTED)
            fleet_event(a, LINK_EV_MESSAGE, now_mono, "report");
        fleet_set_report(a, &env->report, now_mono);
        break;
    case GODWIT__ENVELOPE__BODY_RESULT:
        if (a->state != LINK_CONNECTED)
            fleet_event(a, LINK_EV_MESSAGE, now_mono, "result");
        s_on_result(c, a, env->result);
        break;
    case GODWIT__ENVELOPE__BODY_EVENT:
        s_on_event(c, a, env->event);
        break;
    case GODWIT__ENVELOPE__BODY_PROGRESS:
        log_debug("agent %s: progress on %s: %llu/%llu %s", a->name, env->progress->command_id,
                  (unsigned long long)env->progress->done,
                  (unsigned long long)env->progress->total, env->progress->unit);
        break;
    default:
        log_warn("agent %s: unexpected %s message dropped", a->name, wire_body_name(env));
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

static void s_monitor_readable(zuv_t *w, void *sock, void *arg)
{
    coord_t *c = arg;
    for (int i = 0; i < COORD_RECV_BUDGET; i++) {
        uint16_t ev;
        uint32_t value;
        char ep[256];
        int rc = zuv_monitor_read(sock, &ev, &value, ep, sizeof ep);
        if (rc == -EAGAIN)
            break;
        if (rc != 0)
            continue;
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            c->handshake_failed++;
            /* libzmq 4.3's monitor names our endpoint, not the peer: these
             * are limited per endpoint and kind of failure. */
            char key[320];
            snprintf(key, sizeof key, "%s: %s", ep, zuv_event_name(ev));
            uint64_t before = 0;
            if (!ratelimit_allow(c->refusal_log, key, units_mono_ms(), &before))
                continue;
            if (before)
                log_warn("refused a connection on %s: %s (code 0x%x; and %llu more of the same not "
                         "logged before)", ep, zuv_event_name(ev), value, (unsigned long long)before);
            else
                log_warn("refused a connection on %s: %s (code 0x%x)", ep, zuv_event_name(ev),
                         value);
        } else {
            log_debug("router %s: %s (%u)", ep, zuv_event_name(ev), value);
        }
    }
}

/* ---- periodic work ---- */

static void s_run_deferred(coord_t *c)
{
    while (c->deferred) {
        deferred_t *d = c->deferred;
        c->deferred = d->next;
        d->fn(d->arg);
        free(d);
    }
}

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
    s_run_deferred(c);
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
            s_send_ping(c, a);
    }
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
    for (ctl_ping_t **pp = &c->ctl_pings; *pp;) {
        if (now >= (*pp)->deadline_mono)
            s_ctl_ping_done(c, pp, "timed out waiting for the agent", 0);
        else
            pp = &(*pp)->next;
    }
}

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
    if (s_send_frame(c, a, p->frame, p->frame_len) != 0)
        p->early_error = "cannot send to the agent";
    else
        log_info("agent %s: command %s sent", agent, p->id);
}

/* An agent that reconnected gets the commands it has not answered again,
 * with the same ids: its fence runs each at most once. */
static void s_resend_pending(coord_t *c, fleet_agent_t *a)
{
    for (pending_t *p = c->pending; p; p = p->next) {
        if (p->frame && !p->early_error && strcmp(p->agent, a->name) == 0) {
            log_info("agent %s: re-sending command %s after reconnect", a->name, p->id);
            s_send_frame(c, a, p->frame, p->frame_len);
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
    .now_ms = s_link_now_ms,
    .mono_us = s_link_mono_us,
};

/* ---- control requests ---- */

static cJSON *s_status_json(coord_t *c)
{
    uint64_t now_ms = units_now_ms(), now_mono = units_mono_ms();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", true);
    cJSON_AddStringToObject(o, "schema", "godwit.status/1");
    cJSON_AddNumberToObject(o, "generated_at_ms", (double)now_ms);
    cJSON *co = cJSON_AddObjectToObject(o, "coordinator");
    cJSON_AddStringToObject(co, "version", GODWIT_VERSION);
    cJSON_AddNumberToObject(co, "pid", (double)getpid());
    cJSON_AddNumberToObject(co, "epoch", (double)c->epoch);
    cJSON_AddStringToObject(co, "listen", c->cfg->listen);
    cJSON_AddNumberToObject(co, "started_at_ms", (double)c->started_at_ms);
    cJSON_AddNumberToObject(co, "agents_allowed", (double)c->allow.count);
    cJSON_AddNumberToObject(co, "messages", (double)c->messages);
    cJSON_AddNumberToObject(co, "bad_messages", (double)c->bad_messages);
    cJSON_AddNumberToObject(co, "oversize_messages", (double)c->oversize_messages);
    cJSON_AddNumberToObject(co, "suspect_messages", (double)c->suspect_messages);
    const zap_stats_t *zs = zap_stats(c->zap);
    cJSON *ref = cJSON_AddObjectToObject(co, "refused");
    cJSON_AddNumberToObject(ref, "unknown_key", (double)zs->refused_unknown_key);
    cJSON_AddNumberToObject(ref, "not_curve", (double)zs->refused_other);
    cJSON_AddNumberToObject(ref, "handshake_failed", (double)c->handshake_failed);
    cJSON_AddNumberToObject(ref, "role", (double)c->refused_role);
    cJSON_AddNumberToObject(ref, "log_lines_suppressed",
                            (double)ratelimit_suppressed_total(c->refusal_log));
    /* Command round trips (pings) of the last RTT_WINDOW_MS. */
    static const double pcts[3] = { 50, 99, 100 };
    double q[3];
    size_t nq = fleet_rtt_window(c->fleet, now_mono, RTT_WINDOW_MS, pcts, q, 3);
    cJSON *rtt = cJSON_AddObjectToObject(co, "rtt_ms");
    cJSON_AddNumberToObject(rtt, "window_ms", RTT_WINDOW_MS);
    cJSON_AddNumberToObject(rtt, "samples", (double)nq);
    cJSON_AddNumberToObject(rtt, "total_samples", (double)fleet_rtt_samples(c->fleet));
    if (nq) {
        cJSON_AddNumberToObject(rtt, "p50", q[0]);
        cJSON_AddNumberToObject(rtt, "p99", q[1]);
        cJSON_AddNumberToObject(rtt, "max", q[2]);
    }
    cJSON *agents = cJSON_AddArrayToObject(o, "agents");
    for (size_t i = 0; i < fleet_count(c->fleet); i++)
        cJSON_AddItemToArray(agents, fleet_agent_json(fleet_at(c->fleet, i), now_ms, now_mono));
    return o;
}

/* ---- plans, parsed on the thread pool ---- */

/* A plan from the control socket is parsed off the loop: a large plan, or
 * a hostile one, must not stall the agents' links, the leases' renewals or
 * a signal for the time the parse takes. Parsing is pure (the config
 * loader keeps no state, logs nothing), so a pool thread may run it. */
typedef struct planjob planjob_t;
typedef void (*planjob_cb)(planjob_t *j);

struct planjob {
    uv_work_t work;
    coord_t *c;
    control_req_t *req;
    char *file, *text, *only;  /* owned copies from the request */
    int copies;                /* plans to parse from the text (1 or 2) */
    plan_t *plan[2];           /* parsed (heap), or NULL with err set */
    char err[1024];
    planjob_cb done;
};

static void s_planjob_free(planjob_t *j)
{
    for (int i = 0; i < 2; i++) {
        if (j->plan[i]) {
            plan_free(j->plan[i]);
            free(j->plan[i]);
        }
    }
    free(j->file);
    free(j->text);
    free(j->only);
    free(j);
}

static void s_planjob_work(uv_work_t *w)
{
    planjob_t *j = w->data;
    for (int i = 0; i < j->copies; i++) {
        plan_t *p = xcalloc(1, sizeof *p);
        if (!plan_load_string(j->file, j->text, p, j->err, sizeof j->err)) {
            free(p);
            return;
        }
        j->plan[i] = p;
    }
}

static void s_planjob_after(uv_work_t *w, int status)
{
    planjob_t *j = w->data;
    if (status != 0 || j->c->stopping) {
        /* The control endpoint is gone with its requests: nobody to answer. */
        s_planjob_free(j);
        return;
    }
    if (!j->plan[0] || (j->copies == 2 && !j->plan[1])) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", false);
        cJSON_AddBoolToObject(r, "invalid_plan", true);
        cJSON_AddStringToObject(r, "error", j->err);
        control_reply(j->req, r);
        s_planjob_free(j);
        return;
    }
    j->done(j);
}

/* Reads "file" and "text" (and "name") of request and parses the plan
 * `copies` times on the pool; done gets the job (and frees it) only for a
 * plan that loaded; a bad one is answered here. False (answered) if the
 * request lacks the fields. */
static bool s_planjob_start(coord_t *c, control_req_t *req, const cJSON *request, int copies,
                            planjob_cb done)
{
    const cJSON *file = cJSON_GetObjectItem(request, "file");
    const cJSON *text = cJSON_GetObjectItem(request, "text");
    const cJSON *only = cJSON_GetObjectItem(request, "name");
    if (!cJSON_IsString(file) || !cJSON_IsString(text)) {
        control_reply_error(req, "this command needs \"file\" and \"text\"");
        return false;
    }
    planjob_t *j = xcalloc(1, sizeof *j);
    j->c = c;
    j->req = req;
    j->file = xstrdup(file->valuestring);
    j->text = xstrdup(text->valuestring);
    j->only = cJSON_IsString(only) ? xstrdup(only->valuestring) : NULL;
    j->copies = copies;
    j->done = done;
    j->work.data = j;
    int rc = uv_queue_work(c->loop, &j->work, s_planjob_work, s_planjob_after);
    if (rc != 0) {
        control_reply_error(req, uv_strerror(rc));
        s_planjob_free(j);
        return false;
    }
    return true;
}

static void s_plancheck_done(cJSON *report, void *arg)
{
    control_reply(arg, report);
}

static void s_plan_check_parsed(planjob_t *j)
{
    plan_t *plan = j->plan[0];
    j->plan[0] = NULL;
    log_info("plan %s: checking %zu migrations", j->file, plan_count(plan));
    plancheck_start(&j->c->link, j->file, plan, NULL, PREFLIGHT_TIMEOUT_MS, s_plancheck_done, j->req);
    s_planjob_free(j);
}

/* {"cmd":"plan_check","file":NAME,"text":YAML}: the plan travels in the
 * request so errors name the operator's file. */
static void s_plan_check(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_planjob_start(c, req, request, 1, s_plan_check_parsed);
}

/* migrate start: preflight first; only a plan with nothing blocking starts. */
typedef struct {
    coord_t *c;
    control_req_t *req;
    char *only;
    plan_t *plan; /* the second copy: the one started */
} mstart_t;

static void s_mstart_free(mstart_t *ms)
{
    plan_free(ms->plan);
    free(ms->plan);
    free(ms->only);
    free(ms);
}

static void s_mstart_checked(cJSON *report, void *arg)
{
    mstart_t *ms = arg;
    coord_t *c = ms->c;
    double blocking = cJSON_GetNumberValue(cJSON_GetObjectItem(report, "blocking"));
    if (blocking > 0 || c->stopping) {
        cJSON_ReplaceItemInObject(report, "ok", cJSON_CreateFalse());
        cJSON_AddStringToObject(report, "error", c->stopping ? "coordinator stopping"
                                                             : "preflight found blocking problems; "
                                                               "nothing was started");
        control_reply(ms->req, report);
        s_mstart_free(ms);
        return;
    }
    cJSON_Delete(report);
    char err[1024];
    cJSON *r = cJSON_CreateObject();
    cJSON *started = cJSON_AddArrayToObject(r, "started");
    bool ok = true;
    for (size_t i = 0; ok && i < plan_count(ms->plan); i++) {
        plan_migration_t *m = plan_at(ms->plan, i);
        if (ms->only && strcmp(m->name, ms->only) != 0)
            continue;
        ok = migset_start(c->migs, m, err, sizeof err);
        if (ok)
            cJSON_AddItemToArray(started, cJSON_CreateString(m->name));
    }
    cJSON_AddBoolToObject(r, "ok", ok);
    if (!ok)
        cJSON_AddStringToObject(r, "error", err);
    control_reply(ms->req, r);
    s_mstart_free(ms);
}

static void s_migrate_start_parsed(planjob_t *j)
{
    if (j->only && !plan_find(j->plan[0], j->only)) {
        control_reply_error(j->req, "the plan has no migration of that name");
        s_planjob_free(j);
        return;
    }
    mstart_t *ms = xcalloc(1, sizeof *ms);
    ms->c = j->c;
    ms->req = j->req;
    ms->only = j->only ? xstrdup(j->only) : NULL;
    ms->plan = j->plan[1];
    j->plan[1] = NULL;
    plan_t *check = j->plan[0];
    j->plan[0] = NULL;
    plancheck_start(&j->c->link, j->file, check, ms->only, PREFLIGHT_TIMEOUT_MS, s_mstart_checked, ms);
    s_planjob_free(j);
}

/* {"cmd":"migrate_start","file":NAME,"text":YAML[,"name":M]}: two copies
 * of the plan, one for the preflight (which owns and frees it) and the one
 * started once the preflight found nothing blocking. */
static void s_migrate_start(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_planjob_start(c, req, request, 2, s_migrate_start_parsed);
}

static void s_migrate_status(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    cJSON *list = NULL;
    if (cJSON_IsString(name)) {
        cJSON *one = migset_status(c->migs, name->valuestring);
        if (!one) {
            control_reply_error(req, "no migration of that name");
            return;
        }
        list = cJSON_CreateArray();
        cJSON_AddItemToArray(list, one);
    } else {
        list = migset_status(c->migs, NULL);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, "schema", "godwit.migrations/1");
    cJSON_AddNumberToObject(r, "generated_at_ms", (double)units_now_ms());
    cJSON_AddItemToObject(r, "migrations", list);
    control_reply(req, r);
}

/* migrate_abort, migrate_pause, migrate_resume: {"name": M}. */
static void s_migrate_change(coord_t *c, control_req_t *req, const cJSON *request,
                             bool (*fn)(migset_t *, const char *, char *, size_t),
                             const char *done_word)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    char err[512];
    if (!cJSON_IsString(name)) {
        control_reply_error(req, "this command needs \"name\"");
        return;
    }
    if (!fn(c->migs, name->valuestring, err, sizeof err)) {
        control_reply_error(req, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, done_word, name->valuestring);
    control_reply(req, r);
}

/* cutover: {"name": M, "dry_run": bool, "rollback": bool}. */
static void s_cutover(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    char err[800];
    if (!cJSON_IsString(name)) {
        control_reply_error(req, "cutover needs \"name\"");
        return;
    }
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(request, "dry_run"));
    bool back = cJSON_IsTrue(cJSON_GetObjectItem(request, "rollback"));
    bool refused;
    if (!migset_cutover(c->migs, name->valuestring, back, dry, &refused, err, sizeof err)) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", false);
        cJSON_AddStringToObject(r, "error", err);
        cJSON_AddBoolToObject(r, "refused", refused); /* by a gate: nothing changed */
        control_reply(req, r);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, dry ? "rehearsing" : back ? "rolling_back" : "cutting_over",
                            name->valuestring);
    control_reply(req, r);
}

static void s_ctl_status(coord_t *c, control_req_t *req, const cJSON *request)
{
    (void)request;
    control_reply(req, s_status_json(c));
}

static void s_ctl_ping(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "agent");
    fleet_agent_t *a = cJSON_IsString(name) ? fleet_find(c->fleet, name->valuestring) : NULL;
    if (!a) {
        control_reply_error(req, "no such agent in the allow-list");
        return;
    }
    if (a->state != LINK_CONNECTED) {
        control_reply_error(req, "agent is not connected");
        return;
    }
    ctl_ping_t *p = xcalloc(1, sizeof *p);
    p->req = req;
    snprintf(p->agent, sizeof p->agent, "%s", a->name);
    p->sent_us = s_us();
    p->nonce = s_send_ping(c, a);
    p->deadline_mono = units_mono_ms() + (uint64_t)c->cfg->lost_after_ms;
    p->next = c->ctl_pings;
    c->ctl_pings = p;
    if (!p->nonce)
        s_ctl_ping_done(c, &c->ctl_pings, "cannot send to the agent", 0);
}

static void s_ctl_proxy(coord_t *c, control_req_t *req, const cJSON *request)
{
    proxycmd_handle(&c->link, req, request);
}

static void s_ctl_abort(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_abort, "aborting");
}

static void s_ctl_pause(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_pause, "pausing");
}

static void s_ctl_resume(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_resume, "resuming");
}

static void s_ctl_verify(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_verify, "verifying");
}

static void s_ctl_cleanup(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_cleanup, "cleaning_up");
}

/* The handler of each control command (ctlcmd.h). */
static void (*const s_ctl_handlers[CTLCMD__COUNT])(coord_t *c, control_req_t *req,
                                                    const cJSON *request) = {
    [CTLCMD_STATUS] = s_ctl_status,
    [CTLCMD_PING] = s_ctl_ping,
    [CTLCMD_PROXY] = s_ctl_proxy,
    [CTLCMD_PLAN_CHECK] = s_plan_check,
    [CTLCMD_MIGRATE_START] = s_migrate_start,
    [CTLCMD_MIGRATE_STATUS] = s_migrate_status,
    [CTLCMD_MIGRATE_ABORT] = s_ctl_abort,
    [CTLCMD_MIGRATE_PAUSE] = s_ctl_pause,
    [CTLCMD_MIGRATE_RESUME] = s_ctl_resume,
    [CTLCMD_MIGRATE_VERIFY] = s_ctl_verify,
    [CTLCMD_MIGRATE_CLEANUP] = s_ctl_cleanup,
    [CTLCMD_CUTOVER] = s_cutover,
};

static void s_control(control_req_t *req, const cJSON *request, void *arg)
{
    coord_t *c = arg;
    ctlcmd_t cmd;
    if (!ctlcmd_parse(cJSON_GetObjectItem(request, "cmd")->valuestring, &cmd) ||
        !s_ctl_handlers[cmd]) {
        control_reply_error(req, "unknown command");
        return;
    }
    s_ctl_handlers[cmd](c, req, request);
}

/* ---- lifecycle ---- */

static void s_on_signal(uv_signal_t *s, int signum)
{
    coord_t *c = s->data;
    log_info("signal %d: stopping", signum);
    coord_stop(c, COORD_EXIT_OK);
}

static bool s_setopt_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) != 0) {
        log_error("router: setsockopt %s: %s", name, zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}

static bool s_router_setup(coord_t *c)
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
    c->link = (agentlink_t){ .ops = &s_link_ops, .ctx = c };
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
    c->zctx = zmq_ctx_new();
    /* The ZAP handler first: a CURVE server without one admits everyone. */
    c->zap = zap_new(loop, c->zctx, &c->allow, c->refusal_log);
    if (!c->zap || !s_router_setup(c))
        goto fail;
    c->control = control_new(loop, cfg->control_socket, s_control, c, err, sizeof err);
    if (!c->control) {
        log_error("%s", err);
        goto fail;
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
    while (c->ctl_pings)
        s_ctl_ping_done(c, &c->ctl_pings, "coordinator stopping", 0);
    while (c->pending) {
        pending_t *p = c->pending;
        c->pending = p->next;
        p->cb(p->agent, NULL, "coordinator stopping", p->arg);
        free(p->frame);
        free(p);
    }
    s_run_deferred(c);
    control_destroy(&c->control);
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
