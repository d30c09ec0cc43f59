/*
 * basebackup: the BaseBackup step (basebackup.h). Its stages, each ending
 * in the next or in the step's end:
 *
 *   s_first        looks at the data directory (standby_dir_look)
 *   s_clean        a killed pg_basebackup's directory removed (a child)
 *   s_slot_lookup  the slot on the peer: there (physical) or to create
 *   s_copy         pg_basebackup (a child, its progress read as it comes)
 *   s_probe        the server answers? else the start command once, then
 *                  a connection attempt every S_PROBE_MS until
 *                  S_START_WAIT_MS have passed
 *   s_status       standby_status_sql, the answer
 */
#include "basebackup.h"
#include "steprun.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbprogress.h"
#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "xalloc.h"

#define S_PROBE_MS 100
#define S_START_WAIT_MS 120000   /* from the start command to the first answer */
#define S_KILL_GRACE_MS 5000

typedef struct {
    steprun_t run;                   /* first: conn[0], label */
    const step_local_t *local;       /* borrowed: the engine's */
    const agent_standby_t *sb;       /* local->standby */
    const agent_peer_t *peer;        /* from local's peers */
    standby_progress_t *progress;    /* the engine's; NULL once cancelled */
    char *slot, *dir;
    uint32_t max_rate_kbps;
    bool dir_existed;                /* the directory was there, empty */
    bool create_slot;                /* pg_basebackup -C */
    bool started;                    /* the start command ran */
    bool already;                    /* found done */
    bool cancelled;
    uint64_t start_deadline;         /* uv_now when waiting for the server ends */
    char *last_error;                /* the last connection attempt's */
    bbprogress_t bp;
    proc_t *proc;                    /* the child running, if any */
    Godwit__StandbyStatusResult *result;
} bb_t;

static void s_probe(steprun_t *run);
static void s_slot_lookup(bb_t *s);

char *basebackup_refusal(const step_local_t *local, const Godwit__BaseBackup *req)
{
    const char *config = local->config_path ? local->config_path : "(unknown)";
    if (!local->standby)
        return xasprintf("this agent cannot make a physical standby: its config %s has no "
                         "postgres.standby section (docs/config.md); nothing was done", config);
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
    bb_t *s = (bb_t *)run;
    if (s->result)
        godwit__standby_status_result__free_unpacked(s->result, NULL);
    free(s->slot);
    free(s->dir);
    free(s->last_error);
    free(s);
}

static void s_phase(bb_t *s, const char *phase, const char *error)
{
    if (s->progress)
        standby_progress_phase(s->progress, phase, error);
}

static void s_fail(bb_t *s, const char *why)
{
    s_phase(s, "failed", why);
    steprun_finish(&s->run, NULL, why);
}

static void s_failf(bb_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_failf(bb_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    s_fail(s, why ? why : "out of memory");
    free(why);
}

/* The runtime's wind-down: a running child (pg_basebackup, the start
 * command, a removal) is killed, its group with it, and waited for. */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    bb_t *s = (bb_t *)run;
    if (cancelled) {
        log_info("%s: cancelled", s->run.label);
        s_phase(s, "failed", "cancelled");
        s->cancelled = true;
        s->progress = NULL; /* the engine may go before the child does */
    }
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    steprun_wound_down(&s->run);
}

/* A child's end while the step winds down: nothing more runs. True if so
 * (the child is gone and the wind-down over). */
static bool s_child_winding(bb_t *s)
{
    proc_destroy(&s->proc, 0);
    if (!s->run.winding && !s->cancelled)
        return false;
    steprun_wound_down(&s->run);
    return true;
}

/* A child's end: true if the step goes on (it exited 0); false once the
 * step is over (winding down, or failed naming what). */
static bool s_child_over(bb_t *s, const proc_result_t *r, const char *what)
{
    bool ok = r->exit_status == 0 && !r->term_signal;
    char *why = ok ? NULL : pgtools_failure(what, r);
    if (s_child_winding(s)) {
        free(why);
        return false;
    }
    if (!ok)
        s_fail(s, why);
    free(why);
    return ok;
}

/* ---- the answer ------------------------------------------------------------- */

static void s_on_status(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    bb_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message("reading the standby's state", r);
        s_fail(s, why);
        free(why);
        return;
    }
    Godwit__StandbyStatusResult *res = xmalloc(sizeof *res);
    godwit__standby_status_result__init(res);
    standby_status_fill(res, r->res);
    res->ours = true;
    res->data_directory = xstrdup(s->dir);
    res->started = s->started;
    res->already = s->already;
    s_phase(s, "done", NULL);
    log_info("%s: the standby runs (%s, %s)", s->run.label,
             res->in_recovery ? "in recovery" : "NOT in recovery",
             res->streaming ? "streaming" : "not streaming yet");
    steprun_finish(&s->run, &res->base, NULL);
}

static void s_status(bb_t *s)
{
    steprun_query_simple(&s->run, 0, "reading the standby's state", standby_status_sql,
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_status);
}

/* ---- the server: answering, or started ------------------------------------- */

static void s_on_start(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    bb_t *s = arg;
    bool ok = r->exit_status == 0 && !r->term_signal;
    char *why = ok ? NULL : pgtools_failure("the standby's start command", r);
    if (s_child_winding(s)) {
        free(why);
        return;
    }
    if (!ok) {
        /* It may have started all the same (pg_ctl -w gave up waiting):
         * the probes decide, and name this failure if they time out. */
        log_warn("%s: %s", s->run.label, why);
        free(s->last_error);
        s->last_error = why;
    }
    s_probe(&s->run);
}

/* Runs the config's start command (run_as in front). */
static void s_start_server(bb_t *s)
{
    s->started = true;
    s->start_deadline = uv_now(s->run.loop) + S_START_WAIT_MS;
    s_phase(s, "starting", NULL);
    log_info("%s: starting the standby's server", s->run.label);
    char **argv = standby_cmd_argv(s->sb, &s->sb->start);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_start, s, &s->proc);
    if (rc != 0)
        s_failf(s, "cannot run the start command %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* The server is there but not ready yet (recovery to a consistent state):
 * waiting is all there is to do. */
static bool s_starting_up(const char *error)
{
    return error && (strstr(error, "starting up") || strstr(error, "not yet accepting") ||
                     strstr(error, "consistent recovery state"));
}

static void s_on_probe(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    bb_t *s = arg;
    if (ok) {
        s_status(s);
        return;
    }
    char *e = xstrdup(error ? error : "cannot connect");
    free(s->last_error);
    s->last_error = e;
    pgconn_destroy(&s->run.conn[0]);
    if (!s->started && !s_starting_up(e)) {
        s_start_server(s);
        return;
    }
    if (!s->started)
        s->start_deadline = s->start_deadline ? s->start_deadline
                                              : uv_now(s->run.loop) + S_START_WAIT_MS;
    if (uv_now(s->run.loop) >= s->start_deadline) {
        s_failf(s, "the standby's server did not answer within %d s%s: %s",
                S_START_WAIT_MS / 1000, s->started ? " of its start command" : "", e);
        return;
    }
    steprun_after(&s->run, S_PROBE_MS, s_probe);
}

/* One connection attempt to the local server (the agent's postgres.host
 * and port, where the standby listens). */
static void s_probe(steprun_t *run)
{
    bb_t *s = (bb_t *)run;
    pgconn_destroy(&s->run.conn[0]);
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_local_conn(s->run.loop, "standby", s->local, s->local->dbname,
                                       "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        s_fail(s, "invalid connection parameters for the local server");
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, s_on_probe, s);
    if (rc != 0)
        s_failf(s, "cannot connect to the local server: %s", strerror(-rc));
}

/* ---- pg_basebackup ----------------------------------------------------------- */

static void s_on_stderr(const char *data, size_t len, void *arg)
{
    bb_t *s = arg;
    bbprogress_feed(&s->bp, data, len);
    if (s->progress && s->bp.seen) {
        s->progress->done_bytes = s->bp.done_bytes;
        s->progress->total_bytes = s->bp.total_bytes;
    }
}

static void s_on_copied(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    bb_t *s = arg;
    /* pg_basebackup removes what it wrote when it fails on its own; the
     * partial marker stays for whatever it left. */
    if (!s_child_over(s, r, "pg_basebackup"))
        return;
    int rc = standby_marker_write(s->dir, s->slot, s->dir_existed);
    if (rc != 0) {
        s_failf(s, "cannot write our marker %s/%s: %s", s->dir, STANDBY_MARKER, strerror(-rc));
        return;
    }
    rc = standby_partial_remove(s->dir);
    if (rc != 0)
        log_warn("%s: cannot remove the partial marker of %s: %s", s->run.label, s->dir,
                 strerror(-rc));
    log_info("%s: pg_basebackup done (%" PRIu64 " kB)", s->run.label, s->bp.done_bytes / 1024);
    s_phase(s, "starting", NULL);
    s_probe(&s->run);
}

static void s_copy(bb_t *s)
{
    int rc = standby_partial_write(s->dir, s->slot, s->dir_existed, 0);
    if (rc != 0) {
        s_failf(s, "cannot write the partial marker next to %s: %s", s->dir, strerror(-rc));
        return;
    }
    char *program = pgtools_program(s->local->bin_dir ? s->local->bin_dir : "", "pg_basebackup");
    char rate[32] = "";
    if (s->max_rate_kbps)
        snprintf(rate, sizeof rate, "--max-rate=%" PRIu32 "k", s->max_rate_kbps);
    const char *words[20];
    size_t n = 0;
    const char *fixed[] = { program, "-D", s->dir, "-S", s->slot, "-R", "-X", "stream", "-c",
                            "fast", "--progress", "--verbose", "--no-password" };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        words[n++] = fixed[i];
    if (s->create_slot)
        words[n++] = "-C";
    if (rate[0])
        words[n++] = rate;
    words[n] = NULL;
    char **argv = standby_argv(s->sb, words);
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%" PRId64, s->peer->port);
    snprintf(timeout, sizeof timeout, "%" PRId64, (s->local->connect_timeout_ms + 999) / 1000);
    char **env = pgtools_env(s->peer->host, port, s->peer->user, s->peer->passfile,
                             s->peer->sslmode, NULL, timeout);
    standby_progress_begin(s->progress, s->slot);
    s->bp = (bbprogress_t){ .len = 0 };
    log_info("%s: pg_basebackup from peer \"%s\" into %s%s", s->run.label, s->peer->name, s->dir,
             s->create_slot ? " (creating the slot)" : " (the slot exists)");
    rc = standby_spawn(s->run.loop, argv, env, s_on_stderr, true, s_on_copied, s, &s->proc);
    if (rc != 0)
        s_failf(s, "cannot run %s: %s", argv[0], uv_strerror(rc));
    else if (standby_partial_write(s->dir, s->slot, s->dir_existed, proc_pid(s->proc)) != 0)
        log_warn("%s: cannot record pg_basebackup's process group next to %s (an agent killed "
                 "now would leave it running)", s->run.label, s->dir);
    proc_env_free(&env);
    standby_argv_free(&argv);
    free(program);
}

/* ---- the slot on the peer ---------------------------------------------------- */

static void s_on_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    bb_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "source", r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1) {
        const char *type = pgconn_col(r->res, 0, "slot_type");
        if (!type || strcmp(type, "physical") != 0) {
            s_failf(s, "replication slot \"%s\" on peer \"%s\" is a %s slot, not a physical "
                    "one: nothing was done", s->slot, s->peer->name, type ? type : "(unknown)");
            return;
        }
        s->create_slot = false;
    } else {
        s->create_slot = true;
    }
    pgconn_destroy(&s->run.conn[0]);
    s_copy(s);
}

static void s_on_peer(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    bb_t *s = arg;
    if (!ok) {
        s_failf(s, "cannot connect to peer \"%s\": %s", s->peer->name,
                error ? error : "unknown error");
        return;
    }
    const char *params[1] = { s->slot };
    steprun_query(&s->run, 0, "looking up the slot",
                  "SELECT slot_type FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                  1, params, (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                  s_on_slot);
}

static void s_slot_lookup(bb_t *s)
{
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = s->peer->name;
    rc.dbname = (char *)"postgres";
    char *options = xasprintf("-c statement_timeout=%" PRId64, s->local->statement_timeout_ms);
    s->run.conn[0] = pgstep_remote_conn(s->run.loop, "peer", s->local, &rc, false,
                                        "godwit-agent", options);
    free(options);
    if (!s->run.conn[0]) {
        s_fail(s, "invalid connection parameters for the peer");
        return;
    }
    int rc2 = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, s_on_peer, s);
    if (rc2 != 0)
        s_failf(s, "cannot connect to peer \"%s\": %s", s->peer->name, strerror(-rc2));
}

/* ---- the data directory ------------------------------------------------------ */

static void s_on_cleaned(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    bb_t *s = arg;
    if (!s_child_over(s, r, "removing the partial data directory"))
        return;
    int rc = standby_partial_remove(s->dir);
    if (rc != 0) {
        s_failf(s, "cannot remove the partial marker of %s: %s", s->dir, strerror(-rc));
        return;
    }
    log_info("%s: removed %s, left by an earlier pg_basebackup that did not finish",
             s->run.label, s->dir);
    s_slot_lookup(s);
}

/* A directory a killed pg_basebackup left for this slot (its partial
 * marker names it): removed (emptied if it was there before), as the
 * server's user. */
static void s_clean(bb_t *s, bool keep_dir)
{
    char **argv = standby_rm_argv(s->sb, s->dir, keep_dir);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_cleaned, s, &s->proc);
    if (rc != 0)
        s_failf(s, "cannot run %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

static void s_first(steprun_t *run)
{
    bb_t *s = (bb_t *)run;
    char *marked = NULL, *why = NULL;
    standby_dir_t st = standby_dir_look(s->dir, s->slot, &marked, &why);
    char *partial = NULL;
    bool keep = false;
    int pgid = 0;
    int prc = standby_partial_read(s->dir, &partial, &keep, &pgid);
    bool partial_ours = prc == 0 && strcmp(partial, s->slot) == 0;
    if (partial_ours && pgid)
        standby_orphans_kill(pgid, "pg_basebackup"); /* an earlier agent's, killed */
    switch (st) {
    case STANDBY_DIR_OURS:
        s->already = true;
        if (s->progress && (!s->progress->slot || strcmp(s->progress->slot, s->slot) != 0))
            standby_progress_begin(s->progress, s->slot);
        s_phase(s, "starting", NULL);
        s_probe(&s->run);
        break;
    case STANDBY_DIR_OTHER:
        if (!why && !marked && partial_ours) {
            s->dir_existed = keep;
            s_clean(s, keep);
            break;
        }
        if (why)
            s_failf(s, "%s: nothing was done", why);
        else if (marked)
            s_failf(s, "the standby data directory %s holds godwit's standby of slot \"%s\", "
                    "not of \"%s\": nothing was done (drop that one first)", s->dir, marked,
                    s->slot);
        else
            s_failf(s, "the standby data directory %s is not empty and not godwit's (no %s "
                    "marker for slot \"%s\"): nothing was done; empty it or configure another "
                    "postgres.standby.data_directory", s->dir, STANDBY_MARKER, s->slot);
        break;
    case STANDBY_DIR_MISSING:
    case STANDBY_DIR_EMPTY:
        s->dir_existed = st == STANDBY_DIR_EMPTY;
        s_slot_lookup(s);
        break;
    }
    free(partial);
    free(marked);
    free(why);
}

step_t *basebackup_start(uv_loop_t *loop, const step_local_t *local, standby_progress_t *progress,
                         const Godwit__BaseBackup *req, step_done_cb done, void *arg)
{
    if (!loop || !local || !progress || !req || !done || !local->standby || !req->slot ||
        !req->peer)
        return NULL;
    const agent_peer_t *peer = NULL;
    for (size_t i = 0; i < local->n_peers; i++)
        if (strcmp(local->peers[i].name, req->peer) == 0)
            peer = &local->peers[i];
    if (!peer)
        return NULL;
    bb_t *s = xcalloc(1, sizeof *s);
    s->local = local;
    s->sb = local->standby;
    s->peer = peer;
    s->progress = progress;
    s->slot = xstrdup(req->slot);
    s->dir = xstrdup(local->standby->data_directory);
    s->max_rate_kbps = req->max_rate_kbps;
    s->run.wind_down = s_wind_down;
    steprun_start(&s->run, loop,
                  xasprintf("standby of slot \"%s\" from peer \"%s\"", req->slot, req->peer),
                  done, arg, s_release, s_first);
    return &s->run.base;
}
