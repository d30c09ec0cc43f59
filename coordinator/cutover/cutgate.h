/*
 * cutgate: the gates a cutover (or a rollback) must pass before it starts,
 * as a pure function from a plain view of the migration (what its machine
 * and the agents' last reports show) to a verdict: nothing is read from
 * the process, so the unit tests give it any view.
 *
 * In order: the state (streaming; switched for a rollback), no verify
 * running, the plan's app roles and proxies, the import profile reverted
 * on the target (forward only), the last verify equal and
 * younger than cutover.verify_max_age, every table ready, no replication
 * error in the last minute (these four for the forward direction only),
 * every agent connected, every proxy reachable as its agent last reported
 * it, the slot the direction replicates through active, its lag under
 * max_lag, and the predicted pause (lag plus the pause's round trips at the
 * slowest agent's RTT) inside max_write_pause.
 *
 * engine: mariadb: not in a cutover group; the verify (mycheck's report)
 * equal and fresh as above (forward); instead of the tables and the slot,
 * the replication connection the direction replicates through, as the
 * migration's poll last read it, exists with both threads running, no
 * error, and its lag (Seconds_Behind_Master) under max_lag; the predicted
 * pause as above.
 */
#ifndef GODWIT_CUTGATE_H
#define GODWIT_CUTGATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "godwit.pb-c.h"
#include "plan.h"

/* An agent as the coordinator sees it. */
typedef struct {
    const char *name;
    bool connected;                /* connected, its hello accepted */
    double rtt_ms;                 /* -1: not measured yet */
    const Godwit__Report *report;  /* its last, or NULL */
    uint64_t report_age_ms;        /* UINT64_MAX: none since it connected */
} cutgate_agent_t;

/* What the gates read (all borrowed). */
typedef struct {
    const plan_migration_t *m;
    bool back;                     /* the rollback */
    const char *state;             /* the migration's state, as status names it */
    bool verify_running;
    const cJSON *verify_last;      /* the last finished verify's report, or NULL */
    bool has_sync, all_ready;      /* the target's last table report */
    /* method: physical: the standby's last state (NULL: not polled yet);
     * it stands for the table report and verify (docs/physical.md) */
    const Godwit__StandbyStatusResult *standby;
    const char *repl_error;        /* the last replication error, or NULL */
    const char *import_pending;    /* why the import profile is not reverted on the
                                      target (importprof.h), or NULL */
    uint64_t repl_error_at_ms, now_ms; /* wall clock */
    cutgate_agent_t source, target;
    const cutgate_agent_t *proxies; /* one per m->cutover.proxies, in its order */
    const char *slot_name;         /* the slot the direction replicates through (engine
                                      mariadb: the replication connection) */
    const Godwit__Slot *slot;      /* as its server's agent last reported it, or NULL */
    /* engine: mariadb: the migration's last poll of the connection the
     * direction replicates through (forward: ours on the target; back:
     * the way back on the source), or NULL: not polled yet */
    const Godwit__ReplicaStatusResult *replica;
    bool group;                    /* asked as a member of a cutover group */
} cutgate_view_t;

/* true if the cutover may start; false with why naming the first gate
 * that refuses. */
bool cutgate_check(const cutgate_view_t *v, char *why, size_t whylen)
    GODWIT_MUSTCHECK;

/* Whether the verify report (its finished_at_ms, wall clock) is younger
 * than max_age_ms at now_ms: the cutover's gate wants a recent "equal".
 * false with why ("... older than cutover.verify_max_age ...") otherwise. */
bool cutgate_verify_fresh(const cJSON *report, int64_t max_age_ms, uint64_t now_ms, char *why,
                            size_t whylen) GODWIT_MUSTCHECK;

/* Whether a cutover may drive proxy `proxy` of agent `agent`, as the agent
 * last reported it (rep, received report_age_ms ago; NULL: none): its last
 * read of the proxy's admin interface succeeded, and neither the report
 * nor that read is older than CUTGATE_PROXY_STALE_INTERVALS report
 * intervals (the read: plus the agent's refresh period), else the state is
 * unknown. false with why naming the proxy and what was reported. */
#define CUTGATE_PROXY_STALE_INTERVALS 3
#define CUTGATE_PROXY_REFRESH_MS 2000 /* agent/proxy/proxy.c reads idle proxies this often */
bool cutgate_proxy_ready(const Godwit__Report *rep, uint64_t report_age_ms, const char *agent,
                           const char *proxy, char *why, size_t whylen)
    GODWIT_MUSTCHECK;

#endif
