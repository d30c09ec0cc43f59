/*
 * copydone: the tables a copy has copied whole in its snapshot, as the
 * journal keeps them ("copy_done" events) so that a restarted coordinator
 * gives them to the copy's next run in the same snapshot (docs/migrate.md,
 * "A copy that is interrupted"). The record is the slot's consistent point
 * (which names the snapshot) and each table copied with its rows and bytes.
 * Owns nothing; what it returns is the caller's.
 */
#ifndef GODWIT_COPYDONE_H
#define GODWIT_COPYDONE_H

#include <stdbool.h>
#include <stddef.h>

#include "godwit.pb-c.h"

/* How many tables sync shows copied (0 for NULL). */
size_t copydone_count(const Godwit__SyncStatusResult *sync);

/* The record of sync's copied tables in the snapshot of point, as JSON
 * text (caller frees). */
char *copydone_json(const char *point, const Godwit__SyncStatusResult *sync);

/* Reads a record back: its point into point (pointlen bytes) and its
 * tables, in state "copied", as a SyncStatusResult (caller frees with
 * godwit__sync_status_result__free_unpacked). NULL if json is not one. */
Godwit__SyncStatusResult *copydone_load(const char *json, char *point, size_t pointlen);

#endif
