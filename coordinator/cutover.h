/*
 * cutover: phase 7 for one migration, a transition table of agent commands
 * (cutover.c, s_steps):
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

#include "agentlink.h"
#include "journal.h"
#include "plan.h"

typedef struct cutover cutover_t;

/* report: the final report, owned by the callee; switched: traffic now goes
 * to green. Never runs from inside cutover_start. */
typedef void (*cutover_done_cb)(cJSON *report, bool switched, void *arg);

/* Starts the cutover of m (gates already checked) from the beginning, or,
 * with recover set to the last journaled detail (its "state" "started" or
 * "switching", its "switch_lsn"), finishes or rolls back an interrupted
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

#endif
