/*
 * diskprobe: how fast the target's server writes, measured once for every
 * preflight of an agent for a while (a fleet's plan check runs hundreds
 * on one target host, which shares one disk). The probe is one
 * transaction on the target database that creates a scratch table,
 * writes DISKPROBE_BYTES of rows into it and rolls back: nothing is left,
 * but the rows went through the server's WAL, which the server writes and
 * syncs at each segment it fills, as it does for a copy (DISKPROBE_SQL).
 * What it measures is the server's ingest rate on that storage, the bound
 * of the copy and the catch-up on this host.
 *
 * The state is the pg engine's (one per agent), borrowed by each
 * preflight through preflight_local_t; the loop's thread only.
 */
#ifndef GODWIT_DISKPROBE_H
#define GODWIT_DISKPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64 MiB of rows of 960 bytes (under the TOAST threshold, so none is
 * compressed): 65536 rows. */
#define DISKPROBE_ROWS 65536
#define DISKPROBE_BYTES ((uint64_t)DISKPROBE_ROWS * 1024)
/* A probe's result serves the preflights of this long. */
#define DISKPROBE_FRESH_MS (10 * 60000)

#define DISKPROBE_SQL                                                                          \
    "BEGIN READ WRITE; CREATE SCHEMA godwit_disk_probe;"                                            \
    " CREATE TABLE godwit_disk_probe.t (b pg_catalog.text);"                                  \
    " INSERT INTO godwit_disk_probe.t SELECT pg_catalog.repeat(pg_catalog.md5(g::pg_catalog.text), 30)" \
    " FROM pg_catalog.generate_series(1, 65536) g; ROLLBACK"

typedef struct {
    uint64_t started_mono_ms;  /* a probe in flight since then; 0: none */
    uint64_t ended_mono_ms;    /* the last probe's end; 0: never */
    bool ok;                   /* it succeeded */
    double ms;                 /* it took this long */
    char error[256];           /* else why not */
} diskprobe_t;

/* Whether the last probe's result may serve a check at now. */
bool diskprobe_fresh(const diskprobe_t *d, uint64_t now_mono_ms);
/* Whether a probe is in flight at now (one older than stale_ms is taken
 * for lost: its check was cancelled). */
bool diskprobe_running(const diskprobe_t *d, uint64_t now_mono_ms, uint64_t stale_ms);
/* The probe's rate in bytes per second (0 if it failed). */
double diskprobe_rate(const diskprobe_t *d);
/* How long writing bytes takes at rate (bytes/s), or at the link's
 * link_mbit if that is slower, in seconds; *disk_bound: the disk is the
 * slower of the two. */
double diskprobe_predict_s(double rate, uint64_t bytes, uint32_t link_mbit, bool *disk_bound);

#endif
