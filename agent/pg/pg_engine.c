/*
 * pg_engine: see pg_engine.h. Owns pgmon, pglog and the freezer of the
 * local server, and the step_local_t every step reads (strings borrowed
 * from the agent's config), and the copies' snapshot holds (snaphold.h).
 * Its steps own themselves (step.h).
 */
#include "pg_engine.h"

#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "basebackup.h"
#include "bulkcopy.h"
#include "drop.h"
#include "freezer.h"
#include "importset.h"
#include "log.h"
#include "pglog.h"
#include "pgmon.h"
#include "pgstep.h"
#include "preflight.h"
#include "promote.h"
#include "publication.h"
#include "rejoin.h"
#include "roles.h"
#include "schema.h"
#include "sequences.h"
#include "standby.h"
#include "standby_drop.h"
#include "standby_status.h"
#include "slot.h"
#include "snaphold.h"
#include "subscription.h"
#include "sync_status.h"
#include "tune.h"
#include "verify_schema.h"
#include "verify_table.h"
#include "xalloc.h"

typedef struct {
    engine_t base;
    uv_loop_t *loop;
    const agent_config_t *cfg;
    const char *agent_name;
    engine_event_cb event;
    void *arg;
    step_local_t local;
    pgmon_t *pgmon;
    pglog_t *pglog;             /* the server's log, if configured */
    int pglog_errno;            /* the last error reading it, logged once */
    freezer_t *freezer;         /* the cutover's write fence on this server */
    snaphold_t *holds;          /* the copies' snapshots held on this server (source) */
    diskprobe_t disk_probe;     /* the last timing of the server's writes (preflight) */
    standby_progress_t standby; /* the last BaseBackup, for the report (physical path) */
} pg_engine_t;

/* ---- how each step starts ---- */

typedef step_t *(*s_start_fn)(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                              void *arg);

static step_t *s_apply_roles(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                             void *arg)
{
    return roles_apply_start(e->loop, &e->local, c->apply_roles, done, arg);
}

static step_t *s_apply_schema(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                              void *arg)
{
    return schema_apply_start(e->loop, &e->local, c->apply_schema, done, arg);
}

static step_t *s_publication(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                             void *arg)
{
    return publication_ensure_start(e->loop, &e->local, c->ensure_publication, done, arg);
}

static step_t *s_subscription(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                              void *arg)
{
    if (c->ensure_subscription && c->ensure_subscription->attach)
        return subscription_attach_start(e->loop, &e->local, c->ensure_subscription, done, arg);
    return subscription_ensure_start(e->loop, &e->local, c->ensure_subscription, done, arg);
}

static step_t *s_slot(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return slot_ensure_start(e->loop, &e->local, c->ensure_slot, done, arg);
}

static step_t *s_sync_status(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                             void *arg)
{
    return sync_status_start(e->loop, &e->local, c->sync_status, done, arg);
}

/* DropObjects: the target's standby (standby_of_slot) is a step of its
 * own, with no server to connect to; the rest, the source's physical slot
 * included, is drop.c's. A command names one or the other. */
static step_t *s_drop(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    const Godwit__DropObjects *q = c->drop_objects;
    if (q && q->standby_of_slot && q->standby_of_slot[0])
        return standby_drop_start(e->loop, &e->local, q, done, arg);
    return drop_objects_start(e->loop, &e->local, q, done, arg);
}

static step_t *s_base_backup(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                             void *arg)
{
    return basebackup_start(e->loop, &e->local, &e->standby, c->base_backup, done, arg);
}

static step_t *s_standby_status(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                                void *arg)
{
    return standby_status_start(e->loop, &e->local, c->standby_status, done, arg);
}

static step_t *s_promote(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return promote_start(e->freezer, c->promote, done, arg);
}

static step_t *s_rejoin(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return rejoin_start(e->loop, &e->local, c->rejoin, done, arg);
}

static step_t *s_bulk_copy(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                           void *arg)
{
    return bulkcopy_start(e->loop, &e->local, c->bulk_copy, done, arg);
}

static step_t *s_hold_snapshot(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                               void *arg)
{
    return snaphold_run(e->holds, c->hold_snapshot, done, arg);
}

static step_t *s_set_enabled(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                             void *arg)
{
    return subscription_set_enabled_start(e->loop, &e->local, c->set_subscription_enabled, done,
                                          arg);
}

static step_t *s_verify_table(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                              void *arg)
{
    return verify_table_start(e->loop, &e->local, c->verify_table, done, arg);
}

static step_t *s_verify_schema(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                               void *arg)
{
    const Godwit__VerifySchema *q = c->verify_schema;
    bool fenced = q && q->database && freezer_fenced(e->freezer, q->database);
    return verify_schema_start(e->loop, &e->local, q, fenced, done, arg);
}

static step_t *s_verify_roles(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                              void *arg)
{
    const Godwit__VerifyRoles *q = c->verify_roles;
    bool fenced = q && q->database && freezer_fenced(e->freezer, q->database);
    return verify_schema_roles_start(e->loop, &e->local, q, fenced, done, arg);
}

static step_t *s_freeze(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return freezer_run(e->freezer, c->freeze_source, done, arg);
}

static step_t *s_sequences(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                           void *arg)
{
    return sequences_set_start(e->freezer, c->set_sequences, done, arg);
}

static step_t *s_tune(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return tune_subscription_start(e->loop, &e->local, c->tune_subscription, done, arg);
}

static step_t *s_import(pg_engine_t *e, const Godwit__Command *c, step_done_cb done, void *arg)
{
    return importset_start(e->loop, &e->local, c->import_profile, done, arg);
}

/* Preflight reads the agent's name too, allows its catalog checks the
 * steps' longer statement timeout, and shares the engine's timing of the
 * server's writes. */
static preflight_local_t s_preflight_local(pg_engine_t *e)
{
    const step_local_t *l = &e->local;
    return (preflight_local_t){
        .host = l->host,
        .port = l->port,
        .user = l->user,
        .passfile = l->passfile,
        .data_directory = l->data_directory,
        .connect_timeout_ms = l->connect_timeout_ms,
        .statement_timeout_ms = l->statement_timeout_ms,
        .peers = l->peers,
        .n_peers = l->n_peers,
        .config_path = l->config_path,
        .agent_name = e->agent_name,
        .disk_probe = &e->disk_probe,
        .standby = l->standby,
        .bin_dir = l->bin_dir,
    };
}

static step_t *s_preflight_source(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                                  void *arg)
{
    preflight_local_t local = s_preflight_local(e);
    return preflight_source_start(e->loop, &local, c->preflight_source, done, arg);
}

static step_t *s_preflight_target(pg_engine_t *e, const Godwit__Command *c, step_done_cb done,
                                  void *arg)
{
    preflight_local_t local = s_preflight_local(e);
    return preflight_target_start(e->loop, &local, c->preflight_target, done, arg);
}

static const struct {
    Godwit__Command__ActionCase action;
    s_start_fn start;
} s_steps[] = {
    { GODWIT__COMMAND__ACTION_APPLY_ROLES, s_apply_roles },
    { GODWIT__COMMAND__ACTION_APPLY_SCHEMA, s_apply_schema },
    { GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION, s_publication },
    { GODWIT__COMMAND__ACTION_ENSURE_SUBSCRIPTION, s_subscription },
    { GODWIT__COMMAND__ACTION_ENSURE_SLOT, s_slot },
    { GODWIT__COMMAND__ACTION_SYNC_STATUS, s_sync_status },
    { GODWIT__COMMAND__ACTION_DROP_OBJECTS, s_drop },
    { GODWIT__COMMAND__ACTION_BULK_COPY, s_bulk_copy },
    { GODWIT__COMMAND__ACTION_HOLD_SNAPSHOT, s_hold_snapshot },
    { GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED, s_set_enabled },
    { GODWIT__COMMAND__ACTION_VERIFY_TABLE, s_verify_table },
    { GODWIT__COMMAND__ACTION_VERIFY_SCHEMA, s_verify_schema },
    { GODWIT__COMMAND__ACTION_VERIFY_ROLES, s_verify_roles },
    { GODWIT__COMMAND__ACTION_FREEZE_SOURCE, s_freeze },
    { GODWIT__COMMAND__ACTION_SET_SEQUENCES, s_sequences },
    { GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION, s_tune },
    { GODWIT__COMMAND__ACTION_IMPORT_PROFILE, s_import },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE, s_preflight_source },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET, s_preflight_target },
    { GODWIT__COMMAND__ACTION_BASE_BACKUP, s_base_backup },
    { GODWIT__COMMAND__ACTION_STANDBY_STATUS, s_standby_status },
    { GODWIT__COMMAND__ACTION_PROMOTE, s_promote },
    { GODWIT__COMMAND__ACTION_REJOIN, s_rejoin },
};

/* Whether a command that reaches the other side names a peer of this
 * agent's config (step_peer), before anything of it runs; false with why
 * (malloc'd) if not. Invariant 6: no message makes the agent connect to a
 * server its config does not list, or hand a secret of its config to one. */
static bool s_remote_ok(const pg_engine_t *e, const Godwit__Command *cmd, char **why)
{
    const Godwit__ReplicationConn *remote = NULL;
    if (!actions_remote(cmd, &remote))
        return true;
    return step_peer(&e->local, remote, why) != NULL;
}

static step_t *s_start(engine_t *base, const Godwit__Command *cmd, step_done_cb done, void *arg,
                       char **why)
{
    pg_engine_t *e = (pg_engine_t *)base;
    if (!s_remote_ok(e, cmd, why))
        return NULL;
    if (cmd->action_case == GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION && cmd->tune_subscription &&
        !step_godwit_name(cmd->tune_subscription->name)) {
        *why = xasprintf("subscription \"%s\" is not a name godwit gives its objects: godwit "
                         "touches only what it created; nothing was done",
                         cmd->tune_subscription->name ? cmd->tune_subscription->name : "");
        return NULL;
    }
    if (cmd->action_case == GODWIT__COMMAND__ACTION_BASE_BACKUP && cmd->base_backup) {
        *why = basebackup_refusal(&e->local, cmd->base_backup);
        if (*why)
            return NULL;
    }
    if (cmd->action_case == GODWIT__COMMAND__ACTION_REJOIN && cmd->rejoin) {
        *why = rejoin_refusal(&e->local, cmd->rejoin);
        if (*why)
            return NULL;
    }
    if (cmd->action_case == GODWIT__COMMAND__ACTION_DROP_OBJECTS && cmd->drop_objects) {
        *why = standby_drop_refusal(&e->local, cmd->drop_objects);
        if (*why)
            return NULL;
    }
    for (size_t i = 0; cmd->action_case == GODWIT__COMMAND__ACTION_IMPORT_PROFILE &&
                       cmd->import_profile && i < cmd->import_profile->n_settings; i++) {
        const char *name = cmd->import_profile->settings[i]->name;
        if (!importset_allowed(name)) {
            *why = xasprintf("setting \"%s\" is not one an import profile may change "
                             "(docs/import-profile.md): nothing was done", name ? name : "");
            return NULL;
        }
    }
    step_t *step = NULL;
    for (size_t i = 0; i < sizeof s_steps / sizeof *s_steps; i++) {
        if (s_steps[i].action == cmd->action_case) {
            step = s_steps[i].start(e, cmd, done, arg);
            break;
        }
    }
    if (!step)
        *why = xstrdup("invalid request");
    return step;
}

/* ---- monitoring ---- */

typedef struct {
    pg_engine_t *engine;
    const Godwit__Postgres *pg;
} s_log_ctx_t;

/* One replication error from the server's log: sent as an event naming the
 * subscription (from the origin's oid, or the name in the text). */
static void s_on_log_error(const char *origin, const char *subscription, const char *message,
                           void *arg)
{
    s_log_ctx_t *ctx = arg;
    const char *name = subscription[0] ? subscription : NULL;
    unsigned oid = pglog_origin_subid(origin);
    for (size_t i = 0; !name && oid && ctx->pg && i < ctx->pg->n_subscriptions; i++)
        if (ctx->pg->subscriptions[i]->oid == oid)
            name = ctx->pg->subscriptions[i]->name;
    log_warn("replication error in the server's log (%s%s%s): %s", name ? "subscription " : "",
             name ? name : "origin ", name ? "" : origin, message);
    ctx->engine->event(GODWIT__SEVERITY__SEVERITY_ERROR, "replication.error", message,
                       name ? name : origin, ctx->engine->arg);
}

/* Reads what the server appended to its log; pg (the report's snapshot)
 * maps origins to subscriptions. A read of the page cache, at most
 * PGLOG_MAX_READ bytes. */
static void s_follow_log(pg_engine_t *e, const Godwit__Postgres *pg)
{
    if (!e->pglog)
        return;
    s_log_ctx_t ctx = { e, pg };
    int rc = pglog_poll(e->pglog, s_on_log_error, &ctx);
    if (rc != 0 && rc != e->pglog_errno)
        log_warn("postgres.log_file %s: %s", e->cfg->postgres.log_file, strerror(-rc));
    e->pglog_errno = rc;
}

static void s_tick(engine_t *base)
{
    pg_engine_t *e = (pg_engine_t *)base;
    pgmon_tick(e->pgmon);
}

static void s_report(engine_t *base, Godwit__Report *r)
{
    pg_engine_t *e = (pg_engine_t *)base;
    r->postgres = pgmon_snapshot(e->pgmon);
    r->postgres->basebackup = standby_progress_report(&e->standby);
    s_follow_log(e, r->postgres);
}

static void s_pg_state(bool reachable, const char *reason, void *arg)
{
    pg_engine_t *e = arg;
    if (reachable) {
        log_info("database reachable again");
        e->event(GODWIT__SEVERITY__SEVERITY_INFO, "db.reachable", "database reachable",
                 e->cfg->postgres.dbname, e->arg);
    } else {
        log_warn("database unreachable: %s", reason);
        e->event(GODWIT__SEVERITY__SEVERITY_ERROR, "db.unreachable", reason,
                 e->cfg->postgres.dbname, e->arg);
    }
}

static void s_on_freezer_event(bool error, const char *code, const char *message,
                               const char *object, void *arg)
{
    pg_engine_t *e = arg;
    e->event(error ? GODWIT__SEVERITY__SEVERITY_ERROR : GODWIT__SEVERITY__SEVERITY_WARNING, code,
             message, object, e->arg);
}

/* ---- the copy ---- */

static bool s_copy_is(const step_t *step, const char *database, const char *name)
{
    return bulkcopy_is(step, database, name);
}

static Godwit__SyncStatusResult *s_copy_progress(const step_t *step)
{
    return bulkcopy_progress(step);
}

/* ---- lifetime ---- */

static void s_close(engine_t *base)
{
    pg_engine_t *e = (pg_engine_t *)base;
    pgmon_destroy(&e->pgmon);
    pglog_free(&e->pglog);
    freezer_destroy(&e->freezer);
    snaphold_destroy(&e->holds);
    standby_progress_clear(&e->standby);
    free(e);
}

static const char *const s_capabilities[] = { "metrics.disk", "metrics.postgres", "preflight",
                                              NULL };
/* With a postgres.standby section: the physical path's steps can run. */
static const char *const s_capabilities_physical[] = { "metrics.disk", "metrics.postgres",
                                                       "preflight", "pg.physical", NULL };

static const engine_ops_t s_ops = {
    .name = "postgresql",
    .tick = s_tick,
    .report = s_report,
    .start = s_start,
    .copy_is = s_copy_is,
    .copy_progress = s_copy_progress,
    .close = s_close,
};

engine_t *pg_engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                         engine_event_cb event, void *arg)
{
    pg_engine_t *e = xcalloc(1, sizeof *e);
    e->base.ops = &s_ops;
    e->base.capabilities = cfg->postgres.has_standby ? s_capabilities_physical : s_capabilities;
    e->base.disk_path = cfg->postgres.data_directory;
    e->loop = loop;
    e->cfg = cfg;
    e->agent_name = agent_name;
    e->event = event;
    e->arg = arg;
    /* Steps' catalog work over many tables may take longer than metrics. */
    e->local = (step_local_t){
        .host = cfg->postgres.host,
        .port = (int)cfg->postgres.port,
        .user = cfg->postgres.user,
        .passfile = cfg->postgres.passfile,
        .data_directory = cfg->postgres.data_directory,
        .bin_dir = cfg->postgres.bin_dir ? cfg->postgres.bin_dir : "",
        .connect_timeout_ms = cfg->postgres.connect_timeout_ms,
        .statement_timeout_ms = cfg->postgres.statement_timeout_ms * 10,
        .peers = cfg->peers.items,
        .n_peers = cfg->peers.count,
        .config_path = cfg->path,
        .dbname = cfg->postgres.dbname,
        .standby = cfg->postgres.has_standby ? &cfg->postgres.standby : NULL,
    };
    pgmon_params_t p = {
        .host = cfg->postgres.host,
        .port = (int)cfg->postgres.port,
        .dbname = cfg->postgres.dbname,
        .user = cfg->postgres.user,
        .passfile = cfg->postgres.passfile,
        .connect_timeout_ms = cfg->postgres.connect_timeout_ms,
        .statement_timeout_ms = cfg->postgres.statement_timeout_ms,
    };
    e->pgmon = pgmon_new(loop, &p, s_pg_state, e);
    if (!e->pgmon) {
        log_error("postgres: invalid connection parameters");
        free(e);
        return NULL;
    }
    pgmon_tick(e->pgmon);
    e->freezer = freezer_new(loop, &e->local, cfg->state_dir, s_on_freezer_event, e);
    e->holds = snaphold_new(loop, &e->local);
    if (cfg->postgres.log_file) {
        e->pglog = pglog_new(cfg->postgres.log_file);
        s_follow_log(e, NULL); /* from its end: what is there is history */
    }
    return &e->base;
}
