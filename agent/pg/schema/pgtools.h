/*
 * pgtools: what it takes to run PostgreSQL's client programs (pg_dump,
 * pg_restore) as child processes (proc.h): where the program is, the
 * environment that carries the connection, and a failed child's outcome as
 * one line for an error. ApplySchema (schema.c) runs them.
 *
 * A connection detail never shows on a command line: it goes to the child
 * through libpq's environment variables, and no password ever goes at all
 * (a passfile does). It runs nothing itself and owns nothing past a call.
 */
#ifndef GODWIT_PGTOOLS_H
#define GODWIT_PGTOOLS_H

#include "proc.h"

/* The program name in bin_dir, or name alone (looked up in PATH) when
 * bin_dir is "". The caller frees. */
char *pgtools_program(const char *bin_dir, const char *name);

/* A child's environment: the agent's without any PG* variable but its TLS
 * files' (PGSSLROOTCERT, PGSSLCRL, PGSSLCERT, PGSSLKEY), plus libpq's
 * connection variables for the values given (NULL or "" left out), so no
 * connection detail ever shows on a command line. Caller frees with
 * proc_env_free. */
char **pgtools_env(const char *host, const char *port, const char *user, const char *passfile,
                   const char *sslmode, const char *dbname, const char *connect_timeout);

/* "what STATUS: its stderr on one line" for a child that failed (caller
 * frees). */
char *pgtools_failure(const char *what, const proc_result_t *r);

#endif
