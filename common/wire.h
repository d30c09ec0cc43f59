/*
 * wire: framing and checking of godwit Envelopes (proto/godwit.proto).
 *
 * A frame is an 8-byte header and a protobuf body:
 *   'G' 'W' | version (u8) | flags (u8, 0) | body length (u32, big-endian)
 * The decoder refuses, with a reason and without crashing, anything that is
 * not exactly one well-formed frame: short input, bad magic, another major
 * version, a length that disagrees with the input (truncated or trailing
 * bytes), a body over the size limit, a body protobuf-c cannot unpack, and
 * envelopes that break the protocol's rules (no body, missing ids).
 *
 * Ownership: wire_encode returns a malloc'd buffer the caller frees;
 * wire_decode returns an envelope the caller frees with wire_free.
 */
#ifndef GODWIT_WIRE_H
#define GODWIT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "godwit.pb-c.h"

#define WIRE_VERSION 1
#define WIRE_HEADER_LEN 8
#define WIRE_MAX_BODY (1024u * 1024u)

/* Fills env->version (and nothing else) and packs it into a new frame.
 * Returns NULL if the envelope packs larger than WIRE_MAX_BODY. */
uint8_t *wire_encode(Godwit__Envelope *env, size_t *lenp);

/* Unpacks and checks one frame. On failure returns NULL and points *reason
 * at a static string. */
Godwit__Envelope *wire_decode(const uint8_t *buf, size_t len, const char **reason);

void wire_free(Godwit__Envelope **envp);

/* The body case as a word for logs: "hello", "report", ... */
const char *wire_body_name(const Godwit__Envelope *env);

/* A deep copy of any protobuf-c message (packed and unpacked again), for
 * keeping a message that is only borrowed: the caller frees it with its
 * type's free_unpacked (or protobuf_c_message_free_unpacked). NULL only if
 * the message does not unpack, which a packed one always does. */
void *wire_copy(const void *msg);

#endif
