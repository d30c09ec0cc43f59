/*
 * migstatus: the status of one migration as godwitctl shows it (schema in
 * docs/migrate.md): its state and what it does, its last error, the lag of
 * our slot, its tables, the copy's progress (copyeta.h), replication errors,
 * blue following green after a cutover, and the cutover's and verify's
 * reports (running, or the last). Reads a migration (migration.h), never
 * moves it.
 */
#ifndef GODWIT_MIGSTATUS_H
#define GODWIT_MIGSTATUS_H

#include <cjson/cJSON.h>

#include "migration.h"

/* g's status object; caller deletes. */
cJSON *migstatus_json(const migration_t *g);

#endif
