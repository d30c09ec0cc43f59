/*
 * fakelink: an agentlink (coordinator/agentlink.h) for unit tests of the
 * coordinator's machines. It records every command sent (a packed and
 * unpacked copy, so the caller's stack may go), answers none by itself, and
 * lets the test answer the oldest one with a result of its choosing. Agents
 * are "connected" with the role the test gives them; reports are set by the
 * test; both clocks are the test's (fakelink_advance).
 *
 * Header-only: each test file includes it once.
 */
#ifndef GODWIT_TEST_FAKELINK_H
#define GODWIT_TEST_FAKELINK_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agentlink.h"

#define FAKELINK_MAX_AGENTS 8

typedef struct fakelink_sent {
    char agent[64];
    Godwit__Command *cmd; /* owned: unpacked copy */
    uint64_t timeout_ms;
    agentlink_result_cb cb;
    void *arg;
    struct fakelink_sent *next;
} fakelink_sent_t;

typedef struct fakelink_deferred {
    void (*fn)(void *arg);
    void *arg;
    struct fakelink_deferred *next;
} fakelink_deferred_t;

typedef struct {
    agentlink_t link;
    fakelink_sent_t *sent; /* oldest first */
    fakelink_deferred_t *deferred;
    struct {
        char name[64];
        const char *role;            /* NULL: not connected */
        const char *jurisdiction;    /* NULL: none */
        const char *site;            /* NULL: none */
        Godwit__Report *report;      /* owned by the test, borrowed here */
        double rtt_ms;
    } agents[FAKELINK_MAX_AGENTS];
    size_t n_agents;
    uint64_t now_ms, mono_ms;
    unsigned n_sent_total;
} fakelink_t;

static size_t fakelink__agent(fakelink_t *f, const char *name)
{
    for (size_t i = 0; i < f->n_agents; i++)
        if (strcmp(f->agents[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

static void fakelink__send(void *ctx, const char *agent, Godwit__Command *cmd, uint64_t timeout_ms,
                           agentlink_result_cb cb, void *arg)
{
    fakelink_t *f = ctx;
    size_t len = godwit__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    godwit__command__pack(cmd, buf);
    fakelink_sent_t *s = calloc(1, sizeof *s);
    s->cmd = godwit__command__unpack(NULL, len, buf);
    free(buf);
    snprintf(s->agent, sizeof s->agent, "%s", agent);
    s->timeout_ms = timeout_ms;
    s->cb = cb;
    s->arg = arg;
    fakelink_sent_t **tail = &f->sent;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    f->n_sent_total++;
}

static void fakelink__defer(void *ctx, void (*fn)(void *arg), void *arg)
{
    fakelink_t *f = ctx;
    fakelink_deferred_t *d = calloc(1, sizeof *d);
    d->fn = fn;
    d->arg = arg;
    fakelink_deferred_t **tail = &f->deferred;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
}

static const Godwit__Report *fakelink__report(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__agent(f, agent);
    return i == SIZE_MAX ? NULL : f->agents[i].report;
}

static uint64_t fakelink__report_age_ms(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__agent(f, agent);
    return i == SIZE_MAX || !f->agents[i].report ? UINT64_MAX : 100;
}

static double fakelink__rtt_ms(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__agent(f, agent);
    return i == SIZE_MAX ? -1 : f->agents[i].rtt_ms;
}

static const char *fakelink__role(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__agent(f, agent);
    return i == SIZE_MAX ? NULL : f->agents[i].role;
}

static const char *fakelink__refused(void *ctx, const char *agent)
{
    (void)ctx;
    (void)agent;
    return NULL;
}

/* Agent's index if it is connected, else SIZE_MAX. */
static size_t fakelink__connected(fakelink_t *f, const char *agent)
{
    size_t i = fakelink__agent(f, agent);
    return i != SIZE_MAX && f->agents[i].role ? i : SIZE_MAX;
}

/* A connected agent's labels ("" if none); NULL while it is not. */
static const char *fakelink__jurisdiction(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__connected(f, agent);
    return i == SIZE_MAX ? NULL : f->agents[i].jurisdiction ? f->agents[i].jurisdiction : "";
}

static const char *fakelink__site(void *ctx, const char *agent)
{
    fakelink_t *f = ctx;
    size_t i = fakelink__connected(f, agent);
    return i == SIZE_MAX ? NULL : f->agents[i].site ? f->agents[i].site : "";
}

static uint64_t fakelink__now(void *ctx) { return ((fakelink_t *)ctx)->now_ms; }
static uint64_t fakelink__mono(void *ctx) { return ((fakelink_t *)ctx)->mono_ms * 1000; }

static const agentlink_ops_t fakelink__ops = {
    .send = fakelink__send,
    .defer = fakelink__defer,
    .report = fakelink__report,
    .report_age_ms = fakelink__report_age_ms,
    .rtt_ms = fakelink__rtt_ms,
    .role = fakelink__role,
    .refused = fakelink__refused,
    .jurisdiction = fakelink__jurisdiction,
    .site = fakelink__site,
    .now_ms = fakelink__now,
    .mono_us = fakelink__mono,
};

static inline void fakelink_init(fakelink_t *f)
{
    memset(f, 0, sizeof *f);
    f->link.ops = &fakelink__ops;
    f->link.ctx = f;
    f->now_ms = 1800000000000ull;
    f->mono_ms = 1000000;
}

/* Adds (or changes) a connected agent; role NULL: disconnected. report is
 * borrowed (the test keeps it alive). */
static inline void fakelink_agent(fakelink_t *f, const char *name, const char *role,
                                  Godwit__Report *report)
{
    size_t i = fakelink__agent(f, name);
    if (i == SIZE_MAX) {
        assert_true(f->n_agents < FAKELINK_MAX_AGENTS);
        i = f->n_agents++;
        snprintf(f->agents[i].name, sizeof f->agents[i].name, "%s", name);
        f->agents[i].rtt_ms = 1;
    }
    f->agents[i].role = role;
    f->agents[i].report = report;
}

/* Sets an agent's site label (NULL: none); the agent must exist. */
static inline void fakelink_site(fakelink_t *f, const char *name, const char *site)
{
    size_t i = fakelink__agent(f, name);
    assert_true(i != SIZE_MAX);
    f->agents[i].site = site;
}

static inline void fakelink_advance(fakelink_t *f, uint64_t ms)
{
    f->now_ms += ms;
    f->mono_ms += ms;
}

/* Runs what was deferred (and what that defers), in order. */
static inline void fakelink_run_deferred(fakelink_t *f)
{
    while (f->deferred) {
        fakelink_deferred_t *d = f->deferred;
        f->deferred = d->next;
        d->fn(d->arg);
        free(d);
    }
}

/* The oldest unanswered command, or NULL. */
static inline const fakelink_sent_t *fakelink_peek(const fakelink_t *f) { return f->sent; }

static inline size_t fakelink_pending(const fakelink_t *f)
{
    size_t n = 0;
    for (const fakelink_sent_t *s = f->sent; s; s = s->next)
        n++;
    return n;
}

/* Takes the oldest command, checking it went to agent with action; the
 * caller answers it with fakelink_answer. */
static inline fakelink_sent_t *fakelink_take(fakelink_t *f, const char *agent,
                                             Godwit__Command__ActionCase action)
{
    fakelink_sent_t *s = f->sent;
    if (!s)
        fail_msg("no command was sent (expected action %d to %s)", (int)action, agent);
    if (strcmp(s->agent, agent) != 0 || s->cmd->action_case != action)
        fail_msg("expected action %d to %s, got action %d to %s", (int)action, agent,
                 (int)s->cmd->action_case, s->agent);
    f->sent = s->next;
    return s;
}

/* The oldest pending command with action, to any agent, or NULL. */
static inline const fakelink_sent_t *fakelink_find(const fakelink_t *f,
                                                   Godwit__Command__ActionCase action)
{
    const fakelink_sent_t *s = f->sent;
    while (s && s->cmd->action_case != action)
        s = s->next;
    return s;
}

/* Takes s (a pending command, as fakelink_peek shows it) out of the
 * queue; the caller answers it. */
static inline fakelink_sent_t *fakelink_take_this(fakelink_t *f, const fakelink_sent_t *s)
{
    for (fakelink_sent_t **pp = &f->sent; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            fakelink_sent_t *t = *pp;
            *pp = t->next;
            return t;
        }
    }
    fail_msg("the command is not pending");
    return NULL;
}

/* Takes the oldest command for agent with action wherever it is in the
 * queue (commands sent in parallel). */
static inline fakelink_sent_t *fakelink_take_any(fakelink_t *f, const char *agent,
                                                 Godwit__Command__ActionCase action)
{
    for (fakelink_sent_t **pp = &f->sent; *pp; pp = &(*pp)->next) {
        fakelink_sent_t *s = *pp;
        if (strcmp(s->agent, agent) == 0 && s->cmd->action_case == action) {
            *pp = s->next;
            return s;
        }
    }
    fail_msg("no action %d to %s is pending", (int)action, agent);
    return NULL;
}

static inline void fakelink_free_sent(fakelink_sent_t *s)
{
    godwit__command__free_unpacked(s->cmd, NULL);
    free(s);
}

/* Answers s with r (r's status set by the caller; NULL: error instead) and
 * frees s. */
static inline void fakelink_answer(fakelink_sent_t *s, const Godwit__Result *r, const char *error)
{
    s->cb(s->agent, r, r ? NULL : error, s->arg);
    fakelink_free_sent(s);
}

/* Answers s with an OK result without payload. */
static inline void fakelink_ok(fakelink_sent_t *s)
{
    Godwit__Result r = GODWIT__RESULT__INIT;
    r.status = GODWIT__STATUS__STATUS_OK;
    fakelink_answer(s, &r, NULL);
}

/* Answers s with a FAILED result carrying message. */
static inline void fakelink_failed(fakelink_sent_t *s, const char *message)
{
    Godwit__Result r = GODWIT__RESULT__INIT;
    r.status = GODWIT__STATUS__STATUS_FAILED;
    r.message = (char *)message;
    fakelink_answer(s, &r, NULL);
}

/* Fails every pending command with error (the coordinator stopping). */
static inline void fakelink_drain(fakelink_t *f, const char *error)
{
    while (f->sent) {
        fakelink_sent_t *s = f->sent;
        f->sent = s->next;
        fakelink_answer(s, NULL, error);
    }
    while (f->deferred) {
        fakelink_deferred_t *d = f->deferred;
        f->deferred = d->next;
        free(d);
    }
}

#endif
