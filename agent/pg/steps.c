/*
 * steps: the agent's logical replication steps (see step.h for the contract
 * with the caller): EnsurePublication on the source, EnsureSubscription and
 * SyncStatus on the target, DropObjects on either side, EnsureSlot on the
 * new primary of a cutover. Each works over one pgconn to the local server.
 *
 * A step is a fixed list of stages run one after the other by
 * steprun_next(): a stage opens the connection or sends one statement, and
 * its callback reads the answer and calls s_next() or s_finish(). Every step
 * first reads the catalogs and then changes only what differs from the
 * request, so running it again (after a crash, a timeout, a re-sent command)
 * ends in the same state and reports success.
 *
 * SQL: catalog lookups are parameterised and pg_catalog-qualified (the
 * session runs with an empty search_path) and compare names as parameters.
 * DDL takes no parameters: identifiers go into its text only through
 * PQescapeIdentifier, and its string literals, the subscription's
 * CONNECTION (a libpq conninfo whose values s_conninfo() quotes, all of
 * them from the agent's peers but the database) and the marker comment,
 * only through PQescapeLiteral. DROP SUBSCRIPTION, and CREATE SUBSCRIPTION
 * when it creates its slot, may not run inside a transaction block: they
 * are sent alone.
 *
 * Only godwit's objects (step.h, "Trust"): every name must pass
 * step_godwit_name; a publication or subscription is created together with
 * its marker comment (both statements in one simple query, one implicit
 * transaction; a subscription that creates its slot cannot be in one, so
 * its comment follows at once) and is altered, enabled, disabled or dropped
 * only if it carries that marker; a slot is advanced or dropped only if it
 * is a logical pgoutput slot of this database, and its holder terminated
 * only if that is a WAL sender. DropObjects checks everything it names
 * before it drops or terminates anything.
 *
 * What it owns: its runtime (steprun.h: the local pgconn as conn[0], the
 * timer that starts the first stage one loop turn after *_start, so done
 * never runs inside it, and paces the wait for a terminated slot holder to
 * go; its close frees the step), copies of what it needs from the request,
 * and the result being built.
 *
 * What it must never do: call done more than once or after step_cancel(),
 * block the loop, put a password into a conninfo, or put a name into SQL
 * text unquoted.
 */
#include "steprun.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_SERVER_VERSION 130000   /* publish_via_partition_root */
#define S_SLOT_WAIT_MS 2000           /* for a slot's terminated holder to let go */
#define S_SLOT_POLL_MS 100            /* 13: how often to look meanwhile */

/* What our publications publish: every change, as the partition root. */
#define S_PUB_OPTIONS \
    "publish = 'insert, update, delete, truncate', publish_via_partition_root = true"

/* The comment on subscription s (the marker): COMMENT ON SUBSCRIPTION
 * writes pg_description of the database it runs in (the subscription's:
 * ours always does), though pg_subscription is a shared catalog; a server
 * that keeps it in pg_shdescription is read too. */
#define S_SUB_MARKER                                                                           \
    "COALESCE(pg_catalog.obj_description(s.oid, 'pg_subscription'),"                \
    " pg_catalog.shobj_description(s.oid, 'pg_subscription'))"

/* The oid of the database we are connected to. */
#define S_THIS_DB                                                                              \
    "(SELECT d.oid FROM pg_catalog.pg_database d"                                              \
    " WHERE d.datname = pg_catalog.current_database())"

typedef struct s_step s_step_t;

struct s_step {
    steprun_t run;              /* first: conn[0] the local database, the timer (first
                                   stage, slot polls), the stages, label, what */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    bool looked_again;          /* a concurrent create was met and the lookup re-run */

    /* EnsurePublication */
    char *pub_name;
    Godwit__TableRef *tables;   /* copies (schema, name), n_tables of them */
    size_t n_tables;            /* 0: FOR ALL TABLES */
    char *tables_json;          /* [{"schema":..,"name":..}], NULL when n_tables is 0 */
    bool pub_exists, pub_all_tables, pub_same_tables, pub_options_ok;

    /* EnsureSubscription */
    bool want_enabled;          /* SetSubscriptionEnabled */
    char *sub_name;
    char *publication;
    char *conninfo;             /* how the subscription reaches the source; no password */
    bool create_slot;           /* false after the slot was found on the source */
    bool copy_data;             /* false: attached to a slot whose data was copied already */

    /* SyncStatus (sub_name too) */
    Godwit__SyncStatusResult *result;
    char *sub_oid;

    /* EnsureSlot (pub_name and tables too) */
    uint64_t advance_to;        /* 0: do not advance */
    Godwit__EnsureSlotResult *slot_result;

    /* DropObjects */
    char *drop_sub, *drop_pub, *drop_slot; /* NULL: skip */
    char *drop_verify_slot;     /* dropped after drop_slot, the same way; NULL: skip */
    uint64_t slot_deadline;     /* uv_now() when waiting for its holder ends; 0: not yet */
};

/* ---- finishing ---------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    for (size_t i = 0; i < s->n_tables; i++) {
        free(s->tables[i].schema);
        free(s->tables[i].name);
    }
    free(s->tables);
    if (s->result)
        godwit__sync_status_result__free_unpacked(s->result, NULL);
    if (s->slot_result)
        godwit__ensure_slot_result__free_unpacked(s->slot_result, NULL);
    free(s->pub_name);
    free(s->tables_json);
    free(s->sub_name);
    free(s->publication);
    free(s->conninfo);
    free(s->sub_oid);
    free(s->drop_sub);
    free(s->drop_pub);
    free(s->drop_slot);
    free(s->drop_verify_slot);
    free(s);
}

/* Ends the step: payload (taken, may be NULL) on success with error NULL,
 * else the error (steprun.h). */
static void s_finish(s_step_t *s, ProtobufCMessage *payload, const char *error)
{
    steprun_finish(&s->run, payload, error);
}

static void s_next(s_step_t *s)
{
    steprun_next(&s->run);
}

static void s_fail_query(s_step_t *s, const pgconn_result_t *r)
{
    steprun_fail_query(&s->run, NULL, r);
}

/* Sends one statement on the local connection; cb gets s. */
static void s_query(s_step_t *s, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    steprun_query(&s->run, 0, what, sql, nparams, params,
                  (uint64_t)s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

/* The same through the simple protocol: sql may hold several statements,
 * run as one implicit transaction (a CREATE and its marker). */
static void s_query_simple(s_step_t *s, const char *what, const char *sql, pgconn_result_cb cb)
{
    steprun_query_simple(&s->run, 0, what, sql,
                         (uint64_t)s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS, cb);
}

/* ident quoted by the server's rules (caller frees), or NULL after ending the
 * step with an error. */
static char *s_ident(s_step_t *s, const char *ident)
{
    return steprun_ident(&s->run, 0, ident);
}

/* A statement failed because our own connection is gone (pgconn's 08006),
 * as opposed to the server reporting an error. */
static bool s_conn_lost(const s_step_t *s)
{
    return !pgconn_is_ready(s->run.conn[0]);
}

/* A CREATE failed because the object was created by someone else since our
 * lookup: 42710 when it had committed before, 23505 (the catalog's unique
 * index) when both ran at the same time. */
static bool s_exists_error(const pgconn_result_t *r)
{
    return strcmp(r->sqlstate, "42710") == 0 || strcmp(r->sqlstate, "23505") == 0;
}

/* ---- connecting --------------------------------------------------------- */

static void s_on_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    s_step_t *s = arg;
    if (!ok) {
        char *why = xasprintf("cannot connect: %s", error ? error : "unknown error");
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    int version = pgconn_server_version(c);
    if (version < S_MIN_SERVER_VERSION) {
        char *why = xasprintf("the server runs PostgreSQL version number %d; godwit needs 13 "
                              "or later",
                              version);
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    s_next(s);
}

static void s_connect(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    int rc = pgconn_connect(s->run.conn[0], (uint64_t)s->connect_timeout_ms, s_on_connect, s);
    if (rc != 0) {
        char *why = xasprintf("cannot start connecting: %s", strerror(-rc));
        s_finish(s, NULL, why);
        free(why);
    }
}

/* ---- only godwit's objects (step.h, "Trust") ---------------------------- */

/* Ends the step unless name (of kind, for messages) is one godwit gives. */
static bool s_name_ok(s_step_t *s, const char *kind, const char *name)
{
    if (!name || step_godwit_name(name))
        return true;
    char *why = xasprintf("%s \"%s\" is not a name godwit gives its objects (godwit_ and a-z, "
                          "0-9, _): godwit touches only what it created; nothing was done",
                          kind, name);
    s_finish(s, NULL, why);
    free(why);
    return false;
}

/* The first stage of every step that changes or drops an object: each
 * name it was given passes step_godwit_name. */
static void s_names(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (s_name_ok(s, "publication", s->pub_name) && s_name_ok(s, "subscription", s->sub_name) &&
        s_name_ok(s, "subscription", s->drop_sub) && s_name_ok(s, "publication", s->drop_pub) &&
        s_name_ok(s, "replication slot", s->drop_slot) &&
        s_name_ok(s, "replication slot", s->drop_verify_slot))
        s_next(s);
}

/* Whether the marker column of a lookup's row is godwit's marker for name. */
static bool s_marked(const PGresult *res, const char *name)
{
    const char *found = pgconn_col(res, 0, "marker");
    char *want = step_marker(name);
    bool ours = found && strcmp(found, want) == 0;
    free(want);
    return ours;
}

/* Ends the step: the publication or subscription (sql_kind "PUBLICATION"
 * or "SUBSCRIPTION") called name exists without godwit's marker. The
 * message names the statement that marks one an older godwit created. */
static void s_not_ours(s_step_t *s, const char *sql_kind, const char *name)
{
    char *marker = step_marker(name);
    char *ident = pgconn_escape_identifier(s->run.conn[0], name);
    char *lit = pgconn_escape_literal(s->run.conn[0], marker);
    char *why = xasprintf(
        "%s %s exists without godwit's marker: godwit did not create it, so godwit neither "
        "changes nor drops it; nothing was done. If an older godwit created it (before "
        "objects were marked), mark it by hand: COMMENT ON %s %s IS %s; or drop it by hand",
        strcmp(sql_kind, "PUBLICATION") == 0 ? "publication" : "subscription",
        ident ? ident : name, sql_kind, ident ? ident : name, lit ? lit : "(cannot quote)");
    s_finish(s, NULL, why);
    free(why);
    free(lit);
    free(ident);
    free(marker);
}

/* "COMMENT ON <sql_kind> <ident> IS <marker for name>". Caller frees;
 * NULL after ending the step. */
static char *s_comment_sql(s_step_t *s, const char *sql_kind, const char *ident,
                           const char *name)
{
    char *marker = step_marker(name);
    char *lit = pgconn_escape_literal(s->run.conn[0], marker);
    free(marker);
    if (!lit) {
        s_finish(s, NULL, "cannot quote the marker for SQL (the connection is gone)");
        return NULL;
    }
    char *sql = xasprintf("COMMENT ON %s %s IS %s", sql_kind, ident, lit);
    free(lit);
    return sql;
}

/* "<create>; COMMENT ON ...": the object and its marker, for one simple
 * query (one implicit transaction). Caller frees; NULL after ending the
 * step. */
static char *s_with_marker(s_step_t *s, const char *create, const char *sql_kind,
                           const char *ident, const char *name)
{
    char *comment = s_comment_sql(s, sql_kind, ident, name);
    if (!comment)
        return NULL;
    char *sql = xasprintf("%s; %s", create, comment);
    free(comment);
    return sql;
}

/* ---- EnsurePublication -------------------------------------------------- */

/* $1 name, $2 the requested tables as JSON (NULL: none). same_tables: the
 * tables the publication names (pg_publication_rel, what ALTER PUBLICATION
 * SET TABLE replaces) are exactly the requested ones. On 15 and later a row
 * filter, a column list or a FOR TABLES IN SCHEMA also count as different:
 * SET TABLE clears them. */
#define S_PUB_LOOKUP(extras)                                                                   \
    "WITH req AS (SELECT r.schema, r.name"                                                     \
    "  FROM pg_catalog.json_to_recordset($2::pg_catalog.json)"                                 \
    "  AS r(schema pg_catalog.text, name pg_catalog.text)),"                                   \
    " cur AS (SELECT pr.prpubid, n.nspname::pg_catalog.text AS schema,"                        \
    "  c.relname::pg_catalog.text AS name"                                                     \
    "  FROM pg_catalog.pg_publication_rel pr"                                                  \
    "  JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid"                                       \
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace) "                             \
    "SELECT p.puballtables, p.pubviaroot AND p.pubinsert AND p.pubupdate AND p.pubdelete"      \
    "  AND p.pubtruncate AS options_ok,"                                                       \
    " pg_catalog.obj_description(p.oid, 'pg_publication') AS marker,"                          \
    " NOT EXISTS (SELECT req.schema, req.name FROM req"                                        \
    "  EXCEPT SELECT cur.schema, cur.name FROM cur WHERE cur.prpubid = p.oid)"                 \
    " AND NOT EXISTS (SELECT cur.schema, cur.name FROM cur WHERE cur.prpubid = p.oid"          \
    "  EXCEPT SELECT req.schema, req.name FROM req)"                                           \
    " AND NOT (" extras ") AS same_tables"                                                     \
    " FROM pg_catalog.pg_publication p WHERE p.pubname = $1"

static const char s_pub_lookup_sql[] = S_PUB_LOOKUP(
    "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr WHERE pr.prpubid = p.oid"
    "  AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL))"
    " OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace pn"
    "  WHERE pn.pnpubid = p.oid)");
static const char s_pub_lookup_sql_14[] = S_PUB_LOOKUP("false");

#define S_PUB_STAGE_LOOKUP 2 /* index of s_pub_lookup in s_pub_stages */

static void s_on_pub_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    s->pub_exists = r->res && PQntuples(r->res) == 1;
    if (s->pub_exists) {
        if (!s_marked(r->res, s->pub_name)) {
            s_not_ours(s, "PUBLICATION", s->pub_name);
            return;
        }
        s->pub_all_tables = pgconn_col_bool(r->res, 0, "puballtables");
        s->pub_same_tables = pgconn_col_bool(r->res, 0, "same_tables");
        s->pub_options_ok = pgconn_col_bool(r->res, 0, "options_ok");
    }
    s_next(s);
}

static void s_pub_lookup(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[2] = { s->pub_name, s->tables_json };
    s_query(s, "looking up the publication",
            pgconn_server_version(s->run.conn[0]) >= 150000 ? s_pub_lookup_sql : s_pub_lookup_sql_14,
            2, params, s_on_pub_lookup);
}

/* "s1"."t1", "s2"."t2" for the requested tables (caller frees), or NULL after
 * ending the step with an error. */
static char *s_pub_table_list(s_step_t *s)
{
    char *list = NULL;
    for (size_t i = 0; i < s->n_tables; i++) {
        char *schema = s_ident(s, s->tables[i].schema);
        if (!schema) {
            free(list);
            return NULL;
        }
        char *name = s_ident(s, s->tables[i].name);
        if (!name) {
            free(schema);
            free(list);
            return NULL;
        }
        char *grown = xasprintf("%s%s%s.%s", list ? list : "", list ? ", " : "", schema, name);
        free(list);
        free(schema);
        free(name);
        list = grown;
    }
    return list;
}

static void s_on_pub_create(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok && !s_conn_lost(s) && s_exists_error(r) && !s->looked_again) {
        /* Created by someone else since our lookup: look again, once. */
        log_info("step on %s: created concurrently; looking again", s->run.label);
        s->looked_again = true;
        s->run.stage = S_PUB_STAGE_LOOKUP;
        s_next(s);
        return;
    }
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: created", s->run.label);
    s_next(s); /* created with our options; EnsureSlot's stages follow */
}

static void s_on_pub_set_tables(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: table list replaced with the %zu requested table(s)", s->run.label,
             s->n_tables);
    s_next(s);
}

/* Creates the publication, or makes an existing one name the requested
 * tables. */
static void s_pub_tables(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    bool want_all = s->n_tables == 0;
    if (s->pub_exists && s->pub_all_tables == want_all && (want_all || s->pub_same_tables)) {
        if (s->pub_options_ok)
            log_info("step on %s: exists as requested; nothing to do", s->run.label);
        s_next(s);
        return;
    }
    if (s->pub_exists && s->pub_all_tables != want_all) {
        /* PostgreSQL cannot turn one kind into the other in place, and
         * dropping a publication a subscription may be reading is not a
         * step's decision. */
        s_finish(s, NULL,
                 want_all ? "it exists for a list of tables but FOR ALL TABLES was requested; "
                            "PostgreSQL cannot change that in place: drop it first"
                          : "it exists FOR ALL TABLES but a list of tables was requested; "
                            "PostgreSQL cannot change that in place: drop it first");
        return;
    }
    char *name = s_ident(s, s->pub_name);
    if (!name)
        return;
    char *list = want_all ? NULL : s_pub_table_list(s);
    if (!want_all && !list) {
        free(name);
        return;
    }
    if (!s->pub_exists) {
        char *create = want_all
                           ? xasprintf("CREATE PUBLICATION %s FOR ALL TABLES WITH (" S_PUB_OPTIONS
                                       ")", name)
                           : xasprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (" S_PUB_OPTIONS
                                       ")", name, list);
        char *sql = s_with_marker(s, create, "PUBLICATION", name, s->pub_name);
        if (sql)
            s_query_simple(s, "creating the publication", sql, s_on_pub_create);
        free(sql);
        free(create);
    } else {
        char *sql = xasprintf("ALTER PUBLICATION %s SET TABLE %s", name, list);
        s_query(s, "setting the publication's tables", sql, 0, NULL, s_on_pub_set_tables);
        free(sql);
    }
    free(list);
    free(name);
}

static void s_on_pub_set_options(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: options set (" S_PUB_OPTIONS ")", s->run.label);
    s_next(s);
}

/* An existing publication publishes every change as the partition root. */
static void s_pub_options(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->pub_exists || s->pub_options_ok) {
        s_next(s);
        return;
    }
    char *name = s_ident(s, s->pub_name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER PUBLICATION %s SET (" S_PUB_OPTIONS ")", name);
    s_query(s, "setting the publication's options", sql, 0, NULL, s_on_pub_set_options);
    free(sql);
    free(name);
}

static const steprun_fn s_pub_stages[] = {
    s_names, s_connect, s_pub_lookup, s_pub_tables, s_pub_options, NULL,
};

/* ---- EnsureSlot ---------------------------------------------------------- */

/* The publication first (the stages above): a slot's decoding looks the
 * publication up as of each change, so a slot older than its publication
 * fails on the changes in between. Then the slot, created if missing, and
 * moved forward to advance_to if it is behind. */

static const char s_eslot_lookup_sql[] =
    "SELECT s.slot_type, s.plugin, s.datoid = " S_THIS_DB " AS here,"
    " s.confirmed_flush_lsn::pg_catalog.text AS confirmed"
    " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1";

static void s_eslot_lookup(steprun_t *run);

/* Reads an LSN column into *out; false after ending the step. */
static bool s_eslot_lsn(s_step_t *s, const pgconn_result_t *r, const char *col, uint64_t *out)
{
    const char *v = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, col) : NULL;
    if (!v || !lsn_parse(v, out)) {
        s_finish(s, NULL, "the server gave no valid WAL position for the slot");
        return false;
    }
    return true;
}

static void s_on_eslot_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    s_step_t *s = arg;
    if (!r->ok && !s_conn_lost(s) && s_exists_error(r) && !s->looked_again) {
        s->looked_again = true; /* created by someone else meanwhile */
        s_eslot_lookup(&s->run);
        return;
    }
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (!s_eslot_lsn(s, r, "lsn", &s->slot_result->confirmed_lsn))
        return;
    s->slot_result->created = true;
    log_info("step on %s: logical slot created", s->run.label);
    s_next(s);
}

static void s_on_eslot_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        const char *params[1] = { s->pub_name };
        s_query(s, "creating the logical slot",
                "SELECT l.lsn::pg_catalog.text AS lsn FROM"
                " pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput') l",
                1, params, s_on_eslot_created);
        return;
    }
    const char *type = pgconn_col(r->res, 0, "slot_type");
    const char *plugin = pgconn_col(r->res, 0, "plugin");
    if (!type || strcmp(type, "logical") != 0 || !plugin || strcmp(plugin, "pgoutput") != 0 ||
        !pgconn_col_bool(r->res, 0, "here")) {
        s_finish(s, NULL, "a replication slot of that name exists that is not a pgoutput slot "
                          "of this database; drop or rename it");
        return;
    }
    if (!s_eslot_lsn(s, r, "confirmed", &s->slot_result->confirmed_lsn))
        return;
    s_next(s);
}

static void s_eslot_lookup(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[1] = { s->pub_name };
    s_query(s, "looking up the slot", s_eslot_lookup_sql, 1, params, s_on_eslot_lookup);
}

static void s_on_eslot_advanced(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    uint64_t end;
    if (!s_eslot_lsn(s, r, "end_lsn", &end))
        return;
    s->slot_result->confirmed_lsn = end;
    if (end < s->advance_to) {
        char a[32], b[32];
        char *why = xasprintf("the slot got to %s, not %s: the server has not flushed its WAL "
                              "that far yet",
                              lsn_format(end, a, sizeof a), lsn_format(s->advance_to, b, sizeof b));
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    s_next(s);
}

static void s_eslot_advance(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->advance_to || s->slot_result->confirmed_lsn >= s->advance_to) {
        s_next(s);
        return;
    }
    char to[32];
    lsn_format(s->advance_to, to, sizeof to);
    const char *params[2] = { s->pub_name, to };
    s_query(s, "advancing the slot",
            "SELECT a.end_lsn::pg_catalog.text AS end_lsn FROM"
            " pg_catalog.pg_replication_slot_advance($1, $2::pg_catalog.pg_lsn) a",
            2, params, s_on_eslot_advanced);
}

static void s_eslot_result(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    ProtobufCMessage *payload = &s->slot_result->base;
    s->slot_result = NULL;
    s_finish(s, payload, NULL);
}

static const steprun_fn s_eslot_stages[] = {
    s_names, s_connect, s_pub_lookup, s_pub_tables, s_pub_options, s_eslot_lookup,
    s_eslot_advance, s_eslot_result, NULL,
};

/* ---- EnsureSubscription ------------------------------------------------- */

/* v single-quoted as libpq's conninfo syntax requires: a backslash before
 * each backslash and single quote. Caller frees. */
static char *s_conninfo_quote(const char *v)
{
    size_t n = 3;
    for (const char *p = v; *p; p++)
        n += (*p == '\\' || *p == '\'') ? 2 : 1;
    char *out = xmalloc(n);
    size_t o = 0;
    out[o++] = '\'';
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '\'')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

/* Appends " key='value'" to *info (which may be NULL). */
static void s_conninfo_add(char **info, const char *key, const char *value)
{
    char *q = s_conninfo_quote(value);
    char *grown = xasprintf("%s%s%s=%s", *info ? *info : "", *info ? " " : "", key, q);
    free(q);
    free(*info);
    *info = grown;
}

/* The conninfo the subscription uses to reach the source: the peer's
 * host, port, user, passfile and sslmode from the agent's config (which the
 * local server reads: the passfile is a path on this host), the database
 * src names, and application_name=godwit_<name>; never a password
 * (credentials come from the passfile or the source's pg_hba). The one
 * place a subscription's CONNECTION is built. Caller frees; NULL with *why
 * when src names no peer of local's. */
static char *s_conninfo(const step_local_t *local, const Godwit__ReplicationConn *src,
                        const char *name, char **why)
{
    const agent_peer_t *peer = step_peer(local, src, why);
    if (!peer)
        return NULL;
    char *info = NULL;
    char port[24];
    snprintf(port, sizeof port, "%" PRId64, peer->port);
    s_conninfo_add(&info, "host", peer->host);
    s_conninfo_add(&info, "port", port);
    s_conninfo_add(&info, "user", peer->user);
    s_conninfo_add(&info, "dbname", src->dbname);
    if (peer->passfile)
        s_conninfo_add(&info, "passfile", peer->passfile);
    if (peer->sslmode)
        s_conninfo_add(&info, "sslmode", peer->sslmode);
    char *app = xasprintf("godwit_%s", name);
    s_conninfo_add(&info, "application_name", app);
    free(app);
    return info;
}

/* $1 subscription, $2 publication. Subscriptions are per database. Only
 * columns anyone may read (subconninfo is not). */
static const char s_sub_lookup_sql[] =
    "SELECT s.subenabled, $2::pg_catalog.text = ANY (s.subpublications) AS has_publication,"
    " pg_catalog.array_to_string(s.subpublications, ', ') AS publications,"
    " " S_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " S_THIS_DB " AND s.subname = $1";

#define S_SUB_STAGE_LOOKUP 2 /* index of s_sub_lookup in s_sub_stages */

static void s_on_sub_enable(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: enabled", s->run.label);
    s_finish(s, NULL, NULL);
}

static void s_on_sub_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        s_next(s); /* create it */
        return;
    }
    if (!s_marked(r->res, s->sub_name)) {
        s_not_ours(s, "SUBSCRIPTION", s->sub_name);
        return;
    }
    if (!pgconn_col_bool(r->res, 0, "has_publication")) {
        const char *pubs = pgconn_col(r->res, 0, "publications");
        char *why = xasprintf("it exists but subscribes to publication(s) %s, not to \"%s\"; "
                              "drop it first",
                              pubs ? pubs : "(none)", s->publication);
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    if (pgconn_col_bool(r->res, 0, "subenabled")) {
        log_info("step on %s: exists and is enabled; nothing to do", s->run.label);
        s_finish(s, NULL, NULL);
        return;
    }
    char *name = s_ident(s, s->sub_name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER SUBSCRIPTION %s ENABLE", name);
    s_query(s, "enabling the subscription", sql, 0, NULL, s_on_sub_enable);
    free(sql);
    free(name);
}

static void s_sub_lookup(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[2] = { s->sub_name, s->publication };
    s_query(s, "looking up the subscription", s_sub_lookup_sql, 2, params, s_on_sub_lookup);
}

static void s_sub_create(steprun_t *run);

/* The source refused to create the slot because it exists: an earlier
 * attempt created it and died before its subscription committed. The server
 * embeds the source's error in its own (the code is the source's 42710 on
 * some versions, a generic one on others), so the text decides. */
static bool s_slot_exists_error(const pgconn_result_t *r)
{
    return r->error && strstr(r->error, "replication slot") && strstr(r->error, "already exists");
}

static void s_on_sub_marked(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: created with a new slot on the source, then marked", s->run.label);
    s_finish(s, NULL, NULL);
}

static void s_on_sub_create(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (r->ok && s->create_slot) {
        /* Not in the CREATE's transaction: one that creates its slot
         * cannot run in one. An agent that dies right here leaves it
         * unmarked, and the next attempt refuses it with the statement to
         * mark it (docs/protocol.md). The copy (BulkCopy) and the
         * cutover's reverse subscription never take this path. */
        char *name = s_ident(s, s->sub_name);
        if (!name)
            return;
        char *sql = s_comment_sql(s, "SUBSCRIPTION", name, s->sub_name);
        if (sql)
            s_query(s, "marking the subscription", sql, 0, NULL, s_on_sub_marked);
        free(sql);
        free(name);
        return;
    }
    if (r->ok) {
        log_info("step on %s: created with its marker, on the slot already on the source",
                 s->run.label);
        s_finish(s, NULL, NULL);
        return;
    }
    if (s_conn_lost(s)) {
        s_fail_query(s, r);
        return;
    }
    if (s->create_slot && s_slot_exists_error(r)) {
        /* Nothing has read from that slot yet (no subscription existed to
         * read it), so taking it over loses and doubles nothing. */
        log_info("step on %s: the slot already exists on the source (%s); creating the "
                 "subscription on it",
                 s->run.label, r->error);
        s->create_slot = false;
        s_sub_create(&s->run);
        return;
    }
    if (s_exists_error(r) && !s->looked_again) {
        /* The subscription itself was created since our lookup: look again. */
        log_info("step on %s: created concurrently; looking again", s->run.label);
        s->looked_again = true;
        s->run.stage = S_SUB_STAGE_LOOKUP;
        s_next(s);
        return;
    }
    s_fail_query(s, r);
}

static void s_sub_create(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    char *name = s_ident(s, s->sub_name);
    if (!name)
        return;
    char *pub = s_ident(s, s->publication);
    if (!pub) {
        free(name);
        return;
    }
    char *conninfo = pgconn_escape_literal(s->run.conn[0], s->conninfo);
    char *slot = pgconn_escape_literal(s->run.conn[0], s->sub_name);
    if (!conninfo || !slot) {
        free(conninfo);
        free(slot);
        free(pub);
        free(name);
        s_finish(s, NULL, "cannot quote the connection string or slot name for SQL (not valid "
                          "in the database's encoding, or the connection is gone)");
        return;
    }
    char *create = xasprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH "
                             "(slot_name = %s, copy_data = %s, create_slot = %s, enabled = true)",
                             name, conninfo, pub, slot, s->copy_data ? "true" : "false",
                             s->create_slot ? "true" : "false");
    if (s->create_slot) {
        /* Alone, outside any transaction block: it creates the slot
         * remotely. Its marker follows (s_on_sub_create). */
        s_query(s, "creating the subscription", create, 0, NULL, s_on_sub_create);
    } else {
        char *sql = s_with_marker(s, create, "SUBSCRIPTION", name, s->sub_name);
        if (sql)
            s_query_simple(s, "creating the subscription on the existing slot", sql,
                           s_on_sub_create);
        free(sql);
    }
    free(create);
    free(slot);
    free(conninfo);
    free(pub);
    free(name);
}

static const steprun_fn s_sub_stages[] = {
    s_names, s_connect, s_sub_lookup, s_sub_create, NULL,
};

/* ---- SetSubscriptionEnabled --------------------------------------------- */

static const char s_sub_enabled_sql[] =
    "SELECT s.subenabled, " S_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " S_THIS_DB " AND s.subname = $1";

static void s_on_sub_set(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: %s", s->run.label, s->want_enabled ? "enabled" : "disabled");
    s_finish(s, NULL, NULL);
}

static void s_on_sub_enabled_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        s_finish(s, NULL, "the subscription does not exist");
        return;
    }
    if (!s_marked(r->res, s->sub_name)) {
        s_not_ours(s, "SUBSCRIPTION", s->sub_name);
        return;
    }
    if (pgconn_col_bool(r->res, 0, "subenabled") == s->want_enabled) {
        s_finish(s, NULL, NULL);
        return;
    }
    char *name = s_ident(s, s->sub_name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER SUBSCRIPTION %s %s", name, s->want_enabled ? "ENABLE" : "DISABLE");
    s_query(s, s->want_enabled ? "enabling the subscription" : "disabling the subscription", sql, 0,
            NULL, s_on_sub_set);
    free(sql);
    free(name);
}

static void s_sub_enabled_lookup(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[1] = { s->sub_name };
    s_query(s, "looking up the subscription", s_sub_enabled_sql, 1, params,
            s_on_sub_enabled_lookup);
}

static const steprun_fn s_sub_enabled_stages[] = {
    s_names, s_connect, s_sub_enabled_lookup, NULL,
};

/* ---- SyncStatus --------------------------------------------------------- */

/* $1 subscription. The error counters are 15's pg_stat_subscription_stats. */
#define S_SYNC_SUB(stats_cols, stats_join)                                                     \
    "SELECT s.oid, s.subenabled, " stats_cols " FROM pg_catalog.pg_subscription s"            \
    stats_join " WHERE s.subdbid = " S_THIS_DB " AND s.subname = $1"

static const char s_sync_sub_sql[] =
    S_SYNC_SUB("st.apply_error_count, st.sync_error_count",
               " LEFT JOIN pg_catalog.pg_stat_subscription_stats st ON st.subid = s.oid");
static const char s_sync_sub_sql_14[] =
    S_SYNC_SUB("NULL AS apply_error_count, NULL AS sync_error_count", "");

/* $1 the subscription's oid. The copy's progress is 14's
 * pg_stat_progress_copy, read only for a table whose data is being copied. */
#define S_SYNC_RELS(progress_cols, progress_join)                                              \
    "SELECT n.nspname AS schema, c.relname AS name, sr.srsubstate AS state, " progress_cols   \
    " FROM pg_catalog.pg_subscription_rel sr"                                                  \
    " JOIN pg_catalog.pg_class c ON c.oid = sr.srrelid"                                        \
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" progress_join                  \
    " WHERE sr.srsubid = $1::pg_catalog.oid ORDER BY 1, 2"

static const char s_sync_rels_sql[] = S_SYNC_RELS(
    "pc.bytes_processed, pc.tuples_processed",
    " LEFT JOIN LATERAL (SELECT pg_catalog.sum(p.bytes_processed) AS bytes_processed,"
    "  pg_catalog.sum(p.tuples_processed) AS tuples_processed"
    "  FROM pg_catalog.pg_stat_progress_copy p"
    "  WHERE p.relid = sr.srrelid AND p.datid = " S_THIS_DB ") pc ON sr.srsubstate = 'd'");
static const char s_sync_rels_sql_13[] =
    S_SYNC_RELS("NULL AS bytes_processed, NULL AS tuples_processed", "");

/* pg_subscription_rel.srsubstate as the protocol names it. */
static const char *s_sync_state(const char *code)
{
    switch (code ? code[0] : '\0') {
    case 'i':
        return "init";
    case 'd':
        return "data";
    case 'f':
        return "finished"; /* 15: copy done, catching up */
    case 's':
        return "syncdone";
    case 'r':
        return "ready";
    default:
        return "unknown";
    }
}

static void s_on_sync_rels(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    Godwit__SyncStatusResult *res = s->result;
    int n = r->res ? PQntuples(r->res) : 0;
    bool all_ready = n > 0;
    res->tables = n > 0 ? xcalloc((size_t)n, sizeof *res->tables) : NULL;
    for (int i = 0; i < n; i++) {
        Godwit__TableSync *t = xmalloc(sizeof *t);
        godwit__table_sync__init(t);
        t->table = xmalloc(sizeof *t->table);
        godwit__table_ref__init(t->table);
        t->table->schema = xstrdup(pgconn_col(r->res, i, "schema"));
        t->table->name = xstrdup(pgconn_col(r->res, i, "name"));
        const char *state = pgconn_col(r->res, i, "state");
        t->state = xstrdup(s_sync_state(state));
        t->bytes_done = pgconn_col_u64(r->res, i, "bytes_processed");
        t->rows_done = pgconn_col_u64(r->res, i, "tuples_processed");
        if (!state || state[0] != 'r')
            all_ready = false;
        res->tables[res->n_tables++] = t;
    }
    res->all_ready = all_ready;
    s->result = NULL;
    log_debug("step on %s: %d table(s), all ready: %s", s->run.label, n, all_ready ? "yes" : "no");
    s_finish(s, &res->base, NULL);
}

static void s_sync_rels(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[1] = { s->sub_oid };
    s_query(s, "reading the tables' sync states",
            pgconn_server_version(s->run.conn[0]) >= 140000 ? s_sync_rels_sql : s_sync_rels_sql_13, 1,
            params, s_on_sync_rels);
}

static void s_on_sync_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    Godwit__SyncStatusResult *res = s->result;
    if (!r->res || PQntuples(r->res) != 1) {
        res->exists = false;
        s->result = NULL;
        s_finish(s, &res->base, NULL);
        return;
    }
    res->exists = true;
    res->enabled = pgconn_col_bool(r->res, 0, "subenabled");
    res->apply_error_count = pgconn_col_u64(r->res, 0, "apply_error_count");
    res->sync_error_count = pgconn_col_u64(r->res, 0, "sync_error_count");
    const char *oid = pgconn_col(r->res, 0, "oid");
    s->sub_oid = xstrdup(oid ? oid : "0");
    s_next(s);
}

static void s_sync_sub(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    const char *params[1] = { s->sub_name };
    s_query(s, "looking up the subscription",
            pgconn_server_version(s->run.conn[0]) >= 150000 ? s_sync_sub_sql : s_sync_sub_sql_14, 1,
            params, s_on_sync_sub);
}

static const steprun_fn s_sync_stages[] = {
    s_connect, s_sync_sub, s_sync_rels, NULL,
};

/* ---- DropObjects: is each of them godwit's? ----------------------------- */

/* Every object the command names is looked at before anything is dropped
 * or terminated: one that is not godwit's fails the whole command. One
 * that does not exist is fine (dropped already). */

static const char s_check_sub_sql[] =
    "SELECT " S_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " S_THIS_DB " AND s.subname = $1";

static const char s_check_pub_sql[] =
    "SELECT pg_catalog.obj_description(p.oid, 'pg_publication') AS marker"
    " FROM pg_catalog.pg_publication p WHERE p.pubname = $1";

/* The slot, and the kind of process holding it (pg_stat_activity shows
 * backend_type for every process). */
static const char s_slot_lookup_sql[] =
    "SELECT s.slot_type, s.plugin, s.datoid IS NOT DISTINCT FROM " S_THIS_DB " AS here,"
    " s.database, s.active, s.active_pid, a.backend_type"
    " FROM pg_catalog.pg_replication_slots s"
    " LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid"
    " WHERE s.slot_name = $1";

static void s_on_check_marker(pgconn_t *c, const pgconn_result_t *r, void *arg, const char *kind,
                              const char *name)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1 && !s_marked(r->res, name)) {
        s_not_ours(s, kind, name);
        return;
    }
    s_next(s);
}

static void s_on_check_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_marker(c, r, arg, "SUBSCRIPTION", ((s_step_t *)arg)->drop_sub);
}

static void s_on_check_pub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_marker(c, r, arg, "PUBLICATION", ((s_step_t *)arg)->drop_pub);
}

static void s_check_sub(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_sub) {
        s_next(s);
        return;
    }
    const char *params[1] = { s->drop_sub };
    s_query(s, "looking up the subscription", s_check_sub_sql, 1, params, s_on_check_sub);
}

static void s_check_pub(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_pub) {
        s_next(s);
        return;
    }
    const char *params[1] = { s->drop_pub };
    s_query(s, "looking up the publication", s_check_pub_sql, 1, params, s_on_check_pub);
}

/* Why the slot of a s_slot_lookup_sql row is not godwit's to drop, or NULL:
 * godwit's slots are logical, decode with pgoutput and belong to the
 * database they are for; one in use is held by a WAL sender (a
 * subscription's, the copy's), never by a session decoding through SQL
 * functions. Caller frees. */
static char *s_slot_refusal(const char *name, const PGresult *res)
{
    const char *type = pgconn_col(res, 0, "slot_type");
    const char *plugin = pgconn_col(res, 0, "plugin");
    const char *db = pgconn_col(res, 0, "database");
    const char *pid = pgconn_col(res, 0, "active_pid");
    const char *holder = pgconn_col(res, 0, "backend_type");
    const char *tail = "godwit drops only the logical pgoutput slots it creates; nothing was "
                       "dropped or terminated";
    if (!type || strcmp(type, "logical") != 0)
        return xasprintf("replication slot \"%s\" is a %s slot (a standby's or a WAL "
                         "archiver's): %s", name, type ? type : "(unknown)", tail);
    if (!plugin || strcmp(plugin, "pgoutput") != 0)
        return xasprintf("replication slot \"%s\" decodes with plugin %s, not pgoutput: %s",
                         name, plugin ? plugin : "(none)", tail);
    if (!pgconn_col_bool(res, 0, "here"))
        return xasprintf("replication slot \"%s\" belongs to database \"%s\", not to this "
                         "database: %s", name, db ? db : "", tail);
    if (pgconn_col_bool(res, 0, "active") && pid && (!holder || strcmp(holder, "walsender") != 0))
        return xasprintf("replication slot \"%s\" is held by process %s, a %s, not a WAL "
                         "sender: %s", name, pid, holder ? holder : "process of "
                         "unknown kind", tail);
    return NULL;
}

static void s_on_check_slot_named(const pgconn_result_t *r, s_step_t *s, const char *name)
{
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    char *why = r->res && PQntuples(r->res) == 1 ? s_slot_refusal(name, r->res) : NULL;
    if (why) {
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    s_next(s);
}

static void s_on_check_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_slot_named(r, arg, ((s_step_t *)arg)->drop_slot);
}

static void s_on_check_verify_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_slot_named(r, arg, ((s_step_t *)arg)->drop_verify_slot);
}

static void s_check_slot(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_slot) {
        s_next(s);
        return;
    }
    const char *params[1] = { s->drop_slot };
    s_query(s, "looking up the replication slot", s_slot_lookup_sql, 1, params,
            s_on_check_slot);
}

/* The verify slot (VerifyTable's) is held to the same rule, before anything
 * is dropped. */
static void s_check_verify_slot(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_verify_slot) {
        s_next(s);
        return;
    }
    const char *params[1] = { s->drop_verify_slot };
    s_query(s, "looking up the verify slot", s_slot_lookup_sql, 1, params,
            s_on_check_verify_slot);
}

/* ---- DropObjects: the subscription --------------------------------------- */

/* DROP SUBSCRIPTION failed because the server could not drop the slot on
 * the source: it could not connect (class 08 on 15, only the message
 * before), the source refused the drop (also 08006 on 15, e.g. for a slot
 * that is already gone there), or the statement timeout cut a connection
 * attempt that hung. Our own connection must still be up. */
static bool s_source_unreachable(const s_step_t *s, const pgconn_result_t *r)
{
    if (s_conn_lost(s))
        return false;
    return strncmp(r->sqlstate, "08", 2) == 0 || strcmp(r->sqlstate, "57014") == 0 ||
           (r->error && strstr(r->error, "could not connect to publisher"));
}

/* Runs "<head><name><tail>" with the quoted name of the subscription to drop. */
static void s_drop_sub_sql(s_step_t *s, const char *what, const char *head, const char *tail,
                           pgconn_result_cb cb)
{
    char *name = s_ident(s, s->drop_sub);
    if (!name)
        return;
    char *sql = xasprintf("%s%s%s", head, name, tail);
    s_query(s, what, sql, 0, NULL, cb);
    free(sql);
    free(name);
}

static void s_on_drop_sub_forced(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: subscription \"%s\" dropped without its slot on the source; a "
             "slot still there is left for the source's drop",
             s->run.label, s->drop_sub);
    s_next(s);
}

static void s_on_drop_sub_detached(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    s_drop_sub_sql(s, "dropping the subscription, detached from its slot",
                   "DROP SUBSCRIPTION IF EXISTS ", "", s_on_drop_sub_forced);
}

static void s_on_drop_sub_disabled(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    s_drop_sub_sql(s, "detaching the subscription from its slot", "ALTER SUBSCRIPTION ",
                   " SET (slot_name = NONE)", s_on_drop_sub_detached);
}

static void s_on_drop_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (r->ok) {
        log_info("step on %s: subscription \"%s\" dropped (if it existed), with its slot on "
                 "the source",
                 s->run.label, s->drop_sub);
        s_next(s);
        return;
    }
    if (!s_source_unreachable(s, r)) {
        s_fail_query(s, r);
        return;
    }
    log_warn("step on %s: cannot drop subscription \"%s\" with its slot (%s%s%s); dropping it "
             "without the slot",
             s->run.label, s->drop_sub, r->error ? r->error : "",
             r->sqlstate[0] ? ", SQLSTATE " : "", r->sqlstate);
    s_drop_sub_sql(s, "disabling the subscription", "ALTER SUBSCRIPTION ", " DISABLE",
                   s_on_drop_sub_disabled);
}

static void s_drop_sub(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_sub) {
        s_next(s);
        return;
    }
    /* Also drops its slot on the source, connecting there from the server. */
    s_drop_sub_sql(s, "dropping the subscription", "DROP SUBSCRIPTION IF EXISTS ", "",
                   s_on_drop_sub);
}

/* ---- DropObjects: the publication --------------------------------------- */

static void s_on_drop_pub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    log_info("step on %s: publication \"%s\" dropped (if it existed)", s->run.label, s->drop_pub);
    s_next(s);
}

static void s_drop_pub(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_pub) {
        s_next(s);
        return;
    }
    char *name = s_ident(s, s->drop_pub);
    if (!name)
        return;
    char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", name);
    s_query(s, "dropping the publication", sql, 0, NULL, s_on_drop_pub);
    free(sql);
    free(name);
}

/* ---- DropObjects: the slot ---------------------------------------------- */

/* A slot is dropped when nobody holds it. Its holder (a walsender) is
 * terminated and, from 14 on, waited for, and the drop follows at once: a
 * subscriber that is still alive reconnects within milliseconds and takes
 * the slot again, so the drop must not wait for a poll. This is retried
 * until S_SLOT_WAIT_MS after the first holder was met; after that the drop's
 * own error says who holds the slot. Each look at the slot checks again
 * that it is godwit's and that its holder is a WAL sender (s_slot_refusal):
 * only then is the holder terminated. */

static void s_slot_lookup(s_step_t *s);

static bool s_slot_waiting(s_step_t *s)
{
    uint64_t now = uv_now(s->run.loop);
    if (s->slot_deadline == 0)
        s->slot_deadline = now + S_SLOT_WAIT_MS;
    return now < s->slot_deadline;
}

static void s_on_drop_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok && !s_conn_lost(s) && strcmp(r->sqlstate, "55006") == 0 && s_slot_waiting(s)) {
        /* Taken again (or for the first time) since we looked. */
        s_slot_lookup(s);
        return;
    }
    if (!r->ok && !(strcmp(r->sqlstate, "42704") == 0 && !s_conn_lost(s))) {
        s_fail_query(s, r);
        return;
    }
    /* 42704: gone since we looked, which is what we wanted. */
    log_info("step on %s: replication slot \"%s\" dropped", s->run.label, s->drop_slot);
    s_next(s);
}

static void s_slot_drop(s_step_t *s)
{
    const char *params[1] = { s->drop_slot };
    s_query(s, "dropping the replication slot",
            "SELECT pg_catalog.pg_drop_replication_slot($1)", 1, params, s_on_drop_slot);
}

static void s_slot_poll(steprun_t *run)
{
    s_slot_lookup((s_step_t *)run);
}

static void s_on_slot_terminate(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (pgconn_server_version(s->run.conn[0]) >= 140000)
        s_slot_drop(s); /* the holder has exited (or the wait ran out) */
    else
        steprun_after(&s->run, S_SLOT_POLL_MS, s_slot_poll);
}

static void s_on_slot_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_step_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        log_info("step on %s: replication slot \"%s\" does not exist (any more); nothing to "
                 "drop",
                 s->run.label, s->drop_slot);
        s_next(s);
        return;
    }
    char *why = s_slot_refusal(s->drop_slot, r->res);
    if (why) {
        s_finish(s, NULL, why);
        free(why);
        return;
    }
    const char *pid = pgconn_col(r->res, 0, "active_pid");
    if (!pgconn_col_bool(r->res, 0, "active") || !pid || !s_slot_waiting(s)) {
        s_slot_drop(s);
        return;
    }
    log_info("step on %s: replication slot \"%s\" is in use by process %s; terminating it",
             s->run.label, s->drop_slot, pid);
    if (pgconn_server_version(s->run.conn[0]) >= 140000) {
        char wait_ms[32];
        snprintf(wait_ms, sizeof wait_ms, "%" PRIu64, s->slot_deadline - uv_now(s->run.loop));
        const char *params[2] = { pid, wait_ms };
        s_query(s, "terminating the slot's holder",
                "SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4,"
                " $2::pg_catalog.int8)",
                2, params, s_on_slot_terminate);
    } else {
        const char *params[1] = { pid };
        s_query(s, "terminating the slot's holder",
                "SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4)", 1, params,
                s_on_slot_terminate);
    }
}

static void s_slot_lookup(s_step_t *s)
{
    const char *params[1] = { s->drop_slot };
    s_query(s, "looking up the replication slot", s_slot_lookup_sql, 1, params,
            s_on_slot_lookup);
}

static void s_drop_slot(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_slot) {
        s_next(s);
        return;
    }
    s_slot_lookup(s);
}

/* The verify slot (VerifyTable's, left by an agent that died mid-verify):
 * the slot stage again, on that name. */
static void s_drop_verify_slot(steprun_t *run)
{
    s_step_t *s = (s_step_t *)run;
    if (!s->drop_verify_slot) {
        s_next(s);
        return;
    }
    free(s->drop_slot);
    s->drop_slot = s->drop_verify_slot;
    s->drop_verify_slot = NULL;
    s->slot_deadline = 0;
    s_slot_lookup(s);
}

static const steprun_fn s_drop_stages[] = {
    s_names,     s_connect,  s_check_sub,  s_check_pub, s_check_slot, s_check_verify_slot,
    s_drop_sub,  s_drop_pub, s_drop_slot,  s_drop_verify_slot, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static bool s_local_valid(const step_local_t *l)
{
    return l && l->host && l->host[0] && l->port >= 1 && l->port <= 65535 &&
           l->connect_timeout_ms > 0 && l->connect_timeout_ms <= INT32_MAX &&
           l->statement_timeout_ms > 0 && l->statement_timeout_ms <= INT32_MAX;
}

static bool s_set(const char *v)
{
    return v && v[0];
}

/* A new step with its connection to database; the first stage runs one loop
 * turn from now. label is taken. NULL for invalid arguments (label freed). */
static s_step_t *s_new(uv_loop_t *loop, const step_local_t *local, const char *database,
                       const steprun_fn *stages, char *label, step_done_cb done, void *arg)
{
    if (!loop || !s_local_valid(local) || !s_set(database) || !done) {
        free(label);
        return NULL;
    }
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path=",
                              local->statement_timeout_ms);
    pgconn_t *conn = step_local_conn(loop, "agent step", local, database, "godwit-agent", options);
    free(options);
    if (!conn) {
        free(label);
        return NULL;
    }
    s_step_t *s = xcalloc(1, sizeof *s);
    s->run.conn[0] = conn;
    s->run.stages = stages;
    s->connect_timeout_ms = local->connect_timeout_ms;
    s->statement_timeout_ms = local->statement_timeout_ms;
    steprun_start(&s->run, loop, label, done, arg, s_release, steprun_next);
    return s;
}

/* What a step is about, for messages: kind "name" in database "db". Caller
 * frees. */
static char *s_label(const char *kind, const char *name, const char *database)
{
    return xasprintf("%s \"%s\" in database \"%s\"", kind, name, database ? database : "");
}

/* A publication step (EnsurePublication, EnsureSlot) for name and tables,
 * or NULL if they are invalid. */
static s_step_t *s_pub_new(uv_loop_t *loop, const step_local_t *local, const char *database,
                           const steprun_fn *stages, const char *kind, const char *name,
                           Godwit__TableRef *const *tables, size_t n_tables, step_done_cb done,
                           void *arg)
{
    if (!s_set(name))
        return NULL;
    for (size_t i = 0; i < n_tables; i++)
        if (!tables[i] || !s_set(tables[i]->schema) || !s_set(tables[i]->name))
            return NULL;
    s_step_t *s = s_new(loop, local, database, stages, s_label(kind, name, database), done, arg);
    if (!s)
        return NULL;
    s->pub_name = xstrdup(name);
    if (n_tables > 0) {
        s->tables = xcalloc(n_tables, sizeof *s->tables);
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n_tables; i++) {
            godwit__table_ref__init(&s->tables[i]);
            s->tables[i].schema = xstrdup(tables[i]->schema);
            s->tables[i].name = xstrdup(tables[i]->name);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "schema", tables[i]->schema);
            cJSON_AddStringToObject(o, "name", tables[i]->name);
            cJSON_AddItemToArray(a, o);
        }
        s->n_tables = n_tables;
        char *text = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        s->tables_json = xstrdup(text); /* one allocator for everything s owns */
        cJSON_free(text);
    }
    return s;
}

step_t *publication_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                 const Godwit__EnsurePublication *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    s_step_t *s = s_pub_new(loop, local, req->database, s_pub_stages, "publication", req->name,
                            req->tables, req->n_tables, done, arg);
    return s ? &s->run.base : NULL;
}

step_t *slot_ensure_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__EnsureSlot *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    s_step_t *s = s_pub_new(loop, local, req->database, s_eslot_stages, "publication and slot",
                            req->name, req->tables, req->n_tables, done, arg);
    if (!s)
        return NULL;
    s->advance_to = req->advance_to;
    s->slot_result = xmalloc(sizeof *s->slot_result);
    godwit__ensure_slot_result__init(s->slot_result);
    return &s->run.base;
}

static step_t *s_subscription_start(uv_loop_t *loop, const step_local_t *local,
                                    const Godwit__EnsureSubscription *req, bool copy_data,
                                    step_done_cb done, void *arg)
{
    if (!req || !s_set(req->name) || !s_set(req->publication) || !req->source)
        return NULL;
    char *why = NULL;
    char *conninfo = s_conninfo(local, req->source, req->name, &why);
    if (!conninfo) {
        log_warn("subscription \"%s\": %s", req->name, why);
        free(why);
        return NULL;
    }
    s_step_t *s = s_new(loop, local, req->database, s_sub_stages,
                        s_label("subscription", req->name, req->database), done, arg);
    if (!s) {
        free(conninfo);
        return NULL;
    }
    s->sub_name = xstrdup(req->name);
    s->publication = xstrdup(req->publication);
    s->conninfo = conninfo;
    s->create_slot = copy_data;
    s->copy_data = copy_data;
    return &s->run.base;
}

step_t *subscription_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg)
{
    return s_subscription_start(loop, local, req, true, done, arg);
}

step_t *subscription_attach_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg)
{
    return s_subscription_start(loop, local, req, false, done, arg);
}

step_t *sync_status_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__SyncStatus *req, step_done_cb done, void *arg)
{
    if (!req || !s_set(req->subscription))
        return NULL;
    s_step_t *s = s_new(loop, local, req->database, s_sync_stages,
                        s_label("subscription", req->subscription, req->database), done, arg);
    if (!s)
        return NULL;
    s->sub_name = xstrdup(req->subscription);
    s->result = xmalloc(sizeof *s->result);
    godwit__sync_status_result__init(s->result);
    return &s->run.base;
}

step_t *subscription_set_enabled_start(uv_loop_t *loop, const step_local_t *local,
                                       const Godwit__SetSubscriptionEnabled *req,
                                       step_done_cb done, void *arg)
{
    if (!req || !s_set(req->name))
        return NULL;
    s_step_t *s = s_new(loop, local, req->database, s_sub_enabled_stages,
                        s_label("subscription", req->name, req->database), done, arg);
    if (!s)
        return NULL;
    s->sub_name = xstrdup(req->name);
    s->want_enabled = req->enabled;
    return &s->run.base;
}

step_t *objects_drop_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    char *label = xasprintf("drop in database \"%s\"", req->database ? req->database : "");
    s_step_t *s = s_new(loop, local, req->database, s_drop_stages, label, done, arg);
    if (!s)
        return NULL;
    s->drop_sub = s_set(req->subscription) ? xstrdup(req->subscription) : NULL;
    s->drop_pub = s_set(req->publication) ? xstrdup(req->publication) : NULL;
    s->drop_slot = s_set(req->slot) ? xstrdup(req->slot) : NULL;
    s->drop_verify_slot = s_set(req->verify_slot) ? xstrdup(req->verify_slot) : NULL;
    return &s->run.base;
}
