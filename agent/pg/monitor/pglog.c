/*
 * pglog: see pglog.h.
 */
#include "pglog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#define PGLOG_MAX_LINE (64 * 1024)   /* longer lines are cut here */
#define PGLOG_MAX_MESSAGE 2000

struct pglog {
    char *path;
    bool started;           /* the first poll has positioned us */
    dev_t dev;
    ino_t ino;
    off_t offset;
    char *line;             /* the partial last line */
    size_t line_len;
    char *block;            /* the error being collected, or NULL */
    size_t block_len;
};

pglog_t *pglog_new(const char *path)
{
    pglog_t *l = xcalloc(1, sizeof *l);
    l->path = xstrdup(path);
    l->line = xmalloc(PGLOG_MAX_LINE + 1);
    return l;
}

void pglog_free(pglog_t **lp)
{
    pglog_t *l = *lp;
    if (!l)
        return;
    *lp = NULL;
    free(l->path);
    free(l->line);
    free(l->block);
    free(l);
}

unsigned pglog_origin_subid(const char *origin)
{
    if (!origin || strncmp(origin, "pg_", 3) != 0)
        return 0;
    char *end;
    unsigned long v = strtoul(origin + 3, &end, 10);
    if (end == origin + 3 || (*end != '\0' && *end != '_') || v > UINT32_MAX)
        return 0;
    return (unsigned)v;
}

/* The keyword a log line carries ("ERROR", "DETAIL", ...) and where its
 * text starts; NULL if none (a continuation or foreign line). */
static const char *s_keyword(const char *line, const char **text)
{
    static const char *const words[] = {
        "ERROR:  ", "FATAL:  ", "PANIC:  ", "DETAIL:  ", "HINT:  ", "CONTEXT:  ", "STATEMENT:  ",
        "LOG:  ", "WARNING:  ", "NOTICE:  ", "INFO:  ", "DEBUG1:  ", "DEBUG2:  ", "DEBUG3:  ",
        "DEBUG4:  ", "DEBUG5:  ", "LOCATION:  ",
    };
    const char *best = NULL, *word = NULL;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        const char *p = strstr(line, words[i]);
        if (p && (!best || p < best)) {
            best = p;
            word = words[i];
        }
    }
    if (!best)
        return NULL;
    *text = best;
    return word;
}

/* The quoted name after `key "` in s, copied into out ("" if none). */
static void s_quoted_after(const char *s, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *p = strstr(s, key);
    if (!p)
        return;
    p += strlen(key);
    const char *q = strchr(p, '"');
    if (!q)
        return;
    size_t n = (size_t)(q - p);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void s_block_flush(pglog_t *l, pglog_error_cb cb, void *arg)
{
    if (!l->block)
        return;
    char origin[128], sub[128];
    s_quoted_after(l->block, "replication origin \"", origin, sizeof origin);
    s_quoted_after(l->block, "subscription \"", sub, sizeof sub);
    if (origin[0] || sub[0])
        cb(origin, sub, l->block, arg);
    free(l->block);
    l->block = NULL;
    l->block_len = 0;
}

static void s_block_append(pglog_t *l, const char *sep, const char *text)
{
    size_t add = strlen(sep) + strlen(text);
    if (l->block_len + add > PGLOG_MAX_MESSAGE)
        return;
    l->block = xrealloc(l->block, l->block_len + add + 1);
    sprintf(l->block + l->block_len, "%s%s", sep, text);
    l->block_len += add;
}

static void s_line(pglog_t *l, char *line, pglog_error_cb cb, void *arg)
{
    const char *text = NULL;
    const char *word = s_keyword(line, &text);
    if (!word) {
        /* A message's own continuation lines start with a tab. */
        if (l->block && line[0] == '\t')
            s_block_append(l, " ", line + 1);
        return;
    }
    if (strcmp(word, "ERROR:  ") == 0 || strcmp(word, "FATAL:  ") == 0 ||
        strcmp(word, "PANIC:  ") == 0) {
        s_block_flush(l, cb, arg);
        l->block = xstrdup("");
        l->block_len = 0;
        s_block_append(l, "", text);
        return;
    }
    if (l->block && (strcmp(word, "DETAIL:  ") == 0 || strcmp(word, "HINT:  ") == 0 ||
                     strcmp(word, "CONTEXT:  ") == 0)) {
        s_block_append(l, "; ", text);
        return;
    }
    s_block_flush(l, cb, arg);
}

int pglog_poll(pglog_t *l, pglog_error_cb cb, void *arg)
{
    int fd = open(l->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!l->started) {
        l->started = true;
        l->offset = st.st_size;
    } else if (st.st_dev != l->dev || st.st_ino != l->ino || st.st_size < l->offset) {
        l->offset = 0; /* rotated or truncated: the new file from its start */
        l->line_len = 0;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    char *buf = xmalloc(PGLOG_MAX_READ);
    ssize_t n = pread(fd, buf, PGLOG_MAX_READ, l->offset);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            l->line[l->line_len] = '\0';
            s_line(l, l->line, cb, arg);
            l->line_len = 0;
        } else if (l->line_len < PGLOG_MAX_LINE) {
            l->line[l->line_len++] = buf[i] ? buf[i] : ' ';
        }
    }
    if (n > 0)
        l->offset += n;
    free(buf);
    return rc;
}
