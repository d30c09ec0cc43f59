/*
 * vtstep: the VerifyTable step's state (verify_table.c), shared by the
 * modules that run its stages: the table and its SQL pieces (vttable.c), a
 * batch's slot, snapshots and window (vtbatch.c), the keyed comparison by
 * chunks and key ranges (vtchunk.c), the multiset's (vtmultiset.c), and the
 * result (vtresult.c). Here: the state itself, the containers of rows read,
 * the statements on the step's three connections and the freeing.
 *
 * Statements: vtstep_send and vtstep_send_simple count what is in flight
 * (pending); each callback starts with vtstep_arrived, and when pending
 * drops to 0 vtstep_maybe_then runs the step's `then`, once. Several
 * statements in flight at once (the same one on the source and the
 * target) join that way.
 *
 * Owns nothing beyond the step (steprun.h frees it through vtstep_release
 * in the timer's close callback); never blocks the loop.
 */
#ifndef GODWIT_VTSTEP_H
#define GODWIT_VTSTEP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"
#include "steprun.h"
#include "vwindow.h"

typedef enum { VTSTEP_SRC = 0, VTSTEP_DST = 1, VTSTEP_REPL = 2 } vtstep_side_t;

/* "source", "target", "source (replication)" */
extern const char *const vtstep_side_names[];

typedef struct vtstep vtstep_t;
typedef void (*vtstep_fn)(vtstep_t *s);

/* A chunk of the pass: rows, the md5 of its rows' hashes in key order, its
 * first key (n_keys text values). */
typedef struct {
    uint64_t rows;
    char md5[33];
    char **first;
} vtstep_chunk_t;

/* A row read as (key, hash). */
typedef struct {
    char *key;              /* encoded (vwindow_key_encode) */
    uint8_t hash[VWINDOW_HASH_LEN];
} vtstep_row_t;

typedef struct {
    vtstep_row_t *v;
    size_t n, cap;
} vtstep_rows_t;

/* A row read whole: the source's row at X of a key that needs it, or a
 * multiset's row. */
typedef struct {
    char *key;              /* keyed: encoded; multiset: NULL */
    uint8_t hash[VWINDOW_HASH_LEN];
    char **values;          /* n_cols, NULL for SQL NULL */
} vtstep_full_t;

typedef struct {
    vtstep_full_t *v;
    size_t n, cap;
} vtstep_fulls_t;

typedef struct {
    char *key;
    size_t prio;            /* lower: changed more recently */
} vtstep_recent_t;

struct vtstep {
    steprun_t run;              /* first: conn[VTSTEP_SRC], conn[VTSTEP_DST],
                                   conn[VTSTEP_REPL], label, what */
    Godwit__VerifyTable *req;   /* our own copy */
    uint64_t connect_timeout_ms, timeout_ms, slot_wait_ms, started_ms;
    unsigned chunk_rows;
    uint64_t batch_rows;        /* a multiple of chunk_rows */
    unsigned pending;           /* statements in flight */
    vtstep_fn then;             /* runs when pending drops to 0 */

    /* The table, from the source's catalog. */
    size_t n_cols;
    char **cols;                /* compared: not dropped, not generated, attnum order */
    size_t n_keys;
    size_t *key_idx;            /* into cols */
    char **key_types;           /* format_type() of each key column */
    char *table_sql;            /* "schema"."name" */
    char *hash_sql;             /* the row's hash (bytea) */
    char *key_order;            /* t."a", t."b" */
    char *key_lhs;              /* t."a" or ROW(t."a", t."b") */
    char *key_text;             /* (t."a")::pg_catalog.text AS k1, ... */
    char *col_text;             /* (t."c")::pg_catalog.text AS c1, ... */
    char *bucket_sql;           /* width_bucket of the key over $1.. (the bounds) */
    char *key_names;            /* a1, a2, ...: the columns of a ROWS FROM of keys */
    char *key_join;             /* t."a" = w.a1 AND ... */

    /* The batch. */
    unsigned batch;             /* 1-based */
    char **lo;                  /* first key of the batch (n_keys), NULL: from the start */
    char **hi;                  /* first key of the next batch, NULL: the last batch */
    char *snapshot;
    uint64_t x, y;
    uint64_t slot_made_ms;
    bool slot_exists;           /* ours, made by this step and not dropped yet */
    bool create_retried;
    bool slot_timed_out;
    uint64_t wait_until_ms;
    vwindow_t *win;
    char **wk_arrays;           /* the window's keys: one text[] literal per key column */
    size_t n_wk;                /* how many keys */

    vtstep_chunk_t *chunks[2];
    size_t n_chunks[2];
    uint64_t total[2];
    bool more;                  /* the source's pass found rows past the batch */
    bool counting;              /* vtchunk.c's s_on_rows: the rows read count toward the totals */
    bool *flag;                 /* per source chunk: differs */
    uint64_t *resum_rows;       /* per source chunk: the target's rows in its range */
    char (*resum_md5)[33];
    vtstep_rows_t rows[2];
    vtstep_fulls_t base_rows;   /* keyed: the source's rows at X of keys that need them */
    char **need;                /* encoded keys whose judging needs the source's row */
    size_t n_need;

    /* A multiset. */
    vwindow_bucket_t *buckets[2];
    bool mismatched[VWINDOW_BUCKETS];
    size_t prefix;
    vtstep_fulls_t mrows[2];

    vtstep_recent_t *recent;
    size_t n_recent, cap_recent;

    Godwit__VerifyTableResult *result;
};

/* ---- containers ---- */

/* Frees v's n strings and v (NULL: nothing). */
void vtstep_strv_free(char **v, size_t n);
/* v (n elements of size bytes, room for *cap) with room for one more:
 * doubled when full, first elements when empty. Returns the array, maybe
 * moved. */
void *vtstep_grow(void *v, size_t n, size_t *cap, size_t size, size_t first);
/* A new zeroed row at the end of r (borrowed from r). */
vtstep_row_t *vtstep_rows_add(vtstep_rows_t *r);
/* qsort/bsearch order of rows by encoded key. */
int vtstep_row_cmp(const void *a, const void *b);
/* A new zeroed whole row at the end of f (borrowed from f). */
vtstep_full_t *vtstep_fulls_add(vtstep_fulls_t *f);
/* qsort/bsearch order of whole rows by encoded key. */
int vtstep_full_cmp(const void *a, const void *b);
/* The indexes i < n whose flag is set, as an int4[] literal ("{1,5}").
 * Caller frees. */
char *vtstep_flags_array(const bool *flags, size_t n);
/* The key values of row `row` of res (columns k1..kn first): encoded.
 * Caller frees. */
char *vtstep_key_of_result(const PGresult *res, int row, size_t n);
/* Columns from..from+n of row `row` as a values array (NULL for SQL NULL).
 * Caller frees each and the array. */
char **vtstep_values_of_result(const PGresult *res, int row, int from, size_t n);

/* ---- the step ---- */

/* Frees what one batch read (chunks, rows, window, snapshot), ready for
 * the next. */
void vtstep_batch_reset(vtstep_t *s);
/* The step's release hook (steprun.h): frees every field and the step. */
void vtstep_release(steprun_t *run);
/* Which of the step's connections c is. */
vtstep_side_t vtstep_side_of(const vtstep_t *s, const pgconn_t *c);
/* Ends the step with the server's error on that side. */
void vtstep_fail_query(vtstep_t *s, vtstep_side_t side, const pgconn_result_t *r);

/* ---- statements ---- */

/* Sends a statement on a side with the step's timeout; false if the step
 * ended. */
bool vtstep_send(vtstep_t *s, vtstep_side_t side, const char *what, const char *sql, int nparams,
                 const char *const *params, pgconn_result_cb cb);
/* The same statement on the source, then (unless the step ended) on the
 * target: both sides read at once, joined by `then`. */
void vtstep_send_both(vtstep_t *s, const char *what, const char *sql, int nparams,
                      const char *const *params, pgconn_result_cb cb);
/* Through the simple query protocol (replication commands, statements
 * without parameters sent together). */
bool vtstep_send_simple(vtstep_t *s, vtstep_side_t side, const char *what, const char *sql,
                        uint64_t timeout_ms, pgconn_result_cb cb);
/* A statement's callback got here: false if the step ended (error). */
bool vtstep_arrived(vtstep_t *s, pgconn_t *c, const pgconn_result_t *r);
/* Runs s->then (cleared first) when nothing is in flight any more. */
void vtstep_maybe_then(vtstep_t *s);
/* A statement's callback with nothing to read: arrived, then maybe then. */
void vtstep_on_plain(pgconn_t *c, const pgconn_result_t *r, void *arg);
/* ident quoted on that side's connection (caller frees), or NULL after
 * ending the step. */
char *vtstep_ident(vtstep_t *s, vtstep_side_t side, const char *ident);

#endif
