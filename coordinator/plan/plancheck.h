/*
 * plancheck: phase 1 (preflight) for every migration of a plan, as
 * `godwitctl plan check` and `migrate start` run it. Read-only: it only
 * sends preflight commands, which only read.
 *
 * Per migration: the source agent's checks first (they return the facts the
 * target needs: version, size, tables, extensions), then the target agent's.
 * Agents that are missing, not connected or of the wrong role are blocking
 * findings of their own. The outcome is one JSON report (docs/plan.md):
 * every finding with its side, severity, code, object, message and fix, and
 * the count of blocking ones.
 */
#ifndef GODWIT_PLANCHECK_H
#define GODWIT_PLANCHECK_H

#include <cjson/cJSON.h>

#include "agentlink.h"
#include "plan.h"

typedef struct plancheck plancheck_t;

/* report is the caller's to delete. */
typedef void (*plancheck_done_cb)(cJSON *report, void *arg);

/* Takes ownership of plan (a heap plan_t, freed with plan_free + free when
 * the check ends). only: check just the migration of that name (NULL: all;
 * the caller made sure it exists). done runs exactly once, never from
 * inside this call. */
void plancheck_start(const agentlink_t *link, const char *plan_name, plan_t *plan, const char *only,
                     uint64_t timeout_ms, plancheck_done_cb done, void *arg);

#endif
