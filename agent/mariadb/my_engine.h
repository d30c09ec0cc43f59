/*
 * my_engine: the MariaDB engine (engine.h): mymon's readings of the
 * local server for the reports; preflight (PreflightSource,
 * PreflightTarget: mypreflight.h); the target's copy and replication
 * (MyCopy: mycopy.h), its replication connection's state (ReplicaStatus)
 * and its removal (DropObjects with replica_connection: myrepl.h). Every
 * other command is refused with its name: verify and the cutover are not
 * written for MariaDB yet. Targets MariaDB 10.11; MySQL 8's differences
 * are noted where they would bite.
 */
#ifndef GODWIT_MY_ENGINE_H
#define GODWIT_MY_ENGINE_H

#include "engine.h"

/* Opens the engine on cfg's mariadb section (cfg and agent_name borrowed;
 * both outlive the engine); NULL (logged) for invalid connection
 * parameters. The first reading of the server starts at once. */
engine_t *my_engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                         engine_event_cb event, void *arg);

#endif
