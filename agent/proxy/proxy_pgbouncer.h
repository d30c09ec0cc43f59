/*
 * proxy_pgbouncer: the PgBouncer driver (proxydrv.h); what it does with each request is
 * at the top of proxy_pgbouncer.c.
 */
#ifndef GODWIT_PROXY_PGBOUNCER_H
#define GODWIT_PROXY_PGBOUNCER_H

#include <uv.h>

#include "proxydrv.h"

/* The driver of the proxy cfg describes (borrowed: it outlives the driver). */
proxydrv_t *proxy_pgbouncer_new(uv_loop_t *loop, const agent_proxy_t *cfg);

#endif
