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
 *   sbstep_start  (sbstep.c) the start command, then a connection attempt
 *                 every S_PROBE_MS until S_START_WAIT_MS have passed
 *   s_answer      standby_status_sql read (sbstep.c), the answer
 *
 * The child, the local connection, the server's start and its state are
 * sbstep's (sbstep.h), as for BaseBackup.
 */
#include "rejoin.h"
#include "sbstep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "recoveryconf.h"
#include "xalloc.h"

#define S_APP "godwit"           /* the standby's application_name on the peer */

typedef struct {
    sbstep_t sbs;                    /* first: run, names, child, the start */
    bool rewound;                    /* pg_rewind ran (false: skipped) */
    char *stop_error;                /* the stop command's failure, if it failed */
} rj_t;

char *rejoin_refusal(const step_local_t *local, const Godwit__Rejoin *req)
{
    return standby_refusal(local, req->peer, req->slot,
                           "make its server a standby of its peer");
}

/* ---- the end ---------------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    rj_t *s = (rj_t *)run;
    sbstep_release(&s->sbs);
    free(s->stop_error);
    free(s);
}

/* The runtime's wind-down: a running child (the stop or start command,
 * pg_rewind) is killed, its group with it, and waited for. */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    rj_t *s = (rj_t *)run;
    if (cancelled)
        log_info("%s: cancelled%s", s->sbs.run.label,
                 s->sbs.proc ? ": stopping the child that runs" : "");
    sbstep_wind_down(&s->sbs);
}

/* ---- the answer ------------------------------------------------------------- */

/* The standby's state after the start (sbstep.c read it). The data
 * directory is the old primary's own: never godwit's to remove (ours
 * stays false). */
static void s_answer(sbstep_t *sbs, Godwit__StandbyStatusResult *res)
{
    rj_t *s = (rj_t *)sbs;
    if (!res->in_recovery) {
        godwit__standby_status_result__free_unpacked(res, NULL);
        steprun_failf(&s->sbs.run, "the server answers after its start command but is NOT in "
                      "recovery (%s/%s was not taken): it is a primary now",
                      s->sbs.dir, RECOVERYCONF_SIGNAL);
        return;
    }
    log_info("%s: the server runs as a standby (%s%s)", s->sbs.run.label,
             res->streaming ? "streaming" : "not streaming yet",
             s->rewound ? "" : ", no pg_rewind needed this run");
    steprun_finish(&s->sbs.run, &res->base, NULL);
}

static const sbstep_ops_t s_ops = {
    .conn_name = "rejoin",
    .server = "the server",
    .start_cmd = "the start command",
    .starting = "starting the server as a standby",
    .name_start_failure = true,
    .phase = NULL,
    .answer = s_answer,
};

/* ---- the recovery settings ---------------------------------------------------- */

static void s_settings(rj_t *s)
{
    /* pg_rewind copies the peer's files, a marker of a standby godwit made
     * there with them: this directory must never look like ours. */
    char *marker = xasprintf("%s/%s", s->sbs.dir, STANDBY_MARKER);
    if (unlink(marker) == 0)
        log_info("%s: removed %s (pg_rewind copied it from the peer): this data directory is "
                 "not one godwit may remove", s->sbs.run.label, marker);
    else if (errno != ENOENT) {
        steprun_failf(&s->sbs.run, "cannot remove %s: %s", marker, strerror(errno));
        free(marker);
        return;
    }
    free(marker);
    char *conninfo = recoveryconf_conninfo(s->sbs.peer, true, NULL, S_APP);
    const char *what = NULL;
    int rc = recoveryconf_write(s->sbs.dir, conninfo, s->sbs.slot, &what);
    free(conninfo);
    if (rc != 0) {
        steprun_failf(&s->sbs.run, "cannot write %s/%s: %s", s->sbs.dir, what, strerror(-rc));
        return;
    }
    log_info("%s: wrote %s and primary_conninfo, primary_slot_name in %s", s->sbs.run.label,
             RECOVERYCONF_SIGNAL, RECOVERYCONF_AUTO);
    sbstep_start(&s->sbs);
}

/* ---- pg_rewind ---------------------------------------------------------------- */

static void s_on_rewound(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    rj_t *s = arg;
    bool none = r->err && strstr(r->err, "no rewind required");
    if (!sbstep_child_over(&s->sbs, r, "pg_rewind"))
        return;
    s->rewound = true;
    log_info("%s: pg_rewind done%s", s->sbs.run.label,
             none ? ": no rewind required" : ": copied what changed since the servers parted");
    s_settings(s);
}

static void s_rewind(rj_t *s)
{
    const step_local_t *local = s->sbs.local;
    char *program = pgtools_program(local->bin_dir ? local->bin_dir : "", "pg_rewind");
    char *target = xasprintf("--target-pgdata=%s", s->sbs.dir);
    /* host, port, user, dbname, sslmode: no password (the passfile comes
     * through the environment). */
    char *conninfo = recoveryconf_conninfo(s->sbs.peer, false, "postgres", NULL);
    char *source = xasprintf("--source-server=%s", conninfo);
    const char *words[] = { program, target, source, "--progress", NULL };
    char **argv = standby_argv(s->sbs.sb, words);
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%" PRId64, (local->connect_timeout_ms + 999) / 1000);
    char **env = pgtools_env(NULL, NULL, NULL, s->sbs.peer->passfile, NULL, NULL, timeout);
    log_info("%s: pg_rewind of %s from peer \"%s\" (%s)", s->sbs.run.label, s->sbs.dir,
             s->sbs.peer->name, conninfo);
    int rc = standby_spawn(s->sbs.run.loop, argv, env, NULL, true, s_on_rewound, s, &s->sbs.proc);
    if (rc != 0)
        steprun_failf(&s->sbs.run, "cannot run %s: %s", argv[0], uv_strerror(rc));
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
    pgconn_destroy(&s->sbs.run.conn[0]);
    if (ok) {
        steprun_failf(&s->sbs.run, "the server still answers after its stop command%s%s%s: "
                      "nothing was rewound", s->stop_error ? " (" : "",
                      s->stop_error ? s->stop_error : "", s->stop_error ? ")" : "");
        return;
    }
    if (recoveryconf_present(s->sbs.dir, s->sbs.slot)) {
        /* Written only after a pg_rewind that succeeded: an earlier run
         * got that far (a second pg_rewind of a directory it left in
         * recovery could not run its shutdown check as a standby). */
        log_info("%s: %s already holds standby.signal and primary_slot_name = '%s': "
                 "no pg_rewind", s->sbs.run.label, s->sbs.dir, s->sbs.slot);
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
    if (!sbstep_child_end(&s->sbs, r, "the stop command", &why))
        return;
    if (why) {
        log_info("%s: %s (a server that is not running is fine)", s->sbs.run.label, why);
        s->stop_error = why;
    }
    sbstep_local_connect(&s->sbs, s_on_down);
}

static void s_stop(rj_t *s)
{
    pgconn_destroy(&s->sbs.run.conn[0]);
    log_info("%s: stopping the server", s->sbs.run.label);
    char **argv = standby_cmd_argv(s->sbs.sb, &s->sbs.sb->stop);
    int rc = standby_spawn(s->sbs.run.loop, argv, NULL, NULL, false, s_on_stopped, s, &s->sbs.proc);
    if (rc != 0)
        steprun_failf(&s->sbs.run, "cannot run the stop command %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* ---- the slot on the peer ------------------------------------------------------ */

static void s_on_checkpoint(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->sbs.run, "peer", r);
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
    steprun_query_simple(&s->sbs.run, 0, "a checkpoint on the peer (its new timeline on disk)",
                         "CHECKPOINT",
                         (uint64_t)s->sbs.local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_checkpoint);
}

static void s_on_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->sbs.run, "peer", r);
        return;
    }
    log_info("%s: created the physical slot on peer \"%s\"", s->sbs.run.label, s->sbs.peer->name);
    s_checkpoint(s);
}

/* The slot on the peer: created unless it is there, then the checkpoint. */
static void s_on_slot(sbstep_t *sbs, bool exists)
{
    rj_t *s = (rj_t *)sbs;
    if (exists) {
        s_checkpoint(s);
        return;
    }
    const char *params[1] = { s->sbs.slot };
    steprun_query(&s->sbs.run, 0, "creating the physical slot",
                  "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)", 1, params,
                  (uint64_t)s->sbs.local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                  s_on_created);
}

static void s_peer(rj_t *s)
{
    sbstep_peer_slot(&s->sbs, s_on_slot);
}

/* ---- done already? -------------------------------------------------------------- */

static void s_on_look(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    rj_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->sbs.run, NULL, r);
        return;
    }
    const char *slot = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "slot_name")
                                                        : NULL;
    Godwit__StandbyStatusResult *res = sbstep_result(&s->sbs, r->res);
    if (res->in_recovery && res->streaming && slot && strcmp(slot, s->sbs.slot) == 0) {
        res->already = true;
        log_info("%s: the server is a standby streaming through the slot already",
                 s->sbs.run.label);
        steprun_finish(&s->sbs.run, &res->base, NULL);
        return;
    }
    log_info("%s: the server is %s: rejoining", s->sbs.run.label,
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
        log_info("%s: the server does not answer (%s): rejoining", s->sbs.run.label,
                 error ? error : "cannot connect");
        s_peer(s);
        return;
    }
    steprun_query_simple(&s->sbs.run, 0, "reading the server's state", standby_status_sql,
                         (uint64_t)s->sbs.local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_look);
}

static void s_first(steprun_t *run)
{
    sbstep_local_connect((sbstep_t *)run, s_on_first);
}

step_t *rejoin_start(uv_loop_t *loop, const step_local_t *local, const Godwit__Rejoin *req,
                     step_done_cb done, void *arg)
{
    if (!loop || !local || !req || !done || !local->standby || !req->slot || !req->peer)
        return NULL;
    const agent_peer_t *peer = sbstep_peer(local, req->peer);
    if (!peer)
        return NULL;
    rj_t *s = xcalloc(1, sizeof *s);
    sbstep_init(&s->sbs, &s_ops, local, peer, req->slot);
    s->sbs.run.wind_down = s_wind_down;
    steprun_start(&s->sbs.run, loop,
                  xasprintf("rejoin as a standby of peer \"%s\" through slot \"%s\"", req->peer,
                            req->slot),
                  done, arg, s_release, s_first);
    return &s->sbs.run.base;
}
