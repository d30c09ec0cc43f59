/*
 * zuv: see zuv.h. Owns one uv_poll_t and one uv_idle_t per watched socket.
 */
#include "zuv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "xalloc.h"

struct zuv {
    uv_poll_t poll;
    uv_idle_t idle;
    void *sock;
    zuv_cb cb;
    void *arg;
    int open_handles;
    bool in_dispatch;
    bool idle_active;
};

static bool s_has_pollin(zuv_t *z)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(z->sock, ZMQ_EVENTS, &events, &len) != 0)
        return false;
    return (events & ZMQ_POLLIN) != 0;
}

static void s_idle_cb(uv_idle_t *h);

static void s_schedule(zuv_t *z)
{
    if (!z->idle_active) {
        z->idle_active = true;
        uv_idle_start(&z->idle, s_idle_cb);
    }
}

/* One round: the callback gets one chance (it has its own budget); if
 * messages remain, the idle handle brings us back next iteration. */
static void s_dispatch(zuv_t *z)
{
    if (z->in_dispatch) {
        s_schedule(z);
        return;
    }
    if (!s_has_pollin(z))
        return;
    z->in_dispatch = true;
    z->cb(z, z->sock, z->arg);
    z->in_dispatch = false;
    if (s_has_pollin(z))
        s_schedule(z);
}

static void s_idle_cb(uv_idle_t *h)
{
    zuv_t *z = h->data;
    z->idle_active = false;
    uv_idle_stop(h);
    s_dispatch(z);
}

static void s_poll_cb(uv_poll_t *h, int status, int events)
{
    zuv_t *z = h->data;
    if (status < 0)
        log_warn("zuv: poll error: %s", uv_strerror(status));
    s_dispatch(z);
}

zuv_t *zuv_new(uv_loop_t *loop, void *sock, zuv_cb on_readable, void *arg)
{
    int fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0) {
        log_error("zuv: ZMQ_FD: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    zuv_t *z = xcalloc(1, sizeof *z);
    z->sock = sock;
    z->cb = on_readable;
    z->arg = arg;
    int rc = uv_poll_init(loop, &z->poll, fd);
    if (rc != 0) {
        log_error("zuv: uv_poll_init: %s", uv_strerror(rc));
        free(z);
        return NULL;
    }
    z->poll.data = z;
    uv_idle_init(loop, &z->idle);
    z->idle.data = z;
    z->open_handles = 2;
    uv_poll_start(&z->poll, UV_READABLE, s_poll_cb);
    /* Messages may already be queued: the edge for them is gone. */
    s_schedule(z);
    return z;
}

void zuv_kick(zuv_t *z)
{
    if (z && s_has_pollin(z))
        s_schedule(z);
}

static void s_close_cb(uv_handle_t *h)
{
    zuv_t *z = h->data;
    if (--z->open_handles == 0)
        free(z);
}

void zuv_destroy(zuv_t **zp)
{
    zuv_t *z = *zp;
    if (!z)
        return;
    *zp = NULL;
    uv_poll_stop(&z->poll);
    uv_idle_stop(&z->idle);
    uv_close((uv_handle_t *)&z->poll, s_close_cb);
    uv_close((uv_handle_t *)&z->idle, s_close_cb);
}

int zuv_send_parts(zuv_t *z, void *sock, const void *const *parts, const size_t *lens, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_send(sock, parts[i], lens[i], flags) < 0) {
            rc = -zmq_errno();
            break;
        }
    }
    if (z)
        zuv_kick(z);
    return rc;
}

int zuv_recv_parts(void *sock, void *msgs_v, int max_parts, int *nparts)
{
    zmq_msg_t *msgs = msgs_v;
    *nparts = 0;
    bool overflow = false;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&part);
            if (*nparts == 0 && !overflow)
                return -e;
            /* Parts of a multipart message arrive atomically; this is a bug. */
            for (int i = 0; i < *nparts; i++)
                zmq_msg_close(&msgs[i]);
            *nparts = 0;
            return -EPROTO;
        }
        bool more = zmq_msg_more(&part);
        if (*nparts < max_parts) {
            msgs[(*nparts)++] = part;
        } else {
            overflow = true;
            zmq_msg_close(&part);
        }
        if (!more)
            break;
    }
    if (overflow) {
        for (int i = 0; i < *nparts; i++)
            zmq_msg_close(&msgs[i]);
        *nparts = 0;
        return -EPROTO;
    }
    return 0;
}

int zuv_monitor_read(void *mon, uint16_t *event, uint32_t *value, char *endpoint,
                     size_t endpoint_len)
{
    zmq_msg_t parts[2];
    int n = 0;
    int rc = zuv_recv_parts(mon, parts, 2, &n);
    if (rc != 0)
        return rc;
    if (n != 2 || zmq_msg_size(&parts[0]) != 6) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        return -EPROTO;
    }
    const uint8_t *d = zmq_msg_data(&parts[0]);
    memcpy(event, d, 2);
    memcpy(value, d + 2, 4);
    size_t el = zmq_msg_size(&parts[1]);
    if (el >= endpoint_len)
        el = endpoint_len - 1;
    memcpy(endpoint, zmq_msg_data(&parts[1]), el);
    endpoint[el] = '\0';
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
    return 0;
}

const char *zuv_event_name(uint16_t event)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED: return "connected";
    case ZMQ_EVENT_CONNECT_DELAYED: return "connect delayed";
    case ZMQ_EVENT_CONNECT_RETRIED: return "connect retried";
    case ZMQ_EVENT_LISTENING: return "listening";
    case ZMQ_EVENT_BIND_FAILED: return "bind failed";
    case ZMQ_EVENT_ACCEPTED: return "accepted";
    case ZMQ_EVENT_ACCEPT_FAILED: return "accept failed";
    case ZMQ_EVENT_CLOSED: return "closed";
    case ZMQ_EVENT_CLOSE_FAILED: return "close failed";
    case ZMQ_EVENT_DISCONNECTED: return "disconnected";
    case ZMQ_EVENT_MONITOR_STOPPED: return "monitor stopped";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake failed";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return "handshake succeeded";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "handshake failed: protocol (plaintext or wrong mechanism?)";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "handshake failed: authentication refused";
    default: return "other";
    }
}

void zuv_monitor_drain(void *mon, int budget, zuv_monitor_cb cb, void *arg)
{
    for (int i = 0; i < budget; i++) {
        uint16_t ev;
        uint32_t value;
        char ep[256];
        int rc = zuv_monitor_read(mon, &ev, &value, ep, sizeof ep);
        if (rc == -EAGAIN)
            break;
        if (rc == 0)
            cb(ev, value, ep, arg);
    }
}
