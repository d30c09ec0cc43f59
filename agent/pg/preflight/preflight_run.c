/*
 * preflight_run: see preflight_run.h. The check on the step runtime: its
 * findings, its statements (with the check's statement timeout), the
 * connection to the local database, and the result handed to done once.
 */
#include "preflight_run.h"
#include "finding.h"
#include "log.h"
#include "pgconn.h"
#include "steprun.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_SERVER_VERSION 130000

/* ---- findings ----------------------------------------------------------- */

/* Adds a finding; takes message and fix (malloc'd), copies the rest. */
void preflight_run_add(preflight_t *p, Godwit__Severity sev, const char *code,
                       const char *object, char *message, char *fix)
{
    finding_add(p->result, &p->findings_cap, sev, code, object, message, fix);
}

/* ---- finishing ---------------------------------------------------------- */

void preflight_run_free_existing(preflight_t *p)
{
    for (size_t i = 0; i < p->n_existing; i++) {
        free(p->existing[i].schema);
        free(p->existing[i].name);
        free(p->existing[i].qname);
    }
    free(p->existing);
    p->existing = NULL;
    p->n_existing = p->next_existing = 0;
}

static void s_release(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (p->result)
        godwit__preflight_result__free_unpacked(p->result, NULL);
    preflight_run_free_existing(p);
    free(p->database);
    free(p->tables_json);
    free(p->src_version);
    free(p->data_directory);
    free(p->bin_dir);
    free(p->rev_user);
    proc_destroy(&p->proc, 0); /* no callback after this */
    free(p->extensions_json);
    free(p->repl_user);
    free(p->repl_db);
    free(p->repl_passfile);
    free(p->repl_where);
    free(p->repl_user_q);
    free(p->repl_db_q);
    free(p->app_roles);
    free(p->import_settings);
    free(p->src_congestion);
    cJSON_Delete(p->access[0]);
    cJSON_Delete(p->access[1]);
    free(p);
}

/* run.done: the caller's callback (its errors carry no label:
 * run.plain_errors). p is still allocated here (it goes in the timer's
 * close callback) and is not touched after done. */
static void s_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    preflight_t *p = arg;
    p->done(payload, error, p->arg);
}

/* Ends the check: the result on success (error NULL), else the error. */
static void s_finish(preflight_t *p, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        log_debug("preflight on database %s: done, %zu findings", p->database,
                  p->result->n_findings);
        payload = &p->result->base;
        p->result = NULL;
    }
    steprun_finish(&p->run, payload, error);
}

/* After the last stage. */
static void s_complete(steprun_t *run)
{
    s_finish((preflight_t *)run, NULL);
}

/* Sends one statement on run.conn[i]; cb gets p. */
void preflight_run_query_on(preflight_t *p, int i, const char *what, const char *sql,
                            int nparams, const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&p->run, i, what, sql, nparams, params,
                  (uint64_t)p->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

/* Sends one statement on the local connection; cb gets p. */
void preflight_run_query(preflight_t *p, const char *what, const char *sql, int nparams,
                         const char *const *params, pgconn_result_cb cb)
{
    preflight_run_query_on(p, P_LOCAL, what, sql, nparams, params, cb);
}

/* ---- connecting to the local database (both sides) ---------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    preflight_t *p = arg;
    if (!ok) {
        steprun_failf(&p->run, "cannot connect to database %s: %s", p->database,
                      error ? error : "unknown error");
        return;
    }
    int version = pgconn_server_version(c);
    if (version < S_MIN_SERVER_VERSION) {
        /* The catalog queries below need 13; nothing else can be checked. */
        preflight_run_add(
            p, SEV_ERROR, "server_version_unsupported", "server_version",
            xasprintf("the server runs PostgreSQL version number %d; godwit needs 13 or later "
                      "on both sides",
                      version),
            xstrdup("Upgrade this server to PostgreSQL 13 or later before migrating."));
        s_finish(p, NULL);
        return;
    }
    steprun_next(&p->run);
}

void preflight_run_connect(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    int rc = pgconn_connect(p->run.conn[P_LOCAL], (uint64_t)p->connect_timeout_ms, s_on_connect,
                            p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start connecting: %s", strerror(-rc));
}

/* ---- starting ----------------------------------------------------------- */

static bool s_local_valid(const preflight_local_t *l)
{
    return l && l->host && l->host[0] && l->port >= 1 && l->port <= 65535 &&
           l->connect_timeout_ms > 0 && l->connect_timeout_ms <= INT32_MAX &&
           l->statement_timeout_ms > 0 && l->statement_timeout_ms <= INT32_MAX;
}

/* A read-only connection to database on the local server, not yet
 * connecting; NULL for invalid parameters. */
static pgconn_t *s_local_conn(uv_loop_t *loop, const preflight_local_t *local,
                              const char *database)
{
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                              " -c default_transaction_read_only=on -c jit=off",
                              local->statement_timeout_ms);
    step_local_t sl = { .host = local->host, .port = local->port, .user = local->user,
                        .passfile = local->passfile,
                        .connect_timeout_ms = local->connect_timeout_ms,
                        .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    pgconn_t *conn = pgstep_local_conn(loop, "agent preflight", &sl, database, "godwit-agent",
                                       options);
    free(options);
    return conn;
}

bool preflight_run_add_local(preflight_t *p, uv_loop_t *loop, const preflight_local_t *local,
                             int i, const char *database)
{
    pgconn_destroy(&p->run.conn[i]);
    p->run.conn[i] = s_local_conn(loop, local, database);
    return p->run.conn[i] != NULL;
}

/* The common part of both starts: p with its local connection and its
 * stages, not started (preflight_run_start). NULL for invalid arguments. */
preflight_t *preflight_run_new(uv_loop_t *loop, const preflight_local_t *local,
                               const char *database, const steprun_fn *stages,
                               step_done_cb done, void *arg)
{
    if (!loop || !s_local_valid(local) || !database || !database[0] || !done)
        return NULL;
    pgconn_t *conn = s_local_conn(loop, local, database);
    if (!conn)
        return NULL;

    preflight_t *p = xcalloc(1, sizeof *p);
    p->run.conn[P_LOCAL] = conn;
    p->run.stages = stages;
    p->run.complete = s_complete;
    p->done = done;
    p->arg = arg;
    p->connect_timeout_ms = local->connect_timeout_ms;
    p->statement_timeout_ms = local->statement_timeout_ms;
    p->database = xstrdup(database);
    p->result = xmalloc(sizeof *p->result);
    godwit__preflight_result__init(p->result);
    return p;
}

/* Runs the first stage one loop turn later. */
step_t *preflight_run_start(preflight_t *p, uv_loop_t *loop)
{
    p->run.plain_errors = true; /* preflight's errors never carried a prefix */
    steprun_start(&p->run, loop, xasprintf("preflight on database %s", p->database), s_done, p,
                  s_release, steprun_next);
    return &p->run.base;
}

bool preflight_run_facts(preflight_t *p, const pgconn_result_t *r)
{
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return false;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&p->run, "reading the source's settings: no row returned");
        return false;
    }
    Godwit__SourceFacts *f = p->result->facts;
    int64_t num = pgconn_col_i64(r->res, 0, "server_version_num", 0);
    f->server_version_num = num > 0 && num <= UINT32_MAX ? (uint32_t)num : 0;
    f->server_version = xstrdup(pgconn_col_str(r->res, 0, "server_version"));
    int64_t size = pgconn_col_i64(r->res, 0, "database_size", 0);
    f->database_size = size > 0 ? (uint64_t)size : 0;
    return true;
}
