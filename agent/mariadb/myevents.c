/*
 * myevents: see myevents.h.
 */
#include "myevents.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

char *myevents_sql(const char *db_literal, const char *status)
{
    return xasprintf("SELECT EVENT_SCHEMA AS db, EVENT_NAME AS name"
                     " FROM information_schema.EVENTS"
                     " WHERE EVENT_SCHEMA = %s AND STATUS = '%s'", db_literal, status);
}

char **myevents_names(const myconn_result_t *r, const char *database, size_t *n)
{
    char **names = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *names);
    *n = 0;
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *db = myconn_col(r, i, "db");
        const char *name = myconn_col(r, i, "name");
        if (db && name && strcmp(db, database) == 0)
            names[(*n)++] = xstrdup(name);
    }
    return names;
}

void myevents_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
