/*
 * drop: the DropObjects step (see drop.c), under the contract of step.h.
 */
#ifndef GODWIT_DROP_H
#define GODWIT_DROP_H

#include "step.h"

/* NULL (done not called) only for invalid arguments. */
step_t *drop_objects_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__DropObjects *req, step_done_cb done, void *arg);

#endif
