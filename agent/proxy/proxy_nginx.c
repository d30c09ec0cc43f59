/*
 * proxy_nginx: the nginx driver (proxydrv.h). nginx's upstream (stream or
 * http) includes a file that holds its server line; the driver owns that
 * file.
 *
 *   STATUS  the include file: which backend its server line names
 *   SWITCH  write the new file (tmp + fsync + rename), run test_argv
 *           (nginx -t); if the test fails, put the old file back and fail
 *           (traffic never left the old backend); else run reload_argv and
 *           wait until the master (pid_file) has a worker process that was
 *           not there before the reload (new workers are the ones with the
 *           new file) and every old child has exited or says "is shutting
 *           down" in its title (it has closed its listening sockets): from
 *           then on only new workers take new connections, and they go to
 *           the new backend. Bounded by command_timeout. Old workers may go
 *           on serving connections they had: stream connections to the old
 *           backend last until their clients close them.
 *   PAUSE, RESUME  refused: nginx has no way to hold new connections (a
 *           reload closes nothing and queues nothing), so it cannot take part
 *           in a write pause. The plan says so with hold: false on this
 *           proxy: the cutover then only switches it, and blue's freeze is
 *           what stops writes through it (docs/proxy.md)
 *
 * Owns: at most one child process at a time, a poll timer, the old file's
 * content during a SWITCH. Never: runs a shell.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "proxy_nginx.h"
#include "units.h"
#include "xalloc.h"

#define NGX_FILE_MAX (64 * 1024)
#define NGX_POLL_MS 50
#define NGX_MAX_WORKERS 256

typedef struct {
    proxydrv_t base;
    uv_loop_t *loop;
    const agent_proxy_t *cfg;
    proc_t *proc;
    uv_timer_t poll;
    proxydrv_job_t job;         /* the request being carried out */
    uint64_t step_mono;
    uint64_t deadline_mono;
    char *old_file;        /* SWITCH: the include file before (NULL: none) */
    size_t old_len;
    int master;
    int workers[NGX_MAX_WORKERS];  /* before the reload */
    size_t n_workers;
} ngx_t;

static uint64_t s_cmd_ms(const ngx_t *d) { return (uint64_t)d->cfg->command_timeout_ms; }

static void s_finish(ngx_t *d, const char *error)
{
    uv_timer_stop(&d->poll);
    free(d->old_file);
    d->old_file = NULL;
    proxydrv_job_end(&d->job, error);
}

/* Ends the request with a failure formatted as printf does. */
#define s_failf(d, ...) s_finish((d), proxydrv_job_errf(&(d)->job, __VA_ARGS__))

/* The file's server line for backend b. Caller frees. */
static char *s_content(const ngx_t *d, proxydrv_backend_t b)
{
    const char *opts = d->cfg->nginx.server_options;
    return xasprintf("# written by godwit-agent (proxy %s): %s\nserver %s%s%s;\n", d->cfg->name,
                     b == PROXYDRV_BLUE ? "blue" : "green", b == PROXYDRV_BLUE ? d->cfg->blue : d->cfg->green,
                     opts ? " " : "", opts ? opts : "");
}

/* Reads the include file into out: the first server line's address. */
static bool s_read(ngx_t *d)
{
    const char *path = d->cfg->nginx.include_file;
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small(path, NGX_FILE_MAX, &text, &len);
    if (rc != 0) {
        s_failf(d, "reading %s: %s", path, strerror(-rc));
        return false;
    }
    proxydrv_out_t *o = d->job.out;
    o->known = true;
    o->paused = false;
    o->backend = PROXYDRV_OTHER;
    snprintf(o->address, sizeof o->address, "no server line in %s", path);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line += strspn(line, " \t");
        if (strncmp(line, "server", 6) != 0 || (line[6] != ' ' && line[6] != '\t'))
            continue;
        char *addr = line + 6 + strspn(line + 6, " \t");
        addr[strcspn(addr, " \t;")] = '\0';
        snprintf(o->address, sizeof o->address, "%s", addr);
        char host[256];
        int port;
        if (agent_config_split_hostport(addr, host, sizeof host, &port))
            o->backend = proxydrv_match(d->cfg, host, port);
        break;
    }
    free(text);
    return true;
}

/* ---- the master's workers ---- */

static int s_master_pid(ngx_t *d)
{
    char *text = NULL;
    size_t len = 0;
    if (fsutil_read_small(d->cfg->nginx.pid_file, 64, &text, &len) != 0)
        return 0;
    int pid = atoi(text);
    free(text);
    return pid > 0 ? pid : 0;
}

/* The children of pid, from /proc; their count. */
static size_t s_children(int pid, int *out, size_t max)
{
    size_t n = 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
            out[n++] = atoi(e->d_name);
    }
    closedir(dir);
    return n;
}

/* ---- SWITCH ---- */

/* pid's title ("nginx: worker process", "... is shutting down") into buf;
 * false if it is gone. */
static bool s_title(int pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t got = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[got] = '\0';
    return got > 0;
}

/* True if pid is an old child still taking new connections: alive, and its
 * title does not say it is shutting down. */
static bool s_still_accepting(int pid)
{
    char buf[256];
    return s_title(pid, buf, sizeof buf) && strstr(buf, "shutting down") == NULL;
}

/* True if pid is a running worker process (not a cache manager or loader,
 * which take no connections). */
static bool s_is_worker(int pid)
{
    char buf[256];
    return s_title(pid, buf, sizeof buf) && strstr(buf, "worker process") != NULL &&
           strstr(buf, "shutting down") == NULL;
}

static void s_on_poll(uv_timer_t *t)
{
    ngx_t *d = t->data;
    int now[NGX_MAX_WORKERS];
    size_t n = s_children(d->master, now, NGX_MAX_WORKERS);
    bool fresh = false, stale = false;
    for (size_t i = 0; i < n; i++) {
        bool old = false;
        for (size_t j = 0; j < d->n_workers && !old; j++)
            old = now[i] == d->workers[j];
        if (!old)
            fresh = fresh || s_is_worker(now[i]);
        else if (s_still_accepting(now[i]))
            stale = true;
    }
    if (fresh && !stale) {
        proxydrv_out_step(d->job.out, "new workers took over", d->step_mono);
        if (s_read(d)) {
            if (d->job.out->backend != d->job.req->backend)
                s_failf(d, "after the reload %s names %s", d->cfg->nginx.include_file,
                        d->job.out->address);
            else
                s_finish(d, NULL);
        }
        return;
    }
    if (units_mono_ms() >= d->deadline_mono) {
        s_failf(d, "reload ran, but nginx master %d %s in %llu ms (check its error log)",
                d->master, fresh ? "left old workers accepting" : "started no new worker",
                (unsigned long long)s_cmd_ms(d));
        return;
    }
    uv_timer_start(&d->poll, s_on_poll, NGX_POLL_MS, 0);
}

static int s_spawn(ngx_t *d, const cfg_strings_t *argv, proc_done_cb cb)
{
    const char **av = xcalloc(argv->count + 1, sizeof *av);
    for (size_t i = 0; i < argv->count; i++)
        av[i] = argv->items[i];
    proc_opts_t o = { .file = av[0], .argv = av, .err_max = 4096 };
    int rc = proc_start(d->loop, &o, cb, d, &d->proc);
    free(av);
    return rc;
}

static void s_reloaded(proc_t *p, const proc_result_t *r, void *arg)
{
    ngx_t *d = arg;
    if (r->exit_status != 0) {
        proxydrv_job_cmd_failed(&d->job, "reload", d->cfg->nginx.reload_argv.items[0], r);
        proc_destroy(&d->proc, 0);
        s_finish(d, d->job.err);
        return;
    }
    proc_destroy(&d->proc, 0);
    proxydrv_out_step(d->job.out, "reload", d->step_mono);
    d->step_mono = units_mono_ms();
    d->deadline_mono = d->step_mono + s_cmd_ms(d);
    s_on_poll(&d->poll);
}

/* Puts the old include file back; appends to d->job.err what happened. */
static void s_restore(ngx_t *d)
{
    const char *path = d->cfg->nginx.include_file;
    int rc = proxydrv_file_restore(path, d->old_file, d->old_len);
    size_t n = strlen(d->job.err);
    if (rc != 0)
        snprintf(d->job.err + n, sizeof d->job.err - n, "; restoring %s failed: %s", path,
                 strerror(-rc));
    else
        snprintf(d->job.err + n, sizeof d->job.err - n,
                 "; put the old %s back, nginx not reloaded", path);
}

/* argv as one line ("nginx -t -q"), cut to fit buf: names the command in
 * errors. */
static void s_argv_text(const cfg_strings_t *argv, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < argv->count && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " " : "", argv->items[i]);
}

static void s_tested(proc_t *p, const proc_result_t *r, void *arg)
{
    ngx_t *d = arg;
    if (r->exit_status != 0) {
        char *st = proc_status_text(r);
        char tail[600], cmd[200];
        snprintf(tail, sizeof tail, "%s", r->err);
        for (char *c = tail; *c; c++)
            if (*c == '\n')
                *c = ' ';
        for (size_t n = strlen(tail); n > 0 && tail[n - 1] == ' '; n--)
            tail[n - 1] = '\0';
        s_argv_text(&d->cfg->nginx.test_argv, cmd, sizeof cmd);
        snprintf(d->job.err, sizeof d->job.err, "config test (%s) %s: %s", cmd, st, tail);
        free(st);
        proc_destroy(&d->proc, 0);
        s_restore(d);
        s_finish(d, d->job.err);
        return;
    }
    proc_destroy(&d->proc, 0);
    proxydrv_out_step(d->job.out, "config test", d->step_mono);
    d->master = s_master_pid(d);
    if (!d->master) {
        snprintf(d->job.err, sizeof d->job.err, "cannot read nginx's pid from %s",
                 d->cfg->nginx.pid_file);
        s_restore(d);
        s_finish(d, d->job.err);
        return;
    }
    d->n_workers = s_children(d->master, d->workers, NGX_MAX_WORKERS);
    d->step_mono = units_mono_ms();
    int rc = s_spawn(d, &d->cfg->nginx.reload_argv, s_reloaded);
    if (rc < 0)
        s_failf(d, "cannot run %s: %s", d->cfg->nginx.reload_argv.items[0], uv_strerror(rc));
}

static void s_switch(ngx_t *d)
{
    const char *path = d->cfg->nginx.include_file;
    if (d->job.out->backend == d->job.req->backend) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->step_mono = units_mono_ms();
    char *text = s_content(d, d->job.req->backend);
    int rc = proxydrv_file_swap(path, NGX_FILE_MAX, text, true, &d->old_file, &d->old_len,
                                d->job.err, sizeof d->job.err);
    free(text);
    if (rc != 0) {
        s_finish(d, d->job.err);
        return;
    }
    proxydrv_out_step(d->job.out, "rewrite include file", d->step_mono);
    d->step_mono = units_mono_ms();
    rc = s_spawn(d, &d->cfg->nginx.test_argv, s_tested);
    if (rc < 0) {
        snprintf(d->job.err, sizeof d->job.err, "cannot run %s: %s",
                 d->cfg->nginx.test_argv.items[0], uv_strerror(rc));
        s_restore(d);
        s_finish(d, d->job.err);
    }
}

/* ---- the driver ---- */

static void s_run(proxydrv_t *base, const proxydrv_req_t *req, proxydrv_out_t *out,
                  proxydrv_done_cb done, void *arg)
{
    ngx_t *d = (ngx_t *)base;
    proxydrv_job_begin(&d->job, req, out, done, arg);
    if (!s_read(d))
        return;
    switch (req->op) {
    case GODWIT__PROXY_ACTION__OP__OP_SWITCH:
        s_switch(d);
        break;
    case GODWIT__PROXY_ACTION__OP__OP_PAUSE:
    case GODWIT__PROXY_ACTION__OP__OP_RESUME:
        s_failf(d, "nginx cannot hold new connections, so it cannot pause or resume: in the "
                   "plan, set hold: false on this proxy's cutover.proxies entry (proxy: %s); "
                   "the cutover then only switches it and blue's freeze stops the writes "
                   "through it (docs/proxy.md)", d->cfg->name);
        break;
    default:
        s_finish(d, NULL);
    }
}

static void s_poll_closed(uv_handle_t *h)
{
    ngx_t *d = h->data;
    free(d->old_file);
    free(d);
}

static void s_destroy(proxydrv_t *base)
{
    ngx_t *d = (ngx_t *)base;
    proc_destroy(&d->proc, 2000);
    uv_close((uv_handle_t *)&d->poll, s_poll_closed);
}

proxydrv_t *proxy_nginx_new(uv_loop_t *loop, const agent_proxy_t *cfg)
{
    ngx_t *d = xcalloc(1, sizeof *d);
    d->base.run = s_run;
    d->base.destroy = s_destroy;
    d->loop = loop;
    d->cfg = cfg;
    uv_timer_init(loop, &d->poll);
    d->poll.data = d;
    return &d->base;
}
