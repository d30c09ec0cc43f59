/*
 * proxycmd: see proxycmd.h.
 */
#include "proxycmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"
#include "xalloc.h"

/* Room for the agent's own bounds (its pause_timeout, command_timeout). */
#define PROXYCMD_TIMEOUT_MS 30000
#define PROXYCMD_DEFAULT_PAUSE_MS 60000

typedef struct {
    control_req_t *req;
    char *agent;
    char *proxy;
    char *op;
    uint64_t sent_mono;
} pcmd_t;

static const struct {
    const char *name;
    Godwit__ProxyAction__Op op;
} s_ops[] = {
    { "status", GODWIT__PROXY_ACTION__OP__OP_STATUS },
    { "pause", GODWIT__PROXY_ACTION__OP__OP_PAUSE },
    { "resume", GODWIT__PROXY_ACTION__OP__OP_RESUME },
    { "switch", GODWIT__PROXY_ACTION__OP__OP_SWITCH },
};

cJSON *proxycmd_state_json(const Godwit__ProxyState *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "proxy", st->proxy);
    cJSON_AddStringToObject(o, "kind", st->kind);
    cJSON_AddStringToObject(o, "backend", st->backend);
    cJSON_AddStringToObject(o, "address", st->address);
    cJSON_AddBoolToObject(o, "paused", st->paused);
    cJSON_AddNumberToObject(o, "lease_left_ms", (double)st->lease_left_ms);
    cJSON_AddBoolToObject(o, "already", st->already);
    cJSON_AddNumberToObject(o, "paused_ms", (double)st->paused_ms);
    cJSON_AddNumberToObject(o, "terminated", (double)st->terminated);
    cJSON_AddBoolToObject(o, "lease_expired", st->lease_expired);
    cJSON_AddBoolToObject(o, "reachable", st->reachable);
    cJSON_AddNumberToObject(o, "reached_at_ms", (double)st->reached_at_ms);
    if (st->error && st->error[0])
        cJSON_AddStringToObject(o, "error", st->error);
    cJSON *steps = cJSON_AddArrayToObject(o, "steps");
    for (size_t i = 0; i < st->n_steps; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", st->steps[i]->name);
        cJSON_AddNumberToObject(s, "ms", (double)st->steps[i]->ms);
        cJSON_AddItemToArray(steps, s);
    }
    return o;
}

static void s_free(pcmd_t *p)
{
    free(p->agent);
    free(p->proxy);
    free(p->op);
    free(p);
}

static void s_result(const char *agent, const Godwit__Result *r, const char *error,
                     void *arg)
{
    pcmd_t *p = arg;
    cJSON *o = cJSON_CreateObject();
    bool ok = r && r->status == GODWIT__STATUS__STATUS_OK;
    cJSON_AddBoolToObject(o, "ok", ok);
    cJSON_AddStringToObject(o, "agent", p->agent);
    cJSON_AddStringToObject(o, "proxy", p->proxy);
    cJSON_AddStringToObject(o, "op", p->op);
    cJSON_AddNumberToObject(o, "took_ms", (double)(units_mono_ms() - p->sent_mono));
    if (!ok)
        cJSON_AddStringToObject(o, "error", r ? r->message : error);
    if (r && r->payload_case == GODWIT__RESULT__PAYLOAD_PROXY)
        cJSON_AddItemToObject(o, "state", proxycmd_state_json(r->proxy));
    control_reply(p->req, o);
    s_free(p);
}

static const char *s_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t s_u64(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

void proxycmd_handle(const agentlink_t *link, control_req_t *req, const cJSON *request)
{
    const char *agent = s_str(request, "agent"), *proxy = s_str(request, "proxy");
    const char *op = s_str(request, "op"), *backend = s_str(request, "backend");
    if (!agent || !proxy || !op) {
        control_reply_error(req, "proxy needs \"agent\", \"proxy\" and \"op\"");
        return;
    }
    int found = -1;
    for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
        if (strcmp(op, s_ops[i].name) == 0)
            found = (int)i;
    if (found < 0) {
        control_reply_error(req, "op must be status, pause, resume or switch");
        return;
    }
    if (s_ops[found].op == GODWIT__PROXY_ACTION__OP__OP_SWITCH && !backend) {
        control_reply_error(req, "switch needs \"backend\" (blue or green)");
        return;
    }
    const char *role = agentlink_role(link, agent);
    if (role && strcmp(role, "proxy") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "agent %s has role %s, not proxy", agent, role);
        control_reply_error(req, msg);
        return;
    }
    Godwit__ProxyAction pa = GODWIT__PROXY_ACTION__INIT;
    pa.proxy = (char *)proxy;
    pa.op = s_ops[found].op;
    pa.backend = (char *)(backend ? backend : "");
    pa.lease_ms = s_u64(request, "lease_ms");
    pa.pause_timeout_ms = s_u64(request, "pause_timeout_ms");
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_PROXY_ACTION;
    cmd.proxy_action = &pa;
    pcmd_t *p = xcalloc(1, sizeof *p);
    p->req = req;
    p->agent = xstrdup(agent);
    p->proxy = xstrdup(proxy);
    p->op = xstrdup(op);
    p->sent_mono = units_mono_ms();
    uint64_t timeout = PROXYCMD_TIMEOUT_MS + (pa.pause_timeout_ms ? pa.pause_timeout_ms
                                                                   : PROXYCMD_DEFAULT_PAUSE_MS);
    agentlink_send(link, agent, &cmd, timeout, s_result, p);
}
