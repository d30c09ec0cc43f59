/* planwire: the plan's parts as protobuf messages (planwire.h). */
#include "planwire.h"

#include <stdlib.h>

#include "xalloc.h"

static void s_tables(planwire_tables_t *t, const plan_migration_t *m, bool owned)
{
    size_t n = m->n_tables;
    t->n = n;
    t->owned = owned;
    t->refs = xcalloc(n ? n : 1, sizeof *t->refs);
    t->ptrs = xcalloc(n ? n : 1, sizeof *t->ptrs);
    for (size_t i = 0; i < n; i++) {
        godwit__table_ref__init(&t->refs[i]);
        t->refs[i].schema = owned ? xstrdup(m->tables[i].schema) : m->tables[i].schema;
        t->refs[i].name = owned ? xstrdup(m->tables[i].name) : m->tables[i].name;
        t->ptrs[i] = &t->refs[i];
    }
}

void planwire_tables_borrow(planwire_tables_t *t, const plan_migration_t *m) { s_tables(t, m, false); }

void planwire_tables_copy(planwire_tables_t *t, const plan_migration_t *m) { s_tables(t, m, true); }

void planwire_tables_free(planwire_tables_t *t)
{
    for (size_t i = 0; t->owned && i < t->n; i++) {
        free(t->refs[i].schema);
        free(t->refs[i].name);
    }
    free(t->refs);
    free(t->ptrs);
    t->refs = NULL;
    t->ptrs = NULL;
    t->n = 0;
}

Godwit__ReplicationConn planwire_forward(const plan_migration_t *m)
{
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = m->replication.peer;
    rc.dbname = m->source.database;
    return rc;
}

Godwit__ReplicationConn planwire_reverse(const plan_migration_t *m)
{
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = m->reverse_replication.peer;
    rc.dbname = m->target.database;
    return rc;
}

void planwire_conn_copy(Godwit__ReplicationConn *rc, const Godwit__ReplicationConn *from)
{
    godwit__replication_conn__init(rc);
    rc->peer = xstrdup(from->peer ? from->peer : "");
    rc->dbname = xstrdup(from->dbname ? from->dbname : "");
}

void planwire_conn_free(Godwit__ReplicationConn *rc)
{
    free(rc->peer);
    free(rc->dbname);
    rc->peer = NULL;
    rc->dbname = NULL;
}
