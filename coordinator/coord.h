/*
 * coord: the coordinator process: one libuv loop carrying the ROUTER socket
 * (CURVE server behind the ZAP allow-list), its monitor, the control socket
 * and one periodic tick (pings, liveness). It decides; agents execute.
 *
 * Start-up order matters and is fixed here: refuse without CURVE, load keys
 * and the allow-list, take the journal (lock, next epoch), start the ZAP
 * handler, and only then bind the ROUTER.
 */
#ifndef GODWIT_COORD_H
#define GODWIT_COORD_H

#include <uv.h>

#include "coord_config.h"
#include "godwit.pb-c.h"

/* Exit codes of godwit-coordinator (docs/operations.md). */
#define COORD_EXIT_OK 0
#define COORD_EXIT_ERROR 1
#define COORD_EXIT_CONFIG 2
#define COORD_EXIT_FENCED 4

typedef struct coord coord_t;

/* The outcome of one command: r is the agent's result (status says whether
 * it worked), or r is NULL and error says why there is none (not sent,
 * timed out, coordinator stopping). r is borrowed for the call. */
typedef void (*coord_result_cb)(coord_t *c, const char *agent, const Godwit__Result *r,
                                const char *error, void *arg);

/* Sends a typed command (the caller sets the action; id, epoch and deadline
 * are filled in here) to a connected agent. cb runs exactly once, never from
 * inside this call. */
void coord_send_command(coord_t *c, const char *agent, Godwit__Command *cmd, uint64_t timeout_ms,
                        coord_result_cb cb, void *arg);
/* Runs fn(arg) on the loop soon (the next tick), never from inside this
 * call; before the coordinator stops at the latest. */
void coord_defer(coord_t *c, void (*fn)(void *arg), void *arg);

/* The agent's latest report, borrowed until the next message; NULL if none. */
const Godwit__Report *coord_agent_report(coord_t *c, const char *agent);

/* How long ago (ms) the agent's latest report arrived; UINT64_MAX if none
 * since it connected. */
uint64_t coord_agent_report_age_ms(coord_t *c, const char *agent);

/* The agent's last measured round trip in ms, or -1 if none. */
double coord_agent_rtt_ms(coord_t *c, const char *agent);

/* The agent's role ("source", "target", "proxy"): its hello's, accepted
 * because its key may take it; NULL if it is not connected (or its hello
 * was refused) or not allow-listed. */
const char *coord_agent_role(coord_t *c, const char *agent);
/* Why the agent's last hello was refused, or NULL if it was not. */
const char *coord_agent_refused(coord_t *c, const char *agent);

/* Sets everything up on loop; NULL (logged) on failure. cfg is borrowed and
 * must outlive the coordinator. */
coord_t *coord_new(uv_loop_t *loop, const coord_config_t *cfg);
/* Begins an orderly stop: closes sockets and handles, so uv_run returns. */
void coord_stop(coord_t *c, int exit_code);
/* After uv_run returned: the exit code, and frees c. */
int coord_destroy(coord_t **cp);

#endif
