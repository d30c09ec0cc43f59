/*
 * finalcheck: the cutover's final check, the coordinator's part. Inside
 * the write pause both sides are still; what a verify could not prove
 * there (rows changing under it) is re-read once more: the keys the last
 * verify saw change (its report's tables[].recent, the hot rows first, at
 * most 1000 a table) go with FREEZE to the side traffic leaves and with
 * SetSequences to the side it goes to; each reads those rows
 * (agent/pg/cutover/rowcheck.c) and this module compares the two answers. A
 * difference aborts the cutover, naming the table and the key.
 *
 * Pure computation on messages and JSON: unit tests drive it directly.
 * Ownership is in each function's comment.
 */
#ifndef GODWIT_FINALCHECK_H
#define GODWIT_FINALCHECK_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "godwit.pb-c.h"

/* Reported differences at most; the count counts them all. */
#define FINALCHECK_MAX_SHOWN 100

/* The questions for a verify report (coordinator/verify.c's JSON): one
 * CheckRows per table with a key and recent keys, in the report's order.
 * A malloc'd array of *n malloc'd messages (NULL, 0 when there is nothing
 * to check, or the report is not "equal"); free with finalcheck_free. */
Godwit__CheckRows **finalcheck_questions_new(const cJSON *verify, size_t *n);
void finalcheck_free(Godwit__CheckRows **q, size_t n);

/* The two sides' answers to the n questions q compared: from, the side
 * traffic leaves, and to, the side it goes to, each one CheckedRows per
 * question in its order. The report (malloc'd JSON, the caller's):
 *   {"tables": n, "keys": keys asked, "rows": rows read on `from`,
 *    "differences": [{"table", "key": {column: value}, "kind"}] (at most
 *    FINALCHECK_MAX_SHOWN), "difference_count"}
 * with kind changed | missing_on_target | extra_on_target, as verify says
 * it. *differences counts them; an answer that does not fit its question
 * (another table, or missing) is counted as a difference of kind
 * "unanswered" for that table. */
cJSON *finalcheck_compare(Godwit__CheckRows *const *q, size_t n,
                          Godwit__CheckedRows *const *from, size_t n_from,
                          Godwit__CheckedRows *const *to, size_t n_to, size_t *differences);

/* "table public.t key {"id": "5"} changed (and 2 more)" for a report with
 * differences: malloc'd, the caller frees. */
char *finalcheck_summary(const cJSON *report);

#endif
