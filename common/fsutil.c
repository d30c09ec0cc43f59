/* fsutil: see fsutil.h. */
#include "fsutil.h"
#include "xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync of path's directory: 0 or -errno (a directory that cannot be
 * opened is not an error: some file systems do not allow it). */
static int s_sync_dir(const char *path)
{
    int rc = 0;
    char *dircopy = xstrdup(path);
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dircopy);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            rc = -errno;
        close(dfd);
    }
    return rc;
}

static int s_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool sync)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    if (sync)
        rc = s_sync_dir(path);
out:
    free(tmp);
    return rc;
}

int fsutil_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    return s_write_atomic(path, data, len, mode, true);
}

int fsutil_write_atomic_unsynced(const char *path, const void *data, size_t len, mode_t mode)
{
    return s_write_atomic(path, data, len, mode, false);
}

int fsutil_sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) != 0 ? -errno : 0;
    close(fd);
    int drc = s_sync_dir(path);
    return rc != 0 ? rc : drc;
}

int fsutil_read_small(const char *path, size_t max, char **out, size_t *lenp)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = xmalloc(max + 1);
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = -EFBIG;
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    if (lenp)
        *lenp = len;
    return 0;
}

int fsutil_mkdirs(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return rc;
}
