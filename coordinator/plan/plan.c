/*
 * plan: see plan.h. The schema below is the reference for the plan file;
 * docs/plan.md follows it. Owns every string and array in plan_t.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#include <cjson/cJSON.h>

#define M(field) offsetof(plan_migration_t, field)

static const cfg_field_t s_side[2][3] = {
    {
        { .key = "agent", .type = CFG_STRING, .offset = M(source.agent), .required = true },
        { .key = "database", .type = CFG_STRING, .offset = M(source.database), .required = true },
        CFG_END,
    },
    {
        { .key = "agent", .type = CFG_STRING, .offset = M(target.agent), .required = true },
        { .key = "database", .type = CFG_STRING, .offset = M(target.database), .required = true },
        CFG_END,
    },
};

/* The keys a replication section had before its connection moved into the
 * agents' peers lists: refused with what to do instead. */
#define S_MOVED(k, where)                                                                      \
    { .key = k, .type = CFG_RETIRED,                                                           \
      .retired = "no longer in plans: how one side reaches the other is the " where            \
                 " agent's config now (peers: name, host, port, user, sslmode, passfile; "      \
                 "docs/config.md); move it there and write {peer: NAME} here" }
#define S_CONN_FIELDS(f, where)                                                                \
    {                                                                                          \
        { .key = "peer", .type = CFG_STRING, .offset = M(f.peer), .required = true },          \
        S_MOVED("host", where), S_MOVED("port", where), S_MOVED("user", where),                 \
        S_MOVED("passfile", where), S_MOVED("sslmode", where), CFG_END,                        \
    }
static const cfg_field_t s_replication[] = S_CONN_FIELDS(replication, "target");
static const cfg_field_t s_reverse_replication[] = S_CONN_FIELDS(reverse_replication, "source");

static const char *const s_on_off[] = { "on", "off", NULL };

static const cfg_field_t s_options[] = {
    { .key = "disk_margin_percent", .type = CFG_INT, .offset = M(options.disk_margin_percent),
      .min = 100, .max = 1000 },
    { .key = "max_lag", .type = CFG_DURATION_MS, .offset = M(options.max_lag_ms), .min = 1,
      .max = 3600000 },
    { .key = "slot_wal_limit", .type = CFG_BYTES, .offset = M(options.slot_wal_limit_bytes),
      .min = 1 << 20, .max = INT64_MAX },
    { .key = "source_disk_floor", .type = CFG_BYTES, .offset = M(options.source_disk_floor_bytes),
      .min = 0, .max = INT64_MAX },
    { .key = "parallelism", .type = CFG_INT, .offset = M(options.parallelism), .min = 1, .max = 64 },
    { .key = "verify_batch_rows", .type = CFG_INT, .offset = M(options.verify_batch_rows),
      .min = 1000, .max = 1000000000 },
    { .key = "verify_slot_wait", .type = CFG_DURATION_MS, .offset = M(options.verify_slot_wait_ms),
      .min = 100, .max = 3600000 },
    CFG_END,
};

#define P(f) offsetof(plan_proxy_t, f)
static const cfg_field_t s_proxy[] = {
    { .key = "agent", .type = CFG_STRING, .offset = P(agent), .required = true },
    { .key = "proxy", .type = CFG_STRING, .offset = P(proxy), .required = true },
    { .key = "hold", .type = CFG_BOOL, .offset = P(hold) },
    CFG_END,
};
/* A proxy holds traffic during the pause unless its entry says hold: false. */
static const plan_proxy_t s_proxy_defaults = { .hold = true };

static const cfg_field_t s_cutover[] = {
    { .key = "app_roles", .type = CFG_STRING_LIST, .offset = M(cutover.app_roles), .min = 1,
      .max = 1000 },
    { .key = "proxies", .type = CFG_LIST, .offset = M(cutover.proxies), .min = 1, .max = 100,
      .children = s_proxy, .item_size = sizeof(plan_proxy_t),
      .item_defaults = &s_proxy_defaults },
    { .key = "max_write_pause", .type = CFG_DURATION_MS, .offset = M(cutover.max_write_pause_ms),
      .min = 10, .max = 600000 },
    { .key = "drain_timeout", .type = CFG_DURATION_MS, .offset = M(cutover.drain_timeout_ms),
      .min = 1, .max = 600000 },
    { .key = "lease", .type = CFG_DURATION_MS, .offset = M(cutover.lease_ms), .min = 1000,
      .max = 3600000 },
    { .key = "reverse", .type = CFG_ENUM, .offset = M(cutover.reverse_off),
      .enum_values = s_on_off },
    { .key = "verify_max_age", .type = CFG_DURATION_MS, .offset = M(cutover.verify_max_age_ms),
      .min = 1000, .max = 7 * 24 * 3600000LL },
    { .key = "abort_timeout", .type = CFG_DURATION_MS, .offset = M(cutover.abort_timeout_ms),
      .min = 1000, .max = 600000 },
    CFG_END,
};

static const cfg_field_t s_roles[] = {
    { .key = "passwords", .type = CFG_BOOL, .offset = M(roles.passwords) },
    CFG_END,
};

static const cfg_field_t s_migration[] = {
    { .key = "name", .type = CFG_STRING, .offset = M(name), .required = true },
    { .key = "source", .type = CFG_SECTION, .required = true, .children = s_side[0] },
    { .key = "target", .type = CFG_SECTION, .required = true, .children = s_side[1] },
    { .key = "replication", .type = CFG_SECTION, .required = true, .children = s_replication },
    { .key = "reverse_replication", .type = CFG_SECTION, .children = s_reverse_replication },
    { .key = "tables", .type = CFG_STRING_LIST, .offset = M(tables_raw), .min = 1, .max = 100000 },
    { .key = "options", .type = CFG_SECTION, .children = s_options },
    { .key = "cutover", .type = CFG_SECTION, .children = s_cutover },
    { .key = "roles", .type = CFG_SECTION, .children = s_roles },
    CFG_END,
};

static const cfg_field_t s_plan[] = {
    { .key = "migrations", .type = CFG_LIST, .offset = offsetof(plan_t, migrations),
      .required = true, .min = 1, .max = 1000, .children = s_migration,
      .item_size = sizeof(plan_migration_t) },
    CFG_END,
};

size_t plan_count(const plan_t *plan) { return plan->migrations.count; }

plan_migration_t *plan_at(const plan_t *plan, size_t i)
{
    return i < plan->migrations.count ? (plan_migration_t *)plan->migrations.items + i : NULL;
}

plan_migration_t *plan_find(const plan_t *plan, const char *name)
{
    for (size_t i = 0; i < plan_count(plan); i++)
        if (strcmp(plan_at(plan, i)->name, name) == 0)
            return plan_at(plan, i);
    return NULL;
}

/* Migration names become parts of object names on the servers (slots,
 * publications): lower-case letters, digits and '_', at most 40. */
static bool s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* "schema.table" -> parts; a name without a dot is in public. The first
 * dot splits (schema names with dots are not supported in plans). */
static bool s_split_table(const char *raw, plan_table_t *out)
{
    const char *dot = strchr(raw, '.');
    if (dot == raw || (dot && dot[1] == '\0') || raw[0] == '\0')
        return false;
    if (dot) {
        out->schema = xasprintf("%.*s", (int)(dot - raw), raw);
        out->name = xstrdup(dot + 1);
    } else {
        out->schema = xstrdup("public");
        out->name = xstrdup(raw);
    }
    return true;
}

static bool s_check(const char *name, plan_t *plan, char *err, size_t errlen)
{
    for (size_t i = 0; i < plan_count(plan); i++) {
        plan_migration_t *m = plan_at(plan, i);
        if (!s_name_ok(m->name)) {
            snprintf(err, errlen,
                     "%s: migrations[%zu].name: \"%s\": use 1 to 40 of a-z, 0-9 and _ (it names "
                     "slots and publications)",
                     name, i, m->name);
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(plan_at(plan, k)->name, m->name) == 0) {
                snprintf(err, errlen, "%s: migrations[%zu].name: \"%s\" is already migrations[%zu]",
                         name, i, m->name, k);
                return false;
            }
        }
        if (strcmp(m->source.agent, m->target.agent) == 0) {
            snprintf(err, errlen,
                     "%s: migrations[%zu].target.agent: \"%s\" is also the source agent; source "
                     "and target are different hosts",
                     name, i, m->target.agent);
            return false;
        }
        m->tables = m->tables_raw.count ? xcalloc(m->tables_raw.count, sizeof *m->tables) : NULL;
        for (size_t t = 0; t < m->tables_raw.count; t++) {
            if (!s_split_table(m->tables_raw.items[t], &m->tables[m->n_tables])) {
                snprintf(err, errlen, "%s: migrations[%zu].tables[%zu]: \"%s\": expected schema.table",
                         name, i, t, m->tables_raw.items[t]);
                return false;
            }
            m->n_tables++;
        }
        if (m->cutover.proxies.count && !m->cutover.reverse_off && !m->reverse_replication.peer) {
            snprintf(err, errlen,
                     "%s: migrations[%zu].reverse_replication: missing: after the cutover the "
                     "source follows the target (cutover.reverse is on by default), so the plan "
                     "names the peer of the source agent that is the target ({peer: NAME}, as "
                     "in replication); or set cutover.reverse: off (then no rollback without "
                     "losing the target's writes)",
                     name, i);
            return false;
        }
        if (m->options.disk_margin_percent == 0)
            m->options.disk_margin_percent = 120;
        if (m->options.max_lag_ms == 0)
            m->options.max_lag_ms = 1000;
        if (m->options.parallelism == 0)
            m->options.parallelism = 2;
        if (m->cutover.max_write_pause_ms == 0)
            m->cutover.max_write_pause_ms = 2000;
        if (m->cutover.drain_timeout_ms == 0)
            m->cutover.drain_timeout_ms = m->cutover.max_write_pause_ms / 2;
        if (m->cutover.lease_ms == 0)
            m->cutover.lease_ms = 15000;
        if (m->cutover.verify_max_age_ms == 0)
            m->cutover.verify_max_age_ms = 10 * 60000;
        if (m->cutover.abort_timeout_ms == 0)
            m->cutover.abort_timeout_ms = 10000;
    }
    return true;
}

bool plan_load_string(const char *name, const char *text, plan_t *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    if (!cfg_load_string(name, text, s_plan, plan, err, errlen))
        return false;
    if (!s_check(name, plan, err, errlen)) {
        plan_free(plan);
        return false;
    }
    return true;
}

void plan_free(plan_t *plan)
{
    for (size_t i = 0; i < plan_count(plan); i++) {
        plan_migration_t *m = plan_at(plan, i);
        for (size_t t = 0; t < m->n_tables; t++) {
            free(m->tables[t].schema);
            free(m->tables[t].name);
        }
        free(m->tables);
        m->tables = NULL;
        m->n_tables = 0;
    }
    cfg_free(s_plan, plan);
}

static void s_conn_json(cJSON *o, const char *key, const plan_conn_t *c)
{
    cJSON *r = cJSON_AddObjectToObject(o, key);
    cJSON_AddStringToObject(r, "peer", c->peer);
}

char *plan_migration_to_json(const plan_migration_t *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "migrations");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(list, o);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON *s = cJSON_AddObjectToObject(o, "source");
    cJSON_AddStringToObject(s, "agent", m->source.agent);
    cJSON_AddStringToObject(s, "database", m->source.database);
    cJSON *t = cJSON_AddObjectToObject(o, "target");
    cJSON_AddStringToObject(t, "agent", m->target.agent);
    cJSON_AddStringToObject(t, "database", m->target.database);
    s_conn_json(o, "replication", &m->replication);
    if (m->reverse_replication.peer)
        s_conn_json(o, "reverse_replication", &m->reverse_replication);
    if (m->n_tables) {
        cJSON *tl = cJSON_AddArrayToObject(o, "tables");
        for (size_t i = 0; i < m->tables_raw.count; i++)
            cJSON_AddItemToArray(tl, cJSON_CreateString(m->tables_raw.items[i]));
    }
    cJSON *op = cJSON_AddObjectToObject(o, "options");
    char buf[32];
    cJSON_AddNumberToObject(op, "disk_margin_percent", (double)m->options.disk_margin_percent);
    snprintf(buf, sizeof buf, "%lldms", (long long)m->options.max_lag_ms);
    cJSON_AddStringToObject(op, "max_lag", buf);
    if (m->options.slot_wal_limit_bytes) {
        snprintf(buf, sizeof buf, "%lld", (long long)m->options.slot_wal_limit_bytes);
        cJSON_AddStringToObject(op, "slot_wal_limit", buf);
    }
    if (m->options.source_disk_floor_bytes) {
        snprintf(buf, sizeof buf, "%lld", (long long)m->options.source_disk_floor_bytes);
        cJSON_AddStringToObject(op, "source_disk_floor", buf);
    }
    cJSON_AddNumberToObject(op, "parallelism", (double)m->options.parallelism);
    if (m->options.verify_batch_rows)
        cJSON_AddNumberToObject(op, "verify_batch_rows", (double)m->options.verify_batch_rows);
    if (m->options.verify_slot_wait_ms) {
        snprintf(buf, sizeof buf, "%lldms", (long long)m->options.verify_slot_wait_ms);
        cJSON_AddStringToObject(op, "verify_slot_wait", buf);
    }
    cJSON *co = cJSON_AddObjectToObject(o, "cutover");
    if (m->cutover.app_roles.count) {
        cJSON *ar = cJSON_AddArrayToObject(co, "app_roles");
        for (size_t i = 0; i < m->cutover.app_roles.count; i++)
            cJSON_AddItemToArray(ar, cJSON_CreateString(m->cutover.app_roles.items[i]));
    }
    if (m->cutover.proxies.count) {
        cJSON *pl = cJSON_AddArrayToObject(co, "proxies");
        for (size_t i = 0; i < m->cutover.proxies.count; i++) {
            const plan_proxy_t *p = (const plan_proxy_t *)m->cutover.proxies.items + i;
            cJSON *po = cJSON_CreateObject();
            cJSON_AddStringToObject(po, "agent", p->agent);
            cJSON_AddStringToObject(po, "proxy", p->proxy);
            cJSON_AddBoolToObject(po, "hold", p->hold);
            cJSON_AddItemToArray(pl, po);
        }
    }
    snprintf(buf, sizeof buf, "%lldms", (long long)m->cutover.max_write_pause_ms);
    cJSON_AddStringToObject(co, "max_write_pause", buf);
    snprintf(buf, sizeof buf, "%lldms", (long long)m->cutover.drain_timeout_ms);
    cJSON_AddStringToObject(co, "drain_timeout", buf);
    snprintf(buf, sizeof buf, "%lldms", (long long)m->cutover.lease_ms);
    cJSON_AddStringToObject(co, "lease", buf);
    cJSON_AddStringToObject(co, "reverse", s_on_off[m->cutover.reverse_off ? 1 : 0]);
    snprintf(buf, sizeof buf, "%lldms", (long long)m->cutover.verify_max_age_ms);
    cJSON_AddStringToObject(co, "verify_max_age", buf);
    snprintf(buf, sizeof buf, "%lldms", (long long)m->cutover.abort_timeout_ms);
    cJSON_AddStringToObject(co, "abort_timeout", buf);
    cJSON *ro = cJSON_AddObjectToObject(o, "roles");
    cJSON_AddBoolToObject(ro, "passwords", m->roles.passwords);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}
