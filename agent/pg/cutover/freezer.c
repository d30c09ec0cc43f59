/*
 * freezer: see freezer.h. A FreezeSource step is a list of stages run one
 * after the other (steprun.h) on one local connection; waits run on the
 * server (a DO block polling pg_stat_activity), one message each. The fence
 * file is written before any role changes and removed only after every role
 * got its LOGIN back; a PREPARE with arm writes it ahead as the armed file
 * (fencefile.h), which FREEZE renames. The kept connections are lent to SetSequences
 * (sequences.c) through freezer_conn_take and freezer_conn_give.
 */
#include "freezer.h"
#include "connkeep.h"
#include "fencefile.h"
#include "steprun.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "rowcheck.h"
#include "units.h"
#include "wire.h"
#include "xalloc.h"

#define FZ_DEFAULT_DRAIN_MS 2000
#define FZ_DEFAULT_LEASE_MS 30000

typedef struct lease lease_t;
typedef struct fz_step fz_step_t;
typedef struct fz_gstop fz_gstop_t;

struct lease {
    freezer_t *f;           /* NULL once the freezer is gone */
    char *database;
    uv_timer_t timer;
    lease_t *next;
};

struct freezer {
    uv_loop_t *loop;
    step_local_t local;
    char *state_dir;
    freezer_event_cb event;
    void *event_arg;
    lease_t *leases;
    step_t *internal;       /* an unfreeze the freezer runs itself (lease expiry) */
    char *failpoint;        /* GODWIT_FAILPOINT at the start (tests only), or NULL */
    /* The connections kept for the write pause's next steps (PREPARE, or a
     * step that ended well). Its timer's close frees the freezer. */
    connkeep_t kept;
    fz_gstop_t *gstops;     /* cutover groups' stops with members waiting */
};


struct fz_step {
    steprun_t run;          /* first: conn[0] (the kept connection), stages, label, what */
    freezer_t *f;
    Godwit__FreezeSource *req;
    Godwit__FreezeSourceResult *result;
    char *path;             /* the fence file */
    char *armed_path;       /* the armed file */
    cJSON *fence;           /* its content (FREEZE: the armed file's, if from_armed) */
    bool from_armed;        /* FREEZE: the fence file is the armed file, renamed */
    bool wrote_fence;       /* FREEZE: this step made the fence file (undone if no role changed) */
    char *roles_array;      /* the app roles as a text[] literal */
    char *group_array;      /* the cutover group's databases as a text[] literal */
    size_t next;            /* the role being changed */
    size_t check_next;      /* the final check's table being read */
    uint64_t stage_started_mono;
    fz_gstop_t *gstop;      /* FREEZE of a group member: the stop it waits at */
};

/* ---- leases ------------------------------------------------------------- */

static void fz_lease_closed(uv_handle_t *h)
{
    lease_t *l = h->data;
    free(l->database);
    free(l);
}

static void fz_lease_end(freezer_t *f, const char *database)
{
    for (lease_t **pp = &f->leases; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->database, database) == 0) {
            lease_t *l = *pp;
            *pp = l->next;
            uv_close((uv_handle_t *)&l->timer, fz_lease_closed);
            return;
        }
    }
}

static void fz_lease_expired(uv_timer_t *t);

/* Starts or renews the lease of database. */
static void fz_lease_set(freezer_t *f, const char *database, uint64_t ms)
{
    lease_t *l = f->leases;
    while (l && strcmp(l->database, database) != 0)
        l = l->next;
    if (!l) {
        l = xcalloc(1, sizeof *l);
        l->f = f;
        l->database = xstrdup(database);
        uv_timer_init(f->loop, &l->timer);
        l->timer.data = l;
        l->next = f->leases;
        f->leases = l;
    }
    uv_timer_start(&l->timer, fz_lease_expired, ms, 0);
}

/* ---- the step: finishing ------------------------------------------------ */

static void fz_release(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (s->req)
        godwit__freeze_source__free_unpacked(s->req, NULL);
    if (s->result)
        godwit__freeze_source_result__free_unpacked(s->result, NULL);
    cJSON_Delete(s->fence);
    free(s->roles_array);
    free(s->group_array);
    free(s->path);
    free(s->armed_path);
    free(s);
}

/* Ends the step; on success its connection goes back to the freezer for
 * the next step of this database. */
static void fz_finish(fz_step_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        payload = &s->result->base;
        s->result = NULL;
        freezer_conn_give(s->f, s->req->database, &s->run.conn[0]);
    }
    steprun_finish(&s->run, payload, error);
}

static void fz_complete(steprun_t *run)
{
    fz_finish((fz_step_t *)run, NULL);
}

/* Records how long the stage that just ended took, under name. */
static void fz_timed(fz_step_t *s, const char *name)
{
    uint64_t now = units_mono_us();
    Godwit__TimedStep *t = xmalloc(sizeof *t);
    godwit__timed_step__init(t);
    t->name = xstrdup(name);
    t->ms = (double)(now - s->stage_started_mono) / 1000.0;
    s->stage_started_mono = now;
    Godwit__FreezeSourceResult *r = s->result;
    r->steps = xrealloc(r->steps, (r->n_steps + 1) * sizeof *r->steps);
    r->steps[r->n_steps++] = t;
}

static void fz_next(fz_step_t *s)
{
    steprun_next(&s->run);
}

static void fz_query(fz_step_t *s, const char *what, const char *sql, int nparams,
                     const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, 0, what, sql, nparams, params, FREEZE_STATEMENT_TIMEOUT_MS + 1000,
                  cb);
}

/* fz_query's twin for a message of several statements (the simple
 * protocol, no parameters), bounded by timeout_ms. */
static void fz_query_simple(fz_step_t *s, const char *what, const char *sql, uint64_t timeout_ms,
                            pgconn_result_cb cb)
{
    steprun_query_simple(&s->run, 0, what, sql, timeout_ms, cb);
}

/* The callback's common part: false after ending the step on an error. */
static bool fz_ok(fz_step_t *s, const pgconn_result_t *r)
{
    if (r->ok)
        return true;
    steprun_fail_query(&s->run, NULL, r);
    return false;
}

/* ---- the kept connection ------------------------------------------------ */

pgconn_t *freezer_conn_take(freezer_t *f, const char *database)
{
    pgconn_t *c = connkeep_take(&f->kept, database);
    return c ? c : freezer_conn_new(f->loop, &f->local, database);
}

void freezer_conn_give(freezer_t *f, const char *database, pgconn_t **cp)
{
    connkeep_give(&f->kept, database, cp);
}

/* ---- stages ------------------------------------------------------------- */

static void fz_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect: %s", error ? error : "unknown error");
        return;
    }
    fz_timed(s, "connect");
    fz_next(s);
}

static void fz_connect(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (pgconn_is_ready(s->run.conn[0])) { /* the kept connection */
        fz_next(s);
        return;
    }
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->f->local.connect_timeout_ms, fz_on_connect, s);
    if (rc != 0)
        steprun_failf(&s->run, "cannot start connecting: %s", strerror(-rc));
}

/* The lease runs from the fence (or its arming): whatever happens next,
 * the fence does not outlive it unless the coordinator says so (or asked
 * for it for good: then there is no lease). */
static void fz_lease_apply(fz_step_t *s)
{
    if (s->req->permanent)
        fz_lease_end(s->f, s->req->database);
    else
        fz_lease_set(s->f, s->req->database,
                     s->req->lease_ms ? s->req->lease_ms : FZ_DEFAULT_LEASE_MS);
}

/* The roles as the query of fz_roles read them, checked, as the fence
 * file's JSON (the caller deletes it); NULL after failing the step. */
static cJSON *fz_roles_json(fz_step_t *s, const pgconn_result_t *r)
{
    int n = PQntuples(r->res);
    for (size_t i = 0; i < s->req->n_app_roles; i++) {
        const char *want = s->req->app_roles[i];
        int row = -1;
        for (int j = 0; j < n; j++)
            if (strcmp(pgconn_col_str(r->res, j, "rolname"), want) == 0)
                row = j;
        if (row < 0) {
            steprun_failf(&s->run, "no role \"%s\" on the source (cutover.app_roles)", want);
            return NULL;
        }
        if (pgconn_col_bool(r->res, row, "rolsuper") || pgconn_col_bool(r->res, row, "is_me")) {
            steprun_failf(&s->run, "role \"%s\" is a superuser or the agent's own role: it cannot be "
                        "fenced (give the application a role of its own)", want);
            return NULL;
        }
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "database", s->req->database);
    cJSON_AddBoolToObject(j, "permanent", s->req->permanent);
    cJSON *roles = cJSON_AddArrayToObject(j, "roles");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pgconn_col_str(r->res, i, "rolname"));
        cJSON_AddBoolToObject(o, "login", pgconn_col_bool(r->res, i, "rolcanlogin"));
        cJSON_AddItemToArray(roles, o);
    }
    return j;
}

static void fz_roles_query(fz_step_t *s, pgconn_result_cb cb)
{
    const char *params[2] = { s->roles_array, s->group_array };
    fz_query(s, "reading the application roles",
             "SELECT r.rolname::pg_catalog.text AS rolname, r.rolcanlogin, r.rolsuper,"
             " r.rolname = current_user AS is_me,"
             " (SELECT pg_catalog.string_agg(DISTINCT a.datname::pg_catalog.text, ', ')"
             "  FROM pg_catalog.pg_stat_activity a WHERE a.usename = r.rolname"
             "  AND a.datname <> pg_catalog.current_database()"
             "  AND a.datname <> ALL ($2::pg_catalog.text[])) AS other_databases"
             " FROM pg_catalog.pg_roles r WHERE r.rolname = ANY ($1::pg_catalog.text[])",
             2, params, cb);
}

/* FREEZE: the roles as they are, checked; the fence file written first. */
static void fz_on_roles(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    fz_timed(s, "read roles");
    cJSON *j = fz_roles_json(s, r);
    if (!j)
        return;
    fz_lease_apply(s);
    if (s->fence) { /* already frozen: keep what the roles had before we came */
        cJSON_Delete(j);
        s->result->already = true;
        if (s->req->permanent && !cJSON_IsTrue(cJSON_GetObjectItem(s->fence, "permanent"))) {
            cJSON_ReplaceItemInObject(s->fence, "permanent", cJSON_CreateTrue());
            int rc = fencefile_write(s->path, s->fence);
            if (rc != 0) {
                steprun_failf(&s->run, "cannot write %s: %s", s->path, strerror(-rc));
                return;
            }
        }
        fz_next(s);
        return;
    }
    int rc = fencefile_write(s->path, j);
    if (rc != 0) {
        cJSON_Delete(j);
        steprun_failf(&s->run, "cannot write %s: %s", s->path, strerror(-rc));
        return;
    }
    s->fence = j;
    s->wrote_fence = true;
    fz_timed(s, "write fence file");
    fz_next(s);
}

/* FREEZE: with an armed file, no read and no sync: it becomes the fence
 * file by a rename (its content was synced when armed; see fencefile.h);
 * the roles are checked against it in fz_stop's message. */
static void fz_roles(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (!s->from_armed) {
        fz_roles_query(s, fz_on_roles);
        return;
    }
    if (rename(s->armed_path, s->path) != 0) {
        steprun_failf(&s->run, "cannot rename %s to %s: %s", s->armed_path, s->path,
                      strerror(errno));
        return;
    }
    s->wrote_fence = true;
    fz_lease_apply(s);
    if (s->req->permanent) {
        cJSON_ReplaceItemInObject(s->fence, "permanent", cJSON_CreateTrue());
        int rc = fencefile_write(s->path, s->fence);
        if (rc != 0) {
            steprun_failf(&s->run, "cannot write %s: %s", s->path, strerror(-rc));
            return;
        }
    }
    fz_timed(s, "fence file (armed)");
    fz_next(s);
}

/* PREPARE with arm: the roles read and checked now, and the fence file
 * written ahead as the armed file, under the lease (if no FREEZE comes,
 * its expiry removes the file). Nothing to arm where our fence holds. */
static void fz_on_armed(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    /* The fence takes a role's LOGIN on the whole server: a role that
     * other databases here use too would lose their new connections with
     * it, for good once the switch makes the fence permanent. */
    for (int i = 0; i < PQntuples(r->res); i++) {
        const char *other = pgconn_col(r->res, i, "other_databases");
        if (other && other[0]) {
            steprun_failf(&s->run, "role \"%s\" has sessions in other databases of this server "
                          "too (%s): the fence refuses the role's logins on the whole server, "
                          "so those databases would lose their new connections, and for good "
                          "after the switch; give this database's application a role of its "
                          "own (cutover.app_roles), or end those sessions first",
                          pgconn_col_str(r->res, i, "rolname"), other);
            return;
        }
    }
    cJSON *j = fz_roles_json(s, r);
    if (!j)
        return;
    int rc = fencefile_write(s->armed_path, j);
    cJSON_Delete(j);
    if (rc != 0) {
        steprun_failf(&s->run, "cannot write %s: %s", s->armed_path, strerror(-rc));
        return;
    }
    fz_lease_apply(s);
    fz_timed(s, "arm");
    fz_next(s);
}

static void fz_arm(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (!s->req->arm || s->fence || s->req->n_app_roles == 0) {
        fz_next(s);
        return;
    }
    fz_roles_query(s, fz_on_armed);
}

/* Fences of ours on one server change the same roles at once (a cutover
 * group's databases), and of two ALTER ROLE of one role at the same moment
 * the later fails ("tuple concurrently updated", XX000) once the earlier
 * committed. So a change is made only when the role is not as wanted yet,
 * read again, and tried again after that error (1 ms apart, 100 times at
 * most): the earlier one's result is then read, and nothing is left to do.
 * PL/pgSQL statements of a DO block: ROLE (an expression giving the role's
 * name, text), LOGIN ("true" or "false"), WORD ("LOGIN" or "NOLOGIN"). */
#define FZ_ALTER_ROLE(ROLE, LOGIN, WORD)                                                       \
    " FOR k IN 1 .. 100 LOOP BEGIN"                                                          \
    " IF (SELECT a.rolcanlogin FROM pg_catalog.pg_roles a WHERE a.rolname = " ROLE ")"       \
    " IS DISTINCT FROM " LOGIN " THEN"                                                       \
    " EXECUTE pg_catalog.format('ALTER ROLE %%I " WORD "', " ROLE "); END IF; EXIT;"         \
    " EXCEPTION WHEN internal_error THEN IF k = 100 THEN RAISE; END IF;"                    \
    " PERFORM pg_catalog.pg_sleep(0.001); END; END LOOP;"

/* Sets LOGIN (login) or NOLOGIN on role, unless it has it already. */
static void fz_alter_role(fz_step_t *s, const char *role, bool login, pgconn_result_cb cb)
{
    char *q = pgconn_escape_literal(s->run.conn[0], role);
    if (!q) {
        steprun_failf(&s->run, "cannot quote the role name \"%s\"", role);
        return;
    }
    char *sql = login
        ? xasprintf("DO $godwit$ DECLARE n pg_catalog.text := %s; BEGIN"
                    FZ_ALTER_ROLE("n", "true", "LOGIN") " END $godwit$", q)
        : xasprintf("DO $godwit$ DECLARE n pg_catalog.text := %s; BEGIN"
                    FZ_ALTER_ROLE("n", "false", "NOLOGIN") " END $godwit$", q);
    fz_query(s, login ? "giving a role its LOGIN back" : "refusing a role's logins", sql, 0, NULL,
             cb);
    free(sql);
    free(q);
}

/* The application's sessions in the databases being fenced (a DO block's
 * condition: r the roles, dbs the databases). */
#define FZ_APP_SESSIONS                                                                        \
    " FROM pg_catalog.pg_stat_activity a WHERE a.datname = ANY (dbs)"                          \
    " AND a.usename = ANY (r) AND a.pid <> pg_catalog.pg_backend_pid()"

/* Every sequence of the database (owned by a column or not): its value,
 * whether nextval() has been called (pg_sequence_last_value is NULL then)
 * and the table owning it (serial: an 'a' dependency, identity: 'i'). */
#define FZ_SEQUENCES_SQL                                                                       \
    "SELECT n.nspname::pg_catalog.text AS schema, c.relname::pg_catalog.text AS name,"       \
    " pg_catalog.pg_sequence_last_value(c.oid) AS last_value, q.seqstart AS start_value,"    \
    " coalesce(tn.nspname::pg_catalog.text, '') AS owner_schema,"                            \
    " coalesce(t.relname::pg_catalog.text, '') AS owner_table"                               \
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"   \
    " JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid"                                   \
    " LEFT JOIN pg_catalog.pg_depend d"                                                      \
    " ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid"         \
    " AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"                         \
    " AND d.deptype IN ('a', 'i')"                                                           \
    " LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid"                                 \
    " LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"                       \
    " WHERE c.relkind = 'S'"                                                                 \
    " AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"

#define FZ_GONE_MS 5000         /* terminated sessions must be gone within this */

/* The SQLSTATE of fz_stop's checks of the roles: raised before any role
 * changed, in a transaction that then rolled back. */
#define FZ_ROLES_CHANGED "GW001"

/* A stop that failed with FZ_ROLES_CHANGED changed no role: the file this
 * step made goes again (the armed one back where it was), so nothing
 * restores an older state. */
static void fz_undo_fence(fz_step_t *s)
{
    if (!s->wrote_fence)
        return;
    int rc = s->from_armed ? rename(s->path, s->armed_path) : unlink(s->path);
    if (rc != 0)
        log_warn("%s: cannot undo %s: %s", s->run.label, s->path, strerror(errno));
    s->wrote_fence = false;
}

/* The rows of FZ_SEQUENCES_SQL in r (a LEFT JOIN's one row of NULLs when
 * there is none) into the result's sequences. */
static void fz_take_sequences(fz_step_t *s, const PGresult *res)
{
    int n = PQntuples(res);
    Godwit__FreezeSourceResult *out = s->result;
    out->sequences = xcalloc((size_t)n + 1, sizeof *out->sequences);
    for (int i = 0; i < n; i++) {
        if (!pgconn_col(res, i, "schema"))
            continue; /* no sequence: the one row of the LEFT JOIN */
        Godwit__SequenceValue *v = xmalloc(sizeof *v);
        godwit__sequence_value__init(v);
        v->schema = xstrdup(pgconn_col_str(res, i, "schema"));
        v->name = xstrdup(pgconn_col_str(res, i, "name"));
        v->owner_schema = xstrdup(pgconn_col_str(res, i, "owner_schema"));
        v->owner_table = xstrdup(pgconn_col_str(res, i, "owner_table"));
        const char *last = pgconn_col(res, i, "last_value");
        v->is_called = last != NULL;
        v->last_value = pgconn_col_i64(res, i, last ? "last_value" : "start_value", 1);
        out->sequences[out->n_sequences++] = v;
    }
}

static void fz_on_stopped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!r->ok && strcmp(r->sqlstate, FZ_ROLES_CHANGED) == 0)
        fz_undo_fence(s);
    if (!fz_ok(s, r))
        return;
    int n = PQntuples(r->res);
    if (n < 1 || !lsn_parse(pgconn_col_str(r->res, 0, "lsn"), &s->result->final_lsn)) {
        steprun_failf(&s->run, "no final position read");
        return;
    }
    s->result->terminated = (uint32_t)pgconn_col_u64(r->res, 0, "terminated");
    fz_take_sequences(s, r->res);
    fz_timed(s, "refuse logins, drain, terminate, read sequences");
    fz_next(s);
}

/* The roles as the fence file has them, checked once more on the server and
 * then refused their logins, in one transaction committed before the
 * sessions are ended (a session that logged in later could commit past the
 * final LSN). With an armed file, each role's LOGIN must be what it was when
 * armed, or the file would restore another state: the message fails
 * (FZ_ROLES_CHANGED) and changes nothing; not in a cutover group, whose
 * siblings on this server take the same roles' LOGIN at the same moment
 * (each armed file holds what the roles had before any of them, so each
 * restores the same). ALTER ROLE takes no parameters:
 * the names go in as a quoted array literal, through format's %I. Returns
 * the statements, malloc'd. */
static char *fz_nologin_sql(const fz_step_t *s, const char *roles)
{
    /* w: each role's LOGIN as armed, a literal of fixed words only. */
    char *want = NULL;
    if (s->from_armed && s->req->n_group_databases == 0) {
        const cJSON *list = cJSON_GetObjectItem(s->fence, "roles");
        size_t n = s->req->n_app_roles, len = 0;
        want = xmalloc(8 * n + 8);
        want[len++] = '\'';
        want[len++] = '{';
        for (size_t i = 0; i < n; i++) {
            const char *v = "NULL"; /* not recorded: fails the check */
            const cJSON *e;
            cJSON_ArrayForEach(e, list) {
                const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
                if (name && strcmp(name, s->req->app_roles[i]) == 0)
                    v = cJSON_IsTrue(cJSON_GetObjectItem(e, "login")) ? "true" : "false";
            }
            len += (size_t)sprintf(want + len, "%s%s", i ? "," : "", v);
        }
        want[len++] = '}';
        want[len++] = '\'';
        want[len] = '\0';
    }
    char *sql = xasprintf(
        "BEGIN; DO $godwit$ DECLARE r pg_catalog.text[] := %s::pg_catalog.text[];"
        " w pg_catalog.bool[] := %s::pg_catalog.bool[]; x record; BEGIN"
        " FOR i IN 1 .. pg_catalog.array_length(r, 1) LOOP"
        " SELECT a.rolcanlogin, a.rolsuper, a.rolname = current_user AS me INTO x"
        " FROM pg_catalog.pg_roles a WHERE a.rolname = r[i];"
        " IF NOT FOUND THEN RAISE EXCEPTION 'no role \"%%\" on the source (cutover.app_roles)',"
        " r[i] USING ERRCODE = '" FZ_ROLES_CHANGED "'; END IF;"
        " IF x.rolsuper OR x.me THEN RAISE EXCEPTION 'role \"%%\" is a superuser or the"
        " agent''s own role: it cannot be fenced', r[i] USING ERRCODE = '" FZ_ROLES_CHANGED "';"
        " END IF;"
        " IF w IS NOT NULL AND x.rolcanlogin IS DISTINCT FROM w[i] THEN RAISE EXCEPTION"
        " 'role \"%%\" changed since the cutover began (LOGIN was %%, is %%)', r[i], w[i],"
        " x.rolcanlogin USING ERRCODE = '" FZ_ROLES_CHANGED "'; END IF;"
        FZ_ALTER_ROLE("r[i]", "false", "NOLOGIN") " END LOOP; END $godwit$;"
        " COMMIT;",
        roles, want ? want : "NULL");
    free(want);
    return sql;
}

/* Once the roles refuse logins, in the same message, run on the server: the
 * application's transactions get drain_timeout_ms to end; its sessions
 * are terminated, again until none is left that could still commit
 * (FZ_GONE_MS at most; each pg_stat_activity read a fresh one). A session
 * already signalled that shows idle, outside a transaction, cannot: a
 * backend handles the signal before it runs another statement (one that
 * had begun a statement shows active until it dies, and is waited for, as
 * is any session not yet signalled or whose state this role cannot see).
 * Not waiting for those to exit saves the write pause the 5 to 25 ms that
 * backends took here to go once PgBouncer's PAUSE had closed them. Then no
 * application commit can
 * follow, so the WAL insert position is the final LSN, read with every
 * sequence. Not the write position: an application committing with
 * synchronous_commit off has its commit acknowledged before its record is
 * written, so that one may lie beyond pg_current_wal_lsn(). The message's
 * own transaction writes a record of its own, a transactional logical
 * message (pg_logical_emit_message: it takes a transaction id, pgoutput
 * sends it to no subscriber that did not ask for messages), so its commit
 * is flushed before the answer: its commit record lies past the final LSN,
 * and the walsender, which sends only flushed WAL, can carry the stream
 * past the final LSN at once. A transaction that only takes an id
 * (txid_current(), as this did before) commits asynchronously whatever
 * synchronous_commit says (PostgreSQL flushes at commit only a transaction
 * that wrote WAL): its commit then waited for the WAL writer, up to
 * wal_writer_delay (measured: 90 to 110 ms of a group's pause on quiet
 * databases); with no transaction id at all, an insert position just past
 * a page header stayed unsent until other WAL came (seen, a 2.9 s wait and
 * an abort). One round trip instead of a poll per stage: under load each
 * costs milliseconds of the write pause. A DO block takes no parameters:
 * the roles go in as a quoted literal; the terminated count comes out
 * through a setting local to the message's transaction. */
static char *fz_stop_sql(fz_step_t *s, const char *roles, const char *dbs, bool sequences)
{
    char *nologin = fz_nologin_sql(s, roles);
    uint64_t drain = s->req->drain_timeout_ms ? s->req->drain_timeout_ms : FZ_DEFAULT_DRAIN_MS;
    char *sql = xasprintf(
        "%s SET LOCAL statement_timeout = 0; SET LOCAL synchronous_commit = on;"
        " DO $godwit$ DECLARE r pg_catalog.text[] := %s::pg_catalog.text[];"
        " dbs pg_catalog.name[] := %s;"
        " d pg_catalog.timestamptz := pg_catalog.clock_timestamp() + interval '%" PRIu64 " ms';"
        " n pg_catalog.int8; t pg_catalog.int8; p pg_catalog.int4[] := '{}';"
        " g pg_catalog.int4[]; BEGIN"
        " LOOP PERFORM pg_catalog.pg_stat_clear_snapshot();"
        " EXIT WHEN pg_catalog.clock_timestamp() >= d OR NOT EXISTS (SELECT 1" FZ_APP_SESSIONS
        " AND a.xact_start IS NOT NULL);"
        " PERFORM pg_catalog.pg_sleep(0.001); END LOOP;"
        " d := pg_catalog.clock_timestamp() + interval '%d ms';"
        " LOOP PERFORM pg_catalog.pg_stat_clear_snapshot();"
        " SELECT pg_catalog.array_agg(a.pid) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid))"
        " INTO g" FZ_APP_SESSIONS ";" /* FILTER: only rows that passed WHERE are signalled */
        " p := p || coalesce(g, '{}');"
        " PERFORM pg_catalog.pg_stat_clear_snapshot();"
        " SELECT pg_catalog.count(*) INTO n" FZ_APP_SESSIONS " AND (a.pid <> ALL (p)"
        " OR a.state IS DISTINCT FROM 'idle' OR a.backend_xid IS NOT NULL); EXIT WHEN n = 0;"
        " IF pg_catalog.clock_timestamp() >= d THEN RAISE EXCEPTION"
        " '%% sessions of the application roles are still there after being terminated', n;"
        " END IF; PERFORM pg_catalog.pg_sleep(0.001); END LOOP;"
        " SELECT pg_catalog.count(DISTINCT u) INTO t FROM pg_catalog.unnest(p) u;"
        " PERFORM pg_catalog.set_config('godwit.terminated', t::pg_catalog.text, true);"
        " PERFORM pg_catalog.pg_logical_emit_message(true, 'godwit', 'final position');"
        " END $godwit$;"
        " SELECT l.lsn, l.terminated%s FROM (SELECT"
        " pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text AS lsn,"
        " pg_catalog.current_setting('godwit.terminated') AS terminated) l%s",
        nologin, roles, dbs, drain, FZ_GONE_MS, sequences ? ", q.*" : "",
        sequences ? " LEFT JOIN (" FZ_SEQUENCES_SQL ") q ON true ORDER BY q.schema, q.name" : "");
    free(nologin);
    return sql;
}

/* The stop's bound on the server: the drain, the terminations, a margin. */
static uint64_t fz_stop_timeout_ms(const fz_step_t *s)
{
    uint64_t drain = s->req->drain_timeout_ms ? s->req->drain_timeout_ms : FZ_DEFAULT_DRAIN_MS;
    return drain + FZ_GONE_MS + FREEZE_STATEMENT_TIMEOUT_MS;
}

static void fz_group_join(fz_step_t *s);

static void fz_stop(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (s->req->n_group_databases > 1) {
        fz_group_join(s);
        return;
    }
    char *roles = pgconn_escape_literal(s->run.conn[0], s->roles_array);
    if (!roles) {
        steprun_failf(&s->run, "cannot quote the application roles");
        return;
    }
    char *sql = fz_stop_sql(s, roles, "ARRAY[pg_catalog.current_database()]", true);
    free(roles);
    fz_query_simple(s, "refusing the roles' logins, ending their sessions, reading the sequences", sql,
                    fz_stop_timeout_ms(s), fz_on_stopped);
    free(sql);
}

/* ---- a cutover group's stop --------------------------------------------- */

/* The members of a cutover group whose databases are on this server send
 * their FREEZEs together (group_databases: the same list in each). Each
 * member's step renames its own armed file to its fence file, then waits
 * at the group's stop: once every member's database has arrived there,
 * the last to arrive (the leader) runs one message on its connection that
 * refuses the logins of all their roles, drains and terminates their
 * sessions in all their databases, and takes the final position with one
 * flushed commit: the insert position is the server's, and every member's
 * walsender carries its stream past it once that commit is flushed. Then
 * each member reads its own sequences (and, later, its final check's
 * rows) on its own connection. So a group of 50 databases on one server
 * makes one fence and one flushed commit, not 50 of each racing for the
 * same roles; if a member does not arrive within the drain timeout and
 * the connect timeout (one whose kept connection was gone connects first),
 * every waiting member fails with nothing changed (their fence files go
 * back to armed). Owned by the freezer; each waiting step points at it and
 * leaves it when it ends (its stop hook). */
struct fz_gstop {
    freezer_t *f;
    char *key;               /* the group's databases, as a text[] literal */
    size_t expected;         /* how many: n_group_databases */
    fz_step_t **members;     /* arrived, waiting for the stop's outcome */
    size_t n_members;
    fz_step_t *leader;       /* running the stop (its message in flight), or NULL */
    char *error;             /* the stop failed: every member fails with this */
    char sqlstate[6];        /* the failure's */
    bool failing;            /* the timer fails the members (error set) */
    uv_timer_t timer;        /* the bound on the arrivals, then the deferred failure */
    fz_gstop_t *next;
};

static void fz_gstop_closed(uv_handle_t *h)
{
    fz_gstop_t *g = h->data;
    free(g->key);
    free(g->members);
    free(g->error);
    free(g);
}

/* Unlinks g from its freezer and frees it (its members must be gone). */
static void fz_gstop_free(fz_gstop_t *g)
{
    for (fz_gstop_t **pp = &g->f->gstops; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&g->timer, fz_gstop_closed);
}

/* Every member fails with g's error; g goes. */
static void fz_gstop_fail_all(fz_gstop_t *g)
{
    size_t n = g->n_members;
    fz_step_t **members = g->members;
    g->members = NULL;
    g->n_members = 0;
    g->leader = NULL;
    for (size_t i = 0; i < n; i++) {
        fz_step_t *m = members[i];
        m->gstop = NULL;
        if (strcmp(g->sqlstate, FZ_ROLES_CHANGED) == 0)
            fz_undo_fence(m);
        steprun_failf(&m->run, "%s", g->error);
    }
    free(members);
    fz_gstop_free(g);
}

static void fz_gstop_on_timer(uv_timer_t *t)
{
    fz_gstop_t *g = t->data;
    if (!g->failing) { /* the arrivals' bound */
        g->error = xasprintf("the cutover group's freeze on this server: %zu of its %zu "
                             "databases arrived in time (%s); nothing was changed",
                             g->n_members, g->expected, g->key);
        strcpy(g->sqlstate, FZ_ROLES_CHANGED); /* no role changed: undo the renames */
    }
    fz_gstop_fail_all(g);
}

/* Fails the members from the loop (not from inside a step's end). */
static void fz_gstop_fail_soon(fz_gstop_t *g, const char *error, const char *sqlstate)
{
    if (g->failing)
        return;
    g->failing = true;
    g->leader = NULL;
    g->error = xstrdup(error);
    snprintf(g->sqlstate, sizeof g->sqlstate, "%s", sqlstate ? sqlstate : "");
    uv_timer_start(&g->timer, fz_gstop_on_timer, 0, 0);
}

/* s ends while at the stop (its stop hook): it leaves; a leader whose
 * message was in flight takes the stop's outcome with it, so the others
 * fail. */
static void fz_gstop_leave(fz_step_t *s)
{
    fz_gstop_t *g = s->gstop;
    if (!g)
        return;
    s->gstop = NULL;
    for (size_t i = 0; i < g->n_members; i++) {
        if (g->members[i] == s) {
            g->members[i] = g->members[--g->n_members];
            break;
        }
    }
    if (g->leader == s)
        fz_gstop_fail_soon(g, "the cutover group's freeze on this server ended before it "
                           "answered", NULL);
    else if (g->n_members == 0 && !g->failing)
        fz_gstop_free(g);
}

static void fz_on_group_sequences(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    fz_take_sequences(s, r->res);
    fz_timed(s, "read sequences");
    fz_next(s);
}

/* A member once the group's stop is done: its own sequences. */
static void fz_group_sequences(fz_step_t *s)
{
    fz_query(s, "reading the sequences", FZ_SEQUENCES_SQL " ORDER BY 1, 2", 0, NULL,
             fz_on_group_sequences);
}

static void fz_on_group_stopped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *leader = arg;
    fz_gstop_t *g = leader->gstop;
    uint64_t lsn = 0;
    if (!r->ok) {
        char *m = pgconn_result_message("refusing the group's logins, ending their sessions", r);
        fz_gstop_fail_soon(g, m, r->sqlstate);
        free(m);
        return;
    }
    if (PQntuples(r->res) < 1 || !lsn_parse(pgconn_col_str(r->res, 0, "lsn"), &lsn)) {
        fz_gstop_fail_soon(g, "the cutover group's freeze read no final position", NULL);
        return;
    }
    uint32_t terminated = (uint32_t)pgconn_col_u64(r->res, 0, "terminated");
    size_t n = g->n_members;
    fz_step_t **members = g->members;
    g->members = NULL;
    g->n_members = 0;
    g->leader = NULL;
    fz_gstop_free(g);
    for (size_t i = 0; i < n; i++) {
        fz_step_t *m = members[i];
        m->gstop = NULL;
        m->result->final_lsn = lsn;
        /* The sessions ended are counted once, by the member that ran it. */
        m->result->terminated = m == leader ? terminated : 0;
        fz_timed(m, m == leader ? "refuse the group's logins, drain, terminate"
                                : "the group's fence (another member's message)");
        fz_group_sequences(m);
    }
    free(members);
}

/* The last member to arrive runs the stop for all (see struct fz_gstop). */
static void fz_group_run(fz_gstop_t *g, fz_step_t *leader)
{
    uv_timer_stop(&g->timer);
    g->leader = leader;
    /* The roles of every member, each once. */
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < g->n_members; i++)
        cap += g->members[i]->req->n_app_roles;
    char **roles = xcalloc(cap + 1, sizeof *roles);
    for (size_t i = 0; i < g->n_members; i++) {
        const Godwit__FreezeSource *q = g->members[i]->req;
        for (size_t j = 0; j < q->n_app_roles; j++) {
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++)
                seen = strcmp(roles[k], q->app_roles[j]) == 0;
            if (!seen)
                roles[n++] = q->app_roles[j];
        }
    }
    char *array = pgconn_text_array(roles, n);
    free(roles);
    pgconn_t *c = leader->run.conn[0];
    char *roles_lit = pgconn_escape_literal(c, array);
    char *dbs_lit = pgconn_escape_literal(c, g->key);
    free(array);
    if (!roles_lit || !dbs_lit) {
        free(roles_lit);
        free(dbs_lit);
        fz_gstop_fail_soon(g, "cannot quote the group's roles or databases", NULL);
        return;
    }
    char *dbs = xasprintf("%s::pg_catalog.name[]", dbs_lit);
    char *sql = fz_stop_sql(leader, roles_lit, dbs, false);
    free(roles_lit);
    free(dbs_lit);
    free(dbs);
    /* A send that fails ends the leader: its stop hook fails the others. */
    fz_query_simple(leader, "refusing the group's logins, ending their sessions", sql,
                    fz_stop_timeout_ms(leader), fz_on_group_stopped);
    free(sql);
}

/* A member at the stop: joins its group's (made by the first to come);
 * the last to come runs it. */
static void fz_group_join(fz_step_t *s)
{
    freezer_t *f = s->f;
    if (!s->from_armed) {
        /* Its fence file holds the roles as read now, after a sibling may
         * have taken their LOGIN (freezer_run refuses this already for a
         * member whose armed file is gone). */
        steprun_failf(&s->run, "a member of a cutover group freezes only from its armed file");
        return;
    }
    fz_gstop_t *g = f->gstops;
    while (g && (g->failing || strcmp(g->key, s->group_array) != 0))
        g = g->next;
    if (!g) {
        g = xcalloc(1, sizeof *g);
        g->f = f;
        g->key = xstrdup(s->group_array);
        g->expected = s->req->n_group_databases;
        g->members = xcalloc(g->expected, sizeof *g->members);
        uv_timer_init(f->loop, &g->timer);
        g->timer.data = g;
        g->next = f->gstops;
        f->gstops = g;
        /* The members come in one burst; one whose kept connection was
         * gone connects first. */
        uint64_t bound = (s->req->drain_timeout_ms ? s->req->drain_timeout_ms
                                                   : FZ_DEFAULT_DRAIN_MS) +
                         (uint64_t)f->local.connect_timeout_ms;
        uv_timer_start(&g->timer, fz_gstop_on_timer, bound, 0);
    }
    bool mine = false;
    for (size_t i = 0; i < s->req->n_group_databases; i++)
        mine = mine || strcmp(s->req->group_databases[i], s->req->database) == 0;
    for (size_t i = 0; i < g->n_members && mine; i++)
        mine = strcmp(g->members[i]->req->database, s->req->database) != 0;
    if (!mine || g->leader || g->n_members >= g->expected) {
        steprun_failf(&s->run, "database \"%s\" is not a member still expected at the cutover "
                      "group's freeze (%s)", s->req->database, g->key);
        return;
    }
    g->members[g->n_members++] = s;
    s->gstop = g;
    free(s->run.what);
    s->run.what = xstrdup("waiting for the cutover group's other databases");
    if (g->n_members == g->expected)
        fz_group_run(g, s);
}

/* The final check's rows, one table after the other, once no write can
 * come any more (see rowcheck.h): they overlap the target's catching up. */
static void fz_check(steprun_t *run);

static void fz_on_check(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    Godwit__FreezeSourceResult *res = s->result;
    res->checked = xrealloc(res->checked, (res->n_checked + 1) * sizeof *res->checked);
    res->checked[res->n_checked++] = rowcheck_rows_new(s->req->check[s->check_next], r->res);
    s->check_next++;
    fz_check(&s->run);
}

static void fz_check(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (s->check_next >= s->req->n_check) {
        if (s->req->n_check)
            fz_timed(s, "check rows");
        fz_next(s);
        return;
    }
    free(s->run.what);
    s->run.what = xstrdup("reading the final check's rows");
    char why[256];
    if (rowcheck_send(s->run.conn[0], s->req->check[s->check_next],
                      FREEZE_STATEMENT_TIMEOUT_MS + 1000, fz_on_check, s, why, sizeof why) != 0)
        steprun_failf(&s->run, "the final check: %s", why);
}

/* Tests crash the source agent while blue is fenced: with
 * GODWIT_FAILPOINT=freeze-after-fence it dies by SIGKILL once a FREEZE has
 * done everything (fence file written, roles without LOGIN, sessions gone,
 * final LSN, sequences and rows read) and before it answers. Like a kill -9: the fence and
 * its file stay, the lease timer dies with the process. */
static void fz_failpoint(const fz_step_t *s, const char *point)
{
    if (s->f->failpoint && strcmp(s->f->failpoint, point) == 0) {
        log_error("%s: failpoint %s: killing the agent", s->run.label, point);
        raise(SIGKILL);
    }
}

static void fz_leased(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    char pos[32];
    log_info("%s: frozen (final LSN %s, %u sessions terminated), lease %" PRIu64 " ms", s->run.label,
             lsn_format(s->result->final_lsn, pos, sizeof pos), s->result->terminated,
             s->req->lease_ms ? s->req->lease_ms : FZ_DEFAULT_LEASE_MS);
    fz_failpoint(s, "freeze-after-fence");
    fz_next(s);
}

static const steprun_fn fz_freeze_stages[] = {
    fz_connect, fz_roles, fz_stop, fz_check,
    fz_leased, NULL,
};

/* UNFREEZE: every role that had LOGIN gets it back, then the file goes. */
static void fz_login(steprun_t *run);

static void fz_on_login(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    s->next++;
    fz_login(&s->run);
}

static void fz_login(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    const cJSON *roles = cJSON_GetObjectItem(s->fence, "roles");
    const cJSON *role;
    for (;;) {
        role = cJSON_GetArrayItem(roles, (int)s->next);
        if (!role || cJSON_IsTrue(cJSON_GetObjectItem(role, "login")))
            break;
        s->next++; /* it had no LOGIN before us: it keeps none */
    }
    if (!role) {
        int rc = unlink(s->path);
        if (rc != 0 && errno != ENOENT) {
            steprun_failf(&s->run, "cannot remove %s: %s", s->path, strerror(errno));
            return;
        }
        fz_lease_end(s->f, s->req->database);
        fz_timed(s, "restore logins");
        log_info("%s: unfrozen", s->run.label);
        fz_next(s);
        return;
    }
    fz_alter_role(s, cJSON_GetStringValue(cJSON_GetObjectItem(role, "name")), true, fz_on_login);
}

static const steprun_fn fz_unfreeze_stages[] = { fz_connect, fz_login, NULL };

/* KEEP: frozen for good, the fence file says so on disk (written and
 * synced) before the lease ends. false: the step failed. */
static bool fz_keep_write(fz_step_t *s)
{
    cJSON_ReplaceItemInObject(s->fence, "permanent", cJSON_CreateTrue());
    int rc = fencefile_write(s->path, s->fence);
    if (rc != 0) {
        steprun_failf(&s->run, "cannot write %s: %s", s->path, strerror(-rc));
        return false;
    }
    fz_lease_end(s->f, s->req->database);
    fz_timed(s, "keep");
    return true;
}

static void fz_keep(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    if (fz_keep_write(s))
        fz_next(s);
}

/* KEEP with the final check's rows (the cutover sends them with KEEP, so
 * that they are read while the target waits for the final LSN), on the
 * kept connection, still there from the FREEZE: the first table's read
 * goes to the server before the fence file is written, so that the server
 * reads while the disk syncs (the file's two syncs took 1 to 4 ms of this
 * step, on its longest path, inside the write pause); the reads' chain
 * ends the stage (fz_check). */
static void fz_keep_check(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    fz_check(run);
    if (!s->run.disposed)
        fz_keep_write(s);
}

static const steprun_fn fz_keep_stages[] = { fz_keep, NULL };
static const steprun_fn fz_keep_check_stages[] = { fz_connect, fz_keep_check, NULL };

/* PREPARE's warm-up: one message that runs, without changing anything,
 * what the write pause's steps will run on this connection, so that the
 * backend has loaded PL/pgSQL and the catalog entries (roles, activity,
 * subscriptions, every sequence) before the pause rather than inside it:
 * on a fresh backend under load the first of each cost 5 to 20 ms there.
 * On a standby (the physical path's target, whose promote uses this
 * connection) the WAL position is its replay position: the write
 * position's function refuses to run during recovery. */
static void fz_on_warm(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    fz_step_t *s = arg;
    if (!fz_ok(s, r))
        return;
    fz_timed(s, "warm up");
    fz_next(s);
}

static void fz_warm(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    fz_query_simple(
        s, "warming the kept connection up",
        "SELECT r.rolname, r.rolcanlogin, r.rolsuper FROM pg_catalog.pg_roles r"
        " WHERE r.rolname = current_user;"
        " DO $godwit$ DECLARE n pg_catalog.int8; l pg_catalog.pg_lsn; BEGIN"
        " PERFORM pg_catalog.pg_stat_clear_snapshot();"
        " SELECT pg_catalog.count(*) INTO n FROM pg_catalog.pg_stat_activity a"
        " WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()"
        " AND a.xact_start IS NOT NULL;"
        " SELECT s.received_lsn INTO l FROM pg_catalog.pg_stat_subscription s LIMIT 1;"
        " PERFORM pg_catalog.pg_sleep(0); END $godwit$;"
        " SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN"
        " pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END,"
        " q.* FROM (" FZ_SEQUENCES_SQL ") q",
        FREEZE_STATEMENT_TIMEOUT_MS + 1000, fz_on_warm);
}

/* PREPARE: connect, warm up, arm if asked, and read the final check's rows
 * once (the server loads the tables' catalog entries); the connection is
 * then kept (fz_finish). */
static const steprun_fn fz_prepare_stages[] = { fz_connect, fz_warm, fz_arm, fz_check, NULL };
static const steprun_fn fz_none_stages[] = { NULL };

/* The runtime's stop hook: a member waiting at its group's stop leaves it. */
static void fz_stop_hook(steprun_t *run)
{
    fz_gstop_leave((fz_step_t *)run);
}

/* The fence file cannot be read: never guess what the roles had. */
static void fz_unreadable(steprun_t *run)
{
    fz_step_t *s = (fz_step_t *)run;
    steprun_failf(&s->run, "%s", s->run.what);
}

static const steprun_fn fz_unreadable_stages[] = { fz_unreadable, NULL };

/* ---- the freezer -------------------------------------------------------- */

pgconn_t *freezer_conn_new(uv_loop_t *loop, const step_local_t *local, const char *database)
{
    char options[256];
    snprintf(options, sizeof options, "-c statement_timeout=%d -c search_path=%s",
             FREEZE_STATEMENT_TIMEOUT_MS, ROWCHECK_PRINT_OPTIONS);
    return pgstep_local_conn(loop, "agent freeze", local, database, "godwit-agent", options);
}

step_t *freezer_run(freezer_t *f, const Godwit__FreezeSource *req, step_done_cb done, void *arg)
{
    if (!f || !req || !req->database || !req->database[0] || !done)
        return NULL;
    if (req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE)
        return NULL;
    if (req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE && req->n_app_roles == 0)
        return NULL;
    fz_step_t *s = xcalloc(1, sizeof *s);
    s->f = f;
    s->req = wire_copy(req);
    /* Only the steps that connect take the kept connection (an UNFREEZE
     * with no fence to lift must not take it from SetSequences). */
    bool connects = req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE ||
                    req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE ||
                    ((req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE ||
                      (req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP && req->n_check)) &&
                     freezer_fenced(f, req->database));
    s->run.conn[0] = connects ? freezer_conn_take(f, req->database)
                              : freezer_conn_new(f->loop, &f->local, req->database);
    if (!s->req || !s->run.conn[0]) {
        if (s->req)
            godwit__freeze_source__free_unpacked(s->req, NULL);
        pgconn_destroy(&s->run.conn[0]);
        free(s);
        return NULL;
    }
    s->path = fencefile_path(f->state_dir, req->database);
    s->armed_path = fencefile_armed_path(f->state_dir, req->database);
    s->roles_array = pgconn_text_array(req->app_roles, req->n_app_roles);
    s->group_array = pgconn_text_array(req->group_databases, req->n_group_databases);
    s->result = xmalloc(sizeof *s->result);
    godwit__freeze_source_result__init(s->result);
    s->stage_started_mono = units_mono_us();
    char why[512];
    s->fence = fencefile_read(s->path, why, sizeof why);
    switch (req->mode) {
    case GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE:
        s->run.stages = fz_freeze_stages;
        if (!s->fence && !why[0]) {
            s->fence = fencefile_read(s->armed_path, why, sizeof why);
            s->from_armed = s->fence != NULL;
            /* The armed file is this step's now: its lease must not run
             * out and remove it under the step. */
            if (s->from_armed)
                fz_lease_set(f, req->database,
                             req->lease_ms ? req->lease_ms : FZ_DEFAULT_LEASE_MS);
            /* A group's member without its armed file (its lease ran out
             * while the group waited) would record the roles as a sibling
             * already left them (NOLOGIN), and its lift would take the
             * role's logins again after the others gave them back: it
             * fails instead, changing nothing, and the group aborts. */
            else if (req->n_group_databases > 0 && !why[0])
                snprintf(why, sizeof why, "the armed fence file %s is gone (its lease ran "
                         "out before the freeze came): a member of a cutover group freezes "
                         "only from it; run the cutover again", s->armed_path);
        }
        break;
    case GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE:
        s->run.stages = fz_prepare_stages;
        s->result->fenced = s->fence != NULL;
        break;
    case GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE:
        s->run.stages = s->fence ? fz_unfreeze_stages : fz_none_stages;
        s->result->already = !s->fence;
        if (!s->fence && !why[0]) {
            /* Armed in this run and never fenced: no role was changed. */
            if (unlink(s->armed_path) != 0 && errno != ENOENT)
                log_warn("cannot remove %s: %s", s->armed_path, strerror(errno));
            fz_lease_end(f, req->database);
        }
        break;
    default:
        s->run.stages = !s->fence ? fz_none_stages
                        : req->n_check ? fz_keep_check_stages : fz_keep_stages;
        s->result->already = !s->fence;
        break;
    }
    if (why[0] && req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE) {
        s->run.stages = fz_unreadable_stages;
        s->run.what = xstrdup(why);
    }
    s->run.complete = fz_complete;
    s->run.stop = fz_stop_hook;
    steprun_start(&s->run, f->loop, xasprintf("freeze of database \"%s\"", req->database),
                  done, arg, fz_release, steprun_next);
    return &s->run.base;
}

static void fz_internal_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    freezer_t *f = arg;
    f->internal = NULL;
    if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    if (error) {
        log_error("lease expired but the fence could not be lifted: %s", error);
        f->event(true, "freeze.lease_unfreeze_failed", error, "", f->event_arg);
    } else {
        f->event(false, "freeze.lease_expired",
                 "the freeze's lease ran out without word from the coordinator: the source "
                 "is writable again", "", f->event_arg);
    }
}

static void fz_lease_expired(uv_timer_t *t)
{
    lease_t *l = t->data;
    freezer_t *f = l->f;
    if (!freezer_fenced(f, l->database)) {
        /* Armed only (no FREEZE came): no role was changed. */
        char *armed = fencefile_armed_path(f->state_dir, l->database);
        if (unlink(armed) != 0 && errno != ENOENT)
            log_warn("cannot remove %s: %s", armed, strerror(errno));
        else
            log_info("database \"%s\": armed for a fence that did not come; disarmed",
                     l->database);
        free(armed);
        fz_lease_end(f, l->database);
        return;
    }
    log_warn("freeze of database \"%s\": lease expired; lifting the fence", l->database);
    Godwit__FreezeSource req = GODWIT__FREEZE_SOURCE__INIT;
    req.database = l->database;
    req.mode = GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE;
    if (f->internal) {
        /* one at a time: try again in a second */
        uv_timer_start(&l->timer, fz_lease_expired, 1000, 0);
        return;
    }
    f->internal = freezer_run(f, &req, fz_internal_done, f);
}

/* Armed files an earlier run left: one whose fence file is there is stale;
 * any other becomes the fence file, since a crash of the machine may have
 * lost the rename of a FREEZE that did fence the roles (fencefile.h). */
static void fz_armed_at_start(const char *state_dir)
{
    DIR *d = opendir(state_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "armed-", 6) != 0 || strstr(e->d_name, ".tmp"))
            continue;
        char *path = xasprintf("%s/%s", state_dir, e->d_name);
        char why[512];
        cJSON *j = fencefile_read(path, why, sizeof why);
        const char *db = cJSON_GetStringValue(cJSON_GetObjectItem(j, "database"));
        char *fence = db ? fencefile_path(state_dir, db) : NULL;
        if (fence && access(fence, F_OK) == 0) {
            if (unlink(path) != 0)
                log_warn("cannot remove %s: %s", path, strerror(errno));
        } else if (fence) {
            log_warn("database \"%s\" was armed for a fence by an earlier run: taken as fenced",
                     db);
            int rc = rename(path, fence) == 0 ? fsutil_sync_path(fence) : -errno;
            if (rc != 0)
                log_error("cannot make %s the fence file %s: %s", path, fence, strerror(-rc));
        } else {
            log_error("%s: %s", path, why[0] ? why : "no database named in it");
        }
        free(fence);
        cJSON_Delete(j);
        free(path);
    }
    if (d)
        closedir(d);
}

freezer_t *freezer_new(uv_loop_t *loop, const step_local_t *local, const char *state_dir,
                       freezer_event_cb event, void *arg)
{
    freezer_t *f = xcalloc(1, sizeof *f);
    f->loop = loop;
    f->local = *local;
    f->state_dir = xstrdup(state_dir);
    f->event = event;
    f->event_arg = arg;
    const char *fp = getenv("GODWIT_FAILPOINT");
    f->failpoint = fp && fp[0] ? xstrdup(fp) : NULL;
    connkeep_init(&f->kept, loop, f);
    fz_armed_at_start(state_dir);
    /* Fences of an earlier run that are not permanent get a restart lease. */
    DIR *d = opendir(state_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "freeze-", 7) != 0)
            continue;
        char *path = xasprintf("%s/%s", state_dir, e->d_name);
        char why[512];
        cJSON *j = fencefile_read(path, why, sizeof why);
        const char *db = cJSON_GetStringValue(cJSON_GetObjectItem(j, "database"));
        if (db && !cJSON_IsTrue(cJSON_GetObjectItem(j, "permanent"))) {
            log_warn("database \"%s\" was left frozen by an earlier run; lifting the fence in "
                     "%d ms unless the coordinator decides",
                     db, FREEZE_RESTART_LEASE_MS);
            fz_lease_set(f, db, FREEZE_RESTART_LEASE_MS);
        }
        cJSON_Delete(j);
        free(path);
    }
    if (d)
        closedir(d);
    return f;
}

uv_loop_t *freezer_loop(const freezer_t *f)
{
    return f->loop;
}

const step_local_t *freezer_local(const freezer_t *f)
{
    return &f->local;
}

bool freezer_fenced(const freezer_t *f, const char *database)
{
    char *path = fencefile_path(f->state_dir, database);
    bool fenced = access(path, F_OK) == 0;
    free(path);
    return fenced;
}

static void fz_freezer_closed(void *owner)
{
    freezer_t *f = owner;
    free(f->state_dir);
    free(f->failpoint);
    free(f);
}

void freezer_destroy(freezer_t **fp)
{
    freezer_t *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    step_cancel(&f->internal);
    /* The steps waiting at a stop are their owners' to cancel. */
    while (f->gstops) {
        fz_gstop_t *g = f->gstops;
        for (size_t i = 0; i < g->n_members; i++)
            g->members[i]->gstop = NULL;
        g->n_members = 0;
        fz_gstop_free(g);
    }
    while (f->leases) {
        lease_t *l = f->leases;
        f->leases = l->next;
        l->f = NULL;
        uv_close((uv_handle_t *)&l->timer, fz_lease_closed);
    }
    connkeep_close(&f->kept, fz_freezer_closed);
}
