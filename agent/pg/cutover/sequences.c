/*
 * sequences: the SetSequences step on the target (see sequences.h). One
 * statement after the other on one connection, the freezer's kept one when
 * it has one to the database: with a final position, first a wait on the
 * server until our subscription received the source's stream up to it;
 * then one setval per sequence, then the target's WAL insert position,
 * then one read per table of the final check. Names are quoted by
 * PQescapeIdentifier, which needs the connection: each statement is built
 * once connected.
 *
 * Owns: its copy of the request, the final check's rows until they go
 * into the result, its connection while it runs (given back to the
 * freezer when the step ends well).
 */
#include "sequences.h"
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

#define SEQ_DEFAULT_WAIT_MS 10000

typedef struct seq_step seq_step_t;

struct seq_step {
    steprun_t run;              /* first: conn[0], label */
    size_t n, next;             /* the statements: setvals, the WAL position, the checks */
    Godwit__SetSequences *req;  /* our copy of the request, owned */
    freezer_t *f;               /* takes and gives back its kept connection */
    char *database;
    uint64_t lsn;               /* the target's WAL insert position, read last */
    size_t skipped;             /* sequences out of the migration's tables */
    bool waited;                /* the final position received (or no wait) */
    uint64_t wait_ms10;         /* how long that wait took, in 0.1 ms */
    Godwit__CheckedRows **checked; /* the final check's rows, owned */
    size_t n_checked;
    uint64_t checks_started_us;
    uint64_t started_us, connect_timeout_ms;
};

static void s_release(steprun_t *run)
{
    seq_step_t *s = (seq_step_t *)run;
    for (size_t i = 0; i < s->n_checked; i++)
        godwit__checked_rows__free_unpacked(s->checked[i], NULL);
    free(s->checked);
    if (s->req)
        godwit__set_sequences__free_unpacked(s->req, NULL);
    free(s->database);
    free(s);
}

/* Appends to r's steps (room made by the caller) how long name took. */
static void s_timed(Godwit__SetSequencesResult *r, const char *name, double ms)
{
    Godwit__TimedStep *t = xmalloc(sizeof *t);
    godwit__timed_step__init(t);
    t->name = xstrdup(name);
    t->ms = ms;
    r->steps[r->n_steps++] = t;
}

static void s_finish(seq_step_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        Godwit__SetSequencesResult *r = xmalloc(sizeof *r);
        godwit__set_sequences_result__init(r);
        const Godwit__SetSequences *req = s->req;
        r->set = (uint32_t)(req->n_sequences - s->skipped);
        r->lsn = s->lsn;
        uint64_t now = units_mono_us(), set_end = req->n_check ? s->checks_started_us : now;
        r->steps = xcalloc(3, sizeof *r->steps);
        if (req->final_lsn && req->subscription && req->subscription[0])
            s_timed(r, "final position received", (double)s->wait_ms10 / 10.0);
        s_timed(r, "set sequences", (double)(set_end - s->started_us) / 1000.0);
        if (req->n_check)
            s_timed(r, "check rows", (double)(now - s->checks_started_us) / 1000.0);
        r->checked = s->checked;
        r->n_checked = s->n_checked;
        s->checked = NULL;
        s->n_checked = 0;
        payload = &r->base;
        freezer_conn_give(s->f, s->database, &s->run.conn[0]);
    }
    steprun_finish(&s->run, payload, error);
}

static void s_run(seq_step_t *s);

static void s_on_result(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    seq_step_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message(NULL, r);
        s_finish(s, why);
        free(why);
        return;
    }
    size_t n_seq = s->req->n_sequences;
    if (s->next > n_seq) { /* the final check's rows: see s_run */
        const Godwit__SetSequences *req = s->req;
        s->checked = xrealloc(s->checked, (s->n_checked + 1) * sizeof *s->checked);
        s->checked[s->n_checked++] = rowcheck_rows_new(req->check[s->next - n_seq - 1], r->res);
    }
    if (s->next < n_seq) { /* a setval: see s_build_setval */
        const char *v = r->res && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0)
                            ? PQgetvalue(r->res, 0, 0)
                            : NULL;
        const Godwit__SequenceValue *q = s->req->sequences[s->next];
        if (!v) {
            char *why = q->owner_table[0]
                            ? xasprintf("sequence %s.%s is missing on the target while its "
                                        "table %s.%s is there", q->schema, q->name,
                                        q->owner_schema, q->owner_table)
                            : xasprintf("sequence %s.%s is missing on the target", q->schema,
                                        q->name);
            s_finish(s, why);
            free(why);
            return;
        }
        if (strcmp(v, "out of scope") == 0) {
            log_info("%s: sequence %s.%s skipped: its table %s.%s is not migrated", s->run.label,
                     q->schema, q->name, q->owner_schema, q->owner_table);
            s->skipped++;
        }
    }
    if (s->next == n_seq) {
        const char *v = r->res && PQntuples(r->res) == 1 ? PQgetvalue(r->res, 0, 0) : NULL;
        if (!v || !lsn_parse(v, &s->lsn)) {
            s_finish(s, "the server gave no valid WAL position");
            return;
        }
    }
    s->next++;
    s_run(s);
}

static void s_on_waited(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    seq_step_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message("waiting for the final position", r);
        s_finish(s, why);
        free(why);
        return;
    }
    uint64_t now = units_mono_us();
    s->wait_ms10 = (now - s->started_us) / 100;
    s->started_us = now;
    s->waited = true;
    s_run(s);
}

/* SetSequences with a final position: one statement that waits on the
 * server (1 ms polls of pg_stat_subscription, live shared memory) until
 * the subscription's apply worker has received the source's stream up to
 * it. A DO block takes no parameters: the name goes in as a quoted
 * literal, the position as text lsn_format wrote. */
static void s_wait_final(seq_step_t *s)
{
    const Godwit__SetSequences *req = s->req;
    char pos[32];
    lsn_format(req->final_lsn, pos, sizeof pos);
    char *name = pgconn_escape_literal(s->run.conn[0], req->subscription);
    if (!name) {
        s_finish(s, "cannot quote the subscription's name");
        return;
    }
    uint64_t ms = req->wait_timeout_ms ? req->wait_timeout_ms : SEQ_DEFAULT_WAIT_MS;
    if (ms > FREEZE_STATEMENT_TIMEOUT_MS - 500)
        ms = FREEZE_STATEMENT_TIMEOUT_MS - 500;
    char *sql = xasprintf(
        "DO $godwit$ DECLARE t pg_catalog.timestamptz := pg_catalog.clock_timestamp();"
        " r pg_catalog.pg_lsn; BEGIN LOOP"
        " SELECT s.received_lsn INTO r FROM pg_catalog.pg_stat_subscription s"
        " WHERE s.subname = %s AND s.relid IS NULL;"
        " EXIT WHEN r >= '%s'::pg_catalog.pg_lsn;"
        " IF pg_catalog.clock_timestamp() - t > interval '%" PRIu64 " ms' THEN"
        " RAISE EXCEPTION 'subscription %% received the source''s stream up to %%, not the"
        " final position %s, in %" PRIu64 " ms', %s, coalesce(r::pg_catalog.text, 'nothing'); END IF;"
        " PERFORM pg_catalog.pg_sleep(0.001); END LOOP; END $godwit$",
        name, pos, ms, pos, ms, name);
    free(name);
    int rc = pgconn_query(s->run.conn[0], sql, 0, NULL, FREEZE_STATEMENT_TIMEOUT_MS + 1000, s_on_waited, s);
    free(sql);
    if (rc != 0)
        s_finish(s, strerror(-rc));
}

/* setval of the i-th sequence, its name as a parameter the server casts to
 * regclass; after the last, where the target's WAL is. sql and up to 4
 * params, malloc'd (freed by the caller); false with *why (static) if it
 * cannot be built. */
static bool s_build_setval(seq_step_t *s, size_t i, char **sql, char *params[4], int *nparams,
                           const char **why)
{
    const Godwit__SetSequences *req = s->req;
    if (i == req->n_sequences) { /* then where the target's WAL is: see SetSequencesResult */
        *sql = xstrdup("SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text");
        return true;
    }
    const Godwit__SequenceValue *v = req->sequences[i];
    char *schema = pgconn_escape_identifier(s->run.conn[0], v->schema);
    char *name = pgconn_escape_identifier(s->run.conn[0], v->name);
    bool owned = v->owner_table && v->owner_table[0];
    char *oschema = owned ? pgconn_escape_identifier(s->run.conn[0], v->owner_schema) : NULL;
    char *otable = owned ? pgconn_escape_identifier(s->run.conn[0], v->owner_table) : NULL;
    bool ok = schema && name && (!owned || (oschema && otable));
    if (ok) {
        /* Set if it is there; "out of scope" if it is not and neither is
         * the table owning it; NULL (an error) otherwise. */
        *sql = xstrdup("SELECT CASE WHEN pg_catalog.to_regclass($1) IS NOT NULL THEN"
                       " pg_catalog.setval(pg_catalog.to_regclass($1), $2::pg_catalog.int8,"
                       " $3::pg_catalog.bool)::pg_catalog.text"
                       " WHEN $4 <> '' AND pg_catalog.to_regclass($4) IS NULL THEN 'out of scope'"
                       " END");
        params[0] = xasprintf("%s.%s", schema, name);
        params[1] = xasprintf("%" PRId64, v->last_value);
        params[2] = xstrdup(v->is_called ? "true" : "false");
        params[3] = owned ? xasprintf("%s.%s", oschema, otable) : xstrdup("");
        *nparams = 4;
    } else {
        *why = "cannot quote a sequence's name";
    }
    free(schema);
    free(name);
    free(oschema);
    free(otable);
    return ok;
}

static void s_run(seq_step_t *s)
{
    if (!s->waited) {
        s_wait_final(s);
        return;
    }
    if (s->next >= s->n) {
        s_finish(s, NULL);
        return;
    }
    /* After the setvals and the WAL position: the final check's rows
     * (SetSequences.check), one table per statement. */
    const Godwit__SetSequences *req = s->req;
    if (s->next > req->n_sequences) {
        if (s->next == req->n_sequences + 1)
            s->checks_started_us = units_mono_us();
        char cwhy[256];
        if (rowcheck_send(s->run.conn[0], req->check[s->next - req->n_sequences - 1],
                          FREEZE_STATEMENT_TIMEOUT_MS + 1000, s_on_result, s, cwhy,
                          sizeof cwhy) != 0) {
            char *w = xasprintf("the final check: %s", cwhy);
            s_finish(s, w);
            free(w);
        }
        return;
    }
    char *sql = NULL, *params[4] = { NULL, NULL, NULL, NULL };
    int np = 0;
    const char *why = NULL;
    int rc = 0;
    if (!s_build_setval(s, s->next, &sql, params, &np, &why))
        s_finish(s, why);
    else if ((rc = pgconn_query(s->run.conn[0], sql, np, (const char *const *)params,
                                FREEZE_STATEMENT_TIMEOUT_MS + 1000, s_on_result, s)) != 0)
        s_finish(s, strerror(-rc));
    free(sql);
    for (int k = 0; k < 4; k++)
        free(params[k]);
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    seq_step_t *s = arg;
    if (!ok) {
        s_finish(s, error ? error : "cannot connect");
        return;
    }
    s_run(s);
}

static void s_first(steprun_t *run)
{
    seq_step_t *s = (seq_step_t *)run;
    if (pgconn_is_ready(s->run.conn[0])) { /* the kept connection */
        s_run(s);
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], s->connect_timeout_ms, s_on_connect, s);
    if (rc != 0)
        s_finish(s, strerror(-rc));
}

step_t *sequences_set_start(freezer_t *f, const Godwit__SetSequences *req, step_done_cb done,
                            void *arg)
{
    if (!f || !req || !req->database)
        return NULL;
    Godwit__SetSequences *copy = wire_copy(req);
    char *label = xasprintf("setting the sequences in \"%s\"", req->database);
    pgconn_t *conn = !(copy && req->database[0] && done) ? NULL
                                                         : freezer_conn_take(f, req->database);
    if (!conn) {
        if (copy)
            godwit__set_sequences__free_unpacked(copy, NULL);
        free(label);
        return NULL;
    }
    seq_step_t *s = xcalloc(1, sizeof *s);
    s->run.conn[0] = conn;
    s->req = copy;
    s->f = f;
    s->database = xstrdup(req->database);
    s->n = req->n_sequences + 1 + req->n_check;
    s->waited = !(req->final_lsn && req->subscription && req->subscription[0]);
    s->started_us = units_mono_us();
    s->connect_timeout_ms = (uint64_t)freezer_local(f)->connect_timeout_ms;
    steprun_start(&s->run, freezer_loop(f), label, done, arg, s_release, s_first);
    return &s->run.base;
}
