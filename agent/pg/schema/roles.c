/*
 * roles: ApplyRoles, the roles step on the target host (step.h has the
 * contract with the caller; the ApplyRoles message in proto/godwit.proto
 * says what it does). It runs before the schema is restored, which names
 * roles as owners and grantees and would fail without them.
 *
 * Stages, one after the other: connect to the source (pgstep_remote_conn,
 * read-only) and to the target database; read the source's access catalog
 * (access.h), then the target's for the same role names; plan
 * (access_plan_roles: CREATE ROLE for the roles the target lacks, their
 * memberships and settings, the database's owner and privileges); with
 * passwords, read the created roles' hashes from the source's pg_authid;
 * then BEGIN, every statement, each password, COMMIT on the target. One
 * transaction: a step that dies half-way leaves nothing, and run again it
 * finds the roles that exist and leaves them as they are (already_done
 * when nothing is missing).
 *
 * Password hashes: read by this agent over its own connection to the
 * source, held in memory only as long as it takes to set them, wiped when
 * freed. They go into exactly one kind of SQL text, ALTER ROLE ... PASSWORD
 * on the target, quoted by PQescapeLiteral, sent in a session that does not
 * log its statements (log_statement = none, log_min_error_statement =
 * panic, log_min_duration_statement = -1, set at connect: a superuser
 * setting, which this step needs anyway to create roles). Never in a
 * result, an error text, a log line, an argv.
 *
 * What it owns: its runtime (steprun.h: both connections, the timer that
 * starts the work and whose close frees everything), the two catalogs, the
 * plan, the hashes and the result.
 *
 * What it must never do: create a superuser, change a role that exists on
 * the target, change the source, report twice or after cancel, block the
 * loop.
 */
#include "roles.h"

#include "steprun.h"
#include "access.h"
#include "access_plan.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_NAMES_SHOWN 8

typedef enum { R_SRC = 0, R_DST = 1 } r_side_t;

typedef struct r_step r_step_t;
typedef void (*r_fn)(r_step_t *s);

struct r_step {
    steprun_t run;              /* first: its conn[R_SRC], conn[R_DST], what, timer */
    unsigned pending;           /* connects in flight */
    int64_t connect_timeout_ms, statement_timeout_ms;
    char *database;
    char *source_where;         /* user@host/db, for messages */
    char *app_roles;            /* text[] literal */
    bool passwords;

    cJSON *catalog[2];
    access_plan_t plan;
    bool planned;
    size_t next;                /* plan statement or password to send next */
    char **pw_names, **pw_hashes; /* created roles with a hash on the source */
    size_t n_pw;
    Godwit__ApplyRolesResult *result;
};

/* ---- finishing ----------------------------------------------------------- */

static void r_hashes_free(r_step_t *s)
{
    for (size_t i = 0; i < s->n_pw; i++) {
        if (s->pw_hashes[i]) {
            explicit_bzero(s->pw_hashes[i], strlen(s->pw_hashes[i]));
            free(s->pw_hashes[i]);
        }
        free(s->pw_names[i]);
    }
    free(s->pw_hashes);
    free(s->pw_names);
    s->pw_hashes = s->pw_names = NULL;
    s->n_pw = 0;
}

static void r_release(steprun_t *run)
{
    r_step_t *s = (r_step_t *)run;
    r_hashes_free(s);
    cJSON_Delete(s->catalog[R_SRC]);
    cJSON_Delete(s->catalog[R_DST]);
    if (s->planned)
        access_plan_free(&s->plan);
    if (s->result)
        godwit__apply_roles_result__free_unpacked(s->result, NULL);
    free(s->database);
    free(s->source_where);
    free(s->app_roles);
    free(s);
}

/* At the end (the connections are gone, an open transaction rolled back):
 * the hashes wiped at once, not when the memory goes. */
static void r_stop(steprun_t *run)
{
    r_hashes_free((r_step_t *)run);
}

/* Ends the step: the result when error is NULL. done runs last. */
static void r_finish(r_step_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        payload = &s->result->base;
        s->result = NULL;
    }
    steprun_finish(&s->run, payload, error);
}

/* The server's error for the statement in flight (its description, never
 * its text: a password statement holds a hash). */
static void r_fail_query(r_step_t *s, r_side_t side, const pgconn_result_t *r)
{
    steprun_fail_query(&s->run, side == R_SRC ? "source" : "target", r);
}

static bool r_send(r_step_t *s, r_side_t side, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, side, what, sql, nparams, params,
                  (uint64_t)s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
    return !s->run.disposed;
}

/* "a, b, c, ..." of at most R_NAMES_SHOWN names. Caller frees. */
static char *r_names(const char *const *v, size_t n)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < n && i < R_NAMES_SHOWN; i++) {
        char *grown = xasprintf("%s%s%s", out, i ? ", " : "", v[i]);
        free(out);
        out = grown;
    }
    if (n > R_NAMES_SHOWN) {
        char *grown = xasprintf("%s, ...", out);
        free(out);
        out = grown;
    }
    return out;
}

/* ---- applying ------------------------------------------------------------ */

static void r_apply_next(r_step_t *s);

static void r_done_ok(r_step_t *s)
{
    Godwit__ApplyRolesResult *res = s->result;
    res->n_created = s->plan.n_created;
    res->created = xcalloc(res->n_created ? res->n_created : 1, sizeof *res->created);
    for (size_t i = 0; i < res->n_created; i++)
        res->created[i] = xstrdup(s->plan.created[i]);
    res->memberships = (uint32_t)s->plan.n_memberships;
    res->settings = (uint32_t)s->plan.n_settings;
    res->database_changes = (uint32_t)s->plan.n_database;
    res->superusers = (uint32_t)s->plan.n_superuser;
    char *names = r_names(s->plan.created, s->plan.n_created);
    log_info("roles in database %s: created %zu role(s)%s%s%s, %zu membership(s), %zu setting(s), "
             "%u password(s); %zu change(s) to the database's owner and privileges",
             s->database, s->plan.n_created, names[0] ? " (" : "", names, names[0] ? ")" : "",
             s->plan.n_memberships, s->plan.n_settings, res->passwords, s->plan.n_database);
    free(names);
    r_finish(s, NULL);
}

static void r_on_applied(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (!r->ok) {
        r_fail_query(s, R_DST, r);
        return;
    }
    r_apply_next(s);
}

static void r_on_commit(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (!r->ok) {
        r_fail_query(s, R_DST, r);
        return;
    }
    r_hashes_free(s);
    r_done_ok(s);
}

/* Sends the password statement of created role i. */
static void r_send_password(r_step_t *s, size_t i)
{
    char *role = pgconn_escape_identifier(s->run.conn[R_DST], s->pw_names[i]);
    char *hash = pgconn_escape_literal(s->run.conn[R_DST], s->pw_hashes[i]);
    char *what = xasprintf("setting the password of role %s", s->pw_names[i]);
    if (!role || !hash) {
        free(role);
        if (hash) {
            explicit_bzero(hash, strlen(hash));
            free(hash);
        }
        steprun_failf(&s->run, "%s: cannot quote it for SQL", what);
        free(what);
        return;
    }
    char *sql = xasprintf("ALTER ROLE %s PASSWORD %s", role, hash);
    explicit_bzero(hash, strlen(hash));
    free(hash);
    free(role);
    s->result->passwords++;
    r_send(s, R_DST, what, sql, 0, NULL, r_on_applied);
    explicit_bzero(sql, strlen(sql)); /* libpq has copied it into its output buffer */
    free(sql);
    free(what);
}

/* The plan's statements, then the passwords, then COMMIT. */
static void r_apply_next(r_step_t *s)
{
    size_t i = s->next++;
    if (i < s->plan.n_stmts) {
        log_debug("roles in database %s: %s", s->database, s->plan.stmts[i]);
        r_send(s, R_DST, s->plan.stmts[i], s->plan.stmts[i], 0, NULL, r_on_applied);
        return;
    }
    i -= s->plan.n_stmts;
    if (i < s->n_pw) {
        r_send_password(s, i);
        return;
    }
    r_send(s, R_DST, "committing", "COMMIT", 0, NULL, r_on_commit);
}

static void r_on_begin(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (!r->ok) {
        r_fail_query(s, R_DST, r);
        return;
    }
    s->next = 0;
    r_apply_next(s);
}

static void r_apply(r_step_t *s)
{
    r_send(s, R_DST, "starting the transaction", "BEGIN", 0, NULL, r_on_begin);
}

/* ---- passwords ------------------------------------------------------------ */

static const char r_hashes_sql[] =
    "SELECT a.rolname::pg_catalog.text AS name, a.rolpassword AS hash"
    " FROM pg_catalog.pg_authid a"
    " WHERE a.rolname = ANY ($1::pg_catalog.text[]) AND a.rolpassword IS NOT NULL"
    " ORDER BY 1";

static void r_on_hashes(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (!r->ok) {
        if (strcmp(r->sqlstate, "42501") == 0) {
            steprun_failf(&s->run, "the source connection (%s) cannot read the password hashes "
                       "(pg_authid): copying passwords (roles.passwords in the plan) needs a "
                       "superuser there; or leave passwords off and set them on the target",
                    s->source_where);
            return;
        }
        r_fail_query(s, R_SRC, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    s->pw_names = xcalloc(n > 0 ? (size_t)n : 1, sizeof *s->pw_names);
    s->pw_hashes = xcalloc(n > 0 ? (size_t)n : 1, sizeof *s->pw_hashes);
    for (int i = 0; i < n; i++) {
        const char *name = pgconn_col(r->res, i, "name");
        const char *hash = pgconn_col(r->res, i, "hash");
        if (!name || !hash)
            continue;
        s->pw_names[s->n_pw] = xstrdup(name);
        s->pw_hashes[s->n_pw] = xstrdup(hash);
        s->n_pw++;
    }
    r_apply(s);
}

static void r_read_hashes(r_step_t *s)
{
    char *names = pgconn_text_array((char *const *)s->plan.created, s->plan.n_created);
    const char *params[1] = { names };
    r_send(s, R_SRC, "reading the created roles' password hashes", r_hashes_sql, 1, params,
           r_on_hashes);
    free(names);
}

/* ---- the catalogs and the plan -------------------------------------------- */

static void r_plan(r_step_t *s)
{
    access_quote_t q = access_quote_conn(s->run.conn[R_DST]);
    char *err = NULL;
    if (!access_plan_roles(s->catalog[R_SRC], s->catalog[R_DST], &q, &s->plan, &err)) {
        steprun_failf(&s->run, "%s", err ? err : "cannot plan the roles");
        free(err);
        return;
    }
    s->planned = true;
    if (s->plan.n_stmts == 0) {
        log_info("roles in database %s: every role the database needs exists; nothing to do",
                 s->database);
        s->result->already_done = true;
        r_finish(s, NULL);
        return;
    }
    if (s->plan.n_superuser > 0)
        log_warn("roles in database %s: %zu role(s) the source has as superusers are created "
                 "without SUPERUSER (godwit never grants it; verify reports the difference)",
                 s->database, s->plan.n_superuser);
    if (s->passwords && s->plan.n_created > 0)
        r_read_hashes(s);
    else
        r_apply(s);
}

/* Stores a side's catalog; false after ending the step. */
static bool r_catalog(r_step_t *s, r_side_t side, const pgconn_result_t *r)
{
    if (!r->ok) {
        r_fail_query(s, side, r);
        return false;
    }
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "access") : NULL;
    char *err = NULL;
    s->catalog[side] = access_parse(text, &err);
    if (!s->catalog[side]) {
        steprun_failf(&s->run, "reading the %s's roles and privileges: %s",
                side == R_SRC ? "source" : "target", err ? err : "no answer");
        free(err);
        return false;
    }
    return true;
}

static void r_on_dst_catalog(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (r_catalog(s, R_DST, r))
        r_plan(s);
}

static void r_on_src_catalog(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    r_step_t *s = arg;
    if (!r_catalog(s, R_SRC, r))
        return;
    char *names = access_role_names(s->catalog[R_SRC]);
    const char *params[1] = { names };
    r_send(s, R_DST, "reading the roles and privileges", access_catalog_sql, 1, params,
           r_on_dst_catalog);
    free(names);
}

static void r_read(r_step_t *s)
{
    const char *params[1] = { s->app_roles };
    r_send(s, R_SRC, "reading the roles and privileges", access_catalog_sql, 1, params,
           r_on_src_catalog);
}

/* ---- connecting ---------------------------------------------------------- */

static void r_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    r_step_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect to the %s: %s", c == s->run.conn[R_SRC] ? "source" : "target",
                error ? error : "unknown error");
        return;
    }
    if (s->pending == 0)
        r_read(s);
}

static void r_first(steprun_t *run)
{
    r_step_t *s = (r_step_t *)run;
    for (int side = 0; side < 2; side++) {
        int rc = pgconn_connect(s->run.conn[side], (uint64_t)s->connect_timeout_ms, r_on_connect, s);
        if (rc != 0) {
            steprun_failf(&s->run, "cannot start connecting: %s", strerror(-rc));
            return;
        }
        s->pending++;
    }
}

/* ---- start --------------------------------------------------------------- */

static bool r_set(const char *v)
{
    return v && v[0];
}

step_t *roles_apply_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__ApplyRoles *req, step_done_cb done, void *arg)
{
    if (!loop || !done || !local || !r_set(local->host) || local->port < 1 ||
        local->port > 65535 || local->connect_timeout_ms <= 0 ||
        local->statement_timeout_ms <= 0 || !req || !r_set(req->database) || !req->source ||
        !r_set(req->source->peer) || !r_set(req->source->dbname))
        return NULL;
    for (size_t i = 0; i < req->n_app_roles; i++)
        if (!r_set(req->app_roles[i]))
            return NULL;
    /* jit off: see access.h */
    char *src_opts = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                               " -c default_transaction_read_only=on -c jit=off",
                               local->statement_timeout_ms);
    /* With passwords the target session must not log what it runs. */
    char *dst_opts = xasprintf("-c statement_timeout=%" PRId64 " -c search_path= -c jit=off%s",
                               local->statement_timeout_ms,
                               req->passwords ? " -c log_statement=none"
                                                " -c log_min_error_statement=panic"
                                                " -c log_min_duration_statement=-1"
                                                " -c log_duration=off"
                                              : "");
    pgconn_t *src = pgstep_remote_conn(loop, "agent roles source", local, req->source, false,
                                       "godwit-agent", src_opts);
    pgconn_t *dst = pgstep_local_conn(loop, "agent roles target", local, req->database,
                                      "godwit-agent", dst_opts);
    free(src_opts);
    free(dst_opts);
    if (!src || !dst) {
        pgconn_destroy(&src);
        pgconn_destroy(&dst);
        return NULL;
    }
    r_step_t *s = xcalloc(1, sizeof *s);
    s->run.conn[R_SRC] = src;
    s->run.conn[R_DST] = dst;
    s->run.stop = r_stop;
    s->connect_timeout_ms = local->connect_timeout_ms;
    s->statement_timeout_ms = local->statement_timeout_ms;
    s->database = xstrdup(req->database);
    char *why = NULL;
    const agent_peer_t *peer = step_peer(local, req->source, &why);
    free(why); /* pgstep_remote_conn refused such a peer already */
    s->source_where = xasprintf("%s@%s:%lld/%s (peer %s)", peer ? peer->user : "?",
                                peer ? peer->host : "?", peer ? (long long)peer->port : 0LL,
                                req->source->dbname, req->source->peer);
    s->app_roles = pgconn_text_array(req->app_roles, req->n_app_roles);
    s->passwords = req->passwords;
    s->result = xmalloc(sizeof *s->result);
    godwit__apply_roles_result__init(s->result);
    steprun_start(&s->run, loop, xasprintf("roles in database %s", req->database), done, arg,
                  r_release, r_first);
    return &s->run.base;
}
