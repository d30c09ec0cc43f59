/*
 * ctlmigrate: godwitctl's commands about plans and migrations: plan check,
 * migrate (start, status, pause, resume, abort, verify), cutover and
 * rollback, cleanup. Each takes its argv from the command word on and
 * returns the process's exit code (cli.h).
 */
#ifndef GODWIT_CTLMIGRATE_H
#define GODWIT_CTLMIGRATE_H

/* plan check PLAN [--json] */
int ctlmigrate_plan(const char *sock, int argc, char **argv);
/* migrate start|status|pause|resume|abort|verify ... */
int ctlmigrate_migrate(const char *sock, int argc, char **argv);
/* cutover|rollback M [--dry-run] [--json]: starts it and follows it to
 * its end. The code says how it ended: 0 done (switched, or rehearsed),
 * CLI_EXIT_REFUSED, CLI_EXIT_ROLLED_BACK, CLI_EXIT_UNKNOWN, or 1 for any other error. */
int ctlmigrate_cutover(const char *sock, int argc, char **argv);
/* cleanup M [--json]: asks for it and waits (two minutes at most) until
 * the migration is done. 0 when done; 1 when refused or still failing,
 * with the step's last error. */
int ctlmigrate_cleanup(const char *sock, int argc, char **argv);

#endif
