/*
 * actions: the protocol's database actions as one table: for each action
 * of a Command that a database engine runs as a step, which field of the
 * Result carries its answer. The engine (engine.h; agent/pg/pg_engine.c)
 * has the other half: how each step starts. A new action is one row here,
 * one in each engine's table and its step's file (and its message in the
 * proto, and the coordinator's sender). Whether an action reaches the
 * other side is read from its request: a field `source` of type
 * ReplicationConn (actions_remote), which the engine checks against the
 * agent's peers before anything runs (docs/protocol.md, "Trust").
 *
 * agent.c dispatches through it; the proxy actions, pings and the copy's
 * progress are answered there, outside this table.
 */
#ifndef GODWIT_ACTIONS_H
#define GODWIT_ACTIONS_H

#include <stdbool.h>
#include "godwit.pb-c.h"

typedef struct {
    Godwit__Command__ActionCase action;
    Godwit__Result__PayloadCase result; /* its answer's field; _NOT_SET: none */
} actions_row_t;

/* The row of action, or NULL: not a database step. */
const actions_row_t *actions_find(Godwit__Command__ActionCase action);

/* Puts payload (borrowed) into res's oneof field for action, through
 * protobuf-c's own field descriptor; an action without one adds nothing. */
void actions_set_payload(Godwit__Result *res, Godwit__Command__ActionCase action,
                         ProtobufCMessage *payload);

/* Whether cmd's request reaches the other side; then *remote is the
 * ReplicationConn it names (NULL when the field is unset: refused). */
bool actions_remote(const Godwit__Command *cmd, const Godwit__ReplicationConn **remote);

#endif
