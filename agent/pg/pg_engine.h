/*
 * pg_engine: the PostgreSQL engine (engine.h): pgmon's readings of the
 * local server, the errors of its log (pglog), the cutover's write fence
 * (freezer), and the table of its steps: for each action of the protocol
 * (actions.h), how its step starts (pgstep.h and the step modules of this
 * folder).
 */
#ifndef GODWIT_PG_ENGINE_H
#define GODWIT_PG_ENGINE_H

#include "engine.h"

/* Opens the engine on cfg's postgres section (cfg borrowed; agent_name
 * borrowed, both outlive the engine); NULL (logged) for invalid connection
 * parameters. The first reading of the server starts at once. */
engine_t *pg_engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                         engine_event_cb event, void *arg);

#endif
