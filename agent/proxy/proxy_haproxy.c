/*
 * proxy_haproxy: the HAProxy driver (proxydrv.h), through the runtime API on
 * the stats socket ("level admin"), one command per connection (HAProxy's
 * non-interactive mode: it answers and closes), read on the loop.
 *
 *   STATUS  show stat: the frontend's session limit (0: paused) and which of
 *           the backend's two servers is not in maintenance, with its address
 *   PAUSE   set maxconn frontend F 0: HAProxy stops accepting, so new
 *           connections complete their handshake in the kernel and wait in
 *           the listening socket's backlog; nothing is refused. Then waits
 *           (polling) until the frontend has no session left, bounded by
 *           pause_timeout; after it, on_pause_timeout: resume (reload, as
 *           RESUME does, and fail) or terminate (shutdown sessions on the
 *           current server: those clients reconnect into the held queue)
 *   RESUME  the configured hitless reload (reload_argv): the new worker takes
 *           the listening socket over with its backlog and the config's
 *           maxconn, and accepts what waited. Raising maxconn through the
 *           runtime API instead would be simpler, but HAProxy 2.6 deadlocks
 *           (its watchdog kills the worker) when that finds held connections.
 *           The driver polls until a worker shows the frontend open again.
 *   SWITCH  set server B/new state ready; set server B/old state maint;
 *           shutdown sessions server B/old (nothing keeps writing to the old
 *           backend); read back; then `show servers state B` is written to
 *           the server-state file (tmp + fsync + rename), which HAProxy loads
 *           on every reload (load-server-state-from-file), so a reload -- ours
 *           on RESUME or anyone's -- keeps the new backend. With config_file,
 *           the two server lines of backend B in HAProxy's config file are
 *           made to match too (the new one without `disabled`, the old one
 *           with it; tmp + fsync + rename, the rest of the file byte for
 *           byte), so a cold start from the config file alone keeps it as
 *           well. HAProxy's master process is left running: nothing reloads
 *           here.
 *
 * Owns: at most one socket connection or child process at a time, a poll
 * timer. Never: runs a shell, or sends a name that is not from the config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "proxy_haproxy.h"
#include "units.h"
#include "xalloc.h"

#define HAP_OUT_MAX (4 * 1024 * 1024)
/* How often the pause polls for the frontend's last session to end, and
 * the resume for the new worker to accept: each poll is one command on
 * the admin socket. Both wait inside the write pause, where a 20 ms period
 * cost 10 ms on average (measured: the MariaDB cutover bench's pause was
 * about 20 ms over an expert script's that polled every 2 ms). */
#define HAP_POLL_MS 2

typedef struct hap hap_t;
typedef void (*hap_out_fn)(hap_t *d, const char *out);
typedef void (*hap_next_fn)(hap_t *d);

/* One runtime API command: its handles are freed in their close callbacks. */
typedef struct hcmd {
    hap_t *d;              /* NULL once the driver no longer waits for it */
    uv_pipe_t pipe;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    char *line;
    char *buf;
    size_t len;
    int open_handles;
    bool ended;
    hap_out_fn cb;
} hcmd_t;

struct hap {
    proxydrv_t base;
    uv_loop_t *loop;
    const agent_proxy_t *cfg;
    hcmd_t *cmd;
    proc_t *proc;
    uv_timer_t poll;
    /* the operation running */
    proxydrv_job_t job;         /* the request being carried out */
    hap_next_fn after_read;
    uint64_t step_mono;
    uint64_t deadline_mono;
    proxydrv_backend_t before;
    int script;            /* SWITCH: the next command of the script */
    int64_t sessions;      /* the frontend's current sessions, as last read */
    bool timed_out;
};

static uint64_t s_cmd_ms(const hap_t *d) { return (uint64_t)d->cfg->command_timeout_ms; }

static void s_finish(hap_t *d, const char *error)
{
    uv_timer_stop(&d->poll);
    proxydrv_job_end(&d->job, error);
}

/* Ends the request with a failure formatted as printf does. */
#define s_failf(d, ...) s_finish((d), proxydrv_job_errf(&(d)->job, __VA_ARGS__))

/* ---- one command on the socket ---- */

static void s_hcmd_closed(uv_handle_t *h)
{
    hcmd_t *c = h->data;
    if (--c->open_handles == 0) {
        free(c->line);
        free(c->buf);
        free(c);
    }
}

/* Ends c once: closes its handles, then (if the driver still waits) hands
 * the output, or NULL with d->job.err set, to the callback. */
static void s_hcmd_end(hcmd_t *c, const char *error)
{
    if (c->ended)
        return;
    c->ended = true;
    uv_close((uv_handle_t *)&c->pipe, s_hcmd_closed);
    uv_close((uv_handle_t *)&c->timer, s_hcmd_closed);
    hap_t *d = c->d;
    if (!d)
        return;
    d->cmd = NULL;
    if (error) {
        snprintf(d->job.err, sizeof d->job.err, "HAProxy socket %s: \"%s\": %s",
                 d->cfg->haproxy.socket, c->line, error);
        s_finish(d, d->job.err);
        return;
    }
    c->cb(d, c->buf ? c->buf : "");
}

static void s_hcmd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    hcmd_t *c = h->data;
    c->buf = xrealloc(c->buf, c->len + 65536 + 1);
    *b = uv_buf_init(c->buf + c->len, 65536);
}

static void s_hcmd_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    hcmd_t *c = s->data;
    if (n == UV_EOF) {
        s_hcmd_end(c, NULL);
        return;
    }
    if (n < 0) {
        s_hcmd_end(c, uv_strerror((int)n));
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (c->len > HAP_OUT_MAX)
        s_hcmd_end(c, "answer too large");
}

static void s_hcmd_written(uv_write_t *w, int status)
{
    hcmd_t *c = w->data;
    if (status < 0)
        s_hcmd_end(c, uv_strerror(status));
}

static void s_hcmd_connected(uv_connect_t *req, int status)
{
    hcmd_t *c = req->data;
    if (c->ended)
        return;
    if (status < 0) {
        s_hcmd_end(c, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(c->line, (unsigned)strlen(c->line));
    int rc = uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, s_hcmd_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->pipe, s_hcmd_alloc, s_hcmd_read);
    if (rc < 0)
        s_hcmd_end(c, uv_strerror(rc));
}

static void s_hcmd_timeout(uv_timer_t *t)
{
    s_hcmd_end(t->data, "no complete answer in time");
}

/* Sends one command (a fixed verb and names from the config); cb gets the
 * whole answer. */
static void s_send(hap_t *d, hap_out_fn cb, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_send(hap_t *d, hap_out_fn cb, const char *fmt, ...)
{
    hcmd_t *c = xcalloc(1, sizeof *c);
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        cmd = NULL;
    va_end(ap);
    c->line = xasprintf("%s\n", cmd ? cmd : "");
    free(cmd);
    c->d = d;
    c->cb = cb;
    d->cmd = c;
    uv_pipe_init(d->loop, &c->pipe, 0);
    uv_timer_init(d->loop, &c->timer);
    c->pipe.data = c->timer.data = c->connect.data = c->write.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, s_hcmd_timeout, s_cmd_ms(d), 0);
    uv_pipe_connect(&c->connect, &c->pipe, d->cfg->haproxy.socket, s_hcmd_connected);
}

/* ---- reading the state back ---- */

/* The index of name in a CSV header line, or -1. */
static int s_col(char **hdr, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(hdr[i], name) == 0)
            return i;
    return -1;
}

/* Splits a CSV line in place (show stat quotes nothing we read). */
static int s_split(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ',') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static bool s_active(const char *status)
{
    return strncmp(status, "MAINT", 5) != 0 && strncmp(status, "DRAIN", 5) != 0;
}

static void s_stat_read(hap_t *d, const char *out)
{
    const agent_proxy_t *cfg = d->cfg;
    char *text = xstrdup(out);
    char *hdr[128], *f[128];
    int nh = 0;
    int c_px = -1, c_sv = -1, c_slim = -1, c_status = -1, c_addr = -1, c_scur = -1;
    bool have_fe = false, fe_paused = false, act[2] = { false, false }, seen[2] = { false, false };
    char addr[2][128] = { "", "" };
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# ", 2) == 0) {
            nh = s_split(line + 2, hdr, 128);
            c_px = s_col(hdr, nh, "pxname");
            c_sv = s_col(hdr, nh, "svname");
            c_slim = s_col(hdr, nh, "slim");
            c_status = s_col(hdr, nh, "status");
            c_addr = s_col(hdr, nh, "addr");
            c_scur = s_col(hdr, nh, "scur");
            continue;
        }
        if (c_px < 0 || c_sv < 0 || c_slim < 0 || c_status < 0 || c_addr < 0)
            continue;
        int n = s_split(line, f, 128);
        if (n <= c_addr || n <= c_slim || n <= c_status || n <= c_scur)
            continue;
        if (strcmp(f[c_px], cfg->haproxy.frontend) == 0 && strcmp(f[c_sv], "FRONTEND") == 0) {
            have_fe = true;
            fe_paused = strcmp(f[c_slim], "0") == 0;
            d->sessions = strtoll(f[c_scur], NULL, 10);
        } else if (strcmp(f[c_px], cfg->haproxy.backend) == 0) {
            for (int i = 0; i < 2; i++) {
                if (strcmp(f[c_sv], i ? cfg->haproxy.green_server : cfg->haproxy.blue_server) == 0) {
                    seen[i] = true;
                    act[i] = s_active(f[c_status]);
                    snprintf(addr[i], sizeof addr[i], "%s", f[c_addr]);
                }
            }
        }
    }
    free(text);
    if (c_px < 0 || c_slim < 0 || c_status < 0 || c_addr < 0 || c_scur < 0) {
        s_failf(d, "HAProxy's show stat has no pxname, scur, slim, status or addr column");
        return;
    }
    if (!have_fe) {
        s_failf(d, "HAProxy has no frontend \"%s\"", cfg->haproxy.frontend);
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (!seen[i]) {
            s_failf(d, "HAProxy has no server %s/%s", cfg->haproxy.backend,
                    i ? cfg->haproxy.green_server : cfg->haproxy.blue_server);
            return;
        }
    }
    proxydrv_out_t *o = d->job.out;
    o->known = true;
    o->paused = fe_paused;
    if (act[0] != act[1]) {
        int i = act[1] ? 1 : 0;
        snprintf(o->address, sizeof o->address, "%s", addr[i]);
        /* The configured address, not a resolved one, says which it is. */
        o->backend = i ? PROXYDRV_GREEN : PROXYDRV_BLUE;
    } else {
        o->backend = PROXYDRV_OTHER;
        snprintf(o->address, sizeof o->address, "%s", act[0] ? "both servers up" : "no server up");
    }
    hap_next_fn next = d->after_read;
    d->after_read = NULL;
    next(d);
}

static void s_read(hap_t *d, hap_next_fn next)
{
    d->after_read = next;
    s_send(d, s_stat_read, "show stat");
}

static void s_done_ok(hap_t *d) { s_finish(d, NULL); }

/* An answer to a "set" command: empty on success, the reason otherwise. */
static bool s_quiet_ok(hap_t *d, const char *what, const char *out)
{
    const char *p = out;
    while (*p == '\n' || *p == ' ' || *p == '\r')
        p++;
    if (!*p)
        return true;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", p);
    msg[strcspn(msg, "\n")] = '\0';
    s_failf(d, "HAProxy refused \"%s\": %s", what, msg);
    return false;
}

/* ---- PAUSE ---- */

static void s_drain_read(hap_t *d);
static void s_resume_read(hap_t *d);

static void s_on_drain_poll(uv_timer_t *t)
{
    hap_t *d = t->data;
    s_read(d, s_drain_read);
}

static void s_sessions_shut(hap_t *d, const char *out)
{
    if (!s_quiet_ok(d, "shutdown sessions server", out))
        return;
    proxydrv_out_step(d->job.out, "shutdown sessions (policy)", d->step_mono);
    d->step_mono = units_mono_ms();
    s_read(d, s_drain_read);
}

static void s_drain_read(hap_t *d)
{
    if (!d->job.out->paused) {
        s_failf(d, "frontend %s is no longer held (reloaded by someone else?)",
                d->cfg->haproxy.frontend);
        return;
    }
    if (d->sessions <= 0) {
        proxydrv_out_step(d->job.out, "running sessions ended", d->step_mono);
        s_finish(d, NULL);
        return;
    }
    if (units_mono_ms() < d->deadline_mono) {
        uv_timer_start(&d->poll, s_on_drain_poll, HAP_POLL_MS, 0);
        return;
    }
    if (d->timed_out) {
        s_failf(d, "%lld session(s) still open on frontend %s after shutting them down",
                (long long)d->sessions, d->cfg->haproxy.frontend);
        return;
    }
    d->timed_out = true;
    proxydrv_out_step(d->job.out, "running sessions (timed out)", d->step_mono);
    d->step_mono = units_mono_ms();
    if (d->cfg->on_pause_timeout == PROXY_ON_TIMEOUT_TERMINATE &&
        d->job.out->backend != PROXYDRV_OTHER) {
        log_warn("proxy %s: %lld session(s) still open on %s after %llu ms: shutting them down",
                 d->cfg->name, (long long)d->sessions, d->cfg->haproxy.frontend,
                 (unsigned long long)d->job.req->pause_timeout_ms);
        d->job.out->terminated = (uint32_t)d->sessions;
        d->deadline_mono = units_mono_ms() + s_cmd_ms(d);
        s_send(d, s_sessions_shut, "shutdown sessions server %s/%s", d->cfg->haproxy.backend,
               d->job.out->backend == PROXYDRV_GREEN ? d->cfg->haproxy.green_server
                                              : d->cfg->haproxy.blue_server);
        return;
    }
    log_warn("proxy %s: %lld session(s) still open on %s after %llu ms: giving up and resuming",
             d->cfg->name, (long long)d->sessions, d->cfg->haproxy.frontend,
             (unsigned long long)d->job.req->pause_timeout_ms);
    s_resume_read(d);
}

static void s_paused(hap_t *d, const char *out)
{
    if (!s_quiet_ok(d, "set maxconn frontend", out))
        return;
    proxydrv_out_step(d->job.out, "hold new connections", d->step_mono);
    d->step_mono = units_mono_ms();
    d->deadline_mono = d->step_mono + d->job.req->pause_timeout_ms;
    s_read(d, s_drain_read);
}

static void s_pause_read(hap_t *d)
{
    if (d->job.out->paused) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->step_mono = units_mono_ms();
    d->timed_out = false;
    s_send(d, s_paused, "set maxconn frontend %s 0", d->cfg->haproxy.frontend);
}

/* ---- RESUME ---- */

static void s_poll_read(hap_t *d);

static void s_on_poll(uv_timer_t *t)
{
    hap_t *d = t->data;
    s_read(d, s_poll_read);
}

static void s_poll_read(hap_t *d)
{
    if (!d->job.out->paused) {
        proxydrv_out_step(d->job.out, "new worker accepting", d->step_mono);
        if (d->job.req->op == GODWIT__PROXY_ACTION__OP__OP_PAUSE)
            s_failf(d, "sessions on frontend %s still ran after %llu ms: gave up and resumed "
                       "(on_pause_timeout: resume)",
                    d->cfg->haproxy.frontend, (unsigned long long)d->job.req->pause_timeout_ms);
        else if (d->job.out->backend != d->before)
            s_failf(d, "after the reload HAProxy points at %s, not where it pointed before; "
                       "is load-server-state-from-file set and the state file current?",
                    d->job.out->address);
        else
            s_finish(d, NULL);
        return;
    }
    if (units_mono_ms() >= d->deadline_mono) {
        s_failf(d, "after the reload frontend %s is still held (maxconn 0) after %llu ms",
                d->cfg->haproxy.frontend, (unsigned long long)s_cmd_ms(d));
        return;
    }
    uv_timer_start(&d->poll, s_on_poll, HAP_POLL_MS, 0);
}

static void s_reloaded(proc_t *p, const proc_result_t *r, void *arg)
{
    hap_t *d = arg;
    if (r->exit_status != 0) {
        proxydrv_job_cmd_failed(&d->job, "reload", d->cfg->haproxy.reload_argv.items[0], r);
        proc_destroy(&d->proc, 0);
        s_finish(d, d->job.err);
        return;
    }
    proc_destroy(&d->proc, 0);
    proxydrv_out_step(d->job.out, "reload", d->step_mono);
    d->step_mono = units_mono_ms();
    d->deadline_mono = d->step_mono + s_cmd_ms(d);
    s_read(d, s_poll_read);
}

/* Runs argv (from the config) as a child; cb when it has exited. */
static int s_spawn(hap_t *d, const cfg_strings_t *argv, proc_done_cb cb)
{
    const char **av = xcalloc(argv->count + 1, sizeof *av);
    for (size_t i = 0; i < argv->count; i++)
        av[i] = argv->items[i];
    proc_opts_t o = { .file = av[0], .argv = av, .err_max = 4096 };
    int rc = proc_start(d->loop, &o, cb, d, &d->proc);
    free(av);
    return rc;
}

static void s_resume_read(hap_t *d)
{
    if (!d->job.out->paused) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->before = d->job.out->backend;
    d->step_mono = units_mono_ms();
    int rc = s_spawn(d, &d->cfg->haproxy.reload_argv, s_reloaded);
    if (rc < 0)
        s_failf(d, "cannot run %s: %s", d->cfg->haproxy.reload_argv.items[0], uv_strerror(rc));
}

/* ---- SWITCH ---- */

/* The [start, end) of the next whitespace-separated token of line at or
 * after *pos (line ends at eol); false at the end. */
static bool s_token(const char *line, const char *eol, const char **pos, const char **start,
                    const char **end)
{
    const char *p = *pos;
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= eol || *p == '#')
        return false;
    *start = p;
    while (p < eol && *p != ' ' && *p != '\t')
        p++;
    *end = p;
    *pos = p;
    (void)line;
    return true;
}

static bool s_tok_is(const char *s, const char *e, const char *word)
{
    return (size_t)(e - s) == strlen(word) && strncmp(s, word, (size_t)(e - s)) == 0;
}

char *proxy_haproxy_config_switch(const char *text, const char *backend, const char *to,
                                  const char *from, char *err, size_t errlen)
{
    size_t len = strlen(text), lines = 1, n = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    /* at most " disabled" more per line, and the NUL */
    char *out = xmalloc(len + 9 * lines + 1);
    bool in_backend = false, saw_to = false, saw_from = false;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        const char *next = eol ? eol + 1 : line + strlen(line);
        if (!eol)
            eol = next;
        const char *pos = line, *t0, *t1, *n0, *n1;
        bool indented = *line == ' ' || *line == '\t';
        bool has = s_token(line, eol, &pos, &t0, &t1);
        if (has && !indented) /* a section begins */
            in_backend = (s_tok_is(t0, t1, "backend") || s_tok_is(t0, t1, "listen")) &&
                         s_token(line, eol, &pos, &n0, &n1) && s_tok_is(n0, n1, backend);
        const char *name0 = NULL, *name1 = NULL;
        const char *p2 = pos;
        bool server = in_backend && has && indented && s_tok_is(t0, t1, "server") &&
                      s_token(line, eol, &p2, &name0, &name1);
        bool is_to = server && s_tok_is(name0, name1, to);
        bool is_from = server && s_tok_is(name0, name1, from);
        if (!is_to && !is_from) {
            memcpy(out + n, line, (size_t)(next - line));
            n += (size_t)(next - line);
            line = next;
            continue;
        }
        /* Copy the line without its `disabled` tokens (with the blanks
         * before them), then add one to the old server's. */
        const char *copied = line, *q = line, *s0, *s1, *code_end = eol;
        const char *hash = memchr(line, '#', (size_t)(eol - line));
        if (hash)
            code_end = hash;
        while (s_token(line, code_end, &q, &s0, &s1)) {
            if (!s_tok_is(s0, s1, "disabled"))
                continue;
            const char *cut = s0;
            while (cut > copied && (cut[-1] == ' ' || cut[-1] == '\t'))
                cut--;
            memcpy(out + n, copied, (size_t)(cut - copied));
            n += (size_t)(cut - copied);
            copied = s1;
        }
        /* the code part's end, without trailing blanks */
        const char *ce = code_end;
        while (ce > copied && (ce[-1] == ' ' || ce[-1] == '\t'))
            ce--;
        memcpy(out + n, copied, (size_t)(ce - copied));
        n += (size_t)(ce - copied);
        if (is_from) {
            memcpy(out + n, " disabled", 9);
            n += 9;
            saw_from = true;
        } else {
            saw_to = true;
        }
        memcpy(out + n, ce, (size_t)(next - ce));
        n += (size_t)(next - ce);
        line = next;
    }
    out[n] = '\0';
    if (!saw_to || !saw_from) {
        snprintf(err, errlen, "no line \"server %s ...\" in backend %s", saw_to ? from : to,
                 backend);
        free(out);
        return NULL;
    }
    return out;
}

/* The config file's server lines made to match the switch (see the top). */
static int s_config_persist(hap_t *d, char *err, size_t errlen)
{
    const agent_proxy_t *cfg = d->cfg;
    const char *path = cfg->haproxy.config_file;
    bool green = d->job.req->backend == PROXYDRV_GREEN;
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small(path, 4 << 20, &text, &len);
    if (rc != 0) {
        snprintf(err, errlen, "reading %s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
    char why[256];
    char *now = proxy_haproxy_config_switch(text, cfg->haproxy.backend,
                                            green ? cfg->haproxy.green_server
                                                  : cfg->haproxy.blue_server,
                                            green ? cfg->haproxy.blue_server
                                                  : cfg->haproxy.green_server, why, sizeof why);
    if (!now) {
        snprintf(err, errlen, "%s: %s", path, why);
        free(text);
        return -EINVAL;
    }
    rc = strcmp(now, text) == 0 ? 0 : fsutil_write_atomic(path, now, strlen(now), mode);
    if (rc != 0)
        snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
    free(now);
    free(text);
    return rc;
}

static void s_state_written(hap_t *d, const char *out)
{
    if (strncmp(out, "1\n", 2) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", out);
        msg[strcspn(msg, "\n")] = '\0';
        s_failf(d, "switched, but not persisted: show servers state answered \"%s\"", msg);
        return;
    }
    const char *path = d->cfg->haproxy.state_file;
    int rc = fsutil_write_atomic(path, out, strlen(out), 0644);
    if (rc != 0) {
        s_failf(d, "switched, but not persisted: writing %s: %s", path, strerror(-rc));
        return;
    }
    proxydrv_out_step(d->job.out, "persist server state", d->step_mono);
    if (d->cfg->haproxy.config_file) {
        char err[512];
        d->step_mono = units_mono_ms();
        if (s_config_persist(d, err, sizeof err) != 0) {
            s_failf(d, "switched, but the config file not updated: %s", err);
            return;
        }
        proxydrv_out_step(d->job.out, "rewrite config file", d->step_mono);
    }
    s_finish(d, NULL);
}

static void s_persist(hap_t *d)
{
    d->step_mono = units_mono_ms();
    s_send(d, s_state_written, "show servers state %s", d->cfg->haproxy.backend);
}

static void s_switch_checked(hap_t *d)
{
    if (d->job.out->backend != d->job.req->backend) {
        s_failf(d, "after the switch HAProxy shows %s for backend %s", d->job.out->address,
                d->cfg->haproxy.backend);
        return;
    }
    proxydrv_out_step(d->job.out, "switch servers", d->step_mono);
    s_persist(d);
}

static void s_script_step(hap_t *d, const char *out);

static void s_script_next(hap_t *d)
{
    const agent_proxy_t *cfg = d->cfg;
    const char *to = d->job.req->backend == PROXYDRV_GREEN ? cfg->haproxy.green_server
                                                     : cfg->haproxy.blue_server;
    const char *from = d->job.req->backend == PROXYDRV_GREEN ? cfg->haproxy.blue_server
                                                       : cfg->haproxy.green_server;
    const char *be = cfg->haproxy.backend;
    switch (d->script++) {
    case 0: s_send(d, s_script_step, "set server %s/%s state ready", be, to); break;
    case 1: s_send(d, s_script_step, "set server %s/%s state maint", be, from); break;
    case 2: s_send(d, s_script_step, "shutdown sessions server %s/%s", be, from); break;
    default: s_read(d, s_switch_checked); break;
    }
}

static void s_script_step(hap_t *d, const char *out)
{
    if (!s_quiet_ok(d, "set server", out))
        return;
    s_script_next(d);
}

static void s_switch_read(hap_t *d)
{
    if (d->job.out->backend == d->job.req->backend) {
        /* Already so: make sure a reload keeps it. */
        d->job.out->already = true;
        s_persist(d);
        return;
    }
    d->step_mono = units_mono_ms();
    d->script = 0;
    s_script_next(d);
}

/* ---- the driver ---- */

static void s_run(proxydrv_t *base, const proxydrv_req_t *req, proxydrv_out_t *out,
                  proxydrv_done_cb done, void *arg)
{
    hap_t *d = (hap_t *)base;
    proxydrv_job_begin(&d->job, req, out, done, arg);
    switch (req->op) {
    case GODWIT__PROXY_ACTION__OP__OP_PAUSE: s_read(d, s_pause_read); break;
    case GODWIT__PROXY_ACTION__OP__OP_RESUME: s_read(d, s_resume_read); break;
    case GODWIT__PROXY_ACTION__OP__OP_SWITCH: s_read(d, s_switch_read); break;
    default: s_read(d, s_done_ok); break;
    }
}

static void s_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void s_destroy(proxydrv_t *base)
{
    hap_t *d = (hap_t *)base;
    if (d->cmd) {
        d->cmd->d = NULL;
        s_hcmd_end(d->cmd, "stopping");
        d->cmd = NULL;
    }
    proc_destroy(&d->proc, 2000);
    uv_close((uv_handle_t *)&d->poll, s_poll_closed);
}

proxydrv_t *proxy_haproxy_new(uv_loop_t *loop, const agent_proxy_t *cfg)
{
    hap_t *d = xcalloc(1, sizeof *d);
    d->base.run = s_run;
    d->base.destroy = s_destroy;
    d->loop = loop;
    d->cfg = cfg;
    uv_timer_init(loop, &d->poll);
    d->poll.data = d;
    return &d->base;
}
