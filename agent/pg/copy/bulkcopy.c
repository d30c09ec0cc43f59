/*
 * bulkcopy: BulkCopy, the copy phase on the target (see bulkcopy.h and
 * step.h for the contracts). The stages, run one after the other:
 *
 *   1. the name is one godwit gives (step_godwit_name); connect to the
 *      local (target) database; if our subscription exists (with godwit's
 *      marker: one without is refused) the copy is done: say so
 *      (already_done).
 *   2. open every connection at once: per worker, a source and a target
 *      connection. Source connections go to the peer the ReplicationConn
 *      names, as the agent's config describes it (pgstep_remote_conn: the
 *      peer's passfile or the source's pg_hba give the credentials, never a
 *      message); all connections are opened from keyword arrays.
 *   3. every worker's source connection imports the snapshot the source
 *      agent holds for our slot (HoldSnapshot, snaphold.c: a local
 *      connection of the source keeps it alive, so it outlives ours)
 *      (REPEATABLE READ, SET TRANSACTION SNAPSHOT) before anything else
 *      happens; a snapshot that no longer exists ends the step well with
 *      snapshot_gone. The first worker lists the publication's tables as
 *      leaf partitions (a partitioned table is copied through its leaves,
 *      never through its root as well), with their columns and sizes. The
 *      tables the request lists as done (copied whole in this snapshot by
 *      an earlier run, every chunk committed and flushed) are not copied
 *      again.
 *   4. every other table that holds rows is truncated on the target:
 *      preflight found them empty and the slot is made before any row is
 *      copied, so whatever they hold is our own partial copy. (Only those:
 *      TRUNCATE waits for every lock on the tables.)
 *   5. the chunks go to the workers, biggest table first, each piping a
 *      COPY from the source into a COPY on the target, each chunk
 *      committing on its own (copyworker.c); a table whose chunks are all
 *      in is flushed (a synchronous commit after them) before it is
 *      reported copied, so that what the coordinator hands the next run as
 *      done survives a crash of the target.
 *   4b/5b. big tables get their primary key back after the copy instead
 *      of loading into it (copykeys.c).
 *   6. when every chunk is committed: our subscription on the slot, without
 *      copying (subscription.c's subscription_attach_start, the code that
 *      EnsureSubscription uses).
 *
 * Without a snapshot (the source agent found our slot without one: it
 * restarted, or the hold's lease ran out), the step only clears the way:
 * after 1, a slot of that name on the source is dropped through a
 * walsender connection (only a logical pgoutput slot of the source
 * database, as godwit makes them; any other fails the step, untouched),
 * and the step ends with slot_dropped. The next run gets a new snapshot.
 *
 * Any failure fails the whole step; run again, it starts over at 1.
 *
 * SQL: catalog lookups take parameters; replication commands, COPY,
 * TRUNCATE and the probes for rows take none: identifiers go into their
 * text only through
 * PQescapeIdentifier of the connection that sends them, the slot name and
 * the snapshot name only through PQescapeLiteral, and the page numbers of
 * the ctid ranges are ours. Every session runs with an empty search_path
 * and client_encoding UTF8 on both sides.
 *
 * The step's state and the helpers its modules share are in copystep.h.
 *
 * What it owns: its runtime (steprun.h: the control connection to the
 * target and, to clear a slot, the walsender, the stages, the label, the timer
 * that starts the first stage one loop turn after bulkcopy_start, so done
 * never runs inside it, and whose close frees everything), the workers'
 * connections (closed by the stop hook), the table and chunk lists, the
 * request's done tables, each
 * worker's batch buffer, copies of the request and the subscription
 * sub-step while it runs (cancelled by the stop hook).
 *
 * What it must never do: call done more than once or after step_cancel(),
 * block the loop, drop a slot while our subscription exists, or put a
 * name into SQL text unquoted.
 */
#include "bulkcopy.h"
#include "access_buf.h"
#include "copykeys.h"
#include "copystep.h"
#include "copyworker.h"
#include "log.h"
#include "pgconn.h"
#include "steprun.h"
#include "subscription.h"
#include "wire.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B_MIN_SERVER_VERSION 130000
#define B_TID_RANGE_VERSION 140000     /* ctid ranges scan only their pages */
#define B_MAX_WORKERS 64

static const char *const s_tstate_names[] = { "waiting", "copying", "copied" };

/* ---- finishing ---------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    for (size_t i = 0; i < b->n_tables; i++) {
        copystep_table_t *t = &b->tables[i];
        free(t->schema);
        free(t->name);
        for (size_t j = 0; j < t->n_columns; j++)
            free(t->columns[j]);
        free(t->columns);
        free(t->key_conname);
        free(t->key_def);
    }
    free(b->tables);
    free(b->chunks);
    for (size_t i = 0; i < b->n_key_sql; i++)
        free(b->key_sql[i]);
    free(b->key_sql);
    for (size_t i = 0; i < b->n_drop_sql; i++)
        free(b->drop_sql[i]);
    free(b->drop_sql);
    if (b->workers)
        for (unsigned i = 0; i < b->n_workers; i++)
            free(b->workers[i].buf);
    free(b->workers);
    free((char *)b->local.host);
    free((char *)b->local.user);
    free((char *)b->local.passfile);
    free((char *)b->local.data_directory);
    free((char *)b->local.bin_dir);
    free(b->database);
    free(b->name);
    free(b->publication);
    free(b->source.peer);
    free(b->source.dbname);
    free(b->snapshot);
    free(b->consistent_point);
    for (size_t i = 0; i < b->n_done; i++)
        godwit__table_sync__free_unpacked(b->done[i], NULL);
    free(b->done);
    free(b);
}

/* The runtime's stop hook: what it does not own goes too. Closing the
 * connections rolls back the chunks in flight and releases the exported
 * snapshot. */
static void s_stop(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    step_cancel(&b->sub);
    if (b->workers) {
        for (unsigned i = 0; i < b->n_workers; i++) {
            pgconn_destroy(&b->workers[i].src);
            pgconn_destroy(&b->workers[i].dst);
        }
    }
}

/* After the last stage: s_attach, the last, ends the step itself. */
static void s_complete(steprun_t *run)
{
    steprun_failf(run, "no stage left (a bug)");
}

/* ---- connections -------------------------------------------------------- */

static bool s_set(const char *v)
{
    return v && v[0];
}

/* A connection to the target (source false) or the source, not yet
 * connecting, in UTF8. replication: a walsender for replication commands. */
static pgconn_t *s_conn(copystep_t *b, const char *name, bool source, bool replication,
                        const char *options)
{
    char *app = xasprintf("%s_copy", b->name);
    char *opts = xasprintf("%s -c client_encoding=UTF8", options);
    pgconn_t *c =
        source ? pgstep_remote_conn(b->run.loop, name, &b->local, &b->source, replication, app,
                                    opts)
               : pgstep_local_conn(b->run.loop, name, &b->local, b->database, app, opts);
    free(opts);
    free(app);
    return c;
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    copystep_t *b = arg;
    if (!ok) {
        steprun_failf(&b->run, "cannot connect (%s): %s", pgconn_name(c),
                      error ? error : "unknown error");
        return;
    }
    if (--b->pending == 0)
        steprun_next(&b->run);
}

static void s_connect_one(copystep_t *b, pgconn_t *c)
{
    b->pending++;
    int rc = pgconn_connect(c, (uint64_t)b->local.connect_timeout_ms, s_on_connect, b);
    if (rc != 0) {
        b->pending--;
        steprun_failf(&b->run, "cannot start connecting (%s): %s", pgconn_name(c), strerror(-rc));
    }
}

static void s_connect_ctl(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    if (!step_godwit_name(b->name)) {
        steprun_failf(&b->run,
                      "\"%s\" is not a name godwit gives its slots and subscriptions (godwit_ and "
                      "a-z, 0-9, _): a copy drops a slot of its name left on the source and "
                      "truncates the tables; nothing was done",
                      b->name);
        return;
    }
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path=",
                              b->local.statement_timeout_ms);
    b->run.conn[COPYSTEP_CTL] = s_conn(b, "copy control (target)", false, false, options);
    free(options);
    if (!b->run.conn[COPYSTEP_CTL]) {
        steprun_failf(&b->run, "invalid connection settings for the target");
        return;
    }
    s_connect_one(b, b->run.conn[COPYSTEP_CTL]);
}

/* ---- 1: done already? --------------------------------------------------- */

static const char s_sub_lookup_sql[] =
    "SELECT s.subenabled, COALESCE(pg_catalog.obj_description(s.oid,"
    " 'pg_subscription'), pg_catalog.shobj_description(s.oid, 'pg_subscription')) AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d"
    "  WHERE d.datname = pg_catalog.current_database()) AND s.subname = $1";

static void s_on_sub_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1) {
        const char *found = pgconn_col(r->res, 0, "marker");
        char *marker = pgstep_marker(b->name);
        bool ours = found && strcmp(found, marker) == 0;
        free(marker);
        if (!ours) {
            steprun_failf(&b->run,
                          "subscription \"%s\" exists without godwit's marker: godwit did not "
                          "create it (see DropObjects in docs/protocol.md for one an older godwit "
                          "made); nothing was done",
                          b->name);
            return;
        }
        log_info("step on %s: our subscription exists: the copy is done", b->run.label);
        Godwit__BulkCopyResult *res = xmalloc(sizeof *res);
        godwit__bulk_copy_result__init(res);
        res->already_done = true;
        res->consistent_point = xstrdup("");
        steprun_finish(&b->run, &res->base, NULL);
        return;
    }
    steprun_next(&b->run);
}

static void s_sub_lookup(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    if (pgconn_server_version(b->run.conn[COPYSTEP_CTL]) < B_MIN_SERVER_VERSION) {
        steprun_failf(&b->run,
                      "the target runs PostgreSQL version number %d; godwit needs 13 or later",
                      pgconn_server_version(b->run.conn[COPYSTEP_CTL]));
        return;
    }
    const char *params[1] = { b->name };
    copystep_query(b, COPYSTEP_CTL, "looking up our subscription", s_sub_lookup_sql, 1, params,
                   s_on_sub_lookup);
}

/* ---- 2: every other connection ------------------------------------------ */

static void s_connect_all(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    /* The chunks' statements run as long as they need; idle_in_transaction
     * must not end a worker waiting for its next chunk. */
    const char *src_options = "-c statement_timeout=0 -c search_path= "
                              "-c idle_in_transaction_session_timeout=0";
    /* Each chunk commits alone and asynchronously; a table's flush (a
     * synchronous commit on the control connection) makes its chunks
     * durable, and the subscription, created after them all, commits last.
     * As in PostgreSQL's own table sync, triggers and foreign keys that
     * exist on the target already do not fire for copied rows
     * (session_replication_role replica, which takes the superuser the
     * subscription needs anyway). */
    const char *dst_options = "-c statement_timeout=0 -c search_path= "
                              "-c synchronous_commit=off -c session_replication_role=replica";
    b->workers = xcalloc(b->n_workers, sizeof *b->workers);
    for (unsigned i = 0; i < b->n_workers; i++) {
        copystep_worker_t *w = &b->workers[i];
        w->b = b;
        w->idx = i;
        char name[64];
        snprintf(name, sizeof name, "copy worker %u (source)", i);
        w->src = s_conn(b, name, true, false, src_options);
        snprintf(name, sizeof name, "copy worker %u (target)", i);
        w->dst = s_conn(b, name, false, false, dst_options);
        if (!w->src || !w->dst) {
            steprun_failf(&b->run, "invalid connection settings for the copy workers");
            return;
        }
    }
    b->pending = 1; /* until every connect has started */
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++) {
        s_connect_one(b, b->workers[i].src);
        if (!b->run.disposed)
            s_connect_one(b, b->workers[i].dst);
    }
    if (!b->run.disposed && --b->pending == 0)
        steprun_next(&b->run);
}

/* Without a snapshot: the walsender that drops a stale slot. */
static void s_connect_repl(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    b->run.conn[COPYSTEP_REPL] =
        s_conn(b, "copy replication (source)", true, true, "-c search_path=");
    if (!b->run.conn[COPYSTEP_REPL]) {
        steprun_failf(&b->run, "invalid connection settings for the source");
        return;
    }
    s_connect_one(b, b->run.conn[COPYSTEP_REPL]);
}

/* The servers' versions: the format and the chunking. */
static void s_versions(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    int sv = pgconn_server_version(b->workers[0].src);
    if (sv < B_MIN_SERVER_VERSION) {
        steprun_failf(&b->run,
                      "the source runs PostgreSQL version number %d; godwit needs 13 or later", sv);
        return;
    }
    int dv = pgconn_server_version(b->run.conn[COPYSTEP_CTL]);
    b->binary = sv / 10000 == dv / 10000;
    b->tid_ranges = sv >= B_TID_RANGE_VERSION;
    steprun_next(&b->run);
}

/* ---- without a snapshot: a stale slot ----------------------------------- */

static void s_cleared(copystep_t *b, bool dropped)
{
    Godwit__BulkCopyResult *res = xmalloc(sizeof *res);
    godwit__bulk_copy_result__init(res);
    res->slot_dropped = dropped;
    res->consistent_point = xstrdup("");
    steprun_finish(&b->run, &res->base, NULL);
}

static void s_on_slot_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    log_warn("step on %s: dropped slot \"%s\", left on the source without its snapshot; the "
             "copy starts again from the first table",
             b->run.label, b->name);
    s_cleared(b, true);
}

static void s_on_slot_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) == 0) {
        s_cleared(b, false);
        return;
    }
    char *what = NULL;
    if (!pgstep_slot_ours(r->res, &what)) {
        steprun_failf(&b->run,
                      "a replication slot \"%s\" exists on the source that godwit did not make "
                      "(%s): a copy starts over only on a logical pgoutput slot of the source "
                      "database; nothing was done",
                      b->name, what);
        free(what);
        return;
    }
    char *slot = copystep_ident(b, b->run.conn[COPYSTEP_REPL], b->name);
    if (!slot)
        return;
    /* WAIT: a walsender of the dead copy may still hold it for a moment. */
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s WAIT", slot);
    copystep_query(b, COPYSTEP_REPL, "dropping the slot left without its snapshot", sql, 0, NULL,
                   s_on_slot_dropped);
    free(sql);
    free(slot);
}

static void s_slot_lookup(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    char *sql = pgstep_slot_lookup_sql(b->run.conn[COPYSTEP_REPL], b->name);
    if (!sql) {
        steprun_failf(&b->run, "cannot quote \"%s\" for SQL", b->name);
        return;
    }
    copystep_query(b, COPYSTEP_REPL, "looking up our slot on the source", sql, 0, NULL,
                   s_on_slot_lookup);
    free(sql);
}

/* ---- 5: every worker in the snapshot ------------------------------------ */

static void s_on_imported(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    if (!r->ok && strcmp(r->sqlstate, "22023") == 0) {
        /* invalid snapshot identifier: its hold is over (the source's
         * agent or server restarted); the coordinator gets a new one. The
         * step ends here: no other worker's answer follows. */
        log_warn("step on %s: the snapshot %s no longer exists on the source; nothing was copied",
                 b->run.label, b->snapshot);
        Godwit__BulkCopyResult *res = xmalloc(sizeof *res);
        godwit__bulk_copy_result__init(res);
        res->snapshot_gone = true;
        res->consistent_point = xstrdup("");
        steprun_finish(&b->run, &res->base, NULL);
        return;
    }
    if (!r->ok) {
        char *why = pgconn_result_message("importing the slot's snapshot", r);
        steprun_failf(&b->run, "worker %u: %s", w->idx, why);
        free(why);
        return;
    }
    if (--b->pending == 0) {
        log_debug("step on %s: %u worker(s) in the snapshot", b->run.label, b->n_workers);
        steprun_next(&b->run);
    }
}

static void s_on_begun(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    if (!r->ok) {
        char *why = pgconn_result_message("starting the snapshot's transaction", r);
        steprun_failf(&b->run, "worker %u: %s", w->idx, why);
        free(why);
        return;
    }
    char *lit = copystep_literal(b, w->src, b->snapshot);
    if (!lit)
        return;
    char *sql = xasprintf("SET TRANSACTION SNAPSHOT %s", lit);
    int rc = pgconn_query(w->src, sql, 0, NULL,
                          (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                          s_on_imported, w);
    free(sql);
    free(lit);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot import the snapshot: %s", w->idx, strerror(-rc));
}

static void s_import(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    b->pending = b->n_workers;
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++) {
        copystep_worker_t *w = &b->workers[i];
        int rc = pgconn_query(w->src, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                              (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                              s_on_begun, w);
        if (rc != 0)
            steprun_failf(&b->run, "worker %u: cannot start its transaction: %s", i, strerror(-rc));
    }
}

/* ---- 5b: the tables, in the snapshot ------------------------------------ */

/* $1 the publication. Its tables and the leaf partitions of its
 * partitioned ones (pg_partition_tree gives nothing for a plain table), once
 * each; the plain ones (relkind r) only, biggest first. The view is read
 * once (MATERIALIZED): joined as it is, the planner may run the function
 * behind it once per pg_class row. */
static const char s_list_sql[] =
    "WITH pt AS MATERIALIZED (SELECT pt.schemaname, pt.tablename"
    "  FROM pg_catalog.pg_publication_tables pt WHERE pt.pubname = $1),"
    " pub AS (SELECT c.oid FROM pt"
    "  JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname"
    "  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename),"
    " leaf AS (SELECT pub.oid AS relid FROM pub UNION SELECT t.relid FROM pub,"
    "  LATERAL pg_catalog.pg_partition_tree(pub.oid) t WHERE t.isleaf) "
    "SELECT n.nspname AS schema, c.relname AS name,"
    " pg_catalog.pg_relation_size(c.oid)"
    "  / pg_catalog.current_setting('block_size')::pg_catalog.int8 AS pages,"
    " (SELECT pg_catalog.json_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    "  AND a.attgenerated = '') AS columns,"
    " (SELECT pg_catalog.bool_and(ty.typsend <> 0 AND ty.typreceive <> 0)"
    "  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid"
    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    "  AND a.attgenerated = '') AS binary_ok"
    " FROM leaf JOIN pg_catalog.pg_class c ON c.oid = leaf.relid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r'"
    " ORDER BY pages DESC, schema, name";

/* The column names from their JSON array into t (false if malformed). */
static bool s_columns(copystep_table_t *t, const char *json)
{
    if (!json) /* no columns at all */
        return true;
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return false;
    }
    int n = cJSON_GetArraySize(a);
    t->columns = xcalloc(n > 0 ? (size_t)n : 1, sizeof *t->columns);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(e)) {
            cJSON_Delete(a);
            return false;
        }
        t->columns[t->n_columns++] = xstrdup(e->valuestring);
    }
    cJSON_Delete(a);
    return true;
}

static void s_on_list(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        copystep_fail_query(b, "listing the publication's tables on the source", r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->tables = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->tables);
    for (int i = 0; i < n; i++) {
        copystep_table_t *t = &b->tables[b->n_tables++];
        t->schema = xstrdup(pgconn_col_str(r->res, i, "schema"));
        t->name = xstrdup(pgconn_col_str(r->res, i, "name"));
        t->pages = pgconn_col_u64(r->res, i, "pages");
        const char *bin = pgconn_col(r->res, i, "binary_ok");
        t->binary_ok = !bin || bin[0] == 't';
        if (!s_columns(t, pgconn_col(r->res, i, "columns"))) {
            steprun_failf(&b->run, "cannot read the columns of \"%s\".\"%s\"", t->schema, t->name);
            return;
        }
    }
    size_t done = 0;
    for (size_t i = 0; i < b->n_done; i++) {
        const Godwit__TableSync *d = b->done[i];
        for (size_t k = 0; d->table && k < b->n_tables; k++) {
            copystep_table_t *t = &b->tables[k];
            if (t->done_before || strcmp(t->schema, d->table->schema) != 0 ||
                strcmp(t->name, d->table->name) != 0)
                continue;
            t->done_before = true;
            t->durable = true;
            t->state = COPYSTEP_COPIED;
            t->rows = d->rows_done;
            t->bytes = d->bytes_done;
            done++;
        }
    }
    log_info("step on %s: %zu table(s) to copy with %u worker(s), %s format, %zu of them copied "
             "whole already in this snapshot",
             b->run.label, b->n_tables, b->n_workers, b->binary ? "binary" : "text", done);
    steprun_next(&b->run);
}

static void s_list(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    const char *params[1] = { b->publication };
    int rc = pgconn_query(b->workers[0].src, s_list_sql, 1, params,
                          (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                          s_on_list, b);
    if (rc != 0)
        steprun_failf(&b->run, "cannot list the tables: %s", strerror(-rc));
}

/* ---- 4: our own partial copy goes --------------------------------------- */

static void s_on_truncated(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    steprun_next(&b->run);
}

/* The probe's answer: the indexes of the tables to copy that hold rows. */
static void s_on_probed(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    if (n == 0) {
        steprun_next(&b->run);
        return;
    }
    access_buf_t sql = { 0 };
    access_buf_addf(&sql, "TRUNCATE ONLY ");
    for (int i = 0; i < n; i++) {
        uint64_t k = pgconn_col_u64(r->res, i, "k");
        char *q = k < b->n_tables
                      ? copystep_qualified(b, b->run.conn[COPYSTEP_CTL], &b->tables[k])
                      : NULL;
        if (!q) {
            if (k >= b->n_tables)
                steprun_failf(&b->run, "the probe for rows answered table %" PRIu64 " (a bug)", k);
            free(access_buf_take(&sql));
            return;
        }
        access_buf_addf(&sql, "%s%s", i ? ", " : "", q);
        free(q);
    }
    log_info("step on %s: emptying %d table(s) that hold rows of an earlier run", b->run.label, n);
    char *text = access_buf_take(&sql);
    copystep_query(b, COPYSTEP_CTL, "emptying the tables on the target", text, 0, NULL,
                   s_on_truncated);
    free(text);
}

/* Which of the tables to copy hold rows: one statement, one EXISTS per
 * table. */
static void s_truncate(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    access_buf_t sql = { 0 };
    size_t n = 0;
    for (size_t i = 0; i < b->n_tables; i++) {
        if (b->tables[i].done_before)
            continue;
        char *t = copystep_qualified(b, b->run.conn[COPYSTEP_CTL], &b->tables[i]);
        if (!t) {
            free(access_buf_take(&sql));
            return;
        }
        access_buf_addf(&sql, "%sSELECT %zu AS k WHERE EXISTS (SELECT FROM ONLY %s)",
                        n++ ? " UNION ALL " : "", i, t);
        free(t);
    }
    char *text = access_buf_take(&sql);
    if (n == 0)
        steprun_next(&b->run);
    else
        copystep_query(b, COPYSTEP_CTL, "looking for rows of an earlier run on the target", text,
                       0, NULL, s_on_probed);
    free(text);
}

/* ---- 8: the subscription, on the slot ----------------------------------- */

static Godwit__SyncStatusResult *s_tables_result(const copystep_t *b)
{
    Godwit__SyncStatusResult *res = xmalloc(sizeof *res);
    godwit__sync_status_result__init(res);
    res->exists = true;
    res->enabled = true;
    res->tables = xcalloc(b->n_tables ? b->n_tables : 1, sizeof *res->tables);
    bool all = true;
    for (size_t i = 0; i < b->n_tables; i++) {
        const copystep_table_t *t = &b->tables[i];
        Godwit__TableSync *s = xmalloc(sizeof *s);
        godwit__table_sync__init(s);
        s->table = xmalloc(sizeof *s->table);
        godwit__table_ref__init(s->table);
        s->table->schema = xstrdup(t->schema);
        s->table->name = xstrdup(t->name);
        /* copied only once flushed: what the next run may take as done */
        s->state = xstrdup(s_tstate_names[t->state == COPYSTEP_COPIED && !t->durable
                                              ? COPYSTEP_COPYING
                                              : t->state]);
        s->rows_done = t->rows + t->rows_flight;
        s->bytes_done = t->bytes + t->bytes_flight;
        s->bytes_total = t->pages * 8192; /* the table's size on the source when listed */
        all = all && t->state == COPYSTEP_COPIED && t->durable;
        res->tables[res->n_tables++] = s;
    }
    res->all_ready = all;
    return res;
}

static void s_on_attached(ProtobufCMessage *payload, const char *error, void *arg)
{
    copystep_t *b = arg;
    b->sub = NULL; /* it has ended */
    if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    if (error) {
        steprun_failf(&b->run, "creating the subscription on the slot: %s", error);
        return;
    }
    log_info("step on %s: subscription created on slot \"%s\"; streaming starts at %s",
             b->run.label, b->name, b->consistent_point);
    Godwit__BulkCopyResult *res = xmalloc(sizeof *res);
    godwit__bulk_copy_result__init(res);
    res->copied = s_tables_result(b);
    res->consistent_point = xstrdup(b->consistent_point);
    steprun_finish(&b->run, &res->base, NULL); /* closes the replication connection */
}

static void s_attach(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    /* The workers' transactions are over; the snapshot is not needed. */
    for (unsigned i = 0; i < b->n_workers; i++) {
        pgconn_destroy(&b->workers[i].src);
        pgconn_destroy(&b->workers[i].dst);
    }
    Godwit__EnsureSubscription req = GODWIT__ENSURE_SUBSCRIPTION__INIT;
    req.database = b->database;
    req.name = b->name;
    req.source = &b->source;
    req.publication = b->publication;
    b->sub = subscription_attach_start(b->run.loop, &b->local, &req, s_on_attached, b);
    if (!b->sub)
        steprun_failf(&b->run, "invalid subscription request");
}

static const steprun_fn s_stages[] = {
    s_connect_ctl, s_sub_lookup, s_connect_all, s_versions, s_import, s_list, copykeys_early,
    s_truncate, copykeys_drop, copyworker_copy, copykeys_restore, s_attach, NULL,
};

/* Without a snapshot. */
static const steprun_fn s_clear_stages[] = {
    s_connect_ctl, s_sub_lookup, s_connect_repl, s_slot_lookup, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static char *s_dup(const char *v)
{
    return xstrdup(v ? v : "");
}

step_t *bulkcopy_start(uv_loop_t *loop, const step_local_t *local, const Godwit__BulkCopy *req,
                       step_done_cb done, void *arg)
{
    if (!loop || !local || !req || !done || !s_set(req->database) || !s_set(req->name) ||
        !s_set(req->publication) || !req->source)
        return NULL;
    char *why = NULL;
    if (!step_peer(local, req->source, &why)) {
        log_warn("copy \"%s\": %s", req->name, why);
        free(why);
        return NULL;
    }
    const Godwit__ReplicationConn *src = req->source;
    if (!s_set(local->host) || local->port < 1 || local->port > 65535 ||
        local->connect_timeout_ms <= 0 || local->connect_timeout_ms > INT32_MAX ||
        local->statement_timeout_ms <= 0 || local->statement_timeout_ms > INT32_MAX)
        return NULL;
    copystep_t *b = xcalloc(1, sizeof *b);
    b->run.stages = s_set(req->snapshot) ? s_stages : s_clear_stages;
    if (s_set(req->snapshot)) {
        b->snapshot = xstrdup(req->snapshot);
        b->consistent_point = s_dup(req->consistent_point);
        b->done = xcalloc(req->n_done ? req->n_done : 1, sizeof *b->done);
        for (size_t i = 0; i < req->n_done; i++)
            if (req->done[i] && req->done[i]->table)
                b->done[b->n_done++] = wire_copy(req->done[i]);
    }
    b->run.complete = s_complete;
    b->run.stop = s_stop;
    b->local = *local;
    b->local.host = s_dup(local->host);
    b->local.user = local->user ? s_dup(local->user) : NULL;
    b->local.passfile = local->passfile ? s_dup(local->passfile) : NULL;
    b->local.data_directory = s_dup(local->data_directory);
    b->local.bin_dir = s_dup(local->bin_dir);
    b->database = xstrdup(req->database);
    b->name = xstrdup(req->name);
    b->publication = xstrdup(req->publication);
    godwit__replication_conn__init(&b->source);
    b->source.peer = xstrdup(src->peer);
    b->source.dbname = xstrdup(src->dbname);
    b->n_workers = req->parallelism < 1 ? 1
                   : req->parallelism > B_MAX_WORKERS ? B_MAX_WORKERS
                                                      : req->parallelism;
    steprun_start(&b->run, loop,
                  xasprintf("copy \"%s\" in database \"%s\"", req->name, req->database), done, arg,
                  s_release, steprun_next);
    return &b->run.base;
}

bool bulkcopy_is(const step_t *step, const char *database, const char *name)
{
    /* every step runs on the runtime (step.h), so step is a steprun_t;
     * a copy is the one whose release hook is ours */
    if (!step || ((const steprun_t *)step)->release != s_release)
        return false;
    const copystep_t *b = (const copystep_t *)step;
    return database && name && strcmp(b->database, database) == 0 && strcmp(b->name, name) == 0;
}

Godwit__SyncStatusResult *bulkcopy_progress(const step_t *step)
{
    return s_tables_result((const copystep_t *)step);
}
