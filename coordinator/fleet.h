/*
 * fleet: what the coordinator knows about each agent: its link state
 * (never seen, connected, lost, refused), where to reach it, its hello, its
 * latest report, round-trip times, whether it is suspect, and the figures
 * status shows.
 *
 * refused: its last hello claimed a role its key may not take (the roles
 * line of its NAME.pub); nothing else it sends is taken until a hello that
 * is accepted. suspect: it sent something only a forger would (an epoch or
 * a refusal without valid proof, docs/protocol.md "Epochs"); it stays
 * connected, and status says so until the coordinator restarts.
 *
 * The link state changes only through fleet_event(), driven by a transition
 * table; every change is logged "agent X: from A to B: reason". Agents are
 * named by the allow-list (key file name), so the fleet is created from the
 * allow-list and never grows from the network.
 *
 * fleet owns its agents and their latest reports. Rendering status returns
 * a cJSON tree the caller deletes.
 */
#ifndef GODWIT_FLEET_H
#define GODWIT_FLEET_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "godwit.pb-c.h"
#include "keys.h"

typedef enum { LINK_NEVER_SEEN = 0, LINK_CONNECTED, LINK_LOST, LINK_REFUSED, LINK__COUNT } link_state_t;
typedef enum {
    LINK_EV_HELLO = 0,
    LINK_EV_MESSAGE,
    LINK_EV_SILENT,
    LINK_EV_REFUSED, /* a hello refused: a role the key may not take */
    LINK_EV__COUNT
} link_event_t;

#define FLEET_RID_MAX 256
#define FLEET_RTT_RING 4096

typedef struct {
    char name[128];
    unsigned allowed_roles;         /* KEYS_ROLE_* bits from the allow-list */
    link_state_t state;
    uint8_t rid[FLEET_RID_MAX];     /* ZeroMQ routing id of the current connection */
    size_t rid_len;
    char peer_address[64];
    /* from hello */
    char role[16];                  /* the bound role: the hello's, accepted; "" if none */
    char version[32];
    char hostname[128];
    char jurisdiction[CFG_LABEL_MAX + 1]; /* its config's label, "" if none */
    char site[CFG_LABEL_MAX + 1];   /* its config's site label, "" if none */
    uint32_t report_interval_ms;
    uint64_t agent_started_at_ms;
    uint64_t highest_epoch;
    uint64_t hellos;
    char refused[200];              /* why its last hello was refused ("" if it was not) */
    /* suspect: what it sent that only a forger would, how often, when last */
    char suspect[200];
    uint64_t suspect_count;
    uint64_t suspect_at_ms;
    uint64_t dropped_refused;       /* messages dropped while refused */
    /* liveness, wall clock for display and monotonic for decisions */
    uint64_t last_seen_ms, last_seen_mono;
    uint64_t connected_since_ms;
    uint64_t messages;
    /* reports */
    Godwit__Report *report;         /* latest, owned */
    uint64_t reports;
    uint64_t last_report_mono;
    uint64_t max_report_gap_ms;     /* since the current connection began */
    /* pings */
    uint64_t ping_nonce;            /* outstanding, 0 if none */
    uint64_t last_ping_nonce;       /* the last one sent, answered or not */
    uint64_t ping_sent_us;          /* uv_hrtime()/1000 when sent */
    double rtt_ms;                  /* last */
    uint64_t rtt_samples;
    char last_refusal[160];         /* last command refusal by this agent */
} fleet_agent_t;

typedef struct fleet fleet_t;

fleet_t *fleet_new(const keys_allowlist_t *allow);
void fleet_destroy(fleet_t **fp);

size_t fleet_count(const fleet_t *f);
fleet_agent_t *fleet_at(fleet_t *f, size_t i);
fleet_agent_t *fleet_find(fleet_t *f, const char *name);

/* Applies an event to an agent's link state through the table; logs a
 * change. Returns the new state. */
link_state_t fleet_event(fleet_agent_t *a, link_event_t ev, uint64_t now_mono, const char *reason);
const char *fleet_state_name(link_state_t s);

/* Records a message from the agent (routing id, time). */
void fleet_touch(fleet_agent_t *a, const void *rid, size_t rid_len, uint64_t now_ms,
                 uint64_t now_mono);
/* Takes ownership of *reportp and clears it. */
void fleet_set_report(fleet_agent_t *a, Godwit__Report **reportp, uint64_t now_mono);
/* Records one round trip in the agent and the fleet's ring. */
void fleet_record_rtt(fleet_t *f, fleet_agent_t *a, double rtt_ms, uint64_t now_mono);
/* Round trips recorded in the last window_ms (at most FLEET_RTT_RING of
 * them): count, and the percentiles (0..100) asked for in pcts, written to
 * out. Returns the count; out is untouched when it is 0. */
size_t fleet_rtt_window(const fleet_t *f, uint64_t now_mono, uint64_t window_ms,
                        const double *pcts, double *out, size_t npcts);
uint64_t fleet_rtt_samples(const fleet_t *f);

/* One agent as status JSON (see docs/status-json.md). */
cJSON *fleet_agent_json(const fleet_agent_t *a, uint64_t now_ms, uint64_t now_mono);

#endif
