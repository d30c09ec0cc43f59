/*
 * verify_schema: the target agent's VerifySchema and VerifyRoles steps (phase 6
 * and the cutover's gate): the migrated tables' schema and the application
 * roles' privileges, compared source against target. (VerifyTable, the
 * rows, is verify_table.c.) See the messages in proto/godwit.proto for the
 * contracts.
 *
 * Two connections: `src` to the source database with the replication role's
 * credentials, and `dst` to the local target database, both read only,
 * without snapshots, with the settings that change how a value prints
 * pinned, so both sides print a definition the same way.
 *
 * SQL: names go into the text only through PQescapeIdentifier, values
 * always as parameters.
 *
 * VerifySchema compares the tables' columns, constraints and indexes (and
 * lists the source's tables it compared, for a standby's table verify), then
 * (as VerifyRoles does alone) who owns what and who may do what, through
 * access.h's one reader and one comparison; each difference is a finding
 * with the statement to run on the target.
 *
 * Owns: its runtime (steprun.h: both connections, the timer that starts
 * the first stage one loop turn after the start and whose close frees
 * everything), a copy of the request, each side's catalog and the result
 * being built.
 */
#include "verify_schema.h"
#include "steprun.h"
#include "access.h"
#include "log.h"
#include "pgconn.h"
#include "wire.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V_DEFAULT_TIMEOUT_MS (3600 * 1000)

#define V_PRINT_OPTIONS                                                                        \
    " -c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"      \
    " -c bytea_output=hex -c lc_monetary=C"

typedef struct v_step v_step_t;
typedef void (*v_fn)(v_step_t *s);

typedef enum { SIDE_SRC = 0, SIDE_DST = 1 } v_side_t;

struct v_step {
    steprun_t run;              /* first: conn[SIDE_SRC], conn[SIDE_DST], label, what */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;        /* statement timeout of the reads */

    /* Where a sequence of statements goes on. */
    unsigned pending;           /* statements in flight on both sides */
    v_fn then;                  /* runs when pending drops to 0 */

    /* VerifySchema or VerifyRoles. */
    Godwit__VerifyRoles *rreq;
    bool roles_fenced;          /* our fence holds the target: its roles lack LOGIN */
    Godwit__VerifySchema *sreq;
    Godwit__VerifySchemaResult *sres;
    cJSON *catalog[2];          /* each side's tables, from v_catalog_sql */
    cJSON *access[2];           /* each side's roles and privileges (access.h) */
    v_fn first;                 /* the first stage after connecting */
};

/* ---- small things ------------------------------------------------------- */

static bool v_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- finishing ---------------------------------------------------------- */

static void v_release(steprun_t *run)
{
    v_step_t *s = (v_step_t *)run;
    if (s->sreq)
        godwit__verify_schema__free_unpacked(s->sreq, NULL);
    if (s->rreq)
        godwit__verify_roles__free_unpacked(s->rreq, NULL);
    if (s->sres)
        godwit__verify_schema_result__free_unpacked(s->sres, NULL);
    cJSON_Delete(s->catalog[SIDE_SRC]);
    cJSON_Delete(s->catalog[SIDE_DST]);
    cJSON_Delete(s->access[SIDE_SRC]);
    cJSON_Delete(s->access[SIDE_DST]);
    free(s);
}

/* VerifyRoles' answer: the findings moved over from sres, whose count
 * is of roles there (v_access_compare). */
static ProtobufCMessage *v_roles_result(v_step_t *s)
{
    Godwit__VerifyRolesResult *r = xmalloc(sizeof *r);
    godwit__verify_roles_result__init(r);
    r->roles = s->sres->tables;
    r->findings = s->sres->findings;
    r->n_findings = s->sres->n_findings;
    s->sres->findings = NULL;
    s->sres->n_findings = 0;
    return &r->base;
}

static void v_finish(v_step_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (!error) {
        log_info("verify %s: %zu findings over %u %s", s->run.label, s->sres->n_findings,
                 s->sres->tables, s->rreq ? "roles" : "tables");
        if (s->rreq) {
            payload = v_roles_result(s);
        } else {
            payload = &s->sres->base;
            s->sres = NULL;
        }
    }
    steprun_finish(&s->run, payload, error);
}

static void v_fail_query(v_step_t *s, v_side_t side, const pgconn_result_t *r)
{
    steprun_fail_query(&s->run, side == SIDE_SRC ? "source" : "target", r);
}

/* ---- statements --------------------------------------------------------- */

/* Sends sql on one side; cb gets s. Counts it in pending. false after
 * ending the step. */
static bool v_send(v_step_t *s, v_side_t side, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, side, what, sql, nparams, params,
                  s->timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
    if (s->run.disposed)
        return false;
    s->pending++;
    return true;
}

/* A statement's callback got here: false if the step ended (error). */
static bool v_arrived(v_step_t *s, pgconn_t *c, const pgconn_result_t *r)
{
    s->pending--;
    if (s->run.disposed)
        return false;
    if (!r->ok) {
        v_fail_query(s, c == s->run.conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST, r);
        return false;
    }
    return true;
}

/* Runs s->then once nothing is in flight any more. */
static void v_maybe_then(v_step_t *s)
{
    if (s->pending == 0 && !s->run.disposed) {
        v_fn fn = s->then;
        s->then = NULL;
        if (fn)
            fn(s);
    }
}

/* ---- connecting --------------------------------------------------------- */

static void v_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    v_step_t *s = arg;
    s->pending--;
    if (s->run.disposed)
        return;
    if (!ok) {
        steprun_failf(&s->run, "cannot connect to the %s: %s", c == s->run.conn[SIDE_SRC] ? "source" : "target",
                error ? error : "unknown error");
        return;
    }
    v_maybe_then(s);
}

/* ---- start -------------------------------------------------------------- */

static void v_connect(v_step_t *s)
{
    s->then = s->first;
    for (int side = 0; side < 2; side++) {
        int rc = pgconn_connect(s->run.conn[side], s->connect_timeout_ms, v_on_connect, s);
        if (rc != 0) {
            steprun_failf(&s->run, "cannot start connecting: %s%s", strerror(-rc), "");
            return;
        }
        s->pending++;
    }
}

static void v_first(steprun_t *run)
{
    v_connect((v_step_t *)run);
}

static bool v_set(const char *v)
{
    return v && v[0];
}

/* The verify session settings: read-only, pinned output formats; for the
 * catalog comparisons (catalog), no JIT: the planner's estimates for the
 * access catalog's recursive query make it compile for a second or more
 * what runs in milliseconds. Caller frees. */
static char *v_options(uint64_t timeout_ms, bool catalog)
{
    return xasprintf("-c statement_timeout=%" PRIu64 " -c search_path="
                     " -c default_transaction_read_only=on%s" V_PRINT_OPTIONS,
                     timeout_ms, catalog ? " -c jit=off" : "");
}

/* A step with both connections (not yet connecting): the source through
 * source (the peer it names, pgstep_remote_conn), the target's database
 * locally, and an empty result; once connected it runs first. fenced: our
 * fence holds the target (step.h). NULL for invalid arguments (label
 * freed). */
static v_step_t *v_new(uv_loop_t *loop, const step_local_t *local, const char *database,
                       const Godwit__ReplicationConn *source, uint64_t timeout_ms, bool catalog,
                       char *label, bool fenced, v_fn first, step_done_cb done, void *arg)
{
    if (!loop || !local || !v_set(local->host) || local->port < 1 || local->port > 65535 ||
        local->connect_timeout_ms <= 0 || !v_set(database) || !source || !v_set(source->peer) ||
        !v_set(source->dbname) || !done) {
        free(label);
        return NULL;
    }
    v_step_t *s = xcalloc(1, sizeof *s);
    s->timeout_ms = timeout_ms ? timeout_ms : V_DEFAULT_TIMEOUT_MS;
    s->connect_timeout_ms = (uint64_t)local->connect_timeout_ms;
    char *options = v_options(s->timeout_ms, catalog);
    s->run.conn[SIDE_SRC] = pgstep_remote_conn(loop, "verify source", local, source, false,
                                               "godwit-verify", options);
    s->run.conn[SIDE_DST] = pgstep_local_conn(loop, "verify target", local, database,
                                              "godwit-verify", options);
    free(options);
    if (!s->run.conn[SIDE_SRC] || !s->run.conn[SIDE_DST]) {
        pgconn_destroy(&s->run.conn[SIDE_SRC]);
        pgconn_destroy(&s->run.conn[SIDE_DST]);
        free(s);
        free(label);
        return NULL;
    }
    s->sres = xmalloc(sizeof *s->sres);
    godwit__verify_schema_result__init(s->sres);
    s->roles_fenced = fenced;
    s->first = first;
    /* connects one loop turn later, then runs first */
    steprun_start(&s->run, loop, label, done, arg, v_release, v_first);
    return s;
}

/* ---- VerifySchema ------------------------------------------------------- */

/* Every user table (or those in $1, a JSON array of [schema, name]) with its
 * columns, constraints and the indexes that no constraint owns, whether it
 * is a partition, whether it (or a partition of it) is unlogged, and
 * whether it (every partition of it) has a replica identity, as one JSON
 * document; names come back raw and quoted (quote_ident) for statements. */
/* Whether the table rel (an alias of pg_class) has a replica identity: the
 * old key an update's or delete's WAL carries, without which a publication
 * that publishes them makes the server refuse them. */
#define S_HAS_IDENTITY(rel)                                                                   \
    "(" rel ".relreplident = 'f' OR " rel ".relreplident IN ('d', 'i') AND EXISTS (SELECT 1"  \
    " FROM pg_catalog.pg_index i WHERE i.indrelid = " rel ".oid AND CASE " rel ".relreplident" \
    " WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END))"

static const char v_catalog_sql[] =
    "SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "  'schema', n.nspname, 'name', c.relname,"
    "  'q', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
    "  'partition', c.relispartition,"
    "  'unlogged', c.relpersistence = 'u' OR EXISTS (SELECT 1"
    "    FROM pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class l ON l.oid = t.relid"
    "    WHERE l.relpersistence = 'u'),"
    "  'identity', COALESCE(CASE WHEN c.relkind = 'r' THEN " S_HAS_IDENTITY("c")
    "    ELSE (SELECT pg_catalog.bool_and(" S_HAS_IDENTITY("l") ")"
    "    FROM pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class l ON l.oid = t.relid"
    "    WHERE l.relkind = 'r') END, true),"
    "  'columns', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', a.attname, 'q', pg_catalog.quote_ident(a.attname),"
    "      'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'notnull', a.attnotnull,"
    "      'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')"
    "    FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d"
    "      ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "  'constraints', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', co.conname, 'q', pg_catalog.quote_ident(co.conname),"
    "      'def', pg_catalog.pg_get_constraintdef(co.oid)) ORDER BY co.conname), '[]')"
    "    FROM pg_catalog.pg_constraint co WHERE co.conrelid = c.oid),"
    "  'indexes', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object("
    "      'name', ic.relname, 'q', pg_catalog.quote_ident(n.nspname) || '.' ||"
    "      pg_catalog.quote_ident(ic.relname), 'def', pg_catalog.pg_get_indexdef(i.indexrelid))"
    "      ORDER BY ic.relname), '[]')"
    "    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    "    WHERE i.indrelid = c.oid AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
    "      WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid))"
    ") ORDER BY n.nspname, c.relname), '[]')::pg_catalog.text AS catalog"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'"
    " AND n.nspname !~ '^pg_'"
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid ="
    "   'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')"
    " AND (pg_catalog.jsonb_array_length($1::pg_catalog.jsonb) = 0 OR EXISTS (SELECT 1"
    "   FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) w"
    "   WHERE w->>0 = n.nspname AND w->>1 = c.relname))";

static void v_finding(v_step_t *s, const cJSON *table, const char *object_suffix,
                      bool rows_affected, char *problem_taken, char *statement_taken)
{
    Godwit__VerifySchemaResult *res = s->sres;
    Godwit__SchemaFinding *f = xmalloc(sizeof *f);
    godwit__schema_finding__init(f);
    const char *schema = cJSON_GetStringValue(cJSON_GetObjectItem(table, "schema"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(table, "name"));
    f->object = object_suffix ? xasprintf("%s.%s.%s", schema, name, object_suffix)
                              : xasprintf("%s.%s", schema, name);
    f->problem = problem_taken;
    f->statement = statement_taken;
    f->table = xmalloc(sizeof *f->table);
    godwit__table_ref__init(f->table);
    f->table->schema = xstrdup(schema);
    f->table->name = xstrdup(name);
    f->rows_affected = rows_affected;
    res->findings = xrealloc(res->findings, (res->n_findings + 1) * sizeof *res->findings);
    res->findings[res->n_findings++] = f;
}

static const char *v_js(const cJSON *o, const char *key)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return v ? v : "";
}

/* The item of list whose "name" is name, or NULL. */
static const cJSON *v_by_name(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (strcmp(v_js(it, "name"), name) == 0)
            return it;
    return NULL;
}

/* "col type [NOT NULL] [DEFAULT expr]". Caller frees. */
static char *v_column_def(const cJSON *col)
{
    const cJSON *dflt = cJSON_GetObjectItem(col, "default");
    return xasprintf("%s %s%s%s%s", v_js(col, "q"), v_js(col, "type"),
                     cJSON_IsTrue(cJSON_GetObjectItem(col, "notnull")) ? " NOT NULL" : "",
                     cJSON_IsString(dflt) ? " DEFAULT " : "",
                     cJSON_IsString(dflt) ? dflt->valuestring : "");
}

static void v_compare_columns(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const char *q = v_js(st, "q");
    const cJSON *scols = cJSON_GetObjectItem(st, "columns"), *dcols = cJSON_GetObjectItem(dt, "columns");
    const cJSON *c;
    cJSON_ArrayForEach(c, scols) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dcols, name);
        if (!d) {
            char *def = v_column_def(c);
            v_finding(s, st, name, true, xasprintf("column %s exists on the source only", name),
                      xasprintf("ALTER TABLE %s ADD COLUMN %s;", q, def));
            free(def);
            continue;
        }
        if (strcmp(v_js(c, "type"), v_js(d, "type")) != 0)
            v_finding(s, st, name, true,
                      xasprintf("column %s is %s on the source, %s on the target", name,
                                v_js(c, "type"), v_js(d, "type")),
                      xasprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s;", q, v_js(c, "q"),
                                v_js(c, "type")));
        bool sn = cJSON_IsTrue(cJSON_GetObjectItem(c, "notnull"));
        if (sn != cJSON_IsTrue(cJSON_GetObjectItem(d, "notnull")))
            v_finding(s, st, name, false,
                      xasprintf("column %s is %s on the source only", name,
                                sn ? "NOT NULL" : "nullable"),
                      xasprintf("ALTER TABLE %s ALTER COLUMN %s %s NOT NULL;", q, v_js(c, "q"),
                                sn ? "SET" : "DROP"));
        const cJSON *sd = cJSON_GetObjectItem(c, "default"), *dd = cJSON_GetObjectItem(d, "default");
        const char *sdv = cJSON_IsString(sd) ? sd->valuestring : NULL;
        const char *ddv = cJSON_IsString(dd) ? dd->valuestring : NULL;
        if (!v_same(sdv, ddv))
            v_finding(s, st, name, false,
                      xasprintf("column %s's default is %s on the source, %s on the target", name,
                                sdv ? sdv : "none", ddv ? ddv : "none"),
                      sdv ? xasprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;", q,
                                      v_js(c, "q"), sdv)
                          : xasprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT;", q,
                                      v_js(c, "q")));
    }
    cJSON_ArrayForEach(c, dcols) {
        const char *name = v_js(c, "name");
        if (!v_by_name(scols, name))
            v_finding(s, st, name, true, xasprintf("column %s exists on the target only", name),
                      xasprintf("ALTER TABLE %s DROP COLUMN %s;", q, v_js(c, "q")));
    }
}

static void v_compare_constraints(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const char *q = v_js(st, "q");
    const cJSON *sl = cJSON_GetObjectItem(st, "constraints"), *dl = cJSON_GetObjectItem(dt, "constraints");
    const cJSON *c;
    cJSON_ArrayForEach(c, sl) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dl, name);
        if (!d)
            v_finding(s, st, name, false, xasprintf("constraint %s exists on the source only", name),
                      xasprintf("ALTER TABLE %s ADD CONSTRAINT %s %s;", q, v_js(c, "q"),
                                v_js(c, "def")));
        else if (strcmp(v_js(c, "def"), v_js(d, "def")) != 0)
            v_finding(s, st, name, false,
                      xasprintf("constraint %s is %s on the source, %s on the target", name,
                                v_js(c, "def"), v_js(d, "def")),
                      xasprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s;", q,
                                v_js(c, "q"), v_js(c, "q"), v_js(c, "def")));
    }
    cJSON_ArrayForEach(c, dl) {
        const char *name = v_js(c, "name");
        if (!v_by_name(sl, name))
            v_finding(s, st, name, false, xasprintf("constraint %s exists on the target only", name),
                      xasprintf("ALTER TABLE %s DROP CONSTRAINT %s;", q, v_js(c, "q")));
    }
}

static void v_compare_indexes(v_step_t *s, const cJSON *st, const cJSON *dt)
{
    const cJSON *sl = cJSON_GetObjectItem(st, "indexes"), *dl = cJSON_GetObjectItem(dt, "indexes");
    const cJSON *c;
    cJSON_ArrayForEach(c, sl) {
        const char *name = v_js(c, "name");
        const cJSON *d = v_by_name(dl, name);
        if (!d)
            v_finding(s, st, name, false, xasprintf("index %s exists on the source only", name),
                      xasprintf("%s;", v_js(c, "def")));
        else if (strcmp(v_js(c, "def"), v_js(d, "def")) != 0)
            v_finding(s, st, name, false,
                      xasprintf("index %s is \"%s\" on the source, \"%s\" on the target", name,
                                v_js(c, "def"), v_js(d, "def")),
                      xasprintf("DROP INDEX %s; %s;", v_js(c, "q"), v_js(c, "def")));
    }
    cJSON_ArrayForEach(c, dl) {
        const char *name = v_js(c, "name");
        if (!v_by_name(sl, name))
            v_finding(s, st, name, false, xasprintf("index %s exists on the target only", name),
                      xasprintf("DROP INDEX %s;", v_js(c, "q")));
    }
}

/* The table of list with the same schema and name as t, or NULL. */
static const cJSON *v_same_table(const cJSON *list, const cJSON *t)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (strcmp(v_js(it, "schema"), v_js(t, "schema")) == 0 &&
            strcmp(v_js(it, "name"), v_js(t, "name")) == 0)
            return it;
    return NULL;
}

/* The source's table st in the result's compared list, unless it is a
 * partition (compared through its root) or unlogged (no standby and no
 * subscription has its rows); in no_identity too without a replica
 * identity. The catalog comes in schema, name order. */
static void v_compared_add(v_step_t *s, const cJSON *st)
{
    if (cJSON_IsTrue(cJSON_GetObjectItem(st, "partition")) ||
        cJSON_IsTrue(cJSON_GetObjectItem(st, "unlogged")))
        return;
    Godwit__VerifySchemaResult *res = s->sres;
    Godwit__TableRef *t = xmalloc(sizeof *t); /* freed with the result (free_unpacked) */
    godwit__table_ref__init(t);
    t->schema = xstrdup(v_js(st, "schema"));
    t->name = xstrdup(v_js(st, "name"));
    res->compared = xrealloc(res->compared, (res->n_compared + 1) * sizeof *res->compared);
    res->compared[res->n_compared++] = t;
    if (cJSON_IsTrue(cJSON_GetObjectItem(st, "identity")))
        return;
    Godwit__TableRef *u = xmalloc(sizeof *u); /* freed with the result (free_unpacked) */
    godwit__table_ref__init(u);
    u->schema = xstrdup(t->schema);
    u->name = xstrdup(t->name);
    res->no_identity = xrealloc(res->no_identity, (res->n_no_identity + 1) * sizeof *res->no_identity);
    res->no_identity[res->n_no_identity++] = u;
}

static void v_access_read(v_step_t *s);

static void v_schema_compare(v_step_t *s)
{
    const cJSON *src = s->catalog[SIDE_SRC], *dst = s->catalog[SIDE_DST];
    const cJSON *st;
    cJSON_ArrayForEach(st, src) {
        s->sres->tables++;
        v_compared_add(s, st);
        const cJSON *dt = v_same_table(dst, st);
        if (!dt) {
            /* The whole table, to create on the target; its rows are not
             * replicated until the publication and subscription include it. */
            char *cols = xstrdup("");
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "columns")) {
                char *def = v_column_def(c);
                char *grown = xasprintf("%s%s%s", cols, cols[0] ? ", " : "", def);
                free(def);
                free(cols);
                cols = grown;
            }
            v_finding(s, st, NULL, true,
                      xstrdup("the table exists on the source only: it was created after the "
                              "schema phase and its rows are not being migrated"),
                      xasprintf("CREATE TABLE %s (%s); then add it to the migration (abort and "
                                "start again, or add it to the publication and refresh the "
                                "subscription)", v_js(st, "q"), cols));
            free(cols);
            continue;
        }
        v_compare_columns(s, st, dt);
        v_compare_constraints(s, st, dt);
        v_compare_indexes(s, st, dt);
    }
    v_access_read(s);
}

static void v_on_catalog(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r))
        return;
    v_side_t side = c == s->run.conn[SIDE_SRC] ? SIDE_SRC : SIDE_DST;
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "catalog") : NULL;
    s->catalog[side] = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsArray(s->catalog[side])) {
        steprun_failf(&s->run, "reading the %s's catalog: not a JSON array", side == SIDE_SRC ? "source" : "target");
        return;
    }
    v_maybe_then(s);
}

static void v_schema_read(v_step_t *s)
{
    cJSON *want = cJSON_CreateArray();
    for (size_t i = 0; i < s->sreq->n_tables; i++) {
        const Godwit__TableRef *t = s->sreq->tables[i];
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(t && t->schema ? t->schema : ""));
        cJSON_AddItemToArray(pair, cJSON_CreateString(t && t->name ? t->name : ""));
        cJSON_AddItemToArray(want, pair);
    }
    char *json = cJSON_PrintUnformatted(want);
    cJSON_Delete(want);
    const char *params[1] = { json };
    s->then = v_schema_compare;
    if (v_send(s, SIDE_SRC, "reading the catalog", v_catalog_sql, 1, params, v_on_catalog))
        v_send(s, SIDE_DST, "reading the catalog", v_catalog_sql, 1, params, v_on_catalog);
    cJSON_free(json);
}

step_t *verify_schema_start(uv_loop_t *loop, const step_local_t *local,
                            const Godwit__VerifySchema *req, bool fenced, step_done_cb done,
                            void *arg)
{
    if (!req)
        return NULL;
    v_step_t *s = v_new(loop, local, req->database, req->source, 0, true,
                        xasprintf("schema of database %s", req->database), fenced, v_schema_read,
                        done, arg);
    if (!s)
        return NULL;
    s->sreq = wire_copy(req);
    if (!s->sreq) {
        s->run.base.cancel(&s->run.base);
        return NULL;
    }
    return &s->run.base;
}

/* ---- who owns what, who may do what (VerifySchema's second part, and
 * VerifyRoles): the access catalogs of both sides (access.h), the
 * source's first, whose roles the target's then describes too. */

static void v_access_finding(v_step_t *s, access_diff_t *d)
{
    Godwit__VerifySchemaResult *res = s->sres;
    Godwit__SchemaFinding *f = xmalloc(sizeof *f);
    godwit__schema_finding__init(f);
    f->object = d->object;
    f->problem = d->problem;
    f->statement = d->statement;
    d->object = d->problem = d->statement = NULL;
    res->findings = xrealloc(res->findings, (res->n_findings + 1) * sizeof *res->findings);
    res->findings[res->n_findings++] = f;
}

static void v_access_compare(v_step_t *s)
{
    access_quote_t q = access_quote_conn(s->run.conn[SIDE_DST]);
    access_diffs_t diffs = { 0 };
    char *err = NULL;
    if (!access_compare(s->access[SIDE_SRC], s->access[SIDE_DST], s->roles_fenced, &q, &diffs,
                        &err)) {
        access_diffs_free(&diffs);
        steprun_failf(&s->run, "comparing roles and privileges: %s", err);
        free(err);
        return;
    }
    for (size_t i = 0; i < diffs.n; i++)
        if (diffs.v[i].kind != ACCESS_BOOTSTRAP) /* information: the names differ */
            v_access_finding(s, &diffs.v[i]);
    access_diffs_free(&diffs);
    if (s->rreq)
        s->sres->tables = (uint32_t)cJSON_GetArraySize(
            cJSON_GetObjectItemCaseSensitive(s->access[SIDE_SRC], "roles"));
    v_finish(s, NULL);
}

/* Stores a side's access catalog; false after ending the step. */
static bool v_access_store(v_step_t *s, v_side_t side, const pgconn_result_t *r)
{
    const char *text = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, "access") : NULL;
    char *err = NULL;
    s->access[side] = access_parse(text, &err);
    if (!s->access[side]) {
        steprun_failf(&s->run, "reading the %s's roles and privileges: %s",
                side == SIDE_SRC ? "source" : "target", err ? err : "no answer");
        free(err);
        return false;
    }
    return true;
}

static void v_on_access_dst(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r) || !v_access_store(s, SIDE_DST, r))
        return;
    v_access_compare(s);
}

static void v_on_access_src(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    v_step_t *s = arg;
    if (!v_arrived(s, c, r) || !v_access_store(s, SIDE_SRC, r))
        return;
    char *names = access_role_names(s->access[SIDE_SRC]);
    const char *params[1] = { names };
    v_send(s, SIDE_DST, "reading the roles and privileges", access_catalog_sql, 1, params,
           v_on_access_dst);
    free(names);
}

static void v_access_read(v_step_t *s)
{
    char *const *roles = s->rreq ? s->rreq->roles : s->sreq->app_roles;
    size_t n = s->rreq ? s->rreq->n_roles : s->sreq->n_app_roles;
    char *list = pgconn_text_array(roles, n);
    const char *params[1] = { list };
    v_send(s, SIDE_SRC, "reading the roles and privileges", access_catalog_sql, 1, params,
           v_on_access_src);
    free(list);
}

step_t *verify_schema_roles_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__VerifyRoles *req, bool fenced,
                                  step_done_cb done, void *arg)
{
    if (!req || req->n_roles == 0)
        return NULL;
    v_step_t *s = v_new(loop, local, req->database, req->source, 0, true,
                        xasprintf("roles in database %s", req->database), fenced, v_access_read,
                        done, arg);
    if (!s)
        return NULL;
    s->rreq = wire_copy(req);
    if (!s->rreq) {
        s->run.base.cancel(&s->run.base);
        return NULL;
    }
    return &s->run.base;
}
