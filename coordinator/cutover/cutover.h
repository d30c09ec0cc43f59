/*
 * cutover: phase 7 for one migration, a transition table of agent commands
 * (cutover.c, s_steps; each step's commands in cutstep.c):
 *
 *   pause      every proxy of the migration holds new transactions (under a
 *              lease), in parallel; a proxy with hold: false in the plan
 *              (nginx cannot hold) is skipped here and in resume: the freeze
 *              alone stops writes through it
 *   freeze     the source fences the application roles, reads the final LSN
 *              and the sequences, and waits until our slot has confirmed the
 *              final LSN: the target has every transaction
 *   sequences  the target's sequences set to the source's; at the same time
 *              the source's fence is made permanent (no lease), so the source
 *              can never become writable by itself once a proxy may point
 *              at the target; the final check (finalcheck.h): the rows of
 *              the keys the last verify saw change, read by the source with
 *              FREEZE and by the target here, must be equal
 *   switch     every proxy pointed at green (journaled first: from here a
 *              restarted coordinator finishes the switch)
 *   resume     every proxy lets traffic through, now to green
 * A step that fails, or does not finish inside what is left of
 * max_write_pause, aborts (until resume starts), undoing only what was
 * done: every proxy that was sent the switch back to blue, the fence
 * lifted (not while a proxy sent the switch is unaccounted for), every
 * proxy that was sent the pause resumed. An abort step is retried, to what
 * has not confirmed, until cutover.abort_timeout after the abort began;
 * then what did not answer is given up on and reported unknown (the
 * report's "proxies", "source_left" and "outcome"). --dry-run does pause,
 * freeze and sequences, then unfreezes and resumes: the rehearsal's pause
 * is the real one's cost.
 *
 * engine: mariadb takes the physical path's route (cutover.c, the
 * `physical || mariadb` redirections): check (our replication connection
 * on `to` runs, `from` armed, `to`'s fence state read), pause, freeze
 * (its final GTID, no sequences), promote (`to` executes the final GTID,
 * stops our connection, becomes writable; its binary log position then is
 * the switch GTID), switch, resume, and with follow on the rejoin: `from`
 * replicates from `to` from the switch GTID (MyFollow). No final check, no
 * subscription to tune, no slot. An abort after the promote was sent
 * fences `to` again before `from` is unfenced, and its restore starts
 * `to`'s replication again (MyFollow from where it stopped), then lifts
 * the fence it made there. Not in a cutover group (cutgate.c).
 *
 * Journal (events of kind "cutover", detail JSON {"state", "dry_run",
 * "switched": the indexes of the proxies sent the switch}): "started"
 * before the pause, "switching" before the switch, "aborting" when an
 * abort begins, "unfreezing" before an abort that switched proxies back
 * lifts the fence, and the final report ("done" or "aborted"); each with
 * "at_ms". Only the first two writes are on the write pause's path. A
 * coordinator restarted in "started", "unfreezing", or "aborting" with no
 * proxy switched or within lease - max_write_pause of it, aborts, switching
 * back only the proxies the journal names; in "switching" (or "aborting"
 * later) it finishes the switch (the target has every transaction and the
 * source is fenced for good; a proxy whose lease ran out meanwhile may
 * already serve green).
 *
 * Ownership: the cutover copies what it needs; it owns its report and hands
 * it to done when it ends, after freeing itself.
 */
#ifndef GODWIT_CUTOVER_H
#define GODWIT_CUTOVER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "agentlink.h"
#include "journal.h"
#include "log.h"
#include "plan.h"
#include "planwire.h"

/* After the resume, how long the turning round of replication waits: its
 * first step (dropping the old subscription, its worker's exit, the slot,
 * the new subscription's walsender) took CPU from the application's first
 * transactions on the new side, which log in to fresh backends then; the
 * turn has no hurry (the slot made before the pause keeps `to`'s WAL from
 * the switch position). */
#define CUTOVER_SETTLE_MS 200

typedef struct cutover cutover_t;

/* report: the final report, owned by the callee; switched: traffic now goes
 * to green. Never runs from inside cutover_start. */
typedef void (*cutover_done_cb)(cJSON *report, bool switched, void *arg);

/* Starts the cutover of m (gates already checked) from the beginning, or,
 * with recover set to the last journaled detail (its "state" "started",
 * "promoting" (the physical path: with its "final_lsn"; MariaDB: its
 * "final_gtid") or "switching", its "switch_lsn" or "switch_gtid"), finishes or rolls back an interrupted
 * one. objname names our publication and slot on blue and subscription on
 * green; revname the same the other way. back: a rollback, green to blue
 * (blue follows green before it, green follows blue after it). verify:
 * the last verify's report (borrowed; NULL: none), whose recent keys the
 * final check reads again. */
cutover_t *cutover_start(const agentlink_t *link, journal_t *j, const plan_migration_t *m, const char *objname,
                         const char *revname, bool back, bool dry_run, const cJSON *recover,
                         const cJSON *verify, cutover_done_cb done, void *arg);
/* Sends the next step when it is due (first step, retries): call it from
 * the migration tick. */
void cutover_tick(cutover_t *cu);
/* The report so far (borrowed). */
const cJSON *cutover_report(const cutover_t *cu);
/* The coordinator's round trips inside the write pause of a cutover of m
 * (what the gate predicts the pause from): pause, freeze, sequences, then
 * switch and resume, one command when m has one proxy and it holds
 * traffic (see s_merge in cutover.c), else two. */
unsigned cutover_pause_trips(const plan_migration_t *m);
/* Stops without calling done (coordinator shutting down: the journal
 * says where it was, and the next start finishes or rolls back). */
void cutover_cancel(cutover_t **cup);

/* ---- the machine's own modules ------------------------------------------
 * What follows is shared by the cutover's modules only: cutover.c (the
 * step table, every move, the lifetime), cutstep.c (what each step sends
 * and what the answers say), cutjournal.c (the journal's records and the
 * recovery after a restart) and cutreport.c (the report and its
 * timeline). Nothing else reads it. */

typedef enum {
    K_CHECK = 0,
    K_PAUSE,
    K_FREEZE,
    K_SEQUENCES,
    K_SWITCH,
    K_RESUME,
    K_DONE,
    K_BACK,
    K_UNFREEZE,
    K_UNPAUSE,
    K_ABORTED,
    K_DRY_UNFREEZE,
    K_DRY_RESUME,
    K_DRY_RESTORE,
    K_ABORT_RESTORE,
    K_DROP_OLD,
    K_DROP_OLD_SLOT,
    K_ADVANCE,
    K_FOLLOW,
    K_SWITCH_RESUME,
    K_REFENCE,
    K_PROMOTE,
    K_REJOIN,
    K_UNFENCE_TO,
    K__COUNT
} kstate_t;

/* What the cutover did to one proxy, for the abort (which undoes only what
 * was done) and the report (how each proxy was left). */
typedef struct {
    bool pause_sent;            /* PAUSE sent: it may hold traffic */
    bool switch_sent;           /* SWITCH to `to` sent: it may point there */
    bool switch_ok;             /* ... and the proxy confirmed it */
    bool step_ok;               /* its command of the current step was confirmed */
    bool resume_maybe;          /* switch and resume sent, not known to have failed before
                                   the resume: traffic may flow to `to` */
    char *unknown;              /* the abort gave up on it: why (owned), or NULL */
} pxrec_t;

typedef struct cutgroup cutgroup_t;

struct cutover {
    const agentlink_t *link;
    journal_t *journal;
    char *migration;
    bool back;                  /* a rollback: from green to blue */
    /* from: the side traffic leaves (fenced); to: the side it goes to. */
    char *from_agent, *from_database, *to_agent, *to_database;
    const char *from_backend, *to_backend; /* "blue", "green" */
    char *sub_name;             /* our subscription on `to`, its slot on `from` */
    char *new_name;             /* after the switch: publication and slot on `to`,
                                   subscription on `from` */
    bool follow;                /* set up replication to -> from after the switch */
    bool physical;              /* method: physical: `to` is a standby, promoted in the pause */
    bool mariadb;               /* engine: mariadb: `to` is a replica (our replication
                                   connection sub_name), promoted in the pause; GTIDs, no LSNs */
    char *final_gtid;           /* mariadb: `from`'s final GTID (its FREEZE answer, or the
                                   "promoting" record), owned; NULL: not known */
    char *switch_gtid;          /* mariadb: `to`'s binary log position once writable (the
                                   promote's answer, or the "switching" record), owned; NULL:
                                   not known */
    bool promote_sent;          /* mariadb: Promote sent (`to` may have stopped replicating) */
    bool to_was_fenced;         /* mariadb: PREPARE said our fence held `to` before the pause */
    bool refenced;              /* mariadb: the abort fenced `to` again (K_REFENCE confirmed) */
    Godwit__ReplicationConn to_reads_from, from_reads_to; /* strings owned */
    planwire_tables_t tables; /* the plan's, owned */
    char **app_roles;
    size_t n_app_roles;
    char **proxy_agents, **proxies;
    bool *holds;                /* per proxy: false, never paused nor resumed (plan's hold) */
    pxrec_t *px;                /* per proxy: what was sent to it and how it was left */
    size_t n_proxies;
    uint64_t max_pause_ms, drain_ms, lease_ms;
    uint64_t abort_timeout_ms;  /* the plan's cutover.abort_timeout */
    uint64_t abort_end_us;      /* an abort gives up on what it cannot reach then; 0: no abort */
    bool fence_sent;            /* FREEZE sent to `from` (or recovered: it may have been) */
    char *source_left;          /* the abort could not lift `from`'s fence: why (owned) */
    bool to_fenced;             /* our fence held `to` before the pause (PREPARE said so:
                                   a rollback's blue, green after a rollback) */
    bool to_lift_sent;          /* the sequences step lifted it (or recovered: may have) */
    char *target_left;          /* the abort could not fence `to` again: why (owned) */
    bool dry_run;
    bool forward_only;          /* recovered in "switching": never roll back */
    bool prepared;              /* the new slot was made before the pause */
    uint64_t switch_lsn;        /* `to`'s WAL position at the switch (0: unknown) */
    uint64_t final_lsn;         /* `from`'s final LSN (the physical path's promote, also
                                   after a restart: its "promoting" record) */
    unsigned tries;             /* failures of the current step */
    kstate_t state;
    unsigned inflight;          /* commands of the current step not yet answered */
    char *step_error;           /* the first failure of the current step */
    uint64_t step_started_us, started_us, pause_started_us, budget_end_us;
    uint64_t retry_at_mono;
    bool cancelled;
    bool refused;               /* ended at the role check, nothing changed */
    Godwit__FreezeSourceResult *freeze; /* the source's answer to FREEZE, owned */
    Godwit__FreezeSourceResult *kept;   /* its answer to KEEP (the final check's rows), owned */
    Godwit__SetSequencesResult *seqs;   /* the target's answer to SetSequences, owned */
    Godwit__CheckRows **checks; /* the final check's questions (finalcheck.h), owned */
    size_t n_checks;
    cJSON *report;
    cJSON *step_detail;         /* what the agents said in the current step */
    double proxy_paused_ms;
    char *failpoint;            /* GODWIT_FAILPOINT at the start (tests only), or NULL */
    cutover_done_cb done;
    void *arg;
    cutgroup_t *group;          /* the cutover group it is a member of (cutgroup.h), or NULL */
    bool group_waiting;         /* entered a step the group takes together, not sent yet */
    char **group_dbs;           /* the group's databases on `from`'s agent (owned strings) */
    size_t n_group_dbs;
};

/* The step s's name (the report's and the log's). */
const char *cutover_step_name(kstate_t s);
/* What a log line of cu is about: its migration and current step. */
log_about_t cutover_about(const cutover_t *cu);
/* Whether s is an abort step (bounded by cutover.abort_timeout). */
bool cutover_step_bounded(kstate_t s);
/* The bound of a step outside the pause (check roles, the steps after the
 * switch) of a member whose group has n databases on its server (0 alone):
 * a group's members send those steps to the same agents at once, and each
 * such database adds 250 ms. */
#define CUTOVER_CHECK_MS(n) (10000 + 250 * (uint64_t)(n))
/* The physical path's rejoin: the old primary stopped, rewound, started as
 * a standby (seconds; pg_rewind copies what changed since the switch). */
#define CUTOVER_REJOIN_MS 300000
/* The timeout of a command of the current step: what is left of the write
 * pause's budget for critical steps, else a fixed bound. 0: no time left. */
uint64_t cutover_timeout(const cutover_t *cu);
/* Switch and resume sent and not known to have failed before the resume. */
bool cutover_resume_maybe(const cutover_t *cu);
/* The one place the cutover changes state: logged as "from X to Y"; runs
 * the new step, or ends the cutover (cu is gone then). */
void cutover_goto(cutover_t *cu, kstate_t to);
/* A step's commands are all back: the next step, a retry or the abort. */
void cutover_step_over(cutover_t *cu);
/* Sends the current step's commands (checking the write pause's budget). */
void cutover_run(cutover_t *cu);
/* Aborts: undoes what was done, from the current step on. */
void cutover_abort(cutover_t *cu, const char *why);
/* Tests only: dies or stops at point (GODWIT_FAILPOINT; see cutover.c). */
void cutover_failpoint(const cutover_t *cu, const char *point);
/* Frees cu, its report with it; done is not called. */
void cutover_free(cutover_t *cu);

#endif
