/*
 * The cutover machine (coordinator/cutover.c) driven through a fake link:
 * every step's commands and their key fields, in order, and the final
 * report and journal. Covers the cutover with one holding proxy (switch and
 * resume merged), with two proxies (separate), with a proxy that cannot
 * hold; an abort at the check, pause, freeze, sequences, switch (what is
 * undone, what is not), a step that times out, abort steps retried to what
 * did not confirm, an abort that gives up on an unreachable proxy after
 * cutover.abort_timeout; the rehearsal (--dry-run); a restart recovered
 * from the journal ("started", "switching", "aborting"); a rollback; the
 * budget on the link's clock; and `to`'s fence, lifted by the sequences
 * step, made again by an abort (live and recovered) before `from`'s is;
 * a cutover group held in step (no pause before every member's check, no
 * freeze before every pause) and aborted together. engine: mariadb: the
 * cutover and its rollback (check, pause, freeze with the final GTID,
 * promote, switch and resume, rejoin through MyFollow from the switch
 * GTID), its rehearsal, a refused check, an abort after the promote (fence
 * `to` again, unfreeze, resume, `to`'s replication started again, its fence
 * lifted) and a restart in "promoting".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cutgroup.h"
#include "cutover.h"
#include "fakelink.h"
#include "journal.h"
#include "plan.h"
#include "tmpdir.h"

#define BLUE "blue"
#define GREEN "green"
#define PX1 "px1"
#define PX2 "px2"
#define NAME "shop"
#define OBJ "godwit_shop"
#define REV "godwit_shop_rev"
#define FINAL_LSN 0x1000000ull /* "0/1000000" */
#define SWITCH_LSN 0x2000000ull /* "0/2000000" */

#define A(x) GODWIT__COMMAND__ACTION_##x
#define OP(x) GODWIT__PROXY_ACTION__OP__OP_##x
#define MODE(x) GODWIT__FREEZE_SOURCE__MODE__MODE_##x

typedef struct {
    char *dir;
    fakelink_t link;
    journal_t *journal;
    plan_t plan;
    cutover_t *cu;
    const char *from, *to, *sub, *rev; /* by direction */
    bool back;
    int n_done;                        /* what done said */
    cJSON *report;
    bool switched;
} rig_t;

static int s_setup(void **state)
{
    if (tmpdir_setup(state) != 0)
        return -1;
    rig_t *r = calloc(1, sizeof *r);
    r->dir = *state;
    fakelink_init(&r->link);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/journal.db", r->dir);
    r->journal = journal_open(path, err, sizeof err);
    if (!r->journal ||
        !journal_migration_create(r->journal, NAME, "{}", "streaming", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    fakelink_agent(&r->link, BLUE, "source", NULL);
    fakelink_agent(&r->link, GREEN, "target", NULL);
    fakelink_agent(&r->link, PX1, "proxy", NULL);
    fakelink_agent(&r->link, PX2, "proxy", NULL);
    *state = r;
    return 0;
}

static int s_teardown(void **state)
{
    rig_t *r = *state;
    cutover_cancel(&r->cu);
    fakelink_drain(&r->link, "coordinator stopping");
    cJSON_Delete(r->report);
    journal_close(&r->journal);
    plan_free(&r->plan); /* a zeroed plan too */
    *state = r->dir;
    free(r);
    return tmpdir_teardown(state);
}

/* The plan: proxies is the YAML list's items; extra, more cutover keys. */
static void s_load(rig_t *r, const char *proxies, const char *extra)
{
    char text[2048], err[512];
    snprintf(text, sizeof text,
             "migrations:\n"
             "  - name: " NAME "\n"
             "    source: {agent: " BLUE ", database: shop}\n"
             "    target: {agent: " GREEN ", database: shop}\n"
             "    replication: {peer: blue-db}\n"
             "    reverse_replication: {peer: green-db}\n"
             "    cutover:\n"
             "      app_roles: [app]\n"
             "      max_write_pause: 2s\n"
             "      lease: 15s\n"
             "%s"
             "      proxies:\n%s",
             extra ? extra : "", proxies);
    if (!plan_load_string("plan.yaml", text, &r->plan, err, sizeof err))
        fail_msg("%s", err);
}

#define ONE_PROXY "        - {agent: " PX1 ", proxy: bouncer}\n"
#define TWO_PROXIES ONE_PROXY "        - {agent: " PX2 ", proxy: haproxy}\n"

static void s_done(cJSON *report, bool switched, void *arg)
{
    rig_t *r = arg;
    assert_int_equal(r->n_done, 0); /* once */
    r->n_done++;
    r->report = report;
    r->switched = switched;
    r->cu = NULL; /* it freed itself */
}

static void s_start(rig_t *r, bool back, bool dry_run, const cJSON *recover)
{
    r->back = back;
    r->from = back ? GREEN : BLUE;
    r->to = back ? BLUE : GREEN;
    r->sub = back ? REV : OBJ;
    r->rev = back ? OBJ : REV;
    r->cu = cutover_start(&r->link.link, r->journal, plan_at(&r->plan, 0), OBJ, REV, back, dry_run,
                          recover, NULL, s_done, r);
    assert_non_null(r->cu);
    assert_int_equal(fakelink_pending(&r->link), 0); /* never from inside start */
}

static void s_begin(rig_t *r, const char *proxies, const char *extra, bool back, bool dry_run)
{
    s_load(r, proxies, extra);
    s_start(r, back, dry_run, NULL);
}

/* The journal's last "cutover" detail (caller deletes). */
static cJSON *s_journaled(rig_t *r)
{
    char *text = journal_last_event(r->journal, NAME, "cutover");
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static void s_journal_is(rig_t *r, const char *state, int n_switched)
{
    cJSON *j = s_journaled(r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), state);
    if (n_switched >= 0)
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "switched")), n_switched);
    cJSON_Delete(j);
}

static const char *s_str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    if (!s)
        fail_msg("no string \"%s\" in the report", key);
    return s;
}

static const cJSON *s_proxy_report(rig_t *r, int i)
{
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(r->report, "proxies"), i);
    assert_non_null(p);
    return p;
}

/* The end: done called once, with this outcome. */
static void s_ended(rig_t *r, const char *state, const char *outcome, bool switched)
{
    assert_int_equal(r->n_done, 1);
    assert_null(r->cu);
    assert_int_equal(fakelink_pending(&r->link), 0);
    assert_string_equal(s_str(r->report, "state"), state);
    assert_string_equal(s_str(r->report, "outcome"), outcome);
    assert_int_equal(r->switched, switched);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r->report, "finished_at_ms")));
    /* the final report is the journal's last cutover event */
    s_journal_is(r, state, -1);
}

/* ---- answers ------------------------------------------------------------- */

/* Answers s OK with a payload of kind (the oneof field `field`). */
#define ANSWER(s, kind, field, value)                                                            \
    do {                                                                                         \
        Godwit__Result res_ = GODWIT__RESULT__INIT;                                              \
        res_.status = GODWIT__STATUS__STATUS_OK;                                                 \
        res_.payload_case = GODWIT__RESULT__PAYLOAD_##kind;                                      \
        res_.field = (value);                                                                    \
        fakelink_answer((s), &res_, NULL);                                                       \
    } while (0)

static void s_ok_proxy(fakelink_sent_t *s, const char *backend, bool paused)
{
    Godwit__ProxyState ps = GODWIT__PROXY_STATE__INIT;
    ps.proxy = s->cmd->proxy_action->proxy;
    ps.kind = (char *)"pgbouncer";
    ps.backend = (char *)backend;
    ps.paused = paused;
    ps.paused_ms = paused ? 0 : 40;
    ANSWER(s, PROXY, proxy, &ps);
}

static void s_ok_slot(fakelink_sent_t *s)
{
    Godwit__EnsureSlotResult es = GODWIT__ENSURE_SLOT_RESULT__INIT;
    es.created = true;
    es.confirmed_lsn = s->cmd->ensure_slot->advance_to;
    ANSWER(s, ENSURE_SLOT, ensure_slot, &es);
}

/* A proxy command to agent, checked. */
static fakelink_sent_t *s_take_px(rig_t *r, const char *agent, Godwit__ProxyAction__Op op,
                                  const char *backend, bool then_resume)
{
    fakelink_sent_t *s = fakelink_take(&r->link, agent, A(PROXY_ACTION));
    const Godwit__ProxyAction *pa = s->cmd->proxy_action;
    assert_string_equal(pa->proxy, strcmp(agent, PX1) == 0 ? "bouncer" : "haproxy");
    assert_int_equal(pa->op, op);
    assert_string_equal(pa->backend, backend);
    assert_int_equal(pa->then_resume, then_resume);
    assert_int_equal(pa->lease_ms, 15000);
    assert_true(s->timeout_ms > 0);
    return s;
}

static fakelink_sent_t *s_take_fence(rig_t *r, const char *agent, Godwit__FreezeSource__Mode mode)
{
    fakelink_sent_t *s = fakelink_take(&r->link, agent, A(FREEZE_SOURCE));
    assert_int_equal(s->cmd->freeze_source->mode, mode);
    assert_string_equal(s->cmd->freeze_source->database, "shop");
    assert_int_equal(s->cmd->freeze_source->n_app_roles, 1);
    assert_string_equal(s->cmd->freeze_source->app_roles[0], "app");
    assert_int_equal(s->cmd->freeze_source->lease_ms, 7500); /* half the proxies' lease */
    return s;
}

/* ---- the steps, answered OK ----------------------------------------------- */

/* The check before the pause: roles on `to`, our subscription's commits
 * synchronous, the slot for the other direction (slot), connections. */
static void s_check_ok(rig_t *r, bool slot)
{
    cutover_tick(r->cu);
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(VERIFY_ROLES));
    assert_int_equal(s->cmd->verify_roles->n_roles, 1);
    assert_string_equal(s->cmd->verify_roles->roles[0], "app");
    Godwit__VerifyRolesResult vr = GODWIT__VERIFY_ROLES_RESULT__INIT;
    vr.roles = 1;
    ANSWER(s, VERIFY_ROLES, verify_roles, &vr);
    s = fakelink_take(&r->link, r->to, A(TUNE_SUBSCRIPTION));
    assert_string_equal(s->cmd->tune_subscription->name, r->sub);
    assert_true(s->cmd->tune_subscription->synchronous_commit);
    fakelink_ok(s);
    if (slot) {
        s = fakelink_take(&r->link, r->to, A(ENSURE_SLOT));
        assert_string_equal(s->cmd->ensure_slot->name, r->rev);
        assert_int_equal(s->cmd->ensure_slot->advance_to, 0);
        s_ok_slot(s);
    }
    fakelink_ok(s_take_fence(r, r->from, MODE(PREPARE)));
    /* `to` says whether our fence holds it: in a rollback, blue's does */
    Godwit__FreezeSourceResult fr = GODWIT__FREEZE_SOURCE_RESULT__INIT;
    fr.fenced = r->back;
    s = s_take_fence(r, r->to, MODE(PREPARE));
    ANSWER(s, FREEZE_SOURCE, freeze_source, &fr);
    assert_int_equal(fakelink_pending(&r->link), 1); /* the step is not over yet */
    s = s_take_fence(r, r->to, MODE(PREPARE));
    ANSWER(s, FREEZE_SOURCE, freeze_source, &fr);
}

/* The pause, to each holding proxy, journaled "started" before. */
static void s_pause_ok(rig_t *r, int n)
{
    s_journal_is(r, "started", 0);
    for (int i = 0; i < n; i++) {
        fakelink_sent_t *s = s_take_px(r, i ? PX2 : PX1, OP(PAUSE), "", false);
        assert_int_equal(s->cmd->proxy_action->pause_timeout_ms, 1000); /* half the pause */
        assert_true(s->timeout_ms <= 2000); /* inside max_write_pause */
        s_ok_proxy(s, r->back ? GREEN : BLUE, true);
    }
}

static fakelink_sent_t *s_take_freeze(rig_t *r)
{
    fakelink_sent_t *s = s_take_fence(r, r->from, MODE(FREEZE));
    assert_true(s->timeout_ms > 0 && s->timeout_ms <= 2000);
    return s;
}

/* The source's answer: its final LSN and one sequence. */
static void s_answer_freeze(fakelink_sent_t *s)
{
    Godwit__SequenceValue sv = GODWIT__SEQUENCE_VALUE__INIT, *svs[1] = { &sv };
    sv.name = (char *)"orders_id_seq";
    sv.last_value = 42;
    Godwit__FreezeSourceResult f = GODWIT__FREEZE_SOURCE_RESULT__INIT;
    f.final_lsn = FINAL_LSN;
    f.sequences = svs;
    f.n_sequences = 1;
    f.terminated = 2;
    ANSWER(s, FREEZE_SOURCE, freeze_source, &f);
}

static void s_freeze_ok(rig_t *r) { s_answer_freeze(s_take_freeze(r)); }

/* `to`'s sequences from the freeze's answer; unless rehearsing, the fence
 * on `from` made permanent and `to`'s lifted, at once. */
static fakelink_sent_t *s_take_sequences(rig_t *r)
{
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(SET_SEQUENCES));
    const Godwit__SetSequences *ss = s->cmd->set_sequences;
    assert_int_equal(ss->final_lsn, FINAL_LSN);
    assert_string_equal(ss->subscription, r->sub);
    assert_int_equal(ss->n_sequences, 1);
    assert_string_equal(ss->sequences[0]->name, "orders_id_seq");
    assert_int_equal(ss->sequences[0]->last_value, 42);
    assert_true(ss->wait_timeout_ms < 2000);
    return s;
}

static void s_ok_sequences(fakelink_sent_t *s)
{
    Godwit__SetSequencesResult sr = GODWIT__SET_SEQUENCES_RESULT__INIT;
    sr.set = 1;
    sr.lsn = SWITCH_LSN;
    ANSWER(s, SET_SEQUENCES, set_sequences, &sr);
}

static void s_sequences_ok(rig_t *r)
{
    s_ok_sequences(s_take_sequences(r));
    fakelink_ok(s_take_fence(r, r->from, MODE(KEEP)));
    s_journal_is(r, "started", 0); /* "switching" only once the step is over */
    fakelink_ok(s_take_fence(r, r->to, MODE(UNFREEZE)));
}

/* Nothing is sent until ms have passed on the link's clock (ticked 1 ms
 * before and at ms). */
static void s_nothing_until(rig_t *r, uint64_t ms)
{
    assert_int_equal(fakelink_pending(&r->link), 0);
    fakelink_advance(&r->link, ms - 1);
    cutover_tick(r->cu);
    assert_int_equal(fakelink_pending(&r->link), 0);
    fakelink_advance(&r->link, 1);
    cutover_tick(r->cu);
}

/* After the switch: the old subscription, its slot, the new slot moved to
 * the switch position, `from` subscribing to it (follow). */
static void s_after_switch_ok(rig_t *r, bool follow)
{
    /* The application first: the turn begins CUTOVER_SETTLE_MS after the
     * resume, not before. */
    s_nothing_until(r, CUTOVER_SETTLE_MS);
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->subscription, r->sub);
    assert_string_equal(s->cmd->drop_objects->slot, "");
    fakelink_ok(s);
    s = fakelink_take(&r->link, r->from, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->subscription, "");
    assert_string_equal(s->cmd->drop_objects->slot, r->sub);
    fakelink_ok(s);
    if (!follow)
        return;
    s = fakelink_take(&r->link, r->to, A(ENSURE_SLOT));
    assert_string_equal(s->cmd->ensure_slot->name, r->rev);
    assert_int_equal(s->cmd->ensure_slot->advance_to, SWITCH_LSN);
    s_ok_slot(s);
    s = fakelink_take(&r->link, r->from, A(ENSURE_SUBSCRIPTION));
    const Godwit__EnsureSubscription *es = s->cmd->ensure_subscription;
    assert_string_equal(es->name, r->rev);
    assert_string_equal(es->publication, r->rev);
    assert_true(es->attach);
    assert_string_equal(es->source->peer, r->back ? "blue-db" : "green-db");
    fakelink_ok(s);
}

/* After a rehearsal or an abort: asynchronous commits back, the new slot
 * dropped (drop). */
static void s_restore_ok(rig_t *r, bool drop)
{
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(TUNE_SUBSCRIPTION));
    assert_false(s->cmd->tune_subscription->synchronous_commit);
    fakelink_ok(s);
    if (drop) {
        s = fakelink_take(&r->link, r->to, A(DROP_OBJECTS));
        assert_string_equal(s->cmd->drop_objects->slot, r->rev);
        assert_string_equal(s->cmd->drop_objects->subscription, "");
        fakelink_ok(s);
    }
}

/* Up to the freeze sent (n proxies). */
static void s_to_freeze(rig_t *r, int n)
{
    s_check_ok(r, true);
    s_pause_ok(r, n);
}

/* Up to the switch sent (n proxies; slot: made before the pause). */
static void s_to_switch(rig_t *r, int n, bool slot)
{
    s_check_ok(r, slot);
    s_pause_ok(r, n);
    s_freeze_ok(r);
    s_sequences_ok(r);
}

/* The end of an abort once no proxy may point at `to`: `from`'s fence
 * lifted (unfreeze), the n holding proxies resumed, the slot made before
 * the pause dropped. */
static void s_rolled_back(rig_t *r, bool unfreeze, int n)
{
    if (unfreeze)
        fakelink_ok(s_take_fence(r, r->from, MODE(UNFREEZE)));
    for (int i = 0; i < n; i++)
        s_ok_proxy(s_take_px(r, i ? PX2 : PX1, OP(RESUME), "", false), BLUE, false);
    s_restore_ok(r, true);
    s_ended(r, "aborted", "rolled_back", false);
}

/* ---- the happy paths ------------------------------------------------------ */

/* The cutover and its rollback with one PgBouncer that holds: switch and
 * resume in one command. */
static void s_one_proxy(rig_t *r, bool back)
{
    s_begin(r, ONE_PROXY, NULL, back, false);
    const char *to_b = back ? BLUE : GREEN;
    s_to_switch(r, 1, true);
    s_journal_is(r, "switching", 0);
    fakelink_sent_t *s = s_take_px(r, PX1, OP(SWITCH), to_b, true);
    assert_int_equal(fakelink_pending(&r->link), 0); /* no separate resume */
    s_ok_proxy(s, to_b, false);
    s_after_switch_ok(r, true);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "direction"), back ? "back" : "forward");
    assert_string_equal(s_str(r->report, "to"), to_b);
    assert_string_equal(s_str(r->report, "final_lsn"), "0/1000000");
    assert_string_equal(s_str(r->report, "switch_lsn"), "0/2000000");
    assert_string_equal(s_str(r->report, "follow"), "streaming");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r->report, "reason")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r->report, "write_pause_ms")));
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(r->report, "sequences")), 1);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(r->report, "sessions_terminated")),
                     2);
    const cJSON *p = s_proxy_report(r, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "switch_confirmed")));
    assert_string_equal(s_str(p, "left"), to_b);
}

static void test_cutover_one_proxy(void **state) { s_one_proxy(*state, false); }
static void test_rollback_one_proxy(void **state) { s_one_proxy(*state, true); }

/* Two proxies: every one switched, then every one resumed (a failed
 * switch of one must be undone on both before any resumes). reverse: off:
 * no slot made before, no follow after. */
static void test_two_proxies_switch_then_resume(void **state)
{
    rig_t *r = *state;
    s_begin(r, TWO_PROXIES, "      reverse: off\n", false, false);
    s_to_switch(r, 2, false);
    fakelink_sent_t *s1 = s_take_px(r, PX1, OP(SWITCH), GREEN, false);
    fakelink_sent_t *s2 = s_take_px(r, PX2, OP(SWITCH), GREEN, false);
    s_ok_proxy(s1, GREEN, true);
    assert_int_equal(fakelink_pending(&r->link), 0); /* no resume before both switched */
    s_ok_proxy(s2, GREEN, true);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_ok_proxy(s_take_px(r, PX2, OP(RESUME), "", false), GREEN, false);
    s_after_switch_ok(r, false);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "follow"), "off");
    assert_string_equal(s_str(s_proxy_report(r, 1), "left"), GREEN);
}

/* A proxy that cannot hold (nginx) is switched, never paused nor resumed,
 * and never merged. */
static void test_proxy_that_cannot_hold(void **state)
{
    rig_t *r = *state;
    s_begin(r, "        - {agent: " PX1 ", proxy: bouncer, hold: false}\n", NULL, false, false);
    s_check_ok(r, true);
    s_freeze_ok(r); /* no pause before it */
    s_sequences_ok(r);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, false), GREEN, false);
    s_after_switch_ok(r, true); /* no resume before it */
    s_ended(r, "done", "done", true);
}

/* ---- aborts --------------------------------------------------------------- */

/* Answers the oldest command OK, without payload. */
static void s_ok_oldest(rig_t *r)
{
    const fakelink_sent_t *s = fakelink_peek(&r->link);
    assert_non_null(s);
    fakelink_ok(fakelink_take(&r->link, s->agent, s->cmd->action_case));
}

/* The role check finds a gap: refused, nothing paused or fenced; the slot
 * made for the other direction dropped. */
static void test_check_refused(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    cutover_tick(r->cu);
    Godwit__SchemaFinding f = GODWIT__SCHEMA_FINDING__INIT, *fs[1] = { &f };
    f.object = (char *)"role app";
    f.problem = (char *)"missing on the target";
    f.statement = (char *)"CREATE ROLE app";
    Godwit__VerifyRolesResult vr = GODWIT__VERIFY_ROLES_RESULT__INIT;
    vr.findings = fs;
    vr.n_findings = 1;
    ANSWER(fakelink_take(&r->link, GREEN, A(VERIFY_ROLES)), VERIFY_ROLES, verify_roles, &vr);
    for (int i = 0; i < 5; i++) /* the rest of the check */
        s_ok_oldest(r);
    s_restore_ok(r, true);
    s_ended(r, "aborted", "refused", false);
    assert_non_null(strstr(s_str(r->report, "reason"), "CREATE ROLE app"));
    assert_null(cJSON_GetObjectItem(r->report, "final_lsn")); /* never frozen */
}

typedef enum { AT_PAUSE, AT_FREEZE, AT_FREEZE_TIMEOUT, AT_SEQUENCES, AT_SWITCH } abort_at_t;

/* A step failing before any proxy was sent the switch: no switch back, the
 * fence lifted if the freeze was sent, the proxies resumed, the slot made
 * before the pause dropped. AT_FREEZE_TIMEOUT: the freeze does not answer;
 * past max_write_pause on the fake clock a tick sends nothing (the step is
 * in flight); the link's timeout, set to what was left of the pause, fails
 * it. AT_SWITCH: two proxies, px2 gone before the switch: none is sent it. */
static void s_abort_at(rig_t *r, abort_at_t at)
{
    static const char *const why[] = {
        "pause: px1: bouncer unreachable", "freeze: blue: deadlock detected",
        "freeze: blue: timed out", "sequences: green: sequence missing",
        "switch: px2: not connected: no proxy was sent the switch",
    };
    int n = at == AT_SWITCH ? 2 : 1;
    s_begin(r, n == 2 ? TWO_PROXIES : ONE_PROXY, NULL, false, false);
    s_check_ok(r, true);
    if (at == AT_PAUSE) {
        fakelink_failed(s_take_px(r, PX1, OP(PAUSE), "", false), "bouncer unreachable");
    } else {
        s_pause_ok(r, n);
        fakelink_sent_t *f = s_take_freeze(r);
        if (at == AT_FREEZE) {
            fakelink_failed(f, "deadlock detected");
        } else if (at == AT_FREEZE_TIMEOUT) {
            fakelink_advance(&r->link, 2001);
            cutover_tick(r->cu);
            assert_int_equal(fakelink_pending(&r->link), 0);
            fakelink_answer(f, NULL, "timed out");
        } else if (at == AT_SEQUENCES) {
            s_answer_freeze(f);
            fakelink_failed(s_take_sequences(r), "sequence missing");
            fakelink_ok(s_take_fence(r, BLUE, MODE(KEEP)));
            fakelink_ok(s_take_fence(r, GREEN, MODE(UNFREEZE)));
        } else {
            s_answer_freeze(f);
            fakelink_agent(&r->link, PX2, NULL, NULL);
            s_sequences_ok(r);
        }
    }
    s_journal_is(r, "aborting", 0); /* never "unfreezing": nothing was switched */
    s_rolled_back(r, at != AT_PAUSE, n);
    assert_string_equal(s_str(r->report, "reason"), why[at]);
    for (int i = 0; i < n; i++) {
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(s_proxy_report(r, i), "switch_sent")));
        assert_string_equal(s_str(s_proxy_report(r, i), "left"), BLUE);
    }
}

static void test_abort_at_pause(void **state) { s_abort_at(*state, AT_PAUSE); }
static void test_abort_at_freeze(void **state) { s_abort_at(*state, AT_FREEZE); }
static void test_abort_freeze_times_out(void **state) { s_abort_at(*state, AT_FREEZE_TIMEOUT); }
static void test_abort_at_sequences(void **state) { s_abort_at(*state, AT_SEQUENCES); }
static void test_abort_proxy_gone_before_switch(void **state) { s_abort_at(*state, AT_SWITCH); }

/* The merged switch fails before its resume: the proxy switched back, the
 * abort journaled "unfreezing" before the fence is lifted, then resumed. */
static void test_abort_at_merged_switch(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    s_to_switch(r, 1, true);
    fakelink_failed(s_take_px(r, PX1, OP(SWITCH), GREEN, true), "reload failed");
    s_journal_is(r, "aborting", 1);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), BLUE, false), BLUE, true);
    s_journal_is(r, "unfreezing", 1); /* before the unfreeze was sent */
    s_rolled_back(r, true, 1);
    const cJSON *p = s_proxy_report(r, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "switch_sent")));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(p, "switch_confirmed")));
    assert_string_equal(s_str(p, "left"), BLUE);
}

/* Abort steps are tried again, after CU_RETRY_MS on the link's clock, to
 * what did not confirm only (abort_timeout far away). */
static void test_abort_steps_retry_what_did_not_confirm(void **state)
{
    rig_t *r = *state;
    s_begin(r, TWO_PROXIES, "      abort_timeout: 60s\n", false, false);
    s_to_freeze(r, 2);
    fakelink_failed(s_take_freeze(r), "deadlock detected");
    fakelink_answer(s_take_fence(r, BLUE, MODE(UNFREEZE)), NULL, "not connected");
    cutover_tick(r->cu);
    s_nothing_until(r, 1000); /* CU_RETRY_MS */
    fakelink_sent_t *s = s_take_fence(r, BLUE, MODE(UNFREEZE));
    assert_true(s->timeout_ms <= 3000); /* one try of an abort step */
    fakelink_ok(s);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    fakelink_failed(s_take_px(r, PX2, OP(RESUME), "", false), "admin console busy");
    fakelink_advance(&r->link, 1000);
    cutover_tick(r->cu);
    s_ok_proxy(s_take_px(r, PX2, OP(RESUME), "", false), BLUE, false); /* px2 only */
    s_restore_ok(r, true);
    s_ended(r, "aborted", "rolled_back", false);
}

/* Two proxies; px2's switch fails and its switch back cannot reach it
 * (abort_timeout: 1s, less than one retry: given up at once): px2 is
 * unknown, blue stays fenced (px2 may point at green), px1 is switched back
 * and resumed, px2 not resumed. */
static void test_abort_gives_up_on_unreachable_proxy(void **state)
{
    rig_t *r = *state;
    s_begin(r, TWO_PROXIES, "      abort_timeout: 1s\n", false, false);
    s_to_switch(r, 2, true);
    fakelink_sent_t *s1 = s_take_px(r, PX1, OP(SWITCH), GREEN, false);
    fakelink_sent_t *s2 = s_take_px(r, PX2, OP(SWITCH), GREEN, false);
    s_ok_proxy(s1, GREEN, true);
    fakelink_answer(s2, NULL, "timed out");
    s_journal_is(r, "aborting", 2);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), BLUE, false), BLUE, true);
    /* px2 never answers; past abort_timeout the abort goes on without it */
    for (int guard = 0; guard < 100 && fakelink_peek(&r->link) &&
                        strcmp(fakelink_peek(&r->link)->agent, PX2) == 0;
         guard++) {
        fakelink_answer(s_take_px(r, PX2, OP(SWITCH), BLUE, false), NULL, "not connected");
        fakelink_advance(&r->link, 1000);
        cutover_tick(r->cu);
    }
    /* no unfreeze: the next is px1's resume */
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    s_restore_ok(r, true);
    s_ended(r, "aborted", "unknown", false);
    assert_string_equal(s_str(s_proxy_report(r, 0), "left"), BLUE);
    const cJSON *p2 = s_proxy_report(r, 1);
    assert_string_equal(s_str(p2, "left"), "unknown");
    assert_non_null(strstr(s_str(p2, "why"), "switch back to blue was not confirmed"));
    assert_true(strncmp(s_str(r->report, "source_left"), "fenced", 6) == 0);
}

/* ---- the rehearsal ---------------------------------------------------------- */

static void test_dry_run(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, true);
    s_check_ok(r, false); /* no slot for a rehearsal */
    s_pause_ok(r, 1);
    s_freeze_ok(r);
    s_ok_sequences(s_take_sequences(r)); /* no permanent fence, no lift on green */
    s_journal_is(r, "started", 0);       /* never "switching" */
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    s_restore_ok(r, false);
    s_ended(r, "done", "done", false);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r->report, "dry_run")));
    assert_null(cJSON_GetObjectItem(r->report, "switch_lsn"));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r->report, "write_pause_ms")));
    assert_string_equal(s_str(s_proxy_report(r, 0), "left"), BLUE);
}

/* ---- a restart ---------------------------------------------------------------- */

/* The coordinator stops: the cutover cancelled, its commands fail; the
 * journal's last detail is what the next one recovers from (caller
 * deletes). done is never called. */
static cJSON *s_restart(rig_t *r)
{
    cutover_cancel(&r->cu);
    assert_null(r->cu);
    fakelink_drain(&r->link, "coordinator stopping");
    assert_int_equal(r->n_done, 0);
    return s_journaled(r);
}

/* A restarted coordinator's cutover, from the journal's detail j (deleted). */
static void s_recover(rig_t *r, cJSON *j)
{
    assert_non_null(j);
    s_start(r, false, false, j);
    cJSON_Delete(j);
    cutover_tick(r->cu);
}

/* Stopped in "started" (the freeze in flight): rolled back, the fence
 * lifted as it may be up, every proxy resumed, no switch back. */
static void test_restart_in_started_rolls_back(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    s_to_freeze(r, 1);
    cJSON *j = s_restart(r);
    assert_string_equal(s_str(j, "state"), "started");
    s_recover(r, j);
    s_rolled_back(r, true, 1);
    assert_string_equal(s_str(r->report, "recovered_from"), "started");
    assert_string_equal(s_str(r->report, "reason"), "the coordinator restarted during the cutover");
}

/* A recovered switch is finished step by step (never merged), at the
 * journaled switch LSN. */
static void s_switch_finished(rig_t *r)
{
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, false), GREEN, true);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_after_switch_ok(r, true);
    s_ended(r, "done", "done", true);
}

/* Stopped in "switching" (the merged switch in flight): finished. */
static void test_restart_in_switching_finishes(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    s_to_switch(r, 1, true);
    fakelink_sent_t *s = s_take_px(r, PX1, OP(SWITCH), GREEN, true);
    cutover_cancel(&r->cu);
    fakelink_answer(s, NULL, "coordinator stopping"); /* the last in flight: freed */
    cJSON *j = s_restart(r);
    assert_string_equal(s_str(j, "state"), "switching");
    assert_string_equal(s_str(j, "switch_lsn"), "0/2000000");
    s_recover(r, j);
    s_switch_finished(r);
    assert_string_equal(s_str(r->report, "recovered_from"), "switching");
}

/* Stopped while aborting with a proxy switched: rolled back within
 * lease - max_write_pause (15 s - 2 s) of the "aborting" record, else
 * finished (a proxy's lease may have resumed it on green). */
static void test_restart_in_aborting(void **state)
{
    rig_t *r = *state;
    s_load(r, ONE_PROXY, NULL);
    char text[160];
    snprintf(text, sizeof text, "{\"state\":\"aborting\",\"switched\":[0],\"at_ms\":%llu}",
             (unsigned long long)(r->link.now_ms - 12999));
    s_recover(r, cJSON_Parse(text));
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), BLUE, false), BLUE, true);
    s_rolled_back(r, true, 1);
    cJSON_Delete(r->report);
    r->report = NULL;
    r->n_done = 0;
    snprintf(text, sizeof text, "{\"state\":\"aborting\",\"switched\":[0],\"at_ms\":%llu,"
             "\"switch_lsn\":\"0/2000000\"}", (unsigned long long)(r->link.now_ms - 13000));
    s_recover(r, cJSON_Parse(text));
    s_switch_finished(r);
}

/* ---- the budget, on the link's clock -------------------------------------- */

/* The write pause's budget and the abort's deadline run on the link's
 * monotonic clock: the time the pause took is taken from the freeze's
 * timeout. */
static void test_budget_on_link_clock(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    s_check_ok(r, true);
    fakelink_sent_t *s = s_take_px(r, PX1, OP(PAUSE), "", false);
    fakelink_advance(&r->link, 1500); /* the pause took 1.5 s of the 2 s */
    s_ok_proxy(s, BLUE, true);
    s = s_take_freeze(r);
    uint64_t timeout = s->timeout_ms;
    fakelink_ok(s);
    assert_true(timeout <= 500);
}

/* ---- `to`'s fence, lifted by the sequences step, made again by an abort --- */

/* The abort's FREEZE of blue: for good, no lease. */
static fakelink_sent_t *s_take_refence(rig_t *r)
{
    fakelink_sent_t *s = fakelink_take(&r->link, BLUE, A(FREEZE_SOURCE));
    assert_int_equal(s->cmd->freeze_source->mode, MODE(FREEZE));
    assert_true(s->cmd->freeze_source->permanent);
    assert_int_equal(s->cmd->freeze_source->lease_ms, 0);
    assert_int_equal(s->cmd->freeze_source->n_app_roles, 1);
    assert_string_equal(s->cmd->freeze_source->app_roles[0], "app");
    return s;
}

/* A rollback whose sequences step failed after it lifted blue's fence (the
 * one the cutover made permanent): the abort fences blue again, for good,
 * before it lifts green's, and only then resumes. Returns the FREEZE. */
static fakelink_sent_t *s_rollback_aborted_after_lift(rig_t *r, const char *extra)
{
    s_begin(r, ONE_PROXY, extra, true, false);
    s_to_freeze(r, 1);
    s_freeze_ok(r);
    cJSON *j = s_journaled(r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "to_fenced"))); /* PREPARE said so */
    cJSON_Delete(j);
    fakelink_failed(s_take_sequences(r), "sequence missing");
    fakelink_ok(s_take_fence(r, GREEN, MODE(KEEP)));
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE))); /* blue writable from here */
    fakelink_sent_t *s = s_take_refence(r);
    assert_int_equal(fakelink_pending(&r->link), 0); /* green still fenced meanwhile */
    return s;
}

static void test_abort_after_sequences_fences_to_again(void **state)
{
    rig_t *r = *state;
    fakelink_ok(s_rollback_aborted_after_lift(r, NULL));
    fakelink_ok(s_take_fence(r, GREEN, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_restore_ok(r, true);
    s_ended(r, "aborted", "rolled_back", false);
    assert_null(cJSON_GetObjectItem(r->report, "target_left"));
}

/* The fence cannot be made again before abort_timeout: `from` (green)
 * keeps its fence too, and the report says why. */
static void test_abort_that_cannot_fence_to_keeps_from_fenced(void **state)
{
    rig_t *r = *state;
    fakelink_answer(s_rollback_aborted_after_lift(r, "      abort_timeout: 1s\n"), NULL,
                    "timed out");
    int tries = 1;
    for (int guard = 0; guard < 100; guard++) {
        fakelink_advance(&r->link, 1000);
        cutover_tick(r->cu);
        const fakelink_sent_t *p = fakelink_peek(&r->link);
        if (!p || strcmp(p->agent, BLUE) != 0)
            break;
        fakelink_answer(s_take_refence(r), NULL, "not connected");
        tries++;
    }
    assert_true(tries >= 1 && tries <= 2); /* abort_timeout is 1 s, a retry 1 s later */
    /* no unfreeze of green: the next is the resume */
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_restore_ok(r, true);
    s_ended(r, "aborted", "unknown", false);
    assert_non_null(strstr(s_str(r->report, "target_left"), "could not be made again"));
    assert_true(strncmp(s_str(r->report, "source_left"), "fenced", 6) == 0);
}

/* A first cutover: green was never fenced, so an abort after the sequences
 * step has nothing to fence again. */
static void test_abort_after_sequences_of_a_first_cutover(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, false, false);
    s_to_freeze(r, 1);
    s_freeze_ok(r);
    fakelink_failed(s_take_sequences(r), "sequence missing");
    fakelink_ok(s_take_fence(r, BLUE, MODE(KEEP)));
    fakelink_ok(s_take_fence(r, GREEN, MODE(UNFREEZE)));
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE))); /* no FREEZE of green before */
}

/* A restart in "started" of a rollback: the sequences step may have lifted
 * blue's fence, so the recovered abort makes it again. */
static void test_restart_of_a_rollback_fences_to_again(void **state)
{
    rig_t *r = *state;
    s_begin(r, ONE_PROXY, NULL, true, false);
    s_to_freeze(r, 1);
    cJSON *j = s_restart(r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "to_fenced")));
    s_start(r, true, false, j);
    cJSON_Delete(j);
    cutover_tick(r->cu);
    bool refenced = false, unfrozen_after = false;
    for (int guard = 0; guard < 20 && r->cu && fakelink_peek(&r->link); guard++) {
        const fakelink_sent_t *s = fakelink_peek(&r->link);
        if (strcmp(s->agent, BLUE) == 0 && s->cmd->action_case == A(FREEZE_SOURCE) &&
            s->cmd->freeze_source->mode == MODE(FREEZE) && s->cmd->freeze_source->permanent)
            refenced = true;
        if (strcmp(s->agent, GREEN) == 0 && s->cmd->action_case == A(FREEZE_SOURCE) &&
            s->cmd->freeze_source->mode == MODE(UNFREEZE))
            unfrozen_after = refenced;
        s_ok_oldest(r);
    }
    assert_true(refenced);
    assert_true(unfrozen_after);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

/* ---- cutover groups ------------------------------------------------------ */

/* One member of a group: its migration (database) and what its done said. */
typedef struct {
    const char *name;
    cutover_t *cu;
    cJSON *report;
    bool switched;
    int n_done;
} member_t;

static void s_member_done(cJSON *report, bool switched, void *arg)
{
    member_t *m = arg;
    assert_int_equal(m->n_done, 0);
    m->n_done++;
    m->report = report;
    m->switched = switched;
    m->cu = NULL;
}

/* The database (migration) a command of a group's member is about. */
static const char *s_about(const fakelink_sent_t *s)
{
    const Godwit__Command *c = s->cmd;
    switch (c->action_case) {
    case A(VERIFY_ROLES): return c->verify_roles->database;
    case A(TUNE_SUBSCRIPTION): return c->tune_subscription->database;
    case A(ENSURE_SLOT): return c->ensure_slot->database;
    case A(FREEZE_SOURCE): return c->freeze_source->database;
    case A(SET_SEQUENCES): return c->set_sequences->database;
    case A(DROP_OBJECTS): return c->drop_objects->database;
    case A(ENSURE_SUBSCRIPTION): return c->ensure_subscription->database;
    case A(PROXY_ACTION): /* bouncer_shop, bouncer_shop2 */
        return c->proxy_action->proxy + strlen("bouncer_");
    default: fail_msg("unexpected action %d", (int)c->action_case);
    }
    return NULL;
}

typedef struct {
    const char *only;      /* answer only the commands about this database; NULL: all */
    bool hold_pause;       /* leave the proxies' PAUSE commands unanswered */
    const char *fail_db;   /* fail this database's... */
    int fail_action;       /* ...command of this action (0: none) */
    unsigned switches;     /* SWITCH commands answered */
    unsigned resumes;      /* RESUME commands answered */
    unsigned with_resume;  /* ... of them with then_resume */
} answers_t;

/* Answers every pending command that a.only selects, OK with a payload fit
 * for its action, or failed as a says; again until none is left. */
static void s_answer(rig_t *r, answers_t *a)
{
    for (;;) {
        const fakelink_sent_t *p = fakelink_peek(&r->link);
        while (p && ((a->only && strcmp(s_about(p), a->only) != 0) ||
                     (a->hold_pause && p->cmd->action_case == A(PROXY_ACTION) &&
                      p->cmd->proxy_action->op == OP(PAUSE))))
            p = p->next;
        if (!p)
            return;
        fakelink_sent_t *s = fakelink_take_this(&r->link, p);
        const char *db = s_about(s);
        int action = (int)s->cmd->action_case;
        if (a->fail_db && strcmp(db, a->fail_db) == 0 && action == a->fail_action) {
            a->fail_db = NULL; /* once */
            fakelink_failed(s, "planted failure");
            continue;
        }
        switch (s->cmd->action_case) {
        case A(VERIFY_ROLES): {
            Godwit__VerifyRolesResult vr = GODWIT__VERIFY_ROLES_RESULT__INIT;
            vr.roles = 1;
            ANSWER(s, VERIFY_ROLES, verify_roles, &vr);
            break;
        }
        case A(ENSURE_SLOT): s_ok_slot(s); break;
        case A(SET_SEQUENCES): s_ok_sequences(s); break;
        case A(FREEZE_SOURCE):
            if (s->cmd->freeze_source->mode == MODE(FREEZE))
                s_answer_freeze(s);
            else
                fakelink_ok(s);
            break;
        case A(PROXY_ACTION): {
            const Godwit__ProxyAction *pa = s->cmd->proxy_action;
            if (pa->op == OP(SWITCH)) {
                a->switches++;
                a->with_resume += pa->then_resume;
            }
            a->resumes += pa->op == OP(RESUME);
            s_ok_proxy(s, pa->op == OP(SWITCH) ? pa->backend : BLUE, pa->op == OP(PAUSE));
            break;
        }
        default: fakelink_ok(s); break;
        }
    }
}

/* Pending proxy commands of op. */
static size_t s_pending_op(rig_t *r, Godwit__ProxyAction__Op op)
{
    size_t n = 0;
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        n += s->cmd->action_case == A(PROXY_ACTION) && s->cmd->proxy_action->op == op;
    return n;
}

/* A group of shop and shop2 (each its own PgBouncer entry on px1), started
 * (back: a rollback group) and ticked once. */
static void s_group_dir(rig_t *r, member_t m[2], bool back)
{
    char err[512];
    static const char text[] =
        "migrations:\n"
        "  - {name: shop, source: {agent: " BLUE ", database: shop}, target: {agent: " GREEN
        ", database: shop}, replication: {peer: b}, reverse_replication: {peer: g},"
        " cutover: {app_roles: [app], proxies: [{agent: " PX1 ", proxy: bouncer_shop}]}}\n"
        "  - {name: shop2, source: {agent: " BLUE ", database: shop2}, target: {agent: " GREEN
        ", database: shop2}, replication: {peer: b}, reverse_replication: {peer: g},"
        " cutover: {app_roles: [app], proxies: [{agent: " PX1 ", proxy: bouncer_shop2}]}}\n";
    if (!plan_load_string("plan.yaml", text, &r->plan, err, sizeof err))
        fail_msg("%s", err);
    assert_true(journal_migration_create(r->journal, "shop2", "{}", "streaming", err, sizeof err));
    cutgroup_t *g = cutgroup_new(2);
    for (int i = 0; i < 2; i++) {
        const plan_migration_t *pm = plan_at(&r->plan, (size_t)i);
        m[i] = (member_t){ .name = pm->name };
        char obj[64], rev[64];
        snprintf(obj, sizeof obj, "godwit_%s", pm->name);
        snprintf(rev, sizeof rev, "godwit_%s_rev", pm->name);
        m[i].cu = cutover_start(&r->link.link, r->journal, pm, obj, rev, back, false, NULL, NULL,
                                s_member_done, &m[i]);
        cutgroup_join(g, m[i].cu);
    }
    for (int i = 0; i < 2; i++)
        cutover_tick(m[i].cu);
}

static void s_group(rig_t *r, member_t m[2]) { s_group_dir(r, m, false); }

/* The state of a member's last "cutover" record, "" when none. */
static void s_member_journal_is(rig_t *r, const char *name, const char *state)
{
    char *text = journal_last_event(r->journal, name, "cutover");
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const char *got = j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")) : NULL;
    assert_string_equal(got ? got : "", state);
    cJSON_Delete(j);
    free(text);
}

static void s_members_free(member_t m[2])
{
    for (int i = 0; i < 2; i++) {
        cutover_cancel(&m[i].cu);
        cJSON_Delete(m[i].report);
    }
}

/* Answers as a says and ticks both members until both ended. */
static void s_group_to_end(rig_t *r, member_t m[2], answers_t *a)
{
    while (m[0].n_done + m[1].n_done < 2) {
        s_answer(r, a);
        fakelink_advance(&r->link, CUTOVER_SETTLE_MS);
        for (int i = 0; i < 2; i++)
            if (m[i].cu)
                cutover_tick(m[i].cu);
    }
}

/* A group: no member pauses before every member passed its check; the
 * fence requests on blue name both databases; the switch and the resume
 * are separate for every member; both "switching" records are written
 * before either switch is sent; both end done. */
static void test_group_switches_together(void **state)
{
    rig_t *r = *state;
    member_t m[2];
    s_group(r, m);
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        if (s->cmd->action_case == A(FREEZE_SOURCE) && strcmp(s->agent, BLUE) == 0) {
            assert_int_equal(s->cmd->freeze_source->n_group_databases, 2);
            assert_string_equal(s->cmd->freeze_source->group_databases[1], "shop2");
        }
    /* the check, outside the pause, has 250 ms more per database of the group */
    int checks = 0;
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        if (s->cmd->action_case == A(VERIFY_ROLES)) {
            assert_int_equal(s->timeout_ms, 10500);
            checks++;
        }
    assert_int_equal(checks, 2);
    answers_t a = { .only = "shop", .hold_pause = true };
    s_answer(r, &a);
    assert_int_equal(s_pending_op(r, OP(PAUSE)), 0); /* shop waits for shop2 */
    s_member_journal_is(r, "shop", "");
    a.only = "shop2";
    s_answer(r, &a);
    /* shop2's check was the last: both "started" (one transaction), then
     * both pauses at once */
    assert_int_equal(s_pending_op(r, OP(PAUSE)), 2);
    s_member_journal_is(r, "shop", "started");
    s_member_journal_is(r, "shop2", "started");
    /* shop2's pause confirmed first: its freeze waits for shop's pause */
    a.hold_pause = false;
    s_answer(r, &a);
    assert_int_equal(s_pending_op(r, OP(PAUSE)), 1);
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        assert_int_not_equal(s->cmd->action_case, A(FREEZE_SOURCE));
    a.only = NULL;
    s_group_to_end(r, m, &a);
    assert_int_equal(a.switches, 2);
    assert_int_equal(a.with_resume, 0);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(s_str(m[i].report, "state"), "done");
        assert_true(m[i].switched);
    }
    s_members_free(m);
}

/* One member's freeze fails: both abort, nothing is switched, every
 * proxy paused is resumed, both reports say why. */
static void test_group_aborts_together(void **state)
{
    rig_t *r = *state;
    member_t m[2];
    s_group(r, m);
    answers_t a = { .fail_db = "shop2", .fail_action = A(FREEZE_SOURCE) };
    /* the check's PREPARE to blue for shop2 would fail first: let the
     * check pass, then plant the failure at the freeze */
    answers_t check = { .hold_pause = true };
    s_answer(r, &check);
    assert_int_equal(s_pending_op(r, OP(PAUSE)), 2);
    /* the pauses */
    for (int i = 0; i < 2; i++) {
        fakelink_sent_t *s = fakelink_take_any(&r->link, PX1, A(PROXY_ACTION));
        s_ok_proxy(s, BLUE, true);
    }
    while (m[0].n_done + m[1].n_done < 2) {
        s_answer(r, &a);
        for (int i = 0; i < 2; i++)
            if (m[i].cu)
                cutover_tick(m[i].cu);
    }
    assert_int_equal(a.switches, 0);
    assert_int_equal(a.resumes, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(s_str(m[i].report, "state"), "aborted");
        assert_false(m[i].switched);
    }
    assert_non_null(strstr(s_str(m[0].report, "reason"), "database shop2 of the cutover group"));
    assert_non_null(strstr(s_str(m[1].report, "reason"), "planted failure"));
    s_members_free(m);
}

/* A rollback group: green is fenced for both databases in each request,
 * both proxies switch back to blue, both end done. */
static void test_group_rolls_back_together(void **state)
{
    rig_t *r = *state;
    member_t m[2];
    s_group_dir(r, m, true);
    /* the check's PREPARE goes to both sides; green's arms the fence of
     * both databases */
    int fences = 0;
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        if (s->cmd->action_case == A(FREEZE_SOURCE) && strcmp(s->agent, GREEN) == 0) {
            const Godwit__FreezeSource *fs = s->cmd->freeze_source;
            assert_int_equal(fs->n_group_databases, 2);
            /* armed: the file outlives the group's slowest check and its
             * pause (half the proxies' lease, the check's bound for a group
             * of two, max_write_pause) */
            assert_true(fs->arm);
            assert_int_equal(fs->lease_ms, 7500 + CUTOVER_CHECK_MS(2) + 2000);
            fences++;
        }
    assert_int_equal(fences, 2);
    answers_t a = { 0 };
    s_group_to_end(r, m, &a);
    assert_int_equal(a.switches, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(s_str(m[i].report, "state"), "done");
        assert_string_equal(s_str(m[i].report, "direction"), "back");
        assert_string_equal(s_str(m[i].report, "to"), "blue");
        assert_true(m[i].switched);
    }
    s_members_free(m);
}

/* ---- engine: mariadb ------------------------------------------------------ */

#define FINAL_GTID "0-1-100"
#define SWITCH_GTID "0-2-5"

static void s_load_mariadb(rig_t *r, const char *extra)
{
    char text[2048], err[512];
    snprintf(text, sizeof text,
             "migrations:\n"
             "  - name: " NAME "\n"
             "    engine: mariadb\n"
             "    source: {agent: " BLUE ", database: shop}\n"
             "    target: {agent: " GREEN ", database: shop}\n"
             "    replication: {peer: blue-db}\n"
             "    reverse_replication: {peer: green-db}\n"
             "    cutover:\n"
             "      app_roles: [app]\n"
             "      max_write_pause: 2s\n"
             "      lease: 15s\n"
             "%s"
             "      proxies:\n" ONE_PROXY,
             extra ? extra : "");
    if (!plan_load_string("plan.yaml", text, &r->plan, err, sizeof err))
        fail_msg("%s", err);
}

/* Answers s (ReplicaStatus or MyFollow) with connection conn's state. */
static void s_ok_replica(fakelink_sent_t *s, const char *conn, bool exists, bool running,
                         const char *error)
{
    Godwit__MariadbReplica rp = GODWIT__MARIADB_REPLICA__INIT;
    rp.connection_name = (char *)conn;
    rp.io_running = running;
    rp.sql_running = running;
    rp.seconds_behind = running ? 0 : -1;
    rp.last_error = (char *)error;
    Godwit__ReplicaStatusResult rs = GODWIT__REPLICA_STATUS_RESULT__INIT;
    rs.exists = exists;
    rs.replica = exists ? &rp : NULL;
    rs.gtid_slave_pos = (char *)"0-1-99";
    ANSWER(s, REPLICA_STATUS, replica_status, &rs);
}

/* MariaDB's check: our connection on `to` runs; `from` armed; `to`'s
 * PREPARE (fenced in a rollback). No roles, subscription, slot, rows. */
static void s_my_check(rig_t *r, bool running, const char *error)
{
    cutover_tick(r->cu);
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(REPLICA_STATUS));
    assert_string_equal(s->cmd->replica_status->connection, r->sub);
    s_ok_replica(s, r->sub, true, running, error);
    s = s_take_fence(r, r->from, MODE(PREPARE));
    assert_true(s->cmd->freeze_source->arm);
    assert_int_equal(s->cmd->freeze_source->n_check, 0);
    fakelink_ok(s);
    Godwit__FreezeSourceResult fr = GODWIT__FREEZE_SOURCE_RESULT__INIT;
    fr.fenced = r->back;
    s = s_take_fence(r, r->to, MODE(PREPARE));
    assert_int_equal(s->cmd->freeze_source->n_check, 0);
    ANSWER(s, FREEZE_SOURCE, freeze_source, &fr);
}

static void s_my_freeze_ok(rig_t *r)
{
    fakelink_sent_t *s = s_take_freeze(r);
    assert_int_equal(s->cmd->freeze_source->n_check, 0);
    Godwit__FreezeSourceResult f = GODWIT__FREEZE_SOURCE_RESULT__INIT;
    f.final_gtid = (char *)FINAL_GTID;
    f.terminated = 2;
    ANSWER(s, FREEZE_SOURCE, freeze_source, &f);
}

/* The promote to `to` (the final GTID, our connection), journaled
 * "promoting" with the final GTID before it; `from`'s KEEP answered. */
static fakelink_sent_t *s_take_promote(rig_t *r)
{
    fakelink_sent_t *s = fakelink_take(&r->link, r->to, A(PROMOTE));
    const Godwit__Promote *pr = s->cmd->promote;
    assert_string_equal(pr->database, "shop");
    assert_string_equal(pr->final_gtid, FINAL_GTID);
    assert_string_equal(pr->replica_connection, r->sub);
    assert_int_equal(pr->final_lsn, 0);
    assert_int_equal(pr->n_check, 0);
    assert_int_equal(pr->n_app_roles, 1);
    assert_true(pr->wait_timeout_ms > 0 && pr->wait_timeout_ms < 2000);
    cJSON *j = s_journaled(r);
    assert_string_equal(s_str(j, "state"), "promoting");
    assert_string_equal(s_str(j, "final_gtid"), FINAL_GTID);
    cJSON_Delete(j);
    fakelink_ok(s_take_fence(r, r->from, MODE(KEEP)));
    return s;
}

static void s_ok_promote(fakelink_sent_t *s)
{
    Godwit__PromoteResult p = GODWIT__PROMOTE_RESULT__INIT;
    p.promoted_gtid = (char *)SWITCH_GTID;
    p.roles = 1;
    ANSWER(s, PROMOTE, promote, &p);
}

/* `from` follows `to` from the switch GTID through the other connection. */
static void s_my_rejoin_ok(rig_t *r)
{
    fakelink_sent_t *s = fakelink_take(&r->link, r->from, A(MY_FOLLOW));
    const Godwit__MyFollow *mf = s->cmd->my_follow;
    assert_string_equal(mf->database, "shop");
    assert_string_equal(mf->connection, r->rev);
    assert_string_equal(mf->gtid, SWITCH_GTID);
    assert_string_equal(mf->source->peer, r->back ? "blue-db" : "green-db");
    s_ok_replica(s, r->rev, true, true, "");
}

static void s_my_one(rig_t *r, bool back)
{
    s_load_mariadb(r, NULL);
    s_start(r, back, false, NULL);
    const char *to_b = back ? BLUE : GREEN;
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    s_ok_promote(s_take_promote(r));
    cJSON *j = s_journaled(r);
    assert_string_equal(s_str(j, "state"), "switching");
    assert_string_equal(s_str(j, "switch_gtid"), SWITCH_GTID);
    cJSON_Delete(j);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), to_b, true), to_b, false);
    s_my_rejoin_ok(r);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "final_gtid"), FINAL_GTID);
    assert_string_equal(s_str(r->report, "switch_gtid"), SWITCH_GTID);
    assert_string_equal(s_str(r->report, "follow"), "streaming");
    assert_null(cJSON_GetObjectItem(r->report, "final_lsn"));
    assert_null(cJSON_GetObjectItem(r->report, "sequences"));
    assert_null(cJSON_GetObjectItem(r->report, "final_check"));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r->report, "write_pause_ms")));
}

static void test_mariadb_cutover(void **state) { s_my_one(*state, false); }
static void test_mariadb_rollback(void **state) { s_my_one(*state, true); }

/* cutover.reverse off: no rejoin. */
static void test_mariadb_reverse_off(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, "      reverse: off\n");
    s_start(r, false, false, NULL);
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    s_ok_promote(s_take_promote(r));
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, true), GREEN, false);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "follow"), "off");
}

/* The rehearsal: pause, freeze, unfreeze, resume; nothing promoted, nothing
 * to restore. */
static void test_mariadb_dry_run(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    s_start(r, false, true, NULL);
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    s_ended(r, "done", "done", false);
    assert_string_equal(s_str(r->report, "final_gtid"), FINAL_GTID);
    assert_null(cJSON_GetObjectItem(r->report, "switch_gtid"));
    s_journal_is(r, "done", -1);
}

/* Forward from the start to the promote, answered FAILED with
 * promote_requested (the failure came after STOP SLAVE): green may take
 * writes. */
static void s_my_promote_failed_after_stop(rig_t *r, const char *message)
{
    s_load_mariadb(r, NULL);
    s_start(r, false, false, NULL);
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    fakelink_sent_t *s = s_take_promote(r);
    Godwit__PromoteResult p = GODWIT__PROMOTE_RESULT__INIT;
    p.promote_requested = true;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_FAILED;
    res.message = (char *)message;
    res.payload_case = GODWIT__RESULT__PAYLOAD_PROMOTE;
    res.promote = &p;
    fakelink_answer(s, &res, NULL);
}

/* A stopped SQL thread on `to`: refused at the check, nothing paused. */
static void test_mariadb_check_refused(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    s_start(r, false, false, NULL);
    s_my_check(r, false, "Duplicate entry '7' for key 'PRIMARY'");
    s_ended(r, "aborted", "refused", false);
    assert_non_null(strstr(s_str(r->report, "reason"), "replication connection " OBJ
                                                       " reports an error: Duplicate entry"));
}

/* The promote failed after the wait (promote_requested): green may take
 * writes, so it is fenced again before blue is unfenced; after the resume
 * green replicates again from where it stopped, then its fence is
 * lifted. */
static void test_mariadb_abort_after_promote(void **state)
{
    rig_t *r = *state;
    s_my_promote_failed_after_stop(r, "SET GLOBAL read_only = 0 failed");
    fakelink_sent_t *s;
    s_journal_is(r, "aborting", 0);
    /* green fenced again, for good */
    s = fakelink_take(&r->link, GREEN, A(FREEZE_SOURCE));
    assert_int_equal(s->cmd->freeze_source->mode, MODE(FREEZE));
    assert_true(s->cmd->freeze_source->permanent);
    assert_int_equal(s->cmd->freeze_source->lease_ms, 0);
    fakelink_ok(s);
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    /* green's replication started again where it stopped */
    s = fakelink_take(&r->link, GREEN, A(MY_FOLLOW));
    assert_string_equal(s->cmd->my_follow->database, "shop");
    assert_string_equal(s->cmd->my_follow->connection, OBJ);
    assert_string_equal(s->cmd->my_follow->gtid, "");
    assert_string_equal(s->cmd->my_follow->source->peer, "blue-db");
    s_ok_replica(s, OBJ, true, true, "");
    fakelink_ok(s_take_fence(r, GREEN, MODE(UNFREEZE)));
    s_ended(r, "aborted", "rolled_back", false);
    assert_non_null(strstr(s_str(r->report, "reason"), "read_only"));
}

/* The same abort when green's replication cannot start again: green stays
 * fenced, and the report says so. */
static void test_mariadb_abort_restore_fails(void **state)
{
    rig_t *r = *state;
    s_my_promote_failed_after_stop(r, "failed");
    fakelink_sent_t *s;
    fakelink_ok(fakelink_take(&r->link, GREEN, A(FREEZE_SOURCE))); /* fenced again */
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    s = fakelink_take(&r->link, GREEN, A(MY_FOLLOW));
    s_ok_replica(s, OBJ, true, false, "Could not find GTID state");
    s_ended(r, "aborted", "unknown", false);
    assert_non_null(strstr(s_str(r->report, "target_left"), "could not be started again"));
}

/* The promote failed in its wait (no promote_requested): green is still a
 * replica nobody can write to; nothing to fence again, its replication
 * started again (the promote may have stopped it). */
static void test_mariadb_abort_in_wait(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    s_start(r, false, false, NULL);
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    fakelink_failed(s_take_promote(r), "MASTER_GTID_WAIT timed out");
    fakelink_ok(s_take_fence(r, BLUE, MODE(UNFREEZE)));
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), BLUE, false);
    s_ok_replica(fakelink_take(&r->link, GREEN, A(MY_FOLLOW)), OBJ, true, true, "");
    s_ended(r, "aborted", "rolled_back", false); /* no UNFREEZE of green */
}

/* Stopped in "promoting": forward only, the promote again with the
 * journaled final GTID, then the switch and the rejoin. */
static void test_mariadb_restart_in_promoting(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    s_start(r, false, false, NULL);
    s_my_check(r, true, "");
    s_pause_ok(r, 1);
    s_my_freeze_ok(r);
    assert_non_null(fakelink_find(&r->link, A(PROMOTE))); /* the coordinator stops */
    cJSON *j = s_restart(r);
    assert_string_equal(s_str(j, "state"), "promoting");
    s_recover(r, j);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(PROMOTE));
    assert_string_equal(s->cmd->promote->final_gtid, FINAL_GTID);
    assert_string_equal(s->cmd->promote->replica_connection, OBJ);
    fakelink_ok(s_take_fence(r, BLUE, MODE(KEEP)));
    s_ok_promote(s);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, false), GREEN, false);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_my_rejoin_ok(r);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "recovered_from"), "promoting");
}

/* Stopped in "switching" with the switch GTID journaled: the switch
 * finished, the rejoin from that GTID; a journal without it (an older
 * build) ends without the rejoin. */
static void test_mariadb_restart_in_switching(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    cJSON *j = cJSON_Parse("{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"forward\","
                           "\"final_gtid\":\"" FINAL_GTID "\",\"switch_gtid\":\"" SWITCH_GTID "\","
                           "\"switched\":[]}");
    s_recover(r, j);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, false), GREEN, false);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_my_rejoin_ok(r);
    s_ended(r, "done", "done", true);
}

static void test_mariadb_restart_without_switch_gtid(void **state)
{
    rig_t *r = *state;
    s_load_mariadb(r, NULL);
    cJSON *j = cJSON_Parse("{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"forward\","
                           "\"switched\":[]}");
    s_recover(r, j);
    s_ok_proxy(s_take_px(r, PX1, OP(SWITCH), GREEN, false), GREEN, false);
    s_ok_proxy(s_take_px(r, PX1, OP(RESUME), "", false), GREEN, false);
    s_ended(r, "done", "done", true);
    assert_string_equal(s_str(r->report, "follow"), "the switch position is not known");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cutover_one_proxy),
        T(test_group_switches_together),
        T(test_group_aborts_together),
        T(test_group_rolls_back_together),
        T(test_rollback_one_proxy),
        T(test_two_proxies_switch_then_resume),
        T(test_proxy_that_cannot_hold),
        T(test_check_refused),
        T(test_abort_at_pause),
        T(test_abort_at_freeze),
        T(test_abort_freeze_times_out),
        T(test_abort_at_sequences),
        T(test_abort_proxy_gone_before_switch),
        T(test_abort_at_merged_switch),
        T(test_abort_steps_retry_what_did_not_confirm),
        T(test_abort_gives_up_on_unreachable_proxy),
        T(test_dry_run),
        T(test_restart_in_started_rolls_back),
        T(test_restart_in_switching_finishes),
        T(test_restart_in_aborting),
        T(test_budget_on_link_clock),
        T(test_abort_after_sequences_fences_to_again),
        T(test_abort_that_cannot_fence_to_keeps_from_fenced),
        T(test_abort_after_sequences_of_a_first_cutover),
        T(test_restart_of_a_rollback_fences_to_again),
        T(test_mariadb_cutover),
        T(test_mariadb_rollback),
        T(test_mariadb_reverse_off),
        T(test_mariadb_dry_run),
        T(test_mariadb_check_refused),
        T(test_mariadb_abort_after_promote),
        T(test_mariadb_abort_restore_fails),
        T(test_mariadb_abort_in_wait),
        T(test_mariadb_restart_in_promoting),
        T(test_mariadb_restart_in_switching),
        T(test_mariadb_restart_without_switch_gtid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
