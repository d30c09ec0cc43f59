/*
 * agent: see agent.h. Owns the ZeroMQ context and sockets, the epoch fence, the
 * database engine (engine.h), the proxies and the disk samples. Never
 * blocks the loop: sends are ZMQ_DONTWAIT with ZMQ_IMMEDIATE (a report with
 * no coordinator to take it is dropped, not queued), database work is the
 * engine's, asynchronous.
 */
#include "agent.h"
#include "actions.h"
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>
#include <zmq.h>

#include "claim.h"
#include "diskstats.h"
#include "epochs.h"
#include "keys.h"
#include "log.h"
#include "proxy.h"
#include "step.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"
#include "zuv.h"

#define AGENT_RECV_BUDGET 64
#define MONITOR_ENDPOINT_FMT "inproc://godwit-agent-monitor-%p"

/* A command whose work goes on after s_on_command returned. */
typedef struct running {
    agent_t *agent;
    char *id;
    uint64_t epoch;
    step_t *step;
    bool proxy;                 /* a proxy action: its callback comes from the proxy set */
    Godwit__Command__ActionCase action;
    char **also_ids;   /* re-sent BulkCopy, BaseBackup or Promote commands joined to this
                          one; answered with it */
    size_t n_also;
    struct running *next;
} running_t;

struct agent {
    uv_loop_t *loop;
    const agent_config_t *cfg;
    keys_pair_t keys;
    char server_key[KEYS_Z85_LEN + 1];
    uint8_t sign_pk[KEYS_SIGN_PUBLIC_LEN]; /* the coordinator's: verifies its epoch claims */
    void *zctx;
    void *dealer;
    zuv_t *dealer_watch;
    void *monitor;
    zuv_t *monitor_watch;
    epochs_t *epochs;            /* the epoch fence */
    engine_t *engine;           /* NULL without a database (a proxy-only agent) */
    proxy_set_t *proxies;       /* NULL without a proxies list */
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    int open_handles;
    uint64_t next_msg_id;
    uint64_t report_seq;
    uint64_t started_at_ms;
    bool connected;
    /* disk */
    bool have_dev;
    unsigned dev_major, dev_minor;
    bool have_sample;
    diskstats_dev_t last_sample;
    uint64_t last_sample_mono;
    char hostname[128];
    running_t *running;
    int exit_code;
    bool stopping;
};

/* ---- sending ---- */

static int s_send(agent_t *a, Godwit__Envelope *env)
{
    env->msg_id = ++a->next_msg_id;
    env->sent_at_ms = units_now_ms();
    size_t len = 0;
    uint8_t *buf = wire_encode(env, &len);
    if (!buf) {
        log_error("message too large to send (%s)", wire_body_name(env));
        return -EMSGSIZE;
    }
    const void *parts[1] = { buf };
    int rc = zuv_send_parts(a->dealer_watch, a->dealer, parts, &len, 1);
    free(buf);
    if (rc != 0 && rc != -EAGAIN)
        log_warn("send %s: %s", wire_body_name(env), zmq_strerror(-rc));
    return rc;
}

static void s_send_hello(agent_t *a)
{
    const char *caps[8];
    size_t n = 0;
    for (const char *const *c = a->engine ? a->engine->capabilities : NULL; c && *c &&
                                                                                n < 6; c++)
        caps[n++] = *c;
    caps[n++] = "ping";
    if (a->proxies)
        caps[n++] = "proxy";
    Godwit__Hello h = GODWIT__HELLO__INIT;
    h.agent_version = (char *)GODWIT_VERSION;
    h.protocol_version = WIRE_VERSION;
    h.role = a->cfg->role == AGENT_ROLE_SOURCE   ? GODWIT__ROLE__ROLE_SOURCE
             : a->cfg->role == AGENT_ROLE_TARGET ? GODWIT__ROLE__ROLE_TARGET
                                                 : GODWIT__ROLE__ROLE_PROXY;
    h.n_capabilities = n;
    h.capabilities = (char **)caps;
    h.hostname = a->hostname;
    h.highest_epoch = epochs_highest(a->epochs);
    Godwit__EpochClaim claim;
    const claim_t *held = epochs_claim(a->epochs);
    if (held) {
        claim_to_msg(held, &claim);
        h.claim = &claim;
    }
    h.started_at_ms = a->started_at_ms;
    h.report_interval_ms = (uint32_t)a->cfg->report_interval_ms;
    h.claimed_name = a->cfg->name ? a->cfg->name : (char *)"";
    h.jurisdiction = a->cfg->jurisdiction ? a->cfg->jurisdiction : (char *)"";
    h.site = a->cfg->site ? a->cfg->site : (char *)"";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    if (s_send(a, &env) == 0)
        log_info("hello sent to %s (epoch seen %llu)", a->cfg->coordinator.endpoint,
                 (unsigned long long)h.highest_epoch);
}

static void s_send_event(agent_t *a, Godwit__Severity sev, const char *code, const char *msg,
                         const char *object)
{
    Godwit__Event e = GODWIT__EVENT__INIT;
    e.severity = sev;
    e.code = (char *)code;
    e.message = (char *)msg;
    e.object = (char *)(object ? object : "");
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_EVENT;
    env.event = &e;
    s_send(a, &env);
}

/* ---- reports ---- */

/* Fills d (malloc'd strings) from the filesystem and device of path (the
 * engine's data directory). */
static void s_collect_disk(agent_t *a, const char *path, Godwit__Disk *d)
{
    d->path = xstrdup(path);
    d->error = xstrdup("");
    d->device = xstrdup("");
    diskstats_fs_t fs;
    int rc = diskstats_fs(path, &fs);
    if (rc != 0) {
        free(d->error);
        d->error = xasprintf("statvfs %s: %s", path, strerror(-rc));
        return;
    }
    d->ok = true;
    d->size_bytes = fs.size_bytes;
    d->free_bytes = fs.free_bytes;
    d->free_inodes = fs.free_inodes;
    if (!a->have_dev) {
        rc = diskstats_device_for_path(path, &a->dev_major, &a->dev_minor);
        if (rc != 0)
            return; /* no block device (tmpfs): no I/O figures */
        a->have_dev = true;
    }
    diskstats_dev_t now;
    if (diskstats_read(a->dev_major, a->dev_minor, &now) != 0) {
        a->have_sample = false;
        return;
    }
    free(d->device);
    d->device = xstrdup(now.name);
    uint64_t mono = units_mono_ms();
    if (a->have_sample && mono > a->last_sample_mono) {
        diskstats_rates_t r;
        diskstats_rates(&a->last_sample, &now, mono - a->last_sample_mono, &r);
        d->has_io = true;
        d->read_bytes_per_sec = r.read_bytes_per_sec;
        d->write_bytes_per_sec = r.write_bytes_per_sec;
        d->read_iops = r.read_iops;
        d->write_iops = r.write_iops;
        d->util_percent = r.util_percent;
    }
    a->last_sample = now;
    a->last_sample_mono = mono;
    a->have_sample = true;
}

static void s_send_report(agent_t *a)
{
    Godwit__Report *r = xmalloc(sizeof *r);
    godwit__report__init(r);
    r->seq = ++a->report_seq;
    r->collected_at_ms = units_now_ms();
    r->interval_ms = (uint32_t)a->cfg->report_interval_ms;
    if (a->engine && a->engine->disk_path) {
        r->disk = xmalloc(sizeof *r->disk);
        godwit__disk__init(r->disk);
        s_collect_disk(a, a->engine->disk_path, r->disk);
    }
    if (a->engine)
        engine_report(a->engine, r);
    if (a->proxies)
        proxy_set_report(a->proxies, r);
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_REPORT;
    env.report = r;
    s_send(a, &env);
    godwit__report__free_unpacked(r, NULL);
}

static void s_tick(uv_timer_t *t)
{
    agent_t *a = t->data;
    /* Report what we know now, then start the next database refresh: a
     * slow or hung database never delays the report. */
    s_send_report(a);
    if (a->engine)
        engine_tick(a->engine);
    if (a->proxies)
        proxy_set_tick(a->proxies);
}

static void s_proxy_event(bool error, const char *code, const char *proxy, const char *message,
                          void *arg)
{
    agent_t *a = arg;
    s_send_event(a, error ? GODWIT__SEVERITY__SEVERITY_WARNING : GODWIT__SEVERITY__SEVERITY_INFO,
                 code, message, proxy);
}

static void s_engine_event(Godwit__Severity severity, const char *code, const char *message,
                           const char *object, void *arg)
{
    agent_t *a = arg;
    s_send_event(a, severity, code, message, object);
}

/* ---- commands ---- */

static void s_send_result(agent_t *a, Godwit__Result *res, const char *id)
{
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
    env.result = res;
    res->highest_epoch = epochs_highest(a->epochs);
    size_t len = godwit__result__get_packed_size(res);
    uint8_t *packed = xmalloc(len);
    godwit__result__pack(res, packed);
    epochs_complete(a->epochs, id, packed, len);
    free(packed);
    s_send(a, &env);
}

static void s_running_free(running_t *r)
{
    for (size_t i = 0; i < r->n_also; i++)
        free(r->also_ids[i]);
    free(r->also_ids);
    free(r->id);
    free(r);
}

static void s_running_unlink(agent_t *a, running_t *r)
{
    for (running_t **p = &a->running; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}


static void s_step_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    running_t *r = arg;
    agent_t *a = r->agent;
    s_running_unlink(a, r);
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = r->id;
    res.epoch = r->epoch;
    if (error) {
        res.status = GODWIT__STATUS__STATUS_FAILED;
        res.message = (char *)error;
        log_warn("command %s: failed: %s", r->id, error);
        if (payload) /* what is known of the failure (Promote's) */
            actions_set_payload(&res, r->action, payload);
    } else {
        res.status = GODWIT__STATUS__STATUS_OK;
        res.message = (char *)"";
        if (payload)
            actions_set_payload(&res, r->action, payload);
        log_info("command %s: done", r->id);
    }
    s_send_result(a, &res, r->id);
    for (size_t i = 0; i < r->n_also; i++) {
        res.command_id = r->also_ids[i];
        s_send_result(a, &res, r->also_ids[i]);
    }
    if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    s_running_free(r);
}

/* The running copy of action into database for name, or NULL:
 * PostgreSQL's BulkCopy (name: the subscription) or MariaDB's MyCopy
 * (name: the replication connection). */
static running_t *s_running_copy(agent_t *a, Godwit__Command__ActionCase action,
                                 const char *database, const char *name)
{
    for (running_t *r = a->running; r; r = r->next)
        if (r->action == action && engine_copy_is(a->engine, r->step, database, name))
            return r;
    return NULL;
}

/* Stops the running copy (action's) of a subscription about to be dropped
 * (its slot cannot be dropped while the copy uses it), or on MariaDB of a
 * replication connection about to be removed (the copy would make it
 * again); its command fails. */
static void s_stop_copy(agent_t *a, Godwit__Command__ActionCase action, const char *database,
                        const char *name)
{
    running_t *r;
    while ((r = s_running_copy(a, action, database, name)) != NULL) {
        log_info("command %s: stopping the copy: \"%s\" is being dropped", r->id, name);
        step_cancel(&r->step);
        s_step_done(NULL, "stopped: our objects are being dropped", r);
    }
}

/* The running step of action, or NULL. */
static running_t *s_running_of(agent_t *a, Godwit__Command__ActionCase action)
{
    for (running_t *r = a->running; r; r = r->next)
        if (r->action == action)
            return r;
    return NULL;
}

/* Stops the running steps of action (their commands fail). */
static void s_stop_running(agent_t *a, Godwit__Command__ActionCase action)
{
    running_t *r;
    while ((r = s_running_of(a, action)) != NULL) {
        log_info("command %s: stopping it: what it makes is being dropped", r->id);
        step_cancel(&r->step);
        s_step_done(NULL, "stopped: our objects are being dropped", r);
    }
}

/* A command sent again (a coordinator that restarted or timed out) joins
 * the same step still running: the agent's one base backup, its one
 * promote, its one rejoin, or the MariaDB copy for the same replication
 * connection; its answer goes to both. True if cmd joined one. */
static bool s_join_running(agent_t *a, const Godwit__Command *cmd)
{
    running_t *r = NULL;
    if (cmd->action_case == GODWIT__COMMAND__ACTION_BASE_BACKUP ||
        cmd->action_case == GODWIT__COMMAND__ACTION_PROMOTE ||
        cmd->action_case == GODWIT__COMMAND__ACTION_REJOIN)
        r = s_running_of(a, cmd->action_case);
    if (cmd->action_case == GODWIT__COMMAND__ACTION_MY_COPY && cmd->my_copy &&
        step_godwit_name(cmd->my_copy->connection))
        r = s_running_copy(a, GODWIT__COMMAND__ACTION_MY_COPY, cmd->my_copy->database,
                           cmd->my_copy->connection);
    if (!r)
        return false;
    r->also_ids = xrealloc(r->also_ids, (r->n_also + 1) * sizeof *r->also_ids);
    r->also_ids[r->n_also++] = xstrdup(cmd->id);
    log_info("command %s: joins command %s, still running", cmd->id, r->id);
    return true;
}

/* Starts a database step; false with why (malloc'd) if the request is
 * refused or invalid. */
static bool s_start_step(agent_t *a, const Godwit__Command *cmd, char **why)
{
    running_t *r = xcalloc(1, sizeof *r);
    r->agent = a;
    r->id = xstrdup(cmd->id);
    r->epoch = cmd->epoch;
    r->action = cmd->action_case;
    /* A running copy has a godwit name (the engine refuses others): one
     * whose subscription is about to be dropped stops first. */
    if (cmd->action_case == GODWIT__COMMAND__ACTION_DROP_OBJECTS && cmd->drop_objects &&
        step_godwit_name(cmd->drop_objects->subscription))
        s_stop_copy(a, GODWIT__COMMAND__ACTION_BULK_COPY, cmd->drop_objects->database,
                    cmd->drop_objects->subscription);
    /* Likewise the base backup of a standby about to be removed. */
    if (cmd->action_case == GODWIT__COMMAND__ACTION_DROP_OBJECTS && cmd->drop_objects &&
        step_godwit_name(cmd->drop_objects->standby_of_slot))
        s_stop_running(a, GODWIT__COMMAND__ACTION_BASE_BACKUP);
    /* And MariaDB's copy for a replication connection about to be removed. */
    if (cmd->action_case == GODWIT__COMMAND__ACTION_DROP_OBJECTS && cmd->drop_objects &&
        step_godwit_name(cmd->drop_objects->replica_connection))
        s_stop_copy(a, GODWIT__COMMAND__ACTION_MY_COPY, cmd->drop_objects->database,
                    cmd->drop_objects->replica_connection);
    r->step = engine_start(a->engine, cmd, s_step_done, r, why);
    if (!r->step) {
        s_running_free(r);
        return false;
    }
    r->next = a->running;
    a->running = r;
    log_info("command %s: step started", cmd->id);
    return true;
}

/* A proxy action's result carries the state read back, also when it failed. */
static void s_proxy_done(Godwit__ProxyState *state, const char *error, void *arg)
{
    running_t *r = arg;
    agent_t *a = r->agent;
    s_running_unlink(a, r);
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = r->id;
    res.epoch = r->epoch;
    res.status = error ? GODWIT__STATUS__STATUS_FAILED : GODWIT__STATUS__STATUS_OK;
    res.message = (char *)(error ? error : "");
    if (state) {
        res.payload_case = GODWIT__RESULT__PAYLOAD_PROXY;
        res.proxy = state;
    }
    if (error)
        log_warn("command %s: failed: %s", r->id, error);
    else
        log_info("command %s: done", r->id);
    s_send_result(a, &res, r->id);
    if (state)
        godwit__proxy_state__free_unpacked(state, NULL);
    s_running_free(r);
}

/* Queues a proxy action; false with why if the request is invalid. */
static bool s_start_proxy(agent_t *a, const Godwit__Command *cmd, char *why, size_t whylen)
{
    running_t *r = xcalloc(1, sizeof *r);
    r->agent = a;
    r->id = xstrdup(cmd->id);
    r->epoch = cmd->epoch;
    r->action = cmd->action_case;
    r->proxy = true;
    if (!proxy_set_run(a->proxies, cmd->proxy_action, s_proxy_done, r, why, whylen)) {
        s_running_free(r);
        return false;
    }
    r->next = a->running;
    a->running = r;
    log_info("command %s: proxy %s: operation %d queued", cmd->id, cmd->proxy_action->proxy,
             (int)cmd->proxy_action->op);
    return true;
}

static void s_on_command(agent_t *a, const Godwit__Command *cmd)
{
    char err[256] = "";
    char *why = NULL; /* a refusal's reason, freed at the end */
    const uint8_t *cached = NULL;
    size_t cached_len = 0;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.command_id = cmd->id;
    res.epoch = cmd->epoch;
    claim_t claim;
    bool has_claim = claim_from_msg(cmd->claim, &claim);
    epochs_verdict_t v = epochs_admit(a->epochs, cmd->id, cmd->epoch, has_claim ? &claim : NULL,
                                    &cached, &cached_len, err, sizeof err);
    switch (v) {
    case EPOCHS_STALE:
    case EPOCHS_TWIN:
    case EPOCHS_BAD_CLAIM:
    case EPOCHS_ERROR: {
        log_warn("command %s refused: %s", cmd->id, err);
        Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
        res.status = v == EPOCHS_ERROR       ? GODWIT__STATUS__STATUS_FAILED
                     : v == EPOCHS_BAD_CLAIM ? GODWIT__STATUS__STATUS_BAD_CLAIM
                                            : GODWIT__STATUS__STATUS_STALE_EPOCH;
        res.message = err;
        res.highest_epoch = epochs_highest(a->epochs);
        /* A refusal for a newer coordinator or a twin carries the claim
         * that proves it: the coordinator stops only on that evidence. */
        Godwit__EpochClaim held_msg;
        const claim_t *held = epochs_claim(a->epochs);
        if (held && res.status == GODWIT__STATUS__STATUS_STALE_EPOCH) {
            claim_to_msg(held, &held_msg);
            res.claim = &held_msg;
        }
        env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
        env.result = &res;
        s_send(a, &env);
        return;
    }
    case EPOCHS_IN_PROGRESS:
        log_debug("command %s re-sent while running: result will follow", cmd->id);
        return;
    case EPOCHS_REPLAY: {
        Godwit__Result *old = godwit__result__unpack(NULL, cached_len, cached);
        if (!old)
            return;
        old->replayed = true;
        Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
        env.body_case = GODWIT__ENVELOPE__BODY_RESULT;
        env.result = old;
        log_info("command %s re-sent: answering with its first result", cmd->id);
        s_send(a, &env);
        godwit__result__free_unpacked(old, NULL);
        return;
    }
    case EPOCHS_EXECUTE:
        break;
    }
    if (cmd->deadline_unix_ms < units_now_ms()) {
        res.status = GODWIT__STATUS__STATUS_EXPIRED;
        res.message = (char *)"deadline passed before the command arrived";
        s_send_result(a, &res, cmd->id);
        return;
    }
    Godwit__PingResult pr = GODWIT__PING_RESULT__INIT;
    switch (cmd->action_case) {
    case GODWIT__COMMAND__ACTION_PING:
        res.status = GODWIT__STATUS__STATUS_OK;
        res.message = (char *)"";
        pr.nonce = cmd->ping->nonce;
        res.payload_case = GODWIT__RESULT__PAYLOAD_PING;
        res.ping = &pr;
        break;
    case GODWIT__COMMAND__ACTION_BULK_COPY_STATUS: {
        const Godwit__BulkCopyStatus *q = cmd->bulk_copy_status;
        /* BulkCopy's, or on MariaDB MyCopy's (name: its connection). */
        running_t *copy =
            q ? s_running_copy(a, GODWIT__COMMAND__ACTION_BULK_COPY, q->database, q->name) : NULL;
        if (q && !copy)
            copy = s_running_copy(a, GODWIT__COMMAND__ACTION_MY_COPY, q->database, q->name);
        Godwit__SyncStatusResult none = GODWIT__SYNC_STATUS_RESULT__INIT;
        Godwit__SyncStatusResult *st = copy ? engine_copy_progress(a->engine, copy->step) : &none;
        res.status = GODWIT__STATUS__STATUS_OK;
        res.message = (char *)"";
        res.payload_case = GODWIT__RESULT__PAYLOAD_SYNC_STATUS;
        res.sync_status = st;
        s_send_result(a, &res, cmd->id);
        if (st != &none)
            godwit__sync_status_result__free_unpacked(st, NULL);
        return;
    }
    case GODWIT__COMMAND__ACTION_PROXY_ACTION:
        if (!a->proxies) {
            res.status = GODWIT__STATUS__STATUS_FAILED;
            res.message = (char *)"this agent has no proxies in its config";
            break;
        }
        if (s_start_proxy(a, cmd, err, sizeof err))
            return; /* the result follows when the proxy answered */
        res.status = GODWIT__STATUS__STATUS_FAILED;
        res.message = err;
        break;
    case GODWIT__COMMAND__ACTION_BULK_COPY: {
        const Godwit__BulkCopy *q = cmd->bulk_copy;
        running_t *copy =
            q ? s_running_copy(a, GODWIT__COMMAND__ACTION_BULK_COPY, q->database, q->name) : NULL;
        if (copy) {
            /* A coordinator that restarted, or timed out, asks again: the
             * copy running answers both. */
            copy->also_ids = xrealloc(copy->also_ids, (copy->n_also + 1) * sizeof *copy->also_ids);
            copy->also_ids[copy->n_also++] = xstrdup(cmd->id);
            log_info("command %s: joins the copy of command %s, still running", cmd->id,
                     copy->id);
            return;
        }
        /* the first copy of it starts as any step */
    }
        /* fall through */
    default:
        if (s_join_running(a, cmd))
            return;
        if (!actions_find(cmd->action_case)) {
            res.status = GODWIT__STATUS__STATUS_UNKNOWN_ACTION;
            res.message = (char *)"this agent does not know that action";
            break;
        }
        if (!a->engine) {
            res.status = GODWIT__STATUS__STATUS_FAILED;
            res.message = (char *)"this agent has no postgres or mariadb section in its config";
            break;
        }
        if (s_start_step(a, cmd, &why))
            return;
        log_warn("command %s refused: %s", cmd->id, why);
        res.status = GODWIT__STATUS__STATUS_FAILED;
        res.message = why;
        break;
    }
    s_send_result(a, &res, cmd->id);
    free(why);
}

static void s_dealer_readable(zuv_t *w, void *sock, void *arg)
{
    agent_t *a = arg;
    for (int i = 0; i < AGENT_RECV_BUDGET && !a->stopping; i++) {
        zmq_msg_t part;
        int n = 0;
        int rc = zuv_recv_parts(sock, &part, 1, &n);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            log_warn("malformed message from coordinator dropped: %s", zmq_strerror(-rc));
            continue;
        }
        const char *reason = NULL;
        Godwit__Envelope *env = wire_decode(zmq_msg_data(&part), zmq_msg_size(&part), &reason);
        if (!env) {
            log_warn("bad message from coordinator (%zu bytes) dropped: %s", zmq_msg_size(&part),
                     reason);
        } else if (env->body_case == GODWIT__ENVELOPE__BODY_COMMAND) {
            s_on_command(a, env->command);
        } else {
            log_warn("unexpected %s message from coordinator dropped", wire_body_name(env));
        }
        wire_free(&env);
        zmq_msg_close(&part);
    }
}

/* One event of the DEALER's monitor: connected (say hello), gone,
 * refused. */
static void s_monitor_event(uint16_t ev, uint32_t value, const char *ep, void *arg)
{
    agent_t *a = arg;
    switch (ev) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        a->connected = true;
        log_info("connected to coordinator %s", ep);
        s_send_hello(a);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (a->connected)
            log_warn("disconnected from coordinator %s; reconnecting", ep);
        a->connected = false;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        log_error("coordinator %s refused us: %s (code 0x%x); is our public key in its "
                  "allowed_keys folder?",
                  ep, zuv_event_name(ev), value);
        break;
    default:
        log_debug("coordinator link %s: %s", ep, zuv_event_name(ev));
    }
}

static void s_monitor_readable(zuv_t *w, void *sock, void *arg)
{
    (void)w;
    zuv_monitor_drain(sock, AGENT_RECV_BUDGET, s_monitor_event, arg);
}

/* ---- lifecycle ---- */

static void s_on_signal(uv_signal_t *s, int signum)
{
    agent_t *a = s->data;
    log_info("signal %d: stopping", signum);
    agent_stop(a, AGENT_EXIT_OK);
}

static bool s_dealer_setup(agent_t *a)
{
    void *d = a->dealer = zmq_socket(a->zctx, ZMQ_DEALER);
    if (!d)
        return false;
    /* ZMTP heartbeats let the agent notice a dead coordinator and redial;
     * no TTL, which would arm a timer per connection on the coordinator. */
    int one = 1, zero = 0, ivl = 100, ivl_max = 1000, hb = 1000, hb_to = 3000, hwm = 100;
    int64_t maxmsg = WIRE_HEADER_LEN + WIRE_MAX_BODY;
    if (zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, a->server_key, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, a->keys.public_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, a->keys.secret_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(d, ZMQ_IMMEDIATE, &one, sizeof one) != 0 ||
        zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(d, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) != 0 ||
        zmq_setsockopt(d, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) != 0 ||
        zmq_setsockopt(d, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb) != 0 ||
        zmq_setsockopt(d, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof hb_to) != 0 ||
        zmq_setsockopt(d, ZMQ_HEARTBEAT_TTL, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(d, ZMQ_HANDSHAKE_IVL, &hb_to, sizeof hb_to) != 0 ||
        zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        log_error("dealer: socket options: %s", zmq_strerror(zmq_errno()));
        return false;
    }
    char ep[64];
    snprintf(ep, sizeof ep, MONITOR_ENDPOINT_FMT, (void *)a);
    if (zmq_socket_monitor(d, ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED) != 0)
        return false;
    a->monitor = zmq_socket(a->zctx, ZMQ_PAIR);
    if (!a->monitor || zmq_connect(a->monitor, ep) != 0)
        return false;
    zmq_setsockopt(a->monitor, ZMQ_LINGER, &zero, sizeof zero);
    a->monitor_watch = zuv_new(a->loop, a->monitor, s_monitor_readable, a);
    a->dealer_watch = zuv_new(a->loop, d, s_dealer_readable, a);
    if (!a->monitor_watch || !a->dealer_watch)
        return false;
    if (zmq_connect(d, a->cfg->coordinator.endpoint) != 0) {
        log_error("cannot connect to %s: %s", a->cfg->coordinator.endpoint, zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}

static void s_handle_closed(uv_handle_t *h)
{
    agent_t *a = h->data;
    a->open_handles--;
}

agent_t *agent_new(uv_loop_t *loop, const agent_config_t *cfg)
{
    char err[512];
    agent_t *a = xcalloc(1, sizeof *a);
    a->loop = loop;
    a->cfg = cfg;
    a->started_at_ms = units_now_ms();
    a->exit_code = AGENT_EXIT_OK;
    if (gethostname(a->hostname, sizeof a->hostname - 1) != 0)
        snprintf(a->hostname, sizeof a->hostname, "unknown");
    uv_timer_init(loop, &a->tick);
    uv_signal_init(loop, &a->sigint);
    uv_signal_init(loop, &a->sigterm);
    a->tick.data = a->sigint.data = a->sigterm.data = a;
    a->open_handles = 3;
    if (!zmq_has("curve")) {
        log_error("this libzmq was built without CURVE: refusing to run unencrypted");
        goto fail;
    }
    if (keys_load_secret(cfg->secret_key, &a->keys, err, sizeof err) != 0 ||
        keys_load_public(cfg->coordinator.public_key, a->server_key, err, sizeof err) != 0) {
        log_error("%s", err);
        goto fail;
    }
    if (keys_load_sign_public(cfg->coordinator.signing_key, a->sign_pk, err, sizeof err) != 0) {
        log_error("coordinator.signing_key: %s", err);
        goto fail;
    }
    a->epochs = epochs_open(cfg->state_dir, a->sign_pk, err, sizeof err);
    if (!a->epochs) {
        log_error("%s", err);
        goto fail;
    }
    if (!engine_open(loop, cfg, cfg->name ? cfg->name : a->hostname, s_engine_event, a,
                     &a->engine))
        goto fail;
    if (cfg->proxies.count)
        a->proxies = proxy_set_new(loop, &cfg->proxies, s_proxy_event, a);
    a->zctx = zmq_ctx_new();
    if (!s_dealer_setup(a))
        goto fail;
    uv_timer_start(&a->tick, s_tick, (uint64_t)cfg->report_interval_ms,
                   (uint64_t)cfg->report_interval_ms);
    uv_signal_start(&a->sigint, s_on_signal, SIGINT);
    uv_signal_start(&a->sigterm, s_on_signal, SIGTERM);
    log_info("agent %s (role %s) dialing %s, reporting every %lld ms",
             cfg->name ? cfg->name : "", agent_config_role_name(cfg->role),
             cfg->coordinator.endpoint, (long long)cfg->report_interval_ms);
    return a;
fail:
    agent_stop(a, AGENT_EXIT_ERROR);
    uv_run(loop, UV_RUN_DEFAULT);
    agent_destroy(&a);
    return NULL;
}

void agent_stop(agent_t *a, int exit_code)
{
    if (a->stopping)
        return;
    a->stopping = true;
    a->exit_code = exit_code;
    zuv_destroy(&a->dealer_watch);
    zuv_destroy(&a->monitor_watch);
    if (a->dealer) {
        zmq_socket_monitor(a->dealer, NULL, 0);
        zmq_close(a->dealer);
        a->dealer = NULL;
    }
    if (a->monitor) {
        zmq_close(a->monitor);
        a->monitor = NULL;
    }
    proxy_set_stop(&a->proxies); /* no proxy callback after this; a paused proxy is resumed */
    while (a->running) {
        running_t *r = a->running;
        a->running = r->next;
        step_cancel(&r->step);
        s_running_free(r);
    }
    engine_close(&a->engine); /* after its steps */
    uv_close((uv_handle_t *)&a->tick, s_handle_closed);
    uv_close((uv_handle_t *)&a->sigint, s_handle_closed);
    uv_close((uv_handle_t *)&a->sigterm, s_handle_closed);
}

int agent_destroy(agent_t **ap)
{
    agent_t *a = *ap;
    if (!a)
        return AGENT_EXIT_ERROR;
    *ap = NULL;
    int code = a->exit_code;
    if (a->zctx)
        zmq_ctx_term(a->zctx);
    epochs_close(&a->epochs);
    sodium_memzero(&a->keys, sizeof a->keys);
    free(a);
    return code;
}
