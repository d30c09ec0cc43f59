/*
 * cli: godwitctl's command line (the parse side): its exit codes, the
 * default control socket, the usage text and the argument helpers the
 * commands share. Prints to stderr what is wrong with the arguments; talks
 * to nobody.
 */
#ifndef GODWIT_CLI_H
#define GODWIT_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes (docs/godwitctl.md): 0 ok, and */
#define CLI_EXIT_DEGRADED 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_UNREACHABLE 3
/* cutover and rollback (docs/godwitctl.md): */
#define CLI_EXIT_REFUSED 4     /* refused at a gate (or the role check): nothing changed */
#define CLI_EXIT_ROLLED_BACK 5 /* aborted: traffic back on the old side, writable */
#define CLI_EXIT_UNKNOWN 6     /* aborted, and a proxy or the old side's fence left unknown */
#define CLI_DEFAULT_SOCKET "/run/godwit/coordinator.sock"

/* Prints the usage text to f. */
void cli_usage(FILE *f);
/* argv[1..]: exactly one operand (*operand) and any of --json (*json)
 * and, where dry is not NULL, --dry-run (*dry). False, with the usage
 * printed, for anything else. */
bool cli_operand(int argc, char **argv, const char **operand, bool *json, bool *dry);
/* Reads a plan file whole (at most 1 MiB); NULL with a message printed.
 * The caller frees it. */
char *cli_read_plan(const char *path);

#endif
