/*
 * copyeta: how far a migration's copy is, how fast it goes and when it
 * should end, from the target's copy status polled while the copy runs
 * (BulkCopyStatus): what status shows as "copy". Owns nothing but its
 * figures; reads no clock (the caller passes the time).
 */
#ifndef GODWIT_COPYETA_H
#define GODWIT_COPYETA_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "godwit.pb-c.h"

typedef struct {
    uint64_t done, total, sample_bytes, sample_mono;
    double rate; /* bytes/s, smoothed; 0 until two samples */
} copyeta_t;

/* One sample of the copy's progress from sync (the latest status, NULL:
 * none) at now (monotonic ms). */
void copyeta_sample(copyeta_t *e, const Godwit__SyncStatusResult *sync, uint64_t now);

/* The figures as status shows them (bytes, rate, ETA); caller deletes. */
cJSON *copyeta_json(const copyeta_t *e);

#endif
