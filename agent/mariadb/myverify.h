/*
 * myverify: the MariaDB verify, in two steps (proto/godwit.proto, above
 * MyChunk; docs/mariadb.md "Verify"), the way pt-table-checksum compares a
 * primary and its replica: the replica recomputes each chunk's figures
 * from its own rows, at the very position of its stream where the source
 * computed them, so rows still changing on the source do not matter.
 *
 * MyChecksum, on the source agent's local server. One session, its
 * default database the request's, running binlog_format = STATEMENT (which
 * needs SUPER or BINLOG ADMIN: a refusal is the step's failure, with the
 * server's message), time_zone +00:00 (a TIMESTAMP's text is the same
 * instant on both sides; the replica takes the statement's time zone
 * from its event) and utf8mb4. It makes the table godwit_verify in the
 * database (CREATE TABLE IF NOT EXISTS: DDL, replicated), then for each
 * table (the request's, or every base table but godwit_verify) reads its
 * columns and primary key from information_schema and walks the key:
 *
 *   bound   SELECT <key as text> FROM t WHERE <above lower [and at most
 *           the range's upper]> ORDER BY <key> LIMIT 1 OFFSET chunk_rows-1:
 *           the chunk's inclusive upper bound; no row: the chunk is open
 *           above and the table's (or the range's) last;
 *   replace REPLACE INTO godwit_verify (run, tbl, chunk, lo, hi, this_cnt,
 *           this_hash, this_keys) SELECT ..., COUNT(*), <hash>, <keys>
 *           FROM t WHERE <the chunk's range>: logged as this very
 *           statement, so the replica runs it over its own rows (MariaDB
 *           logs it with warning 1592, "unsafe statement": expected, and
 *           the reason it is done so);
 *   read    the row back: the source's figures;
 *   update  UPDATE godwit_verify SET src_cnt, src_hash, src_keys = the
 *           figures as literals: replicated too, so the replica's row holds
 *           both sides.
 *
 * The hash of a chunk is the BIT_XOR of the first 64 bits of each row's
 * MD5 over its columns' text (numeric columns as the server prints them,
 * the others as HEX() of their bytes, a FLOAT as a DOUBLE) and a string
 * of their NULL flags: independent of the rows' order, 16 hex digits. Two
 * equal rows cancel out (a table without a key may have them): the count
 * still tells. A chunk of at most 20 rows also keeps its rows' keys (the
 * key columns' text, ',' between them, one row a line, in key order), so
 * a chunk cut into single rows names the rows that differ.
 *
 * Bounds: a MyChunk's lower and upper are the key's values, one string a
 * column, in mykey.h's form (a number's text, or HEX of the bytes);
 * godwit_verify keeps each bound as those values joined by ',' (neither
 * form holds one), NULL for an open side. A table without a primary key,
 * or with a key column of a type ranges are not cut on (mykey_range_type),
 * is one chunk without bounds. With `within`, each given chunk's range
 * (its table, lower, upper) is cut into chunks of chunk_rows the same
 * way; chunks are numbered from 1 per table within the request either
 * way. Re-sent, the same run's rows are replaced: a step run again ends
 * the same.
 *
 * Answered with MyChecksumResult: @@last_gtid of the session after the
 * last UPDATE (the target has every chunk once it executed it), per table
 * its key columns, chunks and rows counted. finish = true drops
 * godwit_verify (replicated) and answers an empty result.
 *
 * MyChecksumCompare, on the target agent's local server: MASTER_GTID_WAIT
 * for the source's GTID (-1 is "the target did not reach the source's
 * position"), then the run's rows of godwit_verify: how many, the target's
 * rows, and each row whose figures differ (counts, hashes, or a side not
 * there) as a MyChunk with both sides' figures, its bounds and its keys.
 * Read-only.
 *
 * Ownership: each step owns its session, freed when it reports or is
 * cancelled; what it needs of the request and of local is copied by the
 * start. Never: done twice, from inside the start, or after step_cancel;
 * a request's name or value in SQL other than quoted (identifiers),
 * escaped by the connection (strings) or checked to be of its form (a
 * bound's values: mykey_literal).
 */
#ifndef GODWIT_MYVERIFY_H
#define GODWIT_MYVERIFY_H

#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"
#include "step.h"

/* How the steps reach the local server (borrowed for the start call). */
typedef struct {
    myconn_params_t server;        /* the local server; its database and init are replaced */
    uint64_t statement_timeout_ms; /* one statement's limit, its connection included */
} myverify_local_t;

/* Steps (step.h): done runs exactly once, never inside the start. NULL,
 * with *why (malloc'd, the caller frees it), for a request refused before
 * anything runs; done is not called then. */

/* On the source: done gets a malloc'd MyChecksumResult, or the error. */
step_t *myverify_checksum_start(uv_loop_t *loop, const myverify_local_t *local,
                                const Godwit__MyChecksum *req, step_done_cb done, void *arg,
                                char **why);

/* On the target: done gets a malloc'd MyChecksumCompareResult, or the
 * error. */
step_t *myverify_compare_start(uv_loop_t *loop, const myverify_local_t *local,
                               const Godwit__MyChecksumCompare *req, step_done_cb done,
                               void *arg, char **why);

#endif
