/*
 * copystep: what the BulkCopy step's modules share (bulkcopy.c runs the
 * step and its stages, copyworker.c the workers that copy the chunks,
 * copykeys.c the primary keys built after the copy): the step's state, its
 * tables, chunks and workers, and the helpers that end the step on a
 * failure. The public face of the step is bulkcopy.h; nothing outside
 * these modules includes this header.
 *
 * Every helper here that returns NULL has ended the step first (with the
 * reason); its caller just returns.
 */
#ifndef GODWIT_COPYSTEP_H
#define GODWIT_COPYSTEP_H

#include <stdbool.h>
#include <stdint.h>

#include "pgconn.h"
#include "steprun.h"

typedef struct copystep copystep_t;

/* The runtime's connections: the target database, and (only to clear a
 * stale slot) a walsender of the source. */
enum { COPYSTEP_CTL = 0, COPYSTEP_REPL = 1 };

typedef enum { COPYSTEP_WAITING, COPYSTEP_COPYING, COPYSTEP_COPIED } copystep_tstate_t;

/* One leaf table to copy. */
typedef struct {
    char *schema, *name;
    char **columns;            /* not generated, in attnum order */
    size_t n_columns;
    bool binary_ok;            /* every column type has send/receive */
    uint64_t pages;            /* on the source when listed */
    unsigned chunks, chunks_done;
    copystep_tstate_t state;
    uint64_t rows, bytes;               /* committed on the target */
    uint64_t rows_flight, bytes_flight; /* in chunks still copying */
    char *key_conname, *key_def; /* the primary key on the source, or NULL */
    bool key_dropped;          /* on the target, for the copy: built once the table is in */
    bool key_started;
    bool done_before;          /* copied whole in this snapshot by an earlier run */
    bool durable;              /* COPIED and flushed on the target: reported copied */
    bool flushing;             /* COPIED, in the flush in flight */
} copystep_table_t;

typedef struct {
    size_t table;
    uint64_t from, to;         /* pages [from, to); to 0: to the end; both 0: whole table */
} copystep_chunk_t;

typedef struct {
    copystep_t *b;
    unsigned idx;
    pgconn_t *src, *dst;
    size_t chunk;              /* valid while busy */
    bool busy;
    char *buf;                 /* the batch being gathered */
    size_t len, cap;
    uint64_t rows_flight, bytes_flight;
    bool src_done;             /* the chunk's COPY TO ended well */
    bool src_paused;           /* waiting for the target to drain */
} copystep_worker_t;

struct copystep {
    /* first: conn[COPYSTEP_CTL] the target database (lookups, TRUNCATE,
     * the flushes), conn[COPYSTEP_REPL] the source (replication=database,
     * without a snapshot only), stages, label, what
     * (the statement in flight on either) */
    steprun_t run;

    /* copies of the request and of the local settings */
    step_local_t local;        /* its strings owned; peers, config_path borrowed (step.h) */
    char *database, *name, *publication;
    Godwit__ReplicationConn source; /* peer and dbname owned */
    unsigned n_workers;

    copystep_worker_t *workers;
    unsigned pending;          /* connections or imports outstanding */

    char *snapshot;            /* the held one (HoldSnapshot); NULL: clear a stale slot */
    char *consistent_point;
    Godwit__TableSync **done;  /* the request's tables copied whole already (owned copies) */
    size_t n_done;
    bool binary;               /* both servers have the same major version */
    bool tid_ranges;           /* the source scans ctid ranges */
    bool flush_busy;           /* a flush of the copied tables runs on COPYSTEP_CTL */
    bool copy_over;            /* the copy stage has moved on */

    copystep_table_t *tables;
    size_t n_tables;
    copystep_chunk_t *chunks;
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

/* A statement on a worker's connection failed (not the runtime's: what
 * describes it): ends the step. */
void copystep_fail_query(copystep_t *b, const char *what, const pgconn_result_t *r);

/* Sends one statement on run.conn[i] (COPYSTEP_CTL: parameters allowed;
 * COPYSTEP_REPL: simple protocol); cb gets b. */
void copystep_query(copystep_t *b, int i, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb);

/* ident (or the value v) quoted for c, or NULL after failing the step.
 * Caller frees. */
char *copystep_ident(copystep_t *b, pgconn_t *c, const char *ident);
char *copystep_literal(copystep_t *b, pgconn_t *c, const char *v);

/* "schema"."name" quoted for c. Caller frees; NULL after failing the step. */
char *copystep_qualified(copystep_t *b, pgconn_t *c, const copystep_table_t *t);

#endif
