/*
 * mypreflight: see mypreflight.h; this file is the checks' runtime
 * (mypreflight_run.h). The source's stages are mypreflight_src.c's, the
 * target's mypreflight_tgt.c's.
 */
#include "mypreflight_run.h"

#include <inttypes.h>
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

static void s_close(mystep_t *s)
{
    mypf_t *p = (mypf_t *)s;
    for (int i = 0; i < MYPF_CONNS; i++)
        myconn_destroy(&p->conn[i]);
}

static void s_release(mystep_t *s)
{
    mypf_t *p = (mypf_t *)s;
    if (p->result)
        godwit__preflight_result__free_unpacked(p->result, NULL);
    for (size_t i = 0; i < p->n_req; i++)
        free(p->req_names[i]);
    free(p->req_names);
    free(p->database);
    free(p->agent_name);
    free(p->config_path);
    free(p->src_version);
    free(p->data_directory);
    free(p->peer_where);
    free(p->peer_db);
    free(p);
}

static void s_log_error(mystep_t *s, const char *error)
{
    log_debug("preflight on database %s: %s", ((mypf_t *)s)->database, error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

void mypf_fail_query(mypf_t *p, const char *side, const myconn_result_t *r)
{
    const char *what = p->step.what ? p->step.what : "a statement";
    char *where = side ? xasprintf("%s on %s", what, side) : xstrdup(what);
    mystep_fail_query(&p->step, where, r);
    free(where);
}

/* ---- running ------------------------------------------------------------ */

void mypf_next(mypf_t *p)
{
    if (p->step.disposed)
        return;
    mypf_fn fn = p->stages[p->stage];
    if (!fn) {
        log_debug("preflight on database %s: done, %zu findings", p->database,
                  p->result->n_findings);
        ProtobufCMessage *payload = &p->result->base;
        p->result = NULL;
        mystep_finish(&p->step, payload, NULL);
        return;
    }
    p->stage++;
    fn(p);
}

void mypf_query(mypf_t *p, int i, const char *what, const char *sql, myconn_cb cb)
{
    mystep_query(&p->step, p->conn[i], what, sql, p->timeout_ms, cb, p);
}

char *mypf_literal(mypf_t *p, int i, const char *s)
{
    return mystep_literal(&p->step, p->conn[i], s);
}

static void s_first(mystep_t *s)
{
    mypf_next((mypf_t *)s);
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
    mystep_init(&p->step, loop, &s_ops, done, arg);
    p->conn[MYPF_LOCAL] = conn;
    p->stages = stages;
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

step_t *mypf_start(mypf_t *p)
{
    return mystep_defer(&p->step, s_first);
}
