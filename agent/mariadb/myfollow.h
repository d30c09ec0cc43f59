/*
 * myfollow: MyFollow (proto/godwit.proto), on the local server: this
 * server replicates `database` from the peer `source.peer` (the agent
 * config's peers, as MyCopy reaches its source) through the replication
 * connection `connection`. The cutover's way back (the old source follows
 * the new primary from the switch position) and an aborted cutover's
 * target (its connection started again from where it stopped).
 *
 * In order:
 *   SHOW SLAVE 'connection' STATUS: one that exists with both threads
 *     running is answered at once (nothing changed);
 *   gtid set: SHOW ALL SLAVES STATUS, and another connection running
 *     fails the step naming it (SET GLOBAL gtid_slave_pos needs every
 *     connection stopped); gtid empty: the connection must exist;
 *   STOP SLAVE 'connection' when one of its threads runs (the filter and
 *     CHANGE MASTER need it stopped);
 *   gtid set: SET GLOBAL gtid_slave_pos = gtid, then CHANGE MASTER
 *     'connection' TO MASTER_HOST, MASTER_PORT, MASTER_USER,
 *     MASTER_PASSWORD (the peer's password_file), MASTER_USE_GTID =
 *     slave_pos;
 *   SET GLOBAL `connection`.replicate_do_db = database (as the copy does:
 *     the server does not keep it over a restart: mycopy.h);
 *   ALTER EVENT db.ev DISABLE ON SLAVE for each event of the database
 *     whose STATUS is 'ENABLED' (a replica runs none; Promote enables
 *     them again);
 *   START SLAVE 'connection', then SHOW SLAVE STATUS every 50 ms until
 *     Slave_IO_Running is Yes (5 s at most), or an error shows
 *     (Last_IO_Error, Last_SQL_Error: FAILED with it);
 *   the answer: a ReplicaStatusResult as ReplicaStatus makes it
 *     (mymon_replica of SHOW SLAVE STATUS, @@gtid_slave_pos).
 * The session runs sql_log_bin = 0: none of this is an event of this
 * server's binary log.
 *
 * Trust: only a connection name step_godwit_name accepts, and a peer of
 * the agent's config (step_peer). Never logged: the CHANGE MASTER
 * statement (it holds the password).
 * Ownership: the step owns its session and copies of what it needs of the
 * request and of local.
 */
#ifndef GODWIT_MYFOLLOW_H
#define GODWIT_MYFOLLOW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent_config.h"
#include "godwit.pb-c.h"
#include "myconn.h"
#include "step.h"

/* Borrowed for the start call only. */
typedef struct {
    myconn_params_t server;        /* the local server; its database and init are ignored */
    uint64_t statement_timeout_ms; /* one statement's limit */
    const agent_peer_t *peers;     /* the config's peers: source.peer names one */
    size_t n_peers;
    const char *config_path;       /* for messages */
} myfollow_local_t;

/* done gets a malloc'd ReplicaStatusResult, or the error. NULL with *why
 * (malloc'd) for a request refused before anything runs. */
step_t *myfollow_start(uv_loop_t *loop, const myfollow_local_t *local,
                       const Godwit__MyFollow *req, step_done_cb done, void *arg, char **why);

#endif
