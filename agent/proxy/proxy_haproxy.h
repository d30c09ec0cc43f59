/*
 * proxy_haproxy: the HAProxy driver (proxydrv.h); what it does with each request is
 * at the top of proxy_haproxy.c.
 */
#ifndef GODWIT_PROXY_HAPROXY_H
#define GODWIT_PROXY_HAPROXY_H

#include <uv.h>

#include "proxydrv.h"

/* The driver of the proxy cfg describes (borrowed: it outlives the driver). */
proxydrv_t *proxy_haproxy_new(uv_loop_t *loop, const agent_proxy_t *cfg);
/* HAProxy's config text with backend's `server to` line without its
 * `disabled` and its `server from` line with one, everything else byte for
 * byte; malloc'd (the caller frees), or NULL with err when backend has no
 * such two lines. */
char *proxy_haproxy_config_switch(const char *text, const char *backend, const char *to,
                                  const char *from, char *err, size_t errlen);

#endif
