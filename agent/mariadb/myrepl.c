/*
 * myrepl: see myrepl.h. Both steps run on one runtime here: a list of
 * stages, each sending one statement on the step's one session, whose
 * callback reads the answer and moves to the next stage or ends the step.
 * A stage that does not apply (the drop of a database the copy did not
 * create) passes straight to the next.
 *
 * What it owns: the step, its session, the result being built, copies of
 * the request's names. Its lifecycle is mystep's (mystep.h): the first
 * stage runs one loop turn after the start (so done never runs inside
 * it), and the timer's close callback frees the step.
 *
 * MariaDB 10.11, as checked on a server: SHOW SLAVE, STOP SLAVE and RESET
 * SLAVE 'name' ALL on a connection that does not exist fail with 1617
 * (WARN_NO_MASTER_INFO, SQLSTATE HY000, "There is no master connection
 * 'name'"); STOP SLAVE on a stopped one succeeds with a note (1255); RESET
 * SLAVE ALL on a running one fails with 1198 (ER_SLAVE_MUST_STOP), so the
 * stop comes first. SHOW SLAVE 'name' STATUS has no Connection_name column
 * (SHOW ALL SLAVES STATUS has): the name is the request's.
 *
 * Never: calls done twice, from inside a start, or after step_cancel;
 * stops or reads a connection whose name step_godwit_name refuses; drops a
 * database or a table whose database's comment is not our copy's for that
 * very connection.
 */
#include "myrepl.h"

#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mymon.h"
#include "mystep.h"
#include "mytext.h"
#include "xalloc.h"

#define S_DEADLINE_SLACK_MS 1000

typedef struct myrepl myrepl_t;
typedef void (*s_stage_fn)(myrepl_t *p);

/* LEAVE: not our copy's; CREATED, ADOPTED: its comment says the copy
 * made it or adopted it empty; KEEP: our copy's, kept (keep_database),
 * only its comment cleared. */
typedef enum { S_DB_LEAVE, S_DB_CREATED, S_DB_ADOPTED, S_DB_KEEP } s_db_kind_t;

struct myrepl {
    mystep_t step;              /* first: the lifecycle (mystep.h) */
    myconn_t *conn;
    const s_stage_fn *stages;   /* NULL-terminated */
    size_t stage;
    uint64_t timeout_ms;        /* each statement's deadline, its connection included */
    const char *label;          /* "replica status", "drop": log lines */
    char *connection;           /* a godwit name: safe inside '...' as it is */
    char *database;             /* drop: the request's database */
    char *db_lit;               /* drop: database as a literal of the session */

    Godwit__ReplicaStatusResult *status; /* status: the result being built */

    s_db_kind_t db_kind;        /* drop: what the database's comment says */
    bool keep_database;         /* drop: the request's keep_database */
    char **tables;              /* drop, adopted: its base tables */
    size_t n_tables;
};

/* ---- ending ------------------------------------------------------------------ */

static void s_close(mystep_t *s)
{
    myconn_destroy(&((myrepl_t *)s)->conn);
}

static void s_release(mystep_t *s)
{
    myrepl_t *p = (myrepl_t *)s;
    if (p->status)
        godwit__replica_status_result__free_unpacked(p->status, NULL);
    for (size_t i = 0; i < p->n_tables; i++)
        free(p->tables[i]);
    free(p->tables);
    free(p->connection);
    free(p->database);
    free(p->db_lit);
    free(p);
}

static void s_log_error(mystep_t *s, const char *error)
{
    myrepl_t *p = (myrepl_t *)s;
    log_debug("%s of replication connection %s: %s", p->label, p->connection, error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* ---- running ----------------------------------------------------------------- */

/* The next stage; after the last, the end with the status result (when
 * there is one). */
static void s_next(myrepl_t *p)
{
    if (p->step.disposed)
        return;
    s_stage_fn fn = p->stages[p->stage];
    if (!fn) {
        log_debug("%s of replication connection %s: done", p->label, p->connection);
        ProtobufCMessage *payload = p->status ? &p->status->base : NULL;
        p->status = NULL;
        mystep_finish(&p->step, payload, NULL);
        return;
    }
    p->stage++;
    fn(p);
}

static void s_query(myrepl_t *p, const char *what, const char *sql, myconn_cb cb)
{
    mystep_query(&p->step, p->conn, what, sql, p->timeout_ms, cb, p);
}

/* A statement whose only answer that matters is success: the next stage. */
static void s_on_ok(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    s_next(p);
}

/* The same, and a connection that does not exist is fine too. */
static void s_on_ok_or_missing(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    if (!r->ok)
        log_debug("%s: replication connection %s does not exist", p->step.what, p->connection);
    s_next(p);
}

static void s_first(mystep_t *s)
{
    s_next((myrepl_t *)s);
}

/* A step on local's server with its session's init statements, not
 * started; NULL when myconn refuses the parameters. */
static myrepl_t *s_new(uv_loop_t *loop, const myrepl_local_t *local, const char *label,
                       const char *const *init, const s_stage_fn *stages,
                       const char *connection, step_done_cb done, void *arg)
{
    myconn_params_t sp = local->server;
    sp.database = NULL; /* the database may be missing: every name is qualified */
    sp.init = init;
    char *conn_label = xasprintf("agent %s", label);
    myconn_t *conn = myconn_new(loop, conn_label, &sp);
    free(conn_label);
    if (!conn)
        return NULL;
    myrepl_t *p = xcalloc(1, sizeof *p);
    mystep_init(&p->step, loop, &s_ops, done, arg);
    p->conn = conn;
    p->stages = stages;
    p->label = label;
    p->timeout_ms =
        local->server.connect_timeout_ms + local->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    p->connection = xstrdup(connection);
    return p;
}

static bool s_local_ok(uv_loop_t *loop, const myrepl_local_t *local, step_done_cb done)
{
    return loop && local && done && local->statement_timeout_ms > 0 &&
           local->statement_timeout_ms <= UINT32_MAX;
}

/* ---- ReplicaStatus ------------------------------------------------------------ */

static void s_on_gtid(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    if (r->n_rows != 1) {
        mystep_failf(&p->step, "%s: no row returned", p->step.what);
        return;
    }
    const char *pos = myconn_col(r, 0, "gtid_slave_pos");
    p->status->gtid_slave_pos = xstrdup(pos ? pos : "");
    s_next(p);
}

static void s_status_gtid(myrepl_t *p)
{
    s_query(p, "reading @@gtid_slave_pos", "SELECT @@gtid_slave_pos AS gtid_slave_pos",
            s_on_gtid);
}

static void s_on_show(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    /* 1617 on 10.11; an empty answer is taken the same way. */
    if (r->ok && r->n_rows > 0) {
        p->status->exists = true;
        p->status->replica = mymon_replica(r, 0, p->connection);
    }
    s_next(p);
}

static void s_status_show(myrepl_t *p)
{
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", p->connection);
    s_query(p, sql, sql, s_on_show);
    free(sql);
}

static const s_stage_fn s_status_stages[] = { s_status_gtid, s_status_show, NULL };

step_t *myrepl_status_start(uv_loop_t *loop, const myrepl_local_t *local,
                            const Godwit__ReplicaStatus *req, step_done_cb done, void *arg,
                            char **why)
{
    if (!s_local_ok(loop, local, done) || !req) {
        *why = xstrdup("replica_status: invalid request");
        return NULL;
    }
    if (!step_godwit_name(req->connection)) {
        *why = xasprintf("replica_status: \"%s\" is not a name godwit gives its replication "
                         "connections (godwit_ and then 1 to 56 of a-z, 0-9 and _): nothing "
                         "was read",
                         req->connection ? req->connection : "");
        return NULL;
    }
    /* Read-only, and no statement longer than the limit on the server
     * (max_statement_time, in seconds). */
    char *limit = xasprintf("SET SESSION max_statement_time = %" PRIu64 ".%03" PRIu64,
                            local->statement_timeout_ms / 1000,
                            local->statement_timeout_ms % 1000);
    const char *init[] = { "SET SESSION TRANSACTION READ ONLY", limit, NULL };
    myrepl_t *p = s_new(loop, local, "replica status", init, s_status_stages, req->connection,
                        done, arg);
    free(limit);
    if (!p) {
        *why = xstrdup("replica_status: invalid connection parameters for the local server");
        return NULL;
    }
    p->status = xmalloc(sizeof *p->status);
    godwit__replica_status_result__init(p->status);
    return mystep_defer(&p->step, s_first);
}

/* ---- DropObjects -------------------------------------------------------------- */

static void s_drop_stop(myrepl_t *p)
{
    char *sql = xasprintf("STOP SLAVE '%s'", p->connection);
    s_query(p, sql, sql, s_on_ok_or_missing);
    free(sql);
}

static void s_drop_reset(myrepl_t *p)
{
    char *sql = xasprintf("RESET SLAVE '%s' ALL", p->connection);
    s_query(p, sql, sql, s_on_ok_or_missing);
    free(sql);
}

/* information_schema compares names case-insensitively: the answer is
 * filtered here by the exact bytes. */
static void s_on_schema(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    const char *comment = NULL;
    bool found = false;
    for (size_t i = 0; i < r->n_rows && !found; i++) {
        const char *name = myconn_col(r, i, "name");
        if (name && strcmp(name, p->database) == 0) {
            found = true;
            comment = myconn_col(r, i, "comment");
        }
    }
    char *created = xasprintf("godwit copy %s: created", p->connection);
    char *adopted = xasprintf("godwit copy %s: adopted", p->connection);
    p->db_kind = S_DB_LEAVE;
    if (!found) {
        log_info("drop of replication connection %s: database %s is not on this server: "
                 "nothing of it to drop",
                 p->connection, p->database);
    } else if (comment && strcmp(comment, created) == 0) {
        p->db_kind = S_DB_CREATED;
    } else if (comment && strcmp(comment, adopted) == 0) {
        p->db_kind = S_DB_ADOPTED;
    } else {
        /* Not our copy's, or no longer (a drop that ran before). */
        log_info("drop of replication connection %s: database %s is left as it is: its comment "
                 "is \"%s\", not \"%s\" nor \"%s\"",
                 p->connection, p->database, comment ? comment : "", created, adopted);
    }
    free(created);
    free(adopted);
    if (p->keep_database && p->db_kind != S_DB_LEAVE) {
        log_info("drop of replication connection %s: database %s is kept (it takes the traffic "
                 "now); its comment is cleared", p->connection, p->database);
        p->db_kind = S_DB_KEEP;
    }
    s_next(p);
}

/* The first statement with the database's name as a literal: made here
 * once, for the later ones too (the session's character set stays). */
static void s_drop_read_schema(myrepl_t *p)
{
    p->db_lit = myconn_escape_literal(p->conn, p->database);
    if (!p->db_lit) {
        mystep_failf(&p->step, "reading database %s's comment: the connection is gone",
                     p->database);
        return;
    }
    char *sql = xasprintf("SELECT SCHEMA_NAME AS name, SCHEMA_COMMENT AS comment"
                          " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                          p->db_lit);
    char *what = xasprintf("reading database %s's comment", p->database);
    s_query(p, what, sql, s_on_schema);
    free(what);
    free(sql);
}

static void s_drop_database(myrepl_t *p)
{
    if (p->db_kind != S_DB_CREATED) {
        s_next(p);
        return;
    }
    log_info("drop of replication connection %s: dropping database %s (made by its copy)",
             p->connection, p->database);
    char *ident = mytext_ident(p->database);
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s", ident);
    char *what = xasprintf("dropping database %s", p->database);
    s_query(p, what, sql, s_on_ok);
    free(what);
    free(sql);
    free(ident);
}

static void s_on_tables(myconn_t *c, const myconn_result_t *r, void *arg)
{
    myrepl_t *p = arg;
    if (!r->ok) {
        mystep_fail_query(&p->step, NULL, r);
        return;
    }
    p->tables = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *p->tables);
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *db = myconn_col(r, i, "db");
        const char *name = myconn_col(r, i, "name");
        if (db && name && strcmp(db, p->database) == 0)
            p->tables[p->n_tables++] = xstrdup(name);
    }
    s_next(p);
}

static void s_drop_read_tables(myrepl_t *p)
{
    if (p->db_kind != S_DB_ADOPTED) {
        s_next(p);
        return;
    }
    /* A system-versioned table is a base table with its history. */
    char *sql = xasprintf("SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name"
                          " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                          " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
                          p->db_lit);
    char *what = xasprintf("reading database %s's tables", p->database);
    s_query(p, what, sql, s_on_tables);
    free(what);
    free(sql);
}

/* One statement for all of them: foreign_key_checks is off in the
 * session, so their order does not matter. */
static void s_drop_tables(myrepl_t *p)
{
    if (p->db_kind != S_DB_ADOPTED || p->n_tables == 0) {
        s_next(p);
        return;
    }
    log_info("drop of replication connection %s: dropping the %zu tables of database %s "
             "(its copy found it empty)",
             p->connection, p->n_tables, p->database);
    mytext_buf_t sql = { 0 };
    mytext_add(&sql, "DROP TABLE IF EXISTS ");
    for (size_t i = 0; i < p->n_tables; i++) {
        char *q = mytext_qname(p->database, p->tables[i]);
        if (i > 0)
            mytext_add(&sql, ", ");
        mytext_add(&sql, q);
        free(q);
    }
    char *what = xasprintf("dropping the tables of database %s", p->database);
    s_query(p, what, sql.s, s_on_ok);
    free(what);
    free(sql.s);
}

static void s_drop_clear_comment(myrepl_t *p)
{
    if (p->db_kind != S_DB_ADOPTED && p->db_kind != S_DB_KEEP) {
        s_next(p);
        return;
    }
    char *ident = mytext_ident(p->database);
    char *sql = xasprintf("ALTER DATABASE %s COMMENT ''", ident);
    char *what = xasprintf("clearing database %s's comment", p->database);
    s_query(p, what, sql, s_on_ok);
    free(what);
    free(sql);
    free(ident);
}

static const s_stage_fn s_drop_stages[] = {
    s_drop_stop,        s_drop_reset,  s_drop_read_schema,   s_drop_database,
    s_drop_read_tables, s_drop_tables, s_drop_clear_comment, NULL,
};

/* The PostgreSQL fields a DropObjects may set, one of them named when set. */
static const char *s_pg_field(const Godwit__DropObjects *req)
{
    if (req->subscription && req->subscription[0])
        return "subscription";
    if (req->publication && req->publication[0])
        return "publication";
    if (req->slot && req->slot[0])
        return "slot";
    if (req->verify_slot && req->verify_slot[0])
        return "verify_slot";
    if (req->physical_slot && req->physical_slot[0])
        return "physical_slot";
    if (req->standby_of_slot && req->standby_of_slot[0])
        return "standby_of_slot";
    return NULL;
}

step_t *myrepl_drop_start(uv_loop_t *loop, const myrepl_local_t *local,
                          const Godwit__DropObjects *req, step_done_cb done, void *arg,
                          char **why)
{
    if (!s_local_ok(loop, local, done) || !req) {
        *why = xstrdup("drop_objects: invalid request");
        return NULL;
    }
    const char *pg = s_pg_field(req);
    if (pg) {
        *why = xasprintf("drop_objects: %s is PostgreSQL's; on MariaDB a DropObjects names "
                         "only replica_connection and its database: nothing was done",
                         pg);
        return NULL;
    }
    if (!step_godwit_name(req->replica_connection)) {
        *why = xasprintf("drop_objects: replica_connection \"%s\" is not a name godwit gives "
                         "its replication connections (godwit_ and then 1 to 56 of a-z, 0-9 "
                         "and _): nothing was done",
                         req->replica_connection ? req->replica_connection : "");
        return NULL;
    }
    if (!req->database || !req->database[0]) {
        *why = xasprintf("drop_objects: replica_connection %s without its database: nothing "
                         "was done",
                         req->replica_connection);
        return NULL;
    }
    /* Not an event of the target's binary log (the target's GTID position
     * stays the source's). No max_statement_time: a DROP DATABASE cut off
     * half way leaves part of it; the connection's deadline still ends the
     * wait here, and running the step again finishes it. */
    const char *init[] = { "SET SESSION sql_log_bin = 0", "SET SESSION foreign_key_checks = 0",
                           NULL };
    myrepl_t *p = s_new(loop, local, "drop", init, s_drop_stages, req->replica_connection,
                        done, arg);
    if (!p) {
        *why = xstrdup("drop_objects: invalid connection parameters for the local server");
        return NULL;
    }
    p->database = xstrdup(req->database);
    p->keep_database = req->keep_database;
    return mystep_defer(&p->step, s_first);
}
