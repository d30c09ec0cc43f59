/*
 * mypromote: see mypromote.h. One session, a list of stages each sending
 * one statement and moving on from its callback (myrepl.c's shape); the
 * result travels with a failure once STOP SLAVE was sent
 * (mystep_finish_both).
 *
 * MariaDB 10.11, as checked on a server: MASTER_GTID_WAIT answers 0 when
 * @@gtid_slave_pos holds the position (at once, with a timeout of 0 too),
 * -1 when the timeout passed, NULL for a position it cannot parse; SHOW
 * SLAVE and STOP SLAVE 'name' of a missing connection fail with 1617.
 *
 * Never: done twice or from inside the start; STOP SLAVE before the final
 * position is executed; a connection whose name step_godwit_name refuses
 * touched.
 */
#include "mypromote.h"

#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "myevents.h"
#include "mystep.h"
#include "mytext.h"
#include "units.h"
#include "xalloc.h"

#define S_DEFAULT_WAIT_MS 30000
#define S_DEADLINE_SLACK_MS 1000

typedef struct mypromote mypromote_t;
typedef void (*s_stage_fn)(mypromote_t *p);

struct mypromote {
    mystep_t step;              /* first: the lifecycle (mystep.h) */
    myconn_t *conn;
    myfence_t *fence;           /* borrowed */
    const s_stage_fn *stages;   /* NULL-terminated */
    size_t stage;
    uint64_t timeout_ms;        /* a statement's deadline, its connection included */
    uint64_t wait_ms;
    char *database;
    char *connection;           /* a godwit name: safe inside '...' as it is */
    char *final_gtid;
    bool stopped;               /* the connection was stopped (or gone) before we came */
    bool requested;             /* STOP SLAVE was sent: the server may be a primary now */
    char **events;              /* the database's SLAVESIDE_DISABLED events */
    size_t n_events, next_event;
    uint64_t stage_us, wait_us;
    Godwit__PromoteResult *result;
};

/* ---- ending ------------------------------------------------------------------ */

static void s_close(mystep_t *s)
{
    myconn_destroy(&((mypromote_t *)s)->conn);
}

static void s_release(mystep_t *s)
{
    mypromote_t *p = (mypromote_t *)s;
    if (p->result)
        godwit__promote_result__free_unpacked(p->result, NULL);
    myevents_free(p->events, p->n_events);
    free(p->database);
    free(p->connection);
    free(p->final_gtid);
    free(p);
}

static void s_log_error(mystep_t *s, const char *error)
{
    mypromote_t *p = (mypromote_t *)s;
    log_warn("promote (database %s, replication connection %s): %s", p->database, p->connection,
             error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* Ends the step with error; the result goes too once the promotion may
 * have begun. */
static void s_fail(mypromote_t *p, char *error)
{
    if (p->requested) {
        p->result->promote_requested = true;
        ProtobufCMessage *payload = &p->result->base;
        p->result = NULL;
        mystep_finish_both(&p->step, payload, error);
    } else {
        mystep_finish(&p->step, NULL, error);
    }
    free(error);
}

static bool s_ok(mypromote_t *p, const myconn_result_t *r)
{
    if (!r->ok)
        s_fail(p, myconn_result_message(p->step.what, r));
    return r->ok;
}

/* ---- running ----------------------------------------------------------------- */

static void s_timed(mypromote_t *p, const char *name)
{
    uint64_t now = units_mono_us();
    Godwit__TimedStep *t = xmalloc(sizeof *t);
    godwit__timed_step__init(t);
    t->name = xstrdup(name);
    t->ms = (double)(now - p->stage_us) / 1000.0;
    p->stage_us = now;
    Godwit__PromoteResult *r = p->result;
    r->steps = xrealloc(r->steps, (r->n_steps + 1) * sizeof *r->steps);
    r->steps[r->n_steps++] = t;
}

static void s_query(mypromote_t *p, const char *what, const char *sql, uint64_t timeout_ms,
                    myconn_cb cb)
{
    char *w = xstrdup(what);
    free(p->step.what);
    p->step.what = w;
    if (!myconn_query(p->conn, sql, timeout_ms, cb, p))
        s_fail(p, xasprintf("%s: cannot send the statement", w));
}

static void s_next(mypromote_t *p)
{
    if (p->step.disposed)
        return;
    s_stage_fn fn = p->stages[p->stage];
    if (!fn) {
        log_info("promote (database %s): writable at '%s'%s, %u accounts unlocked, %zu events "
                 "enabled",
                 p->database, p->result->promoted_gtid, p->result->already ? " (already)" : "",
                 p->result->roles, p->n_events);
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
    mypromote_t *p = (mypromote_t *)s;
    p->stage_us = units_mono_us();
    s_next(p);
}

/* ---- the wait -------------------------------------------------------------------- */

static void s_on_status(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        s_ok(p, r);
        return;
    }
    if (!r->ok || r->n_rows == 0) {
        p->stopped = true;
    } else {
        const char *io = myconn_col(r, 0, "Slave_IO_Running");
        const char *sql = myconn_col(r, 0, "Slave_SQL_Running");
        p->stopped = io && sql && strcmp(io, "No") == 0 && strcmp(sql, "No") == 0;
    }
    s_next(p);
}

static void s_status(mypromote_t *p)
{
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", p->connection);
    s_query(p, sql, sql, p->timeout_ms, s_on_status);
    free(sql);
}

static void s_on_slave_pos(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    const char *pos = r->n_rows == 1 ? myconn_col(r, 0, "pos") : NULL;
    uint64_t ms = (units_mono_us() - p->wait_us) / 1000;
    s_fail(p, xasprintf("executed only up to '%s', not the final position '%s', in %" PRIu64
                        " ms%s: replication was not stopped, the target is not writable",
                        pos ? pos : "", p->final_gtid, ms,
                        p->stopped ? " (the replication connection is stopped)" : ""));
}

static void s_on_wait(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    const char *v = r->n_rows == 1 ? myconn_col(r, 0, "r") : NULL;
    if (!v) {
        s_fail(p, xasprintf("MASTER_GTID_WAIT('%s') answered NULL: not a GTID position the "
                            "server can read",
                            p->final_gtid));
        return;
    }
    if (strcmp(v, "0") != 0) {
        s_query(p, "reading @@gtid_slave_pos", "SELECT @@global.gtid_slave_pos AS pos",
                p->timeout_ms, s_on_slave_pos);
        return;
    }
    p->result->already = p->stopped;
    s_timed(p, "final position executed");
    s_next(p);
}

static void s_wait(mypromote_t *p)
{
    char *gtid = myconn_escape_literal(p->conn, p->final_gtid);
    if (!gtid) {
        s_fail(p, xstrdup("cannot quote the final position: the connection is gone"));
        return;
    }
    /* A stopped connection executes nothing more: asked once, not waited. */
    uint64_t wait_ms = p->stopped ? 0 : p->wait_ms;
    char *sql = xasprintf("SELECT MASTER_GTID_WAIT(%s, %" PRIu64 ".%03" PRIu64 ") AS r", gtid,
                          wait_ms / 1000, wait_ms % 1000);
    char *what = xasprintf("waiting for the final position '%s'", p->final_gtid);
    p->wait_us = units_mono_us();
    s_query(p, what, sql, wait_ms + p->timeout_ms, s_on_wait);
    free(what);
    free(sql);
    free(gtid);
}

/* ---- the promotion --------------------------------------------------------------- */

static void s_on_stopped(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!r->ok && r->errnum != WARN_NO_MASTER_INFO) {
        s_ok(p, r);
        return;
    }
    s_timed(p, "stop replication");
    s_next(p);
}

static void s_stop(mypromote_t *p)
{
    p->requested = true;
    char *sql = xasprintf("STOP SLAVE '%s'", p->connection);
    s_query(p, sql, sql, p->timeout_ms, s_on_stopped);
    free(sql);
}

static void s_on_unlocked(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    if (!myfence_lifted(p->fence, "promote")) {
        s_fail(p, xstrdup("the fence's accounts are unlocked but its record could not be "
                          "removed (see the agent's log)"));
        return;
    }
    s_timed(p, "lift fence");
    s_next(p);
}

/* A rollback's old source is fenced by us: lifted as UNFREEZE lifts it
 * (read_only comes next, OFF whatever it was before the fence). */
static void s_fence(mypromote_t *p)
{
    myfence_rec_t rec;
    char why[512];
    if (!p->fence || !myfence_record(p->fence, &rec, why, sizeof why)) {
        if (p->fence && why[0]) {
            s_fail(p, xasprintf("%s: the fence cannot be lifted from it (unlock the "
                                "application's accounts by hand, then remove the file)",
                                why));
            return;
        }
        s_timed(p, "lift fence");
        s_next(p);
        return;
    }
    size_t n = 0;
    char *sql = myfencefile_alter_sql(&rec, false, &n);
    myfencefile_clear(&rec);
    p->result->roles = (uint32_t)n;
    if (!sql) {
        myconn_result_t ok = { .ok = true };
        s_on_unlocked(p->conn, &ok, p);
        return;
    }
    s_query(p, sql, sql, p->timeout_ms, s_on_unlocked);
    free(sql);
}

static void s_on_writable(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    s_timed(p, "writable");
    s_next(p);
}

static void s_writable(mypromote_t *p)
{
    s_query(p, "SET GLOBAL read_only = OFF", "SET GLOBAL read_only = OFF", p->timeout_ms,
            s_on_writable);
}

static void s_enable_next(mypromote_t *p);

static void s_on_enabled(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    p->next_event++;
    s_enable_next(p);
}

static void s_enable_next(mypromote_t *p)
{
    if (p->next_event >= p->n_events) {
        s_timed(p, "events");
        s_next(p);
        return;
    }
    char *q = mytext_qname(p->database, p->events[p->next_event]);
    char *sql = xasprintf("ALTER EVENT %s ENABLE", q);
    s_query(p, sql, sql, p->timeout_ms, s_on_enabled);
    free(sql);
    free(q);
}

/* information_schema compares names case-insensitively: the answer is
 * filtered here by the exact bytes. */
static void s_on_events(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    p->events = myevents_names(r, p->database, &p->n_events);
    s_enable_next(p);
}

static void s_events(mypromote_t *p)
{
    char *db = myconn_escape_literal(p->conn, p->database);
    if (!db) {
        s_fail(p, xstrdup("cannot quote the database's name: the connection is gone"));
        return;
    }
    char *sql = myevents_sql(db, "SLAVESIDE_DISABLED");
    s_query(p, "listing the database's events disabled on the replica", sql, p->timeout_ms,
            s_on_events);
    free(sql);
    free(db);
}

static void s_on_position(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    mypromote_t *p = arg;
    if (!s_ok(p, r))
        return;
    const char *pos = r->n_rows == 1 ? myconn_col(r, 0, "pos") : NULL;
    p->result->promoted_gtid = xstrdup(pos ? pos : "");
    s_next(p);
}

static void s_position(mypromote_t *p)
{
    s_query(p, "reading @@global.gtid_binlog_pos", "SELECT @@global.gtid_binlog_pos AS pos",
            p->timeout_ms, s_on_position);
}

static const s_stage_fn s_stages[] = { s_status,    s_wait,   s_stop,     s_fence,
                                       s_writable,  s_events, s_position, NULL };

step_t *mypromote_start(uv_loop_t *loop, const mypromote_local_t *local,
                        const Godwit__Promote *req, step_done_cb done, void *arg, char **why)
{
    *why = NULL;
    if (!loop || !local || !req || !done || local->statement_timeout_ms == 0) {
        *why = xstrdup("promote: invalid request");
        return NULL;
    }
    if (req->n_check > 0) {
        *why = xstrdup("promote: the final check is not available for MariaDB (check must be "
                       "empty): nothing was done");
        return NULL;
    }
    if (req->final_lsn) {
        *why = xstrdup("promote: final_lsn is PostgreSQL's; on MariaDB the final position is "
                       "final_gtid: nothing was done");
        return NULL;
    }
    if (!req->final_gtid || !req->final_gtid[0]) {
        *why = xstrdup("promote: no final_gtid (the source's @@gtid_binlog_pos once fenced): "
                       "nothing was done");
        return NULL;
    }
    if (!req->database || !req->database[0]) {
        *why = xstrdup("promote: no database: nothing was done");
        return NULL;
    }
    if (!step_godwit_name(req->replica_connection)) {
        *why = xasprintf("promote: replica_connection \"%s\" is not a name godwit gives its "
                         "replication connections (godwit_ and then 1 to 56 of a-z, 0-9 and "
                         "_): nothing was done",
                         req->replica_connection ? req->replica_connection : "");
        return NULL;
    }
    myconn_params_t sp = local->server;
    sp.database = NULL;
    const char *init[] = { "SET SESSION sql_log_bin = 0", NULL };
    sp.init = init;
    myconn_t *conn = myconn_new(loop, "agent mypromote", &sp);
    if (!conn) {
        *why = xstrdup("promote: invalid connection parameters for the local server");
        return NULL;
    }
    mypromote_t *p = xcalloc(1, sizeof *p);
    mystep_init(&p->step, loop, &s_ops, done, arg);
    p->conn = conn;
    p->fence = local->fence;
    p->stages = s_stages;
    p->timeout_ms =
        local->server.connect_timeout_ms + local->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    p->wait_ms = req->wait_timeout_ms ? req->wait_timeout_ms : S_DEFAULT_WAIT_MS;
    p->database = xstrdup(req->database);
    p->connection = xstrdup(req->replica_connection);
    p->final_gtid = xstrdup(req->final_gtid);
    p->result = xmalloc(sizeof *p->result);
    godwit__promote_result__init(p->result);
    return mystep_defer(&p->step, s_first);
}
