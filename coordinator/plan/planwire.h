/*
 * planwire: the plan's parts as the protobuf messages commands carry, in
 * one place: a migration's tables as TableRefs, and the ReplicationConn by
 * which one side reaches the other (a peer of the receiving agent's config
 * and a database on it; never an address: docs/protocol.md, "Trust").
 *
 * Ownership: a *_borrow result points into the plan (which must outlive
 * the command's send); a *_copy result owns copies of the strings; both are
 * released with their *_free, which also frees the arrays.
 */
#ifndef GODWIT_PLANWIRE_H
#define GODWIT_PLANWIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "godwit.pb-c.h"
#include "plan.h"

typedef struct {
    Godwit__TableRef *refs;
    Godwit__TableRef **ptrs; /* what a message's repeated `tables` field takes */
    size_t n;                /* the plan's tables; 0: all (the field stays empty) */
    bool owned;              /* the strings are copies, freed with it */
} planwire_tables_t;

void planwire_tables_borrow(planwire_tables_t *t, const plan_migration_t *m);
void planwire_tables_copy(planwire_tables_t *t, const plan_migration_t *m);
void planwire_tables_free(planwire_tables_t *t);

/* How the target reads the source (the plan's `replication` peer, the
 * source's database): borrowed from m. */
Godwit__ReplicationConn planwire_forward(const plan_migration_t *m);
/* How the source reads the target after a cutover (`reverse_replication`,
 * the target's database; peer NULL when the plan gives none): borrowed. */
Godwit__ReplicationConn planwire_reverse(const plan_migration_t *m);
/* The same two as owned copies (a NULL peer becomes ""), released with
 * planwire_conn_free. */
void planwire_conn_copy(Godwit__ReplicationConn *rc, const Godwit__ReplicationConn *from);
void planwire_conn_free(Godwit__ReplicationConn *rc);

#endif
