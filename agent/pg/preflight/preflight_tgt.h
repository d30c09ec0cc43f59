/*
 * preflight_tgt: the target's checks (preflight_target_start): its version
 * and settings against the source's, tables that already hold rows, the
 * source's extensions, the replication connection to the source, roles,
 * owners and privileges against the source's (access.h), and free disk.
 */
#ifndef GODWIT_PREFLIGHT_TGT_H
#define GODWIT_PREFLIGHT_TGT_H

#include "steprun.h"

/* The target's stages, in order, NULL-terminated. */
extern const steprun_fn preflight_tgt_stages[];

#endif
