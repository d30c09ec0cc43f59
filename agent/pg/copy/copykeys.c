/*
 * copykeys: stages 6b and 7b of the BulkCopy step (bulkcopy.c), primary
 * keys built after the copy.
 *
 * Loading a big table into its primary key index costs a B-tree insert per
 * row; building the index afterwards sorts once, as pg_restore does. So
 * before the copy the primary key of each big leaf table is dropped on the
 * target when nothing depends on it (no foreign key points at the table,
 * the replica identity is the default one, which follows the primary key,
 * and it is not a partition's, which belongs to its parent's index), and
 * after the copy every copied table that has a primary key on the source
 * but none on the target gets it back with the source's definition
 * (pg_get_constraintdef), before the subscription, which needs it, exists.
 * A table whose key was dropped gets it as soon as its last chunk is in, by
 * the worker that copied that chunk, while the others copy on.
 * That last rule keeps no state: a copy that died after the drops puts the
 * keys back when it is run again.
 *
 * Owns: the drop and build statements (freed with the step, bulkcopy.c).
 */
#include "copykeys.h"
#include "copyworker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define CK_KEY_DEFER_PAGES 1024         /* 8 MiB: tables whose key is built after the copy */
#define CK_KEY_BUILD_MS (4 * 3600000)   /* building one primary key */

/* Which tables s_tables_json lists. */
typedef enum { S_ALL, S_BIG, S_KEYED } s_which_t;

/* [{"schema":..,"name":..}] of the tables: all, only the big ones, or only
 * those with a primary key on the source. Caller frees. */
static char *s_tables_json(const copystep_t *b, s_which_t which)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < b->n_tables; i++) {
        if (which == S_BIG &&
            (b->tables[i].pages < CK_KEY_DEFER_PAGES || b->tables[i].done_before))
            continue;
        if (which == S_KEYED && !b->tables[i].key_conname)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", b->tables[i].schema);
        cJSON_AddStringToObject(o, "name", b->tables[i].name);
        cJSON_AddItemToArray(a, o);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}

/* The table named so, or NULL. */
static copystep_table_t *s_table_named(copystep_t *b, const char *schema, const char *name)
{
    for (size_t i = 0; i < b->n_tables; i++)
        if (strcmp(b->tables[i].schema, schema) == 0 && strcmp(b->tables[i].name, name) == 0)
            return &b->tables[i];
    return NULL;
}

#define CK_REQ_TABLES                                                                           \
    " FROM pg_catalog.json_to_recordset($1::pg_catalog.json)"                                  \
    "  AS r(schema pg_catalog.text, name pg_catalog.text)"                                     \
    " JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema"                                  \
    " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.name"

/* Target: the primary keys that may be dropped for the copy. */
static const char s_keys_droppable_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name, con.conname" CK_REQ_TABLES
    " JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'"
    " WHERE NOT c.relispartition AND c.relreplident = 'd'"
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f"
    "  WHERE f.contype = 'f' AND f.confrelid = c.oid)"
    " ORDER BY 1, 2";

/* Source: the primary keys of the copied tables. */
static const char s_keys_source_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name, con.conname,"
    " pg_catalog.pg_get_constraintdef(con.oid) AS def" CK_REQ_TABLES
    " JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'"
    " ORDER BY 1, 2";

/* Target: which of them have no primary key. */
static const char s_keys_missing_sql[] =
    "SELECT n.nspname AS schema, c.relname AS name" CK_REQ_TABLES
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con"
    "  WHERE con.conrelid = c.oid AND con.contype = 'p')";

/* "ALTER TABLE ONLY "s"."n" <tail>" quoted for c; NULL after failing. */
static char *s_alter_sql(copystep_t *b, pgconn_t *c, const char *schema, const char *name,
                         const char *what, const char *conname, const char *def)
{
    copystep_table_t t = { .schema = (char *)schema, .name = (char *)name };
    char *q = copystep_qualified(b, c, &t);
    if (!q)
        return NULL;
    char *con = copystep_ident(b, c, conname);
    if (!con) {
        free(q);
        return NULL;
    }
    char *sql = xasprintf("ALTER TABLE ONLY %s %s CONSTRAINT %s%s%s", q, what, con,
                          def ? " " : "", def ? def : "");
    free(con);
    free(q);
    return sql;
}

static void s_drop_key_next(copystep_t *b);

static void s_on_key_dropped(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    s_drop_key_next(b);
}

static void s_drop_key_next(copystep_t *b)
{
    if (b->next_drop_sql >= b->n_drop_sql) {
        steprun_next(&b->run);
        return;
    }
    copystep_query(b, COPYSTEP_CTL, "dropping a primary key until the copy is done",
                   b->drop_sql[b->next_drop_sql++], 0, NULL, s_on_key_dropped);
}

static void s_on_keys_droppable(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->drop_sql = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->drop_sql);
    for (int i = 0; i < n; i++) {
        char *sql = s_alter_sql(b, b->run.conn[COPYSTEP_CTL], pgconn_col_str(r->res, i, "schema"),
                                pgconn_col_str(r->res, i, "name"), "DROP",
                                pgconn_col_str(r->res, i, "conname"), NULL);
        if (!sql)
            return;
        log_info("step on %s: primary key of \"%s\".\"%s\" built after the copy", b->run.label,
                 pgconn_col_str(r->res, i, "schema"), pgconn_col_str(r->res, i, "name"));
        b->drop_sql[b->n_drop_sql++] = sql;
        copystep_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                     pgconn_col_str(r->res, i, "name"));
        if (t)
            t->key_dropped = true;
    }
    s_drop_key_next(b);
}

void copykeys_drop(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    char *json = s_tables_json(b, S_BIG);
    const char *params[1] = { json };
    copystep_query(b, COPYSTEP_CTL, "looking up primary keys to build after the copy",
                   s_keys_droppable_sql, 1, params, s_on_keys_droppable);
    free(json);
}

static void s_on_keys_early(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        copystep_fail_query(b, "reading the primary keys on the source", r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    for (int i = 0; i < n; i++) {
        copystep_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                     pgconn_col_str(r->res, i, "name"));
        if (t && !t->key_conname) {
            t->key_conname = xstrdup(pgconn_col_str(r->res, i, "conname"));
            t->key_def = xstrdup(pgconn_col_str(r->res, i, "def"));
        }
    }
    steprun_next(&b->run);
}

/* The source's primary keys of the copied tables: built again for the big
 * tables as soon as each is in, and for any that lacks its key at the end. */
void copykeys_early(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    char *json = s_tables_json(b, S_ALL);
    const char *params[1] = { json };
    int rc = pgconn_query(b->workers[0].src, s_keys_source_sql, 1, params,
                          (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS,
                          s_on_keys_early, b);
    free(json);
    if (rc != 0)
        steprun_failf(&b->run, "cannot read the primary keys on the source: %s", strerror(-rc));
}

static void s_on_early_key_built(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    if (!r->ok) {
        copystep_fail_query(b, "building a primary key after its table's copy", r);
        return;
    }
    b->keys_running--;
    copyworker_idle(w);
}

/* A worker between chunks: if a table whose key was dropped is in, it
 * builds that key (true: started, or the step ended); false: nothing to
 * build. */
bool copykeys_build_ready(copystep_worker_t *w)
{
    copystep_t *b = w->b;
    for (size_t i = 0; i < b->n_tables; i++) {
        copystep_table_t *t = &b->tables[i];
        if (!t->key_dropped || t->key_started || !t->key_conname ||
            t->chunks_done < t->chunks)
            continue;
        t->key_started = true;
        char *sql = s_alter_sql(b, w->dst, t->schema, t->name, "ADD", t->key_conname,
                                t->key_def);
        if (!sql)
            return true;
        log_info("step on %s: building the primary key of \"%s\".\"%s\"", b->run.label, t->schema,
                 t->name);
        b->keys_running++;
        int rc = pgconn_query(w->dst, sql, 0, NULL, CK_KEY_BUILD_MS, s_on_early_key_built, w);
        free(sql);
        if (rc != 0)
            steprun_failf(&b->run, "worker %u: cannot build a primary key: %s", w->idx,
                          strerror(-rc));
        return true;
    }
    return false;
}

static void s_key_build_next(copystep_worker_t *w);

static void s_on_key_built(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_worker_t *w = arg;
    copystep_t *b = w->b;
    if (!r->ok) {
        copystep_fail_query(b, "building a primary key after the copy", r);
        return;
    }
    if (++b->keys_done == b->n_key_sql) {
        log_info("step on %s: %zu primary key(s) built", b->run.label, b->n_key_sql);
        steprun_next(&b->run);
        return;
    }
    s_key_build_next(w);
}

/* The next primary key to build, on this worker's target connection. */
static void s_key_build_next(copystep_worker_t *w)
{
    copystep_t *b = w->b;
    if (b->next_key_sql >= b->n_key_sql)
        return;
    const char *sql = b->key_sql[b->next_key_sql++];
    int rc = pgconn_query(w->dst, sql, 0, NULL, CK_KEY_BUILD_MS, s_on_key_built, w);
    if (rc != 0)
        steprun_failf(&b->run, "worker %u: cannot build a primary key: %s", w->idx, strerror(-rc));
}

/* The target's tables that lack their primary key get the source's. */
static void s_on_keys_missing(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    copystep_t *b = arg;
    if (!r->ok) {
        steprun_fail_query(&b->run, NULL, r);
        return;
    }
    int n = r->res ? PQntuples(r->res) : 0;
    b->key_sql = xcalloc(n > 0 ? (size_t)n : 1, sizeof *b->key_sql);
    for (int i = 0; i < n; i++) {
        const copystep_table_t *t = s_table_named(b, pgconn_col_str(r->res, i, "schema"),
                                           pgconn_col_str(r->res, i, "name"));
        if (!t || !t->key_conname)
            continue;
        char *sql = s_alter_sql(b, b->workers[0].dst, t->schema, t->name, "ADD", t->key_conname,
                                t->key_def);
        if (!sql)
            return;
        b->key_sql[b->n_key_sql++] = sql;
    }
    if (b->n_key_sql == 0) {
        steprun_next(&b->run);
        return;
    }
    log_info("step on %s: building %zu primary key(s) missing on the target", b->run.label,
             b->n_key_sql);
    for (unsigned i = 0; i < b->n_workers && !b->run.disposed; i++)
        s_key_build_next(&b->workers[i]);
}

/* Every copied table with a primary key on the source (read in
 * copykeys_early) that has none on the target: one whose key a copy that
 * died had dropped. */
void copykeys_restore(steprun_t *run)
{
    copystep_t *b = (copystep_t *)run;
    char *json = s_tables_json(b, S_KEYED);
    const char *params[1] = { json };
    copystep_query(b, COPYSTEP_CTL, "looking up the primary keys missing on the target",
                   s_keys_missing_sql, 1, params, s_on_keys_missing);
    free(json);
}

