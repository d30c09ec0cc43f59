/*
 * vttable: the VerifyTable step's table (vtstep.h): its compared columns
 * and key looked up in the source's catalog, and the SQL pieces built from
 * them that every later statement uses (the row's hash, the key's order,
 * text and comparison, the bucket of a key among chunk bounds).
 */
#ifndef GODWIT_VTTABLE_H
#define GODWIT_VTTABLE_H

#include "vtstep.h"

/* Looks the table up on the source, builds the SQL pieces, then begins the
 * first batch (vtbatch.h); or ends the step. */
void vttable_lookup(vtstep_t *s);

#endif
