/*
 * coord_state: the coordinator process's state (struct coord), shared by
 * the parts of the process: coord.c (start, stop, the tick, signals),
 * agents.c (the ROUTER socket: the agents' messages, pings, the epoch's
 * judgement), routerlink.c (the agentlink the machines use: commands and
 * their results, deferred calls) and ctlserve.c (the control socket's
 * commands) and metrics.c (the Prometheus families). Nothing else
 * includes it: main.c and the tests see coord.h.
 *
 * Who owns what: coord.c creates and frees everything here; agents.c owns
 * the traffic on the sockets (counters, rate limiters' use, godwitctl
 * pings); routerlink.c owns the pending commands and the deferred calls.
 */
#ifndef GODWIT_COORD_STATE_H
#define GODWIT_COORD_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agentlink.h"
#include "claim.h"
#include "control.h"
#include "coord.h"
#include "fleet.h"
#include "journal.h"
#include "keys.h"
#include "metricsd.h"
#include "migset.h"
#include "ratelimit.h"
#include "zap.h"
#include "zuv.h"

/* The agents' messages by type, as counted for metrics (metrics.c names
 * them): each well-formed message from a known agent, where it is
 * dispatched (agents.c). */
typedef enum {
    COORD_MSG_HELLO = 0,
    COORD_MSG_REPORT,
    COORD_MSG_RESULT,
    COORD_MSG_EVENT,
    COORD_MSG_PROGRESS,
    COORD_MSG_OTHER, /* a type the coordinator does not take (also a bad message) */
    COORD_MSG__COUNT
} coord_msg_t;

typedef struct ctl_ping {
    control_req_t *req;
    char agent[128];
    uint64_t nonce;
    uint64_t sent_us;
    uint64_t deadline_mono;
    struct ctl_ping *next;
} ctl_ping_t;

/* A command sent to an agent whose result is awaited. */
typedef struct pending {
    char id[48];
    char agent[128];
    uint64_t deadline_mono;
    agentlink_result_cb cb;
    void *arg;
    const char *early_error; /* set: fail on the next tick (never from the send call) */
    uint8_t *frame;          /* the command as sent, re-sent when the agent reconnects */
    size_t frame_len;
    struct pending *next;
} pending_t;

typedef struct deferred {
    void (*fn)(void *arg);
    void *arg;
    struct deferred *next;
} deferred_t;

struct coord {
    uv_loop_t *loop;
    const coord_config_t *cfg;
    keys_pair_t keys;
    keys_allowlist_t allow;
    uint8_t sign_sk[KEYS_SIGN_SECRET_LEN];
    uint8_t sign_pk[KEYS_SIGN_PUBLIC_LEN];
    journal_t *journal;
    uint64_t epoch;
    claim_t claim;                /* this start's claim of epoch */
    Godwit__EpochClaim claim_msg; /* points into claim; sent with every command */
    void *zctx;
    zap_t *zap;
    void *router;
    zuv_t *router_watch;
    void *monitor;
    zuv_t *monitor_watch;
    control_t *control;
    metricsd_t *metricsd;         /* the Prometheus endpoint; NULL: off (metrics.h) */
    fleet_t *fleet;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    uint64_t next_msg_id;
    uint64_t next_cmd;
    uint64_t ticks;
    uint64_t started_at_ms;
    uint64_t messages, bad_messages, handshake_failed;
    uint64_t received[COORD_MSG__COUNT]; /* by type (coord_msg_t) */
    uint64_t sent;                /* messages handed to the ROUTER socket (all commands) */
    uint64_t oversize_messages;   /* counted in bad_messages too */
    uint64_t refused_role;        /* hellos refused: a role the key may not take */
    uint64_t suspect_messages;    /* fencing claims and refusals without proof, ignored */
    ratelimit_t *refusal_log;     /* ZAP and handshake refusals, per peer address */
    ratelimit_t *agent_log;       /* suspect messages, bad messages: per agent and kind */
    ctl_ping_t *ctl_pings;
    pending_t *pending;
    deferred_t *deferred;
    migset_t *migs;
    agentlink_t link;             /* what the machines use of this process (routerlink.c) */
    int open_handles;
    int exit_code;
    bool stopping;
};

#endif
