/*
 * plancheck: see plancheck.h. Owns the plan, the per-migration state and
 * the findings until the report is handed over.
 */
#include "plancheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "planwire.h"
#include "wire.h"
#include "xalloc.h"

typedef struct plancheck_mig plancheck_mig_t;

/* Migrations whose checks run at once on one agent (as source or target):
 * each check opens connections to the agent's server, and a fleet's plan
 * names hundreds of databases on one host. */
#define PLANCHECK_PER_AGENT 8

struct plancheck {
    const agentlink_t *link;
    char *plan_name;
    plan_t *plan;
    plancheck_mig_t *migs;
    size_t open;              /* migrations not finished */
    size_t next;              /* migrations before it are started or done */
    const char **agents;      /* the agents the plan names, borrowed from it */
    size_t *busy;             /* per agent: migrations checking on it */
    size_t n_agents;
    uint64_t timeout_ms;
    plancheck_done_cb done;
    void *arg;
};

struct plancheck_mig {
    plancheck_t *pc;
    plan_migration_t *m;
    cJSON *findings;          /* array */
    Godwit__SourceFacts *facts; /* owned copy, from the source's result */
    bool skip;                  /* not the migration asked for */
    bool waiting;               /* to be sent once its agents have room */
    bool running;               /* sent: holds a place on both agents */
    size_t src, tgt;            /* its agents in pc->agents */
};

static const char *s_sev(Godwit__Severity s)
{
    return s == GODWIT__SEVERITY__SEVERITY_ERROR     ? "error"
           : s == GODWIT__SEVERITY__SEVERITY_WARNING ? "warning"
                                                     : "info";
}

static void s_add(plancheck_mig_t *pm, const char *side, const char *severity, const char *code,
                  const char *object, const char *message, const char *fix)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "side", side);
    cJSON_AddStringToObject(f, "severity", severity);
    cJSON_AddStringToObject(f, "code", code);
    cJSON_AddStringToObject(f, "object", object);
    cJSON_AddStringToObject(f, "message", message);
    cJSON_AddStringToObject(f, "fix", fix);
    cJSON_AddItemToArray(pm->findings, f);
}

static void s_finish(plancheck_t *pc)
{
    cJSON *report = cJSON_CreateObject();
    cJSON_AddBoolToObject(report, "ok", true);
    cJSON_AddStringToObject(report, "plan", pc->plan_name);
    cJSON *migs = cJSON_AddArrayToObject(report, "migrations");
    int blocking_total = 0;
    for (size_t i = 0; i < plan_count(pc->plan); i++) {
        plancheck_mig_t *pm = &pc->migs[i];
        if (pm->skip) {
            cJSON_Delete(pm->findings);
            continue;
        }
        int blocking = 0, warnings = 0;
        const cJSON *f;
        cJSON_ArrayForEach(f, pm->findings)
        {
            const char *sev = cJSON_GetObjectItem(f, "severity")->valuestring;
            blocking += strcmp(sev, "error") == 0;
            warnings += strcmp(sev, "warning") == 0;
        }
        blocking_total += blocking;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pm->m->name);
        cJSON_AddStringToObject(o, "source", pm->m->source.agent);
        cJSON_AddStringToObject(o, "source_database", pm->m->source.database);
        cJSON_AddStringToObject(o, "target", pm->m->target.agent);
        cJSON_AddStringToObject(o, "target_database", pm->m->target.database);
        char from[96];
        if (plan_origin_path(pc->plan, i, from, sizeof from))
            cJSON_AddStringToObject(o, "from", from);
        if (plan_wave(pc->plan, i))
            cJSON_AddNumberToObject(o, "wave", plan_wave(pc->plan, i));
        cJSON_AddNumberToObject(o, "blocking", blocking);
        cJSON_AddNumberToObject(o, "warnings", warnings);
        if (pm->facts) {
            cJSON *fa = cJSON_AddObjectToObject(o, "source_facts");
            cJSON_AddStringToObject(fa, "engine", plan_engine_name(pm->m->engine));
            cJSON_AddStringToObject(fa, "server_version", pm->facts->server_version);
            cJSON_AddNumberToObject(fa, "database_size", (double)pm->facts->database_size);
            cJSON_AddNumberToObject(fa, "tables", (double)pm->facts->n_tables);
        }
        cJSON_AddItemToObject(o, "findings", pm->findings);
        pm->findings = NULL;
        cJSON_AddItemToArray(migs, o);
        if (pm->facts)
            godwit__source_facts__free_unpacked(pm->facts, NULL);
    }
    cJSON_AddNumberToObject(report, "blocking", blocking_total);
    log_info("plan %s checked: %d blocking findings", pc->plan_name, blocking_total);
    plancheck_done_cb done = pc->done;
    void *arg = pc->arg;
    plan_free(pc->plan);
    free(pc->plan);
    free(pc->agents);
    free(pc->busy);
    free(pc->migs);
    free(pc->plan_name);
    free(pc);
    done(report, arg);
}

static void s_pump(plancheck_t *pc);

static void s_mig_done(plancheck_mig_t *pm)
{
    plancheck_t *pc = pm->pc;
    if (pm->running) {
        pm->running = false;
        pc->busy[pm->src]--;
        pc->busy[pm->tgt]--;
        s_pump(pc);
    }
    if (--pc->open == 0)
        s_finish(pc);
}

static void s_mig_done_deferred(void *arg) { s_mig_done(arg); }

static void s_add_result_findings(plancheck_mig_t *pm, const char *side,
                                  const Godwit__PreflightResult *pr)
{
    for (size_t i = 0; i < pr->n_findings; i++) {
        const Godwit__Finding *f = pr->findings[i];
        s_add(pm, side, s_sev(f->severity), f->code, f->object, f->message, f->fix);
    }
}

/* False (with a blocking finding added) if the result is not usable. */
static bool s_result_ok(plancheck_mig_t *pm, const char *side, const char *agent,
                        const Godwit__Result *r, const char *error)
{
    char msg[512];
    if (!r) {
        snprintf(msg, sizeof msg, "the %s checks did not run on agent %s: %s", side, agent, error);
    } else if (r->status != GODWIT__STATUS__STATUS_OK ||
               r->payload_case != GODWIT__RESULT__PAYLOAD_PREFLIGHT) {
        snprintf(msg, sizeof msg, "the %s checks failed on agent %s: %s", side, agent,
                 r->message[0] ? r->message : "no result");
    } else {
        return true;
    }
    s_add(pm, side, "error", "preflight_failed", agent, msg,
          "make sure the agent is running and can reach its database, then check again");
    return false;
}

static void s_target_done(const char *agent, const Godwit__Result *r,
                          const char *error, void *arg)
{
    plancheck_mig_t *pm = arg;
    if (s_result_ok(pm, "target", agent, r, error))
        s_add_result_findings(pm, "target", r->preflight);
    s_mig_done(pm);
}

static void s_send_target(plancheck_mig_t *pm)
{
    plan_migration_t *m = pm->m;
    Godwit__ReplicationConn rc = planwire_forward(m);
    Godwit__PreflightTarget pt = GODWIT__PREFLIGHT_TARGET__INIT;
    pt.database = m->target.database;
    pt.source = pm->facts;
    pt.replication = &rc;
    pt.disk_margin = (double)m->options.disk_margin_percent / 100.0;
    pt.reverse = m->cutover.proxies.count > 0 && !m->cutover.reverse_off;
    pt.n_app_roles = m->cutover.app_roles.count;
    pt.app_roles = m->cutover.app_roles.items;
    pt.passwords = m->roles.passwords;
    pt.link_mbit = (uint32_t)m->options.link_mbit;
    plan_setting_t set[PLAN_IMPORT_SETTINGS_MAX];
    char *names[PLAN_IMPORT_SETTINGS_MAX];
    pt.n_import_settings = plan_import_settings(m, set);
    for (size_t i = 0; i < pt.n_import_settings; i++)
        names[i] = (char *)set[i].name; /* static */
    pt.import_settings = names;
    pt.physical = m->method == PLAN_METHOD_PHYSICAL;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET;
    cmd.preflight_target = &pt;
    agentlink_send(pm->pc->link, m->target.agent, &cmd, pm->pc->timeout_ms, s_target_done, pm);
}

static void s_source_done(const char *agent, const Godwit__Result *r,
                          const char *error, void *arg)
{
    plancheck_mig_t *pm = arg;
    if (!s_result_ok(pm, "source", agent, r, error)) {
        s_add(pm, "target", "error", "preflight_skipped", pm->m->target.agent,
              "the target checks need the source's facts and were not run",
              "fix the source side first");
        s_mig_done(pm);
        return;
    }
    s_add_result_findings(pm, "source", r->preflight);
    if (!r->preflight->facts) {
        s_add(pm, "source", "error", "preflight_failed", agent, "the source sent no facts",
              "upgrade the agent");
        s_mig_done(pm);
        return;
    }
    pm->facts = wire_copy(r->preflight->facts);
    s_send_target(pm);
}

/* An agent the plan names must be connected with the right role. */
static bool s_agent_ok(plancheck_mig_t *pm, const char *side, const char *agent,
                       const char *want_role)
{
    const char *role = agentlink_role(pm->pc->link, agent);
    char msg[256], fix[256];
    const char *refused = agentlink_refused(pm->pc->link, agent);
    if (refused) {
        snprintf(msg, sizeof msg, "%s agent %s: its hello was refused: %s", side, agent, refused);
        snprintf(fix, sizeof fix, "set the agent's role to one its key may take, or add the role "
                                  "to the roles line of %s.pub in allowed_keys (and restart the "
                                  "coordinator)", agent);
        s_add(pm, side, "error", "agent_role_refused", agent, msg, fix);
        return false;
    }
    if (!role) {
        snprintf(msg, sizeof msg, "%s agent %s is not connected (or not in the allow-list)", side,
                 agent);
        snprintf(fix, sizeof fix, "start godwit-agent on the %s host and make sure %s.pub is in "
                                  "the coordinator's allowed_keys", side, agent);
        s_add(pm, side, "error", "agent_not_connected", agent, msg, fix);
        return false;
    }
    /* The engine its reports show (none yet: the preflight's answer will). */
    const Godwit__Report *rep = agentlink_report(pm->pc->link, agent);
    const char *engine = !rep ? NULL : rep->mariadb ? "mariadb" : rep->postgres ? "postgresql"
                                                                                 : NULL;
    const char *want_engine = plan_engine_name(pm->m->engine);
    if (strcmp(want_role, "proxy") != 0 && engine && strcmp(engine, want_engine) != 0) {
        snprintf(msg, sizeof msg, "agent %s reports a %s server, the plan's engine is %s", agent,
                 engine, want_engine);
        snprintf(fix, sizeof fix, "name an agent of a %s server, or set engine: %s in the plan",
                 want_engine, engine);
        s_add(pm, side, "error", "agent_engine", agent, msg, fix);
        return false;
    }
    if (strcmp(role, want_role) != 0) {
        snprintf(msg, sizeof msg, "agent %s has role %s, the plan uses it as the %s", agent, role,
                 side);
        snprintf(fix, sizeof fix, "set role: %s in that agent's config, or name another agent",
                 want_role);
        s_add(pm, side, "error", "agent_role", agent, msg, fix);
        return false;
    }
    return true;
}

/* Data residency: with options.target_jurisdiction, the target agent's
 * config must carry that label (its hello says so). */
static bool s_jurisdiction_ok(plancheck_mig_t *pm)
{
    const plan_migration_t *m = pm->m;
    const char *want = m->options.target_jurisdiction;
    const char *have = want ? agentlink_jurisdiction(pm->pc->link, m->target.agent) : NULL;
    if (!want || !have || strcmp(want, have) == 0)
        return true;
    char msg[256], fix[256];
    if (have[0])
        snprintf(msg, sizeof msg, "the plan requires a target in jurisdiction %s; agent %s is in %s",
                 want, m->target.agent, have);
    else
        snprintf(msg, sizeof msg, "the plan requires a target in jurisdiction %s; agent %s declares "
                 "no jurisdiction", want, m->target.agent);
    snprintf(fix, sizeof fix, "name a target agent whose host is in %s, or, if this one is, set "
             "jurisdiction: %s in its config and restart it", want, want);
    s_add(pm, "target", "error", "jurisdiction", m->target.agent, msg, fix);
    return false;
}

/* The index of agent in pc->agents, added if new. */
static size_t s_agent_index(plancheck_t *pc, const char *agent)
{
    for (size_t i = 0; i < pc->n_agents; i++)
        if (strcmp(pc->agents[i], agent) == 0)
            return i;
    pc->agents[pc->n_agents] = agent;
    return pc->n_agents++;
}

/* Sends the source checks of a migration (the target's follow from
 * s_source_done). */
static void s_send_source(plancheck_mig_t *pm)
{
    plan_migration_t *m = pm->m;
    planwire_tables_t tables;
    planwire_tables_borrow(&tables, m);
    Godwit__PreflightSource ps = GODWIT__PREFLIGHT_SOURCE__INIT;
    ps.database = m->source.database;
    ps.n_tables = tables.n;
    ps.tables = tables.ptrs;
    /* After a cutover the source reads the target through its peer. */
    Godwit__ReplicationConn rev = planwire_reverse(m);
    if (m->cutover.proxies.count > 0 && !m->cutover.reverse_off && rev.peer)
        ps.reverse = &rev;
    ps.physical = m->method == PLAN_METHOD_PHYSICAL;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE;
    cmd.preflight_source = &ps;
    agentlink_send(pm->pc->link, m->source.agent, &cmd, pm->pc->timeout_ms, s_source_done, pm);
    planwire_tables_free(&tables);
}

/* Starts, in plan order, every waiting migration whose two agents have
 * room (PLANCHECK_PER_AGENT each). */
static void s_pump(plancheck_t *pc)
{
    size_t n = plan_count(pc->plan);
    while (pc->next < n && !pc->migs[pc->next].waiting)
        pc->next++;
    for (size_t i = pc->next; i < n; i++) {
        plancheck_mig_t *pm = &pc->migs[i];
        if (!pm->waiting || pc->busy[pm->src] >= PLANCHECK_PER_AGENT ||
            pc->busy[pm->tgt] >= PLANCHECK_PER_AGENT)
            continue;
        pm->waiting = false;
        pm->running = true;
        pc->busy[pm->src]++;
        pc->busy[pm->tgt]++;
        s_send_source(pm);
    }
}

void plancheck_start(const agentlink_t *link, const char *plan_name, plan_t *plan, const char *only,
                     uint64_t timeout_ms, plancheck_done_cb done, void *arg)
{
    plancheck_t *pc = xcalloc(1, sizeof *pc);
    pc->link = link;
    pc->plan_name = xstrdup(plan_name);
    pc->plan = plan;
    pc->timeout_ms = timeout_ms;
    pc->done = done;
    pc->arg = arg;
    size_t n = plan_count(plan);
    pc->migs = xcalloc(n, sizeof *pc->migs);
    pc->agents = xcalloc(2 * n, sizeof *pc->agents);
    pc->busy = xcalloc(2 * n, sizeof *pc->busy);
    pc->open = n;
    for (size_t i = 0; i < n; i++) {
        plancheck_mig_t *pm = &pc->migs[i];
        pm->pc = pc;
        pm->m = plan_at(plan, i);
        pm->findings = cJSON_CreateArray();
        pm->skip = only && strcmp(pm->m->name, only) != 0;
        pm->src = s_agent_index(pc, pm->m->source.agent);
        pm->tgt = s_agent_index(pc, pm->m->target.agent);
    }
    for (size_t i = 0; i < n; i++) {
        plancheck_mig_t *pm = &pc->migs[i];
        plan_migration_t *m = pm->m;
        if (pm->skip) {
            agentlink_defer(link, s_mig_done_deferred, pm);
            continue;
        }
        bool src = s_agent_ok(pm, "source", m->source.agent, "source");
        bool tgt = s_agent_ok(pm, "target", m->target.agent, "target");
        if (!src || !tgt || !s_jurisdiction_ok(pm)) {
            /* Done already; finished through the loop, never from here. */
            agentlink_defer(link, s_mig_done_deferred, pm);
            continue;
        }
        pm->waiting = true;
    }
    s_pump(pc);
}
