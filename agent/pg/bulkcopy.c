/*
 * bulkcopy: BulkCopy, the copy phase on the target (see bulkcopy.h and
 * step.h for the contracts). The stages, run one after the other:
 *
 *   1. the name is one godwit gives (step_godwit_name); connect to the
 *      local (target) database; if our subscription exists (with godwit's
 *      marker: one without is refused) the copy is done: say so
 *      (already_done).
 *   2. open every connection at once: one replication connection to the
 *      source (replication=database) and, per worker, a source and a target
 *      connection. Source connections go to the peer the ReplicationConn
 *      names, as the agent's config describes it (step_remote_conn: the
 *      peer's passfile or the source's pg_hba give the credentials, never a
 *      message); all connections are opened from keyword arrays.
 *   3. a slot of that name left by a copy that died is dropped: we start
 *      over (the tables are truncated in 6). Only a logical pgoutput slot
 *      of the source database, as godwit makes them; any other slot of that
 *      name fails the copy, untouched.
 *   4. CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT on the replication
 *      connection, which then does nothing else until the end: the
 *      exported snapshot lives as long as it stays idle.
 *   5. every worker's source connection imports the snapshot
 *      (REPEATABLE READ, SET TRANSACTION SNAPSHOT) before anything else
 *      happens; the first one lists the publication's tables as leaf
 *      partitions (a partitioned table is copied through its leaves, never
 *      through its root as well), with their columns and sizes.
 *   6. if 3 found a slot, the leaves are truncated on the target: preflight
 *      found them empty and the slot is made before any row is copied, so
 *      whatever they hold is our own partial copy. (Not otherwise: TRUNCATE
 *      waits for every lock on the tables.)
 *   7. the chunks go to the workers, biggest table first: a table larger
 *      than B_CHUNK_PAGES pages is cut into ctid page ranges (a TID range
 *      scan, 14 and later; on 13 one chunk per table), the others are one
 *      chunk each. A worker pipes COPY (SELECT ...) TO STDOUT on its source
 *      connection into COPY ... FROM STDIN on its target connection (binary
 *      when both servers have the same major version and every column type
 *      has binary I/O), batching rows into B_BATCH_BYTES puts; when the
 *      target's socket does not take a batch, reading from the source
 *      pauses until it drained. Each chunk commits on its own.
 *   6b/7b. big tables get their primary key back after the copy instead
 *      of loading into it (see "primary keys built after the copy").
 *   8. when every chunk is committed: our subscription on the slot, without
 *      copying (subscription.c's subscription_attach_start, the code that
 *      EnsureSubscription uses), then the replication connection closes.
 *
 * Any failure fails the whole step; run again, it starts over at 1.
 *
 * SQL: catalog lookups take parameters; replication commands, COPY and
 * TRUNCATE take none: identifiers go into their text only through
 * PQescapeIdentifier of the connection that sends them, the slot name and
 * the snapshot name only through PQescapeLiteral, and the page numbers of
 * the ctid ranges are ours. Every session runs with an empty search_path
 * and client_encoding UTF8 on both sides.
 *
 * What it owns: its runtime (steprun.h: the control connection to the
 * target and the replication connection, the stages, the label, the timer
 * that starts the first stage one loop turn after bulkcopy_start, so done
 * never runs inside it, and whose close frees everything), the workers'
 * connections (closed by the stop hook), the table and chunk lists, each
 * worker's batch buffer, copies of the request and the subscription
 * sub-step while it runs (cancelled by the stop hook).
 *
 * What it must never do: call done more than once or after step_cancel(),
 * block the loop, let the replication connection run anything after the
 * slot was created, or put a name into SQL text unquoted.
 */
#include "bulkcopy.h"
#include "log.h"
#include "pgconn.h"
#include "steprun.h"
#include "subscription.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B_MIN_SERVER_VERSION 130000
#define B_TID_RANGE_VERSION 140000     /* ctid ranges scan only their pages */
#define B_CHUNK_PAGES 8192             /* 64 MiB of 8 kB pages per chunk */
#define B_BATCH_BYTES (256 * 1024)     /* rows gathered into one put */
#define B_COPY_IDLE_MS (10 * 60000)    /* a COPY without progress this long fails */
#define B_MAX_WORKERS 64
#define B_KEY_DEFER_PAGES 1024         /* 8 MiB: tables whose primary key is built after the copy */
#define B_KEY_BUILD_MS (4 * 3600000)   /* building one primary key */

typedef struct b_step b_step_t;

/* The runtime's connections. */
enum { B_CTL = 0, B_REPL = 1 };

typedef enum { T_WAITING, T_COPYING, T_COPIED } b_tstate_t;

static const char *const s_tstate_names[] = { "waiting", "copying", "copied" };

/* One leaf table to copy. */
typedef struct {
    char *schema, *name;
    char **columns;            /* not generated, in attnum order */
    size_t n_columns;
    bool binary_ok;            /* every column type has send/receive */
    uint64_t pages;            /* on the source when listed */
    unsigned chunks, chunks_done;
    b_tstate_t state;
    uint64_t rows, bytes;               /* committed on the target */
    uint64_t rows_flight, bytes_flight; /* in chunks still copying */
    char *key_conname, *key_def; /* the primary key on the source, or NULL */
    bool key_dropped;          /* on the target, for the copy: built once the table is in */
    bool key_started;
} b_table_t;

typedef struct {
    size_t table;
    uint64_t from, to;         /* pages [from, to); to 0: to the end; both 0: whole table */
} b_chunk_t;

typedef struct {
    b_step_t *b;
    unsigned idx;
    pgconn_t *src, *dst;
    size_t chunk;              /* valid while busy */
    bool busy;
    char *buf;                 /* the batch being gathered */
    size_t len, cap;
    uint64_t rows_flight, bytes_flight;
    bool src_done;             /* the chunk's COPY TO ended well */
    bool src_paused;           /* waiting for the target to drain */
} b_worker_t;

struct b_step {
    /* first: conn[B_CTL] the target database (lookups, TRUNCATE),
     * conn[B_REPL] the source (replication=database), stages, label, what
     * (the statement in flight on either) */
    steprun_t run;

    /* copies of the request and of the local settings */
    step_local_t local;        /* its strings owned; peers, config_path borrowed (step.h) */
    char *database, *name, *publication;
    Godwit__ReplicationConn source; /* peer and dbname owned */
    unsigned n_workers;

    b_worker_t *workers;
    unsigned pending;          /* connections or imports outstanding */

    char *snapshot;            /* exported by the slot's creation */
    char *consistent_point;
    bool binary;               /* both servers have the same major version */
    bool tid_ranges;           /* the source scans ctid ranges */
    bool restarted;            /* a slot of an earlier copy was found: truncate first */

    b_table_t *tables;
    size_t n_tables;
    b_chunk_t *chunks;
    size_t n_chunks, next_chunk, chunks_done;

    /* Primary keys built after the copy: "ALTER TABLE ... ADD CONSTRAINT"
     * statements, each sent on a free worker's target connection. */
    char **key_sql;
    size_t n_key_sql, next_key_sql, keys_done;
    char **drop_sql;           /* the drops before the copy, one after the other */
    size_t n_drop_sql, next_drop_sql;
    unsigned keys_running;     /* primary keys being built during the copy */

    step_t *sub;               /* subscription_attach_start, while it runs */
    uint64_t copy_started;     /* uv_now() */
};

/* ---- finishing ---------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    for (size_t i = 0; i < b->n_tables; i++) {
        b_table_t *t = &b->tables[i];
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
    free(b);
}

/* The runtime's stop hook: what it does not own goes too. Closing the
 * connections rolls back the chunks in flight and releases the exported
 * snapshot. */
static void s_stop(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    step_cancel(&b->sub);
    if (b->workers) {
        for (unsigned i = 0; i < b->n_workers; i++) {
            pgconn_destroy(&b->workers[i].src);
            pgconn_destroy(&b->workers[i].dst);
        }
    }
}

/* A statement on a worker's connection failed (not the runtime's: what
 * describes it). */
static void s_fail_query(b_step_t *b, const char *what, const pgconn_result_t *r)
{
    char *why = pgconn_result_message(what, r);
    steprun_finish(&b->run, NULL, why);
    free(why);
}

/* After the last stage: s_attach, the last, ends the step itself. */
static void s_complete(steprun_t *run)
{
    steprun_failf(run, "no stage left (a bug)");
}

/* Sends one statement on run.conn[i] (B_CTL: parameters allowed; B_REPL:
 * simple protocol); cb gets b. */
static void s_query(b_step_t *b, int i, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    uint64_t deadline = (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS;
    if (i == B_REPL)
        steprun_query_simple(&b->run, i, what, sql, deadline, cb);
    else
        steprun_query(&b->run, i, what, sql, nparams, params, deadline, cb);
}

/* ident quoted for c, or NULL after failing the step. Caller frees. */
static char *s_ident(b_step_t *b, pgconn_t *c, const char *ident)
{
    char *q = pgconn_escape_identifier(c, ident);
    if (!q)
        steprun_failf(&b->run,
                      "cannot quote the name \"%s\" for SQL (not valid in the encoding, or the "
                      "connection is gone)",
                      ident);
    return q;
}

static char *s_literal(b_step_t *b, pgconn_t *c, const char *v)
{
    char *q = pgconn_escape_literal(c, v);
    if (!q)
        steprun_failf(&b->run,
                      "cannot quote \"%s\" for SQL (not valid in the encoding, or the connection "
                      "is gone)",
                      v);
    return q;
}

/* ---- connections -------------------------------------------------------- */

static bool s_set(const char *v)
{
    return v && v[0];
}

/* A connection to the target (source false) or the source, not yet
 * connecting, in UTF8. replication: a walsender for replication commands. */
static pgconn_t *s_conn(b_step_t *b, const char *name, bool source, bool replication,
                        const char *options)
{
    char *app = xasprintf("%s_copy", b->name);
    char *opts = xasprintf("%s -c client_encoding=UTF8", options);
    pgconn_t *c =
        source ? step_remote_conn(b->run.loop, name, &b->local, &b->source, replication, app, opts)
               : step_local_conn(b->run.loop, name, &b->local, b->database, app, opts);
    free(opts);
    free(app);
    return c;
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    b_step_t *b = arg;
    if (!ok) {
        steprun_failf(&b->run, "cannot connect (%s): %s", pgconn_name(c),
                      error ? error : "unknown error");
        return;
    }
    if (--b->pending == 0)
        steprun_next(&b->run);
}

static void s_connect_one(b_step_t *b, pgconn_t *c)
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
    b_step_t *b = (b_step_t *)run;
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
    b->run.conn[B_CTL] = s_conn(b, "copy control (target)", false, false, options);
    free(options);
    if (!b->run.conn[B_CTL]) {
        steprun_failf(&b->run, "invalid connection settings for the target");
        return;
    }
    s_connect_one(b, b->run.conn[B_CTL]);
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
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1) {
        const char *found = pgconn_col(r->res, 0, "marker");
        char *marker = step_marker(b->name);
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
    b_step_t *b = (b_step_t *)run;
    if (pgconn_server_version(b->run.conn[B_CTL]) < B_MIN_SERVER_VERSION) {
        steprun_failf(&b->run,
                      "the target runs PostgreSQL version number %d; godwit needs 13 or later",
                      pgconn_server_version(b->run.conn[B_CTL]));
        return;
    }
    const char *params[1] = { b->name };
    s_query(b, B_CTL, "looking up our subscription", s_sub_lookup_sql, 1, params, s_on_sub_lookup);
}

/* ---- 2: every other connection ------------------------------------------ */

static void s_connect_all(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    b->run.conn[B_REPL] = s_conn(b, "copy replication (source)", true, true, "-c search_path=");
    if (!b->run.conn[B_REPL]) {
        steprun_failf(&b->run, "invalid connection settings for the source");
        return;
    }
    /* The chunks' statements run as long as they need; idle_in_transaction
     * must not end a worker waiting for its next chunk. */
    const char *src_options = "-c statement_timeout=0 -c search_path= "
                              "-c idle_in_transaction_session_timeout=0";
    /* Each chunk commits alone and the subscription, created after them
     * all, commits last: its commit flushes theirs. As in PostgreSQL's own
     * table sync, triggers and foreign keys that exist on the target
     * already do not fire for copied rows (session_replication_role
     * replica, which takes the superuser the subscription needs anyway). */
    const char *dst_options = "-c statement_timeout=0 -c search_path= "
                              "-c synchronous_commit=off -c session_replication_role=replica";
    b->workers = xcalloc(b->n_workers, sizeof *b->workers);
    for (unsigned i = 0; i < b->n_workers; i++) {
        b_worker_t *w = &b->workers[i];
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
    s_connect_one(b, b->run.conn[B_REPL]);
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++) {
        s_connect_one(b, b->workers[i].src);
        if (!b->run.disposed)
            s_connect_one(b, b->workers[i].dst);
    }
    if (!b->run.disposed && --b->pending == 0)
        steprun_next(&b->run);
}

/* ---- 3: a slot left by a copy that died --------------------------------- */

static void s_on_slot_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    log_warn("step on %s: dropped slot \"%s\" left by a copy that did not finish; copying "
             "again from the start",
             b->run.label, b->name);
    steprun_next(&b->run);
}

static void s_on_slot_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) == 0) {
        steprun_next(&b->run);
        return;
    }
    const char *type = pgconn_col(r->res, 0, "slot_type");
    const char *plugin = pgconn_col(r->res, 0, "plugin");
    if (!type || strcmp(type, "logical") != 0 || !plugin || strcmp(plugin, "pgoutput") != 0 ||
        !pgconn_col_bool(r->res, 0, "here")) {
        steprun_failf(
            &b->run,
            "a replication slot \"%s\" exists on the source that godwit did not make (%s%s%s, "
            "database %s): a copy starts over only on a logical pgoutput slot of the "
            "source database; nothing was done",
            b->name, type ? type : "?", plugin ? ", plugin " : "", plugin ? plugin : "",
            pgconn_col(r->res, 0, "database") ? pgconn_col(r->res, 0, "database") : "none");
        return;
    }
    b->restarted = true;
    char *slot = s_ident(b, b->run.conn[B_REPL], b->name);
    if (!slot)
        return;
    /* WAIT: a walsender of the dead copy may still hold it for a moment. */
    char *sql = xasprintf("DROP_REPLICATION_SLOT %s WAIT", slot);
    s_query(b, B_REPL, "dropping the slot of an earlier copy", sql, 0, NULL, s_on_slot_dropped);
    free(sql);
    free(slot);
}

static void s_slot_lookup(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    int sv = pgconn_server_version(b->run.conn[B_REPL]);
    if (sv < B_MIN_SERVER_VERSION) {
        steprun_failf(&b->run,
                      "the source runs PostgreSQL version number %d; godwit needs 13 or later", sv);
        return;
    }
    int dv = pgconn_server_version(b->run.conn[B_CTL]);
    b->binary = sv / 10000 == dv / 10000;
    b->tid_ranges = sv >= B_TID_RANGE_VERSION;
    char *lit = s_literal(b, b->run.conn[B_REPL], b->name);
    if (!lit)
        return;
    char *sql = xasprintf("SELECT slot_type, plugin, database,"
                          " datoid IS NOT DISTINCT FROM (SELECT d.oid FROM pg_catalog.pg_database d"
                          "  WHERE d.datname = pg_catalog.current_database()) AS here"
                          " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
                          lit);
    s_query(b, B_REPL, "looking up our slot on the source", sql, 0, NULL, s_on_slot_lookup);
    free(sql);
    free(lit);
}

/* ---- 4: the slot and its snapshot --------------------------------------- */

static void s_on_slot_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    const char *snap = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "snapshot_name")
                                                        : NULL;
    const char *lsn = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "consistent_point")
                                                       : NULL;
    if (!snap || !lsn) {
        steprun_failf(&b->run, "creating the slot returned no snapshot");
        return;
    }
    b->snapshot = xstrdup(snap);
    b->consistent_point = xstrdup(lsn);
    log_info("step on %s: slot \"%s\" created on the source, consistent at %s, snapshot %s",
             b->run.label, b->name, lsn, snap);
    steprun_next(&b->run);
}

static void s_slot_create(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    char *slot = s_ident(b, b->run.conn[B_REPL], b->name);
    if (!slot)
        return;
    char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", slot);
    s_query(b, B_REPL, "creating our slot on the source", sql, 0, NULL, s_on_slot_created);
    free(sql);
    free(slot);
}

/* ---- 5: every worker in the snapshot ------------------------------------ */

static void s_on_imported(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
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
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    if (!r->ok) {
        char *why = pgconn_result_message("starting the snapshot's transaction", r);
        steprun_failf(&b->run, "worker %u: %s", w->idx, why);
        free(why);
        return;
    }
    char *lit = s_literal(b, w->src, b->snapshot);
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
    b_step_t *b = (b_step_t *)run;
    b->pending = b->n_workers;
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++) {
        b_worker_t *w = &b->workers[i];
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
static bool s_columns(b_table_t *t, const char *json)
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
    b_step_t *b = arg;
    if (!r->ok) {
        s_fail_query(b, "listing the publication's tables on the source", r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->tables = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->tables);
    for (int i = 0; i < n; i++) {
        b_table_t *t = &b->tables[b->n_tables++];
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
    log_info("step on %s: %zu table(s) to copy with %u worker(s), %s format", b->run.label,
             b->n_tables, b->n_workers, b->binary ? "binary" : "text");
    steprun_next(&b->run);
}

static void s_list(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    const char *params[1] = { b->publication };
    int rc = pgconn_query(b->workers[0].src, s_list_sql, 1, params,
                          (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                          s_on_list, b);
    if (rc != 0)
        steprun_failf(&b->run, "cannot list the tables: %s", strerror(-rc));
}

/* ---- 6: our own partial copy goes --------------------------------------- */

/* "schema"."name" quoted for c. Caller frees; NULL after failing the step. */
static char *s_qualified(b_step_t *b, pgconn_t *c, const b_table_t *t)
{
    char *s = s_ident(b, c, t->schema);
    if (!s)
        return NULL;
    char *n = s_ident(b, c, t->name);
    if (!n) {
        free(s);
        return NULL;
    }
    char *q = xasprintf("%s.%s", s, n);
    free(s);
    free(n);
    return q;
}

static void s_on_truncated(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    steprun_next(&b->run);
}

static void s_truncate(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    if (!b->restarted || b->n_tables == 0) {
        steprun_next(&b->run);
        return;
    }
    char *sql = xstrdup("TRUNCATE ONLY ");
    for (size_t i = 0; i < b->n_tables; i++) {
        char *q = s_qualified(b, b->run.conn[B_CTL], &b->tables[i]);
        if (!q) {
            free(sql);
            return;
        }
        char *grown = xasprintf("%s%s%s", sql, i ? ", " : "", q);
        free(q);
        free(sql);
        sql = grown;
    }
    s_query(b, B_CTL, "emptying the tables on the target", sql, 0, NULL, s_on_truncated);
    free(sql);
}

/* ---- 7: the chunks ------------------------------------------------------ */

static void s_worker_next(b_worker_t *w);
static void s_worker_idle(b_worker_t *w);

static void s_plan_chunks(b_step_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_tables; i++) {
        b_table_t *t = &b->tables[i];
        t->chunks = 1;
        /* Cut only when the last piece would not be tiny. */
        if (b->tid_ranges && t->pages >= B_CHUNK_PAGES + B_CHUNK_PAGES / 2)
            t->chunks = (unsigned)((t->pages + B_CHUNK_PAGES / 2) / B_CHUNK_PAGES);
        n += t->chunks;
    }
    b->chunks = xcalloc(n ? n : 1, sizeof *b->chunks);
    for (size_t i = 0; i < b->n_tables; i++) { /* biggest first */
        b_table_t *t = &b->tables[i];
        for (unsigned k = 0; k < t->chunks; k++) {
            b_chunk_t *ch = &b->chunks[b->n_chunks++];
            ch->table = i;
            ch->from = (uint64_t)k * B_CHUNK_PAGES;
            /* The last one is open-ended: the table may have grown since. */
            ch->to = k + 1 < t->chunks ? (uint64_t)(k + 1) * B_CHUNK_PAGES : 0;
        }
    }
}

/* The column list "(a, b)" quoted for c, "" for none. Caller frees; NULL
 * after failing the step. */
static char *s_column_list(b_step_t *b, pgconn_t *c, const b_table_t *t, bool parens)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < t->n_columns; i++) {
        char *q = s_ident(b, c, t->columns[i]);
        if (!q) {
            free(out);
            return NULL;
        }
        char *grown = xasprintf("%s%s%s", out, i ? ", " : "", q);
        free(q);
        free(out);
        out = grown;
    }
    if (parens && t->n_columns > 0) {
        char *p = xasprintf("(%s)", out);
        free(out);
        out = p;
    }
    return out;
}

static const char *s_table_label(const b_table_t *t, char *buf, size_t len)
{
    snprintf(buf, len, "\"%s\".\"%s\"", t->schema, t->name);
    return buf;
}

static void s_flight_done(b_worker_t *w, b_table_t *t)
{
    t->rows_flight -= w->rows_flight;
    t->bytes_flight -= w->bytes_flight;
    w->rows_flight = 0;
    w->bytes_flight = 0;
}

static void s_on_dst_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    b_chunk_t *ch = &b->chunks[w->chunk];
    b_table_t *t = &b->tables[ch->table];
    char tl[600];
    if (!r->ok) {
        char *why = pgconn_result_message("copying into the target", r);
        steprun_failf(&b->run, "table %s: %s", s_table_label(t, tl, sizeof tl), why);
        free(why);
        return;
    }
    if (!w->src_done) {
        steprun_failf(&b->run, "table %s: the target ended the COPY before the source did",
                      s_table_label(t, tl, sizeof tl));
        return;
    }
    const char *tuples = r->res ? PQcmdTuples(r->res) : "";
    t->rows += tuples[0] ? strtoull(tuples, NULL, 10) : w->rows_flight;
    t->bytes += w->bytes_flight;
    s_flight_done(w, t);
    w->busy = false;
    b->chunks_done++;
    if (++t->chunks_done == t->chunks) {
        t->state = T_COPIED;
        log_info("step on %s: table %s copied: %" PRIu64 " rows, %" PRIu64 " bytes", b->run.label,
                 s_table_label(t, tl, sizeof tl), t->rows, t->bytes);
    }
    s_worker_idle(w);
}

/* Ends the chunk's COPY on the target; its result commits the chunk. */
static void s_worker_end(b_worker_t *w)
{
    pgconn_copy_end(w->dst); /* -1: the failure reaches s_on_dst_done */
}

/* Puts the batch. false: stop reading from the source (the target must
 * drain first, or failed and its done follows). */
static bool s_worker_put(b_worker_t *w)
{
    if (w->len == 0)
        return true;
    int rc = pgconn_copy_put(w->dst, w->buf, w->len);
    w->len = 0;
    if (rc == 0)
        return true;
    w->src_paused = true;
    return false;
}

static bool s_on_row(pgconn_t *c, const char *data, size_t len, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : B_BATCH_BYTES;
        while (cap < w->len + len)
            cap *= 2;
        w->buf = xrealloc(w->buf, cap);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    b_table_t *t = &b->tables[b->chunks[w->chunk].table];
    w->rows_flight++;
    w->bytes_flight += len;
    t->rows_flight++;
    t->bytes_flight += len;
    if (w->len < B_BATCH_BYTES)
        return true;
    return s_worker_put(w);
}

static void s_on_src_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    if (!r->ok) {
        char tl[600];
        char *why = pgconn_result_message("copying from the source", r);
        steprun_failf(&b->run, "table %s: %s",
                      s_table_label(&b->tables[b->chunks[w->chunk].table], tl, sizeof tl), why);
        free(why);
        return;
    }
    w->src_done = true;
    if (s_worker_put(w))
        s_worker_end(w);
    /* else the drain callback ends it, or the target's failure follows */
}

static void s_on_dst_drain(pgconn_t *c, void *arg)
{
    b_worker_t *w = arg;
    if (w->src_done) {
        s_worker_end(w);
    } else if (w->src_paused) {
        w->src_paused = false;
        pgconn_copy_out_resume(w->src);
    }
}

static void s_on_dst_ready(pgconn_t *c, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    const b_chunk_t *ch = &b->chunks[w->chunk];
    const b_table_t *t = &b->tables[ch->table];
    char *q = s_qualified(b, w->src, t);
    if (!q)
        return;
    char *cols = s_column_list(b, w->src, t, false);
    if (!cols) {
        free(q);
        return;
    }
    char where[160] = "";
    if (ch->from > 0 && ch->to > 0)
        snprintf(where, sizeof where,
                 " WHERE ctid >= '(%" PRIu64 ",0)'::pg_catalog.tid"
                 " AND ctid < '(%" PRIu64 ",0)'::pg_catalog.tid",
                 ch->from, ch->to);
    else if (ch->from > 0)
        snprintf(where, sizeof where, " WHERE ctid >= '(%" PRIu64 ",0)'::pg_catalog.tid",
                 ch->from);
    else if (ch->to > 0)
        snprintf(where, sizeof where, " WHERE ctid < '(%" PRIu64 ",0)'::pg_catalog.tid", ch->to);
    char *sql = xasprintf("COPY (SELECT %s FROM ONLY %s%s) TO STDOUT%s", cols, q, where,
                          b->binary && t->binary_ok ? " (FORMAT binary)" : "");
    int rc = pgconn_copy_out(w->src, sql, B_COPY_IDLE_MS, s_on_row, s_on_src_done, w);
    free(sql);
    free(cols);
    free(q);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot start reading from the source: %s", w->idx,
                      strerror(-rc));
}

/* Takes the next chunk, if any: the target's COPY first, the source's
 * once the target takes data. */
static void s_worker_next(b_worker_t *w)
{
    b_step_t *b = w->b;
    if (b->next_chunk >= b->n_chunks)
        return; /* idle until the others are done */
    w->chunk = b->next_chunk++;
    w->busy = true;
    w->src_done = false;
    w->src_paused = false;
    w->len = 0;
    b_table_t *t = &b->tables[b->chunks[w->chunk].table];
    t->state = T_COPYING;
    char *q = s_qualified(b, w->dst, t);
    if (!q)
        return;
    char *cols = s_column_list(b, w->dst, t, true);
    if (!cols) {
        free(q);
        return;
    }
    char *sql = xasprintf("COPY %s %s FROM STDIN%s", q, cols,
                          b->binary && t->binary_ok ? " (FORMAT binary)" : "");
    int rc = pgconn_copy_in(w->dst, sql, B_COPY_IDLE_MS, s_on_dst_ready, s_on_dst_drain,
                            s_on_dst_done, w);
    free(sql);
    free(cols);
    free(q);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot start writing to the target: %s", w->idx,
                      strerror(-rc));
}

static void s_copy(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    s_plan_chunks(b);
    b->copy_started = uv_now(b->run.loop);
    if (b->n_chunks == 0) {
        steprun_next(&b->run);
        return;
    }
    log_info("step on %s: %zu chunk(s)", b->run.label, b->n_chunks);
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++)
        s_worker_next(&b->workers[i]);
}

/* ---- 6b, 7b: primary keys built after the copy --------------------------- */

/* Loading a big table into its primary key index costs a B-tree insert per
 * row; building the index afterwards sorts once, as pg_restore does. So
 * before the copy the primary key of each big leaf table is dropped on the
 * target when nothing depends on it (no foreign key points at the table,
 * the replica identity is the default one, which follows the primary key,
 * and it is not a partition's, which belongs to its parent's index), and
 * after the copy every copied table that has a primary key on the source
 * but none on the target gets it back with the source's definition
 * (pg_get_constraintdef), before the subscription, which needs it, exists.
 * A table whose key was dropped gets it as soon as its last chunk is in, by
 * the worker that copied that chunk, while the others copy on.
 * That last rule keeps no state: a copy that died after the drops puts the
 * keys back when it is run again. */

/* [{"schema":..,"name":..}] of the tables, all or only the big ones.
 * Caller frees. */
static char *s_tables_json(const b_step_t *b, bool big_only)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < b->n_tables; i++) {
        if (big_only && b->tables[i].pages < B_KEY_DEFER_PAGES)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", b->tables[i].schema);
        cJSON_AddStringToObject(o, "name", b->tables[i].name);
        cJSON_AddItemToArray(a, o);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}

/* The table named so, or NULL. */
static b_table_t *s_table_named(b_step_t *b, const char *schema, const char *name)
{
    for (size_t i = 0; i < b->n_tables; i++)
        if (strcmp(b->tables[i].schema, schema) == 0 && strcmp(b->tables[i].name, name) == 0)
            return &b->tables[i];
    return NULL;
}

#define B_REQ_TABLES                                                                           \
    " FROM pg_catalog.json_to_recordset($1::pg_catalog.json)"                                  \
    "  AS r(schema pg_catalog.text, name pg_catalog.text)"                                     \
    " JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema"                                  \
    " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.name"

/* Target: the primary keys that may be dropped for the copy. */
static const char s_keys_droppable_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name, con.conname" B_REQ_TABLES
    " JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'"
    " WHERE NOT c.relispartition AND c.relreplident = 'd'"
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f"
    "  WHERE f.contype = 'f' AND f.confrelid = c.oid)"
    " ORDER BY 1, 2";

/* Source: the primary keys of the copied tables. */
static const char s_keys_source_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name, con.conname,"
    " pg_catalog.pg_get_constraintdef(con.oid) AS def" B_REQ_TABLES
    " JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'"
    " ORDER BY 1, 2";

/* Target: which of them have no primary key. */
static const char s_keys_missing_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name" B_REQ_TABLES
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con"
    "  WHERE con.conrelid = c.oid AND con.contype = 'p')";

/* "ALTER TABLE ONLY "s"."n" <tail>" quoted for c; NULL after failing. */
static char *s_alter_sql(b_step_t *b, pgconn_t *c, const char *schema, const char *name,
                         const char *what, const char *conname, const char *def)
{
    b_table_t t = { .schema = (char *)schema, .name = (char *)name };
    char *q = s_qualified(b, c, &t);
    if (!q)
        return NULL;
    char *con = s_ident(b, c, conname);
    if (!con) {
        free(q);
        return NULL;
    }
    char *sql = xasprintf("ALTER TABLE ONLY %s %s CONSTRAINT %s%s%s", q, what, con,
                          def ? " " : "", def ? def : "");
    free(con);
    free(q);
    return sql;
}

static void s_drop_key_next(b_step_t *b);

static void s_on_key_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    s_drop_key_next(b);
}

static void s_drop_key_next(b_step_t *b)
{
    if (b->next_drop_sql >= b->n_drop_sql) {
        steprun_next(&b->run);
        return;
    }
    s_query(b, B_CTL, "dropping a primary key until the copy is done",
            b->drop_sql[b->next_drop_sql++], 0, NULL, s_on_key_dropped);
}

static void s_on_keys_droppable(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->drop_sql = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->drop_sql);
    for (int i = 0; i < n; i++) {
        char *sql = s_alter_sql(b, b->run.conn[B_CTL], pgconn_col_str(r->res, i, "schema"),
                                pgconn_col_str(r->res, i, "name"), "DROP",
                                pgconn_col_str(r->res, i, "conname"), NULL);
        if (!sql)
            return;
        log_info("step on %s: primary key of \"%s\".\"%s\" built after the copy", b->run.label,
                 pgconn_col_str(r->res, i, "schema"), pgconn_col_str(r->res, i, "name"));
        b->drop_sql[b->n_drop_sql++] = sql;
        b_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                     pgconn_col_str(r->res, i, "name"));
        if (t)
            t->key_dropped = true;
    }
    s_drop_key_next(b);
}

static void s_keys_drop(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    char *json = s_tables_json(b, true);
    const char *params[1] = { json };
    s_query(b, B_CTL, "looking up primary keys to build after the copy", s_keys_droppable_sql, 1,
            params, s_on_keys_droppable);
    free(json);
}

static void s_on_keys_early(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        s_fail_query(b, "reading the primary keys on the source", r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    for (int i = 0; i < n; i++) {
        b_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                     pgconn_col_str(r->res, i, "name"));
        if (t && !t->key_conname) {
            t->key_conname = xstrdup(pgconn_col_str(r->res, i, "conname"));
            t->key_def = xstrdup(pgconn_col_str(r->res, i, "def"));
        }
    }
    steprun_next(&b->run);
}

/* The source's primary keys of the copied tables: built again for the big
 * tables as soon as each is in, and for any that lacks its key at the end. */
static void s_keys_early(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    char *json = s_tables_json(b, false);
    const char *params[1] = { json };
    int rc = pgconn_query(b->workers[0].src, s_keys_source_sql, 1, params,
                          (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                          s_on_keys_early, b);
    free(json);
    if (rc != 0)
        steprun_failf(&b->run, "cannot read the primary keys on the source: %s", strerror(-rc));
}

static void s_on_early_key_built(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    if (!r->ok) {
        s_fail_query(b, "building a primary key after its table's copy", r);
        return;
    }
    b->keys_running--;
    s_worker_idle(w);
}

/* A worker between chunks: builds the primary key of a table that is in,
 * else takes the next chunk, else (the last to finish) moves on. */
static void s_worker_idle(b_worker_t *w)
{
    b_step_t *b = w->b;
    for (size_t i = 0; i < b->n_tables; i++) {
        b_table_t *t = &b->tables[i];
        if (!t->key_dropped || t->key_started || !t->key_conname ||
            t->chunks_done < t->chunks)
            continue;
        t->key_started = true;
        char *sql = s_alter_sql(b, w->dst, t->schema, t->name, "ADD", t->key_conname,
                                t->key_def);
        if (!sql)
            return;
        log_info("step on %s: building the primary key of \"%s\".\"%s\"", b->run.label, t->schema,
                 t->name);
        b->keys_running++;
        int rc = pgconn_query(w->dst, sql, 0, NULL, B_KEY_BUILD_MS, s_on_early_key_built, w);
        free(sql);
        if (rc != 0)
            steprun_failf(&b->run, "worker %u: cannot build a primary key: %s", w->idx,
                          strerror(-rc));
        return;
    }
    if (b->next_chunk < b->n_chunks) {
        s_worker_next(w);
        return;
    }
    if (b->chunks_done == b->n_chunks && b->keys_running == 0) {
        log_info("step on %s: every table copied in %.1f s", b->run.label,
                 (double)(uv_now(b->run.loop) - b->copy_started) / 1000.0);
        steprun_next(&b->run);
    }
}

static void s_key_build_next(b_worker_t *w);

static void s_on_key_built(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_worker_t *w = arg;
    b_step_t *b = w->b;
    if (!r->ok) {
        s_fail_query(b, "building a primary key after the copy", r);
        return;
    }
    if (++b->keys_done == b->n_key_sql) {
        log_info("step on %s: %zu primary key(s) built", b->run.label, b->n_key_sql);
        steprun_next(&b->run);
        return;
    }
    s_key_build_next(w);
}

/* The next primary key to build, on this worker's target connection. */
static void s_key_build_next(b_worker_t *w)
{
    b_step_t *b = w->b;
    if (b->next_key_sql >= b->n_key_sql)
        return;
    const char *sql = b->key_sql[b->next_key_sql++];
    int rc = pgconn_query(w->dst, sql, 0, NULL, B_KEY_BUILD_MS, s_on_key_built, w);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot build a primary key: %s", w->idx, strerror(-rc));
}

/* The target's tables that lack their primary key get the source's. */
static void s_on_keys_missing(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    b_step_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->key_sql = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->key_sql);
    for (int i = 0; i < n; i++) {
        const b_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                           pgconn_col_str(r->res, i, "name"));
        if (!t || !t->key_conname)
            continue;
        char *sql = s_alter_sql(b, b->workers[0].dst, t->schema, t->name, "ADD", t->key_conname,
                                t->key_def);
        if (!sql)
            return;
        b->key_sql[b->n_key_sql++] = sql;
    }
    if (b->n_key_sql == 0) {
        steprun_next(&b->run);
        return;
    }
    log_info("step on %s: building %zu primary key(s) missing on the target", b->run.label,
             b->n_key_sql);
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++)
        s_key_build_next(&b->workers[i]);
}

/* Every copied table with a primary key on the source (read in
 * s_keys_early) that has none on the target: one whose key a copy that
 * died had dropped. */
static void s_keys_restore(steprun_t *run)
{
    b_step_t *b = (b_step_t *)run;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < b->n_tables; i++) {
        if (!b->tables[i].key_conname)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", b->tables[i].schema);
        cJSON_AddStringToObject(o, "name", b->tables[i].name);
        cJSON_AddItemToArray(a, o);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    const char *params[1] = { text };
    s_query(b, B_CTL, "looking up the primary keys missing on the target", s_keys_missing_sql, 1,
            params, s_on_keys_missing);
    cJSON_free(text);
}

/* ---- 8: the subscription, on the slot ----------------------------------- */

static Godwit__SyncStatusResult *s_tables_result(const b_step_t *b)
{
    Godwit__SyncStatusResult *res = xmalloc(sizeof *res);
    godwit__sync_status_result__init(res);
    res->exists = true;
    res->enabled = true;
    res->tables = xcalloc(b->n_tables ? b->n_tables : 1, sizeof *res->tables);
    bool all = true;
    for (size_t i = 0; i < b->n_tables; i++) {
        const b_table_t *t = &b->tables[i];
        Godwit__TableSync *s = xmalloc(sizeof *s);
        godwit__table_sync__init(s);
        s->table = xmalloc(sizeof *s->table);
        godwit__table_ref__init(s->table);
        s->table->schema = xstrdup(t->schema);
        s->table->name = xstrdup(t->name);
        s->state = xstrdup(s_tstate_names[t->state]);
        s->rows_done = t->rows + t->rows_flight;
        s->bytes_done = t->bytes + t->bytes_flight;
        s->bytes_total = t->pages * 8192; /* the table's size on the source when listed */
        all = all && t->state == T_COPIED;
        res->tables[res->n_tables++] = s;
    }
    res->all_ready = all;
    return res;
}

static void s_on_attached(ProtobufCMessage *payload, const char *error, void *arg)
{
    b_step_t *b = arg;
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
    b_step_t *b = (b_step_t *)run;
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
    s_connect_ctl, s_sub_lookup, s_connect_all, s_slot_lookup, s_slot_create, s_import,
    s_list,        s_keys_early, s_truncate,    s_keys_drop,   s_copy,        s_keys_restore,
    s_attach,      NULL,
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
    b_step_t *b = xcalloc(1, sizeof *b);
    b->run.stages = s_stages;
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
    const b_step_t *b = (const b_step_t *)step;
    return database && name && strcmp(b->database, database) == 0 && strcmp(b->name, name) == 0;
}

Godwit__SyncStatusResult *bulkcopy_progress(const step_t *step)
{
    return s_tables_result((const b_step_t *)step);
}
