/*
 * metricsd: the coordinator's Prometheus endpoint, HTTP GET /metrics
 * served by libmicrohttpd on the coordinator's own libuv loop.
 *
 * libmicrohttpd runs without a thread of its own (external polling,
 * MHD_USE_EPOLL): its one epoll descriptor is watched with a uv_poll and
 * its connection timeouts with a uv_timer, and MHD_run is called from the
 * loop. So a request is answered on the loop thread and the render
 * callback reads the coordinator's state directly, with nothing to lock
 * or snapshot: the text is made fresh for each scrape.
 *
 * Owns the daemon, its two handles and nothing of what it serves. Never
 * blocks: MHD_run only does what epoll says is ready.
 */
#ifndef GODWIT_METRICSD_H
#define GODWIT_METRICSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "promtext.h"

/* Writes every family into p (empty when called). */
typedef void (*metricsd_render_cb)(promtext_t *p, void *arg);

typedef struct metricsd metricsd_t;

/* hostport: "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT" (127.0.0.1),
 * PORT 1-65535, into *out; *loopback says whether it is a loopback
 * address. false with why otherwise. */
bool metricsd_addr_parse(const char *hostport, struct sockaddr_storage *out, bool *loopback,
                         char *why, size_t whylen);

/* Listens on listen (as metricsd_addr_parse takes it) and serves what
 * render writes (arg passed along; both borrowed, and must outlive the
 * server). NULL with err if it cannot listen. */
metricsd_t *metricsd_new(uv_loop_t *loop, const char *listen, metricsd_render_cb render, void *arg,
                         char *err, size_t errlen);

/* Stops at once: the listening socket and every connection closed, no
 * render call after this. The memory goes in the handles' close callbacks,
 * so the loop must run on. Takes NULL; clears *mp. */
void metricsd_destroy(metricsd_t **mp);

/* Scrapes answered (GET or HEAD of /metrics) since the start. */
uint64_t metricsd_scrapes(const metricsd_t *m);

#endif
