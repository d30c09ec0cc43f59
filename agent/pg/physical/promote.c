/* promote: the Promote step (promote.h). */
#include "promote.h"
#include "steprun.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "rowcheck.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

/* The SQLSTATE of the wait's failure: the final position not replayed in
 * time, nothing promoted. */
#define PROMOTE_NOT_REPLAYED "GW001"

typedef struct {
    steprun_t run;              /* first: conn[0], label */
    Godwit__Promote *req;       /* our copy, owned */
    freezer_t *f;               /* takes and gives back its kept connection */
    uint64_t connect_timeout_ms;
    uint64_t wait_ms;           /* the request's, or PROMOTE_DEFAULT_WAIT_MS */
    size_t next;                /* the final check's next table */
    Godwit__PromoteResult *result; /* filled as it goes, owned until handed over */
    uint64_t checks_started_us;
} promote_t;

static void s_release(steprun_t *run)
{
    promote_t *s = (promote_t *)run;
    if (s->result)
        godwit__promote_result__free_unpacked(s->result, NULL);
    if (s->req)
        godwit__promote__free_unpacked(s->req, NULL);
    free(s);
}

static void s_timed(Godwit__PromoteResult *r, const char *name, double ms)
{
    Godwit__TimedStep *t = xmalloc(sizeof *t);
    godwit__timed_step__init(t);
    t->name = xstrdup(name);
    t->ms = ms;
    r->steps = xrealloc(r->steps, (r->n_steps + 1) * sizeof *r->steps);
    r->steps[r->n_steps++] = t;
}

/* The result goes with a failure too when the promotion may have been
 * asked for (PromoteResult.promote_requested). */
static void s_finish(promote_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (error && s->result->promote_requested) {
        payload = &s->result->base;
        s->result = NULL;
    } else if (!error) {
        if (s->req->n_check)
            s_timed(s->result, "check rows",
                    (double)(units_mono_us() - s->checks_started_us) / 1000.0);
        payload = &s->result->base;
        s->result = NULL;
        freezer_conn_give(s->f, s->req->database, &s->run.conn[0]);
    }
    steprun_finish(&s->run, payload, error);
}

static void s_check(promote_t *s);

static void s_on_checked(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    promote_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message("the final check", r);
        s_finish(s, why);
        free(why);
        return;
    }
    Godwit__PromoteResult *res = s->result;
    res->checked = xrealloc(res->checked, (res->n_checked + 1) * sizeof *res->checked);
    res->checked[res->n_checked++] = rowcheck_rows_new(s->req->check[s->next], r->res);
    s->next++;
    s_check(s);
}

/* The final check's rows (Promote.check), one table per statement, on the
 * new primary. */
static void s_check(promote_t *s)
{
    if (s->next >= s->req->n_check) {
        s_finish(s, NULL);
        return;
    }
    char cwhy[256];
    if (rowcheck_send(s->run.conn[0], s->req->check[s->next], FREEZE_STATEMENT_TIMEOUT_MS + 1000,
                      s_on_checked, s, cwhy, sizeof cwhy) != 0) {
        char *w = xasprintf("the final check: %s", cwhy);
        s_finish(s, w);
        free(w);
    }
}

static uint64_t s_u64(const PGresult *res, const char *col)
{
    const char *v = pgconn_col(res, 0, col);
    return v && v[0] ? strtoull(v, NULL, 10) : 0;
}

static void s_on_promoted(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    promote_t *s = arg;
    if (!r->ok) {
        /* Only the wait's own error says the promotion was never asked
         * for: anything else (a timeout, a lost connection) may have come
         * after it, and the answer says so (the abort then treats the
         * target as a primary). */
        s->result->promote_requested = strcmp(r->sqlstate, PROMOTE_NOT_REPLAYED) != 0;
        char *why = pgconn_result_message("waiting for the final position, then promoting", r);
        s_finish(s, why);
        free(why);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        s_finish(s, "the server gave no answer for the promotion");
        return;
    }
    Godwit__PromoteResult *res = s->result;
    const char *already = pgconn_col(r->res, 0, "already");
    res->already = already && strcmp(already, "true") == 0;
    const char *replayed = pgconn_col(r->res, 0, "replayed");
    if (replayed && replayed[0] && !lsn_parse(replayed, &res->replayed_lsn)) {
        s_finish(s, "the server gave no valid replay position");
        return;
    }
    const char *promoted = pgconn_col(r->res, 0, "promoted");
    if (!promoted || !lsn_parse(promoted, &res->promoted_lsn)) {
        s_finish(s, "the server gave no valid WAL position");
        return;
    }
    res->roles = (uint32_t)s_u64(r->res, "roles");
    s_timed(res, "final position replayed", (double)s_u64(r->res, "waited_us") / 1000.0);
    s_timed(res, "promote", (double)s_u64(r->res, "promote_us") / 1000.0);
    s_timed(res, "roles login", (double)s_u64(r->res, "roles_us") / 1000.0);
    char pos[32];
    log_info("%s: %s at %s, %u role(s) given LOGIN back", s->run.label,
             res->already ? "was promoted already" : "promoted",
             lsn_format(res->promoted_lsn, pos, sizeof pos), res->roles);
    s->checks_started_us = units_mono_us();
    s_check(s);
}

/* The one round trip before the check (see promote.h). The DO blocks take
 * no parameters: the position goes in as text lsn_format wrote, the roles
 * as a quoted text[] literal, and each role is quoted by the server
 * (format's %I). Values come back through session settings (godwit.*),
 * which outlive the COMMIT between the two blocks. The statement timeout is
 * raised for the wait and the promotion, and reset after. NULL if the roles
 * cannot be quoted. */
static char *s_sql(promote_t *s)
{
    const Godwit__Promote *req = s->req;
    char final[32];
    lsn_format(req->final_lsn, final, sizeof final);
    char *array = pgconn_text_array(req->app_roles, req->n_app_roles);
    char *roles = pgconn_escape_literal(s->run.conn[0], array);
    free(array);
    if (!roles)
        return NULL;
    uint64_t w = s->wait_ms;
    char *sql = xasprintf(
        "SET statement_timeout = %" PRIu64 ";"
        " DO $godwit$ DECLARE t0 pg_catalog.timestamptz := pg_catalog.clock_timestamp();"
        " t1 pg_catalog.timestamptz; r pg_catalog.pg_lsn; n pg_catalog.int4;"
        " rec bool := pg_catalog.pg_is_in_recovery(); BEGIN"
        " PERFORM pg_catalog.set_config('godwit.already', (NOT rec)::pg_catalog.text, false);"
        " LOOP r := pg_catalog.pg_last_wal_replay_lsn();"
        "  EXIT WHEN NOT rec OR r >= '%s'::pg_catalog.pg_lsn;"
        "  IF pg_catalog.clock_timestamp() - t0 > interval '%" PRIu64 " ms' THEN"
        "   RAISE EXCEPTION 'the standby replayed the source''s WAL up to %%, not the final"
        " position %s, in %" PRIu64 " ms', coalesce(r::pg_catalog.text, 'nothing')"
        " USING ERRCODE = '" PROMOTE_NOT_REPLAYED "'; END IF;"
        "  PERFORM pg_catalog.pg_sleep(0.001); END LOOP;"
        " PERFORM pg_catalog.set_config('godwit.replayed', coalesce(r::pg_catalog.text, ''), false);"
        " t1 := pg_catalog.clock_timestamp();"
        " PERFORM pg_catalog.set_config('godwit.waited_us', (EXTRACT(epoch FROM t1 - t0)"
        " * 1000000)::pg_catalog.int8::pg_catalog.text, false);"
        " IF rec THEN n := greatest(1, ceil((%" PRIu64 " - EXTRACT(epoch FROM t1 - t0) * 1000)"
        " / 1000))::pg_catalog.int4;"
        "  IF NOT pg_catalog.pg_promote(false) THEN"
        "   RAISE EXCEPTION 'the standby refused to be promoted'; END IF;"
        "  LOOP EXIT WHEN NOT pg_catalog.pg_is_in_recovery();"
        "   IF pg_catalog.clock_timestamp() - t1 > pg_catalog.make_interval(secs => n) THEN"
        "    RAISE EXCEPTION 'the standby was not promoted within %% s', n; END IF;"
        "   PERFORM pg_catalog.pg_sleep(0.001); END LOOP; END IF;"
        " PERFORM pg_catalog.set_config('godwit.promote_us', (EXTRACT(epoch FROM"
        " pg_catalog.clock_timestamp() - t1) * 1000000)::pg_catalog.int8::pg_catalog.text, false);"
        " END $godwit$;"
        " COMMIT;"
        " DO $godwit$ DECLARE t0 pg_catalog.timestamptz := pg_catalog.clock_timestamp();"
        " n pg_catalog.int4 := 0; r pg_catalog.text; BEGIN"
        " FOREACH r IN ARRAY %s::pg_catalog.text[] LOOP"
        "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r AND NOT rolcanlogin)"
        "  THEN EXECUTE pg_catalog.format('ALTER ROLE %%I LOGIN', r); n := n + 1; END IF;"
        " END LOOP;"
        " PERFORM pg_catalog.set_config('godwit.roles', n::pg_catalog.text, false);"
        " PERFORM pg_catalog.set_config('godwit.roles_us', (EXTRACT(epoch FROM"
        " pg_catalog.clock_timestamp() - t0) * 1000000)::pg_catalog.int8::pg_catalog.text, false);"
        " END $godwit$;"
        " RESET statement_timeout;"
        " SELECT pg_catalog.current_setting('godwit.already') AS already,"
        " pg_catalog.current_setting('godwit.replayed') AS replayed,"
        " pg_catalog.pg_current_wal_lsn()::pg_catalog.text AS promoted,"
        " pg_catalog.current_setting('godwit.waited_us') AS waited_us,"
        " pg_catalog.current_setting('godwit.promote_us') AS promote_us,"
        " pg_catalog.current_setting('godwit.roles') AS roles,"
        " pg_catalog.current_setting('godwit.roles_us') AS roles_us",
        w + (w / 1000 + 1) * 1000 + 2000, final, w, final, w, w, roles);
    free(roles);
    return sql;
}

static void s_run(promote_t *s)
{
    char *sql = s_sql(s);
    if (!sql) {
        s_finish(s, "cannot quote the application roles");
        return;
    }
    uint64_t w = s->wait_ms;
    int rc = pgconn_query_simple(s->run.conn[0], sql, w + (w / 1000 + 1) * 1000 + 3000 +
                                 FREEZE_STATEMENT_TIMEOUT_MS, s_on_promoted, s);
    free(sql);
    if (rc != 0)
        s_finish(s, strerror(-rc));
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    promote_t *s = arg;
    if (!ok) {
        s_finish(s, error ? error : "cannot connect");
        return;
    }
    s_run(s);
}

static void s_first(steprun_t *run)
{
    promote_t *s = (promote_t *)run;
    if (pgconn_is_ready(s->run.conn[0])) { /* the kept connection */
        s_run(s);
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], s->connect_timeout_ms, s_on_connect, s);
    if (rc != 0)
        s_finish(s, strerror(-rc));
}

step_t *promote_start(freezer_t *f, const Godwit__Promote *req, step_done_cb done, void *arg)
{
    if (!f || !req || !req->database || !req->database[0] || !done)
        return NULL;
    Godwit__Promote *copy = wire_copy(req);
    pgconn_t *conn = copy ? freezer_conn_take(f, req->database) : NULL;
    if (!conn) {
        if (copy)
            godwit__promote__free_unpacked(copy, NULL);
        return NULL;
    }
    promote_t *s = xcalloc(1, sizeof *s);
    s->run.conn[0] = conn;
    s->req = copy;
    s->f = f;
    s->wait_ms = req->wait_timeout_ms ? req->wait_timeout_ms : PROMOTE_DEFAULT_WAIT_MS;
    s->connect_timeout_ms = (uint64_t)freezer_local(f)->connect_timeout_ms;
    s->result = xmalloc(sizeof *s->result);
    godwit__promote_result__init(s->result);
    steprun_start(&s->run, freezer_loop(f),
                  xasprintf("promoting the standby (database \"%s\")", req->database), done, arg,
                  s_release, s_first);
    return &s->run.base;
}
