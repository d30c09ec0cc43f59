/*
 * copyworker: stage 7 of the BulkCopy step (bulkcopy.c), the chunks and
 * the workers that copy them. The chunks go to the workers, biggest table
 * first: a table larger than CW_CHUNK_PAGES pages is cut into ctid page
 * ranges (a TID range scan, 14 and later; on 13 one chunk per table), the
 * others are one chunk each. A worker pipes COPY (SELECT ...) TO STDOUT on
 * its source connection into COPY ... FROM STDIN on its target connection
 * (binary when both servers have the same major version and every column
 * type has binary I/O), batching rows into CW_BATCH_BYTES puts; when the
 * target's socket does not take a batch, reading from the source pauses
 * until it drained. Each chunk commits on its own, asynchronously; once
 * every chunk of a table is in, a synchronous commit on the control
 * connection flushes them (s_flush) and only then is the table reported
 * copied: what the coordinator gives a later run as done is on disk.
 *
 * Owns: the chunk list and each worker's batch buffer (freed with the
 * step, bulkcopy.c); the workers' connections are the step's.
 */
#include "copyworker.h"
#include "copykeys.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define CW_CHUNK_PAGES 8192             /* 64 MiB of 8 kB pages per chunk */
#define CW_BATCH_BYTES (256 * 1024)     /* rows gathered into one put */
#define CW_COPY_IDLE_MS (10 * 60000)    /* a COPY without progress this long fails */

static void s_worker_next(copystep_worker_t *w);
static void s_flush(copystep_t *b);
static void s_maybe_over(copystep_t *b);

/* ---- flushes: a table is reported copied once its chunks are durable ---- */

/* A transaction that writes WAL (a logical message, which no subscriber
 * asks for) committed synchronously: its commit flushes the WAL before it,
 * every chunk committed before it included. A commit that wrote no WAL is
 * not flushed, whatever synchronous_commit says. */
static const char s_flush_sql[] =
    "BEGIN; SET LOCAL synchronous_commit = on;"
    " SELECT pg_catalog.pg_logical_emit_message(true, 'godwit', 'copied'); COMMIT";

static void s_on_flushed(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    b->flush_busy = false;
    for (size_t i = 0; i < b->n_tables; i++) {
        if (b->tables[i].flushing) {
            b->tables[i].flushing = false;
            b->tables[i].durable = true;
        }
    }
    s_flush(b); /* the tables copied meanwhile */
    if (!b->run.disposed)
        s_maybe_over(b);
}

/* Flushes the tables copied since the last flush, unless one runs (its
 * end starts the next). */
static void s_flush(copystep_t *b)
{
    if (b->flush_busy)
        return;
    size_t n = 0;
    for (size_t i = 0; i < b->n_tables; i++) {
        copystep_table_t *t = &b->tables[i];
        if (t->state == COPYSTEP_COPIED && !t->durable) {
            t->flushing = true;
            n++;
        }
    }
    if (n == 0)
        return;
    b->flush_busy = true;
    steprun_query_simple(&b->run, COPYSTEP_CTL, "flushing the copied tables", s_flush_sql,
                         (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_flushed);
}

static void s_plan_chunks(copystep_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_tables; i++) {
        copystep_table_t *t = &b->tables[i];
        t->chunks = t->done_before ? 0 : 1;
        /* Cut only when the last piece would not be tiny. */
        if (t->chunks && b->tid_ranges && t->pages >= CW_CHUNK_PAGES + CW_CHUNK_PAGES / 2)
            t->chunks = (unsigned)((t->pages + CW_CHUNK_PAGES / 2) / CW_CHUNK_PAGES);
        n += t->chunks;
    }
    b->chunks = xcalloc(n ? n : 1, sizeof *b->chunks);
    for (size_t i = 0; i < b->n_tables; i++) { /* biggest first */
        copystep_table_t *t = &b->tables[i];
        for (unsigned k = 0; k < t->chunks; k++) {
            copystep_chunk_t *ch = &b->chunks[b->n_chunks++];
            ch->table = i;
            ch->from = (uint64_t)k * CW_CHUNK_PAGES;
            /* The last one is open-ended: the table may have grown since. */
            ch->to = k + 1 < t->chunks ? (uint64_t)(k + 1) * CW_CHUNK_PAGES : 0;
        }
    }
}

/* The column list "(a, b)" quoted for c, "" for none. Caller frees; NULL
 * after failing the step. */
static char *s_column_list(copystep_t *b, pgconn_t *c, const copystep_table_t *t, bool parens)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < t->n_columns; i++) {
        char *q = copystep_ident(b, c, t->columns[i]);
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

static const char *s_table_label(const copystep_table_t *t, char *buf, size_t len)
{
    snprintf(buf, len, "\"%s\".\"%s\"", t->schema, t->name);
    return buf;
}

static void s_flight_done(copystep_worker_t *w, copystep_table_t *t)
{
    t->rows_flight -= w->rows_flight;
    t->bytes_flight -= w->bytes_flight;
    w->rows_flight = 0;
    w->bytes_flight = 0;
}

static void s_on_dst_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    copystep_chunk_t *ch = &b->chunks[w->chunk];
    copystep_table_t *t = &b->tables[ch->table];
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
        t->state = COPYSTEP_COPIED;
        log_info("step on %s: table %s copied: %" PRIu64 " rows, %" PRIu64 " bytes", b->run.label,
                 s_table_label(t, tl, sizeof tl), t->rows, t->bytes);
        s_flush(b);
        if (b->run.disposed)
            return;
    }
    copyworker_idle(w);
}

/* Ends the chunk's COPY on the target; its result commits the chunk. */
static void s_worker_end(copystep_worker_t *w)
{
    pgconn_copy_end(w->dst); /* -1: the failure reaches s_on_dst_done */
}

/* Puts the batch. false: stop reading from the source (the target must
 * drain first, or failed and its done follows). */
static bool s_worker_put(copystep_worker_t *w)
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
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : CW_BATCH_BYTES;
        while (cap < w->len + len)
            cap *= 2;
        w->buf = xrealloc(w->buf, cap);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    copystep_table_t *t = &b->tables[b->chunks[w->chunk].table];
    w->rows_flight++;
    w->bytes_flight += len;
    t->rows_flight++;
    t->bytes_flight += len;
    if (w->len < CW_BATCH_BYTES)
        return true;
    return s_worker_put(w);
}

static void s_on_src_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
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
    copystep_worker_t *w = arg;
    if (w->src_done) {
        s_worker_end(w);
    } else if (w->src_paused) {
        w->src_paused = false;
        pgconn_copy_out_resume(w->src);
    }
}

static void s_on_dst_ready(pgconn_t *c, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    const copystep_chunk_t *ch = &b->chunks[w->chunk];
    const copystep_table_t *t = &b->tables[ch->table];
    char *q = copystep_qualified(b, w->src, t);
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
    int rc = pgconn_copy_out(w->src, sql, CW_COPY_IDLE_MS, s_on_row, s_on_src_done, w);
    free(sql);
    free(cols);
    free(q);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot start reading from the source: %s", w->idx,
                      strerror(-rc));
}

/* Takes the next chunk, if any: the target's COPY first, the source's
 * once the target takes data. */
static void s_worker_next(copystep_worker_t *w)
{
    copystep_t *b = w->b;
    if (b->next_chunk >= b->n_chunks)
        return; /* idle until the others are done */
    w->chunk = b->next_chunk++;
    w->busy = true;
    w->src_done = false;
    w->src_paused = false;
    w->len = 0;
    copystep_table_t *t = &b->tables[b->chunks[w->chunk].table];
    t->state = COPYSTEP_COPYING;
    char *q = copystep_qualified(b, w->dst, t);
    if (!q)
        return;
    char *cols = s_column_list(b, w->dst, t, true);
    if (!cols) {
        free(q);
        return;
    }
    char *sql = xasprintf("COPY %s %s FROM STDIN%s", q, cols,
                          b->binary && t->binary_ok ? " (FORMAT binary)" : "");
    int rc = pgconn_copy_in(w->dst, sql, CW_COPY_IDLE_MS, s_on_dst_ready, s_on_dst_drain,
                            s_on_dst_done, w);
    free(sql);
    free(cols);
    free(q);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot start writing to the target: %s", w->idx,
                      strerror(-rc));
}

void copyworker_copy(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    s_plan_chunks(b);
    b->copy_started = uv_now(b->run.loop);
    if (b->n_chunks == 0) {
        b->copy_over = true;
        steprun_next(&b->run);
        return;
    }
    log_info("step on %s: %zu chunk(s)", b->run.label, b->n_chunks);
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++)
        s_worker_next(&b->workers[i]);
}

/* A worker between chunks: builds the primary key of a table that is in,
 * else takes the next chunk, else (the last to finish) moves on. */
void copyworker_idle(copystep_worker_t *w)
{
    copystep_t *b = w->b;
    if (copykeys_build_ready(w))
        return;
    if (b->next_chunk < b->n_chunks) {
        s_worker_next(w);
        return;
    }
    s_maybe_over(b);
}

/* Moves on, once, when every chunk is in, no key is being built and every
 * copied table is flushed. */
static void s_maybe_over(copystep_t *b)
{
    if (b->copy_over || b->chunks_done < b->n_chunks || b->keys_running > 0 || b->flush_busy)
        return;
    b->copy_over = true;
    log_info("step on %s: every table copied in %.1f s", b->run.label,
             (double)(uv_now(b->run.loop) - b->copy_started) / 1000.0);
    steprun_next(&b->run);
}

