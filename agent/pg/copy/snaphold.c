/*
 * snaphold: see snaphold.h. A request runs as a step in three stages: what
 * the holds already answer (a renewal, an end, a request without create),
 * else a local walsender connection; the slot looked up on it; the slot
 * created with its exported snapshot, and the connection moved from the
 * step into a new hold, idle from then on.
 *
 * SQL: the slot's name goes into the replication command only through
 * PQescapeIdentifier of the connection that sends it, into the lookup only
 * through PQescapeLiteral (a walsender takes the simple protocol only).
 */
#include "snaphold.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "pgstep.h"
#include "steprun.h"
#include "xalloc.h"

typedef struct hold hold_t;

struct hold {
    hold_t *next;
    snaphold_t *reg;           /* NULL once the registry is gone */
    char *database, *name;
    char *snapshot, *consistent_point;
    pgconn_t *conn;            /* idle since the slot was created: the snapshot lives */
    uv_timer_t lease;
};

struct snaphold {
    uv_loop_t *loop;
    const step_local_t *local;
    hold_t *holds;
};

typedef struct {
    steprun_t run;             /* first */
    snaphold_t *reg;
    char *database, *name;
    uint32_t lease_ms;
    bool create;
} hold_step_t;

/* ---- the holds ---------------------------------------------------------- */

static void s_hold_closed(uv_handle_t *h)
{
    hold_t *x = h->data;
    free(x->database);
    free(x->name);
    free(x->snapshot);
    free(x->consistent_point);
    free(x);
}

/* Unlinks x, closes its connection (the snapshot ends) and lets it go. */
static void s_hold_end(hold_t *x, const char *why)
{
    if (x->reg) {
        for (hold_t **p = &x->reg->holds; *p; p = &(*p)->next) {
            if (*p == x) {
                *p = x->next;
                break;
            }
        }
        x->reg = NULL;
    }
    log_info("snapshot %s of slot \"%s\" in database \"%s\" no longer held: %s", x->snapshot,
             x->name, x->database, why);
    pgconn_destroy(&x->conn);
    uv_timer_stop(&x->lease);
    uv_close((uv_handle_t *)&x->lease, s_hold_closed);
}

static void s_on_lease(uv_timer_t *t)
{
    s_hold_end(t->data, "its lease ran out");
}

static hold_t *s_hold_find(snaphold_t *h, const char *database, const char *name)
{
    for (hold_t *x = h->holds; x; x = x->next)
        if (strcmp(x->database, database) == 0 && strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

snaphold_t *snaphold_new(uv_loop_t *loop, const step_local_t *local)
{
    snaphold_t *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->local = local;
    return h;
}

void snaphold_destroy(snaphold_t **hp)
{
    snaphold_t *h = *hp;
    if (!h)
        return;
    *hp = NULL;
    while (h->holds)
        s_hold_end(h->holds, "the agent stops");
    free(h);
}

/* ---- the step ----------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    hold_step_t *s = (hold_step_t *)run;
    free(s->database);
    free(s->name);
    free(s);
}

/* Ends the step with held, created, stale and, when held, x's snapshot. */
static void s_answer(hold_step_t *s, const hold_t *x, bool created, bool stale)
{
    Godwit__HoldSnapshotResult *res = xmalloc(sizeof *res);
    godwit__hold_snapshot_result__init(res);
    res->held = x != NULL;
    res->created = created;
    res->stale = stale;
    res->snapshot = xstrdup(x ? x->snapshot : "");
    res->consistent_point = xstrdup(x ? x->consistent_point : "");
    steprun_finish(&s->run, &res->base, NULL);
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    hold_step_t *s = arg;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect (%s): %s", pgconn_name(c),
                      error ? error : "unknown error");
        return;
    }
    steprun_next(&s->run);
}

/* 1: what the holds answer, else the connection for a new one. */
static void s_decide(steprun_t *run)
{
    hold_step_t *s = (hold_step_t *)run;
    hold_t *x = s_hold_find(s->reg, s->database, s->name);
    if (x && (s->lease_ms == 0 || !pgconn_is_ready(x->conn))) {
        s_hold_end(x, s->lease_ms == 0 ? "ended by the coordinator" : "its connection is gone");
        x = NULL;
    }
    if (x) {
        uv_timer_start(&x->lease, s_on_lease, s->lease_ms, 0);
        s_answer(s, x, false, false);
        return;
    }
    if (!s->create || s->lease_ms == 0) {
        s_answer(s, NULL, false, false);
        return;
    }
    char *app = xasprintf("%s_hold", s->name);
    s->run.conn[0] = pgstep_local_walsender(s->run.loop, "snapshot hold (source)", s->reg->local,
                                            s->database, app,
                                            "-c client_encoding=UTF8 -c search_path=");
    free(app);
    if (!s->run.conn[0]) {
        steprun_failf(&s->run, "invalid connection settings for the source");
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->reg->local->connect_timeout_ms,
                            s_on_connect, s);
    if (rc != 0)
        steprun_failf(&s->run, "cannot start connecting: %s", strerror(-rc));
}

/* 2: the slot, if it exists. */
static void s_on_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    hold_step_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) == 0) {
        steprun_next(&s->run);
        return;
    }
    char *what = NULL;
    if (!pgstep_slot_ours(r->res, &what)) {
        steprun_failf(&s->run,
                      "a replication slot \"%s\" exists that godwit did not make (%s); nothing "
                      "was done",
                      s->name, what);
        free(what);
        return;
    }
    log_warn("step on %s: slot \"%s\" exists without its snapshot (an agent restarted or the "
             "hold's lease ran out): left for the target to clear",
             s->run.label, s->name);
    s_answer(s, NULL, false, true);
}

static void s_lookup(steprun_t *run)
{
    hold_step_t *s = (hold_step_t *)run;
    char *sql = pgstep_slot_lookup_sql(s->run.conn[0], s->name);
    if (!sql) {
        steprun_failf(&s->run, "cannot quote \"%s\" for SQL", s->name);
        return;
    }
    steprun_query_simple(&s->run, 0, "looking up our slot", sql,
                         (uint64_t)s->reg->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_lookup);
    free(sql);
}

/* 3: the slot and its snapshot; the connection becomes the hold. */
static void s_on_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    hold_step_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, NULL, r);
        return;
    }
    const char *snap = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "snapshot_name")
                                                        : NULL;
    const char *lsn = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "consistent_point")
                                                       : NULL;
    if (!snap || !lsn) {
        steprun_failf(&s->run, "creating the slot returned no snapshot");
        return;
    }
    hold_t *x = xcalloc(1, sizeof *x);
    x->reg = s->reg;
    x->database = xstrdup(s->database);
    x->name = xstrdup(s->name);
    x->snapshot = xstrdup(snap);
    x->consistent_point = xstrdup(lsn);
    x->conn = s->run.conn[0];
    s->run.conn[0] = NULL; /* the hold's now: the runtime must not close it */
    uv_timer_init(s->run.loop, &x->lease);
    x->lease.data = x;
    uv_timer_start(&x->lease, s_on_lease, s->lease_ms, 0);
    x->next = s->reg->holds;
    s->reg->holds = x;
    log_info("step on %s: slot \"%s\" created, consistent at %s, snapshot %s held for %" PRIu32
             " ms unless renewed",
             s->run.label, s->name, lsn, snap, s->lease_ms);
    s_answer(s, x, true, false);
}

static void s_create(steprun_t *run)
{
    hold_step_t *s = (hold_step_t *)run;
    char *slot = steprun_ident(&s->run, 0, s->name);
    if (!slot)
        return;
    char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", slot);
    steprun_query_simple(&s->run, 0, "creating our slot", sql,
                         (uint64_t)s->reg->local->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_created);
    free(sql);
    free(slot);
}

static const steprun_fn s_stages[] = { s_decide, s_lookup, s_create, NULL };

step_t *snaphold_run(snaphold_t *h, const Godwit__HoldSnapshot *req, step_done_cb done,
                     void *arg)
{
    if (!h || !req || !done || !req->database || !req->database[0] ||
        !step_godwit_name(req->name))
        return NULL;
    hold_step_t *s = xcalloc(1, sizeof *s);
    s->run.stages = s_stages;
    s->reg = h;
    s->database = xstrdup(req->database);
    s->name = xstrdup(req->name);
    s->lease_ms = req->lease_ms;
    s->create = req->create;
    steprun_start(&s->run, h->loop,
                  xasprintf("snapshot hold \"%s\" in database \"%s\"", req->name, req->database),
                  done, arg, s_release, steprun_next);
    return &s->run.base;
}
