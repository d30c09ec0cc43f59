/*
 * verify: phase 6 for one migration, on demand (`godwitctl migrate verify`):
 * first the schema (one VerifySchema: tables, columns, constraints and
 * indexes, then roles, owners, privileges, default privileges and
 * policies, with the plan's application roles; a table whose columns
 * differ is not compared row by row), then
 * every table compared, source against target, while replication runs,
 * one VerifyTable command to the target agent per table (the agent reads
 * both sides as of known positions of the source's WAL, with a verify slot
 * named objname + "_verify"; see agent/pg/verify/verify_table.c). A failed
 * command is retried twice, then the run fails.
 *
 * A physical migration's standby is compared the same way, at the
 * standby's replay position instead of a subscription's progress: first
 * our publication on the source (FOR ALL TABLES, EnsurePublication to the
 * source agent: the verify slot decodes through it), then the schema check,
 * whose list of the source's tables (partitioned ones by their root,
 * unlogged ones left out) are the tables compared: n is 0 then.
 *
 * A MariaDB migration's verify is mycheck's (mycheck.h): checksums the
 * source's binary log carries as statements; schemas, names and n are
 * not used, and the report has the same shape.
 *
 * The report (cJSON, schema in docs/migrate.md):
 *   {"state": "running" | "equal" | "different" | "failed",
 *    "started_at_ms", "finished_at_ms", "tables_total", "tables_done",
 *    "error", "schema": {"tables", "findings": [{"object", "problem",
 *    "statement"}]}, "tables": [{"table", "outcome", "key_kind",
 *    "key_columns", "source_rows", ..., "diffs", "window", "recent"}]}
 *
 * Ownership: verify_start copies what it needs. The verify owns its report
 * and hands it to done when it ends, after freeing itself (the handle is
 * invalid from then on). verify_cancel stops it without calling done;
 * the memory goes when the command in flight, if any, comes back (the
 * coordinator calls every result callback exactly once).
 */
#ifndef GODWIT_VERIFY_H
#define GODWIT_VERIFY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "agentlink.h"
#include "plan.h"

typedef struct verify verify_t;

/* report: the final report, owned by the callee. Never runs from inside
 * verify_start. */
typedef void (*verify_done_cb)(cJSON *report, void *arg);

/* Verifies tables (schemas[i].names[i], n of them) of migration m, whose
 * publication, subscription and slot are all named objname (a physical
 * migration: n 0, the tables of the target database). */
verify_t *verify_start(const agentlink_t *link, const plan_migration_t *m, const char *objname,
                       char *const *schemas, char *const *names, size_t n, verify_done_cb done,
                       void *arg);
/* Sends a failed table again once its backoff (2 s) is over; called from
 * the migration tick. */
void verify_tick(verify_t *v);
/* The report so far (borrowed). */
const cJSON *verify_report(const verify_t *v);
void verify_cancel(verify_t **vp);

#endif
