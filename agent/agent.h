/*
 * agent: the godwit-agent process: one libuv loop carrying the DEALER socket
 * (CURVE client, dialing out to the coordinator), its monitor, the report
 * tick and the local monitors (disk, PostgreSQL). It executes the closed set
 * of typed commands the coordinator sends, after the fence admits them.
 */
#ifndef GODWIT_AGENT_H
#define GODWIT_AGENT_H

#include <uv.h>

#include "agent_config.h"

#define AGENT_EXIT_OK 0
#define AGENT_EXIT_ERROR 1
#define AGENT_EXIT_CONFIG 2

typedef struct agent agent_t;

/* cfg is borrowed and must outlive the agent. NULL (logged) on failure. */
agent_t *agent_new(uv_loop_t *loop, const agent_config_t *cfg);
void agent_stop(agent_t *a, int exit_code);
int agent_destroy(agent_t **ap);

#endif
