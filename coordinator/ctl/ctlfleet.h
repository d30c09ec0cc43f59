/*
 * ctlfleet: godwitctl's commands about the fleet itself, not a migration:
 * keygen (local, no coordinator), status, ping, and proxy (one proxy of a
 * proxy agent driven by hand). Each takes its argv from the command word
 * on and returns the process's exit code (cli.h).
 */
#ifndef GODWIT_CTLFLEET_H
#define GODWIT_CTLFLEET_H

/* keygen NAME --dir DIR [--roles ROLES] [--signing] */
int ctlfleet_keygen(int argc, char **argv);
/* status [--json] [--watch] [--interval DUR] */
int ctlfleet_status(const char *sock, int argc, char **argv);
/* fleet status [--json] [--watch] [--interval DUR]: the fleet at a glance
 * (fleetview.h); exit 1 while a problem is an error. fleet pause|resume
 * [--json]: the fleet's pause (migset.h). */
int ctlfleet_fleet(const char *sock, int argc, char **argv);
/* ping AGENT [--json] */
int ctlfleet_ping(const char *sock, int argc, char **argv);
/* godwitctl proxy AGENT PROXY OP [BACKEND] [--lease DUR] [--timeout DUR] [--json] */
int ctlfleet_proxy(const char *sock, int argc, char **argv);

#endif
