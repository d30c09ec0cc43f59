/*
 * verify_table: the target agent's VerifyTable step (phase 6): one table's
 * rows compared, source against target, while the application writes and
 * replication runs, both sides as of one replication position. See the
 * VerifyTable message in proto/godwit.proto for the contract and
 * docs/migrate.md#verify for the reasoning and the figures.
 *
 * Three connections: `src` to the source database (the replication role's
 * credentials; it can read every published table, and pg_logical_slot_peek_*
 * needs the REPLICATION attribute it has), `repl`, a replication connection
 * to the same database, and `dst` to the local target database. src and dst
 * read only, in REPEATABLE READ snapshots, with the settings that change how
 * a value prints pinned and client_encoding UTF8, so both sides and the WAL
 * decoded on src print a row the same way.
 *
 * Per batch of at most batch_rows rows in key order (one batch for a
 * multiset):
 *   1. repl: CREATE_REPLICATION_SLOT <verify slot> LOGICAL pgoutput
 *      EXPORT_SNAPSHOT. The exported snapshot shows exactly the
 *      transactions that committed before the slot's consistent point X;
 *      the slot decodes every one after. Creating it waits for the
 *      transactions running on the source to end: bounded by slot_wait_ms,
 *      after which our walsender is terminated and the step fails naming
 *      the oldest transactions that held it (an idle-in-transaction
 *      session, typically).
 *   2. src: a REPEATABLE READ transaction importing that snapshot.
 *   3. wait until the target has applied X (our subscription's origin
 *      progress on the target, or our subscription slot's confirmed
 *      position on the source when the source commits nothing published;
 *      a physical standby, req->standby: its replay position).
 *   4. dst: a REPEATABLE READ transaction whose first statement reads the
 *      origin progress: the snapshot is taken before it runs, so what it
 *      reads, Y, bounds every source commit the snapshot shows (apply
 *      advances the origin before its commit becomes visible). Y is at
 *      least X. A standby the same with its replay position: it shows
 *      exactly the commits it has replayed, in WAL order, each visible
 *      before the replay position passes its record.
 *   5. src: the slot's changes up to Y (pg_logical_slot_peek_binary_changes,
 *      pgoutput protocol 1, our publication), parsed (pgoutput.c) into the
 *      table's window (vwindow.c); then repl drops the slot. The slot lives
 *      only from 1 to here (window_ms): WAL it holds back is that of the
 *      replication lag, not of the comparison.
 *   6. both sides sum chunks of chunk_rows rows in key order at once; the
 *      source's chunks whose target twin differs are summed again on the
 *      target by the source's chunk bounds (width_bucket); the rows of those
 *      still differing are read on both sides as (key, hash). A key whose
 *      hashes differ is judged against the window: consistent when the
 *      target's row is the source's at X or a version the window gave it
 *      (its unchanged TOASTed values filled in from the version before,
 *      the source's row at X read for it when needed); otherwise different,
 *      with its key. Never "in flux": both snapshots hold still.
 *   7. both transactions end; the next batch starts at the first key the
 *      source's pass did not reach.
 * The key: the replica identity index (REPLICA IDENTITY USING INDEX), else
 * the primary key, else a unique index on NOT NULL columns; without one the
 * table is a multiset, compared by 256 buckets of row hashes (count and two
 * sums), explained by a prefix of the window's transactions
 * (vwindow_multiset_match), and when none explains it the rows of the
 * buckets that differ are read and the rows that differ reported by value.
 * A partitioned table is compared through its root, as our publication
 * publishes it (publish_via_partition_root).
 *
 * SQL: names go into the text only through PQescapeIdentifier, types only
 * as the server's own format_type(), values as parameters; the replication
 * commands and SET TRANSACTION SNAPSHOT take no parameters: the slot's name
 * through PQescapeIdentifier and the snapshot's through PQescapeLiteral.
 *
 * The modules: this file connects and checks the request; vtstep.c holds
 * the step's state, its containers and statements; vttable.c looks the
 * table up and builds the SQL pieces; vtbatch.c runs a batch's stages 1-5
 * and 7; vtchunk.c the keyed comparison (6), vtmultiset.c the multiset's;
 * vtresult.c builds the result and ends the step with it.
 *
 * Owns: the three connections, a timer (the first stage one loop turn after
 * the start, the slot's bound, the waits), a copy of the request, the
 * batch's chunks, rows and window, and the result being built. Freed in the
 * timer's close callback; each pgconn frees itself once closed. Never calls
 * done twice or after step_cancel(), never blocks the loop, and leaves no
 * slot behind but when the agent dies mid-batch (then the next verify,
 * cleanup or abort drops it: the coordinator names it in DropObjects).
 */
#include "verify_table.h"
#include "rowcheck.h"
#include "units.h"
#include "vtstep.h"
#include "vttable.h"
#include "wire.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define T_DEFAULT_CHUNK_ROWS 5000
#define T_DEFAULT_BATCH_ROWS 500000
#define T_DEFAULT_TIMEOUT_MS (3600 * 1000)
#define T_DEFAULT_SLOT_WAIT_MS 30000

/* ---- connecting --------------------------------------------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    vtstep_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect to the %s: %s",
                      vtstep_side_names[vtstep_side_of(s, c)], error ? error : "unknown error");
        return;
    }
    vtstep_maybe_then(s);
}

/* ---- start -------------------------------------------------------------- */

static void s_connect(vtstep_t *s)
{
    s->then = vttable_lookup;
    for (int side = 0; side < 3; side++) {
        int rc = pgconn_connect(s->run.conn[side], s->connect_timeout_ms, s_on_connect, s);
        if (rc != 0) {
            steprun_failf(&s->run, "cannot start connecting: %s", strerror(-rc));
            return;
        }
        s->pending++;
    }
}

static void s_first(steprun_t *run)
{
    s_connect((vtstep_t *)run);
}

static bool s_set(const char *v)
{
    return v && v[0];
}

/* Our verify slot's name: godwit_<migration>_verify (the coordinator's
 * naming); the agent touches no other. */
static bool s_slot_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 14 && n < 64 && strncmp(name, "godwit_", 7) == 0 &&
           strcmp(name + n - 7, "_verify") == 0;
}

step_t *verify_table_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg)
{
    if (!loop || !local || !s_set(local->host) || local->port < 1 || local->port > 65535 ||
        local->connect_timeout_ms <= 0 || !done || !req || !req->table ||
        !s_set(req->table->schema) || !s_set(req->table->name) ||
        (!req->standby && (!s_set(req->subscription) || !s_set(req->slot))) ||
        !s_set(req->publication) || !s_slot_name_ok(req->verify_slot) ||
        !s_set(req->database) || !req->source || !s_set(req->source->peer) ||
        !s_set(req->source->dbname))
        return NULL;
    vtstep_t *s = xcalloc(1, sizeof *s);
    s->timeout_ms = req->timeout_ms ? req->timeout_ms : T_DEFAULT_TIMEOUT_MS;
    s->slot_wait_ms = req->slot_wait_ms ? req->slot_wait_ms : T_DEFAULT_SLOT_WAIT_MS;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    char *options = xasprintf("-c statement_timeout=%" PRIu64 " -c search_path="
                              " -c default_transaction_read_only=on" ROWCHECK_PRINT_OPTIONS,
                              s->timeout_ms);
    s->run.conn[VTSTEP_SRC] = pgstep_remote_conn(loop, "verify source", local, req->source, false,
                                                 "godwit-verify", options);
    s->run.conn[VTSTEP_REPL] = pgstep_remote_conn(loop, "verify slot (source)", local, req->source,
                                                  true, "godwit-verify-slot", "-c search_path=");
    s->run.conn[VTSTEP_DST] = pgstep_local_conn(loop, "verify target", local, req->database,
                                                "godwit-verify", options);
    free(options);
    if (!s->run.conn[VTSTEP_SRC] || !s->run.conn[VTSTEP_DST] || !s->run.conn[VTSTEP_REPL]) {
        for (int i = 0; i < 3; i++)
            pgconn_destroy(&s->run.conn[i]);
        free(s);
        return NULL;
    }
    s->req = wire_copy(req);
    if (!s->req) {
        for (int i = 0; i < 3; i++)
            pgconn_destroy(&s->run.conn[i]);
        free(s);
        return NULL;
    }
    s->started_ms = units_mono_ms();
    s->chunk_rows = req->chunk_rows ? req->chunk_rows : T_DEFAULT_CHUNK_ROWS;
    uint64_t batch = req->batch_rows ? req->batch_rows : T_DEFAULT_BATCH_ROWS;
    batch = batch / s->chunk_rows * s->chunk_rows;
    s->batch_rows = batch ? batch : s->chunk_rows;
    s->result = xmalloc(sizeof *s->result);
    godwit__verify_table_result__init(s->result);
    s->result->table = xmalloc(sizeof *s->result->table);
    godwit__table_ref__init(s->result->table);
    s->result->table->schema = xstrdup(req->table->schema);
    s->result->table->name = xstrdup(req->table->name);
    steprun_start(&s->run, loop, xasprintf("table %s.%s", req->table->schema, req->table->name),
                  done, arg, vtstep_release, s_first);
    return &s->run.base;
}
