/*
 * cutgroup: a cutover group, databases that switch in one write pause
 * (typically every database behind one proxy, each one of its entries).
 * Each database runs its own cutover machine (cutover.h); the group holds
 * them in step through the pause: every member enters pause, freeze,
 * sequences, switch and resume (and a rehearsal's unfreeze and resume)
 * before any sends it, so the pause of the group is one pause, not one per
 * database. A member that aborts aborts the group: the members waiting at
 * the next step abort at once, the others as soon as their step is over;
 * each undoes only what it did, so the proxies all go back to blue or none
 * moved. The members' "switching" records are written in one journal
 * transaction when the last of them reaches the switch: a coordinator
 * restarted at any point finds all of them before the switch (they abort)
 * or all after (they finish).
 *
 * Ownership: the group belongs to its members; the last to end frees it.
 * The set (migset.c) makes a group and its members join it; the rest is
 * for the cutover's own modules (cutover.h).
 */
#ifndef GODWIT_CUTGROUP_H
#define GODWIT_CUTGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "cutover.h"

/* A group of n members (n >= 2), each to join once. */
cutgroup_t *cutgroup_new(size_t n);
/* cu joins g (cu->group); the group's databases on cu's `from` agent go
 * into each fence request of cu (FreezeSource.group_databases). */
void cutgroup_join(cutgroup_t *g, cutover_t *cu);
/* How many members g has (joined or not). */
size_t cutgroup_size(const cutgroup_t *g);
/* cu ends: it leaves the group; the last member frees it. */
void cutgroup_leave(cutover_t *cu);
/* cu entered a step the group takes together (cutgroup_step): it runs now
 * with every member, or waits for them; in an aborting group it aborts. */
void cutgroup_arrive(cutover_t *cu);
/* Whether s is a step the group takes together. */
bool cutgroup_step(kstate_t s);
/* cu aborts (why): every other member aborts too, with that reason. */
void cutgroup_abort(cutover_t *cu, const char *why);

#endif
