/*
 * vtmultiset: the VerifyTable step's comparison of a table without a key,
 * one batch (verify_table.c, stage 6): both sides summed by 256 buckets of
 * row hashes (count and two sums), explained by a prefix of the window's
 * transactions (vwindow_multiset_match); when none explains it, the rows
 * of the buckets that differ are read on both sides and the rows that
 * differ reported by value.
 */
#ifndef GODWIT_VTMULTISET_H
#define GODWIT_VTMULTISET_H

#include "vtstep.h"

/* The batch's comparison; ends with vtbatch_end, or ends the step. */
void vtmultiset_pass(vtstep_t *s);

#endif
