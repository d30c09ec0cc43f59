/*
 * vwindow: one table's changes in a verify window, the source's WAL between
 * the position X of the source's snapshot and the position Y the target's
 * snapshot can hold (see verify_table.c), and what they prove.
 *
 * The target's snapshot shows the source as of some commit in (X, Y]
 * (replication applies the source's transactions one at a time, in commit
 * order). So a row of the target is consistent when it equals the source's
 * row at X or a version the row took in the window; anything else is a
 * real difference. A table compared as a multiset (no usable key) is
 * consistent when the target holds the source's rows at X with the changes
 * of some prefix of the window's transactions applied.
 *
 * Rows are compared by a hash of their text: the record's text as
 * PostgreSQL prints a row value (record_out: values quoted when empty or
 * holding a quote, backslash, parenthesis, comma or white space; NULL as
 * nothing), in UTF-8, through SHA-256. The servers compute the same with
 * pg_catalog.sha256(pg_catalog.convert_to(ROW(...)::pg_catalog.text, 'UTF8'))
 * (vttable.c), so a version known only from the WAL compares with a
 * row read by SQL.
 *
 * Ownership: a window owns copies of everything it was fed; the messages
 * and their buffers stay the caller's. Strings handed out are borrowed from
 * the window and live as long as it does. Pure computation: no I/O, no
 * loop, so unit tests drive it directly.
 */
#ifndef GODWIT_VWINDOW_H
#define GODWIT_VWINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "pgoutput.h"

#define VWINDOW_HASH_LEN 32
#define VWINDOW_BUCKETS 256

/* A row's values are n strings, NULL for SQL NULL; VWINDOW_UNCHANGED
 * stands for a TOASTed value the change did not carry (pgoutput's 'u'). */
extern char vwindow_unchanged[];
#define VWINDOW_UNCHANGED (vwindow_unchanged)

typedef struct vwindow vwindow_t;

typedef enum {
    VWINDOW_CONSISTENT,
    VWINDOW_CHANGED,        /* on both sides, and the target's is no version of the source's */
    VWINDOW_MISSING,        /* the source has (or had) it, the target not */
    VWINDOW_EXTRA,          /* the target has it, the source never had it */
} vwindow_verdict_t;

/* One bucket of a multiset's digest: rows, and two sums (mod 2^64) of 56
 * bits of each row's hash (bytes 1-7 and 8-14); the bucket is byte 0. */
typedef struct {
    int64_t n;
    uint64_t s1, s2;
} vwindow_bucket_t;

/* A row read by SQL, for a multiset's difference: its hash and values
 * (borrowed). */
typedef struct {
    uint8_t hash[VWINDOW_HASH_LEN];
    char *const *values;
} vwindow_row_t;

/* ---- rows ---- */

/* The hash of a row of n values (none may be VWINDOW_UNCHANGED). */
void vwindow_row_hash(char *const *values, size_t n, uint8_t out[VWINDOW_HASH_LEN]);
/* 64 hex digits into a hash; false if it is not that. */
bool vwindow_hash_parse(const char *hex, uint8_t out[VWINDOW_HASH_LEN]);
/* n key values as one string, each as "<length>:<value>" (no value can run
 * into the next). Caller frees. */
char *vwindow_key_encode(char *const *values, size_t n);
/* The n values of an encoded key: an array of n strings (caller frees
 * each and the array), or NULL if enc is not n encoded values. */
char **vwindow_key_decode(const char *enc, size_t n);
/* Adds (sign 1) or removes (-1) a row of that hash to buckets[VWINDOW_BUCKETS]. */
void vwindow_bucket_add(vwindow_bucket_t *buckets, const uint8_t hash[VWINDOW_HASH_LEN], int sign);

/* ---- a window ---- */

/* For the table schema.name, compared on columns[n_columns] (names; the
 * relation's other columns, generated ones, are not published). key: the
 * indexes into columns of the key's columns, n_key of them; 0: a multiset.
 * Copies what it needs. */
vwindow_t *vwindow_new(const char *schema, const char *name, char *const *columns,
                       size_t n_columns, const size_t *key, size_t n_key);
void vwindow_destroy(vwindow_t **wp);

/* Feeds the window's next message, in the order decoding gave them. false,
 * with why, for a change of this table the window cannot follow (a
 * relation without one of the compared columns; in a multiset, an update
 * or delete without the old row); the window is unusable then. Other
 * tables' messages are skipped. */
bool vwindow_feed(vwindow_t *w, const pgoutput_msg_t *m, char *why, size_t whylen)
    GODWIT_MUSTCHECK;
/* Feeding is over: sorts what the window holds. Required before the
 * questions below; feeding again afterwards is not allowed. */
void vwindow_seal(vwindow_t *w);

uint64_t vwindow_changes(const vwindow_t *w);      /* changes to this table */
uint64_t vwindow_transactions(const vwindow_t *w); /* transactions that changed it */

/* ---- keyed ---- */

/* Distinct keys changed in the window, and the i-th of them (encoded),
 * the most recently changed first. */
size_t vwindow_key_count(const vwindow_t *w);
const char *vwindow_key_at(const vwindow_t *w, size_t i);
/* The key changed in the window. */
bool vwindow_has_key(const vwindow_t *w, const char *key);
/* The key's first change in the window leaves TOASTed values unchanged, so
 * judging it needs the source's row at X (its values: base). */
bool vwindow_needs_base(const vwindow_t *w, const char *key);
/* Judges one key: src and dst are the hashes of its row on the source at X
 * and on the target (NULL: no such row); base the source's row at X (n
 * values) when vwindow_needs_base, else may be NULL. false with why when
 * it cannot judge (base needed and missing, or base's hash is not src). */
bool vwindow_judge(const vwindow_t *w, const char *key, const uint8_t *src, const uint8_t *dst,
                   char *const *base, vwindow_verdict_t *verdict, char *why, size_t whylen)
    GODWIT_MUSTCHECK;

/* ---- multiset ---- */

/* src, dst: the digests (VWINDOW_BUCKETS each) of the source at X and of
 * the target. Finds the prefix of the window's transactions (0: none of
 * them) after which the source's buckets are nearest the target's: *prefix,
 * and the buckets that still differ flagged in mismatched[VWINDOW_BUCKETS];
 * returns how many (0: consistent). */
size_t vwindow_multiset_match(const vwindow_t *w, const vwindow_bucket_t *src,
                              const vwindow_bucket_t *dst, size_t *prefix, bool *mismatched);

typedef void (*vwindow_diff_cb)(vwindow_verdict_t kind, char *const *values, void *arg);

/* The rows by which the target differs from the source at X with the
 * first `prefix` transactions applied, within the flagged buckets: src and
 * dst are the rows of those buckets read by SQL. cb runs for each row that
 * differs (VWINDOW_MISSING or VWINDOW_EXTRA, with its values); returns how
 * many there are. */
uint64_t vwindow_multiset_diff(const vwindow_t *w, size_t prefix, const bool *buckets,
                               const vwindow_row_t *src, size_t n_src, const vwindow_row_t *dst,
                               size_t n_dst, vwindow_diff_cb cb, void *arg);

#endif
