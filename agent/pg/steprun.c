/* steprun: the runtime every agent step embeds (steprun.h). */
#include "steprun.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

static void s_release(steprun_t *r)
{
    free(r->label);
    free(r->what);
    free(r->held_error);
    if (r->held_payload)
        protobuf_c_message_free_unpacked(r->held_payload, NULL);
    r->release(r);
}

static void s_on_timer_closed(uv_handle_t *h)
{
    steprun_t *r = h->data;
    r->timer_closed = true;
    if (r->winding && !r->wound)
        return; /* steprun_wound_down releases */
    s_release(r);
}

/* Stops everything; no callback runs afterwards. */
static void s_dispose(steprun_t *r)
{
    if (r->disposed)
        return;
    r->disposed = true;
    r->done = NULL;
    for (int i = 0; i < STEPRUN_MAX_CONNS; i++)
        pgconn_destroy(&r->conn[i]);
    if (r->stop)
        r->stop(r);
    uv_close((uv_handle_t *)&r->timer, s_on_timer_closed);
}

static void s_cancel(step_t *base)
{
    steprun_t *r = (steprun_t *)base;
    bool wind = r->wind_down && !r->winding && !r->disposed;
    s_dispose(r);
    if (wind) {
        r->winding = true;
        r->wind_down(r, true);
    }
}

static void s_on_timer(uv_timer_t *t)
{
    steprun_t *r = t->data;
    steprun_fn fn = r->first;
    r->first = NULL;
    if (fn && !r->disposed)
        fn(r);
}

void steprun_start(steprun_t *r, uv_loop_t *loop, char *label, step_done_cb done, void *arg,
                   steprun_fn release, steprun_fn first)
{
    r->base.cancel = s_cancel;
    r->loop = loop;
    r->label = label;
    r->done = done;
    r->arg = arg;
    r->release = release;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    steprun_after(r, 0, first);
}

void steprun_after(steprun_t *r, uint64_t ms, steprun_fn fn)
{
    if (r->disposed)
        return;
    r->first = fn;
    uv_timer_start(&r->timer, s_on_timer, ms, 0);
}

void steprun_after_stop(steprun_t *r)
{
    r->first = NULL;
    if (!r->disposed)
        uv_timer_stop(&r->timer);
}

/* Ends the step now: disposes, then done (see steprun.h). */
static void s_end(steprun_t *r, ProtobufCMessage *payload, const char *error)
{
    if (r->disposed) {
        if (payload)
            protobuf_c_message_free_unpacked(payload, NULL);
        return;
    }
    step_done_cb done = r->done;
    void *arg = r->arg;
    char *why = NULL;
    if (error) {
        why = r->plain_errors ? xstrdup(error) : xasprintf("%s: %s", r->label, error);
        log_debug("step on %s", why);
        if (payload)
            protobuf_c_message_free_unpacked(payload, NULL);
        payload = NULL;
    } else {
        log_debug("step on %s: done", r->label);
    }
    s_dispose(r);
    if (done)
        done(payload, why, arg);
    else if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    free(why);
}

void steprun_finish(steprun_t *r, ProtobufCMessage *payload, const char *error)
{
    if (r->wind_down && !r->disposed) {
        if (r->winding) {
            if (payload)
                protobuf_c_message_free_unpacked(payload, NULL);
            return;
        }
        r->winding = true;
        r->held_payload = payload;
        r->held_error = error ? xstrdup(error) : NULL;
        for (int i = 0; i < STEPRUN_MAX_CONNS; i++)
            pgconn_destroy(&r->conn[i]);
        r->wind_down(r, false);
        return;
    }
    s_end(r, payload, error);
}

void steprun_wound_down(steprun_t *r)
{
    r->wound = true;
    if (r->disposed) {
        if (r->timer_closed)
            s_release(r);
        return;
    }
    ProtobufCMessage *payload = r->held_payload;
    char *error = r->held_error;
    r->held_payload = NULL;
    r->held_error = NULL;
    s_end(r, payload, error);
    free(error);
}

void steprun_failf(steprun_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    steprun_finish(r, NULL, why ? why : "out of memory");
    free(why);
}

void steprun_fail_query(steprun_t *r, const char *side, const pgconn_result_t *res)
{
    const char *what = r->what ? r->what : "a statement";
    char *where = side ? xasprintf("%s on the %s", what, side) : xstrdup(what);
    char *why = pgconn_result_message(where, res);
    steprun_finish(r, NULL, why);
    free(why);
    free(where);
}

static void s_sent(steprun_t *r, const char *what, int rc)
{
    if (rc != 0)
        steprun_failf(r, "%s: cannot send the statement: %s", what, strerror(-rc));
}

static void s_what(steprun_t *r, const char *what)
{
    char *w = xstrdup(what);
    free(r->what);
    r->what = w;
}

void steprun_query(steprun_t *r, int i, const char *what, const char *sql, int nparams,
                   const char *const *params, uint64_t timeout_ms, pgconn_result_cb cb)
{
    s_what(r, what);
    s_sent(r, what, pgconn_query(r->conn[i], sql, nparams, params, timeout_ms, cb, r));
}

void steprun_query_simple(steprun_t *r, int i, const char *what, const char *sql,
                          uint64_t timeout_ms, pgconn_result_cb cb)
{
    s_what(r, what);
    s_sent(r, what, pgconn_query_simple(r->conn[i], sql, timeout_ms, cb, r));
}

void steprun_next(steprun_t *r)
{
    if (r->disposed)
        return;
    steprun_fn fn = r->stages ? r->stages[r->stage] : NULL;
    if (!fn) {
        if (r->complete)
            r->complete(r);
        else
            steprun_finish(r, NULL, NULL);
        return;
    }
    r->stage++;
    fn(r);
}

char *steprun_ident(steprun_t *r, int i, const char *ident)
{
    char *q = pgconn_escape_identifier(r->conn[i], ident);
    if (!q)
        steprun_failf(r, "cannot quote the name \"%s\" for SQL (not valid in the database's "
                         "encoding, or the connection is gone)", ident);
    return q;
}
