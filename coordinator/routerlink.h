/*
 * routerlink: the coordinator's implementation of the agentlink
 * (agentlink.h) over the ROUTER socket: commands the machines send, with
 * the results they wait for (pending commands, re-sent to an agent that
 * reconnects), the calls they defer to the tick, and what they read of an
 * agent (its report, round trip, role, refusal) from the fleet.
 *
 * Every pending command's callback runs exactly once: with the agent's
 * result (agents.c), on its deadline, or when the coordinator stops.
 */
#ifndef GODWIT_ROUTERLINK_H
#define GODWIT_ROUTERLINK_H

#include <stdint.h>

#include "coord.h"
#include "fleet.h"

/* Points c->link at this implementation, with c as its context. */
void routerlink_init(coord_t *c);
/* An agent that reconnected gets the commands it has not answered again,
 * with the same ids: its fence runs each at most once. */
void routerlink_resend_pending(coord_t *c, fleet_agent_t *a);
/* Runs the deferred calls, in the order they were deferred (and any they
 * defer in turn). */
void routerlink_run_deferred(coord_t *c);
/* Fails the pending commands that failed to send or whose deadline is past
 * now (monotonic ms). */
void routerlink_expire(coord_t *c, uint64_t now);
/* Fails every pending command with error. */
void routerlink_fail_pending(coord_t *c, const char *error);

#endif
