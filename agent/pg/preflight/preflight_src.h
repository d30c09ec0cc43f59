/*
 * preflight_src: the source's checks (preflight_source_start): settings
 * and counts, timeouts that would end a long copy, the tables in scope
 * (replica identity, partitions, unlogged and generated columns) and the
 * extensions, each stage one read-only statement on the local database.
 */
#ifndef GODWIT_PREFLIGHT_SRC_H
#define GODWIT_PREFLIGHT_SRC_H

#include "steprun.h"

/* The source's stages, in order, NULL-terminated. */
extern const steprun_fn preflight_src_stages[];

#endif
