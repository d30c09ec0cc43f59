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

#include "plan.h"

static const char s_good[] =
    "migrations:\n"
    "  - name: shop\n"
    "    source: {agent: blue, database: shop}\n"
    "    target: {agent: green, database: shop_new}\n"
    "    replication:\n"
    "      host: 10.0.0.5\n"
    "      user: godwit_repl\n"
    "      passfile: /etc/godwit/pgpass\n"
    "    tables: [public.orders, items, \"sales.x.y\"]\n"
    "    options: {disk_margin_percent: 150, max_lag: 500ms, slot_wal_limit: 2GiB}\n"
    "  - name: crm\n"
    "    source: {agent: blue2, database: crm}\n"
    "    target: {agent: green2, database: crm}\n"
    "    replication: {host: db1, port: 5433, user: r}\n";

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
    assert_string_equal(m->replication.passfile, "/etc/godwit/pgpass");
    assert_int_equal(m->replication.port, 5432);
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
    assert_int_equal(m->replication.port, 5433);
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
              "    target: {agent: b, databse: d}\n    replication: {host: h, user: u}\n",
              "plan.yaml:4: migrations[0].target.databse: unknown key");
    s_refused("migrations:\n  - name: shop\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n",
              "migrations[0].replication: missing required field");
    s_refused("migrations:\n  - name: Shop-1\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {host: h, user: u}\n",
              "migrations[0].name: \"Shop-1\"");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: a, database: d}\n    replication: {host: h, user: u}\n",
              "migrations[0].target.agent: \"a\" is also the source agent");
    s_refused("migrations:\n"
              "  - {name: s, source: {agent: a, database: d}, target: {agent: b, database: d},"
              " replication: {host: h, user: u}}\n"
              "  - {name: s, source: {agent: a, database: d}, target: {agent: b, database: d},"
              " replication: {host: h, user: u}}\n",
              "migrations[1].name: \"s\" is already migrations[0]");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {host: h, user: u}\n"
              "    tables: [public.]\n",
              "migrations[0].tables[0]: \"public.\": expected schema.table");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {host: h, user: u, port: 0}\n",
              "plan.yaml:5: migrations[0].replication.port:");
    s_refused("migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
              "    target: {agent: b, database: d}\n    replication: {host: h, user: u}\n"
              "    options: {disk_margin_percent: 50}\n",
              "plan.yaml:6: migrations[0].options.disk_margin_percent:");
}

/* A cutover needs to know how blue reaches green afterwards (reverse
 * replication, on by default), or to be told it is off. */
static void test_reverse_replication(void **state)
{
    (void)state;
    static const char head[] = "migrations:\n  - name: s\n    source: {agent: a, database: d}\n"
                               "    target: {agent: b, database: e}\n"
                               "    replication: {host: h, user: u}\n";
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
    assert_null(plan_at(&p, 0)->reverse_replication.host);
    plan_free(&p);

    snprintf(text, sizeof text, "%s    reverse_replication: {host: g, port: 5433, user: v}\n"
             "    cutover: {app_roles: [app], proxies: [{agent: p, proxy: x}]}\n", head);
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    const plan_migration_t *m = plan_at(&p, 0);
    assert_int_equal(m->cutover.reverse_off, 0);
    assert_string_equal(m->reverse_replication.host, "g");
    assert_int_equal(m->reverse_replication.port, 5433);
    char *json = plan_migration_to_json(m);
    if (!plan_load_string("journal", json, &q, err, sizeof err))
        fail_msg("%s: %s", err, json);
    assert_string_equal(plan_at(&q, 0)->reverse_replication.user, "v");
    free(json);
    plan_free(&q);
    plan_free(&p);
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
        "    target: {agent: b, database: d}\n    replication: {host: h, user: u}\n"
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
                      "\"replication\":{\"host\":\"h\",\"user\":\"u\"},\"cutover\":{"
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
                               "    replication: {host: h, user: u}\n";
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plan),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_proxy_hold),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_reverse_replication),
        cmocka_unit_test(test_roles_passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
