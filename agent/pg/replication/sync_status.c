/*
 * sync_status: the SyncStatus step on the target (sync_status.h; the rules
 * every replication step follows are in replobj.c): how our subscription
 * stands, table by table (its sync state and, while its data is copied,
 * the copy's progress) and its error counters. It reads the catalogs and
 * changes nothing. It owns the subscription's name, its oid once found and
 * the result being built.
 */
#include "sync_status.h"
#include "log.h"
#include "pgconn.h"
#include "replobj.h"
#include "xalloc.h"

#include <stdlib.h>

typedef struct {
    replobj_t obj;              /* first */
    char *sub_name;
    Godwit__SyncStatusResult *result;
    char *sub_oid;
} sync_status_t;

/* $1 subscription. The error counters are 15's pg_stat_subscription_stats. */
#define S_SYNC_SUB(stats_cols, stats_join)                                                     \
    "SELECT s.oid, s.subenabled, " stats_cols " FROM pg_catalog.pg_subscription s"            \
    stats_join " WHERE s.subdbid = " REPLOBJ_THIS_DB " AND s.subname = $1"

static const char s_sub_sql[] =
    S_SYNC_SUB("st.apply_error_count, st.sync_error_count",
               " LEFT JOIN pg_catalog.pg_stat_subscription_stats st ON st.subid = s.oid");
static const char s_sub_sql_14[] =
    S_SYNC_SUB("NULL AS apply_error_count, NULL AS sync_error_count", "");

/* $1 the subscription's oid. The copy's progress is 14's
 * pg_stat_progress_copy, read only for a table whose data is being copied. */
#define S_SYNC_RELS(progress_cols, progress_join)                                              \
    "SELECT n.nspname AS schema, c.relname AS name, sr.srsubstate AS state, " progress_cols   \
    " FROM pg_catalog.pg_subscription_rel sr"                                                  \
    " JOIN pg_catalog.pg_class c ON c.oid = sr.srrelid"                                        \
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" progress_join                  \
    " WHERE sr.srsubid = $1::pg_catalog.oid ORDER BY 1, 2"

static const char s_rels_sql[] = S_SYNC_RELS(
    "pc.bytes_processed, pc.tuples_processed",
    " LEFT JOIN LATERAL (SELECT pg_catalog.sum(p.bytes_processed) AS bytes_processed,"
    "  pg_catalog.sum(p.tuples_processed) AS tuples_processed"
    "  FROM pg_catalog.pg_stat_progress_copy p"
    "  WHERE p.relid = sr.srrelid AND p.datid = " REPLOBJ_THIS_DB ") pc ON sr.srsubstate = 'd'");
static const char s_rels_sql_13[] =
    S_SYNC_RELS("NULL AS bytes_processed, NULL AS tuples_processed", "");

/* pg_subscription_rel.srsubstate as the protocol names it. */
static const char *s_state(const char *code)
{
    switch (code ? code[0] : '\0') {
    case 'i':
        return "init";
    case 'd':
        return "data";
    case 'f':
        return "finished"; /* 15: copy done, catching up */
    case 's':
        return "syncdone";
    case 'r':
        return "ready";
    default:
        return "unknown";
    }
}

static void s_on_rels(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    sync_status_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    Godwit__SyncStatusResult *res = s->result;
    int n = r->res ? PQntuples(r->res) : 0;
    bool all_ready = n > 0;
    res->tables = n > 0 ? xcalloc((size_t)n, sizeof *res->tables) : NULL;
    for (int i = 0; i < n; i++) {
        Godwit__TableSync *t = xmalloc(sizeof *t);
        godwit__table_sync__init(t);
        t->table = xmalloc(sizeof *t->table);
        godwit__table_ref__init(t->table);
        t->table->schema = xstrdup(pgconn_col(r->res, i, "schema"));
        t->table->name = xstrdup(pgconn_col(r->res, i, "name"));
        const char *state = pgconn_col(r->res, i, "state");
        t->state = xstrdup(s_state(state));
        t->bytes_done = pgconn_col_u64(r->res, i, "bytes_processed");
        t->rows_done = pgconn_col_u64(r->res, i, "tuples_processed");
        if (!state || state[0] != 'r')
            all_ready = false;
        res->tables[res->n_tables++] = t;
    }
    res->all_ready = all_ready;
    s->result = NULL;
    log_debug("step on %s: %d table(s), all ready: %s", s->obj.run.label, n,
              all_ready ? "yes" : "no");
    replobj_finish(&s->obj, &res->base, NULL);
}

static void s_rels(steprun_t *run)
{
    sync_status_t *s = (sync_status_t *)run;
    const char *params[1] = { s->sub_oid };
    replobj_query(&s->obj, "reading the tables' sync states",
                  pgconn_server_version(s->obj.run.conn[0]) >= 140000 ? s_rels_sql
                                                                       : s_rels_sql_13,
                  1, params, s_on_rels);
}

static void s_on_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    sync_status_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    Godwit__SyncStatusResult *res = s->result;
    if (!r->res || PQntuples(r->res) != 1) {
        res->exists = false;
        s->result = NULL;
        replobj_finish(&s->obj, &res->base, NULL);
        return;
    }
    res->exists = true;
    res->enabled = pgconn_col_bool(r->res, 0, "subenabled");
    res->apply_error_count = pgconn_col_u64(r->res, 0, "apply_error_count");
    res->sync_error_count = pgconn_col_u64(r->res, 0, "sync_error_count");
    const char *oid = pgconn_col(r->res, 0, "oid");
    s->sub_oid = xstrdup(oid ? oid : "0");
    replobj_next(&s->obj);
}

static void s_sub(steprun_t *run)
{
    sync_status_t *s = (sync_status_t *)run;
    const char *params[1] = { s->sub_name };
    replobj_query(&s->obj, "looking up the subscription",
                  pgconn_server_version(s->obj.run.conn[0]) >= 150000 ? s_sub_sql : s_sub_sql_14, 1,
                  params, s_on_sub);
}

static const steprun_fn s_stages[] = {
    replobj_connect, s_sub, s_rels, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    sync_status_t *s = (sync_status_t *)run;
    if (s->result)
        godwit__sync_status_result__free_unpacked(s->result, NULL);
    free(s->sub_name);
    free(s->sub_oid);
    free(s);
}

step_t *sync_status_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__SyncStatus *req, step_done_cb done, void *arg)
{
    if (!req || !replobj_given(req->subscription))
        return NULL;
    sync_status_t *s = (sync_status_t *)replobj_new(
        sizeof *s, loop, local, req->database, s_stages,
        replobj_label("subscription", req->subscription, req->database), s_release, done, arg);
    if (!s)
        return NULL;
    s->sub_name = xstrdup(req->subscription);
    s->result = xmalloc(sizeof *s->result);
    godwit__sync_status_result__init(s->result);
    return &s->obj.run.base;
}
