/*
 * pgconn_copy: the COPY operations of a pgconn connection (see pgconn.h for
 * the contract, pgconn.c for the connection they run on).
 *
 * A COPY is one operation like a query: it starts as PGCONN__QUERY and,
 * when the server answers with PGRES_COPY_OUT or PGRES_COPY_IN, moves to
 * PGCONN__COPY_OUT (every CopyData message goes to the caller, who may pause
 * the reading; a "kick" timer resumes it one loop turn later) or
 * PGCONN__COPY_IN (the caller puts data; what the socket does not take at
 * once stays in libpq's buffer and the caller is told when it has drained);
 * at the end it is PGCONN__QUERY again until the command's result arrives.
 * Its deadline is restarted on progress, so it bounds the time without
 * progress.
 *
 * Owns nothing of its own: the COPY callbacks and flags live in the
 * connection's struct, the kick timer is created and closed by pgconn.c.
 */
#include "pgconn.h"
#include "pgconn_internal.h"
#include "log.h"

#include <stdint.h>

/* ---- COPY --------------------------------------------------------------- */

static void s_progress(pgconn_t *c)
{
    uv_timer_start(&c->deadline, pgconn__on_deadline, c->op_timeout_ms, 0);
}

static void s_poll_pause(pgconn_t *c)
{
    if (c->poll) {
        uv_poll_stop(c->poll);
        c->poll_events = 0;
    }
}

/* Hands every message libpq has to the caller, until it pauses, the data
 * runs out (wait for the socket) or the COPY ends (collect its result). */
void pgconn__copy_out_step(pgconn_t *c)
{
    if (c->copy_paused) {
        s_poll_pause(c);
        return;
    }
    bool progressed = false;
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(c->conn, &buf, 1);
        if (n > 0) {
            progressed = true;
            bool more = c->copy_data(c, buf, (size_t)n, c->cb_arg);
            PQfreemem(buf);
            if (c->destroyed || c->state != PGCONN__COPY_OUT)
                return; /* the caller dropped the connection */
            if (!more) {
                c->copy_paused = true;
                s_poll_pause(c);
                s_progress(c);
                return;
            }
            continue;
        }
        if (n == 0)
            break;
        if (n == -1) {
            /* The stream ended: the command's result follows. */
            c->state = PGCONN__QUERY;
            c->copy_data = NULL;
            pgconn__query_step(c, 0);
            return;
        }
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    if (progressed)
        s_progress(c);
    (void)pgconn__watch_or_lose(c, UV_READABLE, false);
}

static void s_on_kick(uv_timer_t *t)
{
    pgconn_t *c = t->data;
    if (c->destroyed || c->state != PGCONN__COPY_OUT || !c->copy_paused)
        return;
    c->copy_paused = false;
    pgconn__copy_out_step(c);
}

void pgconn__copy_in_entered(pgconn_t *c)
{
    c->state = PGCONN__COPY_IN;
    c->copy_pending = false;
    if (pgconn__watch_or_lose(c, UV_READABLE, false) < 0)
        return;
    s_progress(c);
    c->copy_ready(c, c->cb_arg);
}

/* The COPY FROM ended on the server's side (an error) or the connection
 * broke: collect the result, or report the loss. */
static void s_copy_in_failed(pgconn_t *c)
{
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    c->state = PGCONN__QUERY;
    c->copy_pending = false;
    pgconn__query_flush(c);
    if (c->state == PGCONN__QUERY && c->conn)
        pgconn__query_step(c, 0);
}

void pgconn__copy_in_step(pgconn_t *c, int events)
{
    if ((events & UV_READABLE) && !PQconsumeInput(c->conn)) {
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    int events_wanted = UV_READABLE;
    if (c->copy_pending) {
        int f = PQflush(c->conn);
        if (f < 0) {
            pgconn__lost(c, PQerrorMessage(c->conn));
            return;
        }
        if (events & UV_WRITABLE)
            s_progress(c);
        if (f == 0) {
            c->copy_pending = false;
            if (pgconn__watch_or_lose(c, UV_READABLE, false) < 0)
                return;
            c->copy_drain(c, c->cb_arg);
            return;
        }
        events_wanted |= UV_WRITABLE;
    }
    (void)pgconn__watch_or_lose(c, events_wanted, false);
}

int pgconn_copy_out(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_copy_data_cb data,
                    pgconn_result_cb done, void *arg)
{
    if (!data)
        return -EINVAL;
    int rc = pgconn__send(c, sql, false, 0, NULL, timeout_ms, done, arg);
    if (rc == 0)
        c->copy_data = data; /* read only from the loop, after this returns */
    return rc;
}

void pgconn_copy_out_resume(pgconn_t *c)
{
    if (c && !c->destroyed && c->state == PGCONN__COPY_OUT && c->copy_paused)
        uv_timer_start(&c->kick, s_on_kick, 0, 0);
}

int pgconn_copy_in(pgconn_t *c, const char *sql, uint64_t timeout_ms, pgconn_copy_ready_cb ready,
                   pgconn_copy_drain_cb drain, pgconn_result_cb done, void *arg)
{
    if (!ready || !drain)
        return -EINVAL;
    int rc = pgconn__send(c, sql, false, 0, NULL, timeout_ms, done, arg);
    if (rc == 0) {
        c->copy_ready = ready;
        c->copy_drain = drain;
    }
    return rc;
}

int pgconn_copy_put(pgconn_t *c, const char *data, size_t len)
{
    if (!c || c->destroyed || c->state != PGCONN__COPY_IN || len > INT32_MAX)
        return -1;
    if (c->copy_pending)
        log_warn("pgconn %s: COPY data put before the last drained", c->name);
    c->in_api++;
    int ret = 0;
    if (PQputCopyData(c->conn, data, (int)len) != 1) {
        s_copy_in_failed(c);
        ret = -1;
    } else {
        int f = PQflush(c->conn);
        if (f < 0) {
            pgconn__lost(c, PQerrorMessage(c->conn));
            ret = -1;
        } else if (f > 0) {
            c->copy_pending = true;
            ret = pgconn__watch_or_lose(c, UV_READABLE | UV_WRITABLE, false) < 0 ? -1 : 1;
        }
        if (ret >= 0)
            s_progress(c);
    }
    c->in_api--;
    return ret;
}

int pgconn_copy_end(pgconn_t *c)
{
    if (!c || c->destroyed || c->state != PGCONN__COPY_IN)
        return -1;
    c->in_api++;
    int ret = 0;
    if (PQputCopyEnd(c->conn, NULL) != 1) {
        s_copy_in_failed(c);
        ret = -1;
    } else {
        c->state = PGCONN__QUERY;
        c->copy_pending = false;
        s_progress(c);
        pgconn__query_flush(c);
    }
    c->in_api--;
    return ret;
}
