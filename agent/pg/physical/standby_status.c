/* standby_status: the StandbyStatus step (standby_status.h). */
#include "standby_status.h"
#include "steprun.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "standby.h"
#include "xalloc.h"

typedef struct {
    steprun_t run;              /* first: conn[0], label */
    const step_local_t *local;  /* borrowed: the engine's */
    char *slot;
} ss_t;

static void s_release(steprun_t *run)
{
    ss_t *s = (ss_t *)run;
    free(s->slot);
    free(s);
}

static void s_on_status(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    ss_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, NULL, r);
        return;
    }
    Godwit__StandbyStatusResult *res = xmalloc(sizeof *res);
    godwit__standby_status_result__init(res);
    standby_status_fill(res, r->res);
    const agent_standby_t *sb = s->local->standby;
    if (sb) {
        res->data_directory = xstrdup(sb->data_directory);
        char *marked = NULL, *why = NULL;
        res->ours = s->slot[0] &&
                    standby_dir_look(sb->data_directory, s->slot, &marked, &why) ==
                        STANDBY_DIR_OURS;
        free(marked);
        free(why);
    }
    steprun_finish(&s->run, &res->base, NULL);
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    ss_t *s = arg;
    if (!ok) {
        steprun_finish(&s->run, NULL, error ? error : "cannot connect");
        return;
    }
    steprun_query_simple(&s->run, 0, "reading the standby's state", standby_status_sql,
                         (uint64_t)s->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_status);
}

static void s_first(steprun_t *run)
{
    ss_t *s = (ss_t *)run;
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->local->connect_timeout_ms, s_on_connect,
                            s);
    if (rc != 0)
        steprun_failf(&s->run, "cannot connect: %s", strerror(-rc));
}

step_t *standby_status_start(uv_loop_t *loop, const step_local_t *local,
                             const Godwit__StandbyStatus *req, step_done_cb done, void *arg)
{
    if (!loop || !local || !req || !done)
        return NULL;
    char *options = xasprintf("-c statement_timeout=%" PRId64, local->statement_timeout_ms);
    pgconn_t *conn = pgstep_local_conn(loop, "standby status", local, local->dbname,
                                       "godwit-agent", options);
    free(options);
    if (!conn)
        return NULL;
    ss_t *s = xcalloc(1, sizeof *s);
    s->run.conn[0] = conn;
    s->local = local;
    s->slot = xstrdup(req->slot ? req->slot : "");
    steprun_start(&s->run, loop, xasprintf("standby status of slot \"%s\"", s->slot), done, arg,
                  s_release, s_first);
    return &s->run.base;
}
