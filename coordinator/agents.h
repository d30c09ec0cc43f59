/*
 * agents: the coordinator's side of the ROUTER socket: the socket and its
 * monitor, every message from an agent (hello, report, result, event,
 * progress), the epoch claims agents present, and the pings (the tick's
 * and godwitctl's). The agents themselves are the fleet's (fleet.h); the
 * commands the machines send are routerlink.h's.
 *
 * Every socket operation is ZMQ_DONTWAIT: nothing here blocks the loop.
 */
#ifndef GODWIT_AGENTS_H
#define GODWIT_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "coord.h"
#include "fleet.h"

/* Creates the ROUTER socket (CURVE server, behind the ZAP handler that
 * must already run) and its monitor, watches both on the loop and binds
 * cfg->listen. False (logged where it can say why) on failure. */
bool agents_router_setup(coord_t *c);
/* Sends one frame to agent a: 0, or a negative errno (a failure other than
 * EAGAIN is logged). */
int agents_send_frame(coord_t *c, const fleet_agent_t *a, const uint8_t *frame, size_t len);
/* Sends a ping command to a; returns its nonce (0 if not sent). */
uint64_t agents_ping(coord_t *c, fleet_agent_t *a);
/* godwitctl ping: pings a (connected) and answers req with the round trip
 * once the result arrives, or with why not. */
void agents_ctl_ping(coord_t *c, control_req_t *req, fleet_agent_t *a);
/* Answers the godwitctl pings whose deadline is past now (monotonic ms). */
void agents_expire_ctl_pings(coord_t *c, uint64_t now);
/* Answers every godwitctl ping still waiting with error. */
void agents_fail_ctl_pings(coord_t *c, const char *error);

#endif
