/*
 * proxydrv: see proxydrv.h. The helpers every driver shares; owns nothing.
 */
#include "proxydrv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "units.h"
#include "xalloc.h"

int proxydrv_file_swap(const char *path, size_t max, const char *text, bool sync, char **old,
                       size_t *old_len, char *err, size_t errlen)
{
    *old = NULL;
    *old_len = 0;
    int rc = fsutil_read_small(path, max, old, old_len);
    if (rc != 0 && rc != -ENOENT) {
        snprintf(err, errlen, "reading %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = sync ? fsutil_write_atomic(path, text, strlen(text), 0644)
              : fsutil_write_atomic_unsynced(path, text, strlen(text), 0644);
    if (rc != 0)
        snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
    return rc;
}

int proxydrv_file_restore(const char *path, const char *old, size_t old_len)
{
    if (old)
        return fsutil_write_atomic(path, old, old_len, 0644);
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

void proxydrv_out_step(proxydrv_out_t *o, const char *name, uint64_t started_mono)
{
    Godwit__ProxyStep *st = xmalloc(sizeof *st);
    godwit__proxy_step__init(st);
    st->name = xstrdup(name);
    uint64_t now = units_mono_ms();
    st->ms = now > started_mono ? now - started_mono : 0;
    o->steps = xrealloc(o->steps, (o->n_steps + 1) * sizeof *o->steps);
    o->steps[o->n_steps++] = st;
}

proxydrv_backend_t proxydrv_match(const agent_proxy_t *cfg, const char *host, int port)
{
    const char *hp[2] = { cfg->blue, cfg->green };
    for (int i = 0; i < 2; i++) {
        char h[256];
        int p;
        if (agent_config_split_hostport(hp[i], h, sizeof h, &p) && p == port &&
            strcmp(h, host) == 0)
            return (proxydrv_backend_t)i;
    }
    return PROXYDRV_OTHER;
}

void proxydrv_job_begin(proxydrv_job_t *j, const proxydrv_req_t *req, proxydrv_out_t *out,
                        proxydrv_done_cb done, void *arg)
{
    j->req = req;
    j->out = out;
    j->done = done;
    j->arg = arg;
}

void proxydrv_job_end(proxydrv_job_t *j, const char *error)
{
    proxydrv_done_cb done = j->done;
    void *arg = j->arg;
    j->done = NULL;
    j->req = NULL;
    j->out = NULL;
    done(arg, error);
}

const char *proxydrv_job_errf(proxydrv_job_t *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof j->err, fmt, ap);
    va_end(ap);
    return j->err;
}

const char *proxydrv_job_cmd_failed(proxydrv_job_t *j, const char *what, const char *argv0,
                                    const proc_result_t *r)
{
    char *st = proc_status_text(r);
    proxydrv_job_errf(j, "%s (%s) %s: %s", what, argv0, st, r->err);
    free(st);
    return j->err;
}
