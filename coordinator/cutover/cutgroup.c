/*
 * cutgroup: see cutgroup.h. The barrier of the pause's steps, the
 * group's abort and the members' shared records.
 */
#include "cutgroup.h"

#include <stdlib.h>
#include <string.h>

#include "cutjournal.h"
#include "log.h"
#include "xalloc.h"

struct cutgroup {
    cutover_t **members; /* borrowed; NULL once a member ended */
    size_t n, joined, live;
    unsigned busy;       /* calls into the members under way: the group stays */
    bool aborting;
    char *why;           /* the abort's reason for the others, owned */
};

cutgroup_t *cutgroup_new(size_t n)
{
    cutgroup_t *g = xcalloc(1, sizeof *g);
    g->members = xcalloc(n, sizeof *g->members);
    g->n = n;
    return g;
}

static void s_free(cutgroup_t *g)
{
    free(g->members);
    free(g->why);
    free(g);
}

/* m's databases on `from`'s agent: its own and every other member's whose
 * `from` is the same agent. */
static void s_group_dbs(cutgroup_t *g, cutover_t *m)
{
    m->group_dbs = xcalloc(g->joined, sizeof *m->group_dbs);
    m->n_group_dbs = 0;
    for (size_t i = 0; i < g->joined; i++)
        if (strcmp(g->members[i]->from_agent, m->from_agent) == 0)
            m->group_dbs[m->n_group_dbs++] = xstrdup(g->members[i]->from_database);
}

void cutgroup_join(cutgroup_t *g, cutover_t *cu)
{
    g->members[g->joined++] = cu;
    g->live++;
    cu->group = g;
    /* Once every member is in (no step is sent before: the first goes at
     * the next tick), each learns the group's databases on its server. */
    for (size_t i = 0; g->joined == g->n && i < g->n; i++)
        s_group_dbs(g, g->members[i]);
}

size_t cutgroup_size(const cutgroup_t *g)
{
    return g->n;
}

void cutgroup_leave(cutover_t *cu)
{
    cutgroup_t *g = cu->group;
    cu->group = NULL;
    for (size_t i = 0; i < g->joined; i++)
        if (g->members[i] == cu)
            g->members[i] = NULL;
    if (--g->live == 0 && g->busy == 0)
        s_free(g);
}

bool cutgroup_step(kstate_t s)
{
    return s == K_PAUSE || s == K_FREEZE || s == K_SEQUENCES || s == K_SWITCH ||
           s == K_RESUME || s == K_DRY_UNFREEZE || s == K_DRY_RESUME;
}

/* Ends a call into the members: frees g if they all left meanwhile. */
static void s_unbusy(cutgroup_t *g)
{
    if (--g->busy == 0 && g->live == 0)
        s_free(g);
}

/* Every member waits at the same step: the pause's and the switch's
 * records in one transaction, then each sends its step. */
static void s_release(cutgroup_t *g)
{
    if (g->joined < g->n)
        return;
    const cutover_t *first = NULL;
    for (size_t i = 0; i < g->joined; i++) {
        const cutover_t *m = g->members[i];
        if (!m)
            continue;
        if (!m->group_waiting || (first && m->state != first->state))
            return;
        first = first ? first : m;
    }
    if (!first)
        return;
    kstate_t st = first->state;
    if ((st == K_SWITCH || st == K_PAUSE) && !g->aborting) {
        /* "started" before any pause is sent (from there a restart rolls
         * back), "switching" before any switch: one sync for the group,
         * not one per member inside the pause. */
        bool batch = journal_batch_begin(first->journal);
        for (size_t i = 0; i < g->joined; i++)
            if (g->members[i])
                cutjournal_write(g->members[i], st == K_SWITCH ? "switching" : "started");
        if (batch)
            journal_batch_commit(first->journal);
    }
    for (size_t i = 0; i < g->joined; i++)
        if (g->members[i])
            g->members[i]->group_waiting = false;
    g->busy++;
    for (size_t i = 0; i < g->joined; i++) {
        cutover_t *m = g->members[i];
        if (m && m->state == st && !g->aborting)
            cutover_run(m);
        else if (m && m->state == st)
            cutover_abort(m, g->why);
    }
    s_unbusy(g);
}

void cutgroup_arrive(cutover_t *cu)
{
    cutgroup_t *g = cu->group;
    if (g->aborting) {
        cutover_abort(cu, g->why);
        return;
    }
    cu->group_waiting = true;
    s_release(g);
}

void cutgroup_abort(cutover_t *cu, const char *why)
{
    cutgroup_t *g = cu->group;
    if (!g->aborting) {
        g->aborting = true;
        g->why = xasprintf("database %s of the cutover group: %s", cu->migration, why);
        log_error_about(cutover_about(cu), "cutover group: %s; every member goes back", g->why);
    }
    /* The members waiting for the others abort now; the others when their
     * step is over (cutgroup_arrive). */
    g->busy++;
    for (size_t i = 0; i < g->joined; i++) {
        cutover_t *m = g->members[i];
        if (m && m != cu && m->group_waiting) {
            m->group_waiting = false;
            cutover_abort(m, g->why);
        }
    }
    s_unbusy(g);
}
