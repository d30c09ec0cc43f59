/* ctlcmd: the control socket's commands (ctlcmd.h). */
#include "ctlcmd.h"

#include <string.h>

static const char *const s_names[CTLCMD__COUNT] = {
    [CTLCMD_STATUS] = "status",
    [CTLCMD_PING] = "ping",
    [CTLCMD_PROXY] = "proxy",
    [CTLCMD_PLAN_CHECK] = "plan_check",
    [CTLCMD_MIGRATE_START] = "migrate_start",
    [CTLCMD_MIGRATE_STATUS] = "migrate_status",
    [CTLCMD_MIGRATE_ABORT] = "migrate_abort",
    [CTLCMD_MIGRATE_PAUSE] = "migrate_pause",
    [CTLCMD_MIGRATE_RESUME] = "migrate_resume",
    [CTLCMD_MIGRATE_VERIFY] = "migrate_verify",
    [CTLCMD_MIGRATE_CLEANUP] = "migrate_cleanup",
    [CTLCMD_CUTOVER] = "cutover",
    [CTLCMD_MIGRATE_AUDIT] = "migrate_audit",
    [CTLCMD_FLEET_PAUSE] = "fleet_pause",
    [CTLCMD_FLEET_RESUME] = "fleet_resume",
    [CTLCMD_FLEET_ABORT] = "fleet_abort",
    [CTLCMD_FLEET_GO] = "fleet_go",
};

const char *ctlcmd_name(ctlcmd_t cmd)
{
    return (unsigned)cmd < CTLCMD__COUNT ? s_names[cmd] : "?";
}

bool ctlcmd_parse(const char *name, ctlcmd_t *out)
{
    for (unsigned i = 0; i < CTLCMD__COUNT; i++) {
        if (strcmp(s_names[i], name) == 0) {
            *out = (ctlcmd_t)i;
            return true;
        }
    }
    return false;
}
