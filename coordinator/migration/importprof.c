/*
 * importprof: see importprof.h. The record, journaled whole at each stage
 * (event "import_profile"):
 *
 *   {"stage": "read" | "applied" | "reverted",
 *    "settings": [{"name": "max_wal_size", "value": "16384MB",
 *                  "was": {"setting": "1GB", "in_auto_conf": false,
 *                          "auto_conf_value": ""},
 *                  "now": "16GB", "shared_from": "other"}]}
 *
 * "was" is what REVERT restores and checks; "shared_from" names the
 * migration whose record it was taken from (same target, not reverted).
 */
#include "importprof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migration.h"
#include "plan.h"
#include "xalloc.h"

#define S_RETRY_MS 5000
#define S_REVERT_TIMEOUT_MS 30000

static const char *const s_stage_names[] = { "none", "read", "applied", "reverted" };

static importprof_stage_t s_stage_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, s_stage_names[i]) == 0)
            return (importprof_stage_t)i;
    return IMPORTPROF_NONE;
}

/* The states of the initial load, in which the profile stays applied. */
static bool s_in_window(mstate_t s)
{
    return s == M_TUNE || s == M_COPY || s == M_CATCHUP || s == M_POSTDATA;
}

static bool s_holds_prior(const migration_t *h)
{
    return h->import.stage == IMPORTPROF_READ || h->import.stage == IMPORTPROF_APPLIED;
}

static bool s_same_target(const migration_t *a, const migration_t *b)
{
    return a != b && strcmp(a->m->target.agent, b->m->target.agent) == 0;
}

static cJSON *s_settings(const migration_t *g)
{
    return g->import.record ? cJSON_GetObjectItem(g->import.record, "settings") : NULL;
}

static const char *s_str(const cJSON *o, const char *key)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return v ? v : "";
}

/* The recorded entry of setting name in g's record, or NULL. */
static cJSON *s_entry(const migration_t *g, const char *name)
{
    cJSON *e;
    cJSON_ArrayForEach(e, s_settings(g)) {
        if (strcmp(s_str(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

/* Journals g's record as it is now; false (logged) if the journal refused. */
static bool s_journal(migration_t *g)
{
    char *text = cJSON_PrintUnformatted(g->import.record);
    bool ok = text && journal_event(g->env->journal, g->m->name, migration_state_name(g->state),
                                    "import_profile", text);
    cJSON_free(text);
    if (!ok)
        log_error_about(log_about_migration(g->m->name),
                        "migration %s: cannot journal its import profile", g->m->name);
    return ok;
}

void importprof_load(migration_t *g)
{
    char *last = journal_last_event(g->env->journal, g->m->name, "import_profile");
    if (!last)
        return;
    g->import.record = cJSON_Parse(last);
    free(last);
    if (g->import.record)
        g->import.stage = s_stage_parse(s_str(g->import.record, "stage"));
}

void importprof_clear(importprof_t *ip)
{
    cJSON_Delete(ip->record);
    ip->record = NULL;
    free(ip->error);
    ip->error = NULL;
}

bool importprof_wanted(const migration_t *g)
{
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    return plan_import_settings(g->m, set) > 0;
}

Godwit__ImportProfile__Mode importprof_tune_mode(const migration_t *g)
{
    return g->import.stage == IMPORTPROF_NONE ? GODWIT__IMPORT_PROFILE__MODE__MODE_READ
                                              : GODWIT__IMPORT_PROFILE__MODE__MODE_APPLY;
}

void importprof_command(const migration_t *g, Godwit__ImportProfile__Mode mode,
                        Godwit__Command *cmd, Godwit__ImportProfile *req,
                        Godwit__ImportSetting *settings, Godwit__ImportSetting **ptrs)
{
    /* READ names the plan's settings; the others carry the record, whose
     * values are the plan's too. */
    *cmd = (Godwit__Command)GODWIT__COMMAND__INIT;
    cmd->action_case = GODWIT__COMMAND__ACTION_IMPORT_PROFILE;
    *req = (Godwit__ImportProfile)GODWIT__IMPORT_PROFILE__INIT;
    req->database = g->m->target.database;
    req->mode = mode;
    size_t n = 0;
    if (req->mode == GODWIT__IMPORT_PROFILE__MODE__MODE_READ) {
        plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
        size_t k = plan_import_settings(g->m, set);
        for (size_t i = 0; i < k; i++) {
            settings[n] = (Godwit__ImportSetting)GODWIT__IMPORT_SETTING__INIT;
            settings[n].name = (char *)set[i].name; /* static */
            ptrs[n] = &settings[n];
            n++;
        }
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, s_settings(g)) {
            if (n == PLAN_IMPORT_SETTINGS_MAX)
                break;
            const cJSON *was = cJSON_GetObjectItem(e, "was");
            settings[n] = (Godwit__ImportSetting)GODWIT__IMPORT_SETTING__INIT;
            settings[n].name = (char *)s_str(e, "name");
            settings[n].value = (char *)s_str(e, "value");
            settings[n].setting = (char *)s_str(was, "setting");
            settings[n].in_auto_conf = cJSON_IsTrue(cJSON_GetObjectItem(was, "in_auto_conf"));
            settings[n].auto_conf_value = (char *)s_str(was, "auto_conf_value");
            ptrs[n] = &settings[n];
            n++;
        }
    }
    req->n_settings = n;
    req->settings = ptrs;
    cmd->import_profile = req;
}

/* The state before of setting name: another migration's on the same
 * target that recorded one and has not reverted (it changed the setting
 * first, so what the server shows now may be its value), else what was
 * read. */
static const cJSON *s_shared_was(const migration_t *g, const char *name, const char **from)
{
    for (migration_t *h = g->env->migs ? *g->env->migs : NULL; h; h = h->next) {
        if (!s_same_target(g, h) || !s_holds_prior(h))
            continue;
        const cJSON *e = s_entry(h, name);
        if (e) {
            *from = h->m->name;
            return cJSON_GetObjectItem(e, "was");
        }
    }
    return NULL;
}

static const Godwit__ImportSetting *s_answer(const Godwit__ImportProfileResult *r,
                                             const char *name)
{
    for (size_t i = 0; r && i < r->n_settings; i++)
        if (r->settings[i]->name && strcmp(r->settings[i]->name, name) == 0)
            return r->settings[i];
    return NULL;
}

static void s_set_now(cJSON *e, const Godwit__ImportProfileResult *r)
{
    const Godwit__ImportSetting *a = s_answer(r, s_str(e, "name"));
    cJSON_DeleteItemFromObject(e, "now");
    cJSON_AddStringToObject(e, "now", a && a->setting ? a->setting : "?");
}

/* The record of a READ's answer: each setting's state before. */
static cJSON *s_record_read(const migration_t *g, const Godwit__ImportProfileResult *r,
                            char *why, size_t whylen)
{
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    size_t k = plan_import_settings(g->m, set);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "stage", s_stage_names[IMPORTPROF_READ]);
    cJSON *list = cJSON_AddArrayToObject(rec, "settings");
    for (size_t i = 0; i < k; i++) {
        const Godwit__ImportSetting *a = s_answer(r, set[i].name);
        if (!a) {
            snprintf(why, whylen, "the target did not answer for setting %s", set[i].name);
            cJSON_Delete(rec);
            return NULL;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(list, e);
        cJSON_AddStringToObject(e, "name", set[i].name);
        cJSON_AddStringToObject(e, "value", set[i].value);
        const char *from = NULL;
        const cJSON *shared = s_shared_was(g, set[i].name, &from);
        if (shared) {
            cJSON_AddItemToObject(e, "was", cJSON_Duplicate(shared, true));
            cJSON_AddStringToObject(e, "shared_from", from);
        } else {
            cJSON *was = cJSON_AddObjectToObject(e, "was");
            cJSON_AddStringToObject(was, "setting", a->setting ? a->setting : "");
            cJSON_AddBoolToObject(was, "in_auto_conf", a->in_auto_conf);
            cJSON_AddStringToObject(was, "auto_conf_value",
                                    a->auto_conf_value ? a->auto_conf_value : "");
        }
        s_set_now(e, r);
    }
    return rec;
}

static void s_set_stage(migration_t *g, importprof_stage_t st)
{
    cJSON_DeleteItemFromObject(g->import.record, "stage");
    cJSON_AddStringToObject(g->import.record, "stage", s_stage_names[st]);
    g->import.stage = st;
}

bool importprof_answered(migration_t *g, const Godwit__ImportProfileResult *r, char *why,
                         size_t whylen)
{
    if (g->import.stage == IMPORTPROF_NONE) {
        cJSON *rec = s_record_read(g, r, why, whylen);
        if (!rec)
            return false;
        g->import.record = rec;
        g->import.stage = IMPORTPROF_READ;
        if (!s_journal(g)) {
            /* Not recorded: nothing may change. */
            cJSON_Delete(g->import.record);
            g->import.record = NULL;
            g->import.stage = IMPORTPROF_NONE;
            snprintf(why, whylen, "the journal did not take the settings' state before the "
                     "import; nothing was changed");
        }
        return false;
    }
    cJSON *e;
    cJSON_ArrayForEach(e, s_settings(g))
        s_set_now(e, r);
    s_set_stage(g, IMPORTPROF_APPLIED);
    s_journal(g); /* the revert does not depend on it: "read" already makes it due */
    return true;
}

/* ---- the revert ------------------------------------------------------------ */

static void s_revert_done(const char *agent, const Godwit__Result *r, const char *error,
                          void *arg)
{
    migration_t *g = arg;
    g->import.busy = false;
    if (r && r->status == GODWIT__STATUS__STATUS_OK &&
        r->payload_case == GODWIT__RESULT__PAYLOAD_IMPORT_PROFILE) {
        cJSON *e;
        cJSON_ArrayForEach(e, s_settings(g))
            s_set_now(e, r->import_profile);
        s_set_stage(g, IMPORTPROF_REVERTED);
        free(g->import.error);
        g->import.error = NULL;
        s_journal(g);
        log_info_about(log_about_migration(g->m->name),
                       "migration %s: the import profile is reverted on %s (checked)",
                       g->m->name, agent);
        return;
    }
    const char *msg = r ? (r->message && r->message[0] ? r->message : "no reason given") : error;
    g->import.next_mono = agentlink_mono_ms(g->env->link) + S_RETRY_MS;
    if (!g->import.error || strcmp(g->import.error, msg) != 0) {
        log_warn_about(log_about_migration(g->m->name),
                       "migration %s: reverting the import profile on %s failed (again every "
                       "%d s): %s", g->m->name, agent, S_RETRY_MS / 1000, msg);
        journal_event(g->env->journal, g->m->name, migration_state_name(g->state), "failed",
                      msg);
    }
    free(g->import.error);
    g->import.error = xstrdup(msg);
}

/* Another migration still loading into g's target with its profile on
 * (its revert would come later and put back the same state), or NULL. */
static const migration_t *s_holder(const migration_t *g)
{
    for (migration_t *h = g->env->migs ? *g->env->migs : NULL; h; h = h->next)
        if (s_same_target(g, h) && s_in_window(h->state) && importprof_wanted(h) &&
            h->import.stage != IMPORTPROF_REVERTED)
            return h;
    return NULL;
}

void importprof_tick(migration_t *g, uint64_t now)
{
    if (!s_holds_prior(g) || s_in_window(g->state) || g->import.busy || g->import.tuning ||
        now < g->import.next_mono)
        return;
    const migration_t *h = s_holder(g);
    snprintf(g->import.held_by, sizeof g->import.held_by, "%s", h ? h->m->name : "");
    if (h)
        return;
    if (!agentlink_role(g->env->link, g->m->target.agent)) {
        g->import.next_mono = now + 1000;
        return;
    }
    Godwit__Command cmd;
    Godwit__ImportProfile req;
    Godwit__ImportSetting settings[PLAN_IMPORT_SETTINGS_MAX];
    Godwit__ImportSetting *ptrs[PLAN_IMPORT_SETTINGS_MAX];
    importprof_command(g, GODWIT__IMPORT_PROFILE__MODE__MODE_REVERT, &cmd, &req, settings, ptrs);
    g->import.busy = true;
    agentlink_send(g->env->link, g->m->target.agent, &cmd, S_REVERT_TIMEOUT_MS, s_revert_done, g);
}

bool importprof_pending(const migration_t *g, char *why, size_t whylen)
{
    if (!s_holds_prior(g))
        return false;
    if (s_in_window(g->state))
        snprintf(why, whylen, "the import profile is applied on %s: the initial load is "
                 "running", g->m->target.agent);
    else if (g->import.held_by[0])
        snprintf(why, whylen, "the import profile stays applied on %s while migration %s "
                 "loads into the same server", g->m->target.agent, g->import.held_by);
    else if (g->import.error)
        snprintf(why, whylen, "the import profile is not reverted on %s yet: %s",
                 g->m->target.agent, g->import.error);
    else
        snprintf(why, whylen, "the import profile is being reverted on %s", g->m->target.agent);
    return true;
}

cJSON *importprof_status(const migration_t *g)
{
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    size_t k = plan_import_settings(g->m, set);
    if (!k)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", s_stage_names[g->import.stage]);
    cJSON *list = cJSON_AddArrayToObject(o, "settings");
    for (size_t i = 0; i < k; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddItemToArray(list, s);
        cJSON_AddStringToObject(s, "name", set[i].name);
        cJSON_AddStringToObject(s, "value", set[i].value);
        const cJSON *e = s_entry(g, set[i].name);
        if (e) {
            cJSON_AddStringToObject(s, "was", s_str(cJSON_GetObjectItem(e, "was"), "setting"));
            cJSON_AddStringToObject(s, "now", s_str(e, "now"));
        }
    }
    char why[512];
    if (importprof_pending(g, why, sizeof why))
        cJSON_AddStringToObject(o, "pending", why);
    if (g->import.error)
        cJSON_AddStringToObject(o, "error", g->import.error);
    if (g->import.held_by[0])
        cJSON_AddStringToObject(o, "held_by", g->import.held_by);
    return o;
}
