/*
 * migcmd: the Command each step of a migration sends (migration.h), built
 * from the migration's plan and object names: the schema and roles, our
 * publication, the copy and its progress poll, the status poll, enabling
 * and disabling our subscription, and dropping our objects on either side
 * (an abort, protection, cleanup, a verify slot left behind). Decides
 * nothing and sends nothing: migration.c sends what it builds.
 *
 * Ownership: a built command borrows from the plan and names of g (which
 * must outlive its send) and holds its sub-messages in the migcmd_t the
 * caller provides; migcmd_release frees what it allocated (the tables).
 */
#ifndef GODWIT_MIGCMD_H
#define GODWIT_MIGCMD_H

#include <stdbool.h>

#include "godwit.pb-c.h"
#include "migration.h"
#include "planwire.h"

typedef struct {
    Godwit__Command cmd; /* what to send */
    Godwit__ReplicationConn rc;
    planwire_tables_t tables;
    bool has_tables;
    union {
        Godwit__ApplySchema apply_schema;
        Godwit__ApplyRoles apply_roles;
        Godwit__EnsurePublication ensure_publication;
        Godwit__BulkCopy bulk_copy;
        Godwit__HoldSnapshot hold_snapshot;
        Godwit__BulkCopyStatus bulk_copy_status;
        Godwit__SyncStatus sync_status;
        Godwit__DropObjects drop_objects;
        Godwit__SetSubscriptionEnabled set_subscription_enabled;
        Godwit__TuneSubscription tune_subscription;
        Godwit__ImportProfile import_profile;
        Godwit__BaseBackup base_backup;
        Godwit__StandbyStatus standby_status;
        Godwit__MyCopy my_copy;
        Godwit__ReplicaStatus replica_status;
    } u;
    Godwit__ImportSetting import_settings[PLAN_IMPORT_SETTINGS_MAX];
    Godwit__ImportSetting *import_ptrs[PLAN_IMPORT_SETTINGS_MAX];
    Godwit__TableSync **done;    /* BulkCopy: malloc'd, its items borrowed from g->sync */
} migcmd_t;

/* Builds one step's command into c (overwritten). */
typedef void (*migcmd_fn)(migcmd_t *c, const migration_t *g);

void migcmd_roles(migcmd_t *c, const migration_t *g);
void migcmd_schema_pre(migcmd_t *c, const migration_t *g);
void migcmd_schema_post(migcmd_t *c, const migration_t *g);
void migcmd_publish(migcmd_t *c, const migration_t *g);
/* The copy in the snapshot the source holds (g->hold_snapshot; "": clear
 * the stale slot instead), with the tables g->sync shows copied when they
 * were copied in that same snapshot (g->copy_point is the hold's point).
 * MariaDB: MyCopy, the target's copy in a snapshot of its own and its
 * replication connection, named objname. */
void migcmd_copy(migcmd_t *c, const migration_t *g);
/* HoldSnapshot of our slot on the source: create it if missing (create),
 * renew it, or with lease_ms 0 end it. */
void migcmd_hold(migcmd_t *c, const migration_t *g, bool create, uint32_t lease_ms);
/* The tune step: the import profile read, then applied (importprof.h). */
void migcmd_import_profile(migcmd_t *c, const migration_t *g);
/* The streaming poll: the subscription's state (SyncStatus), on the
 * physical path the standby's (StandbyStatus), on MariaDB our replication
 * connection's (ReplicaStatus). */
void migcmd_sync(migcmd_t *c, const migration_t *g);
/* MariaDB, switched: the way back's replication connection (revname, on
 * blue) polled the same way (ReplicaStatus, sent to the source agent). */
void migcmd_reverse_status(migcmd_t *c, const migration_t *g);
/* The physical path's snapshot: the target made a standby of the source
 * on our physical slot (BaseBackup). */
void migcmd_base_backup(migcmd_t *c, const migration_t *g);
/* Our objects on one side. On the physical path: the standby made for our
 * slot (target), our physical slot (source). */
void migcmd_drop_target(migcmd_t *c, const migration_t *g);
void migcmd_drop_source(migcmd_t *c, const migration_t *g);
void migcmd_unfollow_target(migcmd_t *c, const migration_t *g);
void migcmd_unfollow_source(migcmd_t *c, const migration_t *g);
void migcmd_disable(migcmd_t *c, const migration_t *g);
void migcmd_enable(migcmd_t *c, const migration_t *g);
/* The copy's progress (BulkCopyStatus), asked of the target while it runs. */
void migcmd_copy_status(migcmd_t *c, const migration_t *g);
/* Drops the verify slot a dead verify left on the source. */
void migcmd_drop_verify_slot(migcmd_t *c, const migration_t *g);
/* Our subscription's commits back to asynchronous (a cutover's "restore
 * apply" that failed): the one on green, or with back the one on blue. */
void migcmd_apply_async(migcmd_t *c, const migration_t *g, bool back);

/* Frees what c's building allocated, once it was sent. */
void migcmd_release(migcmd_t *c);

#endif
