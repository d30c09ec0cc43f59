/*
 * pgconn: one libpq connection driven from a libuv loop (see pgconn.h for
 * the contract callers rely on).
 *
 * What it owns: the PGconn, its copied keyword/value arrays, two timers
 * (the operation deadline and a zero-delay "defer" timer that reports a
 * failure discovered inside pgconn_connect/pgconn_query one loop turn later,
 * so callbacks never run inside those calls), and at most one uv_poll_t on
 * the connection's socket. libpq may replace the socket while connecting
 * (next host or address), so the poll handle is re-armed after every
 * PQconnectPoll and replaced when PQsocket changes. A poll handle is always
 * uv_close'd before PQfinish closes its descriptor (libuv removes the fd from
 * epoll inside uv_close; doing it after another handle took the same fd
 * number would silence that handle).
 *
 * Sending a statement and collecting its results is pgconn_query.c's job,
 * the COPY phases of an operation pgconn_copy.c's; the three share the
 * struct and their pgconn__* functions through pgconn_internal.h.
 *
 * While idle the socket stays watched for reading, so a server that shuts
 * down or terminates the session is noticed before the next query (and its
 * notices are logged instead of printed). Error texts handed to callbacks
 * are libpq's messages folded onto one line.
 *
 * The struct is freed in the close callback of its last handle, never
 * directly: a user callback may call pgconn_destroy() and the code that ran
 * the callback still reads c->destroyed afterwards.
 *
 * What it must never do: block (no PQcancel, no PQexec, no PQconnectdb), call
 * a user callback from inside pgconn_connect/pgconn_query or more than once
 * per operation, or leave a PGresult un-cleared.
 */
#include "pgconn.h"
#include "pgconn_internal.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_POLL_ERRORS 8

static void s_on_poll(uv_poll_t *h, int status, int events);

static void s_free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static size_t s_count(const char *const *kw)
{
    size_t n = 0;
    while (kw[n])
        n++;
    return n;
}

/* A one-line copy of a libpq message (caller frees): trailing whitespace
 * trimmed, each line break and the indentation after it turned into one
 * space, so it fits in a log line and a report. */
char *pgconn__oneline(const char *msg)
{
    if (!msg || !*msg)
        msg = "unknown error";
    char *out = xstrdup(msg);
    size_t o = 0;
    for (const char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            while (p[1] == '\n' || p[1] == '\r' || p[1] == '\t' || p[1] == ' ')
                p++;
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return out;
}

static void s_maybe_free(pgconn_t *c)
{
    if (c->destroyed && c->open_handles == 0) {
        s_free_strv(c->keywords, c->nkeywords);
        s_free_strv(c->values, c->nkeywords);
        free(c->defer_msg);
        free(c->name);
        free(c);
    }
}

static void s_on_timer_closed(uv_handle_t *h)
{
    pgconn_t *c = h->data;
    c->open_handles--;
    s_maybe_free(c);
}

static void s_on_poll_closed(uv_handle_t *h)
{
    pgconn_t *c = h->data;
    free(h);
    c->open_handles--;
    s_maybe_free(c);
}

static void s_poll_close(pgconn_t *c)
{
    if (!c->poll)
        return;
    uv_close((uv_handle_t *)c->poll, s_on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* Watches the connection's current socket for events. Replaces the poll
 * handle when libpq moved to another descriptor; force re-arms even when
 * nothing seems to have changed (while connecting, libpq may close a socket
 * and open the next one under the same number, which epoll forgets).
 * 0 or a negative libuv error. */
static int s_watch(pgconn_t *c, int events, bool force)
{
    int fd = PQsocket(c->conn);
    if (fd < 0)
        return UV_EBADF;
    if (c->poll && c->poll_fd != fd)
        s_poll_close(c);
    if (!c->poll) {
        uv_poll_t *p = xmalloc(sizeof *p);
        int rc = uv_poll_init(c->loop, p, fd);
        if (rc < 0) {
            free(p); /* never became a handle: nothing to close */
            return rc;
        }
        p->data = c;
        c->open_handles++;
        c->poll = p;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (!force && c->poll_events == events && uv_is_active((uv_handle_t *)c->poll))
        return 0;
    /* uv_poll_start removes the fd from epoll and adds it again. */
    int rc = uv_poll_start(c->poll, events, s_on_poll);
    c->poll_events = rc < 0 ? 0 : events;
    return rc;
}

/* Closes the connection and its poll handle; state and callbacks untouched. */
void pgconn__drop(pgconn_t *c)
{
    c->poll_events = 0;
    c->poll_errors = 0;
    uv_timer_stop(&c->deadline);
    s_poll_close(c); /* before PQfinish closes the descriptor */
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    if (c->last) {
        PQclear(c->last);
        c->last = NULL;
    }
}

static void s_notice(void *arg, const char *message)
{
    pgconn_t *c = arg;
    if (log_enabled(LOG_INFO)) {
        char *m = pgconn__oneline(message);
        log_info("pgconn %s: server says: %s", c->name, m);
        free(m);
    }
}

/* ---- delivering outcomes ---------------------------------------------- */

static void s_on_defer(uv_timer_t *t);

static void s_defer(pgconn_t *c, pgconn__defer_t kind, const char *sqlstate, const char *msg)
{
    c->defer_kind = kind;
    snprintf(c->defer_sqlstate, sizeof c->defer_sqlstate, "%s", sqlstate ? sqlstate : "");
    free(c->defer_msg);
    c->defer_msg = xstrdup(msg);
    if (c->poll) {
        uv_poll_stop(c->poll); /* nothing to read until the report is out */
        c->poll_events = 0;
    }
    uv_timer_start(&c->defer, s_on_defer, 0, 0);
}

/* Reports the end of a connection attempt; the caller has already dropped the
 * connection when !ok. */
static void s_connect_done(pgconn_t *c, bool ok, const char *msg)
{
    uv_timer_stop(&c->deadline);
    if (c->in_api) {
        s_defer(c, PGCONN__DEFER_CONNECT, ok ? "" : "08006", msg);
        return;
    }
    pgconn_connect_cb cb = c->connect_cb;
    void *arg = c->cb_arg;
    c->connect_cb = NULL;
    c->cb_arg = NULL;
    c->state = ok ? PGCONN__READY : PGCONN__IDLE;
    if (cb)
        cb(c, ok, ok ? NULL : msg, arg);
}

/* Reports the end of a query. res (may be NULL) is owned by this function
 * and cleared after the callback. */
void pgconn__query_done(pgconn_t *c, bool ok, const char *sqlstate, const char *msg,
                        PGresult *res)
{
    uv_timer_stop(&c->deadline);
    if (c->in_api) {
        if (res)
            PQclear(res);
        s_defer(c, PGCONN__DEFER_QUERY, sqlstate, msg);
        return;
    }
    pgconn_result_cb cb = c->result_cb;
    void *arg = c->cb_arg;
    c->result_cb = NULL;
    c->cb_arg = NULL;
    c->copy_data = NULL;
    c->copy_ready = NULL;
    c->copy_drain = NULL;
    c->copy_paused = false;
    c->copy_pending = false;
    uv_timer_stop(&c->kick);
    /* Idle again: watch for the server closing on us. */
    if (c->conn) {
        int rc = s_watch(c, UV_READABLE, false);
        if (rc < 0) {
            log_warn("pgconn %s: cannot watch the idle connection (%s); dropping it", c->name,
                     uv_strerror(rc));
            pgconn__drop(c);
        }
    }
    c->state = c->conn ? PGCONN__READY : PGCONN__IDLE;
    pgconn_result_t r = {.ok = ok, .error = ok ? NULL : msg, .res = res};
    snprintf(r.sqlstate, sizeof r.sqlstate, "%s", ok ? "" : (sqlstate ? sqlstate : ""));
    if (cb)
        cb(c, &r, arg);
    if (res)
        PQclear(res);
}

static void s_on_defer(uv_timer_t *t)
{
    pgconn_t *c = t->data;
    pgconn__defer_t kind = c->defer_kind;
    char *msg = c->defer_msg;
    char sqlstate[6];
    memcpy(sqlstate, c->defer_sqlstate, sizeof sqlstate);
    c->defer_kind = PGCONN__DEFER_NONE;
    c->defer_msg = NULL;
    if (kind == PGCONN__DEFER_CONNECT)
        s_connect_done(c, false, msg);
    else if (kind == PGCONN__DEFER_QUERY)
        pgconn__query_done(c, false, sqlstate, msg, NULL);
    free(msg);
}

/* The connection is gone (or we gave up on it): drop it and fail whatever
 * was in flight with sqlstate 08006. */
void pgconn__lost(pgconn_t *c, const char *why)
{
    char *msg = pgconn__oneline(why);
    pgconn__state_t st = c->state;
    log_debug("pgconn %s: connection dropped: %s", c->name, msg);
    pgconn__drop(c);
    if (st == PGCONN__CONNECTING)
        s_connect_done(c, false, msg);
    else if (st == PGCONN__QUERY || st == PGCONN__COPY_OUT || st == PGCONN__COPY_IN)
        pgconn__query_done(c, false, "08006", msg, NULL);
    else
        c->state = PGCONN__IDLE;
    free(msg);
}

/* s_watch, or the connection lost if the socket cannot be watched (the
 * callback is told, as for any lost connection). Returns s_watch's code. */
int pgconn__watch_or_lose(pgconn_t *c, int events, bool force)
{
    int rc = s_watch(c, events, force);
    if (rc < 0) {
        char *why = xasprintf("cannot watch the connection socket: %s", uv_strerror(rc));
        pgconn__lost(c, why);
        free(why);
    }
    return rc;
}

void pgconn__on_deadline(uv_timer_t *t)
{
    pgconn_t *c = t->data;
    char *why;
    if (c->state == PGCONN__CONNECTING)
        why = xasprintf("timeout: not connected after %" PRIu64 " ms", c->op_timeout_ms);
    else
        why = xasprintf("timeout: no result after %" PRIu64 " ms, connection dropped",
                        c->op_timeout_ms);
    pgconn__lost(c, why);
    free(why);
}

/* ---- connecting --------------------------------------------------------- */

/* Starts an operation (connecting, a statement): its state, its callback's
 * argument and its deadline; the caller sets the callback, and leaves the
 * API call with in_api--. */
void pgconn__begin(pgconn_t *c, pgconn__state_t state, uint64_t timeout_ms, void *arg)
{
    c->in_api++;
    c->state = state;
    c->cb_arg = arg;
    c->op_timeout_ms = timeout_ms;
    uv_timer_start(&c->deadline, pgconn__on_deadline, timeout_ms, 0);
}

static void s_connect_step(pgconn_t *c)
{
    PostgresPollingStatusType ps = PQconnectPoll(c->conn);
    switch (ps) {
    case PGRES_POLLING_READING:
        (void)pgconn__watch_or_lose(c, UV_READABLE, true);
        return;
    case PGRES_POLLING_WRITING:
        (void)pgconn__watch_or_lose(c, UV_WRITABLE, true);
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->conn, 1) != 0) {
            pgconn__lost(c, PQerrorMessage(c->conn));
            return;
        }
        /* Idle: watch for the server closing on us (shutdown, terminate). */
        if (pgconn__watch_or_lose(c, UV_READABLE, true) < 0)
            return;
        log_debug("pgconn %s: connected (server %d)", c->name, PQserverVersion(c->conn));
        s_connect_done(c, true, NULL);
        return;
    case PGRES_POLLING_FAILED:
    default:
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
}

int pgconn_connect(pgconn_t *c, uint64_t timeout_ms, pgconn_connect_cb cb, void *arg)
{
    if (!c || c->destroyed)
        return -EINVAL;
    if (c->state != PGCONN__IDLE)
        return -EBUSY;
    pgconn__begin(c, PGCONN__CONNECTING, timeout_ms, arg);
    c->connect_cb = cb;
    /* expand_dbname = 0: a dbname is a name, never a conninfo string. Note
     * that libpq resolves a host name here with getaddrinfo(), which can
     * block; give an address (or "localhost") to stay fully asynchronous. */
    c->conn = PQconnectStartParams((const char *const *)c->keywords,
                                   (const char *const *)c->values, 0);
    if (!c->conn) {
        s_connect_done(c, false, "out of memory starting a connection");
    } else if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgconn__lost(c, PQerrorMessage(c->conn));
    } else {
        PQsetNoticeProcessor(c->conn, s_notice, c);
        /* Right after PQconnectStart libpq waits for the socket to be
         * writable, as if PQconnectPoll had said PGRES_POLLING_WRITING. */
        (void)pgconn__watch_or_lose(c, UV_WRITABLE, true);
    }
    c->in_api--;
    return 0;
}

/* ---- idle --------------------------------------------------------------- */

/* Input while no query runs: notices, notifications, or the server going
 * away (shutdown, pg_terminate_backend). */
static void s_idle_step(pgconn_t *c)
{
    if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
        char *msg = pgconn__oneline(PQerrorMessage(c->conn));
        log_info("pgconn %s: idle connection lost: %s", c->name, msg);
        free(msg);
        pgconn__lost(c, PQerrorMessage(c->conn));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->conn)) != NULL)
        PQfreemem(n);
}

static void s_on_poll(uv_poll_t *h, int status, int events)
{
    pgconn_t *c = h->data;
    if (c->destroyed || h != c->poll || !c->conn || c->defer_kind != PGCONN__DEFER_NONE)
        return;
    if (status < 0) {
        /* libuv turns POLLERR into UV_EBADF and stops the handle. The error
         * is libpq's to read (a refused connect, a reset), so hand it the
         * socket as readable and writable; give up only if that keeps
         * happening without libpq ending the operation. */
        if (++c->poll_errors > S_MAX_POLL_ERRORS) {
            char *why = xasprintf("socket error: %s", uv_strerror(status));
            pgconn__lost(c, why);
            free(why);
            return;
        }
        events = UV_READABLE | UV_WRITABLE;
        c->poll_events = 0; /* stopped by libuv: re-arm */
    } else {
        c->poll_errors = 0;
    }
    switch (c->state) {
    case PGCONN__CONNECTING:
        s_connect_step(c);
        break;
    case PGCONN__QUERY:
        pgconn__query_step(c, events);
        break;
    case PGCONN__COPY_OUT:
        if ((events & UV_READABLE) && !PQconsumeInput(c->conn)) {
            pgconn__lost(c, PQerrorMessage(c->conn));
            break;
        }
        pgconn__copy_out_step(c);
        break;
    case PGCONN__COPY_IN:
        pgconn__copy_in_step(c, events);
        break;
    case PGCONN__READY:
        s_idle_step(c);
        break;
    case PGCONN__IDLE:
        break;
    }
}

/* ---- lifetime ----------------------------------------------------------- */

pgconn_t *pgconn_new(uv_loop_t *loop, const char *name, const char *const *keywords,
                     const char *const *values)
{
    if (!loop || !keywords || !values)
        return NULL;
    size_t n = s_count(keywords);
    pgconn_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->name = xstrdup(name ? name : "postgres");
    c->keywords = xcalloc(n + 1, sizeof *c->keywords);
    c->values = xcalloc(n + 1, sizeof *c->values);
    c->nkeywords = n;
    for (size_t i = 0; i < n; i++) {
        c->keywords[i] = xstrdup(keywords[i]);
        c->values[i] = xstrdup(values[i]); /* a NULL value stays NULL: libpq skips it */
    }
    c->poll_fd = -1;
    c->state = PGCONN__IDLE;
    uv_timer_init(loop, &c->deadline);
    uv_timer_init(loop, &c->defer);
    uv_timer_init(loop, &c->kick);
    c->deadline.data = c;
    c->defer.data = c;
    c->kick.data = c;
    c->open_handles = 3;
    return c;
}

bool pgconn_is_ready(const pgconn_t *c)
{
    return c && !c->destroyed && c->state == PGCONN__READY && c->conn &&
           PQstatus(c->conn) == CONNECTION_OK;
}

bool pgconn_is_busy(const pgconn_t *c)
{
    return c && (c->state == PGCONN__CONNECTING || c->state == PGCONN__QUERY ||
                 c->state == PGCONN__COPY_OUT || c->state == PGCONN__COPY_IN);
}

int pgconn_server_version(const pgconn_t *c)
{
    if (!c || !c->conn || PQstatus(c->conn) != CONNECTION_OK)
        return 0;
    return PQserverVersion(c->conn);
}

const char *pgconn_name(const pgconn_t *c)
{
    return c ? c->name : NULL;
}

char *pgconn_escape_identifier(pgconn_t *c, const char *ident)
{
    if (!c || c->destroyed || !ident || !c->conn || PQstatus(c->conn) != CONNECTION_OK)
        return NULL;
    char *q = PQescapeIdentifier(c->conn, ident, strlen(ident));
    if (!q) {
        char *msg = pgconn__oneline(PQerrorMessage(c->conn));
        log_debug("pgconn %s: cannot quote an identifier: %s", c->name, msg);
        free(msg);
        return NULL;
    }
    char *out = xstrdup(q);
    PQfreemem(q);
    return out;
}

char *pgconn_escape_literal(pgconn_t *c, const char *s)
{
    if (!c || c->destroyed || !s || !c->conn || PQstatus(c->conn) != CONNECTION_OK)
        return NULL;
    char *q = PQescapeLiteral(c->conn, s, strlen(s));
    if (!q) {
        char *msg = pgconn__oneline(PQerrorMessage(c->conn));
        log_debug("pgconn %s: cannot quote a literal: %s", c->name, msg);
        free(msg);
        return NULL;
    }
    char *out = xstrdup(q);
    PQfreemem(q);
    return out;
}

void pgconn_disconnect(pgconn_t *c)
{
    if (!c || c->destroyed)
        return;
    if (c->defer_kind != PGCONN__DEFER_NONE) {
        /* A failure already waits for its report: deliver it now. */
        uv_timer_stop(&c->defer);
        pgconn__drop(c);
        s_on_defer(&c->defer);
        return;
    }
    pgconn__lost(c, "connection closed");
}

void pgconn_destroy(pgconn_t **cp)
{
    if (!cp || !*cp)
        return;
    pgconn_t *c = *cp;
    *cp = NULL;
    if (c->destroyed)
        return;
    c->destroyed = true;
    c->connect_cb = NULL;
    c->result_cb = NULL;
    c->cb_arg = NULL;
    c->defer_kind = PGCONN__DEFER_NONE;
    pgconn__drop(c);
    c->state = PGCONN__IDLE;
    uv_close((uv_handle_t *)&c->deadline, s_on_timer_closed);
    uv_close((uv_handle_t *)&c->defer, s_on_timer_closed);
    uv_close((uv_handle_t *)&c->kick, s_on_timer_closed);
}

/* ---- reading results ---- */

const char *pgconn_col(const PGresult *res, int row, const char *name)
{
    int c = PQfnumber(res, name);
    if (c < 0 || row >= PQntuples(res) || PQgetisnull(res, row, c))
        return NULL;
    return PQgetvalue(res, row, c);
}

const char *pgconn_col_str(const PGresult *res, int row, const char *name)
{
    const char *v = pgconn_col(res, row, name);
    return v ? v : "";
}

bool pgconn_col_bool(const PGresult *res, int row, const char *name)
{
    const char *v = pgconn_col(res, row, name);
    return v && v[0] == 't';
}

int64_t pgconn_col_i64(const PGresult *res, int row, const char *name, int64_t dflt)
{
    const char *v = pgconn_col(res, row, name);
    if (!v)
        return dflt;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    return (errno || end == v || *end) ? dflt : n;
}

uint64_t pgconn_col_u64(const PGresult *res, int row, const char *name)
{
    const char *v = pgconn_col(res, row, name);
    if (!v || *v < '0' || *v > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    return (errno || *end) ? 0 : n;
}

char *pgconn_result_message(const char *what, const pgconn_result_t *r)
{
    return xasprintf("%s%s%s%s%s%s", what ? what : "", what ? ": " : "",
                     r->error ? r->error : "statement failed",
                     r->sqlstate[0] ? " (SQLSTATE " : "", r->sqlstate, r->sqlstate[0] ? ")" : "");
}

char *pgconn_text_array(char *const *v, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(v[i]) + 3;
    char *out = xmalloc(len), *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}
