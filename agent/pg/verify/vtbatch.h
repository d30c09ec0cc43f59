/*
 * vtbatch: one batch of the VerifyTable step (verify_table.c lists the
 * stages): 1. the verify slot made on the replication connection with its
 * exported snapshot, bounded by slot_wait_ms; 2-4. the source's read in
 * that snapshot, the wait for the target to apply its position X, and the
 * target's read with the position Y it holds; 5. the slot's changes up to
 * Y read into the table's window (vwindow.h) and the slot dropped; then the
 * comparison (vtchunk.h, vtmultiset.h); 7. both reads ended, and the next
 * batch or the result.
 */
#ifndef GODWIT_VTBATCH_H
#define GODWIT_VTBATCH_H

#include "vtstep.h"

/* The next batch (the first after the table's lookup): from the key the
 * last one did not reach. */
void vtbatch_begin(vtstep_t *s);
/* The batch's comparison is done: both reads end, then the next batch or
 * the result (vtresult_done_ok). */
void vtbatch_end(vtstep_t *s);

#endif
