/*
 * The migration machine (coordinator/migration.c) driven through a fake
 * link: every step's command and its answer, failures and backoff, the
 * operator's abort, pause and resume from each state where they apply (and
 * their refusals), source protection, a stale result after a forced move,
 * and a restart from the journal in every state with a step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fakelink.h"
#include "journal.h"
#include "migset.h"
#include "plan.h"
#include "tmpdir.h"

#define BLUE "blue"
#define PX "px"
#define BLUE2 "blue2"

/* A plan's row: migration n from agent src to GREEN, database db on both. */
#define PLAN_ROW(n, src, db)                                                                   \
    "  - {name: " n ", source: {agent: " src ", database: " db "}, target: {agent: " GREEN     \
    ", database: " db "}, replication: {peer: p}}\n"
#define GREEN "green"
#define NAME "shop"

typedef struct {
    char *dir;
    fakelink_t link;
    journal_t *journal;
    migset_t *ms;
    plan_t plan;
    /* the source's report: our slot, so catchup sees the lag */
    Godwit__Report rep;
    Godwit__Postgres pg;
    Godwit__Slot slot;
    Godwit__Slot *slots[1];
    /* the target's: its slot for blue after the cutover */
    Godwit__Report grep;
    Godwit__Postgres gpg;
    Godwit__Slot gslot;
    Godwit__Slot *gslots[1];
} rig_t;

static const char s_plan[] =
    "migrations:\n"
    "  - name: " NAME "\n"
    "    source: {agent: " BLUE ", database: shop}\n"
    "    target: {agent: " GREEN ", database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    options: {slot_wal_limit: 1GiB}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: " PX ", proxy: pgb}]}\n";

/* Every row of the transition table a test made fire (from, event, to),
 * across the tests of this file: the last test wants them all. */
#define MAX_SEEN 256
static struct {
    char from[32], event[32], to[32];
} s_seen[MAX_SEEN];
static size_t s_n_seen;

static void s_on_move(const char *migration, const char *from, const char *event, const char *to,
                      void *arg)
{
    (void)migration;
    (void)arg;
    for (size_t i = 0; i < s_n_seen; i++)
        if (!strcmp(s_seen[i].from, from) && !strcmp(s_seen[i].event, event) &&
            !strcmp(s_seen[i].to, to))
            return;
    assert_true(s_n_seen < MAX_SEEN);
    snprintf(s_seen[s_n_seen].from, sizeof s_seen[0].from, "%s", from);
    snprintf(s_seen[s_n_seen].event, sizeof s_seen[0].event, "%s", event);
    snprintf(s_seen[s_n_seen].to, sizeof s_seen[0].to, "%s", to);
    s_n_seen++;
}

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
    if (!r->journal) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (!plan_load_string("plan.yaml", s_plan, &r->plan, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    godwit__report__init(&r->rep);
    godwit__postgres__init(&r->pg);
    godwit__slot__init(&r->slot);
    r->slot.name = "godwit_" NAME;
    r->pg.current_lsn = 1ull << 32;
    r->slot.confirmed_flush_lsn = r->pg.current_lsn - 256;
    r->slot.retained_bytes = 1 << 20;
    r->pg.reachable = true;
    r->slots[0] = &r->slot;
    r->pg.slots = r->slots;
    r->pg.n_slots = 1;
    r->rep.postgres = &r->pg;
    godwit__report__init(&r->grep);
    godwit__postgres__init(&r->gpg);
    godwit__slot__init(&r->gslot);
    r->gslot.name = "godwit_" NAME "_rev";
    r->gslot.retained_bytes = 1 << 20;
    r->gpg.current_lsn = 1ull << 32;
    r->gpg.reachable = true;
    r->gslots[0] = &r->gslot;
    r->gpg.slots = r->gslots;
    r->gpg.n_slots = 1;
    r->grep.postgres = &r->gpg;
    fakelink_agent(&r->link, BLUE, "source", &r->rep);
    fakelink_agent(&r->link, GREEN, "target", &r->grep);
    fakelink_agent(&r->link, PX, "proxy", NULL);
    r->ms = migset_new(&r->link.link, r->journal);
    migset_on_move(r->ms, s_on_move, NULL);
    *state = r;
    return 0;
}

static int s_teardown(void **state)
{
    rig_t *r = *state;
    fakelink_drain(&r->link, "coordinator stopping");
    migset_destroy(&r->ms);
    journal_close(&r->journal);
    plan_free(&r->plan);
    *state = r->dir;
    free(r);
    return tmpdir_teardown(state);
}

/* The migration's state as status shows it (static buffer). */
static const char *s_state(rig_t *r)
{
    static char buf[64];
    cJSON *st = migset_status(r->ms, NAME);
    assert_non_null(st);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(st, "state"));
    assert_non_null(s);
    snprintf(buf, sizeof buf, "%s", s);
    cJSON_Delete(st);
    return buf;
}

static char *s_status_string(rig_t *r, const char *field)
{
    cJSON *st = migset_status(r->ms, NAME);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(st, field));
    char *out = s ? strdup(s) : NULL;
    cJSON_Delete(st);
    return out;
}

/* A crash and a restart: every pending command fails as the coordinator
 * stops, the set is dropped, and a new one loads from the same journal. */
static void s_restart(rig_t *r)
{
    fakelink_drain(&r->link, "coordinator stopping");
    migset_destroy(&r->ms);
    r->ms = migset_new(&r->link.link, r->journal);
    migset_on_move(r->ms, s_on_move, NULL);
}

/* The journal of an earlier coordinator left the migration in `state`
 * (and, with cutover set, a cutover event with that detail): the set is
 * loaded from it as a restarted coordinator would. */
static void s_journal_at(rig_t *r, const char *state, const char *cutover)
{
    char err[256];
    cJSON *st = migset_status(r->ms, NAME);
    const char *cur = cJSON_GetStringValue(cJSON_GetObjectItem(st, "state"));
    if (cur) /* an earlier life of the name, aborted: the name may be used again */
        assert_true(journal_migration_move(r->journal, NAME, cur, "aborted", "test", err,
                                           sizeof err));
    cJSON_Delete(st);
    fakelink_drain(&r->link, "coordinator stopping");
    migset_destroy(&r->ms);
    char *json = plan_migration_to_json(plan_at(&r->plan, 0));
    assert_true(journal_migration_create(r->journal, NAME, json, state, err, sizeof err));
    free(json);
    if (cutover)
        assert_true(journal_event(r->journal, NAME, state, "cutover", cutover));
    r->ms = migset_new(&r->link.link, r->journal);
    migset_on_move(r->ms, s_on_move, NULL);
    assert_string_equal(s_state(r), state);
}

static void s_start(rig_t *r)
{
    char err[256];
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_string_equal(s_state(r), "roles");
}

/* Answers of each step, OK. */
static void s_ok_roles(fakelink_sent_t *s)
{
    Godwit__ApplyRolesResult ar = GODWIT__APPLY_ROLES_RESULT__INIT;
    ar.already_done = true;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_APPLY_ROLES;
    res.apply_roles = &ar;
    fakelink_answer(s, &res, NULL);
}

static void s_ok_schema(fakelink_sent_t *s)
{
    Godwit__ApplySchemaResult as = GODWIT__APPLY_SCHEMA_RESULT__INIT;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA;
    res.apply_schema = &as;
    fakelink_answer(s, &res, NULL);
}

static void s_sync_result(Godwit__SyncStatusResult *sr, bool all_ready)
{
    godwit__sync_status_result__init(sr);
    sr->exists = true;
    sr->all_ready = all_ready;
}

/* Answers s with the SyncStatus result sr. */
static void s_answer_sync(fakelink_sent_t *s, Godwit__SyncStatusResult *sr)
{
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_SYNC_STATUS;
    res.sync_status = sr;
    fakelink_answer(s, &res, NULL);
}

static void s_ok_sync(fakelink_sent_t *s, bool all_ready)
{
    Godwit__SyncStatusResult sr;
    s_sync_result(&sr, all_ready);
    s_answer_sync(s, &sr);
}

static void s_ok_copy(fakelink_sent_t *s)
{
    Godwit__SyncStatusResult sr;
    s_sync_result(&sr, false);
    Godwit__BulkCopyResult bc = GODWIT__BULK_COPY_RESULT__INIT;
    bc.copied = &sr;
    bc.consistent_point = "0/1000000";
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_BULK_COPY;
    res.bulk_copy = &bc;
    fakelink_answer(s, &res, NULL);
}

#define A(x) GODWIT__COMMAND__ACTION_##x

/* Answers the HoldSnapshot s: held at point (created if asked), or with
 * point NULL not held (stale when a slot is there). */
static void s_answer_hold(fakelink_sent_t *s, const char *point, bool created, bool stale)
{
    Godwit__HoldSnapshotResult h = GODWIT__HOLD_SNAPSHOT_RESULT__INIT;
    h.held = point != NULL;
    h.created = created;
    h.stale = stale;
    h.snapshot = point ? "00000003-00000002-1" : "";
    h.consistent_point = point ? (char *)point : "";
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_HOLD_SNAPSHOT;
    res.hold_snapshot = &h;
    fakelink_answer(s, &res, NULL);
}

/* Answers every HoldSnapshot pending: held at 0/1000000 (created when
 * asked to create), or ended for a lease of 0. */
static void s_answer_holds(rig_t *r)
{
    const fakelink_sent_t *p;
    while ((p = fakelink_find(&r->link, A(HOLD_SNAPSHOT)))) {
        fakelink_sent_t *s = fakelink_take_this(&r->link, p);
        const Godwit__HoldSnapshot *q = s->cmd->hold_snapshot;
        s_answer_hold(s, q->lease_ms > 0 ? "0/1000000" : NULL, q->lease_ms > 0 && q->create,
                      false);
    }
}

/* One tick of the set, the source agents' snapshot holds answered. */
static void s_tick(rig_t *r)
{
    migset_tick(r->ms);
    s_answer_holds(r);
}

/* Answers the copy progress poll the copy state sends, if there is one. */
static void s_answer_progress(rig_t *r)
{
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next) {
        if (s->cmd->action_case == A(BULK_COPY_STATUS)) {
            s_ok_sync(fakelink_take_any(&r->link, GREEN, A(BULK_COPY_STATUS)), false);
            return;
        }
    }
}

/* Answers an ImportProfile command with the target's settings: those it
 * names, max_wal_size at wal and synchronous_commit at sync, neither in
 * postgresql.auto.conf. */
static void s_ok_import(fakelink_sent_t *s, const char *wal, const char *sync)
{
    const Godwit__ImportProfile *q = s->cmd->import_profile;
    Godwit__ImportSetting set[8], *ptrs[8];
    Godwit__ImportProfileResult ir = GODWIT__IMPORT_PROFILE_RESULT__INIT;
    for (size_t i = 0; i < q->n_settings && i < 8; i++) {
        godwit__import_setting__init(&set[i]);
        set[i].name = q->settings[i]->name;
        set[i].setting = (char *)(strcmp(set[i].name, "max_wal_size") == 0 ? wal : sync);
        ptrs[i] = &set[i];
        ir.n_settings++;
    }
    ir.settings = ptrs;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_IMPORT_PROFILE;
    res.import_profile = &ir;
    fakelink_answer(s, &res, NULL);
}

/* Drives a started migration forward to `until` (a state name), answering
 * every step with success. */
static void s_drive(rig_t *r, const char *until)
{
    for (int guard = 0; guard < 20 && strcmp(s_state(r), until) != 0; guard++) {
        s_tick(r);
        const char *st = s_state(r);
        if (strcmp(st, "roles") == 0) {
            s_ok_roles(fakelink_take(&r->link, GREEN, A(APPLY_ROLES)));
        } else if (strcmp(st, "schema") == 0) {
            fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(APPLY_SCHEMA));
            assert_string_equal(s->cmd->apply_schema->section, "pre");
            s_ok_schema(s);
        } else if (strcmp(st, "publish") == 0) {
            fakelink_ok(fakelink_take(&r->link, BLUE, A(ENSURE_PUBLICATION)));
        } else if (strcmp(st, "tune") == 0) {
            s_ok_import(fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE)), "1GB", "on");
        } else if (strcmp(st, "copy") == 0) {
            s_ok_copy(fakelink_take_any(&r->link, GREEN, A(BULK_COPY)));
            s_answer_progress(r);
        } else if (strcmp(st, "catchup") == 0) {
            s_ok_sync(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)), true);
        } else if (strcmp(st, "postdata") == 0) {
            fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(APPLY_SCHEMA));
            assert_string_equal(s->cmd->apply_schema->section, "post");
            s_ok_schema(s);
        } else {
            fail_msg("s_drive cannot go on from %s towards %s", st, until);
        }
    }
    assert_string_equal(s_state(r), until);
    s_answer_holds(r); /* the end of the copy's hold, when the copy is over */
    /* A step that moved the migration on sent the next state's step at
     * once: at most that one is pending (a tick sends nothing more). */
    assert_true(fakelink_pending(&r->link) <= 1);
}

/* s_drive to streaming, then its first poll (sent at once) answered:
 * nothing is pending. */
static void s_streaming(rig_t *r)
{
    s_drive(r, "streaming");
    s_ok_sync(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)), true);
    assert_int_equal(fakelink_pending(&r->link), 0);
}

static void test_every_step_to_streaming(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "streaming");
    /* streaming polls the subscription's status, for ever */
    for (int i = 0; i < 3; i++) {
        s_tick(r);
        s_ok_sync(fakelink_take_any(&r->link, GREEN, A(SYNC_STATUS)), true);
        s_tick(r);
        assert_int_equal(fakelink_pending(&r->link), 0); /* not before its period */
        fakelink_advance(&r->link, 2000);
    }
    assert_string_equal(s_state(r), "streaming");
    /* a second start of the same name is refused while it lives */
    char err[256];
    assert_false(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_non_null(strstr(err, "already streaming"));
}

static void test_catchup_waits_for_ready_and_lag(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "catchup");
    s_tick(r);
    s_ok_sync(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)), false); /* not ready */
    assert_string_equal(s_state(r), "catchup");
    r->slot.confirmed_flush_lsn = r->pg.current_lsn - (64u << 20); /* ready, but 64 MiB behind */
    fakelink_advance(&r->link, 250);
    s_tick(r);
    s_ok_sync(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)), true);
    assert_string_equal(s_state(r), "catchup");
    r->slot.confirmed_flush_lsn = r->pg.current_lsn - 100;
    fakelink_advance(&r->link, 250);
    s_tick(r);
    s_ok_sync(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)), true);
    assert_string_equal(s_state(r), "postdata");
}

static void test_failed_step_retries_with_backoff(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "publish");
    s_tick(r);
    fakelink_failed(fakelink_take(&r->link, BLUE, A(ENSURE_PUBLICATION)), "permission denied");
    assert_string_equal(s_state(r), "publish");
    char *e = s_status_string(r, "last_error");
    assert_non_null(e);
    assert_non_null(strstr(e, "permission denied"));
    free(e);
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0); /* backing off */
    fakelink_advance(&r->link, 1999);
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0);
    fakelink_advance(&r->link, 1);
    s_tick(r);
    /* no answer at all (agent gone): a failure too */
    fakelink_answer(fakelink_take(&r->link, BLUE, A(ENSURE_PUBLICATION)), NULL, "timed out");
    e = s_status_string(r, "last_error");
    assert_non_null(strstr(e, "timed out"));
    free(e);
    fakelink_advance(&r->link, 4000); /* the second backoff is twice the first */
    s_tick(r);
    fakelink_ok(fakelink_take_any(&r->link, BLUE, A(ENSURE_PUBLICATION)));
    assert_string_equal(s_state(r), "copy");
    assert_null(s_status_string(r, "last_error"));
}

/* Abort from `at`: the target's subscription dropped first, then the
 * source's publication and slot; a result still in flight from `at` is
 * stale and moves nothing. */
static void s_abort_from(rig_t *r, const char *at)
{
    char err[256];
    s_start(r);
    s_drive(r, at);
    s_tick(r); /* `at`'s step goes out */
    assert_true(fakelink_pending(&r->link) >= 1);
    fakelink_sent_t *inflight = fakelink_take_any(&r->link, fakelink_peek(&r->link)->agent,
                                                  fakelink_peek(&r->link)->cmd->action_case);
    assert_true(migset_abort(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "abort_target");
    fakelink_ok(inflight); /* stale */
    assert_string_equal(s_state(r), "abort_target");
    fakelink_drain(&r->link, "dropped"); /* a copy progress poll, say */
    assert_true(migset_abort(r->ms, NAME, err, sizeof err)); /* already aborting */
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->subscription, "godwit_" NAME);
    fakelink_ok(s);
    assert_string_equal(s_state(r), "abort_source");
    s_tick(r);
    s = fakelink_take(&r->link, BLUE, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->slot, "godwit_" NAME);
    fakelink_ok(s);
    assert_string_equal(s_state(r), "aborted");
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0);
    assert_false(migset_abort(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "already aborted"));
    /* an aborted migration may start again under its name */
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_string_equal(s_state(r), "roles");
}

static void test_abort_from_roles(void **state) { s_abort_from(*state, "roles"); }
static void test_abort_from_schema(void **state) { s_abort_from(*state, "schema"); }
static void test_abort_from_publish(void **state) { s_abort_from(*state, "publish"); }
static void test_abort_from_copy(void **state) { s_abort_from(*state, "copy"); }
static void test_abort_from_catchup(void **state) { s_abort_from(*state, "catchup"); }
static void test_abort_from_postdata(void **state) { s_abort_from(*state, "postdata"); }
static void test_abort_from_streaming(void **state) { s_abort_from(*state, "streaming"); }

static void test_abort_unknown(void **state)
{
    rig_t *r = *state;
    char err[256];
    assert_false(migset_abort(r->ms, "nope", err, sizeof err));
    assert_non_null(strstr(err, "no migration named nope"));
}

static void test_pause_and_resume(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_start(r);
    s_drive(r, "copy");
    assert_false(migset_pause(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "pause applies once the subscription exists"));
    assert_false(migset_resume(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "not paused"));
    s_streaming(r);
    assert_true(migset_pause(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "pausing");
    assert_true(migset_pause(r->ms, NAME, err, sizeof err)); /* again: nothing more */
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(SET_SUBSCRIPTION_ENABLED));
    assert_false(s->cmd->set_subscription_enabled->enabled);
    fakelink_ok(s);
    assert_string_equal(s_state(r), "paused");
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0); /* paused has no step */
    assert_true(migset_resume(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "resuming");
    assert_true(migset_resume(r->ms, NAME, err, sizeof err));
    s_tick(r);
    s = fakelink_take(&r->link, GREEN, A(SET_SUBSCRIPTION_ENABLED));
    assert_true(s->cmd->set_subscription_enabled->enabled);
    fakelink_ok(s);
    assert_string_equal(s_state(r), "catchup"); /* rechecks before streaming again */
    s_drive(r, "streaming");
}

static void test_protection_drops_the_source_first(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_streaming(r);
    r->slot.retained_bytes = 2ull << 30; /* past slot_wal_limit (1 GiB) */
    s_tick(r);
    assert_string_equal(s_state(r), "protect_source");
    char *why = s_status_string(r, "stopped_because");
    assert_non_null(why);
    free(why);
    /* the same tick sent the source's drop, and nothing to the target */
    assert_int_equal(fakelink_pending(&r->link), 1);
    fakelink_ok(fakelink_take(&r->link, BLUE, A(DROP_OBJECTS)));
    /* once the source's is done, the target's drop goes at once */
    assert_string_equal(s_state(r), "protect_target");
    assert_int_equal(fakelink_pending(&r->link), 1);
    fakelink_ok(fakelink_take(&r->link, GREEN, A(DROP_OBJECTS)));
    assert_string_equal(s_state(r), "aborted");
    char err[256];
    assert_false(migset_abort(r->ms, NAME, err, sizeof err));
}

static void test_protection_leaves_states_without_a_slot(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "publish");
    r->slot.retained_bytes = 2ull << 30;
    s_tick(r);
    assert_string_equal(s_state(r), "publish"); /* no slot of ours yet */
}

/* A restart in each state with a step: the state is the journal's, and its
 * step is sent again (the agent finds it done). */
static void test_restart_resumes_every_step(void **state)
{
    rig_t *r = *state;
    static const struct {
        const char *state;
        const char *agent;
        Godwit__Command__ActionCase action;
    } steps[] = {
        { "roles", GREEN, A(APPLY_ROLES) },
        { "schema", GREEN, A(APPLY_SCHEMA) },
        { "publish", BLUE, A(ENSURE_PUBLICATION) },
        { "copy", GREEN, A(BULK_COPY) },
        { "catchup", GREEN, A(SYNC_STATUS) },
        { "postdata", GREEN, A(APPLY_SCHEMA) },
        { "streaming", GREEN, A(SYNC_STATUS) },
    };
    s_start(r);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        s_drive(r, steps[i].state);
        s_tick(r);
        s_restart(r);
        assert_string_equal(s_state(r), steps[i].state);
        s_tick(r);
        fakelink_sent_t *s = fakelink_take_any(&r->link, steps[i].agent, steps[i].action);
        fakelink_answer(s, NULL, "coordinator stopping"); /* s_drive sends it again */
        fakelink_drain(&r->link, "coordinator stopping");
        fakelink_advance(&r->link, 60000);
    }
}

static void test_restart_while_aborting_and_paused(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_start(r);
    s_streaming(r);
    assert_true(migset_pause(r->ms, NAME, err, sizeof err));
    s_tick(r);
    fakelink_ok(fakelink_take(&r->link, GREEN, A(SET_SUBSCRIPTION_ENABLED)));
    s_restart(r);
    assert_string_equal(s_state(r), "paused");
    assert_true(migset_abort(r->ms, NAME, err, sizeof err));
    s_restart(r);
    assert_string_equal(s_state(r), "abort_target");
    s_tick(r);
    fakelink_ok(fakelink_take(&r->link, GREEN, A(DROP_OBJECTS)));
    s_restart(r);
    assert_string_equal(s_state(r), "abort_source");
    s_tick(r);
    fakelink_ok(fakelink_take(&r->link, BLUE, A(DROP_OBJECTS)));
    s_restart(r);
    assert_string_equal(s_state(r), "aborted");
}

static void test_cleanup_after_the_cutover(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_journal_at(r, "streaming", NULL);
    assert_false(migset_cleanup(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "cleanup follows a cutover"));
    s_journal_at(r, "switched", NULL);
    assert_false(migset_abort(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "traffic has moved to green"));
    assert_false(migset_pause(r->ms, NAME, err, sizeof err));
    assert_false(migset_resume(r->ms, NAME, err, sizeof err));
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0); /* switched has no step */
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "cleanup_source");
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err)); /* under way */
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, BLUE, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->database, "shop");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "cleanup_target");
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err));
    s_tick(r);
    fakelink_ok(fakelink_take(&r->link, GREEN, A(DROP_OBJECTS)));
    assert_string_equal(s_state(r), "done");
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err));
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0);
    assert_string_equal(s_state(r), "done");
}

static void test_protection_of_green_after_the_cutover(void **state)
{
    rig_t *r = *state;
    s_journal_at(r, "switched", NULL);
    s_tick(r);
    assert_string_equal(s_state(r), "switched"); /* green's slot for blue is small */
    r->gslot.retained_bytes = 2ull << 30;
    s_tick(r);
    assert_string_equal(s_state(r), "unfollow_target");
    char *why = s_status_string(r, "stopped_because");
    assert_non_null(strstr(why, "blue stopped following green"));
    free(why);
    fakelink_ok(fakelink_take(&r->link, GREEN, A(DROP_OBJECTS))); /* green's slot first */
    assert_string_equal(s_state(r), "unfollow_source");
    s_tick(r);
    fakelink_ok(fakelink_take(&r->link, BLUE, A(DROP_OBJECTS)));
    assert_string_equal(s_state(r), "switched");
}

/* Every event already under way is accepted without a move. */
static void test_events_already_under_way(void **state)
{
    rig_t *r = *state;
    char err[256];
    static const struct {
        const char *state;
        bool (*op)(migset_t *, const char *, char *, size_t);
    } cases[] = {
        { "abort_target", migset_abort },   { "abort_source", migset_abort },
        { "protect_source", migset_abort }, { "protect_target", migset_abort },
        { "pausing", migset_pause },        { "paused", migset_pause },
        { "resuming", migset_resume },      { "cleanup_source", migset_cleanup },
        { "cleanup_target", migset_cleanup }, { "done", migset_cleanup },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_journal_at(r, cases[i].state, NULL);
        assert_true(cases[i].op(r->ms, NAME, err, sizeof err));
        assert_string_equal(s_state(r), cases[i].state);
    }
    /* and a pause being made can be resumed at once */
    s_journal_at(r, "pausing", NULL);
    assert_true(migset_resume(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "resuming");
}

/* Each operator's event and protection from each state a journal can hold
 * them in (the paths above reach some of them only by driving). */
static void test_events_from_every_state(void **state)
{
    rig_t *r = *state;
    char err[256];
    static const char *const abortable[] = { "pausing", "paused", "resuming" };
    for (size_t i = 0; i < 3; i++) {
        s_journal_at(r, abortable[i], NULL);
        assert_true(migset_abort(r->ms, NAME, err, sizeof err));
        assert_string_equal(s_state(r), "abort_target");
    }
    static const char *const pausable[] = { "catchup", "postdata", "streaming" };
    for (size_t i = 0; i < 3; i++) {
        s_journal_at(r, pausable[i], NULL);
        assert_true(migset_pause(r->ms, NAME, err, sizeof err));
        assert_string_equal(s_state(r), "pausing");
    }
    static const char *const with_slot[] = { "copy", "catchup", "postdata", "streaming",
                                             "pausing", "paused", "resuming" };
    for (size_t i = 0; i < 7; i++) {
        s_journal_at(r, with_slot[i], NULL);
        r->slot.retained_bytes = 2ull << 30;
        s_tick(r);
        assert_string_equal(s_state(r), "protect_source");
        r->slot.retained_bytes = 1 << 20;
    }
    static const char *const without_slot[] = { "roles", "schema", "publish", "aborted",
                                                "switched", "done" };
    for (size_t i = 0; i < 6; i++) {
        s_journal_at(r, without_slot[i], NULL);
        r->slot.retained_bytes = 2ull << 30;
        s_tick(r);
        assert_string_equal(s_state(r), without_slot[i]);
        r->slot.retained_bytes = 1 << 20;
    }
}

/* Answers every pending command with success, with the payload its action
 * wants (none for most). */
static void s_answer_all(rig_t *r)
{
    while (fakelink_peek(&r->link)) {
        fakelink_sent_t *s = r->link.sent;
        r->link.sent = s->next;
        fakelink_ok(s);
    }
}

/* A cutover the journal says was switching when the coordinator stopped:
 * the restarted one finishes it, and the migration moves on its event. */
static void s_recover_switching(rig_t *r, const char *at, const char *direction,
                                const char *after)
{
    char detail[512];
    snprintf(detail, sizeof detail,
             "{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"%s\",\"at_ms\":%llu,"
             "\"switch_lsn\":\"0/1000000\",\"switched\":[0]}",
             direction, (unsigned long long)r->link.now_ms);
    s_journal_at(r, at, detail);
    for (int i = 0; i < 200 && strcmp(s_state(r), at) == 0; i++) {
        s_tick(r);
        s_answer_all(r);
        fakelink_advance(&r->link, 1000);
    }
    assert_string_equal(s_state(r), after);
}

static void test_recovered_cutover_switches(void **state)
{
    s_recover_switching(*state, "streaming", "forward", "switched");
}

static void test_recovered_rollback_streams_again(void **state)
{
    s_recover_switching(*state, "switched", "back", "streaming");
}

/* Last: every row of the transition table fired in one of the tests above. */
static void test_every_row_is_covered(void **state)
{
    (void)state;
    size_t missing = 0;
    for (size_t i = 0; i < migration_rows(); i++) {
        const char *from, *event, *to;
        assert_true(migration_row(i, &from, &event, &to));
        bool seen = false;
        for (size_t k = 0; k < s_n_seen && !seen; k++)
            seen = !strcmp(s_seen[k].from, from) && !strcmp(s_seen[k].event, event) &&
                   !strcmp(s_seen[k].to, to);
        if (!seen) {
            fprintf(stderr, "row not covered: %s -(%s)-> %s\n", from, event, to);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    const char *from, *event, *to;
    assert_false(migration_row(migration_rows(), &from, &event, &to));
}


#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

/* Pending commands to agent with action. */
static size_t s_pending(rig_t *r, const char *agent, Godwit__Command__ActionCase action)
{
    size_t n = 0;
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        n += strcmp(s->agent, agent) == 0 && s->cmd->action_case == action;
    return n;
}

/* A status field of migration name (static buffer; "" if absent). */
static const char *s_field(rig_t *r, const char *name, const char *field)
{
    static char buf[256];
    cJSON *st = migset_status(r->ms, name);
    assert_non_null(st);
    const cJSON *v = cJSON_GetObjectItem(st, field);
    snprintf(buf, sizeof buf, "%s",
             cJSON_IsString(v) ? v->valuestring : cJSON_IsTrue(v) ? "true" : "");
    cJSON_Delete(st);
    return buf;
}

static double s_copies(rig_t *r, const char *key)
{
    cJSON *c = migset_copies_json(r->ms);
    double v = cJSON_GetNumberValue(cJSON_GetObjectItem(c, key));
    cJSON_Delete(c);
    return v;
}

/* Answers every pending roles and schema step on GREEN with success. */
static void s_answer_roles_schema(rig_t *r)
{
    while (s_pending(r, GREEN, A(APPLY_ROLES)))
        s_ok_roles(fakelink_take_any(&r->link, GREEN, A(APPLY_ROLES)));
    while (s_pending(r, GREEN, A(APPLY_SCHEMA)))
        s_ok_schema(fakelink_take_any(&r->link, GREEN, A(APPLY_SCHEMA)));
}

/* Loads the plan text into *p (the caller frees it), caps the copies with
 * caps, starts every migration of it and answers each step up to the
 * copy (the copies' commands are left pending). */
static void s_start_to_copy(rig_t *r, const char *text, migset_caps_t caps, plan_t *p)
{
    char err[512];
    if (!plan_load_string("plan.yaml", text, p, err, sizeof err))
        fail_msg("%s", err);
    migset_set_caps(r->ms, caps);
    for (size_t i = 0; i < plan_count(p); i++)
        assert_true(migset_start(r->ms, plan_at(p, i), 0, err, sizeof err));
    for (int guard = 0; guard < 10; guard++) {
        s_tick(r);
        s_answer_roles_schema(r);
        for (int b = 0; b < 2; b++)
            while (s_pending(r, b ? BLUE2 : BLUE, A(ENSURE_PUBLICATION)))
                fakelink_ok(fakelink_take_any(&r->link, b ? BLUE2 : BLUE, A(ENSURE_PUBLICATION)));
    }
}

/* Copy caps: three migrations from one source with two copies at once:
 * the third waits in copy, saying why, until one of the two is done; the
 * admissions are journaled, so a restarted coordinator counts the copies
 * that may still run on their agents. */
static void test_copy_caps(void **state)
{
    rig_t *r = *state;
    static const char text[] =
        "migrations:\n"
        PLAN_ROW("c1", BLUE, "a")
        PLAN_ROW("c2", BLUE, "b")
        PLAN_ROW("c3", BLUE, "c");
    plan_t p;
    s_start_to_copy(r, text, (migset_caps_t){ .per_source = 2 }, &p);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(s_field(r, plan_at(&p, i)->name, "state"), "copy");
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 2);
    assert_string_equal(s_field(r, "c1", "copy_queued"), "");
    assert_string_equal(s_field(r, "c3", "copy_queued"), "true");
    assert_string_equal(s_field(r, "c3", "doing"),
                        "queued: 2 copies from source blue running (copies.per_source 2)");
    assert_int_equal(s_copies(r, "running"), 2);
    assert_int_equal(s_copies(r, "queued"), 1);

    /* c1's copy ends: c3's starts at the next tick. */
    s_ok_copy(fakelink_take_any(&r->link, GREEN, A(BULK_COPY)));
    assert_string_equal(s_field(r, "c1", "state"), "catchup");
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 2);
    assert_string_equal(s_field(r, "c3", "copy_queued"), "");
    assert_int_equal(s_copies(r, "running"), 2);
    assert_int_equal(s_copies(r, "queued"), 0);

    /* A restart: c2 and c3 were admitted, they keep their places. */
    s_restart(r);
    assert_int_equal(s_copies(r, "running"), 2);
    assert_int_equal(s_copies(r, "queued"), 0);
    plan_free(&p);
}

/* Answers the pending HoldSnapshot on BLUE (asserting create) with held
 * at point (created) or, with point NULL, stale. */
static void s_hold_answer(rig_t *r, bool create, const char *point, bool created)
{
    fakelink_sent_t *s = fakelink_take_any(&r->link, BLUE, A(HOLD_SNAPSHOT));
    assert_int_equal(s->cmd->hold_snapshot->create, create);
    assert_true(s->cmd->hold_snapshot->lease_ms > 0);
    assert_string_equal(s->cmd->hold_snapshot->name, "godwit_shop");
    s_answer_hold(s, point, created, point == NULL);
}

/* The copy's snapshot is held by the source agent, so a copy whose
 * connections were reset goes on in it: the retry asks for the hold again
 * (the same snapshot) and gives the target the tables the last progress
 * showed copied. A slot found without its snapshot is cleared first and a
 * new snapshot starts from the first table; the hold is renewed while the
 * copy runs and ended when it is over. */
static void test_copy_resumes_in_held_snapshot(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "copy");
    migset_tick(r->ms);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 0); /* the hold first */
    s_hold_answer(r, true, "0/1000000", true);
    fakelink_sent_t *c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_string_equal(c->cmd->bulk_copy->snapshot, "00000003-00000002-1");
    assert_string_equal(c->cmd->bulk_copy->consistent_point, "0/1000000");
    assert_int_equal(c->cmd->bulk_copy->n_done, 0);

    /* Progress: one table copied, one not yet. */
    fakelink_advance(&r->link, 1500);
    migset_tick(r->ms);
    Godwit__TableRef ref[2] = { GODWIT__TABLE_REF__INIT, GODWIT__TABLE_REF__INIT };
    Godwit__TableSync ts[2] = { GODWIT__TABLE_SYNC__INIT, GODWIT__TABLE_SYNC__INIT };
    Godwit__TableSync *tp[2] = { &ts[0], &ts[1] };
    ref[0].schema = ref[1].schema = "public";
    ref[0].name = "small";
    ref[1].name = "big";
    ts[0].table = &ref[0];
    ts[0].state = "copied";
    ts[0].rows_done = 1000;
    ts[1].table = &ref[1];
    ts[1].state = "copying";
    ts[1].rows_done = 5;
    Godwit__SyncStatusResult sr;
    s_sync_result(&sr, false);
    sr.n_tables = 2;
    sr.tables = tp;
    s_answer_sync(fakelink_take_any(&r->link, GREEN, A(BULK_COPY_STATUS)), &sr);

    /* The copied table is journaled: a coordinator restarted now gives it
     * to the copy's next run in the same snapshot. */
    char *rec = journal_last_event(r->journal, NAME, "copy_done");
    assert_non_null(rec);
    assert_non_null(strstr(rec, "\"point\":\"0/1000000\""));
    assert_non_null(strstr(rec, "\"name\":\"small\""));
    assert_null(strstr(rec, "\"name\":\"big\""));
    free(rec);

    /* The hold is renewed while the copy runs, creating nothing. */
    fakelink_advance(&r->link, 20000);
    migset_tick(r->ms);
    s_hold_answer(r, false, "0/1000000", false);
    if (s_pending(r, GREEN, A(BULK_COPY_STATUS)))
        s_answer_sync(fakelink_take_any(&r->link, GREEN, A(BULK_COPY_STATUS)), &sr);

    /* The copy's connections are reset: the retry goes on in the same
     * snapshot with the copied table done. */
    fakelink_failed(c, "copy worker 0 (source): connection reset");
    fakelink_advance(&r->link, 2500);
    migset_tick(r->ms);
    s_hold_answer(r, true, "0/1000000", false);
    c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_string_equal(c->cmd->bulk_copy->snapshot, "00000003-00000002-1");
    assert_int_equal(c->cmd->bulk_copy->n_done, 1);
    assert_string_equal(c->cmd->bulk_copy->done[0]->table->name, "small");
    assert_int_equal(c->cmd->bulk_copy->done[0]->rows_done, 1000);

    /* It fails again and the source agent restarted meanwhile: the slot is
     * there without its snapshot. The target clears it, and a new slot and
     * snapshot start from the first table. */
    fakelink_failed(c, "copy worker 1 (source): connection reset");
    fakelink_advance(&r->link, 5000);
    migset_tick(r->ms);
    s_hold_answer(r, true, NULL, false);
    c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_string_equal(c->cmd->bulk_copy->snapshot, "");
    Godwit__BulkCopyResult bc = GODWIT__BULK_COPY_RESULT__INIT;
    bc.slot_dropped = true;
    bc.consistent_point = "";
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_BULK_COPY;
    res.bulk_copy = &bc;
    fakelink_answer(c, &res, NULL);
    assert_string_equal(s_state(r), "copy");
    migset_tick(r->ms); /* at once, no backoff */
    s_hold_answer(r, true, "0/2000000", true);
    c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_string_equal(c->cmd->bulk_copy->consistent_point, "0/2000000");
    assert_int_equal(c->cmd->bulk_copy->n_done, 0);

    /* Done: the hold ends now, not at its lease's end. */
    s_ok_copy(c);
    assert_string_equal(s_state(r), "catchup");
    fakelink_sent_t *end = fakelink_take_any(&r->link, BLUE, A(HOLD_SNAPSHOT));
    assert_int_equal(end->cmd->hold_snapshot->lease_ms, 0);
    fakelink_ok(end);
    fakelink_drain(&r->link, "test: answers not needed");
}

/* A coordinator restarted during a copy reads the tables it had seen
 * copied from the journal: when the hold answers the same snapshot, the
 * copy's next run gets them as done; in a new snapshot, none. */
static void test_copy_done_survives_a_restart(void **state)
{
    rig_t *r = *state;
    s_start(r);
    s_drive(r, "copy");
    migset_tick(r->ms);
    s_hold_answer(r, true, "0/1000000", true);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1); /* failed by the restart's drain */
    fakelink_advance(&r->link, 1500);
    migset_tick(r->ms);
    Godwit__TableRef ref = GODWIT__TABLE_REF__INIT;
    Godwit__TableSync ts = GODWIT__TABLE_SYNC__INIT;
    Godwit__TableSync *tp[1] = { &ts };
    ref.schema = "public";
    ref.name = "small";
    ts.table = &ref;
    ts.state = "copied";
    ts.rows_done = 1000;
    ts.bytes_done = 4096;
    Godwit__SyncStatusResult sr;
    s_sync_result(&sr, false);
    sr.n_tables = 1;
    sr.tables = tp;
    s_answer_sync(fakelink_take_any(&r->link, GREEN, A(BULK_COPY_STATUS)), &sr);

    s_restart(r);
    assert_string_equal(s_state(r), "copy");
    fakelink_advance(&r->link, 60000);
    migset_tick(r->ms);
    s_hold_answer(r, true, "0/1000000", false);
    fakelink_sent_t *c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_int_equal(c->cmd->bulk_copy->n_done, 1);
    assert_string_equal(c->cmd->bulk_copy->done[0]->table->name, "small");
    assert_int_equal(c->cmd->bulk_copy->done[0]->rows_done, 1000);
    assert_int_equal(c->cmd->bulk_copy->done[0]->bytes_done, 4096);
    fakelink_failed(c, "copy worker 0 (source): connection reset");

    /* The next snapshot is another one: nothing is done in it. */
    s_restart(r);
    fakelink_advance(&r->link, 60000);
    migset_tick(r->ms);
    s_hold_answer(r, true, "0/3000000", true);
    c = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    assert_int_equal(c->cmd->bulk_copy->n_done, 0);
    fakelink_failed(c, "test: not needed");
    fakelink_drain(&r->link, "test: answers not needed");
}

/* Between reaching the copy and the tick's admission, a migration holds no
 * copy slot and runs nothing: its status says it is queued (the fleet
 * test once counted such a one as a running copy, over the cap). */
static void test_copy_queued_until_admitted(void **state)
{
    rig_t *r = *state;
    static const char text[] = "migrations:\n" PLAN_ROW("c1", BLUE, "a");
    plan_t p;
    char err[512];
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    migset_set_caps(r->ms, (migset_caps_t){ .per_source = 1 });
    assert_true(migset_start(r->ms, plan_at(&p, 0), 0, err, sizeof err));
    for (int guard = 0; guard < 10 && !s_pending(r, BLUE, A(ENSURE_PUBLICATION)); guard++) {
        s_tick(r);
        s_answer_roles_schema(r);
    }
    fakelink_ok(fakelink_take_any(&r->link, BLUE, A(ENSURE_PUBLICATION)));
    assert_string_equal(s_field(r, "c1", "state"), "copy");
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 0);
    assert_string_equal(s_field(r, "c1", "copy_queued"), "true");
    assert_string_equal(s_field(r, "c1", "doing"),
                        "queued: waiting for the next admission of copies");
    assert_int_equal(s_copies(r, "running"), 0);
    assert_int_equal(s_copies(r, "queued"), 1);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1);
    assert_string_equal(s_field(r, "c1", "copy_queued"), "");
    plan_free(&p);
}

/* The fleet's pause holds every copy not yet started, across a restart;
 * its resume lets them start. */
static void test_fleet_pause_holds_copies(void **state)
{
    rig_t *r = *state;
    static const char text[] =
        "migrations:\n"
        PLAN_ROW("c1", BLUE, "a")
        PLAN_ROW("c2", BLUE, "b");
    plan_t p;
    char err[512];
    s_start_to_copy(r, text, (migset_caps_t){ .per_source = 1 }, &p);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1); /* c1's; c2 queued */
    cJSON *changed = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    assert_true(migset_fleet_pause(r->ms, true, 0, changed, skipped, err, sizeof err));
    assert_int_equal(cJSON_GetArraySize(changed), 0); /* a copy cannot pause */
    assert_int_equal(cJSON_GetArraySize(skipped), 2);
    cJSON_Delete(changed);
    cJSON_Delete(skipped);

    /* c1's copy ends: c2 stays queued, the fleet being paused. */
    s_ok_copy(fakelink_take_any(&r->link, GREEN, A(BULK_COPY)));
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 0);
    assert_string_equal(s_field(r, "c2", "doing"), "queued: the fleet is paused (godwitctl fleet resume)");

    /* A restart keeps the pause. */
    s_restart(r);
    migset_set_caps(r->ms, (migset_caps_t){ .per_source = 1, .per_target = 0 });
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 0);
    cJSON *c = migset_copies_json(r->ms);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "fleet_paused")));
    cJSON_Delete(c);

    /* The resume: c2's copy starts. */
    changed = cJSON_CreateArray();
    skipped = cJSON_CreateArray();
    assert_true(migset_fleet_pause(r->ms, false, 0, changed, skipped, err, sizeof err));
    cJSON_Delete(changed);
    cJSON_Delete(skipped);
    fakelink_drain(&r->link, "test: answers not needed");
    fakelink_advance(&r->link, 60000);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1);
    assert_string_equal(s_field(r, "c2", "copy_queued"), "");
    plan_free(&p);
}

/* Two migrations into GREEN, from BLUE and from a second source BLUE2. */
static const char s_two_sources[] = "migrations:\n" PLAN_ROW("c1", BLUE, "a")
    PLAN_ROW("c2", BLUE2, "b");

/* BLUE2 connected as a source; BLUE in site fra, GREEN in osl, BLUE2 in
 * blue2_site (NULL: none). */
static void s_sites(rig_t *r, const char *blue2_site)
{
    fakelink_agent(&r->link, BLUE2, "source", &r->rep);
    fakelink_site(&r->link, BLUE, "fra");
    fakelink_site(&r->link, BLUE2, blue2_site);
    fakelink_site(&r->link, GREEN, "osl");
}

/* A cap per link: two sources in one site (fra), one target in another
 * (osl), one copy at a time between the two sites, whatever the caps per
 * host allow; the second waits, saying which link, until the first ends. */
static void test_copy_caps_per_link(void **state)
{
    rig_t *r = *state;
    s_sites(r, "fra");
    plan_t p;
    s_start_to_copy(r, s_two_sources, (migset_caps_t){ .per_link = 1 }, &p);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1);
    assert_string_equal(s_field(r, "c2", "doing"),
                        "queued: 1 copies on link fra -> osl running (copies.per_link 1)");
    s_ok_copy(fakelink_take_any(&r->link, GREEN, A(BULK_COPY)));
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 1);
    assert_string_equal(s_field(r, "c2", "copy_queued"), "");
    assert_int_equal(s_copies(r, "per_link"), 1);
    plan_free(&p);
}

/* A cap per link counts only copies on the same link: an agent without a
 * site is a site of its own; one whose hello has not come yet (its site
 * unknown) waits for it. */
static void test_copy_caps_per_link_sites(void **state)
{
    rig_t *r = *state;
    s_sites(r, NULL);
    plan_t p;
    s_start_to_copy(r, s_two_sources, (migset_caps_t){ .per_link = 1 }, &p);
    assert_int_equal(s_pending(r, GREEN, A(BULK_COPY)), 2); /* blue2 -> osl is its own link */
    fakelink_drain(&r->link, "test: answers not needed");
    plan_free(&p);

    /* A coordinator restarted with c3 in copy, not yet admitted, and blue2
     * not back: c3's copy cannot tell its link. */
    static const char text3[] =
        "migrations:\n"
        PLAN_ROW("c3", BLUE2, "c");
    char err[256];
    assert_true(plan_load_string("plan.yaml", text3, &p, err, sizeof err));
    char *json = plan_migration_to_json(plan_at(&p, 0));
    assert_true(journal_migration_create(r->journal, "c3", json, "copy", err, sizeof err));
    free(json);
    fakelink_agent(&r->link, BLUE2, NULL, NULL);
    s_restart(r);
    migset_set_caps(r->ms, (migset_caps_t){ .per_link = 1 });
    s_tick(r);
    assert_string_equal(s_field(r, "c3", "doing"),
                        "queued: waiting for the hellos of blue2 and green (their sites, for "
                        "copies.per_link)");
    plan_free(&p);
}

/* ---- waves ---- */

/* Loads text into *p (the caller frees it), begins its schedule and
 * starts every migration in its wave. */
static void s_schedule(rig_t *r, const char *text, plan_t *p)
{
    char err[512];
    if (!plan_load_string("plan.yaml", text, p, err, sizeof err))
        fail_msg("%s", err);
    assert_true(migset_schedule(r->ms, &p->waves, err, sizeof err));
    for (size_t i = 0; i < plan_count(p); i++)
        assert_true(migset_start(r->ms, plan_at(p, i), plan_wave(p, i), err, sizeof err));
}

/* The schedule's status field key: a string (static buffer; "" if not
 * one), or a number as text. */
static const char *s_wave_field(rig_t *r, const char *key)
{
    static char buf[512];
    cJSON *w = migset_waves_json(r->ms);
    const cJSON *v = cJSON_GetObjectItem(w, key);
    if (cJSON_IsString(v))
        snprintf(buf, sizeof buf, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, sizeof buf, "%d", (int)v->valuedouble);
    else
        buf[0] = '\0';
    cJSON_Delete(w);
    return buf;
}

/* What an earlier coordinator did while this one was down: migration
 * name moved from `from` to `to` (NULL: stays) and, with vstate, a verify
 * of it ended so; then the set is loaded again. */
static void s_meanwhile(rig_t *r, const char *name, const char *from, const char *to,
                        const char *vstate)
{
    char err[256], d[128];
    fakelink_drain(&r->link, "coordinator stopping");
    migset_destroy(&r->ms);
    if (to)
        assert_true(journal_migration_move(r->journal, name, from, to, "test", err, sizeof err));
    if (vstate) {
        snprintf(d, sizeof d, "{\"state\":\"%s\",\"finished_at_ms\":%llu}", vstate,
                 (unsigned long long)r->link.now_ms);
        assert_true(journal_event(r->journal, name, to ? to : from, "verify", d));
    }
    r->ms = migset_new(&r->link.link, r->journal);
    migset_on_move(r->ms, s_on_move, NULL);
}

/* Answers the streaming poll (SyncStatus) with one table, every table
 * ready. */
static void s_ok_sync_one_table(fakelink_sent_t *s)
{
    Godwit__TableRef ref = GODWIT__TABLE_REF__INIT;
    ref.schema = "public";
    ref.name = "t";
    Godwit__TableSync ts = GODWIT__TABLE_SYNC__INIT;
    ts.table = &ref;
    ts.state = "ready";
    Godwit__TableSync *tables[1] = { &ts };
    Godwit__SyncStatusResult sr;
    s_sync_result(&sr, true);
    sr.n_tables = 1;
    sr.tables = tables;
    s_answer_sync(s, &sr);
}

/* Waves with the operator's go and an error budget of 0: the canary
 * starts alone; the schedule verifies it itself once it streams; verified
 * equal, the next wave waits for fleet go; a failure in it stops the
 * wave after until the operator accepts it; a wave aborted before it
 * opened is aborted at once. A restart at each point resumes the
 * schedule where it was. */
static void test_waves_operator_go_and_budget(void **state)
{
    rig_t *r = *state;
    static const char text[] = "waves: {canary: 1, size: 1, go: operator}\n"
                               "migrations:\n" PLAN_ROW("c1", BLUE, "a") PLAN_ROW("c2", BLUE, "b")
                                   PLAN_ROW("c3", BLUE, "c") PLAN_ROW("c4", BLUE, "d");
    plan_t p;
    char err[512];
    s_schedule(r, text, &p);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(s_field(r, plan_at(&p, i)->name, "state"), "scheduled");
    /* One schedule at a time. */
    assert_false(migset_schedule(r->ms, &p.waves, err, sizeof err));
    assert_non_null(strstr(err, "still has 4 migrations waiting for their wave"));

    /* The canary starts alone. */
    s_tick(r);
    assert_string_equal(s_field(r, "c1", "state"), "roles");
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");
    assert_string_equal(s_wave_field(r, "opened"), "1");
    assert_string_equal(s_wave_field(r, "next"), "2");
    assert_non_null(strstr(s_wave_field(r, "waiting"),
                           "wave 2 waits until the waves before it are streaming and verified "
                           "equal: 1 of 1 not yet (c1)"));

    /* It streams (after a restart): the schedule verifies it. */
    s_meanwhile(r, "c1", "roles", "streaming", NULL);
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");
    s_tick(r);
    s_ok_sync_one_table(fakelink_take(&r->link, GREEN, A(SYNC_STATUS)));
    s_tick(r);
    fakelink_run_deferred(&r->link);
    assert_int_equal(s_pending(r, GREEN, A(VERIFY_SCHEMA)), 1);
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");

    /* Verified equal: wave 2 waits for the operator's go. */
    s_meanwhile(r, "c1", "streaming", NULL, "equal");
    s_tick(r);
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");
    assert_string_equal(s_wave_field(r, "waiting"), "wave 2 is ready: godwitctl fleet go opens it");
    unsigned wave = 0;
    assert_true(migset_fleet_go(r->ms, false, &wave, err, sizeof err));
    assert_int_equal(wave, 2);
    s_tick(r);
    assert_string_equal(s_field(r, "c2", "state"), "roles");
    assert_string_equal(s_field(r, "c3", "state"), "scheduled");

    /* c2 fails (aborted): more than the budget of 0, wave 3 does not open,
     * even with a go, until the operator accepts the failure. */
    assert_true(migset_abort(r->ms, "c2", err, sizeof err));
    s_tick(r);
    assert_non_null(strstr(s_wave_field(r, "waiting"),
                           "the schedule stopped before wave 3: 1 failed (c2), more than the "
                           "error budget of 0 allows"));
    assert_true(migset_fleet_go(r->ms, false, &wave, err, sizeof err));
    s_restart(r);
    s_tick(r);
    assert_string_equal(s_field(r, "c3", "state"), "scheduled");
    assert_string_equal(s_wave_field(r, "failed"), "1");
    assert_true(migset_fleet_go(r->ms, true, &wave, err, sizeof err));
    assert_int_equal(wave, 3);
    s_tick(r);
    assert_string_equal(s_field(r, "c3", "state"), "roles");
    assert_string_equal(s_field(r, "c4", "state"), "scheduled");

    /* Wave 4 aborted before it opened: nothing of it exists, it is
     * aborted at once; no wave waits any more. */
    cJSON *changed = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    assert_false(migset_fleet_abort(r->ms, 9, changed, skipped, err, sizeof err));
    assert_string_equal(err, "the fleet's schedule has no wave 9");
    assert_true(migset_fleet_abort(r->ms, 4, changed, skipped, err, sizeof err));
    assert_int_equal(cJSON_GetArraySize(changed), 1);
    assert_string_equal(cJSON_GetArrayItem(changed, 0)->valuestring, "c4");
    cJSON_Delete(changed);
    cJSON_Delete(skipped);
    assert_string_equal(s_field(r, "c4", "state"), "aborted");
    assert_string_equal(s_field(r, "c3", "state"), "roles");
    assert_string_equal(s_wave_field(r, "next"), "");
    assert_false(migset_fleet_go(r->ms, false, &wave, err, sizeof err));
    assert_non_null(strstr(err, "no wave waits"));
    /* The next plan may begin a schedule of its own. */
    assert_true(migset_schedule(r->ms, &p.waves, err, sizeof err));
    assert_string_equal(s_wave_field(r, "schedule"), "2");
    plan_free(&p);
}

/* Waves that open by themselves: a canary verified different stops the
 * schedule (budget 0); verified equal again, the next wave opens without
 * a go. The fleet's pause holds a wave that could open. */
static void test_waves_auto(void **state)
{
    rig_t *r = *state;
    static const char text[] = "waves: {size: 1}\n"
                               "migrations:\n" PLAN_ROW("c1", BLUE, "a") PLAN_ROW("c2", BLUE, "b");
    plan_t p;
    char err[512];
    s_schedule(r, text, &p);
    s_tick(r);
    assert_string_equal(s_field(r, "c1", "state"), "roles");
    s_meanwhile(r, "c1", "roles", "streaming", "different");
    s_tick(r);
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");
    assert_non_null(strstr(s_wave_field(r, "waiting"), "the schedule stopped before wave 2"));

    s_meanwhile(r, "c1", "streaming", NULL, "equal");
    cJSON *changed = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    assert_true(migset_fleet_pause(r->ms, true, 0, changed, skipped, err, sizeof err));
    s_tick(r);
    assert_string_equal(s_field(r, "c2", "state"), "scheduled");
    /* c1 pauses too: the gate waits for it again */
    assert_string_equal(s_field(r, "c1", "state"), "pausing");
    assert_true(migset_fleet_pause(r->ms, false, 0, changed, skipped, err, sizeof err));
    cJSON_Delete(changed);
    cJSON_Delete(skipped);
    s_meanwhile(r, "c1", "resuming", "streaming", NULL);
    s_tick(r);
    assert_string_equal(s_field(r, "c2", "state"), "roles");
    plan_free(&p);
}

/* How many commands with action are pending for agent. */
static size_t s_pending_action(const rig_t *r, const char *agent, Godwit__Command__ActionCase a)
{
    size_t n = 0;
    for (const fakelink_sent_t *s = fakelink_peek(&r->link); s; s = s->next)
        n += strcmp(s->agent, agent) == 0 && s->cmd->action_case == a;
    return n;
}

/* A rehearsal's "restore apply" failed (green cut off): the migration
 * turns green's subscription's synchronous commits off itself, again every
 * 5 s until green says done; also after a restart (the journaled report),
 * and never when the restore went through. */
static void test_failed_restore_apply_sent_again(void **state)
{
    rig_t *r = *state;
    s_journal_at(r, "streaming",
                 "{\"state\":\"done\",\"dry_run\":true,\"direction\":\"forward\","
                 "\"timeline\":[{\"step\":\"resume\",\"ok\":true},"
                 "{\"step\":\"restore apply\",\"ok\":false}]}");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take_any(&r->link, GREEN, A(TUNE_SUBSCRIPTION));
    assert_string_equal(s->cmd->tune_subscription->database, "shop");
    assert_string_equal(s->cmd->tune_subscription->name, "godwit_" NAME);
    assert_false(s->cmd->tune_subscription->synchronous_commit);
    fakelink_failed(s, "timed out waiting for the agent");
    s_tick(r);
    assert_int_equal(s_pending_action(r, GREEN, A(TUNE_SUBSCRIPTION)), 0);
    fakelink_advance(&r->link, 5000);
    s_tick(r);
    fakelink_ok(fakelink_take_any(&r->link, GREEN, A(TUNE_SUBSCRIPTION)));
    fakelink_advance(&r->link, 10000);
    s_tick(r);
    assert_int_equal(s_pending_action(r, GREEN, A(TUNE_SUBSCRIPTION)), 0);

    s_journal_at(r, "streaming",
                 "{\"state\":\"done\",\"dry_run\":true,\"direction\":\"forward\","
                 "\"timeline\":[{\"step\":\"restore apply\",\"ok\":true}]}");
    s_tick(r);
    assert_int_equal(s_pending_action(r, GREEN, A(TUNE_SUBSCRIPTION)), 0);
}

/* ---- the import profile ---- */

static const char s_plan_import[] =
    "migrations:\n"
    "  - name: " NAME "\n"
    "    source: {agent: " BLUE ", database: shop}\n"
    "    target: {agent: " GREEN ", database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: " PX ", proxy: pgb}]}\n"
    "    import_profile: {synchronous_commit: off, max_wal_size: 4GB}\n";

/* r->plan replaced by text's. */
static void s_use_plan(rig_t *r, const char *text)
{
    char err[512];
    plan_free(&r->plan);
    if (!plan_load_string("plan.yaml", text, &r->plan, err, sizeof err))
        fail_msg("%s", err);
}

static const Godwit__ImportSetting *s_import_setting(const fakelink_sent_t *s, const char *name)
{
    const Godwit__ImportProfile *q = s->cmd->import_profile;
    for (size_t i = 0; i < q->n_settings; i++)
        if (strcmp(q->settings[i]->name, name) == 0)
            return q->settings[i];
    fail_msg("no setting %s in the command", name);
    return NULL;
}

/* The import profile's status field (static buffer; "" if absent). */
static const char *s_import_field(rig_t *r, const char *field)
{
    static char buf[512];
    cJSON *st = migset_status(r->ms, NAME);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "import_profile"), field);
    snprintf(buf, sizeof buf, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(st);
    return buf;
}

/* Tune reads the target's settings and journals them before it changes
 * anything, then applies the plan's values; the revert follows the load
 * (post-data done), is tried again until the agent says every setting is
 * back, and the cutover gate refuses until then. */
static void test_import_profile_applied_then_reverted(void **state)
{
    rig_t *r = *state;
    char err[512];
    s_use_plan(r, s_plan_import);
    s_start(r);
    s_drive(r, "publish");
    s_tick(r);
    fakelink_ok(fakelink_take_any(&r->link, BLUE, A(ENSURE_PUBLICATION)));
    assert_string_equal(s_state(r), "tune");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE));
    assert_int_equal(s->cmd->import_profile->mode, GODWIT__IMPORT_PROFILE__MODE__MODE_READ);
    assert_int_equal(s->cmd->import_profile->n_settings, 2);
    s_ok_import(s, "1GB", "on");
    assert_string_equal(s_state(r), "tune");
    char *rec = journal_last_event(r->journal, NAME, "import_profile");
    assert_non_null(rec);
    assert_non_null(strstr(rec, "\"stage\":\"read\""));
    assert_non_null(strstr(rec, "\"setting\":\"1GB\""));
    free(rec);
    s_tick(r);
    s = fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE));
    assert_int_equal(s->cmd->import_profile->mode, GODWIT__IMPORT_PROFILE__MODE__MODE_APPLY);
    assert_string_equal(s_import_setting(s, "max_wal_size")->value, "4096MB");
    assert_string_equal(s_import_setting(s, "synchronous_commit")->value, "off");
    s_ok_import(s, "4GB", "off");
    assert_string_equal(s_state(r), "copy");
    assert_string_equal(s_import_field(r, "state"), "applied");
    s_streaming(r);
    /* The revert goes out with the state recorded before. */
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 1);
    s = fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE));
    assert_int_equal(s->cmd->import_profile->mode, GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT);
    assert_string_equal(s_import_setting(s, "max_wal_size")->setting, "1GB");
    assert_false(s_import_setting(s, "max_wal_size")->in_auto_conf);
    fakelink_failed(s, "max_wal_size is 2GB (from /etc/pg.conf line 3), recorded 1GB before the "
                       "import");
    bool refused = false;
    assert_false(migset_cutover(r->ms, NAME, false, false, &refused, err, sizeof err));
    assert_true(refused);
    assert_non_null(strstr(err, "not reverted"));
    assert_non_null(strstr(err, "recorded 1GB"));
    while (fakelink_peek(&r->link)) /* streaming's polls */
        s_ok_sync(fakelink_take_any(&r->link, GREEN, A(SYNC_STATUS)), true);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 0); /* every 5 s */
    fakelink_advance(&r->link, 5000);
    s_tick(r);
    s_ok_import(fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE)), "1GB", "on");
    assert_string_equal(s_import_field(r, "state"), "reverted");
    assert_false(migset_cutover(r->ms, NAME, false, false, &refused, err, sizeof err));
    assert_null(strstr(err, "import profile")); /* the next gate: verify */
    /* Done for good, also after a restart. */
    s_restart(r);
    assert_string_equal(s_import_field(r, "state"), "reverted");
    fakelink_advance(&r->link, 60000);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 0);
}

/* An abort while the apply is in flight: no revert runs beside it on the
 * agent; once it answered, the revert goes out, and a restart of the
 * coordinator before the agent answered sends it again from the journal. */
static void test_import_profile_reverted_after_abort_and_restart(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_import);
    s_start(r);
    s_drive(r, "tune");
    s_tick(r);
    s_ok_import(fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE)), "1GB", "on");
    s_tick(r);
    fakelink_sent_t *apply = fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE));
    assert_true(migset_abort(r->ms, NAME, err, sizeof err));
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 0);
    s_ok_import(apply, "4GB", "off"); /* stale: moves nothing */
    assert_string_equal(s_state(r), "abort_target");
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 1);
    /* A new start of the name waits for the revert. */
    while (s_pending(r, GREEN, A(DROP_OBJECTS)) || s_pending(r, BLUE, A(DROP_OBJECTS))) {
        const fakelink_sent_t *d = fakelink_peek(&r->link);
        while (d && d->cmd->action_case != A(DROP_OBJECTS))
            d = d->next;
        fakelink_ok(fakelink_take_any(&r->link, d->agent, A(DROP_OBJECTS)));
        s_tick(r);
    }
    assert_string_equal(s_state(r), "aborted");
    assert_false(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_non_null(strstr(err, "import profile"));
    s_restart(r);
    assert_string_equal(s_import_field(r, "state"), "read");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(IMPORT_PROFILE));
    assert_int_equal(s->cmd->import_profile->mode, GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT);
    assert_string_equal(s_import_setting(s, "synchronous_commit")->setting, "on");
    s_ok_import(s, "1GB", "on");
    assert_string_equal(s_import_field(r, "state"), "reverted");
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
}

/* Answers every command but the copy's until migration name is in copy;
 * the target's max_wal_size reads wal until then. */
static void s_to_copy(rig_t *r, const char *name, const char *wal)
{
    for (int guard = 0; guard < 10 && strcmp(s_field(r, name, "state"), "copy") != 0; guard++) {
        s_tick(r);
        const fakelink_sent_t *next = fakelink_peek(&r->link);
        while (next && (next->cmd->action_case == A(BULK_COPY_STATUS) ||
                        next->cmd->action_case == A(BULK_COPY)))
            next = next->next;
        if (!next)
            continue;
        fakelink_sent_t *s = fakelink_take_any(&r->link, next->agent, next->cmd->action_case);
        if (s->cmd->action_case == A(APPLY_ROLES))
            s_ok_roles(s);
        else if (s->cmd->action_case == A(APPLY_SCHEMA))
            s_ok_schema(s);
        else if (s->cmd->action_case == A(IMPORT_PROFILE))
            s_ok_import(s, wal, "on");
        else
            fakelink_ok(s);
    }
    assert_string_equal(s_field(r, name, "state"), "copy");
}

/* Two migrations into one target server: the second's state before is the
 * first's (read after the first applied, the server shows the relaxed
 * values), and the first's revert waits while the second still loads. */
static void test_import_profile_shared_by_one_target(void **state)
{
    rig_t *r = *state;
    char err[512];
    static const char text[] =
        "migrations:\n"
        "  - {name: c1, source: {agent: " BLUE ", database: a}, target: {agent: " GREEN
        ", database: a}, replication: {peer: p}, import_profile: {max_wal_size: 4GB}}\n"
        "  - {name: c2, source: {agent: " BLUE ", database: b}, target: {agent: " GREEN
        ", database: b}, replication: {peer: p}, import_profile: {max_wal_size: 4GB}}\n";
    plan_t p;
    if (!plan_load_string("plan.yaml", text, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_true(migset_start(r->ms, plan_at(&p, 0), 0, err, sizeof err));
    /* c1 through its tune: green's max_wal_size is 1GB */
    s_to_copy(r, "c1", "1GB");
    s_tick(r);
    fakelink_sent_t *copy1 = fakelink_take_any(&r->link, GREEN, A(BULK_COPY));
    /* c2 reads the relaxed value, records c1's state before */
    assert_true(migset_start(r->ms, plan_at(&p, 1), 0, err, sizeof err));
    s_to_copy(r, "c2", "4GB");
    assert_string_equal(s_field(r, "c2", "state"), "copy");
    char *rec = journal_last_event(r->journal, "c2", "import_profile");
    assert_non_null(strstr(rec, "\"setting\":\"1GB\""));
    assert_non_null(strstr(rec, "\"shared_from\":\"c1\""));
    free(rec);
    /* c1 leaves its load (an abort) while c2 still copies: its revert is
     * held back; once c2 leaves too, both put back the same state. */
    fakelink_answer(copy1, NULL, "stopped: our objects are being dropped");
    assert_true(migset_abort(r->ms, "c1", err, sizeof err));
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 0);
    cJSON *st = migset_status(r->ms, "c1");
    const cJSON *ip = cJSON_GetObjectItem(st, "import_profile");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ip, "held_by")), "c2");
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(ip, "pending")),
                           "while migration c2 loads"));
    cJSON_Delete(st);
    assert_true(migset_abort(r->ms, "c2", err, sizeof err));
    fakelink_drain(&r->link, "stopped");
    fakelink_advance(&r->link, 1000);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(IMPORT_PROFILE)), 2);
    for (int i = 0; i < 2; i++) {
        fakelink_sent_t *s = fakelink_take_any(&r->link, GREEN, A(IMPORT_PROFILE));
        assert_int_equal(s->cmd->import_profile->mode, GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT);
        assert_string_equal(s_import_setting(s, "max_wal_size")->setting, "1GB");
        s_ok_import(s, "1GB", "on");
    }
    fakelink_drain(&r->link, "not now");
    plan_free(&p);
}


static const char s_plan_physical[] =
    "migrations:\n"
    "  - name: " NAME "\n"
    "    method: physical\n"
    "    source: {agent: " BLUE ", database: shop}\n"
    "    target: {agent: " GREEN ", database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    options: {slot_wal_limit: 1GiB}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: " PX ", proxy: pgb}]}\n";

/* Answers s (a BaseBackup or a StandbyStatus) with the standby's state. */
static void s_answer_standby(fakelink_sent_t *s, bool in_recovery, bool streaming)
{
    Godwit__StandbyStatusResult ss = GODWIT__STANDBY_STATUS_RESULT__INIT;
    ss.in_recovery = in_recovery;
    ss.streaming = streaming;
    ss.ours = true;
    ss.data_directory = "/srv/green";
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_STANDBY_STATUS;
    res.standby_status = &ss;
    fakelink_answer(s, &res, NULL);
}

/* method: physical: a base backup instead of roles, schema, publication
 * and copy, then the standby's state polled; no pause; the abort removes
 * the standby first, then our physical slot. */
static void test_physical_path(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_physical);
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_string_equal(s_state(r), "basebackup");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(BASE_BACKUP));
    assert_string_equal(s->cmd->base_backup->slot, "godwit_shop");
    assert_string_equal(s->cmd->base_backup->peer, "blue-db");
    s_answer_standby(s, true, true);
    assert_string_equal(s_state(r), "streaming");
    /* its first poll at once: the standby's state, not a subscription's */
    s_answer_standby(fakelink_take(&r->link, GREEN, A(STANDBY_STATUS)), true, false);
    char *e = s_status_string(r, "last_error");
    assert_non_null(e);
    assert_non_null(strstr(e, "does not stream"));
    free(e);
    fakelink_advance(&r->link, 2000);
    s_tick(r);
    s_answer_standby(fakelink_take(&r->link, GREEN, A(STANDBY_STATUS)), true, true);
    assert_null(s_status_string(r, "last_error"));
    e = s_status_string(r, "method");
    assert_string_equal(e, "physical");
    free(e);
    assert_false(migset_pause(r->ms, NAME, err, sizeof err));
    assert_true(migset_abort(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "abort_target");
    s_tick(r);
    s = fakelink_take_any(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->standby_of_slot, "godwit_shop");
    assert_string_equal(s->cmd->drop_objects->subscription, "");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "abort_source");
    s_tick(r);
    s = fakelink_take(&r->link, BLUE, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->physical_slot, "godwit_shop");
    assert_string_equal(s->cmd->drop_objects->slot, "");
    /* a verify's publication and slot, if one left them */
    assert_string_equal(s->cmd->drop_objects->publication, "godwit_shop");
    assert_string_equal(s->cmd->drop_objects->verify_slot, "godwit_shop_verify");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "aborted");
}

static const char s_plan_mariadb[] =
    "migrations:\n"
    "  - name: " NAME "\n"
    "    engine: mariadb\n"
    "    source: {agent: " BLUE ", database: shop}\n"
    "    target: {agent: " GREEN ", database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    options: {parallelism: 3}\n";

/* Answers s (a MyCopy): 1000 rows of 4 tables copied at 0-1-13. */
static void s_answer_my_copy(fakelink_sent_t *s)
{
    Godwit__MyCopyResult mc = GODWIT__MY_COPY_RESULT__INIT;
    mc.gtid_pos = "0-1-13";
    mc.tables = 4;
    mc.rows = 1000;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_MY_COPY;
    res.my_copy = &mc;
    fakelink_answer(s, &res, NULL);
}

/* Answers s (a ReplicaStatus) with our connection's state. */
static void s_answer_replica(fakelink_sent_t *s, bool io, bool sql, const char *error)
{
    Godwit__MariadbReplica rp = GODWIT__MARIADB_REPLICA__INIT;
    rp.connection_name = "godwit_shop";
    rp.io_running = io;
    rp.sql_running = sql;
    rp.seconds_behind = io && sql ? 0 : -1;
    rp.last_error = (char *)error;
    Godwit__ReplicaStatusResult rs = GODWIT__REPLICA_STATUS_RESULT__INIT;
    rs.exists = true;
    rs.replica = &rp;
    rs.gtid_slave_pos = "0-1-40";
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_REPLICA_STATUS;
    res.replica_status = &rs;
    fakelink_answer(s, &res, NULL);
}

static Godwit__MyChunk s_chunk(const char *table, uint32_t n, uint64_t src, uint64_t tgt)
{
    Godwit__MyChunk k = GODWIT__MY_CHUNK__INIT;
    k.table = (char *)table;
    k.chunk = n;
    k.source_rows = src;
    k.target_rows = tgt;
    k.source_hash = "00000000000000aa";
    k.target_hash = "00000000000000bb";
    return k;
}

static void s_answer_sum(fakelink_sent_t *s, Godwit__MyChecksumTable **tables, size_t n)
{
    Godwit__MyChecksumResult sr = GODWIT__MY_CHECKSUM_RESULT__INIT;
    sr.gtid = "0-1-77";
    sr.tables = tables;
    sr.n_tables = n;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_MY_CHECKSUM;
    res.my_checksum = &sr;
    fakelink_answer(s, &res, NULL);
}

static void s_answer_cmp(fakelink_sent_t *s, Godwit__MyChunk **diff, size_t n, uint32_t chunks)
{
    Godwit__MyChecksumCompareResult cr = GODWIT__MY_CHECKSUM_COMPARE_RESULT__INIT;
    cr.chunks = chunks;
    cr.different = diff;
    cr.n_different = n;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_MY_COMPARE;
    res.my_compare = &cr;
    fakelink_answer(s, &res, NULL);
}

/* MariaDB's verify (mycheck): the whole database's checksums on blue, the
 * comparison on green after blue's last GTID; the different chunk of the
 * keyed table again row by row, whose keys name each row (changed,
 * missing, extra); the keyless table different by its counts; then the
 * figures' table dropped on blue. */
static void s_mariadb_verify(rig_t *r)
{
    char err[256];
    assert_true(migset_verify(r->ms, NAME, err, sizeof err));
    fakelink_sent_t *s = fakelink_take_any(&r->link, BLUE, A(MY_CHECKSUM));
    assert_string_equal(s->cmd->my_checksum->database, "shop");
    assert_int_equal(s->cmd->my_checksum->n_within, 0);
    assert_false(s->cmd->my_checksum->finish);
    char *run = strdup(s->cmd->my_checksum->run);
    char *key_cols[] = { "id" };
    Godwit__MyChecksumTable orders = GODWIT__MY_CHECKSUM_TABLE__INIT, notes = orders;
    orders.table = "orders";
    orders.key_columns = key_cols;
    orders.n_key_columns = 1;
    orders.chunks = 3;
    orders.source_rows = 2500;
    notes.table = "notes";
    notes.chunks = 1;
    notes.source_rows = 10;
    Godwit__MyChecksumTable *tables[] = { &orders, &notes };
    s_answer_sum(s, tables, 2);
    s = fakelink_take_any(&r->link, GREEN, A(MY_CHECKSUM_COMPARE));
    assert_string_equal(s->cmd->my_checksum_compare->gtid, "0-1-77");
    assert_string_equal(s->cmd->my_checksum_compare->run, run);
    Godwit__MyChunk c2 = s_chunk("orders", 2, 1000, 1000), n1 = s_chunk("notes", 1, 10, 11);
    char *lo[] = { "1000" }, *hi[] = { "2000" };
    c2.lower = lo;
    c2.n_lower = 1;
    c2.upper = hi;
    c2.n_upper = 1;
    Godwit__MyChunk *diff1[] = { &c2, &n1 };
    s_answer_cmp(s, diff1, 2, 4);
    /* the keyed table's chunk again, one row per chunk */
    s = fakelink_take_any(&r->link, BLUE, A(MY_CHECKSUM));
    assert_int_equal(s->cmd->my_checksum->n_within, 1);
    assert_int_equal(s->cmd->my_checksum->chunk_rows, 1);
    assert_string_equal(s->cmd->my_checksum->within[0]->table, "orders");
    assert_string_equal(s->cmd->my_checksum->within[0]->upper[0], "2000");
    assert_string_not_equal(s->cmd->my_checksum->run, run);
    orders.chunks = 1000; /* one per row of the chunk */
    Godwit__MyChecksumTable *again[] = { &orders };
    s_answer_sum(s, again, 1);
    s = fakelink_take_any(&r->link, GREEN, A(MY_CHECKSUM_COMPARE));
    char *k1500[] = { "1500" }, *k1600[] = { "1600" }, *k1601[] = { "1601" };
    Godwit__MyChunk changed = s_chunk("orders", 500, 1, 1), missing = s_chunk("orders", 600, 1, 0),
                    extra = s_chunk("orders", 601, 1, 2);
    changed.source_keys = changed.target_keys = k1500;
    changed.n_source_keys = changed.n_target_keys = 1;
    missing.source_keys = k1600;
    missing.n_source_keys = 1;
    char *both[] = { "1601", "1601x" };
    extra.source_keys = k1601;
    extra.n_source_keys = 1;
    extra.target_keys = both;
    extra.n_target_keys = 2;
    Godwit__MyChunk *diff2[] = { &changed, &missing, &extra };
    s_answer_cmp(s, diff2, 3, 1000);
    /* the end: godwit_verify dropped on blue */
    s = fakelink_take_any(&r->link, BLUE, A(MY_CHECKSUM));
    assert_true(s->cmd->my_checksum->finish);
    assert_string_equal(s->cmd->my_checksum->run, run);
    fakelink_ok(s);
    cJSON *st = migset_status(r->ms, NAME);
    cJSON *v = cJSON_GetObjectItem(st, "verify");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(v, "state")), "different");
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "tables"), 0);
    cJSON *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "tables"), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t0, "table")), "shop.orders");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t0, "outcome")), "different");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(t0, "diff_count")), 3);
    cJSON *diffs = cJSON_GetObjectItem(t0, "diffs");
    const char *want[][2] = { { "1500", "changed" }, { "1600", "missing_on_target" },
                              { "1601x", "extra_on_target" } };
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_GetArrayItem(diffs, i);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                                cJSON_GetObjectItem(d, "key"), "id")), want[i][0]);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "kind")), want[i][1]);
    }
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t1, "outcome")), "different");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(t1, "target_rows")), 11);
    cJSON_Delete(st);
    free(run);
}

/* engine: mariadb: one copy step on the target (MyCopy: the copy and the
 * replication from its GTID position), then our connection's state
 * polled; a stopped thread is the migration's error with the server's
 * message; no pause, verify or cutover; the abort removes the connection
 * and the copy from the target only. */
static void test_mariadb_path(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_mariadb);
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    assert_string_equal(s_state(r), "copy");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(MY_COPY));
    assert_string_equal(s->cmd->my_copy->connection, "godwit_shop");
    assert_string_equal(s->cmd->my_copy->peer, "blue-db");
    assert_string_equal(s->cmd->my_copy->source_database, "shop");
    assert_string_equal(s->cmd->my_copy->database, "shop");
    assert_int_equal(s->cmd->my_copy->parallelism, 3);
    s_answer_my_copy(s);
    assert_string_equal(s_state(r), "streaming");
    s_answer_replica(fakelink_take_any(&r->link, GREEN, A(REPLICA_STATUS)), true, false,
                     "Duplicate entry '7' for key 'PRIMARY'");
    char *e = s_status_string(r, "last_error");
    assert_non_null(e);
    assert_non_null(strstr(e, "SQL thread"));
    assert_non_null(strstr(e, "Duplicate entry"));
    free(e);
    /* The source keeps its binary logs 10 s: an I/O thread down for 5 s of
     * them is said to be half-way to a new copy. */
    Godwit__Mariadb my = GODWIT__MARIADB__INIT;
    my.binlog_expire_seconds = 10;
    my.gtid_binlog_pos = "0-1-45";
    r->rep.mariadb = &my;
    for (int i = 0; i < 3; i++) {
        fakelink_advance(&r->link, 2500);
        s_tick(r);
        s_answer_replica(fakelink_take_any(&r->link, GREEN, A(REPLICA_STATUS)), false, true,
                         "error reconnecting to master");
    }
    e = s_status_string(r, "last_error");
    assert_non_null(strstr(e, "I/O thread"));
    assert_non_null(strstr(e, "not read the source's binary log for 5 s"));
    free(e);
    fakelink_advance(&r->link, 2000);
    s_tick(r);
    s_answer_replica(fakelink_take_any(&r->link, GREEN, A(REPLICA_STATUS)), true, true, "");
    assert_null(s_status_string(r, "last_error"));
    cJSON *stj = migset_status(r->ms, NAME);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(stj, "lag_transactions")), 5);
    cJSON_Delete(stj);
    r->rep.mariadb = NULL;
    e = s_status_string(r, "engine");
    assert_string_equal(e, "mariadb");
    free(e);
    assert_false(migset_pause(r->ms, NAME, err, sizeof err));
    s_mariadb_verify(r);
    bool refused = false;
    assert_false(migset_cutover(r->ms, NAME, false, false, &refused, err, sizeof err));
    assert_true(refused);
    assert_non_null(strstr(err, "the plan names no cutover.app_roles"));
    assert_true(migset_abort(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "abort_target");
    s_tick(r);
    s = fakelink_take_any(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->replica_connection, "godwit_shop");
    assert_string_equal(s->cmd->drop_objects->database, "shop");
    assert_string_equal(s->cmd->drop_objects->subscription, "");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "aborted");
    assert_null(fakelink_find(&r->link, A(DROP_OBJECTS))); /* nothing on blue */
}

static const char s_plan_mariadb_cutover[] =
    "migrations:\n"
    "  - name: " NAME "\n"
    "    engine: mariadb\n"
    "    source: {agent: " BLUE ", database: shop}\n"
    "    target: {agent: " GREEN ", database: shop}\n"
    "    replication: {peer: blue-db}\n"
    "    reverse_replication: {peer: green-db}\n"
    "    cutover: {app_roles: [app], proxies: [{agent: " PX ", proxy: pgb}]}\n";

/* Answers what a MariaDB migration and its cutover send until the
 * migration is in after (at most 200 rounds of a second): proxies OK, the
 * polls running, MyFollow from follow_agent through follow_conn. */
static void s_my_answer_until(rig_t *r, const char *after, const char *follow_agent,
                              const char *follow_conn, const char *gtid)
{
    int follows = 0;
    for (int i = 0; i < 200 && strcmp(s_state(r), after) != 0; i++) {
        s_tick(r);
        while (fakelink_peek(&r->link)) {
            fakelink_sent_t *s = r->link.sent;
            r->link.sent = s->next;
            if (s->cmd->action_case == A(REPLICA_STATUS)) {
                s_answer_replica(s, true, true, "");
            } else if (s->cmd->action_case == A(MY_FOLLOW)) {
                assert_string_equal(s->agent, follow_agent);
                assert_string_equal(s->cmd->my_follow->connection, follow_conn);
                assert_string_equal(s->cmd->my_follow->gtid, gtid);
                follows++;
                s_answer_replica(s, true, true, "");
            } else {
                assert_int_equal(s->cmd->action_case, A(PROXY_ACTION));
                fakelink_ok(s);
            }
        }
        fakelink_advance(&r->link, 1000);
    }
    assert_string_equal(s_state(r), after);
    assert_int_equal(follows, 1);
}

/* engine: mariadb after the cutover: streaming -> switched on the
 * cutover's end (here recovered in "switching": the switch finished, blue
 * follows green from the journaled switch GTID); while switched, the way
 * back (revname on blue) is polled, not our stopped connection on green,
 * and status shows it; abort and cleanup are refused; the rollback
 * (recovered) goes back to streaming with green following blue again. */
static void test_mariadb_switched(void **state)
{
    rig_t *r = *state;
    char err[512], detail[512];
    s_use_plan(r, s_plan_mariadb_cutover);
    snprintf(detail, sizeof detail,
             "{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"forward\",\"at_ms\":%llu,"
             "\"final_gtid\":\"0-1-50\",\"switch_gtid\":\"0-2-3\",\"switched\":[0]}",
             (unsigned long long)r->link.now_ms);
    s_journal_at(r, "streaming", detail);
    s_my_answer_until(r, "switched", BLUE, "godwit_shop_rev", "0-2-3");
    fakelink_advance(&r->link, 5000);
    s_tick(r);
    assert_int_equal(s_pending(r, GREEN, A(REPLICA_STATUS)), 0);
    fakelink_sent_t *s = fakelink_take_any(&r->link, BLUE, A(REPLICA_STATUS));
    assert_string_equal(s->cmd->replica_status->connection, "godwit_shop_rev");
    s_answer_replica(s, false, true, "error connecting to master");
    char *e = s_status_string(r, "last_error");
    assert_non_null(e);
    assert_non_null(strstr(e, "blue's replication connection godwit_shop_rev (the way back) is "
                              "stopped (I/O thread)"));
    free(e);
    e = s_status_string(r, "replication_direction");
    assert_string_equal(e, "back");
    free(e);
    assert_false(migset_abort(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "traffic has moved to green"));
    assert_string_equal(s_state(r), "switched");
    /* the rollback, finished after a restart: green follows blue again */
    snprintf(detail, sizeof detail,
             "{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"back\",\"at_ms\":%llu,"
             "\"final_gtid\":\"0-2-9\",\"switch_gtid\":\"0-1-60\",\"switched\":[0]}",
             (unsigned long long)r->link.now_ms);
    s_journal_at(r, "switched", detail);
    s_my_answer_until(r, "streaming", GREEN, "godwit_shop", "0-1-60");
    fakelink_advance(&r->link, 5000);
    s_tick(r);
    assert_int_equal(s_pending(r, BLUE, A(REPLICA_STATUS)), 0);
    s_answer_replica(fakelink_take_any(&r->link, GREEN, A(REPLICA_STATUS)), true, true, "");
}

/* Cleanup after a MariaDB cutover: blue's connection for the way back
 * removed, then green's stopped one, green's database kept (it takes the
 * traffic); never the drop of the copy. */
static void test_mariadb_cleanup(void **state)
{
    rig_t *r = *state;
    char err[512], detail[512];
    s_use_plan(r, s_plan_mariadb_cutover);
    snprintf(detail, sizeof detail,
             "{\"state\":\"switching\",\"dry_run\":false,\"direction\":\"forward\",\"at_ms\":%llu,"
             "\"final_gtid\":\"0-1-50\",\"switch_gtid\":\"0-2-3\",\"switched\":[0]}",
             (unsigned long long)r->link.now_ms);
    s_journal_at(r, "streaming", detail);
    s_my_answer_until(r, "switched", BLUE, "godwit_shop_rev", "0-2-3");
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err));
    s_tick(r);
    assert_string_equal(s_state(r), "cleanup_source");
    fakelink_sent_t *s = fakelink_take(&r->link, BLUE, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->replica_connection, "godwit_shop_rev");
    assert_string_equal(s->cmd->drop_objects->database, "shop");
    assert_true(s->cmd->drop_objects->keep_database);
    fakelink_ok(s);
    s_tick(r);
    assert_string_equal(s_state(r), "cleanup_target");
    s = fakelink_take(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->replica_connection, "godwit_shop");
    assert_true(s->cmd->drop_objects->keep_database);
    fakelink_ok(s);
    s_tick(r);
    assert_string_equal(s_state(r), "done");
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err)); /* already cleaned up */
}

/* With cutover.reverse off nothing follows green: nothing is polled while
 * switched. */
static void test_mariadb_switched_reverse_off(void **state)
{
    rig_t *r = *state;
    char text[1024];
    snprintf(text, sizeof text, "%.*s    cutover: {app_roles: [app], reverse: off, proxies: "
             "[{agent: " PX ", proxy: pgb}]}\n",
             (int)(strstr(s_plan_mariadb_cutover, "    cutover:") - s_plan_mariadb_cutover),
             s_plan_mariadb_cutover);
    s_use_plan(r, text);
    s_journal_at(r, "switched", NULL);
    for (int i = 0; i < 5; i++) {
        fakelink_advance(&r->link, 2000);
        s_tick(r);
    }
    assert_int_equal(fakelink_pending(&r->link), 0);
    char *e = s_status_string(r, "replication_direction");
    assert_string_equal(e, "none");
    free(e);
}

/* A MariaDB verify whose chunks did not all reach green (a filter, a
 * stopped replica) fails rather than say equal, and still drops its table
 * of figures on blue. */
static void test_mariadb_verify_missing_chunks(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_mariadb);
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    s_tick(r);
    s_answer_my_copy(fakelink_take(&r->link, GREEN, A(MY_COPY)));
    assert_string_equal(s_state(r), "streaming");
    assert_true(migset_verify(r->ms, NAME, err, sizeof err));
    fakelink_sent_t *s = fakelink_take_any(&r->link, BLUE, A(MY_CHECKSUM));
    Godwit__MyChecksumTable t = GODWIT__MY_CHECKSUM_TABLE__INIT;
    t.table = "orders";
    t.chunks = 2;
    t.source_rows = 1500;
    Godwit__MyChecksumTable *tables[] = { &t };
    s_answer_sum(s, tables, 1);
    s_answer_cmp(fakelink_take_any(&r->link, GREEN, A(MY_CHECKSUM_COMPARE)), NULL, 0, 1);
    s = fakelink_take_any(&r->link, BLUE, A(MY_CHECKSUM));
    assert_true(s->cmd->my_checksum->finish);
    fakelink_ok(s);
    cJSON *st = migset_status(r->ms, NAME);
    cJSON *v = cJSON_GetObjectItem(st, "verify");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(v, "state")), "failed");
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(v, "error")),
                           "holds 1 of the run's 2 chunks"));
    cJSON_Delete(st);
}

/* A physical migration's verify: refused while blue's wal_level is not
 * logical; then the schema check on green first, our publication on blue
 * for the tables it listed that have a replica identity, each of those
 * compared on the standby (VerifyTable standby, no subscription), the one
 * without an identity reported not compared, and the run equal. */
static void test_physical_verify(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_physical);
    assert_true(migset_start(r->ms, plan_at(&r->plan, 0), 0, err, sizeof err));
    s_tick(r);
    s_answer_standby(fakelink_take(&r->link, GREEN, A(BASE_BACKUP)), true, true);
    s_answer_standby(fakelink_take(&r->link, GREEN, A(STANDBY_STATUS)), true, true);
    r->pg.wal_level = "replica";
    assert_false(migset_verify(r->ms, NAME, err, sizeof err));
    assert_non_null(strstr(err, "wal_level = logical"));
    r->pg.wal_level = "logical";
    assert_true(migset_verify(r->ms, NAME, err, sizeof err));
    fakelink_run_deferred(&r->link);
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(VERIFY_SCHEMA));
    Godwit__TableRef t[3];
    Godwit__TableRef *compared[3] = { &t[0], &t[1], &t[2] }, *loose[1] = { &t[1] };
    const char *names[3] = { "accounts", "loose", "orders" };
    for (int i = 0; i < 3; i++) {
        godwit__table_ref__init(&t[i]);
        t[i].schema = "public";
        t[i].name = (char *)names[i];
    }
    Godwit__VerifySchemaResult vs = GODWIT__VERIFY_SCHEMA_RESULT__INIT;
    vs.tables = 3;
    vs.n_compared = 3;
    vs.compared = compared;
    vs.n_no_identity = 1;
    vs.no_identity = loose;
    Godwit__Result res = GODWIT__RESULT__INIT;
    res.status = GODWIT__STATUS__STATUS_OK;
    res.payload_case = GODWIT__RESULT__PAYLOAD_VERIFY_SCHEMA;
    res.verify_schema = &vs;
    fakelink_answer(s, &res, NULL);
    s = fakelink_take(&r->link, BLUE, A(ENSURE_PUBLICATION));
    assert_string_equal(s->cmd->ensure_publication->name, "godwit_shop");
    assert_int_equal(s->cmd->ensure_publication->n_tables, 2);
    assert_string_equal(s->cmd->ensure_publication->tables[0]->name, "accounts");
    assert_string_equal(s->cmd->ensure_publication->tables[1]->name, "orders");
    fakelink_ok(s);
    for (int i = 0; i < 2; i++) {
        s = fakelink_take(&r->link, GREEN, A(VERIFY_TABLE));
        assert_true(s->cmd->verify_table->standby);
        assert_string_equal(s->cmd->verify_table->subscription, "");
        assert_string_equal(s->cmd->verify_table->publication, "godwit_shop");
        assert_string_equal(s->cmd->verify_table->verify_slot, "godwit_shop_verify");
        assert_string_equal(s->cmd->verify_table->table->name, i ? "orders" : "accounts");
        Godwit__VerifyTableResult vt = GODWIT__VERIFY_TABLE_RESULT__INIT;
        vt.table = s->cmd->verify_table->table;
        vt.outcome = "equal";
        vt.key_kind = "primary key";
        Godwit__Result tr = GODWIT__RESULT__INIT;
        tr.status = GODWIT__STATUS__STATUS_OK;
        tr.payload_case = GODWIT__RESULT__PAYLOAD_VERIFY_TABLE;
        tr.verify_table = &vt;
        fakelink_answer(s, &tr, NULL);
    }
    assert_int_equal(fakelink_pending(&r->link), 0);
    cJSON *st = migset_status(r->ms, NAME);
    const cJSON *v = cJSON_GetObjectItem(st, "verify");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(v, "state")), "equal");
    const cJSON *tables = cJSON_GetObjectItem(v, "tables");
    assert_int_equal(cJSON_GetArraySize(tables), 3);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(tables, 0), "outcome")), "not_compared");
    cJSON_Delete(st);
}

/* After a physical cutover green is the primary and blue its standby
 * through green's slot godwit_shop_rev: cleanup drops our slot on blue,
 * then that one on green, never a standby's folder; protection of green
 * drops that slot alone. */
static void test_physical_cleanup(void **state)
{
    rig_t *r = *state;
    char err[256];
    s_use_plan(r, s_plan_physical);
    s_journal_at(r, "switched", NULL);
    assert_true(migset_cleanup(r->ms, NAME, err, sizeof err));
    assert_string_equal(s_state(r), "cleanup_source");
    s_tick(r);
    fakelink_sent_t *s = fakelink_take(&r->link, BLUE, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->physical_slot, "godwit_shop");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "cleanup_target");
    s_tick(r);
    s = fakelink_take(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->physical_slot, "godwit_shop_rev");
    assert_string_equal(s->cmd->drop_objects->standby_of_slot, "");
    /* a verify's publication, replayed onto green before the promote */
    assert_string_equal(s->cmd->drop_objects->publication, "godwit_shop");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "done");
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0);
}

/* Green protected from blue's slot there: that slot dropped, nothing on
 * blue (a standby has no subscription to drop). */
static void test_physical_protection_of_green(void **state)
{
    rig_t *r = *state;
    s_use_plan(r, s_plan_physical);
    s_journal_at(r, "switched", NULL);
    r->gslot.retained_bytes = 2ull << 30;
    s_tick(r);
    assert_string_equal(s_state(r), "unfollow_target");
    fakelink_sent_t *s = fakelink_take(&r->link, GREEN, A(DROP_OBJECTS));
    assert_string_equal(s->cmd->drop_objects->physical_slot, "godwit_shop_rev");
    assert_string_equal(s->cmd->drop_objects->slot, "");
    fakelink_ok(s);
    assert_string_equal(s_state(r), "switched");
    r->gslot.retained_bytes = 0; /* (gone from green's report) */
    s_tick(r);
    assert_int_equal(fakelink_pending(&r->link), 0);
}

/* The plan refuses what the physical path cannot do, naming the line and
 * the field. */
static void test_physical_plan_checks(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        { "    tables: [public.a]\n    cutover: {reverse: off}\n", "plan.yaml:2: migrations[0].tables:" },
        { "    import_profile: {synchronous_commit: off}\n    cutover: {reverse: off}\n",
          "plan.yaml:2: migrations[0].import_profile:" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], err[512];
        plan_t plan;
        snprintf(text, sizeof text, "migrations:\n  - name: shop\n    method: physical\n"
                 "    source: {agent: a, database: shop}\n    target: {agent: b, database: shop}\n"
                 "    replication: {peer: p}\n    reverse_replication: {peer: q}\n%s", bad[i][0]);
        assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
        if (!strstr(err, bad[i][1]))
            fail_msg("case %zu: %s", i, err);
    }
}

/* engine: mariadb refuses what its path cannot do, naming the line and
 * the field: a table list, another target database name, the physical
 * method, an import profile. */
static void test_mariadb_plan_checks(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        { "shop", "    tables: [orders]\n", "plan.yaml:2: migrations[0].tables: engine: mariadb "
                                              "copies and replicates every table" },
        { "shop2", "", "plan.yaml:2: migrations[0].target: engine: mariadb: the target database "
                       "must have the source database's name" },
        { "shop", "    method: physical\n", "plan.yaml:2: migrations[0].method:" },
        { "shop", "    import_profile: {synchronous_commit: off}\n",
          "plan.yaml:2: migrations[0].import_profile:" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], err[512];
        plan_t plan;
        snprintf(text, sizeof text, "migrations:\n  - name: shop\n    engine: mariadb\n"
                 "    source: {agent: a, database: shop}\n    target: {agent: b, database: %s}\n"
                 "    replication: {peer: p}\n%s", bad[i][0], bad[i][1]);
        assert_false(plan_load_string("plan.yaml", text, &plan, err, sizeof err));
        if (!strstr(err, bad[i][2]))
            fail_msg("case %zu: %s", i, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_queued_until_admitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_resumes_in_held_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_done_survives_a_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_caps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_pause_holds_copies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_waves_operator_go_and_budget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_caps_per_link, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_caps_per_link_sites, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_waves_auto, s_setup, s_teardown),
        T(test_every_step_to_streaming),
        T(test_catchup_waits_for_ready_and_lag),
        T(test_failed_step_retries_with_backoff),
        T(test_abort_from_roles),
        T(test_abort_from_schema),
        T(test_abort_from_publish),
        T(test_abort_from_copy),
        T(test_abort_from_catchup),
        T(test_abort_from_postdata),
        T(test_abort_from_streaming),
        T(test_abort_unknown),
        T(test_pause_and_resume),
        T(test_protection_drops_the_source_first),
        T(test_protection_leaves_states_without_a_slot),
        T(test_restart_resumes_every_step),
        T(test_restart_while_aborting_and_paused),
        T(test_cleanup_after_the_cutover),
        T(test_protection_of_green_after_the_cutover),
        T(test_events_already_under_way),
        T(test_events_from_every_state),
        T(test_recovered_cutover_switches),
        T(test_recovered_rollback_streams_again),
        T(test_failed_restore_apply_sent_again),
        T(test_import_profile_applied_then_reverted),
        T(test_import_profile_reverted_after_abort_and_restart),
        T(test_import_profile_shared_by_one_target),
        T(test_physical_path),
        T(test_mariadb_path),
        T(test_mariadb_verify_missing_chunks),
        T(test_mariadb_switched),
        T(test_mariadb_switched_reverse_off),
        T(test_mariadb_cleanup),
        cmocka_unit_test(test_mariadb_plan_checks),
        T(test_physical_verify),
        T(test_physical_cleanup),
        T(test_physical_protection_of_green),
        cmocka_unit_test(test_physical_plan_checks),
        /* keep last */
        cmocka_unit_test(test_every_row_is_covered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
