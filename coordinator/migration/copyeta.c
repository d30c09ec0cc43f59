/*
 * copyeta: see copyeta.h. The copy's figures from the target's table
 * states; the rate smoothed over the polls.
 */
#include "copyeta.h"

#include <stdbool.h>
#include <string.h>

/* The copy's progress from the latest status: each table counts its size
 * on the source once copied, else what was copied of it so far (COPY bytes
 * stand in for table bytes: an estimate); the rate is smoothed over the
 * polls. */
void copyeta_sample(copyeta_t *e, const Godwit__SyncStatusResult *sync, uint64_t now)
{
    uint64_t done = 0, total = 0;
    for (size_t i = 0; sync && i < sync->n_tables; i++) {
        const Godwit__TableSync *t = sync->tables[i];
        total += t->bytes_total;
        bool finished = strcmp(t->state, "copied") == 0 || strcmp(t->state, "ready") == 0;
        done += finished ? t->bytes_total
                         : (t->bytes_done < t->bytes_total ? t->bytes_done : t->bytes_total);
    }
    if (e->sample_mono && now > e->sample_mono && done >= e->sample_bytes) {
        double r = (double)(done - e->sample_bytes) * 1000.0 / (double)(now - e->sample_mono);
        e->rate = e->rate > 0 ? 0.7 * e->rate + 0.3 * r : r;
    }
    e->sample_bytes = done;
    e->sample_mono = now;
    e->done = done;
    e->total = total;
}

cJSON *copyeta_json(const copyeta_t *e)
{
    cJSON *cp = cJSON_CreateObject();
    cJSON_AddNumberToObject(cp, "bytes_done", (double)e->done);
    cJSON_AddNumberToObject(cp, "bytes_total", (double)e->total);
    cJSON_AddNumberToObject(cp, "rate_bytes_per_sec", e->rate);
    if (e->rate > 0)
        cJSON_AddNumberToObject(cp, "eta_seconds", (double)(e->total - e->done) / e->rate);
    else
        cJSON_AddNullToObject(cp, "eta_seconds");
    return cp;
}
