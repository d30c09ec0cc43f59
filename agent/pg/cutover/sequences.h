/*
 * sequences: the SetSequences step on the target (see proto/godwit.proto),
 * under the contract of step.h: once the target received the source's
 * stream up to the final position, every sequence set to the value the
 * FREEZE read on the source, the target's WAL position read, and the final
 * check's rows read. The payload is a SetSequencesResult.
 */
#ifndef GODWIT_SEQUENCES_H
#define GODWIT_SEQUENCES_H

#include "freezer.h"
#include "step.h"

/* Runs on f's kept connection to the database when it has one (PREPARE),
 * handed back to it when the step ends well. NULL (done not called) for an
 * invalid request. */
step_t *sequences_set_start(freezer_t *f, const Godwit__SetSequences *req, step_done_cb done,
                            void *arg);

#endif
