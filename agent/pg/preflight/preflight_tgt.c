/*
 * preflight_tgt: see preflight_tgt.h. Each stage sends one statement or
 * opens one connection and turns the answer into findings. The source's
 * roles and privileges are read through a normal connection to the source
 * (as the schema phase and verify make) and compared through access.h.
 */
#include "preflight_tgt.h"
#include "preflight_run.h"
#include "access.h"
#include "finding.h"
#include "pgconn.h"
#include "tcplink.h"
#include "units.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        preflight_run_add(
            p, SEV_ERROR, "server_version_older", "server_version",
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
        preflight_run_add(
            p, SEV_WARNING, "server_minor_older", "server_version",
            xasprintf("the target runs PostgreSQL %s (%" PRId64 "), an older minor release "
                      "than the source's %s (%" PRIu32 ")",
                      pgconn_col_str(r->res, 0, "server_version"), num, p->src_version,
                      p->src_version_num),
            xasprintf("Update the target to the latest minor release of its major version."));
    /* After the cutover the source subscribes to the target (reverse
     * replication, for a rollback): the target publishes then. */
    const char *wal_level = pgconn_col_str(r->res, 0, "wal_level");
    if (p->reverse && strcmp(wal_level, "logical") != 0)
        preflight_run_add(
            p, SEV_ERROR, "reverse_wal_level", "wal_level",
            xasprintf("wal_level on the target is %s: after the cutover the source follows the "
                      "target (cutover.reverse is on), which needs wal_level = logical on the "
                      "target, or the cutover is refused",
                      wal_level),
            xstrdup("ALTER SYSTEM SET wal_level = logical; then restart the target server. Or "
                    "set cutover.reverse: off in the plan (then a rollback would lose the "
                    "target's writes)."));
    else if (p->reverse && pgconn_col_i64(r->res, 0, "free_slots", 1) < 1)
        preflight_run_add(
            p, SEV_ERROR, "reverse_slots", "max_replication_slots",
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
    preflight_run_query(
        p, "reading the target's settings",
        "SELECT pg_catalog.current_setting('server_version_num') AS server_version_num,"
        " pg_catalog.current_setting('server_version') AS server_version,"
        " pg_catalog.quote_ident($1) AS repl_user_q, pg_catalog.quote_ident($2) AS repl_db_q,"
        " pg_catalog.current_setting('wal_level') AS wal_level,"
        " pg_catalog.current_setting('max_replication_slots')::pg_catalog.int8 -"
        " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots) AS free_slots",
        2, params, s_on_tgt_settings);
}

/* ---- target: the import profile's rights ---------------------------------- */

static void s_on_tgt_import(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&p->run, "reading the rights the import profile needs: no row returned");
        return;
    }
    const char *denied = pgconn_col_str(r->res, 0, "denied");
    bool files = pgconn_col_bool(r->res, 0, "files"), reload = pgconn_col_bool(r->res, 0, "reload");
    const char *user = pgconn_col_str(r->res, 0, "who");
    if (denied[0] || !files || !reload)
        preflight_run_add(
            p, SEV_ERROR, "import_profile_rights", "import_profile",
            xasprintf("the plan's import profile changes settings of the target's server with "
                      "ALTER SYSTEM, but the agent's role %s %s%s%s%s%s", user,
                      denied[0] ? "may not ALTER SYSTEM " : "", denied,
                      denied[0] && (!files || !reload) ? "; it " : "",
                      !files ? "cannot read pg_file_settings (the recorded state of "
                               "postgresql.auto.conf)" : "",
                      !reload ? (!files ? " and cannot run pg_reload_conf()"
                                        : "cannot run pg_reload_conf()") : ""),
            xasprintf("Connect the target's agent as a superuser, or (PostgreSQL 15 and "
                      "later) GRANT ALTER SYSTEM ON PARAMETER ... TO %s; GRANT EXECUTE ON "
                      "FUNCTION pg_catalog.pg_show_all_file_settings(), "
                      "pg_catalog.pg_reload_conf() TO %s; GRANT SELECT ON "
                      "pg_catalog.pg_file_settings TO %s; or leave import_profile out of the "
                      "plan.", user, user, user));
    steprun_next(&p->run);
}

static void s_tgt_import(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->import_settings) {
        steprun_next(run);
        return;
    }
    /* Before 15 only a superuser may ALTER SYSTEM. */
    const char *may = pgconn_server_version(run->conn[P_LOCAL]) >= 150000
                          ? "pg_catalog.has_parameter_privilege(n, 'ALTER SYSTEM')"
                          : "r.rolsuper";
    char *sql = xasprintf(
        "SELECT pg_catalog.quote_ident(r.rolname) AS who,"
        " coalesce((SELECT pg_catalog.string_agg(n, ', ' ORDER BY n)"
        "  FROM pg_catalog.unnest($1::pg_catalog.text[]) n WHERE NOT %s), '') AS denied,"
        " r.rolsuper OR (pg_catalog.has_function_privilege("
        "  'pg_catalog.pg_show_all_file_settings()', 'EXECUTE') AND"
        "  pg_catalog.has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')) AS files,"
        " pg_catalog.has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE') AS reload"
        " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
        may);
    const char *params[1] = { p->import_settings };
    preflight_run_query(p, "reading the rights the import profile needs", sql, 1, params,
                        s_on_tgt_import);
    free(sql);
}

/* ---- target: tables that already hold rows ------------------------------ */

static void s_on_tgt_tables(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    preflight_run_free_existing(p);
    int n = r->res ? PQntuples(r->res) : 0;
    if (n > 0) {
        p->existing = xcalloc((size_t)n, sizeof *p->existing);
        for (int i = 0; i < n; i++) {
            preflight_run_table_t *t = &p->existing[p->n_existing++];
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
    preflight_run_query(
        p, "looking up the source's tables on the target",
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
    const preflight_run_table_t *t = &p->existing[p->next_existing++];
    if (r->res && PQntuples(r->res) == 1 && pgconn_col_bool(r->res, 0, "has_rows"))
        preflight_run_add(
            p, SEV_ERROR, "target_table_not_empty", t->qname,
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
    const preflight_run_table_t *t = &p->existing[p->next_existing];
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
    preflight_run_query(p, what, sql, 0, NULL, s_on_tgt_rows);
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
            preflight_run_add(
                p, SEV_WARNING, "extension_not_installed", name,
                xasprintf("extension %s is installed in the source database but not in the "
                          "target database %s; the target server has it, so the schema "
                          "phase may create it",
                          name_q, p->database),
                xasprintf("CREATE EXTENSION IF NOT EXISTS %s; in the target database (or "
                          "let the schema phase do it).",
                          name_q));
        else
            preflight_run_add(
                p, SEV_WARNING, "extension_unavailable", name,
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
    preflight_run_query(
        p, "looking up the source's extensions on the target",
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
        preflight_run_add(
            p, SEV_ERROR, "replication_connection", p->repl_where,
            xasprintf("cannot open a logical replication connection to the source as %s, "
                      "and the target's subscription would connect the same way, so "
                      "replication could not start: %s",
                      p->repl_where, error ? error : "unknown error"),
            s_replication_fix(p, error));
    else
        p->repl_ok = true; /* kept for the link's round trips (s_tgt_link) */
    if (!ok)
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

/* ---- target: the link to the source ------------------------------------- */

#define LINK_PROBES 3
#define LINK_LONG_MS 10.0 /* a round trip from which reno's slow recovery costs */

/* The findings of the link: its round trip, both hosts' TCP windows
 * against the plan's bandwidth, their congestion control. */
static void s_tgt_link_findings(preflight_t *p, double rtt_ms)
{
    tcplink_limits_t here;
    tcplink_read_limits("", &here);
    const char *src_cc = p->src_congestion && p->src_congestion[0] ? p->src_congestion : "unknown";
    char rmem[32], wmem[32], bdp_s[32];
    units_fmt_bytes(here.rmem_max, rmem, sizeof rmem);
    units_fmt_bytes(p->src_wmem_max, wmem, sizeof wmem);
    uint64_t bdp = tcplink_bdp_bytes(p->link_mbit, rtt_ms);
    units_fmt_bytes(bdp, bdp_s, sizeof bdp_s);
    preflight_run_add(
        p, GODWIT__SEVERITY__SEVERITY_INFO, "link", p->repl_where,
        xasprintf("the source answers in %.2f ms (the fastest of %d round trips on the "
                  "replication connection); largest TCP windows: receive here %s, send at the "
                  "source %s; congestion control here %s, at the source %s; at %u Mbit/s "
                  "(options.link_mbit) the link needs %s of window",
                  rtt_ms, LINK_PROBES, here.rmem_max ? rmem : "unknown",
                  p->src_wmem_max ? wmem : "unknown",
                  here.congestion[0] ? here.congestion : "unknown", src_cc, p->link_mbit, bdp_s),
        xstrdup(""));
    if (here.rmem_max && tcplink_ceiling_mbit(here.rmem_max, rtt_ms) < p->link_mbit)
        preflight_run_add(
            p, SEV_WARNING, "tcp_receive_window", "net.ipv4.tcp_rmem",
            xasprintf("at %.2f ms round trip this host's largest TCP receive buffer (%s) lets "
                      "one connection carry at most %.0f Mbit/s, under the link's %u Mbit/s: "
                      "the copy's and the subscription's connections would be window-bound",
                      rtt_ms, rmem, tcplink_ceiling_mbit(here.rmem_max, rtt_ms), p->link_mbit),
            xasprintf("On this (the target) host: sysctl -w net.ipv4.tcp_rmem='4096 131072 "
                      "%" PRIu64 "' net.core.rmem_max=%" PRIu64 " (the link's bandwidth-delay "
                      "product, %s, at least), and keep it in /etc/sysctl.d/.",
                      bdp, bdp, bdp_s));
    if (p->src_wmem_max && tcplink_ceiling_mbit(p->src_wmem_max, rtt_ms) < p->link_mbit)
        preflight_run_add(
            p, SEV_WARNING, "tcp_send_window", "net.ipv4.tcp_wmem",
            xasprintf("at %.2f ms round trip the source host's largest TCP send buffer (%s) lets "
                      "one connection carry at most %.0f Mbit/s, under the link's %u Mbit/s",
                      rtt_ms, wmem, tcplink_ceiling_mbit(p->src_wmem_max, rtt_ms), p->link_mbit),
            xasprintf("On the source host: sysctl -w net.ipv4.tcp_wmem='4096 16384 %" PRIu64
                      "' net.core.wmem_max=%" PRIu64 " (%s at least), and keep it in "
                      "/etc/sysctl.d/.",
                      bdp, bdp, bdp_s));
    bool reno_here = strcmp(here.congestion, "reno") == 0,
         reno_there = p->src_congestion && strcmp(p->src_congestion, "reno") == 0;
    if (rtt_ms >= LINK_LONG_MS && (reno_here || reno_there))
        preflight_run_add(
            p, SEV_WARNING, "congestion_control", "net.ipv4.tcp_congestion_control",
            xasprintf("%s uses reno, which halves its window at each loss and regains it one "
                      "segment per round trip: at %.2f ms a lossy link stays slow for long",
                      reno_here && reno_there ? "both hosts" : reno_here ? "this host" : "the source host",
                      rtt_ms),
            xstrdup("Set net.ipv4.tcp_congestion_control to cubic (Linux's default) or bbr on "
                    "both hosts."));
}

static void s_link_probe(preflight_t *p);

static void s_on_link_probe(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    double ms = (double)(units_mono_us() - p->link_sent_us) / 1000.0;
    if (!r->ok) {
        /* The connection answered a moment ago: say so, and go on. */
        preflight_run_add(p, SEV_WARNING, "link", p->repl_where,
                          pgconn_result_message("timing the source's round trip", r),
                          xstrdup("Check the link to the source."));
        pgconn_destroy(&p->run.conn[P_REPL]);
        steprun_next(&p->run);
        return;
    }
    if (p->link_best_ms < 0 || ms < p->link_best_ms)
        p->link_best_ms = ms;
    if (--p->link_left > 0) {
        s_link_probe(p);
        return;
    }
    s_tgt_link_findings(p, p->link_best_ms);
    pgconn_destroy(&p->run.conn[P_REPL]);
    steprun_next(&p->run);
}

static void s_link_probe(preflight_t *p)
{
    p->link_sent_us = units_mono_us();
    int rc = pgconn_query_simple(p->run.conn[P_REPL], "IDENTIFY_SYSTEM",
                                 (uint64_t)p->statement_timeout_ms, s_on_link_probe, p);
    if (rc != 0) {
        pgconn_destroy(&p->run.conn[P_REPL]);
        steprun_failf(&p->run, "cannot time the source's round trip: %s", strerror(-rc));
    }
}

/* The round trip to the source, timed on the replication connection the
 * check above opened (a replication command, so it runs on the WAL sender
 * the subscription would use), then what the hosts' TCP settings allow at
 * that distance. */
static void s_tgt_link(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->repl_ok || !p->run.conn[P_REPL]) {
        steprun_next(&p->run);
        return;
    }
    p->link_left = LINK_PROBES;
    p->link_best_ms = -1;
    s_link_probe(p);
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
    preflight_run_add(p, sev, code, d->object, message, fix);
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
        preflight_run_add(
            p, SEV_ERROR, "passwords_unreadable", p->repl_where,
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
    preflight_run_query(p, "reading the target's roles and privileges", access_catalog_sql, 1,
                        params, s_on_tgt_access_dst);
    free(names);
}

static void s_on_tgt_src_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    preflight_t *p = arg;
    if (!ok) {
        preflight_run_add(
            p, SEV_ERROR, "source_connection", p->repl_where,
            xasprintf("cannot connect to the source database as %s to read its schema, roles "
                      "and privileges (the schema phase and verify connect the same way): %s",
                      p->repl_where, error ? error : "unknown error"),
            s_replication_fix(p, error));
        pgconn_destroy(&p->run.conn[P_SRC]);
        steprun_next(&p->run);
        return;
    }
    const char *params[1] = { p->app_roles };
    preflight_run_query_on(p, P_SRC, "reading the source's roles and privileges",
                           access_catalog_sql, 1, params, s_on_tgt_access_src);
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
    finding_disk_space(p->result, &p->findings_cap, p->data_directory, "postgres.data_directory",
                       p->src_size, p->disk_margin);
    steprun_next(&p->run);
}

/* ---- target: how fast it writes (diskprobe.h) --------------------------- */

static void s_tgt_disk_write_findings(preflight_t *p)
{
    const diskprobe_t *d = p->probe;
    if (!d->ok) {
        preflight_run_add(p, SEV_WARNING, "disk_write", p->data_directory,
                          xasprintf("cannot time the target's writes (a scratch table written "
                                    "in a transaction rolled back): %s; the copy's duration "
                                    "cannot be predicted", d->error),
                          xstrdup("Check the target server's log."));
        return;
    }
    double rate = diskprobe_rate(d);
    bool disk_bound;
    double secs = diskprobe_predict_s(rate, p->src_size, p->link_mbit, &disk_bound);
    char probe_s[32], rate_s[32], size_s[32], dur_s[32], link_s[32];
    units_fmt_bytes(DISKPROBE_BYTES, probe_s, sizeof probe_s);
    units_fmt_bytes((uint64_t)rate, rate_s, sizeof rate_s);
    units_fmt_bytes(p->src_size, size_s, sizeof size_s);
    units_fmt_duration_ms((uint64_t)(secs * 1000), dur_s, sizeof dur_s);
    units_fmt_bytes((uint64_t)p->link_mbit * 1000000 / 8, link_s, sizeof link_s);
    preflight_run_add(
        p, SEV_INFO, "disk_write", p->data_directory,
        xasprintf("the target's server wrote %s (rows into a scratch table, in a transaction "
                  "rolled back: its WAL, synced at each segment) in %.0f ms: %s/s; the source "
                  "database's %s would take about %s to arrive, bound by %s (the link: %u "
                  "Mbit/s, options.link_mbit, %s/s)",
                  probe_s, d->ms, rate_s, size_s, dur_s, disk_bound ? "this disk" : "the link",
                  p->link_mbit, link_s),
        xstrdup(""));
    if (disk_bound)
        preflight_run_add(
            p, SEV_WARNING, "disk_write_slow", p->data_directory,
            xasprintf("the target writes %s/s, less than the link carries (%s/s at %u Mbit/s): "
                      "the copy, and the catch-up after it, are bound by the target's storage; "
                      "the source database's %s would take about %s",
                      rate_s, link_s, p->link_mbit, size_s, dur_s),
            xstrdup("Put the target's data directory and its pg_wal on faster storage (NVMe), "
                    "or plan for that duration (and lower options.link_mbit if the link is "
                    "slower than the plan says)."));
}

static void s_on_disk_probe(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    diskprobe_t *d = p->probe;
    d->ms = (double)(units_mono_us() - p->probe_sent_us) / 1000.0;
    d->ok = r->ok;
    d->error[0] = '\0';
    if (!r->ok) {
        char *m = pgconn_result_message("writing the scratch table", r);
        snprintf(d->error, sizeof d->error, "%s", m);
        free(m);
    }
    d->started_mono_ms = 0;
    d->ended_mono_ms = units_mono_ms();
    s_tgt_disk_write_findings(p);
    steprun_next(&p->run);
}

/* The agent's server timed once for all the checks of a while: a check
 * finds a fresh result, or waits for the probe another check runs, or
 * runs it. A check cancelled meanwhile leaves its probe "running": the
 * others take it for lost after twice the statement timeout. */
static void s_tgt_disk_write(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    diskprobe_t *d = p->probe;
    uint64_t now = units_mono_ms();
    if (!d) {
        steprun_next(&p->run);
    } else if (diskprobe_fresh(d, now)) {
        s_tgt_disk_write_findings(p);
        steprun_next(&p->run);
    } else if (diskprobe_running(d, now, 2 * (uint64_t)p->statement_timeout_ms)) {
        steprun_after(&p->run, 50, s_tgt_disk_write);
    } else {
        d->started_mono_ms = now ? now : 1;
        p->probe_sent_us = units_mono_us();
        steprun_query_simple(&p->run, P_LOCAL, "timing the target's writes", DISKPROBE_SQL,
                             (uint64_t)p->statement_timeout_ms, s_on_disk_probe);
    }
}

const steprun_fn preflight_tgt_stages[] = {
    preflight_run_connect, s_tgt_settings, s_tgt_import, s_tgt_tables, s_tgt_rows,
    s_tgt_extensions,
    s_tgt_replication,     s_tgt_link,     s_tgt_roles,  s_tgt_disk,       s_tgt_disk_write,
    NULL,
};
