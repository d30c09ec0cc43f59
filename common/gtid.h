/*
 * gtid: MariaDB GTID lists ("0-1-5,1-2-3": domain-server-sequence per
 * replication domain), as the server prints @@gtid_binlog_pos and its
 * kin. Pure functions.
 */
#ifndef GODWIT_GTID_H
#define GODWIT_GTID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t domain, server;
    uint64_t seq;
} gtid_t;

/* Parses text ("" for none) into *out (malloc'd, the caller frees it; NULL
 * when empty) and *n; false, with *out NULL, for a text that is not one. */
bool gtid_list_parse(const char *text, gtid_t **out, size_t *n);

/* Transactions target has still to apply to reach source: per domain of
 * source, its sequence number less target's for that domain (0 when
 * target is ahead); -1 when a domain of source is missing from target, or
 * either text is not a GTID list. */
long long gtid_behind(const char *source, const char *target);

#endif
