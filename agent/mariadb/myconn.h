/*
 * myconn: one MariaDB (or MySQL) connection driven by MariaDB Connector/C's
 * non-blocking API on a libuv loop, as pgconn is libpq's. Nothing here
 * waits on the server: connecting is mysql_real_connect_start/_cont, a
 * statement mysql_real_query_start/_cont then mysql_store_result_start/
 * _cont, the socket is watched with a uv_poll_t and the library's own
 * timeouts with a uv_timer_t. Every statement has a deadline: one that
 * passes drops the connection (the server may still run the statement; a
 * server-side limit such as max_statement_time is the caller's init
 * statement) and ends the statement with an error.
 *
 * A statement connects first when there is no connection (never
 * connected, or dropped after an error), so a caller that reads the
 * server periodically simply asks again. One statement at a time, one
 * result set: a statement that returns several (a CALL) has the extra ones
 * dropped with the connection. Two things still block the loop, both
 * small: a host name is resolved by the library (give an address; the
 * socket or 127.0.0.1 never needs it), and the password file is read
 * (a local file of a line, checked as every secret file: keys.h) at each
 * connection attempt, so a changed password is picked up.
 *
 * Safety: LOAD DATA LOCAL is switched off (a server could otherwise ask
 * for any file this agent can read), the connection never reads option
 * files, and a TCP connection is asked for when no socket is given
 * (Connector/C would take "localhost" for the default socket).
 *
 * Ownership: myconn_new returns an object the caller owns and releases
 * with myconn_destroy; its handles are freed in their close callbacks, so
 * the memory goes one loop turn later. A result handed to a callback is
 * borrowed for the callback's duration.
 *
 * Never: a callback from inside myconn_query or myconn_destroy, or twice
 * for one statement; a new operation on top of one the library has not
 * finished (the only exit from a suspended one is closing the connection,
 * which Connector/C allows).
 */
#ifndef GODWIT_MYCONN_H
#define GODWIT_MYCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct myconn myconn_t;

/* Copied by myconn_new. */
typedef struct {
    const char *host;             /* TCP; NULL or "" with a socket */
    int port;
    const char *socket;           /* a Unix socket: wins over host and port when set */
    const char *user;
    const char *password_file;    /* its first line is the password; NULL: none */
    const char *database;         /* the session's default database; NULL: none */
    uint64_t connect_timeout_ms;
    const char *const *init;      /* statements every new session runs first, NULL-terminated
                                     (SET SESSION ...); NULL: none */
} myconn_params_t;

/* A statement's outcome, borrowed for the callback's duration. */
typedef struct {
    bool ok;
    bool gone;                    /* !ok: there is no connection any more (it could not be
                                     made, was lost or dropped): the next statement connects */
    unsigned errnum;              /* !ok: the server's or Connector/C's error number; 0 for
                                     myconn's own (the deadline, the password file) */
    char sqlstate[6];             /* !ok: the SQLSTATE, "" when none */
    const char *error;            /* !ok: one line */
    size_t n_rows, n_cols;        /* 0 and 0 for a statement without a result set */
    char **names;                 /* the n_cols column names (aliases) */
    char ***rows;                 /* rows[i][j]: NUL-terminated text; NULL for SQL NULL */
} myconn_result_t;

typedef void (*myconn_cb)(myconn_t *c, const myconn_result_t *r, void *arg);

/* label names the connection in log lines ("agent mymon"). NULL for
 * invalid parameters (no user, no host and no socket, a port out of range,
 * a zero timeout). */
myconn_t *myconn_new(uv_loop_t *loop, const char *label, const myconn_params_t *p);

/* Runs one statement, connecting first when not connected; cb runs once,
 * never from inside this call, one loop turn later at the earliest.
 * timeout_ms bounds the whole (the connection included): when it passes
 * the connection is dropped and cb gets an error. false, and no callback,
 * when a statement is in flight or c is destroyed. sql is copied; the
 * copy is zeroed before it is freed (a statement may hold a password). */
bool myconn_query(myconn_t *c, const char *sql, uint64_t timeout_ms, myconn_cb cb, void *arg);

/* Whether a statement is in flight. */
bool myconn_busy(const myconn_t *c);

/* The value of the column called name in row, or NULL for SQL NULL, a
 * missing column or a row out of range (borrowed from r). */
const char *myconn_col(const myconn_result_t *r, size_t row, const char *name);

/* s as a string literal ('...') escaped by mysql_real_escape_string for
 * the connection's character set and SQL mode (NO_BACKSLASH_ESCAPES):
 * malloc'd, the caller frees it; NULL when not connected. */
char *myconn_escape_literal(myconn_t *c, const char *s);

/* "WHAT: the error (errnum, SQLSTATE xxxxx)" for a failed statement, the
 * one wording callers report; what may be NULL. Caller frees. */
char *myconn_result_message(const char *what, const myconn_result_t *r);

/* Reads a password file (keys_read_secret's checks) into *password: its
 * first line, without the line break (malloc'd; the caller frees it with
 * keys_wipe_free). false with why (one line) otherwise. */
bool myconn_read_password(const char *path, char **password, char *why, size_t whylen);

/* Drops the connection (no callback runs, the statement in flight is
 * abandoned), closes the handles and clears *cp. NULL is fine; safe from
 * inside a callback. */
void myconn_destroy(myconn_t **cp);

#endif
