/* preflight_phys: the physical path's preflight (preflight_phys.h). */
#include "preflight_phys.h"
#include "preflight_run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diskstats.h"
#include "pgtools.h"
#include "standby.h"
#include "units.h"
#include "xalloc.h"

/* ---- source ----------------------------------------------------------------- */

static const char s_src_sql[] =
    "SELECT pg_catalog.current_setting('server_version_num') AS server_version_num,"
    " pg_catalog.current_setting('server_version') AS server_version,"
    " pg_catalog.pg_database_size(pg_catalog.current_database()) AS database_size,"
    " (SELECT pg_catalog.sum(CASE WHEN pg_catalog.has_database_privilege(d.oid, 'CONNECT')"
    "    OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')"
    "   THEN pg_catalog.pg_database_size(d.oid) END)"
    "   FROM pg_catalog.pg_database d)::pg_catalog.int8 AS cluster_size,"
    " pg_catalog.current_setting('wal_level') AS wal_level,"
    " pg_catalog.current_setting('max_replication_slots') AS max_replication_slots,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots) AS replication_slots,"
    " pg_catalog.current_setting('max_wal_senders') AS max_wal_senders,"
    " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication) AS wal_senders,"
    " (SELECT s.setting FROM pg_catalog.pg_settings s"
    "   WHERE s.name = 'max_slot_wal_keep_size') AS max_slot_wal_keep_size_mb,"
    " pg_catalog.current_setting('wal_log_hints') AS wal_log_hints,"
    " pg_catalog.current_setting('data_checksums') AS data_checksums,"
    " (SELECT s.setting FROM pg_catalog.pg_settings s"
    "   WHERE s.name = 'wal_keep_size') AS wal_keep_size_mb,"
    " (SELECT s.setting FROM pg_catalog.pg_settings s"
    "   WHERE s.name = 'max_wal_size') AS max_wal_size_mb,"
    " (SELECT pg_catalog.json_agg(pg_catalog.quote_ident(n.nspname) || '.' ||"
    "   pg_catalog.quote_ident(c.relname) ORDER BY n.nspname, c.relname)"
    "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE c.relpersistence = 'u' AND c.relkind = 'r')::pg_catalog.text"
    "   AS unlogged";

/* cutover.reverse on (PreflightSource.reverse): after the switch this
 * agent makes its server a standby of the target (Rejoin: pg_rewind, then
 * its standby section's commands). The peer itself is checked where the
 * logical path checks it (preflight.c). */
static void s_src_reverse_findings(preflight_t *p, const PGresult *res)
{
    if (!p->standby)
        preflight_run_add(
            p, SEV_ERROR, "standby_not_configured", "postgres.standby",
            xstrdup("this agent's config has no postgres.standby section: after the switch it "
                    "cannot make its server a standby of the target (cutover.reverse on: the "
                    "way back is this server rewound with pg_rewind and started as a standby "
                    "by that section's commands)"),
            xstrdup("Add postgres.standby to the source agent's config, its data_directory "
                    "this server's own (start, stop, and run_as if the agent is not the "
                    "server's OS user), and restart the agent; see docs/physical.md."));
    const char *hints = pgconn_col_str(res, 0, "wal_log_hints");
    const char *sums = pgconn_col_str(res, 0, "data_checksums");
    if (strcmp(hints, "on") != 0 && strcmp(sums, "on") != 0)
        preflight_run_add(
            p, SEV_ERROR, "rewind_needs_wal_log_hints", "wal_log_hints",
            xstrdup("wal_log_hints is off and the server has no data checksums: pg_rewind "
                    "refuses such a server, so after the switch it could not be made a "
                    "standby of the target (cutover.reverse on)"),
            xstrdup("ALTER SYSTEM SET wal_log_hints = on; then restart PostgreSQL (the "
                    "setting only takes effect at server start)."));
    /* pg_rewind reads this server's WAL back from where the two parted to
     * the last checkpoint before it; a checkpoint after the switch (its
     * shutdown checkpoint at least) may remove that WAL unless
     * wal_keep_size keeps it: up to one checkpoint's distance. */
    int64_t keep = pgconn_col_i64(res, 0, "wal_keep_size_mb", 0);
    int64_t max_wal = pgconn_col_i64(res, 0, "max_wal_size_mb", 0);
    if (keep < max_wal)
        preflight_run_add(
            p, SEV_WARNING, "rewind_wal_keep_size", "wal_keep_size",
            xasprintf("wal_keep_size is %" PRId64 " MB, less than max_wal_size (%" PRId64
                      " MB): after the switch pg_rewind reads this server's WAL back to the "
                      "last checkpoint before it, which a later checkpoint (its shutdown "
                      "one included) may have removed; pg_rewind then fails with \"could "
                      "not find previous WAL record\" and the way back needs a new base "
                      "backup", keep, max_wal),
            xasprintf("ALTER SYSTEM SET wal_keep_size = '%" PRId64 "MB'; SELECT "
                      "pg_catalog.pg_reload_conf();", max_wal));
}

/* Unlogged tables of the plan's database: their
 * rows are not in the WAL, so pg_basebackup copies only their empty init
 * fork and the promoted standby has them empty. */
static void s_src_unlogged_findings(preflight_t *p, const PGresult *res)
{
    cJSON *list = cJSON_Parse(pgconn_col_str(res, 0, "unlogged"));
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *qname = cJSON_GetStringValue(it);
        if (!qname)
            continue;
        preflight_run_add(
            p, SEV_WARNING, "unlogged_table", qname,
            xasprintf("%s is UNLOGGED: its rows are not written to the WAL, so a physical "
                      "standby holds none of them (pg_basebackup copies its empty init fork) "
                      "and it is empty on the target after the promote", qname),
            xasprintf("ALTER TABLE %s SET LOGGED; before the migration (rewrites the table "
                      "under an ACCESS EXCLUSIVE lock), or accept that its rows stay behind "
                      "(a cache, for instance).", qname));
    }
    cJSON_Delete(list);
}

static void s_src_findings(preflight_t *p, const PGresult *res)
{
    const char *wal_level = pgconn_col_str(res, 0, "wal_level");
    if (strcmp(wal_level, "minimal") == 0)
        preflight_run_add(
            p, SEV_ERROR, "wal_level", "wal_level",
            xstrdup("wal_level is minimal: a physical standby needs wal_level = replica (or "
                    "logical); pg_basebackup cannot run without it"),
            xstrdup("ALTER SYSTEM SET wal_level = replica; then restart PostgreSQL (the "
                    "setting only takes effect at server start)."));
    int64_t max_senders = pgconn_col_i64(res, 0, "max_wal_senders", 0);
    int64_t senders = pgconn_col_i64(res, 0, "wal_senders", 0);
    if (max_senders - senders < 2)
        preflight_run_add(
            p, SEV_ERROR, "no_free_wal_sender", "max_wal_senders",
            xasprintf("max_wal_senders is %" PRId64 " and %" PRId64 " WAL senders are running "
                      "(pg_stat_replication): pg_basebackup -X stream needs two while it "
                      "copies (the backup's and its WAL stream's), the standby one after",
                      max_senders, senders),
            xasprintf("ALTER SYSTEM SET max_wal_senders = %" PRId64 "; then restart "
                      "PostgreSQL.", senders + 2));
    int64_t max_slots = pgconn_col_i64(res, 0, "max_replication_slots", 0);
    int64_t slots = pgconn_col_i64(res, 0, "replication_slots", 0);
    if (max_slots - slots < 1)
        preflight_run_add(
            p, SEV_ERROR, "no_free_replication_slot", "max_replication_slots",
            xasprintf("max_replication_slots is %" PRId64 " and %" PRId64 " replication "
                      "slot(s) exist: no slot is free for the standby's physical slot",
                      max_slots, slots),
            xasprintf("Drop slots no longer used (SELECT pg_catalog.pg_drop_replication_slot("
                      "slot_name) for inactive ones in pg_replication_slots), or raise the "
                      "limit: ALTER SYSTEM SET max_replication_slots = %" PRId64 "; then "
                      "restart PostgreSQL.", slots + 1));
    if (pgconn_col_i64(res, 0, "max_slot_wal_keep_size_mb", 0) < 0)
        preflight_run_add(
            p, SEV_WARNING, "max_slot_wal_keep_size", "max_slot_wal_keep_size",
            xstrdup("max_slot_wal_keep_size is -1 (unlimited): if the standby falls behind "
                    "or stops, its physical slot keeps WAL on the source without limit "
                    "until its disk fills and the server stops"),
            xstrdup("ALTER SYSTEM SET max_slot_wal_keep_size = '<what the WAL disk can "
                    "spare, e.g. 100GB>'; SELECT pg_catalog.pg_reload_conf(); (godwit also "
                    "watches the slot's retained WAL, but a limit protects the source on "
                    "its own)."));
}

static void s_on_src(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    if (!preflight_run_facts(p, r))
        return;
    int64_t cluster = pgconn_col_i64(r->res, 0, "cluster_size", 0);
    p->result->facts->cluster_size = cluster > 0 ? (uint64_t)cluster : 0;
    s_src_findings(p, r->res);
    s_src_unlogged_findings(p, r->res);
    if (p->reverse)
        s_src_reverse_findings(p, r->res);
    steprun_next(&p->run);
}

static void s_src(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    preflight_run_query(p, "reading the source's settings", s_src_sql, 0, NULL, s_on_src);
}

/* cutover.reverse on: after the switch the source's agent makes its server
 * a standby of the target through the reverse peer (Rejoin): a slot and a
 * CHECKPOINT there, then pg_rewind reading the target's files. The target
 * is this server's copy, roles included, so the peer's user needs those
 * rights here, now. NULL for a role that does not exist. */
static const char s_rewind_rights_sql[] =
    "SELECT r.rolsuper AS super, r.rolreplication AS replication,"
    " COALESCE((SELECT pg_catalog.pg_has_role(r.oid, c.oid, 'USAGE')"
    "   FROM pg_catalog.pg_roles c WHERE c.rolname = 'pg_checkpoint'), false) AS checkpoint,"
    " pg_catalog.has_function_privilege(r.oid,"
    "   'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')"
    " AND pg_catalog.has_function_privilege(r.oid,"
    "   'pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')"
    " AND pg_catalog.has_function_privilege(r.oid,"
    "   'pg_catalog.pg_read_binary_file(text)', 'EXECUTE')"
    " AND pg_catalog.has_function_privilege(r.oid,"
    "   'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE') AS files"
    " FROM pg_catalog.pg_roles r WHERE r.rolname = $1";

static void s_on_rewind_rights(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    if (!r->ok) {
        steprun_fail_query(&p->run, NULL, r);
        return;
    }
    bool found = r->res && PQntuples(r->res) == 1;
    bool super = found && pgconn_col_bool(r->res, 0, "super");
    bool repl = found && pgconn_col_bool(r->res, 0, "replication");
    bool ckpt = found && (super || pgconn_col_bool(r->res, 0, "checkpoint"));
    bool files = found && (super || pgconn_col_bool(r->res, 0, "files"));
    if (!found)
        preflight_run_add(
            p, SEV_ERROR, "rewind_peer_rights", p->rev_user,
            xasprintf("the reverse peer's user %s does not exist here: the target, a copy of "
                      "this server, will not have it either, so after the switch this server "
                      "cannot rejoin as its standby (cutover.reverse on)", p->rev_user),
            xasprintf("CREATE ROLE %s LOGIN REPLICATION; GRANT pg_checkpoint TO %s; and the "
                      "EXECUTE grants pg_rewind needs (docs/physical.md), on this server "
                      "before the migration.", p->rev_user, p->rev_user));
    else if (!repl || !ckpt || !files)
        preflight_run_add(
            p, SEV_ERROR, "rewind_peer_rights", p->rev_user,
            xasprintf("the reverse peer's user %s lacks %s%s%s%s%s here, and so on the target "
                      "(this server's copy): after the switch this server's rejoin as the "
                      "target's standby (a slot, a CHECKPOINT and pg_rewind there) would fail "
                      "(cutover.reverse on)", p->rev_user, repl ? "" : "REPLICATION",
                      !repl && (!ckpt || !files) ? ", " : "", ckpt ? "" : "pg_checkpoint",
                      !ckpt && !files ? ", " : "",
                      files ? "" : "EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file"),
            xasprintf("On this server, in the database postgres (pg_rewind connects there; "
                      "the grants reach the target with the base backup): ALTER ROLE %s "
                      "REPLICATION; GRANT pg_checkpoint TO %s; GRANT EXECUTE ON "
                      "FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), "
                      "pg_catalog.pg_stat_file(text, boolean), "
                      "pg_catalog.pg_read_binary_file(text), "
                      "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO %s;",
                      p->rev_user, p->rev_user, p->rev_user));
    steprun_next(&p->run);
}

static void s_on_postgres_db(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    if (!ok) {
        steprun_failf(&p->run, "cannot connect to database postgres (where pg_rewind reads): %s",
                      error ? error : "unknown error");
        return;
    }
    const char *params[1] = { p->rev_user };
    preflight_run_query_on(p, P_REPL, "reading the reverse peer's rights in database postgres",
                           s_rewind_rights_sql, 1, params, s_on_rewind_rights);
}

/* On a connection to the database postgres, which pg_rewind connects to:
 * the EXECUTE grants are per database. */
static void s_src_rewind_rights(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->rev_user) {
        steprun_next(&p->run);
        return;
    }
    int rc = pgconn_connect(p->run.conn[P_REPL], (uint64_t)p->connect_timeout_ms,
                            s_on_postgres_db, p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start connecting: %s", strerror(-rc));
}

const steprun_fn preflight_phys_src_stages[] = { preflight_run_connect, s_src,
                                                 s_src_rewind_rights, NULL };

/* ---- target ----------------------------------------------------------------- */

/* The nearest folder of path that exists (path itself, or a parent):
 * where pg_basebackup's files will land. Caller frees. */
static char *s_existing_parent(const char *path)
{
    char *d = xstrdup(path);
    struct stat st;
    while (stat(d, &st) != 0) {
        char *slash = strrchr(d, '/');
        if (!slash || slash == d) {
            strcpy(d, "/");
            break;
        }
        *slash = '\0';
    }
    return d;
}

static void s_tgt_config(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    const agent_standby_t *sb = p->standby;
    if (!sb) {
        preflight_run_add(
            p, SEV_ERROR, "standby_not_configured", "postgres.standby",
            xstrdup("this agent's config has no postgres.standby section: it cannot make "
                    "its server a physical standby (method: physical)"),
            xstrdup("Add postgres.standby (data_directory, start, stop, and run_as if the "
                    "agent is not the server's OS user) to the agent's config and restart "
                    "it; see docs/config.md."));
        steprun_next(&p->run);
        return;
    }
    char *marked = NULL, *why = NULL;
    standby_dir_t st = standby_dir_look(sb->data_directory, "", &marked, &why);
    if (st == STANDBY_DIR_OTHER && !marked)
        preflight_run_add(
            p, SEV_ERROR, "standby_directory_not_empty", sb->data_directory,
            why ? xasprintf("%s", why)
                : xasprintf("the standby data directory %s is not empty and not godwit's: "
                            "pg_basebackup writes only into a missing or empty one",
                            sb->data_directory),
            xasprintf("Empty or remove %s (after making sure nothing there is needed), or "
                      "set postgres.standby.data_directory to another folder.",
                      sb->data_directory));
    else if (marked)
        preflight_run_add(
            p, SEV_INFO, "standby_directory_ours", sb->data_directory,
            xasprintf("the standby data directory %s already holds godwit's standby of slot "
                      "\"%s\": the base backup of that slot resumes it",
                      sb->data_directory, marked),
            xstrdup("Nothing, if that is this migration's slot; else drop that standby "
                    "first (godwit's abort does)."));
    free(marked);
    free(why);

    char *where = s_existing_parent(sb->data_directory);
    diskstats_fs_t fs;
    int rc = diskstats_fs(where, &fs);
    double need_d = (double)p->src_cluster_size * p->disk_margin;
    uint64_t need = need_d >= 1.8e19 ? UINT64_MAX : (uint64_t)need_d;
    if (rc == 0 && fs.free_bytes < need) {
        char free_s[32], size_s[32], need_s[32];
        units_fmt_bytes(fs.free_bytes, free_s, sizeof free_s);
        units_fmt_bytes(p->src_cluster_size, size_s, sizeof size_s);
        units_fmt_bytes(need, need_s, sizeof need_s);
        preflight_run_add(
            p, SEV_ERROR, "disk_space", where,
            xasprintf("%s (where the standby data directory %s goes) has %s free; the "
                      "source's cluster is %s, times the disk margin %.2f: %s needed",
                      where, sb->data_directory, free_s, size_s, p->disk_margin, need_s),
            xasprintf("Free space on the filesystem of %s or grow it, or put the standby's "
                      "data directory on a larger one.", where));
    } else if (rc != 0) {
        preflight_run_add(p, SEV_WARNING, "disk_space_unknown", where,
                          xasprintf("cannot read the free space of %s: %s", where,
                                    strerror(-rc)),
                          xstrdup("Check that the agent can read that folder."));
    }
    free(where);
    steprun_next(&p->run);
}

static void s_on_version(proc_t *pr, const proc_result_t *r, void *arg)
{
    (void)pr;
    preflight_t *p = arg;
    proc_destroy(&p->proc, 0);
    char *program = pgtools_program(p->bin_dir, "pg_basebackup");
    /* "pg_basebackup (PostgreSQL) 15.8 (Debian 15.8-1)" */
    const char *v = r->exit_status == 0 && !r->term_signal ? strstr(r->out, ") ") : NULL;
    long major = v ? strtol(v + 2, NULL, 10) : 0;
    long want = (long)(p->src_version_num / 10000);
    if (major <= 0) {
        char *why = pgtools_failure(program, r);
        preflight_run_add(p, SEV_ERROR, "pg_basebackup_missing", program,
                          xasprintf("cannot run %s --version: %s", program, why),
                          xasprintf("Install PostgreSQL %ld's client programs here and set "
                                    "postgres.bin_dir to their folder.", want));
        free(why);
    } else if (major != want) {
        preflight_run_add(
            p, SEV_ERROR, "pg_basebackup_version", program,
            xasprintf("%s is from PostgreSQL %ld, the source runs %s: a physical standby "
                      "needs the source's major version (its server binaries and "
                      "pg_basebackup)", program, major, p->src_version),
            xasprintf("Install PostgreSQL %ld here and set postgres.bin_dir to its bin "
                      "folder (and the standby's start command to its pg_ctl).", want));
    }
    free(program);
    steprun_next(&p->run);
}

static void s_tgt_version(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    char *program = pgtools_program(p->bin_dir, "pg_basebackup");
    const char *argv[] = { program, "--version", NULL };
    proc_opts_t o = { .file = program, .argv = argv, .out_max = 512, .err_max = 2048 };
    int rc = proc_start(p->run.loop, &o, s_on_version, p, &p->proc);
    if (rc != 0) {
        preflight_run_add(p, SEV_ERROR, "pg_basebackup_missing", program,
                          xasprintf("cannot run %s: %s", program, uv_strerror(rc)),
                          xstrdup("Install the source's major version of PostgreSQL's "
                                  "client programs and set postgres.bin_dir to their folder."));
        free(program);
        steprun_next(&p->run);
        return;
    }
    free(program);
}

static void s_on_repl(pgconn_t *c, bool ok, const char *error, void *arg)
{
    (void)c;
    preflight_t *p = arg;
    if (!ok)
        preflight_run_add(
            p, SEV_ERROR, "physical_replication_connection", p->repl_where,
            xasprintf("cannot open a physical replication connection to the source as %s, "
                      "and pg_basebackup and the standby connect the same way: %s",
                      p->repl_where, error ? error : "unknown error"),
            xasprintf("On the source: ALTER ROLE %s REPLICATION; and a pg_hba.conf line "
                      "with the keyword replication (physical replication does not match a "
                      "database name): host replication %s <this host's address>/32 "
                      "scram-sha-256, then SELECT pg_catalog.pg_reload_conf();%s",
                      p->repl_user, p->repl_user,
                      p->repl_passfile ? " The password goes in the peer's passfile." : ""));
    pgconn_destroy(&p->run.conn[P_REPL]);
    steprun_next(&p->run);
}

static void s_tgt_repl(steprun_t *run)
{
    preflight_t *p = (preflight_t *)run;
    if (!p->run.conn[P_REPL]) { /* no such peer: the finding was added at the start */
        steprun_next(&p->run);
        return;
    }
    int rc = pgconn_connect(p->run.conn[P_REPL], (uint64_t)p->connect_timeout_ms, s_on_repl, p);
    if (rc != 0)
        steprun_failf(&p->run, "cannot start the replication connection: %s", strerror(-rc));
}

const steprun_fn preflight_phys_tgt_stages[] = { s_tgt_config, s_tgt_version, s_tgt_repl, NULL };
