/*
 * zuv: a ZeroMQ socket watched by a libuv loop.
 *
 * ZMQ_FD is edge-triggered and signals "something changed", not "a message
 * is ready": the truth is ZMQ_EVENTS, and it must be re-read after every
 * send and receive, because either can consume the edge that announced an
 * incoming message. zuv therefore calls on_readable whenever ZMQ_EVENTS has
 * ZMQ_POLLIN, whether the edge came from the fd or from zuv_kick() after a
 * send. on_readable must receive with ZMQ_DONTWAIT and may stop early (after
 * a budget); zuv calls it again on the next loop iteration while messages
 * remain, so one busy socket cannot starve the loop's timers.
 *
 * zuv does not own the ZeroMQ socket. zuv_destroy closes the uv handles and
 * frees the struct in their close callbacks; close the ZeroMQ socket after
 * zuv_destroy (the fd must stay valid until then: uv_poll_stop is called
 * synchronously in zuv_destroy, so closing it right after is safe).
 *
 * The monitor helpers read libzmq's socket monitor events (4.x format: a
 * 6-byte frame of event u16 and value u32, then the endpoint).
 */
#ifndef GODWIT_ZUV_H
#define GODWIT_ZUV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct zuv zuv_t;
typedef void (*zuv_cb)(zuv_t *z, void *sock, void *arg);

/* Returns NULL if ZMQ_FD cannot be read or the poll cannot start. */
zuv_t *zuv_new(uv_loop_t *loop, void *sock, zuv_cb on_readable, void *arg);
/* Call after every send (and after receiving outside on_readable): re-reads
 * ZMQ_EVENTS and schedules on_readable if a message is waiting. */
void zuv_kick(zuv_t *z);
void zuv_destroy(zuv_t **zp);

/* Sends the frames as one multipart message with ZMQ_DONTWAIT. Returns 0 or
 * -errno (-EAGAIN when the peer is gone or its queue full, -EHOSTUNREACH
 * for an unknown ROUTER peer with ZMQ_ROUTER_MANDATORY). Kicks z if given. */
int zuv_send_parts(zuv_t *z, void *sock, const void *const *parts, const size_t *lens, int n);

/* Receives one whole multipart message of at most max_parts frames with
 * ZMQ_DONTWAIT into msgs (initialised by this call; the caller closes each
 * of *nparts with zmq_msg_close). Extra frames are dropped and reported as
 * -EPROTO. 0, -EAGAIN or -errno. */
int zuv_recv_parts(void *sock, void *msgs /* zmq_msg_t[max_parts] */, int max_parts, int *nparts);

/* Reads one monitor event; 0 and fills out, -EAGAIN, or -EPROTO. */
int zuv_monitor_read(void *monitor_sock, uint16_t *event, uint32_t *value, char *endpoint,
                     size_t endpoint_len);
const char *zuv_event_name(uint16_t event);

/* One monitor event: endpoint borrowed for the call. */
typedef void (*zuv_monitor_cb)(uint16_t event, uint32_t value, const char *endpoint, void *arg);
/* Reads up to budget monitor events, calling cb for each; a malformed one
 * is skipped. Stops early when none is left. */
void zuv_monitor_drain(void *monitor_sock, int budget, zuv_monitor_cb cb, void *arg);

#endif
