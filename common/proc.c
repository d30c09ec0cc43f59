/*
 * proc: a child process on the loop (see proc.h for the contract callers rely
 * on).
 *
 * What it owns: the uv_process_t, up to two uv_pipe_t (stdout, stderr), a
 * timer (SIGKILL after the grace time, or the drain limit once the child has
 * gone), the output buffers and a copy of argv[0] for log lines. Of stderr
 * it keeps a head and a tail: a tool's error line is usually early ("error:
 * could not execute query: ...") and the context late, and a long statement
 * echoed in between must not push either out. The struct
 * is freed in the close callback of its last handle, never directly: a done
 * callback may call proc_destroy() and the code that ran it still reads the
 * struct afterwards.
 *
 * The process handle is closed only in the exit callback, once the child is
 * reaped. Reading uses one fixed chunk per pipe: libuv calls alloc then read
 * for one stream at a time, and the bytes are copied out before returning.
 *
 * What it must never do: block, run the callback from inside proc_start or
 * twice, or keep more output than the caller asked for.
 */
#include "proc.h"
#include "log.h"
#include "xalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DRAIN_MS 2000
#define S_CHUNK 16384

typedef struct {
    uv_pipe_t pipe;
    bool open;             /* initialised and not yet closing */
    char chunk[S_CHUNK];
} s_pipe_t;

struct proc {
    uv_loop_t *loop;
    uv_process_t process;  /* closed in s_on_exit */
    uv_timer_t timer;
    bool timer_open;
    s_pipe_t out, err;
    int open_handles;      /* handles not yet through their close callback */
    bool running;          /* spawned and not reaped */
    bool signalled;        /* SIGTERM sent */
    bool reported;         /* the outcome is known (cb ran or was skipped) */
    bool destroyed;        /* the owner let go: no callback, free when closed */
    int pid;
    char *name;            /* argv[0] */
    proc_done_cb cb;
    void *arg;
    void (*on_err)(const char *data, size_t len, void *arg);
    bool own_group;        /* signals go to the process group -pid */

    int64_t exit_status;
    int term_signal;
    char *obuf;            /* stdout, NUL-terminated; capacity ocap */
    size_t olen, ocap, omax;
    bool otrunc;
    char *ehead;           /* the first ehcap bytes of stderr */
    size_t ehlen, ehcap;
    char *etail;           /* the last etcap bytes after those, kept in order */
    size_t etlen, etcap;
    bool etrunc;           /* bytes between head and tail were dropped */
    char *ejoined;         /* head and tail joined, built for the report */
};

static void s_maybe_free(proc_t *p)
{
    if (!p->destroyed || p->open_handles > 0)
        return;
    free(p->obuf);
    free(p->ehead);
    free(p->etail);
    free(p->ejoined);
    free(p->name);
    free(p);
}

static void s_on_close(uv_handle_t *h)
{
    proc_t *p = h->data;
    p->open_handles--;
    s_maybe_free(p);
}

static void s_close_pipe(s_pipe_t *sp)
{
    if (!sp->open)
        return;
    sp->open = false;
    uv_read_stop((uv_stream_t *)&sp->pipe);
    uv_close((uv_handle_t *)&sp->pipe, s_on_close);
}

/* Everything but the process handle, which waits for the child's exit. */
static void s_close_rest(proc_t *p)
{
    s_close_pipe(&p->out);
    s_close_pipe(&p->err);
    if (p->timer_open) {
        p->timer_open = false;
        uv_close((uv_handle_t *)&p->timer, s_on_close);
    }
}

/* Reports once the child is reaped and both pipes are closed. */
static void s_maybe_report(proc_t *p)
{
    if (p->reported || p->running || p->out.open || p->err.open)
        return;
    p->reported = true;
    if (p->timer_open)
        uv_timer_stop(&p->timer);
    if (p->destroyed || !p->cb)
        return;
    const char *gap = p->etrunc ? "\n[...]\n" : "";
    p->ejoined = xasprintf("%.*s%s%.*s", (int)p->ehlen, p->ehead, gap, (int)p->etlen, p->etail);
    proc_result_t r = {
        .exit_status = p->exit_status,
        .term_signal = p->term_signal,
        .out = p->obuf,
        .out_len = p->olen,
        .out_truncated = p->otrunc,
        .err = p->ejoined,
        .err_len = strlen(p->ejoined),
        .err_truncated = p->etrunc,
    };
    p->cb(p, &r, p->arg); /* may call proc_destroy: nothing of p is used after */
}

/* sig to the child, or to its group (own_group). */
static int s_signal(proc_t *p, int sig)
{
    if (p->own_group) {
        int rc = uv_kill(-p->pid, sig);
        if (rc != UV_ESRCH)
            return rc;
    }
    return uv_process_kill(&p->process, sig);
}

/* Before the exit: the grace time is over, SIGKILL. After it: the pipes
 * are still open after S_DRAIN_MS (something the child left behind holds
 * them), so report what was read. */
static void s_on_timer(uv_timer_t *t)
{
    proc_t *p = t->data;
    if (p->running) {
        log_warn("proc %s: pid %d still running after SIGTERM, sending SIGKILL", p->name, p->pid);
        s_signal(p, SIGKILL);
        return;
    }
    log_warn("proc %s: pid %d has exited but its output is still open; not waiting for it",
             p->name, p->pid);
    s_close_pipe(&p->out);
    s_close_pipe(&p->err);
    s_maybe_report(p);
}

static void s_on_exit(uv_process_t *h, int64_t exit_status, int term_signal)
{
    proc_t *p = h->data;
    p->running = false;
    p->term_signal = term_signal;
    p->exit_status = term_signal ? -1 : exit_status;
    log_debug("proc %s: pid %d %s %d", p->name, p->pid,
              term_signal ? "killed by signal" : "exited with status",
              term_signal ? term_signal : (int)exit_status);
    uv_close((uv_handle_t *)&p->process, s_on_close);
    if (p->destroyed) {
        s_close_rest(p);
        return;
    }
    if (p->signalled) {
        /* Stopped on request: what it wrote since is of no use, and what it
         * left behind may hold the pipes open. */
        s_close_pipe(&p->out);
        s_close_pipe(&p->err);
    }
    if (p->out.open || p->err.open) {
        /* Usually the EOF is already queued; a grandchild may hold a pipe. */
        uv_timer_start(&p->timer, s_on_timer, S_DRAIN_MS, 0);
        return;
    }
    s_maybe_report(p);
}

static s_pipe_t *s_pipe_of(proc_t *p, const uv_handle_t *h)
{
    return h == (const uv_handle_t *)&p->out.pipe ? &p->out : &p->err;
}

static void s_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    s_pipe_t *sp = s_pipe_of(h->data, h);
    buf->base = sp->chunk;
    buf->len = sizeof sp->chunk;
}

static void s_keep_out(proc_t *p, const char *data, size_t n)
{
    if (n > p->omax - p->olen) {
        n = p->omax - p->olen;
        p->otrunc = true;
    }
    if (n == 0)
        return;
    if (p->olen + n + 1 > p->ocap) {
        size_t cap = p->ocap;
        while (cap < p->olen + n + 1)
            cap *= 2;
        if (cap > p->omax + 1)
            cap = p->omax + 1;
        p->obuf = xrealloc(p->obuf, cap);
        p->ocap = cap;
    }
    memcpy(p->obuf + p->olen, data, n);
    p->olen += n;
    p->obuf[p->olen] = '\0';
}

/* Keeps the first ehcap bytes, then the last etcap bytes after those. */
static void s_keep_err(proc_t *p, const char *data, size_t n)
{
    size_t h = p->ehcap - p->ehlen;
    if (h > n)
        h = n;
    memcpy(p->ehead + p->ehlen, data, h);
    p->ehlen += h;
    data += h;
    n -= h;
    if (n == 0 || p->etcap == 0) {
        p->etrunc = p->etrunc || n > 0;
        return;
    }
    if (n >= p->etcap) {
        p->etrunc = p->etrunc || p->etlen > 0 || n > p->etcap;
        memcpy(p->etail, data + (n - p->etcap), p->etcap);
        p->etlen = p->etcap;
        return;
    }
    if (p->etlen + n > p->etcap) {
        size_t drop = p->etlen + n - p->etcap;
        memmove(p->etail, p->etail + drop, p->etlen - drop);
        p->etlen -= drop;
        p->etrunc = true;
    }
    memcpy(p->etail + p->etlen, data, n);
    p->etlen += n;
}

static void s_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    proc_t *p = stream->data;
    s_pipe_t *sp = s_pipe_of(p, (uv_handle_t *)stream);
    if (nread > 0) {
        if (sp == &p->out)
            s_keep_out(p, buf->base, (size_t)nread);
        else {
            if (p->on_err && !p->destroyed)
                p->on_err(buf->base, (size_t)nread, p->arg);
            s_keep_err(p, buf->base, (size_t)nread);
        }
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF)
        log_debug("proc %s: reading its output: %s", p->name, uv_strerror((int)nread));
    s_close_pipe(sp);
    s_maybe_report(p);
}

static void s_pipe_init(proc_t *p, s_pipe_t *sp, uv_stdio_container_t *c)
{
    uv_pipe_init(p->loop, &sp->pipe, 0);
    sp->pipe.data = p;
    sp->open = true;
    p->open_handles++;
    c->flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE; /* as the child sees it */
    c->data.stream = (uv_stream_t *)&sp->pipe;
}

int proc_start(uv_loop_t *loop, const proc_opts_t *opts, proc_done_cb cb, void *arg,
               proc_t **pp)
{
    if (!loop || !opts || !opts->file || !opts->file[0] || !opts->argv || !opts->argv[0] ||
        !cb || !pp)
        return UV_EINVAL;
    *pp = NULL;
    proc_t *p = xcalloc(1, sizeof *p);
    p->loop = loop;
    p->name = xstrdup(opts->argv[0]);
    p->cb = cb;
    p->arg = arg;
    p->on_err = opts->on_err;
    p->own_group = opts->own_group;
    p->omax = opts->out_max;
    p->ocap = 1;
    p->obuf = xcalloc(1, 1);
    p->etcap = opts->err_max / 2;
    p->ehcap = opts->err_max - p->etcap;
    p->ehead = xmalloc(p->ehcap + 1);
    p->etail = xmalloc(p->etcap + 1);

    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    p->open_handles++;

    uv_stdio_container_t stdio[3];
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE; /* libuv gives the child /dev/null */
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
    if (p->omax > 0)
        s_pipe_init(p, &p->out, &stdio[1]);
    if (opts->err_max > 0)
        s_pipe_init(p, &p->err, &stdio[2]);

    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.exit_cb = s_on_exit;
    o.file = opts->file;
    /* libuv's types are not const-qualified; it does not write to them. */
    o.args = (char **)opts->argv;
    o.env = (char **)opts->env;
    o.stdio_count = 3;
    o.stdio = stdio;
    if (opts->own_group)
        o.flags |= UV_PROCESS_DETACHED; /* setsid(): a session and group of its own */
    p->process.data = p;
    int rc = uv_spawn(loop, &p->process, &o);
    p->open_handles++; /* initialised even when the spawn fails */
    if (rc != 0) {
        log_debug("proc %s: cannot start %s: %s", p->name, opts->file, uv_strerror(rc));
        p->destroyed = true;
        uv_close((uv_handle_t *)&p->process, s_on_close);
        s_close_rest(p);
        return rc;
    }
    p->running = true;
    p->pid = p->process.pid;
    log_debug("proc %s: started %s, pid %d", p->name, opts->file, p->pid);
    s_pipe_t *pipes[2] = {&p->out, &p->err};
    for (int i = 0; i < 2; i++) {
        if (!pipes[i]->open)
            continue;
        rc = uv_read_start((uv_stream_t *)&pipes[i]->pipe, s_alloc, s_on_read);
        if (rc != 0) {
            log_warn("proc %s: cannot read its output: %s", p->name, uv_strerror(rc));
            s_close_pipe(pipes[i]);
        }
    }
    *pp = p;
    return 0;
}

void proc_kill(proc_t *p, uint64_t grace_ms)
{
    if (!p || !p->running || p->signalled)
        return;
    p->signalled = true;
    log_debug("proc %s: sending SIGTERM to pid %d", p->name, p->pid);
    int rc = s_signal(p, SIGTERM);
    if (rc != 0 && rc != UV_ESRCH)
        log_warn("proc %s: cannot signal pid %d: %s", p->name, p->pid, uv_strerror(rc));
    uv_timer_start(&p->timer, s_on_timer, grace_ms, 0);
}

bool proc_running(const proc_t *p)
{
    return p && p->running;
}

int proc_pid(const proc_t *p)
{
    return p ? p->pid : 0;
}

void proc_destroy(proc_t **pp, uint64_t grace_ms)
{
    if (!pp || !*pp)
        return;
    proc_t *p = *pp;
    *pp = NULL;
    p->destroyed = true;
    p->cb = NULL;
    if (p->running) {
        proc_kill(p, grace_ms);
        /* The output is of no use now; the timer stays for the SIGKILL. */
        s_close_pipe(&p->out);
        s_close_pipe(&p->err);
        return;
    }
    s_close_rest(p);
    s_maybe_free(p); /* every handle may be closed already */
}

char *proc_status_text(const proc_result_t *r)
{
    if (r->term_signal)
        return xasprintf("was killed by signal %d (%s)", r->term_signal,
                         strsignal(r->term_signal));
    return xasprintf("exited with status %lld", (long long)r->exit_status);
}

/* True when entry ("NAME=value") names the variable of one of strs
 * ("NAME=..."). */
static bool s_env_named(const char *name, size_t len, const char *const *strs)
{
    for (size_t i = 0; strs && strs[i]; i++)
        if (strncmp(strs[i], name, len) == 0 && strs[i][len] == '=')
            return true;
    return false;
}

char **proc_env_new(const char *const *drop_prefixes, const char *const *set)
{
    uv_env_item_t *items = NULL;
    int count = 0;
    int rc = uv_os_environ(&items, &count);
    if (rc != 0) {
        log_warn("proc: cannot read the environment: %s; children get only their own variables",
                 uv_strerror(rc));
        items = NULL;
        count = 0;
    }
    size_t nset = 0;
    while (set && set[nset])
        nset++;
    char **env = xcalloc((size_t)count + nset + 1, sizeof *env);
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        const char *name = items[i].name;
        bool drop = s_env_named(name, strlen(name), set);
        for (size_t j = 0; !drop && drop_prefixes && drop_prefixes[j]; j++)
            drop = strncmp(name, drop_prefixes[j], strlen(drop_prefixes[j])) == 0;
        if (!drop)
            env[n++] = xasprintf("%s=%s", name, items[i].value);
    }
    for (size_t j = 0; j < nset; j++)
        env[n++] = xstrdup(set[j]);
    env[n] = NULL;
    if (items)
        uv_os_free_environ(items, count);
    return env;
}

void proc_env_free(char ***envp)
{
    if (!envp || !*envp)
        return;
    for (char **e = *envp; *e; e++)
        free(*e);
    free(*envp);
    *envp = NULL;
}
