/*
 * mypreflight: see mypreflight.h; this file is the checks' runtime
 * (mypreflight_run.h). The source's stages are mypreflight_src.c's, the
 * target's mypreflight_tgt.c's.
 */
#include "mypreflight_run.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finding.h"
#include "log.h"
#include "xalloc.h"

#define S_DEADLINE_SLACK_MS 1000

void mypf_add(mypf_t *p, Godwit__Severity sev, const char *code, const char *object,
              char *message, char *fix)
{
    finding_add(p->result, &p->findings_cap, sev, code, object, message, fix);
}

/* ---- ending ----------------------------------------------------------------- */

static void s_on_closed(uv_handle_t *h)
{
    mypf_t *p = h->data;
    if (p->result)
        godwit__preflight_result__free_unpacked(p->result, NULL);
    for (size_t i = 0; i < p->n_req; i++)
        free(p->req_names[i]);
    free(p->req_names);
    free(p->what);
    free(p->database);
    free(p->agent_name);
    free(p->config_path);
    free(p->src_version);
    free(p->data_directory);
    free(p->peer_where);
    free(p->peer_db);
    free(p);
}

/* Stops everything; no callback runs afterwards. */
static void s_dispose(mypf_t *p)
{
    if (p->disposed)
        return;
    p->disposed = true;
    p->done = NULL;
    for (int i = 0; i < MYPF_CONNS; i++)
        myconn_destroy(&p->conn[i]);
    uv_close((uv_handle_t *)&p->timer, s_on_closed);
}

/* Ends the check: the result when error is NULL. done runs last; p's
 * memory goes in the timer's close callback, later. */
static void s_finish(mypf_t *p, const char *error)
{
    if (p->disposed)
        return;
    step_done_cb done = p->done;
    void *arg = p->arg;
    ProtobufCMessage *payload = NULL;
    if (!error) {
        log_debug("preflight on database %s: done, %zu findings", p->database,
                  p->result->n_findings);
        payload = &p->result->base;
        p->result = NULL;
    } else {
        log_debug("preflight on database %s: %s", p->database, error);
    }
    s_dispose(p);
    if (done)
        done(payload, error, arg);
    else if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
}

void mypf_failf(mypf_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    s_finish(p, why ? why : "out of memory");
    free(why);
}

void mypf_fail_query(mypf_t *p, const char *side, const myconn_result_t *r)
{
    const char *what = p->what ? p->what : "a statement";
    char *where = side ? xasprintf("%s on %s", what, side) : xstrdup(what);
    char *why = myconn_result_message(where, r);
    s_finish(p, why);
    free(why);
    free(where);
}

static void s_cancel(step_t *base)
{
    s_dispose((mypf_t *)base);
}

/* ---- running ------------------------------------------------------------ */

void mypf_next(mypf_t *p)
{
    if (p->disposed)
        return;
    mypf_fn fn = p->stages[p->stage];
    if (!fn) {
        s_finish(p, NULL);
        return;
    }
    p->stage++;
    fn(p);
}

void mypf_query(mypf_t *p, int i, const char *what, const char *sql, myconn_cb cb)
{
    char *w = xstrdup(what);
    free(p->what);
    p->what = w;
    if (!myconn_query(p->conn[i], sql, p->timeout_ms, cb, p))
        mypf_failf(p, "%s: cannot send the statement", what);
}

char *mypf_literal(mypf_t *p, int i, const char *s)
{
    char *q = myconn_escape_literal(p->conn[i], s);
    if (!q)
        mypf_failf(p, "cannot quote \"%s\" for SQL: the connection is gone", s);
    return q;
}

static void s_on_kick(uv_timer_t *t)
{
    mypf_next(t->data);
}

/* The statements every check's session runs first: read-only, and none of
 * them longer than the limit on the server (MariaDB's max_statement_time,
 * in seconds; MySQL 8 would be max_execution_time, in ms). */
static char *s_limit_sql(uint64_t ms)
{
    return xasprintf("SET SESSION max_statement_time = %" PRIu64 ".%03" PRIu64, ms / 1000,
                     ms % 1000);
}

mypf_t *mypf_new(uv_loop_t *loop, const mypreflight_local_t *local, const char *database,
                 const mypf_fn *stages, step_done_cb done, void *arg)
{
    if (!loop || !local || !database || !database[0] || !stages || !done ||
        local->statement_timeout_ms == 0 || local->statement_timeout_ms > UINT32_MAX)
        return NULL;
    char *limit = s_limit_sql(local->statement_timeout_ms);
    const char *init[] = { "SET SESSION TRANSACTION READ ONLY", limit, NULL };
    myconn_params_t sp = local->server;
    sp.database = NULL; /* the database may be missing: every name is qualified */
    sp.init = init;
    myconn_t *conn = myconn_new(loop, "agent preflight", &sp);
    free(limit);
    if (!conn)
        return NULL;
    mypf_t *p = xcalloc(1, sizeof *p);
    p->conn[MYPF_LOCAL] = conn;
    p->stages = stages;
    p->done = done;
    p->arg = arg;
    p->timeout_ms =
        local->server.connect_timeout_ms + local->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    p->database = xstrdup(database);
    p->agent_name = xstrdup(local->agent_name ? local->agent_name : "(unnamed)");
    p->config_path = xstrdup(local->config_path ? local->config_path : "the agent's config");
    p->result = xmalloc(sizeof *p->result);
    godwit__preflight_result__init(p->result);
    return p;
}

myconn_t *mypf_peer_conn(uv_loop_t *loop, const mypreflight_local_t *local,
                         const agent_peer_t *peer)
{
    char *limit = s_limit_sql(local->statement_timeout_ms);
    const char *init[] = { "SET SESSION TRANSACTION READ ONLY", limit, NULL };
    myconn_params_t pp = {
        .host = peer->host,
        .port = (int)peer->port,
        .user = peer->user,
        .password_file = peer->password_file,
        .connect_timeout_ms = local->server.connect_timeout_ms,
        .init = init,
    };
    myconn_t *c = myconn_new(loop, "agent preflight peer", &pp);
    free(limit);
    return c;
}

step_t *mypf_start(mypf_t *p, uv_loop_t *loop)
{
    p->base.cancel = s_cancel;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, s_on_kick, 0, 0);
    return &p->base;
}
