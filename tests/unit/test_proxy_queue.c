/*
 * test_proxy_queue: agent/proxy/proxy.c, the queue and the lease of the
 * proxies a proxy agent drives, over a fake driver (proxy_set_new_with):
 * the fake is a proxy in memory (paused or not, blue or green) that
 * finishes each request when the test says so, or at once from inside its
 * run (drivers may).
 *
 * Covers: the STATUS every proxy gets first; actions run one at a time in
 * arrival order, never answer from inside proxy_set_run, and the next
 * starts on the loop, not inside the driver's done; invalid
 * requests refused with a reason and no callback; a PAUSE's lease (the
 * configured one, or the action's) running out and the proxy resumed on
 * its own with "proxy.lease_expired" and lease_expired in the report; a
 * SWITCH renewing the lease and a RESUME ending it; a failed automatic
 * resume reported ("proxy.lease_resume_failed") and retried; a proxy found
 * paused at start getting the configured lease; a SWITCH with then_resume
 * run as one job (the switch, then the resume, one answer with
 * resume_sent), and not resumed when the proxy reads back the old backend;
 * proxy_set_stop letting the running action finish without its callback,
 * dropping the queued ones, resuming a paused proxy once, then closing.
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
#include <uv.h>

#include "log.h"
#include "proxy.h"
#include "units.h"
#include "xalloc.h"

#define OP_STATUS GODWIT__PROXY_ACTION__OP__OP_STATUS
#define OP_PAUSE GODWIT__PROXY_ACTION__OP__OP_PAUSE
#define OP_RESUME GODWIT__PROXY_ACTION__OP__OP_RESUME
#define OP_SWITCH GODWIT__PROXY_ACTION__OP__OP_SWITCH
#define MAX_RUNS 64

/* ---- the fake driver: a proxy in memory ---- */

typedef struct {
    proxydrv_t base;
    bool paused;
    proxydrv_backend_t backend;
    bool manual;                 /* requests wait for fake_finish */
    bool switch_fails_to_move;   /* a SWITCH leaves the backend as it was */
    int fail_resumes;            /* this many RESUMEs fail */
    /* the request running (manual mode) */
    bool busy;
    const proxydrv_req_t *req;
    proxydrv_out_t *out;
    proxydrv_done_cb done;
    void *arg;
    /* what ran */
    int runs;
    Godwit__ProxyAction__Op ops[MAX_RUNS];
    bool destroyed;
} fake_t;

/* The one fake of a test (one proxy per set), made by the set. */
static fake_t *s_fake;
static bool s_start_paused;

static void fake_finish(void)
{
    fake_t *f = s_fake;
    assert_true(f->busy);
    f->busy = false;
    const char *error = NULL;
    switch (f->req->op) {
    case OP_PAUSE:
        f->paused = true;
        break;
    case OP_RESUME:
        if (f->fail_resumes > 0) {
            f->fail_resumes--;
            error = "the fake refuses to resume";
        } else {
            f->paused = false;
        }
        break;
    case OP_SWITCH:
        if (!f->switch_fails_to_move)
            f->backend = f->req->backend;
        break;
    default:
        break;
    }
    f->out->known = true;
    f->out->backend = f->backend;
    snprintf(f->out->address, sizeof f->out->address, "%s",
             f->backend == PROXYDRV_GREEN ? "127.0.0.1:5433" : "127.0.0.1:5432");
    f->out->paused = f->paused;
    proxydrv_out_step(f->out, "fake", units_mono_ms());
    f->done(f->arg, error);
}

static void fake_run(proxydrv_t *d, const proxydrv_req_t *req, proxydrv_out_t *out,
                     proxydrv_done_cb done, void *arg)
{
    fake_t *f = (fake_t *)d;
    assert_false(f->busy); /* one operation at a time */
    assert_true(f->runs < MAX_RUNS);
    f->ops[f->runs++] = req->op;
    f->busy = true;
    f->req = req;
    f->out = out;
    f->done = done;
    f->arg = arg;
    if (!f->manual)
        fake_finish();
}

static void fake_destroy(proxydrv_t *d)
{
    fake_t *f = (fake_t *)d;
    assert_false(f->busy);
    f->destroyed = true; /* freed by the test, which reads it afterwards */
}

static proxydrv_t *fake_new(uv_loop_t *loop, const agent_proxy_t *cfg)
{
    (void)loop;
    (void)cfg;
    fake_t *f = xcalloc(1, sizeof *f);
    f->base.run = fake_run;
    f->base.destroy = fake_destroy;
    f->backend = PROXYDRV_BLUE;
    f->paused = s_start_paused;
    s_fake = f;
    return &f->base;
}

/* ---- the rig: one loop, one proxy, its answers and events ---- */

typedef struct {
    uv_loop_t loop;
    uv_timer_t keepalive;
    agent_proxy_t cfg;
    cfg_list_t list;
    proxy_set_t *set;
    /* answers */
    int answers;
    char error[256];
    bool has_state;
    Godwit__ProxyState state; /* scalars of the last answer's state */
    char backend[16];
    /* events */
    int events;
    char event_codes[8][64];
} rig_t;

static void s_noop(uv_timer_t *t)
{
    (void)t;
}

static void s_done(Godwit__ProxyState *st, const char *error, void *arg)
{
    rig_t *r = arg;
    r->answers++;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    r->has_state = st != NULL;
    if (st) {
        r->state = *st;
        snprintf(r->backend, sizeof r->backend, "%s", st->backend);
        godwit__proxy_state__free_unpacked(st, NULL);
    }
}

static void s_event(bool error, const char *code, const char *proxy, const char *message,
                    void *arg)
{
    (void)error;
    (void)proxy;
    (void)message;
    rig_t *r = arg;
    if (r->events < 8)
        snprintf(r->event_codes[r->events], sizeof r->event_codes[0], "%s", code);
    r->events++;
}

static rig_t *rig_new(int64_t lease_ms)
{
    rig_t *r = xcalloc(1, sizeof *r);
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->keepalive);
    uv_timer_start(&r->keepalive, s_noop, 5, 5); /* UV_RUN_ONCE never blocks for long */
    r->cfg.name = (char *)"pool";
    r->cfg.kind = PROXY_KIND_PGBOUNCER;
    r->cfg.blue = (char *)"127.0.0.1:5432";
    r->cfg.green = (char *)"127.0.0.1:5433";
    r->cfg.pause_timeout_ms = 1000;
    r->cfg.lease_ms = lease_ms;
    r->cfg.command_timeout_ms = 1000;
    r->list.items = &r->cfg;
    r->list.count = 1;
    r->set = proxy_set_new_with(&r->loop, &r->list, fake_new, s_event, r);
    return r;
}

/* Runs the loop until cond(r) holds, at most ms. */
static bool rig_until(rig_t *r, bool (*cond)(rig_t *r), uint64_t ms)
{
    uint64_t until = units_mono_ms() + ms;
    while (!cond(r) && units_mono_ms() < until)
        uv_run(&r->loop, UV_RUN_ONCE);
    return cond(r);
}

/* Runs the loop for about ms. */
static void rig_run(rig_t *r, uint64_t ms)
{
    uint64_t until = units_mono_ms() + ms;
    while (units_mono_ms() < until)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static bool s_idle(rig_t *r)
{
    return s_fake && s_fake->runs > 0 && !s_fake->busy;
}

static bool s_busy(rig_t *r)
{
    (void)r;
    return s_fake->busy;
}

static bool s_has_event(rig_t *r)
{
    return r->events > 0;
}

static bool s_not_paused(rig_t *r)
{
    (void)r;
    return !s_fake->paused;
}

static bool s_answered(rig_t *r)
{
    return r->answers > 0;
}

/* Stops the set, runs the loop until it closed everything, frees all. */
static void rig_free(rig_t *r)
{
    proxy_set_stop(&r->set);
    uv_timer_stop(&r->keepalive);
    uv_close((uv_handle_t *)&r->keepalive, NULL);
    for (int i = 0; i < 1000 && uv_run(&r->loop, UV_RUN_NOWAIT) != 0; i++)
        if (s_fake && s_fake->busy)
            fake_finish();
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(s_fake);
    s_fake = NULL;
    s_start_paused = false;
    free(r);
}

static void rig_send(rig_t *r, Godwit__ProxyAction__Op op, const char *backend, uint64_t lease_ms,
                     bool then_resume)
{
    Godwit__ProxyAction a = GODWIT__PROXY_ACTION__INIT;
    a.proxy = (char *)"pool";
    a.op = op;
    a.backend = (char *)(backend ? backend : "");
    a.lease_ms = lease_ms;
    a.then_resume = then_resume;
    char why[256] = "";
    assert_true(proxy_set_run(r->set, &a, s_done, r, why, sizeof why));
}

/* The report's view of the proxy (scalars only). */
static Godwit__ProxyState rig_report(rig_t *r)
{
    Godwit__Report rep = GODWIT__REPORT__INIT;
    proxy_set_report(r->set, &rep);
    assert_int_equal(rep.n_proxies, 1);
    Godwit__ProxyState st = *rep.proxies[0];
    godwit__proxy_state__free_unpacked(rep.proxies[0], NULL);
    free(rep.proxies);
    st.proxy = st.kind = st.backend = st.address = st.error = NULL;
    return st;
}

/* ---- tests ---- */

static void test_actions_run_in_order_one_at_a_time(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    assert_true(rig_until(r, s_idle, 1000));
    assert_int_equal(s_fake->ops[0], OP_STATUS); /* every proxy is read first */
    s_fake->manual = true;
    rig_send(r, OP_PAUSE, NULL, 0, false);
    rig_send(r, OP_SWITCH, "green", 0, false);
    rig_send(r, OP_RESUME, NULL, 0, false);
    assert_int_equal(r->answers, 0); /* never from inside proxy_set_run */
    assert_true(rig_until(r, s_busy, 1000));
    rig_run(r, 30);
    assert_int_equal(s_fake->runs, 2); /* the switch waits for the pause */
    assert_int_equal(s_fake->ops[1], OP_PAUSE);
    fake_finish();
    assert_int_equal(r->answers, 1); /* from the driver's done: the next waits for the loop */
    assert_int_equal(s_fake->runs, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(rig_until(r, s_busy, 1000));
        fake_finish();
    }
    assert_true(rig_until(r, s_idle, 1000));
    rig_run(r, 20);
    assert_int_equal(s_fake->runs, 4);
    assert_int_equal(s_fake->ops[2], OP_SWITCH);
    assert_int_equal(s_fake->ops[3], OP_RESUME);
    assert_int_equal(r->answers, 3);
    assert_string_equal(r->error, "");
    assert_string_equal(r->backend, "green");
    assert_false(r->state.paused);
    assert_true(r->state.paused_ms < 60000);
    rig_free(r);
}

static void test_invalid_requests_refused(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    char why[256] = "";
    Godwit__ProxyAction a = GODWIT__PROXY_ACTION__INIT;
    a.proxy = (char *)"other";
    a.op = OP_PAUSE;
    a.backend = (char *)"";
    assert_false(proxy_set_run(r->set, &a, s_done, r, why, sizeof why));
    assert_non_null(strstr(why, "no proxy named \"other\""));
    a.proxy = (char *)"pool";
    a.op = OP_SWITCH;
    a.backend = (char *)"purple";
    assert_false(proxy_set_run(r->set, &a, s_done, r, why, sizeof why));
    assert_non_null(strstr(why, "\"blue\" or \"green\""));
    a.op = (Godwit__ProxyAction__Op)99;
    assert_false(proxy_set_run(r->set, &a, s_done, r, why, sizeof why));
    assert_non_null(strstr(why, "unknown proxy operation 99"));
    rig_run(r, 30);
    assert_int_equal(r->answers, 0);
    assert_int_equal(s_fake->runs, 1); /* only the first STATUS */
    rig_free(r);
}

static void test_lease_runs_out_and_the_proxy_resumes(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 40, false); /* the action's lease, not the configured one */
    assert_true(rig_until(r, s_answered, 1000));
    assert_true(r->state.paused);
    assert_true(r->state.lease_left_ms > 0 && r->state.lease_left_ms <= 40);
    assert_true(rig_until(r, s_has_event, 2000));
    assert_string_equal(r->event_codes[0], "proxy.lease_expired");
    assert_false(s_fake->paused);
    assert_int_equal(s_fake->ops[s_fake->runs - 1], OP_RESUME);
    Godwit__ProxyState st = rig_report(r);
    assert_true(st.lease_expired);
    assert_false(st.paused);
    assert_int_equal(st.lease_left_ms, 0);
    /* The next PAUSE clears lease_expired. */
    rig_send(r, OP_PAUSE, NULL, 60000, false);
    assert_true(rig_until(r, s_idle, 1000));
    rig_run(r, 10);
    assert_false(rig_report(r).lease_expired);
    rig_free(r);
}

static void test_switch_renews_the_lease_and_resume_ends_it(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 300, false);
    assert_true(rig_until(r, s_answered, 1000));
    rig_run(r, 200);
    rig_send(r, OP_SWITCH, "green", 2000, false);
    assert_true(rig_until(r, s_idle, 1000));
    rig_run(r, 10);
    /* renewed: more than what was left of the first lease */
    assert_true(rig_report(r).lease_left_ms > 300);
    rig_run(r, 150); /* past the first lease's end */
    assert_int_equal(r->events, 0);
    assert_true(s_fake->paused);
    rig_send(r, OP_RESUME, NULL, 0, false);
    assert_true(rig_until(r, s_not_paused, 1000));
    assert_int_equal(rig_report(r).lease_left_ms, 0); /* ended, its timer stopped */
    rig_run(r, 50);
    assert_int_equal(r->events, 0);
    assert_int_equal(s_fake->ops[s_fake->runs - 1], OP_RESUME);
    rig_free(r);
}

static void test_failed_lease_resume_is_retried(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 20, false);
    assert_true(rig_until(r, s_answered, 1000));
    s_fake->fail_resumes = 1;
    assert_true(rig_until(r, s_has_event, 1000));
    assert_string_equal(r->event_codes[0], "proxy.lease_resume_failed");
    assert_true(s_fake->paused);
    assert_true(rig_until(r, s_not_paused, 3000));
    rig_run(r, 10);
    assert_int_equal(r->events, 2);
    assert_string_equal(r->event_codes[1], "proxy.lease_expired");
    rig_free(r);
}

static void test_found_paused_gets_the_configured_lease(void **state)
{
    (void)state;
    s_start_paused = true; /* an earlier agent left it paused */
    rig_t *r = rig_new(40);
    assert_true(rig_until(r, s_not_paused, 2000));
    assert_int_equal(s_fake->ops[0], OP_STATUS);
    assert_int_equal(s_fake->ops[1], OP_RESUME);
    rig_run(r, 10);
    assert_int_equal(r->events, 1);
    assert_string_equal(r->event_codes[0], "proxy.lease_expired");
    rig_free(r);
}

static void test_switch_then_resume_is_one_job(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 0, false);
    assert_true(rig_until(r, s_answered, 1000));
    r->answers = 0;
    rig_send(r, OP_SWITCH, "green", 0, true);
    assert_true(rig_until(r, s_answered, 1000));
    assert_int_equal(r->answers, 1); /* one answer for both */
    assert_string_equal(r->error, "");
    assert_true(r->state.resume_sent);
    assert_false(r->state.paused);
    assert_string_equal(r->backend, "green");
    assert_int_equal(s_fake->ops[s_fake->runs - 2], OP_SWITCH);
    assert_int_equal(s_fake->ops[s_fake->runs - 1], OP_RESUME);
    assert_int_equal(rig_report(r).lease_left_ms, 0);
    rig_free(r);
}

static void test_switch_read_back_wrong_is_not_resumed(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 0, false);
    assert_true(rig_until(r, s_answered, 1000));
    r->answers = 0;
    s_fake->switch_fails_to_move = true;
    rig_send(r, OP_SWITCH, "green", 0, true);
    assert_true(rig_until(r, s_answered, 1000));
    assert_non_null(strstr(r->error, "reads back blue"));
    assert_non_null(strstr(r->error, "not resumed"));
    assert_false(r->state.resume_sent);
    assert_true(s_fake->paused);
    assert_int_equal(s_fake->ops[s_fake->runs - 1], OP_SWITCH);
    assert_true(rig_report(r).lease_left_ms > 0); /* still paused under its lease */
    rig_free(r);
}

static void test_stop_drops_the_queue_and_resumes_once(void **state)
{
    (void)state;
    rig_t *r = rig_new(60000);
    rig_send(r, OP_PAUSE, NULL, 0, false);
    assert_true(rig_until(r, s_answered, 1000));
    r->answers = 0;
    s_fake->manual = true;
    rig_send(r, OP_STATUS, NULL, 0, false);
    rig_send(r, OP_SWITCH, "green", 0, false);
    assert_true(rig_until(r, s_busy, 1000));
    int runs = s_fake->runs;
    fake_t *f = s_fake;
    proxy_set_stop(&r->set);
    assert_null(r->set);
    fake_finish(); /* the running STATUS ends: no answer now */
    assert_true(rig_until(r, s_busy, 1000));
    assert_int_equal(f->runs, runs + 1);
    assert_int_equal(f->ops[runs], OP_RESUME); /* the queued SWITCH was dropped */
    fake_finish();
    uv_timer_stop(&r->keepalive);
    uv_close((uv_handle_t *)&r->keepalive, NULL);
    for (int i = 0; i < 1000 && uv_run(&r->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_true(f->destroyed);
    assert_false(f->paused);
    assert_int_equal(f->runs, runs + 1);
    assert_int_equal(r->answers, 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(f);
    s_fake = NULL;
    free(r);
}

int main(void)
{
    log_init("test_proxy_queue", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_run_in_order_one_at_a_time),
        cmocka_unit_test(test_invalid_requests_refused),
        cmocka_unit_test(test_lease_runs_out_and_the_proxy_resumes),
        cmocka_unit_test(test_switch_renews_the_lease_and_resume_ends_it),
        cmocka_unit_test(test_failed_lease_resume_is_retried),
        cmocka_unit_test(test_found_paused_gets_the_configured_lease),
        cmocka_unit_test(test_switch_then_resume_is_one_job),
        cmocka_unit_test(test_switch_read_back_wrong_is_not_resumed),
        cmocka_unit_test(test_stop_drops_the_queue_and_resumes_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
