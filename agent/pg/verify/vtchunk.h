/*
 * vtchunk: the VerifyTable step's comparison of a table with a key, one
 * batch (verify_table.c, stage 6): both sides summed in chunks of
 * chunk_rows rows in key order, the window's keys left out of the sums and
 * read one by one; the source's chunks whose target twin differs summed
 * again on the target by the source's chunk bounds; the rows of those still
 * differing read as (key, hash), and each key whose hashes differ judged
 * against the window (vwindow_judge), the source's row at X read for it
 * when the window needs it.
 */
#ifndef GODWIT_VTCHUNK_H
#define GODWIT_VTCHUNK_H

#include "vtstep.h"

/* The batch's comparison (a table without a key: vtmultiset_pass); ends
 * with vtbatch_end, or ends the step. */
void vtchunk_pass(vtstep_t *s);

#endif
