/*
 * preflight_src: see preflight_src.h. Each stage sends one statement
 * (preflight_run_query) and turns its answer into findings and the
 * source's facts (the result's facts, which the target's check gets).
 */
#include "preflight_src.h"
#include "preflight_run.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COPY_WORKERS 2                /* max_sync_workers_per_subscription's default */
#define S_MIN_WAL_SENDER_TIMEOUT_MS 60000

/* ---- reading results ---------------------------------------------------- */

/* A GUC value as written in a config file or pg_db_role_setting ("0",
 * "30s", "1.5min"): true unless its number is zero (0 disables a timeout). */
static bool s_timeout_set(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    return end == v || d != 0.0;
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
    /* the source agent creates the copy's slot and holds its snapshot */
    " (SELECT r.rolreplication OR r.rolsuper FROM pg_catalog.pg_roles r"
    "   WHERE r.rolname = CURRENT_USER) AS agent_replication,"
    " pg_catalog.quote_ident(CURRENT_USER) AS agent_role_q,"
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
        preflight_run_add(
            p, SEV_ERROR, "no_free_replication_slot", "max_replication_slots",
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
        preflight_run_add(
            p, SEV_WARNING, "few_free_replication_slots", "max_replication_slots",
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

    if (!pgconn_col_bool(res, 0, "agent_replication"))
        preflight_run_add(
            p, SEV_ERROR, "agent_role_no_replication", "postgres.user",
            xasprintf("the source agent's role %s has no REPLICATION attribute: the agent "
                      "creates the copy's slot and holds its snapshot on a replication "
                      "connection of its own",
                      pgconn_col_str(res, 0, "agent_role_q")),
            xasprintf("ALTER ROLE %s REPLICATION; and let pg_hba.conf admit its replication "
                      "connection (docs/migrate.md#a-copy-that-is-interrupted).",
                      pgconn_col_str(res, 0, "agent_role_q")));

    int64_t max_senders = pgconn_col_i64(res, 0, "max_wal_senders", 0);
    int64_t senders = pgconn_col_i64(res, 0, "wal_senders", 0);
    int64_t free_senders = max_senders - senders;
    if (free_senders < 1)
        preflight_run_add(
            p, SEV_ERROR, "no_free_wal_sender", "max_wal_senders",
            xasprintf("max_wal_senders is %" PRId64 " and %" PRId64
                      " WAL senders are running (pg_stat_replication): the migration's "
                      "subscription could not connect to stream changes",
                      max_senders, senders),
            xasprintf("ALTER SYSTEM SET max_wal_senders = %" PRId64
                      "; then restart PostgreSQL (physical standbys need at least the same "
                      "value).",
                      senders + 1 + S_COPY_WORKERS));
    else if (free_senders < 1 + S_COPY_WORKERS)
        preflight_run_add(
            p, SEV_WARNING, "few_free_wal_senders", "max_wal_senders",
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
        preflight_run_add(
            p, SEV_ERROR, "wal_level", "wal_level",
            xasprintf("wal_level is %s: logical replication needs wal_level = logical to "
                      "decode changes from the WAL; no logical replication slot can be "
                      "created without it",
                      wal_level),
            xstrdup("ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (the "
                    "setting only takes effect at server start)."));

    s_src_check_slots(p, res);

    if (pgconn_col_i64(res, 0, "max_slot_wal_keep_size_mb", 0) < 0)
        preflight_run_add(
            p, SEV_WARNING, "max_slot_wal_keep_size", "max_slot_wal_keep_size",
            xstrdup("max_slot_wal_keep_size is -1 (unlimited): if the target falls behind "
                    "or stops, the migration's replication slot keeps WAL on the source "
                    "without limit until its disk fills and the server stops"),
            xstrdup("ALTER SYSTEM SET max_slot_wal_keep_size = '<what the WAL disk can "
                    "spare, e.g. 100GB>'; SELECT pg_catalog.pg_reload_conf(); (godwit also "
                    "watches the slot's retained WAL, but a limit protects the source on "
                    "its own)."));

    int64_t wst = pgconn_col_i64(res, 0, "wal_sender_timeout_ms", 0);
    if (wst > 0 && wst < S_MIN_WAL_SENDER_TIMEOUT_MS)
        preflight_run_add(
            p, SEV_WARNING, "wal_sender_timeout", "wal_sender_timeout",
            xasprintf("wal_sender_timeout is %s: a WAL sender whose receiver has not "
                      "answered for that long is cut off; over a WAN link or with a busy "
                      "target that restarts the stream, or a table copy, again and again",
                      pgconn_col_str(res, 0, "wal_sender_timeout")),
            xstrdup("ALTER SYSTEM SET wal_sender_timeout = '5min'; SELECT "
                    "pg_catalog.pg_reload_conf();"));

    const char *db_q = pgconn_col_str(res, 0, "database_q");
    int64_t los = pgconn_col_i64(res, 0, "large_objects", 0);
    if (los > 0)
        preflight_run_add(
            p, SEV_WARNING, "large_objects", db_q,
            xasprintf("database %s holds %" PRId64
                      " large object(s) (pg_largeobject): logical replication does not "
                      "carry large objects, so they will be missing on the target",
                      db_q, los),
            xstrdup("Copy them yourself at cutover (lo_export/lo_import, or pg_dump "
                    "--blobs of this database), or move the data into bytea columns "
                    "before migrating."));

    int64_t seqs = pgconn_col_i64(res, 0, "sequences", 0);
    if (seqs > 0)
        preflight_run_add(
            p, SEV_WARNING, "sequences", db_q,
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
    if (!preflight_run_facts(p, r))
        return;
    p->file_settings_readable = pgconn_col_bool(r->res, 0, "file_settings_readable");
    s_src_check_settings(p, r->res);
    steprun_next(&p->run);
}

static void s_src_settings(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    preflight_run_query(p, "reading the source's settings", s_src_settings_sql, 0, NULL,
                        s_on_src_settings);
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
        preflight_run_add(
            p, SEV_WARNING, name, name,
            xasprintf("%s = %s is set %s: %s", name, setting, pgconn_col_str(r->res, i, "place"),
                      why),
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
    preflight_run_query(p, "reading the source's timeouts",
                        p->file_settings_readable ? s_src_timeouts_sql
                                                  : s_src_timeouts_unprivileged_sql,
                        0, NULL, s_on_src_timeouts);
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
    preflight_run_add(p, SEV_ERROR, "no_replica_identity", qname, message, fix);
    free(partition);
}

/* One row of s_src_tables_sql. */
static void s_src_check_table(preflight_t *p, const PGresult *res, int i)
{
    const char *qname = pgconn_col_str(res, i, "qname");
    if (strcmp(pgconn_col_str(res, i, "what"), "missing") == 0) {
        preflight_run_add(
            p, SEV_ERROR, "table_missing", qname,
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
        preflight_run_add(
            p, SEV_WARNING, "partitioned_table", qname,
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
            preflight_run_add(
                p, SEV_WARNING, "unlogged_table", qname,
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
        preflight_run_add(
            p, SEV_WARNING, "generated_columns", qname,
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
    preflight_run_query(p, "reading the source's tables", s_src_tables_sql, 1, params,
                        s_on_src_tables);
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
    preflight_run_query(
        p, "reading the source's extensions",
        "SELECT e.extname FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'"
        " ORDER BY 1",
        0, NULL, s_on_src_extensions);
}

const steprun_fn preflight_src_stages[] = {
    preflight_run_connect, s_src_settings, s_src_timeouts, s_src_tables, s_src_extensions, NULL,
};
