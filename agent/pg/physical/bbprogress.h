/*
 * bbprogress: pg_basebackup's own progress report (--progress) read from
 * its stderr, chunk by chunk as the pipe gives it. PostgreSQL 15 writes
 *
 *   20046/93544 kB (21%), 0/1 tablespace (/data/base/5/16384      )
 *
 * once a second, ending the line with '\n' when stderr is not a terminal
 * (--verbose) and '\r' when it is; without an estimate (--no-estimate-size)
 * the "/total" is left out. Anything else on stderr ("pg_basebackup:
 * checkpoint completed") is not progress and leaves the figures alone.
 *
 * Pure text handling: no I/O, no allocation; the caller owns the struct.
 */
#ifndef GODWIT_BBPROGRESS_H
#define GODWIT_BBPROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BBPROGRESS_LINE_MAX 512

typedef struct {
    char line[BBPROGRESS_LINE_MAX]; /* the line being assembled (a longer one is cut) */
    size_t len;
    bool seen;                      /* a progress line has been read */
    uint64_t done_bytes;            /* as the last progress line said */
    uint64_t total_bytes;           /* its estimate; 0 when it gives none */
} bbprogress_t;

/* Whether line (one line, without its end) is a progress line; then its
 * figures in bytes (*total_bytes 0 when it has no estimate). */
bool bbprogress_parse_line(const char *line, uint64_t *done_bytes, uint64_t *total_bytes);

/* Feeds len bytes of stderr; every complete line that is progress updates
 * p's figures. */
void bbprogress_feed(bbprogress_t *p, const char *data, size_t len);

#endif
