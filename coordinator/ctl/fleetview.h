/*
 * fleetview: `godwitctl fleet status`, the fleet at a glance, built from
 * the coordinator's two answers godwitctl already knows how to ask for
 * (`status` for the agents, `migrate status` for the migrations): counts
 * by phase, the copies' bytes, rate and ETA together, the verify results,
 * the problems (errors first), and the one command to run next. A pure
 * function of its inputs: it talks to nobody and reads no clock.
 *
 * The summary (schema "godwit.fleet/1", docs/godwitctl.md):
 *   {migrations, phases: {STATE: n}, copy: {running, queued, bytes_done,
 *    bytes_total, rate_bytes_per_sec, eta_seconds}, verify: {equal,
 *    different, running, not_verified}, agents: {total, connected, lost,
 *    refused, never_seen}, fleet_paused, waves: null | {schedule, go,
 *    error_budget, accepted_failures, failed, opened, next, waiting,
 *    waves: [{wave, migrations, scheduled, pending, passed, failed, copy:
 *    {bytes_done, bytes_total, rate_bytes_per_sec, eta_seconds}}]}, problems: [{severity,
 *    object, message, command}], next: {command, why}}
 */
#ifndef GODWIT_FLEETVIEW_H
#define GODWIT_FLEETVIEW_H

#include <cjson/cJSON.h>

/* A slot that holds back this share of its slot_wal_limit is a problem. */
#define FLEETVIEW_SLOT_NEAR_LIMIT 0.8

/* The summary of status (the `status` answer, or NULL) and migrations
 * (the `migrate status` answer); borrowed. Caller deletes the result. */
cJSON *fleetview_build(const cJSON *status, const cJSON *migrations);

#endif
