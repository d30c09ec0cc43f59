/*
 * sbstep: see sbstep.h. The child plumbing, the server's start and probes
 * and the standby's state, shared by basebackup.c and rejoin.c; every
 * callback here gets the sbstep_t (the step's first member) as its arg.
 */
#include "sbstep.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "pgstep.h"
#include "pgtools.h"
#include "xalloc.h"

#define S_PROBE_MS 100
#define S_START_WAIT_MS 120000   /* from the start command to the first answer */
#define S_KILL_GRACE_MS 5000

const agent_peer_t *sbstep_peer(const step_local_t *local, const char *name)
{
    const agent_peer_t *peer = NULL;
    for (size_t i = 0; i < local->n_peers; i++)
        if (strcmp(local->peers[i].name, name) == 0)
            peer = &local->peers[i];
    return peer;
}

void sbstep_init(sbstep_t *s, const sbstep_ops_t *ops, const step_local_t *local,
                 const agent_peer_t *peer, const char *slot)
{
    s->ops = ops;
    s->local = local;
    s->sb = local->standby;
    s->peer = peer;
    s->slot = xstrdup(slot);
    s->dir = xstrdup(local->standby->data_directory);
}

void sbstep_release(sbstep_t *s)
{
    free(s->slot);
    free(s->dir);
    free(s->start_error);
}

/* ---- the end ---------------------------------------------------------------- */

static void s_phase(sbstep_t *s, const char *phase, const char *error)
{
    if (s->ops->phase)
        s->ops->phase(s, phase, error);
}

void sbstep_fail(sbstep_t *s, const char *why)
{
    s_phase(s, "failed", why);
    steprun_finish(&s->run, NULL, why);
}

void sbstep_failf(sbstep_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    sbstep_fail(s, why ? why : "out of memory");
    free(why);
}

void sbstep_wind_down(sbstep_t *s)
{
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    steprun_wound_down(&s->run);
}

/* A child's end while the step winds down (steprun_finish or a cancel,
 * which also disposes): nothing more runs. True if so (the child is gone
 * and the wind-down over). */
static bool s_child_winding(sbstep_t *s)
{
    proc_destroy(&s->proc, 0);
    if (!s->run.winding && !s->run.disposed)
        return false;
    steprun_wound_down(&s->run);
    return true;
}

bool sbstep_child_end(sbstep_t *s, const proc_result_t *r, const char *what, char **why)
{
    bool ok = r->exit_status == 0 && !r->term_signal;
    *why = ok ? NULL : pgtools_failure(what, r);
    if (s_child_winding(s)) {
        free(*why);
        *why = NULL;
        return false;
    }
    return true;
}

bool sbstep_child_over(sbstep_t *s, const proc_result_t *r, const char *what)
{
    char *why = NULL;
    if (!sbstep_child_end(s, r, what, &why))
        return false;
    if (why)
        sbstep_fail(s, why);
    bool ok = !why;
    free(why);
    return ok;
}

/* ---- the answer ------------------------------------------------------------- */

Godwit__StandbyStatusResult *sbstep_result(const sbstep_t *s, const PGresult *res)
{
    Godwit__StandbyStatusResult *out = xmalloc(sizeof *out);
    godwit__standby_status_result__init(out);
    standby_status_fill(out, res);
    out->data_directory = xstrdup(s->dir);
    out->started = s->started;
    return out;
}

static void s_on_status(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    sbstep_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message("reading the standby's state", r);
        sbstep_fail(s, why);
        free(why);
        return;
    }
    s->ops->answer(s, sbstep_result(s, r->res));
}

static void s_status(sbstep_t *s)
{
    steprun_query_simple(&s->run, 0, "reading the standby's state", standby_status_sql,
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_status);
}

/* ---- the server: answering, or started ------------------------------------- */

void sbstep_local_connect(sbstep_t *s, pgconn_connect_cb cb)
{
    pgconn_destroy(&s->run.conn[0]);
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_local_conn(s->run.loop, s->ops->conn_name, s->local,
                                       s->local->dbname, "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        sbstep_fail(s, "invalid connection parameters for the local server");
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, cb, s);
    if (rc != 0)
        sbstep_failf(s, "cannot connect to the local server: %s", strerror(-rc));
}

/* The server is there but not ready yet (recovery to a consistent state):
 * waiting is all there is to do. */
static bool s_starting_up(const char *error)
{
    return error && (strstr(error, "starting up") || strstr(error, "not yet accepting") ||
                     strstr(error, "consistent recovery state"));
}

static void s_probe_run(steprun_t *run)
{
    sbstep_probe((sbstep_t *)run);
}

static void s_on_probe(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    sbstep_t *s = arg;
    if (ok) {
        s_status(s);
        return;
    }
    /* a copy: error may be the connection's, destroyed here */
    char *e = xstrdup(error ? error : "cannot connect");
    pgconn_destroy(&s->run.conn[0]);
    if (!s->started && !s_starting_up(e)) {
        free(e);
        sbstep_start(s);
        return;
    }
    if (!s->started)
        s->start_deadline = s->start_deadline ? s->start_deadline
                                              : uv_now(s->run.loop) + S_START_WAIT_MS;
    if (uv_now(s->run.loop) >= s->start_deadline) {
        bool also = s->ops->name_start_failure && s->start_error;
        sbstep_failf(s, "%s did not answer within %d s%s: %s%s%s", s->ops->server,
                     S_START_WAIT_MS / 1000, s->started ? " of its start command" : "", e,
                     also ? "; " : "", also ? s->start_error : "");
        free(e);
        return;
    }
    free(e);
    steprun_after(&s->run, S_PROBE_MS, s_probe_run);
}

void sbstep_probe(sbstep_t *s)
{
    sbstep_local_connect(s, s_on_probe);
}

static void s_on_start(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    sbstep_t *s = arg;
    char *why = NULL;
    if (!sbstep_child_end(s, r, s->ops->start_cmd, &why))
        return;
    if (why) {
        /* It may have started all the same (pg_ctl -w gave up waiting, a
         * standby still recovering): the probes decide. */
        log_warn("%s: %s", s->run.label, why);
        free(s->start_error);
        s->start_error = why;
    }
    sbstep_probe(s);
}

/* Runs the config's start command (run_as in front). */
void sbstep_start(sbstep_t *s)
{
    s->started = true;
    s->start_deadline = uv_now(s->run.loop) + S_START_WAIT_MS;
    s_phase(s, "starting", NULL);
    log_info("%s: %s", s->run.label, s->ops->starting);
    char **argv = standby_cmd_argv(s->sb, &s->sb->start);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_start, s, &s->proc);
    if (rc != 0)
        sbstep_failf(s, "cannot run the start command %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* ---- the slot on the peer ------------------------------------------------ */

static void s_on_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    sbstep_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "peer", r);
        return;
    }
    bool exists = r->res && PQntuples(r->res) == 1;
    const char *type = exists ? pgconn_col(r->res, 0, "slot_type") : NULL;
    if (exists && (!type || strcmp(type, "physical") != 0)) {
        sbstep_failf(s, "replication slot \"%s\" on peer \"%s\" is a %s slot, not a physical "
                     "one: nothing was done", s->slot, s->peer->name, type ? type : "(unknown)");
        return;
    }
    s->slot_cb(s, exists);
}

static void s_on_peer(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    sbstep_t *s = arg;
    if (!ok) {
        sbstep_failf(s, "cannot connect to peer \"%s\": %s", s->peer->name,
                     error ? error : "unknown error");
        return;
    }
    const char *params[1] = { s->slot };
    steprun_query(&s->run, 0, "looking up the slot",
                  "SELECT slot_type FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                  1, params, (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                  s_on_slot);
}

void sbstep_peer_slot(sbstep_t *s, sbstep_slot_cb cb)
{
    s->slot_cb = cb;
    pgconn_destroy(&s->run.conn[0]);
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = s->peer->name;
    rc.dbname = (char *)"postgres";
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_remote_conn(s->run.loop, "peer", s->local, &rc, false,
                                        "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        sbstep_failf(s, "invalid connection parameters for peer \"%s\"", s->peer->name);
        return;
    }
    int rc2 = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, s_on_peer, s);
    if (rc2 != 0)
        sbstep_failf(s, "cannot connect to peer \"%s\": %s", s->peer->name, strerror(-rc2));
}
