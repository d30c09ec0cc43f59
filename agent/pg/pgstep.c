/*
 * pgstep: see pgstep.h. The libpq connections of the PostgreSQL steps,
 * built from the agent's config and its peers (step_peer), never from an
 * address a message carries.
 */
#include "pgstep.h"
#include "log.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_set(const char *v)
{
    return v && v[0];
}

/* kw/val (room for 12) end with application_name, options and
 * connect_timeout; then the connection. */
static pgconn_t *s_conn_finish(uv_loop_t *loop, const char *name, const char **kw,
                               const char **val, int n, int64_t connect_timeout_ms,
                               const char *app, const char *options)
{
    char connect_timeout[32];
    snprintf(connect_timeout, sizeof connect_timeout, "%" PRId64,
             (connect_timeout_ms + 999) / 1000);
    kw[n] = "application_name", val[n++] = app;
    if (options)
        kw[n] = "options", val[n++] = options;
    kw[n] = "connect_timeout", val[n++] = connect_timeout;
    kw[n] = NULL, val[n] = NULL;
    return pgconn_new(loop, name, kw, val);
}

static pgconn_t *s_local(uv_loop_t *loop, const char *name, const step_local_t *local,
                         const char *database, bool replication, const char *app,
                         const char *options)
{
    if (!local || !local->host || !database)
        return NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", local->port);
    const char *kw[12], *val[12];
    int n = 0;
    kw[n] = "host", val[n++] = local->host;
    kw[n] = "port", val[n++] = port;
    kw[n] = "dbname", val[n++] = database;
    if (s_set(local->user))
        kw[n] = "user", val[n++] = local->user;
    if (s_set(local->passfile))
        kw[n] = "passfile", val[n++] = local->passfile;
    if (replication)
        kw[n] = "replication", val[n++] = "database";
    return s_conn_finish(loop, name, kw, val, n, local->connect_timeout_ms, app, options);
}

pgconn_t *pgstep_local_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                            const char *database, const char *app, const char *options)
{
    return s_local(loop, name, local, database, false, app, options);
}

pgconn_t *pgstep_local_walsender(uv_loop_t *loop, const char *name, const step_local_t *local,
                                 const char *database, const char *app, const char *options)
{
    return s_local(loop, name, local, database, true, app, options);
}

pgconn_t *pgstep_remote_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                             const Godwit__ReplicationConn *remote, bool replication,
                             const char *app, const char *options)
{
    char *why = NULL;
    const agent_peer_t *peer = step_peer(local, remote, &why);
    if (!peer) {
        log_warn("%s: %s", name, why);
        free(why);
        return NULL;
    }
    char port[24];
    snprintf(port, sizeof port, "%" PRId64, peer->port);
    const char *kw[12], *val[12];
    int n = 0;
    kw[n] = "host", val[n++] = peer->host;
    kw[n] = "port", val[n++] = port;
    kw[n] = "dbname", val[n++] = remote->dbname;
    kw[n] = "user", val[n++] = peer->user;
    if (s_set(peer->passfile))
        kw[n] = "passfile", val[n++] = peer->passfile;
    if (s_set(peer->sslmode))
        kw[n] = "sslmode", val[n++] = peer->sslmode;
    if (replication)
        kw[n] = "replication", val[n++] = "database";
    return s_conn_finish(loop, name, kw, val, n, local->connect_timeout_ms, app, options);
}

char *pgstep_marker(const char *name)
{
    return xasprintf("godwit object %s: created by godwit, dropped by its abort or cleanup", name);
}

char *pgstep_slot_lookup_sql(pgconn_t *c, const char *name)
{
    char *lit = pgconn_escape_literal(c, name);
    if (!lit)
        return NULL;
    char *sql = xasprintf("SELECT slot_type, plugin, database,"
                          " datoid IS NOT DISTINCT FROM (SELECT d.oid FROM pg_catalog.pg_database d"
                          "  WHERE d.datname = pg_catalog.current_database()) AS here"
                          " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
                          lit);
    free(lit);
    return sql;
}

bool pgstep_slot_ours(const PGresult *res, char **what)
{
    const char *type = pgconn_col(res, 0, "slot_type");
    const char *plugin = pgconn_col(res, 0, "plugin");
    const char *db = pgconn_col(res, 0, "database");
    if (type && strcmp(type, "logical") == 0 && plugin && strcmp(plugin, "pgoutput") == 0 &&
        pgconn_col_bool(res, 0, "here"))
        return true;
    *what = xasprintf("%s%s%s, database %s", type ? type : "?", plugin ? ", plugin " : "",
                      plugin ? plugin : "", db ? db : "none");
    return false;
}
