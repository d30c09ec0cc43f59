/*
 * myevents: which of a database's events the cutover turns on or off. The
 * copy makes the source's enabled events DISABLE ON SLAVE on the target
 * (status SLAVESIDE_DISABLED: a replica runs none); Promote enables those
 * on the new primary, MyFollow makes a new replica's enabled ones DISABLE
 * ON SLAVE. Both list them with myevents_sql and read the answer with
 * myevents_names.
 *
 * Ownership: every function returns memory the caller frees.
 */
#ifndef GODWIT_MYEVENTS_H
#define GODWIT_MYEVENTS_H

#include <stddef.h>

#include "myconn.h"

/* The statement listing the events of the database db_literal (a quoted
 * string literal) whose STATUS is status ("ENABLED", "SLAVESIDE_DISABLED":
 * a constant of the caller's), as columns db and name. */
char *myevents_sql(const char *db_literal, const char *status);

/* The names in r (myevents_sql's answer) whose database is database byte
 * for byte (information_schema compares names case-insensitively): an
 * array of *n strings (never NULL). */
char **myevents_names(const myconn_result_t *r, const char *database, size_t *n);

/* Frees what myevents_names returned. */
void myevents_free(char **names, size_t n);

#endif
