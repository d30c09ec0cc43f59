/*
 * actions: the agent's database steps as one table: for each action of a
 * Command, how its step starts and which field of the Result carries its
 * answer. A new action is one row in actions.c and its step's file (and
 * its message in the proto, and the coordinator's sender). Whether an
 * action reaches the other side is read from its request: a field
 * `source` of type ReplicationConn (actions_remote), which the agent checks
 * against its peers before anything runs (docs/protocol.md, "Trust").
 *
 * agent.c dispatches through it; the proxy actions, pings, preflight and
 * the copy's progress are answered there, outside this table.
 */
#ifndef GODWIT_ACTIONS_H
#define GODWIT_ACTIONS_H

#include <stdbool.h>
#include <uv.h>

#include "freeze.h"
#include "godwit.pb-c.h"
#include "pgstep.h"

/* What a step's start may use of the agent (borrowed for the call). */
typedef struct {
    uv_loop_t *loop;
    const step_local_t *local;
    freezer_t *freezer;
} actions_env_t;

/* Starts the step of cmd; done(arg) reports it (step.h). NULL for an
 * invalid request. */
typedef step_t *(*actions_start_fn)(const actions_env_t *env, const Godwit__Command *cmd,
                                    step_done_cb done, void *arg);

typedef struct {
    Godwit__Command__ActionCase action;
    actions_start_fn start;             /* NULL: answered outside the table (preflight) */
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
