/*
 * replobj: godwit's replication objects, what the steps on them share
 * (see replobj.c for the rules they follow): the struct each of them
 * embeds first, its connection to the local server, the check that every
 * name it was given is one godwit gives, godwit's marker on a publication
 * or subscription (reading it, refusing one without it, writing it) and
 * the catalog SQL more than one of them reads. The steps themselves are
 *
 *   publication.c   EnsurePublication (on the source)
 *   subscription.c  EnsureSubscription, its attach variant,
 *                   SetSubscriptionEnabled (on the target)
 *   slot.c          EnsureSlot (on the new primary of a cutover)
 *   sync_status.c   SyncStatus (on the target)
 *   drop.c          DropObjects (on either side)
 *
 * It owns no object and starts no step of its own; it never changes
 * anything on the server.
 */
#ifndef GODWIT_REPLOBJ_H
#define GODWIT_REPLOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steprun.h"

/* The comment on subscription s (the marker): COMMENT ON SUBSCRIPTION
 * writes pg_description of the database it runs in (the subscription's:
 * ours always does), though pg_subscription is a shared catalog; a server
 * that keeps it in pg_shdescription is read too. */
#define REPLOBJ_SUB_MARKER                                                                     \
    "COALESCE(pg_catalog.obj_description(s.oid, 'pg_subscription'),"                \
    " pg_catalog.shobj_description(s.oid, 'pg_subscription'))"

/* The oid of the database we are connected to. */
#define REPLOBJ_THIS_DB                                                                        \
    "(SELECT d.oid FROM pg_catalog.pg_database d"                                              \
    " WHERE d.datname = pg_catalog.current_database())"

#define REPLOBJ_MAX_NAMES 5

/* A name a step was given, for replobj_names. */
typedef struct {
    const char *kind; /* for messages: "publication", "subscription", "replication slot" */
    const char *name; /* borrowed from the step's own fields; NULL: none */
} replobj_name_t;

typedef struct replobj replobj_t;

struct replobj {
    steprun_t run;              /* first: conn[0] the local database, the timer (first
                                   stage, slot polls), the stages, label, what */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    bool looked_again;          /* a concurrent create was met and the lookup re-run */
    replobj_name_t names[REPLOBJ_MAX_NAMES]; /* what replobj_names checks (it runs first,
                                                before the step changes any of them) */
};

/* A new step of size bytes (its own struct, which embeds a replobj_t
 * first; zeroed) with its connection to database; the first of stages
 * runs one loop turn from now. label is taken; release frees the step's
 * own fields and the step (steprun.h). NULL for invalid arguments (label
 * freed). */
replobj_t *replobj_new(size_t size, uv_loop_t *loop, const step_local_t *local,
                       const char *database, const steprun_fn *stages, char *label,
                       steprun_fn release, step_done_cb done, void *arg);

/* What a step is about, for messages: kind "name" in database "db". Caller
 * frees. */
char *replobj_label(const char *kind, const char *name, const char *database);

/* Whether a request's string v is given (not NULL, not empty). */
bool replobj_given(const char *v);

/* Ends the step: payload (taken, may be NULL) on success with error NULL,
 * else the error (steprun.h). */
void replobj_finish(replobj_t *o, ProtobufCMessage *payload, const char *error);
void replobj_next(replobj_t *o);
void replobj_fail_query(replobj_t *o, const pgconn_result_t *r);

/* Sends one statement on the local connection; cb gets the step. */
void replobj_query(replobj_t *o, const char *what, const char *sql, int nparams,
                   const char *const *params, pgconn_result_cb cb);
/* The same through the simple protocol: sql may hold several statements,
 * run as one implicit transaction (a CREATE and its marker). */
void replobj_query_simple(replobj_t *o, const char *what, const char *sql, pgconn_result_cb cb);

/* ident quoted by the server's rules (caller frees), or NULL after ending the
 * step with an error. */
char *replobj_ident(replobj_t *o, const char *ident);

/* A statement failed because our own connection is gone (pgconn's 08006),
 * as opposed to the server reporting an error. */
bool replobj_conn_lost(const replobj_t *o);

/* Whether a failed CREATE is to be followed by the lookup again: the
 * object was created by someone else since our lookup (and our connection
 * is still up), and this step has not looked again yet. True marks it as
 * having looked again. */
bool replobj_look_again(replobj_t *o, const pgconn_result_t *r);

/* Stages. replobj_connect: connects (PostgreSQL 13 or later). replobj_names:
 * the first stage of every step that changes or drops an object: each name
 * in o->names passes step_godwit_name. */
void replobj_connect(steprun_t *run);
void replobj_names(steprun_t *run);

/* Whether the marker column of a lookup's row is godwit's marker for name. */
bool replobj_marked(const PGresult *res, const char *name);

/* Ends the step: the publication or subscription (sql_kind "PUBLICATION"
 * or "SUBSCRIPTION") called name exists without godwit's marker. The
 * message names the statement that marks one an older godwit created. */
void replobj_not_ours(replobj_t *o, const char *sql_kind, const char *name);

/* "COMMENT ON <sql_kind> <ident> IS <marker for name>". Caller frees;
 * NULL after ending the step. */
char *replobj_comment_sql(replobj_t *o, const char *sql_kind, const char *ident,
                          const char *name);

/* "<create>; COMMENT ON ...": the object and its marker, for one simple
 * query (one implicit transaction). Caller frees; NULL after ending the
 * step. */
char *replobj_with_marker(replobj_t *o, const char *create, const char *sql_kind,
                          const char *ident, const char *name);

#endif
