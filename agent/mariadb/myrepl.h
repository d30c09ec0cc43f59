/*
 * myrepl: the MariaDB target's two steps on its replication connection
 * (the one MyCopy makes: mycopy.h), both on the local server only.
 *
 * ReplicaStatus: SHOW SLAVE 'name' STATUS and @@gtid_slave_pos, answered
 * as a ReplicaStatusResult. A connection that does not exist is
 * exists = false, not a failure (MariaDB 10.11 answers error 1617,
 * "There is no master connection 'name'"). Read-only, with the statement
 * limit on the server.
 *
 * DropObjects (replica_connection): STOP SLAVE 'name', RESET SLAVE 'name'
 * ALL (a missing connection, 1617, is fine: dropped already), then what
 * the copy made of DropObjects.database, known by its comment alone: the
 * database is dropped when it reads exactly "godwit copy NAME: created";
 * its base tables are dropped (foreign_key_checks off) and the comment
 * cleared when it reads "godwit copy NAME: adopted"; a database with any
 * other comment, or none, is left as it is (logged). The session runs
 * sql_log_bin = 0: the drop is not an event of the target's binary log.
 * With keep_database (cleanup after the cutover: the database takes the
 * traffic) a database our copy made or adopted is kept and only its
 * comment cleared. Running it again finds nothing to do. No payload.
 *
 * Trust: only a connection name step_godwit_name accepts is stopped,
 * removed or read; a request naming another one is refused before
 * anything runs.
 *
 * Ownership: each step owns its session, freed when it reports or is
 * cancelled; what it needs of the request and of local is copied by the
 * start.
 */
#ifndef GODWIT_MYREPL_H
#define GODWIT_MYREPL_H

#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"
#include "step.h"

/* How the steps reach the local server (borrowed for the start call). */
typedef struct {
    myconn_params_t server;        /* the local server; its database and init are ignored */
    uint64_t statement_timeout_ms; /* one statement's limit, its connection included */
} myrepl_local_t;

/* Steps (step.h): done runs exactly once, never inside the start. NULL,
 * with *why (malloc'd, the caller frees it), for a request refused before
 * anything runs; done is not called then. */

/* done gets a malloc'd ReplicaStatusResult, or the error. */
step_t *myrepl_status_start(uv_loop_t *loop, const myrepl_local_t *local,
                            const Godwit__ReplicaStatus *req, step_done_cb done, void *arg,
                            char **why);

/* A DropObjects on MariaDB: replica_connection and database set, none of
 * PostgreSQL's fields (subscription, publication, slot, verify_slot,
 * physical_slot, standby_of_slot). done gets no payload. */
step_t *myrepl_drop_start(uv_loop_t *loop, const myrepl_local_t *local,
                          const Godwit__DropObjects *req, step_done_cb done, void *arg,
                          char **why);

#endif
