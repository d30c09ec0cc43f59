/*
 * proxy: see proxy.h. Owns one slot per configured proxy: its driver, its
 * queue of actions, its lease timer and the last state read back from it.
 * The queue is started from a zero-delay timer (the kick), so no callback
 * ever runs from inside proxy_set_run and a driver may finish from inside
 * its own run.
 */
#include "proxy.h"
#include "proxy_haproxy.h"
#include "proxy_nginx.h"
#include "proxy_pgbouncer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>

#include "log.h"
#include "units.h"
#include "xalloc.h"

#define PROXY_REFRESH_MS 2000     /* idle proxies are read this often at most */
#define PROXY_LEASE_RETRY_MS 1000 /* a failed automatic resume is retried */

typedef struct slot slot_t;

/* One queued action. done NULL: our own (lease expiry, refresh). */
typedef struct job {
    proxydrv_req_t req;
    uint64_t lease_ms;
    proxy_done_cb done;
    void *arg;
    bool lease_resume;
    bool then_resume;              /* a SWITCH to go on as a RESUME once read back */
    bool resume_sent;              /* it did: the RESUME part runs or ran */
    proxydrv_out_t out;
    uint64_t started_mono;
    struct job *next;
} job_t;

struct slot {
    proxy_set_t *set;
    const agent_proxy_t *cfg;
    proxydrv_t *drv;
    job_t *queue;                  /* head runs when running */
    bool running;
    uv_timer_t kick;
    uv_timer_t lease;
    bool lease_on;
    uint64_t lease_until_mono;
    bool paused;                   /* as last read or done */
    uint64_t paused_since_mono;
    bool lease_expired;            /* the last pause ended by its lease */
    /* last read, for reports */
    bool known;
    proxydrv_backend_t backend;
    char address[300];
    char error[256];
    bool reachable;                /* the last read succeeded */
    uint64_t reached_at_ms;        /* wall clock of the last read that did; 0: none yet */
    uint64_t refreshed_mono;
    bool stop_resumed;             /* stopping: the resume on the way out was tried */
    bool closed;                   /* stopping: driver gone, handles closing */
};

struct proxy_set {
    uv_loop_t *loop;
    slot_t *slots;
    size_t n;
    int open_handles;
    proxy_event_cb event;
    void *arg;
    bool stopping;                 /* proxy_set_stop: no callbacks, winding down */
    char *failpoint;               /* GODWIT_FAILPOINT at the start (tests only), or NULL */
};

static const char *const s_backend_names[] = { "blue", "green" };

static const char *s_backend_name(proxydrv_backend_t b)
{
    return b == PROXYDRV_BLUE || b == PROXYDRV_GREEN ? s_backend_names[b] : "";
}

static const char *s_op_name(Godwit__ProxyAction__Op op)
{
    switch (op) {
    case GODWIT__PROXY_ACTION__OP__OP_STATUS: return "status";
    case GODWIT__PROXY_ACTION__OP__OP_PAUSE: return "pause";
    case GODWIT__PROXY_ACTION__OP__OP_RESUME: return "resume";
    case GODWIT__PROXY_ACTION__OP__OP_SWITCH: return "switch";
    default: return "?";
    }
}

/* ---- jobs ---- */

static void s_out_free(proxydrv_out_t *o)
{
    for (size_t i = 0; i < o->n_steps; i++) {
        free(o->steps[i]->name);
        free(o->steps[i]);
    }
    free(o->steps);
    o->steps = NULL;
    o->n_steps = 0;
}

static void s_job_free(job_t *j)
{
    s_out_free(&j->out);
    free(j);
}

static uint64_t s_lease_left(const slot_t *sl)
{
    uint64_t now = units_mono_ms();
    return sl->lease_on && sl->lease_until_mono > now ? sl->lease_until_mono - now : 0;
}

/* The state to hand out: what the driver read, steps moved over. */
static Godwit__ProxyState *s_state_new(slot_t *sl, job_t *j, uint64_t paused_ms)
{
    Godwit__ProxyState *st = xmalloc(sizeof *st);
    godwit__proxy_state__init(st);
    st->proxy = xstrdup(sl->cfg->name);
    st->kind = xstrdup(agent_config_proxy_kind_name(sl->cfg->kind));
    st->backend = xstrdup(s_backend_name(j->out.backend));
    st->address = xstrdup(j->out.address);
    st->paused = j->out.paused;
    st->lease_left_ms = s_lease_left(sl);
    st->already = j->out.already;
    st->paused_ms = paused_ms;
    st->error = xstrdup("");
    st->terminated = j->out.terminated;
    st->resume_sent = j->resume_sent;
    st->steps = j->out.steps;
    st->n_steps = j->out.n_steps;
    j->out.steps = NULL;
    j->out.n_steps = 0;
    return st;
}

static void s_on_lease(uv_timer_t *t);

static void s_lease_arm(slot_t *sl, uint64_t ms)
{
    sl->lease_on = true;
    sl->lease_until_mono = units_mono_ms() + ms;
    uv_timer_start(&sl->lease, s_on_lease, ms, 0);
    log_info("proxy %s: paused under a lease of %llu ms", sl->cfg->name, (unsigned long long)ms);
}

static void s_lease_end(slot_t *sl)
{
    sl->lease_on = false;
    uv_timer_stop(&sl->lease);
}

static void s_kick_soon(slot_t *sl);

static job_t *s_enqueue(slot_t *sl, const proxydrv_req_t *req)
{
    job_t *j = xcalloc(1, sizeof *j);
    j->req = *req;
    j->out.backend = PROXYDRV_OTHER;
    job_t **tail = &sl->queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    s_kick_soon(sl);
    return j;
}

/* Queues an operation of our own (no backend, no callback). */
static job_t *s_enqueue_own(slot_t *sl, Godwit__ProxyAction__Op op)
{
    proxydrv_req_t req = { .op = op, .backend = PROXYDRV_OTHER };
    return s_enqueue(sl, &req);
}

static void s_on_lease(uv_timer_t *t)
{
    slot_t *sl = t->data;
    /* A resume of ours already queued is enough. */
    for (job_t *j = sl->queue; j; j = j->next)
        if (j->lease_resume)
            return;
    log_warn("proxy %s: lease ran out while paused: resuming traffic on our own",
             sl->cfg->name);
    job_t *j = s_enqueue_own(sl, GODWIT__PROXY_ACTION__OP__OP_RESUME);
    j->lease_resume = true;
}

/* Applies what a finished job did to the slot's beliefs and its lease. */
static uint64_t s_apply(slot_t *sl, job_t *j, const char *error)
{
    uint64_t now = units_mono_ms(), paused_ms = 0;
    bool was = sl->paused;
    if (j->out.known) {
        sl->known = true;
        sl->backend = j->out.backend;
        snprintf(sl->address, sizeof sl->address, "%s", j->out.address);
        sl->paused = j->out.paused;
        sl->error[0] = '\0';
        sl->reachable = true;
        sl->reached_at_ms = units_now_ms();
    } else if (error) {
        snprintf(sl->error, sizeof sl->error, "%s", error);
        sl->reachable = false;
    }
    sl->refreshed_mono = now;
    if (sl->paused && !was)
        sl->paused_since_mono = now;
    if (!sl->paused && was)
        paused_ms = now - sl->paused_since_mono;
    if (!sl->paused) {
        s_lease_end(sl);
        return paused_ms;
    }
    if (sl->set->stopping)
        return paused_ms; /* no lease on the way out: one resume is tried */
    Godwit__ProxyAction__Op op = j->req.op;
    bool renews = !error && (op == GODWIT__PROXY_ACTION__OP__OP_PAUSE ||
                             op == GODWIT__PROXY_ACTION__OP__OP_SWITCH);
    if (renews || !sl->lease_on) {
        if (!renews)
            log_warn("proxy %s: found paused with no lease of ours: applying the configured "
                     "lease", sl->cfg->name);
        s_lease_arm(sl, j->lease_ms ? j->lease_ms : (uint64_t)sl->cfg->lease_ms);
    }
    return paused_ms;
}

/* A SWITCH with then_resume whose switch is done: true if it goes on as
 * the RESUME (the same job, still at the head of the queue, run again);
 * false with *error set if the proxy does not read back the new backend. */
static bool s_then_resume(slot_t *sl, job_t *j, const char **error, char *buf, size_t len)
{
    j->then_resume = false;
    if (!j->out.known || j->out.backend != j->req.backend) {
        snprintf(buf, len, "switched, but the proxy reads back %s (%.200s), not %s: not resumed",
                 j->out.known ? s_backend_name(j->out.backend) : "nothing",
                 j->out.known ? j->out.address : "?", s_backend_name(j->req.backend));
        *error = buf;
        return false;
    }
    s_apply(sl, j, NULL); /* its beliefs and lease, as after a SWITCH */
    log_info("proxy %s: switch done in %llu ms: backend %s (%s); resuming", sl->cfg->name,
             (unsigned long long)(units_mono_ms() - j->started_mono),
             s_backend_name(j->out.backend), j->out.address);
    j->req.op = GODWIT__PROXY_ACTION__OP__OP_RESUME;
    j->req.backend = PROXYDRV_OTHER;
    j->req.then_resume = false;
    j->resume_sent = true;
    sl->running = false;
    s_kick_soon(sl);
    return true;
}

static void s_drv_done(void *arg, const char *error)
{
    slot_t *sl = arg;
    job_t *j = sl->queue;
    char buf[320];
    if (j->then_resume && !error && !sl->set->stopping && s_then_resume(sl, j, &error, buf,
                                                                        sizeof buf))
        return;
    sl->queue = j->next;
    sl->running = false;
    uint64_t paused_ms = s_apply(sl, j, error);
    const char *name = sl->cfg->name;
    if (error)
        log_warn("proxy %s: %s failed: %s", name, s_op_name(j->req.op), error);
    else if (j->req.op != GODWIT__PROXY_ACTION__OP__OP_STATUS)
        log_info("proxy %s: %s done in %llu ms: backend %s (%s), %s%s", name,
                 s_op_name(j->req.op), (unsigned long long)(units_mono_ms() - j->started_mono),
                 j->out.known ? s_backend_name(j->out.backend) : "?", j->out.address,
                 j->out.paused ? "paused" : "not paused", j->out.already ? ", already so" : "");
    if (j->lease_resume) {
        proxy_set_t *s = sl->set;
        char msg[512];
        if (error) {
            snprintf(msg, sizeof msg, "lease ran out; resuming failed: %s (retrying)", error);
            if (!s->stopping) {
                uv_timer_start(&sl->lease, s_on_lease, PROXY_LEASE_RETRY_MS, 0);
                sl->lease_on = true;
            }
            if (s->event)
                s->event(true, "proxy.lease_resume_failed", name, msg, s->arg);
        } else {
            sl->lease_expired = true;
            snprintf(msg, sizeof msg, "lease ran out: traffic resumed on %s (%s) after %llu ms",
                     j->out.known ? s_backend_name(j->out.backend) : "?", j->out.address,
                     (unsigned long long)paused_ms);
            log_warn("proxy %s: %s", name, msg);
            if (s->event)
                s->event(true, "proxy.lease_expired", name, msg, s->arg);
        }
    } else if (j->req.op == GODWIT__PROXY_ACTION__OP__OP_PAUSE && !error) {
        sl->lease_expired = false;
    }
    if (j->resume_sent && !error && sl->set->failpoint &&
        strcmp(sl->set->failpoint, "proxy-after-switch-resume") == 0) {
        /* Tests: switched and resumed, then gone before answering (kill -9). */
        log_error("proxy %s: failpoint proxy-after-switch-resume: killing the agent",
                  sl->cfg->name);
        raise(SIGKILL);
    }
    if (j->done) {
        Godwit__ProxyState *st = j->out.known || j->resume_sent ? s_state_new(sl, j, paused_ms)
                                                                : NULL;
        j->done(st, error, j->arg);
    }
    s_job_free(j);
    if (sl->queue || sl->set->stopping)
        s_kick_soon(sl);
}

static void s_wind_down(slot_t *sl);

static void s_on_kick(uv_timer_t *t)
{
    slot_t *sl = t->data;
    if (sl->closed || sl->running)
        return;
    if (!sl->queue) {
        if (sl->set->stopping)
            s_wind_down(sl);
        return;
    }
    job_t *j = sl->queue;
    sl->running = true;
    j->started_mono = units_mono_ms();
    if (j->req.op != GODWIT__PROXY_ACTION__OP__OP_STATUS)
        log_info("proxy %s: %s%s%s", sl->cfg->name, s_op_name(j->req.op),
                 j->req.op == GODWIT__PROXY_ACTION__OP__OP_SWITCH ? " to " : "",
                 j->req.op == GODWIT__PROXY_ACTION__OP__OP_SWITCH ? s_backend_name(j->req.backend)
                                                                  : "");
    sl->drv->run(sl->drv, &j->req, &j->out, s_drv_done, sl);
}

static void s_kick_soon(slot_t *sl)
{
    if (!sl->closed)
        uv_timer_start(&sl->kick, s_on_kick, 0, 0);
}

/* ---- the set ---- */

static void s_handle_closed(uv_handle_t *h)
{
    slot_t *sl = h->data;
    proxy_set_t *s = sl->set;
    if (--s->open_handles == 0) {
        free(s->failpoint);
        free(s->slots);
        free(s);
    }
}

/* The driver of each kind (proxy_kind_t). */
static proxydrv_t *s_driver_of_kind(uv_loop_t *loop, const agent_proxy_t *cfg)
{
    static const proxy_drv_new_fn drivers[] = {
        [PROXY_KIND_PGBOUNCER] = proxy_pgbouncer_new,
        [PROXY_KIND_HAPROXY] = proxy_haproxy_new,
        [PROXY_KIND_NGINX] = proxy_nginx_new,
    };
    assert(cfg->kind >= 0 && (size_t)cfg->kind < sizeof drivers / sizeof *drivers);
    return drivers[cfg->kind](loop, cfg);
}

proxy_set_t *proxy_set_new(uv_loop_t *loop, const cfg_list_t *proxies, proxy_event_cb event,
                           void *arg)
{
    return proxy_set_new_with(loop, proxies, s_driver_of_kind, event, arg);
}

proxy_set_t *proxy_set_new_with(uv_loop_t *loop, const cfg_list_t *proxies,
                                proxy_drv_new_fn new_drv, proxy_event_cb event, void *arg)
{
    proxy_set_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    const char *fp = getenv("GODWIT_FAILPOINT");
    s->failpoint = fp && fp[0] ? xstrdup(fp) : NULL;
    s->event = event;
    s->arg = arg;
    s->n = proxies->count;
    s->slots = xcalloc(s->n ? s->n : 1, sizeof *s->slots);
    const agent_proxy_t *cfgs = proxies->items;
    for (size_t i = 0; i < s->n; i++) {
        slot_t *sl = &s->slots[i];
        sl->set = s;
        sl->cfg = &cfgs[i];
        sl->backend = PROXYDRV_OTHER;
        sl->drv = new_drv(loop, sl->cfg);
        uv_timer_init(loop, &sl->kick);
        uv_timer_init(loop, &sl->lease);
        sl->kick.data = sl->lease.data = sl;
        s->open_handles += 2;
        /* Learn each proxy's state now: a pause left by an earlier run gets a lease. */
        s_enqueue_own(sl, GODWIT__PROXY_ACTION__OP__OP_STATUS);
        log_info("proxy %s: %s, blue %s, green %s", sl->cfg->name,
                 agent_config_proxy_kind_name(sl->cfg->kind), sl->cfg->blue, sl->cfg->green);
    }
    return s;
}

/* Stopping, on the kick timer (never inside a driver's callback): resume a
 * paused proxy once, then let the driver and the handles go. */
static void s_wind_down(slot_t *sl)
{
    if (sl->paused && !sl->stop_resumed) {
        sl->stop_resumed = true;
        log_warn("proxy %s: stopping while traffic is paused: resuming it first", sl->cfg->name);
        s_enqueue_own(sl, GODWIT__PROXY_ACTION__OP__OP_RESUME);
        return;
    }
    if (sl->paused)
        log_error("proxy %s: stopping with traffic still paused (resuming failed); a restarted "
                  "agent resumes it when the configured lease runs out", sl->cfg->name);
    sl->closed = true;
    sl->drv->destroy(sl->drv);
    sl->drv = NULL;
    uv_close((uv_handle_t *)&sl->kick, s_handle_closed);
    uv_close((uv_handle_t *)&sl->lease, s_handle_closed);
}

void proxy_set_stop(proxy_set_t **sp)
{
    proxy_set_t *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    s->stopping = true;
    s->event = NULL;
    if (s->n == 0) {
        free(s->failpoint);
        free(s->slots);
        free(s);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        slot_t *sl = &s->slots[i];
        uv_timer_stop(&sl->lease);
        sl->lease_on = false;
        /* Only the running job goes on, without its callback. */
        job_t *keep = sl->running ? sl->queue : NULL;
        job_t *j = keep ? keep->next : sl->queue;
        while (j) {
            job_t *next = j->next;
            s_job_free(j);
            j = next;
        }
        if (keep) {
            keep->next = NULL;
            keep->done = NULL;
        }
        sl->queue = keep;
        s_kick_soon(sl);
    }
}

bool proxy_set_run(proxy_set_t *s, const Godwit__ProxyAction *a, proxy_done_cb done, void *arg,
                   char *why, size_t whylen)
{
    slot_t *sl = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->slots[i].cfg->name, a->proxy) == 0)
            sl = &s->slots[i];
    if (!sl) {
        snprintf(why, whylen, "no proxy named \"%s\" in this agent's config", a->proxy);
        return false;
    }
    proxydrv_req_t req = { .op = a->op, .backend = PROXYDRV_OTHER,
                           .pause_timeout_ms = a->pause_timeout_ms };
    switch (a->op) {
    case GODWIT__PROXY_ACTION__OP__OP_STATUS:
    case GODWIT__PROXY_ACTION__OP__OP_PAUSE:
    case GODWIT__PROXY_ACTION__OP__OP_RESUME:
        break;
    case GODWIT__PROXY_ACTION__OP__OP_SWITCH:
        if (strcmp(a->backend, "blue") == 0)
            req.backend = PROXYDRV_BLUE;
        else if (strcmp(a->backend, "green") == 0)
            req.backend = PROXYDRV_GREEN;
        else {
            snprintf(why, whylen, "switch: backend must be \"blue\" or \"green\", got \"%s\"",
                     a->backend);
            return false;
        }
        break;
    default:
        snprintf(why, whylen, "unknown proxy operation %d", (int)a->op);
        return false;
    }
    if (!req.pause_timeout_ms)
        req.pause_timeout_ms = (uint64_t)sl->cfg->pause_timeout_ms;
    job_t *j = s_enqueue(sl, &req);
    j->lease_ms = a->lease_ms;
    j->then_resume = a->then_resume && a->op == GODWIT__PROXY_ACTION__OP__OP_SWITCH;
    j->req.then_resume = j->then_resume;
    j->done = done;
    j->arg = arg;
    return true;
}

void proxy_set_tick(proxy_set_t *s)
{
    uint64_t now = units_mono_ms();
    for (size_t i = 0; i < s->n; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->queue || now - sl->refreshed_mono < PROXY_REFRESH_MS)
            continue;
        s_enqueue_own(sl, GODWIT__PROXY_ACTION__OP__OP_STATUS);
    }
}

void proxy_set_report(proxy_set_t *s, Godwit__Report *r)
{
    if (s->n == 0)
        return;
    r->proxies = xcalloc(s->n, sizeof *r->proxies);
    r->n_proxies = s->n;
    for (size_t i = 0; i < s->n; i++) {
        slot_t *sl = &s->slots[i];
        Godwit__ProxyState *st = xmalloc(sizeof *st);
        godwit__proxy_state__init(st);
        st->proxy = xstrdup(sl->cfg->name);
        st->kind = xstrdup(agent_config_proxy_kind_name(sl->cfg->kind));
        st->backend = xstrdup(sl->known ? s_backend_name(sl->backend) : "");
        st->address = xstrdup(sl->known ? sl->address : "");
        st->paused = sl->paused;
        st->lease_left_ms = s_lease_left(sl);
        st->error = xstrdup(sl->error);
        st->lease_expired = sl->lease_expired;
        st->reachable = sl->reachable;
        st->reached_at_ms = sl->reached_at_ms;
        r->proxies[i] = st;
    }
}
