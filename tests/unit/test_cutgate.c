/*
 * test_cutgate: the cutover's gates (coordinator/cutgate.c) as a pure
 * function of a view: a view that passes them all, then each gate refusing
 * in turn, with the reason that names it; and the rollback's own slot gate.
 * engine: mariadb: the replication connection instead of the tables and
 * the slot, the verify's rules, no cutover group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cutgate.h"
#include "plan.h"

#define NOW 1800000000000ull

typedef struct {
    plan_t plan;
    cJSON *verify;
    Godwit__Report px_report;
    Godwit__ProxyState px_state;
    Godwit__ProxyState *px_states[1];
    Godwit__Slot slot;
    cutgate_agent_t proxies[1];
    cutgate_view_t v;
} rig_t;

static const char s_plan[] =
    "migrations:\n"
    "  - name: shop\n"
    "    source: {agent: blue, database: shop}\n"
    "    target: {agent: green, database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    options: {max_lag: 500ms}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: px, proxy: pgb}],"
    " max_write_pause: 2s}\n";

/* A view every gate passes. */
static int s_setup(void **state)
{
    rig_t *r = calloc(1, sizeof *r);
    char err[256];
    if (!plan_load_string("plan.yaml", s_plan, &r->plan, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    r->verify = cJSON_CreateObject();
    cJSON_AddStringToObject(r->verify, "state", "equal");
    cJSON_AddNumberToObject(r->verify, "finished_at_ms", (double)(NOW - 60000));
    godwit__report__init(&r->px_report);
    godwit__proxy_state__init(&r->px_state);
    r->px_state.proxy = "pgb";
    r->px_state.reachable = true;
    r->px_state.reached_at_ms = NOW - 500;
    r->px_states[0] = &r->px_state;
    r->px_report.proxies = r->px_states;
    r->px_report.n_proxies = 1;
    r->px_report.interval_ms = 1000;
    r->px_report.collected_at_ms = NOW - 400;
    godwit__slot__init(&r->slot);
    r->slot.name = "godwit_shop";
    r->slot.active = true;
    r->slot.has_replay_lag = true;
    r->slot.replay_lag_seconds = 0.010;
    r->proxies[0] = (cutgate_agent_t){ .name = "px", .connected = true, .rtt_ms = 1,
                                       .report = &r->px_report, .report_age_ms = 400 };
    r->v = (cutgate_view_t){
        .m = plan_at(&r->plan, 0),
        .state = "streaming",
        .verify_last = r->verify,
        .has_sync = true,
        .all_ready = true,
        .now_ms = NOW,
        .source = { .name = "blue", .connected = true, .rtt_ms = 2 },
        .target = { .name = "green", .connected = true, .rtt_ms = 3 },
        .proxies = r->proxies,
        .slot_name = "godwit_shop",
        .slot = &r->slot,
    };
    *state = r;
    return 0;
}

static int s_teardown(void **state)
{
    rig_t *r = *state;
    cJSON_Delete(r->verify);
    plan_free(&r->plan);
    free(r);
    return 0;
}

/* The gates refuse v, with a reason containing want. */
static void s_refused(const cutgate_view_t *v, const char *want)
{
    char why[700] = "";
    if (cutgate_check(v, why, sizeof why))
        fail_msg("passed; expected a refusal with \"%s\"", want);
    if (!strstr(why, want))
        fail_msg("refused with \"%s\", expected \"%s\"", why, want);
}

static void test_all_gates_pass(void **state)
{
    rig_t *r = *state;
    char why[700] = "";
    assert_true(cutgate_check(&r->v, why, sizeof why));
}

static void test_state(void **state)
{
    rig_t *r = *state;
    r->v.state = "catchup";
    s_refused(&r->v, "it is catchup: the cutover starts from streaming");
    r->v.back = true;
    s_refused(&r->v, "it is catchup: a rollback starts from switched");
}

static void test_verify(void **state)
{
    rig_t *r = *state;
    r->v.verify_running = true;
    s_refused(&r->v, "verify is running");
    r->v.verify_running = false;
    r->v.verify_last = NULL;
    s_refused(&r->v, "the last verify is missing, not equal: run godwitctl migrate verify shop");
    cJSON_ReplaceItemInObject(r->verify, "state", cJSON_CreateString("different"));
    r->v.verify_last = r->verify;
    s_refused(&r->v, "the last verify is different");
    cJSON_ReplaceItemInObject(r->verify, "state", cJSON_CreateString("equal"));
    r->v.now_ms = NOW + 3600000;
    s_refused(&r->v, "longer than cutover.verify_max_age");
}

static void test_tables_and_errors(void **state)
{
    rig_t *r = *state;
    r->v.has_sync = false;
    s_refused(&r->v, "has not reported its tables yet");
    r->v.has_sync = true;
    r->v.all_ready = false;
    s_refused(&r->v, "not every table is ready");
    r->v.all_ready = true;
    r->v.repl_error = "duplicate key value violates unique constraint";
    r->v.repl_error_at_ms = NOW - 30000;
    s_refused(&r->v, "a replication error in the last minute: duplicate key");
    r->v.repl_error_at_ms = NOW - 61000; /* older than a minute: no longer a gate */
    char why[700];
    assert_true(cutgate_check(&r->v, why, sizeof why));
}

/* The import profile not reverted on green: the cutover is refused with
 * why; a rollback does not look at it. */
static void test_import_profile(void **state)
{
    rig_t *r = *state;
    r->v.import_pending = "the import profile is not reverted on green yet: max_wal_size is 3GB";
    s_refused(&r->v, "the import profile is not reverted on green yet: max_wal_size is 3GB");
    r->v.back = true;
    r->v.state = "switched";
    r->v.slot_name = "godwit_shop_rev";
    char why[700];
    assert_true(cutgate_check(&r->v, why, sizeof why));
}

static void test_agents_and_proxies(void **state)
{
    rig_t *r = *state;
    r->v.target.connected = false;
    s_refused(&r->v, "agent green is not connected");
    r->v.target.connected = true;
    r->proxies[0].connected = false;
    s_refused(&r->v, "proxy agent px is not connected");
    r->proxies[0].connected = true;
    r->px_state.reachable = false;
    r->px_state.error = "connection refused";
    s_refused(&r->v, "proxy pgb (agent px) is unreachable: the agent reported: connection refused");
    r->px_state.reachable = true;
    r->proxies[0].report_age_ms = 10000;
    s_refused(&r->v, "state unknown: the agent's last report is");
}

static void test_slot_lag_and_pause(void **state)
{
    rig_t *r = *state;
    r->slot.active = false;
    s_refused(&r->v, "our slot on the source is not active");
    r->slot.active = true;
    r->slot.replay_lag_seconds = 0.9;
    s_refused(&r->v, "lag 900 ms is over max_lag (500 ms)");
    r->slot.replay_lag_seconds = 0.4;
    r->proxies[0].rtt_ms = 450; /* 400 ms lag and 4 trips of 450 ms: 2.2 s */
    s_refused(&r->v, "the predicted write pause (2200 ms: lag 400 ms and 4 round trips of 450.0 "
                     "ms) does not fit max_write_pause (2000 ms)");
}

/* The rollback: from switched, its slot is green's for blue; verify,
 * tables and replication errors are the forward direction's. */
static void test_rollback(void **state)
{
    rig_t *r = *state;
    r->v.back = true;
    r->v.state = "switched";
    r->v.verify_last = NULL;
    r->v.has_sync = false;
    char why[700];
    assert_true(cutgate_check(&r->v, why, sizeof why));
    r->v.slot = NULL;
    r->v.slot_name = "godwit_shop_rev";
    s_refused(&r->v, "blue does not follow green (slot godwit_shop_rev on green is not active)");
}

static const char s_plan_mariadb[] =
    "migrations:\n"
    "  - name: shop\n"
    "    engine: mariadb\n"
    "    source: {agent: blue, database: shop}\n"
    "    target: {agent: green, database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    options: {max_lag: 1500ms}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: px, proxy: haproxy}],"
    " max_write_pause: 2s}\n";

/* engine: mariadb: the view's replication connection (forward: ours on
 * green; back: blue's way back) stands for the tables and the slot; the
 * verify (mycheck's report) must be equal and fresh; no group. */
static void test_mariadb(void **state)
{
    rig_t *r = *state;
    char err[256], why[700];
    plan_free(&r->plan);
    if (!plan_load_string("plan.yaml", s_plan_mariadb, &r->plan, err, sizeof err))
        fail_msg("%s", err);
    r->px_state.proxy = "haproxy";
    r->v.m = plan_at(&r->plan, 0);
    r->v.has_sync = false; /* no table report on MariaDB */
    r->v.all_ready = false;
    r->v.slot = NULL;
    Godwit__MariadbReplica rp = GODWIT__MARIADB_REPLICA__INIT;
    rp.connection_name = "godwit_shop";
    rp.io_running = rp.sql_running = true;
    rp.seconds_behind = 1;
    rp.last_error = "";
    Godwit__ReplicaStatusResult rs = GODWIT__REPLICA_STATUS_RESULT__INIT;
    rs.exists = true;
    rs.replica = &rp;
    r->v.replica = NULL;
    s_refused(&r->v, "the replication connection godwit_shop has not been polled yet");
    plan_migration_t *pm = plan_at(&r->plan, 0);
    size_t roles = pm->cutover.app_roles.count;
    pm->cutover.app_roles.count = 0;
    s_refused(&r->v, "the plan names no cutover.app_roles or no cutover.proxies (the fence "
              "locks the accounts of the users app_roles names)");
    pm->cutover.app_roles.count = roles;
    r->v.replica = &rs;
    assert_true(cutgate_check(&r->v, why, sizeof why));
    r->v.group = true;
    s_refused(&r->v, "engine mariadb: a cutover group with a MariaDB migration is not in this "
                     "version: cut shop over alone (godwitctl cutover shop)");
    r->v.group = false;
    r->v.verify_last = NULL;
    s_refused(&r->v, "the last verify is missing, not equal: run godwitctl migrate verify shop");
    r->v.verify_last = r->verify;
    r->v.now_ms = NOW + 3600000;
    s_refused(&r->v, "longer than cutover.verify_max_age");
    r->v.now_ms = NOW;
    rp.sql_running = false;
    rp.last_error = "Duplicate entry '7' for key 'PRIMARY'";
    s_refused(&r->v, "the replication connection godwit_shop on the target is not healthy (I/O "
                     "thread running, SQL thread stopped; error: Duplicate entry");
    rp.sql_running = true;
    rp.last_error = "";
    rp.seconds_behind = -1;
    s_refused(&r->v, "Seconds_Behind_Master is NULL");
    rp.seconds_behind = 2;
    s_refused(&r->v, "lag 2000 ms (Seconds_Behind_Master of godwit_shop) is over max_lag (1500 ms)");
    rp.seconds_behind = 1;
    r->proxies[0].rtt_ms = 300; /* 1000 ms and 4 trips of 300 ms */
    s_refused(&r->v, "the predicted write pause (2200 ms");
    r->proxies[0].rtt_ms = 1;
    rs.exists = false;
    s_refused(&r->v, "our replication connection godwit_shop is missing on the target");
    /* the rollback: blue's way back, no verify */
    r->v.back = true;
    r->v.state = "switched";
    r->v.slot_name = "godwit_shop_rev";
    r->v.verify_last = NULL;
    s_refused(&r->v, "blue does not follow green (its replication connection godwit_shop_rev is "
                     "missing)");
    rs.exists = true;
    assert_true(cutgate_check(&r->v, why, sizeof why));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_all_gates_pass),    T(test_state),       T(test_verify),
        T(test_tables_and_errors), T(test_agents_and_proxies),
        T(test_slot_lag_and_pause), T(test_rollback), T(test_import_profile),
        T(test_mariadb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
