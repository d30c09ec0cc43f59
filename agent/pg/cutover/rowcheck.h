/*
 * rowcheck: one side of the cutover's final check. Inside the write pause
 * both servers are still (the source fenced, the target holding the final
 * LSN); each side reads the rows of the keys the last verify saw change
 * (CheckRows) as (key as text, md5 of the row as jsonb text) and the
 * coordinator compares the two answers (coordinator/finalcheck.c).
 *
 * A row as jsonb is independent of column order, and key and values are
 * printed under the session settings verify prints keys with
 * (ROWCHECK_PRINT_OPTIONS), so the keys the coordinator got from verify
 * read back as the same text. Keys are parameters whose types the server
 * infers from the key columns ("t.k = $1"), so any key type works without
 * a catalog read inside the pause.
 *
 * Pure SQL building and result reading: no I/O, the caller runs the query
 * on its own connection.
 */
#ifndef GODWIT_ROWCHECK_H
#define GODWIT_ROWCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "godwit.pb-c.h"
#include "pgconn.h"

/* The session settings rows and keys are printed with: verify's too
 * (verify/verify_table.c), so a key verify reported reads back the same. */
#define ROWCHECK_PRINT_OPTIONS                                                                 \
    " -c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"      \
    " -c bytea_output=hex -c lc_monetary=C -c client_encoding=UTF8"

/* The query reading c's rows: malloc'd SQL, and in *params a malloc'd
 * array of *nparams values borrowed from c (free the array, not the
 * values). Identifiers are quoted on conn (connected). NULL with why when
 * c is malformed (no key column, a key of another width, too many values
 * for one statement) or a name cannot be quoted. */
char *rowcheck_sql(pgconn_t *conn, const Godwit__CheckRows *c, const char ***params,
                   int *nparams, char *why, size_t whylen);

/* Builds rowcheck_sql's query for c and sends it on conn (timeout_ms, cb
 * with arg as pgconn_query). 0, or -1 with why when it cannot be built or
 * sent (cb is not called then). */
int rowcheck_send(pgconn_t *conn, const Godwit__CheckRows *c, uint64_t timeout_ms,
                  pgconn_result_cb cb, void *arg, char *why, size_t whylen);

/* The rows of res (rowcheck_sql's query on c) as a CheckedRows: malloc'd,
 * freed with godwit__checked_rows__free_unpacked. */
Godwit__CheckedRows *rowcheck_rows_new(const Godwit__CheckRows *c, const PGresult *res);

#endif
