/*
 * rejoin: the Rejoin step (rejoin.h). Its stages, each ending in the next
 * or in the step's end:
 *
 *   s_look        the local server: answering, in recovery, streaming
 *                 through the slot? then answered (already)
 *   s_peer        the slot on the peer: there (physical), or created
 *   s_stop        the stop command, then s_down: nothing may answer
 *   s_rewind      pg_rewind (a child), unless our settings are there
 *   s_settings    godwit's marker removed if pg_rewind brought one,
 *                 standby.signal and postgresql.auto.conf written
 *   s_start       the start command, then s_probe: a connection attempt
 *                 every S_PROBE_MS until S_START_WAIT_MS have passed
 *   s_status      standby_status_sql, the answer
 */
#include "rejoin.h"
#include "steprun.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "recoveryconf.h"
#include "standby.h"
#include "xalloc.h"

#define S_PROBE_MS 100
#define S_START_WAIT_MS 120000   /* from the start command to the first answer */
#define S_KILL_GRACE_MS 5000
#define S_APP "godwit"           /* the standby's application_name on the peer */

typedef struct {
    steprun_t run;                   /* first: conn[0], label */
    const step_local_t *local;       /* borrowed: the engine's */
    const agent_standby_t *sb;       /* local->standby */
    const agent_peer_t *peer;        /* from local's peers */
    char *slot, *dir;
    bool created_slot;               /* this run created the slot on the peer */
    bool rewound;                    /* pg_rewind ran (false: skipped) */
    uint64_t start_deadline;         /* uv_now when waiting for the server ends */
    char *stop_error;                /* the stop command's failure, if it failed */
    char *last_error;                /* the start command's or the last probe's */
    proc_t *proc;                    /* the child running, if any */
} rj_t;

static void s_probe(steprun_t *run);

char *rejoin_refusal(const step_local_t *local, const Godwit__Rejoin *req)
{
    const char *config = local->config_path ? local->config_path : "(unknown)";
    if (!local->standby)
        return xasprintf("this agent cannot make its server a standby of its peer: its config "
                         "%s has no postgres.standby section (docs/config.md); nothing was done",
                         config);
    if (!req->slot || !step_godwit_name(req->slot))
        return xasprintf("slot \"%s\" is not a name godwit gives its objects: nothing was done",
                         req->slot ? req->slot : "");
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = req->peer;
    rc.dbname = (char *)"postgres";
    char *why = NULL;
    if (!step_peer(local, &rc, &why))
        return why;
    return NULL;
}

/* ---- the end ---------------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    rj_t *s = (rj_t *)run;
    free(s->slot);
    free(s->dir);
    free(s->stop_error);
    free(s->last_error);
    free(s);
}

/* The runtime's wind-down: a running child (the stop or start command,
 * pg_rewind) is killed, its group with it, and waited for. */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    rj_t *s = (rj_t *)run;
    if (cancelled)
        log_info("%s: cancelled%s", s->run.label,
                 s->proc ? ": stopping the child that runs" : "");
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    steprun_wound_down(&s->run);
}

/* A child's end while the step winds down: nothing more runs. True if so. */
static bool s_child_winding(rj_t *s)
{
    proc_destroy(&s->proc, 0);
    if (!s->run.winding && !s->run.disposed)
        return false;
    steprun_wound_down(&s->run);
    return true;
}

/* A child's end: *why (malloc'd) its failure, if it failed; false once
 * the step winds down (nothing more to do). */
static bool s_child_end(rj_t *s, const proc_result_t *r, const char *what, char **why)
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

/* ---- the answer ------------------------------------------------------------- */

static Godwit__StandbyStatusResult *s_result(rj_t *s, const PGresult *res)
{
    Godwit__StandbyStatusResult *out = xmalloc(sizeof *out);
    godwit__standby_status_result__init(out);
    standby_status_fill(out, res);
    out->ours = false; /* the old primary's own directory: never godwit's to remove */
    out->data_directory = xstrdup(s->dir);
    return out;
}

static void s_on_status(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, NULL, r);
        return;
    }
    Godwit__StandbyStatusResult *res = s_result(s, r->res);
    res->started = true;
    if (!res->in_recovery) {
        godwit__standby_status_result__free_unpacked(res, NULL);
        steprun_failf(&s->run, "the server answers after its start command but is NOT in "
                      "recovery (%s/%s was not taken): it is a primary now",
                      s->dir, RECOVERYCONF_SIGNAL);
        return;
    }
    log_info("%s: the server runs as a standby (%s%s)", s->run.label,
             res->streaming ? "streaming" : "not streaming yet",
             s->rewound ? "" : ", no pg_rewind needed this run");
    steprun_finish(&s->run, &res->base, NULL);
}

static void s_status(rj_t *s)
{
    steprun_query_simple(&s->run, 0, "reading the standby's state", standby_status_sql,
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_status);
}

/* ---- the start --------------------------------------------------------------- */

static void s_on_probe(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (ok) {
        s_status(s);
        return;
    }
    pgconn_destroy(&s->run.conn[0]);
    if (uv_now(s->run.loop) >= s->start_deadline) {
        steprun_failf(&s->run, "the server did not answer within %d s of its start command: "
                      "%s%s%s", S_START_WAIT_MS / 1000, error ? error : "cannot connect",
                      s->last_error ? "; " : "", s->last_error ? s->last_error : "");
        return;
    }
    steprun_after(&s->run, S_PROBE_MS, s_probe);
}

/* One connection attempt to the local server. */
static void s_local_connect(rj_t *s, pgconn_connect_cb cb)
{
    pgconn_destroy(&s->run.conn[0]);
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_local_conn(s->run.loop, "rejoin", s->local, s->local->dbname,
                                       "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        steprun_failf(&s->run, "invalid connection parameters for the local server");
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, cb, s);
    if (rc != 0)
        steprun_failf(&s->run, "cannot connect to the local server: %s", strerror(-rc));
}

static void s_probe(steprun_t *run)
{
    s_local_connect((rj_t *)run, s_on_probe);
}

static void s_on_start(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    rj_t *s = arg;
    char *why = NULL;
    if (!s_child_end(s, r, "the start command", &why))
        return;
    if (why) {
        /* It may have started all the same (pg_ctl -w gave up waiting, a
         * standby still recovering): the probes decide, and name this
         * failure if they time out. */
        log_warn("%s: %s", s->run.label, why);
        free(s->last_error);
        s->last_error = why;
    }
    s_probe(&s->run);
}

static void s_start(rj_t *s)
{
    s->start_deadline = uv_now(s->run.loop) + S_START_WAIT_MS;
    log_info("%s: starting the server as a standby", s->run.label);
    char **argv = standby_cmd_argv(s->sb, &s->sb->start);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_start, s, &s->proc);
    if (rc != 0)
        steprun_failf(&s->run, "cannot run the start command %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* ---- the recovery settings ---------------------------------------------------- */

static void s_settings(rj_t *s)
{
    /* pg_rewind copies the peer's files, a marker of a standby godwit made
     * there with them: this directory must never look like ours. */
    char *marker = xasprintf("%s/%s", s->dir, STANDBY_MARKER);
    if (unlink(marker) == 0)
        log_info("%s: removed %s (pg_rewind copied it from the peer): this data directory is "
                 "not one godwit may remove", s->run.label, marker);
    else if (errno != ENOENT) {
        steprun_failf(&s->run, "cannot remove %s: %s", marker, strerror(errno));
        free(marker);
        return;
    }
    free(marker);
    char *conninfo = recoveryconf_conninfo(s->peer, true, NULL, S_APP);
    const char *what = NULL;
    int rc = recoveryconf_write(s->dir, conninfo, s->slot, &what);
    free(conninfo);
    if (rc != 0) {
        steprun_failf(&s->run, "cannot write %s/%s: %s", s->dir, what, strerror(-rc));
        return;
    }
    log_info("%s: wrote %s and primary_conninfo, primary_slot_name in %s", s->run.label,
             RECOVERYCONF_SIGNAL, RECOVERYCONF_AUTO);
    s_start(s);
}

/* ---- pg_rewind ---------------------------------------------------------------- */

static void s_on_rewound(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    rj_t *s = arg;
    bool none = r->err && strstr(r->err, "no rewind required");
    char *why = NULL;
    if (!s_child_end(s, r, "pg_rewind", &why))
        return;
    if (why) {
        steprun_finish(&s->run, NULL, why);
        free(why);
        return;
    }
    s->rewound = true;
    log_info("%s: pg_rewind done%s", s->run.label,
             none ? ": no rewind required" : ": copied what changed since the servers parted");
    s_settings(s);
}

static void s_rewind(rj_t *s)
{
    char *program = pgtools_program(s->local->bin_dir ? s->local->bin_dir : "", "pg_rewind");
    char *target = xasprintf("--target-pgdata=%s", s->dir);
    /* host, port, user, dbname, sslmode: no password (the passfile comes
     * through the environment). */
    char *conninfo = recoveryconf_conninfo(s->peer, false, "postgres", NULL);
    char *source = xasprintf("--source-server=%s", conninfo);
    const char *words[] = { program, target, source, "--progress", NULL };
    char **argv = standby_argv(s->sb, words);
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%" PRId64, (s->local->connect_timeout_ms + 999) / 1000);
    char **env = pgtools_env(NULL, NULL, NULL, s->peer->passfile, NULL, NULL, timeout);
    log_info("%s: pg_rewind of %s from peer \"%s\" (%s)", s->run.label, s->dir, s->peer->name,
             conninfo);
    int rc = standby_spawn(s->run.loop, argv, env, NULL, true, s_on_rewound, s, &s->proc);
    if (rc != 0)
        steprun_failf(&s->run, "cannot run %s: %s", argv[0], uv_strerror(rc));
    proc_env_free(&env);
    standby_argv_free(&argv);
    free(source);
    free(conninfo);
    free(target);
    free(program);
}

/* ---- the stop ---------------------------------------------------------------- */

/* After the stop command: nothing may answer on the server's address any
 * more (a stop that failed is fine when nothing does). */
static void s_on_down(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    (void)error;
    rj_t *s = arg;
    pgconn_destroy(&s->run.conn[0]);
    if (ok) {
        steprun_failf(&s->run, "the server still answers after its stop command%s%s%s: "
                      "nothing was rewound", s->stop_error ? " (" : "",
                      s->stop_error ? s->stop_error : "", s->stop_error ? ")" : "");
        return;
    }
    if (recoveryconf_present(s->dir, s->slot)) {
        /* Written only after a pg_rewind that succeeded: an earlier run
         * got that far (a second pg_rewind of a directory it left in
         * recovery could not run its shutdown check as a standby). */
        log_info("%s: %s already holds standby.signal and primary_slot_name = '%s': "
                 "no pg_rewind", s->run.label, s->dir, s->slot);
        s_settings(s);
        return;
    }
    s_rewind(s);
}

static void s_on_stopped(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    rj_t *s = arg;
    char *why = NULL;
    if (!s_child_end(s, r, "the stop command", &why))
        return;
    if (why) {
        log_info("%s: %s (a server that is not running is fine)", s->run.label, why);
        s->stop_error = why;
    }
    s_local_connect(s, s_on_down);
}

static void s_stop(rj_t *s)
{
    pgconn_destroy(&s->run.conn[0]);
    log_info("%s: stopping the server", s->run.label);
    char **argv = standby_cmd_argv(s->sb, &s->sb->stop);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_stopped, s, &s->proc);
    if (rc != 0)
        steprun_failf(&s->run, "cannot run the stop command %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* ---- the slot on the peer ------------------------------------------------------ */

static void s_on_checkpoint(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "peer", r);
        return;
    }
    s_stop(s);
}

/* A checkpoint on the peer first: a server promoted moments ago writes its
 * new timeline into its control file only at its first checkpoint after
 * the promotion (requested, not waited for), and pg_rewind reads the
 * timeline there: before it, it takes the two for the same timeline, says
 * "no rewind required" and the server, started, cannot follow the new
 * timeline (seen: its shutdown checkpoint lay past the fork). Needs
 * superuser or pg_checkpoint (PostgreSQL 15) on the peer. */
static void s_checkpoint(rj_t *s)
{
    steprun_query_simple(&s->run, 0, "a checkpoint on the peer (its new timeline on disk)",
                         "CHECKPOINT",
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_checkpoint);
}

static void s_on_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "peer", r);
        return;
    }
    s->created_slot = true;
    log_info("%s: created the physical slot on peer \"%s\"", s->run.label, s->peer->name);
    s_checkpoint(s);
}

static void s_on_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "peer", r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1) {
        const char *type = pgconn_col(r->res, 0, "slot_type");
        if (!type || strcmp(type, "physical") != 0) {
            steprun_failf(&s->run, "replication slot \"%s\" on peer \"%s\" is a %s slot, not "
                          "a physical one: nothing was done", s->slot, s->peer->name,
                          type ? type : "(unknown)");
            return;
        }
        s_checkpoint(s);
        return;
    }
    const char *params[1] = { s->slot };
    steprun_query(&s->run, 0, "creating the physical slot",
                  "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)", 1, params,
                  (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                  s_on_created);
}

static void s_on_peer(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect to peer \"%s\": %s", s->peer->name,
                      error ? error : "unknown error");
        return;
    }
    const char *params[1] = { s->slot };
    steprun_query(&s->run, 0, "looking up the slot",
                  "SELECT slot_type FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                  1, params, (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                  s_on_slot);
}

static void s_peer(rj_t *s)
{
    pgconn_destroy(&s->run.conn[0]);
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = s->peer->name;
    rc.dbname = (char *)"postgres";
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_remote_conn(s->run.loop, "peer", s->local, &rc, false,
                                        "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        steprun_failf(&s->run, "invalid connection parameters for peer \"%s\"", s->peer->name);
        return;
    }
    int rc2 = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, s_on_peer, s);
    if (rc2 != 0)
        steprun_failf(&s->run, "cannot connect to peer \"%s\": %s", s->peer->name,
                      strerror(-rc2));
}

/* ---- done already? -------------------------------------------------------------- */

static void s_on_look(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, NULL, r);
        return;
    }
    const char *slot = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "slot_name")
                                                        : NULL;
    Godwit__StandbyStatusResult *res = s_result(s, r->res);
    if (res->in_recovery && res->streaming && slot && strcmp(slot, s->slot) == 0) {
        res->already = true;
        log_info("%s: the server is a standby streaming through the slot already",
                 s->run.label);
        steprun_finish(&s->run, &res->base, NULL);
        return;
    }
    log_info("%s: the server is %s: rejoining", s->run.label,
             !res->in_recovery ? "a primary"
             : !res->streaming ? "in recovery, not streaming"
                               : "a standby streaming through another slot");
    godwit__standby_status_result__free_unpacked(res, NULL);
    s_peer(s);
}

static void s_on_first(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!ok) {
        log_info("%s: the server does not answer (%s): rejoining", s->run.label,
                 error ? error : "cannot connect");
        s_peer(s);
        return;
    }
    steprun_query_simple(&s->run, 0, "reading the server's state", standby_status_sql,
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_look);
}

static void s_first(steprun_t *run)
{
    s_local_connect((rj_t *)run, s_on_first);
}

step_t *rejoin_start(uv_loop_t *loop, const step_local_t *local, const Godwit__Rejoin *req,
                     step_done_cb done, void *arg)
{
    if (!loop || !local || !req || !done || !local->standby || !req->slot || !req->peer)
        return NULL;
    const agent_peer_t *peer = NULL;
    for (size_t i = 0; i < local->n_peers; i++)
        if (strcmp(local->peers[i].name, req->peer) == 0)
            peer = &local->peers[i];
    if (!peer)
        return NULL;
    rj_t *s = xcalloc(1, sizeof *s);
    s->local = local;
    s->sb = local->standby;
    s->peer = peer;
    s->slot = xstrdup(req->slot);
    s->dir = xstrdup(local->standby->data_directory);
    s->run.wind_down = s_wind_down;
    steprun_start(&s->run, loop,
                  xasprintf("rejoin as a standby of peer \"%s\" through slot \"%s\"", req->peer,
                            req->slot),
                  done, arg, s_release, s_first);
    return &s->run.base;
}
