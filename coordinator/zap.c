/*
 * zap: see zap.h. Owns the REP socket and its zuv watcher.
 */
#include "zap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "units.h"
#include "xalloc.h"
#include "zuv.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_BUDGET 256

struct zap {
    void *sock;
    zuv_t *watch;
    const keys_allowlist_t *allow;
    ratelimit_t *log_limit;
    zap_stats_t stats;
};

/* Logs a refusal of the peer at address, unless this peer's refusals are
 * being suppressed (then counted, and reported later by the limiter). */
static void s_refusal(zap_t *z, const char *address, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_refusal(zap_t *z, const char *address, const char *fmt, ...)
{
    uint64_t before = 0;
    if (!ratelimit_allow(z->log_limit, address, units_mono_ms(), &before))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (before)
        log_warn("zap: refused %s: %s (and %llu more of the same not logged before)", address, msg,
                 (unsigned long long)before);
    else
        log_warn("zap: refused %s: %s", address, msg);
}

static void s_frame_str(zmq_msg_t *m, char *out, size_t len)
{
    size_t n = zmq_msg_size(m);
    if (n >= len)
        n = len - 1;
    memcpy(out, zmq_msg_data(m), n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
}

static void s_reply(zap_t *z, zmq_msg_t *request_id, const char *code, const char *text,
                    const char *user)
{
    const void *parts[6] = { "1.0", zmq_msg_data(request_id), code, text, user, "" };
    size_t lens[6] = { 3, zmq_msg_size(request_id), strlen(code), strlen(text), strlen(user), 0 };
    int rc = zuv_send_parts(z->watch, z->sock, parts, lens, 6);
    if (rc != 0)
        log_error("zap: cannot send reply: %s", zmq_strerror(-rc));
}

static void s_handle(zap_t *z, zmq_msg_t *f, int n)
{
    char version[8], domain[64], address[64], mechanism[16];
    if (n < 6) {
        /* A REP socket owes a reply to every request, even a malformed one. */
        log_warn("zap: malformed request (%d frames), refused", n);
        z->stats.refused_other++;
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        s_reply(z, n >= 2 ? &f[1] : &empty, "500", "malformed ZAP request", "");
        zmq_msg_close(&empty);
        return;
    }
    s_frame_str(&f[0], version, sizeof version);
    s_frame_str(&f[2], domain, sizeof domain);
    s_frame_str(&f[3], address, sizeof address);
    s_frame_str(&f[5], mechanism, sizeof mechanism);
    if (strcmp(version, "1.0") != 0) {
        s_refusal(z, address, "ZAP version %s", version);
        z->stats.refused_other++;
        s_reply(z, &f[1], "500", "unsupported ZAP version", "");
        return;
    }
    if (strcmp(domain, ZAP_DOMAIN) != 0) {
        s_refusal(z, address, "domain \"%s\" is not \"%s\"", domain, ZAP_DOMAIN);
        z->stats.refused_other++;
        s_reply(z, &f[1], "400", "wrong domain", "");
        return;
    }
    if (strcmp(mechanism, "CURVE") != 0 || n < 7 || zmq_msg_size(&f[6]) != 32) {
        s_refusal(z, address, "mechanism %s, only CURVE is allowed", mechanism);
        z->stats.refused_other++;
        s_reply(z, &f[1], "400", "CURVE required", "");
        return;
    }
    char key[KEYS_Z85_LEN + 1];
    zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
    const char *name = keys_allowlist_find(z->allow, key);
    if (!name) {
        s_refusal(z, address, "public key %s is not in the allow-list", key);
        z->stats.refused_unknown_key++;
        s_reply(z, &f[1], "400", "key not allowed", "");
        return;
    }
    log_debug("zap: allowed agent %s from %s", name, address);
    z->stats.allowed++;
    s_reply(z, &f[1], "200", "OK", name);
}

static void s_readable(zuv_t *w, void *sock, void *arg)
{
    zap_t *z = arg;
    for (int i = 0; i < ZAP_BUDGET; i++) {
        zmq_msg_t f[8];
        int n = 0;
        int rc = zuv_recv_parts(sock, f, 8, &n);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            log_warn("zap: bad request: %s", zmq_strerror(-rc));
            z->stats.refused_other++;
            /* A REP socket that received must reply; a truncated multipart
             * cannot happen in-process, so nothing is owed here. */
            continue;
        }
        s_handle(z, f, n);
        for (int k = 0; k < n; k++)
            zmq_msg_close(&f[k]);
    }
}

zap_t *zap_new(uv_loop_t *loop, void *zctx, const keys_allowlist_t *allow, ratelimit_t *log_limit)
{
    zap_t *z = xcalloc(1, sizeof *z);
    z->allow = allow;
    z->log_limit = log_limit;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        log_error("zap: cannot bind %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        if (z->sock)
            zmq_close(z->sock);
        free(z);
        return NULL;
    }
    z->watch = zuv_new(loop, z->sock, s_readable, z);
    if (!z->watch) {
        zmq_close(z->sock);
        free(z);
        return NULL;
    }
    return z;
}

const zap_stats_t *zap_stats(const zap_t *z) { return &z->stats; }

void zap_destroy(zap_t **zp)
{
    zap_t *z = *zp;
    if (!z)
        return;
    *zp = NULL;
    zuv_destroy(&z->watch);
    zmq_close(z->sock);
    free(z);
}
