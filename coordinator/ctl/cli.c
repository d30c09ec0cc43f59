/*
 * cli: see cli.h. The shape of godwitctl's command line: the usage text,
 * the one operand most commands take, a plan file read whole.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void cli_usage(FILE *f)
{
    fprintf(f,
            "usage: godwitctl [--socket PATH] COMMAND ...\n"
            "       godwitctl --version | --help\n"
            "  keygen NAME --dir DIR [--roles source,target,proxy] [--signing]\n"
            "                                 write DIR/NAME.key (0600) and DIR/NAME.pub; an\n"
            "                                 agent's .pub names the roles its key may take;\n"
            "                                 --signing: the coordinator's NAME.sign.key and\n"
            "                                 NAME.sign.pub too\n"
            "  status [--json] [--watch] [--interval DUR]\n"
            "                                 agents, their link and key metrics\n"
            "  ping AGENT [--json]            command round trip to one agent\n"
            "  fleet status [--json] [--watch] [--interval DUR]\n"
            "                                 every migration at a glance: phases, copies, verify,\n"
            "                                 problems first, and the command to run next\n"
            "  fleet pause|resume [--wave N] [--json]\n"
            "                                 no copy starts, no wave opens and every migration\n"
            "                                 that can pause pauses; or copies may start, waves\n"
            "                                 open and the paused resume (--wave: that wave's only)\n"
            "  fleet abort [--wave N] [--json]\n"
            "                                 abort every migration (of the wave) before its cutover\n"
            "  fleet go [--accept-failures] [--json]\n"
            "                                 let the schedule's next wave open once its gate\n"
            "                                 passes; --accept-failures: past the error budget\n"
            "  proxy AGENT PROXY status|resume [--json]\n"
            "  proxy AGENT PROXY pause [--lease DUR] [--timeout DUR] [--json]\n"
            "  proxy AGENT PROXY switch blue|green [--lease DUR] [--json]\n"
            "                                 drive one proxy of a proxy agent by hand\n"
            "  plan check PLAN [--json]       validate a plan and run preflight on its agents\n"
            "                                 (read-only; exit 1 if anything blocks)\n"
            "  migrate start PLAN [--name M]  preflight, then start the plan's migrations\n"
            "  migrate status [M] [--json] [--watch]\n"
            "                                 phase, per-table copy state, lag, errors\n"
            "  migrate pause|resume M         disable or enable our subscription\n"
            "  migrate abort M                remove what godwit created; the source is left as it was\n"
            "  migrate audit M [--json]       M's audit trail: who ran what, each phase and cutover step\n"
            "  cutover M [--dry-run] [--json] switch M's traffic to green (or rehearse it)\n"
            "  cutover M1 M2 ... [--dry-run] [--json]\n"
            "                                 a cutover group: all of them in one write pause,\n"
            "                                 every proxy switched or none\n"
            "  rollback M [M2 ...] [--dry-run] [--json]\n"
            "                                 switch it back to blue, which followed green (several:\n"
            "                                 a rollback group, in one write pause)\n"
            "  cleanup M [--json]             after a cutover: drop our subscriptions, slots and\n"
            "                                 publications on both sides (no rollback after it)\n"
            "  migrate verify M [--json] [--no-wait]\n"
            "                                 compare every table, source against target, while it streams\n"
            "  version                        print godwitctl's version (as --version does)\n"
            "The control socket is --socket, else $GODWIT_SOCKET, else %s.\n"
            "Exit codes: 0 ok, 1 degraded (an agent lost or a database unreachable) or the\n"
            "command failed, 2 usage error, 3 coordinator unreachable.\n",
            CLI_DEFAULT_SOCKET);
}

bool cli_operand(int argc, char **argv, const char **operand, bool *json, bool *dry)
{
    *operand = NULL;
    *json = false;
    if (dry)
        *dry = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = true;
        else if (dry && strcmp(argv[i], "--dry-run") == 0)
            *dry = true;
        else if (!*operand && argv[i][0] != '-')
            *operand = argv[i];
        else
            *operand = "";
    }
    if (!*operand || !**operand) {
        cli_usage(stderr);
        return false;
    }
    return true;
}

char *cli_read_plan(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "godwitctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20;
    char *text = xmalloc(cap + 2);
    size_t len = fread(text, 1, cap + 1, f);
    fclose(f);
    if (len > cap) {
        fprintf(stderr, "godwitctl: %s: larger than 1 MiB\n", path);
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}
