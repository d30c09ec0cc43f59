/*
 * diskstats: which block device holds a path, how busy it is, and how full
 * its filesystem is, for the agent's disk report.
 *
 * The device comes from stat(2)'s st_dev; when that is an anonymous device
 * (major 0: btrfs subvolumes, overlay, some FUSE mounts) the mount holding the
 * path is looked up in /proc/self/mountinfo and its source node (/dev/...) is
 * stat'ed for st_rdev. Counters come from one line of /proc/diskstats, rates
 * from two such samples, sizes from statvfs(3).
 *
 * The text parsers take the file contents as a string so tests can feed them
 * fixed text; only diskstats_device_for_path, diskstats_read and
 * diskstats_fs touch the file system. Nothing here keeps state or a handle
 * open between calls. It never guesses: a line it cannot read fully is
 * treated as missing, never as zeros.
 */
#include "diskstats.h"
#include "fsutil.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define S_SECTOR_BYTES 512.0
#define S_PROC_MAX (4u << 20) /* mountinfo in a busy container can be large */

/* Fields after "major minor name" in /proc/diskstats: 11 up to Linux 4.17,
 * 15 from 4.18 (discards), 17 from 5.5 (flushes). Fewer than 11 (the old
 * 4-field partition format) lacks io_ticks and is refused. */
#define S_MIN_STAT_FIELDS 11

/* A token within a line: [p, p + len). */
typedef struct {
    const char *p;
    size_t len;
} s_tok_t;

/* Next whitespace-separated token in [*pos, end); false at end of line. */
static bool s_next_tok(const char **pos, const char *end, s_tok_t *tok)
{
    const char *s = *pos;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
        s++;
    if (s >= end)
        return false;
    const char *t = s;
    while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
        s++;
    tok->p = t;
    tok->len = (size_t)(s - t);
    *pos = s;
    return true;
}

/* Decimal digits only (no sign, no spaces), no overflow. */
static bool s_tok_u64(const s_tok_t *tok, uint64_t *out)
{
    uint64_t v = 0;
    if (tok->len == 0)
        return false;
    for (size_t i = 0; i < tok->len; i++) {
        char ch = tok->p[i];
        if (ch < '0' || ch > '9')
            return false;
        unsigned d = (unsigned)(ch - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool s_tok_uint(const s_tok_t *tok, unsigned *out)
{
    uint64_t v;
    if (!s_tok_u64(tok, &v) || v > UINT32_MAX)
        return false;
    *out = (unsigned)v;
    return true;
}

/* Parses the rest of a diskstats line (after major and minor) into out. */
static bool s_parse_dev_rest(const char *pos, const char *end, diskstats_dev_t *out)
{
    s_tok_t tok;
    uint64_t f[S_MIN_STAT_FIELDS];
    int n = 0;

    if (!s_next_tok(&pos, end, &tok) || tok.len >= sizeof out->name)
        return false;
    memcpy(out->name, tok.p, tok.len);
    out->name[tok.len] = '\0';
    while (s_next_tok(&pos, end, &tok)) {
        uint64_t v;
        if (!s_tok_u64(&tok, &v))
            return false;
        if (n < S_MIN_STAT_FIELDS)
            f[n] = v;
        n++;
    }
    if (n < S_MIN_STAT_FIELDS)
        return false;
    out->reads_completed = f[0];
    out->sectors_read = f[2];
    out->writes_completed = f[4];
    out->sectors_written = f[6];
    out->io_ticks_ms = f[9];
    return true;
}

bool diskstats_parse(const char *text, unsigned major, unsigned minor, diskstats_dev_t *out)
{
    if (!text || !out)
        return false;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        const char *pos = line;
        s_tok_t tok;
        unsigned ma, mi;
        if (s_next_tok(&pos, end, &tok) && s_tok_uint(&tok, &ma) && ma == major &&
            s_next_tok(&pos, end, &tok) && s_tok_uint(&tok, &mi) && mi == minor) {
            diskstats_dev_t d;
            memset(&d, 0, sizeof d);
            d.major = ma;
            d.minor = mi;
            if (!s_parse_dev_rest(pos, end, &d))
                return false;
            *out = d;
            return true;
        }
        line = *end ? end + 1 : end;
    }
    return false;
}

static uint64_t s_delta(uint64_t before, uint64_t after)
{
    return after >= before ? after - before : 0;
}

void diskstats_rates(const diskstats_dev_t *before, const diskstats_dev_t *after,
                     uint64_t elapsed_ms, diskstats_rates_t *out)
{
    memset(out, 0, sizeof *out);
    if (!before || !after || elapsed_ms == 0)
        return;
    double secs = (double)elapsed_ms / 1000.0;
    out->read_bytes_per_sec =
        (double)s_delta(before->sectors_read, after->sectors_read) * S_SECTOR_BYTES / secs;
    out->write_bytes_per_sec =
        (double)s_delta(before->sectors_written, after->sectors_written) * S_SECTOR_BYTES / secs;
    out->read_iops = (double)s_delta(before->reads_completed, after->reads_completed) / secs;
    out->write_iops = (double)s_delta(before->writes_completed, after->writes_completed) / secs;
    double util =
        (double)s_delta(before->io_ticks_ms, after->io_ticks_ms) * 100.0 / (double)elapsed_ms;
    out->util_percent = util > 100.0 ? 100.0 : util;
}

static int s_octal(char ch)
{
    return ch >= '0' && ch <= '7' ? ch - '0' : -1;
}

/* Copies a mountinfo field into a new string (caller frees), undoing the
 * kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 '\'). */
static char *s_unescape(const s_tok_t *tok)
{
    char *out = xmalloc(tok->len + 1);
    size_t o = 0;
    for (size_t i = 0; i < tok->len; i++) {
        if (tok->p[i] == '\\' && i + 3 < tok->len && s_octal(tok->p[i + 1]) >= 0 &&
            s_octal(tok->p[i + 2]) >= 0 && s_octal(tok->p[i + 3]) >= 0) {
            int v = s_octal(tok->p[i + 1]) * 64 + s_octal(tok->p[i + 2]) * 8 +
                    s_octal(tok->p[i + 3]);
            if (v > 0 && v < 256) {
                out[o++] = (char)v;
                i += 3;
                continue;
            }
        }
        out[o++] = tok->p[i];
    }
    out[o] = '\0';
    return out;
}

/* Length of the mount point if it holds path (path equals it or continues
 * below it), else -1. */
static long s_mount_match(const char *mnt, const char *path)
{
    size_t n = strlen(mnt);
    if (n == 1 && mnt[0] == '/')
        return path[0] == '/' ? 1 : -1;
    if (strncmp(mnt, path, n) != 0)
        return -1;
    if (path[n] != '\0' && path[n] != '/')
        return -1;
    return (long)n;
}

/* Device of a mount: its own major:minor unless anonymous, else st_rdev of the
 * /dev/... block node it was mounted from. */
static bool s_mount_dev(unsigned ma, unsigned mi, const char *source, unsigned *major,
                        unsigned *minor)
{
    if (ma != 0) {
        *major = ma;
        *minor = mi;
        return true;
    }
    struct stat st;
    if (strncmp(source, "/dev/", 5) != 0 || stat(source, &st) != 0 || !S_ISBLK(st.st_mode))
        return false;
    *major = major(st.st_rdev);
    *minor = minor(st.st_rdev);
    return true;
}

bool diskstats_mountinfo_device(const char *mountinfo, const char *path, unsigned *major,
                                unsigned *minor)
{
    if (!mountinfo || !path || path[0] != '/')
        return false;
    long best_len = -1;
    unsigned best_ma = 0, best_mi = 0;
    char *best_source = NULL;

    const char *line = mountinfo;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        const char *pos = line;
        s_tok_t id, parent, devno, root, mnt, tok;
        unsigned ma, mi;
        /* id parent major:minor root mount-point options [optional...] - fstype source super */
        if (s_next_tok(&pos, end, &id) && s_next_tok(&pos, end, &parent) &&
            s_next_tok(&pos, end, &devno) && s_next_tok(&pos, end, &root) &&
            s_next_tok(&pos, end, &mnt)) {
            const char *colon = memchr(devno.p, ':', devno.len);
            s_tok_t tma = {devno.p, colon ? (size_t)(colon - devno.p) : 0};
            s_tok_t tmi = {colon ? colon + 1 : devno.p, colon ? devno.len - tma.len - 1 : 0};
            bool have_source = false;
            s_tok_t source = {NULL, 0};
            while (s_next_tok(&pos, end, &tok)) {
                if (tok.len == 1 && tok.p[0] == '-') {
                    s_tok_t fstype;
                    have_source = s_next_tok(&pos, end, &fstype) && s_next_tok(&pos, end, &source);
                    break;
                }
            }
            if (colon && have_source && s_tok_uint(&tma, &ma) && s_tok_uint(&tmi, &mi)) {
                char *mp = s_unescape(&mnt);
                long len = s_mount_match(mp, path);
                /* >=: a later mount on the same point hides the earlier one. */
                if (len >= 0 && len >= best_len) {
                    free(best_source);
                    best_source = s_unescape(&source);
                    best_len = len;
                    best_ma = ma;
                    best_mi = mi;
                }
                free(mp);
            }
        }
        line = *end ? end + 1 : end;
    }
    bool ok = best_source && s_mount_dev(best_ma, best_mi, best_source, major, minor);
    free(best_source);
    return ok;
}

int diskstats_device_for_path(const char *path, unsigned *major, unsigned *minor)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (major(st.st_dev) != 0) {
        *major = major(st.st_dev);
        *minor = minor(st.st_dev);
        return 0;
    }
    char *real = realpath(path, NULL);
    if (!real)
        return -errno;
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small("/proc/self/mountinfo", S_PROC_MAX, &text, &len);
    if (rc == 0)
        rc = diskstats_mountinfo_device(text, real, major, minor) ? 0 : -ENODEV;
    free(text);
    free(real);
    return rc;
}

int diskstats_read(unsigned major, unsigned minor, diskstats_dev_t *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small("/proc/diskstats", S_PROC_MAX, &text, &len);
    if (rc == 0 && !diskstats_parse(text, major, minor, out))
        rc = -ENODEV;
    free(text);
    return rc;
}

int diskstats_fs(const char *path, diskstats_fs_t *out)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) != 0)
        return -errno;
    out->size_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    out->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    out->free_inodes = (uint64_t)vfs.f_favail;
    return 0;
}
