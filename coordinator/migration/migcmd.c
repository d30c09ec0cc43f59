/*
 * migcmd: see migcmd.h. Borrowed pointers into the plan, valid while the
 * command is packed inside the link's send.
 */
#include "migcmd.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* c emptied, its command to carry action. */
static void s_init(migcmd_t *c, Godwit__Command__ActionCase action)
{
    memset(c, 0, sizeof *c);
    c->cmd = (Godwit__Command)GODWIT__COMMAND__INIT;
    c->cmd.action_case = action;
}

static void s_schema(migcmd_t *c, const migration_t *g, const char *section)
{
    s_init(c, GODWIT__COMMAND__ACTION_APPLY_SCHEMA);
    c->rc = planwire_forward(g->m);
    planwire_tables_borrow(&c->tables, g->m);
    c->has_tables = true;
    Godwit__ApplySchema *as = &c->u.apply_schema;
    *as = (Godwit__ApplySchema)GODWIT__APPLY_SCHEMA__INIT;
    as->database = g->m->target.database;
    as->source = &c->rc;
    as->n_tables = g->m->n_tables;
    as->tables = c->tables.ptrs;
    as->section = (char *)section;
    c->cmd.apply_schema = as;
}

void migcmd_schema_pre(migcmd_t *c, const migration_t *g) { s_schema(c, g, "pre"); }

void migcmd_schema_post(migcmd_t *c, const migration_t *g) { s_schema(c, g, "post"); }

void migcmd_roles(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_APPLY_ROLES);
    c->rc = planwire_forward(g->m);
    Godwit__ApplyRoles *ar = &c->u.apply_roles;
    *ar = (Godwit__ApplyRoles)GODWIT__APPLY_ROLES__INIT;
    ar->database = g->m->target.database;
    ar->source = &c->rc;
    ar->n_app_roles = g->m->cutover.app_roles.count;
    ar->app_roles = g->m->cutover.app_roles.items;
    ar->passwords = g->m->roles.passwords;
    c->cmd.apply_roles = ar;
}

void migcmd_publish(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION);
    planwire_tables_borrow(&c->tables, g->m);
    c->has_tables = true;
    Godwit__EnsurePublication *ep = &c->u.ensure_publication;
    *ep = (Godwit__EnsurePublication)GODWIT__ENSURE_PUBLICATION__INIT;
    ep->database = g->m->source.database;
    ep->name = (char *)g->objname;
    ep->n_tables = g->m->n_tables;
    ep->tables = c->tables.ptrs;
    c->cmd.ensure_publication = ep;
}

void migcmd_copy(migcmd_t *c, const migration_t *g)
{
    if (g->m->engine == PLAN_ENGINE_MARIADB) {
        s_init(c, GODWIT__COMMAND__ACTION_MY_COPY);
        Godwit__MyCopy *mc = &c->u.my_copy;
        *mc = (Godwit__MyCopy)GODWIT__MY_COPY__INIT;
        mc->peer = g->m->replication.peer;
        mc->source_database = g->m->source.database;
        mc->database = g->m->target.database;
        mc->connection = (char *)g->objname;
        mc->parallelism = (uint32_t)g->m->options.parallelism;
        c->cmd.my_copy = mc;
        return;
    }
    s_init(c, GODWIT__COMMAND__ACTION_BULK_COPY);
    c->rc = planwire_forward(g->m);
    Godwit__BulkCopy *bc = &c->u.bulk_copy;
    *bc = (Godwit__BulkCopy)GODWIT__BULK_COPY__INIT;
    bc->database = g->m->target.database;
    bc->name = (char *)g->objname;
    bc->source = &c->rc;
    bc->publication = (char *)g->objname;
    bc->parallelism = (uint32_t)g->m->options.parallelism;
    bc->snapshot = (char *)g->hold_snapshot;
    bc->consistent_point = (char *)g->hold_point;
    if (g->hold_snapshot[0] && g->sync && strcmp(g->copy_point, g->hold_point) == 0) {
        c->done = xcalloc(g->sync->n_tables ? g->sync->n_tables : 1, sizeof *c->done);
        for (size_t i = 0; i < g->sync->n_tables; i++)
            if (strcmp(g->sync->tables[i]->state, "copied") == 0)
                c->done[bc->n_done++] = g->sync->tables[i];
        bc->done = c->done;
    }
    c->cmd.bulk_copy = bc;
}

void migcmd_hold(migcmd_t *c, const migration_t *g, bool create, uint32_t lease_ms)
{
    s_init(c, GODWIT__COMMAND__ACTION_HOLD_SNAPSHOT);
    Godwit__HoldSnapshot *h = &c->u.hold_snapshot;
    *h = (Godwit__HoldSnapshot)GODWIT__HOLD_SNAPSHOT__INIT;
    h->database = g->m->source.database;
    h->name = (char *)g->objname;
    h->lease_ms = lease_ms;
    h->create = create;
    c->cmd.hold_snapshot = h;
}

void migcmd_copy_status(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_BULK_COPY_STATUS);
    Godwit__BulkCopyStatus *q = &c->u.bulk_copy_status;
    *q = (Godwit__BulkCopyStatus)GODWIT__BULK_COPY_STATUS__INIT;
    q->database = g->m->target.database;
    q->name = (char *)g->objname;
    c->cmd.bulk_copy_status = q;
}

void migcmd_base_backup(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_BASE_BACKUP);
    Godwit__BaseBackup *b = &c->u.base_backup;
    *b = (Godwit__BaseBackup)GODWIT__BASE_BACKUP__INIT;
    b->peer = g->m->replication.peer;
    b->slot = (char *)g->objname;
    b->max_rate_kbps = (uint32_t)(g->m->options.basebackup_max_rate >> 10);
    c->cmd.base_backup = b;
}

void migcmd_sync(migcmd_t *c, const migration_t *g)
{
    if (g->m->engine == PLAN_ENGINE_MARIADB) {
        s_init(c, GODWIT__COMMAND__ACTION_REPLICA_STATUS);
        Godwit__ReplicaStatus *rs = &c->u.replica_status;
        *rs = (Godwit__ReplicaStatus)GODWIT__REPLICA_STATUS__INIT;
        rs->connection = (char *)g->objname;
        c->cmd.replica_status = rs;
        return;
    }
    if (g->m->method == PLAN_METHOD_PHYSICAL) {
        s_init(c, GODWIT__COMMAND__ACTION_STANDBY_STATUS);
        Godwit__StandbyStatus *st = &c->u.standby_status;
        *st = (Godwit__StandbyStatus)GODWIT__STANDBY_STATUS__INIT;
        st->slot = (char *)g->objname;
        c->cmd.standby_status = st;
        return;
    }
    s_init(c, GODWIT__COMMAND__ACTION_SYNC_STATUS);
    Godwit__SyncStatus *ss = &c->u.sync_status;
    *ss = (Godwit__SyncStatus)GODWIT__SYNC_STATUS__INIT;
    ss->database = g->m->target.database;
    ss->subscription = (char *)g->objname;
    c->cmd.sync_status = ss;
}

void migcmd_reverse_status(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_REPLICA_STATUS);
    Godwit__ReplicaStatus *rs = &c->u.replica_status;
    *rs = (Godwit__ReplicaStatus)GODWIT__REPLICA_STATUS__INIT;
    rs->connection = (char *)g->revname;
    c->cmd.replica_status = rs;
}

/* DropObjects on one side (target: green), each name NULL for none; on
 * the source (blue) the verify slot goes too whenever our slot does. */
static void s_drop(migcmd_t *c, const migration_t *g, bool target, const char *subscription,
                   const char *publication, const char *slot)
{
    s_init(c, GODWIT__COMMAND__ACTION_DROP_OBJECTS);
    Godwit__DropObjects *d = &c->u.drop_objects;
    *d = (Godwit__DropObjects)GODWIT__DROP_OBJECTS__INIT;
    d->database = target ? g->m->target.database : g->m->source.database;
    d->subscription = (char *)(subscription ? subscription : "");
    d->publication = (char *)(publication ? publication : "");
    d->slot = (char *)(slot ? slot : "");
    d->verify_slot =
        (char *)(!target && slot && strcmp(slot, g->objname) == 0 ? g->verifyname : "");
    c->cmd.drop_objects = d;
}

/* Our objects on one side: the subscription from the other side, the
 * publication and slot for it. On green: objname's subscription, revname's
 * publication and slot (left by a cutover that aborted, a rollback, or made
 * for reverse replication); on blue the other way round. */
static void s_drop_side(migcmd_t *c, const migration_t *g, bool target)
{
    if (g->m->engine == PLAN_ENGINE_MARIADB) {
        /* Before a cutover only the target holds anything of ours: the
         * replication connection and the copy (the abort drops both).
         * Cleanup after one: blue's connection for the way back, then
         * green's stopped one, the database kept (it takes the traffic). */
        bool cleanup = g->state == M_CLEANUP_SOURCE || g->state == M_CLEANUP_TARGET;
        s_drop(c, g, target, NULL, NULL, NULL);
        c->u.drop_objects.replica_connection = (char *)(target ? g->objname : g->revname);
        c->u.drop_objects.keep_database = cleanup;
        return;
    }
    if (g->m->method == PLAN_METHOD_PHYSICAL) {
        /* Blue: our slot (green's standby streams through it), the verify
         * slot and the publication it decodes through (a verify made it).
         * Green: the standby made for it, before a cutover; after one, green
         * is the primary: blue's slot there (revname) and the publication,
         * which the standby replayed. A standby skips the publication (it
         * replays its primary's drop). */
        s_drop(c, g, target, NULL, NULL, NULL);
        if (!target) {
            c->u.drop_objects.physical_slot = (char *)g->objname;
            c->u.drop_objects.publication = (char *)g->objname;
            c->u.drop_objects.verify_slot = (char *)g->verifyname;
        } else if (g->state == M_CLEANUP_TARGET) {
            c->u.drop_objects.physical_slot = (char *)g->revname;
            c->u.drop_objects.publication = (char *)g->objname;
        } else {
            c->u.drop_objects.standby_of_slot = (char *)g->objname;
        }
        return;
    }
    const char *sub = target ? g->objname : g->revname, *pub = target ? g->revname : g->objname;
    s_drop(c, g, target, sub, pub, pub);
}

void migcmd_drop_target(migcmd_t *c, const migration_t *g) { s_drop_side(c, g, true); }

void migcmd_drop_source(migcmd_t *c, const migration_t *g) { s_drop_side(c, g, false); }

/* Protection after the cutover: green's slot for blue, then blue's
 * subscription (which cannot reach its slot any more: detached, then
 * dropped). */
void migcmd_unfollow_target(migcmd_t *c, const migration_t *g)
{
    if (g->m->method == PLAN_METHOD_PHYSICAL) {
        s_drop(c, g, true, NULL, NULL, NULL);
        c->u.drop_objects.physical_slot = (char *)g->revname;
        return;
    }
    s_drop(c, g, true, NULL, NULL, g->revname);
}

void migcmd_unfollow_source(migcmd_t *c, const migration_t *g)
{
    s_drop(c, g, false, g->revname, NULL, NULL);
}

void migcmd_drop_verify_slot(migcmd_t *c, const migration_t *g)
{
    s_init(c, GODWIT__COMMAND__ACTION_DROP_OBJECTS);
    Godwit__DropObjects *d = &c->u.drop_objects;
    *d = (Godwit__DropObjects)GODWIT__DROP_OBJECTS__INIT;
    d->database = g->m->source.database;
    d->verify_slot = (char *)g->verifyname;
    c->cmd.drop_objects = d;
}

void migcmd_apply_async(migcmd_t *c, const migration_t *g, bool back)
{
    s_init(c, GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION);
    Godwit__TuneSubscription *t = &c->u.tune_subscription;
    *t = (Godwit__TuneSubscription)GODWIT__TUNE_SUBSCRIPTION__INIT;
    t->database = back ? g->m->source.database : g->m->target.database;
    t->name = (char *)(back ? g->revname : g->objname);
    t->synchronous_commit = false;
    c->cmd.tune_subscription = t;
}

void migcmd_import_profile(migcmd_t *c, const migration_t *g)
{
    memset(c, 0, sizeof *c);
    importprof_command(g, importprof_tune_mode(g), &c->cmd, &c->u.import_profile,
                       c->import_settings, c->import_ptrs);
}

static void s_enabled(migcmd_t *c, const migration_t *g, bool enabled)
{
    s_init(c, GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED);
    Godwit__SetSubscriptionEnabled *se = &c->u.set_subscription_enabled;
    *se = (Godwit__SetSubscriptionEnabled)GODWIT__SET_SUBSCRIPTION_ENABLED__INIT;
    se->database = g->m->target.database;
    se->name = (char *)g->objname;
    se->enabled = enabled;
    c->cmd.set_subscription_enabled = se;
}

void migcmd_disable(migcmd_t *c, const migration_t *g) { s_enabled(c, g, false); }

void migcmd_enable(migcmd_t *c, const migration_t *g) { s_enabled(c, g, true); }

void migcmd_release(migcmd_t *c)
{
    if (c->has_tables)
        planwire_tables_free(&c->tables);
    free(c->done);
    c->done = NULL;
}
