/*
 * tune: the TuneSubscription step on the target (see tune.h): one ALTER
 * SUBSCRIPTION ... SET (synchronous_commit = ...) on a connection of its
 * own (freezer_conn_new's: the cutover's statement timeout). The name is
 * quoted by PQescapeIdentifier, which needs the connection: the statement
 * is built once connected.
 *
 * Owns: its copy of the request and its connection.
 */
#include "tune.h"
#include "steprun.h"

#include <stdlib.h>
#include <string.h>

#include "freezer.h"
#include "log.h"
#include "pgconn.h"
#include "wire.h"
#include "xalloc.h"

typedef struct {
    steprun_t run;                  /* first: conn[0], label */
    Godwit__TuneSubscription *req;  /* our copy of the request, owned */
    uint64_t connect_timeout_ms;
} tune_step_t;

static void s_release(steprun_t *run)
{
    tune_step_t *s = (tune_step_t *)run;
    if (s->req)
        godwit__tune_subscription__free_unpacked(s->req, NULL);
    free(s);
}

static void s_on_result(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    tune_step_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message(NULL, r);
        steprun_finish(&s->run, NULL, why);
        free(why);
        return;
    }
    log_info("%s: done", s->run.label);
    steprun_finish(&s->run, NULL, NULL);
}

static void s_alter(tune_step_t *s)
{
    char *q = pgconn_escape_identifier(s->run.conn[0], s->req->name);
    if (!q) {
        steprun_finish(&s->run, NULL, "cannot quote the subscription's name");
        return;
    }
    char *sql = xasprintf("ALTER SUBSCRIPTION %s SET (synchronous_commit = %s)", q,
                          s->req->synchronous_commit ? "on" : "off");
    free(q);
    int rc = pgconn_query(s->run.conn[0], sql, 0, NULL, FREEZE_STATEMENT_TIMEOUT_MS + 1000,
                          s_on_result, s);
    free(sql);
    if (rc != 0)
        steprun_finish(&s->run, NULL, strerror(-rc));
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    tune_step_t *s = arg;
    if (!ok) {
        steprun_finish(&s->run, NULL, error ? error : "cannot connect");
        return;
    }
    s_alter(s);
}

static void s_first(steprun_t *run)
{
    tune_step_t *s = (tune_step_t *)run;
    int rc = pgconn_connect(s->run.conn[0], s->connect_timeout_ms, s_on_connect, s);
    if (rc != 0)
        steprun_finish(&s->run, NULL, strerror(-rc));
}

step_t *tune_subscription_start(uv_loop_t *loop, const step_local_t *local,
                                const Godwit__TuneSubscription *req, step_done_cb done, void *arg)
{
    if (!req || !req->database || !req->name || !req->name[0])
        return NULL;
    Godwit__TuneSubscription *copy = wire_copy(req);
    pgconn_t *conn = !(loop && local && copy && req->database[0] && done)
                         ? NULL
                         : freezer_conn_new(loop, local, req->database);
    if (!conn) {
        if (copy)
            godwit__tune_subscription__free_unpacked(copy, NULL);
        return NULL;
    }
    tune_step_t *s = xcalloc(1, sizeof *s);
    s->run.conn[0] = conn;
    s->req = copy;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    steprun_start(&s->run, loop,
                  xasprintf("subscription \"%s\" in database \"%s\": synchronous_commit %s",
                            req->name, req->database, req->synchronous_commit ? "on" : "off"),
                  done, arg, s_release, s_first);
    return &s->run.base;
}
