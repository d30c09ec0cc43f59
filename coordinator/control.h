/*
 * control: the coordinator's local control endpoint for godwitctl.
 *
 * A Unix stream socket created mode 0600 (umask held while binding, so
 * there is no window where others can connect). Each connection carries one
 * request, a JSON object on one line ({"cmd":"status"}), and gets one
 * response, a JSON object on one line, after which the coordinator closes
 * it. The handler may answer later (a ping waits for the agent): it keeps
 * the control_req_t and calls control_reply() exactly once.
 *
 * control owns its connections and requests; a request whose client went
 * away stays valid until control_reply() or control_destroy().
 */
#ifndef GODWIT_CONTROL_H
#define GODWIT_CONTROL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define CONTROL_MAX_REQUEST (2 * 1024 * 1024) /* a plan travels in a request */

typedef struct control control_t;
typedef struct control_req control_req_t;

typedef void (*control_handler_t)(control_req_t *req, const cJSON *request, void *arg);

/* Who sent a request: the client process's credentials as the kernel gave
 * them when it connected (SO_PEERCRED), not anything the client says. */
typedef struct {
    long pid;
    long uid;
    long gid;
} control_peer_t;

/* Binds path (an existing socket file is replaced only if nothing listens
 * on it). NULL with err filled on failure. */
control_t *control_new(uv_loop_t *loop, const char *path, control_handler_t handler, void *arg,
                       char *err, size_t errlen);
/* The credentials of req's client; false if the kernel gave none. */
bool control_req_peer(const control_req_t *req, control_peer_t *out);
/* Sends response (taken, deleted here) and closes the connection. */
void control_reply(control_req_t *req, cJSON *response);
/* Convenience: {"ok":false,"error":message}. */
void control_reply_error(control_req_t *req, const char *message);
/* Closes the listener and every connection; pending requests are dropped
 * (their owners must not use them afterwards); removes the socket file. */
void control_destroy(control_t **cp);

#endif
