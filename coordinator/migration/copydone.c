/* copydone: see copydone.h. */
#include "copydone.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static bool s_copied(const Godwit__TableSync *t)
{
    return t && t->table && t->state && strcmp(t->state, "copied") == 0;
}

size_t copydone_count(const Godwit__SyncStatusResult *sync)
{
    size_t n = 0;
    for (size_t i = 0; sync && i < sync->n_tables; i++)
        n += s_copied(sync->tables[i]);
    return n;
}

char *copydone_json(const char *point, const Godwit__SyncStatusResult *sync)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "point", point);
    cJSON *a = cJSON_AddArrayToObject(o, "tables");
    for (size_t i = 0; sync && i < sync->n_tables; i++) {
        const Godwit__TableSync *t = sync->tables[i];
        if (!s_copied(t))
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "schema", t->table->schema);
        cJSON_AddStringToObject(e, "name", t->table->name);
        cJSON_AddNumberToObject(e, "rows", (double)t->rows_done);
        cJSON_AddNumberToObject(e, "bytes", (double)t->bytes_done);
        cJSON_AddNumberToObject(e, "bytes_total", (double)t->bytes_total);
        cJSON_AddItemToArray(a, e);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}

/* A non-negative whole number of o's field name, or 0. */
static uint64_t s_u64(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
}

Godwit__SyncStatusResult *copydone_load(const char *json, char *point, size_t pointlen)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "point"));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "tables");
    if (!p || !p[0] || strlen(p) >= pointlen || !cJSON_IsArray(a)) {
        cJSON_Delete(o);
        return NULL;
    }
    snprintf(point, pointlen, "%s", p);
    int n = cJSON_GetArraySize(a);
    Godwit__SyncStatusResult *s = xmalloc(sizeof *s);
    godwit__sync_status_result__init(s);
    s->exists = true;
    s->tables = xcalloc(n > 0 ? (size_t)n : 1, sizeof *s->tables);
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        const char *schema = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "schema"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
        if (!schema || !name)
            continue;
        Godwit__TableSync *t = xmalloc(sizeof *t);
        godwit__table_sync__init(t);
        t->table = xmalloc(sizeof *t->table);
        godwit__table_ref__init(t->table);
        t->table->schema = xstrdup(schema);
        t->table->name = xstrdup(name);
        t->state = xstrdup("copied");
        t->rows_done = s_u64(e, "rows");
        t->bytes_done = s_u64(e, "bytes");
        t->bytes_total = s_u64(e, "bytes_total");
        s->tables[s->n_tables++] = t;
    }
    cJSON_Delete(o);
    return s;
}
