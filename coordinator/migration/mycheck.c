/*
 * mycheck: see mycheck.h. One command in flight at a time, in the order
 * of its stages; each answer moves the run to the next.
 */
#include "mycheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"
#include "xalloc.h"

#define MYCHECK_SUM_TIMEOUT_MS (4 * 3600 * 1000)
#define MYCHECK_CMP_TIMEOUT_MS (5 * 60 * 1000)
#define MYCHECK_WAIT_MS 60000
#define MYCHECK_DIFFS 100 /* diffs listed per table, at most */

typedef enum { C_SUM1, C_CMP1, C_SUM2, C_CMP2, C_FINISH } stage_t;

struct mycheck {
    const agentlink_t *link;
    char *migration, *run, *run2;
    char *connection;                       /* our replication connection's name */
    char *source_agent, *source_database, *target_agent, *target_database;
    stage_t stage;
    bool busy, cancelled;
    char *error;                            /* the run's failure, ended after the finish */
    Godwit__MyChecksumResult *sum;          /* the last MyChecksum's answer, owned */
    Godwit__MyChecksumCompareResult *cmp1;  /* the first round's comparison, owned */
    Godwit__MyChunk **recheck;              /* borrowed from cmp1 */
    size_t n_recheck;
    mycheck_done_cb done;
    void *arg;
    cJSON *report;
    uint64_t started_mono;
};

static void c_free(mycheck_t *c)
{
    free(c->migration);
    free(c->run);
    free(c->run2);
    free(c->connection);
    free(c->source_agent);
    free(c->source_database);
    free(c->target_agent);
    free(c->target_database);
    free(c->error);
    if (c->sum)
        godwit__my_checksum_result__free_unpacked(c->sum, NULL);
    if (c->cmp1)
        godwit__my_checksum_compare_result__free_unpacked(c->cmp1, NULL);
    free(c->recheck);
    cJSON_Delete(c->report);
    free(c);
}

/* The report's entry for table (NULL if none). */
static cJSON *c_table(const mycheck_t *c, const char *table)
{
    char name[300];
    snprintf(name, sizeof name, "%s.%s", c->source_database, table);
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c->report, "tables")) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(t, "table"));
        if (n && strcmp(n, name) == 0)
            return t;
    }
    return NULL;
}

static void c_set_num(cJSON *o, const char *key, double v)
{
    cJSON_ReplaceItemInObject(o, key, cJSON_CreateNumber(v));
}

static void c_set_str(cJSON *o, const char *key, const char *v)
{
    cJSON_ReplaceItemInObject(o, key, cJSON_CreateString(v));
}

/* Ends the run: frees c, then hands the report to done. */
static void c_end(mycheck_t *c)
{
    const char *state = "equal";
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c->report, "tables")) {
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(t, "outcome"));
        if (o && strcmp(o, "different") == 0)
            state = "different";
    }
    if (c->error) {
        state = "failed";
        c_set_str(c->report, "error", c->error);
    }
    c_set_str(c->report, "state", state);
    c_set_num(c->report, "finished_at_ms", (double)agentlink_now_ms(c->link));
    log_info_about(log_about_migration(c->migration), "migration %s: verify %s%s%s",
                   c->migration, state, c->error ? ": " : "", c->error ? c->error : "");
    mycheck_done_cb done = c->done;
    void *arg = c->arg;
    cJSON *report = c->report;
    c->report = NULL;
    c_free(c);
    done(report, arg);
}

static void c_on_result(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg);

static void c_send(mycheck_t *c, const char *agent, Godwit__Command *cmd, uint64_t timeout_ms)
{
    c->busy = true;
    agentlink_send(c->link, agent, cmd, timeout_ms, c_on_result, c);
}

/* MyChecksum to the source: the whole database (within NULL), the
 * chunks given one row at a time, or finish. */
static void c_sum(mycheck_t *c, const char *run, Godwit__MyChunk **within, size_t n, bool finish)
{
    Godwit__MyChecksum q = GODWIT__MY_CHECKSUM__INIT;
    q.database = c->source_database;
    q.run = (char *)run;
    q.chunk_rows = within ? 1 : 0;
    q.within = within;
    q.n_within = n;
    q.finish = finish;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_MY_CHECKSUM;
    cmd.my_checksum = &q;
    c_send(c, c->source_agent, &cmd, MYCHECK_SUM_TIMEOUT_MS);
}

static void c_cmp(mycheck_t *c, const char *run, const char *gtid)
{
    Godwit__MyChecksumCompare q = GODWIT__MY_CHECKSUM_COMPARE__INIT;
    q.database = c->target_database;
    q.run = (char *)run;
    q.gtid = (char *)gtid;
    q.wait_ms = MYCHECK_WAIT_MS;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_MY_CHECKSUM_COMPARE;
    cmd.my_checksum_compare = &q;
    c_send(c, c->target_agent, &cmd, MYCHECK_CMP_TIMEOUT_MS);
}

/* The first round's tables: their keys, chunks and rows on the source. */
static void c_tables_from(mycheck_t *c, const Godwit__MyChecksumResult *s)
{
    cJSON *tables = cJSON_GetObjectItem(c->report, "tables");
    for (size_t i = 0; i < s->n_tables; i++) {
        const Godwit__MyChecksumTable *t = s->tables[i];
        cJSON *o = cJSON_CreateObject();
        char name[300];
        snprintf(name, sizeof name, "%s.%s", c->source_database, t->table);
        cJSON_AddStringToObject(o, "table", name);
        cJSON_AddStringToObject(o, "outcome", "equal");
        cJSON_AddStringToObject(o, "key_kind", t->n_key_columns ? "primary key"
                                                                : "multiset (no key)");
        cJSON *keys = cJSON_AddArrayToObject(o, "key_columns");
        for (size_t k = 0; k < t->n_key_columns; k++)
            cJSON_AddItemToArray(keys, cJSON_CreateString(t->key_columns[k]));
        cJSON_AddNumberToObject(o, "source_rows", (double)t->source_rows);
        cJSON_AddNumberToObject(o, "target_rows", (double)t->source_rows);
        cJSON_AddNumberToObject(o, "chunks", t->chunks);
        cJSON_AddNumberToObject(o, "chunks_rechecked", 0);
        cJSON_AddNumberToObject(o, "diff_count", 0);
        cJSON_AddArrayToObject(o, "diffs");
        cJSON_AddItemToArray(tables, o);
    }
    c_set_num(c->report, "tables_total", (double)s->n_tables);
}

/* The first round's different chunks: each table's outcome and target
 * rows; those with a key are re-checked row by row (the first
 * MYCHECK_RECHECK). */
static void c_first_round(mycheck_t *c, const Godwit__MyChecksumCompareResult *cmp)
{
    c->recheck = xcalloc(cmp->n_different ? cmp->n_different : 1, sizeof *c->recheck);
    for (size_t i = 0; i < cmp->n_different; i++) {
        Godwit__MyChunk *k = cmp->different[i];
        cJSON *t = c_table(c, k->table);
        if (!t)
            continue;
        c_set_str(t, "outcome", "different");
        double rows = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "target_rows"));
        c_set_num(t, "target_rows", rows + (double)k->target_rows - (double)k->source_rows);
        bool keyed = cJSON_GetArraySize(cJSON_GetObjectItem(t, "key_columns")) > 0;
        if (keyed && c->n_recheck < MYCHECK_RECHECK) {
            c->recheck[c->n_recheck++] = k;
            c_set_num(t, "chunks_rechecked",
                      cJSON_GetNumberValue(cJSON_GetObjectItem(t, "chunks_rechecked")) + 1);
        }
    }
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c->report, "tables")) {
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(t, "outcome"));
        if (!o || strcmp(o, "different") != 0)
            continue;
        char detail[300];
        if (cJSON_GetArraySize(cJSON_GetObjectItem(t, "key_columns")) == 0)
            snprintf(detail, sizeof detail, "no primary key: compared as one chunk, %.0f rows "
                     "on the source and %.0f on the target at one position",
                     cJSON_GetNumberValue(cJSON_GetObjectItem(t, "source_rows")),
                     cJSON_GetNumberValue(cJSON_GetObjectItem(t, "target_rows")));
        else
            snprintf(detail, sizeof detail, "%.0f chunk(s) re-checked row by row (at most %d "
                     "per run)", cJSON_GetNumberValue(cJSON_GetObjectItem(t, "chunks_rechecked")),
                     MYCHECK_RECHECK);
        cJSON_AddStringToObject(t, "detail", detail);
    }
}

static bool c_has(char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

/* One diff: key's values ("v1,v2": the agent's text of each key column)
 * under the table's key columns. */
static void c_diff(cJSON *t, const char *key, const char *kind)
{
    c_set_num(t, "diff_count", cJSON_GetNumberValue(cJSON_GetObjectItem(t, "diff_count")) + 1);
    cJSON *diffs = cJSON_GetObjectItem(t, "diffs");
    if (cJSON_GetArraySize(diffs) >= MYCHECK_DIFFS)
        return;
    cJSON *cols = cJSON_GetObjectItem(t, "key_columns");
    cJSON *o = cJSON_CreateObject(), *k = cJSON_AddObjectToObject(o, "key");
    const char *p = key;
    for (int i = 0; i < cJSON_GetArraySize(cols); i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma && i + 1 < cJSON_GetArraySize(cols) ? (size_t)(comma - p) : strlen(p);
        char *v = xasprintf("%.*s", (int)len, p);
        cJSON_AddStringToObject(k, cJSON_GetStringValue(cJSON_GetArrayItem(cols, i)), v);
        free(v);
        p += len + (p[len] == ',');
    }
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddItemToArray(diffs, o);
}

/* The second round: chunks of one source row each. Keys on the source
 * only are missing on the target, on the target only extra there; a key
 * on both sides is a changed row when the chunk's keys are the same on
 * both (else its content is not proven different: only the extra and
 * missing keys are reported). */
static void c_second_round(mycheck_t *c, const Godwit__MyChecksumCompareResult *cmp)
{
    for (size_t i = 0; i < cmp->n_different; i++) {
        const Godwit__MyChunk *k = cmp->different[i];
        cJSON *t = c_table(c, k->table);
        if (!t)
            continue;
        bool same = k->n_source_keys == k->n_target_keys;
        for (size_t j = 0; same && j < k->n_source_keys; j++)
            same = c_has(k->target_keys, k->n_target_keys, k->source_keys[j]);
        for (size_t j = 0; j < k->n_source_keys; j++)
            if (!c_has(k->target_keys, k->n_target_keys, k->source_keys[j]))
                c_diff(t, k->source_keys[j], "missing_on_target");
            else if (same)
                c_diff(t, k->source_keys[j], "changed");
        for (size_t j = 0; j < k->n_target_keys; j++)
            if (!c_has(k->source_keys, k->n_source_keys, k->target_keys[j]))
                c_diff(t, k->target_keys[j], "extra_on_target");
    }
}

static void c_fail(mycheck_t *c, const char *agent, const Godwit__Result *r, const char *error)
{
    const char *why = r ? (r->message && r->message[0] ? r->message : "failed") : error;
    if (!c->error)
        c->error = xasprintf("%s: %s", agent, why ? why : "failed");
}

/* The chunks a MyChecksum answer made. */
static uint32_t c_chunks(const Godwit__MyChecksumResult *s)
{
    uint32_t n = 0;
    for (size_t i = 0; i < s->n_tables; i++)
        n += s->tables[i]->chunks;
    return n;
}

static void c_on_result(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    mycheck_t *c = arg;
    c->busy = false;
    if (c->cancelled) {
        c_free(c);
        return;
    }
    bool ok = r && r->status == GODWIT__STATUS__STATUS_OK;
    if (c->stage == C_FINISH) {
        if (!ok)
            log_warn_about(log_about_migration(c->migration), "migration %s: dropping "
                           "godwit_verify on %s: %s (the next verify drops it)", c->migration,
                           agent, r ? r->message : error);
        c_end(c);
        return;
    }
    bool sum = c->stage == C_SUM1 || c->stage == C_SUM2;
    if (ok && ((sum && r->payload_case != GODWIT__RESULT__PAYLOAD_MY_CHECKSUM) ||
               (!sum && r->payload_case != GODWIT__RESULT__PAYLOAD_MY_COMPARE))) {
        ok = false;
        error = "an answer without its figures";
        r = NULL;
    }
    if (!ok) {
        c_fail(c, agent, r, error);
        c->stage = C_FINISH;
        c_sum(c, c->run, NULL, 0, true);
        return;
    }
    switch (c->stage) {
    case C_SUM1:
    case C_SUM2:
        if (c->sum)
            godwit__my_checksum_result__free_unpacked(c->sum, NULL);
        c->sum = wire_copy(r->my_checksum);
        if (c->stage == C_SUM1)
            c_tables_from(c, c->sum);
        c->stage = c->stage == C_SUM1 ? C_CMP1 : C_CMP2;
        c_cmp(c, c->stage == C_CMP1 ? c->run : c->run2, c->sum->gtid);
        return;
    case C_CMP1:
    case C_CMP2:
        if (r->my_compare->chunks != c_chunks(c->sum)) {
            char why[300];
            snprintf(why, sizeof why, "the target holds %u of the run's %u chunks after "
                     "executing the source's position %s: a replication filter or a stopped "
                     "replica drops its statements (SHOW SLAVE '%s' STATUS)",
                     r->my_compare->chunks, c_chunks(c->sum), c->sum->gtid, c->connection);
            c_fail(c, agent, NULL, why);
            break;
        }
        if (c->stage == C_CMP2) {
            c_second_round(c, r->my_compare);
            break;
        }
        c->cmp1 = wire_copy(r->my_compare);
        c_first_round(c, c->cmp1);
        c_set_num(c->report, "tables_done",
                  cJSON_GetNumberValue(cJSON_GetObjectItem(c->report, "tables_total")));
        if (c->n_recheck) {
            c->stage = C_SUM2;
            c_sum(c, c->run2, c->recheck, c->n_recheck, false);
            return;
        }
        break;
    case C_FINISH:
        break;
    }
    c->stage = C_FINISH;
    c_sum(c, c->run, NULL, 0, true);
}

mycheck_t *mycheck_start(const agentlink_t *link, const plan_migration_t *m, const char *objname,
                         mycheck_done_cb done, void *arg)
{
    mycheck_t *c = xcalloc(1, sizeof *c);
    c->link = link;
    c->migration = xstrdup(m->name);
    c->run = xasprintf("%.40s_v%" PRIu64, objname, agentlink_now_ms(link));
    c->run2 = xasprintf("%s_rows", c->run);
    c->connection = xstrdup(objname);
    c->source_agent = xstrdup(m->source.agent);
    c->source_database = xstrdup(m->source.database);
    c->target_agent = xstrdup(m->target.agent);
    c->target_database = xstrdup(m->target.database);
    c->done = done;
    c->arg = arg;
    c->report = cJSON_CreateObject();
    cJSON_AddStringToObject(c->report, "state", "running");
    cJSON_AddNumberToObject(c->report, "started_at_ms", (double)agentlink_now_ms(link));
    cJSON_AddNullToObject(c->report, "finished_at_ms");
    cJSON_AddNumberToObject(c->report, "tables_total", 0);
    cJSON_AddNumberToObject(c->report, "tables_done", 0);
    cJSON_AddNullToObject(c->report, "error");
    cJSON_AddNullToObject(c->report, "schema");
    cJSON_AddArrayToObject(c->report, "tables");
    c->stage = C_SUM1;
    c_sum(c, c->run, NULL, 0, false);
    return c;
}

const cJSON *mycheck_report(const mycheck_t *c)
{
    return c->report;
}

void mycheck_cancel(mycheck_t **cp)
{
    mycheck_t *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    c->cancelled = true;
    if (!c->busy)
        c_free(c);
}
