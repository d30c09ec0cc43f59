/*
 * vtresult: the VerifyTable step's result (vtstep.h's s->result): the rows
 * that differ (at most T_MAX_DIFFS reported, all counted), the keys the
 * windows changed for the coordinator's final check, and the step's end
 * with the result as its payload, logged once.
 */
#ifndef GODWIT_VTRESULT_H
#define GODWIT_VTRESULT_H

#include <stddef.h>

#include "vtstep.h"
#include "vwindow.h"

/* Replaces a result's string field with taken (freeing the old one unless
 * it is protobuf-c's empty string). */
void vtresult_str_set(char **field, char *taken);
/* A keyed row that differs, by its encoded key. */
void vtresult_diff_key(vtstep_t *s, const char *key, vwindow_verdict_t kind);
/* vwindow_multiset_diff's callback (arg: the step): a multiset row that
 * differs, by its values (long ones cut). */
void vtresult_on_multiset_diff(vwindow_verdict_t kind, char *const *values, void *arg);
/* A key the window changed, prio lower for the more recently changed. */
void vtresult_recent_add(vtstep_t *s, const char *key, size_t prio);
/* Every batch is done: the recent keys and the outcome into the result,
 * and the step ends with it. */
void vtresult_done_ok(vtstep_t *s);

#endif
