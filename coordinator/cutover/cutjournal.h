/*
 * cutjournal: the cutover's journal records (cutover.h, "Journal"): the
 * events of kind "cutover" written before the pause, before the switch,
 * when an abort begins, before an abort lifts the fence, and the final
 * report; and what a restarted coordinator makes of the last one: finish
 * the switch or roll back, and what may have been sent before it stopped.
 */
#ifndef GODWIT_CUTJOURNAL_H
#define GODWIT_CUTJOURNAL_H

#include <cjson/cJSON.h>

#include "cutover.h"

/* Journals cu in state ("started", "switching", "aborting", "unfreezing"),
 * with the proxies sent the switch. */
void cutjournal_write(cutover_t *cu, const char *state);
/* Journals the final report. */
void cutjournal_report(cutover_t *cu);
/* cu's first state: K_CHECK without recover; else, from the last
 * journaled detail, K_SWITCH (finish the switch) or K_BACK (roll back),
 * with what may have been sent (proxies paused and switched, the fences)
 * and the report saying so. */
void cutjournal_recover(cutover_t *cu, const cJSON *recover);

#endif
