/*
 * migmetrics: the migrations' Prometheus families (docs/metrics.md): each
 * migration's phase, lag, copy progress, our slot's retained WAL, apply
 * errors, its last verify and last cutover, and the write pause histogram.
 * Reads migrations (migration.h) and their agents' latest reports, never
 * moves one; the histogram it keeps on each migration (pause) is the only
 * thing it writes.
 *
 * A figure the coordinator does not know (no report yet, no slot, no verify
 * run) is left out, never written as 0.
 */
#ifndef GODWIT_MIGMETRICS_H
#define GODWIT_MIGMETRICS_H

#include <cjson/cJSON.h>

#include "migration.h"
#include "promtext.h"

/* Which cutovers a pause histogram counts. */
typedef enum { MIGMETRICS_CUTOVER = 0, MIGMETRICS_ROLLBACK, MIGMETRICS_REHEARSAL,
               MIGMETRICS__KINDS } migmetrics_kind_t;

/* g's pause histograms, empty (from migration_new). */
void migmetrics_init(migration_t *g);

/* A cutover, rollback or rehearsal of g ended with report (cutreport.h):
 * its measured write pause, if it has one, into g's histogram. */
void migmetrics_cutover_done(migration_t *g, const cJSON *report);

/* Every family, for the migrations in the list starting at first (their
 * next pointers), into p. */
void migmetrics_render(const migration_t *first, promtext_t *p);

#endif
