/*
 * pgconn_query: sending one statement on a pgconn connection and collecting
 * its results (see pgconn.h for the contract, pgconn.c for the connection
 * it runs on). A statement whose answer is a COPY hands over to
 * pgconn_copy.c, which hands back for the command's result.
 *
 * Owns nothing of its own: the statement's callback and its last result
 * live in the connection's struct until they are reported.
 */
#include "pgconn.h"
#include "pgconn_internal.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>

/* ---- querying ----------------------------------------------------------- */

/* All results are in (PQgetResult gave NULL): report the last one. */
static void s_query_finish(pgconn_t *c)
{
    PGresult *res = c->last;
    c->last = NULL;
    bool bad = PQstatus(c->conn) == CONNECTION_BAD;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (!bad && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
        pgconn__query_done(c, true, NULL, NULL, res);
        return;
    }
    const char *raw = res ? PQresultErrorMessage(res) : "";
    char *msg = pgconn__oneline(*raw ? raw : PQerrorMessage(c->conn));
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (bad) {
        /* Whatever the server said last (57P01 on terminate, ...), the
         * caller must know the connection is gone. */
        log_debug("pgconn %s: connection dropped: %s", c->name, msg);
        pgconn__drop(c);
        sqlstate = "08006";
    }
    pgconn__query_done(c, false, sqlstate, msg, res);
    free(msg);
}

/* Flushes what libpq still holds and watches the socket for the rest. */
void pgconn__query_flush(pgconn_t *c)
{
    int f = PQflush(c->conn);
    if (f < 0) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    (void)pgconn__watch_or_lose(c, f ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
}

void pgconn__query_step(pgconn_t *c, int events)
{
    if ((events & UV_READABLE) && !PQconsumeInput(c->conn)) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    /* Readable or writable, libpq may have more to send (large parameters). */
    int f = PQflush(c->conn);
    if (f < 0) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    while (!PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            s_query_finish(c);
            return;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_OUT && c->copy_data) {
            PQclear(r);
            c->state = PGCONN__COPY_OUT;
            pgconn__copy_out_step(c);
            return;
        }
        if (st == PGRES_COPY_IN && c->copy_ready) {
            PQclear(r);
            pgconn__copy_in_entered(c);
            return;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(r);
            pgconn__lost(c, "a COPY the caller did not start as one (pgconn_copy_out/_in)");
            return;
        }
        if (c->last)
            PQclear(c->last);
        c->last = r;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    (void)pgconn__watch_or_lose(c, f ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
}

/* Starts one statement: the extended protocol with text parameters, or the
 * simple one (simple: no parameters). */
int pgconn__send(pgconn_t *c, const char *sql, bool simple, int nparams,
                 const char *const *params, uint64_t timeout_ms, pgconn_result_cb cb, void *arg)
{
    if (c->state == PGCONN__IDLE)
        return -ENOTCONN;
    if (c->state != PGCONN__READY)
        return -EBUSY;
    pgconn__begin(c, PGCONN__QUERY, timeout_ms, arg);
    c->result_cb = cb;
    int sent = simple ? PQsendQuery(c->conn, sql)
                      : PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (sent) {
        pgconn__query_flush(c);
    } else if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgconn__lost(c, PQerrorMessage(c->conn));
    } else {
        char *msg = pgconn__oneline(PQerrorMessage(c->conn));
        pgconn__query_done(c, false, "", msg, NULL);
        free(msg);
    }
    c->in_api--;
    return 0;
}

int pgconn_query(pgconn_t *c, const char *sql, int nparams, const char *const *params,
                 uint64_t timeout_ms, pgconn_result_cb cb, void *arg)
{
    if (!c || c->destroyed || !sql || nparams < 0 || (nparams > 0 && !params))
        return -EINVAL;
    return pgconn__send(c, sql, false, nparams, params, timeout_ms, cb, arg);
}

int pgconn_query_simple(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_result_cb cb,
                        void *arg)
{
    if (!c || c->destroyed || !sql)
        return -EINVAL;
    return pgconn__send(c, sql, true, 0, NULL, timeout_ms, cb, arg);
}
