/*
 * preflight_phys: the checks of method: physical (PreflightSource.physical,
 * PreflightTarget.physical; docs/physical.md), run on the same runtime as
 * the logical ones (preflight_run.h) with stages of their own.
 *
 * Source (one statement, server-wide): wal_level minimal; no two WAL
 * senders free (pg_basebackup -X stream opens two: the backup's and its
 * WAL stream's; the standby then needs one); no replication slot free;
 * max_slot_wal_keep_size unlimited (warning). With reverse (the way back,
 * Rejoin after the switch): the agent's config has a postgres.standby
 * section, and the server has wal_log_hints or data checksums (pg_rewind
 * needs one); the peer is checked with the logical path's (preflight.c).
 * Facts: version, the database's and the whole cluster's size
 * (SourceFacts.cluster_size).
 *
 * Target (no local server is needed, none is read): the config's
 * postgres.standby section; its data directory missing, empty or ours;
 * the free space of its nearest existing folder against the source's
 * cluster_size x disk_margin; pg_basebackup's major version (a child:
 * --version) against the source's; a physical replication connection
 * (replication=true, which pg_hba.conf matches with the keyword
 * "replication") to the peer.
 */
#ifndef GODWIT_PREFLIGHT_PHYS_H
#define GODWIT_PREFLIGHT_PHYS_H

#include "steprun.h"

extern const steprun_fn preflight_phys_src_stages[];
extern const steprun_fn preflight_phys_tgt_stages[];

#endif
