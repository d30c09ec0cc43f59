/*
 * pglog: follows the PostgreSQL server's log file and picks out the errors
 * of logical replication workers, so the server's own message for an apply
 * or copy error reaches the operator (pg_stat_subscription_stats has only
 * counts, and PostgreSQL 13 and 14 not even those).
 *
 * An error is a line with "ERROR:  " or "FATAL:  " (after any
 * log_line_prefix) and the DETAIL, HINT and CONTEXT lines that follow it. It
 * is about logical replication when its CONTEXT names a replication origin
 * ("processing remote data for replication origin \"pg_16466\" ...": the
 * apply worker of the subscription with oid 16466, or "pg_16466_16384" for
 * its copy of one table) or its text names a subscription.
 *
 * The first poll starts at the end of the file (old errors are history);
 * each poll then reads what was appended, at most PGLOG_MAX_READ bytes, so a
 * poll is a short read of the page cache. A file that shrank or was replaced
 * (rotation) is read again from its start. An error is delivered once the
 * line after it shows it is complete.
 *
 * Owns: its path copy, the partial last line and the error being collected.
 */
#ifndef GODWIT_PGLOG_H
#define GODWIT_PGLOG_H

#include <stddef.h>

#define PGLOG_MAX_READ (256 * 1024)

typedef struct pglog pglog_t;

/* origin: the replication origin the error names ("pg_16466", "" if none);
 * subscription: the subscription its text names ("" if none); message:
 * "ERROR:  ..." with DETAIL, HINT and CONTEXT appended. All borrowed for
 * the call. */
typedef void (*pglog_error_cb)(const char *origin, const char *subscription,
                               const char *message, void *arg);

pglog_t *pglog_new(const char *path);
void pglog_free(pglog_t **lp);

/* Reads what was appended since the last poll and calls cb for each
 * complete replication error. 0, or -errno if the file cannot be read (a
 * missing file is retried on the next poll). */
int pglog_poll(pglog_t *l, pglog_error_cb cb, void *arg);

/* The subscription oid in an origin name ("pg_16466" or "pg_16466_16384"),
 * or 0. */
unsigned pglog_origin_subid(const char *origin);

#endif
