/*
 * ctlserve: see ctlserve.h. Owns nothing past a request: a plan job (the
 * request's fields and its parsed plans) and a migrate start's second plan
 * live until their request is answered.
 */
#include "ctlserve.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents.h"
#include "coord_state.h"
#include "ctlcmd.h"
#include "log.h"
#include "plan.h"
#include "plancheck.h"
#include "proxycmd.h"
#include "units.h"
#include "xalloc.h"

#define RTT_WINDOW_MS 10000
#define PREFLIGHT_TIMEOUT_MS 60000

/* ---- control requests ---- */

static cJSON *s_status_json(coord_t *c)
{
    uint64_t now_ms = units_now_ms(), now_mono = units_mono_ms();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", true);
    cJSON_AddStringToObject(o, "schema", "godwit.status/1");
    cJSON_AddNumberToObject(o, "generated_at_ms", (double)now_ms);
    cJSON *co = cJSON_AddObjectToObject(o, "coordinator");
    cJSON_AddStringToObject(co, "version", GODWIT_VERSION);
    cJSON_AddNumberToObject(co, "pid", (double)getpid());
    cJSON_AddNumberToObject(co, "epoch", (double)c->epoch);
    cJSON_AddStringToObject(co, "listen", c->cfg->listen);
    cJSON_AddNumberToObject(co, "started_at_ms", (double)c->started_at_ms);
    cJSON_AddNumberToObject(co, "agents_allowed", (double)c->allow.count);
    cJSON_AddNumberToObject(co, "messages", (double)c->messages);
    cJSON_AddNumberToObject(co, "bad_messages", (double)c->bad_messages);
    cJSON_AddNumberToObject(co, "oversize_messages", (double)c->oversize_messages);
    cJSON_AddNumberToObject(co, "suspect_messages", (double)c->suspect_messages);
    const zap_stats_t *zs = zap_stats(c->zap);
    cJSON *ref = cJSON_AddObjectToObject(co, "refused");
    cJSON_AddNumberToObject(ref, "unknown_key", (double)zs->refused_unknown_key);
    cJSON_AddNumberToObject(ref, "not_curve", (double)zs->refused_other);
    cJSON_AddNumberToObject(ref, "handshake_failed", (double)c->handshake_failed);
    cJSON_AddNumberToObject(ref, "role", (double)c->refused_role);
    cJSON_AddNumberToObject(ref, "log_lines_suppressed",
                            (double)ratelimit_suppressed_total(c->refusal_log));
    /* Command round trips (pings) of the last RTT_WINDOW_MS. */
    static const double pcts[3] = { 50, 99, 100 };
    double q[3];
    size_t nq = fleet_rtt_window(c->fleet, now_mono, RTT_WINDOW_MS, pcts, q, 3);
    cJSON *rtt = cJSON_AddObjectToObject(co, "rtt_ms");
    cJSON_AddNumberToObject(rtt, "window_ms", RTT_WINDOW_MS);
    cJSON_AddNumberToObject(rtt, "samples", (double)nq);
    cJSON_AddNumberToObject(rtt, "total_samples", (double)fleet_rtt_samples(c->fleet));
    if (nq) {
        cJSON_AddNumberToObject(rtt, "p50", q[0]);
        cJSON_AddNumberToObject(rtt, "p99", q[1]);
        cJSON_AddNumberToObject(rtt, "max", q[2]);
    }
    cJSON *agents = cJSON_AddArrayToObject(o, "agents");
    for (size_t i = 0; i < fleet_count(c->fleet); i++)
        cJSON_AddItemToArray(agents, fleet_agent_json(fleet_at(c->fleet, i), now_ms, now_mono));
    return o;
}

/* ---- plans, parsed on the thread pool ---- */

/* A plan from the control socket is parsed off the loop: a large plan, or
 * a hostile one, must not stall the agents' links, the leases' renewals or
 * a signal for the time the parse takes. Parsing is pure (the config
 * loader keeps no state, logs nothing), so a pool thread may run it. */
typedef struct planjob planjob_t;
typedef void (*planjob_cb)(planjob_t *j);

struct planjob {
    uv_work_t work;
    coord_t *c;
    control_req_t *req;
    char *file, *text, *only;  /* owned copies from the request */
    int copies;                /* plans to parse from the text (1 or 2) */
    plan_t *plan[2];           /* parsed (heap), or NULL with err set */
    char err[1024];
    planjob_cb done;
};

static void s_planjob_free(planjob_t *j)
{
    for (int i = 0; i < 2; i++) {
        if (j->plan[i]) {
            plan_free(j->plan[i]);
            free(j->plan[i]);
        }
    }
    free(j->file);
    free(j->text);
    free(j->only);
    free(j);
}

static void s_planjob_work(uv_work_t *w)
{
    planjob_t *j = w->data;
    for (int i = 0; i < j->copies; i++) {
        plan_t *p = xcalloc(1, sizeof *p);
        if (!plan_load_string(j->file, j->text, p, j->err, sizeof j->err)) {
            free(p);
            return;
        }
        j->plan[i] = p;
    }
}

static void s_planjob_after(uv_work_t *w, int status)
{
    planjob_t *j = w->data;
    if (status != 0 || j->c->stopping) {
        /* The control endpoint is gone with its requests: nobody to answer. */
        s_planjob_free(j);
        return;
    }
    if (!j->plan[0] || (j->copies == 2 && !j->plan[1])) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", false);
        cJSON_AddBoolToObject(r, "invalid_plan", true);
        cJSON_AddStringToObject(r, "error", j->err);
        control_reply(j->req, r);
        s_planjob_free(j);
        return;
    }
    j->done(j);
}

/* Reads "file" and "text" (and "name") of request and parses the plan
 * `copies` times on the pool; done gets the job (and frees it) only for a
 * plan that loaded; a bad one is answered here. False (answered) if the
 * request lacks the fields. */
static bool s_planjob_start(coord_t *c, control_req_t *req, const cJSON *request, int copies,
                            planjob_cb done)
{
    const cJSON *file = cJSON_GetObjectItem(request, "file");
    const cJSON *text = cJSON_GetObjectItem(request, "text");
    const cJSON *only = cJSON_GetObjectItem(request, "name");
    if (!cJSON_IsString(file) || !cJSON_IsString(text)) {
        control_reply_error(req, "this command needs \"file\" and \"text\"");
        return false;
    }
    planjob_t *j = xcalloc(1, sizeof *j);
    j->c = c;
    j->req = req;
    j->file = xstrdup(file->valuestring);
    j->text = xstrdup(text->valuestring);
    j->only = cJSON_IsString(only) ? xstrdup(only->valuestring) : NULL;
    j->copies = copies;
    j->done = done;
    j->work.data = j;
    int rc = uv_queue_work(c->loop, &j->work, s_planjob_work, s_planjob_after);
    if (rc != 0) {
        control_reply_error(req, uv_strerror(rc));
        s_planjob_free(j);
        return false;
    }
    return true;
}

static void s_plancheck_done(cJSON *report, void *arg)
{
    control_reply(arg, report);
}

static void s_plan_check_parsed(planjob_t *j)
{
    plan_t *plan = j->plan[0];
    j->plan[0] = NULL;
    log_info("plan %s: checking %zu migrations", j->file, plan_count(plan));
    plancheck_start(&j->c->link, j->file, plan, NULL, PREFLIGHT_TIMEOUT_MS, s_plancheck_done, j->req);
    s_planjob_free(j);
}

/* {"cmd":"plan_check","file":NAME,"text":YAML}: the plan travels in the
 * request so errors name the operator's file. */
static void s_plan_check(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_planjob_start(c, req, request, 1, s_plan_check_parsed);
}

/* ---- the audit trail ---- */

/* Journals, in migration name's trail, that the client of req ran command
 * (extra: more fields, taken, or NULL) and its outcome ("accepted",
 * "requested" before a command whose start must not wait for the journal,
 * "refused" with error). The client is who the kernel says connected,
 * never what the request claims. */
static void s_audit(coord_t *c, const control_req_t *req, const char *name, const char *command,
                    cJSON *extra, const char *outcome, const char *error)
{
    cJSON *d = extra ? extra : cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command", command);
    control_peer_t p;
    if (control_req_peer(req, &p)) {
        cJSON *by = cJSON_AddObjectToObject(d, "by");
        cJSON_AddNumberToObject(by, "uid", (double)p.uid);
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwuid_r((uid_t)p.uid, &pw, buf, sizeof buf, &found) == 0 && found)
            cJSON_AddStringToObject(by, "user", found->pw_name);
        cJSON_AddNumberToObject(by, "pid", (double)p.pid);
    }
    cJSON_AddStringToObject(d, "outcome", outcome);
    if (error)
        cJSON_AddStringToObject(d, "error", error);
    char *text = cJSON_PrintUnformatted(d);
    migset_note(c->migs, name, "operator", text);
    free(text);
    cJSON_Delete(d);
}

static void s_audit_event(uint64_t at_ms, const char *state, const char *kind, const char *detail,
                          void *arg)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "at_ms", (double)at_ms);
    cJSON_AddStringToObject(e, "state", state);
    cJSON_AddStringToObject(e, "kind", kind);
    /* A detail that is a JSON object stays one; text stays text. */
    cJSON *obj = detail[0] == '{' ? cJSON_Parse(detail) : NULL;
    if (cJSON_IsObject(obj)) {
        cJSON_AddItemToObject(e, "detail", obj);
    } else {
        cJSON_Delete(obj);
        cJSON_AddStringToObject(e, "detail", detail);
    }
    cJSON_AddItemToArray(arg, e);
}

/* {"cmd":"migrate_audit","name":M}: every event journaled for M since it
 * was created (phases, steps' intents and failures, verifies, cutover
 * steps, the operator's commands and who ran them), oldest first. */
static void s_migrate_audit(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    if (!cJSON_IsString(name)) {
        control_reply_error(req, "this command needs \"name\"");
        return;
    }
    const char *state = migset_state(c->migs, name->valuestring);
    if (!state) {
        control_reply_error(req, "no migration of that name");
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, "schema", "godwit.audit/1");
    cJSON_AddStringToObject(r, "migration", name->valuestring);
    cJSON_AddStringToObject(r, "state", state);
    cJSON_AddNumberToObject(r, "generated_at_ms", (double)units_now_ms());
    cJSON *events = cJSON_AddArrayToObject(r, "events");
    if (!journal_events(c->journal, name->valuestring, s_audit_event, events)) {
        cJSON_Delete(r);
        control_reply_error(req, "the journal cannot be read");
        return;
    }
    control_reply(req, r);
}

/* migrate start: preflight first; only a plan with nothing blocking starts. */
typedef struct {
    coord_t *c;
    control_req_t *req;
    char *only;
    char *file;   /* the plan's file name, as the operator gave it */
    plan_t *plan; /* the second copy: the one started */
} mstart_t;

static void s_mstart_free(mstart_t *ms)
{
    plan_free(ms->plan);
    free(ms->plan);
    free(ms->only);
    free(ms->file);
    free(ms);
}

static void s_mstart_checked(cJSON *report, void *arg)
{
    mstart_t *ms = arg;
    coord_t *c = ms->c;
    double blocking = cJSON_GetNumberValue(cJSON_GetObjectItem(report, "blocking"));
    if (blocking > 0 || c->stopping) {
        cJSON_ReplaceItemInObject(report, "ok", cJSON_CreateFalse());
        cJSON_AddStringToObject(report, "error", c->stopping ? "coordinator stopping"
                                                             : "preflight found blocking problems; "
                                                               "nothing was started");
        control_reply(ms->req, report);
        s_mstart_free(ms);
        return;
    }
    cJSON_Delete(report);
    char err[1024];
    cJSON *r = cJSON_CreateObject();
    cJSON *started = cJSON_AddArrayToObject(r, "started");
    /* A plan with waves starts them as a schedule (one migration named by
     * the operator starts at once). */
    bool waves = ms->plan->waves.size > 0 && !ms->only;
    bool ok = !waves || migset_schedule(c->migs, &ms->plan->waves, err, sizeof err);
    unsigned last_wave = 0;
    for (size_t i = 0; ok && i < plan_count(ms->plan); i++) {
        plan_migration_t *m = plan_at(ms->plan, i);
        if (ms->only && strcmp(m->name, ms->only) != 0)
            continue;
        unsigned wave = waves ? plan_wave(ms->plan, i) : 0;
        ok = migset_start(c->migs, m, wave, err, sizeof err);
        if (ok) {
            last_wave = wave;
            cJSON_AddItemToArray(started, cJSON_CreateString(m->name));
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "plan", ms->file);
            if (wave)
                cJSON_AddNumberToObject(x, "wave", wave);
            s_audit(c, ms->req, m->name, "migrate_start", x, "accepted", NULL);
        }
    }
    if (waves)
        cJSON_AddNumberToObject(r, "waves", last_wave);
    cJSON_AddBoolToObject(r, "ok", ok);
    if (!ok)
        cJSON_AddStringToObject(r, "error", err);
    control_reply(ms->req, r);
    s_mstart_free(ms);
}

static void s_migrate_start_parsed(planjob_t *j)
{
    if (j->only && !plan_find(j->plan[0], j->only)) {
        control_reply_error(j->req, "the plan has no migration of that name");
        s_planjob_free(j);
        return;
    }
    mstart_t *ms = xcalloc(1, sizeof *ms);
    ms->c = j->c;
    ms->req = j->req;
    ms->only = j->only ? xstrdup(j->only) : NULL;
    ms->file = xstrdup(j->file);
    ms->plan = j->plan[1];
    j->plan[1] = NULL;
    plan_t *check = j->plan[0];
    j->plan[0] = NULL;
    plancheck_start(&j->c->link, j->file, check, ms->only, PREFLIGHT_TIMEOUT_MS, s_mstart_checked, ms);
    s_planjob_free(j);
}

/* {"cmd":"migrate_start","file":NAME,"text":YAML[,"name":M]}: two copies
 * of the plan, one for the preflight (which owns and frees it) and the one
 * started once the preflight found nothing blocking. */
static void s_migrate_start(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_planjob_start(c, req, request, 2, s_migrate_start_parsed);
}

static void s_migrate_status(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    cJSON *list = NULL;
    if (cJSON_IsString(name)) {
        cJSON *one = migset_status(c->migs, name->valuestring);
        if (!one) {
            control_reply_error(req, "no migration of that name");
            return;
        }
        list = cJSON_CreateArray();
        cJSON_AddItemToArray(list, one);
    } else {
        list = migset_status(c->migs, NULL);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, "schema", "godwit.migrations/1");
    cJSON_AddNumberToObject(r, "generated_at_ms", (double)units_now_ms());
    cJSON_AddItemToObject(r, "copies", migset_copies_json(c->migs));
    cJSON_AddItemToObject(r, "waves", migset_waves_json(c->migs));
    cJSON_AddItemToObject(r, "migrations", list);
    control_reply(req, r);
}

/* migrate_abort, migrate_pause, migrate_resume: {"name": M}. */
static void s_migrate_change(coord_t *c, control_req_t *req, const cJSON *request,
                             bool (*fn)(migset_t *, const char *, char *, size_t),
                             const char *done_word)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    const char *command = cJSON_GetObjectItem(request, "cmd")->valuestring;
    char err[512];
    if (!cJSON_IsString(name)) {
        control_reply_error(req, "this command needs \"name\"");
        return;
    }
    if (!fn(c->migs, name->valuestring, err, sizeof err)) {
        s_audit(c, req, name->valuestring, command, NULL, "refused", err);
        control_reply_error(req, err);
        return;
    }
    s_audit(c, req, name->valuestring, command, NULL, "accepted", NULL);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, done_word, name->valuestring);
    control_reply(req, r);
}

/* {"cmd":"cutover","names":[M, ...][,"dry_run"][,"rollback"]}: a cutover
 * (or rollback) group, each member's request and outcome in its audit
 * trail. */
static void s_cutover_group(coord_t *c, control_req_t *req, const cJSON *names, bool back,
                            bool dry)
{
    size_t n = (size_t)cJSON_GetArraySize(names);
    if (n < 2 || n > 1000) {
        control_reply_error(req, "a cutover group names 2 to 1000 migrations");
        return;
    }
    const char **v = xcalloc(n, sizeof *v);
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, names)
    {
        if (!cJSON_IsString(e)) {
            free(v);
            control_reply_error(req, "\"names\" holds migration names");
            return;
        }
        v[k++] = e->valuestring;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddBoolToObject(x, "dry_run", dry);
        cJSON_AddBoolToObject(x, "rollback", back);
        cJSON_AddNumberToObject(x, "group", (double)n);
        s_audit(c, req, v[i], "cutover", x, "requested", NULL);
    }
    char err[800];
    bool refused;
    if (!migset_cutover_group(c->migs, v, n, back, dry, &refused, err, sizeof err)) {
        for (size_t i = 0; i < n; i++)
            s_audit(c, req, v[i], "cutover", NULL, "refused", err);
        free(v);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", false);
        cJSON_AddStringToObject(r, "error", err);
        cJSON_AddBoolToObject(r, "refused", refused);
        control_reply(req, r);
        return;
    }
    free(v);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddItemToObject(r, dry ? "rehearsing" : back ? "rolling_back" : "cutting_over",
                          cJSON_Duplicate(names, true));
    control_reply(req, r);
}

/* cutover: {"name": M, "dry_run": bool, "rollback": bool}, or a group's
 * {"names": [...]} (above). */
static void s_cutover(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "name");
    const cJSON *names = cJSON_GetObjectItem(request, "names");
    char err[800];
    if (cJSON_IsArray(names)) {
        s_cutover_group(c, req, names, cJSON_IsTrue(cJSON_GetObjectItem(request, "rollback")),
                        cJSON_IsTrue(cJSON_GetObjectItem(request, "dry_run")));
        return;
    }
    if (!cJSON_IsString(name)) {
        control_reply_error(req, "cutover needs \"name\"");
        return;
    }
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(request, "dry_run"));
    bool back = cJSON_IsTrue(cJSON_GetObjectItem(request, "rollback"));
    bool refused;
    /* Journaled before it starts: nothing waits for the disk once the
     * write pause may have begun. */
    cJSON *x = cJSON_CreateObject();
    cJSON_AddBoolToObject(x, "dry_run", dry);
    cJSON_AddBoolToObject(x, "rollback", back);
    s_audit(c, req, name->valuestring, "cutover", cJSON_Duplicate(x, true), "requested", NULL);
    if (!migset_cutover(c->migs, name->valuestring, back, dry, &refused, err, sizeof err)) {
        s_audit(c, req, name->valuestring, "cutover", x, "refused", err);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", false);
        cJSON_AddStringToObject(r, "error", err);
        cJSON_AddBoolToObject(r, "refused", refused); /* by a gate: nothing changed */
        control_reply(req, r);
        return;
    }
    cJSON_Delete(x);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddStringToObject(r, dry ? "rehearsing" : back ? "rolling_back" : "cutting_over",
                            name->valuestring);
    control_reply(req, r);
}

static void s_ctl_status(coord_t *c, control_req_t *req, const cJSON *request)
{
    (void)request;
    control_reply(req, s_status_json(c));
}

static void s_ctl_ping(coord_t *c, control_req_t *req, const cJSON *request)
{
    const cJSON *name = cJSON_GetObjectItem(request, "agent");
    fleet_agent_t *a = cJSON_IsString(name) ? fleet_find(c->fleet, name->valuestring) : NULL;
    if (!a) {
        control_reply_error(req, "no such agent in the allow-list");
        return;
    }
    if (a->state != LINK_CONNECTED) {
        control_reply_error(req, "agent is not connected");
        return;
    }
    agents_ctl_ping(c, req, a);
}

static void s_ctl_proxy(coord_t *c, control_req_t *req, const cJSON *request)
{
    proxycmd_handle(&c->link, req, request);
}

static void s_ctl_abort(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_abort, "aborting");
}

static void s_ctl_pause(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_pause, "pausing");
}

static void s_ctl_resume(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_resume, "resuming");
}

static void s_ctl_verify(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_verify, "verifying");
}

static void s_ctl_cleanup(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_migrate_change(c, req, request, migset_cleanup, "cleaning_up");
}

typedef enum { FLEET_PAUSE, FLEET_RESUME, FLEET_ABORT } fleet_change_t;

/* fleet_pause, fleet_resume, fleet_abort: [{"wave": N}] (none: the whole
 * fleet). Each migration changed gets the command in its audit trail. */
static void s_fleet_change(coord_t *c, control_req_t *req, const cJSON *request,
                           fleet_change_t change)
{
    const char *command = cJSON_GetObjectItem(request, "cmd")->valuestring;
    const cJSON *w = cJSON_GetObjectItem(request, "wave");
    if (w && (!cJSON_IsNumber(w) || w->valuedouble < 1 || w->valuedouble > 100000)) {
        control_reply_error(req, "\"wave\" is a wave's number (1: the canary)");
        return;
    }
    unsigned wave = w ? (unsigned)w->valuedouble : 0;
    cJSON *changed = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    char err[256];
    bool ok = change == FLEET_ABORT
                  ? migset_fleet_abort(c->migs, wave, changed, skipped, err, sizeof err)
                  : migset_fleet_pause(c->migs, change == FLEET_PAUSE, wave, changed, skipped,
                                       err, sizeof err);
    if (!ok) {
        cJSON_Delete(changed);
        cJSON_Delete(skipped);
        control_reply_error(req, err);
        return;
    }
    const cJSON *n;
    cJSON_ArrayForEach(n, changed)
    {
        cJSON *x = NULL;
        if (wave) {
            x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "wave", wave);
        }
        s_audit(c, req, n->valuestring, command, x, "accepted", NULL);
    }
    static const char *const s_done_word[] = { "paused", "resumed", "aborting" };
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    if (wave)
        cJSON_AddNumberToObject(r, "wave", wave);
    cJSON_AddBoolToObject(r, "fleet_paused", migset_fleet_paused(c->migs));
    cJSON_AddItemToObject(r, s_done_word[change], changed);
    cJSON_AddItemToObject(r, "skipped", skipped);
    control_reply(req, r);
}

static void s_ctl_fleet_pause(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_fleet_change(c, req, request, FLEET_PAUSE);
}

static void s_ctl_fleet_resume(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_fleet_change(c, req, request, FLEET_RESUME);
}

static void s_ctl_fleet_abort(coord_t *c, control_req_t *req, const cJSON *request)
{
    s_fleet_change(c, req, request, FLEET_ABORT);
}

/* fleet_go: [{"accept_failures": true}]: the schedule's next wave opens
 * once its gate passes. */
static void s_ctl_fleet_go(coord_t *c, control_req_t *req, const cJSON *request)
{
    bool accept = cJSON_IsTrue(cJSON_GetObjectItem(request, "accept_failures"));
    unsigned wave = 0;
    char err[256];
    if (!migset_fleet_go(c->migs, accept, &wave, err, sizeof err)) {
        control_reply_error(req, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", true);
    cJSON_AddNumberToObject(r, "wave", wave);
    cJSON_AddBoolToObject(r, "accept_failures", accept);
    cJSON_AddItemToObject(r, "waves", migset_waves_json(c->migs));
    control_reply(req, r);
}

/* The handler of each control command (ctlcmd.h). */
static void (*const s_ctl_handlers[CTLCMD__COUNT])(coord_t *c, control_req_t *req,
                                                    const cJSON *request) = {
    [CTLCMD_STATUS] = s_ctl_status,
    [CTLCMD_PING] = s_ctl_ping,
    [CTLCMD_PROXY] = s_ctl_proxy,
    [CTLCMD_PLAN_CHECK] = s_plan_check,
    [CTLCMD_MIGRATE_START] = s_migrate_start,
    [CTLCMD_MIGRATE_STATUS] = s_migrate_status,
    [CTLCMD_MIGRATE_ABORT] = s_ctl_abort,
    [CTLCMD_MIGRATE_PAUSE] = s_ctl_pause,
    [CTLCMD_MIGRATE_RESUME] = s_ctl_resume,
    [CTLCMD_MIGRATE_VERIFY] = s_ctl_verify,
    [CTLCMD_MIGRATE_CLEANUP] = s_ctl_cleanup,
    [CTLCMD_CUTOVER] = s_cutover,
    [CTLCMD_MIGRATE_AUDIT] = s_migrate_audit,
    [CTLCMD_FLEET_PAUSE] = s_ctl_fleet_pause,
    [CTLCMD_FLEET_RESUME] = s_ctl_fleet_resume,
    [CTLCMD_FLEET_ABORT] = s_ctl_fleet_abort,
    [CTLCMD_FLEET_GO] = s_ctl_fleet_go,
};

void ctlserve_handle(control_req_t *req, const cJSON *request, void *arg)
{
    coord_t *c = arg;
    ctlcmd_t cmd;
    if (!ctlcmd_parse(cJSON_GetObjectItem(request, "cmd")->valuestring, &cmd) ||
        !s_ctl_handlers[cmd]) {
        control_reply_error(req, "unknown command");
        return;
    }
    s_ctl_handlers[cmd](c, req, request);
}
