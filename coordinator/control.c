/*
 * control: see control.h. Owns the listening pipe, one conn per client and
 * the request each conn carries.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

typedef struct conn conn_t;

struct control_req {
    conn_t *conn;    /* NULL once the client is gone */
    control_t *ctl;
    control_req_t *next_pending;
    control_peer_t peer; /* the client's, copied from its conn */
    bool has_peer;
};

struct conn {
    uv_pipe_t pipe;
    control_t *ctl;
    char *buf;
    size_t len;
    control_req_t *req; /* set once a request is parsed */
    conn_t *next;
    bool closing;
    control_peer_t peer; /* SO_PEERCRED at accept */
    bool has_peer;
};

struct control {
    uv_pipe_t server;
    uv_loop_t *loop;
    char *path;
    control_handler_t handler;
    void *arg;
    conn_t *conns;
    control_req_t *pending; /* requests whose client went away, not yet replied */
};

static void s_unlink_conn(control_t *c, conn_t *k)
{
    for (conn_t **p = &c->conns; *p; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            return;
        }
    }
}

static void s_conn_closed(uv_handle_t *h)
{
    conn_t *k = h->data;
    free(k->buf);
    free(k);
}

static void s_conn_close(conn_t *k)
{
    if (k->closing)
        return;
    k->closing = true;
    s_unlink_conn(k->ctl, k);
    if (k->req) {
        /* The handler still holds it: park it until it replies. */
        k->req->conn = NULL;
        k->req->next_pending = k->ctl->pending;
        k->ctl->pending = k->req;
        k->req = NULL;
    }
    uv_close((uv_handle_t *)&k->pipe, s_conn_closed);
}

static void s_remove_pending(control_t *c, control_req_t *r)
{
    for (control_req_t **p = &c->pending; *p; p = &(*p)->next_pending) {
        if (*p == r) {
            *p = r->next_pending;
            return;
        }
    }
}

typedef struct {
    uv_write_t w;
    char *data;
    conn_t *conn;
} write_req_t;

static void s_written(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    conn_t *k = wr->conn;
    free(wr->data);
    free(wr);
    s_conn_close(k);
}

bool control_req_peer(const control_req_t *req, control_peer_t *out)
{
    if (!req->has_peer)
        return false;
    *out = req->peer;
    return true;
}

void control_reply(control_req_t *req, cJSON *response)
{
    conn_t *k = req->conn;
    if (!k) {
        s_remove_pending(req->ctl, req);
        free(req);
        cJSON_Delete(response);
        return;
    }
    k->req = NULL;
    free(req);
    char *text = cJSON_PrintUnformatted(response);
    cJSON_Delete(response);
    write_req_t *wr = xcalloc(1, sizeof *wr);
    wr->data = xasprintf("%s\n", text ? text : "{}");
    cJSON_free(text);
    wr->conn = k;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)strlen(wr->data));
    if (uv_write(&wr->w, (uv_stream_t *)&k->pipe, &b, 1, s_written) != 0) {
        free(wr->data);
        free(wr);
        s_conn_close(k);
    }
}

void control_reply_error(control_req_t *req, const char *message)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", false);
    cJSON_AddStringToObject(r, "error", message);
    control_reply(req, r);
}

static void s_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *k = h->data;
    size_t room = 4096;
    k->buf = xrealloc(k->buf, k->len + room + 1);
    *buf = uv_buf_init(k->buf + k->len, (unsigned)room);
}

static void s_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *k = s->data;
    if (n < 0) {
        s_conn_close(k);
        return;
    }
    /* Only the new bytes can hold the end of the line: a request read in
     * many pieces is scanned once, not once per piece. */
    char *nl = memchr(k->buf + k->len, '\n', (size_t)n);
    k->len += (size_t)n;
    k->buf[k->len] = '\0';
    if (!nl) {
        if (k->len > CONTROL_MAX_REQUEST) {
            log_warn("control: request over %d bytes, closing", CONTROL_MAX_REQUEST);
            s_conn_close(k);
        }
        return;
    }
    *nl = '\0';
    uv_read_stop(s);
    k->req = xcalloc(1, sizeof *k->req);
    k->req->conn = k;
    k->req->ctl = k->ctl;
    k->req->peer = k->peer;
    k->req->has_peer = k->has_peer;
    cJSON *request = cJSON_Parse(k->buf);
    if (!request || !cJSON_IsObject(request) || !cJSON_IsString(cJSON_GetObjectItem(request, "cmd"))) {
        cJSON_Delete(request);
        control_reply_error(k->req, "bad request: expected a JSON object with \"cmd\"");
        return;
    }
    k->ctl->handler(k->req, request, k->ctl->arg);
    cJSON_Delete(request);
}

static void s_on_connection(uv_stream_t *server, int status)
{
    control_t *c = server->data;
    if (status < 0) {
        log_warn("control: accept: %s", uv_strerror(status));
        return;
    }
    conn_t *k = xcalloc(1, sizeof *k);
    k->ctl = c;
    uv_pipe_init(c->loop, &k->pipe, 0);
    k->pipe.data = k;
    if (uv_accept(server, (uv_stream_t *)&k->pipe) != 0) {
        uv_close((uv_handle_t *)&k->pipe, s_conn_closed);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t credlen = sizeof cred;
    if (uv_fileno((uv_handle_t *)&k->pipe, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0 && credlen == sizeof cred) {
        k->peer = (control_peer_t){ .pid = cred.pid, .uid = cred.uid, .gid = cred.gid };
        k->has_peer = true;
    }
    k->next = c->conns;
    c->conns = k;
    uv_read_start((uv_stream_t *)&k->pipe, s_alloc, s_read);
}

/* True if something accepts connections on path. */
static bool s_live_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return live;
}

static void s_server_closed(uv_handle_t *h)
{
    control_t *c = h->data;
    free(c->path);
    free(c);
}

control_t *control_new(uv_loop_t *loop, const char *path, control_handler_t handler, void *arg,
                       char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "control socket %s: path too long", path);
        return NULL;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
            return NULL;
        }
        if (s_live_socket(path)) {
            snprintf(err, errlen, "control socket %s: another coordinator is listening", path);
            return NULL;
        }
        unlink(path);
    }
    control_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->path = xstrdup(path);
    c->handler = handler;
    c->arg = arg;
    uv_pipe_init(loop, &c->server, 0);
    c->server.data = c;
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&c->server, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->server, 64, s_on_connection);
    if (rc == 0 && chmod(path, 0600) != 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(rc));
        /* Freed by the close callback once the caller's loop runs. */
        uv_close((uv_handle_t *)&c->server, s_server_closed);
        return NULL;
    }
    return c;
}

void control_destroy(control_t **cp)
{
    control_t *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    while (c->conns) {
        conn_t *k = c->conns;
        if (k->req) {
            free(k->req);
            k->req = NULL;
        }
        s_conn_close(k);
    }
    while (c->pending) {
        control_req_t *r = c->pending;
        c->pending = r->next_pending;
        free(r);
    }
    unlink(c->path);
    uv_close((uv_handle_t *)&c->server, s_server_closed);
}
