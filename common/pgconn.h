/*
 * pgconn: one PostgreSQL connection driven by libpq's asynchronous API on a
 * libuv loop. Nothing here blocks: connecting is PQconnectStartParams +
 * PQconnectPoll, queries are PQsendQueryParams, the socket is watched with a
 * uv_poll_t, and every operation has a client-side deadline (a uv_timer_t).
 * A deadline that passes drops the connection instead of sending a cancel
 * request (PQcancel blocks, and a stopped server would stop us with it); the
 * caller sees an error whose sqlstate is "08006" and reconnects when it likes.
 *
 * Connections are opened from keyword/value arrays only, never from a
 * concatenated conninfo string. One query at a time per connection.
 *
 * Ownership: pgconn_new() returns an object the caller owns and releases with
 * pgconn_destroy(); its uv handles are freed in their close callbacks, so the
 * memory goes away one loop iteration later. A PGresult handed to a callback
 * is borrowed: valid only during the callback, PQclear'ed by pgconn.
 *
 * This is the module's one header; the code is in pgconn.c (connecting,
 * lifetime, reading results), pgconn_query.c (statements) and
 * pgconn_copy.c (COPY).
 */
#ifndef GODWIT_PGCONN_H
#define GODWIT_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct pgconn pgconn_t;

typedef struct {
    bool ok;              /* PGRES_COMMAND_OK or PGRES_TUPLES_OK */
    char sqlstate[6];     /* "" when ok; "08006" for a lost or timed-out connection */
    const char *error;    /* NULL when ok; valid during the callback only */
    PGresult *res;        /* last result, borrowed; may be NULL on error */
} pgconn_result_t;

typedef void (*pgconn_connect_cb)(pgconn_t *c, bool ok, const char *error, void *arg);
typedef void (*pgconn_result_cb)(pgconn_t *c, const pgconn_result_t *r, void *arg);

/* name is used in log lines ("blue", "agent pgmon"). keywords/values are
 * NULL-terminated and copied. Returns NULL only for invalid arguments. */
pgconn_t *pgconn_new(uv_loop_t *loop, const char *name, const char *const *keywords,
                     const char *const *values);

/* Starts connecting. cb runs exactly once (never from inside this call) with
 * the outcome; timeout_ms bounds the attempt. 0, or -EBUSY if connected or
 * connecting. */
int pgconn_connect(pgconn_t *c, uint64_t timeout_ms, pgconn_connect_cb cb, void *arg);

/* Sends one parameterised statement (text parameters, text results). cb runs
 * exactly once (never from inside this call). 0, -ENOTCONN, or -EBUSY if a
 * query is in flight. */
int pgconn_query(pgconn_t *c, const char *sql, int nparams, const char *const *params,
                 uint64_t timeout_ms, pgconn_result_cb cb, void *arg);

/* The same through the simple query protocol (PQsendQuery, no parameters):
 * for replication commands on a connection opened with replication=database,
 * and for PgBouncer's admin console, which do not speak the extended
 * protocol; with several results only the last is kept. sql is one statement whose
 * values have been quoted with pgconn_escape_literal/_identifier. */
int pgconn_query_simple(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_result_cb cb,
                        void *arg);

/* ---- COPY ----
 * One COPY at a time, as one operation: done runs exactly once, never from
 * inside the call that started it, with the COPY's command result (r->res:
 * PQcmdTuples gives the rows) or the error (sqlstate 08006: the connection
 * is gone). timeout_ms bounds the time without progress (no row read, no
 * byte taken by the socket), not the whole COPY. */

/* One CopyData message: data borrowed for the call. Return false to stop
 * reading until pgconn_copy_out_resume() (backpressure). */
typedef bool (*pgconn_copy_data_cb)(pgconn_t *c, const char *data, size_t len, void *arg);
/* Nothing waits in libpq's output buffer any more (after pgconn_copy_put
 * returned 1). */
typedef void (*pgconn_copy_drain_cb)(pgconn_t *c, void *arg);
/* The server waits for data (COPY FROM STDIN started). */
typedef void (*pgconn_copy_ready_cb)(pgconn_t *c, void *arg);

/* Sends sql, a COPY ... TO STDOUT, and hands every message to data. 0,
 * -ENOTCONN or -EBUSY (no callback then). */
int pgconn_copy_out(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_copy_data_cb data,
                    pgconn_result_cb done, void *arg);
/* Reading goes on after data returned false; data runs from the loop, one
 * turn later at the earliest. */
void pgconn_copy_out_resume(pgconn_t *c);

/* Sends sql, a COPY ... FROM STDIN; ready runs when the server takes data,
 * then pgconn_copy_put() and pgconn_copy_end(). 0, -ENOTCONN or -EBUSY (no
 * callback then). */
int pgconn_copy_in(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_copy_ready_cb ready,
                   pgconn_copy_drain_cb drain, pgconn_result_cb done, void *arg);
/* Queues len bytes of the COPY stream (message boundaries need not be row
 * boundaries) and sends what the socket takes: 0 when everything went out,
 * 1 when some waits (drain runs once it has gone; put nothing more until
 * then, for backpressure), -1 when the COPY failed (done follows). */
int pgconn_copy_put(pgconn_t *c, const char *data, size_t len);
/* Ends the COPY stream (call when nothing waits); done follows. 0 or -1
 * (done follows with the error). */
int pgconn_copy_end(pgconn_t *c);

bool pgconn_is_ready(const pgconn_t *c);   /* connected and idle */
bool pgconn_is_busy(const pgconn_t *c);    /* connecting or a query in flight */
int pgconn_server_version(const pgconn_t *c); /* PQserverVersion, 0 if not connected */
const char *pgconn_name(const pgconn_t *c);

/* ident quoted for SQL text by PQescapeIdentifier with the connection's
 * encoding: a malloc'd copy the caller frees, or NULL when not connected or
 * when ident is not valid in that encoding (the reason is logged at debug). */
char *pgconn_escape_identifier(pgconn_t *c, const char *ident);

/* s quoted for SQL text as a string literal by PQescapeLiteral with the
 * connection's encoding (an E'' literal when s holds backslashes): a malloc'd
 * copy the caller frees, or NULL when not connected or when s is not valid in
 * that encoding (the reason is logged at debug). For the few statements that
 * take no parameters (CREATE SUBSCRIPTION ... CONNECTION '...'). */
char *pgconn_escape_literal(pgconn_t *c, const char *s);

/* A text[] literal of n strings ({"a","b\"c"}), to pass as one parameter
 * cast to text[]. Caller frees. */
char *pgconn_text_array(char *const *v, size_t n);

/* "WHAT: the server's error (SQLSTATE xxxxx)" for a failed statement, the
 * one wording every caller reports; what may be NULL ("" prefix dropped).
 * Caller frees. */
char *pgconn_result_message(const char *what, const pgconn_result_t *r);

/* Reading a result's named columns (the statements are ours, so the
 * columns exist). Values are borrowed from res. */
/* The value, or NULL for SQL NULL or a missing column. */
const char *pgconn_col(const PGresult *res, int row, const char *name);
/* The value, or "" for SQL NULL. */
const char *pgconn_col_str(const PGresult *res, int row, const char *name);
/* true only for 't'. */
bool pgconn_col_bool(const PGresult *res, int row, const char *name);
/* A whole decimal integer, or dflt for NULL or anything else. */
int64_t pgconn_col_i64(const PGresult *res, int row, const char *name, int64_t dflt);
/* A non-negative whole decimal integer, or 0 for NULL or anything else. */
uint64_t pgconn_col_u64(const PGresult *res, int row, const char *name);

/* Drops the connection now; a pending connect or query callback runs with an
 * error (sqlstate 08006, "connection closed") before this returns. */
void pgconn_disconnect(pgconn_t *c);

/* Disconnects (no callbacks run), closes the handles and clears *cp. */
void pgconn_destroy(pgconn_t **cp);

#endif
