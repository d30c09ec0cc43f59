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
#include "units.h"
#include "xalloc.h"

#define VERIFY_TABLE_TIMEOUT_MS (2 * 3600 * 1000)
#define VERIFY_ATTEMPTS 3

struct verify {
    coord_t *coord;
    char *migration, *objname;
    char *target_agent, *target_database;
    /* the replication connection, as the plan gives it */
    char *host, *user, *passfile, *sslmode, *source_database;
    int port;
    char **schemas, **names;
    size_t n, next;
    unsigned attempts;
    uint64_t retry_at_mono;     /* a failed table is sent again from verify_tick */
    bool busy, cancelled;
    verify_done_cb done;
    void *arg;
    cJSON *report;
};

static void v_free(verify_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->schemas[i]);
        free(v->names[i]);
    }
    free(v->schemas);
    free(v->names);
    free(v->migration);
    free(v->objname);
    free(v->target_agent);
    free(v->target_database);
    free(v->host);
    free(v->user);
    free(v->passfile);
    free(v->sslmode);
    free(v->source_database);
    cJSON_Delete(v->report);
    free(v);
}

static void v_send(verify_t *v);

/* Ends the run with state: frees v, then hands the report to done. */
static void v_end(verify_t *v, const char *state, const char *error)
{
    cJSON_ReplaceItemInObject(v->report, "state", cJSON_CreateString(state));
    cJSON_ReplaceItemInObject(v->report, "finished_at_ms", cJSON_CreateNumber((double)units_now_ms()));
    if (error)
        cJSON_ReplaceItemInObject(v->report, "error", cJSON_CreateString(error));
    log_info("migration %s: verify %s%s%s", v->migration, state, error ? ": " : "",
             error ? error : "");
    verify_done_cb done = v->done;
    void *arg = v->arg;
    cJSON *report = v->report;
    v->report = NULL;
    v_free(v);
    done(report, arg);
}

static cJSON *v_table_json(const Godwit__VerifyTableResult *t)
{
    cJSON *o = cJSON_CreateObject();
    char name[300];
    snprintf(name, sizeof name, "%s.%s", t->table ? t->table->schema : "?",
             t->table ? t->table->name : "?");
    cJSON_AddStringToObject(o, "table", name);
    cJSON_AddStringToObject(o, "outcome", t->outcome);
    cJSON *keys = cJSON_AddArrayToObject(o, "key_columns");
    for (size_t i = 0; i < t->n_key_columns; i++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(t->key_columns[i]));
    cJSON_AddNumberToObject(o, "source_rows", (double)t->source_rows);
    cJSON_AddNumberToObject(o, "target_rows", (double)t->target_rows);
    cJSON_AddNumberToObject(o, "chunks", t->chunks);
    cJSON_AddNumberToObject(o, "chunks_rechecked", t->chunks_rechecked);
    cJSON_AddNumberToObject(o, "rounds", t->rounds);
    cJSON_AddNumberToObject(o, "diff_count", (double)t->diff_count);
    cJSON *diffs = cJSON_AddArrayToObject(o, "diffs");
    for (size_t i = 0; i < t->n_diffs; i++) {
        const Godwit__RowDiff *d = t->diffs[i];
        cJSON *j = cJSON_CreateObject();
        cJSON *key = cJSON_AddObjectToObject(j, "key");
        for (size_t k = 0; k < d->n_key && k < t->n_key_columns; k++)
            cJSON_AddStringToObject(key, t->key_columns[k], d->key[k]);
        cJSON_AddStringToObject(j, "kind", d->kind);
        cJSON_AddItemToArray(diffs, j);
    }
    cJSON_AddNumberToObject(o, "unsettled_count", (double)t->unsettled_count);
    cJSON_AddNumberToObject(o, "seconds", t->seconds);
    if (t->detail && t->detail[0])
        cJSON_AddStringToObject(o, "detail", t->detail);
    else
        cJSON_AddNullToObject(o, "detail");
    return o;
}

/* The run's state from its tables: different beats unsettled beats equal. */
static const char *v_overall(const cJSON *tables)
{
    bool unsettled = false;
    const cJSON *t;
    cJSON_ArrayForEach(t, tables) {
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(t, "outcome"));
        if (o && strcmp(o, "different") == 0)
            return "different";
        if (!o || strcmp(o, "equal") != 0)
            unsettled = true;
    }
    return unsettled ? "unsettled" : "equal";
}

static void v_on_result(coord_t *c, const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    (void)c;
    verify_t *v = arg;
    v->busy = false;
    if (v->cancelled) {
        v_free(v);
        return;
    }
    if (!r || r->status != GODWIT__STATUS__STATUS_OK ||
        r->payload_case != GODWIT__RESULT__PAYLOAD_VERIFY_TABLE) {
        char msg[700];
        snprintf(msg, sizeof msg, "table %s.%s on %s: %s", v->schemas[v->next], v->names[v->next],
                 agent, r ? (r->message && r->message[0] ? r->message : "no result") : error);
        log_warn("migration %s: verify: %s (attempt %u of %d)", v->migration, msg,
                 v->attempts, VERIFY_ATTEMPTS);
        if (v->attempts >= VERIFY_ATTEMPTS) {
            v_end(v, "failed", msg);
            return;
        }
        v->retry_at_mono = units_mono_ms() + 2000;
        return;
    }
    cJSON *tables = cJSON_GetObjectItem(v->report, "tables");
    cJSON_AddItemToArray(tables, v_table_json(r->verify_table));
    v->next++;
    v->attempts = 0;
    cJSON_ReplaceItemInObject(v->report, "tables_done", cJSON_CreateNumber((double)v->next));
    if (v->next < v->n) {
        v_send(v);
        return;
    }
    v_end(v, v_overall(tables), NULL);
}

static void v_send(verify_t *v)
{
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.host = v->host;
    rc.port = (uint32_t)v->port;
    rc.user = v->user;
    rc.passfile = v->passfile;
    rc.sslmode = v->sslmode;
    rc.dbname = v->source_database;
    Godwit__TableRef t = GODWIT__TABLE_REF__INIT;
    t.schema = v->schemas[v->next];
    t.name = v->names[v->next];
    Godwit__VerifyTable vt = GODWIT__VERIFY_TABLE__INIT;
    vt.database = v->target_database;
    vt.source = &rc;
    vt.table = &t;
    vt.subscription = v->objname;
    vt.slot = v->objname;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_VERIFY_TABLE;
    cmd.verify_table = &vt;
    v->busy = true;
    v->attempts++;
    coord_send_command(v->coord, v->target_agent, &cmd, VERIFY_TABLE_TIMEOUT_MS, v_on_result, v);
}

static void v_kick(void *arg)
{
    verify_t *v = arg;
    v->busy = false;
    if (v->cancelled) {
        v_free(v);
        return;
    }
    if (v->n == 0) {
        v_end(v, "equal", NULL);
        return;
    }
    v_send(v);
}

verify_t *verify_start(coord_t *c, const plan_migration_t *m, const char *objname,
                       char *const *schemas, char *const *names, size_t n, verify_done_cb done,
                       void *arg)
{
    verify_t *v = xcalloc(1, sizeof *v);
    v->coord = c;
    v->migration = xstrdup(m->name);
    v->objname = xstrdup(objname);
    v->target_agent = xstrdup(m->target.agent);
    v->target_database = xstrdup(m->target.database);
    v->host = xstrdup(m->replication.host);
    v->port = (int)m->replication.port;
    v->user = xstrdup(m->replication.user ? m->replication.user : "");
    v->passfile = xstrdup(m->replication.passfile ? m->replication.passfile : "");
    v->sslmode = xstrdup(m->replication.sslmode ? m->replication.sslmode : "");
    v->source_database = xstrdup(m->source.database);
    v->n = n;
    v->schemas = xcalloc(n ? n : 1, sizeof *v->schemas);
    v->names = xcalloc(n ? n : 1, sizeof *v->names);
    for (size_t i = 0; i < n; i++) {
        v->schemas[i] = xstrdup(schemas[i]);
        v->names[i] = xstrdup(names[i]);
    }
    v->done = done;
    v->arg = arg;
    v->report = cJSON_CreateObject();
    cJSON_AddStringToObject(v->report, "state", "running");
    cJSON_AddNumberToObject(v->report, "started_at_ms", (double)units_now_ms());
    cJSON_AddNullToObject(v->report, "finished_at_ms");
    cJSON_AddNumberToObject(v->report, "tables_total", (double)n);
    cJSON_AddNumberToObject(v->report, "tables_done", 0);
    cJSON_AddNullToObject(v->report, "error");
    cJSON_AddArrayToObject(v->report, "tables");
    v->busy = true; /* until v_kick runs */
    coord_defer(c, v_kick, v);
    log_info("migration %s: verify started over %zu tables", m->name, n);
    return v;
}

void verify_tick(verify_t *v)
{
    if (v && !v->busy && v->retry_at_mono && units_mono_ms() >= v->retry_at_mono) {
        v->retry_at_mono = 0;
        v_send(v);
    }
}

const cJSON *verify_report(const verify_t *v)
{
    return v->report;
}

void verify_cancel(verify_t **vp)
{
    verify_t *v = *vp;
    if (!v)
        return;
    *vp = NULL;
    v->cancelled = true;
    if (!v->busy)
        v_free(v);
}
