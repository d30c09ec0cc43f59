/*
 * mypreflight: the read-only checks of phase 1 on MariaDB, the same
 * messages and finding shape as PostgreSQL's (preflight.h): a
 * PreflightSource or PreflightTarget in, a PreflightResult out (findings:
 * severity, a stable code, the object, what is wrong and why it matters,
 * the fix). Nothing here changes anything on any server: every session
 * runs SET SESSION TRANSACTION READ ONLY and a statement limit.
 *
 * Source (the database to migrate, its tables: the request's, or every
 * base table): the database exists (database_missing), the binary log is
 * on (binlog_off), in ROW format (binlog_format) with FULL row images
 * (binlog_row_image), gtid_strict_mode (warning), binlog_expire_logs_seconds
 * under a day (binlog_retention, warning), a server_id (server_id); each
 * table of the set is a base table of the database (table_missing),
 * InnoDB (storage_engine) and has a primary key (no_primary_key,
 * warning); its views, routines, triggers and events, which the copy
 * moves, counted with their names (objects_copied, an information; what
 * the source agent's user can see). With cutover.reverse on, the target
 * is a peer of this agent (peer_missing). Facts: server_version, server_version_num, database_size,
 * tables, server_id.
 *
 * Target (the target database): a server_id of its own, not the source's
 * (server_id), a version not older than the source's (major.minor:
 * server_version), the database missing or empty (target_not_empty), the
 * free disk of mariadb.data_directory against the source's size times the
 * margin (disk_space; an information when the option is not set), the
 * source a peer of this agent's config (peer_missing) that this agent can
 * log in to as the peer's user (replication_connection) with REPLICATION
 * SLAVE on *.* and SELECT on the database (replication_grant), RELOAD for
 * the copy's lock (copy_single_reader, a warning), and with
 * cutover.reverse on, the binary log on here (binlog_off).
 *
 * Blocking calls: the statvfs of the data directory and the password
 * files' reads (myconn.h), as the agent's disk report and libpq's
 * passfile.
 */
#ifndef GODWIT_MYPREFLIGHT_H
#define GODWIT_MYPREFLIGHT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent_config.h"
#include "godwit.pb-c.h"
#include "myconn.h"
#include "step.h"

/* How the agent reaches its own server and its peers (from its config;
 * borrowed for the start call only: a check copies what it keeps). */
typedef struct {
    myconn_params_t server;        /* the local server; its database and init are ignored */
    uint64_t statement_timeout_ms; /* each statement's server-side limit */
    const char *data_directory;    /* mariadb.data_directory; NULL: disk not checked */
    const agent_peer_t *peers;     /* the config's peers */
    size_t n_peers;
    const char *config_path;       /* for findings */
    const char *agent_name;        /* for findings */
} mypreflight_local_t;

/* A check is a step (step.h): done runs exactly once, never from inside
 * the start; on success with a malloc'd PreflightResult, on failure (the
 * local server unreachable, a statement failed) with the error. NULL only
 * for invalid arguments (then done is not called). */
step_t *mypreflight_source_start(uv_loop_t *loop, const mypreflight_local_t *local,
                                 const Godwit__PreflightSource *req, step_done_cb done,
                                 void *arg);
step_t *mypreflight_target_start(uv_loop_t *loop, const mypreflight_local_t *local,
                                 const Godwit__PreflightTarget *req, step_done_cb done,
                                 void *arg);

#endif
