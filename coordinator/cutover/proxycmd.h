/*
 * proxycmd: the control socket's "proxy" command (godwitctl proxy): one
 * ProxyAction sent to a proxy agent as a typed command, its result rendered
 * as JSON (docs/godwitctl.md). Also renders a ProxyState, for status.
 *
 * Owns: one small context per request in flight, freed when the agent's
 * result (or the timeout) came. Never: decides anything; the cutover
 * sequence builds on the same command.
 */
#ifndef GODWIT_PROXYCMD_H
#define GODWIT_PROXYCMD_H

#include <cjson/cJSON.h>

#include "control.h"
#include "agentlink.h"

/* Handles {"cmd": "proxy", "agent": A, "proxy": P, "op": "status" | "pause"
 * | "resume" | "switch", "backend": "blue" | "green", "lease_ms": N,
 * "pause_timeout_ms": N}; replies once. */
void proxycmd_handle(const agentlink_t *link, control_req_t *req, const cJSON *request);

/* A ProxyState as JSON (caller owns the object). */
cJSON *proxycmd_state_json(const Godwit__ProxyState *st);

#endif
