/*
 * publication: the EnsurePublication step (publication.h), and the stages
 * EnsureSlot runs first (slot.c). The rules every replication step follows
 * are in replobj.c.
 */
#include "publication.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* What our publications publish: every change, as the partition root. */
#define S_PUB_OPTIONS \
    "publish = 'insert, update, delete, truncate', publish_via_partition_root = true"

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

static const char s_lookup_sql[] = S_PUB_LOOKUP(
    "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr WHERE pr.prpubid = p.oid"
    "  AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL))"
    " OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace pn"
    "  WHERE pn.pnpubid = p.oid)");
static const char s_lookup_sql_14[] = S_PUB_LOOKUP("false");

#define S_STAGE_LOOKUP 2 /* index of publication_lookup in PUBLICATION_STAGES */

static void s_on_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    publication_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    s->exists = r->res && PQntuples(r->res) == 1;
    if (s->exists) {
        if (!replobj_marked(r->res, s->name)) {
            replobj_not_ours(&s->obj, "PUBLICATION", s->name);
            return;
        }
        s->all_tables = pgconn_col_bool(r->res, 0, "puballtables");
        s->same_tables = pgconn_col_bool(r->res, 0, "same_tables");
        s->options_ok = pgconn_col_bool(r->res, 0, "options_ok");
    }
    replobj_next(&s->obj);
}

void publication_lookup(steprun_t *run)
{
    publication_t *s = (publication_t *)run;
    const char *params[2] = { s->name, s->tables_json };
    replobj_query(&s->obj, "looking up the publication",
                  pgconn_server_version(s->obj.run.conn[0]) >= 150000 ? s_lookup_sql
                                                                       : s_lookup_sql_14,
                  2, params, s_on_lookup);
}

/* "s1"."t1", "s2"."t2" for the requested tables (caller frees), or NULL after
 * ending the step with an error. */
static char *s_table_list(publication_t *s)
{
    char *list = NULL;
    for (size_t i = 0; i < s->n_tables; i++) {
        char *schema = replobj_ident(&s->obj, s->tables[i].schema);
        if (!schema) {
            free(list);
            return NULL;
        }
        char *name = replobj_ident(&s->obj, s->tables[i].name);
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

static void s_on_create(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    publication_t *s = arg;
    if (replobj_look_again(&s->obj, r)) {
        /* Created by someone else since our lookup: look again, once. */
        log_info("step on %s: created concurrently; looking again", s->obj.run.label);
        s->obj.run.stage = S_STAGE_LOOKUP;
        replobj_next(&s->obj);
        return;
    }
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: created", s->obj.run.label);
    replobj_next(&s->obj); /* created with our options; EnsureSlot's stages follow */
}

static void s_on_set_tables(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    publication_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: table list replaced with the %zu requested table(s)", s->obj.run.label,
             s->n_tables);
    replobj_next(&s->obj);
}

/* Creates the publication, or makes an existing one name the requested
 * tables. */
void publication_tables(steprun_t *run)
{
    publication_t *s = (publication_t *)run;
    bool want_all = s->n_tables == 0;
    if (s->exists && s->all_tables == want_all && (want_all || s->same_tables)) {
        if (s->options_ok)
            log_info("step on %s: exists as requested; nothing to do", s->obj.run.label);
        replobj_next(&s->obj);
        return;
    }
    if (s->exists && s->all_tables != want_all) {
        /* PostgreSQL cannot turn one kind into the other in place, and
         * dropping a publication a subscription may be reading is not a
         * step's decision. */
        replobj_finish(
            &s->obj, NULL,
            want_all ? "it exists for a list of tables but FOR ALL TABLES was requested; "
                       "PostgreSQL cannot change that in place: drop it first"
                     : "it exists FOR ALL TABLES but a list of tables was requested; "
                       "PostgreSQL cannot change that in place: drop it first");
        return;
    }
    char *name = replobj_ident(&s->obj, s->name);
    if (!name)
        return;
    char *list = want_all ? NULL : s_table_list(s);
    if (!want_all && !list) {
        free(name);
        return;
    }
    if (!s->exists) {
        char *create = want_all
                           ? xasprintf("CREATE PUBLICATION %s FOR ALL TABLES WITH (" S_PUB_OPTIONS
                                       ")", name)
                           : xasprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (" S_PUB_OPTIONS
                                       ")", name, list);
        char *sql = replobj_with_marker(&s->obj, create, "PUBLICATION", name, s->name);
        if (sql)
            replobj_query_simple(&s->obj, "creating the publication", sql, s_on_create);
        free(sql);
        free(create);
    } else {
        char *sql = xasprintf("ALTER PUBLICATION %s SET TABLE %s", name, list);
        replobj_query(&s->obj, "setting the publication's tables", sql, 0, NULL, s_on_set_tables);
        free(sql);
    }
    free(list);
    free(name);
}

static void s_on_set_options(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    publication_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: options set (" S_PUB_OPTIONS ")", s->obj.run.label);
    replobj_next(&s->obj);
}

/* An existing publication publishes every change as the partition root. */
void publication_options(steprun_t *run)
{
    publication_t *s = (publication_t *)run;
    if (!s->exists || s->options_ok) {
        replobj_next(&s->obj);
        return;
    }
    char *name = replobj_ident(&s->obj, s->name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER PUBLICATION %s SET (" S_PUB_OPTIONS ")", name);
    replobj_query(&s->obj, "setting the publication's options", sql, 0, NULL, s_on_set_options);
    free(sql);
    free(name);
}

static const steprun_fn s_stages[] = {
    PUBLICATION_STAGES, NULL,
};


/* ---- lifetime ----------------------------------------------------------- */

void publication_clear(publication_t *p)
{
    for (size_t i = 0; i < p->n_tables; i++) {
        free(p->tables[i].schema);
        free(p->tables[i].name);
    }
    free(p->tables);
    free(p->name);
    free(p->tables_json);
}

static void s_release(steprun_t *run)
{
    publication_t *s = (publication_t *)run;
    publication_clear(s);
    free(s);
}

publication_t *publication_new(size_t size, uv_loop_t *loop, const step_local_t *local,
                               const char *database, const steprun_fn *stages, const char *kind,
                               const char *name, Godwit__TableRef *const *tables,
                               size_t n_tables, steprun_fn release, step_done_cb done,
                               void *arg)
{
    if (!replobj_given(name))
        return NULL;
    for (size_t i = 0; i < n_tables; i++)
        if (!tables[i] || !replobj_given(tables[i]->schema) || !replobj_given(tables[i]->name))
            return NULL;
    publication_t *s = (publication_t *)replobj_new(size, loop, local, database, stages,
                                                    replobj_label(kind, name, database),
                                                    release, done, arg);
    if (!s)
        return NULL;
    s->name = xstrdup(name);
    s->obj.names[0] = (replobj_name_t){ "publication", s->name };
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
    publication_t *s = publication_new(sizeof *s, loop, local, req->database, s_stages,
                                       "publication", req->name, req->tables, req->n_tables,
                                       s_release, done, arg);
    return s ? &s->obj.run.base : NULL;
}
