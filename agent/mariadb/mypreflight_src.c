/*
 * mypreflight_src: the source's checks (mypreflight.h): the server's
 * binary log settings, then the database and its tables. Each stage sends
 * one statement and turns the answer into findings and facts.
 *
 * information_schema compares names case-insensitively (its columns'
 * collation), while a database or table name on Linux is case-sensitive
 * (lower_case_table_names = 0): the statements select by name and the
 * answers are filtered here by the exact bytes (strcmp).
 */
#include "mypreflight_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mytext.h"
#include "units.h"
#include "xalloc.h"

/* ---- the server's settings ----------------------------------------------- */

/* gtid_strict_mode is MariaDB's (MySQL 8 has gtid_mode and
 * enforce_gtid_consistency instead). */
static const char S_SETTINGS_SQL[] =
    "SELECT @@version AS version, @@server_id AS server_id, @@log_bin AS log_bin,"
    " @@binlog_format AS binlog_format, @@binlog_row_image AS binlog_row_image,"
    " @@gtid_strict_mode AS gtid_strict_mode,"
    " @@binlog_expire_logs_seconds AS binlog_expire_logs_seconds,"
    " @@log_slave_updates AS log_slave_updates";

static uint64_t s_u64(const char *v)
{
    if (!v || *v < '0' || *v > '9')
        return 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return *end ? 0 : n;
}

static void s_on_settings(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    if (!r->ok) {
        mypf_fail_query(p, "the source", r);
        return;
    }
    if (r->n_rows != 1) {
        mystep_failf(&p->step, "reading the source's settings: no row returned");
        return;
    }
    Godwit__SourceFacts *f = p->result->facts;
    const char *version = myconn_col(r, 0, "version");
    f->server_version = xstrdup(version ? version : "");
    f->server_version_num = mytext_version_num(version);
    uint64_t id = s_u64(myconn_col(r, 0, "server_id"));
    f->server_id = id <= UINT32_MAX ? (uint32_t)id : 0;

    if (!mytext_bool(myconn_col(r, 0, "log_bin")))
        mypf_add(p, MYPF_ERROR, "binlog_off", "log_bin",
                 xstrdup("the binary log is off (log_bin) on the source: the target follows the "
                         "source by replicating its binary log, so without it none of the "
                         "source's writes after the copy would reach the target"),
                 xstrdup("Set log_bin (e.g. log_bin = mariadb-bin) and a server_id in the "
                         "[mariadb] section of the source server's configuration file and "
                         "restart the server: log_bin cannot be changed while it runs."));
    if (p->reverse && !mytext_bool(myconn_col(r, 0, "log_slave_updates")))
        mypf_add(p, MYPF_ERROR, "log_slave_updates", "log_slave_updates",
                 xstrdup("log_slave_updates is off on the source: with cutover.reverse on it "
                         "follows the target after the cutover, and a rollback makes it the "
                         "primary again while the target follows it back from its binary log"),
                 xstrdup(MYPF_LOG_SLAVE_UPDATES_FIX));
    const char *format = myconn_col(r, 0, "binlog_format");
    if (!format || strcasecmp(format, "ROW") != 0)
        mypf_add(p, MYPF_ERROR, "binlog_format", "binlog_format",
                 xasprintf("binlog_format is %s on the source: the target applies the source's "
                           "changes as rows, which only ROW logs for every statement (STATEMENT "
                           "and MIXED log statements whose result can differ on the target)",
                           format ? format : "unknown"),
                 xstrdup("SET GLOBAL binlog_format = 'ROW'; and binlog_format = ROW in the "
                         "server's configuration file. Sessions already open keep their format "
                         "until they reconnect: restart the application's connections."));
    const char *image = myconn_col(r, 0, "binlog_row_image");
    if (!image || strcasecmp(image, "FULL") != 0)
        mypf_add(p, MYPF_ERROR, "binlog_row_image", "binlog_row_image",
                 xasprintf("binlog_row_image is %s on the source: its row events carry only part "
                           "of each row, so the target finds a changed row by what the event "
                           "holds rather than the whole row, and a row that differs there is "
                           "changed wrongly or not found",
                           image ? image : "unknown"),
                 xstrdup("SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image = FULL in "
                         "the server's configuration file (sessions already open keep theirs "
                         "until they reconnect)."));
    if (!mytext_bool(myconn_col(r, 0, "gtid_strict_mode")))
        mypf_add(p, MYPF_WARNING, "gtid_strict_mode", "gtid_strict_mode",
                 xstrdup("gtid_strict_mode is off on the source: its binary log may take a "
                         "transaction out of GTID order (a replica promoted and written to, a "
                         "manual SET gtid_seq_no), and a replica following by GTID could then "
                         "skip or repeat transactions without an error"),
                 xstrdup("SET GLOBAL gtid_strict_mode = ON; and gtid_strict_mode = ON in the "
                         "server's configuration file."));
    uint64_t expire = s_u64(myconn_col(r, 0, "binlog_expire_logs_seconds"));
    if (expire >= 1 && expire < 86400) {
        char dur[32];
        units_fmt_duration_ms(expire * 1000, dur, sizeof dur);
        mypf_add(p, MYPF_WARNING, "binlog_retention", "binlog_expire_logs_seconds",
                 xasprintf("the source's binary logs expire after %s "
                           "(binlog_expire_logs_seconds = %" PRIu64 "): a target further behind "
                           "than that (a long copy, a pause, an outage) cannot resume "
                           "replication, and the migration has to start again",
                           dur, expire),
                 xstrdup("SET GLOBAL binlog_expire_logs_seconds = 604800; (a week, or more than "
                         "the copy and any pause may take) and the same in the server's "
                         "configuration file."));
    }
    if (id == 0)
        mypf_add(p, MYPF_ERROR, "server_id", "server_id",
                 xstrdup("server_id is 0 on the source: a replica refuses to replicate from a "
                         "server without an id"),
                 xstrdup("SET GLOBAL server_id = N; with an N no other server of the "
                         "replication uses, and server_id = N in the server's configuration "
                         "file."));
    mypf_next(p);
}

static void s_src_settings(mypf_t *p)
{
    mypf_query(p, MYPF_LOCAL, "reading the source's settings", S_SETTINGS_SQL, s_on_settings);
}

/* ---- the database and its tables ----------------------------------------- */

/* %1$s: the database as a literal. Rows: 'pk' (tables with a primary key),
 * 'schema' (the database, when it is there), 'table' (every table, view
 * and sequence), each group by name in byte order. */
static const char S_TABLES_SQL[] =
    "SELECT x.what, x.db, x.name, x.type, x.engine, x.bytes FROM ("
    "SELECT 'pk' AS what, c.TABLE_SCHEMA AS db, c.TABLE_NAME AS name, NULL AS type,"
    " NULL AS engine, 0 AS bytes"
    " FROM information_schema.TABLE_CONSTRAINTS c"
    " WHERE c.TABLE_SCHEMA = %1$s AND c.CONSTRAINT_TYPE = 'PRIMARY KEY' "
    "UNION ALL "
    "SELECT 'schema', s.SCHEMA_NAME, NULL, NULL, NULL, 0"
    " FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = %1$s "
    "UNION ALL "
    "SELECT 'table', t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, t.ENGINE,"
    " COALESCE(t.DATA_LENGTH, 0) + COALESCE(t.INDEX_LENGTH, 0)"
    " FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = %1$s"
    ") x ORDER BY x.what, BINARY x.name";

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool s_requested(const mypf_t *p, const char *name)
{
    return !p->req_names ||
           bsearch(&name, p->req_names, p->n_req, sizeof *p->req_names, s_cmp_str) != NULL;
}

static bool s_base_table(const char *type)
{
    /* A system-versioned table is a base table with its history. */
    return type && (strcmp(type, "BASE TABLE") == 0 || strcmp(type, "SYSTEM VERSIONED") == 0);
}

static void s_add_table_fact(mypf_t *p, const char *name)
{
    Godwit__SourceFacts *f = p->result->facts;
    Godwit__TableRef *t = xmalloc(sizeof *t);
    godwit__table_ref__init(t);
    t->schema = xstrdup(p->database);
    t->name = xstrdup(name);
    f->tables = xrealloc(f->tables, (f->n_tables + 1) * sizeof *f->tables);
    f->tables[f->n_tables++] = t;
}

/* One table of the migrated set: its engine and its key. */
static void s_check_table(mypf_t *p, const char *name, const char *engine, bool has_pk)
{
    char *q = mytext_qname(p->database, name);
    if (!engine || strcasecmp(engine, "InnoDB") != 0)
        mypf_add(p, MYPF_ERROR, "storage_engine", q,
                 xasprintf("%s uses the %s storage engine: the copy reads every table in one "
                           "consistent snapshot, and replication applies its changes "
                           "crash-safely, only on InnoDB (this table would be copied at another "
                           "moment than the rest, and a crash could lose or repeat its "
                           "changes)",
                           q, engine ? engine : "(unknown)"),
                 xasprintf("ALTER TABLE %s ENGINE=InnoDB; (rebuilds the table; writes to it wait "
                           "meanwhile)",
                           q));
    if (!has_pk)
        mypf_add(p, MYPF_WARNING, "no_primary_key", q,
                 xasprintf("%s has no primary key: row-based replication then finds each row "
                           "an UPDATE or DELETE changes by scanning the table on the target, "
                           "which on a large table makes the target fall behind",
                           q),
                 xasprintf("ALTER TABLE %s ADD PRIMARY KEY (<key columns>); with columns whose "
                           "values are unique and never NULL.",
                           q));
    free(q);
}

static void s_missing_table(mypf_t *p, const char *schema, const char *name)
{
    char *q = mytext_qname(schema, name);
    bool other_db = strcmp(schema, p->database) != 0;
    mypf_add(p, MYPF_ERROR, "table_missing", q,
             other_db ? xasprintf("the migration lists table %s, in database %s, but it migrates "
                                  "database %s: a MariaDB migration moves tables of its one "
                                  "database",
                                  q, schema, p->database)
                      : xasprintf("the migration lists table %s, but database %s has no such "
                                  "base table (it does not exist, it is a view or a sequence, "
                                  "or the agent's user has no privilege on it), so it cannot "
                                  "be migrated",
                                  q, p->database),
             xstrdup("Correct the migration's table list (database and name as stored, "
                     "case-sensitive, without quotes), or create the table on the source."));
    free(q);
}

static void s_on_tables(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    if (!r->ok) {
        mypf_fail_query(p, "the source", r);
        return;
    }
    Godwit__SourceFacts *f = p->result->facts;
    bool exists = false;
    size_t pk = 0, n_pk = 0, first_pk = r->n_rows;
    bool *seen = p->n_req ? xcalloc(p->n_req, sizeof *seen) : NULL;
    /* The 'pk' rows come first, then 'schema', then 'table', each by name
     * in byte order: the tables meet their keys in one pass. */
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *what = myconn_col(r, i, "what");
        const char *db = myconn_col(r, i, "db");
        if (!what || !db || strcmp(db, p->database) != 0)
            continue;
        const char *name = myconn_col(r, i, "name");
        if (strcmp(what, "pk") == 0) {
            if (first_pk == r->n_rows)
                first_pk = i;
            n_pk = i + 1 - first_pk;
            continue;
        }
        if (strcmp(what, "schema") == 0) {
            exists = true;
            continue;
        }
        if (!name)
            continue;
        f->database_size += s_u64(myconn_col(r, i, "bytes"));
        if (!s_base_table(myconn_col(r, i, "type")) || !s_requested(p, name))
            continue;
        /* The keys' rows before this name (in byte order) are passed. */
        bool has_pk = false;
        while (pk < n_pk) {
            const char *kdb = myconn_col(r, first_pk + pk, "db");
            const char *kname = myconn_col(r, first_pk + pk, "name");
            int cmp = kname ? strcmp(kname, name) : -1;
            if (cmp > 0)
                break;
            pk++;
            if (cmp == 0 && kdb && strcmp(kdb, p->database) == 0) {
                has_pk = true;
                break;
            }
        }
        if (seen) {
            char **hit = bsearch(&name, p->req_names, p->n_req, sizeof *p->req_names, s_cmp_str);
            seen[hit - p->req_names] = true;
        }
        s_add_table_fact(p, name);
        s_check_table(p, name, myconn_col(r, i, "engine"), has_pk);
    }
    if (!exists) {
        f->database_size = 0;
        mypf_add(p, MYPF_ERROR, "database_missing", p->database,
                 xasprintf("database %s is not on the source server, or the agent's user has no "
                           "privilege on it (MariaDB shows a database only to users with one)",
                           p->database),
                 xstrdup("Correct the migration's database name (case-sensitive), or GRANT "
                         "SELECT, SHOW VIEW ON the database to the agent's user "
                         "(mariadb.user)."));
    }
    for (size_t i = 0; exists && i < p->n_req; i++)
        if (!seen[i])
            s_missing_table(p, p->database, p->req_names[i]);
    free(seen);
    mypf_next(p);
}

static void s_src_tables(mypf_t *p)
{
    char *db = mypf_literal(p, MYPF_LOCAL, p->database);
    if (!db)
        return;
    char *sql = xasprintf(S_TABLES_SQL, db);
    mypf_query(p, MYPF_LOCAL, "reading the source's tables", sql, s_on_tables);
    free(sql);
    free(db);
}

/* ---- what the copy moves beside tables ------------------------------------- */

/* %1$s: the database as a literal. One row per kind of object with its
 * count and the first few names. information_schema shows a user only the
 * objects it holds a privilege on: these are what the agent's user sees. */
static const char S_OBJECTS_SQL[] =
    "SELECT 'view' AS kind, COUNT(*) AS n, SUBSTRING(GROUP_CONCAT(TABLE_NAME ORDER BY"
    " TABLE_NAME SEPARATOR ', '), 1, 200) AS names FROM information_schema.VIEWS"
    " WHERE TABLE_SCHEMA = %1$s "
    "UNION ALL SELECT 'routine', COUNT(*), SUBSTRING(GROUP_CONCAT(ROUTINE_NAME ORDER BY"
    " ROUTINE_NAME SEPARATOR ', '), 1, 200) FROM information_schema.ROUTINES"
    " WHERE ROUTINE_SCHEMA = %1$s "
    "UNION ALL SELECT 'trigger', COUNT(*), SUBSTRING(GROUP_CONCAT(TRIGGER_NAME ORDER BY"
    " TRIGGER_NAME SEPARATOR ', '), 1, 200) FROM information_schema.TRIGGERS"
    " WHERE TRIGGER_SCHEMA = %1$s "
    "UNION ALL SELECT 'event', COUNT(*), SUBSTRING(GROUP_CONCAT(EVENT_NAME ORDER BY"
    " EVENT_NAME SEPARATOR ', '), 1, 200) FROM information_schema.EVENTS"
    " WHERE EVENT_SCHEMA = %1$s";

/* One information finding (objects_copied) when the database has any:
 * what the copy will move, and what it needs for that (mycopy.h). */
static void s_on_objects(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    (void)c;
    if (!r->ok) {
        mypf_fail_query(p, "the source", r);
        return;
    }
    mytext_buf_t b = { 0 };
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *kind = myconn_col(r, i, "kind"), *names = myconn_col(r, i, "names");
        uint64_t n = s_u64(myconn_col(r, i, "n"));
        if (!kind || n == 0)
            continue;
        Godwit__SourceFacts *f = p->result->facts;
        f->object_kinds = xrealloc(f->object_kinds, (f->n_object_kinds + 1) *
                                                    sizeof *f->object_kinds);
        f->object_kinds[f->n_object_kinds++] = xstrdup(kind);
        char *one = xasprintf("%s%" PRIu64 " %s%s (%s)", b.s ? ", " : "", n, kind,
                              n == 1 ? "" : "s", names ? names : "?");
        mytext_add(&b, one);
        free(one);
    }
    if (b.s)
        mypf_add(p, MYPF_INFO, "objects_copied", p->database,
                 xasprintf("database %s has %s: the copy makes them on the target after the "
                           "rows, with their DEFINER, events disabled there (DISABLE ON SLAVE) "
                           "until the cutover enables them",
                           p->database, b.s),
                 xasprintf("Nothing to do here. The copy reads their definitions as the target "
                           "agent's peer user: give that user SELECT, SHOW VIEW, TRIGGER and "
                           "EVENT ON %s.* and SELECT ON mysql.proc (routines). The target agent's "
                           "user needs SET USER (or SUPER) to keep a DEFINER other than itself "
                           "and, for functions and triggers on a target whose binary log is on, "
                           "SUPER or log_bin_trust_function_creators = ON; each DEFINER account "
                           "should exist on the target.",
                           p->database));
    free(b.s);
    mypf_next(p);
}

static void s_src_objects(mypf_t *p)
{
    char *db = mypf_literal(p, MYPF_LOCAL, p->database);
    if (!db)
        return;
    char *sql = xasprintf(S_OBJECTS_SQL, db);
    mypf_query(p, MYPF_LOCAL, "reading the source's views, routines, triggers and events", sql,
               s_on_objects);
    free(sql);
    free(db);
}

static const mypf_fn s_src_stages[] = { s_src_settings, s_src_tables, s_src_objects, NULL };

/* ---- starting -------------------------------------------------------------- */

step_t *mypreflight_source_start(uv_loop_t *loop, const mypreflight_local_t *local,
                                 const Godwit__PreflightSource *req, step_done_cb done, void *arg)
{
    if (!req || !req->database)
        return NULL;
    for (size_t i = 0; i < req->n_tables; i++)
        if (!req->tables[i] || !req->tables[i]->schema || !req->tables[i]->schema[0] ||
            !req->tables[i]->name || !req->tables[i]->name[0])
            return NULL;
    mypf_t *p = mypf_new(loop, local, req->database, s_src_stages, done, arg);
    if (!p)
        return NULL;
    p->result->facts = xmalloc(sizeof *p->result->facts);
    godwit__source_facts__init(p->result->facts);
    /* The request's tables of this database, sorted for lookups; those of
     * another database are findings at once. */
    if (req->n_tables > 0) {
        p->req_names = xcalloc(req->n_tables, sizeof *p->req_names);
        for (size_t i = 0; i < req->n_tables; i++) {
            const Godwit__TableRef *t = req->tables[i];
            if (strcmp(t->schema, req->database) != 0) {
                s_missing_table(p, t->schema, t->name);
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < p->n_req && !dup; j++)
                dup = strcmp(p->req_names[j], t->name) == 0;
            if (!dup)
                p->req_names[p->n_req++] = xstrdup(t->name);
        }
        qsort(p->req_names, p->n_req, sizeof *p->req_names, s_cmp_str);
    }
    p->reverse = req->reverse != NULL;
    if (req->reverse) {
        /* After the cutover the source follows the target (cutover.reverse):
         * through a peer of this agent's config. */
        step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                            .config_path = local->config_path };
        char *why = NULL;
        if (!step_peer(&sl, req->reverse, &why)) {
            const char *name = req->reverse->peer && req->reverse->peer[0] ? req->reverse->peer
                                                                          : "(none)";
            char *object = xasprintf("peer %s", name);
            mypf_add(p, MYPF_ERROR, "peer_missing", object,
                     xasprintf("agent %s: %s; after the cutover the source follows the target "
                               "through that peer (cutover.reverse on)",
                               p->agent_name, why),
                     xasprintf("Add a peer named %s (host, port, user, password_file) under "
                               "peers: in %s and restart the agent, or name in the plan's "
                               "reverse_replication one of the peers it has.",
                               name, p->config_path));
            free(object);
        }
        free(why);
    }
    return mypf_start(p);
}
