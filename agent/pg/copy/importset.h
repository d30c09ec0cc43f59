/*
 * importset: the ImportProfile step on the target (proto/godwit.proto;
 * docs/import-profile.md), under the contract of step.h: reads, applies or
 * reverts the server settings of a plan's import profile, and answers with
 * each one's state as read after the change took effect.
 *
 * Only the settings importset_allowed() names are ever touched: a message
 * cannot make the agent ALTER SYSTEM anything else (docs/protocol.md,
 * "Trust"). APPLY and REVERT write postgresql.auto.conf (ALTER SYSTEM, one
 * statement per setting), reload the configuration and wait until the
 * step's own session has read it again, so the answer is what is in effect.
 * REVERT then checks every setting against the recorded state and fails,
 * naming the setting, the file and line its value comes from and the
 * recorded value, while one differs.
 */
#ifndef GODWIT_IMPORTSET_H
#define GODWIT_IMPORTSET_H

#include <stdbool.h>

#include "step.h"

/* Whether name is a setting an import profile may change. */
bool importset_allowed(const char *name);

/* NULL (done not called) for an invalid request: no database, no setting,
 * a setting not allowed, or an APPLY without a value. */
step_t *importset_start(uv_loop_t *loop, const step_local_t *local,
                        const Godwit__ImportProfile *req, step_done_cb done, void *arg);

#endif
