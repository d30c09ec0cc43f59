/*
 * agentlink: what the coordinator's machines (migration, cutover, verify,
 * plancheck, proxycmd) need of the process that carries them: send a typed
 * command to an agent and get its one result, read an agent's last report,
 * its round trip and its role, run something on the loop soon, and the
 * clocks. routerlink.c implements it over the ROUTER socket; the
 * unit tests implement it with a fake that records the commands and answers
 * them by hand (tests/unit/test_migration_machine.c), so the machines run
 * without sockets, agents or a loop.
 *
 * Ownership: the link is borrowed by every machine and outlives them all.
 * What the link returns (reports, roles, messages) is borrowed until the
 * next message from the agent; a command passed to send is copied before
 * send returns.
 *
 * Error convention of the coordinator's modules (as in common/): a function
 * that can fail returns bool and writes why into a caller's buffer (err,
 * errlen), or returns NULL for "none" with the reason logged; a callback
 * gets either its result or an error string, never both.
 */
#ifndef GODWIT_AGENTLINK_H
#define GODWIT_AGENTLINK_H

#include <stdint.h>

#include "godwit.pb-c.h"

/* The outcome of one command: r is the agent's result (status says whether
 * it worked), or r is NULL and error says why there is none (not sent,
 * timed out, coordinator stopping). r is borrowed for the call. */
typedef void (*agentlink_result_cb)(const char *agent, const Godwit__Result *r,
                                    const char *error, void *arg);

typedef struct {
    /* Sends cmd (the caller sets the action; id, epoch and deadline are
     * filled in by the link) to agent; cb runs exactly once, never from
     * inside this call. */
    void (*send)(void *ctx, const char *agent, Godwit__Command *cmd, uint64_t timeout_ms,
                 agentlink_result_cb cb, void *arg);
    /* Runs fn(arg) soon, never from inside this call; before the
     * coordinator stops at the latest. */
    void (*defer)(void *ctx, void (*fn)(void *arg), void *arg);
    /* The agent's latest report; NULL if none. */
    const Godwit__Report *(*report)(void *ctx, const char *agent);
    /* How long ago (ms) it arrived; UINT64_MAX if none since it connected. */
    uint64_t (*report_age_ms)(void *ctx, const char *agent);
    /* The agent's last measured round trip in ms, or -1 if none. */
    double (*rtt_ms)(void *ctx, const char *agent);
    /* "source", "target" or "proxy" if the agent is connected and its
     * hello was accepted; NULL otherwise. */
    const char *(*role)(void *ctx, const char *agent);
    /* Why the agent's last hello was refused, or NULL if it was not. */
    const char *(*refused)(void *ctx, const char *agent);
    /* The jurisdiction label of a connected agent's config, "" if it has
     * none; NULL if the agent is not connected. */
    const char *(*jurisdiction)(void *ctx, const char *agent);
    /* The site label of the agent's config as its last accepted hello
     * since this coordinator started gave it ("" if it has none; kept
     * while it is away); NULL if it has said no accepted hello yet. */
    const char *(*site)(void *ctx, const char *agent);
    /* Wall clock (ms since the epoch: what reports and journals carry) and
     * a monotonic clock (µs: deadlines, budgets and backoff; the machines
     * read no other). */
    uint64_t (*now_ms)(void *ctx);
    uint64_t (*mono_us)(void *ctx);
} agentlink_ops_t;

typedef struct {
    const agentlink_ops_t *ops;
    void *ctx;
} agentlink_t;

static inline void agentlink_send(const agentlink_t *l, const char *agent, Godwit__Command *cmd,
                                  uint64_t timeout_ms, agentlink_result_cb cb, void *arg)
{
    l->ops->send(l->ctx, agent, cmd, timeout_ms, cb, arg);
}

static inline void agentlink_defer(const agentlink_t *l, void (*fn)(void *arg), void *arg)
{
    l->ops->defer(l->ctx, fn, arg);
}

static inline const Godwit__Report *agentlink_report(const agentlink_t *l, const char *agent)
{
    return l->ops->report(l->ctx, agent);
}

static inline uint64_t agentlink_report_age_ms(const agentlink_t *l, const char *agent)
{
    return l->ops->report_age_ms(l->ctx, agent);
}

static inline double agentlink_rtt_ms(const agentlink_t *l, const char *agent)
{
    return l->ops->rtt_ms(l->ctx, agent);
}

static inline const char *agentlink_role(const agentlink_t *l, const char *agent)
{
    return l->ops->role(l->ctx, agent);
}

static inline const char *agentlink_refused(const agentlink_t *l, const char *agent)
{
    return l->ops->refused(l->ctx, agent);
}

static inline const char *agentlink_jurisdiction(const agentlink_t *l, const char *agent)
{
    return l->ops->jurisdiction(l->ctx, agent);
}

static inline const char *agentlink_site(const agentlink_t *l, const char *agent)
{
    return l->ops->site(l->ctx, agent);
}

static inline uint64_t agentlink_now_ms(const agentlink_t *l) { return l->ops->now_ms(l->ctx); }

static inline uint64_t agentlink_mono_us(const agentlink_t *l) { return l->ops->mono_us(l->ctx); }

static inline uint64_t agentlink_mono_ms(const agentlink_t *l)
{
    return l->ops->mono_us(l->ctx) / 1000;
}

#endif
