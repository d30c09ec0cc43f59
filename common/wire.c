/*
 * wire: see wire.h. Stateless; every function is safe on hostile input.
 */
#include "wire.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

uint8_t *wire_encode(Godwit__Envelope *env, size_t *lenp)
{
    env->version = WIRE_VERSION;
    size_t body = godwit__envelope__get_packed_size(env);
    if (body > WIRE_MAX_BODY)
        return NULL;
    uint8_t *buf = xmalloc(WIRE_HEADER_LEN + body);
    buf[0] = 'G';
    buf[1] = 'W';
    buf[2] = WIRE_VERSION;
    buf[3] = 0;
    buf[4] = (uint8_t)(body >> 24);
    buf[5] = (uint8_t)(body >> 16);
    buf[6] = (uint8_t)(body >> 8);
    buf[7] = (uint8_t)body;
    godwit__envelope__pack(env, buf + WIRE_HEADER_LEN);
    *lenp = WIRE_HEADER_LEN + body;
    return buf;
}

/* protobuf-c 1.4 refuses field number 0 only when its tag is one byte
 * (0x00); spelled in two (0x80 0x00) it is kept as an unknown field and
 * re-packed as 0x00, which protobuf-c then refuses. Field 0 is never valid
 * protobuf: look for it in every message of the tree. */
static bool s_has_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (s_has_field_zero(subs[j]))
                    return true;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub && s_has_field_zero(sub))
            return true;
    }
    return false;
}

/* Protocol rules beyond what protobuf checks. NULL if fine. */
static const char *s_check(const Godwit__Envelope *env)
{
    if (env->version != WIRE_VERSION)
        return "envelope version does not match frame version";
    if (env->msg_id == 0)
        return "message id missing";
    switch (env->body_case) {
    case GODWIT__ENVELOPE__BODY_HELLO:
        if (env->hello->protocol_version != WIRE_VERSION)
            return "hello: unsupported protocol version";
        return NULL;
    case GODWIT__ENVELOPE__BODY_REPORT:
        return NULL;
    case GODWIT__ENVELOPE__BODY_COMMAND:
        if (env->command->id[0] == '\0')
            return "command: id missing";
        if (env->command->epoch == 0)
            return "command: epoch missing";
        if (env->command->deadline_unix_ms == 0)
            return "command: deadline missing";
        if (env->command->action_case == GODWIT__COMMAND__ACTION__NOT_SET)
            return "command: no action";
        return NULL;
    case GODWIT__ENVELOPE__BODY_RESULT:
        if (env->result->command_id[0] == '\0')
            return "result: command id missing";
        return NULL;
    case GODWIT__ENVELOPE__BODY_PROGRESS:
        if (env->progress->command_id[0] == '\0')
            return "progress: command id missing";
        return NULL;
    case GODWIT__ENVELOPE__BODY_EVENT:
        return NULL;
    default:
        return "no body";
    }
}

Godwit__Envelope *wire_decode(const uint8_t *buf, size_t len, const char **reason)
{
    if (len < WIRE_HEADER_LEN) {
        *reason = "truncated: shorter than the frame header";
        return NULL;
    }
    if (buf[0] != 'G' || buf[1] != 'W') {
        *reason = "garbage: bad magic";
        return NULL;
    }
    if (buf[2] != WIRE_VERSION) {
        *reason = "unsupported protocol version";
        return NULL;
    }
    if (buf[3] != 0) {
        *reason = "garbage: unknown flags";
        return NULL;
    }
    uint32_t body = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
    if (body > WIRE_MAX_BODY) {
        *reason = "oversized: body length over the limit";
        return NULL;
    }
    if ((size_t)body > len - WIRE_HEADER_LEN) {
        *reason = "truncated: body shorter than its length";
        return NULL;
    }
    if ((size_t)body < len - WIRE_HEADER_LEN) {
        *reason = "garbage: trailing bytes after the body";
        return NULL;
    }
    Godwit__Envelope *env = godwit__envelope__unpack(NULL, body, buf + WIRE_HEADER_LEN);
    if (!env) {
        *reason = "garbage: body is not a valid envelope";
        return NULL;
    }
    const char *bad = s_has_field_zero(&env->base) ? "garbage: field number 0" : s_check(env);
    if (bad) {
        *reason = bad;
        godwit__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

void wire_free(Godwit__Envelope **envp)
{
    if (*envp) {
        godwit__envelope__free_unpacked(*envp, NULL);
        *envp = NULL;
    }
}

const char *wire_body_name(const Godwit__Envelope *env)
{
    switch (env->body_case) {
    case GODWIT__ENVELOPE__BODY_HELLO: return "hello";
    case GODWIT__ENVELOPE__BODY_REPORT: return "report";
    case GODWIT__ENVELOPE__BODY_COMMAND: return "command";
    case GODWIT__ENVELOPE__BODY_RESULT: return "result";
    case GODWIT__ENVELOPE__BODY_PROGRESS: return "progress";
    case GODWIT__ENVELOPE__BODY_EVENT: return "event";
    default: return "none";
    }
}

void *wire_copy(const void *msg)
{
    const ProtobufCMessage *m = msg;
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(len ? len : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}
