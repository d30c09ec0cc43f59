/*
 * metricsd: see metricsd.h. Owns the MHD daemon, the uv_poll on its epoll
 * descriptor and the uv_timer for its timeouts; the struct is freed when
 * both handles have closed.
 *
 * The trap: libuv must stop watching MHD's epoll descriptor before
 * MHD_stop_daemon closes it (a closed descriptor still in libuv's epoll
 * set is undefined behaviour), so destroy closes the uv_poll first.
 */
#include "metricsd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define S_CONNECTION_LIMIT 32    /* scrapers at once */
#define S_CONNECTION_TIMEOUT_S 10 /* an idle or slow connection is closed */
#define S_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metricsd {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    metricsd_render_cb render;
    void *arg;
    promtext_t *text;
    uint64_t scrapes;
    char listen[96];
};

/* ---- addresses ---- */

bool metricsd_addr_parse(const char *hostport, struct sockaddr_storage *out, bool *loopback,
                         char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(hostport, ':');
    char host[64];
    size_t hlen = colon ? (size_t)(colon - hostport) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host || colon[1] == '\0' || *end != '\0' ||
        port < 1 || port > 65535) {
        snprintf(why, whylen, "expected HOST:PORT (PORT 1-65535), got \"%s\"", hostport);
        return false;
    }
    memcpy(host, hostport, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && host[hlen - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
            snprintf(why, whylen, "expected an IPv6 address in [ ], got \"%s\"", hostport);
            return false;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
                    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
        return true;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
        snprintf(why, whylen,
                 "expected an IPv4 address, [IPv6 address] or localhost before the port, got "
                 "\"%s\"", hostport);
        return false;
    }
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    return true;
}

/* ---- requests ---- */

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, const char *text,
                               const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_request(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    metricsd_t *m = cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = m; /* headers seen: answer once the whole request is in */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is not wanted: read and dropped */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
    if (strcmp(url, "/metrics") != 0)
        return s_reply(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", NULL);
    m->scrapes++;
    m->render(m->text, m->arg);
    size_t len = 0;
    char *body = promtext_take(m->text, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, S_CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

__attribute__((format(printf, 2, 0))) static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    metricsd_t *m = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("metrics on %s: %s", m->listen, line);
}

/* ---- the loop ---- */

static void s_on_timer(uv_timer_t *t);

/* Runs whatever MHD has ready, then arms the timer for its next timeout. */
static void s_run(metricsd_t *m)
{
    if (!m->mhd)
        return;
    MHD_run(m->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
        uv_timer_start(&m->timer, s_on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&m->timer);
}

static void s_on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    s_run(p->data);
}

static void s_on_timer(uv_timer_t *t)
{
    s_run(t->data);
}

static void s_closed(uv_handle_t *h)
{
    metricsd_t *m = h->data;
    if (--m->open_handles == 0) {
        promtext_destroy(&m->text);
        free(m);
    }
}

metricsd_t *metricsd_new(uv_loop_t *loop, const char *listen, metricsd_render_cb render, void *arg,
                         char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    bool loopback = false;
    char why[256];
    if (!metricsd_addr_parse(listen, &ss, &loopback, why, sizeof why)) {
        snprintf(err, errlen, "metrics: %s", why);
        return NULL;
    }
    metricsd_t *m = xcalloc(1, sizeof *m);
    m->loop = loop;
    m->render = render;
    m->arg = arg;
    snprintf(m->listen, sizeof m->listen, "%s", listen);
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, s_request, m,
                              MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, m, /* first: see MHD */
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONNECTION_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_CONNECTION_TIMEOUT_S,
                              MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        snprintf(err, errlen, "metrics: cannot listen on %s (see above)", listen);
        if (m->mhd)
            MHD_stop_daemon(m->mhd);
        free(m);
        return NULL;
    }
    m->text = promtext_new();
    uv_poll_init(loop, &m->poll, info->epoll_fd);
    uv_timer_init(loop, &m->timer);
    m->poll.data = m->timer.data = m;
    m->open_handles = 2;
    uv_poll_start(&m->poll, UV_READABLE, s_on_poll);
    log_info("metrics: serving http://%s/metrics", listen);
    return m;
}

void metricsd_destroy(metricsd_t **mp)
{
    metricsd_t *m = *mp;
    if (!m)
        return;
    *mp = NULL;
    uv_close((uv_handle_t *)&m->poll, s_closed); /* before MHD closes the descriptor */
    uv_close((uv_handle_t *)&m->timer, s_closed);
    MHD_stop_daemon(m->mhd);
    m->mhd = NULL;
}

uint64_t metricsd_scrapes(const metricsd_t *m)
{
    return m->scrapes;
}
