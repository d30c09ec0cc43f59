/*
 * mystep: the MariaDB steps' lifecycle (mystep.h). It owns the timer and
 * the label of the statement in flight; the step's connections and fields
 * are its own, reached through its ops. Never: done twice, done after
 * step_cancel, or done from inside mystep_init or mystep_defer.
 */
#include "mystep.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "keys.h"
#include "xalloc.h"

static void s_on_closed(uv_handle_t *h)
{
    mystep_t *s = h->data;
    free(s->what);
    s->ops->release(s);
}

/* Stops everything; no callback runs afterwards. */
static void s_dispose(mystep_t *s)
{
    if (s->disposed)
        return;
    s->disposed = true;
    s->done = NULL;
    s->ops->close(s);
    uv_close((uv_handle_t *)&s->timer, s_on_closed);
}

static void s_cancel(step_t *base)
{
    s_dispose((mystep_t *)base);
}

static void s_on_timer(uv_timer_t *t)
{
    mystep_t *s = t->data;
    mystep_fn fn = s->first;
    s->first = NULL;
    if (fn && !s->disposed)
        fn(s);
}

void mystep_init(mystep_t *s, uv_loop_t *loop, const mystep_ops_t *ops, step_done_cb done,
                 void *arg)
{
    s->base.cancel = s_cancel;
    s->ops = ops;
    s->done = done;
    s->arg = arg;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
}

step_t *mystep_defer(mystep_t *s, mystep_fn first)
{
    s->first = first;
    uv_timer_start(&s->timer, s_on_timer, 0, 0);
    return &s->base;
}

static void s_finish(mystep_t *s, ProtobufCMessage *payload, const char *error, bool both)
{
    if (error && payload && !both) {
        protobuf_c_message_free_unpacked(payload, NULL);
        payload = NULL;
    }
    if (s->disposed) {
        if (payload)
            protobuf_c_message_free_unpacked(payload, NULL);
        return;
    }
    step_done_cb done = s->done;
    void *arg = s->arg;
    if (error && s->ops->log_error)
        s->ops->log_error(s, error);
    s_dispose(s);
    if (done)
        done(payload, error, arg);
    else if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
}

void mystep_finish(mystep_t *s, ProtobufCMessage *payload, const char *error)
{
    s_finish(s, payload, error, false);
}

void mystep_finish_both(mystep_t *s, ProtobufCMessage *payload, const char *error)
{
    s_finish(s, payload, error, true);
}

void mystep_after(mystep_t *s, uint64_t ms, mystep_fn fn)
{
    if (s->disposed)
        return;
    s->first = fn;
    uv_timer_start(&s->timer, s_on_timer, ms, 0);
}

void mystep_failf(mystep_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    mystep_finish(s, NULL, why ? why : "out of memory");
    free(why);
}

void mystep_fail_query(mystep_t *s, const char *what, const myconn_result_t *r)
{
    if (!what)
        what = s->what ? s->what : "a statement";
    char *why = myconn_result_message(what, r);
    mystep_finish(s, NULL, why);
    free(why);
}

bool mystep_query(mystep_t *s, myconn_t *conn, const char *what, const char *sql,
                  uint64_t timeout_ms, myconn_cb cb, void *arg)
{
    char *w = xstrdup(what);
    free(s->what);
    s->what = w;
    if (myconn_query(conn, sql, timeout_ms, cb, arg))
        return true;
    mystep_failf(s, "%s: cannot send the statement", w); /* what may be the old s->what */
    return false;
}

char *mystep_literal(mystep_t *s, myconn_t *conn, const char *str)
{
    char *q = myconn_escape_literal(conn, str);
    if (!q)
        mystep_failf(s, "cannot quote \"%s\" for SQL: the connection is gone", str);
    return q;
}

char *mystep_change_master_sql(mystep_t *s, myconn_t *conn, const char *connection,
                               const char *peer_name, const char *host, int port,
                               const char *user, const char *password_file)
{
    char *password = NULL;
    char why[256];
    if (password_file && password_file[0] &&
        !myconn_read_password(password_file, &password, why, sizeof why)) {
        mystep_failf(s, "reading peer %s's password_file: %s", peer_name, why);
        return NULL;
    }
    char *qhost = mystep_literal(s, conn, host);
    char *quser = qhost ? mystep_literal(s, conn, user) : NULL;
    char *qpw = quser ? mystep_literal(s, conn, password ? password : "") : NULL;
    keys_wipe_free(password);
    char *sql = qpw ? xasprintf("CHANGE MASTER '%s' TO MASTER_HOST = %s, MASTER_PORT = %d, "
                                "MASTER_USER = %s, MASTER_PASSWORD = %s, "
                                "MASTER_USE_GTID = slave_pos",
                                connection, qhost, port, quser, qpw)
                    : NULL;
    keys_wipe_free(qpw);
    free(qhost);
    free(quser);
    return sql;
}

bool mystep_is(const step_t *step, const mystep_ops_t *ops)
{
    return step && step->cancel == s_cancel && ((const mystep_t *)step)->ops == ops;
}
