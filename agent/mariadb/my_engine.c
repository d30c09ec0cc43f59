/*
 * my_engine: see my_engine.h. Owns mymon; its steps (the preflight checks,
 * the copy, the replica's status and drop, the verify) own themselves
 * (step.h). The connection parameters are borrowed from the agent's
 * config.
 */
#include "my_engine.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mycopy.h"
#include "myfence.h"
#include "myfollow.h"
#include "mymon.h"
#include "mypreflight.h"
#include "mypromote.h"
#include "myrepl.h"
#include "myverify.h"
#include "xalloc.h"

typedef struct {
    engine_t base;
    uv_loop_t *loop;
    const agent_config_t *cfg;
    const char *agent_name;
    engine_event_cb event;
    void *arg;
    myconn_params_t server;     /* the local server (strings borrowed from cfg) */
    char *object;               /* what events name: the database, else the server */
    mymon_t *mymon;
    myfence_t *fence;           /* the source's write fence and its lease (FreezeSource) */
} my_engine_t;

/* ---- steps ----------------------------------------------------------------- */

static mypreflight_local_t s_preflight_local(const my_engine_t *e)
{
    const agent_config_t *cfg = e->cfg;
    /* Catalog reads over many tables may take longer than a reading. */
    return (mypreflight_local_t){
        .server = e->server,
        .statement_timeout_ms = (uint64_t)cfg->mariadb.statement_timeout_ms * 10,
        .data_directory = cfg->mariadb.data_directory,
        .peers = cfg->peers.items,
        .n_peers = cfg->peers.count,
        .config_path = cfg->path,
        .agent_name = e->agent_name,
    };
}

static mycopy_local_t s_copy_local(const my_engine_t *e)
{
    const agent_config_t *cfg = e->cfg;
    return (mycopy_local_t){
        .server = e->server,
        .statement_timeout_ms = (uint64_t)cfg->mariadb.statement_timeout_ms,
        .peers = cfg->peers.items,
        .n_peers = cfg->peers.count,
        .config_path = cfg->path,
    };
}

/* The action's name in the proto ("apply_schema"), for a refusal. */
static const char *s_action_name(const Godwit__Command *cmd)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&godwit__command__descriptor,
                                                (unsigned)cmd->action_case);
    return f ? f->name : "(unknown)";
}

static step_t *s_start(engine_t *base, const Godwit__Command *cmd, step_done_cb done, void *arg,
                       char **why)
{
    my_engine_t *e = (my_engine_t *)base;
    mypreflight_local_t local = s_preflight_local(e);
    if ((cmd->action_case == GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE && cmd->preflight_source &&
         cmd->preflight_source->physical) ||
        (cmd->action_case == GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET && cmd->preflight_target &&
         cmd->preflight_target->physical)) {
        *why = xasprintf("%s: method physical is PostgreSQL's (a standby made with "
                         "pg_basebackup); the MariaDB engine has no such path: nothing was done",
                         s_action_name(cmd));
        return NULL;
    }
    step_t *step = NULL;
    switch (cmd->action_case) {
    case GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE:
        step = mypreflight_source_start(e->loop, &local, cmd->preflight_source, done, arg);
        break;
    case GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET:
        step = mypreflight_target_start(e->loop, &local, cmd->preflight_target, done, arg);
        break;
    case GODWIT__COMMAND__ACTION_MY_COPY: {
        mycopy_local_t cl = s_copy_local(e);
        if (cmd->my_copy)
            step = mycopy_start(e->loop, &cl, cmd->my_copy, done, arg, why);
        break;
    }
    case GODWIT__COMMAND__ACTION_REPLICA_STATUS: {
        myrepl_local_t rl = { .server = e->server,
                              .statement_timeout_ms =
                                  (uint64_t)e->cfg->mariadb.statement_timeout_ms };
        if (cmd->replica_status)
            step = myrepl_status_start(e->loop, &rl, cmd->replica_status, done, arg, why);
        break;
    }
    case GODWIT__COMMAND__ACTION_DROP_OBJECTS: {
        /* DDL on a database of any size: the catalog reads' longer limit. */
        myrepl_local_t rl = { .server = e->server,
                              .statement_timeout_ms = local.statement_timeout_ms };
        if (cmd->drop_objects)
            step = myrepl_drop_start(e->loop, &rl, cmd->drop_objects, done, arg, why);
        break;
    }
    case GODWIT__COMMAND__ACTION_MY_CHECKSUM:
    case GODWIT__COMMAND__ACTION_MY_CHECKSUM_COMPARE: {
        /* A chunk's statement reads up to a chunk of rows: the catalog
         * reads' longer limit. */
        myverify_local_t vl = { .server = e->server,
                                .statement_timeout_ms = local.statement_timeout_ms };
        if (cmd->action_case == GODWIT__COMMAND__ACTION_MY_CHECKSUM && cmd->my_checksum)
            step = myverify_checksum_start(e->loop, &vl, cmd->my_checksum, done, arg, why);
        else if (cmd->action_case == GODWIT__COMMAND__ACTION_MY_CHECKSUM_COMPARE &&
                 cmd->my_checksum_compare)
            step = myverify_compare_start(e->loop, &vl, cmd->my_checksum_compare, done, arg,
                                          why);
        break;
    }
    case GODWIT__COMMAND__ACTION_FREEZE_SOURCE:
        if (cmd->freeze_source)
            step = myfence_run(e->fence, cmd->freeze_source, done, arg, why);
        break;
    case GODWIT__COMMAND__ACTION_PROMOTE: {
        mypromote_local_t pl = { .server = e->server,
                                 .statement_timeout_ms =
                                     (uint64_t)e->cfg->mariadb.statement_timeout_ms,
                                 .fence = e->fence };
        if (cmd->promote)
            step = mypromote_start(e->loop, &pl, cmd->promote, done, arg, why);
        break;
    }
    case GODWIT__COMMAND__ACTION_MY_FOLLOW: {
        myfollow_local_t fl = { .server = e->server,
                                .statement_timeout_ms =
                                    (uint64_t)e->cfg->mariadb.statement_timeout_ms,
                                .peers = e->cfg->peers.items,
                                .n_peers = e->cfg->peers.count,
                                .config_path = e->cfg->path };
        if (cmd->my_follow)
            step = myfollow_start(e->loop, &fl, cmd->my_follow, done, arg, why);
        break;
    }
    default:
        *why = xasprintf("%s: the MariaDB engine runs preflight and monitoring in this "
                         "version, and on a target the copy (my_copy), replica_status and "
                         "drop_objects, the verify (my_checksum, my_checksum_compare), and "
                         "the cutover (freeze_source, promote, my_follow); the migration's "
                         "other steps are not written for MariaDB yet: nothing was done",
                         s_action_name(cmd));
        return NULL;
    }
    if (!step && !*why)
        *why = xstrdup("invalid request");
    return step;
}

/* The running copy steps the agent asks about are MyCopy's (BulkCopy is
 * refused here): name is the replication connection; the database is
 * MyCopy's own business (one connection, one database). */
static bool s_copy_is(const step_t *step, const char *database, const char *name)
{
    (void)database;
    return step && name && mycopy_is(step, name);
}

static Godwit__SyncStatusResult *s_copy_progress(const step_t *step)
{
    return mycopy_progress(step);
}

/* ---- monitoring ------------------------------------------------------------ */

static void s_tick(engine_t *base)
{
    my_engine_t *e = (my_engine_t *)base;
    mymon_tick(e->mymon);
}

static void s_report(engine_t *base, Godwit__Report *r)
{
    my_engine_t *e = (my_engine_t *)base;
    r->mariadb = mymon_snapshot(e->mymon);
}

/* The same events as PostgreSQL's (pg_engine.c): the codes are the
 * engine's server, not PostgreSQL's. */
static void s_my_state(bool reachable, const char *reason, void *arg)
{
    my_engine_t *e = arg;
    if (reachable) {
        log_info("mariadb reachable again");
        e->event(GODWIT__SEVERITY__SEVERITY_INFO, "db.reachable", "database reachable", e->object,
                 e->arg);
    } else {
        log_warn("mariadb unreachable: %s", reason);
        e->event(GODWIT__SEVERITY__SEVERITY_ERROR, "db.unreachable", reason, e->object, e->arg);
    }
}

/* What the fence did on its own (its lease), for the coordinator. */
static void s_on_fence_event(bool error, const char *code, const char *message, void *arg)
{
    my_engine_t *e = arg;
    e->event(error ? GODWIT__SEVERITY__SEVERITY_ERROR : GODWIT__SEVERITY__SEVERITY_WARNING, code,
             message, e->object, e->arg);
}

/* ---- lifetime ---------------------------------------------------------------- */

static void s_close(engine_t *base)
{
    my_engine_t *e = (my_engine_t *)base;
    mymon_destroy(&e->mymon);
    myfence_destroy(&e->fence);
    free(e->object);
    free(e);
}

static const char *const s_capabilities[] = { "mariadb", NULL };

static const engine_ops_t s_ops = {
    .name = "mariadb",
    .tick = s_tick,
    .report = s_report,
    .start = s_start,
    .copy_is = s_copy_is,
    .copy_progress = s_copy_progress,
    .close = s_close,
};

engine_t *my_engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                         engine_event_cb event, void *arg)
{
    my_engine_t *e = xcalloc(1, sizeof *e);
    e->base.ops = &s_ops;
    e->base.capabilities = s_capabilities;
    e->base.disk_path = cfg->mariadb.data_directory;
    e->loop = loop;
    e->cfg = cfg;
    e->agent_name = agent_name;
    e->event = event;
    e->arg = arg;
    e->server = (myconn_params_t){
        .host = cfg->mariadb.host,
        .port = (int)cfg->mariadb.port,
        .socket = cfg->mariadb.socket,
        .user = cfg->mariadb.user,
        .password_file = cfg->mariadb.password_file,
        .database = cfg->mariadb.database,
        .connect_timeout_ms = (uint64_t)cfg->mariadb.connect_timeout_ms,
    };
    e->object = cfg->mariadb.database ? xstrdup(cfg->mariadb.database)
                : cfg->mariadb.socket ? xstrdup(cfg->mariadb.socket)
                                      : xasprintf("%s:%d", cfg->mariadb.host,
                                                  (int)cfg->mariadb.port);
    e->mymon = mymon_new(loop, &e->server, (uint64_t)cfg->mariadb.statement_timeout_ms,
                         s_my_state, e);
    if (!e->mymon) {
        log_error("mariadb: invalid connection parameters");
        free(e->object);
        free(e);
        return NULL;
    }
    /* A statement of the fence's (a KILL, SET GLOBAL read_only) is short:
     * the limit, its connection and a second's slack. */
    e->fence = myfence_new(loop, &e->server,
                           (uint64_t)cfg->mariadb.connect_timeout_ms +
                               (uint64_t)cfg->mariadb.statement_timeout_ms + 1000,
                           cfg->state_dir, s_on_fence_event, e);
    if (!e->fence) {
        log_error("mariadb: cannot keep the fence: invalid parameters (state_dir?)");
        mymon_destroy(&e->mymon);
        free(e->object);
        free(e);
        return NULL;
    }
    mymon_tick(e->mymon);
    return &e->base;
}
