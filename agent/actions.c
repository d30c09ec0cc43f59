/* actions: the protocol's database actions, one row each (actions.h). */
#include "actions.h"

/* ---- the table ---- */

#define S_NONE GODWIT__RESULT__PAYLOAD__NOT_SET
static const actions_row_t s_rows[] = {
    { GODWIT__COMMAND__ACTION_APPLY_ROLES, GODWIT__RESULT__PAYLOAD_APPLY_ROLES },
    { GODWIT__COMMAND__ACTION_APPLY_SCHEMA, GODWIT__RESULT__PAYLOAD_APPLY_SCHEMA },
    { GODWIT__COMMAND__ACTION_ENSURE_PUBLICATION, S_NONE },
    { GODWIT__COMMAND__ACTION_ENSURE_SUBSCRIPTION, S_NONE },
    { GODWIT__COMMAND__ACTION_ENSURE_SLOT, GODWIT__RESULT__PAYLOAD_ENSURE_SLOT },
    { GODWIT__COMMAND__ACTION_SYNC_STATUS, GODWIT__RESULT__PAYLOAD_SYNC_STATUS },
    { GODWIT__COMMAND__ACTION_DROP_OBJECTS, S_NONE },
    { GODWIT__COMMAND__ACTION_BULK_COPY, GODWIT__RESULT__PAYLOAD_BULK_COPY },
    { GODWIT__COMMAND__ACTION_HOLD_SNAPSHOT, GODWIT__RESULT__PAYLOAD_HOLD_SNAPSHOT },
    { GODWIT__COMMAND__ACTION_SET_SUBSCRIPTION_ENABLED, S_NONE },
    { GODWIT__COMMAND__ACTION_VERIFY_TABLE, GODWIT__RESULT__PAYLOAD_VERIFY_TABLE },
    { GODWIT__COMMAND__ACTION_VERIFY_SCHEMA, GODWIT__RESULT__PAYLOAD_VERIFY_SCHEMA },
    { GODWIT__COMMAND__ACTION_VERIFY_ROLES, GODWIT__RESULT__PAYLOAD_VERIFY_ROLES },
    { GODWIT__COMMAND__ACTION_FREEZE_SOURCE, GODWIT__RESULT__PAYLOAD_FREEZE_SOURCE },
    { GODWIT__COMMAND__ACTION_SET_SEQUENCES, GODWIT__RESULT__PAYLOAD_SET_SEQUENCES },
    { GODWIT__COMMAND__ACTION_TUNE_SUBSCRIPTION, S_NONE },
    { GODWIT__COMMAND__ACTION_IMPORT_PROFILE, GODWIT__RESULT__PAYLOAD_IMPORT_PROFILE },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE, GODWIT__RESULT__PAYLOAD_PREFLIGHT },
    { GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET, GODWIT__RESULT__PAYLOAD_PREFLIGHT },
    { GODWIT__COMMAND__ACTION_BASE_BACKUP, GODWIT__RESULT__PAYLOAD_STANDBY_STATUS },
    { GODWIT__COMMAND__ACTION_STANDBY_STATUS, GODWIT__RESULT__PAYLOAD_STANDBY_STATUS },
    { GODWIT__COMMAND__ACTION_PROMOTE, GODWIT__RESULT__PAYLOAD_PROMOTE },
    { GODWIT__COMMAND__ACTION_REJOIN, GODWIT__RESULT__PAYLOAD_STANDBY_STATUS },
    { GODWIT__COMMAND__ACTION_MY_COPY, GODWIT__RESULT__PAYLOAD_MY_COPY },
    { GODWIT__COMMAND__ACTION_REPLICA_STATUS, GODWIT__RESULT__PAYLOAD_REPLICA_STATUS },
    { GODWIT__COMMAND__ACTION_MY_CHECKSUM, GODWIT__RESULT__PAYLOAD_MY_CHECKSUM },
    { GODWIT__COMMAND__ACTION_MY_CHECKSUM_COMPARE, GODWIT__RESULT__PAYLOAD_MY_COMPARE },
    { GODWIT__COMMAND__ACTION_MY_FOLLOW, GODWIT__RESULT__PAYLOAD_REPLICA_STATUS },
};
#undef S_NONE

const actions_row_t *actions_find(Godwit__Command__ActionCase action)
{
    for (size_t i = 0; i < sizeof s_rows / sizeof *s_rows; i++)
        if (s_rows[i].action == action)
            return &s_rows[i];
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
