/*
 * mycheck: verify for a MariaDB migration (docs/mariadb.md "Verify"), in
 * at most two rounds of checksums that the source's binary log carries as
 * statements, so that the replica computes the same over its own rows at
 * the same position of its stream (pt-table-checksum's way):
 *
 *   1. MyChecksum to the source agent: every table of the database in
 *      chunks of 1000 rows in primary key order (a table without a key is
 *      one chunk); then MyChecksumCompare to the target agent, which waits
 *      until it executed the source's last GTID of the run and lists the
 *      chunks whose count or hash differ.
 *   2. For the different chunks of tables with a key (at most
 *      MYCHECK_RECHECK of them): the same again with one row per chunk
 *      within their ranges, whose keys (both sides', recorded with each
 *      small chunk) name every row that differs: changed (the key on both
 *      sides), missing_on_target, extra_on_target.
 *
 * Then MyChecksum with finish to the source: the table of figures,
 * godwit_verify, is dropped (the drop replicates). A difference is only
 * ever reported from two sides' figures computed at one position: sound by
 * construction, whatever the application writes meanwhile.
 *
 * The report has verify's shape (verify.h, docs/migrate.md): state,
 * started_at_ms, finished_at_ms, tables_total, tables_done, error, tables[]
 * with table, outcome (equal or different), key_kind, key_columns,
 * source_rows, target_rows, chunks, chunks_rechecked, diff_count, diffs
 * ({key: {column: value}, kind}), detail.
 *
 * Ownership as verify's: mycheck_start copies what it needs; the report
 * goes to done, after the run freed itself; mycheck_cancel stops it
 * without done (its memory goes when the command in flight comes back).
 */
#ifndef GODWIT_MYCHECK_H
#define GODWIT_MYCHECK_H

#include <cjson/cJSON.h>

#include "agentlink.h"
#include "plan.h"

/* Chunks re-checked row by row in the second round, at most. */
#define MYCHECK_RECHECK 20

typedef struct mycheck mycheck_t;

/* report: the final report, owned by the callee; never from inside
 * mycheck_start. */
typedef void (*mycheck_done_cb)(cJSON *report, void *arg);

/* Verifies migration m's database, replicated on the connection objname;
 * the run's rows on both servers are named after it and the start time. */
mycheck_t *mycheck_start(const agentlink_t *link, const plan_migration_t *m, const char *objname,
                         mycheck_done_cb done, void *arg);

/* The report so far (borrowed). */
const cJSON *mycheck_report(const mycheck_t *c);

void mycheck_cancel(mycheck_t **cp);

#endif
