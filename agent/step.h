/*
 * step: the interface of the agent's migration steps (phases 2-5), each a
 * typed command carried out against the local PostgreSQL server:
 *   roles.c   ApplyRoles           (the roles the database needs, before its schema)
 *   schema.c  ApplySchema          (pg_dump/pg_restore as child processes)
 *   steps.c   EnsurePublication, EnsureSubscription, SyncStatus, DropObjects,
 *             SetSubscriptionEnabled, EnsureSlot
 *   verify_table.c  VerifyTable (phase 6: the rows, source against target)
 *   verify_schema.c VerifySchema, VerifyRoles (the schema and the
 *             application roles' privileges, source against target)
 *   bulkcopy.c BulkCopy (the copy through the slot's exported snapshot)
 *
 * Every step is idempotent: run again after a crash or a re-sent command, it
 * finds what is already done and ends in the same state. All database work
 * is libpq's asynchronous API (pgconn) or child processes started with
 * uv_spawn and an argv array (never a shell); nothing blocks the loop.
 *
 * Trust (docs/protocol.md): a step reaches the other side only through
 * step_remote_conn or step_peer, which take the address, user, sslmode and
 * passfile from the agent's peers list by the name the message gives; and it
 * changes or drops a publication, subscription or slot only if godwit made
 * it: a name step_godwit_name accepts, and for a publication or
 * subscription the marker step_marker gives, set in the transaction that
 * creates it.
 *
 * Each runs on the step runtime (steprun.h) and starts through the action
 * table (actions.h).
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
#include "pgconn.h"

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
    const char *bin_dir;         /* PostgreSQL client programs (pg_dump, pg_restore, psql) */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    /* The servers of the other side this agent may reach (its config's
     * peers), borrowed from the config, which outlives every step. */
    const agent_peer_t *peers;
    size_t n_peers;
    const char *config_path;     /* the agent's config file, for messages */
} step_local_t;

typedef void (*step_done_cb)(ProtobufCMessage *payload, const char *error, void *arg);

/* A statement's client-side deadline is the server's statement_timeout
 * plus this: the server's own timeout, with its message, comes first. */
#define STEP_DEADLINE_SLACK_MS 1000

/* The connections steps open (not yet connecting; pgconn.h), NULL for
 * invalid parameters. app is the application_name, options the startup
 * options ("-c statement_timeout=... -c search_path="), NULL for none;
 * libpq's connect_timeout is connect_timeout_ms in whole seconds (pgconn's
 * deadline is the real bound). step_local_conn: the local server's
 * database, as local says. step_remote_conn: the database remote names on
 * the peer it names (step_peer; NULL if local has no such peer);
 * replication: a walsender for replication commands. */
pgconn_t *step_local_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                          const char *database, const char *app, const char *options);
pgconn_t *step_remote_conn(uv_loop_t *loop, const char *name, const step_local_t *local,
                           const Godwit__ReplicationConn *remote, bool replication,
                           const char *app, const char *options);

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

/* The comment godwit puts on a publication or subscription it creates,
 * in the transaction that creates it (caller frees). An object is godwit's
 * only if its comment is exactly this for its own name: a renamed one is
 * not. */
char *step_marker(const char *name);

/* Each returns NULL (and does not call done) only for invalid arguments. */
step_t *roles_apply_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__ApplyRoles *req, step_done_cb done, void *arg);
step_t *schema_apply_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__ApplySchema *req, step_done_cb done, void *arg);
step_t *publication_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                 const Godwit__EnsurePublication *req, step_done_cb done, void *arg);
step_t *subscription_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
/* The same subscription created on the existing slot req->name without
 * copying (copy_data = false, create_slot = false): the data was copied in
 * the slot's exported snapshot already (bulkcopy.c). */
step_t *subscription_attach_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
/* EnsureSlot: our publication and a logical slot of that name, created if
 * missing; with advance_to, the slot moved forward to it. Payload: an
 * EnsureSlotResult. */
step_t *slot_ensure_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__EnsureSlot *req, step_done_cb done, void *arg);
step_t *sync_status_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__SyncStatus *req, step_done_cb done, void *arg);
step_t *subscription_set_enabled_start(uv_loop_t *loop, const step_local_t *local,
                                       const Godwit__SetSubscriptionEnabled *req,
                                       step_done_cb done, void *arg);
step_t *table_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyTable *req, step_done_cb done, void *arg);
step_t *schema_verify_start(uv_loop_t *loop, const step_local_t *local,
                            const Godwit__VerifySchema *req, bool fenced, step_done_cb done,
                            void *arg);
/* fenced: our fence holds the target database (freeze.h): its roles'
 * missing LOGIN is the fence's, not a finding (VerifySchema's roles part
 * and VerifyRoles alike). */
step_t *roles_verify_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__VerifyRoles *req, bool fenced, step_done_cb done,
                           void *arg);
step_t *objects_drop_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg);

static inline void step_cancel(step_t **sp)
{
    if (*sp) {
        step_t *s = *sp;
        *sp = NULL;
        s->cancel(s);
    }
}

#endif
