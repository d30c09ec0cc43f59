/*
 * preflight: the read-only checks of phase 1 (see preflight.h for what is
 * checked and for the contract with the caller).
 *
 * A check is a fixed list of stages (s_source_stages, s_target_stages) run
 * one after the other by the step runtime (steprun.h, steprun_next). A stage
 * sends one statement or opens one connection; its callback turns the
 * answer into findings (or facts) and calls steprun_next() again. After the
 * last stage the result goes to done. A stage that cannot run (connection
 * refused, statement failed) ends the check with an error instead: a
 * missing answer is never read as "nothing wrong".
 *
 * SQL: every statement is parameterised and pg_catalog-qualified (the local
 * session runs with an empty search_path); table and extension names travel
 * as one JSON parameter and are compared with nspname/relname. The one
 * statement that needs a name in its text, the target's "does this table
 * hold rows", quotes it with PQescapeIdentifier. Names in findings and in fix
 * texts come quoted by the server (format('%I.%I'), quote_ident), so they
 * can be pasted into psql as they are.
 *
 * The target also reads the source's and its own roles and privileges
 * through access.h (a normal connection to the source, as the schema
 * phase and verify make) and reports what the roles step will create,
 * what it will leave as it is, and what would change owner or rights.
 *
 * What it owns: its runtime (steprun.h: the local connection and, on the
 * target, the replication connection and a normal connection to the
 * source; the timer that starts the first stage one loop turn after
 * *_start, so done never runs inside it, and whose close frees
 * everything), both sides' access catalogs, the result being built and
 * copies of what it needs from the request.
 *
 * What it must never do: change anything on a server (the local session
 * also runs with default_transaction_read_only=on), call done more than once
 * or after preflight_cancel, or block the loop (the one exception is the
 * statvfs of the data directory, as the agent's disk report does).
 */
#include "preflight.h"
#include "access.h"
#include "steprun.h"
#include "diskstats.h"
#include "log.h"
#include "pgconn.h"
#include "units.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_SERVER_VERSION 130000
#define S_COPY_WORKERS 2                /* max_sync_workers_per_subscription's default */
#define S_MIN_WAL_SENDER_TIMEOUT_MS 60000

#define SEV_INFO GODWIT__SEVERITY__SEVERITY_INFO
#define SEV_WARNING GODWIT__SEVERITY__SEVERITY_WARNING
#define SEV_ERROR GODWIT__SEVERITY__SEVERITY_ERROR

/* The runtime's connections. */
enum { P_LOCAL = 0, P_REPL = 1, P_SRC = 2 };

/* A table of the source that exists on the target. */
typedef struct {
    char *schema, *name; /* as stored, unquoted */
    char *qname;         /* format('%I.%I'), for messages */
} s_table_t;

typedef struct preflight preflight_t;

struct preflight {
    /* first: conn[P_LOCAL] the local database; target only: conn[P_REPL]
     * the replication connection to the source, conn[P_SRC] a normal one
     * to the source (its roles); stages, label, what */
    steprun_t run;
    step_done_cb done;        /* the caller's (run.done is s_done) */
    void *arg;

    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;

    Godwit__PreflightResult *result;
    size_t findings_cap;

    char *database;
    char *tables_json;        /* [{"schema":..,"name":..}], NULL for every table (source) */

    /* source */
    bool file_settings_readable;

    /* target */
    uint32_t src_version_num;
    char *src_version;
    uint64_t src_size;
    double disk_margin;
    bool reverse;               /* target: the source follows it after the cutover */
    char *data_directory;
    char *extensions_json;    /* ["name", ...] or NULL if none */
    char *repl_user, *repl_db, *repl_passfile, *repl_where;
    char *repl_user_q, *repl_db_q; /* quoted by the target server */
    s_table_t *existing;      /* source tables found on the target */
    size_t n_existing, next_existing;
    char *app_roles;          /* text[] literal of the plan's application roles */
    bool passwords;           /* the plan copies password hashes */
    cJSON *access[2];         /* the source's and the target's roles and privileges */
};

/* ---- findings ----------------------------------------------------------- */

/* Adds a finding; takes message and fix (malloc'd), copies the rest. */
static void s_add(preflight_t *p, Godwit__Severity sev, const char *code, const char *object,
                  char *message, char *fix)
{
    Godwit__PreflightResult *r = p->result;
    if (r->n_findings == p->findings_cap) {
        p->findings_cap = p->findings_cap ? 2 * p->findings_cap : 16;
        r->findings = xrealloc(r->findings, p->findings_cap * sizeof *r->findings);
    }
    Godwit__Finding *f = xmalloc(sizeof *f);
    godwit__finding__init(f);
    f->severity = sev;
    f->code = xstrdup(code);
    f->object = xstrdup(object);
    f->message = message;
    f->fix = fix;
    r->findings[r->n_findings++] = f;
}

/* ---- reading results ---------------------------------------------------- */

/* A GUC value as written in a config file or pg_db_role_setting ("0",
 * "30s", "1.5min"): true unless its number is zero (0 disables a timeout). */
static bool s_timeout_set(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    return end == v || d != 0.0;
}

/* ---- finishing ---------------------------------------------------------- */

static void s_free_existing(preflight_t *p)
{
    for (size_t i = 0; i < p->n_existing; i++) {
        free(p->existing[i].schema);
        free(p->existing[i].name);
        free(p->existing[i].qname);
    }
    free(p->existing);
    p->existing = NULL;
    p->n_existing = p->next_existing = 0;
}

static void s_release(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (p->result)
        godwit__preflight_result__free_unpacked(p->result, NULL);
    s_free_existing(p);
    free(p->database);
    free(p->tables_json);
    free(p->src_version);
    free(p->data_directory);
    free(p->extensions_json);
    free(p->repl_user);
    free(p->repl_db);
    free(p->repl_passfile);
    free(p->repl_where);
    free(p->repl_user_q);
    free(p->repl_db_q);
    free(p->app_roles);
    cJSON_Delete(p->access[0]);
    cJSON_Delete(p->access[1]);
    free(p);
}

/* run.done: the caller's callback (its errors carry no label:
 * run.plain_errors). p is still allocated here (it goes in the timer's
 * close callback) and is not touched after done. */
static void s_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    preflight_t *p = arg;
    p->done(payload, error, p->arg);
}

/* Ends the check: the result on success (error NULL), else the error. */
static void s_finish(preflight_t *p, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        log_debug("preflight on database %s: done, %zu findings", p->database,
                  p->result->n_findings);
        payload = &p->result->base;
        p->result = NULL;
    }
    steprun_finish(&p->run, payload, error);
}

/* After the last stage. */
static void s_complete(steprun_t *run)
{
    s_finish((preflight_t *)run, NULL);
}

/* Sends one statement on run.conn[i]; cb gets p. */
static void s_query_on(preflight_t *p, int i, const char *what, const char *sql, int nparams,
                       const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&p->run, i, what, sql, nparams, params,
                  (uint64_t)p->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

/* Sends one statement on the local connection; cb gets p. */
static void s_query(preflight_t *p, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    s_query_on(p, P_LOCAL, what, sql, nparams, params, cb);
}

/* ---- connecting to the local database (both sides) ---------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    preflight_t *p = arg;
    if (!ok) {
        steprun_failf(&p->run, "cannot connect to database %s: %s", p->database,
                      error ? error : "unknown error");
        return;
    }
    int version = pgconn_server_version(c);
    if (version < S_MIN_SERVER_VERSION) {
        /* The catalog queries below need 13; nothing else can be checked. */
        s_add(p, SEV_ERROR, "server_version_unsupported", "server_version",
              xasprintf("the server runs PostgreSQL version number %d; godwit needs 13 or later "
                        "on both sides",
                        version),
              xstrdup("Upgrade this server to PostgreSQL 13 or later before migrating."));
        s_finish(p, NULL);
        return;
    }
    steprun_next(&p->run);
}

static void s_connect(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    int rc = pgconn_connect(p->run.conn[P_LOCAL], (uint64_t)p->connect_timeout_ms, s_on_connect,
                            p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start connecting: %s", strerror(-rc));
}

/* ---- source: settings and counts ---------------------------------------- */

/* A user relation: not in a system schema, not temporary, not an extension's. */
#define S_USER_REL(c, n)                                                                       \
    " " n ".nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"                   \
    " AND " c ".relpersistence <> 't'"                                                         \
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep"                                  \
    "   WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"                        \
    "   AND dep.objid = " c ".oid"                                                             \
    "   AND dep.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass"                   \
    "   AND dep.deptype = 'e')"

static const char s_src_settings_sql[] =
    "SELECT pg_catalog.current_setting('server_version_num') AS server_version_num,"
    " pg_catalog.current_setting('server_version') AS server_version,"
    " pg_catalog.pg_database_size(pg_catalog.current_database()) AS database_size,"
    " pg_catalog.quote_ident(pg_catalog.current_database()) AS database_q,"
    " pg_catalog.current_setting('wal_level') AS wal_level,"
    " pg_catalog.current_setting('max_replication_slots') AS max_replication_slots,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots) AS replication_slots,"
    " pg_catalog.current_setting('max_wal_senders') AS max_wal_senders,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication) AS wal_senders,"
    /* pg_settings.setting is in the GUC's unit: MB and ms */
    " (SELECT s.setting FROM pg_catalog.pg_settings s"
    "   WHERE s.name = 'max_slot_wal_keep_size') AS max_slot_wal_keep_size_mb,"
    " (SELECT s.setting FROM pg_catalog.pg_settings s"
    "   WHERE s.name = 'wal_sender_timeout') AS wal_sender_timeout_ms,"
    " pg_catalog.current_setting('wal_sender_timeout') AS wal_sender_timeout,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata) AS large_objects,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE c.relkind = 'S' AND" S_USER_REL("c", "n") ") AS sequences,"
    /* Only superusers (by default) may read the configuration files. */
    " pg_catalog.has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')"
    "  AND pg_catalog.has_function_privilege('pg_catalog.pg_show_all_file_settings()',"
    "  'EXECUTE') AS file_settings_readable";

static void s_src_check_slots(preflight_t *p, const PGresult *res)
{
    int64_t max_slots = pgconn_col_i64(res, 0, "max_replication_slots", 0);
    int64_t slots = pgconn_col_i64(res, 0, "replication_slots", 0);
    int64_t free_slots = max_slots - slots;
    if (free_slots < 1)
        s_add(p, SEV_ERROR, "no_free_replication_slot", "max_replication_slots",
              xasprintf("max_replication_slots is %" PRId64 " and %" PRId64
                        " replication slot(s) exist: no slot is free for the migration's "
                        "subscription, so logical replication cannot start",
                        max_slots, slots),
              xasprintf("Drop slots no longer used (SELECT pg_catalog.pg_drop_replication_slot("
                        "slot_name) for inactive ones in pg_replication_slots), or raise the "
                        "limit: ALTER SYSTEM SET max_replication_slots = %" PRId64
                        "; then restart PostgreSQL.",
                        slots + 1 + S_COPY_WORKERS));
    else if (free_slots < 1 + S_COPY_WORKERS)
        s_add(p, SEV_WARNING, "few_free_replication_slots", "max_replication_slots",
              xasprintf("max_replication_slots is %" PRId64 " and %" PRId64
                        " replication slot(s) exist: %" PRId64
                        " free, but besides the subscription's slot each table-copy worker "
                        "(max_sync_workers_per_subscription on the target, %d by default) "
                        "needs one while it copies; the initial copy would run slower or "
                        "stall",
                        max_slots, slots, free_slots, S_COPY_WORKERS),
              xasprintf("ALTER SYSTEM SET max_replication_slots = %" PRId64
                        "; then restart PostgreSQL, or drop slots no longer used.",
                        slots + 1 + S_COPY_WORKERS));

    int64_t max_senders = pgconn_col_i64(res, 0, "max_wal_senders", 0);
    int64_t senders = pgconn_col_i64(res, 0, "wal_senders", 0);
    int64_t free_senders = max_senders - senders;
    if (free_senders < 1)
        s_add(p, SEV_ERROR, "no_free_wal_sender", "max_wal_senders",
              xasprintf("max_wal_senders is %" PRId64 " and %" PRId64
                        " WAL senders are running (pg_stat_replication): the migration's "
                        "subscription could not connect to stream changes",
                        max_senders, senders),
              xasprintf("ALTER SYSTEM SET max_wal_senders = %" PRId64
                        "; then restart PostgreSQL (physical standbys need at least the same "
                        "value).",
                        senders + 1 + S_COPY_WORKERS));
    else if (free_senders < 1 + S_COPY_WORKERS)
        s_add(p, SEV_WARNING, "few_free_wal_senders", "max_wal_senders",
              xasprintf("max_wal_senders is %" PRId64 " and %" PRId64
                        " WAL senders are running: %" PRId64
                        " free, but besides the subscription each table-copy worker "
                        "(%d by default) needs one while it copies; the initial copy would "
                        "run slower or stall",
                        max_senders, senders, free_senders, S_COPY_WORKERS),
              xasprintf("ALTER SYSTEM SET max_wal_senders = %" PRId64
                        "; then restart PostgreSQL (physical standbys need at least the same "
                        "value).",
                        senders + 1 + S_COPY_WORKERS));
}

static void s_src_check_settings(preflight_t *p, const PGresult *res)
{
    const char *wal_level = pgconn_col_str(res, 0, "wal_level");
    if (strcmp(wal_level, "logical") != 0)
        s_add(p, SEV_ERROR, "wal_level", "wal_level",
              xasprintf("wal_level is %s: logical replication needs wal_level = logical to "
                        "decode changes from the WAL; no logical replication slot can be "
                        "created without it",
                        wal_level),
              xstrdup("ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (the "
                      "setting only takes effect at server start)."));

    s_src_check_slots(p, res);

    if (pgconn_col_i64(res, 0, "max_slot_wal_keep_size_mb", 0) < 0)
        s_add(p, SEV_WARNING, "max_slot_wal_keep_size", "max_slot_wal_keep_size",
              xstrdup("max_slot_wal_keep_size is -1 (unlimited): if the target falls behind "
                      "or stops, the migration's replication slot keeps WAL on the source "
                      "without limit until its disk fills and the server stops"),
              xstrdup("ALTER SYSTEM SET max_slot_wal_keep_size = '<what the WAL disk can "
                      "spare, e.g. 100GB>'; SELECT pg_catalog.pg_reload_conf(); (godwit also "
                      "watches the slot's retained WAL, but a limit protects the source on "
                      "its own)."));

    int64_t wst = pgconn_col_i64(res, 0, "wal_sender_timeout_ms", 0);
    if (wst > 0 && wst < S_MIN_WAL_SENDER_TIMEOUT_MS)
        s_add(p, SEV_WARNING, "wal_sender_timeout", "wal_sender_timeout",
              xasprintf("wal_sender_timeout is %s: a WAL sender whose receiver has not "
                        "answered for that long is cut off; over a WAN link or with a busy "
                        "target that restarts the stream, or a table copy, again and again",
                        pgconn_col_str(res, 0, "wal_sender_timeout")),
              xstrdup("ALTER SYSTEM SET wal_sender_timeout = '5min'; SELECT "
                      "pg_catalog.pg_reload_conf();"));

    const char *db_q = pgconn_col_str(res, 0, "database_q");
    int64_t los = pgconn_col_i64(res, 0, "large_objects", 0);
    if (los > 0)
        s_add(p, SEV_WARNING, "large_objects", db_q,
              xasprintf("database %s holds %" PRId64
                        " large object(s) (pg_largeobject): logical replication does not "
                        "carry large objects, so they will be missing on the target",
                        db_q, los),
              xstrdup("Copy them yourself at cutover (lo_export/lo_import, or pg_dump "
                      "--blobs of this database), or move the data into bytea columns "
                      "before migrating."));

    int64_t seqs = pgconn_col_i64(res, 0, "sequences", 0);
    if (seqs > 0)
        s_add(p, SEV_WARNING, "sequences", db_q,
              xasprintf("database %s has %" PRId64
                        " sequence(s): logical replication does not carry sequence values; "
                        "godwit sets them on the target at cutover",
                        db_q, seqs),
              xstrdup("Nothing to change; do not draw values from the target's sequences "
                      "before cutover."));
}

static void s_on_src_settings(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&p->run, "reading the source's settings: no row returned");
        return;
    }
    Godwit__SourceFacts *f = p->result->facts;
    int64_t num = pgconn_col_i64(r->res, 0, "server_version_num", 0);
    f->server_version_num = num > 0 && num <= UINT32_MAX ? (uint32_t)num : 0;
    f->server_version = xstrdup(pgconn_col_str(r->res, 0, "server_version"));
    int64_t size = pgconn_col_i64(r->res, 0, "database_size", 0);
    f->database_size = size > 0 ? (uint64_t)size : 0;
    p->file_settings_readable = pgconn_col_bool(r->res, 0, "file_settings_readable");
    s_src_check_settings(p, r->res);
    steprun_next(&p->run);
}

static void s_src_settings(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    s_query(p, "reading the source's settings", s_src_settings_sql, 0, NULL, s_on_src_settings);
}

/* ---- source: timeouts that would end a long copy ------------------------ */

/* Settings for this database and for the roles that may run the copy (the
 * connecting role, replication roles, superusers). Columns: place (where the
 * value is set, for the message), name, setting, fix. */
#define S_TIMEOUT_NAMES "('statement_timeout', 'idle_in_transaction_session_timeout')"
#define S_ROLE_TIMEOUTS                                                                        \
    "SELECT CASE WHEN s.setrole = 0 THEN pg_catalog.format('for database %I', d.datname)"      \
    "  WHEN s.setdatabase = 0 THEN pg_catalog.format('for role %I', r.rolname)"                \
    "  ELSE pg_catalog.format('for role %I in database %I', r.rolname, d.datname) END"         \
    "  AS place,"                                                                              \
    " cfg.name, cfg.setting,"                                                                  \
    " CASE WHEN s.setrole = 0"                                                                 \
    "  THEN pg_catalog.format('ALTER DATABASE %I RESET %s;', d.datname, cfg.name)"             \
    "  WHEN s.setdatabase = 0 THEN pg_catalog.format('ALTER ROLE %I RESET %s;', r.rolname,"    \
    "   cfg.name)"                                                                             \
    "  ELSE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET %s;', r.rolname, d.datname," \
    "   cfg.name) END AS fix, s.setrole <> 0 AS per_role"                                      \
    " FROM pg_catalog.pg_db_role_setting s"                                                    \
    " CROSS JOIN LATERAL (SELECT pg_catalog.split_part(i.item, '=', 1) AS name,"               \
    "   pg_catalog.substr(i.item, pg_catalog.strpos(i.item, '=') + 1) AS setting"              \
    "   FROM pg_catalog.unnest(s.setconfig) AS i(item)) cfg"                                   \
    " LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"                                    \
    " LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"                             \
    " WHERE (s.setdatabase = 0 OR d.datname = pg_catalog.current_database())"                  \
    "  AND (s.setrole = 0 OR r.rolname = CURRENT_USER OR r.rolreplication OR r.rolsuper)"      \
    "  AND cfg.name IN " S_TIMEOUT_NAMES

/* With pg_file_settings: the values the configuration files give. */
static const char s_src_timeouts_sql[] =
    "SELECT pg_catalog.format('in %s line %s', f.sourcefile, f.sourceline) AS place,"
    " f.name, f.setting,"
    " pg_catalog.format('ALTER SYSTEM SET %s = 0; SELECT pg_catalog.pg_reload_conf();', f.name)"
    "  AS fix, false AS per_role"
    " FROM pg_catalog.pg_file_settings f"
    " WHERE f.applied AND f.name IN " S_TIMEOUT_NAMES
    " UNION ALL " S_ROLE_TIMEOUTS " ORDER BY 2, 1";

/* Without it: what pg_settings shows. Our own session sets statement_timeout,
 * which hides the configured value; idle_in_transaction_session_timeout is
 * still visible when it comes from the server's configuration. */
static const char s_src_timeouts_unprivileged_sql[] =
    "SELECT 'in the server configuration' AS place, s.name, s.setting || COALESCE(s.unit, '')"
    "  AS setting,"
    " pg_catalog.format('ALTER SYSTEM SET %s = 0; SELECT pg_catalog.pg_reload_conf();', s.name)"
    "  AS fix, false AS per_role"
    " FROM pg_catalog.pg_settings s"
    " WHERE s.name = 'idle_in_transaction_session_timeout'"
    "  AND s.source IN ('configuration file', 'command line', 'environment variable')"
    " UNION ALL " S_ROLE_TIMEOUTS " ORDER BY 2, 1";

static void s_on_src_timeouts(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    for (int i = 0; r->res && i < PQntuples(r->res); i++) {
        const char *name = pgconn_col_str(r->res, i, "name");
        const char *setting = pgconn_col_str(r->res, i, "setting");
        if (!s_timeout_set(setting))
            continue;
        bool statement = strcmp(name, "statement_timeout") == 0;
        const char *why =
            statement ? "a statement running longer is cancelled, and the initial copy of a "
                        "large table is one long COPY on the source; it would fail and start "
                        "over, again and again"
                      : "a session idle inside a transaction for longer is terminated, and "
                        "the initial copy holds a transaction open on the source while it "
                        "sets up; the copy would fail and start over";
        s_add(p, SEV_WARNING, name, name,
              xasprintf("%s = %s is set %s: %s", name, setting,
                        pgconn_col_str(r->res, i, "place"), why),
              pgconn_col_bool(r->res, i, "per_role")
                  ? xstrdup(pgconn_col_str(r->res, i, "fix"))
                  : xasprintf("%s (or only for the role the target replicates as: ALTER ROLE "
                              "<role> SET %s = 0;)",
                              pgconn_col_str(r->res, i, "fix"), name));
    }
    steprun_next(&p->run);
}

static void s_src_timeouts(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->file_settings_readable)
        log_debug("preflight on database %s: cannot read pg_file_settings (not a superuser); "
                  "a statement_timeout in the server configuration goes unnoticed",
                  p->database);
    s_query(p, "reading the source's timeouts",
            p->file_settings_readable ? s_src_timeouts_sql : s_src_timeouts_unprivileged_sql, 0,
            NULL, s_on_src_timeouts);
}

/* ---- source: tables ----------------------------------------------------- */

/* $1: the requested tables as [{"schema":..,"name":..}], or NULL for every
 * table. One row per table in scope (in_scope) and per partition below a
 * partitioned table in scope (root names that table), plus one row
 * (what = 'missing') per requested table that is not a user table. */
static const char s_src_tables_sql[] =
    "WITH req AS ("
    " SELECT DISTINCT r.schema, r.name"
    " FROM pg_catalog.json_to_recordset($1::pg_catalog.json)"
    "  AS r(schema pg_catalog.text, name pg_catalog.text)"
    "), cand AS ("
    " SELECT c.oid, n.nspname, c.relname, c.relkind, c.relispartition, c.relpersistence,"
    "  c.relreplident"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND" S_USER_REL("c", "n")
    "), scope AS ("
    " SELECT c.oid FROM cand c"
    " WHERE CASE WHEN $1::pg_catalog.json IS NULL THEN NOT c.relispartition"
    "  ELSE EXISTS (SELECT 1 FROM req WHERE req.schema = c.nspname AND req.name = c.relname)"
    "  END"
    "), rels AS ("
    " SELECT DISTINCT ON (x.oid) x.oid, x.in_scope, x.root FROM ("
    "  SELECT s.oid, true AS in_scope, NULL::pg_catalog.oid AS root FROM scope s"
    "  UNION ALL"
    "  SELECT t.relid::pg_catalog.oid, false, s.oid FROM scope s"
    "  CROSS JOIN LATERAL pg_catalog.pg_partition_tree(s.oid) t WHERE t.level > 0"
    " ) x ORDER BY x.oid, x.in_scope DESC"
    ") "
    "SELECT 'table' AS what, c.nspname AS schema, c.relname AS name,"
    " pg_catalog.format('%I.%I', c.nspname, c.relname) AS qname,"
    " c.relkind, r.in_scope, c.relpersistence, c.relreplident,"
    " (SELECT pg_catalog.format('%I.%I', rn.nspname, rc.relname) FROM pg_catalog.pg_class rc"
    "   JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = r.root)"
    "  AS root,"
    " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
    "  AS has_pk,"
    " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"
    "  AND i.indisreplident) AS has_replident_index,"
    /* an index REPLICA IDENTITY USING INDEX accepts: unique, immediate, valid,
     * not partial, no expressions, every column NOT NULL */
    " (SELECT pg_catalog.quote_ident(ic.relname) FROM pg_catalog.pg_index i"
    "   JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    "   WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid"
    "   AND i.indpred IS NULL AND i.indexprs IS NULL"
    "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid"
    "    AND a.attnum = ANY (i.indkey::pg_catalog.int2[]) AND NOT a.attnotnull)"
    "   ORDER BY ic.relname LIMIT 1) AS unique_index,"
    " (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
    "   AND NOT a.attisdropped AND a.attgenerated <> '') AS generated"
    " FROM rels r JOIN cand c ON c.oid = r.oid "
    "UNION ALL "
    "SELECT 'missing', req.schema, req.name, pg_catalog.format('%I.%I', req.schema, req.name),"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM req WHERE NOT EXISTS (SELECT 1 FROM cand c"
    "  WHERE c.nspname = req.schema AND c.relname = req.name) "
    "ORDER BY 1 DESC, 4";

/* A leaf table with no usable replica identity. */
static void s_src_check_replica_identity(preflight_t *p, const PGresult *res, int i)
{
    const char *qname = pgconn_col_str(res, i, "qname");
    const char *ident = pgconn_col_str(res, i, "relreplident");
    const char *root = pgconn_col(res, i, "root");
    const char *uidx = pgconn_col(res, i, "unique_index");
    bool has_pk = pgconn_col_bool(res, i, "has_pk");
    const char *state;
    switch (ident[0]) {
    case 'f':
        return;
    case 'd':
        if (has_pk)
            return;
        state = "has no primary key and REPLICA IDENTITY DEFAULT";
        break;
    case 'i':
        if (pgconn_col_bool(res, i, "has_replident_index"))
            return;
        state = "has REPLICA IDENTITY USING INDEX but that index is gone";
        break;
    default:
        state = "has REPLICA IDENTITY NOTHING";
        break;
    }
    char *partition = root ? xasprintf(" (a partition of %s)", root) : xstrdup("");
    char *message = xasprintf(
        "%s%s %s, so it has no replica identity: once it is published, every UPDATE and "
        "DELETE on it fails on the source with an error, and logical replication could not "
        "apply them on the target",
        qname, partition, state);
    char *fix;
    if (ident[0] == 'n' && has_pk) {
        fix = xasprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT;", qname);
    } else if (uidx) {
        fix = xasprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s; (a unique index on "
                        "NOT NULL columns), or ALTER TABLE %s REPLICA IDENTITY FULL;",
                        qname, uidx, qname);
    } else {
        /* NOTHING, or an index that is gone, stays so after a key is added. */
        char *then = ident[0] == 'd' ? xstrdup("")
                                     : xasprintf(" then ALTER TABLE %s REPLICA IDENTITY "
                                                 "DEFAULT;",
                                                 qname);
        fix = xasprintf("Add a primary key: ALTER TABLE %s ADD PRIMARY KEY (<key columns>);%s%s "
                        "or, if the table has no key, ALTER TABLE %s REPLICA IDENTITY FULL; "
                        "(every UPDATE and DELETE then logs the whole old row and the target "
                        "finds the row by a full scan: slow on large tables)",
                        root ? root : qname,
                        root ? " (on the partitioned table; it must include the partition "
                               "key)"
                             : "",
                        then, qname);
        free(then);
    }
    s_add(p, SEV_ERROR, "no_replica_identity", qname, message, fix);
    free(partition);
}

/* One row of s_src_tables_sql. */
static void s_src_check_table(preflight_t *p, const PGresult *res, int i)
{
    const char *qname = pgconn_col_str(res, i, "qname");
    if (strcmp(pgconn_col_str(res, i, "what"), "missing") == 0) {
        s_add(p, SEV_ERROR, "table_missing", qname,
              xasprintf("the migration lists table %s, but database %s has no such table (it "
                        "does not exist, or it is a view, a temporary, system or extension's "
                        "table), so it cannot be migrated",
                        qname, p->database),
              xstrdup("Correct the migration's table list (schema and name as stored, "
                      "case-sensitive, without quotes), or create the table on the source."));
        return;
    }
    bool in_scope = pgconn_col_bool(res, i, "in_scope");
    const char *kind = pgconn_col_str(res, i, "relkind");
    if (in_scope) {
        Godwit__SourceFacts *f = p->result->facts;
        Godwit__TableRef *t = xmalloc(sizeof *t);
        godwit__table_ref__init(t);
        t->schema = xstrdup(pgconn_col_str(res, i, "schema"));
        t->name = xstrdup(pgconn_col_str(res, i, "name"));
        f->tables = xrealloc(f->tables, (f->n_tables + 1) * sizeof *f->tables);
        f->tables[f->n_tables++] = t;
    }
    if (kind[0] == 'p' && in_scope)
        s_add(p, SEV_WARNING, "partitioned_table", qname,
              xasprintf("%s is partitioned: godwit publishes it through its root "
                        "(publish_via_partition_root), so the changes of all its partitions "
                        "arrive on the target as changes to %s, whose partitioning there may "
                        "differ",
                        qname, qname),
              xasprintf("Nothing to change; the target needs a table %s (the schema phase "
                        "creates it with its partitions). Partitions without a replica "
                        "identity are reported on their own.",
                        qname));
    if (kind[0] == 'r') {
        if (pgconn_col_str(res, i, "relpersistence")[0] == 'u')
            s_add(p, SEV_WARNING, "unlogged_table", qname,
                  xasprintf("%s is UNLOGGED: its changes are not written to the WAL, so "
                            "logical replication can neither copy nor stream it, and it stays "
                            "empty on the target",
                            qname),
                  xasprintf("ALTER TABLE %s SET LOGGED; (rewrites the table under an ACCESS "
                            "EXCLUSIVE lock), or copy its data yourself at cutover.",
                            qname));
        else
            s_src_check_replica_identity(p, res, i);
    }
    const char *generated = pgconn_col(res, i, "generated");
    if (generated && in_scope)
        s_add(p, SEV_WARNING, "generated_columns", qname,
              xasprintf("%s has generated column(s) %s: logical replication does not send "
                        "their values, the target computes them with its own GENERATED "
                        "expressions",
                        qname, generated),
              xasprintf("Nothing to change if %s on the target has the same generation "
                        "expressions (the schema phase copies them); as ordinary columns "
                        "there they would stay empty.",
                        qname));
}

static void s_on_src_tables(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    for (int i = 0; r->res && i < PQntuples(r->res); i++)
        s_src_check_table(p, r->res, i);
    steprun_next(&p->run);
}

static void s_src_tables(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    const char *params[1] = { p->tables_json };
    s_query(p, "reading the source's tables", s_src_tables_sql, 1, params, s_on_src_tables);
}

/* ---- source: extensions ------------------------------------------------- */

static void s_on_src_extensions(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    Godwit__SourceFacts *f = p->result->facts;
    int n = r->res ? PQntuples(r->res) : 0;
    if (n > 0) {
        f->extensions = xcalloc((size_t)n, sizeof *f->extensions);
        for (int i = 0; i < n; i++)
            f->extensions[f->n_extensions++] = xstrdup(pgconn_col_str(r->res, i, "extname"));
    }
    steprun_next(&p->run);
}

static void s_src_extensions(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    s_query(p, "reading the source's extensions",
            "SELECT e.extname FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'"
            " ORDER BY 1",
            0, NULL, s_on_src_extensions);
}

static const steprun_fn s_source_stages[] = {
    s_connect, s_src_settings, s_src_timeouts, s_src_tables, s_src_extensions, NULL,
};

/* ---- target: version ---------------------------------------------------- */

static void s_on_tgt_settings(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&p->run, "reading the target's settings: no row returned");
        return;
    }
    free(p->repl_user_q);
    free(p->repl_db_q);
    p->repl_user_q = xstrdup(pgconn_col_str(r->res, 0, "repl_user_q"));
    p->repl_db_q = xstrdup(pgconn_col_str(r->res, 0, "repl_db_q"));
    /* Major versions decide (150020 -> 15): a schema dumped from a newer
     * major may not load into an older one. An older minor release of the
     * same major replicates fine; it is worth a warning only. */
    int64_t num = pgconn_col_i64(r->res, 0, "server_version_num", 0);
    if (num / 10000 < (int64_t)p->src_version_num / 10000)
        s_add(p, SEV_ERROR, "server_version_older", "server_version",
              xasprintf("the target runs PostgreSQL %s (%" PRId64 "), an older major version "
                        "than the source's %s (%" PRIu32 "): a schema dumped from a newer "
                        "server may not load into an older one, so godwit migrates only to "
                        "the same or a newer major version",
                        pgconn_col_str(r->res, 0, "server_version"), num, p->src_version,
                        p->src_version_num),
              xasprintf("Upgrade the target server to PostgreSQL %s or later, or migrate to "
                        "another target that runs it.",
                        p->src_version));
    else if (num < (int64_t)p->src_version_num)
        s_add(p, SEV_WARNING, "server_minor_older", "server_version",
              xasprintf("the target runs PostgreSQL %s (%" PRId64 "), an older minor release "
                        "than the source's %s (%" PRIu32 ")",
                        pgconn_col_str(r->res, 0, "server_version"), num, p->src_version,
                        p->src_version_num),
              xasprintf("Update the target to the latest minor release of its major version."));
    /* After the cutover the source subscribes to the target (reverse
     * replication, for a rollback): the target publishes then. */
    const char *wal_level = pgconn_col_str(r->res, 0, "wal_level");
    if (p->reverse && strcmp(wal_level, "logical") != 0)
        s_add(p, SEV_ERROR, "reverse_wal_level", "wal_level",
              xasprintf("wal_level on the target is %s: after the cutover the source follows the "
                        "target (cutover.reverse is on), which needs wal_level = logical on the "
                        "target, or the cutover is refused",
                        wal_level),
              xstrdup("ALTER SYSTEM SET wal_level = logical; then restart the target server. Or "
                      "set cutover.reverse: off in the plan (then a rollback would lose the "
                      "target's writes)."));
    else if (p->reverse && pgconn_col_i64(r->res, 0, "free_slots", 1) < 1)
        s_add(p, SEV_ERROR, "reverse_slots", "max_replication_slots",
              xasprintf("the target has no free replication slot, and after the cutover the "
                        "source follows it through one (cutover.reverse is on)"),
              xstrdup("Raise max_replication_slots on the target (ALTER SYSTEM SET "
                      "max_replication_slots = ...; then restart), or drop an unused slot."));
    steprun_next(&p->run);
}

static void s_tgt_settings(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    const char *params[2] = { p->repl_user, p->repl_db };
    s_query(p, "reading the target's settings",
            "SELECT pg_catalog.current_setting('server_version_num') AS server_version_num,"
            " pg_catalog.current_setting('server_version') AS server_version,"
            " pg_catalog.quote_ident($1) AS repl_user_q, pg_catalog.quote_ident($2) AS repl_db_q,"
            " pg_catalog.current_setting('wal_level') AS wal_level,"
            " pg_catalog.current_setting('max_replication_slots')::pg_catalog.int8 -"
            " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots) AS free_slots",
            2, params, s_on_tgt_settings);
}

/* ---- target: tables that already hold rows ------------------------------ */

static void s_on_tgt_tables(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    s_free_existing(p);
    int n = r->res ? PQntuples(r->res) : 0;
    if (n > 0) {
        p->existing = xcalloc((size_t)n, sizeof *p->existing);
        for (int i = 0; i < n; i++) {
            s_table_t *t = &p->existing[p->n_existing++];
            t->schema = xstrdup(pgconn_col_str(r->res, i, "schema"));
            t->name = xstrdup(pgconn_col_str(r->res, i, "name"));
            t->qname = xstrdup(pgconn_col_str(r->res, i, "qname"));
        }
    }
    steprun_next(&p->run);
}

/* The source's tables that exist on the target (a missing one is fine: the
 * schema phase creates it). */
static void s_tgt_tables(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->tables_json) {
        steprun_next(&p->run);
        return;
    }
    const char *params[1] = { p->tables_json };
    s_query(p, "looking up the source's tables on the target",
            "SELECT r.schema, r.name, pg_catalog.format('%I.%I', r.schema, r.name) AS qname"
            " FROM (SELECT DISTINCT t.schema, t.name"
            "  FROM pg_catalog.json_to_recordset($1::pg_catalog.json)"
            "  AS t(schema pg_catalog.text, name pg_catalog.text)) r"
            " WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
            "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            "  WHERE n.nspname = r.schema AND c.relname = r.name AND c.relkind IN ('r', 'p'))"
            " ORDER BY 3",
            1, params, s_on_tgt_tables);
}

static void s_tgt_rows(steprun_t *run);

static void s_on_tgt_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    const s_table_t *t = &p->existing[p->next_existing++];
    if (r->res && PQntuples(r->res) == 1 && pgconn_col_bool(r->res, 0, "has_rows"))
        s_add(p, SEV_ERROR, "target_table_not_empty", t->qname,
              xasprintf("%s already holds rows in the target database %s: the initial copy "
                        "would add the source's rows to them (duplicates, or key conflicts "
                        "that stop replication)",
                        t->qname, p->database),
              xasprintf("If its rows are not needed, empty it on the target: TRUNCATE %s; (or "
                        "drop it and let the schema phase create it), or migrate into an "
                        "empty database.",
                        t->qname));
    s_tgt_rows(&p->run);
}

/* One statement per existing table, in turn. The table's name has to be in
 * the SQL text here: quoted by libpq, never pasted as it is. */
static void s_tgt_rows(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (p->next_existing >= p->n_existing) {
        steprun_next(&p->run);
        return;
    }
    const s_table_t *t = &p->existing[p->next_existing];
    char *schema = pgconn_escape_identifier(p->run.conn[P_LOCAL], t->schema);
    char *name = pgconn_escape_identifier(p->run.conn[P_LOCAL], t->name);
    if (!schema || !name) {
        steprun_failf(&p->run,
                      "checking whether %s on the target is empty: cannot quote its name",
                      t->qname);
        free(schema);
        free(name);
        return;
    }
    char *sql = xasprintf("SELECT EXISTS (SELECT 1 FROM %s.%s LIMIT 1) AS has_rows", schema, name);
    char *what = xasprintf("checking whether %s on the target is empty", t->qname);
    free(schema);
    free(name);
    s_query(p, what, sql, 0, NULL, s_on_tgt_rows);
    free(what);
    free(sql); /* libpq has copied it into its output buffer */
}

/* ---- target: extensions ------------------------------------------------- */

static void s_on_tgt_extensions(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    for (int i = 0; r->res && i < PQntuples(r->res); i++) {
        if (pgconn_col_bool(r->res, i, "installed"))
            continue;
        const char *name = pgconn_col_str(r->res, i, "name");
        const char *name_q = pgconn_col_str(r->res, i, "name_q");
        if (pgconn_col_bool(r->res, i, "available"))
            s_add(p, SEV_WARNING, "extension_not_installed", name,
                  xasprintf("extension %s is installed in the source database but not in the "
                            "target database %s; the target server has it, so the schema "
                            "phase may create it",
                            name_q, p->database),
                  xasprintf("CREATE EXTENSION IF NOT EXISTS %s; in the target database (or "
                            "let the schema phase do it).",
                            name_q));
        else
            s_add(p, SEV_WARNING, "extension_unavailable", name,
                  xasprintf("extension %s is installed in the source database but the target "
                            "server does not have it (pg_available_extensions): the types, "
                            "functions and indexes that use it cannot be created there",
                            name_q),
                  xasprintf("Install the package that provides %s on the target's host (its "
                            "control file goes in the server's share/extension directory), "
                            "then CREATE EXTENSION %s; in the target database.",
                            name_q, name_q));
    }
    steprun_next(&p->run);
}

static void s_tgt_extensions(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->extensions_json) {
        steprun_next(&p->run);
        return;
    }
    const char *params[1] = { p->extensions_json };
    s_query(p, "looking up the source's extensions on the target",
            "SELECT e.name, pg_catalog.quote_ident(e.name) AS name_q,"
            " EXISTS (SELECT 1 FROM pg_catalog.pg_extension x WHERE x.extname = e.name)"
            "  AS installed,"
            " EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a WHERE a.name = e.name)"
            "  AS available"
            " FROM (SELECT DISTINCT j.v AS name"
            "  FROM pg_catalog.json_array_elements_text($1::pg_catalog.json) AS j(v)) e"
            " ORDER BY 1",
            1, params, s_on_tgt_extensions);
}

/* ---- target: the replication connection to the source ------------------- */

/* What to do about a refused replication connection, by libpq's reason.
 * Caller frees. */
static char *s_replication_fix(const preflight_t *p, const char *error)
{
    const char *user = p->repl_user_q ? p->repl_user_q : p->repl_user;
    const char *db = p->repl_db_q ? p->repl_db_q : p->repl_db;
    bool hba = error && strstr(error, "pg_hba.conf");
    bool role = error && strstr(error, "replication role");
    bool password = error && (strstr(error, "password") || strstr(error, "authentication"));
    char *hba_fix = xasprintf(
        "On the source, let this host in with a pg_hba.conf line for the database itself (the "
        "'replication' keyword is for physical replication; logical replication matches the "
        "database name): host %s %s <target host address>/32 scram-sha-256, then SELECT "
        "pg_catalog.pg_reload_conf();",
        db, user);
    char *role_fix = xasprintf("On the source: ALTER ROLE %s REPLICATION;", user);
    char *password_fix =
        p->repl_passfile
            ? xasprintf("Put the role's password in %s on this host (host:port:%s:%s:password, "
                        "mode 0600, readable by this agent and by the PostgreSQL server here, "
                        "whose subscription reads it too).",
                        p->repl_passfile, p->repl_db, p->repl_user)
            : xstrdup("Give the role's password through a passfile on this host (the peer's "
                      "passfile in this agent's config), or a pg_hba.conf method that needs "
                      "none.");
    char *fix;
    if (hba)
        fix = xstrdup(hba_fix);
    else if (role)
        fix = xstrdup(role_fix);
    else if (password)
        fix = xstrdup(password_fix);
    else
        fix = xasprintf("Check that the source is reachable from this host at %s, then: %s %s %s",
                        p->repl_where, hba_fix, role_fix, password_fix);
    free(hba_fix);
    free(role_fix);
    free(password_fix);
    return fix;
}

static void s_on_tgt_replication(pgconn_t *c, bool ok, const char *error, void *arg)
{
    preflight_t *p = arg;
    if (!ok)
        s_add(p, SEV_ERROR, "replication_connection", p->repl_where,
              xasprintf("cannot open a logical replication connection to the source as %s, "
                        "and the target's subscription would connect the same way, so "
                        "replication could not start: %s",
                        p->repl_where, error ? error : "unknown error"),
              s_replication_fix(p, error));
    /* Connected or not, that was the whole check. */
    pgconn_destroy(&p->run.conn[P_REPL]);
    steprun_next(&p->run);
}

static void s_tgt_replication(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->run.conn[P_REPL]) { /* no such peer: the finding was added at the start */
        steprun_next(&p->run);
        return;
    }
    int rc = pgconn_connect(p->run.conn[P_REPL], (uint64_t)p->connect_timeout_ms,
                            s_on_tgt_replication, p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start the replication connection: %s", strerror(-rc));
}

/* ---- target: roles, owners and privileges ------------------------------- */

/* What each kind of access difference means before anything is copied:
 * severity, and what follows the problem in the message. */
static void s_tgt_access_finding(preflight_t *p, access_diff_t *d)
{
    Godwit__Severity sev;
    char *message, *fix;
    const char *code = access_kind_code(d->kind);
    switch (d->kind) {
    case ACCESS_APP_ROLE_UNKNOWN:
        sev = SEV_WARNING;
        message = xasprintf("%s: the cutover fences the application roles on the source, so it "
                            "will refuse to start", d->problem);
        fix = xstrdup("Create the role on the source, or correct cutover.app_roles in the plan.");
        break;
    case ACCESS_ROLE_MISSING:
        sev = SEV_INFO;
        message = xasprintf("%s: the roles step creates it as the source has it, before the "
                            "schema (which names it)",
                            d->problem);
        fix = xasprintf("Nothing to do; it runs: %s", d->statement);
        break;
    case ACCESS_ROLE_SUPERUSER:
        sev = SEV_ERROR;
        message = xasprintf("%s; godwit never grants SUPERUSER (or membership in a superuser) "
                            "by itself, so the role's rights on the target would differ",
                            d->problem);
        fix = d->absent ? xasprintf("Decide: create the role on the target yourself as the "
                                    "source has it (CREATE ROLE ... SUPERUSER), or take "
                                    "SUPERUSER from it on the source. Without SUPERUSER godwit "
                                    "would run: %s",
                                    d->statement)
                        : xasprintf("Decide, and make both sides agree; on the target that is: "
                                    "%s",
                                    d->statement);
        break;
    case ACCESS_ROLE:
        sev = SEV_WARNING;
        message = xasprintf("%s: the role exists on the target, and godwit leaves existing roles "
                            "as they are; verify reports the difference and the cutover waits "
                            "until it is gone",
                            d->problem);
        fix = xasprintf("On the target: %s", d->statement);
        break;
    case ACCESS_BOOTSTRAP:
        sev = d->absent ? SEV_ERROR : SEV_WARNING;
        message = xasprintf("%s; the schema is restored with its owners by name, so %s",
                            d->problem,
                            d->absent ? "restoring it would fail"
                                      : "those objects would change owner");
        fix = xstrdup("Initialise the target with the same bootstrap superuser name (initdb "
                      "-U), or give those objects and default privileges to another role on the "
                      "source (REASSIGN OWNED BY ... TO ...; ALTER DEFAULT PRIVILEGES FOR ROLE "
                      "...), or create a superuser of that name on the target yourself.");
        break;
    case ACCESS_DATABASE:
        sev = SEV_INFO;
        message = xasprintf("%s: the roles step gives the target database the source's owner "
                            "and privileges",
                            d->problem);
        fix = xasprintf("Nothing to do; it runs: %s", d->statement);
        break;
    default:
        /* objects (owners, privileges, default privileges, policies) the
         * target has already: the restore creates the others with the
         * source's owners and privileges, and leaves these as they are,
         * but for the privileges it sets where they differ from their
         * initial ones (the schema public, an extension's objects) */
        if (d->absent)
            return;
        sev = d->restored ? SEV_WARNING : SEV_ERROR;
        message = d->restored
                      ? xasprintf("%s: the schema phase sets the source's privileges on it where "
                                  "they differ from the initial ones; anything else stays and "
                                  "verify will report it",
                                  d->problem)
                      : xasprintf("%s: it is on the target already, and the schema phase does "
                                  "not change an object that exists, so rights on the target "
                                  "would differ",
                                  d->problem);
        fix = xasprintf("On the target: %s", d->statement);
        break;
    }
    s_add(p, sev, code, d->object, message, fix);
}

static void s_on_tgt_access_dst(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "access") : NULL;
    char *err = NULL;
    if (!(p->access[1] = access_parse(text, &err))) {
        steprun_failf(&p->run, "reading the target's roles and privileges: %s", err);
        free(err);
        return;
    }
    access_quote_t q = access_quote_conn(p->run.conn[P_LOCAL]);
    access_diffs_t diffs = { 0 };
    if (!access_compare(p->access[0], p->access[1], false, &q, &diffs, &err)) {
        steprun_failf(&p->run, "comparing roles and privileges: %s", err);
        access_diffs_free(&diffs);
        free(err);
        return;
    }
    for (size_t i = 0; i < diffs.n; i++)
        s_tgt_access_finding(p, &diffs.v[i]);
    access_diffs_free(&diffs);
    steprun_next(&p->run);
}

static void s_on_tgt_access_src(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "access") : NULL;
    char *err = NULL;
    if (!(p->access[0] = access_parse(text, &err))) {
        steprun_failf(&p->run, "reading the source's roles and privileges: %s", err);
        free(err);
        return;
    }
    pgconn_destroy(&p->run.conn[P_SRC]);
    if (p->passwords && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p->access[0], "authid")))
        s_add(p, SEV_ERROR, "passwords_unreadable", p->repl_where,
              xasprintf("the plan copies password hashes (roles.passwords), but the source "
                        "connection (%s) cannot read them (pg_authid): the roles step would "
                        "fail",
                        p->repl_where),
              xasprintf("Make the plan's replication role a superuser on the source (ALTER ROLE "
                        "%s SUPERUSER;), or set roles.passwords: false and set the passwords on "
                        "the target yourself.",
                        p->repl_user_q ? p->repl_user_q : p->repl_user));
    char *names = access_role_names(p->access[0]);
    const char *params[1] = { names };
    s_query(p, "reading the target's roles and privileges", access_catalog_sql, 1, params,
            s_on_tgt_access_dst);
    free(names);
}

static void s_on_tgt_src_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    preflight_t *p = arg;
    if (!ok) {
        s_add(p, SEV_ERROR, "source_connection", p->repl_where,
              xasprintf("cannot connect to the source database as %s to read its schema, roles "
                        "and privileges (the schema phase and verify connect the same way): %s",
                        p->repl_where, error ? error : "unknown error"),
              s_replication_fix(p, error));
        pgconn_destroy(&p->run.conn[P_SRC]);
        steprun_next(&p->run);
        return;
    }
    const char *params[1] = { p->app_roles };
    s_query_on(p, P_SRC, "reading the source's roles and privileges", access_catalog_sql, 1,
               params, s_on_tgt_access_src);
}

/* The source's roles and privileges against the target's: roles missing
 * (created by the roles step), roles that differ (left as they are),
 * superusers (never granted), who would own what. */
static void s_tgt_roles(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->run.conn[P_SRC]) { /* the source is no peer of ours: that finding blocks already */
        steprun_next(&p->run);
        return;
    }
    int rc = pgconn_connect(p->run.conn[P_SRC], (uint64_t)p->connect_timeout_ms,
                            s_on_tgt_src_connect, p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start connecting to the source: %s", strerror(-rc));
}

/* ---- target: free disk -------------------------------------------------- */

static void s_tgt_disk(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    diskstats_fs_t fs;
    int rc = diskstats_fs(p->data_directory, &fs);
    if (rc != 0) {
        s_add(p, SEV_ERROR, "disk_space", p->data_directory,
              xasprintf("cannot read the free space of the target's data directory %s: %s",
                        p->data_directory, strerror(-rc)),
              xstrdup("Point the agent's postgres.data_directory at the target server's data "
                      "directory, readable by the agent."));
        steprun_next(&p->run);
        return;
    }
    double need_d = (double)p->src_size * p->disk_margin;
    uint64_t need = need_d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)need_d;
    if (fs.free_bytes < need) {
        char free_s[32], size_s[32], need_s[32], short_s[32];
        units_fmt_bytes(fs.free_bytes, free_s, sizeof free_s);
        units_fmt_bytes(p->src_size, size_s, sizeof size_s);
        units_fmt_bytes(need, need_s, sizeof need_s);
        units_fmt_bytes(need - fs.free_bytes, short_s, sizeof short_s);
        s_add(p, SEV_ERROR, "disk_space", p->data_directory,
              xasprintf("the target's data directory %s has %s free, but the source database "
                        "is %s and with a margin of %.2f needs %s: the copy would fill the "
                        "disk and stop the target server",
                        p->data_directory, free_s, size_s, p->disk_margin, need_s),
              xasprintf("Free or add at least %s on the filesystem of %s.", short_s,
                        p->data_directory));
    }
    steprun_next(&p->run);
}

static const steprun_fn s_target_stages[] = {
    s_connect,         s_tgt_settings, s_tgt_tables, s_tgt_rows, s_tgt_extensions,
    s_tgt_replication, s_tgt_roles,    s_tgt_disk,   NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static bool s_local_valid(const preflight_local_t *l)
{
    return l && l->host && l->host[0] && l->port >= 1 && l->port <= 65535 &&
           l->connect_timeout_ms > 0 && l->connect_timeout_ms <= INT32_MAX &&
           l->statement_timeout_ms > 0 && l->statement_timeout_ms <= INT32_MAX;
}

/* [{"schema":..,"name":..}] for n refs (caller frees), or NULL when a ref is
 * incomplete. n must be > 0. */
static char *s_tables_json(Godwit__TableRef *const *refs, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const Godwit__TableRef *t = refs[i];
        if (!t || !t->schema || !t->schema[0] || !t->name || !t->name[0]) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", t->schema);
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddItemToArray(a, o);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *out = xstrdup(text); /* one allocator for everything p owns */
    cJSON_free(text);
    return out;
}

/* The common part of both starts: p with its local connection and its
 * stages, not started (s_start). NULL for invalid arguments. */
static preflight_t *s_new(uv_loop_t *loop, const preflight_local_t *local, const char *database,
                          const steprun_fn *stages, step_done_cb done, void *arg)
{
    if (!loop || !s_local_valid(local) || !database || !database[0] || !done)
        return NULL;
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                              " -c default_transaction_read_only=on -c jit=off",
                              local->statement_timeout_ms);
    step_local_t sl = { .host = local->host, .port = local->port, .user = local->user,
                        .passfile = local->passfile,
                        .connect_timeout_ms = local->connect_timeout_ms,
                        .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    pgconn_t *conn = step_local_conn(loop, "agent preflight", &sl, database, "godwit-agent",
                                     options);
    free(options);
    if (!conn)
        return NULL;

    preflight_t *p = xcalloc(1, sizeof *p);
    p->run.conn[P_LOCAL] = conn;
    p->run.stages = stages;
    p->run.complete = s_complete;
    p->done = done;
    p->arg = arg;
    p->connect_timeout_ms = local->connect_timeout_ms;
    p->statement_timeout_ms = local->statement_timeout_ms;
    p->database = xstrdup(database);
    p->result = xmalloc(sizeof *p->result);
    godwit__preflight_result__init(p->result);
    return p;
}

/* Runs the first stage one loop turn later. */
static step_t *s_start(preflight_t *p, uv_loop_t *loop)
{
    p->run.plain_errors = true; /* preflight's errors never carried a prefix */
    steprun_start(&p->run, loop, xasprintf("preflight on database %s", p->database), s_done, p,
                  s_release, steprun_next);
    return &p->run.base;
}

/* The peer rc names in local's config, or NULL after a blocking finding
 * (code) naming the agent, the peer and the config file. why: what the
 * peer is for; plan_key: the plan's section that names it. */
static const agent_peer_t *s_peer_finding(preflight_t *p, const preflight_local_t *local,
                                          const Godwit__ReplicationConn *rc, const char *code,
                                          const char *why, const char *plan_key)
{
    step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    char *reason = NULL;
    const agent_peer_t *peer = step_peer(&sl, rc, &reason);
    if (peer) {
        free(reason);
        return peer;
    }
    const char *name = rc && rc->peer && rc->peer[0] ? rc->peer : "(none)";
    const char *config = local->config_path ? local->config_path : "(unknown)";
    char *object = xasprintf("peer %s", name);
    s_add(p, SEV_ERROR, code, object,
          rc && rc->peer && rc->peer[0] && rc->dbname && rc->dbname[0]
              ? xasprintf("agent %s has no peer \"%s\" in its config %s, and %s: the agent "
                          "connects only to the servers its config lists",
                          local->agent_name ? local->agent_name : "(unnamed)", name, config,
                          why)
              : xasprintf("agent %s: %s", local->agent_name ? local->agent_name : "(unnamed)",
                          reason),
          xasprintf("Add a peer named %s (host, port, user, and passfile or sslmode if needed) "
                    "under peers: in %s and restart the agent, or name in the plan's %s one "
                    "of the peers it has.",
                    name, local->config_path ? local->config_path : "the agent's config",
                    plan_key));
    free(object);
    free(reason);
    return NULL;
}

step_t *preflight_source_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightSource *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    char *tables = NULL;
    if (req->n_tables > 0 && !(tables = s_tables_json(req->tables, req->n_tables)))
        return NULL;
    preflight_t *p = s_new(loop, local, req->database, s_source_stages, done, arg);
    if (!p) {
        free(tables);
        return NULL;
    }
    p->tables_json = tables;
    p->result->facts = xmalloc(sizeof *p->result->facts);
    godwit__source_facts__init(p->result->facts);
    if (req->reverse)
        s_peer_finding(p, local, req->reverse, "reverse_replication_peer",
                       "after the cutover the source follows the target through that peer "
                       "(cutover.reverse on)",
                       "reverse_replication");
    return s_start(p, loop);
}

step_t *preflight_target_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightTarget *req, step_done_cb done, void *arg)
{
    if (!req || !req->source || req->source->server_version_num == 0 || !req->replication ||
        !local || !local->data_directory || !local->data_directory[0])
        return NULL;
    const Godwit__SourceFacts *src = req->source;
    const Godwit__ReplicationConn *rc = req->replication;
    if (!rc->dbname || !rc->dbname[0])
        return NULL;
    for (size_t i = 0; i < src->n_extensions; i++)
        if (!src->extensions[i] || !src->extensions[i][0])
            return NULL;
    char *tables = NULL;
    if (src->n_tables > 0 && !(tables = s_tables_json(src->tables, src->n_tables)))
        return NULL;

    preflight_t *p = s_new(loop, local, req->database, s_target_stages, done, arg);
    if (!p) {
        free(tables);
        return NULL;
    }
    const agent_peer_t *peer =
        s_peer_finding(p, local, rc, "replication_peer",
                       "the target reads the source through that peer (the schema, the copy, "
                       "the subscription, verify)",
                       "replication");
    if (peer) {
        step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                            .config_path = local->config_path,
                            .connect_timeout_ms = local->connect_timeout_ms };
        p->run.conn[P_REPL] = step_remote_conn(loop, "agent preflight replication", &sl, rc,
                                               true, "godwit-agent", NULL);
        /* jit off: see access.h */
        char *src_opts = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                                   " -c default_transaction_read_only=on -c jit=off",
                                   local->statement_timeout_ms);
        p->run.conn[P_SRC] = step_remote_conn(loop, "agent preflight source", &sl, rc, false,
                                              "godwit-agent", src_opts);
        free(src_opts);
    }
    p->app_roles = pgconn_text_array(req->app_roles, req->n_app_roles);
    p->passwords = req->passwords;
    p->tables_json = tables;
    p->src_version_num = src->server_version_num;
    p->src_version = xstrdup(src->server_version && src->server_version[0]
                                 ? src->server_version
                                 : "(unknown)");
    p->src_size = src->database_size;
    p->disk_margin = req->disk_margin > 0 ? req->disk_margin : 1.0;
    p->reverse = req->reverse;
    p->data_directory = xstrdup(local->data_directory);
    if (src->n_extensions > 0) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < src->n_extensions; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(src->extensions[i]));
        char *text = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        p->extensions_json = xstrdup(text);
        cJSON_free(text);
    }
    p->repl_user = xstrdup(peer ? peer->user : "");
    p->repl_db = xstrdup(rc->dbname);
    p->repl_passfile = peer && peer->passfile ? xstrdup(peer->passfile) : NULL;
    p->repl_where = peer ? xasprintf("%s@%s:%" PRId64 "/%s (peer %s)", peer->user, peer->host,
                                     peer->port, rc->dbname, peer->name)
                         : xasprintf("peer %s", rc->peer ? rc->peer : "");
    return s_start(p, loop);
}
