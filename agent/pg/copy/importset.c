/*
 * importset: the ImportProfile step (importset.h). Its stages: connect;
 * for APPLY and REVERT, one ALTER SYSTEM per setting, the reload, and the
 * wait until this session has read the files again (pg_conf_load_time()
 * moves past its value before the reload: the backend re-reads them at its
 * next command after the postmaster's signal); then every setting read
 * back: the effective value, where it comes from, and what
 * postgresql.auto.conf says of it; for REVERT, the check against the
 * recorded state.
 *
 * Owns: its copy of the request, the reload's timestamp and the result
 * being built.
 */
#include "importset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "pgstep.h"
#include "steprun.h"
#include "wire.h"
#include "xalloc.h"

/* Every setting an import profile may change: each takes effect at a
 * reload (context sighup or user), none needs a restart. */
static const char *const s_allowed[] = {
    "synchronous_commit",
    "max_wal_size",
    "checkpoint_timeout",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "full_page_writes",
    NULL,
};

/* How long the session may take to see the reload, polled this often. */
#define S_RELOAD_WAIT_MS 10000
#define S_RELOAD_POLL_MS 10

bool importset_allowed(const char *name)
{
    for (size_t i = 0; name && s_allowed[i]; i++)
        if (strcmp(name, s_allowed[i]) == 0)
            return true;
    return false;
}

typedef struct {
    steprun_t run;                  /* first */
    Godwit__ImportProfile *req;     /* our copy, owned */
    uint64_t statement_timeout_ms;
    uint64_t connect_timeout_ms;
    size_t next;                    /* the next setting to ALTER */
    char *t0;                       /* pg_conf_load_time() before the reload, owned */
    unsigned polls;
    Godwit__ImportProfileResult *result;
} importset_t;

static const char *s_mode(Godwit__ImportProfile__Mode m)
{
    return m == GODWIT__IMPORT_PROFILE__MODE__MODE_APPLY    ? "apply"
           : m == GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT ? "revert"
                                                             : "read";
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    importset_t *s = arg;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect: %s", error ? error : "unknown error");
        return;
    }
    steprun_next(&s->run);
}

static void s_connect(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    int rc = pgconn_connect(run->conn[0], s->connect_timeout_ms, s_on_connect, s);
    if (rc != 0)
        steprun_failf(run, "cannot start connecting: %s", strerror(-rc));
}

/* ---- ALTER SYSTEM, one setting at a time ---------------------------------- */

static void s_alter(steprun_t *run);

static void s_on_altered(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    importset_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "target", r);
        return;
    }
    s->next++;
    s_alter(&s->run);
}

static void s_alter(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    if (s->req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_READ ||
        s->next == s->req->n_settings) {
        steprun_next(run);
        return;
    }
    const Godwit__ImportSetting *set = s->req->settings[s->next];
    bool apply = s->req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_APPLY;
    const char *value = apply ? set->value : set->in_auto_conf ? set->auto_conf_value : NULL;
    char *ident = steprun_ident(run, 0, set->name);
    if (!ident)
        return;
    char *sql;
    if (value) {
        char *lit = pgconn_escape_literal(run->conn[0], value);
        if (!lit) {
            free(ident);
            steprun_failf(run, "cannot quote the value of %s", set->name);
            return;
        }
        sql = xasprintf("ALTER SYSTEM SET %s = %s", ident, lit);
        free(lit);
    } else {
        sql = xasprintf("ALTER SYSTEM RESET %s", ident);
    }
    free(ident);
    char what[128];
    snprintf(what, sizeof what, "ALTER SYSTEM for %s", set->name);
    steprun_query_simple(run, 0, what, sql, s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                         s_on_altered);
    free(sql);
}

/* ---- the reload, and this session seeing it --------------------------------- */

static void s_poll(steprun_t *run);

static void s_on_polled(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    importset_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "target", r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1 && pgconn_col_bool(r->res, 0, "reloaded")) {
        steprun_next(&s->run);
        return;
    }
    if (++s->polls * S_RELOAD_POLL_MS >= S_RELOAD_WAIT_MS) {
        steprun_failf(&s->run, "the server did not reload its configuration within %d s",
                      S_RELOAD_WAIT_MS / 1000);
        return;
    }
    steprun_after(&s->run, S_RELOAD_POLL_MS, s_poll);
}

static void s_poll(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    const char *params[1] = { s->t0 };
    steprun_query(run, 0, "waiting for the reload",
                  "SELECT pg_catalog.pg_conf_load_time() > $1::pg_catalog.timestamptz AS reloaded",
                  1, params, s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_polled);
}

static void s_on_reload(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    importset_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "target", r);
        return;
    }
    const char *t0 = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "t0") : NULL;
    if (!t0 || !pgconn_col_bool(r->res, 0, "signalled")) {
        steprun_failf(&s->run, "the server did not signal a reload (pg_reload_conf)");
        return;
    }
    s->t0 = xstrdup(t0);
    s_poll(&s->run);
}

static void s_reload(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    if (s->req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_READ) {
        steprun_next(run);
        return;
    }
    /* The load time is read before the signal can be handled: the backend
     * re-reads the files only between commands. */
    steprun_query(run, 0, "reloading the configuration",
                  "SELECT pg_catalog.pg_conf_load_time()::pg_catalog.text AS t0,"
                  " pg_catalog.pg_reload_conf() AS signalled",
                  0, NULL, s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_reload);
}

/* ---- reading back --------------------------------------------------------- */

/* $1: the names as a text[] literal. pg_file_settings (superusers only)
 * says what postgresql.auto.conf holds, the last of its lines winning. */
static const char s_read_sql[] =
    "SELECT s.name, pg_catalog.current_setting(s.name) AS setting,"
    " coalesce(s.sourcefile, '') AS sourcefile, coalesce(s.sourceline, 0) AS sourceline,"
    " f.setting AS auto_value, f.setting IS NOT NULL AS in_auto"
    " FROM pg_catalog.pg_settings s"
    " LEFT JOIN LATERAL (SELECT fs.setting FROM pg_catalog.pg_file_settings fs"
    "  WHERE fs.name = s.name AND fs.sourcefile = pg_catalog.current_setting('data_directory')"
    "   || '/postgresql.auto.conf'"
    "  ORDER BY fs.seqno DESC LIMIT 1) f ON true"
    " WHERE s.name = ANY ($1::pg_catalog.text[]) ORDER BY s.name";

static const Godwit__ImportSetting *s_asked(const importset_t *s, const char *name)
{
    for (size_t i = 0; i < s->req->n_settings; i++)
        if (strcmp(s->req->settings[i]->name, name) == 0)
            return s->req->settings[i];
    return NULL;
}

/* For REVERT: the first setting not back to its recorded state, as a
 * message (caller frees), or NULL. */
static char *s_not_back(const importset_t *s)
{
    for (size_t i = 0; i < s->result->n_settings; i++) {
        const Godwit__ImportSetting *now = s->result->settings[i];
        const Godwit__ImportSetting *rec = s_asked(s, now->name);
        if (!rec)
            continue;
        if (now->in_auto_conf != rec->in_auto_conf ||
            (rec->in_auto_conf && strcmp(now->auto_conf_value, rec->auto_conf_value) != 0))
            return xasprintf("%s: postgresql.auto.conf has %s%s%s, recorded %s%s%s before the "
                             "import", now->name, now->in_auto_conf ? "'" : "",
                             now->in_auto_conf ? now->auto_conf_value : "no line",
                             now->in_auto_conf ? "'" : "", rec->in_auto_conf ? "'" : "",
                             rec->in_auto_conf ? rec->auto_conf_value : "no line",
                             rec->in_auto_conf ? "'" : "");
        if (strcmp(now->setting, rec->setting) != 0) {
            char from[600] = "";
            if (now->source_file[0])
                snprintf(from, sizeof from, " (from %s line %u)", now->source_file,
                         now->source_line);
            return xasprintf("%s is %s%s, recorded %s before the import: set it back there "
                             "(the coordinator keeps reverting and checking)",
                             now->name, now->setting, from, rec->setting);
        }
    }
    return NULL;
}

static void s_on_read(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    importset_t *s = arg;
    if (!r->ok) {
        steprun_fail_query(&s->run, "target", r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    if ((size_t)n != s->req->n_settings) {
        steprun_failf(&s->run, "the server knows %d of the %zu settings asked", n,
                      s->req->n_settings);
        return;
    }
    Godwit__ImportProfileResult *res = s->result;
    res->settings = xcalloc((size_t)n, sizeof *res->settings);
    for (int i = 0; i < n; i++) {
        Godwit__ImportSetting *set = xmalloc(sizeof *set);
        godwit__import_setting__init(set);
        res->settings[res->n_settings++] = set;
        const char *v;
        set->name = xstrdup((v = pgconn_col(r->res, i, "name")) ? v : "");
        set->setting = xstrdup((v = pgconn_col(r->res, i, "setting")) ? v : "");
        set->source_file = xstrdup((v = pgconn_col(r->res, i, "sourcefile")) ? v : "");
        set->source_line = (uint32_t)pgconn_col_u64(r->res, i, "sourceline");
        set->in_auto_conf = pgconn_col_bool(r->res, i, "in_auto");
        set->auto_conf_value = xstrdup((v = pgconn_col(r->res, i, "auto_value")) ? v : "");
    }
    if (s->req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT) {
        char *why = s_not_back(s);
        if (why) {
            steprun_failf(&s->run, "%s", why);
            free(why);
            return;
        }
    }
    log_info("%s: done", s->run.label);
    ProtobufCMessage *payload = &s->result->base;
    s->result = NULL;
    steprun_finish(&s->run, payload, NULL);
}

static void s_read(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    char **names = xcalloc(s->req->n_settings, sizeof *names);
    for (size_t i = 0; i < s->req->n_settings; i++)
        names[i] = s->req->settings[i]->name;
    char *array = pgconn_text_array(names, s->req->n_settings);
    free(names);
    const char *params[1] = { array };
    steprun_query(run, 0, "reading the settings back", s_read_sql, 1, params,
                  s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, s_on_read);
    free(array);
}

static const steprun_fn s_stages[] = {
    s_connect, s_alter, s_reload, s_read, NULL,
};

/* ---- lifetime ------------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    importset_t *s = (importset_t *)run;
    if (s->req)
        godwit__import_profile__free_unpacked(s->req, NULL);
    if (s->result)
        godwit__import_profile_result__free_unpacked(s->result, NULL);
    free(s->t0);
    free(s);
}

static void s_first(steprun_t *run) { steprun_next(run); }

step_t *importset_start(uv_loop_t *loop, const step_local_t *local,
                        const Godwit__ImportProfile *req, step_done_cb done, void *arg)
{
    if (!req || !req->database || !req->database[0] || !req->n_settings || !loop || !local ||
        !done)
        return NULL;
    for (size_t i = 0; i < req->n_settings; i++) {
        const Godwit__ImportSetting *set = req->settings[i];
        if (!set || !importset_allowed(set->name))
            return NULL;
        if (req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_APPLY && (!set->value || !set->value[0]))
            return NULL;
        if (req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT &&
            (!set->setting || (set->in_auto_conf && !set->auto_conf_value)))
            return NULL;
    }
    char *opts = xasprintf("-c statement_timeout=%lld -c search_path=",
                           (long long)local->statement_timeout_ms);
    pgconn_t *conn = pgstep_local_conn(loop, "agent import profile", local, req->database,
                                       "godwit-agent", opts);
    free(opts);
    if (!conn)
        return NULL;
    importset_t *s = xcalloc(1, sizeof *s);
    s->req = wire_copy(req);
    s->run.conn[0] = conn;
    s->statement_timeout_ms = (uint64_t)local->statement_timeout_ms;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    s->result = xmalloc(sizeof *s->result);
    godwit__import_profile_result__init(s->result);
    s->run.stages = s_stages;
    steprun_start(&s->run, loop,
                  xasprintf("import profile (%s, %zu settings) in database \"%s\"",
                            s_mode(req->mode), req->n_settings, req->database),
                  done, arg, s_release, s_first);
    return &s->run.base;
}
