/*
 * test_fleetview: `godwitctl fleet status`'s summary (coordinator/ctl/
 * fleetview.c) from the coordinator's status and migrate status answers:
 * counts by phase, the copies together, verify results, problems with
 * errors first, and the next command in each situation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleetview.h"

static cJSON *s_parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("bad JSON in the test: %s", text);
    return j;
}

static double s_at(const cJSON *f, const char *obj, const char *key)
{
    const cJSON *o = obj ? cJSON_GetObjectItem(f, obj) : f;
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("%s.%s is not a number", obj ? obj : "", key);
    return v->valuedouble;
}

static const char *s_next(const cJSON *f)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(f, "next"), "command"));
}

static const char s_agents_ok[] =
    "{\"ok\":true,\"agents\":[{\"name\":\"blue\",\"state\":\"connected\"},"
    "{\"name\":\"green\",\"state\":\"connected\"}]}";

static void test_counts_and_copies(void **state)
{
    (void)state;
    cJSON *st = s_parse(s_agents_ok);
    cJSON *ms = s_parse(
        "{\"ok\":true,\"migrations\":["
        "{\"name\":\"a\",\"state\":\"copy\",\"copy_queued\":false,"
        " \"copy\":{\"bytes_done\":100,\"bytes_total\":1000,\"rate_bytes_per_sec\":10}},"
        "{\"name\":\"b\",\"state\":\"copy\",\"copy_queued\":false,"
        " \"copy\":{\"bytes_done\":300,\"bytes_total\":500,\"rate_bytes_per_sec\":20}},"
        "{\"name\":\"c\",\"state\":\"copy\",\"copy_queued\":true,\"copy\":null},"
        "{\"name\":\"d\",\"state\":\"streaming\",\"verify\":{\"state\":\"equal\"}},"
        "{\"name\":\"e\",\"state\":\"streaming\",\"verify\":null},"
        "{\"name\":\"f\",\"state\":\"streaming\",\"verify\":{\"state\":\"running\"}}]}");
    cJSON *f = fleetview_build(st, ms);
    assert_int_equal(s_at(f, NULL, "migrations"), 6);
    assert_int_equal(s_at(f, "phases", "copy"), 3);
    assert_int_equal(s_at(f, "phases", "streaming"), 3);
    assert_int_equal(s_at(f, "copy", "running"), 2);
    assert_int_equal(s_at(f, "copy", "queued"), 1);
    assert_int_equal(s_at(f, "copy", "bytes_done"), 400);
    assert_int_equal(s_at(f, "copy", "bytes_total"), 1500);
    assert_int_equal(s_at(f, "copy", "rate_bytes_per_sec"), 30);
    assert_int_equal(s_at(f, "copy", "eta_seconds") * 3, 110); /* 1100 bytes at 30/s */
    assert_int_equal(s_at(f, "verify", "equal"), 1);
    assert_int_equal(s_at(f, "verify", "running"), 1);
    assert_int_equal(s_at(f, "verify", "not_verified"), 1);
    assert_int_equal(s_at(f, "agents", "connected"), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(f, "problems")), 0);
    /* an unverified streaming migration comes before cutting over */
    assert_string_equal(s_next(f), "godwitctl migrate verify e");
    cJSON_Delete(f);
    cJSON_Delete(st);
    cJSON_Delete(ms);
}

static void test_problems_errors_first(void **state)
{
    (void)state;
    cJSON *st = s_parse("{\"ok\":true,\"agents\":[{\"name\":\"blue\",\"state\":\"connected\"},"
                        "{\"name\":\"px\",\"state\":\"lost\",\"last_seen_age_ms\":12000}]}");
    cJSON *ms = s_parse(
        "{\"ok\":true,\"migrations\":["
        "{\"name\":\"a\",\"state\":\"streaming\",\"lag_seconds\":5.5,\"max_lag_ms\":1000,"
        " \"slot_retained_bytes\":900,\"slot_wal_limit_bytes\":1000,\"verify\":{\"state\":\"equal\"}},"
        "{\"name\":\"b\",\"state\":\"catchup\",\"attempts\":3,\"last_error\":\"timeout\"},"
        "{\"name\":\"c\",\"state\":\"streaming\",\"replication_error\":"
        " {\"message\":\"duplicate key\",\"times\":4},\"verify\":{\"state\":\"different\"}},"
        "{\"name\":\"d\",\"state\":\"streaming\",\"target\":\"green\",\"import_profile\":"
        " {\"state\":\"applied\",\"error\":\"max_wal_size is 3GB\"}}]}");
    cJSON *f = fleetview_build(st, ms);
    const cJSON *p = cJSON_GetObjectItem(f, "problems");
    int n = cJSON_GetArraySize(p);
    assert_int_equal(n, 7);
    /* errors (the lost agent, c's replication error and its verify, d's import
     * profile), then warnings */
    bool warned = false;
    for (int i = 0; i < n; i++) {
        const char *sev = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p, i),
                                                                   "severity"));
        if (strcmp(sev, "warning") == 0)
            warned = true;
        else if (warned)
            fail_msg("problem %d is an error after a warning", i);
    }
    const char *first = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p, 0),
                                                                 "object"));
    assert_string_equal(first, "agent px");
    char *text = cJSON_PrintUnformatted(p);
    assert_non_null(strstr(text, "lost: no message for 12 s"));
    assert_non_null(strstr(text, "replication error (4 times): duplicate key"));
    assert_non_null(strstr(text, "lag 5.5 s, over max_lag (1.0 s)"));
    assert_non_null(strstr(text, "slot holds 90 % of slot_wal_limit"));
    assert_non_null(strstr(text, "catchup failing (3 attempts): timeout"));
    assert_non_null(strstr(text, "import profile not reverted on green (the cutover gate "
                                 "refuses): max_wal_size is 3GB"));
    cJSON_free(text);
    assert_int_equal(s_at(f, "verify", "different"), 1);
    assert_int_equal(s_at(f, "agents", "lost"), 1);
    /* an error first: the command that shows it */
    assert_string_equal(s_next(f), "godwitctl status");
    cJSON_Delete(f);
    cJSON_Delete(st);
    cJSON_Delete(ms);
}

/* The next command as the fleet moves on. */
static void test_next(void **state)
{
    (void)state;
    static const struct {
        const char *migrations;
        const char *next;
    } cases[] = {
        { "[]", "godwitctl migrate start PLAN" },
        { "[{\"name\":\"a\",\"state\":\"copy\"}]", "godwitctl fleet status --watch" },
        { "[{\"name\":\"a\",\"state\":\"streaming\",\"verify\":{\"state\":\"equal\"}},"
          "{\"name\":\"b\",\"state\":\"switched\"}]",
          "godwitctl cutover a --dry-run" },
        { "[{\"name\":\"b\",\"state\":\"switched\"},{\"name\":\"c\",\"state\":\"done\"}]",
          "godwitctl cleanup b" },
        { "[{\"name\":\"a\",\"state\":\"copy\",\"stopped_because\":\"slot over its limit\"}]",
          "godwitctl migrate status a" },
        { "[{\"name\":\"a\",\"state\":\"paused\"}],\"copies\":{\"fleet_paused\":true}",
          "godwitctl fleet resume" },
    };
    cJSON *st = s_parse(s_agents_ok);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{\"ok\":true,\"migrations\":%s}", cases[i].migrations);
        cJSON *ms = s_parse(text);
        cJSON *f = fleetview_build(st, ms);
        if (strcmp(s_next(f), cases[i].next) != 0)
            fail_msg("case %zu: next is \"%s\", want \"%s\"", i, s_next(f), cases[i].next);
        cJSON_Delete(f);
        cJSON_Delete(ms);
    }
    /* without the agents' answer: the migrations alone */
    cJSON *ms = s_parse("{\"ok\":true,\"migrations\":[{\"name\":\"a\",\"state\":\"copy\"}]}");
    cJSON *f = fleetview_build(NULL, ms);
    assert_int_equal(s_at(f, "agents", "total"), 0);
    assert_int_equal(s_at(f, NULL, "migrations"), 1);
    cJSON_Delete(f);
    cJSON_Delete(ms);
    cJSON_Delete(st);
}

/* A schedule: each wave's copies together; a wave ready for the
 * operator's go is the next command; a stopped schedule is an error. */
static void test_waves(void **state)
{
    (void)state;
    cJSON *st = s_parse(s_agents_ok);
    static const char migs[] =
        "\"migrations\":["
        "{\"name\":\"a\",\"wave\":1,\"state\":\"streaming\",\"verify\":{\"state\":\"equal\"}},"
        "{\"name\":\"b\",\"wave\":2,\"state\":\"copy\",\"copy_queued\":false,"
        " \"copy\":{\"bytes_done\":100,\"bytes_total\":1000,\"rate_bytes_per_sec\":10}},"
        "{\"name\":\"c\",\"wave\":2,\"state\":\"copy\",\"copy_queued\":false,"
        " \"copy\":{\"bytes_done\":300,\"bytes_total\":500,\"rate_bytes_per_sec\":20}},"
        "{\"name\":\"d\",\"wave\":3,\"state\":\"scheduled\"}]";
    char text[2048];
    snprintf(text, sizeof text,
             "{\"ok\":true,\"waves\":{\"schedule\":1,\"go\":\"operator\",\"next\":3,"
             "\"waiting\":\"wave 3 is ready: godwitctl fleet go opens it\",\"waves\":["
             "{\"wave\":1,\"migrations\":1,\"passed\":1},{\"wave\":2,\"migrations\":2,"
             "\"pending\":2},{\"wave\":3,\"migrations\":1,\"scheduled\":1}]},%s}", migs);
    cJSON *ms = s_parse(text);
    cJSON *f = fleetview_build(st, ms);
    const cJSON *w2 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(f, "waves"),
                                                             "waves"), 1);
    assert_int_equal(s_at(w2, "copy", "bytes_done"), 400);
    assert_int_equal(s_at(w2, "copy", "bytes_total"), 1500);
    assert_int_equal(s_at(w2, "copy", "eta_seconds"), 1100 / 30);
    assert_string_equal(s_next(f), "godwitctl fleet go");
    cJSON_Delete(f);
    cJSON_Delete(ms);

    snprintf(text, sizeof text,
             "{\"ok\":true,\"waves\":{\"schedule\":1,\"go\":\"auto\",\"next\":3,"
             "\"waiting\":\"the schedule stopped before wave 3: 1 failed (b)\",\"waves\":[]},%s}",
             migs);
    ms = s_parse(text);
    f = fleetview_build(st, ms);
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "problems"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p, "severity")), "error");
    assert_string_equal(s_next(f), "godwitctl fleet go --accept-failures");
    cJSON_Delete(f);
    cJSON_Delete(ms);

    /* No schedule: waves is null. */
    ms = s_parse("{\"ok\":true,\"waves\":null,\"migrations\":[]}");
    f = fleetview_build(st, ms);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(f, "waves")));
    cJSON_Delete(f);
    cJSON_Delete(ms);
    cJSON_Delete(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_copies),
        cmocka_unit_test(test_problems_errors_first),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_waves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
