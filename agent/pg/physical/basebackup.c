/*
 * basebackup: the BaseBackup step (basebackup.h). Its stages, each ending
 * in the next or in the step's end:
 *
 *   s_first        looks at the data directory (standby_dir_look)
 *   s_clean        a killed pg_basebackup's directory removed (a child)
 *   s_slot_lookup  the slot on the peer: there (physical) or to create
 *   s_copy         pg_basebackup (a child, its progress read as it comes)
 *   sbstep_probe   (sbstep.c) the server answers? else the start command
 *                  once, then a connection attempt every S_PROBE_MS until
 *                  S_START_WAIT_MS have passed
 *   s_answer       standby_status_sql read (sbstep.c), the answer
 *
 * The child, the server's start and its state are sbstep's (sbstep.h), as
 * for Rejoin; this step's own are its progress record and the phases it
 * goes through (s_on_phase).
 */
#include "basebackup.h"
#include "sbstep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbprogress.h"
#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "xalloc.h"

typedef struct {
    sbstep_t sbs;                    /* first: run, names, child, the start */
    standby_progress_t *progress;    /* the engine's; NULL once cancelled */
    uint32_t max_rate_kbps;
    bool dir_existed;                /* the directory was there, empty */
    bool create_slot;                /* pg_basebackup -C */
    bool already;                    /* found done */
    bbprogress_t bp;
} bb_t;

static void s_slot_lookup(bb_t *s);

char *basebackup_refusal(const step_local_t *local, const Godwit__BaseBackup *req)
{
    return standby_refusal(local, req->peer, req->slot, "make a physical standby");
}

/* ---- the end ---------------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    bb_t *s = (bb_t *)run;
    sbstep_release(&s->sbs);
    free(s);
}

static void s_phase(bb_t *s, const char *phase, const char *error)
{
    if (s->progress)
        standby_progress_phase(s->progress, phase, error);
}

/* sbstep's phase hook: "starting", "failed" (sbstep_fail). */
static void s_on_phase(sbstep_t *sbs, const char *phase, const char *error)
{
    s_phase((bb_t *)sbs, phase, error);
}

/* The runtime's wind-down: a running child (pg_basebackup, the start
 * command, a removal) is killed, its group with it, and waited for. */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    bb_t *s = (bb_t *)run;
    if (cancelled) {
        log_info("%s: cancelled", s->sbs.run.label);
        s_phase(s, "failed", "cancelled");
        s->progress = NULL; /* the engine may go before the child does */
    }
    sbstep_wind_down(&s->sbs);
}

/* ---- the answer ------------------------------------------------------------- */

static void s_answer(sbstep_t *sbs, Godwit__StandbyStatusResult *res)
{
    bb_t *s = (bb_t *)sbs;
    res->ours = true;
    res->already = s->already;
    s_phase(s, "done", NULL);
    log_info("%s: the standby runs (%s, %s)", s->sbs.run.label,
             res->in_recovery ? "in recovery" : "NOT in recovery",
             res->streaming ? "streaming" : "not streaming yet");
    steprun_finish(&s->sbs.run, &res->base, NULL);
}

static const sbstep_ops_t s_ops = {
    .conn_name = "standby",
    .server = "the standby's server",
    .start_cmd = "the standby's start command",
    .starting = "starting the standby's server",
    .name_start_failure = false,
    .phase = s_on_phase,
    .answer = s_answer,
};

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
    if (!sbstep_child_over(&s->sbs, r, "pg_basebackup"))
        return;
    int rc = standby_marker_write(s->sbs.dir, s->sbs.slot, s->dir_existed);
    if (rc != 0) {
        sbstep_failf(&s->sbs, "cannot write our marker %s/%s: %s", s->sbs.dir, STANDBY_MARKER,
                     strerror(-rc));
        return;
    }
    rc = standby_partial_remove(s->sbs.dir);
    if (rc != 0)
        log_warn("%s: cannot remove the partial marker of %s: %s", s->sbs.run.label, s->sbs.dir,
                 strerror(-rc));
    log_info("%s: pg_basebackup done (%" PRIu64 " kB)", s->sbs.run.label, s->bp.done_bytes / 1024);
    s_phase(s, "starting", NULL);
    sbstep_probe(&s->sbs);
}

static void s_copy(bb_t *s)
{
    int rc = standby_partial_write(s->sbs.dir, s->sbs.slot, s->dir_existed, 0);
    if (rc != 0) {
        sbstep_failf(&s->sbs, "cannot write the partial marker next to %s: %s", s->sbs.dir,
                     strerror(-rc));
        return;
    }
    const step_local_t *local = s->sbs.local;
    char *program = pgtools_program(local->bin_dir ? local->bin_dir : "", "pg_basebackup");
    char rate[32] = "";
    if (s->max_rate_kbps)
        snprintf(rate, sizeof rate, "--max-rate=%" PRIu32 "k", s->max_rate_kbps);
    const char *words[20];
    size_t n = 0;
    const char *fixed[] = { program, "-D", s->sbs.dir, "-S", s->sbs.slot, "-R", "-X", "stream",
                            "-c", "fast", "--progress", "--verbose", "--no-password" };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        words[n++] = fixed[i];
    if (s->create_slot)
        words[n++] = "-C";
    if (rate[0])
        words[n++] = rate;
    words[n] = NULL;
    char **argv = standby_argv(s->sbs.sb, words);
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%" PRId64, s->sbs.peer->port);
    snprintf(timeout, sizeof timeout, "%" PRId64, (local->connect_timeout_ms + 999) / 1000);
    char **env = pgtools_env(s->sbs.peer->host, port, s->sbs.peer->user, s->sbs.peer->passfile,
                             s->sbs.peer->sslmode, NULL, timeout);
    standby_progress_begin(s->progress, s->sbs.slot);
    s->bp = (bbprogress_t){ .len = 0 };
    log_info("%s: pg_basebackup from peer \"%s\" into %s%s", s->sbs.run.label, s->sbs.peer->name,
             s->sbs.dir, s->create_slot ? " (creating the slot)" : " (the slot exists)");
    rc = standby_spawn(s->sbs.run.loop, argv, env, s_on_stderr, true, s_on_copied, s, &s->sbs.proc);
    if (rc != 0)
        sbstep_failf(&s->sbs, "cannot run %s: %s", argv[0], uv_strerror(rc));
    else if (standby_partial_write(s->sbs.dir, s->sbs.slot, s->dir_existed,
                                   proc_pid(s->sbs.proc)) != 0)
        log_warn("%s: cannot record pg_basebackup's process group next to %s (an agent killed "
                 "now would leave it running)", s->sbs.run.label, s->sbs.dir);
    proc_env_free(&env);
    standby_argv_free(&argv);
    free(program);
}

/* ---- the slot on the peer ---------------------------------------------------- */

/* The slot on the peer: pg_basebackup creates it (-C) unless it is there. */
static void s_on_slot(sbstep_t *sbs, bool exists)
{
    bb_t *s = (bb_t *)sbs;
    s->create_slot = !exists;
    pgconn_destroy(&s->sbs.run.conn[0]);
    s_copy(s);
}

static void s_slot_lookup(bb_t *s)
{
    sbstep_peer_slot(&s->sbs, s_on_slot);
}

/* ---- the data directory ------------------------------------------------------ */

static void s_on_cleaned(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    bb_t *s = arg;
    if (!sbstep_child_over(&s->sbs, r, "removing the partial data directory"))
        return;
    int rc = standby_partial_remove(s->sbs.dir);
    if (rc != 0) {
        sbstep_failf(&s->sbs, "cannot remove the partial marker of %s: %s", s->sbs.dir,
                     strerror(-rc));
        return;
    }
    log_info("%s: removed %s, left by an earlier pg_basebackup that did not finish",
             s->sbs.run.label, s->sbs.dir);
    s_slot_lookup(s);
}

/* A directory a killed pg_basebackup left for this slot (its partial
 * marker names it): removed (emptied if it was there before), as the
 * server's user. */
static void s_clean(bb_t *s, bool keep_dir)
{
    char **argv = standby_rm_argv(s->sbs.sb, s->sbs.dir, keep_dir);
    int rc = standby_spawn(s->sbs.run.loop, argv, NULL, NULL, false, s_on_cleaned, s, &s->sbs.proc);
    if (rc != 0)
        sbstep_failf(&s->sbs, "cannot run %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

static void s_first(steprun_t *run)
{
    bb_t *s = (bb_t *)run;
    char *marked = NULL, *why = NULL;
    standby_dir_t st = standby_dir_look(s->sbs.dir, s->sbs.slot, &marked, &why);
    char *partial = NULL;
    bool keep = false;
    int pgid = 0;
    int prc = standby_partial_read(s->sbs.dir, &partial, &keep, &pgid);
    bool partial_ours = prc == 0 && strcmp(partial, s->sbs.slot) == 0;
    if (partial_ours && pgid)
        standby_orphans_kill(pgid, "pg_basebackup"); /* an earlier agent's, killed */
    switch (st) {
    case STANDBY_DIR_OURS:
        s->already = true;
        if (s->progress && (!s->progress->slot || strcmp(s->progress->slot, s->sbs.slot) != 0))
            standby_progress_begin(s->progress, s->sbs.slot);
        s_phase(s, "starting", NULL);
        sbstep_probe(&s->sbs);
        break;
    case STANDBY_DIR_OTHER:
        if (!why && !marked && partial_ours) {
            s->dir_existed = keep;
            s_clean(s, keep);
            break;
        }
        if (why)
            sbstep_failf(&s->sbs, "%s: nothing was done", why);
        else if (marked)
            sbstep_failf(&s->sbs, "the standby data directory %s holds godwit's standby of slot "
                         "\"%s\", not of \"%s\": nothing was done (drop that one first)",
                         s->sbs.dir, marked, s->sbs.slot);
        else
            sbstep_failf(&s->sbs, "the standby data directory %s is not empty and not godwit's "
                         "(no %s marker for slot \"%s\"): nothing was done; empty it or configure "
                         "another postgres.standby.data_directory", s->sbs.dir, STANDBY_MARKER,
                         s->sbs.slot);
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
    const agent_peer_t *peer = sbstep_peer(local, req->peer);
    if (!peer)
        return NULL;
    bb_t *s = xcalloc(1, sizeof *s);
    sbstep_init(&s->sbs, &s_ops, local, peer, req->slot);
    s->progress = progress;
    s->max_rate_kbps = req->max_rate_kbps;
    s->sbs.run.wind_down = s_wind_down;
    steprun_start(&s->sbs.run, loop,
                  xasprintf("standby of slot \"%s\" from peer \"%s\"", req->slot, req->peer),
                  done, arg, s_release, s_first);
    return &s->sbs.run.base;
}
