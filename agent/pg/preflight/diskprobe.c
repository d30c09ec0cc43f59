/*
 * diskprobe: see diskprobe.h. The arithmetic; the probe's statement runs
 * in the target's preflight (preflight_tgt.c).
 */
#include "diskprobe.h"

bool diskprobe_fresh(const diskprobe_t *d, uint64_t now_mono_ms)
{
    return d->ended_mono_ms && now_mono_ms - d->ended_mono_ms < DISKPROBE_FRESH_MS;
}

bool diskprobe_running(const diskprobe_t *d, uint64_t now_mono_ms, uint64_t stale_ms)
{
    return d->started_mono_ms && now_mono_ms - d->started_mono_ms < stale_ms;
}

double diskprobe_rate(const diskprobe_t *d)
{
    if (!d->ok)
        return 0;
    double ms = d->ms > 0.001 ? d->ms : 0.001;
    return (double)DISKPROBE_BYTES * 1000.0 / ms;
}

double diskprobe_predict_s(double rate, uint64_t bytes, uint32_t link_mbit, bool *disk_bound)
{
    double link = (double)link_mbit * 1e6 / 8.0;
    *disk_bound = rate > 0 && rate < link;
    double r = *disk_bound || link <= 0 ? rate : link;
    return r > 0 ? (double)bytes / r : 0;
}
