/*
 * pgconn internals: the connection's state and struct, and the functions the
 * files of the pgconn module call in each other. Only pgconn.c,
 * pgconn_query.c and pgconn_copy.c include this; everyone else includes
 * pgconn.h. Names are pgconn__*, like libuv's uv__* internals.
 *
 * Who owns what: pgconn.c the struct's lifetime, its handles, the socket
 * watching, connecting, reporting outcomes and dropping the connection;
 * pgconn_query.c sending a statement and collecting its results;
 * pgconn_copy.c the COPY phases of an operation (its top comment tells how
 * a COPY moves through the states).
 */
#ifndef GODWIT_PGCONN_INTERNAL_H
#define GODWIT_PGCONN_INTERNAL_H

#include "pgconn.h"

typedef enum {
    PGCONN__IDLE,       /* no connection */
    PGCONN__CONNECTING, /* PQconnectPoll in progress, or its failure awaits report */
    PGCONN__READY,      /* connected, no query */
    PGCONN__QUERY,      /* a query in flight, or its failure awaits report */
    PGCONN__COPY_OUT,   /* COPY TO STDOUT: messages go to copy_data */
    PGCONN__COPY_IN,    /* COPY FROM STDIN: the caller puts data */
} pgconn__state_t;

typedef enum {
    PGCONN__DEFER_NONE,
    PGCONN__DEFER_CONNECT,
    PGCONN__DEFER_QUERY,
} pgconn__defer_t;

struct pgconn {
    uv_loop_t *loop;
    char *name;
    char **keywords; /* NULL-terminated copies */
    char **values;   /* values[i] may be NULL (libpq skips it) */
    size_t nkeywords;

    pgconn__state_t state;
    PGconn *conn;      /* NULL in PGCONN__IDLE and after a failure awaiting report */
    uv_poll_t *poll;   /* NULL when not watching; freed in its close callback */
    int poll_fd;
    int poll_events;
    int poll_errors;   /* consecutive error events, see s_on_poll in pgconn.c */
    uv_timer_t deadline;
    uv_timer_t defer;
    uv_timer_t kick;   /* resumes a paused COPY TO one loop turn later */
    int open_handles;  /* handles not yet through their close callback */
    bool destroyed;
    int in_api;        /* >0 inside pgconn_connect/pgconn_query: defer reports */
    uint64_t op_timeout_ms;

    pgconn_connect_cb connect_cb;
    pgconn_result_cb result_cb;
    void *cb_arg;
    PGresult *last;    /* last result of the query in flight */

    /* The COPY in flight, if the operation is one. */
    pgconn_copy_data_cb copy_data;   /* COPY TO */
    pgconn_copy_ready_cb copy_ready; /* COPY FROM */
    pgconn_copy_drain_cb copy_drain;
    bool copy_paused;                /* COPY TO: copy_data said stop */
    bool copy_pending;               /* COPY FROM: output waits for the socket */

    /* A failure found inside an API call, reported by the defer timer. */
    pgconn__defer_t defer_kind;
    char defer_sqlstate[6];
    char *defer_msg;
};

/* ---- pgconn.c ---- */

/* A one-line copy of a libpq message; caller frees. */
char *pgconn__oneline(const char *msg);
/* Closes the connection and its poll handle; state and callbacks untouched. */
void pgconn__drop(pgconn_t *c);
/* Reports the end of a query; owns res (may be NULL). */
void pgconn__query_done(pgconn_t *c, bool ok, const char *sqlstate, const char *msg,
                        PGresult *res);
/* The connection is gone: drop it, fail what was in flight with 08006. */
void pgconn__lost(pgconn_t *c, const char *why);
/* Watches the socket for events, or loses the connection; 0 or < 0. */
int pgconn__watch_or_lose(pgconn_t *c, int events, bool force);
/* The operation deadline's timer callback. */
void pgconn__on_deadline(uv_timer_t *t);
/* Starts an operation: in_api++, state, cb_arg, deadline; see pgconn.c. */
void pgconn__begin(pgconn_t *c, pgconn__state_t state, uint64_t timeout_ms, void *arg);

/* ---- pgconn_query.c ---- */

/* Starts one statement (simple: the simple query protocol). */
int pgconn__send(pgconn_t *c, const char *sql, bool simple, int nparams,
                 const char *const *params, uint64_t timeout_ms, pgconn_result_cb cb, void *arg);
/* Flushes what libpq still holds and watches the socket for the rest. */
void pgconn__query_flush(pgconn_t *c);
/* Socket events while a statement runs (PGCONN__QUERY). */
void pgconn__query_step(pgconn_t *c, int events);

/* ---- pgconn_copy.c ---- */

/* Hands the caller what libpq has of a COPY TO (PGCONN__COPY_OUT). */
void pgconn__copy_out_step(pgconn_t *c);
/* The server answered PGRES_COPY_IN: the caller may put data. */
void pgconn__copy_in_entered(pgconn_t *c);
/* Socket events during a COPY FROM (PGCONN__COPY_IN). */
void pgconn__copy_in_step(pgconn_t *c, int events);

#endif
