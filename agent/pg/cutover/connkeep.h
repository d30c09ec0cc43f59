/*
 * connkeep: the connections the write fence keeps for the write pause's
 * next steps (freezer.c: PREPARE, or a step that ended well), connected and
 * idle, each to one database; SetSequences borrows them too. Two per
 * database at most: on one side the target's sequences and the lift of its
 * own fence (a rollback's, or the one a migration sets) run at once. A
 * cutover group keeps them for each of its databases on the server, up to
 * CONNKEEP_MAX in all; past that, the one given back longest ago goes.
 * Unused for CONNKEEP_MS, they are closed.
 *
 * Owns the kept connections, their databases' names and the timer. The
 * timer is also how its owner goes: connkeep_close's callback runs from
 * the timer's close, after which nothing of it is touched.
 */
#ifndef GODWIT_CONNKEEP_H
#define GODWIT_CONNKEEP_H

#include <stdint.h>
#include <uv.h>

#include "pgconn.h"

#define CONNKEEP_PER_DB 2
#define CONNKEEP_MAX 128
#define CONNKEEP_MS 60000

typedef struct {
    pgconn_t *conn[CONNKEEP_MAX];   /* NULL or connected and idle */
    char *db[CONNKEEP_MAX];         /* conn[i]'s database */
    uint64_t given[CONNKEEP_MAX];   /* conn[i]'s order of giving (1, 2, ...) */
    uint64_t gives;                 /* how many were given so far */
    uv_timer_t timer;               /* closes them after CONNKEEP_MS unused */
    void *owner;
    void (*closed)(void *owner);
} connkeep_t;

/* Starts empty; owner is handed to connkeep_close's callback. */
void connkeep_init(connkeep_t *k, uv_loop_t *loop, void *owner);
/* A kept connection to database that is ready (the caller owns it now),
 * or NULL. */
pgconn_t *connkeep_take(connkeep_t *k, const char *database);
/* Keeps *cp (taken, *cp cleared) if it is ready, else destroys it. Makes
 * room, when the database has CONNKEEP_PER_DB already or the keep is full,
 * by closing the one given back longest ago (of that database, or of any). */
void connkeep_give(connkeep_t *k, const char *database, pgconn_t **cp);
/* Destroys the kept connections and closes the timer; closed(owner) runs
 * from its close callback. */
void connkeep_close(connkeep_t *k, void (*closed)(void *owner));

#endif
