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

/* Sets everything up on loop; NULL (logged) on failure. cfg is borrowed and
 * must outlive the coordinator. */
coord_t *coord_new(uv_loop_t *loop, const coord_config_t *cfg);
/* Begins an orderly stop: closes sockets and handles, so uv_run returns. */
void coord_stop(coord_t *c, int exit_code);
/* After uv_run returned: the exit code, and frees c. */
int coord_destroy(coord_t **cp);

#endif
