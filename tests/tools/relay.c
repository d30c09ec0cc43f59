/*
 * godwit-relay: a delaying TCP relay for the integration tests. It stands
 * between two endpoints (green and blue, an agent and its coordinator) and
 * gives the link a one-way delay, a rate cap and packet loss, and on demand
 * a partition.
 *
 *   godwit-relay --listen HOST:PORT --to HOST:PORT [--delay-ms MS]
 *                [--rate-kbit KBIT] [--loss PCT] [--seed N]
 *                [--control PATH] [--partition-mode hold|drop]
 *                [--log-level LEVEL]
 *
 * Each accepted connection (a link) gets its own outgoing connection. Every
 * chunk read from either side is stamped with the time it was read and
 * written to the other side once the delay has passed: one queue per
 * direction, ordered, and one timerfd for the whole relay armed for the
 * earliest chunk due (nanosecond deadlines; libuv's own timers only count
 * milliseconds). A side stops being read while the queue it feeds holds
 * more than RELAY_QUEUE_MAX bytes and is read again once that queue has
 * drained to half of it.
 *
 * A rate cap (kbit/s, each direction, shared by all links as one WAN link
 * is) serialises chunks: a chunk leaves once the link has sent the ones
 * before it, len * 8 / rate after it began, then takes the delay. Loss is
 * what TCP makes of a lossy link, since a relay of a byte stream cannot drop
 * bytes: each chunk counts as segments of RELAY_MSS bytes, each lost with
 * probability PCT / 100 (a seeded generator, --seed, so a run repeats); a
 * chunk with a lost segment arrives one retransmission timeout later
 * (RELAY_RTO_MIN_MS plus a round trip, Linux's minimum), and the chunks
 * behind it wait for it, as TCP delivers in order.
 *
 * A partition in hold mode (the default) holds bytes, like a blackholed
 * link: nothing is forwarded and nothing is dropped; new connections are
 * accepted and their outgoing connection is made only at heal. In drop mode
 * a partition resets every link and resets each new connection as soon as it
 * is accepted. A read error on either side (a reset) closes the link at
 * once with a reset on the other side, whatever is still queued.
 *
 * The control socket takes one command per line and answers one line, "ok
 * ..." or "error ...": `delay MS`, `rate KBIT` (0: none), `loss PCT`,
 * `partition [hold|drop]`, `heal`, `stats`. A new delay, rate or loss
 * applies to bytes read from then on. SIGTERM and SIGINT close
 * everything and exit 0.
 *
 * Ownership: the relay_t owns the listener, the control server and its
 * connections, the links, the timerfd and the schedule heap. A link owns its
 * two TCP handles and the chunks it has read; a chunk handed to uv_write()
 * or uv_shutdown() is freed in that request's callback. A link is freed in
 * the close callback of its last handle, after libuv has called back every
 * request on those handles. Single-threaded: everything runs on one loop.
 * Never used by godwit itself; built as a test tool and not installed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "xalloc.h"

#define RELAY_READ_BUF (64 * 1024)
#define RELAY_QUEUE_MAX (4u * 1024 * 1024)
#define RELAY_QUEUE_RESUME (RELAY_QUEUE_MAX / 2)
#define RELAY_CONTROL_LINE_MAX 256
#define RELAY_DELAY_MAX_MS 3600000.0
#define RELAY_RATE_MAX_KBIT 100000000.0 /* 100 Gbit/s */
#define RELAY_MSS 1448                  /* bytes of one TCP segment (Ethernet, timestamps) */
#define RELAY_RTO_MIN_MS 200            /* Linux's minimum retransmission timeout */
#define RELAY_EXIT_OK 0
#define RELAY_EXIT_ERROR 1
#define RELAY_EXIT_USAGE 2

typedef struct relay relay_t;
typedef struct link link_t;
typedef struct dir dir_t;

typedef enum { PARTITION_HOLD, PARTITION_DROP } partition_mode_t;

/* Bytes read from one side, waiting for their time. len 0 is the end of
 * the stream (the peer's FIN), forwarded as a shutdown of the other side. */
typedef struct chunk {
    struct chunk *next;
    dir_t *dir;
    uint64_t due_ns;
    size_t len;
    union {
        uv_write_t write;
        uv_shutdown_t shutdown;
    } req;
    char data[];
} chunk_t;

typedef struct side {
    uv_tcp_t tcp;
    link_t *link;
    const char *name; /* "client" or "server", for log lines */
    bool inited;      /* tcp initialised: a close callback will come */
    bool connected;   /* readable and writable */
    bool reading;
    bool read_eof;
} side_t;

/* One direction of a link: bytes read from `from`, to be written to `to`. */
struct dir {
    link_t *link;
    side_t *from, *to;
    const char *name; /* "up" (client to server) or "down" */
    chunk_t *head, *tail; /* read, not yet handed to libuv; first in, first out */
    size_t queued;        /* bytes read and not yet written (waiting or in flight) */
    size_t heap_index;    /* position in relay->heap, or SIZE_MAX */
    bool eof_done;        /* the other side was shut down for writing */
    uint64_t *bytes;      /* the relay's counter for this direction */
};

struct link {
    relay_t *relay;
    link_t *prev, *next;
    uint64_t id;
    side_t client, server;
    dir_t up, down;
    uv_connect_t connect;
    int open_handles;
    bool closing;
};

typedef struct control_conn {
    uv_pipe_t pipe;
    relay_t *relay;
    struct control_conn *prev, *next;
    char line[RELAY_CONTROL_LINE_MAX + 1];
    size_t len;
    int writes_pending;
    bool eof;
    bool closing;
} control_conn_t;

typedef struct {
    uint64_t accepted, refused, connect_failed, resets, bytes_up, bytes_down, held_peak;
    uint64_t segments, lost;      /* segments counted for the loss, and lost */
} relay_stats_t;

typedef struct {
    const char *listen;
    const char *to;
    const char *control;
    double delay_ms;
    double rate_kbit;   /* 0: no cap */
    double loss_pct;
    uint64_t seed;
    partition_mode_t mode;
} relay_opts_t;

struct relay {
    uv_loop_t *loop;
    relay_opts_t opts;
    struct sockaddr_storage to_addr;
    uv_tcp_t listener;
    uv_pipe_t control;
    bool control_inited;
    bool control_bound; /* the socket file is ours to unlink */
    uv_poll_t timer_poll;
    bool timer_inited;
    int timer_fd;
    uint64_t armed_ns; /* deadline the timerfd is armed for, 0 if disarmed */
    uv_signal_t sigint, sigterm;
    link_t *links;
    control_conn_t *conns;
    dir_t **heap; /* directions with a chunk due, earliest head first */
    size_t heap_len, heap_cap;
    uint64_t delay_ns;
    double rate_kbit, loss;     /* loss: a segment's probability, 0 to 1 */
    uint64_t free_ns[2];        /* when the capped link is free again: up, down */
    uint64_t rng;               /* xorshift64* state, never 0 */
    uint64_t next_link_id;
    bool partitioned;
    partition_mode_t mode; /* of the partition under way (opts.mode is the default) */
    bool stopping;
    relay_stats_t stats;
    char readbuf[RELAY_READ_BUF]; /* one read at a time: copied out at once */
};

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the schedule: a binary heap of directions keyed by their head ---- */

static bool s_before(const dir_t *a, const dir_t *b)
{
    return a->head->due_ns < b->head->due_ns;
}

static void s_heap_set(relay_t *r, size_t i, dir_t *d)
{
    r->heap[i] = d;
    d->heap_index = i;
}

static void s_heap_sift_up(relay_t *r, size_t i)
{
    dir_t *d = r->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before(d, r->heap[parent]))
            break;
        s_heap_set(r, i, r->heap[parent]);
        i = parent;
    }
    s_heap_set(r, i, d);
}

static void s_heap_sift_down(relay_t *r, size_t i)
{
    dir_t *d = r->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= r->heap_len)
            break;
        if (child + 1 < r->heap_len && s_before(r->heap[child + 1], r->heap[child]))
            child++;
        if (!s_before(r->heap[child], d))
            break;
        s_heap_set(r, i, r->heap[child]);
        i = child;
    }
    s_heap_set(r, i, d);
}

static void s_heap_remove(relay_t *r, dir_t *d)
{
    size_t i = d->heap_index;
    if (i == SIZE_MAX)
        return;
    d->heap_index = SIZE_MAX;
    dir_t *last = r->heap[--r->heap_len];
    if (last == d)
        return;
    s_heap_set(r, i, last);
    s_heap_sift_up(r, i);
    s_heap_sift_down(r, last->heap_index);
}

/* Puts d in the schedule if it has a chunk waiting and somewhere to write
 * it, at the place its head's due time says; call after its head changed. */
static void s_schedule(dir_t *d)
{
    relay_t *r = d->link->relay;
    s_heap_remove(r, d);
    if (!d->head || !d->to->connected || d->link->closing)
        return;
    if (r->heap_len == r->heap_cap) {
        r->heap_cap = r->heap_cap ? 2 * r->heap_cap : 64;
        r->heap = xrealloc(r->heap, r->heap_cap * sizeof *r->heap);
    }
    r->heap[r->heap_len] = d;
    d->heap_index = r->heap_len++;
    s_heap_sift_up(r, d->heap_index);
}

/* Arms the timerfd for the earliest chunk due, or disarms it. */
static void s_arm(relay_t *r)
{
    if (r->stopping)
        return;
    uint64_t want = (r->partitioned || r->heap_len == 0) ? 0 : r->heap[0]->head->due_ns;
    if (want == r->armed_ns)
        return;
    struct itimerspec its = { { 0, 0 }, { 0, 0 } };
    if (want) {
        its.it_value.tv_sec = (time_t)(want / 1000000000u);
        its.it_value.tv_nsec = (long)(want % 1000000000u);
    }
    if (timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        /* Cannot happen with a valid fd and a normalised time. */
        log_error("timerfd_settime: %s", strerror(errno));
        abort();
    }
    r->armed_ns = want;
}

/* ---- links ---- */

static void s_link_closed(uv_handle_t *h)
{
    side_t *s = h->data;
    link_t *l = s->link;
    if (--l->open_handles == 0)
        free(l);
}

static void s_side_close(side_t *s, bool reset)
{
    if (!s->inited)
        return;
    s->inited = false;
    s->connected = false;
    /* A reset is refused on a handle that was shut down; close it then. */
    if (!reset || uv_tcp_close_reset(&s->tcp, s_link_closed) != 0)
        uv_close((uv_handle_t *)&s->tcp, s_link_closed);
}

static void s_dir_drop(dir_t *d)
{
    s_heap_remove(d->link->relay, d);
    while (d->head) {
        chunk_t *c = d->head;
        d->head = c->next;
        d->queued -= c->len;
        free(c);
    }
    d->tail = NULL;
}

/* Closes both sides of l (with a reset if asked) and drops what it holds.
 * Requests in flight are called back with UV_ECANCELED and free their
 * chunks; the last close callback frees l. */
static void s_link_close(link_t *l, bool reset, const char *why)
{
    if (l->closing)
        return;
    relay_t *r = l->relay;
    l->closing = true;
    log_debug("link %" PRIu64 ": closing (%s), %zu bytes up and %zu down not yet written", l->id,
              why, l->up.queued, l->down.queued);
    if (reset)
        r->stats.resets++;
    if (l->prev)
        l->prev->next = l->next;
    else
        r->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    s_dir_drop(&l->up);
    s_dir_drop(&l->down);
    s_side_close(&l->client, reset);
    s_side_close(&l->server, reset);
    s_arm(r);
}

static void s_read_start(side_t *s);

/* Reads the side feeding d again once d has drained. */
static void s_maybe_resume(dir_t *d)
{
    side_t *from = d->from;
    if (!d->link->closing && from->connected && !from->reading && !from->read_eof &&
        d->queued <= RELAY_QUEUE_RESUME)
        s_read_start(from);
}

static void s_written(uv_write_t *w, int status)
{
    chunk_t *c = w->data;
    dir_t *d = c->dir;
    link_t *l = d->link;
    d->queued -= c->len;
    free(c);
    if (l->closing)
        return;
    if (status < 0) {
        s_link_close(l, true, uv_strerror(status));
        return;
    }
    s_maybe_resume(d);
}

static void s_shut_down(uv_shutdown_t *sd, int status)
{
    chunk_t *c = sd->data;
    dir_t *d = c->dir;
    link_t *l = d->link;
    free(c);
    if (l->closing)
        return;
    if (status < 0) {
        s_link_close(l, true, uv_strerror(status));
        return;
    }
    d->eof_done = true;
    if (l->up.eof_done && l->down.eof_done)
        s_link_close(l, false, "both sides finished");
}

/* Hands every chunk of d that is due by now to libuv. Returns false if the
 * link closed meanwhile (d must not be touched then). */
static bool s_dir_flush(dir_t *d, uint64_t now)
{
    link_t *l = d->link;
    while (d->head && d->head->due_ns <= now) {
        chunk_t *c = d->head;
        d->head = c->next;
        if (!d->head)
            d->tail = NULL;
        int rc;
        if (c->len == 0) {
            c->req.shutdown.data = c;
            rc = uv_shutdown(&c->req.shutdown, (uv_stream_t *)&d->to->tcp, s_shut_down);
        } else {
            c->req.write.data = c;
            uv_buf_t b = uv_buf_init(c->data, (unsigned)c->len);
            rc = uv_write(&c->req.write, (uv_stream_t *)&d->to->tcp, &b, 1, s_written);
        }
        if (rc != 0) {
            /* Not queued: no callback will come for c. */
            d->queued -= c->len;
            free(c);
            s_link_close(l, true, uv_strerror(rc));
            return false;
        }
        *d->bytes += c->len;
    }
    return true;
}

/* Forwards everything due, then arms the timer for what is left. */
static void s_run_schedule(relay_t *r)
{
    uint64_t now = s_now_ns();
    while (!r->partitioned && r->heap_len > 0 && r->heap[0]->head->due_ns <= now) {
        dir_t *d = r->heap[0];
        s_heap_remove(r, d);
        if (s_dir_flush(d, now))
            s_schedule(d);
    }
    s_arm(r);
}

static void s_timer_fired(uv_poll_t *p, int status, int events)
{
    relay_t *r = p->data;
    uint64_t expirations;
    /* Non-blocking: EAGAIN when a re-arm raced the wake-up; nothing to do. */
    if (read(r->timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        log_warn("timerfd read: %s", strerror(errno));
    r->armed_ns = 0; /* a fired or re-armed-then-read timerfd is disarmed */
    s_run_schedule(r);
}

static void s_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    side_t *s = h->data;
    relay_t *r = s->link->relay;
    *buf = uv_buf_init(r->readbuf, sizeof r->readbuf);
}

static dir_t *s_dir_from(side_t *s)
{
    link_t *l = s->link;
    return s == &l->client ? &l->up : &l->down;
}

/* A uniform number in [0, 1) (xorshift64*). */
static double s_random(relay_t *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* When a chunk of len bytes read now on d is due: the rate cap's
 * serialisation, the delay, and a retransmission timeout if one of its
 * segments is lost (see the top of the file). */
static uint64_t s_due(relay_t *r, dir_t *d, size_t len, uint64_t now)
{
    uint64_t leave = now;
    if (r->rate_kbit > 0) {
        int k = d == &d->link->up ? 0 : 1;
        uint64_t start = r->free_ns[k] > now ? r->free_ns[k] : now;
        leave = start + (uint64_t)llround((double)len * 8.0 * 1e6 / r->rate_kbit);
        r->free_ns[k] = leave;
    }
    uint64_t due = leave + r->delay_ns;
    if (r->loss > 0 && len > 0) {
        size_t segments = (len + RELAY_MSS - 1) / RELAY_MSS;
        bool lost = false;
        for (size_t i = 0; i < segments; i++) {
            if (s_random(r) < r->loss) {
                r->stats.lost++;
                lost = true;
            }
        }
        r->stats.segments += segments;
        if (lost)
            due += (uint64_t)RELAY_RTO_MIN_MS * 1000000u + 2 * r->delay_ns;
    }
    return due;
}

/* Queues a chunk of len bytes from data (len 0: end of stream) on d. */
static void s_enqueue(dir_t *d, const char *data, size_t len)
{
    relay_t *r = d->link->relay;
    chunk_t *c = xmalloc(sizeof *c + len);
    c->next = NULL;
    c->dir = d;
    c->len = len;
    memcpy(c->data, data, len);
    /* Only the head is ever due: after the delay was shortened, or behind
     * a chunk that lost a segment, a chunk waits for the ones queued
     * before it, so order holds. */
    c->due_ns = s_due(r, d, len, s_now_ns());
    if (d->tail)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    d->queued += len;
    if (d->queued > r->stats.held_peak)
        r->stats.held_peak = d->queued;
    if (d->head == c) {
        s_schedule(d);
        s_arm(r);
    }
}

static void s_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    side_t *s = stream->data;
    link_t *l = s->link;
    dir_t *d = s_dir_from(s);
    if (n == 0)
        return;
    if (n == UV_EOF) {
        log_debug("link %" PRIu64 ": %s finished sending", l->id, s->name);
        uv_read_stop(stream);
        s->reading = false;
        s->read_eof = true;
        s_enqueue(d, "", 0);
        return;
    }
    if (n < 0) {
        s_link_close(l, true, uv_strerror((int)n));
        return;
    }
    s_enqueue(d, buf->base, (size_t)n);
    if (d->queued > RELAY_QUEUE_MAX) {
        uv_read_stop(stream);
        s->reading = false;
    }
}

static void s_read_start(side_t *s)
{
    int rc = uv_read_start((uv_stream_t *)&s->tcp, s_alloc, s_read);
    if (rc != 0) {
        s_link_close(s->link, true, uv_strerror(rc));
        return;
    }
    s->reading = true;
}

static void s_connected(uv_connect_t *req, int status)
{
    link_t *l = req->data;
    if (l->closing)
        return;
    relay_t *r = l->relay;
    if (status < 0) {
        log_warn("link %" PRIu64 ": connecting to %s: %s", l->id, r->opts.to, uv_strerror(status));
        r->stats.connect_failed++;
        s_link_close(l, true, "no server");
        return;
    }
    l->server.connected = true;
    uv_tcp_nodelay(&l->server.tcp, 1);
    s_read_start(&l->server);
    if (l->closing)
        return;
    s_schedule(&l->up);
    s_run_schedule(r);
}

/* Makes l's outgoing connection (at accept, or at heal for a link accepted
 * during a partition). */
static void s_link_connect(link_t *l)
{
    relay_t *r = l->relay;
    uv_tcp_init(r->loop, &l->server.tcp);
    l->server.tcp.data = &l->server;
    l->server.inited = true;
    l->open_handles++;
    l->connect.data = l;
    int rc = uv_tcp_connect(&l->connect, &l->server.tcp, (const struct sockaddr *)&r->to_addr,
                            s_connected);
    if (rc != 0) {
        log_warn("link %" PRIu64 ": connecting to %s: %s", l->id, r->opts.to, uv_strerror(rc));
        r->stats.connect_failed++;
        s_link_close(l, true, "no server");
    }
}

static void s_dir_init(dir_t *d, link_t *l, side_t *from, side_t *to, const char *name,
                       uint64_t *bytes)
{
    d->link = l;
    d->from = from;
    d->to = to;
    d->name = name;
    d->heap_index = SIZE_MAX;
    d->bytes = bytes;
}

static void s_on_connection(uv_stream_t *server, int status)
{
    relay_t *r = server->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    link_t *l = xcalloc(1, sizeof *l);
    l->relay = r;
    l->id = ++r->next_link_id;
    l->client.link = l->server.link = l;
    l->client.name = "client";
    l->server.name = "server";
    s_dir_init(&l->up, l, &l->client, &l->server, "up", &r->stats.bytes_up);
    s_dir_init(&l->down, l, &l->server, &l->client, "down", &r->stats.bytes_down);
    uv_tcp_init(r->loop, &l->client.tcp);
    l->client.tcp.data = &l->client;
    l->client.inited = true;
    l->open_handles = 1;
    l->next = r->links;
    if (r->links)
        r->links->prev = l;
    r->links = l;
    int rc = uv_accept(server, (uv_stream_t *)&l->client.tcp);
    if (rc != 0) {
        log_warn("accept: %s", uv_strerror(rc));
        s_link_close(l, false, "accept failed");
        return;
    }
    l->client.connected = true;
    if (r->partitioned && r->mode == PARTITION_DROP) {
        r->stats.refused++;
        s_link_close(l, true, "partitioned (drop)");
        return;
    }
    r->stats.accepted++;
    log_debug("link %" PRIu64 ": accepted%s", l->id, r->partitioned ? " (partitioned: held)" : "");
    uv_tcp_nodelay(&l->client.tcp, 1);
    s_read_start(&l->client);
    if (!l->closing && !r->partitioned)
        s_link_connect(l);
}

/* ---- partition ---- */

static void s_partition(relay_t *r, partition_mode_t mode)
{
    r->partitioned = true;
    r->mode = mode;
    if (mode == PARTITION_DROP) {
        while (r->links)
            s_link_close(r->links, true, "partitioned (drop)");
    }
    s_arm(r);
    log_info("partitioned (%s)", mode == PARTITION_DROP ? "drop" : "hold");
}

static void s_heal(relay_t *r)
{
    if (!r->partitioned)
        return;
    r->partitioned = false;
    log_info("healed");
    /* Links accepted during the partition connect now. Collect first:
     * s_link_connect may close (and unlink) a link. */
    size_t n = 0;
    for (link_t *l = r->links; l; l = l->next)
        if (!l->server.inited)
            n++;
    link_t **held = xcalloc(n ? n : 1, sizeof *held);
    size_t i = 0;
    for (link_t *l = r->links; l; l = l->next)
        if (!l->server.inited)
            held[i++] = l;
    for (i = 0; i < n; i++)
        s_link_connect(held[i]);
    free(held);
    s_run_schedule(r);
}

/* ---- control socket ---- */

static void s_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void s_conn_close(control_conn_t *k)
{
    if (k->closing)
        return;
    k->closing = true;
    relay_t *r = k->relay;
    if (k->prev)
        k->prev->next = k->next;
    else
        r->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_close((uv_handle_t *)&k->pipe, s_conn_closed);
}

typedef struct {
    uv_write_t w;
    control_conn_t *conn;
    char text[];
} reply_t;

static void s_replied(uv_write_t *w, int status)
{
    reply_t *rp = (reply_t *)w;
    control_conn_t *k = rp->conn;
    free(rp);
    k->writes_pending--;
    if (k->closing)
        return;
    if (status < 0 || (k->eof && k->writes_pending == 0))
        s_conn_close(k);
}

static void s_reply(control_conn_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_reply(control_conn_t *k, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof text - 2)
        n = (int)(sizeof text - 2);
    text[n++] = '\n';
    reply_t *rp = xmalloc(sizeof *rp + (size_t)n);
    rp->conn = k;
    memcpy(rp->text, text, (size_t)n);
    uv_buf_t b = uv_buf_init(rp->text, (unsigned)n);
    if (uv_write(&rp->w, (uv_stream_t *)&k->pipe, &b, 1, s_replied) != 0) {
        free(rp);
        s_conn_close(k);
        return;
    }
    k->writes_pending++;
}

static void s_stats(relay_t *r, control_conn_t *k)
{
    uint64_t links = 0, held = 0;
    for (link_t *l = r->links; l; l = l->next) {
        links++;
        held += l->up.queued + l->down.queued;
    }
    s_reply(k,
            "ok links=%" PRIu64 " accepted=%" PRIu64 " refused=%" PRIu64
            " connect_failed=%" PRIu64 " resets=%" PRIu64 " bytes_up=%" PRIu64
            " bytes_down=%" PRIu64 " held=%" PRIu64 " held_peak=%" PRIu64
            " delay_ms=%.3f rate_kbit=%.0f loss_pct=%.3f segments=%" PRIu64 " lost=%" PRIu64
            " partitioned=%d mode=%s",
            links, r->stats.accepted, r->stats.refused, r->stats.connect_failed, r->stats.resets,
            r->stats.bytes_up, r->stats.bytes_down, held, r->stats.held_peak,
            (double)r->delay_ns / 1e6, r->rate_kbit, r->loss * 100.0, r->stats.segments,
            r->stats.lost, r->partitioned ? 1 : 0,
            (r->partitioned ? r->mode : r->opts.mode) == PARTITION_DROP ? "drop" : "hold");
}

/* Parses a number from 0 to max; false if it is not one. */
static bool s_parse_number(const char *s, double max, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(x) || x < 0 || x > max)
        return false;
    *v = x;
    return true;
}

static bool s_parse_mode(const char *s, partition_mode_t *mode)
{
    if (strcmp(s, "hold") == 0)
        *mode = PARTITION_HOLD;
    else if (strcmp(s, "drop") == 0)
        *mode = PARTITION_DROP;
    else
        return false;
    return true;
}

static void s_command(control_conn_t *k, char *line)
{
    relay_t *r = k->relay;
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r", &save);
    char *arg = cmd ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *extra = arg ? strtok_r(NULL, " \t\r", &save) : NULL;
    if (!cmd) {
        s_reply(k, "error empty command");
    } else if (extra) {
        s_reply(k, "error too many arguments");
    } else if (strcmp(cmd, "delay") == 0) {
        double ms;
        if (!arg || !s_parse_number(arg, RELAY_DELAY_MAX_MS, &ms)) {
            s_reply(k, "error delay takes milliseconds from 0 to %.0f", RELAY_DELAY_MAX_MS);
            return;
        }
        r->delay_ns = (uint64_t)llround(ms * 1e6);
        log_info("delay now %.3f ms each way", ms);
        s_reply(k, "ok delay_ms=%.3f", ms);
    } else if (strcmp(cmd, "rate") == 0) {
        double kbit;
        if (!arg || !s_parse_number(arg, RELAY_RATE_MAX_KBIT, &kbit)) {
            s_reply(k, "error rate takes kbit/s from 0 (no cap) to %.0f", RELAY_RATE_MAX_KBIT);
            return;
        }
        r->rate_kbit = kbit;
        log_info("rate now %.0f kbit/s each way%s", kbit, kbit > 0 ? "" : " (no cap)");
        s_reply(k, "ok rate_kbit=%.0f", kbit);
    } else if (strcmp(cmd, "loss") == 0) {
        double pct;
        if (!arg || !s_parse_number(arg, 100.0, &pct)) {
            s_reply(k, "error loss takes a percentage from 0 to 100");
            return;
        }
        r->loss = pct / 100.0;
        log_info("loss now %.3f %% of segments each way", pct);
        s_reply(k, "ok loss_pct=%.3f", pct);
    } else if (strcmp(cmd, "partition") == 0) {
        partition_mode_t mode = r->opts.mode;
        if (arg && !s_parse_mode(arg, &mode)) {
            s_reply(k, "error partition mode is hold or drop");
            return;
        }
        s_partition(r, mode);
        s_reply(k, "ok partitioned mode=%s", mode == PARTITION_DROP ? "drop" : "hold");
    } else if (strcmp(cmd, "heal") == 0 && !arg) {
        s_heal(r);
        s_reply(k, "ok healed");
    } else if (strcmp(cmd, "stats") == 0 && !arg) {
        s_stats(r, k);
    } else {
        s_reply(k, "error unknown command (delay MS, rate KBIT, loss PCT, partition [hold|drop], "
                   "heal, stats)");
    }
}

static void s_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    control_conn_t *k = h->data;
    *buf = uv_buf_init(k->line + k->len, (unsigned)(RELAY_CONTROL_LINE_MAX - k->len));
}

static void s_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    control_conn_t *k = s->data;
    if (n == 0)
        return;
    if (n < 0) {
        uv_read_stop(s);
        k->eof = true;
        if (k->writes_pending == 0)
            s_conn_close(k);
        return;
    }
    k->len += (size_t)n;
    char *nl;
    while (!k->closing && (nl = memchr(k->line, '\n', k->len)) != NULL) {
        *nl = '\0';
        size_t used = (size_t)(nl - k->line) + 1;
        s_command(k, k->line);
        memmove(k->line, k->line + used, k->len - used);
        k->len -= used;
    }
    if (!k->closing && k->len == RELAY_CONTROL_LINE_MAX) {
        s_reply(k, "error line over %d bytes", RELAY_CONTROL_LINE_MAX);
        uv_read_stop(s);
        k->eof = true; /* close once the reply is out */
    }
}

static void s_control_connection(uv_stream_t *server, int status)
{
    relay_t *r = server->data;
    if (status < 0) {
        log_warn("control: accept: %s", uv_strerror(status));
        return;
    }
    control_conn_t *k = xcalloc(1, sizeof *k);
    k->relay = r;
    uv_pipe_init(r->loop, &k->pipe, 0);
    k->pipe.data = k;
    k->next = r->conns;
    if (r->conns)
        r->conns->prev = k;
    r->conns = k;
    if (uv_accept(server, (uv_stream_t *)&k->pipe) != 0 ||
        uv_read_start((uv_stream_t *)&k->pipe, s_conn_alloc, s_conn_read) != 0)
        s_conn_close(k);
}

/* ---- lifecycle ---- */

static void s_noop_closed(uv_handle_t *h) {}

static void s_timer_closed(uv_handle_t *h)
{
    relay_t *r = h->data;
    close(r->timer_fd);
    r->timer_fd = -1;
}

/* Closes every handle; the loop then runs out. Safe to call twice. */
static void s_stop(relay_t *r)
{
    if (r->stopping)
        return;
    r->stopping = true;
    while (r->links)
        s_link_close(r->links, false, "relay stopping");
    while (r->conns)
        s_conn_close(r->conns);
    if (!uv_is_closing((uv_handle_t *)&r->listener))
        uv_close((uv_handle_t *)&r->listener, s_noop_closed);
    if (r->control_inited)
        uv_close((uv_handle_t *)&r->control, s_noop_closed);
    if (r->timer_inited)
        uv_close((uv_handle_t *)&r->timer_poll, s_timer_closed);
    uv_close((uv_handle_t *)&r->sigint, s_noop_closed);
    uv_close((uv_handle_t *)&r->sigterm, s_noop_closed);
}

static void s_on_signal(uv_signal_t *s, int signum)
{
    relay_t *r = s->data;
    log_info("signal %d: stopping", signum);
    s_stop(r);
}

/* Parses "HOST:PORT" or "[V6]:PORT" into out; false if it is not one. */
static bool s_parse_addr(const char *text, struct sockaddr_storage *out)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return false;
    size_t hlen = (size_t)(colon - text);
    const char *h = text;
    if (text[0] == '[' && hlen >= 2 && text[hlen - 1] == ']') {
        h = text + 1;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return false;
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
        return true;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0;
}

static int s_bound_port(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Initialises r, binds and listens; prints the listening port on stdout.
 * Returns false after logging why; every handle initialised is closed by
 * s_stop (the caller runs the loop either way). */
static bool s_start(relay_t *r, uv_loop_t *loop, const relay_opts_t *opts)
{
    struct sockaddr_storage listen_addr;
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->opts = *opts;
    r->delay_ns = (uint64_t)llround(opts->delay_ms * 1e6);
    r->rate_kbit = opts->rate_kbit;
    r->loss = opts->loss_pct / 100.0;
    r->rng = opts->seed ? opts->seed : 1;
    r->timer_fd = -1;
    uv_tcp_init(loop, &r->listener);
    r->listener.data = r;
    uv_signal_init(loop, &r->sigint);
    uv_signal_init(loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->timer_fd < 0) {
        log_error("timerfd_create: %s", strerror(errno));
        return false;
    }
    int rc = uv_poll_init(loop, &r->timer_poll, r->timer_fd);
    if (rc != 0) {
        log_error("timerfd poll: %s", uv_strerror(rc));
        close(r->timer_fd);
        r->timer_fd = -1;
        return false;
    }
    r->timer_poll.data = r;
    r->timer_inited = true;
    uv_poll_start(&r->timer_poll, UV_READABLE, s_timer_fired);
    if (!s_parse_addr(opts->listen, &listen_addr)) {
        log_error("--listen %s: expected HOST:PORT", opts->listen);
        return false;
    }
    if (!s_parse_addr(opts->to, &r->to_addr)) {
        log_error("--to %s: expected HOST:PORT", opts->to);
        return false;
    }
    rc = uv_tcp_bind(&r->listener, (const struct sockaddr *)&listen_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&r->listener, 511, s_on_connection);
    if (rc != 0) {
        log_error("cannot listen on %s: %s", opts->listen, uv_strerror(rc));
        return false;
    }
    if (opts->control) {
        uv_pipe_init(loop, &r->control, 0);
        r->control.data = r;
        r->control_inited = true;
        rc = uv_pipe_bind(&r->control, opts->control);
        r->control_bound = rc == 0;
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&r->control, 16, s_control_connection);
        if (rc != 0) {
            log_error("control socket %s: %s", opts->control, uv_strerror(rc));
            return false;
        }
    }
    uv_signal_start(&r->sigint, s_on_signal, SIGINT);
    uv_signal_start(&r->sigterm, s_on_signal, SIGTERM);
    int port = s_bound_port(&r->listener);
    printf("%d\n", port);
    fflush(stdout);
    log_info("relaying %s (port %d) to %s, %.3f ms each way, rate %.0f kbit/s, loss %.3f %%, "
             "partition mode %s%s%s", opts->listen, port, opts->to, opts->delay_ms,
             opts->rate_kbit, opts->loss_pct, opts->mode == PARTITION_DROP ? "drop" : "hold",
             opts->control ? ", control " : "", opts->control ? opts->control : "");
    return true;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: godwit-relay --listen HOST:PORT --to HOST:PORT [--delay-ms MS]\n"
            "                    [--rate-kbit KBIT] [--loss PCT] [--seed N]\n"
            "                    [--control PATH] [--partition-mode hold|drop] [--log-level L]\n"
            "  --listen HOST:PORT   where to accept (port 0: any; the port is printed on stdout)\n"
            "  --to HOST:PORT       where each accepted connection is relayed\n"
            "  --delay-ms MS        one-way delay in each direction (default 0, fractions allowed)\n"
            "  --rate-kbit KBIT     cap of each direction, all links together (default 0: none)\n"
            "  --loss PCT           segments lost, each arriving a retransmission timeout late\n"
            "  --seed N             of the loss's generator (default 1)\n"
            "  --control PATH       unix socket taking: delay MS | rate KBIT | loss PCT |\n"
            "                       partition [hold|drop] | heal | stats\n"
            "  --partition-mode M   hold (default): hold bytes; drop: reset links, refuse new ones\n"
            "  --log-level L        debug|info|warn|error (default info)\n");
}

int main(int argc, char **argv)
{
    relay_opts_t opts = { NULL, NULL, NULL, 0.0, 0.0, 0.0, 1, PARTITION_HOLD };
    log_level_t level = LOG_INFO;
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "to", required_argument, NULL, 't' },
        { "delay-ms", required_argument, NULL, 'd' },
        { "rate-kbit", required_argument, NULL, 'r' },
        { "loss", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 's' },
        { "control", required_argument, NULL, 'c' },
        { "partition-mode", required_argument, NULL, 'm' },
        { "log-level", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (o) {
        case 'l': opts.listen = optarg; break;
        case 't': opts.to = optarg; break;
        case 'c': opts.control = optarg; break;
        case 'd':
            if (!s_parse_number(optarg, RELAY_DELAY_MAX_MS, &opts.delay_ms)) {
                fprintf(stderr, "--delay-ms %s: expected milliseconds from 0 to %.0f\n", optarg,
                        RELAY_DELAY_MAX_MS);
                return RELAY_EXIT_USAGE;
            }
            break;
        case 'r':
            if (!s_parse_number(optarg, RELAY_RATE_MAX_KBIT, &opts.rate_kbit)) {
                fprintf(stderr, "--rate-kbit %s: expected kbit/s from 0 to %.0f\n", optarg,
                        RELAY_RATE_MAX_KBIT);
                return RELAY_EXIT_USAGE;
            }
            break;
        case 'p':
            if (!s_parse_number(optarg, 100.0, &opts.loss_pct)) {
                fprintf(stderr, "--loss %s: expected a percentage from 0 to 100\n", optarg);
                return RELAY_EXIT_USAGE;
            }
            break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end != '\0' || v == 0) {
                fprintf(stderr, "--seed %s: expected a positive integer\n", optarg);
                return RELAY_EXIT_USAGE;
            }
            opts.seed = v;
            break;
        }
        case 'm':
            if (!s_parse_mode(optarg, &opts.mode)) {
                fprintf(stderr, "--partition-mode %s: expected hold or drop\n", optarg);
                return RELAY_EXIT_USAGE;
            }
            break;
        case 'v':
            if (!log_level_parse(optarg, &level)) {
                fprintf(stderr, "--log-level %s: expected debug, info, warn or error\n", optarg);
                return RELAY_EXIT_USAGE;
            }
            break;
        case 'h': s_usage(stdout); return RELAY_EXIT_OK;
        default: s_usage(stderr); return RELAY_EXIT_USAGE;
        }
    }
    if (!opts.listen || !opts.to || optind != argc) {
        s_usage(stderr);
        return RELAY_EXIT_USAGE;
    }
    log_init("relay", level);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    relay_t *r = xmalloc(sizeof *r);
    int code = RELAY_EXIT_OK;
    if (!s_start(r, &loop, &opts)) {
        code = RELAY_EXIT_ERROR;
        s_stop(r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        log_error("loop closed with handles still open");
        code = RELAY_EXIT_ERROR;
    }
    if (r->control_bound)
        unlink(opts.control);
    free(r->heap);
    free(r);
    return code;
}
