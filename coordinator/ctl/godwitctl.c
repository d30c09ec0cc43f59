/*
 * godwitctl: the operator's command line.
 *
 *   godwitctl keygen NAME --dir DIR [--roles ROLES] [--signing]
 *   godwitctl [--socket PATH] status [--json] [--watch [--interval DUR]]
 *   godwitctl [--socket PATH] ping AGENT [--json]
 *   godwitctl [--socket PATH] proxy AGENT PROXY status|pause|resume|switch BACKEND ...
 *
 * It talks to the coordinator over its control socket (one JSON request,
 * one JSON response) and renders the answer for humans, or passes the JSON
 * through (--json, schema in docs/status-json.md). Exit codes are in
 * docs/godwitctl.md: 0 ok, 1 degraded or failed, 2 usage, 3 coordinator
 * unreachable.
 *
 * This file reads the global options and the command word and hands the
 * rest to the command: ctlfleet.c (keygen, status, ping, proxy), ctlmigrate.c
 * (plan, migrate, cutover, rollback, cleanup). They parse with cli.c, talk
 * through client.c and print with render.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctlfleet.h"
#include "ctlmigrate.h"

int main(int argc, char **argv)
{
    const char *sock = getenv("GODWIT_SOCKET");
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("godwitctl %s\n", GODWIT_VERSION);
            return 0;
        } else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!sock)
        sock = CLI_DEFAULT_SOCKET;
    if (i >= argc) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "keygen") == 0)
        return ctlfleet_keygen(argc - i, argv + i);
    if (strcmp(cmd, "status") == 0)
        return ctlfleet_status(sock, argc - i, argv + i);
    if (strcmp(cmd, "ping") == 0)
        return ctlfleet_ping(sock, argc - i, argv + i);
    if (strcmp(cmd, "fleet") == 0)
        return ctlfleet_fleet(sock, argc - i, argv + i);
    if (strcmp(cmd, "proxy") == 0)
        return ctlfleet_proxy(sock, argc - i, argv + i);
    if (strcmp(cmd, "plan") == 0)
        return ctlmigrate_plan(sock, argc - i, argv + i);
    if (strcmp(cmd, "migrate") == 0)
        return ctlmigrate_migrate(sock, argc - i, argv + i);
    if (strcmp(cmd, "cutover") == 0 || strcmp(cmd, "rollback") == 0)
        return ctlmigrate_cutover(sock, argc - i, argv + i);
    if (strcmp(cmd, "cleanup") == 0)
        return ctlmigrate_cleanup(sock, argc - i, argv + i);
    if (strcmp(cmd, "version") == 0) {
        printf("godwitctl %s\n", GODWIT_VERSION);
        return 0;
    }
    fprintf(stderr, "godwitctl: unknown command \"%s\"\n", cmd);
    cli_usage(stderr);
    return CLI_EXIT_USAGE;
}
