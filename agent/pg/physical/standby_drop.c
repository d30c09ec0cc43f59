/*
 * standby_drop: see standby_drop.h. Stages: s_first looks at the data
 * directory; s_stop runs the stop command; s_probe checks that nothing
 * answers any more; s_remove removes the directory (a child, as the
 * server's user) and the partial marker.
 */
#include "standby_drop.h"
#include "steprun.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "standby.h"
#include "xalloc.h"

#define S_KILL_GRACE_MS 5000

typedef struct {
    steprun_t run;              /* first: conn[0], label */
    const step_local_t *local;  /* borrowed: the engine's */
    const agent_standby_t *sb;
    char *slot;
    bool keep_dir;              /* empty the directory, do not remove it */
    char *stop_error;           /* the stop command's failure, if it failed */
    proc_t *proc;
} sd_t;

char *standby_drop_refusal(const step_local_t *local, const Godwit__DropObjects *req)
{
    const char *slot = req->standby_of_slot;
    if (!slot || !slot[0])
        return NULL;
    if (!local->standby)
        return xasprintf("this agent has no standby to drop: its config %s has no "
                         "postgres.standby section; nothing was done",
                         local->config_path ? local->config_path : "(unknown)");
    if (!step_godwit_name(slot))
        return xasprintf("slot \"%s\" is not a name godwit gives its objects: nothing was done",
                         slot);
    return NULL;
}

static void s_release(steprun_t *run)
{
    sd_t *s = (sd_t *)run;
    free(s->slot);
    free(s->stop_error);
    free(s);
}

static void s_wind_down(steprun_t *run, bool cancelled)
{
    sd_t *s = (sd_t *)run;
    (void)cancelled;
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    steprun_wound_down(&s->run);
}

static bool s_child_winding(sd_t *s)
{
    proc_destroy(&s->proc, 0);
    if (!s->run.winding && !s->run.disposed)
        return false;
    steprun_wound_down(&s->run);
    return true;
}

static void s_on_removed(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    sd_t *s = arg;
    bool ok = r->exit_status == 0 && !r->term_signal;
    char *why = ok ? NULL : pgtools_failure("removing the standby's data directory", r);
    if (s_child_winding(s)) {
        free(why);
        return;
    }
    if (!ok) {
        steprun_finish(&s->run, NULL, why);
        free(why);
        return;
    }
    int rc = standby_partial_remove(s->sb->data_directory);
    if (rc != 0) {
        steprun_failf(&s->run, "cannot remove the partial marker of %s: %s",
                      s->sb->data_directory, strerror(-rc));
        return;
    }
    log_info("%s: %s %s", s->run.label, s->keep_dir ? "emptied" : "removed",
             s->sb->data_directory);
    steprun_finish(&s->run, NULL, NULL);
}

static void s_remove(sd_t *s)
{
    char **argv = standby_rm_argv(s->sb, s->sb->data_directory, s->keep_dir);
    int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_removed, s, &s->proc);
    if (rc != 0)
        steprun_failf(&s->run, "cannot run %s: %s", argv[0], uv_strerror(rc));
    standby_argv_free(&argv);
}

/* After the stop command: nothing may answer on the server's address any
 * more (a stop that failed is fine when nothing does). */
static void s_on_probe(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    (void)error;
    sd_t *s = arg;
    pgconn_destroy(&s->run.conn[0]);
    if (ok) {
        steprun_failf(&s->run, "the standby's server still answers after its stop command%s%s: "
                      "nothing was removed", s->stop_error ? " (" : "",
                      s->stop_error ? s->stop_error : "");
        return;
    }
    s_remove(s);
}

static void s_probe(sd_t *s)
{
    s->run.conn[0] = pgstep_local_conn(s->run.loop, "standby", s->local, s->local->dbname,
                                       "godwit-agent", NULL);
    int rc = s->run.conn[0] ? pgconn_connect(s->run.conn[0],
                                             (uint64_t)s->local->connect_timeout_ms, s_on_probe, s)
                            : -EINVAL;
    if (rc != 0)
        steprun_failf(&s->run, "cannot check the server is down: %s", strerror(-rc));
}

static void s_on_stopped(proc_t *p, const proc_result_t *r, void *arg)
{
    (void)p;
    sd_t *s = arg;
    bool ok = r->exit_status == 0 && !r->term_signal;
    char *why = ok ? NULL : pgtools_failure("the stop command", r);
    if (s_child_winding(s)) {
        free(why);
        return;
    }
    if (!ok) {
        log_info("%s: %s (a server that is not running is fine)", s->run.label, why);
        s->stop_error = why;
    }
    s_probe(s);
}

static void s_first(steprun_t *run)
{
    sd_t *s = (sd_t *)run;
    const char *dir = s->sb->data_directory;
    char *marked = NULL, *why = NULL, *partial = NULL;
    bool pkeep = false;
    standby_dir_t st = standby_dir_look(dir, s->slot, &marked, &why);
    int pgid = 0;
    bool partial_ours = standby_partial_read(dir, &partial, &pkeep, &pgid) == 0 &&
                        strcmp(partial, s->slot) == 0;
    if (partial_ours && pgid)
        standby_orphans_kill(pgid, "pg_basebackup"); /* an earlier agent's, killed */
    switch (st) {
    case STANDBY_DIR_MISSING:
    case STANDBY_DIR_EMPTY:
        if (partial_ours && standby_partial_remove(dir) != 0)
            log_warn("%s: cannot remove the partial marker of %s", s->run.label, dir);
        log_info("%s: %s is %s: nothing to drop", s->run.label, dir,
                 st == STANDBY_DIR_MISSING ? "missing" : "empty");
        steprun_finish(&s->run, NULL, NULL);
        break;
    case STANDBY_DIR_OURS:
        if (!standby_signal_present(dir)) {
            steprun_failf(&s->run, "%s holds no standby.signal: the standby was promoted and is "
                          "a primary now; nothing was stopped or removed", dir);
            break;
        }
        s->keep_dir = standby_marker_keep(dir);
        {
            char **argv = standby_cmd_argv(s->sb, &s->sb->stop);
            int rc = standby_spawn(s->run.loop, argv, NULL, NULL, false, s_on_stopped, s,
                                   &s->proc);
            if (rc != 0)
                steprun_failf(&s->run, "cannot run the stop command %s: %s", argv[0],
                              uv_strerror(rc));
            standby_argv_free(&argv);
        }
        break;
    case STANDBY_DIR_OTHER:
        if (!why && !marked && partial_ours) {
            /* a killed pg_basebackup's: no server ever ran there */
            s->keep_dir = pkeep;
            s_remove(s);
            break;
        }
        steprun_failf(&s->run, "%s is not godwit's standby of slot \"%s\" (%s): nothing was "
                      "stopped or removed", dir, s->slot,
                      why ? why : marked ? "its marker names another slot" : "no marker");
        break;
    }
    free(marked);
    free(why);
    free(partial);
}

step_t *standby_drop_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg)
{
    if (!loop || !local || !req || !done || !local->standby || !req->standby_of_slot ||
        !req->standby_of_slot[0])
        return NULL;
    sd_t *s = xcalloc(1, sizeof *s);
    s->local = local;
    s->sb = local->standby;
    s->slot = xstrdup(req->standby_of_slot);
    s->run.wind_down = s_wind_down;
    steprun_start(&s->run, loop,
                  xasprintf("dropping the standby of slot \"%s\"", req->standby_of_slot), done,
                  arg, s_release, s_first);
    return &s->run.base;
}
