/*
 * step: the interface of the agent's database steps (phases 1-7), each a
 * typed command carried out against the local database server by its
 * engine (agent/pg/ for PostgreSQL: pgstep.h lists its steps). What is
 * here is what every engine shares: the step's handle, its done callback,
 * how the agent reaches its own server and its peers.
 *
 * Every step is idempotent: run again after a crash or a re-sent command, it
 * finds what is already done and ends in the same state; nothing it does
 * blocks the agent's loop.
 *
 * Trust (docs/protocol.md): a step reaches the other side only through
 * step_peer, which takes the address, user, sslmode and passfile from the
 * agent's peers list by the name the message gives; and it changes or drops
 * a replication object (a publication, subscription or slot) only if godwit
 * made it: a name step_godwit_name accepts, and the engine's own marker
 * (pgstep.h: pgstep_marker), set in the transaction that creates it.
 *
 * A step reports exactly once through its done callback, never from inside
 * its start function: payload is a malloc'd protobuf message (the Result
 * payload of that step, or NULL for steps without one) that the callee owns
 * and frees with protobuf_c_message_free_unpacked(payload, NULL); or
 * payload is NULL and error says why the step failed. step_cancel() stops
 * a running step with no callback afterwards.
 */
#ifndef GODWIT_STEP_H
#define GODWIT_STEP_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_config.h"
#include "godwit.pb-c.h"

/* Every step's private struct starts with this. */
typedef struct step {
    void (*cancel)(struct step *self);
} step_t;

/* How the agent reaches its own server, from its config. */
typedef struct {
    const char *host;
    int port;
    const char *user;
    const char *passfile;        /* may be NULL */
    const char *data_directory;
    const char *bin_dir;         /* the engine's client programs (pg_dump, pg_restore, psql) */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    /* The servers of the other side this agent may reach (its config's
     * peers), borrowed from the config, which outlives every step. */
    const agent_peer_t *peers;
    size_t n_peers;
    const char *config_path;     /* the agent's config file, for messages */
    const char *dbname;          /* the database the agent monitors (postgres.dbname) */
    /* postgres.standby: how this target is made a physical standby
     * (agent/pg/physical/); NULL when the config has no such section. */
    const agent_standby_t *standby;
} step_local_t;

typedef void (*step_done_cb)(ProtobufCMessage *payload, const char *error, void *arg);

/* The peer of local's config that remote names: the one place where a
 * message's ReplicationConn becomes an address. NULL, with *why (malloc'd,
 * caller frees) naming the peer and the config file, when remote names no
 * peer or one the config does not list, or gives no database. */
const agent_peer_t *step_peer(const step_local_t *local, const Godwit__ReplicationConn *remote,
                              char **why);

/* Whether name is one godwit gives its publications, subscriptions and
 * slots: "godwit_" and then 1 to 56 of a-z, 0-9 and _ (the migration's
 * name, and a suffix such as "_rev"). A name alone proves nothing; it is
 * the first check, before the marker or the slot's kind. */
bool step_godwit_name(const char *name);

static inline void step_cancel(step_t **sp)
{
    if (*sp) {
        step_t *s = *sp;
        *sp = NULL;
        s->cancel(s);
    }
}

#endif
