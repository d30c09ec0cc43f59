/*
 * slot: the EnsureSlot step on the new primary of a cutover (slot.h; the
 * rules every replication step follows are in replobj.c): our publication
 * (publication.c's stages) and a logical slot of that name, created if
 * missing; with advance_to, the slot moved forward to it. It owns the
 * publication step it embeds, the position to advance to and the result
 * being built.
 */
#include "slot.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "publication.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    publication_t pub;          /* first: the publication's stages run first */
    uint64_t advance_to;        /* 0: do not advance */
    Godwit__EnsureSlotResult *result;
} slot_t;

/* The publication first (PUBLICATION_STAGES): a slot's decoding looks the
 * publication up as of each change, so a slot older than its publication
 * fails on the changes in between. Then the slot, created if missing, and
 * moved forward to advance_to if it is behind. */

static const char s_lookup_sql[] =
    "SELECT s.slot_type, s.plugin, s.datoid = " REPLOBJ_THIS_DB " AS here,"
    " s.confirmed_flush_lsn::pg_catalog.text AS confirmed"
    " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1";

static void s_lookup(steprun_t *run);

/* Reads an LSN column into *out; false after ending the step. */
static bool s_lsn(slot_t *s, const pgconn_result_t *r, const char *col, uint64_t *out)
{
    const char *v = r->res && PQntuples(r->res) == 1 ? pgconn_col(r->res, 0, col) : NULL;
    if (!v || !lsn_parse(v, out)) {
        replobj_finish(&s->pub.obj, NULL, "the server gave no valid WAL position for the slot");
        return false;
    }
    return true;
}

static void s_on_created(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    slot_t *s = arg;
    if (replobj_look_again(&s->pub.obj, r)) { /* created by someone else meanwhile */
        s_lookup(&s->pub.obj.run);
        return;
    }
    if (!r->ok) {
        replobj_fail_query(&s->pub.obj, r);
        return;
    }
    if (!s_lsn(s, r, "lsn", &s->result->confirmed_lsn))
        return;
    s->result->created = true;
    log_info("step on %s: logical slot created", s->pub.obj.run.label);
    replobj_next(&s->pub.obj);
}

static void s_on_lookup(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    slot_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->pub.obj, r);
        return;
    }
    if (!r->res || PQntuples(r->res) != 1) {
        const char *params[1] = { s->pub.name };
        replobj_query(&s->pub.obj, "creating the logical slot",
                      "SELECT l.lsn::pg_catalog.text AS lsn FROM"
                      " pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput') l",
                      1, params, s_on_created);
        return;
    }
    const char *type = pgconn_col(r->res, 0, "slot_type");
    const char *plugin = pgconn_col(r->res, 0, "plugin");
    if (!type || strcmp(type, "logical") != 0 || !plugin || strcmp(plugin, "pgoutput") != 0 ||
        !pgconn_col_bool(r->res, 0, "here")) {
        replobj_finish(&s->pub.obj, NULL,
                       "a replication slot of that name exists that is not a pgoutput slot "
                       "of this database; drop or rename it");
        return;
    }
    if (!s_lsn(s, r, "confirmed", &s->result->confirmed_lsn))
        return;
    replobj_next(&s->pub.obj);
}

static void s_lookup(steprun_t *run)
{
    slot_t *s = (slot_t *)run;
    const char *params[1] = { s->pub.name };
    replobj_query(&s->pub.obj, "looking up the slot", s_lookup_sql, 1, params, s_on_lookup);
}

static void s_on_advanced(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    slot_t *s = arg;
    if (!r->ok) {
        replobj_fail_query(&s->pub.obj, r);
        return;
    }
    uint64_t end;
    if (!s_lsn(s, r, "end_lsn", &end))
        return;
    s->result->confirmed_lsn = end;
    if (end < s->advance_to) {
        char a[32], b[32];
        char *why = xasprintf("the slot got to %s, not %s: the server has not flushed its WAL "
                              "that far yet",
                              lsn_format(end, a, sizeof a), lsn_format(s->advance_to, b, sizeof b));
        replobj_finish(&s->pub.obj, NULL, why);
        free(why);
        return;
    }
    replobj_next(&s->pub.obj);
}

static void s_advance(steprun_t *run)
{
    slot_t *s = (slot_t *)run;
    if (!s->advance_to || s->result->confirmed_lsn >= s->advance_to) {
        replobj_next(&s->pub.obj);
        return;
    }
    char to[32];
    lsn_format(s->advance_to, to, sizeof to);
    const char *params[2] = { s->pub.name, to };
    replobj_query(&s->pub.obj, "advancing the slot",
                  "SELECT a.end_lsn::pg_catalog.text AS end_lsn FROM"
                  " pg_catalog.pg_replication_slot_advance($1, $2::pg_catalog.pg_lsn) a",
                  2, params, s_on_advanced);
}

static void s_result(steprun_t *run)
{
    slot_t *s = (slot_t *)run;
    ProtobufCMessage *payload = &s->result->base;
    s->result = NULL;
    replobj_finish(&s->pub.obj, payload, NULL);
}

static const steprun_fn s_stages[] = {
    PUBLICATION_STAGES, s_lookup, s_advance, s_result, NULL,
};

/* ---- lifetime ----------------------------------------------------------- */

static void s_release(steprun_t *run)
{
    slot_t *s = (slot_t *)run;
    publication_clear(&s->pub);
    if (s->result)
        godwit__ensure_slot_result__free_unpacked(s->result, NULL);
    free(s);
}

step_t *slot_ensure_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__EnsureSlot *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    slot_t *s = (slot_t *)publication_new(sizeof *s, loop, local, req->database, s_stages,
                                          "publication and slot", req->name, req->tables,
                                          req->n_tables, s_release, done, arg);
    if (!s)
        return NULL;
    s->advance_to = req->advance_to;
    s->result = xmalloc(sizeof *s->result);
    godwit__ensure_slot_result__init(s->result);
    return &s->pub.obj.run.base;
}
