/*
 * drop: the DropObjects step, on either side (drop.h; the rules every
 * replication step follows are in replobj.c): our subscription, our
 * publication, our slot and the verify slot, whichever the command names,
 * each dropped if it exists. Every object it names is checked to be
 * godwit's before anything is dropped or terminated; a slot's holder is
 * terminated, and waited for, only if it is a WAL sender. The physical
 * path's slot (physical_slot, a standby's: docs/physical.md) goes the same
 * way, held to the same rules but for its kind: physical, of no database.
 * On a standby (a server in recovery: a physical migration's target) the
 * publication, which it has from its primary, is left for the primary's
 * drop to reach it: a standby runs no DROP.
 * It owns copies of the names and the deadline of the wait for a slot's
 * holder to let go.
 */
#include "drop.h"
#include "log.h"
#include "pgconn.h"
#include "replobj.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOT_WAIT_MS 2000           /* for a slot's terminated holder to let go */
#define S_SLOT_POLL_MS 100            /* 13: how often to look meanwhile */

typedef struct {
    replobj_t obj;              /* first */
    char *drop_sub, *drop_pub, *drop_slot; /* NULL: skip */
    char *drop_verify_slot;     /* dropped after drop_slot, the same way; NULL: skip */
    char *drop_physical_slot;   /* then this one, a physical slot; NULL: skip */
    bool physical;              /* drop_slot is the physical one now */
    bool standby;               /* the server is in recovery: no DROP PUBLICATION */
    uint64_t slot_deadline;     /* uv_now() when waiting for its holder ends; 0: not yet */
} drop_t;

/* ---- DropObjects: is each of them godwit's? ----------------------------- */

/* Every object the command names is looked at before anything is dropped
 * or terminated: one that is not godwit's fails the whole command. One
 * that does not exist is fine (dropped already). */

static const char s_check_sub_sql[] =
    "SELECT " REPLOBJ_SUB_MARKER " AS marker"
    " FROM pg_catalog.pg_subscription s"
    " WHERE s.subdbid = " REPLOBJ_THIS_DB " AND s.subname = $1";

/* One row whether the publication exists (present) or not: a standby must
 * be known as one either way, since even DROP PUBLICATION IF EXISTS fails
 * there (read-only). */
static const char s_check_pub_sql[] =
    "SELECT p.oid IS NOT NULL AS present,"
    " pg_catalog.obj_description(p.oid, 'pg_publication') AS marker,"
    " pg_catalog.pg_is_in_recovery() AS standby"
    " FROM (SELECT $1::pg_catalog.name AS pubname) w"
    " LEFT JOIN pg_catalog.pg_publication p ON p.pubname = w.pubname";

/* The slot, and the kind of process holding it (pg_stat_activity shows
 * backend_type for every process). */
static const char s_slot_lookup_sql[] =
    "SELECT s.slot_type, s.plugin, s.datoid IS NOT DISTINCT FROM " REPLOBJ_THIS_DB " AS here,"
    " s.database, s.active, s.active_pid, a.backend_type"
    " FROM pg_catalog.pg_replication_slots s"
    " LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid"
    " WHERE s.slot_name = $1";

static void s_on_check_marker(pgconn_t *c, const pgconn_result_t *r, void *arg, const char *kind,
                              const char *name)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (r->res && PQntuples(r->res) == 1 && !replobj_marked(r->res, name)) {
        replobj_not_ours(&s->obj, kind, name);
        return;
    }
    replobj_next(&s->obj);
}

static void s_on_check_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_marker(c, r, arg, "SUBSCRIPTION", ((drop_t *)arg)->drop_sub);
}

static void s_on_check_pub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    bool one = r->res && PQntuples(r->res) == 1;
    s->standby = one && pgconn_col_bool(r->res, 0, "standby");
    if (one && pgconn_col_bool(r->res, 0, "present") && !replobj_marked(r->res, s->drop_pub)) {
        replobj_not_ours(&s->obj, "PUBLICATION", s->drop_pub);
        return;
    }
    replobj_next(&s->obj);
}

static void s_check_sub(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_sub) {
        replobj_next(&s->obj);
        return;
    }
    const char *params[1] = { s->drop_sub };
    replobj_query(&s->obj, "looking up the subscription", s_check_sub_sql, 1, params,
                  s_on_check_sub);
}

static void s_check_pub(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_pub) {
        replobj_next(&s->obj);
        return;
    }
    const char *params[1] = { s->drop_pub };
    replobj_query(&s->obj, "looking up the publication", s_check_pub_sql, 1, params,
                  s_on_check_pub);
}

/* Why the slot of a s_slot_lookup_sql row is not godwit's to drop, or NULL:
 * godwit's slots are logical, decode with pgoutput and belong to the
 * database they are for; one in use is held by a WAL sender (a
 * subscription's, the copy's), never by a session decoding through SQL
 * functions. Caller frees. */
static char *s_slot_refusal(const char *name, const PGresult *res, bool physical)
{
    const char *type = pgconn_col(res, 0, "slot_type");
    const char *plugin = pgconn_col(res, 0, "plugin");
    const char *db = pgconn_col(res, 0, "database");
    const char *pid = pgconn_col(res, 0, "active_pid");
    const char *holder = pgconn_col(res, 0, "backend_type");
    const char *tail = "godwit drops only the logical pgoutput slots it creates; nothing was "
                       "dropped or terminated";
    if (physical) {
        if (!type || strcmp(type, "physical") != 0)
            return xasprintf("replication slot \"%s\" is a %s slot, not the physical one of a "
                             "standby: nothing was dropped or terminated", name,
                             type ? type : "(unknown)");
        if (pgconn_col_bool(res, 0, "active") && pid &&
            (!holder || strcmp(holder, "walsender") != 0))
            return xasprintf("replication slot \"%s\" is held by process %s, a %s, not a WAL "
                             "sender: nothing was dropped or terminated", name, pid,
                             holder ? holder : "process of unknown kind");
        return NULL;
    }
    if (!type || strcmp(type, "logical") != 0)
        return xasprintf("replication slot \"%s\" is a %s slot (a standby's or a WAL "
                         "archiver's): %s", name, type ? type : "(unknown)", tail);
    if (!plugin || strcmp(plugin, "pgoutput") != 0)
        return xasprintf("replication slot \"%s\" decodes with plugin %s, not pgoutput: %s",
                         name, plugin ? plugin : "(none)", tail);
    if (!pgconn_col_bool(res, 0, "here"))
        return xasprintf("replication slot \"%s\" belongs to database \"%s\", not to this "
                         "database: %s", name, db ? db : "", tail);
    if (pgconn_col_bool(res, 0, "active") && pid && (!holder || strcmp(holder, "walsender") != 0))
        return xasprintf("replication slot \"%s\" is held by process %s, a %s, not a WAL "
                         "sender: %s", name, pid, holder ? holder : "process of "
                         "unknown kind", tail);
    return NULL;
}

static void s_on_check_slot_named(const pgconn_result_t *r, drop_t *s, const char *name,
                                  bool physical)
{
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    char *why = r->res && PQntuples(r->res) == 1 ? s_slot_refusal(name, r->res, physical) : NULL;
    if (why) {
        replobj_finish(&s->obj, NULL, why);
        free(why);
        return;
    }
    replobj_next(&s->obj);
}

static void s_on_check_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_slot_named(r, arg, ((drop_t *)arg)->drop_slot, false);
}

static void s_on_check_verify_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_slot_named(r, arg, ((drop_t *)arg)->drop_verify_slot, false);
}

static void s_on_check_physical_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    s_on_check_slot_named(r, arg, ((drop_t *)arg)->drop_physical_slot, true);
}

static void s_check_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_slot) {
        replobj_next(&s->obj);
        return;
    }
    const char *params[1] = { s->drop_slot };
    replobj_query(&s->obj, "looking up the replication slot", s_slot_lookup_sql, 1, params,
                  s_on_check_slot);
}

/* The verify slot (VerifyTable's) is held to the same rule, before anything
 * is dropped. */
static void s_check_verify_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_verify_slot) {
        replobj_next(&s->obj);
        return;
    }
    const char *params[1] = { s->drop_verify_slot };
    replobj_query(&s->obj, "looking up the verify slot", s_slot_lookup_sql, 1, params,
                  s_on_check_verify_slot);
}

/* The physical path's slot: physical, held (if at all) by a WAL sender. */
static void s_check_physical_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_physical_slot) {
        replobj_next(&s->obj);
        return;
    }
    const char *params[1] = { s->drop_physical_slot };
    replobj_query(&s->obj, "looking up the physical slot", s_slot_lookup_sql, 1, params,
                  s_on_check_physical_slot);
}

/* ---- DropObjects: the subscription --------------------------------------- */

/* DROP SUBSCRIPTION failed because the server could not drop the slot on
 * the source: it could not connect (class 08 on 15, only the message
 * before), the source refused the drop (also 08006 on 15, e.g. for a slot
 * that is already gone there), or the statement timeout cut a connection
 * attempt that hung. Our own connection must still be up. */
static bool s_source_unreachable(const drop_t *s, const pgconn_result_t *r)
{
    if (replobj_conn_lost(&s->obj))
        return false;
    return strncmp(r->sqlstate, "08", 2) == 0 || strcmp(r->sqlstate, "57014") == 0 ||
           (r->error && strstr(r->error, "could not connect to publisher"));
}

/* Runs "<head><name><tail>" with the quoted name of the subscription to drop. */
static void s_drop_sub_sql(drop_t *s, const char *what, const char *head, const char *tail,
                           pgconn_result_cb cb)
{
    char *name = replobj_ident(&s->obj, s->drop_sub);
    if (!name)
        return;
    char *sql = xasprintf("%s%s%s", head, name, tail);
    replobj_query(&s->obj, what, sql, 0, NULL, cb);
    free(sql);
    free(name);
}

static void s_on_drop_sub_forced(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: subscription \"%s\" dropped without its slot on the source; a "
             "slot still there is left for the source's drop",
             s->obj.run.label, s->drop_sub);
    replobj_next(&s->obj);
}

static void s_on_drop_sub_detached(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    s_drop_sub_sql(s, "dropping the subscription, detached from its slot",
                   "DROP SUBSCRIPTION IF EXISTS ", "", s_on_drop_sub_forced);
}

static void s_on_drop_sub_disabled(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    s_drop_sub_sql(s, "detaching the subscription from its slot", "ALTER SUBSCRIPTION ",
                   " SET (slot_name = NONE)", s_on_drop_sub_detached);
}

static void s_on_drop_sub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (r->ok) {
        log_info("step on %s: subscription \"%s\" dropped (if it existed), with its slot on "
                 "the source",
                 s->obj.run.label, s->drop_sub);
        replobj_next(&s->obj);
        return;
    }
    if (!s_source_unreachable(s, r)) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_warn("step on %s: cannot drop subscription \"%s\" with its slot (%s%s%s); dropping it "
             "without the slot",
             s->obj.run.label, s->drop_sub, r->error ? r->error : "",
             r->sqlstate[0] ? ", SQLSTATE " : "", r->sqlstate);
    s_drop_sub_sql(s, "disabling the subscription", "ALTER SUBSCRIPTION ", " DISABLE",
                   s_on_drop_sub_disabled);
}

static void s_drop_sub(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_sub) {
        replobj_next(&s->obj);
        return;
    }
    /* Also drops its slot on the source, connecting there from the server. */
    s_drop_sub_sql(s, "dropping the subscription", "DROP SUBSCRIPTION IF EXISTS ", "",
                   s_on_drop_sub);
}

/* ---- DropObjects: the publication --------------------------------------- */

static void s_on_drop_pub(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    log_info("step on %s: publication \"%s\" dropped (if it existed)", s->obj.run.label,
             s->drop_pub);
    replobj_next(&s->obj);
}

static void s_drop_pub(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_pub) {
        replobj_next(&s->obj);
        return;
    }
    if (s->standby) {
        log_info("step on %s: publication \"%s\" not dropped: the server is a standby: it "
                 "replays its primary's drop", s->obj.run.label, s->drop_pub);
        replobj_next(&s->obj);
        return;
    }
    char *name = replobj_ident(&s->obj, s->drop_pub);
    if (!name)
        return;
    char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", name);
    replobj_query(&s->obj, "dropping the publication", sql, 0, NULL, s_on_drop_pub);
    free(sql);
    free(name);
}

/* ---- DropObjects: the slot ---------------------------------------------- */

/* A slot is dropped when nobody holds it. Its holder (a walsender) is
 * terminated and, from 14 on, waited for, and the drop follows at once: a
 * subscriber that is still alive reconnects within milliseconds and takes
 * the slot again, so the drop must not wait for a poll. This is retried
 * until S_SLOT_WAIT_MS after the first holder was met; after that the drop's
 * own error says who holds the slot. Each look at the slot checks again
 * that it is godwit's and that its holder is a WAL sender (s_slot_refusal):
 * only then is the holder terminated. */

static void s_slot_lookup(drop_t *s);

static bool s_slot_waiting(drop_t *s)
{
    uint64_t now = uv_now(s->obj.run.loop);
    if (s->slot_deadline == 0)
        s->slot_deadline = now + S_SLOT_WAIT_MS;
    return now < s->slot_deadline;
}

static void s_on_drop_slot(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok && !replobj_conn_lost(&s->obj) && strcmp(r->sqlstate, "55006") == 0 &&
        s_slot_waiting(s)) {
        /* Taken again (or for the first time) since we looked. */
        s_slot_lookup(s);
        return;
    }
    if (!r->ok && !(strcmp(r->sqlstate, "42704") == 0 && !replobj_conn_lost(&s->obj))) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    /* 42704: gone since we looked, which is what we wanted. */
    log_info("step on %s: replication slot \"%s\" dropped", s->obj.run.label, s->drop_slot);
    replobj_next(&s->obj);
}

static void s_slot_drop(drop_t *s)
{
    const char *params[1] = { s->drop_slot };
    replobj_query(&s->obj, "dropping the replication slot",
                  "SELECT pg_catalog.pg_drop_replication_slot($1)", 1, params, s_on_drop_slot);
}

static void s_slot_poll(steprun_t *run)
{
    s_slot_lookup((drop_t *)run);
}

static void s_on_slot_terminate(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (pgconn_server_version(s->obj.run.conn[0]) >= 140000)
        s_slot_drop(s); /* the holder has exited (or the wait ran out) */
    else
        steprun_after(&s->obj.run, S_SLOT_POLL_MS, s_slot_poll);
}

static void s_on_slot_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    drop_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->obj, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        log_info("step on %s: replication slot \"%s\" does not exist (any more); nothing to "
                 "drop",
                 s->obj.run.label, s->drop_slot);
        replobj_next(&s->obj);
        return;
    }
    char *why = s_slot_refusal(s->drop_slot, r->res, s->physical);
    if (why) {
        replobj_finish(&s->obj, NULL, why);
        free(why);
        return;
    }
    const char *pid = pgconn_col(r->res, 0, "active_pid");
    if (!pgconn_col_bool(r->res, 0, "active") || !pid || !s_slot_waiting(s)) {
        s_slot_drop(s);
        return;
    }
    log_info("step on %s: replication slot \"%s\" is in use by process %s; terminating it",
             s->obj.run.label, s->drop_slot, pid);
    if (pgconn_server_version(s->obj.run.conn[0]) >= 140000) {
        char wait_ms[32];
        snprintf(wait_ms, sizeof wait_ms, "%" PRIu64, s->slot_deadline - uv_now(s->obj.run.loop));
        const char *params[2] = { pid, wait_ms };
        replobj_query(&s->obj, "terminating the slot's holder",
                      "SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4,"
                      " $2::pg_catalog.int8)",
                      2, params, s_on_slot_terminate);
    } else {
        const char *params[1] = { pid };
        replobj_query(&s->obj, "terminating the slot's holder",
                      "SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4)", 1, params,
                      s_on_slot_terminate);
    }
}

static void s_slot_lookup(drop_t *s)
{
    const char *params[1] = { s->drop_slot };
    replobj_query(&s->obj, "looking up the replication slot", s_slot_lookup_sql, 1, params,
                  s_on_slot_lookup);
}

static void s_drop_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_slot) {
        replobj_next(&s->obj);
        return;
    }
    s_slot_lookup(s);
}

/* The verify slot (VerifyTable's, left by an agent that died mid-verify):
 * the slot stage again, on that name. */
static void s_drop_verify_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_verify_slot) {
        replobj_next(&s->obj);
        return;
    }
    free(s->drop_slot);
    s->drop_slot = s->drop_verify_slot;
    s->drop_verify_slot = NULL;
    s->slot_deadline = 0;
    s_slot_lookup(s);
}

/* The physical slot (a standby's): the slot stage again, on that name,
 * its WAL sender (the standby's receiver's) terminated first. */
static void s_drop_physical_slot(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    if (!s->drop_physical_slot) {
        replobj_next(&s->obj);
        return;
    }
    free(s->drop_slot);
    s->drop_slot = s->drop_physical_slot;
    s->drop_physical_slot = NULL;
    s->physical = true;
    s->slot_deadline = 0;
    s_slot_lookup(s);
}

static const steprun_fn s_stages[] = {
    replobj_names, replobj_connect, s_check_sub, s_check_pub, s_check_slot,
    s_check_verify_slot, s_check_physical_slot, s_drop_sub, s_drop_pub, s_drop_slot,
    s_drop_verify_slot, s_drop_physical_slot, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    drop_t *s = (drop_t *)run;
    free(s->drop_sub);
    free(s->drop_pub);
    free(s->drop_slot);
    free(s->drop_verify_slot);
    free(s->drop_physical_slot);
    free(s);
}

/* A copy of v, or NULL when it is not given. */
static char *s_copy(const char *v)
{
    return replobj_given(v) ? xstrdup(v) : NULL;
}

step_t *drop_objects_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    /* A physical slot belongs to no database: a command naming only it may
     * name none, and any database of the server will do. */
    const char *database = req->database;
    if (!replobj_given(database) && replobj_given(req->physical_slot) && local)
        database = local->dbname;
    char *label = xasprintf("drop in database \"%s\"", database ? database : "");
    drop_t *s = (drop_t *)replobj_new(sizeof *s, loop, local, database, s_stages,
                                      label, s_release, done, arg);
    if (!s)
        return NULL;
    s->drop_sub = s_copy(req->subscription);
    s->drop_pub = s_copy(req->publication);
    s->drop_slot = s_copy(req->slot);
    s->drop_verify_slot = s_copy(req->verify_slot);
    s->obj.names[0] = (replobj_name_t){ "subscription", s->drop_sub };
    s->obj.names[1] = (replobj_name_t){ "publication", s->drop_pub };
    s->obj.names[2] = (replobj_name_t){ "replication slot", s->drop_slot };
    s->obj.names[3] = (replobj_name_t){ "replication slot", s->drop_verify_slot };
    s->drop_physical_slot = s_copy(req->physical_slot);
    s->obj.names[4] = (replobj_name_t){ "replication slot", s->drop_physical_slot };
    return &s->obj.run.base;
}
