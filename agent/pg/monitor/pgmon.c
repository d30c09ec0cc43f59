/*
 * pgmon: the agent's periodic reading of its local PostgreSQL server (see
 * pgmon.h for what is collected and how the agent uses it).
 *
 * Each tick sends one catalog query over one pgconn. The query builds a
 * single JSON document on the server (json_build_object/json_agg), so a
 * reading is one round trip and one consistent snapshot; the SQL differs by
 * server version (13 .. 17+, see s_build_sql) and everything in it is
 * schema-qualified with pg_catalog because the session runs with an empty
 * search_path. 64-bit figures travel as JSON strings so nothing is rounded
 * through a double; LSNs travel as text and go through lsn_parse.
 *
 * What it owns: the pgconn, copies of the connection parameters, the last
 * JSON document read (cJSON), the last error and the WAL-rate sample.
 * pgmon_snapshot builds a fresh Godwit__Postgres from those every time.
 *
 * Reachability: "reachable" means the server answered our query (even with
 * an SQL error); a failed connect or a lost or timed-out connection (sqlstate
 * class 08, pgconn drops a connection whose deadline passed) makes it
 * unreachable. The state callback fires on each change between the two, and
 * also when the very first attempt finds the server unreachable; it is
 * always the last thing a code path does, so it may destroy the pgmon.
 *
 * What it must never do: block the loop, start a second connection or query
 * while one is in flight, or change anything on the server.
 */
#include "pgmon.h"
#include "log.h"
#include "lsn.h"
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
#define S_DEADLINE_SLACK_MS 1000 /* client deadline = statement_timeout + this */

typedef enum { S_UNKNOWN, S_REACHABLE, S_UNREACHABLE } s_reach_t;

struct pgmon {
    uv_loop_t *loop;
    pgconn_t *conn;
    pgmon_state_cb cb;
    void *cb_arg;
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;

    char *sql;           /* the catalog query for sql_version */
    int sql_version;

    s_reach_t reach;
    char *error;         /* why unreachable, or the last query error; NULL if none */
    cJSON *doc;          /* last document read, NULL before the first */
    uint64_t collected_at_ms;

    uint64_t sent_mono_ms;   /* when the query in flight was sent */
    bool have_lsn_sample;
    uint64_t sample_lsn, sample_mono_ms;
    bool has_wal_rate;
    double wal_bytes_per_sec;
};

/* ---- the catalog query -------------------------------------------------- */

/* One statement, one row, one column: a JSON document. The %s holes are the
 * version-dependent pieces filled in by s_build_sql, in this order:
 *   1 spill bytes column, 2 pg_stat_replication_slots join,
 *   3 the filter picking a subscription's apply worker in pg_stat_subscription,
 *   4, 5 apply/sync error count columns, 6 pg_stat_subscription_stats join. */
static const char s_sql_template[] =
    "WITH cur AS ("
    " SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,"
    "  CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
    "       ELSE pg_catalog.pg_current_wal_lsn() END AS lsn"
    ") "
    "SELECT pg_catalog.json_build_object("
    " 'server_version_num', pg_catalog.current_setting('server_version_num')::pg_catalog.int4,"
    " 'server_version', pg_catalog.current_setting('server_version'),"
    " 'wal_level', pg_catalog.current_setting('wal_level'),"
    " 'in_recovery', cur.in_recovery,"
    " 'current_lsn', cur.lsn::pg_catalog.text,"
    /* a standby (the physical path): received, replayed, streaming now */
    " 'receive_lsn', CASE WHEN cur.in_recovery THEN"
    "   pg_catalog.pg_last_wal_receive_lsn()::pg_catalog.text END,"
    " 'replay_lsn', CASE WHEN cur.in_recovery THEN cur.lsn::pg_catalog.text END,"
    " 'wal_receiver_streaming', cur.in_recovery AND EXISTS (SELECT 1"
    "   FROM pg_catalog.pg_stat_wal_receiver w WHERE w.status = 'streaming'),"
    " 'database', pg_catalog.current_database(),"
    /* pg_settings.setting is in the GUC's unit, MB here; -1 = unlimited */
    " 'max_slot_wal_keep_size_mb', (SELECT gs.setting FROM pg_catalog.pg_settings gs"
    "   WHERE gs.name = 'max_slot_wal_keep_size'),"
    /* pg_database_size needs CONNECT or pg_read_all_stats, else it errors */
    " 'databases', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object("
    "    'name', d.datname,"
    "    'size', CASE WHEN pg_catalog.has_database_privilege(d.oid, 'CONNECT')"
    "                   OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')"
    "              THEN pg_catalog.pg_database_size(d.oid)::pg_catalog.text END)"
    "    ORDER BY d.datname)"
    "   FROM pg_catalog.pg_database d WHERE d.datallowconn AND NOT d.datistemplate),"
    " 'slots', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object("
    "    'name', r.slot_name, 'type', r.slot_type, 'plugin', r.plugin,"
    "    'database', r.database, 'active', r.active,"
    "    'restart_lsn', r.restart_lsn::pg_catalog.text,"
    "    'confirmed_flush_lsn', r.confirmed_flush_lsn::pg_catalog.text,"
    "    'wal_status', r.wal_status,"
    "    'retained_bytes', pg_catalog.pg_wal_lsn_diff(cur.lsn, r.restart_lsn)::pg_catalog.text,"
    "    'spill_bytes', %s,"
    /* replay_lag is NULL once the receiver has caught up and gone idle */
    "    'replay_lag_seconds', (SELECT pg_catalog.date_part('epoch', sr.replay_lag)"
    "      FROM pg_catalog.pg_stat_replication sr WHERE sr.pid = r.active_pid))"
    "    ORDER BY r.slot_name)"
    "   FROM pg_catalog.pg_replication_slots r %s),"
    /* pg_subscription is shared: every database's subscriptions */
    " 'subscriptions', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object("
    "    'name', s.subname, 'oid', s.oid, 'database', sd.datname, 'enabled', s.subenabled,"
    "    'received_lsn', w.received_lsn::pg_catalog.text,"
    "    'latest_end_lsn', w.latest_end_lsn::pg_catalog.text,"
    "    'seconds_since_last_msg',"
    "      EXTRACT(epoch FROM pg_catalog.now() - w.last_msg_receipt_time)::pg_catalog.float8,"
    "    'apply_error_count', %s, 'sync_error_count', %s)"
    "    ORDER BY s.subname)"
    "   FROM pg_catalog.pg_subscription s"
    "   LEFT JOIN pg_catalog.pg_database sd ON sd.oid = s.subdbid"
    "   LEFT JOIN LATERAL (SELECT st.received_lsn, st.latest_end_lsn, st.last_msg_receipt_time"
    "     FROM pg_catalog.pg_stat_subscription st"
    "     WHERE st.subid = s.oid AND %s LIMIT 1) w ON true"
    "   %s),"
    " 'publications', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object("
    "    'name', p.pubname, 'all_tables', p.puballtables,"
    "    'table_count', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_publication_tables pt"
    "                    WHERE pt.pubname = p.pubname)::pg_catalog.text)"
    "    ORDER BY p.pubname)"
    "   FROM pg_catalog.pg_publication p)"
    ")::pg_catalog.text FROM cur";

/* The catalog query for a server version (caller frees), or NULL below 13. */
static char *s_build_sql(int version)
{
    if (version < S_MIN_SERVER_VERSION)
        return NULL;
    /* pg_stat_replication_slots: 14+. */
    bool slot_stats = version >= 140000;
    /* pg_stat_subscription_stats: 15+. */
    bool sub_stats = version >= 150000;
    /* The apply worker's row: relid IS NULL up to 15; 16 adds parallel apply
     * workers (also relid NULL) told apart by leader_pid; 17 names the type. */
    const char *apply_row = version >= 170000   ? "st.worker_type = 'apply'"
                            : version >= 160000 ? "st.relid IS NULL AND st.leader_pid IS NULL"
                                                : "st.relid IS NULL";
    return xasprintf(
        s_sql_template, slot_stats ? "rs.spill_bytes::pg_catalog.text" : "NULL::pg_catalog.text",
        slot_stats ? "LEFT JOIN pg_catalog.pg_stat_replication_slots rs ON rs.slot_name = r.slot_name"
                   : "",
        sub_stats ? "ss.apply_error_count::pg_catalog.text" : "NULL::pg_catalog.text",
        sub_stats ? "ss.sync_error_count::pg_catalog.text" : "NULL::pg_catalog.text", apply_row,
        sub_stats ? "LEFT JOIN pg_catalog.pg_stat_subscription_stats ss ON ss.subid = s.oid" : "");
}

/* ---- reading the document ---------------------------------------------- */

/* A non-negative integer given as a JSON string of digits or a JSON number. */
static bool s_ju64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v) && v->valuestring[0]) {
        uint64_t n = 0;
        for (const char *p = v->valuestring; *p; p++) {
            if (*p < '0' || *p > '9')
                return false;
            unsigned d = (unsigned)(*p - '0');
            if (n > (UINT64_MAX - d) / 10)
                return false;
            n = n * 10 + d;
        }
        *out = n;
        return true;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 18446744073709551616.0) {
        *out = (uint64_t)v->valuedouble;
        return true;
    }
    return false;
}

static uint64_t s_ju64_or0(const cJSON *o, const char *key)
{
    uint64_t v = 0;
    return s_ju64(o, key, &v) ? v : 0;
}

/* A signed integer given as a JSON string ("-1", "1024") or number. */
static bool s_ji64(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        long long n = strtoll(v->valuestring, &end, 10);
        if (errno || end == v->valuestring || *end)
            return false;
        *out = n;
        return true;
    }
    if (cJSON_IsNumber(v)) {
        *out = (int64_t)v->valuedouble;
        return true;
    }
    return false;
}

static bool s_jlsn(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && lsn_parse(v->valuestring, out);
}

static uint64_t s_jlsn_or0(const cJSON *o, const char *key)
{
    uint64_t v = 0;
    return s_jlsn(o, key, &v) ? v : LSN_INVALID;
}

static bool s_jbool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A malloc'd copy of a string member, or NULL (the field keeps protobuf-c's
 * shared empty default, which free_unpacked leaves alone). */
static char *s_jstrdup(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

static void s_set_str(char **field, const cJSON *o, const char *key)
{
    char *s = s_jstrdup(o, key);
    if (s)
        *field = s;
}

/* The objects of a JSON array member (json_agg gives null for no rows):
 * their count, and a malloc'd array of n pointers for the caller to fill
 * (NULL when n is 0). */
static size_t s_jarray(const cJSON *o, const char *key, const cJSON **first)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    size_t n = 0;
    *first = NULL;
    if (!cJSON_IsArray(a))
        return 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_IsObject(it))
            n++;
    }
    *first = a->child;
    return n;
}

static void s_fill_databases(Godwit__Postgres *p, const cJSON *doc)
{
    const cJSON *it;
    size_t n = s_jarray(doc, "databases", &it);
    if (n == 0)
        return;
    p->databases = xcalloc(n, sizeof *p->databases);
    for (; it && p->n_databases < n; it = it->next) {
        if (!cJSON_IsObject(it))
            continue;
        Godwit__Database *d = xmalloc(sizeof *d);
        godwit__database__init(d);
        s_set_str(&d->name, it, "name");
        d->size_bytes = s_ju64_or0(it, "size");
        p->databases[p->n_databases++] = d;
    }
}

static void s_fill_slots(Godwit__Postgres *p, const cJSON *doc)
{
    const cJSON *it;
    size_t n = s_jarray(doc, "slots", &it);
    if (n == 0)
        return;
    p->slots = xcalloc(n, sizeof *p->slots);
    for (; it && p->n_slots < n; it = it->next) {
        if (!cJSON_IsObject(it))
            continue;
        Godwit__Slot *s = xmalloc(sizeof *s);
        godwit__slot__init(s);
        s_set_str(&s->name, it, "name");
        s_set_str(&s->type, it, "type");
        s_set_str(&s->plugin, it, "plugin");
        s_set_str(&s->database, it, "database");
        s->active = s_jbool(it, "active");
        /* negative (restart_lsn ahead of a replaying standby) reads as 0 */
        s->retained_bytes = s_ju64_or0(it, "retained_bytes");
        s->restart_lsn = s_jlsn_or0(it, "restart_lsn");
        s->confirmed_flush_lsn = s_jlsn_or0(it, "confirmed_flush_lsn");
        s_set_str(&s->wal_status, it, "wal_status");
        s->has_spill = s_ju64(it, "spill_bytes", &s->spill_bytes);
        if (s->active) {
            const cJSON *lag = cJSON_GetObjectItemCaseSensitive(it, "replay_lag_seconds");
            s->has_replay_lag = true;
            s->replay_lag_seconds = cJSON_IsNumber(lag) && lag->valuedouble > 0 ? lag->valuedouble : 0;
        }
        p->slots[p->n_slots++] = s;
    }
}

static void s_fill_subscriptions(Godwit__Postgres *p, const cJSON *doc)
{
    const cJSON *it;
    size_t n = s_jarray(doc, "subscriptions", &it);
    if (n == 0)
        return;
    p->subscriptions = xcalloc(n, sizeof *p->subscriptions);
    for (; it && p->n_subscriptions < n; it = it->next) {
        if (!cJSON_IsObject(it))
            continue;
        Godwit__Subscription *s = xmalloc(sizeof *s);
        godwit__subscription__init(s);
        s_set_str(&s->name, it, "name");
        s_set_str(&s->database, it, "database");
        s->enabled = s_jbool(it, "enabled");
        uint64_t oid = 0;
        if (s_ju64(it, "oid", &oid) && oid <= UINT32_MAX)
            s->oid = (uint32_t)oid;
        s->received_lsn = s_jlsn_or0(it, "received_lsn");
        s->latest_end_lsn = s_jlsn_or0(it, "latest_end_lsn");
        const cJSON *age = cJSON_GetObjectItemCaseSensitive(it, "seconds_since_last_msg");
        if (cJSON_IsNumber(age)) {
            s->has_last_msg = true;
            /* now() is the statement's start: a message received since then
             * gives a tiny negative age */
            s->seconds_since_last_msg = age->valuedouble > 0 ? age->valuedouble : 0;
        }
        s->has_error_counts = s_ju64(it, "apply_error_count", &s->apply_error_count) &&
                              s_ju64(it, "sync_error_count", &s->sync_error_count);
        if (!s->has_error_counts)
            s->apply_error_count = s->sync_error_count = 0;
        p->subscriptions[p->n_subscriptions++] = s;
    }
}

static void s_fill_publications(Godwit__Postgres *p, const cJSON *doc)
{
    const cJSON *it;
    size_t n = s_jarray(doc, "publications", &it);
    if (n == 0)
        return;
    p->publications = xcalloc(n, sizeof *p->publications);
    for (; it && p->n_publications < n; it = it->next) {
        if (!cJSON_IsObject(it))
            continue;
        Godwit__Publication *pub = xmalloc(sizeof *pub);
        godwit__publication__init(pub);
        s_set_str(&pub->name, it, "name");
        s_set_str(&pub->database, doc, "database");
        pub->all_tables = s_jbool(it, "all_tables");
        uint64_t count = s_ju64_or0(it, "table_count");
        pub->table_count = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
        p->publications[p->n_publications++] = pub;
    }
}

/* ---- state -------------------------------------------------------------- */

static void s_set_error(pgmon_t *m, const char *error)
{
    free(m->error);
    m->error = xstrdup(error);
}

/* Calls the state callback with a private copy of reason, so the callback
 * may destroy m. Must be the last thing the calling path does with m. */
static void s_notify(pgmon_t *m, bool reachable, const char *reason)
{
    pgmon_state_cb cb = m->cb;
    void *arg = m->cb_arg;
    char *copy = xstrdup(reason);
    if (cb)
        cb(reachable, copy, arg);
    free(copy);
}

/* The server answered. Last action of its caller (may notify). */
static void s_mark_reachable(pgmon_t *m)
{
    s_reach_t was = m->reach;
    m->reach = S_REACHABLE;
    if (was == S_UNREACHABLE) {
        log_debug("pgmon: postgres reachable again");
        s_notify(m, true, NULL);
    }
}

/* The server did not answer. Last action of its caller (may notify). */
static void s_mark_unreachable(pgmon_t *m, const char *reason)
{
    s_reach_t was = m->reach;
    s_set_error(m, reason ? reason : "unknown error");
    m->reach = S_UNREACHABLE;
    log_debug("pgmon: postgres unreachable: %s", m->error);
    if (was != S_UNREACHABLE)
        s_notify(m, false, m->error);
}

/* ---- the tick ----------------------------------------------------------- */

static void s_on_result(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgmon_t *m = arg;
    if (!r->ok) {
        if (strncmp(r->sqlstate, "08", 2) == 0) {
            s_mark_unreachable(m, r->error);
            return;
        }
        /* The server answered with an error (statement timeout, a catalog
         * we got wrong, permissions): reachable, figures stale. */
        const char *why = r->error ? r->error : "catalog query failed";
        if (!m->error || strcmp(m->error, why) != 0) { /* once, not every tick */
            char *msg = pgconn_result_message("pgmon: catalog query failed", r);
            log_warn("%s", msg);
            free(msg);
        }
        s_set_error(m, why);
        s_mark_reachable(m);
        return;
    }
    cJSON *doc = NULL;
    if (r->res && PQntuples(r->res) == 1 && PQnfields(r->res) == 1 && !PQgetisnull(r->res, 0, 0))
        doc = cJSON_Parse(PQgetvalue(r->res, 0, 0));
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        log_warn("pgmon: catalog query returned no JSON document");
        s_set_error(m, "catalog query returned no JSON document");
        s_mark_reachable(m);
        return;
    }
    cJSON_Delete(m->doc);
    m->doc = doc;
    m->collected_at_ms = units_now_ms();
    free(m->error);
    m->error = NULL;

    uint64_t lsn;
    if (s_jlsn(doc, "current_lsn", &lsn)) {
        if (m->have_lsn_sample && m->sent_mono_ms > m->sample_mono_ms) {
            double secs = (double)(m->sent_mono_ms - m->sample_mono_ms) / 1000.0;
            m->wal_bytes_per_sec = (double)lsn_diff(lsn, m->sample_lsn) / secs;
            m->has_wal_rate = true;
        }
        if (!m->have_lsn_sample || m->sent_mono_ms > m->sample_mono_ms) {
            m->have_lsn_sample = true;
            m->sample_lsn = lsn;
            m->sample_mono_ms = m->sent_mono_ms;
        }
    }
    s_mark_reachable(m);
}

/* Sends the catalog query on the ready connection. Last action of its
 * caller (may notify). */
static void s_query(pgmon_t *m)
{
    int version = pgconn_server_version(m->conn);
    if (!m->sql || m->sql_version != version) {
        free(m->sql);
        m->sql = s_build_sql(version);
        m->sql_version = version;
    }
    if (!m->sql) {
        char *why = xasprintf("PostgreSQL server version %d is not supported (13 or later)",
                              version);
        log_warn("pgmon: %s", why);
        s_set_error(m, why);
        free(why);
        s_mark_reachable(m);
        return;
    }
    m->sent_mono_ms = units_mono_ms();
    uint64_t deadline = (uint64_t)m->statement_timeout_ms + S_DEADLINE_SLACK_MS;
    int rc = pgconn_query(m->conn, m->sql, 0, NULL, deadline, s_on_result, m);
    if (rc != 0)
        log_debug("pgmon: cannot send the catalog query: %s", strerror(-rc));
}

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    pgmon_t *m = arg;
    if (!ok) {
        s_mark_unreachable(m, error);
        return;
    }
    s_query(m);
}

void pgmon_tick(pgmon_t *m)
{
    if (!m)
        return;
    if (pgconn_is_busy(m->conn)) {
        log_debug("pgmon: previous refresh still in flight, skipping this tick");
        return;
    }
    if (pgconn_is_ready(m->conn)) {
        s_query(m);
        return;
    }
    int rc = pgconn_connect(m->conn, (uint64_t)m->connect_timeout_ms, s_on_connect, m);
    if (rc != 0)
        log_debug("pgmon: cannot start connecting: %s", strerror(-rc));
}

/* ---- lifetime ----------------------------------------------------------- */

pgmon_t *pgmon_new(uv_loop_t *loop, const pgmon_params_t *params, pgmon_state_cb cb, void *arg)
{
    if (!loop || !params || !params->host || !params->host[0] || !params->dbname ||
        !params->dbname[0] || params->port < 1 || params->port > 65535 ||
        params->connect_timeout_ms <= 0 || params->connect_timeout_ms > INT32_MAX ||
        params->statement_timeout_ms <= 0 || params->statement_timeout_ms > INT32_MAX)
        return NULL;

    char port[16], connect_timeout[32];
    snprintf(port, sizeof port, "%d", params->port);
    /* libpq wants whole seconds (and reads 1 as 2); pgconn's deadline is the
     * real bound, this only covers libpq's own blocking paths. */
    snprintf(connect_timeout, sizeof connect_timeout, "%" PRId64,
             (params->connect_timeout_ms + 999) / 1000);
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path=",
                              params->statement_timeout_ms);

    const char *kw[10], *val[10];
    int n = 0;
    kw[n] = "host", val[n++] = params->host;
    kw[n] = "port", val[n++] = port;
    kw[n] = "dbname", val[n++] = params->dbname;
    if (params->user && params->user[0])
        kw[n] = "user", val[n++] = params->user;
    if (params->passfile && params->passfile[0])
        kw[n] = "passfile", val[n++] = params->passfile;
    kw[n] = "application_name", val[n++] = "godwit-agent";
    kw[n] = "options", val[n++] = options;
    kw[n] = "connect_timeout", val[n++] = connect_timeout;
    kw[n] = NULL, val[n] = NULL;

    pgconn_t *conn = pgconn_new(loop, "agent pgmon", kw, val);
    free(options);
    if (!conn)
        return NULL;
    pgmon_t *m = xcalloc(1, sizeof *m);
    m->loop = loop;
    m->conn = conn;
    m->cb = cb;
    m->cb_arg = arg;
    m->connect_timeout_ms = params->connect_timeout_ms;
    m->statement_timeout_ms = params->statement_timeout_ms;
    m->reach = S_UNKNOWN;
    return m;
}

bool pgmon_reachable(const pgmon_t *m)
{
    return m && m->reach == S_REACHABLE;
}

Godwit__Postgres *pgmon_snapshot(const pgmon_t *m)
{
    Godwit__Postgres *p = xmalloc(sizeof *p);
    godwit__postgres__init(p);
    if (!m)
        return p;
    p->reachable = m->reach == S_REACHABLE;
    if (m->error)
        p->error = xstrdup(m->error);
    else if (m->reach == S_UNKNOWN)
        p->error = xstrdup("not read yet");
    p->has_wal_rate = m->has_wal_rate;
    p->wal_bytes_per_sec = m->wal_bytes_per_sec;
    const cJSON *doc = m->doc;
    if (!doc)
        return p;
    p->collected_at_ms = m->collected_at_ms;
    uint64_t num = 0;
    if (s_ju64(doc, "server_version_num", &num) && num <= UINT32_MAX)
        p->server_version_num = (uint32_t)num;
    s_set_str(&p->server_version, doc, "server_version");
    s_set_str(&p->wal_level, doc, "wal_level");
    p->current_lsn = s_jlsn_or0(doc, "current_lsn");
    p->in_recovery = s_jbool(doc, "in_recovery");
    if (p->in_recovery) {
        p->receive_lsn = s_jlsn_or0(doc, "receive_lsn");
        p->replay_lsn = s_jlsn_or0(doc, "replay_lsn");
        p->wal_receiver_streaming = s_jbool(doc, "wal_receiver_streaming");
    }
    int64_t keep = -1;
    if (s_ji64(doc, "max_slot_wal_keep_size_mb", &keep))
        p->max_slot_wal_keep_size_mb = keep;
    else
        p->max_slot_wal_keep_size_mb = -1;
    s_fill_databases(p, doc);
    s_fill_slots(p, doc);
    s_fill_subscriptions(p, doc);
    s_fill_publications(p, doc);
    return p;
}

void pgmon_destroy(pgmon_t **mp)
{
    if (!mp || !*mp)
        return;
    pgmon_t *m = *mp;
    *mp = NULL;
    /* pgconn frees itself once its handles have closed; m has none. */
    pgconn_destroy(&m->conn);
    cJSON_Delete(m->doc);
    free(m->error);
    free(m->sql);
    free(m);
}
