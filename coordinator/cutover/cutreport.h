/*
 * cutreport: the cutover's report (cutover.h), what status shows and the
 * journal keeps at the end: started as "running", a timeline entry per
 * step, keys set as the steps learn them, and at the end how each proxy
 * and side was left and the outcome. Owns nothing: the report is the
 * cutover's (cu->report).
 */
#ifndef GODWIT_CUTREPORT_H
#define GODWIT_CUTREPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "cutover.h"

/* cu->report made, as "running" (cu's direction, dry_run and sides set). */
void cutreport_start(cutover_t *cu);
/* Milliseconds since us (the monotonic clock, µs). */
double cutreport_ms_since(const cutover_t *cu, uint64_t us);
/* The current step's entry in the timeline (ok, or its error as detail),
 * with what the agents said in it (cu->step_detail, taken). */
void cutreport_timeline(cutover_t *cu, bool ok, const char *detail);
/* Sets key to v (taken), replacing what was there. */
void cutreport_set(cutover_t *cu, const char *key, cJSON *v);
/* The end: how each proxy and side was left, the outcome, the final state
 * and time (switched: traffic now goes to `to`). */
void cutreport_finish(cutover_t *cu, bool switched);

#endif
