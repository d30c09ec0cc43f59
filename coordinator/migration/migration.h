/*
 * migration: one PostgreSQL migration driven through its phases by a
 * transition table (migration.c: s_states, each state's step; s_rows, every
 * move as from, event, to, why), journaled. The rows, by event:
 *
 *   wave         scheduled -> roles (its wave of the fleet's schedule opened, waves.h)
 *   done         roles -> schema -> publish -> tune -> copy -> catchup -> postdata ->
 *                streaming;
 *                each undoing state to the next (abort_target -> abort_source -> aborted,
 *                ..., unfollow_source -> switched, cleanup_target -> done)
 *   abort        roles..streaming (tune too), pausing, paused, resuming -> abort_target;
 *                scheduled -> aborted (nothing of ours exists yet)
 *   protect      copy..streaming, pausing, paused, resuming -> protect_source
 *                -> protect_target -> aborted (the source at risk from our slot)
 *   pause        catchup, postdata, streaming -> pausing -> paused
 *   resume       paused, pausing -> resuming -> catchup
 *   switched     streaming -> switched (a cutover, cutover.h)
 *   rolled_back  switched -> streaming (a rollback)
 *   protect_green switched -> unfollow_target -> unfollow_source -> switched
 *   cleanup      switched -> cleanup_source -> cleanup_target -> done
 *
 * tune applies the plan's import profile on the target, if it gives one
 * (importprof.h: its state before journaled first; reverted once the
 * migration leaves tune..postdata, any way). A copy slot (the set's copy
 * caps) is taken in tune and kept through copy.
 *
 * copy is one long step on the target (BulkCopy): the slot with an exported
 * snapshot, the tables copied in it in parallel, the subscription created
 * on the slot without copying. While it runs its progress is polled
 * (BulkCopyStatus) for status. catchup polls SyncStatus until the tables
 * are ready and the slot is close to the source's WAL.
 *
 * Source protection: when our slot's retained WAL would pass the plan's
 * slot_wal_limit within three report intervals at the current WAL rate, or
 * the source's free disk falls below source_disk_floor, the coordinator
 * drops our slot and publication on the source first (never waiting for
 * the target), then our subscription on the target, and says why.
 *
 * Each state has one step, an idempotent agent command. The order is always:
 * journal the intent, send the command, and only when it succeeded journal
 * the move to the next state (one SQLite transaction). A crash anywhere
 * leaves the migration in a state whose step is simply run again after a
 * restart: the agent finds it done and says so. A failed step is retried
 * with backoff; its error is kept for status.
 *
 * This is the machine of one migration (the tables, its one move, its
 * steps, protection); the set that owns them and takes the operator's
 * commands is migset.h, which the process uses. The struct below is shared
 * with the machine's other modules: migset.c (the set and the operator's
 * commands), migcmd.c (each step's command), migstatus.c (status),
 * migmetrics.c (the Prometheus families) and waves.c (the fleet's
 * schedule); no other module reads it.
 */
#ifndef GODWIT_MIGRATION_H
#define GODWIT_MIGRATION_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentlink.h"
#include "copyeta.h"
#include "cutover.h"
#include "importprof.h"
#include "journal.h"
#include "plan.h"
#include "promtext.h"
#include "verify.h"

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
    M_SCHEDULED,
    M_TUNE,
    M_BASEBACKUP,
    M__COUNT
} mstate_t;

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
    MEV_WAVE,          /* its wave opened (waves.h) */
    MEV__COUNT
} mevent_t;

/* What migration_fire did. */
typedef enum {
    FIRE_MOVED,   /* to the row's state, journaled; its step starts on the next tick */
    FIRE_STAYS,   /* the row keeps the state: the event is already under way */
    FIRE_NO_ROW,  /* the event does not apply in this state: nothing changed */
    FIRE_JOURNAL, /* the journal refused the move: nothing changed (logged) */
} fire_t;

/* Called after every move a migration makes (from, event and to as
 * status names them), once journaled, and for an event accepted without a
 * move (to is from: already under way); the names are static. */
typedef void (*migration_move_cb)(const char *migration, const char *from, const char *event,
                                  const char *to, void *arg);

/* What every migration of a set shares: owned by the set (migset.c),
 * borrowed by each migration. on_move NULL: no observer. */
typedef struct migration migration_t;

typedef struct {
    const agentlink_t *link;
    journal_t *journal;
    migration_t *const *migs;  /* the set's list (migrations into the same target share
                                  its import profile: importprof.h) */
    migration_move_cb on_move;
    void *on_move_arg;
} migration_env_t;

struct migration {
    const migration_env_t *env; /* the set's, borrowed */
    plan_t plan;             /* one migration, loaded from its journaled JSON */
    plan_migration_t *m;     /* plan_at(&plan, 0) */
    char objname[64];        /* godwit_<name>: publication, subscription, slot */
    char revname[64];        /* godwit_<name>_rev: the same, green to blue (cutover.h) */
    char verifyname[72];     /* godwit_<name>_verify: verify's slot on the source, which
                                lives for a fraction of a second per batch
                                (agent/pg/verify/verify_table.c) */
    uint64_t vslot_seen_mono; /* since when the source reports a verify slot no verify uses */
    uint64_t vslot_next_mono; /* the next look for one (migration.c, s_vslot_check) */
    bool vslot_busy;         /* dropping it */
    mstate_t state;
    bool busy;               /* a step's command is in flight */
    uint64_t gen;            /* bumped per send and per forced move: older results are stale */
    uint64_t next_try_mono;
    unsigned attempts;
    char *last_error;
    uint64_t state_since_ms;
    Godwit__SyncStatusResult *sync; /* latest copy status, owned */
    Godwit__StandbyStatusResult *standby; /* physical: the standby's latest state, owned */
    Godwit__ReplicaStatusResult *replica; /* mariadb: our replication connection's latest
                                            state (the streaming poll), owned */
    uint64_t io_down_mono;    /* mariadb: since when the poll has seen our connection's I/O
                                 thread not running (0: it runs) */
    bool progress_busy;      /* copy: a BulkCopyStatus poll is in flight */
    uint64_t next_progress_mono;
    copyeta_t copy;          /* copy: progress for rate and ETA (copyeta.h) */
    bool copy_slot;          /* copy: admitted by the set's copy caps (migset.c); its step
                                runs only with it, and it is let go when the state moves */
    char copy_queued[400];   /* copy: why it waits for a slot; "" when it does not */
    /* copy: the snapshot the source agent holds for our slot (HoldSnapshot)
     * and the slot's consistent point; "" when none is known. copy_point is
     * the point of the snapshot the copy of g->sync ran in: its tables
     * shown copied are done for a later run in the same snapshot. */
    char hold_snapshot[128];
    char hold_point[32];
    char copy_point[32];
    bool hold_busy;          /* the copy's HoldSnapshot is in flight (no progress polls) */
    uint64_t hold_renew_mono; /* the next renewal of the hold */
    bool hold_renew_busy;
    char *stopped_because;   /* why protection stopped it, if it did */
    uint64_t schedule;       /* the fleet schedule it belongs to (waves.h); 0: none */
    unsigned wave;           /* its wave in that schedule (1: the canary) */
    uint64_t wave_verify_mono; /* when waves.c last started a verify of it */
    verify_t *verify;        /* a verify run in progress, owned */
    char *repl_error;        /* the last replication error from the target's log, owned */
    uint64_t repl_error_at_ms;
    unsigned repl_error_repeats;
    cJSON *verify_last;      /* the last finished verify report, owned (from the journal) */
    importprof_t import;     /* the import profile on the target (importprof.h) */
    cutover_t *cutover;      /* a cutover in progress, owned */
    cJSON *cutover_last;     /* the last finished cutover report, owned (from the journal) */
    /* A rehearsal's or an abort's "restore apply" failed (the agent was
     * cut off): our subscription still commits synchronously; the tick
     * turns that off when the agent is back (migration.c, s_apply_async). */
    bool apply_async_due;
    bool apply_async_back;   /* the subscription on blue (a rollback's) */
    bool apply_async_busy;
    uint64_t apply_async_next_mono;
    /* write pauses measured since this coordinator started, by kind
     * (migmetrics.h: cutover, rollback, rehearsal) */
    promtext_hist_t pause_hist[3];
    migration_t *next;       /* the set's list (migset.c) */
};

/* Whether g is in tune or copy: the states a copy slot is for. */
bool migration_copy_phase(const migration_t *g);

/* The transition table (migration.c, s_rows): how many rows, and row i's
 * from, event and to (static names); false past the end. */
size_t migration_rows(void);
bool migration_row(size_t i, const char **from, const char **event, const char **to);

/* The names status and the journal use (static), and what a state does. */
const char *migration_state_name(mstate_t s);
const char *migration_event_name(mevent_t e);
const char *migration_doing(mstate_t s);
/* The state called name; false if there is none. */
bool migration_state_parse(const char *name, mstate_t *out);
/* Whether event has a row in g's state (of g's method's table) that keeps
 * it there (already under way). */
bool migration_stays(const migration_t *g, mevent_t event);

/* A migration in state from its journaled JSON (label: its name, for the
 * log); NULL (logged) if unreadable. Its last verify and cutover reports
 * are read from the journal. Freed with migration_destroy. */
migration_t *migration_new(const migration_env_t *env, const char *label, const char *json,
                           mstate_t state);
void migration_destroy(migration_t **gp);

/* The one place a migration changes state: the row for event in g's
 * state, journaled, then logged as "from X to Y on EVENT (why): detail".
 * Whatever step was in flight is left (its result will be stale). */
fire_t migration_fire(migration_t *g, mevent_t event, const char *detail);

/* A cutover of g ended with report (also the journal's last one, read at
 * a restart): if its "restore apply" failed, the tick sends it again. */
void migration_cutover_ended(migration_t *g, const cJSON *report);

/* Called from the set's tick (now: monotonic ms): protection, verify,
 * the cutover, and the state's step when it is due. */
void migration_tick(migration_t *g, uint64_t now);

/* The slot called name in an agent's report (borrowed from rep), or NULL:
 * no report, no PostgreSQL figures in it, or no such slot. */
const Godwit__Slot *migration_report_slot(const Godwit__Report *rep, const char *name);

/* Whether the source is at risk from our slot, from the source agent's
 * report (now_ms: wall clock, to age its figures): writes the reason into
 * why and returns true. slot_limit and disk_floor of 0 are not checked. */
bool migration_source_at_risk(const Godwit__Report *rep, const char *slot, int64_t slot_limit,
                              int64_t disk_floor, uint64_t now_ms, char *why, size_t whylen);

#endif
