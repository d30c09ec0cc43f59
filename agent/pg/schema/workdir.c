/* workdir: the schema step's temp folder (workdir.h). */
#include "workdir.h"

#include <fcntl.h>
#include <stdlib.h>

#include "log.h"
#include "xalloc.h"

#define S_TMP_TEMPLATE "/tmp/godwit-schema-XXXXXX"
#define S_DUMP_FILE "schema.dump"
#define S_LIST_FILE "restore.list"

void workdir_init(workdir_t *w, uv_loop_t *loop, const char *name)
{
    w->loop = loop;
    w->name = xstrdup(name);
    w->list_fd = -1;
}

void workdir_clear(workdir_t *w)
{
    free(w->name);
    free(w->list_text);
    free(w->list_error);
    free(w->dir);
    free(w->dump_path);
    free(w->list_path);
}

/* The request failed: cb gets "doing path: error". */
static void s_fail(workdir_t *w, const char *doing, const char *path, int err)
{
    char *why = xasprintf("%s %s: %s", doing, path, uv_strerror(err));
    w->cb(w, why, w->arg);
    free(why);
}

/* At the top of a callback: the request is over; its result. */
static ssize_t s_over(workdir_t *w)
{
    w->busy = false;
    ssize_t r = w->fs.result;
    uv_fs_req_cleanup(&w->fs);
    return r;
}

/* A request was sent (rc 0), or it could not start: then its callback runs
 * now with rc as its result, as if it had run. */
static void s_sent(workdir_t *w, int rc, uv_fs_cb cb)
{
    if (rc < 0) {
        w->fs.result = rc;
        cb(&w->fs);
    }
}

/* ---- removing ------------------------------------------------------------ */

static void s_cleanup_next(workdir_t *w);

static void s_on_cleanup(uv_fs_t *req)
{
    workdir_t *w = req->data;
    ssize_t r = s_over(w);
    if (r < 0 && r != UV_ENOENT) {
        const char *path = w->cleanup_step == 1   ? w->dump_path
                           : w->cleanup_step == 2 ? w->list_path
                                                  : w->dir;
        log_warn("%s: cannot remove %s: %s", w->name, path, uv_strerror((int)r));
    }
    s_cleanup_next(w);
}

/* Removes the temp dir's files and the dir; then the removal is over. */
static void s_cleanup_next(workdir_t *w)
{
    int rc;
    if (!w->dir) {
        w->gone(w, w->arg);
        return;
    }
    w->fs.data = w;
    switch (w->cleanup_step++) {
    case 0:
        rc = uv_fs_unlink(w->loop, &w->fs, w->dump_path, s_on_cleanup);
        break;
    case 1:
        rc = uv_fs_unlink(w->loop, &w->fs, w->list_path, s_on_cleanup);
        break;
    case 2:
        rc = uv_fs_rmdir(w->loop, &w->fs, w->dir, s_on_cleanup);
        break;
    default:
        w->gone(w, w->arg);
        return;
    }
    w->busy = true;
    s_sent(w, rc, s_on_cleanup);
}

static void s_cleanup(workdir_t *w)
{
    w->cleanup_step = 0;
    s_cleanup_next(w);
}

void workdir_remove(workdir_t *w, workdir_gone_cb gone, void *arg)
{
    w->removing = true;
    w->gone = gone;
    w->arg = arg;
    if (w->busy)
        return; /* the list file, if open, is open only while a request runs */
    s_cleanup(w);
}

/* ---- the folder ---------------------------------------------------------- */

static void s_on_mkdtemp(uv_fs_t *req)
{
    workdir_t *w = req->data;
    w->busy = false;
    ssize_t r = req->result;
    if (r == 0 && req->path)
        w->dir = xstrdup(req->path);
    uv_fs_req_cleanup(req);
    if (w->dir) {
        w->dump_path = xasprintf("%s/%s", w->dir, S_DUMP_FILE);
        w->list_path = xasprintf("%s/%s", w->dir, S_LIST_FILE);
    }
    if (w->removing) {
        s_cleanup(w);
        return;
    }
    if (!w->dir) {
        s_fail(w, "cannot create a temporary directory", S_TMP_TEMPLATE,
               r < 0 ? (int)r : UV_EINVAL);
        return;
    }
    w->cb(w, NULL, w->arg);
}

void workdir_create(workdir_t *w, workdir_cb cb, void *arg)
{
    w->cb = cb;
    w->arg = arg;
    w->fs.data = w;
    w->busy = true;
    s_sent(w, uv_fs_mkdtemp(w->loop, &w->fs, S_TMP_TEMPLATE, s_on_mkdtemp), s_on_mkdtemp);
}

/* ---- the list file ------------------------------------------------------- */

static void s_on_list_closed(uv_fs_t *req)
{
    workdir_t *w = req->data;
    ssize_t r = s_over(w);
    w->list_open = false;
    if (w->removing) {
        s_cleanup(w);
        return;
    }
    if (w->list_error) {
        w->cb(w, w->list_error, w->arg);
        return;
    }
    if (r < 0) {
        s_fail(w, "cannot write", w->list_path, (int)r);
        return;
    }
    w->cb(w, NULL, w->arg);
}

static void s_list_close(workdir_t *w)
{
    w->busy = true;
    s_sent(w, uv_fs_close(w->loop, &w->fs, w->list_fd, s_on_list_closed), s_on_list_closed);
}

static void s_list_write_more(workdir_t *w);

static void s_on_list_written(uv_fs_t *req)
{
    workdir_t *w = req->data;
    ssize_t r = s_over(w);
    if (r < 0 && !w->removing)
        w->list_error = xasprintf("cannot write %s: %s", w->list_path, uv_strerror((int)r));
    if (r < 0 || w->removing) {
        s_list_close(w);
        return;
    }
    w->list_off += (size_t)r;
    s_list_write_more(w);
}

static void s_list_write_more(workdir_t *w)
{
    if (w->list_off == w->list_len) {
        s_list_close(w);
        return;
    }
    uv_buf_t buf = uv_buf_init(w->list_text + w->list_off, (unsigned)(w->list_len - w->list_off));
    w->busy = true;
    int rc = uv_fs_write(w->loop, &w->fs, w->list_fd, &buf, 1, -1, s_on_list_written);
    s_sent(w, rc, s_on_list_written);
}

static void s_on_list_opened(uv_fs_t *req)
{
    workdir_t *w = req->data;
    ssize_t r = s_over(w);
    if (r >= 0) {
        w->list_fd = (uv_file)r;
        w->list_open = true;
    }
    if (w->removing) {
        if (w->list_open)
            s_list_close(w);
        else
            s_cleanup(w);
        return;
    }
    if (r < 0) {
        s_fail(w, "cannot create", w->list_path, (int)r);
        return;
    }
    s_list_write_more(w);
}

void workdir_write_list(workdir_t *w, char *text, size_t len, workdir_cb cb, void *arg)
{
    w->cb = cb;
    w->arg = arg;
    free(w->list_text);
    w->list_text = text;
    w->list_len = len;
    w->list_off = 0;
    w->fs.data = w;
    w->busy = true;
    int rc = uv_fs_open(w->loop, &w->fs, w->list_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        0600, s_on_list_opened);
    s_sent(w, rc, s_on_list_opened);
}
