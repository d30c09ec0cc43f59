/*
 * ctlcmd: the commands of the coordinator's control socket (control.h), one
 * table for both ends: godwitctl names a request's "cmd" with ctlcmd_name,
 * the coordinator finds its handler with ctlcmd_parse. A new command is one
 * enum value and one row here, a handler in ctlserve.c and its caller in
 * ctl/ (ctlfleet.c or ctlmigrate.c). The request and response fields of each
 * are in docs/operations.md.
 */
#ifndef GODWIT_CTLCMD_H
#define GODWIT_CTLCMD_H

#include <stdbool.h>

typedef enum {
    CTLCMD_STATUS = 0,      /* the coordinator and its agents */
    CTLCMD_PING,            /* {agent}: one round trip to an agent */
    CTLCMD_PROXY,           /* {agent, proxy, action, ...}: a proxy action by hand */
    CTLCMD_PLAN_CHECK,      /* {file, text}: a plan checked by the agents (preflight) */
    CTLCMD_MIGRATE_START,   /* {file, text[, name]}: preflight, then start */
    CTLCMD_MIGRATE_STATUS,  /* [{name}] */
    CTLCMD_MIGRATE_ABORT,   /* {name} */
    CTLCMD_MIGRATE_PAUSE,   /* {name} */
    CTLCMD_MIGRATE_RESUME,  /* {name} */
    CTLCMD_MIGRATE_VERIFY,  /* {name} */
    CTLCMD_MIGRATE_CLEANUP, /* {name} */
    CTLCMD_CUTOVER,         /* {name[, back, dry_run]} or {names[, dry_run]}: a group */
    CTLCMD_MIGRATE_AUDIT,   /* {name}: the migration's journaled events */
    CTLCMD_FLEET_PAUSE,     /* [{wave}]: no copy starts, no wave opens; every migration
                               (of the wave) that can pause pauses */
    CTLCMD_FLEET_RESUME,    /* [{wave}]: copies may start; every paused migration resumes */
    CTLCMD_FLEET_ABORT,     /* [{wave}]: every migration (of the wave) before its cutover aborts */
    CTLCMD_FLEET_GO,        /* [{accept_failures}]: the schedule's next wave may open */
    CTLCMD__COUNT
} ctlcmd_t;

/* The wire name of cmd ("migrate_abort"); "?" out of range. */
const char *ctlcmd_name(ctlcmd_t cmd);
/* The command named name; false if there is none. */
bool ctlcmd_parse(const char *name, ctlcmd_t *out);

#endif
