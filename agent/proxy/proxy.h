/*
 * proxy: the proxies a proxy-role agent drives (the `proxies:` list of its
 * config), one typed ProxyAction at a time per proxy, and the lease.
 *
 * Every proxy has a queue: actions run one after the other, in arrival
 * order, each carried out by the driver of its kind (proxydrv.h; the table
 * s_drivers in proxy.c):
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

#include "errors.h"
#include "agent_config.h"
#include "godwit.pb-c.h"
#include "proxydrv.h"

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

/* proxies is the config's list, borrowed: it must outlive the set. Each
 * proxy gets the driver of its kind. */
proxy_set_t *proxy_set_new(uv_loop_t *loop, const cfg_list_t *proxies, proxy_event_cb event,
                           void *arg);

/* Makes the driver of one proxy (cfg borrowed, it outlives the driver). */
typedef proxydrv_t *(*proxy_drv_new_fn)(uv_loop_t *loop, const agent_proxy_t *cfg);

/* proxy_set_new with every proxy's driver made by new_drv: the queue and
 * the lease over a driver of the caller's (the unit tests' fake). */
proxy_set_t *proxy_set_new_with(uv_loop_t *loop, const cfg_list_t *proxies,
                                proxy_drv_new_fn new_drv, proxy_event_cb event, void *arg);
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
                   void *arg, char *why, size_t whylen) GODWIT_MUSTCHECK;

/* Refreshes the state of idle proxies now and then (call it every report). */
void proxy_set_tick(proxy_set_t *s);

/* The last state of each proxy, malloc'd into r->proxies (freed with r). */
void proxy_set_report(proxy_set_t *s, Godwit__Report *r);

#endif
