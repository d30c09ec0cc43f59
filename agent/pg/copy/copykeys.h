/*
 * copykeys: the BulkCopy step's primary keys built after the copy
 * (copykeys.c says why and when). Stages of the step (steprun.h) and the
 * one call a worker between chunks makes.
 */
#ifndef GODWIT_COPYKEYS_H
#define GODWIT_COPYKEYS_H

#include <stdbool.h>

#include "copystep.h"

/* 5b: reads the source's primary keys of the copied tables. */
void copykeys_early(steprun_t *run);
/* 6b: drops the big tables' primary keys on the target that nothing
 * depends on. */
void copykeys_drop(steprun_t *run);
/* 7b: builds on the target every copied table's primary key it lacks. */
void copykeys_restore(steprun_t *run);

/* For a worker between chunks (copyworker_idle): true if it started
 * building the key of a table whose key was dropped and whose chunks are
 * all in (or the step ended trying); false if there is none to build. */
bool copykeys_build_ready(copystep_worker_t *w);

#endif
