/*
 * replobj: what the agent's logical replication steps share (replobj.h
 * lists them; see step.h for the contract with the caller). Each works
 * over one pgconn to the local server.
 *
 * A step is a fixed list of stages run one after the other by
 * steprun_next(): a stage opens the connection or sends one statement, and
 * its callback reads the answer and calls replobj_next() or
 * replobj_finish(). Every step first reads the catalogs and then changes
 * only what differs from the request, so running it again (after a crash,
 * a timeout, a re-sent command) ends in the same state and reports success.
 *
 * SQL: catalog lookups are parameterised and pg_catalog-qualified (the
 * session runs with an empty search_path) and compare names as parameters.
 * DDL takes no parameters: identifiers go into its text only through
 * PQescapeIdentifier, and its string literals, the subscription's
 * CONNECTION (a libpq conninfo whose values subscription.c's s_conninfo()
 * quotes, all of them from the agent's peers but the database) and the
 * marker comment, only through PQescapeLiteral. DROP SUBSCRIPTION, and
 * CREATE SUBSCRIPTION when it creates its slot, may not run inside a
 * transaction block: they are sent alone.
 *
 * Only godwit's objects (step.h, "Trust"): every name must pass
 * step_godwit_name; a publication or subscription is created together with
 * its marker comment (both statements in one simple query, one implicit
 * transaction; a subscription that creates its slot cannot be in one, so
 * its comment follows at once) and is altered, enabled, disabled or dropped
 * only if it carries that marker; a slot is advanced or dropped only if it
 * is a logical pgoutput slot of this database, and its holder terminated
 * only if that is a WAL sender. DropObjects checks everything it names
 * before it drops or terminates anything.
 *
 * What a step owns: its runtime (steprun.h: the local pgconn as conn[0],
 * the timer that starts the first stage one loop turn after *_start, so
 * done never runs inside it, and paces the wait for a terminated slot
 * holder to go; its close frees the step), copies of what it needs from
 * the request, and the result being built.
 *
 * What a step must never do: call done more than once or after
 * step_cancel(), block the loop, put a password into a conninfo, or put a
 * name into SQL text unquoted.
 */
#include "replobj.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_SERVER_VERSION 130000   /* publish_via_partition_root */

/* ---- finishing ---------------------------------------------------------- */

void replobj_finish(replobj_t *o, ProtobufCMessage *payload, const char *error)
{
    steprun_finish(&o->run, payload, error);
}

void replobj_next(replobj_t *o)
{
    steprun_next(&o->run);
}

void replobj_fail_query(replobj_t *o, const pgconn_result_t *r)
{
    steprun_fail_query(&o->run, NULL, r);
}

void replobj_query(replobj_t *o, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&o->run, 0, what, sql, nparams, params,
                  (uint64_t)o->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

void replobj_query_simple(replobj_t *o, const char *what, const char *sql, pgconn_result_cb cb)
{
    steprun_query_simple(&o->run, 0, what, sql,
                         (uint64_t)o->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

char *replobj_ident(replobj_t *o, const char *ident)
{
    return steprun_ident(&o->run, 0, ident);
}

bool replobj_conn_lost(const replobj_t *o)
{
    return !pgconn_is_ready(o->run.conn[0]);
}

/* A CREATE failed because the object was created by someone else since our
 * lookup: 42710 when it had committed before, 23505 (the catalog's unique
 * index) when both ran at the same time. */
static bool s_exists_error(const pgconn_result_t *r)
{
    return strcmp(r->sqlstate, "42710") == 0 || strcmp(r->sqlstate, "23505") == 0;
}

bool replobj_look_again(replobj_t *o, const pgconn_result_t *r)
{
    if (r->ok || replobj_conn_lost(o) || !s_exists_error(r) || o->looked_again)
        return false;
    o->looked_again = true;
    return true;
}

/* ---- connecting --------------------------------------------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    replobj_t *o = arg;
    if (!ok) {
        char *why = xasprintf("cannot connect: %s", error ? error : "unknown error");
        replobj_finish(o, NULL, why);
        free(why);
        return;
    }
    int version = pgconn_server_version(c);
    if (version < S_MIN_SERVER_VERSION) {
        char *why = xasprintf("the server runs PostgreSQL version number %d; godwit needs 13 "
                              "or later",
                              version);
        replobj_finish(o, NULL, why);
        free(why);
        return;
    }
    replobj_next(o);
}

void replobj_connect(steprun_t *run)
{
    replobj_t *o = (replobj_t *)run;
    int rc = pgconn_connect(o->run.conn[0], (uint64_t)o->connect_timeout_ms, s_on_connect, o);
    if (rc != 0) {
        char *why = xasprintf("cannot start connecting: %s", strerror(-rc));
        replobj_finish(o, NULL, why);
        free(why);
    }
}

/* ---- only godwit's objects (step.h, "Trust") ---------------------------- */

/* Ends the step unless name (of kind, for messages) is one godwit gives. */
static bool s_name_ok(replobj_t *o, const char *kind, const char *name)
{
    if (!name || step_godwit_name(name))
        return true;
    char *why = xasprintf("%s \"%s\" is not a name godwit gives its objects (godwit_ and a-z, "
                          "0-9, _): godwit touches only what it created; nothing was done",
                          kind, name);
    replobj_finish(o, NULL, why);
    free(why);
    return false;
}

void replobj_names(steprun_t *run)
{
    replobj_t *o = (replobj_t *)run;
    for (size_t i = 0; i < REPLOBJ_MAX_NAMES; i++)
        if (!s_name_ok(o, o->names[i].kind, o->names[i].name))
            return;
    replobj_next(o);
}

bool replobj_marked(const PGresult *res, const char *name)
{
    const char *found = pgconn_col(res, 0, "marker");
    char *want = pgstep_marker(name);
    bool ours = found && strcmp(found, want) == 0;
    free(want);
    return ours;
}

void replobj_not_ours(replobj_t *o, const char *sql_kind, const char *name)
{
    char *marker = pgstep_marker(name);
    char *ident = pgconn_escape_identifier(o->run.conn[0], name);
    char *lit = pgconn_escape_literal(o->run.conn[0], marker);
    char *why = xasprintf(
        "%s %s exists without godwit's marker: godwit did not create it, so godwit neither "
        "changes nor drops it; nothing was done. If an older godwit created it (before "
        "objects were marked), mark it by hand: COMMENT ON %s %s IS %s; or drop it by hand",
        strcmp(sql_kind, "PUBLICATION") == 0 ? "publication" : "subscription",
        ident ? ident : name, sql_kind, ident ? ident : name, lit ? lit : "(cannot quote)");
    replobj_finish(o, NULL, why);
    free(why);
    free(lit);
    free(ident);
    free(marker);
}

char *replobj_comment_sql(replobj_t *o, const char *sql_kind, const char *ident,
                          const char *name)
{
    char *marker = pgstep_marker(name);
    char *lit = pgconn_escape_literal(o->run.conn[0], marker);
    free(marker);
    if (!lit) {
        replobj_finish(o, NULL, "cannot quote the marker for SQL (the connection is gone)");
        return NULL;
    }
    char *sql = xasprintf("COMMENT ON %s %s IS %s", sql_kind, ident, lit);
    free(lit);
    return sql;
}

char *replobj_with_marker(replobj_t *o, const char *create, const char *sql_kind,
                          const char *ident, const char *name)
{
    char *comment = replobj_comment_sql(o, sql_kind, ident, name);
    if (!comment)
        return NULL;
    char *sql = xasprintf("%s; %s", create, comment);
    free(comment);
    return sql;
}

/* ---- lifetime ----------------------------------------------------------- */

static bool s_local_valid(const step_local_t *l)
{
    return l && l->host && l->host[0] && l->port >= 1 && l->port <= 65535 &&
           l->connect_timeout_ms > 0 && l->connect_timeout_ms <= INT32_MAX &&
           l->statement_timeout_ms > 0 && l->statement_timeout_ms <= INT32_MAX;
}

bool replobj_given(const char *v)
{
    return v && v[0];
}

replobj_t *replobj_new(size_t size, uv_loop_t *loop, const step_local_t *local,
                       const char *database, const steprun_fn *stages, char *label,
                       steprun_fn release, step_done_cb done, void *arg)
{
    if (!loop || !s_local_valid(local) || !replobj_given(database) || !done) {
        free(label);
        return NULL;
    }
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path=",
                              local->statement_timeout_ms);
    pgconn_t *conn =
        pgstep_local_conn(loop, "agent step", local, database, "godwit-agent", options);
    free(options);
    if (!conn) {
        free(label);
        return NULL;
    }
    replobj_t *o = xcalloc(1, size);
    o->run.conn[0] = conn;
    o->run.stages = stages;
    o->connect_timeout_ms = local->connect_timeout_ms;
    o->statement_timeout_ms = local->statement_timeout_ms;
    steprun_start(&o->run, loop, label, done, arg, release, steprun_next);
    return o;
}

char *replobj_label(const char *kind, const char *name, const char *database)
{
    return xasprintf("%s \"%s\" in database \"%s\"", kind, name, database ? database : "");
}
