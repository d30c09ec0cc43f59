/*
 * client: godwitctl's transport: one JSON request to the coordinator's
 * control socket (coordinator/control.h), one JSON response back. Blocking,
 * bounded by a timeout; it renders nothing and prints nothing but why the
 * coordinator could not be reached.
 */
#ifndef GODWIT_CLIENT_H
#define GODWIT_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Sends request (borrowed), returns the parsed response (caller deletes) or
 * NULL with the reason printed (coordinator unreachable). */
cJSON *client_call(const char *path, const cJSON *request, int timeout_s);
/* client_call for a request that is sent once: takes request (deletes it). */
cJSON *client_request(const char *path, cJSON *request, int timeout_s);

#endif
