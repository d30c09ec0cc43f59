/*
 * metrics: see metrics.h. The families of the process and of the agents;
 * the migrations' are migmetrics.c's.
 */
#include "metrics.h"

#include "coord_state.h"
#include "units.h"

#define LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Same order as coord_msg_t. */
static const char *const s_msg_names[] = { "hello", "report", "result", "event", "progress",
                                           "other" };
_Static_assert(sizeof s_msg_names / sizeof s_msg_names[0] == COORD_MSG__COUNT, "message types");

static void s_process(const coord_t *c, promtext_t *p)
{
    promtext_family(p, "godwit_coordinator_start_time_seconds", PROMTEXT_GAUGE,
                    "When this coordinator started (Unix time).");
    promtext_sample(p, "godwit_coordinator_start_time_seconds", NULL,
                    (double)c->started_at_ms / 1000.0);
    promtext_family(p, "godwit_coordinator_epoch", PROMTEXT_GAUGE,
                    "The coordinator's epoch: one more at every start (docs/protocol.md).");
    promtext_sample(p, "godwit_coordinator_epoch", NULL, (double)c->epoch);
    promtext_family(p, "godwit_messages_received_total", PROMTEXT_COUNTER,
                    "Well-formed messages from known agents, by type.");
    for (int t = 0; t < COORD_MSG__COUNT; t++)
        promtext_sample(p, "godwit_messages_received_total", LABELS("type", s_msg_names[t]),
                        (double)c->received[t]);
    promtext_family(p, "godwit_messages_sent_total", PROMTEXT_COUNTER,
                    "Messages sent to agents, by type (the coordinator sends only commands, "
                    "pings among them; a command re-sent after a reconnect counts again).");
    promtext_sample(p, "godwit_messages_sent_total", LABELS("type", "command"), (double)c->sent);
    promtext_family(p, "godwit_messages_bad_total", PROMTEXT_COUNTER,
                    "Messages dropped as bad: oversized, undecodable, malformed, unexpected or "
                    "from an unknown peer.");
    promtext_sample(p, "godwit_messages_bad_total", NULL, (double)c->bad_messages);
    promtext_family(p, "godwit_handshakes_failed_total", PROMTEXT_COUNTER,
                    "CURVE handshakes that failed (unknown keys, plaintext clients).");
    promtext_sample(p, "godwit_handshakes_failed_total", NULL, (double)c->handshake_failed);
    size_t pending = 0;
    for (const pending_t *q = c->pending; q; q = q->next)
        pending++;
    promtext_family(p, "godwit_commands_pending", PROMTEXT_GAUGE,
                    "Commands sent to agents whose result is awaited.");
    promtext_sample(p, "godwit_commands_pending", NULL, (double)pending);
    promtext_family(p, "godwit_metrics_scrapes_total", PROMTEXT_COUNTER,
                    "Requests for /metrics answered, this one included.");
    promtext_sample(p, "godwit_metrics_scrapes_total", NULL,
                    (double)(c->metricsd ? metricsd_scrapes(c->metricsd) : 0));
}

static void s_agents(coord_t *c, promtext_t *p)
{
    size_t n = fleet_count(c->fleet);
    uint64_t now = units_mono_ms();
    promtext_family(p, "godwit_agent_up", PROMTEXT_GAUGE,
                    "1 if the agent is connected, 0 if it was never seen, is lost or refused.");
    for (size_t i = 0; i < n; i++) {
        const fleet_agent_t *a = fleet_at(c->fleet, i);
        promtext_sample(p, "godwit_agent_up", LABELS("agent", a->name, "role", a->role),
                        a->state == LINK_CONNECTED);
    }
    promtext_family(p, "godwit_agent_rtt_seconds", PROMTEXT_GAUGE,
                    "The last ping's round trip between the coordinator and the agent.");
    for (size_t i = 0; i < n; i++) {
        const fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->rtt_samples)
            promtext_sample(p, "godwit_agent_rtt_seconds", LABELS("agent", a->name),
                            a->rtt_ms / 1000.0);
    }
    promtext_family(p, "godwit_agent_report_age_seconds", PROMTEXT_GAUGE,
                    "Time since the agent's latest report arrived.");
    for (size_t i = 0; i < n; i++) {
        const fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->report && a->last_report_mono)
            promtext_sample(p, "godwit_agent_report_age_seconds", LABELS("agent", a->name),
                            (double)(now > a->last_report_mono ? now - a->last_report_mono : 0) /
                                1000.0);
    }
    promtext_family(p, "godwit_agent_disk_free_bytes", PROMTEXT_GAUGE,
                    "Free space (for unprivileged users) of the filesystem of the agent's "
                    "PostgreSQL data directory, from its latest report.");
    for (size_t i = 0; i < n; i++) {
        const fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->report && a->report->disk && a->report->disk->ok)
            promtext_sample(p, "godwit_agent_disk_free_bytes", LABELS("agent", a->name),
                            (double)a->report->disk->free_bytes);
    }
    promtext_family(p, "godwit_agent_disk_size_bytes", PROMTEXT_GAUGE,
                    "Size of the filesystem of the agent's PostgreSQL data directory.");
    for (size_t i = 0; i < n; i++) {
        const fleet_agent_t *a = fleet_at(c->fleet, i);
        if (a->report && a->report->disk && a->report->disk->ok)
            promtext_sample(p, "godwit_agent_disk_size_bytes", LABELS("agent", a->name),
                            (double)a->report->disk->size_bytes);
    }
}

void metrics_render(promtext_t *p, void *arg)
{
    coord_t *c = arg;
    s_process(c, p);
    s_agents(c, p);
    if (c->migs)
        migset_metrics(c->migs, p);
}
