/*
 * myfollow: see myfollow.h. One session, a list of stages each sending
 * one statement and moving on from its callback (myrepl.c's shape); a
 * stage that does not apply passes to the next, and the connection found
 * running jumps to the answer. The wait for the IO thread is a poll on the
 * step's timer (mystep_after).
 *
 * MariaDB 10.11: SHOW SLAVE 'x' STATUS of a missing connection fails with
 * 1617; SET GLOBAL gtid_slave_pos with a connection running fails with
 * 1198; a per-connection filter is taken only while both threads are
 * stopped.
 *
 * Never: done twice or from inside the start; the password in a log line;
 * a connection whose name step_godwit_name refuses touched.
 */
#include "myfollow.h"

#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "myevents.h"
#include "mymon.h"
#include "mystep.h"
#include "mytext.h"
#include "units.h"
#include "xalloc.h"

#define S_DEADLINE_SLACK_MS 1000
#define S_START_MS 5000         /* the IO thread must connect within this */
#define S_START_POLL_MS 50

typedef struct myfollow myfollow_t;
typedef void (*s_stage_fn)(myfollow_t *p);

struct myfollow {
    mystep_t step;              /* first: the lifecycle (mystep.h) */
    myconn_t *conn;
    const s_stage_fn *stages;   /* NULL-terminated */
    size_t stage;
    size_t answer;              /* the index of the answer's first stage */
    uint64_t timeout_ms;
    char *database;
    char *connection;           /* a godwit name: safe inside '...' and `...` as it is */
    char *gtid;                 /* "" : start from where it stopped */
    char *peer_name, *peer_host, *peer_user, *peer_password_file;
    int peer_port;
    bool exists, running_any;   /* the connection as found */
    char **events;
    size_t n_events, next_event;
    uint64_t start_us;
    Godwit__ReplicaStatusResult *result;
};

/* ---- ending -------------------------------------------------------------------- */

static void s_close(mystep_t *s)
{
    myconn_destroy(&((myfollow_t *)s)->conn);
}

static void s_release(mystep_t *s)
{
    myfollow_t *p = (myfollow_t *)s;
    if (p->result)
        godwit__replica_status_result__free_unpacked(p->result, NULL);
    myevents_free(p->events, p->n_events);
    free(p->database);
    free(p->connection);
    free(p->gtid);
    free(p->peer_name);
    free(p->peer_host);
    free(p->peer_user);
    free(p->peer_password_file);
    free(p);
}

static void s_log_error(mystep_t *s, const char *error)
{
    myfollow_t *p = (myfollow_t *)s;
    log_warn("follow (replication connection %s, database %s): %s", p->connection, p->database,
             error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* ---- running --------------------------------------------------------------------- */

static void s_next(myfollow_t *p)
{
    if (p->step.disposed)
        return;
    s_stage_fn fn = p->stages[p->stage];
    if (!fn) {
        ProtobufCMessage *payload = &p->result->base;
        p->result = NULL;
        mystep_finish(&p->step, payload, NULL);
        return;
    }
    p->stage++;
    fn(p);
}

static void s_first(mystep_t *s)
{
    s_next((myfollow_t *)s);
}

static void s_query(myfollow_t *p, const char *what, const char *sql, myconn_cb cb)
{
    mystep_query(&p->step, p->conn, what, sql, p->timeout_ms, cb, p);
}

static void s_on_ok(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    s_next(p);
}

static bool s_yes(const char *v)
{
    return v && strcmp(v, "Yes") == 0;
}

/* ---- what is there ------------------------------------------------------------------ */

static void s_on_show(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    p->exists = r->ok && r->n_rows > 0;
    if (p->exists) {
        bool io = s_yes(myconn_col(r, 0, "Slave_IO_Running"));
        bool sql = s_yes(myconn_col(r, 0, "Slave_SQL_Running"));
        const char *io_s = myconn_col(r, 0, "Slave_IO_Running");
        p->running_any = sql || (io_s && strcmp(io_s, "No") != 0);
        if (io && sql) {
            log_info("follow: replication connection %s runs already", p->connection);
            p->stage = p->answer;
        }
    }
    if (!p->exists && !p->gtid[0]) {
        mystep_failf(&p->step, "replication connection %s does not exist, and no gtid was given "
                               "to make it from: nothing was changed",
                     p->connection);
        return;
    }
    s_next(p);
}

static void s_show(myfollow_t *p)
{
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", p->connection);
    s_query(p, sql, sql, s_on_show);
    free(sql);
}

static void s_on_all(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *name = myconn_col(r, i, "Connection_name");
        const char *io = myconn_col(r, i, "Slave_IO_Running");
        bool running = s_yes(myconn_col(r, i, "Slave_SQL_Running")) || (io && strcmp(io, "No"));
        if (name && strcmp(name, p->connection) != 0 && running) {
            mystep_failf(&p->step, "replication connection '%s' runs on this server: setting "
                                   "gtid_slave_pos needs every replication connection stopped "
                                   "(STOP SLAVE '%s' first): nothing was changed",
                         name, name);
            return;
        }
    }
    s_next(p);
}

/* gtid set: every other connection must be stopped. */
static void s_others(myfollow_t *p)
{
    if (!p->gtid[0]) {
        s_next(p);
        return;
    }
    s_query(p, "reading this server's replication connections", "SHOW ALL SLAVES STATUS",
            s_on_all);
}

/* ---- the connection ------------------------------------------------------------------- */

static void s_stop(myfollow_t *p)
{
    if (!p->exists || !p->running_any) {
        s_next(p);
        return;
    }
    char *sql = xasprintf("STOP SLAVE '%s'", p->connection);
    s_query(p, sql, sql, s_on_ok);
    free(sql);
}

static void s_slave_pos(myfollow_t *p)
{
    if (!p->gtid[0]) {
        s_next(p);
        return;
    }
    char *pos = mystep_literal(&p->step, p->conn, p->gtid);
    if (!pos)
        return;
    char *sql = xasprintf("SET GLOBAL gtid_slave_pos = %s", pos);
    s_query(p, sql, sql, s_on_ok);
    free(sql);
    free(pos);
}

static void s_change(myfollow_t *p)
{
    if (!p->gtid[0]) {
        s_next(p);
        return;
    }
    char *sql = mystep_change_master_sql(&p->step, p->conn, p->connection, p->peer_name,
                                         p->peer_host, p->peer_port, p->peer_user,
                                         p->peer_password_file);
    if (!sql)
        return;
    /* Never logged: the statement holds the password. */
    s_query(p, "making the replication connection (CHANGE MASTER)", sql, s_on_ok);
    keys_wipe_free(sql);
}

static void s_filter(myfollow_t *p)
{
    char *db = mystep_literal(&p->step, p->conn, p->database);
    if (!db)
        return;
    char *sql = xasprintf("SET GLOBAL `%s`.replicate_do_db = %s", p->connection, db);
    s_query(p, "setting the replication connection's replicate_do_db", sql, s_on_ok);
    free(sql);
    free(db);
}

/* ---- the events -------------------------------------------------------------------- */

static void s_disable_next(myfollow_t *p);

static void s_on_disabled(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    p->next_event++;
    s_disable_next(p);
}

static void s_disable_next(myfollow_t *p)
{
    if (p->next_event >= p->n_events) {
        if (p->n_events)
            log_info("follow: %zu events of database %s made DISABLE ON SLAVE", p->n_events,
                     p->database);
        s_next(p);
        return;
    }
    char *q = mytext_qname(p->database, p->events[p->next_event]);
    char *sql = xasprintf("ALTER EVENT %s DISABLE ON SLAVE", q);
    s_query(p, sql, sql, s_on_disabled);
    free(sql);
    free(q);
}

/* information_schema compares names case-insensitively: the answer is
 * filtered here by the exact bytes. */
static void s_on_events(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    p->events = myevents_names(r, p->database, &p->n_events);
    s_disable_next(p);
}

static void s_events(myfollow_t *p)
{
    char *db = mystep_literal(&p->step, p->conn, p->database);
    if (!db)
        return;
    char *sql = myevents_sql(db, "ENABLED");
    s_query(p, "listing the database's enabled events", sql, s_on_events);
    free(sql);
    free(db);
}

/* ---- starting ------------------------------------------------------------------------ */

static void s_start_slave(myfollow_t *p)
{
    char *sql = xasprintf("START SLAVE '%s'", p->connection);
    p->start_us = units_mono_us();
    s_query(p, sql, sql, s_on_ok);
    free(sql);
}

static void s_again(mystep_t *s)
{
    s_next((myfollow_t *)s);
}

static void s_on_started(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    if (r->n_rows == 0) {
        mystep_failf(&p->step, "replication connection %s is gone after START SLAVE",
                     p->connection);
        return;
    }
    const char *io_err = myconn_col(r, 0, "Last_IO_Error");
    const char *sql_err = myconn_col(r, 0, "Last_SQL_Error");
    if (sql_err && sql_err[0]) {
        mystep_failf(&p->step, "replication connection %s: %s", p->connection, sql_err);
        return;
    }
    if (io_err && io_err[0]) {
        mystep_failf(&p->step, "replication connection %s: %s", p->connection, io_err);
        return;
    }
    const char *io = myconn_col(r, 0, "Slave_IO_Running");
    if (s_yes(io)) {
        log_info("follow: replication connection %s replicates database %s from peer %s",
                 p->connection, p->database, p->peer_name);
        s_next(p);
        return;
    }
    uint64_t waited_ms = (units_mono_us() - p->start_us) / 1000;
    if (waited_ms >= S_START_MS) {
        mystep_failf(&p->step, "replication connection %s: Slave_IO_Running is still %s %" PRIu64
                               " ms after START SLAVE, with no error shown",
                     p->connection, io ? io : "(unknown)", waited_ms);
        return;
    }
    p->stage--; /* this poll once more */
    mystep_after(&p->step, S_START_POLL_MS, s_again);
}

static void s_wait_io(myfollow_t *p)
{
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", p->connection);
    s_query(p, "waiting for the replication's IO thread", sql, s_on_started);
    free(sql);
}

/* ---- the answer (ReplicaStatus's) ---------------------------------------------------- */

static void s_on_gtid(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    const char *pos = r->n_rows == 1 ? myconn_col(r, 0, "gtid_slave_pos") : NULL;
    p->result->gtid_slave_pos = xstrdup(pos ? pos : "");
    s_next(p);
}

static void s_answer_gtid(myfollow_t *p)
{
    s_query(p, "reading @@gtid_slave_pos", "SELECT @@gtid_slave_pos AS gtid_slave_pos",
            s_on_gtid);
}

static void s_on_answer(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    myfollow_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    if (r->ok && r->n_rows > 0) {
        p->result->exists = true;
        p->result->replica = mymon_replica(r, 0, p->connection);
    }
    s_next(p);
}

static void s_answer_show(myfollow_t *p)
{
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", p->connection);
    s_query(p, sql, sql, s_on_answer);
    free(sql);
}

static const s_stage_fn s_stages[] = {
    s_show,   s_others,      s_stop,    s_slave_pos,    s_change,      s_filter,
    s_events, s_start_slave, s_wait_io, s_answer_gtid, s_answer_show, NULL,
};

step_t *myfollow_start(uv_loop_t *loop, const myfollow_local_t *local,
                       const Godwit__MyFollow *req, step_done_cb done, void *arg, char **why)
{
    *why = NULL;
    if (!loop || !local || !req || !done || local->statement_timeout_ms == 0) {
        *why = xstrdup("my_follow: invalid request");
        return NULL;
    }
    if (!step_godwit_name(req->connection)) {
        *why = xasprintf("my_follow: connection \"%s\" is not a name godwit gives its "
                         "replication connections (godwit_ and then 1 to 56 of a-z, 0-9 and "
                         "_): nothing was done",
                         req->connection ? req->connection : "");
        return NULL;
    }
    if (!req->database || !req->database[0] || strchr(req->database, ',')) {
        *why = xasprintf("my_follow: database \"%s\": %s: nothing was done",
                         req->database ? req->database : "",
                         req->database && req->database[0]
                             ? "a name with a comma cannot be a replicate_do_db"
                             : "no database");
        return NULL;
    }
    step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    const agent_peer_t *peer = req->source ? step_peer(&sl, req->source, why) : NULL;
    if (!peer) {
        if (!*why)
            *why = xstrdup("my_follow: no source (a peer of this agent)");
        return NULL;
    }
    if (!peer->host || !peer->host[0] || !peer->user || peer->port <= 0 || peer->port > 65535) {
        *why = xasprintf("my_follow: peer %s in %s lacks a host, a port or a user", peer->name,
                         local->config_path ? local->config_path : "the agent's config");
        return NULL;
    }
    myconn_params_t sp = local->server;
    sp.database = NULL;
    const char *init[] = { "SET SESSION sql_log_bin = 0", NULL };
    sp.init = init;
    myconn_t *conn = myconn_new(loop, "agent myfollow", &sp);
    if (!conn) {
        *why = xstrdup("my_follow: invalid connection parameters for the local server");
        return NULL;
    }
    myfollow_t *p = xcalloc(1, sizeof *p);
    mystep_init(&p->step, loop, &s_ops, done, arg);
    p->conn = conn;
    p->stages = s_stages;
    for (size_t i = 0; s_stages[i]; i++)
        if (s_stages[i] == s_answer_gtid)
            p->answer = i; /* a connection found running jumps here */
    p->timeout_ms =
        local->server.connect_timeout_ms + local->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    p->database = xstrdup(req->database);
    p->connection = xstrdup(req->connection);
    p->gtid = xstrdup(req->gtid ? req->gtid : "");
    p->peer_name = xstrdup(peer->name);
    p->peer_host = xstrdup(peer->host);
    p->peer_user = xstrdup(peer->user);
    p->peer_password_file = peer->password_file ? xstrdup(peer->password_file) : NULL;
    p->peer_port = (int)peer->port;
    p->result = xmalloc(sizeof *p->result);
    godwit__replica_status_result__init(p->result);
    return mystep_defer(&p->step, s_first);
}
