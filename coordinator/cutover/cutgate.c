/* cutgate: the cutover's gates, a pure function of a view (cutgate.h). */
#include "cutgate.h"

#include <stdio.h>
#include <string.h>

#include "cutover.h"
#include "units.h"

bool cutgate_verify_fresh(const cJSON *report, int64_t max_age_ms, uint64_t now_ms, char *why,
                          size_t whylen)
{
    const cJSON *fin = cJSON_GetObjectItem(report, "finished_at_ms");
    if (!cJSON_IsNumber(fin)) {
        snprintf(why, whylen, "the last verify has not finished");
        return false;
    }
    double age_ms = (double)now_ms - fin->valuedouble;
    if (max_age_ms > 0 && age_ms > (double)max_age_ms) {
        char a[32], b[32];
        snprintf(why, whylen, "the last verify finished %s ago, longer than cutover.verify_max_age "
                 "(%s): run godwitctl migrate verify again",
                 units_fmt_duration_ms((uint64_t)age_ms, a, sizeof a),
                 units_fmt_duration_ms((uint64_t)max_age_ms, b, sizeof b));
        return false;
    }
    return true;
}

bool cutgate_proxy_ready(const Godwit__Report *rep, uint64_t report_age_ms, const char *agent,
                         const char *proxy, char *why, size_t whylen)
{
    if (!rep) {
        snprintf(why, whylen, "proxy %s (agent %s): state unknown: its agent has not reported yet",
                 proxy, agent);
        return false;
    }
    uint64_t interval = rep->interval_ms ? rep->interval_ms : 1000;
    uint64_t stale = CUTGATE_PROXY_STALE_INTERVALS * interval;
    char a[32], b[32];
    if (report_age_ms == UINT64_MAX) { /* a report from before it connected again */
        snprintf(why, whylen, "proxy %s (agent %s): state unknown: its agent has not reported "
                 "since it connected", proxy, agent);
        return false;
    }
    if (report_age_ms > stale) {
        snprintf(why, whylen, "proxy %s (agent %s): state unknown: the agent's last report is %s "
                 "old, more than %d report intervals (%s)", proxy, agent,
                 units_fmt_duration_ms(report_age_ms, a, sizeof a),
                 CUTGATE_PROXY_STALE_INTERVALS, units_fmt_duration_ms(interval, b, sizeof b));
        return false;
    }
    const Godwit__ProxyState *st = NULL;
    for (size_t i = 0; i < rep->n_proxies; i++)
        if (rep->proxies[i]->proxy && strcmp(rep->proxies[i]->proxy, proxy) == 0)
            st = rep->proxies[i];
    if (!st) {
        snprintf(why, whylen, "proxy %s (agent %s): state unknown: the agent reports no proxy of "
                 "that name", proxy, agent);
        return false;
    }
    if (!st->reachable) {
        if (st->error && st->error[0])
            snprintf(why, whylen, "proxy %s (agent %s) is unreachable: the agent reported: %s",
                     proxy, agent, st->error);
        else
            snprintf(why, whylen, "proxy %s (agent %s): state unknown: the agent has not read it "
                     "yet", proxy, agent);
        return false;
    }
    /* The agent reads an idle proxy every CUTGATE_PROXY_REFRESH_MS at
     * most often, and reads it at each report at least: a read older than
     * the stale bound plus that period is one the agent no longer makes. */
    uint64_t read_age = rep->collected_at_ms > st->reached_at_ms
                            ? rep->collected_at_ms - st->reached_at_ms : 0;
    if (read_age > stale + CUTGATE_PROXY_REFRESH_MS) {
        snprintf(why, whylen, "proxy %s (agent %s): state unknown: the agent last reached it %s "
                 "before its last report", proxy, agent,
                 units_fmt_duration_ms(read_age, a, sizeof a));
        return false;
    }
    return true;
}

static bool s_pause_fits(const plan_migration_t *m, double lag_ms, double rtt, char *why,
                         size_t whylen);

/* MariaDB: the replication connection the direction replicates through, as
 * the migration's poll last read it: it exists, runs both threads with no
 * error, and its lag is known and under max_lag (*lag_ms then). */
static bool s_replica_ok(const cutgate_view_t *v, double *lag_ms, char *why, size_t whylen)
{
    const plan_migration_t *m = v->m;
    const char *conn = v->slot_name;
    if (v->back && m->cutover.reverse_off) {
        snprintf(why, whylen, "blue does not follow green (cutover.reverse is off): a rollback "
                 "would lose green's writes");
        return false;
    }
    const Godwit__ReplicaStatusResult *rs = v->replica;
    if (!rs) {
        snprintf(why, whylen, "the replication connection %s has not been polled yet; try again "
                 "in a few seconds", conn);
        return false;
    }
    const Godwit__MariadbReplica *rp = rs->exists ? rs->replica : NULL;
    if (!rp) {
        if (v->back)
            snprintf(why, whylen, "blue does not follow green (its replication connection %s is "
                     "missing): a rollback would lose green's writes", conn);
        else
            snprintf(why, whylen, "our replication connection %s is missing on the target", conn);
        return false;
    }
    const char *err = rp->last_error ? rp->last_error : "";
    if (!rp->io_running || !rp->sql_running || err[0]) {
        snprintf(why, whylen, "the replication connection %s on %s is not healthy (I/O thread "
                 "%s, SQL thread %s%s%s)", conn, v->back ? "blue" : "the target",
                 rp->io_running ? "running" : "stopped", rp->sql_running ? "running" : "stopped",
                 err[0] ? "; error: " : "", err);
        return false;
    }
    if (rp->seconds_behind < 0) {
        snprintf(why, whylen, "the lag of the replication connection %s is unknown "
                 "(Seconds_Behind_Master is NULL)", conn);
        return false;
    }
    *lag_ms = (double)rp->seconds_behind * 1000.0;
    if (*lag_ms > (double)m->options.max_lag_ms) {
        snprintf(why, whylen, "lag %.0f ms (Seconds_Behind_Master of %s) is over max_lag (%lld ms)",
                 *lag_ms, conn, (long long)m->options.max_lag_ms);
        return false;
    }
    return true;
}

bool cutgate_check(const cutgate_view_t *v, char *why, size_t whylen)
{
    const plan_migration_t *m = v->m;
    bool back = v->back;
    if (back && strcmp(v->state, "switched") != 0) {
        snprintf(why, whylen, "it is %s: a rollback starts from switched", v->state);
        return false;
    }
    if (!back && strcmp(v->state, "streaming") != 0) {
        snprintf(why, whylen, "it is %s: the cutover starts from streaming", v->state);
        return false;
    }
    bool mariadb = m->engine == PLAN_ENGINE_MARIADB;
    if (mariadb && v->group) {
        snprintf(why, whylen, "engine mariadb: a cutover group with a MariaDB migration is not "
                 "in this version: cut %s over alone (godwitctl %s %s)", m->name,
                 back ? "rollback" : "cutover", m->name);
        return false;
    }
    if (v->verify_running) {
        snprintf(why, whylen, "verify is running");
        return false;
    }
    if (!m->cutover.app_roles.count || !m->cutover.proxies.count) {
        /* MariaDB: the fence locks the accounts app_roles names */
        snprintf(why, whylen, "the plan names no cutover.app_roles or no cutover.proxies%s",
                 mariadb ? " (the fence locks the accounts of the users app_roles names)" : "");
        return false;
    }
    const char *vs = cJSON_GetStringValue(cJSON_GetObjectItem(v->verify_last, "state"));
    if (back) {
        /* the import profile, verify, tables and apply errors are the forward
         * direction's */
    } else if (mariadb) {
        /* mycheck's report: "equal" or "different", finished_at_ms; no
         * import profile, no table states (one replication connection) */
        if (!vs || strcmp(vs, "equal") != 0) {
            snprintf(why, whylen, "the last verify is %s, not equal: run godwitctl migrate "
                     "verify %s", vs ? vs : "missing", m->name);
            return false;
        }
        if (!cutgate_verify_fresh(v->verify_last, m->cutover.verify_max_age_ms, v->now_ms, why,
                                  whylen))
            return false;
    } else if (m->method == PLAN_METHOD_PHYSICAL) {
        /* A standby replays the source's WAL: it holds what the source
         * held at each replayed position, every database and table. */
        if (!v->standby) {
            snprintf(why, whylen, "the standby has not reported its state yet; try again in a few "
                     "seconds");
            return false;
        }
        if (!v->standby->in_recovery || !v->standby->streaming) {
            snprintf(why, whylen, "the target is %s", !v->standby->in_recovery
                     ? "not a standby any more" : "a standby that does not stream from the source");
            return false;
        }
        /* A verify is not required here, but one that found a difference
         * stops the cutover until one says equal. */
        if (vs && strcmp(vs, "different") == 0) {
            snprintf(why, whylen, "the last verify is different: look at its report (godwitctl "
                     "migrate status %s) and run godwitctl migrate verify %s again", m->name,
                     m->name);
            return false;
        }
    } else if (v->import_pending) {
        snprintf(why, whylen, "%s", v->import_pending);
        return false;
    } else if (!vs || strcmp(vs, "equal") != 0) {
        snprintf(why, whylen, "the last verify is %s, not equal: run godwitctl migrate verify %s",
                 vs ? vs : "missing", m->name);
        return false;
    } else if (!cutgate_verify_fresh(v->verify_last, m->cutover.verify_max_age_ms, v->now_ms, why,
                                     whylen)) {
        return false;
    } else if (!v->has_sync) {
        snprintf(why, whylen, "the target has not reported its tables yet; try again in a few "
                 "seconds");
        return false;
    } else if (!v->all_ready) {
        snprintf(why, whylen, "not every table is ready");
        return false;
    } else if (v->repl_error && v->now_ms - v->repl_error_at_ms < 60000) {
        snprintf(why, whylen, "a replication error in the last minute: %s", v->repl_error);
        return false;
    }
    const cutgate_agent_t *sides[2] = { &v->source, &v->target };
    double rtt = 0;
    for (int i = 0; i < 2; i++) {
        if (!sides[i]->connected) {
            snprintf(why, whylen, "agent %s is not connected", sides[i]->name);
            return false;
        }
        rtt = sides[i]->rtt_ms > rtt ? sides[i]->rtt_ms : rtt;
    }
    for (size_t i = 0; i < m->cutover.proxies.count; i++) {
        const plan_proxy_t *p = (const plan_proxy_t *)m->cutover.proxies.items + i;
        const cutgate_agent_t *a = &v->proxies[i];
        if (!a->connected) {
            snprintf(why, whylen, "proxy agent %s is not connected", p->agent);
            return false;
        }
        /* As its agent last reported it: a cutover through a proxy its
         * agent cannot drive would pause, fail and abort. */
        if (!cutgate_proxy_ready(a->report, a->report_age_ms, p->agent, p->proxy, why, whylen))
            return false;
        rtt = a->rtt_ms > rtt ? a->rtt_ms : rtt;
    }
    /* Lag and the predicted pause: the target's replay lag plus the round
     * trips of the freeze batch (pause, freeze, sequences, switch, resume). */
    double lag_ms = 0;
    if (mariadb) {
        if (!s_replica_ok(v, &lag_ms, why, whylen))
            return false;
        return s_pause_fits(m, lag_ms, rtt, why, whylen);
    }
    const Godwit__Slot *slot = v->slot;
    if (!slot || !slot->active) {
        if (back)
            snprintf(why, whylen, "blue does not follow green (slot %s on green is not active%s): "
                     "a rollback would lose green's writes", v->slot_name,
                     m->cutover.reverse_off ? "; cutover.reverse is off" : "");
        else
            snprintf(why, whylen, "our slot on the source is not active (is the subscription "
                     "streaming?)");
        return false;
    }
    lag_ms = slot->has_replay_lag ? slot->replay_lag_seconds * 1000.0 : 0;
    if (lag_ms > (double)m->options.max_lag_ms) {
        snprintf(why, whylen, "lag %.0f ms is over max_lag (%lld ms)", lag_ms,
                 (long long)m->options.max_lag_ms);
        return false;
    }
    return s_pause_fits(m, lag_ms, rtt, why, whylen);
}

/* The predicted pause: the lag plus the pause's round trips at the
 * slowest agent's RTT, inside max_write_pause. */
static bool s_pause_fits(const plan_migration_t *m, double lag_ms, double rtt, char *why,
                         size_t whylen)
{
    int trips = (int)cutover_pause_trips(m);
    double predicted = lag_ms + trips * rtt;
    if (predicted > (double)m->cutover.max_write_pause_ms) {
        snprintf(why, whylen, "the predicted write pause (%.0f ms: lag %.0f ms and %d round "
                 "trips of %.1f ms) does not fit max_write_pause (%lld ms)", predicted, lag_ms,
                 trips, rtt, (long long)m->cutover.max_write_pause_ms);
        return false;
    }
    return true;
}
