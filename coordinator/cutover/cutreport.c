/*
 * cutreport: see cutreport.h.
 */
#include "cutreport.h"

void cutreport_start(cutover_t *cu)
{
    cu->report = cJSON_CreateObject();
    cJSON_AddStringToObject(cu->report, "state", "running");
    cJSON_AddBoolToObject(cu->report, "dry_run", cu->dry_run);
    cJSON_AddStringToObject(cu->report, "direction", cu->back ? "back" : "forward");
    cJSON_AddStringToObject(cu->report, "to", cu->to_backend);
    cJSON_AddNumberToObject(cu->report, "started_at_ms", (double)agentlink_now_ms(cu->link));
    cJSON_AddNullToObject(cu->report, "finished_at_ms");
    cJSON_AddNullToObject(cu->report, "reason");
    cJSON_AddNullToObject(cu->report, "write_pause_ms");
    cJSON_AddArrayToObject(cu->report, "timeline");
}

double cutreport_ms_since(const cutover_t *cu, uint64_t us)
{
    return (double)(agentlink_mono_us(cu->link) - us) / 1000.0;
}

void cutreport_timeline(cutover_t *cu, bool ok, const char *detail)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "step", cutover_step_name(cu->state));
    cJSON_AddNumberToObject(t, "at_ms", (double)(cu->step_started_us - cu->started_us) / 1000.0);
    cJSON_AddNumberToObject(t, "ms", cutreport_ms_since(cu, cu->step_started_us));
    cJSON_AddBoolToObject(t, "ok", ok);
    if (detail)
        cJSON_AddStringToObject(t, "detail", detail);
    if (cu->step_detail) {
        cJSON_AddItemToObject(t, "agents", cu->step_detail);
        cu->step_detail = NULL;
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(cu->report, "timeline"), t);
}

void cutreport_set(cutover_t *cu, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItem(cu->report, key))
        cJSON_ReplaceItemInObject(cu->report, key, v);
    else
        cJSON_AddItemToObject(cu->report, key, v);
}

void cutreport_finish(cutover_t *cu, bool switched)
{
    bool unknown = cu->source_left != NULL || cu->target_left != NULL;
    cJSON *pl = cJSON_CreateArray();
    for (size_t i = 0; i < cu->n_proxies; i++) {
        const pxrec_t *x = &cu->px[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "agent", cu->proxy_agents[i]);
        cJSON_AddStringToObject(o, "proxy", cu->proxies[i]);
        cJSON_AddBoolToObject(o, "switch_sent", x->switch_sent);
        cJSON_AddBoolToObject(o, "switch_confirmed", x->switch_ok);
        const char *left = x->unknown ? "unknown" : switched ? cu->to_backend : cu->from_backend;
        cJSON_AddStringToObject(o, "left", left);
        if (x->unknown) {
            cJSON_AddStringToObject(o, "why", x->unknown);
            unknown = true;
        }
        cJSON_AddItemToArray(pl, o);
    }
    cutreport_set(cu, "proxies", pl);
    if (cu->source_left)
        cutreport_set(cu, "source_left", cJSON_CreateString(cu->source_left));
    if (cu->target_left)
        cutreport_set(cu, "target_left", cJSON_CreateString(cu->target_left));
    /* done, refused (the role check: nothing changed), rolled_back
     * (traffic on the old side, writable), unknown (aborted, and a proxy or
     * the old side's fence could not be brought back: see proxies). */
    const char *outcome = cu->state == K_DONE ? (unknown ? "unknown" : "done")
                          : cu->refused ? "refused" : unknown ? "unknown" : "rolled_back";
    cutreport_set(cu, "outcome", cJSON_CreateString(outcome));
    cutreport_set(cu, "state", cJSON_CreateString(cu->state == K_DONE ? "done" : "aborted"));
    cutreport_set(cu, "finished_at_ms", cJSON_CreateNumber((double)agentlink_now_ms(cu->link)));
}
