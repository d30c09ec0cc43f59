/*
 * ctlserve: the coordinator's answers to the control socket's commands
 * (ctlcmd.h names them; control.h carries them): status, ping, proxy,
 * plan check, and the migrate and cutover commands. Plans from a request
 * are parsed on the thread pool, never on the loop.
 *
 * It decides nothing itself: it reads the request, asks the machines
 * (migration.h, plancheck.h, proxycmd.h) or the agents (agents.h), and
 * answers each request exactly once.
 */
#ifndef GODWIT_CTLSERVE_H
#define GODWIT_CTLSERVE_H

#include <cjson/cJSON.h>

#include "control.h"

/* The control endpoint's handler (control_handler_t); arg is the
 * coordinator (coord_t *). */
void ctlserve_handle(control_req_t *req, const cJSON *request, void *arg);

#endif
