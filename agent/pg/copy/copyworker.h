/*
 * copyworker: the BulkCopy step's copy workers (copyworker.c): stage 7,
 * the chunks piped from the source into the target.
 */
#ifndef GODWIT_COPYWORKER_H
#define GODWIT_COPYWORKER_H

#include "copystep.h"

/* 7: cuts the tables into chunks and sets every worker copying; the stage
 * ends (steprun_next) when every chunk is in and no key is being built. */
void copyworker_copy(steprun_t *run);

/* A worker between chunks: builds the primary key of a table that is in
 * (copykeys_build_ready), else takes the next chunk, else (the last to
 * finish) moves on. */
void copyworker_idle(copystep_worker_t *w);

#endif
