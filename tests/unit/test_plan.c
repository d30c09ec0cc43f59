/*
 * test_plan: the migration plan loader (coordinator/plan.c): a full plan,
 * defaults, each refusal with file, line or index and field, and the JSON
 * the journal keeps read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fsutil.h"
#include "plan.h"
#include "srcpath.h"
#include "xalloc.h"

static const char s_good[] =
    "migrations:\n"
    "  - name: shop\n"
    "    source: {agent: blue, database: shop}\n"
    "    target: {agent: green, database: shop_new}\n"
    "    replication:\n"
    "      peer: blue-db\n"
    "    tables: [public.orders, items, \"sales.x.y\"]\n"
    "    options: {disk_margin_percent: 150, max_lag: 500ms, slot_wal_limit: 2GiB}\n"
    "  - name: crm\n"
    "    source: {agent: blue2, database: crm}\n"
    "    target: {agent: green2, database: crm}\n"
    "    replication: {peer: db1}\n";

static void test_good_plan(void **state)
{
    (void)state;
    plan_t p;
    char err[512] = "";
    assert_true(plan_load_string("plan.yaml", s_good, &p, err, sizeof err));
    assert_int_equal(plan_count(&p), 2);
    plan_migration_t *m = plan_find(&p, "shop");
    assert_non_null(m);
    assert_string_equal(m->source.agent, "blue");
    assert_string_equal(m->target.database, "shop_new");
    assert_string_equal(m->replication.peer, "blue-db");
    assert_int_equal(m->n_tables, 3);
    assert_string_equal(m->tables[0].schema, "public");
    assert_string_equal(m->tables[0].name, "orders");
    assert_string_equal(m->tables[1].schema, "public");
    assert_string_equal(m->tables[1].name, "items");
    assert_string_equal(m->tables[2].schema, "sales");
    assert_string_equal(m->tables[2].name, "x.y");
    assert_int_equal(m->options.disk_margin_percent, 150);
    assert_int_equal(m->options.max_lag_ms, 500);
    assert_int_equal(m->options.slot_wal_limit_bytes, (int64_t)2 << 30);
    assert_int_equal(m->options.parallelism, 2);
    m = plan_at(&p, 1);
    assert_string_equal(m->name, "crm");
    assert_string_equal(m->replication.peer, "db1");
    assert_int_equal(m->n_tables, 0);
    assert_int_equal(m->options.disk_margin_percent, 120);
    assert_null(plan_find(&p, "nope"));
    plan_free(&p);
}

static void s_refused(const char *text, const char *want)
{
    plan_t p;
    char err[512] = "";
    if (plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("accepted: %s", text);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_refusals(void **state)
{
    (void)state;
    s_refused("migrations: []\n", "plan.yaml:1: migrations:");
    s_refused("migrations:\n  - name: shop\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, databse: d}\n    replication: {peer: h}\n",
              "plan.yaml:4: migrations[0].target.databse: unknown key");
    s_refused("migrations:\n  - name: shop\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n",
              "migrations[0].replication: missing required field");
    s_refused("migrations:\n  - name: Shop-1\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {peer: h}\n",
              "migrations[0].name: \"Shop-1\"");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: a, database: d}\n    replication: {peer: h}\n",
              "migrations[0].target.agent: \"a\" is also the source agent");
    s_refused("migrations:\n"
              "  - {name: s, source: {agent: a, database: d}, target: {agent: b, database: d},"
              " replication: {peer: h}}\n"
              "  - {name: s, source: {agent: a, database: d}, target: {agent: b, database: d},"
              " replication: {peer: h}}\n",
              "migrations[1].name: \"s\" is already migrations[0]");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {peer: h}\n"
              "    tables: [public.]\n",
              "migrations[0].tables[0]: \"public.\": expected schema.table");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {}\n",
              "plan.yaml:5: migrations[0].replication.peer: missing required field");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {peer: h}\n"
              "    options: {disk_margin_percent: 50}\n",
              "plan.yaml:6: migrations[0].options.disk_margin_percent:");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {peer: h}\n"
              "    options: {target_jurisdiction: Norway!}\n",
              "plan.yaml:6: migrations[0].options.target_jurisdiction: expected a label");
}

/* A cutover needs to know how blue reaches green afterwards (reverse
 * replication, on by default), or to be told it is off. */
static void test_reverse_replication(void **state)
{
    (void)state;
    static const char head[] = "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
                               "    target: {agent: b, database: e}\n"
                               "    replication: {peer: h}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s    cutover: {app_roles: [app], proxies: [{agent: p, proxy: x}]}\n",
             head);
    s_refused(text, "migrations[0].reverse_replication: missing");
    snprintf(text, sizeof text, "%s    cutover: {app_roles: [app], proxies: [{agent: p, proxy: x}],"
             " reverse: sideways}\n", head);
    s_refused(text, "migrations[0].cutover.reverse");

    plan_t p, q;
    char err[512] = "";
    snprintf(text, sizeof text, "%s    cutover: {app_roles: [app], proxies: [{agent: p, proxy: x}],"
             " reverse: off}\n", head);
    assert_true(plan_load_string("plan.yaml", text, &p, err, sizeof err));
    assert_int_equal(plan_at(&p, 0)->cutover.reverse_off, 1);
    assert_null(plan_at(&p, 0)->reverse_replication.peer);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    reverse_replication: {peer: green-db}\n"
             "    cutover: {app_roles: [app], proxies: [{agent: p, proxy: x}]}\n", head);
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    const plan_migration_t *m = plan_at(&p, 0);
    assert_int_equal(m->cutover.reverse_off, 0);
    assert_string_equal(m->reverse_replication.peer, "green-db");
    char *json = plan_migration_to_json(m);
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    assert_string_equal(plan_at(&q, 0)->reverse_replication.peer, "green-db");
    free(json);
    plan_free(&q);
    plan_free(&p);
}

/* Addresses, users and passfiles moved from plans into the agents' peers:
 * each old key is refused with file, line and field and says where it went
 * (the target's config for replication, the source's for the reverse). */
static void test_connection_keys_moved(void **state)
{
    (void)state;
    static const char head[] = "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
                               "    target: {agent: b, database: e}\n";
    static const char *const keys[] = { "host: 10.0.0.5", "port: 5432", "user: godwit_repl",
                                        "passfile: /etc/godwit/pgpass", "sslmode: require" };
    char text[1024], want[256];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(keys[i], ":"), keys[i]);
        snprintf(text, sizeof text, "%s    replication:\n      peer: blue\n      %s\n", head,
                 keys[i]);
        snprintf(want, sizeof want, "plan.yaml:7: migrations[0].replication.%s: no longer in "
                 "plans: how one side reaches the other is the target agent's config now", key);
        s_refused(text, want);
        s_refused(text, "move it there and write {peer: NAME} here");
        snprintf(text, sizeof text, "%s    replication: {peer: blue}\n"
                 "    reverse_replication: {%s}\n", head, keys[i]);
        snprintf(want, sizeof want, "plan.yaml:6: migrations[0].reverse_replication.%s: no "
                 "longer in plans: how one side reaches the other is the source agent's config",
                 key);
        s_refused(text, want);
    }
    /* The old form alone: the first old key is named, not "peer missing". */
    snprintf(text, sizeof text, "%s    replication: {host: h, user: u}\n", head);
    s_refused(text, "plan.yaml:5: migrations[0].replication.host: no longer in plans");
    /* A journal written before the move cannot be read back silently. */
    s_refused("{\"migrations\":[{\"name\":\"s\",\"source\":{\"agent\":\"a\",\"database\":"
              "\"d\"},\"target\":{\"agent\":\"b\",\"database\":\"d\"},\"replication\":{"
              "\"host\":\"h\",\"port\":5432,\"user\":\"u\"}}]}",
              "migrations[0].replication.host: no longer in plans");
}

/* The journal keeps a migration as JSON and reads it back as a plan. */
static void test_json_round_trip(void **state)
{
    (void)state;
    plan_t p, q;
    char err[512] = "";
    assert_true(plan_load_string("plan.yaml", s_good, &p, err, sizeof err));
    for (size_t i = 0; i < plan_count(&p); i++) {
        char *json = plan_migration_to_json(plan_at(&p, i));
        if (!plan_load_string("journal", json, &q, err, sizeof err))
            fail_msg("%s: %s", err, json);
        char *again = plan_migration_to_json(plan_at(&q, 0));
        assert_string_equal(json, again);
        assert_int_equal(plan_at(&q, 0)->n_tables, plan_at(&p, i)->n_tables);
        free(json);
        free(again);
        plan_free(&q);
    }
    plan_free(&p);
}

/* cutover.proxies[].hold: true unless the entry says false; refused if not
 * a boolean; kept through the journal's JSON; a journal written before
 * hold existed reads back with every proxy holding. */
static void test_proxy_hold(void **state)
{
    (void)state;
    static const char head[] =
        "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
        "    target: {agent: b, database: d}\n    replication: {peer: h}\n"
        "    cutover:\n      reverse: off\n      app_roles: [app]\n      proxies:\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", head,
             "        - {agent: px1, proxy: pgbouncer}\n"
             "        - {agent: px2, proxy: edge, hold: false}\n"
             "        - {agent: px3, proxy: lb, hold: true}\n");
    plan_t p, q;
    char err[512] = "";
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    const plan_migration_t *m = plan_at(&p, 0);
    assert_int_equal(m->cutover.proxies.count, 3);
    const plan_proxy_t *px = m->cutover.proxies.items;
    assert_string_equal(px[0].proxy, "pgbouncer");
    assert_true(px[0].hold);
    assert_string_equal(px[1].agent, "px2");
    assert_false(px[1].hold);
    assert_true(px[2].hold);

    char *json = plan_migration_to_json(m);
    assert_non_null(strstr(json, "{\"agent\":\"px2\",\"proxy\":\"edge\",\"hold\":false}"));
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    char *again = plan_migration_to_json(plan_at(&q, 0));
    assert_string_equal(json, again);
    const plan_proxy_t *qx = plan_at(&q, 0)->cutover.proxies.items;
    assert_true(qx[0].hold);
    assert_false(qx[1].hold);
    assert_true(qx[2].hold);
    free(json);
    free(again);
    plan_free(&q);
    plan_free(&p);

    /* Without the key in the journal's JSON (older journals). */
    const char *old = "{\"migrations\":[{\"name\":\"s\",\"source\":{\"agent\":\"a\","
                      "\"database\":\"d\"},\"target\":{\"agent\":\"b\",\"database\":\"d\"},"
                      "\"replication\":{\"peer\":\"h\"},\"cutover\":{"
                      "\"reverse\":\"off\",\"app_roles\":[\"app\"],\"proxies\":[{\"agent\":\"px\","
                      "\"proxy\":\"edge\"}]}}]}";
    if (!plan_load_string("journal", old, &q, err, sizeof err))
        fail_msg("%s", err);
    assert_true(((const plan_proxy_t *)plan_at(&q, 0)->cutover.proxies.items)[0].hold);
    plan_free(&q);

    snprintf(text, sizeof text, "%s%s", head, "        - {agent: p, proxy: edge, hold: maybe}\n");
    s_refused(text, "migrations[0].cutover.proxies[0].hold: expected true or false");
}

/* roles.passwords: off unless the plan says so; a boolean or a refusal
 * naming the field; kept through the journal's JSON. */
static void test_roles_passwords(void **state)
{
    (void)state;
    static const char head[] = "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
                               "    target: {agent: b, database: e}\n"
                               "    replication: {peer: h}\n";
    char text[1024];
    plan_t p, q;
    char err[512] = "";
    if (!plan_load_string("plan.yaml", head, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_false(plan_at(&p, 0)->roles.passwords);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    roles: {passwords: true}\n", head);
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_true(plan_at(&p, 0)->roles.passwords);
    char *json = plan_migration_to_json(plan_at(&p, 0));
    assert_non_null(strstr(json, "\"roles\":{\"passwords\":true}"));
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    assert_true(plan_at(&q, 0)->roles.passwords);
    free(json);
    plan_free(&q);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    roles: {passwords: sometimes}\n", head);
    s_refused(text, "plan.yaml:6: migrations[0].roles.passwords: expected true or false");
    snprintf(text, sizeof text, "%s    roles: {password: true}\n", head);
    s_refused(text, "migrations[0].roles.password: unknown key");
}

/* A fleet: one template, an inventory of hosts and their databases, each
 * database one migration, after the migrations written out, in the file's
 * order; an entry's overrides win over the template; each expansion is a
 * migration like any other (journal JSON read back the same). */
static const char s_fleet[] =
    "migrations:\n"
    "  - {name: shop, source: {agent: b0, database: shop}, target: {agent: g0, database: shop},"
    " replication: {peer: b0}}\n"
    "fleets:\n"
    "  - template:\n"
    "      replication: {peer: blue}\n"
    "      reverse_replication: {peer: green}\n"
    "      options: {parallelism: 4, max_lag: 2s, target_jurisdiction: eu}\n"
    "      cutover:\n"
    "        app_roles: [app, reports]\n"
    "        proxies: [{agent: px, proxy: \"pgb_{database}\"}, {agent: px, proxy: edge}]\n"
    "        max_write_pause: 1s\n"
    "      tables: [public.a, b]\n"
    "      import_profile: {max_wal_size: 8GB, synchronous_commit: off}\n"
    "    inventory:\n"
    "      - source: b1\n"
    "        target: g1\n"
    "        databases: [crm, billing]\n"
    "      - source: b2\n"
    "        target: g2\n"
    "        name_prefix: eu_\n"
    "        replication: {peer: blue2}\n"
    "        proxies: [{agent: px2, proxy: edge, hold: false}]\n"
    "        databases: [crm]\n";

/* A fleet of hosts source hosts with dbs databases each, one template
 * (caller frees). */
static char *s_fleet_text(int hosts, int dbs)
{
    char *big = xasprintf("fleets:\n  - template: {replication: {peer: blue}}\n    inventory:\n");
    for (int h = 0; h < hosts; h++) {
        char *more = xasprintf("%s      - {source: b%d, target: g%d, name_prefix: h%d_, "
                               "databases: [", big, h, h, h);
        free(big);
        big = more;
        for (int d = 0; d < dbs; d++) {
            more = xasprintf("%s%sdb%d", big, d ? ", " : "", d);
            free(big);
            big = more;
        }
        more = xasprintf("%s]}\n", big);
        free(big);
        big = more;
    }
    return big;
}

static void test_fleet_expands(void **state)
{
    (void)state;
    plan_t p, q;
    char err[512] = "";
    if (!plan_load_string("plan.yaml", s_fleet, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(plan_count(&p), 4);
    plan_origin_t o;
    assert_false(plan_origin(&p, 0, &o));
    assert_string_equal(plan_at(&p, 0)->name, "shop");

    const plan_migration_t *m = plan_at(&p, 1);
    assert_true(plan_origin(&p, 1, &o));
    assert_int_equal(o.fleet, 0);
    assert_int_equal(o.item, 0);
    assert_int_equal(o.database, 0);
    assert_string_equal(m->name, "crm");
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    assert_int_equal(plan_import_settings(m, set), 2); /* the template's profile */
    assert_string_equal(set[1].value, "8192MB");
    assert_int_equal(plan_import_settings(plan_at(&p, 0), set), 0);
    assert_string_equal(m->source.agent, "b1");
    assert_string_equal(m->source.database, "crm");
    assert_string_equal(m->target.agent, "g1");
    assert_string_equal(m->target.database, "crm");
    assert_string_equal(m->replication.peer, "blue");
    assert_string_equal(m->reverse_replication.peer, "green");
    assert_int_equal(m->options.parallelism, 4);
    assert_int_equal(m->options.max_lag_ms, 2000);
    assert_string_equal(m->options.target_jurisdiction, "eu");
    assert_int_equal(m->options.disk_margin_percent, 120); /* the defaults still apply */
    assert_int_equal(m->cutover.max_write_pause_ms, 1000);
    assert_int_equal(m->cutover.drain_timeout_ms, 500);
    assert_int_equal(m->cutover.app_roles.count, 2);
    assert_string_equal(m->cutover.app_roles.items[1], "reports");
    assert_int_equal(m->cutover.proxies.count, 2);
    assert_string_equal(((const plan_proxy_t *)m->cutover.proxies.items)[0].agent, "px");
    assert_string_equal(((const plan_proxy_t *)m->cutover.proxies.items)[0].proxy, "pgb_crm");
    assert_string_equal(((const plan_proxy_t *)m->cutover.proxies.items)[1].proxy, "edge");
    assert_string_equal(((const plan_proxy_t *)plan_at(&p, 2)->cutover.proxies.items)[0].proxy,
                        "pgb_billing");
    assert_int_equal(m->n_tables, 2);
    assert_string_equal(m->tables[1].schema, "public");
    assert_string_equal(m->tables[1].name, "b");

    assert_string_equal(plan_at(&p, 2)->name, "billing");
    assert_true(plan_origin(&p, 2, &o));
    assert_int_equal(o.database, 1);

    m = plan_at(&p, 3);
    assert_true(plan_origin(&p, 3, &o));
    assert_int_equal(o.item, 1);
    assert_string_equal(m->name, "eu_crm");
    assert_string_equal(m->source.database, "crm");
    assert_string_equal(m->replication.peer, "blue2");
    assert_string_equal(m->reverse_replication.peer, "green");
    const plan_proxy_t *px = m->cutover.proxies.items;
    assert_int_equal(m->cutover.proxies.count, 1);
    assert_string_equal(px[0].proxy, "edge");
    assert_false(px[0].hold);
    assert_ptr_equal(plan_find(&p, "eu_crm"), m);

    char *json = plan_migration_to_json(m);
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    char *again = plan_migration_to_json(plan_at(&q, 0));
    assert_string_equal(json, again);
    assert_string_equal(plan_at(&q, 0)->options.target_jurisdiction, "eu");
    assert_false(plan_origin(&q, 0, &o));
    free(json);
    free(again);
    plan_free(&q);
    plan_free(&p);

    /* A plan of fleets alone; 200 databases on 4 source hosts. */
    char *big = s_fleet_text(4, 50);
    if (!plan_load_string("plan.yaml", big, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(plan_count(&p), 200);
    assert_string_equal(plan_at(&p, 199)->name, "h3_db49");
    assert_string_equal(plan_at(&p, 199)->source.agent, "b3");
    plan_free(&p);
    free(big);
}

static void test_fleet_refusals(void **state)
{
    (void)state;
    static const char head[] = "fleets:\n  - template: {replication: {peer: blue}}\n"
                               "    inventory:\n";
    char text[1024];
    /* The inventory names the sides, not the template. */
    s_refused("fleets:\n  - template:\n      name: x\n    inventory:\n"
              "      - {source: a, target: b, databases: [d]}\n",
              "plan.yaml:3: fleets[0].template.name: not in a template: each inventory entry");
    s_refused("fleets:\n  - template:\n      source: {agent: a, database: d}\n    inventory:\n"
              "      - {source: a, target: b, databases: [d]}\n",
              "plan.yaml:3: fleets[0].template.source: not in a template");
    /* One entry, with its line. */
    snprintf(text, sizeof text, "%s      - {source: a, target: b, databases: [d]}\n"
             "      - {source: a, target: a, databases: [d]}\n", head);
    s_refused(text, "plan.yaml:5: fleets[0].inventory[1].target: \"a\" is also the source agent");
    snprintf(text, sizeof text, "%s      - {source: a, target: b, databases: [shop, Shop-2]}\n",
             head);
    s_refused(text, "plan.yaml:4: fleets[0].inventory[0].databases: \"Shop-2\" makes the "
              "migration name \"Shop-2\"");
    snprintf(text, sizeof text, "%s      - {source: a, target: b, name_prefix: x-, "
             "databases: [shop]}\n", head);
    s_refused(text, "makes the migration name \"x-shop\"");
    snprintf(text, sizeof text, "%s      - {source: a, target: b, databases: [d, e, d]}\n", head);
    s_refused(text, "plan.yaml:4: fleets[0].inventory[0].databases: \"d\" is named twice");
    snprintf(text, sizeof text, "%s      - {source: a, target: b, databses: [d]}\n", head);
    s_refused(text, "plan.yaml:4: fleets[0].inventory[0].databses: unknown key");
    snprintf(text, sizeof text, "%s      - {source: a, target: b}\n", head);
    s_refused(text, "fleets[0].inventory[0].databases: missing required field");
    /* Names across entries and fleets are unique like any migration's. */
    snprintf(text, sizeof text, "%s      - {source: a, target: b, databases: [d]}\n"
             "      - {source: c, target: e, databases: [d]}\n", head);
    s_refused(text, "plan.yaml: fleets[0].inventory[1].databases[0] (migration \"d\"): name: "
              "\"d\" is already fleets[0].inventory[0].databases[0]");
    snprintf(text, sizeof text, "migrations:\n  - {name: d, source: {agent: a, database: d}, "
             "target: {agent: b, database: d}, replication: {peer: h}}\n"
             "%s      - {source: c, target: e, databases: [d]}\n", head);
    s_refused(text, "fleets[0].inventory[0].databases[0] (migration \"d\"): name: \"d\" is "
              "already migrations[0]");
    /* What neither the template nor the entry gives. */
    s_refused("fleets:\n  - inventory:\n      - {source: a, target: b, databases: [d]}\n",
              "plan.yaml: fleets[0].inventory[0].databases[0] (migration \"d\"): replication: "
              "missing");
    s_refused("fleets:\n  - template: {replication: {peer: h}, cutover: {app_roles: [app], "
              "proxies: [{agent: p, proxy: x}]}}\n"
              "    inventory:\n      - {source: a, target: b, databases: [d]}\n",
              "fleets[0].inventory[0].databases[0] (migration \"d\"): reverse_replication: "
              "missing");
    snprintf(text, sizeof text, "fleets:\n  - template: {replication: {peer: h}, tables: [x.]}\n"
             "    inventory:\n      - {source: a, target: b, databases: [d]}\n");
    s_refused(text, "(migration \"d\"): tables[0]: \"x.\": expected schema.table");
    s_refused("fleets: []\n", "plan.yaml:1: fleets:");
    s_refused("{}\n", "migrations: missing: a plan has a list of migrations, or of fleets");
    /* At most 1000 migrations in one plan, expanded. */
    char *big = s_fleet_text(3, 400);
    s_refused(big, "plan.yaml: fleets: the plan makes 1200 migrations, more than 1000");
    free(big);
}

/* Waves: the canary, then waves of size, in the plan's order (written out,
 * then expanded); the settings' defaults and refusals. */
static void test_waves(void **state)
{
    (void)state;
    char err[512];
    plan_t p;
    char *text = s_fleet_text(1, 10);
    char *waved = xasprintf("waves: {canary: 2, size: 3, go: operator, error_budget: 1}\n%s", text);
    assert_true(plan_load_string("plan.yaml", waved, &p, err, sizeof err));
    assert_int_equal(p.waves.go, PLAN_GO_OPERATOR);
    assert_int_equal(p.waves.error_budget, 1);
    static const unsigned want[10] = { 1, 1, 2, 2, 2, 3, 3, 3, 4, 4 };
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(plan_wave(&p, i), want[i]);
    plan_free(&p);
    free(waved);
    /* Defaults: a canary of one, go auto, no failure tolerated. */
    waved = xasprintf("waves: {size: 4}\n%s", text);
    assert_true(plan_load_string("plan.yaml", waved, &p, err, sizeof err));
    assert_int_equal(p.waves.go, PLAN_GO_AUTO);
    assert_int_equal(p.waves.error_budget, 0);
    assert_int_equal(plan_wave(&p, 0), 1);
    assert_int_equal(plan_wave(&p, 1), 2);
    assert_int_equal(plan_wave(&p, 4), 2);
    assert_int_equal(plan_wave(&p, 5), 3);
    plan_free(&p);
    free(waved);
    /* No waves: every migration starts at once. */
    assert_true(plan_load_string("plan.yaml", text, &p, err, sizeof err));
    assert_int_equal(plan_wave(&p, 9), 0);
    plan_free(&p);
    free(text);
    s_refused("waves: {canary: 1}\nmigrations: []\n", "plan.yaml:1: waves.size: missing");
    s_refused("waves:\n  size: 2\n  go: later\n", "plan.yaml:3: waves.go:");
    s_refused("waves:\n  size: 0\n", "plan.yaml:2: waves.size:");
    s_refused("waves:\n  size: 2\n  error_budget: -1\n", "plan.yaml:3: waves.error_budget:");
    s_refused("waves:\n  size: 2\n  canry: 1\n", "plan.yaml:3: waves.canry: unknown key");
}

/* The example plans in deploy/ load as they are. */
static void test_examples_load(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        size_t migrations;
    } examples[] = { { "deploy/plan.example.yaml", 1 }, { "deploy/plan.fleet.example.yaml", 5 } };
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        char path[4096], err[512] = "";
        srcpath(path, sizeof path, examples[i].file);
        char *text = NULL;
        size_t len = 0;
        if (fsutil_read_small(path, 1 << 20, &text, &len) != 0)
            fail_msg("cannot read %s", path);
        plan_t p;
        if (!plan_load_string(path, text, &p, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(plan_count(&p), examples[i].migrations);
        plan_free(&p);
        free(text);
    }
}

/* import_profile: the settings as the server takes them, in a fixed
 * order; full_page_writes off only with the risk accepted; a bad value
 * refused with its line and field; kept through the journal's JSON. */
static void test_import_profile(void **state)
{
    (void)state;
    static const char head[] = "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
                               "    target: {agent: b, database: e}\n"
                               "    replication: {peer: h}\n";
    char text[1024];
    plan_t p, q;
    char err[512] = "";
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    if (!plan_load_string("plan.yaml", head, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(plan_import_settings(plan_at(&p, 0), set), 0);
    char *json = plan_migration_to_json(plan_at(&p, 0));
    assert_null(strstr(json, "import_profile"));
    free(json);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    import_profile:\n      synchronous_commit: off\n"
             "      max_wal_size: 16GB\n      checkpoint_timeout: 30m\n"
             "      maintenance_work_mem: 1536kB\n      max_parallel_maintenance_workers: 4\n"
             "      full_page_writes: off\n      accept_torn_page_risk: true\n", head);
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    static const char *const want[][2] = {
        { "synchronous_commit", "off" }, { "max_wal_size", "16384MB" },
        { "checkpoint_timeout", "1800s" }, { "maintenance_work_mem", "1536kB" },
        { "max_parallel_maintenance_workers", "4" }, { "full_page_writes", "off" },
    };
    assert_int_equal(plan_import_settings(plan_at(&p, 0), set), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(set[i].name, want[i][0]);
        assert_string_equal(set[i].value, want[i][1]);
    }
    json = plan_migration_to_json(plan_at(&p, 0));
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    assert_int_equal(plan_import_settings(plan_at(&q, 0), set), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(set[i].value, want[i][1]);
    free(json);
    plan_free(&q);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    import_profile:\n      synchronous_commit: on\n"
             "      full_page_writes: off\n", head);
    s_refused(text, "plan.yaml:8: migrations[0].import_profile.full_page_writes: off risks torn "
                    "pages");
    snprintf(text, sizeof text, "%s    import_profile: {checkpoint_timeout: 5s}\n", head);
    s_refused(text, "plan.yaml:6: migrations[0].import_profile.checkpoint_timeout:");
    snprintf(text, sizeof text, "%s    import_profile: {work_mem: 1GB}\n", head);
    s_refused(text, "plan.yaml:6: migrations[0].import_profile.work_mem: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plan),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_proxy_hold),
        cmocka_unit_test(test_fleet_expands),
        cmocka_unit_test(test_fleet_refusals),
        cmocka_unit_test(test_waves),
        cmocka_unit_test(test_examples_load),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_reverse_replication),
        cmocka_unit_test(test_roles_passwords),
        cmocka_unit_test(test_import_profile),
        cmocka_unit_test(test_connection_keys_moved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
