/*
 * migration: see migration.h. The table s_states below is the state
 * machine: for each state, which side runs its step, how to build the
 * command, and where success leads. Owns every migration, its plan copy and
 * its latest copy status. Never blocks: steps are agent commands.
 */
#include "migration.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lsn.h"
#include "planwire.h"
#include "cutgate.h"
#include "cutover.h"
#include "units.h"
#include "wire.h"
#include "verify.h"
#include "xalloc.h"

typedef enum {
    M_SCHEMA = 0,
    M_PUBLISH,
    M_COPY,
    M_CATCHUP,
    M_POSTDATA,
    M_STREAMING,
    M_ABORT_TARGET,
    M_ABORT_SOURCE,
    M_PROTECT_SOURCE,
    M_PROTECT_TARGET,
    M_PAUSING,
    M_PAUSED,
    M_RESUMING,
    M_ABORTED,
    M_SWITCHED,
    M_CLEANUP_SOURCE,
    M_CLEANUP_TARGET,
    M_DONE,
    M_UNFOLLOW_TARGET,
    M_UNFOLLOW_SOURCE,
    M_ROLES,
    M__COUNT
} mstate_t;

typedef struct mig mig_t;

#define S_CATCHUP_LAG_BYTES (16u << 20) /* catchup ends once the slot is this close */
#define S_PROGRESS_MS 1000              /* copy progress polls */

struct mig {
    migset_t *set;
    plan_t plan;             /* one migration, loaded from its journaled JSON */
    plan_migration_t *m;     /* plan_at(&plan, 0) */
    char objname[64];        /* godwit_<name>: publication, subscription, slot */
    char revname[64];        /* godwit_<name>_rev: the same, green to blue (cutover.h) */
    char verifyname[72];     /* godwit_<name>_verify: verify's slot on the source, which lives
                                for a fraction of a second per batch (agent/verify_table.c) */
    uint64_t vslot_seen_mono; /* since when the source reports a verify slot no verify uses */
    bool vslot_busy;         /* dropping it */
    mstate_t state;
    bool busy;               /* a step's command is in flight */
    uint64_t gen;            /* bumped per send and per forced move: older results are stale */
    uint64_t next_try_mono;
    unsigned attempts;
    char *last_error;
    uint64_t state_since_ms;
    Godwit__SyncStatusResult *sync; /* latest copy status, owned */
    bool progress_busy;      /* copy: a BulkCopyStatus poll is in flight */
    uint64_t next_progress_mono;
    /* copy: progress for rate and ETA (s_copy_progress) */
    uint64_t copy_done, copy_total, copy_sample_bytes, copy_sample_mono;
    double copy_rate;        /* bytes/s, smoothed; 0 until two samples */
    char *stopped_because;   /* why protection stopped it, if it did */
    verify_t *verify;        /* a verify run in progress, owned */
    char *repl_error;        /* the last replication error from the target's log, owned */
    uint64_t repl_error_at_ms;
    unsigned repl_error_repeats;
    cJSON *verify_last;      /* the last finished verify report, owned (from the journal) */
    cutover_t *cutover;      /* a cutover in progress, owned */
    cJSON *cutover_last;     /* the last finished cutover report, owned (from the journal) */
    mig_t *next;
};

/* The callback argument of one sent step: which migration, which send. */
typedef struct {
    mig_t *g;
    uint64_t gen;
} step_token_t;

struct migset {
    const agentlink_t *link;
    journal_t *journal;
    mig_t *migs;    /* in start order */
    mig_t *retired; /* replaced aborted ones: a stale result may still name them */
    migset_move_cb on_move;
    void *on_move_arg;
};

typedef void (*send_fn)(mig_t *g, Godwit__Command *cmd);

static void s_send_roles(mig_t *g, Godwit__Command *cmd);
static void s_send_schema_pre(mig_t *g, Godwit__Command *cmd);
static void s_send_publish(mig_t *g, Godwit__Command *cmd);
static void s_send_copy(mig_t *g, Godwit__Command *cmd);
static void s_send_sync(mig_t *g, Godwit__Command *cmd);
static void s_send_schema_post(mig_t *g, Godwit__Command *cmd);
static void s_send_drop_target(mig_t *g, Godwit__Command *cmd);
static void s_send_drop_source(mig_t *g, Godwit__Command *cmd);
static void s_send_disable(mig_t *g, Godwit__Command *cmd);
static void s_send_enable(mig_t *g, Godwit__Command *cmd);
static void s_send_unfollow_target(mig_t *g, Godwit__Command *cmd);
static void s_send_unfollow_source(mig_t *g, Godwit__Command *cmd);

/* The states and their steps. `poll_ms` > 0: the step is a status poll
 * that repeats until its condition holds (catchup: every table ready and the
 * slot close) or forever (streaming); otherwise its success is the event
 * MEV_DONE at once. Where each event leads is s_rows. */
static const struct {
    mstate_t state;
    const char *name;
    bool on_target;         /* which agent runs the step */
    send_fn send;
    uint64_t timeout_ms;
    uint64_t poll_ms;
    const char *comment;
} s_states[M__COUNT] = {
    { M_SCHEMA, "schema", true, s_send_schema_pre, 30 * 60000, 0,
      "pre-data schema, primary keys and replica identities on the target" },
    { M_PUBLISH, "publish", false, s_send_publish, 60000, 0,
      "our publication on the source" },
    { M_COPY, "copy", true, s_send_copy, 24 * 3600000, 0,
      "our slot on the source, every table copied in its snapshot by parallel workers, then "
      "our subscription on that slot" },
    { M_CATCHUP, "catchup", true, s_send_sync, 30000, 250,
      "waiting until the subscription has applied what was written during the copy" },
    { M_POSTDATA, "postdata", true, s_send_schema_post, 4 * 3600000, 0,
      "secondary indexes, foreign keys, triggers on the target" },
    { M_STREAMING, "streaming", true, s_send_sync, 30000, 2000,
      "following the source until cutover" },
    { M_ABORT_TARGET, "abort_target", true, s_send_drop_target, 120000, 0,
      "dropping our subscription on the target" },
    { M_ABORT_SOURCE, "abort_source", false, s_send_drop_source, 120000, 0,
      "dropping our publication and slot on the source" },
    { M_PROTECT_SOURCE, "protect_source", false, s_send_drop_source, 60000, 0,
      "protecting the source: dropping our slot and publication there first" },
    { M_PROTECT_TARGET, "protect_target", true, s_send_drop_target, 120000, 0,
      "protecting the source: dropping our subscription on the target" },
    { M_PAUSING, "pausing", true, s_send_disable, 60000, 0,
      "disabling our subscription on the target" },
    { M_PAUSED, "paused", false, NULL, 0, 0,
      "paused by the operator; the slot keeps WAL on the source, protection stays on" },
    { M_RESUMING, "resuming", true, s_send_enable, 60000, 0,
      "enabling our subscription on the target, then waiting for it to catch up" },
    { M_ABORTED, "aborted", false, NULL, 0, 0,
      "nothing of ours is left" },
    { M_SWITCHED, "switched", false, NULL, 0, 0,
      "cut over: traffic goes to green; blue is fenced and follows green (unless "
      "cutover.reverse is off), ready for a rollback" },
    { M_CLEANUP_SOURCE, "cleanup_source", false, s_send_drop_source, 120000, 0,
      "cleanup: dropping our subscription, publication and slot on blue" },
    { M_CLEANUP_TARGET, "cleanup_target", true, s_send_drop_target, 120000, 0,
      "cleanup: dropping our subscription, publication and slot on green" },
    { M_DONE, "done", false, NULL, 0, 0,
      "done: traffic goes to green; blue stays fenced and follows nothing; nothing of ours is "
      "left on either side" },
    { M_UNFOLLOW_TARGET, "unfollow_target", true, s_send_unfollow_target, 60000, 0,
      "protecting green: dropping its slot for blue first (no rollback then)" },
    { M_UNFOLLOW_SOURCE, "unfollow_source", false, s_send_unfollow_source, 120000, 0,
      "protecting green: dropping blue's subscription to green" },
    { M_ROLES, "roles", true, s_send_roles, 10 * 60000, 0,
      "the roles the database needs on the target, and its owner and privileges" },
};

static const char *s_name(mstate_t s) { return s < M__COUNT ? s_states[s].name : "?"; }

/* What moves a migration from one state to another. */
typedef enum {
    MEV_DONE = 0,      /* the state's step succeeded (a poll: its condition holds) */
    MEV_ABORT,         /* the operator's abort */
    MEV_PAUSE,         /* the operator's pause */
    MEV_RESUME,        /* the operator's resume */
    MEV_PROTECT,       /* our slot puts the source at risk */
    MEV_PROTECT_GREEN, /* after the cutover, green's slot for blue puts green at risk */
    MEV_SWITCHED,      /* a cutover ended with traffic on green */
    MEV_ROLLED_BACK,   /* a rollback ended with traffic on blue */
    MEV_CLEANUP,       /* the operator's cleanup after a cutover */
    MEV__COUNT
} mevent_t;

static const char *const s_event_names[MEV__COUNT] = {
    "done", "abort", "pause", "resume", "protect", "protect_green", "switched", "rolled_back",
    "cleanup",
};

/* The transitions: every move a migration makes is one row; an event with
 * no row for the current state is refused (the caller says why to the
 * operator). A row whose `to` is its `from` accepts the event without a
 * move (asked again while it is already under way). Entering a state
 * starts its step (s_states). */
static const struct {
    mstate_t from;
    mevent_t event;
    mstate_t to;
    const char *why;
} s_rows[] = {
    { M_ROLES, MEV_DONE, M_SCHEMA, "the roles exist on the target" },
    { M_SCHEMA, MEV_DONE, M_PUBLISH, "the pre-data schema is on the target" },
    { M_PUBLISH, MEV_DONE, M_COPY, "our publication is on the source" },
    { M_COPY, MEV_DONE, M_CATCHUP, "every table is copied; our subscription exists" },
    { M_CATCHUP, MEV_DONE, M_POSTDATA, "every table is ready and the slot is close" },
    { M_POSTDATA, MEV_DONE, M_STREAMING, "the post-data schema is on the target" },
    { M_ABORT_TARGET, MEV_DONE, M_ABORT_SOURCE, "our subscription is gone from the target" },
    { M_ABORT_SOURCE, MEV_DONE, M_ABORTED, "our publication and slot are gone from the source" },
    { M_PROTECT_SOURCE, MEV_DONE, M_PROTECT_TARGET, "our slot is gone from the source" },
    { M_PROTECT_TARGET, MEV_DONE, M_ABORTED, "our subscription is gone from the target" },
    { M_PAUSING, MEV_DONE, M_PAUSED, "our subscription is disabled" },
    { M_RESUMING, MEV_DONE, M_CATCHUP, "our subscription is enabled" },
    { M_CLEANUP_SOURCE, MEV_DONE, M_CLEANUP_TARGET, "nothing of ours is left on blue" },
    { M_CLEANUP_TARGET, MEV_DONE, M_DONE, "nothing of ours is left on green" },
    { M_UNFOLLOW_TARGET, MEV_DONE, M_UNFOLLOW_SOURCE, "green's slot for blue is gone" },
    { M_UNFOLLOW_SOURCE, MEV_DONE, M_SWITCHED, "blue follows green no more" },

    { M_ROLES, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_SCHEMA, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PUBLISH, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_COPY, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_CATCHUP, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_POSTDATA, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_STREAMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PAUSING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_PAUSED, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_RESUMING, MEV_ABORT, M_ABORT_TARGET, "abort before the cutover" },
    { M_ABORT_TARGET, MEV_ABORT, M_ABORT_TARGET, "already aborting" },
    { M_ABORT_SOURCE, MEV_ABORT, M_ABORT_SOURCE, "already aborting" },
    { M_PROTECT_SOURCE, MEV_ABORT, M_PROTECT_SOURCE, "already stopping" },
    { M_PROTECT_TARGET, MEV_ABORT, M_PROTECT_TARGET, "already stopping" },

    { M_CATCHUP, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_POSTDATA, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_STREAMING, MEV_PAUSE, M_PAUSING, "pause once the subscription exists" },
    { M_PAUSING, MEV_PAUSE, M_PAUSING, "already pausing" },
    { M_PAUSED, MEV_PAUSE, M_PAUSED, "already paused" },
    { M_PAUSED, MEV_RESUME, M_RESUMING, "resume a paused migration" },
    { M_PAUSING, MEV_RESUME, M_RESUMING, "resume a migration being paused" },
    { M_RESUMING, MEV_RESUME, M_RESUMING, "already resuming" },

    { M_COPY, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_CATCHUP, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_POSTDATA, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_STREAMING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_PAUSING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_PAUSED, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_RESUMING, MEV_PROTECT, M_PROTECT_SOURCE, "our slot exists: drop it first" },
    { M_SWITCHED, MEV_PROTECT_GREEN, M_UNFOLLOW_TARGET, "green's slot for blue: drop it first" },

    { M_STREAMING, MEV_SWITCHED, M_SWITCHED, "the cutover switched traffic to green" },
    { M_SWITCHED, MEV_ROLLED_BACK, M_STREAMING, "the rollback switched traffic to blue" },
    { M_SWITCHED, MEV_CLEANUP, M_CLEANUP_SOURCE, "cleanup after the cutover" },
    { M_CLEANUP_SOURCE, MEV_CLEANUP, M_CLEANUP_SOURCE, "already cleaning up" },
    { M_CLEANUP_TARGET, MEV_CLEANUP, M_CLEANUP_TARGET, "already cleaning up" },
    { M_DONE, MEV_CLEANUP, M_DONE, "already cleaned up" },
};

#define S_NROWS (sizeof s_rows / sizeof s_rows[0])

/* The row for event in state from, or -1. */
static int s_row(mstate_t from, mevent_t event)
{
    for (size_t i = 0; i < S_NROWS; i++)
        if (s_rows[i].from == from && s_rows[i].event == event)
            return (int)i;
    return -1;
}

size_t migration_rows(void) { return S_NROWS; }

bool migration_row(size_t i, const char **from, const char **event, const char **to)
{
    if (i >= S_NROWS)
        return false;
    *from = s_name(s_rows[i].from);
    *event = s_event_names[s_rows[i].event];
    *to = s_name(s_rows[i].to);
    return true;
}

static bool s_state_parse(const char *name, mstate_t *out)
{
    for (int i = 0; i < M__COUNT; i++) {
        if (strcmp(s_states[i].name, name) == 0) {
            *out = (mstate_t)i;
            return true;
        }
    }
    return false;
}

/* ---- building commands (borrowed pointers into the plan, valid while the
 * command is packed inside the link's send) ---- */

static void s_send_and_free(mig_t *g, Godwit__Command *cmd, planwire_tables_t *tables);

static void s_send_schema(mig_t *g, Godwit__Command *cmd, const char *section)
{
    Godwit__ReplicationConn rc = planwire_forward(g->m);
    planwire_tables_t tables;
    planwire_tables_borrow(&tables, g->m);
    Godwit__ApplySchema as = GODWIT__APPLY_SCHEMA__INIT;
    as.database = g->m->target.database;
    as.source = &rc;
    as.n_tables = g->m->n_tables;
    as.tables = tables.ptrs;
    as.section = (char *)section;
    cmd->action_case = GODWIT__COMMAND__ACTION_APPLY_SCHEMA;
    cmd->apply_schema = &as;
    s_send_and_free(g, cmd, &tables);
}

static void s_send_schema_pre(mig_t *g, Godwit__Command *cmd) { s_send_schema(g, cmd, "pre"); }

static void s_send_roles(mig_t *g, Godwit__Command *cmd)
{
    Godwit__ReplicationConn rc = planwire_forward(g->m);
    Godwit__ApplyRoles ar = GODWIT__APPLY_ROLES__INIT;
    ar.database = g->m->target.database;
    ar.source = &rc;
    ar.n_app_roles = g->m->cutover.app_roles.count;
    ar.app_roles = g->m->cutover.app_roles.items;
    ar.passwords = g->m->roles.passwords;
    cmd->action_case = GODWIT__COMMAND__ACTION_APPLY_ROLES;
    cmd->apply_roles = &ar;
    s_send_and_free(g, cmd, NULL);
}
static void s_send_schema_post(mig_t *g, Godwit__Command *cmd) { s_send_schema(g, cmd, "post"); }

static void s_send_publish(mig_t *g, Godwit__Command *cmd)
{
    planwire_tables_t tables;
    planwire_tables_borrow(&tables, g->m);
    Godwit__EnsurePublication ep = GODWIT__ENSURE_PUBLICATION__INIT;
    ep.database = g->m->source.database;
    ep.name = g->objname;
    ep.n_tables = g->m->n_tables;
    ep.tables = tables.ptrs;
    cmd->action_case = GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION;
    cmd->ensure_publication = &ep;
    s_send_and_free(g, cmd, &tables);
}

static void s_send_copy(mig_t *g, Godwit__Command *cmd)
{
    Godwit__ReplicationConn rc = planwire_forward(g->m);
    Godwit__BulkCopy bc = GODWIT__BULK_COPY__INIT;
    bc.database = g->m->target.database;
    bc.name = g->objname;
    bc.source = &rc;
    bc.publication = g->objname;
    bc.parallelism = (uint32_t)g->m->options.parallelism;
    cmd->action_case = GODWIT__COMMAND__ACTION_BULK_COPY;
    cmd->bulk_copy = &bc;
    s_send_and_free(g, cmd, NULL);
}

static void s_send_sync(mig_t *g, Godwit__Command *cmd)
{
    Godwit__SyncStatus ss = GODWIT__SYNC_STATUS__INIT;
    ss.database = g->m->target.database;
    ss.subscription = g->objname;
    cmd->action_case = GODWIT__COMMAND__ACTION_SYNC_STATUS;
    cmd->sync_status = &ss;
    s_send_and_free(g, cmd, NULL);
}

/* DropObjects on one side (target: green), each name NULL for none; on
 * the source (blue) the verify slot goes too whenever our slot does. */
static void s_send_drop(mig_t *g, Godwit__Command *cmd, bool target, const char *subscription,
                        const char *publication, const char *slot)
{
    Godwit__DropObjects d = GODWIT__DROP_OBJECTS__INIT;
    d.database = target ? g->m->target.database : g->m->source.database;
    d.subscription = (char *)(subscription ? subscription : "");
    d.publication = (char *)(publication ? publication : "");
    d.slot = (char *)(slot ? slot : "");
    d.verify_slot = (char *)(!target && slot && strcmp(slot, g->objname) == 0 ? g->verifyname : "");
    cmd->action_case = GODWIT__COMMAND__ACTION_DROP_OBJECTS;
    cmd->drop_objects = &d;
    s_send_and_free(g, cmd, NULL);
}

/* Our objects on one side: the subscription from the other side, the
 * publication and slot for it. On green: objname's subscription, revname's
 * publication and slot (left by a cutover that aborted, a rollback, or made
 * for reverse replication); on blue the other way round. */
static void s_send_drop_side(mig_t *g, Godwit__Command *cmd, bool target)
{
    const char *sub = target ? g->objname : g->revname, *pub = target ? g->revname : g->objname;
    s_send_drop(g, cmd, target, sub, pub, pub);
}

static void s_send_drop_target(mig_t *g, Godwit__Command *cmd) { s_send_drop_side(g, cmd, true); }
static void s_send_drop_source(mig_t *g, Godwit__Command *cmd) { s_send_drop_side(g, cmd, false); }

/* Protection after the cutover: green's slot for blue, then blue's
 * subscription (which cannot reach its slot any more: detached, then
 * dropped). */
static void s_send_unfollow_target(mig_t *g, Godwit__Command *cmd)
{
    s_send_drop(g, cmd, true, NULL, NULL, g->revname);
}

static void s_send_unfollow_source(mig_t *g, Godwit__Command *cmd)
{
    s_send_drop(g, cmd, false, g->revname, NULL, NULL);
}

static void s_send_enabled(mig_t *g, Godwit__Command *cmd, bool enabled)
{
    Godwit__SetSubscriptionEnabled se = GODWIT__SET_SUBSCRIPTION_ENABLED__INIT;
    se.database = g->m->target.database;
    se.name = g->objname;
    se.enabled = enabled;
    cmd->action_case = GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED;
    cmd->set_subscription_enabled = &se;
    s_send_and_free(g, cmd, NULL);
}

static void s_send_disable(mig_t *g, Godwit__Command *cmd) { s_send_enabled(g, cmd, false); }
static void s_send_enable(mig_t *g, Godwit__Command *cmd) { s_send_enabled(g, cmd, true); }

/* ---- running steps ---- */

static void s_set_error(mig_t *g, const char *error)
{
    free(g->last_error);
    g->last_error = error ? xstrdup(error) : NULL;
}

/* What s_fire did. */
typedef enum {
    FIRE_MOVED,   /* to the row's state, journaled; its step starts on the next tick */
    FIRE_STAYS,   /* the row keeps the state: the event is already under way */
    FIRE_NO_ROW,  /* the event does not apply in this state: nothing changed */
    FIRE_JOURNAL, /* the journal refused the move: nothing changed (logged) */
} fire_t;

/* The one place a migration changes state: the row for event in g's
 * state, journaled, then logged as "from X to Y on EVENT (why): detail".
 * Whatever step was in flight is left (its result will be stale). */
static fire_t s_fire(mig_t *g, mevent_t event, const char *detail)
{
    int i = s_row(g->state, event);
    if (i < 0)
        return FIRE_NO_ROW;
    mstate_t to = s_rows[i].to;
    if (to == g->state) {
        if (g->set->on_move)
            g->set->on_move(g->m->name, s_name(to), s_event_names[event], s_name(to),
                            g->set->on_move_arg);
        return FIRE_STAYS;
    }
    char err[512];
    if (!journal_migration_move(g->set->journal, g->m->name, s_name(g->state), s_name(to), detail,
                                err, sizeof err)) {
        log_error("migration %s: %s", g->m->name, err);
        return FIRE_JOURNAL;
    }
    log_info("migration %s: from %s to %s on %s (%s): %s", g->m->name, s_name(g->state),
             s_name(to), s_event_names[event], s_rows[i].why, detail);
    if (g->set->on_move)
        g->set->on_move(g->m->name, s_name(g->state), s_event_names[event], s_name(to),
                        g->set->on_move_arg);
    g->state = to;
    g->state_since_ms = agentlink_now_ms(g->set->link);
    g->attempts = 0;
    s_set_error(g, NULL);
    g->next_try_mono = 0;
    g->busy = false;
    g->gen++;
    return FIRE_MOVED;
}

/* The slot called name in an agent's report (borrowed from rep), or NULL:
 * no report, no PostgreSQL figures in it, or no such slot. */
static const Godwit__Slot *s_report_slot(const Godwit__Report *rep, const char *name)
{
    for (size_t i = 0; rep && rep->postgres && i < rep->postgres->n_slots; i++)
        if (strcmp(rep->postgres->slots[i]->name, name) == 0)
            return rep->postgres->slots[i];
    return NULL;
}

/* How far our slot's confirmed position is behind the source's WAL, from
 * the source agent's latest report; false if the report has no such slot. */
static bool s_lag_bytes(mig_t *g, uint64_t *lag)
{
    const Godwit__Report *rep = agentlink_report(g->set->link, g->m->source.agent);
    const Godwit__Slot *sl = s_report_slot(rep, g->objname);
    if (!sl || !sl->confirmed_flush_lsn)
        return false;
    *lag = lsn_diff(rep->postgres->current_lsn, sl->confirmed_flush_lsn);
    return true;
}

/* The answer to a copy progress poll: the running copy's tables. */
/* The copy's progress from the latest status: each table counts its size
 * on the source once copied, else what was copied of it so far (COPY bytes
 * stand in for table bytes: an estimate); the rate is smoothed over the
 * polls. */
static void s_copy_progress(mig_t *g)
{
    uint64_t done = 0, total = 0;
    for (size_t i = 0; g->sync && i < g->sync->n_tables; i++) {
        const Godwit__TableSync *t = g->sync->tables[i];
        total += t->bytes_total;
        bool finished = strcmp(t->state, "copied") == 0 || strcmp(t->state, "ready") == 0;
        done += finished ? t->bytes_total
                         : (t->bytes_done < t->bytes_total ? t->bytes_done : t->bytes_total);
    }
    uint64_t now = agentlink_mono_ms(g->set->link);
    if (g->copy_sample_mono && now > g->copy_sample_mono && done >= g->copy_sample_bytes) {
        double r = (double)(done - g->copy_sample_bytes) * 1000.0 / (double)(now - g->copy_sample_mono);
        g->copy_rate = g->copy_rate > 0 ? 0.7 * g->copy_rate + 0.3 * r : r;
    }
    g->copy_sample_bytes = done;
    g->copy_sample_mono = now;
    g->copy_done = done;
    g->copy_total = total;
}

static void s_progress_done(const char *agent, const Godwit__Result *r,
                            const char *error, void *arg)
{
    step_token_t *tok = arg;
    mig_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    free(tok);
    g->progress_busy = false;
    if (stale || g->state != M_COPY || !r || r->status != GODWIT__STATUS__STATUS_OK ||
        r->payload_case != GODWIT__RESULT__PAYLOAD_SYNC_STATUS || !r->sync_status->exists)
        return;
    if (g->sync)
        godwit__sync_status_result__free_unpacked(g->sync, NULL);
    g->sync = wire_copy(r->sync_status);
    s_copy_progress(g);
}

/* While the copy runs (its command in flight), asks the target how it
 * stands, every S_PROGRESS_MS. */
static void s_progress_poll(mig_t *g, uint64_t now)
{
    if (g->state != M_COPY || !g->busy || g->progress_busy || now < g->next_progress_mono)
        return;
    g->next_progress_mono = now + S_PROGRESS_MS;
    g->progress_busy = true;
    Godwit__BulkCopyStatus q = GODWIT__BULK_COPY_STATUS__INIT;
    q.database = g->m->target.database;
    q.name = g->objname;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_BULK_COPY_STATUS;
    cmd.bulk_copy_status = &q;
    step_token_t *tok = xmalloc(sizeof *tok);
    tok->g = g;
    tok->gen = g->gen;
    agentlink_send(g->set->link, g->m->target.agent, &cmd, S_PROGRESS_MS * 5,
                       s_progress_done, tok);
}

static void s_step_done(const char *agent, const Godwit__Result *r, const char *error,
                        void *arg)
{
    step_token_t *tok = arg;
    mig_t *g = tok->g;
    bool stale = tok->gen != g->gen;
    free(tok);
    if (stale)
        return; /* a forced move (abort, protection) left the state it was for */
    g->busy = false;
    mstate_t st = g->state;
    uint64_t now = agentlink_mono_ms(g->set->link);
    char msg[640];
    if (!r || r->status != GODWIT__STATUS__STATUS_OK) {
        snprintf(msg, sizeof msg, "%s step on %s failed: %s", s_name(st), agent,
                 r ? (r->message[0] ? r->message : "no reason given") : error);
        g->attempts++;
        uint64_t backoff = 1000u << (g->attempts < 5 ? g->attempts : 5);
        g->next_try_mono = now + backoff;
        if (!g->last_error || strcmp(g->last_error, msg) != 0)
            journal_event(g->set->journal, g->m->name, s_name(st), "failed", msg);
        log_warn("migration %s: %s (attempt %u, next in %" PRIu64 " ms)", g->m->name, msg,
                 g->attempts, backoff);
        s_set_error(g, msg);
        return;
    }
    if (s_states[st].poll_ms) {
        if (r->payload_case == GODWIT__RESULT__PAYLOAD_SYNC_STATUS) {
            if (g->sync)
                godwit__sync_status_result__free_unpacked(g->sync, NULL);
            g->sync = wire_copy(r->sync_status);
        }
        g->next_try_mono = now + s_states[st].poll_ms;
        if (!g->sync || !g->sync->exists) {
            s_set_error(g, "the subscription is missing on the target");
            return;
        }
        if (g->sync->apply_error_count || g->sync->sync_error_count) {
            snprintf(msg, sizeof msg, "the target reports %" PRIu64 " apply and %" PRIu64
                     " copy errors (see its PostgreSQL log)",
                     g->sync->apply_error_count, g->sync->sync_error_count);
            s_set_error(g, msg);
        } else {
            s_set_error(g, NULL);
        }
        uint64_t lag = 0;
        if (st == M_CATCHUP && g->sync->all_ready && s_lag_bytes(g, &lag) &&
            lag < S_CATCHUP_LAG_BYTES) {
            snprintf(msg, sizeof msg, "%zu tables ready, %" PRIu64 " bytes behind the source",
                     g->sync->n_tables, lag);
            s_fire(g, MEV_DONE, msg);
        }
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_BULK_COPY) {
        const Godwit__BulkCopyResult *bc = r->bulk_copy;
        if (bc->copied) {
            if (g->sync)
                godwit__sync_status_result__free_unpacked(g->sync, NULL);
            g->sync = wire_copy(bc->copied);
        }
        if (bc->already_done)
            snprintf(msg, sizeof msg, "the copy was found done already (our subscription exists)");
        else
            snprintf(msg, sizeof msg, "%zu tables copied; streaming from %s",
                     bc->copied ? bc->copied->n_tables : 0, bc->consistent_point);
        s_fire(g, MEV_DONE, msg);
        return;
    }
    if (r->payload_case == GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA) {
        snprintf(msg, sizeof msg, "%s: %s", s_states[st].comment,
                 r->apply_schema->already_done ? "found done already" : "applied");
    } else if (r->payload_case == GODWIT__RESULT__PAYLOAD_APPLY_ROLES) {
        const Godwit__ApplyRolesResult *ar = r->apply_roles;
        if (ar->already_done)
            snprintf(msg, sizeof msg, "%s: found done already (every role exists)",
                     s_states[st].comment);
        else
            snprintf(msg, sizeof msg, "%s: %zu role(s) created, %u membership(s), %u setting(s), "
                     "%u password(s), %u change(s) to the database", s_states[st].comment,
                     ar->n_created, ar->memberships, ar->settings, ar->passwords,
                     ar->database_changes);
        if (ar->superusers)
            log_warn("migration %s: %u role(s) that are superusers on the source were created "
                     "without SUPERUSER on the target; verify reports them", g->m->name,
                     ar->superusers);
    } else {
        snprintf(msg, sizeof msg, "%s: done", s_states[st].comment);
    }
    s_fire(g, MEV_DONE, msg);
}

static void s_send_and_free(mig_t *g, Godwit__Command *cmd, planwire_tables_t *tables)
{
    const char *agent = s_states[g->state].on_target ? g->m->target.agent : g->m->source.agent;
    g->busy = true;
    step_token_t *tok = xmalloc(sizeof *tok);
    tok->g = g;
    tok->gen = ++g->gen;
    agentlink_send(g->set->link, agent, cmd, s_states[g->state].timeout_ms, s_step_done, tok);
    if (tables)
        planwire_tables_free(tables);
}

static void s_run(mig_t *g)
{
    if (!s_states[g->state].send)
        return;
    if (!s_states[g->state].poll_ms)
        journal_event(g->set->journal, g->m->name, s_name(g->state), "intent",
                      s_states[g->state].comment);
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    s_states[g->state].send(g, &cmd);
}


bool migration_source_at_risk(const Godwit__Report *rep, const char *slot, int64_t slot_limit,
                              int64_t disk_floor, uint64_t now_ms, char *why, size_t whylen)
{
    if (!rep)
        return false;
    if (disk_floor > 0 && rep->disk && rep->disk->ok &&
        rep->disk->free_bytes < (uint64_t)disk_floor) {
        char a[32], b[32];
        snprintf(why, whylen, "the source's free disk (%s) is below source_disk_floor (%s)",
                 units_fmt_bytes(rep->disk->free_bytes, a, sizeof a),
                 units_fmt_bytes((uint64_t)disk_floor, b, sizeof b));
        return true;
    }
    const Godwit__Slot *s = s_report_slot(rep, slot);
    if (slot_limit > 0 && s) {
        /* The figures are as old as their reading, reports come once per
         * interval, and dropping the slot takes a round trip: act on where
         * the slot will be three intervals after the reading at the current
         * WAL rate, not where it was. The age is clamped to [0, 10 s] since
         * it crosses two hosts' clocks. */
        double interval_s = rep->interval_ms ? rep->interval_ms / 1000.0 : 1.0;
        double age_s = 0;
        if (rep->postgres->collected_at_ms && now_ms > rep->postgres->collected_at_ms)
            age_s = (double)(now_ms - rep->postgres->collected_at_ms) / 1000.0;
        if (age_s > 10)
            age_s = 10;
        double rate = rep->postgres->has_wal_rate && rep->postgres->wal_bytes_per_sec > 0
                          ? rep->postgres->wal_bytes_per_sec
                          : 0;
        double projected = (double)s->retained_bytes + (3.0 * interval_s + age_s) * rate;
        if (projected >= (double)slot_limit) {
            char a[32], b[32], c[32];
            snprintf(why, whylen,
                     "slot %s retains %s of WAL on the source and, at %s/s, would pass "
                     "slot_wal_limit (%s) within three reports",
                     slot, units_fmt_bytes(s->retained_bytes, a, sizeof a),
                     units_fmt_bytes((uint64_t)rate, b, sizeof b),
                     units_fmt_bytes((uint64_t)slot_limit, c, sizeof c));
            return true;
        }
    }
    return false;
}

/* States in which our slot exists on the source: those protection leaves. */
static bool s_slot_may_exist(mstate_t s) { return s_row(s, MEV_PROTECT) >= 0; }

/* After the cutover green is blue's source: the same limits protect green
 * from its slot for blue (while it exists). */
static void s_protect_green(migset_t *ms, mig_t *g)
{
    const plan_migration_t *m = g->m;
    const Godwit__Report *rep = agentlink_report(ms->link, m->target.agent);
    bool has_slot = s_report_slot(rep, g->revname) != NULL;
    char why[512];
    if (!has_slot || g->cutover ||
        !migration_source_at_risk(rep, g->revname, m->options.slot_wal_limit_bytes,
                                  m->options.source_disk_floor_bytes, agentlink_now_ms(ms->link), why,
                                  sizeof why))
        return;
    log_error("migration %s: protecting green from its slot for blue: %s; blue stops following "
              "green (no rollback without losing green's writes)", m->name, why);
    char detail[640];
    snprintf(detail, sizeof detail, "protecting green (blue's source after the cutover): %s", why);
    if (s_fire(g, MEV_PROTECT_GREEN, detail) == FIRE_MOVED) {
        free(g->stopped_because);
        g->stopped_because = xasprintf("blue stopped following green: on green, %s", why);
    }
}

static void s_protect(migset_t *ms, mig_t *g)
{
    const plan_migration_t *m = g->m;
    if (!m->options.slot_wal_limit_bytes && !m->options.source_disk_floor_bytes)
        return;
    if (g->state == M_SWITCHED) {
        s_protect_green(ms, g);
        return;
    }
    if (!s_slot_may_exist(g->state))
        return;
    char why[512];
    if (!migration_source_at_risk(agentlink_report(ms->link, m->source.agent), g->objname,
                                  m->options.slot_wal_limit_bytes,
                                  m->options.source_disk_floor_bytes, agentlink_now_ms(ms->link), why,
                                  sizeof why))
        return;
    log_error("migration %s: protecting the source: %s; dropping our slot now", m->name, why);
    char detail[600];
    snprintf(detail, sizeof detail, "source protection: %s", why);
    if (s_fire(g, MEV_PROTECT, detail) == FIRE_MOVED) {
        free(g->stopped_because);
        g->stopped_because = xstrdup(why);
    }
}

#define S_VSLOT_GRACE_MS 10000

static void s_vslot_done(const char *agent, const Godwit__Result *r, const char *error,
                         void *arg)
{
    mig_t *g = arg;
    g->vslot_busy = false;
    g->vslot_seen_mono = 0;
    if (!r || r->status != GODWIT__STATUS__STATUS_OK)
        log_warn("migration %s: dropping the verify slot %s left on %s failed: %s", g->m->name,
                 g->verifyname, agent, r ? r->message : error);
    else
        log_info("migration %s: the verify slot %s left on %s is dropped", g->m->name,
                 g->verifyname, agent);
}

/* A verify slot the source still reports S_VSLOT_GRACE_MS after no verify
 * runs was left by a target agent that died mid-verify: it would hold WAL
 * back for ever, so the source agent drops it. */
static void s_vslot_check(migset_t *ms, mig_t *g, uint64_t now)
{
    if (g->vslot_busy)
        return;
    const Godwit__Report *rep = agentlink_report(ms->link, g->m->source.agent);
    bool seen = s_report_slot(rep, g->verifyname) != NULL;
    if (!seen || g->verify || !s_slot_may_exist(g->state)) {
        g->vslot_seen_mono = 0;
        return;
    }
    if (!g->vslot_seen_mono) {
        g->vslot_seen_mono = now;
        return;
    }
    if (now - g->vslot_seen_mono < S_VSLOT_GRACE_MS)
        return;
    log_warn("migration %s: the verify slot %s is on the source and no verify runs: dropping it",
             g->m->name, g->verifyname);
    Godwit__DropObjects d = GODWIT__DROP_OBJECTS__INIT;
    d.database = g->m->source.database;
    d.verify_slot = g->verifyname;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_DROP_OBJECTS;
    cmd.drop_objects = &d;
    g->vslot_busy = true;
    agentlink_send(ms->link, g->m->source.agent, &cmd, 60000, s_vslot_done, g);
}

void migset_tick(migset_t *ms)
{
    uint64_t now = agentlink_mono_ms(ms->link);
    for (mig_t *g = ms->migs; g; g = g->next) {
        s_protect(ms, g);
        if (g->verify && g->state != M_STREAMING) {
            log_warn("migration %s: verify stopped: the migration is %s now", g->m->name,
                     s_name(g->state));
            verify_cancel(&g->verify);
        }
        verify_tick(g->verify);
        s_vslot_check(ms, g, now);
        cutover_tick(g->cutover);
        if (!g->busy && s_states[g->state].send && now >= g->next_try_mono)
            s_run(g);
        s_progress_poll(g, now);
    }
}

/* ---- the set ---- */

static mig_t *s_find(migset_t *ms, const char *name)
{
    for (mig_t *g = ms->migs; g; g = g->next)
        if (strcmp(g->m->name, name) == 0)
            return g;
    return NULL;
}

/* A migration from its journaled JSON; NULL (logged) if unreadable. */
static mig_t *s_mig_new(migset_t *ms, const char *label, const char *json, mstate_t state)
{
    mig_t *g = xcalloc(1, sizeof *g);
    char err[512];
    if (!plan_load_string(label, json, &g->plan, err, sizeof err)) {
        log_error("migration %s: cannot read its spec: %s", label, err);
        free(g);
        return NULL;
    }
    g->set = ms;
    g->m = plan_at(&g->plan, 0);
    snprintf(g->objname, sizeof g->objname, "godwit_%s", g->m->name);
    snprintf(g->revname, sizeof g->revname, "godwit_%s_rev", g->m->name);
    snprintf(g->verifyname, sizeof g->verifyname, "godwit_%s_verify", g->m->name);
    g->state = state;
    g->state_since_ms = agentlink_now_ms(ms->link);
    char *last = journal_last_event(ms->journal, g->m->name, "verify");
    if (last) {
        g->verify_last = cJSON_Parse(last);
        free(last);
    }
    last = journal_last_event(ms->journal, g->m->name, "cutover");
    if (last) {
        g->cutover_last = cJSON_Parse(last);
        free(last);
    }
    return g;
}

static void s_mig_free(mig_t *g)
{
    verify_cancel(&g->verify);
    cJSON_Delete(g->verify_last);
    cutover_cancel(&g->cutover);
    cJSON_Delete(g->cutover_last);
    free(g->repl_error);
    if (g->sync)
        godwit__sync_status_result__free_unpacked(g->sync, NULL);
    free(g->last_error);
    free(g->stopped_because);
    plan_free(&g->plan);
    free(g);
}

static void s_append(migset_t *ms, mig_t *g)
{
    mig_t **tail = &ms->migs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = g;
}

static void s_cutover_recover(migset_t *ms, mig_t *g);

static void s_load_one(const char *name, const char *spec, const char *state, void *arg)
{
    migset_t *ms = arg;
    mstate_t st;
    if (!s_state_parse(state, &st)) {
        log_error("migration %s: unknown state \"%s\" in the journal; left alone", name, state);
        return;
    }
    mig_t *g = s_mig_new(ms, name, spec, st);
    if (!g)
        return;
    s_append(ms, g);
    if (st != M_ABORTED)
        log_info("migration %s: resuming in %s", name, state);
    s_cutover_recover(ms, g);
}

migset_t *migset_new(const agentlink_t *link, journal_t *j)
{
    migset_t *ms = xcalloc(1, sizeof *ms);
    ms->link = link;
    ms->journal = j;
    journal_migrations(j, s_load_one, ms);
    return ms;
}

void migset_on_move(migset_t *ms, migset_move_cb cb, void *arg)
{
    ms->on_move = cb;
    ms->on_move_arg = arg;
}

void migset_destroy(migset_t **mp)
{
    migset_t *ms = *mp;
    if (!ms)
        return;
    *mp = NULL;
    while (ms->migs) {
        mig_t *g = ms->migs;
        ms->migs = g->next;
        s_mig_free(g);
    }
    while (ms->retired) {
        mig_t *g = ms->retired;
        ms->retired = g->next;
        s_mig_free(g);
    }
    free(ms);
}

bool migset_start(migset_t *ms, const plan_migration_t *m, char *err, size_t errlen)
{
    mig_t *old = s_find(ms, m->name);
    if (old && old->state != M_ABORTED) {
        snprintf(err, errlen, "migration %s is already %s", m->name, s_name(old->state));
        return false;
    }
    char *json = plan_migration_to_json(m);
    bool ok = journal_migration_create(ms->journal, m->name, json, s_name(M_ROLES), err, errlen);
    mig_t *g = ok ? s_mig_new(ms, m->name, json, M_ROLES) : NULL;
    free(json);
    if (!g) {
        if (ok)
            snprintf(err, errlen, "migration %s: cannot read back its spec", m->name);
        return false;
    }
    if (old) {
        for (mig_t **pp = &ms->migs; *pp; pp = &(*pp)->next) {
            if (*pp == old) {
                *pp = old->next;
                break;
            }
        }
        /* A stale result may still name the old one: keep it until the end. */
        old->next = ms->retired;
        ms->retired = old;
    }
    s_append(ms, g);
    log_info("migration %s: started (%s/%s on %s -> %s/%s on %s)", m->name, m->source.database,
             m->source.agent, m->source.agent, m->target.database, m->target.agent,
             m->target.agent);
    return true;
}

/* Why the operator's event does not apply to g in its state. */
static void s_refusal(const mig_t *g, mevent_t event, char *err, size_t errlen)
{
    const char *name = g->m->name, *st = s_name(g->state);
    switch (event) {
    case MEV_ABORT:
        if (g->state == M_ABORTED)
            snprintf(err, errlen, "migration %s is already aborted", name);
        else
            snprintf(err, errlen, "migration %s is %s: traffic has moved to green; abort "
                     "applies before the cutover (godwitctl rollback M moves it back, "
                     "godwitctl cleanup M drops our objects)", name, st);
        break;
    case MEV_PAUSE:
        snprintf(err, errlen,
                 "migration %s is %s: pause applies once the subscription exists (catchup, "
                 "postdata, streaming); before that, abort and start again", name, st);
        break;
    case MEV_RESUME:
        snprintf(err, errlen, "migration %s is %s, not paused", name, st);
        break;
    case MEV_CLEANUP:
        snprintf(err, errlen, "migration %s is %s: cleanup follows a cutover (switched); before "
                 "one, abort drops our objects", name, st);
        break;
    default:
        snprintf(err, errlen, "migration %s is %s: %s does not apply", name, st,
                 s_event_names[event]);
        break;
    }
}

/* The operator's event on the migration called name: true if it moved, or
 * if the event is already under way; false with err when there is no such
 * migration, a cutover runs (it finishes or rolls back on its own), the
 * event does not apply in its state, or the journal refused. */
static bool s_operator(migset_t *ms, const char *name, mevent_t event, const char *detail,
                       char *err, size_t errlen)
{
    mig_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return false;
    }
    int row = s_row(g->state, event);
    if (g->cutover && !(row >= 0 && s_rows[row].to == g->state)) {
        snprintf(err, errlen, "migration %s: a cutover is running; it finishes or rolls back on "
                 "its own", name);
        return false;
    }
    switch (s_fire(g, event, detail)) {
    case FIRE_MOVED:
    case FIRE_STAYS:
        return true;
    case FIRE_NO_ROW:
        s_refusal(g, event, err, errlen);
        return false;
    case FIRE_JOURNAL:
    default:
        snprintf(err, errlen, "migration %s: the journal refused the change", name);
        return false;
    }
}

bool migset_abort(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_ABORT, "abort requested by the operator", err, errlen);
}

bool migset_pause(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_PAUSE, "pause requested by the operator", err, errlen);
}

bool migset_resume(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_RESUME, "resume requested by the operator", err, errlen);
}

/* ---- cutover ---- */

static bool s_is_back(const cJSON *report)
{
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(report, "direction"));
    return d && strcmp(d, "back") == 0;
}

static void s_cutover_done(cJSON *report, bool switched, void *arg)
{
    mig_t *g = arg;
    g->cutover = NULL; /* it ends itself after done */
    cJSON_Delete(g->cutover_last);
    g->cutover_last = report;
    if (!switched)
        return;
    const char *follow = cJSON_GetStringValue(cJSON_GetObjectItem(report, "follow"));
    char detail[600];
    if (s_is_back(report)) {
        snprintf(detail, sizeof detail, "rolled back: traffic goes to blue; green follows blue: %s",
                 follow ? follow : "?");
        s_fire(g, MEV_ROLLED_BACK, detail);
    } else {
        snprintf(detail, sizeof detail, "cutover done: traffic goes to green; blue follows green: %s",
                 follow ? follow : "?");
        s_fire(g, MEV_SWITCHED, detail);
    }
}

/* A cutover the journal says was under way when the coordinator stopped:
 * finished or rolled back now. */
static void s_cutover_recover(migset_t *ms, mig_t *g)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(g->cutover_last, "state"));
    bool back = s_is_back(g->cutover_last);
    if (!state || g->state != (back ? M_SWITCHED : M_STREAMING) ||
        (strcmp(state, "started") != 0 && strcmp(state, "switching") != 0 &&
         strcmp(state, "aborting") != 0 && strcmp(state, "unfreezing") != 0))
        return;
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(g->cutover_last, "dry_run"));
    g->cutover = cutover_start(ms->link, ms->journal, g->m, g->objname, g->revname, back, dry,
                               g->cutover_last, g->verify_last, s_cutover_done, g);
}

/* The agent as the link shows it, for the gates. */
static cutgate_agent_t s_gate_agent(migset_t *ms, const char *agent)
{
    cutgate_agent_t a = {
        .name = agent,
        .connected = agentlink_role(ms->link, agent) != NULL,
        .rtt_ms = agentlink_rtt_ms(ms->link, agent),
        .report = agentlink_report(ms->link, agent),
        .report_age_ms = agentlink_report_age_ms(ms->link, agent),
    };
    return a;
}

/* The gates (cutgate.h) over what g and the link show now: false with why
 * when the cutover (back: the rollback) must not start. */
static bool s_cutover_gates(migset_t *ms, mig_t *g, bool back, char *why, size_t whylen)
{
    const plan_migration_t *m = g->m;
    size_t n = m->cutover.proxies.count;
    cutgate_agent_t *proxies = xcalloc(n ? n : 1, sizeof *proxies);
    for (size_t i = 0; i < n; i++)
        proxies[i] = s_gate_agent(ms, ((const plan_proxy_t *)m->cutover.proxies.items)[i].agent);
    const char *slot_name = back ? g->revname : g->objname;
    cutgate_view_t v = {
        .m = m,
        .back = back,
        .state = s_name(g->state),
        .verify_running = g->verify != NULL,
        .verify_last = g->verify_last,
        .has_sync = g->sync != NULL,
        .all_ready = g->sync && g->sync->all_ready,
        .repl_error = g->repl_error,
        .repl_error_at_ms = g->repl_error_at_ms,
        .now_ms = agentlink_now_ms(ms->link),
        .source = s_gate_agent(ms, m->source.agent),
        .target = s_gate_agent(ms, m->target.agent),
        .proxies = proxies,
        .slot_name = slot_name,
        .slot = s_report_slot(agentlink_report(ms->link, back ? m->target.agent : m->source.agent),
                              slot_name),
    };
    bool ok = cutgate_check(&v, why, whylen);
    free(proxies);
    return ok;
}

bool migset_cutover(migset_t *ms, const char *name, bool back, bool dry_run, bool *refused,
                    char *err, size_t errlen)
{
    *refused = false;
    mig_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return false;
    }
    if (g->cutover) {
        snprintf(err, errlen, "migration %s: a cutover is already running", name);
        return false;
    }
    char why[700];
    if (!s_cutover_gates(ms, g, back, why, sizeof why)) {
        snprintf(err, errlen, "migration %s: %s refused: %s", name, back ? "rollback" : "cutover",
                 why);
        *refused = true;
        return false;
    }
    g->cutover = cutover_start(ms->link, ms->journal, g->m, g->objname, g->revname, back,
                               dry_run, NULL, g->verify_last, s_cutover_done, g);
    return true;
}

bool migset_cleanup(migset_t *ms, const char *name, char *err, size_t errlen)
{
    return s_operator(ms, name, MEV_CLEANUP,
                      "cleanup requested by the operator: no rollback after this", err, errlen);
}

/* ---- replication errors ---- */

void migset_replication_error(migset_t *ms, const char *agent, const char *object,
                              const char *message)
{
    for (mig_t *g = ms->migs; g; g = g->next) {
        if (strcmp(g->objname, object) != 0 || strcmp(g->m->target.agent, agent) != 0)
            continue;
        g->repl_error_at_ms = agentlink_now_ms(ms->link);
        if (g->repl_error && strcmp(g->repl_error, message) == 0) {
            g->repl_error_repeats++;
            return;
        }
        free(g->repl_error);
        g->repl_error = xstrdup(message);
        g->repl_error_repeats = 1;
        log_error("migration %s: replication error on %s: %s", g->m->name, agent, message);
        journal_event(ms->journal, g->m->name, s_name(g->state), "replication_error", message);
        return;
    }
}

/* ---- verify ---- */

static void s_verify_done(cJSON *report, void *arg)
{
    mig_t *g = arg;
    g->verify = NULL; /* it ends itself after done */
    char *text = cJSON_PrintUnformatted(report);
    journal_event(g->set->journal, g->m->name, s_name(g->state), "verify", text);
    free(text);
    cJSON_Delete(g->verify_last);
    g->verify_last = report;
}

bool migset_verify(migset_t *ms, const char *name, char *err, size_t errlen)
{
    mig_t *g = s_find(ms, name);
    if (!g) {
        snprintf(err, errlen, "no migration named %s", name);
        return false;
    }
    if (g->verify)
        return true;
    if (g->vslot_busy) {
        snprintf(err, errlen, "migration %s: a verify slot left on the source is being dropped; "
                 "try again in a few seconds", name);
        return false;
    }
    if (g->state != M_STREAMING) {
        snprintf(err, errlen, "migration %s is %s: verify compares a streaming migration", name,
                 s_name(g->state));
        return false;
    }
    if (!g->sync || g->sync->n_tables == 0) {
        snprintf(err, errlen, "migration %s: the target has not reported its tables yet; try "
                 "again in a few seconds", name);
        return false;
    }
    size_t n = g->sync->n_tables;
    char **schemas = xcalloc(n, sizeof *schemas), **names = xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const Godwit__TableRef *t = g->sync->tables[i]->table;
        schemas[i] = t ? t->schema : (char *)"";
        names[i] = t ? t->name : (char *)"";
    }
    g->verify = verify_start(ms->link, g->m, g->objname, schemas, names, n, s_verify_done, g);
    free(schemas);
    free(names);
    journal_event(ms->journal, name, s_name(g->state), "intent", "verify every table");
    return true;
}

/* ---- status ---- */

static cJSON *s_status_one(migset_t *ms, mig_t *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", g->m->name);
    cJSON_AddStringToObject(o, "state", s_name(g->state));
    cJSON_AddStringToObject(o, "doing", s_states[g->state].comment);
    cJSON_AddNumberToObject(o, "state_since_ms", (double)g->state_since_ms);
    cJSON_AddStringToObject(o, "source", g->m->source.agent);
    cJSON_AddStringToObject(o, "source_database", g->m->source.database);
    cJSON_AddStringToObject(o, "target", g->m->target.agent);
    cJSON_AddStringToObject(o, "target_database", g->m->target.database);
    cJSON_AddNumberToObject(o, "attempts", g->attempts);
    if (g->last_error)
        cJSON_AddStringToObject(o, "last_error", g->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    if (g->stopped_because)
        cJSON_AddStringToObject(o, "stopped_because", g->stopped_because);
    else
        cJSON_AddNullToObject(o, "stopped_because");
    /* Lag: our slot on the source, from the source agent's latest report. */
    const Godwit__Report *rep = agentlink_report(ms->link, g->m->source.agent);
    const Godwit__Slot *slot = s_report_slot(rep, g->objname);
    if (slot && slot->confirmed_flush_lsn) {
        cJSON_AddNumberToObject(o, "lag_bytes",
                                (double)lsn_diff(rep->postgres->current_lsn, slot->confirmed_flush_lsn));
        cJSON_AddNumberToObject(o, "slot_retained_bytes", (double)slot->retained_bytes);
        if (slot->has_spill)
            cJSON_AddNumberToObject(o, "slot_spill_bytes", (double)slot->spill_bytes);
        else
            cJSON_AddNullToObject(o, "slot_spill_bytes");
        if (slot->has_replay_lag)
            cJSON_AddNumberToObject(o, "lag_seconds", slot->replay_lag_seconds);
        else
            cJSON_AddNullToObject(o, "lag_seconds");
    } else {
        cJSON_AddNullToObject(o, "lag_seconds");
        cJSON_AddNullToObject(o, "lag_bytes");
        cJSON_AddNullToObject(o, "slot_retained_bytes");
        cJSON_AddNullToObject(o, "slot_spill_bytes");
    }
    cJSON *tables = cJSON_AddArrayToObject(o, "tables");
    size_t ready = 0;
    if (g->sync) {
        for (size_t i = 0; i < g->sync->n_tables; i++) {
            const Godwit__TableSync *t = g->sync->tables[i];
            cJSON *j = cJSON_CreateObject();
            char name[300];
            snprintf(name, sizeof name, "%s.%s", t->table ? t->table->schema : "?",
                     t->table ? t->table->name : "?");
            cJSON_AddStringToObject(j, "table", name);
            cJSON_AddStringToObject(j, "state", t->state);
            cJSON_AddNumberToObject(j, "rows_copied", (double)t->rows_done);
            cJSON_AddNumberToObject(j, "bytes_copied", (double)t->bytes_done);
            cJSON_AddNumberToObject(j, "bytes_total", (double)t->bytes_total);
            cJSON_AddItemToArray(tables, j);
            ready += strcmp(t->state, "ready") == 0;
        }
        cJSON_AddNumberToObject(o, "apply_error_count", (double)g->sync->apply_error_count);
        cJSON_AddNumberToObject(o, "sync_error_count", (double)g->sync->sync_error_count);
    }
    cJSON_AddNumberToObject(o, "tables_ready", (double)ready);
    if (g->state == M_COPY && g->copy_total) {
        cJSON *cp = cJSON_AddObjectToObject(o, "copy");
        cJSON_AddNumberToObject(cp, "bytes_done", (double)g->copy_done);
        cJSON_AddNumberToObject(cp, "bytes_total", (double)g->copy_total);
        cJSON_AddNumberToObject(cp, "rate_bytes_per_sec", g->copy_rate);
        if (g->copy_rate > 0)
            cJSON_AddNumberToObject(cp, "eta_seconds",
                                    (double)(g->copy_total - g->copy_done) / g->copy_rate);
        else
            cJSON_AddNullToObject(cp, "eta_seconds");
    } else {
        cJSON_AddNullToObject(o, "copy");
    }
    if (g->repl_error) {
        cJSON *e = cJSON_AddObjectToObject(o, "replication_error");
        cJSON_AddStringToObject(e, "message", g->repl_error);
        cJSON_AddNumberToObject(e, "at_ms", (double)g->repl_error_at_ms);
        cJSON_AddNumberToObject(e, "times", g->repl_error_repeats);
    } else {
        cJSON_AddNullToObject(o, "replication_error");
    }
    /* After a cutover: blue following green, from green's slot for it. */
    const Godwit__Report *trep = agentlink_report(ms->link, g->m->target.agent);
    const Godwit__Slot *rslot = g->state == M_SWITCHED ? s_report_slot(trep, g->revname) : NULL;
    if (rslot) {
        cJSON *f = cJSON_AddObjectToObject(o, "follow");
        cJSON_AddStringToObject(f, "slot", g->revname);
        cJSON_AddBoolToObject(f, "active", rslot->active);
        cJSON_AddNumberToObject(f, "lag_bytes", rslot->confirmed_flush_lsn
            ? (double)lsn_diff(trep->postgres->current_lsn, rslot->confirmed_flush_lsn) : 0);
        cJSON_AddNumberToObject(f, "slot_retained_bytes", (double)rslot->retained_bytes);
    } else {
        cJSON_AddNullToObject(o, "follow");
    }
    if (g->cutover)
        cJSON_AddItemToObject(o, "cutover", cJSON_Duplicate(cutover_report(g->cutover), true));
    else if (g->cutover_last)
        cJSON_AddItemToObject(o, "cutover", cJSON_Duplicate(g->cutover_last, true));
    else
        cJSON_AddNullToObject(o, "cutover");
    if (g->verify)
        cJSON_AddItemToObject(o, "verify", cJSON_Duplicate(verify_report(g->verify), true));
    else if (g->verify_last)
        cJSON_AddItemToObject(o, "verify", cJSON_Duplicate(g->verify_last, true));
    else
        cJSON_AddNullToObject(o, "verify");
    return o;
}

cJSON *migset_status(migset_t *ms, const char *name)
{
    if (name) {
        mig_t *g = s_find(ms, name);
        return g ? s_status_one(ms, g) : NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (mig_t *g = ms->migs; g; g = g->next)
        cJSON_AddItemToArray(arr, s_status_one(ms, g));
    return arr;
}
