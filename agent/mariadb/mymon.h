/*
 * mymon: the agent's view of its local MariaDB server, read on every report
 * tick over one myconn: the server's version and id, its binary log
 * (log_bin, format, row image, expiry), its GTID positions and strict mode,
 * read_only, and its replication (SHOW ALL SLAVES STATUS) when it is a
 * replica.
 *
 * A reading is two statements, one after the other on the one connection;
 * a reading still in flight when the next tick comes is left alone (the
 * connection's deadline ends it). A server that does not answer is
 * reported unreachable with the reason and connected to again on later
 * ticks; a reading that fails on an answering server (a privilege
 * missing) keeps the last good one with the error. Never blocks the loop,
 * never changes anything on the server.
 */
#ifndef GODWIT_MYMON_H
#define GODWIT_MYMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"

typedef struct mymon mymon_t;

/* Called when reachability changes (reachable=false carries the reason),
 * and when the very first reading finds the server unreachable. Always the
 * last thing mymon does in that turn: the callback may destroy it. */
typedef void (*mymon_state_cb)(bool reachable, const char *reason, void *arg);

/* The connection's parameters (copied; its init statements are mymon's
 * own) and the deadline of each statement. NULL for invalid parameters. */
mymon_t *mymon_new(uv_loop_t *loop, const myconn_params_t *params, uint64_t statement_timeout_ms,
                   mymon_state_cb cb, void *arg);

/* Starts a reading unless one is in flight. */
void mymon_tick(mymon_t *m);

/* A new Godwit__Mariadb from the last reading (every field malloc'd; the
 * caller frees it with godwit__mariadb__free_unpacked(x, NULL)). */
Godwit__Mariadb *mymon_snapshot(const mymon_t *m);

/* One row of SHOW ALL SLAVES STATUS or SHOW SLAVE 'name' STATUS as a
 * MariadbReplica (every string malloc'd; the caller frees it with
 * godwit__mariadb_replica__free_unpacked(rep, NULL)). name is the
 * connection's name when the row has no Connection_name column (SHOW
 * SLAVE 'name' STATUS has none on MariaDB 10.11); NULL with SHOW ALL
 * SLAVES STATUS. A NULL Seconds_Behind_Master is -1; last_error is
 * Last_SQL_Error, else Last_IO_Error. Pure: no connection is used. */
Godwit__MariadbReplica *mymon_replica(const myconn_result_t *r, size_t row, const char *name);

/* Closes the connection and clears *mp; NULL is fine. */
void mymon_destroy(mymon_t **mp);

#endif
