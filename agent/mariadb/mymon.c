/*
 * mymon: the agent's periodic reading of its local MariaDB server (see
 * mymon.h for what is read and how the agent uses it).
 *
 * A reading: S_VARS_SQL (one row of the server's variables), then
 * SHOW ALL SLAVES STATUS (MariaDB's: one row per replication connection,
 * none on a server that is not a replica; MySQL 8 would be SHOW REPLICA
 * STATUS, with Replica_IO_Running and friends). The reading is built in
 * a Godwit__Mariadb of its own and replaces the last one only when both
 * statements answered, so a report never mixes two readings. The session
 * runs read-only with a server-side statement limit (max_statement_time,
 * MariaDB's; MySQL 8 has max_execution_time, in ms, for SELECT only), the
 * connection's deadline a second longer.
 *
 * What it owns: the myconn, the last reading and the one being read, the
 * last error.
 *
 * Reachability: "reachable" means the server answered the last statement
 * (even with an error); a connection that could not be made, was lost or
 * timed out (myconn's `gone`) makes it unreachable. The state callback
 * fires on each change between the two and when the very first attempt
 * finds the server unreachable; it is the last thing a path does.
 *
 * Never: blocks the loop, runs two readings at once, writes.
 */
#include "mymon.h"

#include <errno.h>
#include <inttypes.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mytext.h"
#include "units.h"
#include "xalloc.h"

#define S_DEADLINE_SLACK_MS 1000

static const char S_VARS_SQL[] =
    "SELECT @@version AS version, @@server_id AS server_id, @@log_bin AS log_bin,"
    " @@binlog_format AS binlog_format, @@binlog_row_image AS binlog_row_image,"
    " @@gtid_strict_mode AS gtid_strict_mode, @@gtid_binlog_pos AS gtid_binlog_pos,"
    " @@gtid_current_pos AS gtid_current_pos, @@gtid_slave_pos AS gtid_slave_pos,"
    " @@read_only AS read_only, @@binlog_expire_logs_seconds AS binlog_expire_logs_seconds";

static const char S_REPLICA_SQL[] = "SHOW ALL SLAVES STATUS";

typedef enum { S_UNKNOWN, S_REACHABLE, S_UNREACHABLE } s_reach_t;

struct mymon {
    myconn_t *conn;
    uint64_t timeout_ms;        /* each statement's deadline (the connection's included) */
    mymon_state_cb cb;
    void *cb_arg;
    s_reach_t reach;
    char *error;                /* why unreachable, or why the last reading failed */
    bool reading;               /* a reading is in flight */
    Godwit__Mariadb *next;      /* the reading being built */
    Godwit__Mariadb *last;      /* the last complete one; NULL before the first */
    uint64_t last_mono_ms;      /* when it was read */
};

/* ---- state ------------------------------------------------------------- */

static void s_set_error(mymon_t *m, const char *error)
{
    char *e = xstrdup(error);
    free(m->error);
    m->error = e;
}

/* Calls the state callback with a private copy of reason, so the callback
 * may destroy m. The last thing its caller does with m. */
static void s_notify(mymon_t *m, bool reachable, const char *reason)
{
    mymon_state_cb cb = m->cb;
    void *arg = m->cb_arg;
    char *copy = reason ? xstrdup(reason) : NULL;
    if (cb)
        cb(reachable, copy, arg);
    free(copy);
}

static void s_mark_reachable(mymon_t *m)
{
    s_reach_t was = m->reach;
    m->reach = S_REACHABLE;
    if (was == S_UNREACHABLE) {
        log_debug("mymon: mariadb reachable again");
        s_notify(m, true, NULL);
    }
}

static void s_mark_unreachable(mymon_t *m, const char *reason)
{
    s_reach_t was = m->reach;
    s_set_error(m, reason ? reason : "unknown error");
    m->reach = S_UNREACHABLE;
    log_debug("mymon: mariadb unreachable: %s", m->error);
    if (was != S_UNREACHABLE)
        s_notify(m, false, m->error);
}

static void s_drop_next(mymon_t *m)
{
    if (m->next)
        godwit__mariadb__free_unpacked(m->next, NULL);
    m->next = NULL;
}

/* A statement of the reading failed: the reading ends. The last thing its
 * caller does (may notify). */
static void s_failed(mymon_t *m, const char *what, const myconn_result_t *r)
{
    s_drop_next(m);
    m->reading = false;
    /* A connection that could not be made or was lost: the connector's
     * words alone (no statement was at fault). */
    char *msg = myconn_result_message(r->gone ? NULL : what, r);
    if (r->gone) {
        s_mark_unreachable(m, msg);
    } else {
        /* The server answered with an error (a privilege, the statement
         * limit): reachable, figures stale. Logged once, not every tick. */
        if (!m->error || strcmp(m->error, msg) != 0)
            log_warn("mymon: %s", msg);
        s_set_error(m, msg);
        s_mark_reachable(m);
    }
    free(msg);
}

/* ---- reading the answers ------------------------------------------------ */

static char *s_str(const myconn_result_t *r, size_t row, const char *col)
{
    const char *v = myconn_col(r, row, col);
    return xstrdup(v ? v : "");
}

static uint64_t s_u64(const char *v)
{
    if (!v || *v < '0' || *v > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return errno || *end ? 0 : n;
}

Godwit__MariadbReplica *mymon_replica(const myconn_result_t *r, size_t row, const char *name)
{
    Godwit__MariadbReplica *rep = xmalloc(sizeof *rep);
    godwit__mariadb_replica__init(rep);
    const char *conn = myconn_col(r, row, "Connection_name");
    rep->connection_name = xstrdup(conn ? conn : name ? name : "");
    rep->master_host = s_str(r, row, "Master_Host");
    uint64_t port = s_u64(myconn_col(r, row, "Master_Port"));
    rep->master_port = port <= 65535 ? (uint32_t)port : 0;
    /* Yes, No, Connecting, Preparing: running is Yes only. */
    const char *io = myconn_col(r, row, "Slave_IO_Running");
    rep->io_running = io && strcmp(io, "Yes") == 0;
    const char *sql = myconn_col(r, row, "Slave_SQL_Running");
    rep->sql_running = sql && strcmp(sql, "Yes") == 0;
    const char *behind = myconn_col(r, row, "Seconds_Behind_Master");
    rep->seconds_behind = behind ? (int64_t)s_u64(behind) : -1;
    const char *sql_err = myconn_col(r, row, "Last_SQL_Error");
    rep->last_error = sql_err && sql_err[0] ? xstrdup(sql_err) : s_str(r, row, "Last_IO_Error");
    rep->gtid_io_pos = s_str(r, row, "Gtid_IO_Pos");
    return rep;
}

static void s_on_replica(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mymon_t *m = arg;
    if (!r->ok) {
        s_failed(m, "SHOW ALL SLAVES STATUS", r);
        return;
    }
    /* The first connection by name: the default one ('') when there is. */
    size_t pick = r->n_rows;
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *name = myconn_col(r, i, "Connection_name");
        const char *best = pick < r->n_rows ? myconn_col(r, pick, "Connection_name") : NULL;
        if (pick == r->n_rows || strcmp(name ? name : "", best ? best : "") < 0)
            pick = i;
    }
    Godwit__Mariadb *x = m->next;
    if (pick < r->n_rows) {
        Godwit__MariadbReplica *rep = mymon_replica(r, pick, NULL);
        x->replica = rep;
        if (r->n_rows > 1)
            log_debug("mymon: %zu replication connections, reporting \"%s\"", r->n_rows,
                      rep->connection_name);
    }
    if (m->last)
        godwit__mariadb__free_unpacked(m->last, NULL);
    m->last = x;
    m->next = NULL;
    m->last_mono_ms = units_mono_ms();
    m->reading = false;
    free(m->error);
    m->error = NULL;
    s_mark_reachable(m);
}

static void s_on_vars(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mymon_t *m = arg;
    if (!r->ok) {
        s_failed(m, "reading the server's variables", r);
        return;
    }
    if (r->n_rows != 1) {
        myconn_result_t none = { .ok = false, .error = "no row returned" };
        s_failed(m, "reading the server's variables", &none);
        return;
    }
    Godwit__Mariadb *x = xmalloc(sizeof *x);
    godwit__mariadb__init(x);
    x->version = s_str(r, 0, "version");
    uint64_t id = s_u64(myconn_col(r, 0, "server_id"));
    x->server_id = id <= UINT32_MAX ? (uint32_t)id : 0;
    x->log_bin = mytext_bool(myconn_col(r, 0, "log_bin"));
    x->binlog_format = s_str(r, 0, "binlog_format");
    x->binlog_row_image = s_str(r, 0, "binlog_row_image");
    x->gtid_strict_mode = mytext_bool(myconn_col(r, 0, "gtid_strict_mode"));
    x->gtid_binlog_pos = s_str(r, 0, "gtid_binlog_pos");
    x->gtid_current_pos = s_str(r, 0, "gtid_current_pos");
    x->gtid_slave_pos = s_str(r, 0, "gtid_slave_pos");
    x->read_only = mytext_bool(myconn_col(r, 0, "read_only"));
    x->binlog_expire_seconds = s_u64(myconn_col(r, 0, "binlog_expire_logs_seconds"));
    s_drop_next(m);
    m->next = x;
    if (!myconn_query(m->conn, S_REPLICA_SQL, m->timeout_ms, s_on_replica, m)) {
        /* Cannot happen (the connection is ours and idle): said once. */
        myconn_result_t none = { .ok = false, .error = "cannot send the statement" };
        s_failed(m, S_REPLICA_SQL, &none);
    }
}

/* ---- the API ------------------------------------------------------------- */

mymon_t *mymon_new(uv_loop_t *loop, const myconn_params_t *params, uint64_t statement_timeout_ms,
                   mymon_state_cb cb, void *arg)
{
    if (!params || statement_timeout_ms == 0 || statement_timeout_ms > UINT32_MAX)
        return NULL;
    /* Read-only, and no statement of ours runs on the server longer than
     * its limit (seconds, fractions allowed). */
    char *limit = xasprintf("SET SESSION max_statement_time = %" PRIu64 ".%03" PRIu64,
                            statement_timeout_ms / 1000, statement_timeout_ms % 1000);
    const char *init[] = { "SET SESSION TRANSACTION READ ONLY", limit, NULL };
    myconn_params_t p = *params;
    p.init = init;
    myconn_t *conn = myconn_new(loop, "agent mymon", &p);
    free(limit);
    if (!conn)
        return NULL;
    mymon_t *m = xcalloc(1, sizeof *m);
    m->conn = conn;
    m->timeout_ms = params->connect_timeout_ms + statement_timeout_ms + S_DEADLINE_SLACK_MS;
    m->cb = cb;
    m->cb_arg = arg;
    m->reach = S_UNKNOWN;
    return m;
}

void mymon_tick(mymon_t *m)
{
    if (!m)
        return;
    if (m->reading) {
        log_debug("mymon: previous reading still in flight, skipping this tick");
        return;
    }
    if (!myconn_query(m->conn, S_VARS_SQL, m->timeout_ms, s_on_vars, m)) {
        log_debug("mymon: cannot start a reading");
        return;
    }
    m->reading = true;
}

/* A deep copy of x through the wire format (the figures are small). */
static Godwit__Mariadb *s_copy(const Godwit__Mariadb *x)
{
    size_t len = godwit__mariadb__get_packed_size(x);
    uint8_t *buf = xmalloc(len ? len : 1);
    godwit__mariadb__pack(x, buf);
    Godwit__Mariadb *copy = godwit__mariadb__unpack(NULL, len, buf);
    free(buf);
    if (!copy) {
        copy = xmalloc(sizeof *copy); /* only without memory; xmalloc would have aborted */
        godwit__mariadb__init(copy);
    }
    return copy;
}

Godwit__Mariadb *mymon_snapshot(const mymon_t *m)
{
    Godwit__Mariadb *x;
    if (m && m->last) {
        x = s_copy(m->last);
        x->age_ms = units_mono_ms() - m->last_mono_ms;
    } else {
        x = xmalloc(sizeof *x);
        godwit__mariadb__init(x);
    }
    if (!m)
        return x;
    x->reachable = m->reach == S_REACHABLE;
    /* x->error is the shared empty default here: replaced, not freed. */
    if (m->error)
        x->error = xstrdup(m->error);
    else if (m->reach == S_UNKNOWN)
        x->error = xstrdup("not read yet");
    return x;
}

void mymon_destroy(mymon_t **mp)
{
    if (!mp || !*mp)
        return;
    mymon_t *m = *mp;
    *mp = NULL;
    myconn_destroy(&m->conn); /* no callback after this */
    s_drop_next(m);
    if (m->last)
        godwit__mariadb__free_unpacked(m->last, NULL);
    free(m->error);
    free(m);
}
