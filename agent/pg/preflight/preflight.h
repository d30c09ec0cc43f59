/*
 * preflight: the read-only checks of phase 1, run by an agent against its
 * local PostgreSQL server and reported as findings (severity, code, object,
 * message, fix). Nothing here changes anything on any server (the
 * target's write timing writes only in a transaction it rolls back).
 *
 * Source checks (the source agent, on the database to migrate): wal_level,
 * free replication slots and WAL senders, tables with neither a primary key
 * nor a usable replica identity (blocking), large objects, unlogged tables,
 * partitioned tables, generated columns, max_slot_wal_keep_size unset, a
 * statement_timeout or a low wal_sender_timeout, sequences (warnings); and
 * the facts the target's checks need (version, size, tables, extensions).
 *
 * Target checks (the target agent, on the target database): version not
 * older than the source, free disk of the data directory against the
 * source's size times a margin, the source a peer of this agent's config
 * and a replication connection to it that opens, target tables that
 * already hold rows (blocking), extensions the source has and the target
 * cannot install (warning), and the roles the database needs against the
 * target's (access.h), how fast the target's server writes and how long
 * the copy would take at that rate (diskprobe.h: the one check that
 * writes, in a transaction it rolls back), and the roles the database
 * needs against the target's (access.h): roles missing (created by the roles step:
 * information), roles that exist with other attributes or memberships
 * (left as they are: warning), superusers godwit will not create and
 * bootstrap superusers of different names (blocking), password hashes
 * asked for and unreadable on the source (blocking). With cutover.reverse
 * on, the source checks that the target is a peer of its own config
 * (blocking).
 *
 * All database work is libpq's asynchronous API (pgconn) on the loop, with
 * statement timeouts, keyword-array connections, an empty search_path,
 * schema-qualified catalog names and identifiers passed as parameters or
 * through PQescapeIdentifier.
 */
#ifndef GODWIT_PREFLIGHT_H
#define GODWIT_PREFLIGHT_H

#include <stdint.h>
#include <uv.h>

#include "agent_config.h"
#include "diskprobe.h"
#include "godwit.pb-c.h"
#include "step.h"

/* How the agent reaches its own server (from its config). */
typedef struct {
    const char *host;
    int port;
    const char *user;
    const char *passfile;          /* may be NULL */
    const char *data_directory;    /* for the target's disk check */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    const agent_peer_t *peers;     /* the agent's peers (borrowed from its config) */
    size_t n_peers;
    const char *config_path;       /* the agent's config file, for findings */
    const char *agent_name;        /* for findings: the config's name, else the host name */
    diskprobe_t *disk_probe;       /* the agent's last timing of its server's writes (the pg
                                      engine's, borrowed); NULL: the target does not time them */
    const agent_standby_t *standby; /* postgres.standby (method: physical); NULL: none */
    const char *bin_dir;           /* pg_basebackup's folder ("": PATH) */
} preflight_local_t;

/* A check is a step (step.h): done is called exactly once, never from
 * inside the start function. On success error is NULL and the payload is a
 * malloc'd PreflightResult the callee owns; on failure (the checks could
 * not run: database unreachable, query failed) the payload is NULL and
 * error says why. step_cancel() stops a running check (the memory goes
 * once its connections' handles have closed). Both starts copy what they
 * need from local and req; NULL only for invalid arguments (then done is
 * not called). */
step_t *preflight_source_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightSource *req, step_done_cb done, void *arg);
step_t *preflight_target_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightTarget *req, step_done_cb done, void *arg);

#endif
