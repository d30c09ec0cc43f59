/*
 * test_verify_gate: the cutover's gate on the last verify's age
 * (coordinator/cutgate.c, cutgate_verify_fresh): a report that finished
 * within cutover.verify_max_age passes; an older one, one still running and
 * a missing one are refused with a reason that names the option; and the
 * plan's default is 10 minutes, its bounds enforced with the field named.
 * The proxy gate (cutgate_proxy_ready): a proxy its agent reached at its
 * last read, in a recent report, passes; one its agent could not reach, one
 * not reported, a stale report and a stale read are refused, naming the
 * proxy and what was reported. cutover.abort_timeout: default and bounds.
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
#include "migration.h"
#include "plan.h"

static cJSON *s_report(double finished_at_ms)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "state", "equal");
    if (finished_at_ms > 0)
        cJSON_AddNumberToObject(r, "finished_at_ms", finished_at_ms);
    else
        cJSON_AddNullToObject(r, "finished_at_ms");
    return r;
}

static void test_fresh_and_stale(void **state)
{
    (void)state;
    char why[512] = "";
    uint64_t now = 1700000000000ull;
    cJSON *r = s_report((double)(now - 9 * 60000));
    assert_true(cutgate_verify_fresh(r, 10 * 60000, now, why, sizeof why));
    cJSON_Delete(r);
    r = s_report((double)(now - 11 * 60000));
    assert_false(cutgate_verify_fresh(r, 10 * 60000, now, why, sizeof why));
    assert_non_null(strstr(why, "cutover.verify_max_age"));
    assert_non_null(strstr(why, "migrate verify"));
    cJSON_Delete(r);
    /* Just done, and a clock that puts it in the future: fresh. */
    r = s_report((double)(now + 5000));
    assert_true(cutgate_verify_fresh(r, 10 * 60000, now, why, sizeof why));
    cJSON_Delete(r);
}

static void test_unfinished(void **state)
{
    (void)state;
    char why[512] = "";
    cJSON *r = s_report(0);
    assert_false(cutgate_verify_fresh(r, 600000, 1700000000000ull, why, sizeof why));
    assert_non_null(strstr(why, "not finished"));
    cJSON_Delete(r);
    assert_false(cutgate_verify_fresh(NULL, 600000, 1700000000000ull, why, sizeof why));
}

static const char s_plan_head[] =
    "migrations:\n"
    "  - name: shop\n"
    "    source: {agent: blue, database: shop}\n"
    "    target: {agent: green, database: shop}\n"
    "    replication: {peer: blue-db}\n";

static void test_plan_option(void **state)
{
    (void)state;
    plan_t plan;
    char err[512];
    assert_true(plan_load_string("plan.yaml", s_plan_head, &plan, err, sizeof err));
    assert_int_equal(plan_at(&plan, 0)->cutover.verify_max_age_ms, 10 * 60000);
    assert_int_equal(plan_at(&plan, 0)->options.verify_batch_rows, 0);
    plan_free(&plan);

    char text[1024];
    snprintf(text, sizeof text, "%s    cutover: {verify_max_age: 90s}\n"
             "    options: {verify_batch_rows: 20000, verify_slot_wait: 2s}\n", s_plan_head);
    assert_true(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    const plan_migration_t *m = plan_at(&plan, 0);
    assert_int_equal(m->cutover.verify_max_age_ms, 90000);
    assert_int_equal(m->options.verify_batch_rows, 20000);
    assert_int_equal(m->options.verify_slot_wait_ms, 2000);
    /* Kept through the journal's JSON. */
    char *json = plan_migration_to_json(m);
    plan_t again;
    assert_true(plan_load_string("journal", json, &again, err, sizeof err));
    assert_int_equal(plan_at(&again, 0)->cutover.verify_max_age_ms, 90000);
    assert_int_equal(plan_at(&again, 0)->options.verify_batch_rows, 20000);
    assert_int_equal(plan_at(&again, 0)->options.verify_slot_wait_ms, 2000);
    plan_free(&again);
    free(json);
    plan_free(&plan);

    snprintf(text, sizeof text, "%s    cutover: {verify_max_age: 10ms}\n", s_plan_head);
    assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    assert_non_null(strstr(err, "plan.yaml"));
    assert_non_null(strstr(err, "verify_max_age"));
    snprintf(text, sizeof text, "%s    options: {verify_batch_rows: 10}\n", s_plan_head);
    assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    assert_non_null(strstr(err, "verify_batch_rows"));
}

static Godwit__ProxyState s_px(bool reachable, uint64_t reached_at_ms, const char *error)
{
    Godwit__ProxyState st = GODWIT__PROXY_STATE__INIT;
    st.proxy = (char *)"pgb";
    st.kind = (char *)"pgbouncer";
    st.reachable = reachable;
    st.reached_at_ms = reached_at_ms;
    st.error = (char *)error;
    return st;
}

static void test_proxy_gate(void **state)
{
    (void)state;
    char why[512] = "";
    uint64_t now = 1700000000000ull;
    Godwit__ProxyState st = s_px(true, now - 1500, "");
    Godwit__ProxyState *list[] = { &st };
    Godwit__Report rep = GODWIT__REPORT__INIT;
    rep.collected_at_ms = now;
    rep.interval_ms = 1000;
    rep.n_proxies = 1;
    rep.proxies = list;
    assert_true(cutgate_proxy_ready(&rep, 800, "px", "pgb", why, sizeof why));

    /* The agent could not reach its admin interface: refused with what it said. */
    st = s_px(false, 0, "cannot connect to pgbouncer admin: Connection refused");
    assert_false(cutgate_proxy_ready(&rep, 800, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "pgb"));
    assert_non_null(strstr(why, "px"));
    assert_non_null(strstr(why, "unreachable"));
    assert_non_null(strstr(why, "cannot connect to pgbouncer admin"));

    /* Reached once, not since: unknown. */
    st = s_px(true, now - 60000, "");
    assert_false(cutgate_proxy_ready(&rep, 800, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "unknown"));
    assert_non_null(strstr(why, "last reached"));

    /* A report older than three intervals: unknown. */
    st = s_px(true, now, "");
    assert_false(cutgate_proxy_ready(&rep, 3500, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "unknown"));
    assert_non_null(strstr(why, "last report"));
    assert_true(cutgate_proxy_ready(&rep, 2900, "px", "pgb", why, sizeof why));

    /* Not reported at all, or no report. */
    assert_false(cutgate_proxy_ready(&rep, 800, "px", "other", why, sizeof why));
    assert_non_null(strstr(why, "other"));
    assert_false(cutgate_proxy_ready(NULL, UINT64_MAX, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "not reported"));
    /* A report kept from before the agent connected again (no age). */
    st = s_px(true, now, "");
    assert_false(cutgate_proxy_ready(&rep, UINT64_MAX, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "not reported since it connected"));
    st = s_px(false, 0, "");
    assert_false(cutgate_proxy_ready(&rep, 800, "px", "pgb", why, sizeof why));
    assert_non_null(strstr(why, "not read it yet"));
}

static void test_abort_timeout_option(void **state)
{
    (void)state;
    plan_t plan;
    char err[512];
    assert_true(plan_load_string("plan.yaml", s_plan_head, &plan, err, sizeof err));
    assert_int_equal(plan_at(&plan, 0)->cutover.abort_timeout_ms, 10000);
    plan_free(&plan);
    char text[1024];
    snprintf(text, sizeof text, "%s    cutover: {abort_timeout: 4s}\n", s_plan_head);
    assert_true(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    assert_int_equal(plan_at(&plan, 0)->cutover.abort_timeout_ms, 4000);
    char *json = plan_migration_to_json(plan_at(&plan, 0));
    plan_t again;
    assert_true(plan_load_string("journal", json, &again, err, sizeof err));
    assert_int_equal(plan_at(&again, 0)->cutover.abort_timeout_ms, 4000);
    plan_free(&again);
    free(json);
    plan_free(&plan);
    snprintf(text, sizeof text, "%s    cutover: {abort_timeout: 100ms}\n", s_plan_head);
    assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    assert_non_null(strstr(err, "plan.yaml"));
    assert_non_null(strstr(err, "abort_timeout"));
    snprintf(text, sizeof text, "%s    cutover: {abort_timeout: 2h}\n", s_plan_head);
    assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
    assert_non_null(strstr(err, "abort_timeout"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_and_stale),
        cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_plan_option),
        cmocka_unit_test(test_proxy_gate),
        cmocka_unit_test(test_abort_timeout_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
