/*
 * migcmd: godwitctl's commands about plans and migrations: plan check,
 * migrate (start, status, pause, resume, abort, verify), cutover and
 * rollback, cleanup. Each takes its argv from the command word on and
 * returns the process's exit code (cli.h).
 */
#ifndef GODWIT_MIGCMD_H
#define GODWIT_MIGCMD_H

/* plan check PLAN [--json] */
int migcmd_plan(const char *sock, int argc, char **argv);
/* migrate start|status|pause|resume|abort|verify ... */
int migcmd_migrate(const char *sock, int argc, char **argv);
/* cutover|rollback M [--dry-run] [--json]: starts it and follows it to
 * its end. The code says how it ended: 0 done (switched, or rehearsed),
 * CLI_EXIT_REFUSED, CLI_EXIT_ROLLED_BACK, CLI_EXIT_UNKNOWN, or 1 for any other error. */
int migcmd_cutover(const char *sock, int argc, char **argv);
/* cleanup M [--json]: asks for it and waits (two minutes at most) until
 * the migration is done. 0 when done; 1 when refused or still failing,
 * with the step's last error. */
int migcmd_cleanup(const char *sock, int argc, char **argv);

#endif
