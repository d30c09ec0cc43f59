/*
 * connkeep: see connkeep.h.
 */
#include "connkeep.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void s_drop(connkeep_t *k)
{
    for (size_t i = 0; i < CONNKEEP_MAX; i++) {
        pgconn_destroy(&k->conn[i]);
        free(k->db[i]);
        k->db[i] = NULL;
    }
    uv_timer_stop(&k->timer);
}

static void s_expired(uv_timer_t *t)
{
    s_drop(t->data);
}

void connkeep_init(connkeep_t *k, uv_loop_t *loop, void *owner)
{
    memset(k, 0, sizeof *k);
    uv_timer_init(loop, &k->timer);
    k->timer.data = k;
    k->owner = owner;
}

pgconn_t *connkeep_take(connkeep_t *k, const char *database)
{
    for (size_t i = 0; i < CONNKEEP_MAX; i++) {
        if (k->conn[i] && strcmp(k->db[i], database) == 0 && pgconn_is_ready(k->conn[i])) {
            pgconn_t *c = k->conn[i];
            k->conn[i] = NULL;
            free(k->db[i]);
            k->db[i] = NULL;
            return c;
        }
    }
    return NULL;
}

/* The slot of the oldest connection kept (of database, or of any when
 * database is NULL); CONNKEEP_MAX if none. */
static size_t s_oldest(const connkeep_t *k, const char *database)
{
    size_t at = CONNKEEP_MAX;
    for (size_t i = 0; i < CONNKEEP_MAX; i++)
        if (k->conn[i] && (!database || strcmp(k->db[i], database) == 0) &&
            (at == CONNKEEP_MAX || k->given[i] < k->given[at]))
            at = i;
    return at;
}

void connkeep_give(connkeep_t *k, const char *database, pgconn_t **cp)
{
    if (!*cp)
        return;
    if (!pgconn_is_ready(*cp)) {
        pgconn_destroy(cp);
        return;
    }
    size_t same = 0, at = CONNKEEP_MAX;
    for (size_t i = 0; i < CONNKEEP_MAX; i++) {
        if (k->conn[i] && strcmp(k->db[i], database) == 0)
            same++;
        else if (!k->conn[i] && at == CONNKEEP_MAX)
            at = i;
    }
    if (same >= CONNKEEP_PER_DB)
        at = s_oldest(k, database);
    else if (at == CONNKEEP_MAX)
        at = s_oldest(k, NULL);
    pgconn_destroy(&k->conn[at]);
    free(k->db[at]);
    k->conn[at] = *cp;
    k->db[at] = xstrdup(database);
    k->given[at] = ++k->gives;
    *cp = NULL;
    uv_timer_start(&k->timer, s_expired, CONNKEEP_MS, 0);
}

static void s_closed(uv_handle_t *h)
{
    connkeep_t *k = h->data;
    k->closed(k->owner); /* may free the memory k lives in */
}

void connkeep_close(connkeep_t *k, void (*closed)(void *owner))
{
    s_drop(k);
    k->closed = closed;
    uv_close((uv_handle_t *)&k->timer, s_closed);
}
