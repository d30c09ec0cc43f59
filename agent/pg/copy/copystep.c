/* copystep: what the BulkCopy step's modules share (copystep.h). */
#include "copystep.h"

#include <stdlib.h>

#include "xalloc.h"

/* A statement on a worker's connection failed (not the runtime's: what
 * describes it). */
void copystep_fail_query(copystep_t *b, const char *what, const pgconn_result_t *r)
{
    char *why = pgconn_result_message(what, r);
    steprun_finish(&b->run, NULL, why);
    free(why);
}

/* Sends one statement on run.conn[i] (COPYSTEP_CTL: parameters allowed; COPYSTEP_REPL:
 * simple protocol); cb gets b. */
void copystep_query(copystep_t *b, int i, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    uint64_t deadline = (uint64_t)b->local.statement_timeout_ms + STEP_DEADLINE_SLACK_MS;
    if (i == COPYSTEP_REPL)
        steprun_query_simple(&b->run, i, what, sql, deadline, cb);
    else
        steprun_query(&b->run, i, what, sql, nparams, params, deadline, cb);
}

/* ident quoted for c, or NULL after failing the step. Caller frees. */
char *copystep_ident(copystep_t *b, pgconn_t *c, const char *ident)
{
    char *q = pgconn_escape_identifier(c, ident);
    if (!q)
        steprun_failf(&b->run,
                      "cannot quote the name \"%s\" for SQL (not valid in the encoding, or the "
                      "connection is gone)",
                      ident);
    return q;
}

char *copystep_literal(copystep_t *b, pgconn_t *c, const char *v)
{
    char *q = pgconn_escape_literal(c, v);
    if (!q)
        steprun_failf(&b->run,
                      "cannot quote \"%s\" for SQL (not valid in the encoding, or the connection "
                      "is gone)",
                      v);
    return q;
}

/* "schema"."name" quoted for c. Caller frees; NULL after failing the step. */
char *copystep_qualified(copystep_t *b, pgconn_t *c, const copystep_table_t *t)
{
    char *s = copystep_ident(b, c, t->schema);
    if (!s)
        return NULL;
    char *n = copystep_ident(b, c, t->name);
    if (!n) {
        free(s);
        return NULL;
    }
    char *q = xasprintf("%s.%s", s, n);
    free(s);
    free(n);
    return q;
}
