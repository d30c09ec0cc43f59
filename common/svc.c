/*
 * svc: see svc.h.
 */
#include "svc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "xalloc.h"

struct svc {
    uv_timer_t timer;
    bool timer_started;
    uint64_t watchdog_ms;
};

static void s_notify(const char *what, const char *status)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s%s", what, status ? "\nSTATUS=" : "", status ? status : "");
    int rc = sd_notify(0, msg);
    if (rc < 0)
        log_warn("cannot tell systemd %s: %s", what, strerror(-rc));
}

static void s_keepalive(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

svc_t *svc_new(uv_loop_t *loop)
{
    svc_t *s = xcalloc(1, sizeof *s);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_unref((uv_handle_t *)&s->timer);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        s->watchdog_ms = usec / 1000 ? usec / 1000 : 1;
        uint64_t every = s->watchdog_ms / 2 ? s->watchdog_ms / 2 : 1;
        uv_timer_start(&s->timer, s_keepalive, every, every);
        s->timer_started = true;
        log_info("systemd watchdog: every %llu ms, a keep-alive every %llu ms",
                 (unsigned long long)s->watchdog_ms, (unsigned long long)every);
    }
    return s;
}

void svc_ready(svc_t *s, const char *status)
{
    s_notify("READY=1", status);
    if (s->timer_started)
        sd_notify(0, "WATCHDOG=1");
}

void svc_stopping(svc_t *s, const char *status)
{
    (void)s;
    s_notify("STOPPING=1", status);
}

uint64_t svc_watchdog_ms(const svc_t *s)
{
    return s->watchdog_ms;
}

static void s_closed(uv_handle_t *h)
{
    free(h->data);
}

void svc_destroy(svc_t **sp)
{
    svc_t *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, s_closed);
}
