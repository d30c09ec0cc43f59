/*
 * waves: see waves.h. The gate of the next wave, the verifies the
 * schedule starts itself, the operator's go, and the schedule's status.
 */
#include "waves.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* The journal's meta keys of the current schedule. */
#define K_SCHEDULE "waves_schedule"
#define K_GO "waves_go"
#define K_BUDGET "waves_error_budget"
#define K_OPENED "waves_opened"
#define K_GO_GIVEN "waves_go_given"
#define K_ACCEPTED "waves_accepted"

static const char *const s_go_names[] = { "auto", "operator" };

static int64_t s_meta(journal_t *j, const char *key)
{
    int64_t v = 0;
    return journal_meta_get(j, key, &v) ? v : 0;
}

void waves_load(waves_t *w, journal_t *j)
{
    memset(w, 0, sizeof *w);
    w->schedule = (uint64_t)s_meta(j, K_SCHEDULE);
    w->go = s_meta(j, K_GO) == PLAN_GO_OPERATOR ? PLAN_GO_OPERATOR : PLAN_GO_AUTO;
    w->error_budget = s_meta(j, K_BUDGET);
    w->opened = (unsigned)s_meta(j, K_OPENED);
    w->go_given = (unsigned)s_meta(j, K_GO_GIVEN);
    w->accepted = s_meta(j, K_ACCEPTED);
}

bool waves_member(const waves_t *w, const migration_t *g, unsigned wave)
{
    return w->schedule && g->schedule == w->schedule && (wave == 0 || g->wave == wave);
}

/* How a migration of the schedule stands at the gate. */
typedef enum { WV_SCHEDULED = 0, WV_PENDING, WV_PASSED, WV_FAILED, WV__COUNT } wv_t;
static const char *const s_wv_names[WV__COUNT] = { "scheduled", "pending", "passed", "failed" };

static const char *s_verify_state(const migration_t *g)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(g->verify_last, "state"));
}

static wv_t s_class(const migration_t *g)
{
    const char *vs;
    switch (g->state) {
    case M_SCHEDULED:
        return WV_SCHEDULED;
    case M_ABORTED:
    case M_ABORT_TARGET:
    case M_ABORT_SOURCE:
    case M_PROTECT_SOURCE:
    case M_PROTECT_TARGET:
        return WV_FAILED;
    case M_SWITCHED:
    case M_CLEANUP_SOURCE:
    case M_CLEANUP_TARGET:
    case M_DONE:
    case M_UNFOLLOW_TARGET:
    case M_UNFOLLOW_SOURCE:
        return WV_PASSED;
    case M_STREAMING:
        vs = s_verify_state(g);
        if (vs && strcmp(vs, "equal") == 0)
            return WV_PASSED;
        if (vs && strcmp(vs, "different") == 0)
            return WV_FAILED;
        return WV_PENDING;
    default:
        return g->last_error && g->attempts >= WAVES_FAILING_ATTEMPTS ? WV_FAILED : WV_PENDING;
    }
}

/* The smallest wave of the schedule with a migration still scheduled; 0
 * when none is. */
static unsigned s_next(const waves_t *w, const migration_t *migs)
{
    unsigned next = 0;
    for (const migration_t *g = migs; g; g = g->next)
        if (waves_member(w, g, 0) && g->state == M_SCHEDULED && (!next || g->wave < next))
            next = g->wave;
    return next;
}

/* The migrations of the waves before `before`, by how they stand; the
 * first pending and failed ones' names (borrowed) for the operator. */
typedef struct {
    size_t n[WV__COUNT];
    size_t earlier; /* how many migrations are in the waves before */
    const char *first_pending, *first_failed;
} s_tally_t;

static s_tally_t s_tally(const waves_t *w, const migration_t *migs, unsigned before)
{
    s_tally_t t = { 0 };
    for (const migration_t *g = migs; g; g = g->next) {
        if (!waves_member(w, g, 0) || g->wave >= before)
            continue;
        wv_t c = s_class(g);
        t.n[c]++;
        t.earlier++;
        if (c == WV_PENDING && !t.first_pending)
            t.first_pending = g->m->name;
        if (c == WV_FAILED && !t.first_failed)
            t.first_failed = g->m->name;
    }
    return t;
}

static bool s_save(const waves_t *w, journal_t *j)
{
    /* the schedule's number last: until it is written, the old one holds */
    return journal_meta_set(j, K_GO, w->go) && journal_meta_set(j, K_BUDGET, w->error_budget) &&
           journal_meta_set(j, K_OPENED, w->opened) &&
           journal_meta_set(j, K_GO_GIVEN, w->go_given) &&
           journal_meta_set(j, K_ACCEPTED, w->accepted) &&
           journal_meta_set(j, K_SCHEDULE, (int64_t)w->schedule);
}

bool waves_begin(waves_t *w, journal_t *j, const migration_t *migs, const plan_waves_t *pw,
                 char *err, size_t errlen)
{
    size_t waiting = 0;
    for (const migration_t *g = migs; g; g = g->next)
        waiting += waves_member(w, g, 0) && g->state == M_SCHEDULED;
    if (waiting) {
        snprintf(err, errlen, "the fleet's schedule %llu still has %zu migrations waiting for "
                 "their wave: let it finish first, or stop it (godwitctl fleet abort)",
                 (unsigned long long)w->schedule, waiting);
        return false;
    }
    waves_t nw = { .schedule = w->schedule + 1, .go = pw->go, .error_budget = pw->error_budget };
    if (!s_save(&nw, j)) {
        snprintf(err, errlen, "the journal refused to record the schedule");
        return false;
    }
    *w = nw;
    log_info("schedule %llu: waves of a canary of %lld, then %lld each; go: %s; error budget %lld",
             (unsigned long long)w->schedule, (long long)(pw->canary ? pw->canary : 1),
             (long long)pw->size, s_go_names[w->go], (long long)w->error_budget);
    return true;
}

void waves_detail(const waves_t *w, unsigned wave, char *buf, size_t len)
{
    snprintf(buf, len, "{\"schedule\":%llu,\"wave\":%u}", (unsigned long long)w->schedule, wave);
}

void waves_read(migration_t *g, journal_t *j)
{
    char *last = journal_last_event(j, g->m->name, "created");
    cJSON *o = last ? cJSON_Parse(last) : NULL;
    double schedule = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "schedule"));
    double wave = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "wave"));
    if (schedule >= 1 && wave >= 1) {
        g->schedule = (uint64_t)schedule;
        g->wave = (unsigned)wave;
    }
    cJSON_Delete(o);
    free(last);
}

void waves_assign(const waves_t *w, migration_t *g, unsigned wave)
{
    g->schedule = w->schedule;
    g->wave = wave;
}

/* A streaming migration of an open wave that has no verify that finished
 * (none yet, or the last one failed to finish): verify it, at most every
 * WAVES_VERIFY_RETRY_MS. */
static void s_verify_due(migration_t *g, uint64_t now, waves_verify_fn verify, void *arg)
{
    if (g->state != M_STREAMING || g->verify || !g->sync || !g->sync->all_ready)
        return;
    const char *vs = s_verify_state(g);
    if (vs && strcmp(vs, "failed") != 0)
        return;
    if (g->wave_verify_mono && now - g->wave_verify_mono < WAVES_VERIFY_RETRY_MS)
        return;
    g->wave_verify_mono = now;
    char err[512];
    if (verify(g, arg, err, sizeof err))
        log_info_about(log_about_migration(g->m->name), "migration %s: verify started for the "
                       "gate of the next wave", g->m->name);
    else
        log_warn_about(log_about_migration(g->m->name), "migration %s: cannot verify it for the "
                       "gate of the next wave: %s", g->m->name, err);
}

/* Whether wave next may open; if not, why into w->waiting. */
static bool s_gate(waves_t *w, const migration_t *migs, unsigned next, bool fleet_paused)
{
    s_tally_t t = s_tally(w, migs, next);
    int64_t failed = (int64_t)t.n[WV_FAILED];
    if (t.n[WV_PENDING]) {
        snprintf(w->waiting, sizeof w->waiting,
                 "wave %u waits until the waves before it are streaming and verified equal: "
                 "%zu of %zu not yet (%s%s)", next, t.n[WV_PENDING], t.earlier, t.first_pending,
                 t.n[WV_PENDING] > 1 ? ", ..." : "");
        return false;
    }
    if (failed - w->accepted > w->error_budget) {
        snprintf(w->waiting, sizeof w->waiting,
                 "the schedule stopped before wave %u: %lld failed (%s%s), more than the error "
                 "budget of %lld allows (%lld accepted before); godwitctl fleet go "
                 "--accept-failures goes on, godwitctl fleet abort stops the rest", next,
                 (long long)failed, t.first_failed, failed > 1 ? ", ..." : "",
                 (long long)w->error_budget, (long long)w->accepted);
        return false;
    }
    if (fleet_paused) {
        snprintf(w->waiting, sizeof w->waiting, "wave %u waits: the fleet is paused (godwitctl "
                 "fleet resume)", next);
        return false;
    }
    if (w->go == PLAN_GO_OPERATOR && t.earlier && w->go_given < next) {
        snprintf(w->waiting, sizeof w->waiting, "wave %u is ready: godwitctl fleet go opens it",
                 next);
        return false;
    }
    return true;
}

void waves_tick(waves_t *w, journal_t *j, migration_t *migs, bool fleet_paused, uint64_t now,
                waves_verify_fn verify, void *arg)
{
    w->waiting[0] = '\0';
    if (!w->schedule)
        return;
    for (migration_t *g = migs; g; g = g->next)
        if (waves_member(w, g, 0))
            s_verify_due(g, now, verify, arg);
    /* After a wave opens, the next one's gate (which now waits for it)
     * says why in the same tick. */
    for (unsigned next = s_next(w, migs); next && s_gate(w, migs, next, fleet_paused);
         next = s_next(w, migs)) {
        if (!journal_meta_set(j, K_OPENED, next)) {
            snprintf(w->waiting, sizeof w->waiting, "wave %u: the journal refused to record its "
                     "opening; trying again", next);
            return;
        }
        w->opened = next;
        size_t n = 0, moved = 0;
        char detail[96];
        snprintf(detail, sizeof detail, "wave %u of schedule %llu opened", next,
                 (unsigned long long)w->schedule);
        for (migration_t *g = migs; g; g = g->next) {
            if (!waves_member(w, g, next) || g->state != M_SCHEDULED)
                continue;
            n++;
            moved += migration_fire(g, MEV_WAVE, detail) == FIRE_MOVED;
        }
        log_info("schedule %llu: wave %u opened: %zu migrations start",
                 (unsigned long long)w->schedule, next, moved);
        if (moved < n)
            return; /* the journal refused a move: the next tick tries again */
    }
}

bool waves_go(waves_t *w, journal_t *j, const migration_t *migs, bool accept_failures,
              unsigned *wave, char *err, size_t errlen)
{
    unsigned next = w->schedule ? s_next(w, migs) : 0;
    if (!next) {
        snprintf(err, errlen, "no wave waits: %s", w->schedule ? "every wave of the schedule has "
                 "opened" : "no plan with waves was started");
        return false;
    }
    waves_t nw = *w;
    nw.go_given = next;
    if (accept_failures)
        nw.accepted = (int64_t)s_tally(w, migs, next).n[WV_FAILED];
    if (!journal_meta_set(j, K_GO_GIVEN, nw.go_given) ||
        !journal_meta_set(j, K_ACCEPTED, nw.accepted)) {
        snprintf(err, errlen, "the journal refused to record the go");
        return false;
    }
    *w = nw;
    *wave = next;
    log_info("schedule %llu: the operator lets wave %u open%s", (unsigned long long)w->schedule,
             next, accept_failures ? ", accepting the failures so far" : "");
    return true;
}

cJSON *waves_json(const waves_t *w, const migration_t *migs)
{
    if (!w->schedule)
        return cJSON_CreateNull();
    unsigned last = 0;
    for (const migration_t *g = migs; g; g = g->next)
        if (waves_member(w, g, 0) && g->wave > last)
            last = g->wave;
    size_t(*n)[WV__COUNT] = xcalloc(last + 1, sizeof *n);
    size_t failed = 0;
    for (const migration_t *g = migs; g; g = g->next) {
        if (!waves_member(w, g, 0))
            continue;
        wv_t c = s_class(g);
        n[g->wave][c]++;
        failed += c == WV_FAILED;
    }
    unsigned next = s_next(w, migs);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "schedule", (double)w->schedule);
    cJSON_AddStringToObject(o, "go", s_go_names[w->go]);
    cJSON_AddNumberToObject(o, "error_budget", (double)w->error_budget);
    cJSON_AddNumberToObject(o, "accepted_failures", (double)w->accepted);
    cJSON_AddNumberToObject(o, "failed", (double)failed);
    cJSON_AddNumberToObject(o, "opened", w->opened);
    if (next)
        cJSON_AddNumberToObject(o, "next", next);
    else
        cJSON_AddNullToObject(o, "next");
    if (w->waiting[0])
        cJSON_AddStringToObject(o, "waiting", w->waiting);
    else
        cJSON_AddNullToObject(o, "waiting");
    cJSON *list = cJSON_AddArrayToObject(o, "waves");
    for (unsigned k = 1; k <= last; k++) {
        cJSON *one = cJSON_CreateObject();
        size_t total = 0;
        for (int c = 0; c < WV__COUNT; c++)
            total += n[k][c];
        cJSON_AddNumberToObject(one, "wave", k);
        cJSON_AddNumberToObject(one, "migrations", (double)total);
        for (int c = 0; c < WV__COUNT; c++)
            cJSON_AddNumberToObject(one, s_wv_names[c], (double)n[k][c]);
        cJSON_AddItemToArray(list, one);
    }
    free(n);
    return o;
}
