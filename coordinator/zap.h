/*
 * zap: the coordinator's ZeroMQ authentication handler (ZAP, RFC 27).
 *
 * A REP socket bound to inproc://zeromq.zap.01 in the coordinator's context,
 * watched by the coordinator's loop. It must exist before the ROUTER binds:
 * without a ZAP handler libzmq lets any CURVE client that knows the server's
 * public key in. It allows only the CURVE mechanism, only the configured ZAP
 * domain, and only public keys in the allow-list; the reply's User-Id is the
 * key file's NAME, which is how the coordinator names the agent on every
 * message. Every refusal is counted; it is logged with the peer address and
 * the reason, once per peer address per window of the rate limiter the
 * coordinator passes (common/ratelimit.h), so a peer that keeps redialling
 * with an unknown key cannot fill the log.
 *
 * The allow-list and the rate limiter are borrowed and must outlive the
 * handler.
 */
#ifndef GODWIT_ZAP_H
#define GODWIT_ZAP_H

#include <stdint.h>
#include <uv.h>

#include "keys.h"
#include "ratelimit.h"

#define ZAP_DOMAIN "godwit"

typedef struct zap zap_t;

typedef struct {
    uint64_t allowed;
    uint64_t refused_unknown_key;
    uint64_t refused_other; /* wrong mechanism, wrong domain, malformed */
} zap_stats_t;

/* Binds the handler in zctx. NULL (logged) if the bind fails. */
zap_t *zap_new(uv_loop_t *loop, void *zctx, const keys_allowlist_t *allow, ratelimit_t *log_limit);
const zap_stats_t *zap_stats(const zap_t *z);
void zap_destroy(zap_t **zp);

#endif
