/*
 * zmq_plain_client: a ZeroMQ DEALER with no CURVE (the NULL mechanism) that
 * dials an endpoint, sends a well-formed godwit hello in plaintext, and
 * waits for any answer. Used by the integration tests to show that the
 * coordinator refuses plaintext clients.
 *
 *   zmq_plain_client ENDPOINT WAIT_MS
 * Exit: 0 if nothing came back (refused), 1 if the coordinator answered,
 * 2 on usage or local error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "wire.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: zmq_plain_client ENDPOINT WAIT_MS\n");
        return 2;
    }
    int wait_ms = atoi(argv[2]);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 2;
    }
    Godwit__Hello h = GODWIT__HELLO__INIT;
    h.protocol_version = WIRE_VERSION;
    h.agent_version = (char *)"plaintext";
    h.claimed_name = (char *)"intruder";
    Godwit__Envelope env = GODWIT__ENVELOPE__INIT;
    env.msg_id = 1;
    env.body_case = GODWIT__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    size_t len = 0;
    uint8_t *buf = wire_encode(&env, &len);
    zmq_send(s, buf, len, ZMQ_DONTWAIT);
    free(buf);
    zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
    int got = zmq_poll(&item, 1, wait_ms);
    printf("%s\n", got > 0 ? "answered" : "no answer");
    zmq_close(s);
    zmq_ctx_term(ctx);
    return got > 0 ? 1 : 0;
}
