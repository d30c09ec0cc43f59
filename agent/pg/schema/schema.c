/*
 * schema: ApplySchema, the schema phase on the target host (step.h has the
 * contract with the caller). The source's schema is read with pg_dump and
 * applied to the target database with pg_restore, in two sections:
 *
 *   "pre"  before the data: everything pg_restore files as pre-data (types,
 *          functions, sequences, tables, defaults, partitions), plus what the
 *          apply workers need before the first change arrives: primary keys
 *          and each replica-identity index (its TOC entry carries the ALTER
 *          TABLE ... REPLICA IDENTITY USING INDEX), with the comments and
 *          partition-index attachments that hang on those only.
 *   "post" after the copy: every other post-data entry (secondary indexes,
 *          unique and foreign-key constraints, triggers, rules, policies).
 *
 * Owners and privileges are restored as the source has them (each object's
 * ALTER ... OWNER TO, its GRANTs and REVOKEs, default privileges with the
 * post-data section, policies with their roles): the roles step (roles.c)
 * ran first and made every role they name. The restore itself runs as the
 * agent's own role, a superuser, and so do the copy and the subscription's
 * apply, so owners on the target do not change how replication writes.
 *
 * Publications and subscriptions (and what hangs on them) are never applied:
 * a logical-replication target must not get the source's.
 *
 * Tables asked for: pg_dump always dumps the whole schema (pg_dump --table
 * would leave out the schemas, types and functions the tables need). The
 * scope is then cut out of the TOC: the tables asked for and, transitively,
 * the partitions of those that are partitioned are in scope; every other
 * TABLE entry is out, and so is every entry that depends on one, directly or
 * transitively (its owned sequences, defaults, constraints, indexes,
 * triggers, comments, views over it, foreign keys to or from it, partition
 * attachments). Everything else (schemas, types, functions, other sequences)
 * is kept. A table asked for that the source lacks is an error naming it; so
 * is an in-scope table or column default that needs something out of scope
 * (an inheritance parent, a sequence owned by another table), rather than
 * leaving it out silently. The idempotency checks see only the scope.
 *
 * Steps, one after the other: a private temp dir (mkdtemp under /tmp;
 * workdir.h);
 * pg_dump --schema-only --format=custom into it; pg_restore --list twice (all
 * entries with their dependencies, then the post-data ones; toc.h reads
 * them); the source's
 * catalog, asked over a normal connection which TOC entries are primary keys
 * and replica-identity indexes and what each entry is called (entries are
 * matched by their catalog id, the "tableoid oid" pair of a TOC line, never
 * by parsing names out of it: names there are not quoted and may hold
 * spaces); the target's catalog, asked whether the section is already
 * applied; then, only if nothing of it exists yet, the chosen entries are
 * written to a list file and pg_restore --use-list --single-transaction
 * applies them. The temp dir is removed before done runs.
 *
 * Idempotency: one transaction applies a section, so finding all of its
 * tables ("pre") or named objects ("post") on the target means it was
 * applied (already_done); finding none means it was not; finding some is an
 * error (something else created them).
 *
 * Children get the agent's environment minus every PG* variable, plus the
 * connection (for the source: the peer the command names, as the agent's
 * config describes it, and the database the command names) as PGHOST,
 * PGPORT, PGUSER, PGPASSFILE, PGSSLMODE, PGDATABASE:
 * never on a command line, never a password. The target database goes to
 * pg_restore as --dbname, which libpq would read as a connection string if
 * it held '=' or began with a URI prefix; such names are refused.
 *
 * What it owns: its runtime (steprun.h: the two connections, the timer
 * that starts the work one loop turn after schema_apply_start, the label,
 * the statement in flight, done), up to one child (proc; pgtools.h gives
 * its program, environment and failure text), the temp dir with its one
 * uv_fs_t request (workdir.h), the TOC (toc.h) and the result. It ends
 * through the runtime's wind_down hook: a failure or success first winds
 * down (the connections close, the child is killed and waited for, the file
 * request finishes, the temp dir goes) and only then does the runtime
 * report.
 * Cancelling (the runtime's cancel, then the same hook) winds down the same
 * way with no callback. The runtime lets the memory go when both the
 * wind-down and its timer's close are over, whichever comes last.
 *
 * What it must never do: change the source (its session is read-only), run
 * a shell, report twice or after cancel, or block the loop.
 */
#include "log.h"
#include "pgconn.h"
#include "pgtools.h"
#include "proc.h"
#include "schema.h"
#include "steprun.h"
#include "toc.h"
#include "workdir.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KILL_GRACE_MS 2000         /* SIGTERM, then SIGKILL after this */
#define S_ERR_MAX 4096               /* stderr kept per child */
#define S_TOC_MAX (256u << 20)       /* pg_restore --list output kept */

/* The runtime's connections. */
enum { S_SRC = 0, S_DST = 1 };

typedef struct {
    steprun_t run;         /* first: conn[S_SRC], conn[S_DST], label, what, the kick,
                              done, the outcome while winding down */
    bool stopping;         /* finished or cancelled: only the wind-down goes on */
    bool post;             /* section "post", else "pre" */

    char *database;        /* target database */
    char *source_db;
    char *pg_dump, *pg_restore;
    char **src_env, **dst_env;
    int64_t statement_timeout_ms;
    int64_t connect_timeout_ms;

    proc_t *proc;          /* the child running, if any */
    const char *proc_what; /* its name in errors */
    workdir_t wd;          /* the temp dir: the dump, the list file */

    toc_t toc;             /* the dump's entries, the tables asked for */
    uint32_t objects;      /* entries of the section to apply */
    size_t n_checked;      /* objects asked about on the target */

    Godwit__ApplySchemaResult *result; /* until it goes to steprun_finish */
    char *refused;         /* the request was refused at the start: why */
} schema_t;

static void s_failf(schema_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- small helpers ------------------------------------------------------- */

static bool s_nonempty(const char *v)
{
    return v && v[0];
}

/* ---- finishing ----------------------------------------------------------- */

static void s_free(schema_t *s)
{
    toc_clear(&s->toc);
    workdir_clear(&s->wd);
    proc_env_free(&s->src_env);
    proc_env_free(&s->dst_env);
    free(s->pg_dump);
    free(s->pg_restore);
    free(s->database);
    free(s->source_db);
    if (s->result)
        godwit__apply_schema_result__free_unpacked(s->result, NULL);
    free(s->refused);
    free(s);
}

/* The runtime's release hook: both the wind-down and the timer's close are
 * over. */
static void s_release(steprun_t *run)
{
    s_free((schema_t *)run);
}

/* The wind-down is over (the temp dir is gone): the runtime ends with the
 * outcome steprun_finish kept and reports it, unless it was cancelled. */
static void s_wound_down(workdir_t *w, void *arg)
{
    schema_t *s = arg;
    steprun_wound_down(&s->run);
}

/* Ends the step with the outcome (error NULL: s->result); the runtime winds
 * down first (s_wind_down). */
static void s_finish(schema_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (error) {
        if (s->result) {
            godwit__apply_schema_result__free_unpacked(s->result, NULL);
            s->result = NULL;
        }
        /* the agent logs the failure with the command; this is the detail */
        log_debug("schema %s on database %s: %s", s->post ? "post" : "pre", s->database, error);
    } else {
        if (s->result->already_done)
            log_info("schema %s on database %s: already done", s->post ? "post" : "pre",
                     s->database);
        else
            log_info("schema %s on database %s: applied %" PRIu32 " objects",
                     s->post ? "post" : "pre", s->database, s->result->objects);
        payload = &s->result->base;
        s->result = NULL;
    }
    steprun_finish(&s->run, payload, error);
}

static void s_failf(schema_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    s_finish(s, msg ? msg : "out of memory formatting an error");
    free(msg);
}

/* The runtime's wind_down hook: it has ended (the outcome kept) or was
 * cancelled, and done will not run before the wind-down is over; the
 * runtime destroyed the connections. Stops the child; the cleanup follows
 * once no child and no file request is left (their callbacks see
 * s->stopping). */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    schema_t *s = (schema_t *)run;
    if (cancelled)
        log_info("schema %s on database %s: cancelled", s->post ? "post" : "pre", s->database);
    s->stopping = true;
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    workdir_remove(&s->wd, s_wound_down, s); /* after its request in flight, if any */
}

/* ---- children ------------------------------------------------------------ */

/* Starts a child whose outcome goes to cb. */
static void s_spawn(schema_t *s, const char *what, const char *file, const char *const *argv,
                    char **env, size_t out_max, proc_done_cb cb)
{
    proc_opts_t o = {
        .file = file,
        .argv = argv,
        .env = (const char *const *)env,
        .out_max = out_max,
        .err_max = S_ERR_MAX,
    };
    s->proc_what = what;
    log_debug("schema on database %s: running %s", s->database, what);
    int rc = proc_start(s->run.loop, &o, cb, s, &s->proc);
    if (rc != 0)
        s_failf(s, "cannot start %s: %s", file, uv_strerror(rc));
}

/* At the top of every child callback: drops the child. true when the caller
 * goes on: not stopping and the child succeeded (else the step has ended). */
static bool s_child_ok(schema_t *s, const proc_result_t *r)
{
    proc_destroy(&s->proc, 0);
    if (s->stopping) {
        workdir_remove(&s->wd, s_wound_down, s);
        return false;
    }
    if (r->exit_status == 0 && r->term_signal == 0)
        return true;
    char *why = pgtools_failure(s->proc_what, r);
    s_finish(s, why);
    free(why);
    return false;
}

/* ---- steps --------------------------------------------------------------- */

static void s_src_connect(schema_t *s);
static void s_check_target(schema_t *s);
static void s_write_list(schema_t *s);

/* Sends one statement on run.conn[i]. Not steprun_query: a failure here
 * goes through s_finish (s_failf), which logs the section's detail. */
static void s_query(schema_t *s, int i, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    free(s->run.what);
    s->run.what = xstrdup(what);
    uint64_t deadline = (uint64_t)s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS;
    int rc = pgconn_query(s->run.conn[i], sql, nparams, params, deadline, cb, s);
    if (rc != 0)
        s_failf(s, "%s: cannot send the statement: %s", what, strerror(-rc));
}

static void s_fail_query(schema_t *s, const pgconn_result_t *r)
{
    char *why = pgconn_result_message(s->run.what, r);
    s_failf(s, "%s", why);
    free(why);
}

static void s_on_list_post(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    if (r->out_truncated) {
        s_failf(s, "pg_restore --list printed more than %u bytes", S_TOC_MAX);
        return;
    }
    char *err = toc_mark_post(&s->toc, r->out);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    toc_mark_excluded(&s->toc);
    s_src_connect(s);
}

static void s_on_list(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    if (r->out_truncated) {
        s_failf(s, "pg_restore --list printed more than %u bytes", S_TOC_MAX);
        return;
    }
    char *err = toc_parse(&s->toc, r->out, r->out_len);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    const char *argv[] = {"pg_restore", "--list", "--section=post-data", s->wd.dump_path, NULL};
    s_spawn(s, "pg_restore --list --section=post-data", s->pg_restore, argv, s->dst_env,
            S_TOC_MAX, s_on_list_post);
}

static void s_on_dump(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    const char *argv[] = {"pg_restore", "--list", "--verbose", s->wd.dump_path, NULL};
    s_spawn(s, "pg_restore --list", s->pg_restore, argv, s->dst_env, S_TOC_MAX, s_on_list);
}

static void s_run_dump(schema_t *s)
{
    const char *argv[16];
    char *file = xasprintf("--file=%s", s->wd.dump_path);
    char *lock = xasprintf("--lock-wait-timeout=%" PRId64, s->statement_timeout_ms);
    size_t n = 0;
    argv[n++] = "pg_dump";
    argv[n++] = "--schema-only";
    argv[n++] = "--format=custom";
    argv[n++] = "--no-publications";
    argv[n++] = "--no-subscriptions";
    argv[n++] = lock;
    argv[n++] = file;
    argv[n] = NULL; /* the whole schema: toc_scope cuts the tables asked for out of it */
    s_spawn(s, "pg_dump", s->pg_dump, argv, s->src_env, 0, s_on_dump);
    free(lock);
    free(file);
}

static void s_on_mkdtemp(workdir_t *w, const char *error, void *arg)
{
    schema_t *s = arg;
    if (error) {
        s_finish(s, error);
        return;
    }
    s_run_dump(s);
}

static void s_first(steprun_t *run)
{
    schema_t *s = (schema_t *)run;
    log_info("schema %s on database %s: reading the schema of %s", s->post ? "post" : "pre",
             s->database, s->source_db);
    workdir_create(&s->wd, s_on_mkdtemp, s);
}

/* ---- the source's catalog ------------------------------------------------ */

/* One row per catalog id asked about (in the order asked: ord): whether the
 * catalog is one this step knows (covered), and if the object is still
 * there, what it is, its schema, table and name, and whether it is a key
 * ("pre" needs it). A unique constraint is a key when its index is the
 * replica identity (pg_dump writes the ALTER TABLE ... REPLICA IDENTITY into
 * that constraint's entry, or into the index's for a plain unique index). */
static const char s_src_sql[] =
    "SELECT t.ord, t.cls::pg_catalog.regclass IN ("
    "   'pg_catalog.pg_class'::pg_catalog.regclass,"
    "   'pg_catalog.pg_constraint'::pg_catalog.regclass,"
    "   'pg_catalog.pg_trigger'::pg_catalog.regclass,"
    "   'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
    "   'pg_catalog.pg_policy'::pg_catalog.regclass,"
    "   'pg_catalog.pg_event_trigger'::pg_catalog.regclass) AS covered,"
    " x.kind, x.schema, x.tab, x.name, x.key, x.parent"
    " FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),"
    "   pg_catalog.unnest($2::pg_catalog.oid[])) WITH ORDINALITY AS t(cls, obj, ord)"
    " LEFT JOIN LATERAL ("
    "   SELECT CASE WHEN c.relkind IN ('r', 'p') THEN 'table'"
    "     WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'relation' END AS kind,"
    "    n.nspname AS schema, c.relname AS tab, c.relname AS name,"
    "    COALESCE(i.indisreplident, false) AS key,"
    "    CASE WHEN c.relispartition THEN (SELECT h.inhparent FROM pg_catalog.pg_inherits h"
    "     WHERE h.inhrelid = c.oid LIMIT 1) END AS parent"
    "   FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid"
    "   WHERE t.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'constraint', n.nspname, COALESCE(r.relname, ty.typname), k.conname,"
    "    k.contype = 'p' OR (k.contype = 'u' AND COALESCE(i.indisreplident, false)),"
    "    NULL::pg_catalog.oid"
    "   FROM pg_catalog.pg_constraint k"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = k.connamespace"
    "   LEFT JOIN pg_catalog.pg_class r ON r.oid = k.conrelid"
    "   LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid"
    "   LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = k.conindid"
    "   WHERE t.cls = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'trigger', n.nspname, r.relname, g.tgname, false, NULL"
    "   FROM pg_catalog.pg_trigger g"
    "   JOIN pg_catalog.pg_class r ON r.oid = g.tgrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND g.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'rule', n.nspname, r.relname, w.rulename, false, NULL"
    "   FROM pg_catalog.pg_rewrite w"
    "   JOIN pg_catalog.pg_class r ON r.oid = w.ev_class"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'policy', n.nspname, r.relname, p.polname, false, NULL"
    "   FROM pg_catalog.pg_policy p"
    "   JOIN pg_catalog.pg_class r ON r.oid = p.polrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_policy'::pg_catalog.regclass AND p.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'event trigger', '', '', e.evtname, false, NULL"
    "   FROM pg_catalog.pg_event_trigger e"
    "   WHERE t.cls = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass AND e.oid = t.obj"
    " ) x ON true";

static void s_on_src_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    const PGresult *res = r->res;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *ordv = pgconn_col(res, row, "ord");
        unsigned long ord = ordv ? strtoul(ordv, NULL, 10) : 0;
        if (ord < 1 || ord > s->toc.n_asked) {
            s_failf(s, "%s: unexpected row %d", s->run.what, row);
            return;
        }
        toc_entry_t *e = &s->toc.entries[s->toc.asked[ord - 1]];
        const char *kind = pgconn_col(res, row, "kind");
        const char *covered = pgconn_col(res, row, "covered");
        if (!kind) {
            if (covered && covered[0] == 't' && !(e->flags & TOC_EXCLUDED)) {
                s_failf(s, "the source's schema changed while it was read: the object of dump "
                           "entry \"%s\" (catalog %" PRIu32 ", oid %" PRIu32 ") is gone; run "
                           "the step again",
                        e->line, e->cls, e->oid);
                return;
            }
            continue;
        }
        e->kind = toc_kind_parse(kind);
        e->schema = xstrdup(pgconn_col(res, row, "schema"));
        e->table = xstrdup(pgconn_col(res, row, "tab"));
        e->name = xstrdup(pgconn_col(res, row, "name"));
        const char *key = pgconn_col(res, row, "key");
        if (key && key[0] == 't')
            e->flags |= TOC_KEY;
        const char *parent = pgconn_col(res, row, "parent");
        unsigned long pv = parent ? strtoul(parent, NULL, 10) : 0;
        e->parent = pv <= UINT32_MAX ? (uint32_t)pv : 0;
    }
    pgconn_destroy(&s->run.conn[S_SRC]);
    char *err = toc_scope(&s->toc, s->source_db);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    toc_move_keys(&s->toc);
    s_check_target(s);
}

/* Asks the source's catalog about every entry with a catalog id. */
static void s_src_query(schema_t *s)
{
    char *cls, *oids;
    toc_catalog_ids(&s->toc, &cls, &oids);
    const char *params[2] = {cls, oids};
    s_query(s, S_SRC, "reading the source's catalog", s_src_sql, 2, params, s_on_src_rows);
    free(cls);
    free(oids);
}

static void s_on_src_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    schema_t *s = arg;
    if (!ok) {
        s_failf(s, "cannot connect to the source database %s: %s", s->source_db,
                error ? error : "unknown error");
        return;
    }
    s_src_query(s);
}

static void s_src_connect(schema_t *s)
{
    int rc = pgconn_connect(s->run.conn[S_SRC], (uint64_t)s->connect_timeout_ms,
                            s_on_src_connect, s);
    if (rc != 0)
        s_failf(s, "cannot start connecting to the source: %s", strerror(-rc));
}

/* ---- the target: already applied? ---------------------------------------- */

/* One row per object asked about: its name for messages and whether the
 * target has it. */
static const char s_dst_sql[] =
    "SELECT pg_catalog.format(CASE WHEN o.k IN ('table', 'index') THEN '%2$I.%4$I'"
    "   WHEN o.k = 'event trigger' THEN 'event trigger %4$I'"
    "   ELSE '%1$s %4$I on %2$I.%3$I' END, o.k, o.s, o.t, o.n) AS what,"
    " CASE o.k"
    "  WHEN 'table' THEN EXISTS (SELECT FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace"
    "   WHERE ns.nspname = o.s AND c.relname = o.n AND c.relkind IN ('r', 'p'))"
    "  WHEN 'index' THEN EXISTS (SELECT FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace"
    "   WHERE ns.nspname = o.s AND c.relname = o.n AND c.relkind IN ('i', 'I'))"
    "  WHEN 'constraint' THEN EXISTS (SELECT FROM pg_catalog.pg_constraint k"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = k.connamespace"
    "   LEFT JOIN pg_catalog.pg_class r ON r.oid = k.conrelid"
    "   LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid"
    "   WHERE ns.nspname = o.s AND k.conname = o.n"
    "   AND COALESCE(r.relname, ty.typname) = o.t)"
    "  WHEN 'trigger' THEN EXISTS (SELECT FROM pg_catalog.pg_trigger g"
    "   JOIN pg_catalog.pg_class r ON r.oid = g.tgrelid"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND g.tgname = o.n)"
    "  WHEN 'rule' THEN EXISTS (SELECT FROM pg_catalog.pg_rewrite w"
    "   JOIN pg_catalog.pg_class r ON r.oid = w.ev_class"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND w.rulename = o.n)"
    "  WHEN 'policy' THEN EXISTS (SELECT FROM pg_catalog.pg_policy p"
    "   JOIN pg_catalog.pg_class r ON r.oid = p.polrelid"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND p.polname = o.n)"
    "  WHEN 'event trigger' THEN EXISTS (SELECT FROM pg_catalog.pg_event_trigger e"
    "   WHERE e.evtname = o.n)"
    "  ELSE false END AS present"
    " FROM pg_catalog.json_to_recordset($1::pg_catalog.json) AS o(k text, s text, t text, n text)";

static void s_done_already(schema_t *s)
{
    s->result = xmalloc(sizeof *s->result);
    godwit__apply_schema_result__init(s->result);
    s->result->already_done = true;
    s->result->objects = 0;
    s_finish(s, NULL);
}

static void s_on_dst_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    const PGresult *res = r->res;
    size_t present = 0, missing = 0;
    char *present_names = NULL, *missing_names = NULL;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *what = pgconn_col(res, row, "what");
        const char *p = pgconn_col(res, row, "present");
        if (p && p[0] == 't')
            toc_name_add(&present_names, &present, what ? what : "?");
        else
            toc_name_add(&missing_names, &missing, what ? what : "?");
    }
    pgconn_destroy(&s->run.conn[S_DST]);
    if (present + missing != s->n_checked) {
        s_failf(s, "%s: %zu rows for %zu objects", s->run.what, present + missing,
                s->n_checked);
    } else if (missing == 0) {
        s_done_already(s);
    } else if (present > 0) {
        s_failf(s,
                "database %s already has %zu of the %zu %s of this section (%s) but lacks %zu "
                "(%s): godwit applies a section in one transaction, so something else "
                "created them; drop them (or add the missing ones) and run the step again",
                s->database, present, s->n_checked,
                s->post ? "indexes, constraints and triggers" : "tables",
                present_names, missing, missing_names);
    } else {
        s_write_list(s);
    }
    free(present_names);
    free(missing_names);
}

static void s_on_dst_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    schema_t *s = arg;
    if (!ok) {
        s_failf(s, "cannot connect to database %s: %s", s->database,
                error ? error : "unknown error");
        return;
    }
    char *json = toc_check_json(&s->toc, s->post, &s->n_checked);
    const char *params[1] = {json};
    s_query(s, S_DST, "checking what the target already has", s_dst_sql, 1, params,
            s_on_dst_rows);
    free(json);
}

/* Counts the section; decides what needs the target. */
static void s_check_target(schema_t *s)
{
    s->objects = 0;
    size_t tables = 0, checkable = 0;
    for (size_t i = 0; i < s->toc.n_entries; i++) {
        const toc_entry_t *e = &s->toc.entries[i];
        if (!toc_selected(e, s->post) || (e->flags & TOC_SPECIAL))
            continue;
        s->objects++;
        tables += e->kind == TOC_K_TABLE;
        checkable += toc_checkable_post(e->kind);
    }
    if (!s->post && tables == 0) {
        s_failf(s, "the schema of source database %s has no tables to migrate", s->source_db);
        return;
    }
    if (s->post && s->objects == 0) {
        /* nothing after the data: done by definition */
        s_done_already(s);
        return;
    }
    if (s->post && checkable == 0) {
        /* nothing to recognise it by (only attachments): apply; a second
         * run then fails on pg_restore's error, which names the object */
        log_warn("schema post on database %s: no named object to check; applying", s->database);
        s_write_list(s);
        return;
    }
    int rc = pgconn_connect(s->run.conn[S_DST], (uint64_t)s->connect_timeout_ms,
                            s_on_dst_connect, s);
    if (rc != 0)
        s_failf(s, "cannot start connecting to database %s: %s", s->database, strerror(-rc));
}

/* ---- applying ------------------------------------------------------------ */

static void s_on_restore(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    s->result = xmalloc(sizeof *s->result);
    godwit__apply_schema_result__init(s->result);
    s->result->already_done = false;
    s->result->objects = s->objects;
    s_finish(s, NULL);
}

static void s_run_restore(schema_t *s)
{
    log_info("schema %s on database %s: applying %" PRIu32 " objects", s->post ? "post" : "pre",
             s->database, s->objects);
    char *list = xasprintf("--use-list=%s", s->wd.list_path);
    char *db = xasprintf("--dbname=%s", s->database);
    /* with owners and privileges: the roles step made every role they name */
    const char *argv[] = {"pg_restore", list, "--single-transaction", "--exit-on-error",
                          "--no-tablespaces", db, s->wd.dump_path, NULL};
    s_spawn(s, "pg_restore", s->pg_restore, argv, s->dst_env, 0, s_on_restore);
    free(db);
    free(list);
}

static void s_on_list_written(workdir_t *w, const char *error, void *arg)
{
    schema_t *s = arg;
    if (error) {
        s_finish(s, error);
        return;
    }
    s_run_restore(s);
}

/* The section's TOC lines, in TOC order, into the list file. */
static void s_write_list(schema_t *s)
{
    size_t len;
    char *text = toc_list_text(&s->toc, s->post, &len);
    workdir_write_list(&s->wd, text, len, s_on_list_written, s);
}

/* ---- start --------------------------------------------------------------- */

/* The kick of a request refused at the start (s->refused set). */
static void s_refused(steprun_t *run)
{
    steprun_finish(run, NULL, ((schema_t *)run)->refused);
}

/* A database name libpq would take for a connection string. */
static bool s_conninfo_like(const char *db)
{
    return strchr(db, '=') || strncmp(db, "postgresql://", 13) == 0 ||
           strncmp(db, "postgres://", 11) == 0;
}

static bool s_valid(const step_local_t *local, const Godwit__ApplySchema *req)
{
    if (!local || !s_nonempty(local->host) || local->port <= 0 || local->port > 65535 ||
        !local->bin_dir || local->connect_timeout_ms <= 0 || local->statement_timeout_ms <= 0)
        return false;
    if (!req || !s_nonempty(req->database) || !req->section ||
        (strcmp(req->section, "pre") != 0 && strcmp(req->section, "post") != 0))
        return false;
    char *why = NULL;
    if (!step_peer(local, req->source, &why)) {
        log_warn("schema on database %s: %s", req->database, why);
        free(why);
        return false;
    }
    for (size_t i = 0; i < req->n_tables; i++)
        if (!req->tables[i] || !s_nonempty(req->tables[i]->schema) ||
            !s_nonempty(req->tables[i]->name))
            return false;
    return true;
}

step_t *schema_apply_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__ApplySchema *req, step_done_cb done, void *arg)
{
    if (!loop || !done || !s_valid(local, req))
        return NULL;
    const Godwit__ReplicationConn *rc = req->source;
    char *why = NULL;
    const agent_peer_t *peer = step_peer(local, rc, &why); /* s_valid found it */
    free(why);
    char connect_timeout[32], src_port[24], dst_port[16]; /* for the children's environment */
    snprintf(connect_timeout, sizeof connect_timeout, "%" PRId64,
             (local->connect_timeout_ms + 999) / 1000);
    snprintf(src_port, sizeof src_port, "%" PRId64, peer->port);
    snprintf(dst_port, sizeof dst_port, "%d", local->port);
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                              " -c default_transaction_read_only=on",
                              local->statement_timeout_ms);
    /* the source, as a normal (not a replication) connection */
    pgconn_t *src = pgstep_remote_conn(loop, "agent schema source", local, rc, false,
                                       "godwit-agent", options);
    pgconn_t *dst = pgstep_local_conn(loop, "agent schema target", local, req->database,
                                      "godwit-agent", options);
    free(options);
    if (!src || !dst) {
        pgconn_destroy(&src);
        pgconn_destroy(&dst);
        return NULL;
    }

    schema_t *s = xcalloc(1, sizeof *s);
    s->run.conn[S_SRC] = src;
    s->run.conn[S_DST] = dst;
    s->run.wind_down = s_wind_down;
    s->post = strcmp(req->section, "post") == 0;
    s->database = xstrdup(req->database);
    s->source_db = xstrdup(rc->dbname);
    s->pg_dump = pgtools_program(local->bin_dir, "pg_dump");
    s->pg_restore = pgtools_program(local->bin_dir, "pg_restore");
    s->statement_timeout_ms = local->statement_timeout_ms;
    s->connect_timeout_ms = local->connect_timeout_ms;
    char *wd_name = xasprintf("schema on database %s", req->database); /* in its warnings */
    workdir_init(&s->wd, loop, wd_name);
    free(wd_name);
    toc_want_set(&s->toc, req->tables, req->n_tables);

    /* Children: the agent's environment without PG*, plus the connection. */
    s->src_env = pgtools_env(peer->host, src_port, peer->user, peer->passfile, peer->sslmode,
                             rc->dbname, connect_timeout);
    s->dst_env = pgtools_env(local->host, dst_port, local->user, local->passfile, NULL, NULL,
                             connect_timeout);

    steprun_fn first = s_first;
    if (s_conninfo_like(req->database)) {
        /* refused before anything runs, reported (next turn) like any failure */
        s->refused = xasprintf("database name %s contains '=' or starts like a URI: pg_restore "
                               "would read it as connection options; rename the database",
                               req->database);
        log_debug("schema on database %s: %s", req->database, s->refused);
        first = s_refused;
    }
    s->run.plain_errors = true; /* this step's errors never carried a prefix */
    steprun_start(&s->run, loop,
                  xasprintf("schema %s on database %s", s->post ? "post" : "pre", req->database),
                  done, arg, s_release, first);
    return &s->run.base;
}
