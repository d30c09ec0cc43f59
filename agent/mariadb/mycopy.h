/*
 * mycopy: the MariaDB target's copy of one database (MyCopy): every base
 * table of the source database read in one consistent snapshot, written
 * into the target, its views, routines, triggers and events made after
 * the rows, then replication from the snapshot's GTID position on a
 * replication connection of our own (docs/mariadb.md "The copy").
 *
 * The snapshot. Each reader is a session on the source, through the peer
 * the request names, that runs START TRANSACTION WITH CONSISTENT SNAPSHOT.
 * With more than one reader a lock session holds BACKUP STAGE
 * BLOCK_COMMIT (the RELOAD privilege) while the readers start theirs, so
 * no commit falls between them; every reader then reads its own
 * Binlog_snapshot_file and Binlog_snapshot_position (session status), and
 * the copy goes on only when all are equal: the position is proven, not
 * assumed. Its GTID position is BINLOG_GTID_POS(file, position). Without
 * RELOAD the copy runs with one reader (logged).
 *
 * The target. Every session that writes runs with sql_log_bin = 0 (the
 * copy is not an event of the target's binary log: the target's GTID
 * position stays the source's), foreign_key_checks and unique_checks off.
 * The database is created (with the source's character set and
 * collation) with the comment "godwit copy NAME: created",
 * or, when it exists and holds no table, given "godwit copy NAME:
 * adopted"; any other database with a table is refused before anything is
 * written. Tables are made from SHOW CREATE TABLE; rows are read in
 * primary key order in chunks (a table without one, or with one of a
 * type such as FLOAT, ENUM or BIT, in one read) and written as multi-row
 * INSERTs (binary and string values as hex literals, so no byte is
 * changed by a character set; generated columns left to the target).
 * Every session of the copy runs in time zone +00:00 (TIMESTAMP values).
 *
 * Views, routines, triggers, events. Listed in information_schema (VIEWS,
 * ROUTINES, TRIGGERS, EVENTS) by the first reader right after the tables,
 * their SHOW CREATE read with character_set_results = binary; made on the
 * target after every row is written (a trigger made earlier would fire
 * for the copy's INSERTs) and before replication starts, as mariadb-dump
 * makes them: each in a session with its own sql_mode,
 * character_set_client and collation_connection (a view: the reader's
 * sql_mode), an event with its time_zone. Order: functions and
 * procedures (a view calling a function that does not exist fails), views
 * (one that fails for a view not made yet, 1146 or 1356, waits for the
 * next pass; a pass that makes none fails naming it), triggers (a table's
 * in ACTION_ORDER), events. DEFINER clauses are kept: the target agent's
 * user needs SET USER (or SUPER) for a definer other than itself, and on a
 * target whose binary log is on, SUPER or log_bin_trust_function_creators
 * = ON for functions and triggers (1419, sql_log_bin = 0 or not). A
 * definer missing on the target is a note (1449) for most objects, the
 * object made; but a view calling a stored function whose definer (or
 * whose own) is missing fails with 1449: the copy then fails naming the
 * account (create it on the target: the application needs it there after
 * the cutover anyway).
 * Events are made DISABLE ON SLAVE (SHOW CREATE EVENT's "ENABLE" changed;
 * information_schema.EVENTS.STATUS 'SLAVESIDE_DISABLED', as the server
 * makes a replicated CREATE EVENT): they do not run on the target while it
 * replicates (the source's do, and their rows arrive by replication). The
 * cutover enables them on the target with ALTER EVENT db.name ENABLE for
 * each event whose STATUS is SLAVESIDE_DISABLED (one DISABLED on the
 * source stays so). Triggers do not fire for the row events replication
 * applies as long as the target's slave_run_triggers_for_rbr is NO (the
 * default): the source's rows already hold what its triggers did, so the
 * copy refuses a target where it is not NO, before anything is written.
 * The peer's user needs, to read them (10.11, tried): SELECT and SHOW
 * VIEW on the database (views), TRIGGER on it (triggers), EVENT on it
 * (events), SELECT on mysql.proc (routines: EXECUTE alone lists them with
 * no definition). A listed object whose definition it cannot read fails
 * the copy naming the privilege. One it cannot see at all is not listed
 * (information_schema shows a user only what it holds a privilege on) and
 * so not copied: the source preflight's objects_copied finding counts
 * what the source agent's user sees, the copy logs what it copies.
 *
 * Replication. SET GLOBAL gtid_slave_pos to the snapshot's position (the
 * target's other replication connections must be stopped: a running one
 * refuses the copy, checked before the source is read and again before
 * the SET), CHANGE MASTER 'NAME' TO the peer's host, port, user and
 * password with MASTER_USE_GTID = slave_pos, the connection's
 * replicate_do_db set to the database, START SLAVE 'NAME'.
 *
 * The target's own GTIDs. MariaDB refuses that SET (1947) when the last
 * GTID of a domain in the target's @@gtid_binlog_pos is the target's own
 * (its server_id is @@server_id) and the new position's GTID of that
 * domain has a lower sequence number (equal is fine), and (1948) when the
 * new position has no GTID of that domain; with gtid_strict_mode off both
 * are warnings. So once the snapshot's position is known, before anything
 * is written, the target's binary log is read: a conflict in a domain of
 * the snapshot's position refuses the copy (strict mode; a warning
 * otherwise), naming both positions and the fix (on a target that holds
 * nothing else, RESET MASTER on the target; otherwise its server's own
 * gtid_domain_id); the target's own last GTID of a domain the snapshot's
 * position lacks is added to the position set. 1947 or 1948 at the SET
 * itself (the target wrote meanwhile) fails the copy with that message.
 *
 * Idempotent: a connection NAME that exists answers already_done, after
 * mending what a copy that died after CHANGE MASTER, or a restart of the
 * target's server, leaves: when its Replicate_Do_DB is not exactly the
 * database, the filter is set (a connection that runs without it is
 * stopped first: the server takes a filter only while both threads are
 * stopped), and a connection whose two threads are stopped with
 * Last_IO_Errno and Last_SQL_Errno 0 is started. One stopped with an error
 * is left stopped (its filter set): the coordinator reports the error.
 * The server does not keep the filter (SET GLOBAL NAME.replicate_do_db is
 * lost at a restart, and a connection that ran starts again without it,
 * replicating every database): the operator puts
 * `NAME.replicate_do_db = DB` in the target server's option file
 * ([mariadbd] or [mysqld] group). A database carrying our comment without
 * the connection (a copy that died) has its views, tables (their triggers
 * with them), routines and events dropped (DROP ... IF EXISTS) and the
 * copy starts again.
 *
 * Ownership: the step owns its sessions and frees them when it reports or
 * is cancelled; the request and local are copied by the start.
 */
#ifndef GODWIT_MYCOPY_H
#define GODWIT_MYCOPY_H

#include <stdbool.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"
#include "step.h"

/* How the step reaches its own server and the source (borrowed for the
 * start call only). */
typedef struct {
    myconn_params_t server;        /* the local (target) server; database and init ignored */
    uint64_t statement_timeout_ms; /* one statement's limit, connection included */
    const agent_peer_t *peers;     /* the config's peers: MyCopy.peer names one */
    size_t n_peers;
    const char *config_path;       /* for messages */
} mycopy_local_t;

/* Starts the copy. done gets a malloc'd MyCopyResult, or NULL and the
 * error (one line). NULL with *why (malloc'd) for an invalid request: no
 * peer of that name, a database name that is not the source's or holds a
 * comma (no replicate_do_db can name it), a connection name
 * step_godwit_name refuses; done is not called then. */
step_t *mycopy_start(uv_loop_t *loop, const mycopy_local_t *local, const Godwit__MyCopy *req,
                     step_done_cb done, void *arg, char **why);

/* Whether step (a mycopy step) copies for connection. */
bool mycopy_is(const step_t *step, const char *connection);

/* Its progress: one TableSync per table of the source database, state
 * "waiting", "copying" or "copied" (PostgreSQL's copy's names) with
 * rows_done, bytes_total (the table's DATA_LENGTH on the source) and
 * bytes_done (that size times rows_done over TABLE_ROWS, both InnoDB's
 * estimates; all of it once copied): malloc'd, the caller frees; exists is
 * false until the table list is read. */
Godwit__SyncStatusResult *mycopy_progress(const step_t *step);

#endif
