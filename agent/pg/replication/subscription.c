/*
 * subscription: the steps on our subscription on the target
 * (subscription.h; the rules every replication step follows are in
 * replobj.c): EnsureSubscription, created with its marker if missing
 * (creating its slot on the source, or attached to the slot the copy
 * created) and enabled if it was not; SetSubscriptionEnabled, enabling or
 * disabling it. It owns the subscription's CONNECTION string (s_conninfo,
 * the one place it is built: never a password) and copies of the names it
 * was given.
 */
#include "subscription.h"
#include "log.h"
#include "pgconn.h"
#include "replobj.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    replobj_t obj;              /* first */
    char *name;
    char *publication;
    char *conninfo;             /* how the subscription reaches the source; no password */
    bool create_slot;           /* false after the slot was found on the source */
    bool copy_data;             /* false: attached to a slot whose data was copied already */
    bool want_enabled;          /* SetSubscriptionEnabled */
} subscription_t;

/* ---- the subscription's CONNECTION ------------------------------------ */

/* v single-quoted as libpq's conninfo syntax requires: a backslash before
 * each backslash and single quote. Caller frees. */
static char *s_conninfo_quote(const char *v)
{
    size_t n = 3;
    for (const char *p = v; *p; p++)
        n += (*p == '\\' || *p == '\'') ? 2 : 1;
    char *out = xmalloc(n);
    size_t o = 0;
    out[o++] = '\'';
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '\'')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

/* Appends " key='value'" to *info (which may be NULL). */
static void s_conninfo_add(char **info, const char *key, const char *value)
{
    char *q = s_conninfo_quote(value);
    char *grown = xasprintf("%s%s%s=%s", *info ? *info : "", *info ? " " : "", key, q);
    free(q);
    free(*info);
    *info = grown;
}

/* The conninfo the subscription uses to reach the source: the peer's
 * host, port, user, passfile and sslmode from the agent's config (which the
 * local server reads: the passfile is a path on this host), the database
 * src names, and application_name=godwit_<name>; never a password
 * (credentials come from the passfile or the source's pg_hba). The one
 * place a subscription's CONNECTION is built. Caller frees; NULL with *why
 * when src names no peer of local's. */
static char *s_conninfo(const step_local_t *local, const Godwit__ReplicationConn *src,
                        const char *name, char **why)
{
    const agent_peer_t *peer = step_peer(local, src, why);
    if (!peer)
        return NULL;
    char *info = NULL;
    char port[24];
    snprintf(port, sizeof port, "%" PRId64, peer->port);
    s_conninfo_add(&info, "host", peer->host);
    s_conninfo_add(&info, "port", port);
    s_conninfo_add(&info, "user", peer->user);
    s_conninfo_add(&info, "dbname", src->dbname);
    if (peer->passfile)
        s_conninfo_add(&info, "passfile", peer->passfile);
    if (peer->sslmode)
        s_conninfo_add(&info, "sslmode", peer->sslmode);
    char *app = xasprintf("godwit_%s", name);
    s_conninfo_add(&info, "application_name", app);
    free(app);
    return info;
}

/* ---- EnsureSubscription ------------------------------------------------- */

/* $1 subscription, $2 publication. Subscriptions are per database. Only
 * columns anyone may read (subconninfo is not). */
static const char s_lookup_sql[] =
    "SELECT s.subenabled, $2::pg_catalog.text = ANY (s.subpublications) AS has_publication,"
    " pg_catalog.array_to_string(s.subpublications, ', ') AS publications,"
    " " REPLOBJ_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " REPLOBJ_THIS_DB " AND s.subname = $1";

#define S_STAGE_LOOKUP 2 /* index of s_lookup in s_stages */

static void s_on_enable(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: enabled", s->obj.run.label);
    replobj_finish(&s->obj, NULL, NULL);
}

static void s_on_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        replobj_next(&s->obj); /* create it */
        return;
    }
    if (!replobj_marked(r->res, s->name)) {
        replobj_not_ours(&s->obj, "SUBSCRIPTION", s->name);
        return;
    }
    if (!pgconn_col_bool(r->res, 0, "has_publication")) {
        const char *pubs = pgconn_col(r->res, 0, "publications");
        char *why = xasprintf("it exists but subscribes to publication(s) %s, not to \"%s\"; "
                              "drop it first",
                              pubs ? pubs : "(none)", s->publication);
        replobj_finish(&s->obj, NULL, why);
        free(why);
        return;
    }
    if (pgconn_col_bool(r->res, 0, "subenabled")) {
        log_info("step on %s: exists and is enabled; nothing to do", s->obj.run.label);
        replobj_finish(&s->obj, NULL, NULL);
        return;
    }
    char *name = replobj_ident(&s->obj, s->name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER SUBSCRIPTION %s ENABLE", name);
    replobj_query(&s->obj, "enabling the subscription", sql, 0, NULL, s_on_enable);
    free(sql);
    free(name);
}

static void s_lookup(steprun_t *run)
{
    subscription_t *s = (subscription_t *)run;
    const char *params[2] = { s->name, s->publication };
    replobj_query(&s->obj, "looking up the subscription", s_lookup_sql, 2, params, s_on_lookup);
}

static void s_create(steprun_t *run);

/* The source refused to create the slot because it exists: an earlier
 * attempt created it and died before its subscription committed. The server
 * embeds the source's error in its own (the code is the source's 42710 on
 * some versions, a generic one on others), so the text decides. */
static bool s_slot_exists_error(const pgconn_result_t *r)
{
    return r->error && strstr(r->error, "replication slot") && strstr(r->error, "already exists");
}

static void s_on_marked(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: created with a new slot on the source, then marked", s->obj.run.label);
    replobj_finish(&s->obj, NULL, NULL);
}

static void s_on_create(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (r->ok && s->create_slot) {
        /* Not in the CREATE's transaction: one that creates its slot
         * cannot run in one. An agent that dies right here leaves it
         * unmarked, and the next attempt refuses it with the statement to
         * mark it (docs/protocol.md). The copy (BulkCopy) and the
         * cutover's reverse subscription never take this path. */
        char *name = replobj_ident(&s->obj, s->name);
        if (!name)
            return;
        char *sql = replobj_comment_sql(&s->obj, "SUBSCRIPTION", name, s->name);
        if (sql)
            replobj_query(&s->obj, "marking the subscription", sql, 0, NULL, s_on_marked);
        free(sql);
        free(name);
        return;
    }
    if (r->ok) {
        log_info("step on %s: created with its marker, on the slot already on the source",
                 s->obj.run.label);
        replobj_finish(&s->obj, NULL, NULL);
        return;
    }
    if (replobj_conn_lost(&s->obj)) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (s->create_slot && s_slot_exists_error(r)) {
        /* Nothing has read from that slot yet (no subscription existed to
         * read it), so taking it over loses and doubles nothing. */
        log_info("step on %s: the slot already exists on the source (%s); creating the "
                 "subscription on it",
                 s->obj.run.label, r->error);
        s->create_slot = false;
        s_create(&s->obj.run);
        return;
    }
    if (replobj_look_again(&s->obj, r)) {
        /* The subscription itself was created since our lookup: look again. */
        log_info("step on %s: created concurrently; looking again", s->obj.run.label);
        s->obj.run.stage = S_STAGE_LOOKUP;
        replobj_next(&s->obj);
        return;
    }
    replobj_fail_query(&s->obj, r);
}

static void s_create(steprun_t *run)
{
    subscription_t *s = (subscription_t *)run;
    char *name = replobj_ident(&s->obj, s->name);
    if (!name)
        return;
    char *pub = replobj_ident(&s->obj, s->publication);
    if (!pub) {
        free(name);
        return;
    }
    char *conninfo = pgconn_escape_literal(s->obj.run.conn[0], s->conninfo);
    char *slot = pgconn_escape_literal(s->obj.run.conn[0], s->name);
    if (!conninfo || !slot) {
        free(conninfo);
        free(slot);
        free(pub);
        free(name);
        replobj_finish(&s->obj, NULL,
                       "cannot quote the connection string or slot name for SQL (not valid "
                       "in the database's encoding, or the connection is gone)");
        return;
    }
    char *create = xasprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH "
                             "(slot_name = %s, copy_data = %s, create_slot = %s, enabled = true)",
                             name, conninfo, pub, slot, s->copy_data ? "true" : "false",
                             s->create_slot ? "true" : "false");
    if (s->create_slot) {
        /* Alone, outside any transaction block: it creates the slot
         * remotely. Its marker follows (s_on_create). */
        replobj_query(&s->obj, "creating the subscription", create, 0, NULL, s_on_create);
    } else {
        char *sql = replobj_with_marker(&s->obj, create, "SUBSCRIPTION", name, s->name);
        if (sql)
            replobj_query_simple(&s->obj, "creating the subscription on the existing slot", sql,
                                 s_on_create);
        free(sql);
    }
    free(create);
    free(slot);
    free(conninfo);
    free(pub);
    free(name);
}

static const steprun_fn s_stages[] = {
    replobj_names, replobj_connect, s_lookup, s_create, NULL,
};

/* ---- SetSubscriptionEnabled --------------------------------------------- */

static const char s_enabled_sql[] =
    "SELECT s.subenabled, " REPLOBJ_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " REPLOBJ_THIS_DB " AND s.subname = $1";

static void s_on_set(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: %s", s->obj.run.label, s->want_enabled ? "enabled" : "disabled");
    replobj_finish(&s->obj, NULL, NULL);
}

static void s_on_enabled_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    subscription_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        replobj_finish(&s->obj, NULL, "the subscription does not exist");
        return;
    }
    if (!replobj_marked(r->res, s->name)) {
        replobj_not_ours(&s->obj, "SUBSCRIPTION", s->name);
        return;
    }
    if (pgconn_col_bool(r->res, 0, "subenabled") == s->want_enabled) {
        replobj_finish(&s->obj, NULL, NULL);
        return;
    }
    char *name = replobj_ident(&s->obj, s->name);
    if (!name)
        return;
    char *sql = xasprintf("ALTER SUBSCRIPTION %s %s", name, s->want_enabled ? "ENABLE" : "DISABLE");
    replobj_query(&s->obj,
                  s->want_enabled ? "enabling the subscription" : "disabling the subscription",
                  sql, 0, NULL, s_on_set);
    free(sql);
    free(name);
}

static void s_enabled_lookup(steprun_t *run)
{
    subscription_t *s = (subscription_t *)run;
    const char *params[1] = { s->name };
    replobj_query(&s->obj, "looking up the subscription", s_enabled_sql, 1, params,
                  s_on_enabled_lookup);
}

static const steprun_fn s_enabled_stages[] = {
    replobj_names, replobj_connect, s_enabled_lookup, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    subscription_t *s = (subscription_t *)run;
    free(s->name);
    free(s->publication);
    free(s->conninfo);
    free(s);
}

/* A step on subscription name in database (replobj_new), or NULL. */
static subscription_t *s_new(uv_loop_t *loop, const step_local_t *local, const char *database,
                             const steprun_fn *stages, const char *name, step_done_cb done,
                             void *arg)
{
    subscription_t *s = (subscription_t *)replobj_new(
        sizeof *s, loop, local, database, stages, replobj_label("subscription", name, database),
        s_release, done, arg);
    if (!s)
        return NULL;
    s->name = xstrdup(name);
    s->obj.names[0] = (replobj_name_t){ "subscription", s->name };
    return s;
}

static step_t *s_subscription_start(uv_loop_t *loop, const step_local_t *local,
                                    const Godwit__EnsureSubscription *req, bool copy_data,
                                    step_done_cb done, void *arg)
{
    if (!req || !replobj_given(req->name) || !replobj_given(req->publication) || !req->source)
        return NULL;
    char *why = NULL;
    char *conninfo = s_conninfo(local, req->source, req->name, &why);
    if (!conninfo) {
        log_warn("subscription \"%s\": %s", req->name, why);
        free(why);
        return NULL;
    }
    subscription_t *s = s_new(loop, local, req->database, s_stages, req->name, done, arg);
    if (!s) {
        free(conninfo);
        return NULL;
    }
    s->publication = xstrdup(req->publication);
    s->conninfo = conninfo;
    s->create_slot = copy_data;
    s->copy_data = copy_data;
    return &s->obj.run.base;
}

step_t *subscription_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg)
{
    return s_subscription_start(loop, local, req, true, done, arg);
}

step_t *subscription_attach_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg)
{
    return s_subscription_start(loop, local, req, false, done, arg);
}

step_t *subscription_set_enabled_start(uv_loop_t *loop, const step_local_t *local,
                                       const Godwit__SetSubscriptionEnabled *req,
                                       step_done_cb done, void *arg)
{
    if (!req || !replobj_given(req->name))
        return NULL;
    subscription_t *s = s_new(loop, local, req->database, s_enabled_stages, req->name, done, arg);
    if (!s)
        return NULL;
    s->want_enabled = req->enabled;
    return &s->obj.run.base;
}
