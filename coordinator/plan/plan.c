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
/* A {peer: NAME} section whose peer is stored at offset off. */
#define S_CONN_FIELDS(off, where)                                                              \
    {                                                                                          \
        { .key = "peer", .type = CFG_STRING, .offset = (off), .required = true },              \
        S_MOVED("host", where), S_MOVED("port", where), S_MOVED("user", where),                 \
        S_MOVED("passfile", where), S_MOVED("sslmode", where), CFG_END,                        \
    }
static const cfg_field_t s_replication[] = S_CONN_FIELDS(M(replication.peer), "target");
static const cfg_field_t s_reverse_replication[] =
    S_CONN_FIELDS(M(reverse_replication.peer), "source");

static const char *const s_on_off[] = { "on", "off", NULL };
static const char *const s_methods[] = { "logical", "physical", NULL };
static const char *const s_engines[] = { "postgresql", "mariadb", NULL };

const char *plan_engine_name(int engine)
{
    return engine == PLAN_ENGINE_MARIADB ? "mariadb" : "postgresql";
}

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
    { .key = "target_jurisdiction", .type = CFG_LABEL, .offset = M(options.target_jurisdiction) },
    { .key = "link_mbit", .type = CFG_INT, .offset = M(options.link_mbit), .min = 1,
      .max = 1000000 },
    { .key = "basebackup_max_rate", .type = CFG_BYTES, .offset = M(options.basebackup_max_rate),
      .min = 32 << 10, .max = 1LL << 30 },
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

/* full_page_writes off risks torn pages after a crash of the target's
 * host during the load: only when the operator says they accept it. */
static bool s_import_check(const void *item, const char **field, char *why, size_t whylen)
{
    const plan_migration_t *m = item;
    if (m->import_profile.full_page_writes_off && !m->import_profile.accept_torn_page_risk) {
        *field = "full_page_writes";
        snprintf(why, whylen, "off risks torn pages if the target's host crashes during the "
                 "load (the target database must then be dropped and copied again); set "
                 "accept_torn_page_risk: true beside it to accept that");
        return false;
    }
    return true;
}

static const cfg_field_t s_import_profile[] = {
    { .key = "synchronous_commit", .type = CFG_ENUM,
      .offset = M(import_profile.synchronous_commit_off), .enum_values = s_on_off },
    { .key = "max_wal_size", .type = CFG_BYTES, .offset = M(import_profile.max_wal_size_bytes),
      .min = 32 << 20, .max = 1LL << 50 },
    { .key = "checkpoint_timeout", .type = CFG_DURATION_MS,
      .offset = M(import_profile.checkpoint_timeout_ms), .min = 30000, .max = 86400000 },
    { .key = "maintenance_work_mem", .type = CFG_BYTES,
      .offset = M(import_profile.maintenance_work_mem_bytes), .min = 1 << 20,
      .max = 1LL << 40 },
    { .key = "max_parallel_maintenance_workers", .type = CFG_INT,
      .offset = M(import_profile.max_parallel_maintenance_workers), .min = 1, .max = 1024 },
    { .key = "full_page_writes", .type = CFG_ENUM,
      .offset = M(import_profile.full_page_writes_off), .enum_values = s_on_off },
    { .key = "accept_torn_page_risk", .type = CFG_BOOL,
      .offset = M(import_profile.accept_torn_page_risk) },
    CFG_END,
};

static const cfg_field_t s_migration[] = {
    { .key = "name", .type = CFG_STRING, .offset = M(name), .required = true },
    { .key = "method", .type = CFG_ENUM, .offset = M(method), .enum_values = s_methods },
    { .key = "engine", .type = CFG_ENUM, .offset = M(engine), .enum_values = s_engines },
    { .key = "source", .type = CFG_SECTION, .required = true, .children = s_side[0] },
    { .key = "target", .type = CFG_SECTION, .required = true, .children = s_side[1] },
    { .key = "replication", .type = CFG_SECTION, .required = true, .children = s_replication },
    { .key = "reverse_replication", .type = CFG_SECTION, .children = s_reverse_replication },
    { .key = "tables", .type = CFG_STRING_LIST, .offset = M(tables_raw), .min = 1, .max = 100000 },
    { .key = "options", .type = CFG_SECTION, .children = s_options },
    { .key = "cutover", .type = CFG_SECTION, .children = s_cutover },
    { .key = "roles", .type = CFG_SECTION, .children = s_roles },
    { .key = "import_profile", .type = CFG_SECTION, .children = s_import_profile,
      .item_check = s_import_check },
    CFG_END,
};

/* A plan holds at most this many migrations, written out and expanded. */
#define PLAN_MIGRATIONS_MAX 1000

/* A template is a migration without the keys its inventory gives. The
 * rows are the migration's own: a fleet's template is its first member, so
 * M() offsets are the fleet's too. */
_Static_assert(offsetof(plan_fleet_t, tmpl) == 0, "the template's rows use migration offsets");
#define S_NOT_IN_TEMPLATE(k)                                                                   \
    { .key = k, .type = CFG_RETIRED,                                                           \
      .retired = "not in a template: each inventory entry names the source and target "        \
                 "agents and the databases (fleets[].inventory[]: source, target, databases); "  \
                 "a migration's name is the entry's name_prefix and the database's" }
static const cfg_field_t s_template[] = {
    S_NOT_IN_TEMPLATE("name"),
    S_NOT_IN_TEMPLATE("source"),
    S_NOT_IN_TEMPLATE("target"),
    { .key = "replication", .type = CFG_SECTION, .children = s_replication },
    { .key = "reverse_replication", .type = CFG_SECTION, .children = s_reverse_replication },
    { .key = "tables", .type = CFG_STRING_LIST, .offset = M(tables_raw), .min = 1, .max = 100000 },
    { .key = "options", .type = CFG_SECTION, .children = s_options },
    { .key = "cutover", .type = CFG_SECTION, .children = s_cutover },
    { .key = "roles", .type = CFG_SECTION, .children = s_roles },
    { .key = "import_profile", .type = CFG_SECTION, .children = s_import_profile,
      .item_check = s_import_check },
    CFG_END,
};

#define I(f) offsetof(plan_inventory_t, f)
static const cfg_field_t s_inv_replication[] = S_CONN_FIELDS(I(replication.peer), "target");
static const cfg_field_t s_inv_reverse_replication[] =
    S_CONN_FIELDS(I(reverse_replication.peer), "source");

static bool s_name_ok(const char *s);

/* An inventory entry as a whole: two hosts, and names its databases make
 * that are valid and distinct (so the error has the entry's line). */
static bool s_inventory_check(const void *item, const char **field, char *why, size_t whylen)
{
    const plan_inventory_t *inv = item;
    if (strcmp(inv->source, inv->target) == 0) {
        *field = "target";
        snprintf(why, whylen, "\"%s\" is also the source agent; source and target are different hosts",
                 inv->target);
        return false;
    }
    const char *prefix = inv->name_prefix ? inv->name_prefix : "";
    for (size_t d = 0; d < inv->databases.count; d++) {
        const char *db = inv->databases.items[d];
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, db);
        if (!s_name_ok(name)) {
            *field = "databases";
            snprintf(why, whylen,
                     "\"%s\" makes the migration name \"%s\": use 1 to 40 of a-z, 0-9 and _ in "
                     "name_prefix and database (it names slots and publications), or write this "
                     "migration out under migrations",
                     db, name);
            return false;
        }
        for (size_t e = 0; e < d; e++) {
            if (strcmp(inv->databases.items[e], db) == 0) {
                *field = "databases";
                snprintf(why, whylen, "\"%s\" is named twice (databases[%zu] and [%zu])", db, e, d);
                return false;
            }
        }
    }
    return true;
}

static const cfg_field_t s_inventory[] = {
    { .key = "source", .type = CFG_STRING, .offset = I(source), .required = true },
    { .key = "target", .type = CFG_STRING, .offset = I(target), .required = true },
    { .key = "databases", .type = CFG_STRING_LIST, .offset = I(databases), .required = true,
      .min = 1, .max = PLAN_MIGRATIONS_MAX },
    { .key = "name_prefix", .type = CFG_STRING, .offset = I(name_prefix) },
    { .key = "replication", .type = CFG_SECTION, .children = s_inv_replication },
    { .key = "reverse_replication", .type = CFG_SECTION, .children = s_inv_reverse_replication },
    { .key = "proxies", .type = CFG_LIST, .offset = I(proxies), .min = 1, .max = 100,
      .children = s_proxy, .item_size = sizeof(plan_proxy_t), .item_defaults = &s_proxy_defaults },
    CFG_END,
};

static const cfg_field_t s_fleet[] = {
    { .key = "template", .type = CFG_SECTION, .children = s_template },
    { .key = "inventory", .type = CFG_LIST, .offset = offsetof(plan_fleet_t, inventory),
      .required = true, .min = 1, .max = PLAN_MIGRATIONS_MAX, .children = s_inventory,
      .item_size = sizeof(plan_inventory_t), .item_check = s_inventory_check },
    CFG_END,
};

static const char *const s_go[] = { "auto", "operator", NULL };

#define W(f) offsetof(plan_t, waves.f)
static const cfg_field_t s_waves[] = {
    { .key = "canary", .type = CFG_INT, .offset = W(canary), .min = 1, .max = PLAN_MIGRATIONS_MAX },
    { .key = "size", .type = CFG_INT, .offset = W(size), .required = true, .min = 1,
      .max = PLAN_MIGRATIONS_MAX },
    { .key = "go", .type = CFG_ENUM, .offset = W(go), .enum_values = s_go },
    { .key = "error_budget", .type = CFG_INT, .offset = W(error_budget), .min = 0,
      .max = PLAN_MIGRATIONS_MAX },
    CFG_END,
};

/* method: physical moves the whole server as a standby: no table list, no
 * import profile (nothing is imported). engine: mariadb has neither the
 * physical method nor an import profile (PostgreSQL settings) yet, copies
 * every table, and keeps the database's name. */
static bool s_physical_check(const void *item, const char **field, char *why, size_t whylen)
{
    const plan_migration_t *m = item;
    plan_setting_t settings[PLAN_IMPORT_SETTINGS_MAX];
    const char *problem = NULL;
    if (m->engine == PLAN_ENGINE_MARIADB && m->method == PLAN_METHOD_PHYSICAL) {
        *field = "method";
        problem = "engine: mariadb moves one database (method: logical); the whole server's "
                  "hot backup (mariabackup) is not a method of this version";
    } else if (m->engine == PLAN_ENGINE_MARIADB && plan_import_settings(m, settings) > 0) {
        *field = "import_profile";
        problem = "an import profile sets PostgreSQL settings: remove it for engine: mariadb";
    } else if (m->engine == PLAN_ENGINE_MARIADB && m->tables_raw.count) {
        *field = "tables";
        problem = "engine: mariadb copies and replicates every table of the database in this "
                  "version: remove the list";
    } else if (m->engine == PLAN_ENGINE_MARIADB &&
               strcmp(m->source.database, m->target.database) != 0) {
        *field = "target";
        problem = "engine: mariadb: the target database must have the source database's name in "
                  "this version (its replication filter names one database on both sides)";
    } else if (m->method != PLAN_METHOD_PHYSICAL) {
        return true;
    } else if (m->tables_raw.count) {
        *field = "tables";
        problem = "method: physical copies the whole server (every database and table): remove "
                  "the list, or use method: logical";
    } else if (plan_import_settings(m, settings) > 0) {
        *field = "import_profile";
        problem = "method: physical imports nothing (pg_basebackup copies the files): remove the "
                  "import profile";
    }
    if (!problem)
        return true;
    snprintf(why, whylen, "%s", problem);
    return false;
}

static const cfg_field_t s_plan[] = {
    { .key = "migrations", .type = CFG_LIST, .offset = offsetof(plan_t, migrations), .min = 1,
      .max = PLAN_MIGRATIONS_MAX, .children = s_migration, .item_size = sizeof(plan_migration_t),
      .item_check = s_physical_check },
    { .key = "fleets", .type = CFG_LIST, .offset = offsetof(plan_t, fleets), .min = 1, .max = 100,
      .children = s_fleet, .item_size = sizeof(plan_fleet_t) },
    { .key = "waves", .type = CFG_SECTION, .children = s_waves },
    CFG_END,
};

unsigned plan_wave(const plan_t *plan, size_t i)
{
    const plan_waves_t *w = &plan->waves;
    if (w->size == 0)
        return 0;
    size_t canary = (size_t)(w->canary ? w->canary : 1);
    return i < canary ? 1 : 2 + (unsigned)((i - canary) / (size_t)w->size);
}

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

bool plan_origin(const plan_t *plan, size_t i, plan_origin_t *out)
{
    if (i < plan->n_written || i >= plan_count(plan) || !plan->origins)
        return false;
    *out = plan->origins[i - plan->n_written];
    return true;
}

bool plan_origin_path(const plan_t *plan, size_t i, char *buf, size_t len)
{
    plan_origin_t o;
    if (!plan_origin(plan, i, &o))
        return false;
    snprintf(buf, len, "fleets[%zu].inventory[%zu].databases[%zu]", o.fleet, o.item, o.database);
    return true;
}

/* Where migration i is in the file, for errors: "migrations[1].FIELD", or
 * for an expansion the inventory's database that made it, then FIELD.
 * Writes into buf (len bytes) and returns it. */
static const char *s_where(const plan_t *plan, size_t i, const char *field, char *buf, size_t len)
{
    char path[96];
    if (plan_origin_path(plan, i, path, sizeof path))
        snprintf(buf, len, "%s (migration \"%s\"): %s", path, plan_at(plan, i)->name, field);
    else
        snprintf(buf, len, "migrations[%zu].%s", i, field);
    return buf;
}

/* The same, naming the migration only: "migrations[1]" or the database. */
static const char *s_which(const plan_t *plan, size_t i, char *buf, size_t len)
{
    if (!plan_origin_path(plan, i, buf, len))
        snprintf(buf, len, "migrations[%zu]", i);
    return buf;
}

static char *s_dup(const char *s) { return s ? xstrdup(s) : NULL; }

/* Fills *to (empty) with a copy of from's strings. */
static void s_strings_copy(cfg_strings_t *to, const cfg_strings_t *from)
{
    to->items = from->count ? xcalloc(from->count, sizeof *to->items) : NULL;
    for (size_t i = 0; i < from->count; i++)
        to->items[i] = xstrdup(from->items[i]);
    to->count = from->count;
}

/* s with every PLAN_DATABASE_MARK replaced by db; malloc'd. */
static char *s_subst_database(const char *s, const char *db)
{
    size_t mark = strlen(PLAN_DATABASE_MARK), n = 0;
    for (const char *at = strstr(s, PLAN_DATABASE_MARK); at; at = strstr(at + mark, PLAN_DATABASE_MARK))
        n++;
    char *out = xmalloc(strlen(s) + n * strlen(db) + 1), *w = out;
    for (const char *r = s;;) {
        const char *at = strstr(r, PLAN_DATABASE_MARK);
        size_t len = at ? (size_t)(at - r) : strlen(r);
        memcpy(w, r, len);
        w += len;
        if (!at)
            break;
        memcpy(w, db, strlen(db));
        w += strlen(db);
        r = at + mark;
    }
    *w = '\0';
    return out;
}

/* Fills *to (empty) with a copy of from's plan_proxy_t items, each proxy
 * name's PLAN_DATABASE_MARK replaced by db. */
static void s_proxies_copy(cfg_list_t *to, const cfg_list_t *from, const char *db)
{
    plan_proxy_t *items = from->count ? xcalloc(from->count, sizeof *items) : NULL;
    for (size_t i = 0; i < from->count; i++) {
        const plan_proxy_t *p = (const plan_proxy_t *)from->items + i;
        items[i] = (plan_proxy_t){ .agent = xstrdup(p->agent),
                                   .proxy = s_subst_database(p->proxy, db), .hold = p->hold };
    }
    to->items = items;
    to->count = from->count;
}

/* Writes into *m the migration that inventory entry inv makes of database
 * db with template t: t's scalars, and copies of everything m owns (the
 * same as a migration loaded from the file, so cfg_free frees both). */
static void s_expand_one(const plan_migration_t *t, const plan_inventory_t *inv, const char *db,
                         plan_migration_t *m)
{
    *m = *t; /* the scalars; every pointer is replaced below */
    m->name = xasprintf("%s%s", inv->name_prefix ? inv->name_prefix : "", db);
    m->source = (plan_side_t){ .agent = xstrdup(inv->source), .database = xstrdup(db) };
    m->target = (plan_side_t){ .agent = xstrdup(inv->target), .database = xstrdup(db) };
    m->replication.peer = s_dup(inv->replication.peer ? inv->replication.peer : t->replication.peer);
    m->reverse_replication.peer = s_dup(inv->reverse_replication.peer ? inv->reverse_replication.peer
                                                                      : t->reverse_replication.peer);
    m->options.target_jurisdiction = s_dup(t->options.target_jurisdiction);
    s_strings_copy(&m->tables_raw, &t->tables_raw);
    m->tables = NULL;
    m->n_tables = 0;
    s_strings_copy(&m->cutover.app_roles, &t->cutover.app_roles);
    s_proxies_copy(&m->cutover.proxies, inv->proxies.count ? &inv->proxies : &t->cutover.proxies,
                   db);
}

/* Appends every fleet's migrations to plan->migrations, in the file's
 * order, recording where each came from. False with err (the plan keeps
 * what it holds; plan_free frees it) when there are too many or none. */
static bool s_expand(const char *name, plan_t *plan, char *err, size_t errlen)
{
    size_t written = plan->migrations.count, total = written;
    for (size_t f = 0; f < plan->fleets.count; f++) {
        const plan_fleet_t *fl = (const plan_fleet_t *)plan->fleets.items + f;
        for (size_t k = 0; k < fl->inventory.count; k++)
            total += ((const plan_inventory_t *)fl->inventory.items)[k].databases.count;
    }
    plan->n_written = written;
    if (total == 0) {
        snprintf(err, errlen, "%s: migrations: missing: a plan has a list of migrations, or of "
                 "fleets (a template and an inventory), or both",
                 name);
        return false;
    }
    if (total > PLAN_MIGRATIONS_MAX) {
        snprintf(err, errlen, "%s: fleets: the plan makes %zu migrations, more than %d: split it",
                 name, total, PLAN_MIGRATIONS_MAX);
        return false;
    }
    if (total == written)
        return true;
    plan_migration_t *items = xrealloc(plan->migrations.items, total * sizeof *items);
    memset(items + written, 0, (total - written) * sizeof *items);
    plan->migrations.items = items;
    plan->origins = xcalloc(total - written, sizeof *plan->origins);
    for (size_t f = 0; f < plan->fleets.count; f++) {
        const plan_fleet_t *fl = (const plan_fleet_t *)plan->fleets.items + f;
        for (size_t k = 0; k < fl->inventory.count; k++) {
            const plan_inventory_t *inv = (const plan_inventory_t *)fl->inventory.items + k;
            for (size_t d = 0; d < inv->databases.count; d++) {
                size_t n = plan->migrations.count;
                s_expand_one(&fl->tmpl, inv, inv->databases.items[d], &items[n]);
                plan->origins[n - written] = (plan_origin_t){ .fleet = f, .item = k, .database = d };
                plan->migrations.count = n + 1;
            }
        }
    }
    return true;
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
    char w[192], w2[128];
    for (size_t i = 0; i < plan_count(plan); i++) {
        plan_migration_t *m = plan_at(plan, i);
        if (!s_name_ok(m->name)) {
            snprintf(err, errlen,
                     "%s: %s: \"%s\": use 1 to 40 of a-z, 0-9 and _ (it names slots and "
                     "publications)",
                     name, s_where(plan, i, "name", w, sizeof w), m->name);
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(plan_at(plan, k)->name, m->name) == 0) {
                snprintf(err, errlen, "%s: %s: \"%s\" is already %s", name,
                         s_where(plan, i, "name", w, sizeof w), m->name,
                         s_which(plan, k, w2, sizeof w2));
                return false;
            }
        }
        if (strcmp(m->source.agent, m->target.agent) == 0) {
            snprintf(err, errlen,
                     "%s: %s: \"%s\" is also the source agent; source and target are different "
                     "hosts",
                     name, s_where(plan, i, "target.agent", w, sizeof w), m->target.agent);
            return false;
        }
        if (!m->replication.peer) {
            snprintf(err, errlen,
                     "%s: %s: missing: how the target reaches the source, {peer: NAME}, in the "
                     "fleet's template or in the inventory entry",
                     name, s_where(plan, i, "replication", w, sizeof w));
            return false;
        }
        m->tables = m->tables_raw.count ? xcalloc(m->tables_raw.count, sizeof *m->tables) : NULL;
        for (size_t t = 0; t < m->tables_raw.count; t++) {
            if (!s_split_table(m->tables_raw.items[t], &m->tables[m->n_tables])) {
                char field[32];
                snprintf(field, sizeof field, "tables[%zu]", t);
                snprintf(err, errlen, "%s: %s: \"%s\": expected schema.table", name,
                         s_where(plan, i, field, w, sizeof w), m->tables_raw.items[t]);
                return false;
            }
            m->n_tables++;
        }
        if (m->cutover.proxies.count && !m->cutover.reverse_off && !m->reverse_replication.peer) {
            snprintf(err, errlen,
                     "%s: %s: missing: after the cutover the "
                     "source follows the target (cutover.reverse is on by default), so the plan "
                     "names the peer of the source agent that is the target ({peer: NAME}, as "
                     "in replication); or set cutover.reverse: off (then no rollback without "
                     "losing the target's writes)",
                     name, s_where(plan, i, "reverse_replication", w, sizeof w));
            return false;
        }
        if (m->options.disk_margin_percent == 0)
            m->options.disk_margin_percent = 120;
        if (m->options.max_lag_ms == 0)
            m->options.max_lag_ms = 1000;
        if (m->options.parallelism == 0)
            m->options.parallelism = 2;
        if (m->options.link_mbit == 0)
            m->options.link_mbit = 1000;
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
    if (!s_expand(name, plan, err, errlen) || !s_check(name, plan, err, errlen)) {
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
    free(plan->origins);
    plan->origins = NULL;
    plan->n_written = 0;
}

/* bytes as the server writes memory: in MB or kB when they divide. */
static void s_mem(int64_t bytes, char *out, size_t len)
{
    if (bytes % (1 << 20) == 0)
        snprintf(out, len, "%lldMB", (long long)(bytes >> 20));
    else if (bytes % 1024 == 0)
        snprintf(out, len, "%lldkB", (long long)(bytes >> 10));
    else
        snprintf(out, len, "%lldB", (long long)bytes);
}

size_t plan_import_settings(const plan_migration_t *m, plan_setting_t out[PLAN_IMPORT_SETTINGS_MAX])
{
    size_t n = 0;
    if (m->import_profile.synchronous_commit_off) {
        out[n].name = "synchronous_commit";
        snprintf(out[n++].value, sizeof out->value, "off");
    }
    if (m->import_profile.max_wal_size_bytes) {
        out[n].name = "max_wal_size";
        s_mem(m->import_profile.max_wal_size_bytes, out[n++].value, sizeof out->value);
    }
    if (m->import_profile.checkpoint_timeout_ms) {
        out[n].name = "checkpoint_timeout";
        int64_t ms = m->import_profile.checkpoint_timeout_ms;
        if (ms % 1000 == 0)
            snprintf(out[n++].value, sizeof out->value, "%llds", (long long)(ms / 1000));
        else
            snprintf(out[n++].value, sizeof out->value, "%lldms", (long long)ms);
    }
    if (m->import_profile.maintenance_work_mem_bytes) {
        out[n].name = "maintenance_work_mem";
        s_mem(m->import_profile.maintenance_work_mem_bytes, out[n++].value, sizeof out->value);
    }
    if (m->import_profile.max_parallel_maintenance_workers) {
        out[n].name = "max_parallel_maintenance_workers";
        snprintf(out[n++].value, sizeof out->value, "%lld",
                 (long long)m->import_profile.max_parallel_maintenance_workers);
    }
    if (m->import_profile.full_page_writes_off) {
        out[n].name = "full_page_writes";
        snprintf(out[n++].value, sizeof out->value, "off");
    }
    return n;
}

static void s_import_json(cJSON *o, const plan_migration_t *m)
{
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    size_t n = plan_import_settings(m, set);
    if (!n)
        return;
    /* The keys are the settings' names, and each value is one the plan's
     * schema reads back (sizes and durations with their units). */
    cJSON *ip = cJSON_AddObjectToObject(o, "import_profile");
    for (size_t i = 0; i < n; i++)
        cJSON_AddStringToObject(ip, set[i].name, set[i].value);
    if (m->import_profile.accept_torn_page_risk)
        cJSON_AddBoolToObject(ip, "accept_torn_page_risk", true);
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
    cJSON_AddNumberToObject(op, "link_mbit", (double)m->options.link_mbit);
    if (m->options.basebackup_max_rate) {
        snprintf(buf, sizeof buf, "%lld", (long long)m->options.basebackup_max_rate);
        cJSON_AddStringToObject(op, "basebackup_max_rate", buf);
    }
    if (m->options.verify_batch_rows)
        cJSON_AddNumberToObject(op, "verify_batch_rows", (double)m->options.verify_batch_rows);
    if (m->options.verify_slot_wait_ms) {
        snprintf(buf, sizeof buf, "%lldms", (long long)m->options.verify_slot_wait_ms);
        cJSON_AddStringToObject(op, "verify_slot_wait", buf);
    }
    if (m->options.target_jurisdiction)
        cJSON_AddStringToObject(op, "target_jurisdiction", m->options.target_jurisdiction);
    cJSON_AddStringToObject(o, "method", s_methods[m->method]);
    cJSON_AddStringToObject(o, "engine", s_engines[m->engine]);
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
    s_import_json(o, m);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}
