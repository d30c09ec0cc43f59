/*
 * verify: see verify.h. Sends one VerifyTable at a time to the target
 * agent and adds each table's result to the report.
 */
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mycheck.h"
#include "planwire.h"
#include "units.h"
#include "xalloc.h"

#define VERIFY_TABLE_TIMEOUT_MS (2 * 3600 * 1000)
#define VERIFY_ATTEMPTS 3

struct verify {
    const agentlink_t *link;
    char *migration, *objname;
    char *verify_slot;          /* objname + "_verify": the verify slot on the source */
    uint64_t batch_rows;        /* rows compared at one position (plan option; 0: the agent's) */
    uint64_t slot_wait_ms;      /* bound on creating the verify slot (plan option; 0: the agent's) */
    char *target_agent, *target_database;
    /* A physical standby (method physical): the tables come from the schema
     * check (VerifySchemaResult.compared); the verify slot decodes through
     * our publication on the source, of those tables, made after the schema
     * check (EnsurePublication to the source agent; strings owned). */
    bool standby;
    bool pub_done;
    char *source_agent, *source_database;
    /* the replication connection, as the plan gives it: a peer of the
     * target agent, and the source database (strings owned) */
    Godwit__ReplicationConn source;
    char **schemas, **names;
    size_t n, next;
    planwire_tables_t plan_tables; /* the plan's (none: all), for the schema check; owned */
    char **app_roles;           /* the plan's application roles, for the roles check */
    size_t n_app_roles;
    bool schema_done;           /* the schema check came back */
    bool *skip;                 /* per table: its columns differ, rows not compared */
    unsigned attempts;
    uint64_t retry_at_mono;     /* a failed table is sent again from verify_tick */
    bool busy, cancelled;
    verify_done_cb done;
    void *arg;
    cJSON *report;
    mycheck_t *my;              /* engine mariadb: the run is mycheck's (mycheck.h) */
};

static void v_free(verify_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->schemas[i]);
        free(v->names[i]);
    }
    free(v->schemas);
    free(v->names);
    planwire_tables_free(&v->plan_tables);
    for (size_t i = 0; i < v->n_app_roles; i++)
        free(v->app_roles[i]);
    free(v->app_roles);
    free(v->skip);
    free(v->migration);
    free(v->objname);
    free(v->verify_slot);
    free(v->target_agent);
    free(v->target_database);
    free(v->source_agent);
    free(v->source_database);
    planwire_conn_free(&v->source);
    cJSON_Delete(v->report);
    free(v);
}

static void v_send(verify_t *v);
/* v_on_result's "any payload" (EnsurePublication answers with none). */
static const int s_payload_any = -1;
static void v_on_result(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg);

/* Ends the run with state: frees v, then hands the report to done. */
static void v_end(verify_t *v, const char *state, const char *error)
{
    cJSON_ReplaceItemInObject(v->report, "state", cJSON_CreateString(state));
    cJSON_ReplaceItemInObject(v->report, "finished_at_ms", cJSON_CreateNumber((double)agentlink_now_ms(v->link)));
    if (error)
        cJSON_ReplaceItemInObject(v->report, "error", cJSON_CreateString(error));
    log_info_about(log_about_migration(v->migration), "migration %s: verify %s%s%s", v->migration,
                   state, error ? ": " : "", error ? error : "");
    verify_done_cb done = v->done;
    void *arg = v->arg;
    cJSON *report = v->report;
    v->report = NULL;
    v_free(v);
    done(report, arg);
}

static char *v_lsn_text(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
    return buf;
}

/* {column: value} of a key or a multiset's row. */
static cJSON *v_key_json(char *const *names, size_t n_names, char *const *values, size_t n)
{
    cJSON *key = cJSON_CreateObject();
    for (size_t k = 0; k < n && k < n_names; k++)
        cJSON_AddStringToObject(key, names[k], values[k]);
    return key;
}

static cJSON *v_table_json(const Godwit__VerifyTableResult *t)
{
    cJSON *o = cJSON_CreateObject();
    char name[300], buf[32];
    snprintf(name, sizeof name, "%s.%s", t->table ? t->table->schema : "?",
             t->table ? t->table->name : "?");
    cJSON_AddStringToObject(o, "table", name);
    cJSON_AddStringToObject(o, "outcome", t->outcome);
    cJSON_AddStringToObject(o, "key_kind", t->key_kind);
    cJSON *keys = cJSON_AddArrayToObject(o, "key_columns");
    for (size_t i = 0; i < t->n_key_columns; i++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(t->key_columns[i]));
    cJSON_AddNumberToObject(o, "source_rows", (double)t->source_rows);
    cJSON_AddNumberToObject(o, "target_rows", (double)t->target_rows);
    cJSON_AddNumberToObject(o, "chunks", t->chunks);
    cJSON_AddNumberToObject(o, "chunks_rechecked", t->chunks_rechecked);
    cJSON_AddNumberToObject(o, "batches", t->batches);
    cJSON_AddNumberToObject(o, "diff_count", (double)t->diff_count);
    /* A key names its key columns; a multiset's row its columns. */
    char *const *names = t->n_key_columns ? t->key_columns : t->row_columns;
    size_t n_names = t->n_key_columns ? t->n_key_columns : t->n_row_columns;
    cJSON *diffs = cJSON_AddArrayToObject(o, "diffs");
    for (size_t i = 0; i < t->n_diffs; i++) {
        const Godwit__RowDiff *d = t->diffs[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "key", v_key_json(names, n_names, d->key, d->n_key));
        cJSON_AddStringToObject(j, "kind", d->kind);
        cJSON_AddItemToArray(diffs, j);
    }
    cJSON *w = cJSON_AddObjectToObject(o, "window");
    cJSON_AddStringToObject(w, "from_lsn", v_lsn_text(t->window_from, buf, sizeof buf));
    cJSON_AddStringToObject(w, "to_lsn", v_lsn_text(t->window_to, buf, sizeof buf));
    cJSON_AddNumberToObject(w, "bytes", (double)(t->window_to - t->window_from));
    cJSON_AddNumberToObject(w, "changes", (double)t->window_changes);
    cJSON_AddNumberToObject(w, "slot_ms", (double)t->window_ms);
    /* The final check's input: the keys that changed last. */
    cJSON *rec = cJSON_AddObjectToObject(o, "recent");
    cJSON_AddStringToObject(rec, "schema", t->table ? t->table->schema : "");
    cJSON_AddStringToObject(rec, "name", t->table ? t->table->name : "");
    cJSON *rc = cJSON_AddArrayToObject(rec, "key_columns");
    for (size_t i = 0; i < t->n_key_columns; i++)
        cJSON_AddItemToArray(rc, cJSON_CreateString(t->key_columns[i]));
    cJSON *rk = cJSON_AddArrayToObject(rec, "keys");
    for (size_t i = 0; i < t->n_recent; i++) {
        cJSON *one = cJSON_CreateArray();
        for (size_t k = 0; k < t->recent[i]->n_key; k++)
            cJSON_AddItemToArray(one, cJSON_CreateString(t->recent[i]->key[k]));
        cJSON_AddItemToArray(rk, one);
    }
    cJSON_AddNumberToObject(rec, "count", (double)t->recent_count);
    cJSON_AddBoolToObject(rec, "complete", t->n_key_columns && t->n_recent == t->recent_count);
    cJSON_AddNumberToObject(o, "seconds", t->seconds);
    if (t->detail && t->detail[0])
        cJSON_AddStringToObject(o, "detail", t->detail);
    else
        cJSON_AddNullToObject(o, "detail");
    return o;
}

/* The run's state from its tables and schema findings: different beats
 * equal; a table that was skipped (its columns differ) is a schema
 * finding already; one not compared (a standby's table without a replica
 * identity) is neither. */
static const char *v_overall(const verify_t *v, const cJSON *tables)
{
    const cJSON *findings = cJSON_GetObjectItem(cJSON_GetObjectItem(v->report, "schema"), "findings");
    if (cJSON_GetArraySize(findings) > 0)
        return "different";
    const cJSON *t;
    cJSON_ArrayForEach(t, tables) {
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(t, "outcome"));
        if (!o || (strcmp(o, "equal") != 0 && strcmp(o, "not_compared") != 0))
            return "different";
    }
    return "equal";
}

/* Whether t is one of list's n tables. */
static bool v_listed(const Godwit__TableRef *t, Godwit__TableRef *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && list[i]->schema && list[i]->name && strcmp(list[i]->schema, t->schema) == 0 &&
            strcmp(list[i]->name, t->name) == 0)
            return true;
    return false;
}

/* A standby's tables: those the schema check compared (the source's, no
 * partitions, no unlogged tables), replacing the (empty) list; those
 * without a replica identity go into the report as not compared. A
 * publication that publishes updates makes PostgreSQL refuse the
 * application's updates and deletes of a table without one, so ours
 * leaves them out, and without their changes no difference in them
 * could be explained. */
static void v_tables_set(verify_t *v, const Godwit__VerifySchemaResult *s)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->schemas[i]);
        free(v->names[i]);
    }
    free(v->schemas);
    free(v->names);
    free(v->skip);
    v->n = 0;
    v->schemas = xcalloc(s->n_compared ? s->n_compared : 1, sizeof *v->schemas);
    v->names = xcalloc(s->n_compared ? s->n_compared : 1, sizeof *v->names);
    v->skip = xcalloc(s->n_compared ? s->n_compared : 1, sizeof *v->skip);
    for (size_t i = 0; i < s->n_compared; i++) {
        const Godwit__TableRef *t = s->compared[i];
        if (!t || !t->schema || !t->name)
            continue;
        if (v_listed(t, s->no_identity, s->n_no_identity)) {
            cJSON *o = cJSON_CreateObject();
            char name[300];
            snprintf(name, sizeof name, "%s.%s", t->schema, t->name);
            cJSON_AddStringToObject(o, "table", name);
            cJSON_AddStringToObject(o, "outcome", "not_compared");
            cJSON_AddStringToObject(o, "detail", "no replica identity on the source (no primary "
                                    "key, REPLICA IDENTITY USING INDEX or FULL): its changes "
                                    "cannot be followed without making the source refuse its "
                                    "updates and deletes; the standby replays it byte for byte");
            cJSON_AddItemToArray(cJSON_GetObjectItem(v->report, "tables"), o);
            continue;
        }
        v->schemas[v->n] = xstrdup(t->schema);
        v->names[v->n] = xstrdup(t->name);
        v->n++;
    }
    cJSON_ReplaceItemInObject(v->report, "tables_total", cJSON_CreateNumber((double)v->n));
}

/* The schema findings into the report; marks the tables whose rows cannot
 * be compared (their columns differ). */
static void v_schema_json(verify_t *v, const Godwit__VerifySchemaResult *s)
{
    if (v->standby)
        v_tables_set(v, s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "tables", s->tables);
    cJSON *list = cJSON_AddArrayToObject(o, "findings");
    for (size_t i = 0; i < s->n_findings; i++) {
        const Godwit__SchemaFinding *f = s->findings[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "object", f->object);
        cJSON_AddStringToObject(j, "problem", f->problem);
        cJSON_AddStringToObject(j, "statement", f->statement);
        cJSON_AddItemToArray(list, j);
        if (!f->rows_affected || !f->table)
            continue;
        for (size_t t = 0; t < v->n; t++)
            if (strcmp(v->schemas[t], f->table->schema) == 0 &&
                strcmp(v->names[t], f->table->name) == 0)
                v->skip[t] = true;
    }
    cJSON_ReplaceItemInObject(v->report, "schema", o);
    log_info_about(log_about_migration(v->migration),
                   "migration %s: verify: schema of %u tables compared, %zu findings", v->migration,
                   s->tables, s->n_findings);
}

/* Tables from next on whose columns differ: reported, not compared. */
static void v_skip_affected(verify_t *v, cJSON *tables)
{
    while (v->next < v->n && v->skip[v->next]) {
        cJSON *o = cJSON_CreateObject();
        char name[300];
        snprintf(name, sizeof name, "%s.%s", v->schemas[v->next], v->names[v->next]);
        cJSON_AddStringToObject(o, "table", name);
        cJSON_AddStringToObject(o, "outcome", "skipped");
        cJSON_AddStringToObject(o, "detail", "its columns differ between source and target (see "
                                             "the schema findings): rows not compared");
        cJSON_AddItemToArray(tables, o);
        v->next++;
    }
}

/* Sends one of the run's commands (an attempt; its answer to v_on_result). */
static void v_command(verify_t *v, const char *agent, Godwit__Command *cmd,
                      uint64_t timeout_ms)
{
    v->busy = true;
    v->attempts++;
    agentlink_send(v->link, agent, cmd, timeout_ms, v_on_result, v);
}

/* A standby's step after the schema check: our publication on the source
 * of the tables to compare, for the verify slot to decode through (it
 * replicates to the standby like any DDL; abort and cleanup drop it). */
static void v_send_publication(verify_t *v)
{
    Godwit__TableRef *refs = xcalloc(v->n, sizeof *refs);
    Godwit__TableRef **ptrs = xcalloc(v->n, sizeof *ptrs);
    for (size_t i = 0; i < v->n; i++) {
        godwit__table_ref__init(&refs[i]);
        refs[i].schema = v->schemas[i];
        refs[i].name = v->names[i];
        ptrs[i] = &refs[i];
    }
    Godwit__EnsurePublication ep = GODWIT__ENSURE_PUBLICATION__INIT;
    ep.database = v->source_database;
    ep.name = v->objname;
    ep.n_tables = v->n; /* never 0 here: that would be FOR ALL TABLES */
    ep.tables = ptrs;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION;
    cmd.ensure_publication = &ep;
    v_command(v, v->source_agent, &cmd, 60000);
    free(ptrs);
    free(refs);
}

static void v_send_schema(verify_t *v)
{
    Godwit__VerifySchema vs = GODWIT__VERIFY_SCHEMA__INIT;
    vs.database = v->target_database;
    vs.source = &v->source;
    vs.n_tables = v->plan_tables.n;
    vs.tables = v->plan_tables.ptrs;
    vs.n_app_roles = v->n_app_roles;
    vs.app_roles = v->app_roles;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_VERIFY_SCHEMA;
    cmd.verify_schema = &vs;
    v_command(v, v->target_agent, &cmd, 600000);
}

static void v_on_result(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    verify_t *v = arg;
    v->busy = false;
    if (v->cancelled) {
        v_free(v);
        return;
    }
    bool pub_stage = v->standby && v->schema_done && !v->pub_done;
    int want = pub_stage ? (int)s_payload_any
               : v->schema_done ? GODWIT__RESULT__PAYLOAD_VERIFY_TABLE
                                : GODWIT__RESULT__PAYLOAD_VERIFY_SCHEMA;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK ||
        (want != s_payload_any && (int)r->payload_case != want)) {
        char msg[700], what[300];
        if (pub_stage)
            snprintf(what, sizeof what, "our publication for the verify slot");
        else if (v->schema_done)
            snprintf(what, sizeof what, "table %s.%s", v->schemas[v->next], v->names[v->next]);
        else
            snprintf(what, sizeof what, "the schema check");
        snprintf(msg, sizeof msg, "%s on %s: %s", what, agent,
                 r ? (r->message && r->message[0] ? r->message : "no result") : error);
        log_warn_about(log_about_migration(v->migration),
                       "migration %s: verify: %s (attempt %u of %d)", v->migration, msg,
                       v->attempts, VERIFY_ATTEMPTS);
        if (v->attempts >= VERIFY_ATTEMPTS) {
            v_end(v, "failed", msg);
            return;
        }
        v->retry_at_mono = agentlink_mono_ms(v->link) + 2000;
        return;
    }
    v->attempts = 0;
    if (pub_stage) {
        v->pub_done = true;
        v_skip_affected(v, cJSON_GetObjectItem(v->report, "tables"));
        if (v->next < v->n)
            v_send(v);
        else
            v_end(v, v_overall(v, cJSON_GetObjectItem(v->report, "tables")), NULL);
        return;
    }
    cJSON *tables = cJSON_GetObjectItem(v->report, "tables");
    if (!v->schema_done) {
        v->schema_done = true;
        v_schema_json(v, r->verify_schema);
    } else {
        cJSON_AddItemToArray(tables, v_table_json(r->verify_table));
        v->next++;
    }
    v_skip_affected(v, tables);
    cJSON_ReplaceItemInObject(v->report, "tables_done", cJSON_CreateNumber((double)v->next));
    if (v->standby && !v->pub_done && v->n > 0) {
        v_send(v); /* the publication, then the tables */
        return;
    }
    if (v->next < v->n) {
        v_send(v);
        return;
    }
    v_end(v, v_overall(v, tables), NULL);
}

static void v_send(verify_t *v)
{
    if (!v->schema_done) {
        v_send_schema(v);
        return;
    }
    if (v->standby && !v->pub_done) {
        v_send_publication(v);
        return;
    }
    Godwit__TableRef t = GODWIT__TABLE_REF__INIT;
    t.schema = v->schemas[v->next];
    t.name = v->names[v->next];
    Godwit__VerifyTable vt = GODWIT__VERIFY_TABLE__INIT;
    vt.database = v->target_database;
    vt.source = &v->source;
    vt.table = &t;
    vt.standby = v->standby;
    vt.subscription = v->standby ? "" : v->objname; /* a standby has neither */
    vt.slot = v->standby ? "" : v->objname;
    vt.publication = v->objname;
    vt.verify_slot = v->verify_slot;
    vt.batch_rows = v->batch_rows;
    vt.slot_wait_ms = v->slot_wait_ms;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_VERIFY_TABLE;
    cmd.verify_table = &vt;
    v_command(v, v->target_agent, &cmd, VERIFY_TABLE_TIMEOUT_MS);
}

static void v_kick(void *arg)
{
    verify_t *v = arg;
    v->busy = false;
    if (v->cancelled) {
        v_free(v);
        return;
    }
    v_send(v);
}

/* mycheck's end: the verify ends with its report. */
static void v_my_done(cJSON *report, void *arg)
{
    verify_t *v = arg;
    verify_done_cb done = v->done;
    void *done_arg = v->arg;
    v->my = NULL;
    v_free(v);
    done(report, done_arg);
}

verify_t *verify_start(const agentlink_t *link, const plan_migration_t *m, const char *objname,
                       char *const *schemas, char *const *names, size_t n, verify_done_cb done,
                       void *arg)
{
    verify_t *v = xcalloc(1, sizeof *v);
    if (m->engine == PLAN_ENGINE_MARIADB) {
        v->link = link;
        v->done = done;
        v->arg = arg;
        v->my = mycheck_start(link, m, objname, v_my_done, v);
        return v;
    }
    v->link = link;
    v->migration = xstrdup(m->name);
    v->objname = xstrdup(objname);
    v->verify_slot = xasprintf("%s_verify", objname);
    v->batch_rows = m->options.verify_batch_rows > 0 ? (uint64_t)m->options.verify_batch_rows : 0;
    v->slot_wait_ms = m->options.verify_slot_wait_ms > 0 ? (uint64_t)m->options.verify_slot_wait_ms
                                                         : 0;
    v->target_agent = xstrdup(m->target.agent);
    v->target_database = xstrdup(m->target.database);
    v->standby = m->method == PLAN_METHOD_PHYSICAL;
    v->source_agent = xstrdup(m->source.agent);
    v->source_database = xstrdup(m->source.database);
    Godwit__ReplicationConn forward = planwire_forward(m);
    planwire_conn_copy(&v->source, &forward);
    v->n = n;
    v->schemas = xcalloc(n ? n : 1, sizeof *v->schemas);
    v->names = xcalloc(n ? n : 1, sizeof *v->names);
    for (size_t i = 0; i < n; i++) {
        v->schemas[i] = xstrdup(schemas[i]);
        v->names[i] = xstrdup(names[i]);
    }
    v->skip = xcalloc(n ? n : 1, sizeof *v->skip);
    planwire_tables_copy(&v->plan_tables, m);
    v->n_app_roles = m->cutover.app_roles.count;
    v->app_roles = xcalloc(v->n_app_roles ? v->n_app_roles : 1, sizeof *v->app_roles);
    for (size_t i = 0; i < v->n_app_roles; i++)
        v->app_roles[i] = xstrdup(m->cutover.app_roles.items[i]);
    v->done = done;
    v->arg = arg;
    v->report = cJSON_CreateObject();
    cJSON_AddStringToObject(v->report, "state", "running");
    cJSON_AddNumberToObject(v->report, "started_at_ms", (double)agentlink_now_ms(v->link));
    cJSON_AddNullToObject(v->report, "finished_at_ms");
    cJSON_AddNumberToObject(v->report, "tables_total", (double)n);
    cJSON_AddNumberToObject(v->report, "tables_done", 0);
    cJSON_AddNullToObject(v->report, "error");
    cJSON_AddNullToObject(v->report, "schema");
    cJSON_AddArrayToObject(v->report, "tables");
    v->busy = true; /* until v_kick runs */
    agentlink_defer(link, v_kick, v);
    if (v->standby)
        log_info_about(log_about_migration(m->name), "migration %s: verify started (a standby: "
                       "every table of database %s)", m->name, m->target.database);
    else
        log_info_about(log_about_migration(m->name), "migration %s: verify started over %zu tables",
                       m->name, n);
    return v;
}

void verify_tick(verify_t *v)
{
    if (v && !v->busy && v->retry_at_mono && agentlink_mono_ms(v->link) >= v->retry_at_mono) {
        v->retry_at_mono = 0;
        v_send(v);
    }
}

const cJSON *verify_report(const verify_t *v)
{
    return v->my ? mycheck_report(v->my) : v->report;
}

void verify_cancel(verify_t **vp)
{
    verify_t *v = *vp;
    if (!v)
        return;
    *vp = NULL;
    if (v->my) {
        mycheck_cancel(&v->my);
        v_free(v);
        return;
    }
    v->cancelled = true;
    if (!v->busy)
        v_free(v);
}
