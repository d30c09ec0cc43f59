/*
 * svc: see svc.h.
 */
#include "svc.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

struct svc {
    uv_timer_t timer;
    uv_signal_t hup;
    bool timer_started;
    int open_handles;
    uint64_t watchdog_ms;
    const char *path;           /* the config file, borrowed */
    char *text;                 /* its text when the reload was set up */
    svc_load_level_fn load;
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
    uv_signal_init(loop, &s->hup);
    s->hup.data = s;
    uv_unref((uv_handle_t *)&s->hup);
    s->open_handles = 2;
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

static char *s_file_read(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    return fsutil_read_small(path, 1 << 20, &text, &len) == 0 ? text : NULL;
}

/* text without its lines that begin with "key:", malloc'd. */
static char *s_without_key(const char *text, const char *key)
{
    size_t klen = strlen(key), n = strlen(text);
    char *out = xmalloc(n + 1), *o = out;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        if (!(strncmp(line, key, klen) == 0 && line[klen] == ':')) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    return out;
}

/* Whether path's text now differs from before other than in its top-level
 * `key:` lines. A file that cannot be read differs. */
static bool s_file_differs(const char *before, const char *path, const char *key)
{
    char *now = s_file_read(path);
    if (!before || !now) {
        free(now);
        return true;
    }
    char *a = s_without_key(before, key), *b = s_without_key(now, key);
    bool differs = strcmp(a, b) != 0;
    free(a);
    free(b);
    free(now);
    return differs;
}

static void s_on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    svc_t *s = h->data;
    log_info("SIGHUP: reloading %s", s->path);
    sd_notify(0, "RELOADING=1");
    int level = 0;
    char err[1024];
    if (!s->load(s->path, &level, err, sizeof err)) {
        log_error("config not reloaded, nothing changed: %s", err);
    } else {
        log_set_level((log_level_t)level);
        bool others = s_file_differs(s->text, s->path, "log_level");
        log_info("reloaded %s: log_level applied%s", s->path,
                 others ? "; its other changes apply at the next start (systemctl restart)" : "");
    }
    sd_notify(0, "READY=1");
}

void svc_on_reload(svc_t *s, const char *path, svc_load_level_fn load)
{
    s->path = path;
    free(s->text);
    s->text = s_file_read(path);
    s->load = load;
    uv_signal_start(&s->hup, s_on_hup, SIGHUP);
}

uint64_t svc_watchdog_ms(const svc_t *s)
{
    return s->watchdog_ms;
}

static void s_closed(uv_handle_t *h)
{
    svc_t *s = h->data;
    if (--s->open_handles == 0) {
        free(s->text);
        free(s);
    }
}

void svc_destroy(svc_t **sp)
{
    svc_t *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, s_closed);
    uv_close((uv_handle_t *)&s->hup, s_closed);
}
