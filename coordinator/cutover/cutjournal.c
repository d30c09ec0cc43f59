/*
 * cutjournal: see cutjournal.h. Every record is one journal event of kind
 * "cutover", in the migration's state before the cutover (streaming; a
 * rollback: switched).
 */
#include "cutjournal.h"

#include <stdlib.h>
#include <string.h>

#include "cutreport.h"
#include "log.h"
#include "lsn.h"
#include "xalloc.h"

static void s_event(cutover_t *cu, const cJSON *detail)
{
    char *text = cJSON_PrintUnformatted(detail);
    journal_event(cu->journal, cu->migration, cu->back ? "switched" : "streaming", "cutover",
                  text);
    free(text);
}

void cutjournal_write(cutover_t *cu, const char *state)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "state", state);
    cJSON_AddBoolToObject(j, "dry_run", cu->dry_run);
    cJSON_AddStringToObject(j, "direction", cu->back ? "back" : "forward");
    cJSON_AddNumberToObject(j, "at_ms", (double)agentlink_now_ms(cu->link));
    cJSON_AddBoolToObject(j, "to_fenced", cu->to_fenced);
    if (cu->switch_lsn) {
        char pos[32];
        cJSON_AddStringToObject(j, "switch_lsn", lsn_format(cu->switch_lsn, pos, sizeof pos));
    }
    if (cu->final_lsn) {
        char pos[32];
        cJSON_AddStringToObject(j, "final_lsn", lsn_format(cu->final_lsn, pos, sizeof pos));
    }
    /* MariaDB: GTIDs, and what an abort after a restart must give `to`
     * back (its replication; the lift of a fence the abort makes there). */
    if (cu->final_gtid)
        cJSON_AddStringToObject(j, "final_gtid", cu->final_gtid);
    if (cu->switch_gtid)
        cJSON_AddStringToObject(j, "switch_gtid", cu->switch_gtid);
    if (cu->mariadb) {
        cJSON_AddBoolToObject(j, "promote_sent", cu->promote_sent);
        cJSON_AddBoolToObject(j, "to_was_fenced", cu->to_was_fenced);
    }
    /* The proxies sent the switch (they may point at `to`): what an abort,
     * also a restarted coordinator's, switches back. */
    cJSON *sw = cJSON_AddArrayToObject(j, "switched");
    for (size_t i = 0; i < cu->n_proxies; i++)
        if (cu->px[i].switch_sent)
            cJSON_AddItemToArray(sw, cJSON_CreateNumber((double)i));
    s_event(cu, j);
    cJSON_Delete(j);
}

void cutjournal_report(cutover_t *cu) { s_event(cu, cu->report); }

void cutjournal_recover(cutover_t *cu, const cJSON *recover)
{
    const char *rstate = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "state"))
                                 : NULL;
    const char *rlsn = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "switch_lsn"))
                               : NULL;
    if (rlsn && !lsn_parse(rlsn, &cu->switch_lsn))
        cu->switch_lsn = 0;
    const char *flsn = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "final_lsn"))
                               : NULL;
    if (flsn && !lsn_parse(flsn, &cu->final_lsn))
        cu->final_lsn = 0;
    /* MariaDB's positions: kept as written (an empty final GTID is one:
     * a source that never wrote a binary log event). */
    const char *fg = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "final_gtid"))
                             : NULL;
    const char *sg = recover ? cJSON_GetStringValue(cJSON_GetObjectItem(recover, "switch_gtid"))
                             : NULL;
    if (fg) {
        free(cu->final_gtid);
        cu->final_gtid = xstrdup(fg);
    }
    if (sg && sg[0]) {
        free(cu->switch_gtid);
        cu->switch_gtid = xstrdup(sg);
    }
    if (recover && cu->mariadb) {
        cu->promote_sent = cJSON_IsTrue(cJSON_GetObjectItem(recover, "promote_sent"));
        cu->to_was_fenced = cJSON_IsTrue(cJSON_GetObjectItem(recover, "to_was_fenced"));
    }
    if (recover && !rstate)
        rstate = "started";
    /* The proxies the journal says were sent the switch ("started": none;
     * an older journal without the list: all may have been). */
    bool any_switched = false;
    if (rstate) {
        const cJSON *sw, *sl = cJSON_GetObjectItem(recover, "switched");
        if (!cJSON_IsArray(sl) && strcmp(rstate, "started") != 0) {
            for (size_t i = 0; i < cu->n_proxies; i++)
                cu->px[i].switch_sent = true;
        }
        cJSON_ArrayForEach(sw, sl)
        {
            if (cJSON_IsNumber(sw) && sw->valuedouble >= 0 &&
                (size_t)sw->valuedouble < cu->n_proxies)
                cu->px[(size_t)sw->valuedouble].switch_sent = true;
        }
        for (size_t i = 0; i < cu->n_proxies; i++)
            any_switched = any_switched || cu->px[i].switch_sent;
    }
    /* Stopped while aborting with proxies switched (blue fenced for good,
     * green has every transaction): rolling back is safe only while no
     * switched proxy's lease (renewed by the switch, at most
     * max_write_pause before "aborting") can have run out and resumed
     * traffic on green; later, the switch is finished instead. */
    const cJSON *rat = recover ? cJSON_GetObjectItem(recover, "at_ms") : NULL;
    bool stale = !cJSON_IsNumber(rat) ||
                 (double)agentlink_now_ms(cu->link) - rat->valuedouble + (double)cu->max_pause_ms >=
                     (double)cu->lease_ms;
    bool forward = rstate && (strcmp(rstate, "switching") == 0 ||
                              (strcmp(rstate, "aborting") == 0 && any_switched && stale));
    if (rstate && strcmp(rstate, "promoting") == 0 && (cu->final_lsn || cu->final_gtid)) {
        /* The physical path's promote was sent: the target agent finishes
         * it whatever happens here (green a primary, its roles' LOGIN
         * back), and blue is fenced for good. Only forward: the promote
         * again (it waits for the journaled final LSN, or finds it done),
         * then the switch. */
        log_warn_about(cutover_about(cu),
                       "migration %s: the coordinator stopped while promoting green; finishing "
                       "the promote and the switch", cu->migration);
        cutreport_set(cu, "recovered_from", cJSON_CreateString(rstate));
        cu->forward_only = true;
        cu->state = K_PROMOTE;
    } else if (forward) {
        log_warn_about(cutover_about(cu),
                       "migration %s: the coordinator stopped while %s the proxies; finishing the "
                       "switch", cu->migration, strcmp(rstate, "switching") == 0 ? "switching" :
                       "switching back (longer than a lease ago)");
        cutreport_set(cu, "recovered_from", cJSON_CreateString(rstate));
        cu->forward_only = true;
        cu->state = K_SWITCH;
    } else if (rstate) {
        log_warn_about(cutover_about(cu),
                       "migration %s: the coordinator stopped during the cutover (%s); rolling "
                       "back", cu->migration, rstate);
        cutreport_set(cu, "recovered_from", cJSON_CreateString(rstate));
        cutreport_set(cu, "reason",
                      cJSON_CreateString("the coordinator restarted during the cutover"));
        /* Any proxy may have been paused and the fence sent; only those the
         * journal names were sent the switch. */
        cu->fence_sent = true;
        for (size_t i = 0; i < cu->n_proxies; i++)
            cu->px[i].pause_sent = true;
        /* and the sequences step may have lifted `to`'s fence */
        cu->to_fenced = cJSON_IsTrue(cJSON_GetObjectItem(recover, "to_fenced"));
        cu->to_lift_sent = cu->to_fenced;
        cu->abort_end_us = agentlink_mono_us(cu->link) + cu->abort_timeout_ms * 1000;
        cu->state = K_BACK;
    } else {
        cu->state = K_CHECK;
    }
}
