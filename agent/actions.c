/* actions: the agent's database steps, one row each (actions.h). */
#include "actions.h"

#include "bulkcopy.h"
#include "freeze.h"
#include "sequences.h"
#include "tune.h"

/* ---- how each step starts ---- */

static step_t *a_apply_roles(const actions_env_t *e, const Godwit__Command *c,
                             step_done_cb done, void *arg)
{
    return roles_apply_start(e->loop, e->local, c->apply_roles, done, arg);
}

static step_t *a_apply_schema(const actions_env_t *e, const Godwit__Command *c,
                              step_done_cb done, void *arg)
{
    return schema_apply_start(e->loop, e->local, c->apply_schema, done, arg);
}

static step_t *a_publication(const actions_env_t *e, const Godwit__Command *c,
                             step_done_cb done, void *arg)
{
    return publication_ensure_start(e->loop, e->local, c->ensure_publication, done, arg);
}

static step_t *a_subscription(const actions_env_t *e, const Godwit__Command *c,
                              step_done_cb done, void *arg)
{
    if (c->ensure_subscription && c->ensure_subscription->attach)
        return subscription_attach_start(e->loop, e->local, c->ensure_subscription, done, arg);
    return subscription_ensure_start(e->loop, e->local, c->ensure_subscription, done, arg);
}

static step_t *a_slot(const actions_env_t *e, const Godwit__Command *c,
                      step_done_cb done, void *arg)
{
    return slot_ensure_start(e->loop, e->local, c->ensure_slot, done, arg);
}

static step_t *a_sync_status(const actions_env_t *e, const Godwit__Command *c,
                             step_done_cb done, void *arg)
{
    return sync_status_start(e->loop, e->local, c->sync_status, done, arg);
}

static step_t *a_drop(const actions_env_t *e, const Godwit__Command *c,
                      step_done_cb done, void *arg)
{
    return objects_drop_start(e->loop, e->local, c->drop_objects, done, arg);
}

static step_t *a_bulk_copy(const actions_env_t *e, const Godwit__Command *c,
                           step_done_cb done, void *arg)
{
    return bulkcopy_start(e->loop, e->local, c->bulk_copy, done, arg);
}

static step_t *a_set_enabled(const actions_env_t *e, const Godwit__Command *c,
                             step_done_cb done, void *arg)
{
    return subscription_set_enabled_start(e->loop, e->local, c->set_subscription_enabled, done, arg);
}

static step_t *a_verify_table(const actions_env_t *e, const Godwit__Command *c,
                              step_done_cb done, void *arg)
{
    return table_verify_start(e->loop, e->local, c->verify_table, done, arg);
}

static step_t *a_verify_schema(const actions_env_t *e, const Godwit__Command *c,
                               step_done_cb done, void *arg)
{
    const Godwit__VerifySchema *q = c->verify_schema;
    bool fenced = q && q->database && freezer_fenced(e->freezer, q->database);
    return schema_verify_start(e->loop, e->local, q, fenced, done, arg);
}

static step_t *a_verify_roles(const actions_env_t *e, const Godwit__Command *c,
                              step_done_cb done, void *arg)
{
    const Godwit__VerifyRoles *q = c->verify_roles;
    bool fenced = q && q->database && freezer_fenced(e->freezer, q->database);
    return roles_verify_start(e->loop, e->local, q, fenced, done, arg);
}

static step_t *a_freeze(const actions_env_t *e, const Godwit__Command *c,
                        step_done_cb done, void *arg)
{
    return freezer_run(e->freezer, c->freeze_source, done, arg);
}

static step_t *a_sequences(const actions_env_t *e, const Godwit__Command *c,
                           step_done_cb done, void *arg)
{
    return sequences_set_start(e->freezer, c->set_sequences, done, arg);
}

static step_t *a_tune(const actions_env_t *e, const Godwit__Command *c,
                      step_done_cb done, void *arg)
{
    return tune_subscription_start(e->loop, e->local, c->tune_subscription, done, arg);
}

/* ---- the table ---- */

#define A_NONE GODWIT__RESULT__PAYLOAD__NOT_SET
static const actions_row_t a_rows[] = {
    { GODWIT__COMMAND__ACTION_APPLY_ROLES, a_apply_roles,
      GODWIT__RESULT__PAYLOAD_APPLY_ROLES },
    { GODWIT__COMMAND__ACTION_APPLY_SCHEMA, a_apply_schema,
      GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA },
    { GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION, a_publication, A_NONE },
    { GODWIT__COMMAND__ACTION_ENSURE_SUBSCRIPTION, a_subscription, A_NONE },
    { GODWIT__COMMAND__ACTION_ENSURE_SLOT, a_slot, GODWIT__RESULT__PAYLOAD_ENSURE_SLOT },
    { GODWIT__COMMAND__ACTION_SYNC_STATUS, a_sync_status,
      GODWIT__RESULT__PAYLOAD_SYNC_STATUS },
    { GODWIT__COMMAND__ACTION_DROP_OBJECTS, a_drop, A_NONE },
    { GODWIT__COMMAND__ACTION_BULK_COPY, a_bulk_copy, GODWIT__RESULT__PAYLOAD_BULK_COPY },
    { GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED, a_set_enabled, A_NONE },
    { GODWIT__COMMAND__ACTION_VERIFY_TABLE, a_verify_table,
      GODWIT__RESULT__PAYLOAD_VERIFY_TABLE },
    { GODWIT__COMMAND__ACTION_VERIFY_SCHEMA, a_verify_schema,
      GODWIT__RESULT__PAYLOAD_VERIFY_SCHEMA },
    { GODWIT__COMMAND__ACTION_VERIFY_ROLES, a_verify_roles,
      GODWIT__RESULT__PAYLOAD_VERIFY_ROLES },
    { GODWIT__COMMAND__ACTION_FREEZE_SOURCE, a_freeze,
      GODWIT__RESULT__PAYLOAD_FREEZE_SOURCE },
    { GODWIT__COMMAND__ACTION_SET_SEQUENCES, a_sequences,
      GODWIT__RESULT__PAYLOAD_SET_SEQUENCES },
    { GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION, a_tune, A_NONE },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE, NULL, GODWIT__RESULT__PAYLOAD_PREFLIGHT },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET, NULL, GODWIT__RESULT__PAYLOAD_PREFLIGHT },
};
#undef A_NONE

const actions_row_t *actions_find(Godwit__Command__ActionCase action)
{
    for (size_t i = 0; i < sizeof a_rows / sizeof *a_rows; i++)
        if (a_rows[i].action == action)
            return &a_rows[i];
    return NULL;
}

void actions_set_payload(Godwit__Result *res, Godwit__Command__ActionCase action,
                         ProtobufCMessage *payload)
{
    const actions_row_t *act = actions_find(action);
    if (!act || act->result == GODWIT__RESULT__PAYLOAD__NOT_SET)
        return;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&godwit__result__descriptor, (unsigned)act->result);
    res->payload_case = act->result;
    *(ProtobufCMessage **)((char *)res + f->offset) = payload;
}


/* The request of cmd's action (the oneof's message), through protobuf-c's
 * descriptor; NULL if it has none. */
static const ProtobufCMessage *a_request_of(const Godwit__Command *cmd)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &godwit__command__descriptor, (unsigned)cmd->action_case);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    return *(const ProtobufCMessage *const *)((const char *)cmd + f->offset);
}

bool actions_remote(const Godwit__Command *cmd, const Godwit__ReplicationConn **remote)
{
    const ProtobufCMessage *req = a_request_of(cmd);
    const ProtobufCFieldDescriptor *f =
        req ? protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "source") : NULL;
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        f->descriptor != &godwit__replication_conn__descriptor)
        return false;
    *remote = *(const Godwit__ReplicationConn *const *)((const char *)req + f->offset);
    return true;
}
