/*
 * myconn: one Connector/C connection driven from a libuv loop (see
 * myconn.h for the contract callers rely on).
 *
 * How Connector/C's non-blocking API works, and where it bites: with
 * MYSQL_OPT_NONBLOCK every foo_start() runs the blocking foo() on a small
 * stack of its own (a coroutine) until it would wait; it then returns the
 * events it waits for (MYSQL_WAIT_READ, _WRITE, _EXCEPT on the socket, and
 * _TIMEOUT with mysql_get_timeout_value_ms() for its own connect timeout),
 * and foo_cont(events that happened) resumes it, until one returns 0 and
 * the out parameter holds what foo() would have returned. So:
 *   - an operation must run to its end before another starts; the one way
 *     out of a suspended one is closing the connection (documented as
 *     allowed), which is how the deadline and myconn_destroy end it;
 *   - while connecting the library may close a socket and open the next
 *     (the next address of a host), possibly under the same number: after
 *     every _start/_cont the poll handle is set up again on
 *     mysql_get_socket() (a new handle for a new number; uv_poll_start
 *     again for the same one, which re-adds it to epoll), before anything
 *     else can take the number;
 *   - a poll handle is uv_close'd before the library closes its descriptor
 *     (libuv removes the fd from epoll in uv_close; after another handle
 *     took the number it would silence that one);
 *   - mysql_close() is blocking (it writes COM_QUIT): the socket is shut
 *     down first, so that write fails at once instead of waiting on a
 *     server that does not read. The server sees the connection end
 *     without a COM_QUIT.
 *
 * What it owns: copies of the parameters, the MYSQL handle (and the
 * password while connecting, wiped after), its copy of the statement in
 * flight (zeroed when freed: a CHANGE MASTER's text holds a password;
 * Connector/C's own network buffer is not ours to wipe), three timers (the kick that
 * starts an operation one loop turn after myconn_query, so callbacks never
 * run inside it; the caller's deadline; the library's timeout) and at most
 * one poll handle. The struct is freed in the close callback of its last
 * handle, never directly: a callback may destroy c and the code that ran
 * it still reads c->destroyed afterwards.
 *
 * Between statements the idle connection's socket stays watched for
 * reading: a server that shuts down or kills the session is noticed and
 * the connection dropped, so the next statement connects again instead of
 * failing on the dead one.
 */
#include "myconn.h"

#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "keys.h"
#include "log.h"
#include "xalloc.h"

#define S_MAX_POLL_ERRORS 8

typedef enum { S_IDLE, S_CONNECTING, S_QUERY, S_STORE } s_state_t;

struct myconn {
    uv_loop_t *loop;
    char *label;
    char *host, *socket, *user, *password_file, *database;
    int port;
    uint64_t connect_timeout_ms;
    char **init;                /* NULL-terminated */

    MYSQL *m;                   /* NULL: no connection */
    bool connected;             /* m holds a session (its connect ended well) */
    s_state_t state;            /* the library operation in flight */
    char *password;             /* while connecting only; wiped */
    char *sql;                  /* the statement asked for, until it ends; zeroed when freed */
    uint64_t timeout_ms;
    myconn_cb cb;               /* non-NULL: a statement is in flight */
    void *arg;
    MYSQL *connect_ret;         /* the operations' out parameters */
    int query_ret;
    MYSQL_RES *res;

    uv_poll_t *poll;
    int poll_fd;
    int poll_errors;
    uv_timer_t kick;
    uv_timer_t deadline;
    uv_timer_t wait;
    int open_handles;
    bool destroyed;
};

/* ---- lifetime of the handles ------------------------------------------- */

static void s_maybe_free(myconn_t *c)
{
    if (!c->destroyed || c->open_handles > 0)
        return;
    free(c->label);
    free(c->host);
    free(c->socket);
    free(c->user);
    free(c->password_file);
    free(c->database);
    for (size_t i = 0; c->init && c->init[i]; i++)
        free(c->init[i]);
    free(c->init);
    keys_wipe_free(c->sql);
    free(c);
}

static void s_on_timer_closed(uv_handle_t *h)
{
    myconn_t *c = h->data;
    c->open_handles--;
    s_maybe_free(c);
}

static void s_on_poll_closed(uv_handle_t *h)
{
    myconn_t *c = h->data;
    free(h);
    c->open_handles--;
    s_maybe_free(c);
}

static void s_poll_close(myconn_t *c)
{
    if (!c->poll)
        return;
    uv_close((uv_handle_t *)c->poll, s_on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

static void s_forget_password(myconn_t *c)
{
    keys_wipe_free(c->password);
    c->password = NULL;
}

/* Closes the connection, abandoning a suspended operation (see the top of
 * the file); state and callback untouched. */
static void s_drop(myconn_t *c)
{
    uv_timer_stop(&c->wait);
    c->poll_errors = 0;
    s_poll_close(c); /* before the descriptor closes */
    if (c->res) {
        mysql_free_result(c->res);
        c->res = NULL;
    }
    if (c->m) {
        my_socket fd = mysql_get_socket(c->m);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR); /* COM_QUIT then fails at once */
        mysql_close(c->m);
        c->m = NULL;
    }
    c->connected = false;
    c->connect_ret = NULL;
    s_forget_password(c);
}

/* ---- watching ------------------------------------------------------------ */

static void s_on_poll(uv_poll_t *h, int status, int events);
static void s_on_wait(uv_timer_t *t);

/* Watches the connection's socket as the library asks (wait: its
 * MYSQL_WAIT_* bits), on a new poll handle when the socket changed; 0 or a
 * negative libuv error. */
static int s_watch(myconn_t *c, int wait)
{
    int fd = mysql_get_socket(c->m);
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
    }
    int events = ((wait & MYSQL_WAIT_READ) ? UV_READABLE : 0) |
                 ((wait & MYSQL_WAIT_WRITE) ? UV_WRITABLE : 0) |
                 ((wait & MYSQL_WAIT_EXCEPT) ? UV_PRIORITIZED : 0);
    if (wait & MYSQL_WAIT_TIMEOUT)
        uv_timer_start(&c->wait, s_on_wait, mysql_get_timeout_value_ms(c->m), 0);
    else
        uv_timer_stop(&c->wait);
    if (!events)
        return uv_poll_stop(c->poll);
    /* Always again, even for the same events: the library may have put a
     * new socket under the same number, which epoll does not know. */
    return uv_poll_start(c->poll, events, s_on_poll);
}

/* ---- ending a statement ------------------------------------------------ */

static void s_free_rows(myconn_result_t *r)
{
    for (size_t j = 0; r->names && j < r->n_cols; j++)
        free(r->names[j]);
    free(r->names);
    for (size_t i = 0; r->rows && i < r->n_rows; i++) {
        for (size_t j = 0; j < r->n_cols; j++)
            free(r->rows[i][j]);
        free(r->rows[i]);
    }
    free(r->rows);
}

/* Ends the statement in flight with r (its rows freed here, after the
 * callback). The idle connection is watched again first; the callback is
 * the last thing, and may destroy c. */
static void s_finish(myconn_t *c, myconn_result_t *r)
{
    myconn_cb cb = c->cb;
    void *arg = c->arg;
    c->cb = NULL;
    c->arg = NULL;
    c->state = S_IDLE;
    uv_timer_stop(&c->deadline);
    uv_timer_stop(&c->wait);
    keys_wipe_free(c->sql); /* a CHANGE MASTER's holds a password */
    c->sql = NULL;
    if (c->m && c->connected) {
        int rc = s_watch(c, MYSQL_WAIT_READ);
        if (rc < 0) {
            log_warn("myconn %s: cannot watch the idle connection (%s); dropping it", c->label,
                     uv_strerror(rc));
            s_drop(c);
        }
    }
    if (cb)
        cb(c, r, arg);
    s_free_rows(r);
}

static void s_fail(myconn_t *c, bool gone, unsigned errnum, const char *sqlstate,
                   const char *error)
{
    if (gone)
        s_drop(c);
    myconn_result_t r = { .ok = false, .gone = gone, .errnum = errnum, .error = error };
    snprintf(r.sqlstate, sizeof r.sqlstate, "%s", sqlstate ? sqlstate : "");
    log_debug("myconn %s: %s (%u)%s", c->label, error, errnum,
              gone ? ", connection dropped" : "");
    s_finish(c, &r);
}

/* Whether the error leaves no usable session: any client-side error of
 * Connector/C (2000-2999, 5000-5999: lost, out of sync, cannot connect),
 * SQLSTATE class 08, a killed connection (1927) or a server shutting
 * down (1053). */
static bool s_error_gone(unsigned errnum, const char *sqlstate)
{
    return (errnum >= 2000 && errnum < 3000) || (errnum >= 5000 && errnum < 6000) ||
           errnum == 1927 || errnum == 1053 || strncmp(sqlstate, "08", 2) == 0;
}

/* Ends the statement with the library's error. */
static void s_fail_mysql(myconn_t *c)
{
    unsigned errnum = mysql_errno(c->m);
    char sqlstate[6];
    snprintf(sqlstate, sizeof sqlstate, "%s", mysql_sqlstate(c->m));
    const char *e = mysql_error(c->m);
    char *error = xstrdup(e && e[0] ? e : "unknown error");
    bool gone = !c->connected || s_error_gone(errnum, sqlstate);
    s_fail(c, gone, errnum, sqlstate, error);
    free(error);
}

/* The stored result res into r (copies; res freed by the caller). */
static void s_read_result(MYSQL_RES *res, myconn_result_t *r)
{
    size_t nc = mysql_num_fields(res);
    MYSQL_FIELD *fields = mysql_fetch_fields(res);
    r->n_cols = nc;
    r->names = xcalloc(nc ? nc : 1, sizeof *r->names);
    for (size_t j = 0; j < nc; j++)
        r->names[j] = xstrdup(fields[j].name ? fields[j].name : "");
    size_t nr = (size_t)mysql_num_rows(res);
    r->rows = xcalloc(nr ? nr : 1, sizeof *r->rows);
    /* A stored result is in memory: mysql_fetch_row never reads the socket. */
    MYSQL_ROW row;
    while (r->n_rows < nr && (row = mysql_fetch_row(res)) != NULL) {
        unsigned long *len = mysql_fetch_lengths(res);
        char **out = xcalloc(nc ? nc : 1, sizeof *out);
        for (size_t j = 0; j < nc; j++) {
            if (!row[j])
                continue;
            out[j] = xmalloc(len[j] + 1);
            memcpy(out[j], row[j], len[j]);
            out[j][len[j]] = '\0';
        }
        r->rows[r->n_rows++] = out;
    }
}

/* ---- the operations ----------------------------------------------------- */

static void s_step(myconn_t *c, int status);

static void s_begin_query(myconn_t *c)
{
    c->state = S_QUERY;
    c->query_ret = 0;
    s_step(c, mysql_real_query_start(&c->query_ret, c->m, c->sql, strlen(c->sql)));
}

static void s_begin_store(myconn_t *c)
{
    c->state = S_STORE;
    c->res = NULL;
    s_step(c, mysql_store_result_start(&c->res, c->m));
}

/* The statement's result set (or none) is in: the statement ends well. */
static void s_stored(myconn_t *c)
{
    MYSQL_RES *res = c->res;
    c->res = NULL;
    if (!res && mysql_errno(c->m) != 0) {
        s_fail_mysql(c);
        return;
    }
    myconn_result_t r = { .ok = true };
    if (res) {
        s_read_result(res, &r);
        mysql_free_result(res);
    }
    if (mysql_more_results(c->m)) {
        /* Not one of ours (a CALL): the rest would leave the session out
         * of sync. */
        log_debug("myconn %s: further result sets dropped with the connection", c->label);
        s_drop(c);
    }
    s_finish(c, &r);
}

static void s_begin_connect(myconn_t *c)
{
    char why[512];
    if (c->password_file && !myconn_read_password(c->password_file, &c->password, why,
                                                  sizeof why)) {
        s_fail(c, true, 0, "", why);
        return;
    }
    c->m = mysql_init(NULL);
    if (!c->m) {
        s_fail(c, true, 0, "", "out of memory starting a connection");
        return;
    }
    unsigned int secs = (unsigned int)((c->connect_timeout_ms + 999) / 1000);
    unsigned int no_local_infile = 0;
    unsigned int protocol = c->socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_options(c->m, MYSQL_OPT_NONBLOCK, 0);
    mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(c->m, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
    mysql_options(c->m, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_options(c->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    for (size_t i = 0; c->init && c->init[i]; i++)
        mysql_options(c->m, MYSQL_INIT_COMMAND, c->init[i]);
    c->state = S_CONNECTING;
    c->connect_ret = NULL;
    s_step(c, mysql_real_connect_start(&c->connect_ret, c->m, c->socket ? NULL : c->host,
                                       c->user, c->password ? c->password : "", c->database,
                                       c->socket ? 0 : (unsigned int)c->port, c->socket, 0));
}

/* The library's operation ended (status 0 from _start or _cont). */
static void s_op_done(myconn_t *c)
{
    switch (c->state) {
    case S_CONNECTING:
        s_forget_password(c);
        if (!c->connect_ret) {
            s_fail_mysql(c);
            return;
        }
        c->connected = true;
        log_debug("myconn %s: connected (server %s)", c->label, mysql_get_server_info(c->m));
        s_begin_query(c);
        return;
    case S_QUERY:
        if (c->query_ret != 0) {
            s_fail_mysql(c);
            return;
        }
        s_begin_store(c);
        return;
    case S_STORE:
        s_stored(c);
        return;
    case S_IDLE:
        return;
    }
}

/* After a _start or _cont: done, or wait for what the library asks. */
static void s_step(myconn_t *c, int status)
{
    if (status == 0) {
        s_op_done(c);
        return;
    }
    int rc = s_watch(c, status);
    if (rc < 0) {
        char *why = xasprintf("cannot watch the connection's socket: %s", uv_strerror(rc));
        s_fail(c, true, 0, "", why);
        free(why);
    }
}

/* Resumes the operation with the events that happened. */
static void s_cont(myconn_t *c, int events)
{
    switch (c->state) {
    case S_CONNECTING:
        s_step(c, mysql_real_connect_cont(&c->connect_ret, c->m, events));
        return;
    case S_QUERY:
        s_step(c, mysql_real_query_cont(&c->query_ret, c->m, events));
        return;
    case S_STORE:
        s_step(c, mysql_store_result_cont(&c->res, c->m, events));
        return;
    case S_IDLE:
        return;
    }
}

static void s_on_poll(uv_poll_t *h, int status, int events)
{
    myconn_t *c = h->data;
    if (c->destroyed || h != c->poll || !c->m)
        return;
    if (c->state == S_IDLE) {
        /* Nothing is asked of an idle session: the server closed it (a
         * shutdown, KILL, wait_timeout) or says it is about to. */
        log_debug("myconn %s: the server ended the idle connection", c->label);
        s_drop(c);
        return;
    }
    int wait = 0;
    if (status < 0) {
        /* libuv stopped the handle (POLLERR): the library reads the
         * socket's error; give up if that keeps happening. */
        if (++c->poll_errors > S_MAX_POLL_ERRORS) {
            char *why = xasprintf("socket error: %s", uv_strerror(status));
            s_fail(c, true, 0, "", why);
            free(why);
            return;
        }
        wait = MYSQL_WAIT_READ | MYSQL_WAIT_WRITE;
    } else {
        c->poll_errors = 0;
        wait = ((events & (UV_READABLE | UV_DISCONNECT)) ? MYSQL_WAIT_READ : 0) |
               ((events & UV_WRITABLE) ? MYSQL_WAIT_WRITE : 0) |
               ((events & UV_PRIORITIZED) ? MYSQL_WAIT_EXCEPT : 0);
    }
    uv_timer_stop(&c->wait);
    s_cont(c, wait);
}

static void s_on_wait(uv_timer_t *t)
{
    myconn_t *c = t->data;
    if (!c->destroyed && c->m && c->state != S_IDLE)
        s_cont(c, MYSQL_WAIT_TIMEOUT);
}

static void s_on_deadline(uv_timer_t *t)
{
    myconn_t *c = t->data;
    if (c->destroyed || !c->cb)
        return;
    char *why = c->connected
                    ? xasprintf("timeout: no result after %" PRIu64 " ms, connection dropped",
                                c->timeout_ms)
                    : xasprintf("timeout: not connected after %" PRIu64 " ms", c->timeout_ms);
    s_fail(c, true, 0, "", why);
    free(why);
}

static void s_on_kick(uv_timer_t *t)
{
    myconn_t *c = t->data;
    if (c->destroyed || !c->cb || c->state != S_IDLE)
        return;
    if (c->m && c->connected)
        s_begin_query(c);
    else
        s_begin_connect(c);
}

/* ---- the API ------------------------------------------------------------- */

static bool s_set(const char *s)
{
    return s && s[0];
}

myconn_t *myconn_new(uv_loop_t *loop, const char *label, const myconn_params_t *p)
{
    if (!loop || !p || !s_set(p->user) || (!s_set(p->socket) && !s_set(p->host)) ||
        (!s_set(p->socket) && (p->port < 1 || p->port > 65535)) || p->connect_timeout_ms == 0)
        return NULL;
    myconn_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->label = xstrdup(label ? label : "mariadb");
    c->host = s_set(p->host) ? xstrdup(p->host) : NULL;
    c->socket = s_set(p->socket) ? xstrdup(p->socket) : NULL;
    c->user = xstrdup(p->user);
    c->password_file = s_set(p->password_file) ? xstrdup(p->password_file) : NULL;
    c->database = s_set(p->database) ? xstrdup(p->database) : NULL;
    c->port = p->port;
    c->connect_timeout_ms = p->connect_timeout_ms;
    size_t n = 0;
    while (p->init && p->init[n])
        n++;
    c->init = xcalloc(n + 1, sizeof *c->init);
    for (size_t i = 0; i < n; i++)
        c->init[i] = xstrdup(p->init[i]);
    c->poll_fd = -1;
    c->state = S_IDLE;
    uv_timer_init(loop, &c->kick);
    uv_timer_init(loop, &c->deadline);
    uv_timer_init(loop, &c->wait);
    c->kick.data = c;
    c->deadline.data = c;
    c->wait.data = c;
    c->open_handles = 3;
    return c;
}

bool myconn_query(myconn_t *c, const char *sql, uint64_t timeout_ms, myconn_cb cb, void *arg)
{
    if (!c || c->destroyed || c->cb || !sql || !cb || timeout_ms == 0)
        return false;
    c->sql = xstrdup(sql);
    c->timeout_ms = timeout_ms;
    c->cb = cb;
    c->arg = arg;
    uv_timer_start(&c->deadline, s_on_deadline, timeout_ms, 0);
    uv_timer_start(&c->kick, s_on_kick, 0, 0);
    return true;
}

bool myconn_busy(const myconn_t *c)
{
    return c && c->cb != NULL;
}

const char *myconn_col(const myconn_result_t *r, size_t row, const char *name)
{
    if (!r || !name || row >= r->n_rows)
        return NULL;
    for (size_t j = 0; j < r->n_cols; j++)
        if (strcmp(r->names[j], name) == 0)
            return r->rows[row][j];
    return NULL;
}

char *myconn_escape_literal(myconn_t *c, const char *s)
{
    if (!c || c->destroyed || !c->m || !c->connected || !s)
        return NULL;
    size_t n = strlen(s);
    char *out = xmalloc(2 * n + 3);
    out[0] = '\'';
    unsigned long len = mysql_real_escape_string(c->m, out + 1, s, (unsigned long)n);
    if (len == (unsigned long)-1) {
        free(out);
        return NULL;
    }
    out[1 + len] = '\'';
    out[2 + len] = '\0';
    return out;
}

char *myconn_result_message(const char *what, const myconn_result_t *r)
{
    char code[48] = "";
    if (r->errnum && r->sqlstate[0])
        snprintf(code, sizeof code, " (%u, SQLSTATE %s)", r->errnum, r->sqlstate);
    else if (r->errnum)
        snprintf(code, sizeof code, " (%u)", r->errnum);
    return xasprintf("%s%s%s%s", what ? what : "", what ? ": " : "",
                     r->error ? r->error : "statement failed", code);
}

bool myconn_read_password(const char *path, char **password, char *why, size_t whylen)
{
    char *text = NULL;
    if (keys_read_secret("password file", path, &text, why, whylen) != 0)
        return false;
    size_t n = strcspn(text, "\r\n");
    char *pw = xmalloc(n + 1);
    memcpy(pw, text, n);
    pw[n] = '\0';
    keys_wipe_free(text); /* the whole file, not only its first line */
    *password = pw;
    return true;
}

void myconn_destroy(myconn_t **cp)
{
    if (!cp || !*cp)
        return;
    myconn_t *c = *cp;
    *cp = NULL;
    if (c->destroyed)
        return;
    c->destroyed = true;
    c->cb = NULL;
    c->arg = NULL;
    c->state = S_IDLE;
    s_drop(c);
    uv_close((uv_handle_t *)&c->kick, s_on_timer_closed);
    uv_close((uv_handle_t *)&c->deadline, s_on_timer_closed);
    uv_close((uv_handle_t *)&c->wait, s_on_timer_closed);
}
