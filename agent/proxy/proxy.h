/*
 * proxy: the proxies a proxy-role agent drives (the `proxies:` list of its
 * config), one typed ProxyAction at a time per proxy, and the lease.
 *
 * Every proxy has a queue: actions run one after the other, in arrival
 * order, each carried out by the driver of its kind:
 *   proxy_pgbouncer.c  admin console (PAUSE, RELOAD, RESUME, SHOW) and the
 *                      include file holding its [databases] entry
 *   proxy_haproxy.c    runtime API on the stats socket, server-state file
 *   proxy_nginx.c      upstream include file, test and reload commands
 * A SWITCH with then_resume is one job run twice: the switch, then, once
 * the proxy reads back the new backend, the resume; its answer is the
 * resume's (ProxyState.resume_sent says the resume was begun).
 * Drivers never block the loop (libpq async, uv pipes, uv_spawn) and read
 * the proxy's state back after every change: what a result says is what the
 * proxy said, not what we asked for.
 *
 * The lease (docs/proxy.md): a PAUSE holds traffic for lease_ms at most.
 * Another PAUSE or a SWITCH renews it, a RESUME ends it; when it runs out the
 * agent resumes the proxy by itself, towards whichever backend it points at
 * then, and reports it with an event "proxy.lease_expired". A proxy found
 * paused without a lease (the agent restarted mid-pause) gets the proxy's
 * configured lease. A failed automatic resume is retried every second.
 *
 * Owns: the drivers, the queues, the lease timers and the last state read
 * from each proxy (for reports). Never: holds traffic without a running
 * lease timer (or, when stopping, without trying to resume it), or runs two
 * operations on one proxy at once.
 */
#ifndef GODWIT_PROXY_H
#define GODWIT_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_config.h"
#include "godwit.pb-c.h"

/* ---- for the agent ---- */

typedef struct proxy_set proxy_set_t;

/* An action's outcome: state is a malloc'd ProxyState (read back from the
 * proxy; NULL only if nothing could be read) the callee owns and frees with
 * godwit__proxy_state__free_unpacked(state, NULL); error is NULL on success,
 * else why it failed (borrowed for the call). Runs exactly once, never from
 * inside proxy_set_run. */
typedef void (*proxy_done_cb)(Godwit__ProxyState *state, const char *error, void *arg);

/* Something the coordinator should hear about (lease expiry): code is
 * stable ("proxy.lease_expired", "proxy.lease_resume_failed"). */
typedef void (*proxy_event_cb)(bool error, const char *code, const char *proxy, const char *message,
                               void *arg);

/* proxies is the config's list, borrowed: it must outlive the set. */
proxy_set_t *proxy_set_new(uv_loop_t *loop, const cfg_list_t *proxies, proxy_event_cb event,
                           void *arg);
/* Winds the set down: no callback (done or event) after this; queued
 * actions are dropped, a running one finishes (bounded by its timeouts),
 * then each proxy still paused is resumed once, then the drivers and
 * handles go and the memory with their close callbacks. The loop keeps
 * running until then. A proxy whose resume failed stays paused (logged); a
 * restarted agent applies the configured lease to it. Clears *sp. */
void proxy_set_stop(proxy_set_t **sp);

/* Queues an action. false with why (and no callback) when the request is
 * invalid: unknown proxy, op or backend. */
bool proxy_set_run(proxy_set_t *s, const Godwit__ProxyAction *action, proxy_done_cb done,
                   void *arg, char *why, size_t whylen) __attribute__((warn_unused_result));

/* Refreshes the state of idle proxies now and then (call it every report). */
void proxy_set_tick(proxy_set_t *s);

/* The last state of each proxy, malloc'd into r->proxies (freed with r). */
void proxy_set_report(proxy_set_t *s, Godwit__Report *r);

/* ---- for the drivers ---- */

typedef enum { PROXY_BLUE = 0, PROXY_GREEN = 1, PROXY_OTHER = -1 } proxy_backend_t;

/* One request for a driver. */
typedef struct {
    Godwit__ProxyAction__Op op;
    proxy_backend_t backend;       /* SWITCH */
    uint64_t pause_timeout_ms;     /* PAUSE */
    bool then_resume;              /* SWITCH: the same job goes on as the RESUME once the
                                      proxy reads the new backend back; a driver may leave
                                      syncing its files until that RESUME is done */
} proxy_req_t;

/* What a driver reads back; filled in by the driver, owned by proxy.c. */
typedef struct {
    bool known;                    /* the fields below were read from the proxy */
    proxy_backend_t backend;
    char address[300];             /* as the proxy shows it */
    bool paused;
    bool already;                  /* nothing to do: it was in the asked state */
    uint32_t terminated;           /* PgBouncer: blockers terminated by policy */
    Godwit__ProxyStep **steps;
    size_t n_steps;
} proxy_out_t;

/* Records a step that began at started_mono (units_mono_ms) and ends now. */
void proxy_out_step(proxy_out_t *o, const char *name, uint64_t started_mono);
/* SWITCH's include file (PgBouncer, nginx): what is at path is kept in
 * *old (malloc'd, the caller frees; NULL if there was no file; at most max
 * bytes) and text is written there atomically, durably if sync (else see
 * fsutil_write_atomic_unsynced). 0, or a negative errno with what failed in
 * err. */
int proxy_file_swap(const char *path, size_t max, const char *text, bool sync, char **old,
                    size_t *old_len, char *err, size_t errlen);
/* Puts back what proxy_file_swap kept (removes the file if there was
 * none); 0 or a negative errno. */
int proxy_file_restore(const char *path, const char *old, size_t old_len);
/* blue, green or other for a host and port the proxy shows. */
proxy_backend_t proxy_match(const agent_proxy_t *cfg, const char *host, int port);

/* A driver's done: error NULL on success. May be called from inside run. */
typedef void (*proxy_drv_done_cb)(void *arg, const char *error);

typedef struct proxy_drv proxy_drv_t;
struct proxy_drv {
    /* Starts req; fills out; calls done exactly once. */
    void (*run)(proxy_drv_t *d, const proxy_req_t *req, proxy_out_t *out, proxy_drv_done_cb done,
                void *arg);
    /* Stops what runs (no done afterwards) and frees d, possibly later. */
    void (*destroy)(proxy_drv_t *d);
};

proxy_drv_t *proxy_pgbouncer_new(uv_loop_t *loop, const agent_proxy_t *cfg);
proxy_drv_t *proxy_haproxy_new(uv_loop_t *loop, const agent_proxy_t *cfg);
/* HAProxy's config text with backend's `server to` line without its
 * `disabled` and its `server from` line with one, everything else byte for
 * byte; malloc'd (the caller frees), or NULL with err when backend has no
 * such two lines. */
char *proxy_haproxy_config_switch(const char *text, const char *backend, const char *to,
                                  const char *from, char *err, size_t errlen);
proxy_drv_t *proxy_nginx_new(uv_loop_t *loop, const agent_proxy_t *cfg);

#endif
