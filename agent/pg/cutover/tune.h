/*
 * tune: the TuneSubscription step on the target (see proto/godwit.proto),
 * under the contract of step.h: our subscription's synchronous_commit set
 * on or off for the cutover. No payload.
 */
#ifndef GODWIT_TUNE_H
#define GODWIT_TUNE_H

#include "step.h"

/* NULL (done not called) for an invalid request. */
step_t *tune_subscription_start(uv_loop_t *loop, const step_local_t *local,
                                const Godwit__TuneSubscription *req, step_done_cb done, void *arg);

#endif
