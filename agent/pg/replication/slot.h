/*
 * slot: the EnsureSlot step (see slot.c), under the contract of step.h.
 */
#ifndef GODWIT_SLOT_H
#define GODWIT_SLOT_H

#include "step.h"

/* EnsureSlot: our publication and a logical slot of that name, created if
 * missing; with advance_to, the slot moved forward to it. Payload: an
 * EnsureSlotResult. NULL (done not called) only for invalid arguments. */
step_t *slot_ensure_start(uv_loop_t *loop, const step_local_t *local,
                          const Godwit__EnsureSlot *req, step_done_cb done, void *arg);

#endif
