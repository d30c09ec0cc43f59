/*
 * pgmon: the agent's view of its local PostgreSQL server, refreshed on every
 * report tick over one pgconn: server version, wal_level, current WAL LSN and
 * WAL bytes/s, max_slot_wal_keep_size, database sizes, replication slots
 * (retained WAL, spill), subscriptions (LSNs, seconds since last message,
 * error counts from pg_stat_subscription_stats on 15+) and publications.
 *
 * One round trip per tick: a single catalog query (chosen by server version)
 * returns one JSON document, parsed with cJSON. A collection still in flight
 * when the next tick comes is left alone (the statement timeout and pgconn's
 * deadline end it); a dead server is reported unreachable with libpq's reason
 * and reconnected on later ticks. Never blocks the loop.
 */
#ifndef GODWIT_PGMON_H
#define GODWIT_PGMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"

typedef struct pgmon pgmon_t;

typedef struct {
    const char *host;
    int port;
    const char *dbname;
    const char *user;
    const char *passfile;          /* may be NULL */
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;  /* server-side; the client deadline is this + 1 s */
} pgmon_params_t;

/* Called when reachability changes (reachable=false carries the reason). */
typedef void (*pgmon_state_cb)(bool reachable, const char *reason, void *arg);

/* Copies params. Returns NULL for invalid params. */
pgmon_t *pgmon_new(uv_loop_t *loop, const pgmon_params_t *params, pgmon_state_cb cb, void *arg);

/* Starts a refresh unless one is in flight; connects first when needed. */
void pgmon_tick(pgmon_t *m);

/* A new Godwit__Postgres describing the latest state: reachable, error,
 * and the last figures read (collected_at_ms says when). The caller frees it
 * with godwit__postgres__free_unpacked(p, NULL): every field is malloc'd. */
Godwit__Postgres *pgmon_snapshot(const pgmon_t *m);

bool pgmon_reachable(const pgmon_t *m);

/* Disconnects and clears *mp; memory goes once the handles have closed. */
void pgmon_destroy(pgmon_t **mp);

#endif
