/*
 * sequences: the SetSequences step on the target (see sequences.h). On one
 * connection, the freezer's kept one when it has one to the database: one
 * round trip (simple protocol, several statements) that, with a final
 * position, first waits on the server until our subscription received the
 * source's stream up to it, then sets every sequence in one statement, then
 * reads the target's WAL insert position; then one read per table of the
 * final check. (It was one statement per sequence, each a round trip
 * inside the write pause.) Names go into the text only through
 * PQescapeIdentifier and PQescapeLiteral of the connection, so each
 * statement is built once connected.
 *
 * Owns: its copy of the request, the final check's rows until they go
 * into the result, its connection while it runs (given back to the
 * freezer when the step ends well).
 */
#include "sequences.h"
#include "steprun.h"

#include <cjson/cJSON.h>
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
    size_t next;                /* the final check's next table */
    Godwit__SetSequences *req;  /* our copy of the request, owned */
    freezer_t *f;               /* takes and gives back its kept connection */
    char *database;
    uint64_t lsn;               /* the target's WAL insert position, read last */
    size_t skipped;             /* sequences out of the migration's tables */
    bool waited;                /* the final position received (or no wait) */
    bool batched;               /* the wait, the setvals and the WAL position done */
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

/* One row of the final check read (s->next counts them). */
static void s_on_checked(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    seq_step_t *s = arg;
    if (!r->ok) {
        char *why = pgconn_result_message("the final check", r);
        s_finish(s, why);
        free(why);
        return;
    }
    const Godwit__SetSequences *req = s->req;
    s->checked = xrealloc(s->checked, (s->n_checked + 1) * sizeof *s->checked);
    s->checked[s->n_checked++] = rowcheck_rows_new(req->check[s->next], r->res);
    s->next++;
    s_run(s);
}

/* The outcome of the i-th setval as the batch gave it: NULL (the sequence
 * is missing while its table is there: an error), "out of scope" (neither
 * is migrated: skipped) or the value set. false with *why (malloc'd). */
static bool s_setval_outcome(seq_step_t *s, size_t i, const cJSON *r, char **why)
{
    const Godwit__SequenceValue *q = s->req->sequences[i];
    if (!cJSON_IsString(r)) {
        *why = q->owner_table[0]
                   ? xasprintf("sequence %s.%s is missing on the target while its table %s.%s "
                               "is there", q->schema, q->name, q->owner_schema, q->owner_table)
                   : xasprintf("sequence %s.%s is missing on the target", q->schema, q->name);
        return false;
    }
    if (strcmp(r->valuestring, "out of scope") == 0) {
        log_info("%s: sequence %s.%s skipped: its table %s.%s is not migrated", s->run.label,
                 q->schema, q->name, q->owner_schema, q->owner_table);
        s->skipped++;
    }
    return true;
}

/* The batch's one row: the target's WAL position, how long the wait took
 * on the server, every setval's outcome in the request's order. */
static void s_on_batch(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    seq_step_t *s = arg;
    const Godwit__SetSequences *req = s->req;
    if (!r->ok) {
        char *why = pgconn_result_message(s->waited ? "setting the sequences"
                                                    : "waiting for the final position, then "
                                                      "setting the sequences", r);
        s_finish(s, why);
        free(why);
        return;
    }
    const char *lsn = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "lsn") : NULL;
    if (!lsn || !lsn_parse(lsn, &s->lsn)) {
        s_finish(s, "the server gave no valid WAL position");
        return;
    }
    uint64_t now = units_mono_us();
    if (!s->waited) {
        const char *w = pgconn_col(r->res, 0, "waited_us");
        uint64_t us = w && w[0] ? strtoull(w, NULL, 10) : 0;
        if (us > now - s->started_us)
            us = now - s->started_us;
        s->wait_ms10 = us / 100;
        s->started_us += us; /* "set sequences": the rest of the round trip */
        s->waited = true;
    }
    cJSON *outcomes = req->n_sequences ? cJSON_Parse(pgconn_col(r->res, 0, "sequences")) : NULL;
    if (req->n_sequences && (!cJSON_IsArray(outcomes) ||
                             (size_t)cJSON_GetArraySize(outcomes) != req->n_sequences)) {
        cJSON_Delete(outcomes);
        s_finish(s, "the server did not answer for every sequence");
        return;
    }
    for (size_t i = 0; i < req->n_sequences; i++) {
        char *why = NULL; /* json_agg(outcome ORDER BY o): the request's order */
        if (!s_setval_outcome(s, i, cJSON_GetArrayItem(outcomes, (int)i), &why)) {
            cJSON_Delete(outcomes);
            s_finish(s, why);
            free(why);
            return;
        }
    }
    cJSON_Delete(outcomes);
    s->checks_started_us = now;
    s->next = 0;
    s->batched = true;
    s_run(s);
}

/* The SQL of the wait on the server (1 ms polls of pg_stat_subscription,
 * live shared memory) until the subscription's apply worker has received
 * the source's stream up to the final position; it leaves how long it
 * waited in godwit.waited_us. A DO block takes no parameters: the name goes
 * in as a quoted literal, the position as text lsn_format wrote. NULL if
 * the name cannot be quoted. */
static char *s_wait_sql(seq_step_t *s)
{
    const Godwit__SetSequences *req = s->req;
    char pos[32];
    lsn_format(req->final_lsn, pos, sizeof pos);
    char *name = pgconn_escape_literal(s->run.conn[0], req->subscription);
    if (!name)
        return NULL;
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
        " PERFORM pg_catalog.pg_sleep(0.001); END LOOP;"
        " PERFORM pg_catalog.set_config('godwit.waited_us', (EXTRACT(epoch FROM"
        " pg_catalog.clock_timestamp() - t) * 1000000)::pg_catalog.int8::pg_catalog.text, true);"
        " END $godwit$;",
        name, pos, ms, pos, ms, name);
    free(name);
    return sql;
}

/* The SQL that sets every sequence, in one statement: each is set if it is
 * there; "out of scope" if it is not and neither is the table owning it;
 * NULL (an error) otherwise. The outcomes go to godwit.sequences as a JSON
 * array in the request's order. Appended to *sql, built in one buffer
 * sized first (hundreds of sequences: no copy per row). false with *why
 * (static) if a name cannot be quoted. */
static bool s_setval_sql(seq_step_t *s, char **sql, const char **why)
{
    const Godwit__SetSequences *req = s->req;
    pgconn_t *c = s->run.conn[0];
    static const char head[] =
        " SELECT pg_catalog.set_config('godwit.sequences', (SELECT"
        " pg_catalog.json_agg(CASE"
        " WHEN pg_catalog.to_regclass(v.s) IS NOT NULL THEN"
        " pg_catalog.setval(pg_catalog.to_regclass(v.s), v.l, v.c)::pg_catalog.text"
        " WHEN v.w <> '' AND pg_catalog.to_regclass(v.w) IS NULL THEN 'out of scope' END"
        " ORDER BY v.o) FROM (VALUES";
    static const char tail[] = ") v(o, s, l, c, w))::pg_catalog.text, true);";
    char **rows = xcalloc(req->n_sequences, sizeof *rows);
    size_t len = strlen(*sql) + sizeof head + sizeof tail;
    bool ok = true;
    for (size_t i = 0; ok && i < req->n_sequences; i++) {
        const Godwit__SequenceValue *v = req->sequences[i];
        bool owned = v->owner_table && v->owner_table[0];
        char *schema = pgconn_escape_identifier(c, v->schema);
        char *name = pgconn_escape_identifier(c, v->name);
        char *oschema = owned ? pgconn_escape_identifier(c, v->owner_schema) : NULL;
        char *otable = owned ? pgconn_escape_identifier(c, v->owner_table) : NULL;
        char *seq = schema && name ? xasprintf("%s.%s", schema, name) : NULL;
        char *own = !owned ? xstrdup("") : oschema && otable ? xasprintf("%s.%s", oschema, otable)
                                                             : NULL;
        char *seq_lit = seq ? pgconn_escape_literal(c, seq) : NULL;
        char *own_lit = own ? pgconn_escape_literal(c, own) : NULL;
        ok = seq_lit && own_lit;
        if (ok) {
            rows[i] = xasprintf("%s (%zu, %s::pg_catalog.text, %" PRId64 "::pg_catalog.int8,"
                                " %s, %s::pg_catalog.text)", i ? "," : "", i, seq_lit,
                                v->last_value, v->is_called ? "true" : "false", own_lit);
            len += strlen(rows[i]);
        }
        free(schema);
        free(name);
        free(oschema);
        free(otable);
        free(seq);
        free(own);
        free(seq_lit);
        free(own_lit);
    }
    char *out = NULL;
    if (ok) {
        out = xmalloc(len);
        char *p = stpcpy(stpcpy(out, *sql), head);
        for (size_t i = 0; i < req->n_sequences; i++)
            p = stpcpy(p, rows[i]);
        stpcpy(p, tail);
    }
    for (size_t i = 0; i < req->n_sequences; i++)
        free(rows[i]);
    free(rows);
    if (!ok) {
        *why = "cannot quote a sequence's name";
        return false;
    }
    free(*sql);
    *sql = out;
    return true;
}

/* Everything before the final check in one round trip (simple protocol:
 * the statements run one after the other in one implicit transaction;
 * the last one's row is the answer): the wait for the final position, the
 * setvals, then the target's WAL position, read after both. */
static void s_send_batch(seq_step_t *s)
{
    const Godwit__SetSequences *req = s->req;
    char *sql = s->waited ? xstrdup("") : s_wait_sql(s);
    if (!sql) {
        s_finish(s, "cannot quote the subscription's name");
        return;
    }
    const char *why = NULL;
    if (req->n_sequences && !s_setval_sql(s, &sql, &why)) {
        free(sql);
        s_finish(s, why);
        return;
    }
    char *all = xasprintf("%s SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text AS lsn%s%s",
                          sql, s->waited ? "" : ", pg_catalog.current_setting('godwit.waited_us') AS waited_us",
                          req->n_sequences ? ", pg_catalog.current_setting('godwit.sequences') AS sequences" : "");
    free(sql);
    int rc = pgconn_query_simple(s->run.conn[0], all, FREEZE_STATEMENT_TIMEOUT_MS + 1000, s_on_batch, s);
    free(all);
    if (rc != 0)
        s_finish(s, strerror(-rc));
}

static void s_run(seq_step_t *s)
{
    if (!s->batched) {
        s_send_batch(s);
        return;
    }
    /* Then the final check's rows (SetSequences.check), one table per
     * statement. */
    const Godwit__SetSequences *req = s->req;
    if (s->next >= req->n_check) {
        s_finish(s, NULL);
        return;
    }
    char cwhy[256];
    if (rowcheck_send(s->run.conn[0], req->check[s->next], FREEZE_STATEMENT_TIMEOUT_MS + 1000,
                      s_on_checked, s, cwhy, sizeof cwhy) != 0) {
        char *w = xasprintf("the final check: %s", cwhy);
        s_finish(s, w);
        free(w);
    }
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
    s->waited = !(req->final_lsn && req->subscription && req->subscription[0]);
    s->started_us = units_mono_us();
    s->connect_timeout_ms = (uint64_t)freezer_local(f)->connect_timeout_ms;
    steprun_start(&s->run, freezer_loop(f), label, done, arg, s_release, s_first);
    return &s->run.base;
}
