/*
 * fleetview: see fleetview.h. Builds a new cJSON tree; borrows its inputs.
 */
#include "fleetview.h"
#include "render.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void s_count(cJSON *counts, const char *key)
{
    cJSON *n = cJSON_GetObjectItem(counts, key);
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(counts, key, 1);
}

/* The problems as found: errors and warnings apart, joined (errors first)
 * at the end. */
typedef struct {
    cJSON *errors;
    cJSON *warnings;
} problems_t;

static void s_problem(problems_t *pr, const char *severity, const char *object,
                      const char *message, const char *command)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", severity);
    cJSON_AddStringToObject(p, "object", object);
    cJSON_AddStringToObject(p, "message", message);
    cJSON_AddStringToObject(p, "command", command);
    cJSON_AddItemToArray(strcmp(severity, "error") == 0 ? pr->errors : pr->warnings, p);
}

/* The errors, then the warnings, in one array; pr is left empty. */
static cJSON *s_problems_join(problems_t *pr)
{
    cJSON *all = pr->errors;
    cJSON *w;
    while ((w = cJSON_DetachItemFromArray(pr->warnings, 0)) != NULL)
        cJSON_AddItemToArray(all, w);
    cJSON_Delete(pr->warnings);
    pr->errors = pr->warnings = NULL;
    return all;
}

static void s_agents(const cJSON *status, cJSON *out, problems_t *problems)
{
    cJSON *a = cJSON_AddObjectToObject(out, "agents");
    int total = 0, connected = 0, lost = 0, refused = 0, never = 0;
    const cJSON *ag;
    cJSON_ArrayForEach(ag, cJSON_GetObjectItem(status, "agents"))
    {
        const char *name = render_str(ag, "name", "?"), *st = render_str(ag, "state", "?");
        char object[96], msg[300];
        snprintf(object, sizeof object, "agent %s", name);
        total++;
        if (strcmp(st, "connected") == 0) {
            connected++;
        } else if (strcmp(st, "lost") == 0) {
            lost++;
            snprintf(msg, sizeof msg, "lost: no message for %.0f s",
                     render_num(ag, "last_seen_age_ms", 0) / 1000.0);
            s_problem(problems, "error", object, msg, "godwitctl status");
        } else if (strcmp(st, "refused") == 0) {
            refused++;
            snprintf(msg, sizeof msg, "refused: %s", render_str(ag, "refused", "its hello was refused"));
            s_problem(problems, "error", object, msg, "godwitctl status");
        } else {
            never++;
        }
    }
    cJSON_AddNumberToObject(a, "total", total);
    cJSON_AddNumberToObject(a, "connected", connected);
    cJSON_AddNumberToObject(a, "lost", lost);
    cJSON_AddNumberToObject(a, "refused", refused);
    cJSON_AddNumberToObject(a, "never_seen", never);
}

/* A migration's own problems. */
static void s_migration_problems(const cJSON *m, problems_t *problems)
{
    const char *name = render_str(m, "name", "?");
    char object[96], msg[600], cmd[128];
    snprintf(object, sizeof object, "migration %s", name);
    snprintf(cmd, sizeof cmd, "godwitctl migrate status %s", name);
    const char *stopped = render_str(m, "stopped_because", NULL);
    if (stopped) {
        snprintf(msg, sizeof msg, "stopped to protect the source: %s", stopped);
        s_problem(problems, "error", object, msg, cmd);
    }
    const cJSON *re = cJSON_GetObjectItem(m, "replication_error");
    if (cJSON_IsObject(re)) {
        snprintf(msg, sizeof msg, "replication error (%.0f times): %s", render_num(re, "times", 1),
                 render_str(re, "message", "?"));
        s_problem(problems, "error", object, msg, cmd);
    }
    const cJSON *v = cJSON_GetObjectItem(m, "verify");
    if (cJSON_IsObject(v) && strcmp(render_str(v, "state", ""), "different") == 0) {
        snprintf(msg, sizeof msg, "the last verify found differences");
        s_problem(problems, "error", object, msg, cmd);
    }
    const cJSON *ip = cJSON_GetObjectItem(m, "import_profile");
    const char *ip_err = cJSON_IsObject(ip) ? render_str(ip, "error", NULL) : NULL;
    if (ip_err) {
        snprintf(msg, sizeof msg, "import profile not reverted on %s (the cutover gate refuses): "
                 "%s", render_str(m, "target", "?"), ip_err);
        s_problem(problems, "error", object, msg, cmd);
    }
    const char *err = render_str(m, "last_error", NULL);
    if (err && render_num(m, "attempts", 0) > 0) {
        snprintf(msg, sizeof msg, "%s failing (%.0f attempts): %s", render_str(m, "state", "?"),
                 render_num(m, "attempts", 0), err);
        s_problem(problems, "warning", object, msg, cmd);
    }
    double lag_s = render_num(m, "lag_seconds", -1), max_lag_ms = render_num(m, "max_lag_ms", 0);
    if (strcmp(render_str(m, "state", ""), "streaming") == 0 && lag_s >= 0 && max_lag_ms > 0 &&
        lag_s * 1000 > max_lag_ms) {
        snprintf(msg, sizeof msg, "lag %.1f s, over max_lag (%.1f s): the cutover gate refuses",
                 lag_s, max_lag_ms / 1000);
        s_problem(problems, "warning", object, msg, cmd);
    }
    double held = render_num(m, "slot_retained_bytes", -1), limit = render_num(m, "slot_wal_limit_bytes", 0);
    if (held >= 0 && limit > 0 && held >= FLEETVIEW_SLOT_NEAR_LIMIT * limit) {
        snprintf(msg, sizeof msg, "slot holds %.0f %% of slot_wal_limit: at the limit godwit drops "
                 "it to protect the source", 100.0 * held / limit);
        s_problem(problems, "warning", object, msg, cmd);
    }
}

/* The one command to run next: what blocks first, then what moves the
 * fleet on (verify what streams unverified, cut over what is verified,
 * clean up what is switched), else what it is waiting for. */
static void s_next(cJSON *out, const cJSON *problems, bool paused, const cJSON *waves,
                   const char *unverified, int n_unverified, const char *ready, int n_ready,
                   const char *switched, int n_switched, int n_migrations)
{
    char cmd[160], why[420];
    const cJSON *p = cJSON_GetArrayItem(problems, 0);
    const char *waiting = render_str(waves, "waiting", "");
    if (p && strcmp(render_str(p, "severity", ""), "error") == 0) {
        snprintf(cmd, sizeof cmd, "%s", render_str(p, "command", "godwitctl status"));
        snprintf(why, sizeof why, "%s: fix the problems marked error first", render_str(p, "object", "?"));
    } else if (paused) {
        snprintf(cmd, sizeof cmd, "godwitctl fleet resume");
        snprintf(why, sizeof why, "the fleet is paused: no copy starts, no wave opens");
    } else if (strstr(waiting, "godwitctl fleet go opens it")) {
        snprintf(cmd, sizeof cmd, "godwitctl fleet go");
        snprintf(why, sizeof why, "%s", waiting);
    } else if (n_unverified) {
        snprintf(cmd, sizeof cmd, "godwitctl migrate verify %s", unverified);
        snprintf(why, sizeof why, "%d streaming migrations without an equal verify", n_unverified);
    } else if (n_ready) {
        snprintf(cmd, sizeof cmd, "godwitctl cutover %s --dry-run", ready);
        snprintf(why, sizeof why, "%d migrations streaming and verified equal: rehearse, then cut over",
                 n_ready);
    } else if (n_switched) {
        snprintf(cmd, sizeof cmd, "godwitctl cleanup %s", switched);
        snprintf(why, sizeof why, "%d migrations switched: clean up once a rollback is no longer "
                 "wanted", n_switched);
    } else if (n_migrations) {
        snprintf(cmd, sizeof cmd, "godwitctl fleet status --watch");
        snprintf(why, sizeof why, "nothing to decide: the migrations are on their way");
    } else {
        snprintf(cmd, sizeof cmd, "godwitctl migrate start PLAN");
        snprintf(why, sizeof why, "no migrations yet");
    }
    cJSON *n = cJSON_AddObjectToObject(out, "next");
    cJSON_AddStringToObject(n, "command", cmd);
    cJSON_AddStringToObject(n, "why", why);
}

/* Copies' bytes and rate added up. */
typedef struct {
    double done, total, rate;
} copysum_t;

/* A migration's running copy (its status' "copy") into sum. */
static void s_copy_add(copysum_t *sum, const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItem(m, "copy");
    sum->done += render_num(c, "bytes_done", 0);
    sum->total += render_num(c, "bytes_total", 0);
    sum->rate += render_num(c, "rate_bytes_per_sec", 0);
}

/* sum's bytes, rate and ETA (null while unknown) into c. */
static void s_copy_fields(cJSON *c, const copysum_t *sum)
{
    cJSON_AddNumberToObject(c, "bytes_done", sum->done);
    cJSON_AddNumberToObject(c, "bytes_total", sum->total);
    cJSON_AddNumberToObject(c, "rate_bytes_per_sec", sum->rate);
    if (sum->rate > 0 && sum->total > sum->done)
        cJSON_AddNumberToObject(c, "eta_seconds", (sum->total - sum->done) / sum->rate);
    else
        cJSON_AddNullToObject(c, "eta_seconds");
}

/* The schedule's waves (the `migrate status` answer's "waves"), each with
 * its copies' bytes and ETA; JSON null without a schedule. A stopped
 * schedule is a problem. */
static cJSON *s_waves(const cJSON *migrations, problems_t *pr)
{
    const cJSON *w = cJSON_GetObjectItem(migrations, "waves");
    if (!cJSON_IsObject(w))
        return cJSON_CreateNull();
    cJSON *out = cJSON_Duplicate(w, true);
    const cJSON *one;
    cJSON_ArrayForEach(one, cJSON_GetObjectItem(out, "waves"))
    {
        double k = render_num(one, "wave", 0);
        copysum_t sum = { 0 };
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(migrations, "migrations"))
        {
            if (render_num(m, "wave", 0) == k && strcmp(render_str(m, "state", ""), "copy") == 0 &&
                !cJSON_IsTrue(cJSON_GetObjectItem(m, "copy_queued")))
                s_copy_add(&sum, m);
        }
        s_copy_fields(cJSON_AddObjectToObject((cJSON *)one, "copy"), &sum);
    }
    const char *waiting = render_str(w, "waiting", "");
    if (strstr(waiting, "the schedule stopped"))
        s_problem(pr, "error", "fleet schedule", waiting, "godwitctl fleet go --accept-failures");
    return out;
}

cJSON *fleetview_build(const cJSON *status, const cJSON *migrations)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "schema", "godwit.fleet/1");
    cJSON *phases = cJSON_CreateObject();
    problems_t pr = { .errors = cJSON_CreateArray(), .warnings = cJSON_CreateArray() };
    s_agents(status, out, &pr);
    int n = 0, running = 0, queued = 0, v_equal = 0, v_diff = 0, v_running = 0, v_none = 0;
    int n_unverified = 0, n_ready = 0, n_switched = 0;
    const char *unverified = NULL, *ready = NULL, *switched = NULL;
    copysum_t sum = { 0 };
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(migrations, "migrations"))
    {
        const char *state = render_str(m, "state", "?"), *name = render_str(m, "name", "?");
        n++;
        s_count(phases, state);
        s_migration_problems(m, &pr);
        if (strcmp(state, "copy") == 0) {
            if (cJSON_IsTrue(cJSON_GetObjectItem(m, "copy_queued"))) {
                queued++;
            } else {
                running++;
                s_copy_add(&sum, m);
            }
        }
        if (strcmp(state, "switched") == 0 && !n_switched++)
            switched = name;
        if (strcmp(state, "streaming") != 0)
            continue;
        const cJSON *v = cJSON_GetObjectItem(m, "verify");
        const char *vs = cJSON_IsObject(v) ? render_str(v, "state", "") : "";
        if (strcmp(vs, "equal") == 0) {
            v_equal++;
            if (!n_ready++)
                ready = name;
        } else if (strcmp(vs, "different") == 0) {
            v_diff++;
        } else if (strcmp(vs, "running") == 0) {
            v_running++;
        } else {
            v_none++;
            if (!n_unverified++)
                unverified = name;
        }
    }
    cJSON_AddNumberToObject(out, "migrations", n);
    cJSON_AddItemToObject(out, "phases", phases);
    cJSON *c = cJSON_AddObjectToObject(out, "copy");
    cJSON_AddNumberToObject(c, "running", running);
    cJSON_AddNumberToObject(c, "queued", queued);
    s_copy_fields(c, &sum);
    cJSON *v = cJSON_AddObjectToObject(out, "verify");
    cJSON_AddNumberToObject(v, "equal", v_equal);
    cJSON_AddNumberToObject(v, "different", v_diff);
    cJSON_AddNumberToObject(v, "running", v_running);
    cJSON_AddNumberToObject(v, "not_verified", v_none);
    const cJSON *copies = cJSON_GetObjectItem(migrations, "copies");
    bool paused = cJSON_IsTrue(cJSON_GetObjectItem(copies, "fleet_paused"));
    cJSON_AddBoolToObject(out, "fleet_paused", paused);
    if (paused)
        s_problem(&pr, "warning", "fleet", "paused: no copy starts, the paused migrations stay paused",
                  "godwitctl fleet resume");
    cJSON *waves = s_waves(migrations, &pr);
    cJSON_AddItemToObject(out, "waves", waves);
    cJSON *problems = s_problems_join(&pr);
    cJSON_AddItemToObject(out, "problems", problems);
    s_next(out, problems, paused, waves, unverified, n_unverified, ready, n_ready, switched,
           n_switched, n);
    return out;
}
