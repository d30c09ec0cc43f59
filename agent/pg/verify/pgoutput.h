/*
 * pgoutput: a parser for the messages of PostgreSQL's logical replication
 * output plugin (pgoutput, protocol version 1, the one every supported
 * server speaks), as pg_logical_slot_peek_binary_changes() returns them,
 * one message per row. Verify (verify_table.c) reads the changes of a short
 * window of the source's WAL with it.
 *
 * Messages understood: Begin, Commit, Origin, Relation, Type, Insert,
 * Update, Delete, Truncate and the logical decoding Message; anything else is
 * refused with a reason. Every length and count is checked against the
 * bytes there are: the parser never reads past its input, whatever the
 * input (tests/fuzz/fuzz_pgoutput.c).
 *
 * Ownership: a parsed message borrows from the buffer it was parsed from
 * (names are NUL-terminated inside it; column values are pointer and
 * length, not terminated), so the buffer must outlive it. The arrays it
 * holds (columns, relation ids) are its own: pgoutput_msg_clear() frees
 * them. Parsing allocates nothing that outlives a failed parse.
 */
#ifndef GODWIT_PGOUTPUT_H
#define GODWIT_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* A column of a tuple: kind 'n' (NULL), 'u' (an unchanged TOASTed value
 * the message does not carry), 't' (text) or 'b' (binary); data and len
 * for 't' and 'b'. */
typedef struct {
    char kind;
    const char *data;
    uint32_t len;
} pgoutput_col_t;

typedef struct {
    uint16_t n;
    pgoutput_col_t *cols;
} pgoutput_tuple_t;

/* A column of a Relation message. */
typedef struct {
    uint8_t flags;          /* 1: part of the replica identity key */
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
} pgoutput_relcol_t;

typedef struct {
    char kind;              /* 'B', 'C', 'O', 'R', 'Y', 'I', 'U', 'D', 'T', 'M' */
    /* B: the final (commit) LSN, timestamp, xid. C: flags, commit LSN, end
     * LSN, timestamp. O: the origin's commit LSN and name. M: its LSN. */
    uint64_t lsn;
    uint64_t end_lsn;
    int64_t timestamp;
    uint32_t xid;
    uint8_t flags;
    const char *origin;
    /* R, Y, I, U, D: the relation (Y: the type's oid). */
    uint32_t relid;
    const char *nspname;    /* R and Y; "" for pg_catalog */
    const char *relname;    /* R: the relation; Y: the type's name */
    char replident;         /* R: d(efault), n(othing), f(ull), i(ndex) */
    uint16_t n_relcols;
    pgoutput_relcol_t *relcols;
    /* U, D: 'K' (the old key), 'O' (the whole old row) or 0 (none: U
     * without a changed key); I, U: the new row. */
    char old_kind;
    pgoutput_tuple_t old_tuple;
    pgoutput_tuple_t new_tuple;
    /* T: the relations truncated and the options (1: CASCADE, 2: RESTART
     * IDENTITY). */
    uint32_t n_relids;
    uint32_t *relids;
    /* M: the prefix and content. */
    const char *prefix;
    const char *content;
    uint32_t content_len;
} pgoutput_msg_t;

/* Parses one message of len bytes into *out (cleared first). true, or
 * false with *why (a static string) and *out holding nothing to free. */
bool pgoutput_parse(const uint8_t *buf, size_t len, pgoutput_msg_t *out, const char **why)
    GODWIT_MUSTCHECK;

/* Frees what the message holds (not the buffer) and zeroes it. */
void pgoutput_msg_clear(pgoutput_msg_t *m);

#endif
