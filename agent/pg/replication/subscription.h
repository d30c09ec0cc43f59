/*
 * subscription: the steps on our subscription (see subscription.c), under
 * the contract of step.h. Each returns NULL (and does not call done) only
 * for invalid arguments.
 */
#ifndef GODWIT_SUBSCRIPTION_H
#define GODWIT_SUBSCRIPTION_H

#include "step.h"

step_t *subscription_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
/* The same subscription created on the existing slot req->name without
 * copying (copy_data = false, create_slot = false): the data was copied in
 * the slot's exported snapshot already (bulkcopy.c). */
step_t *subscription_attach_start(uv_loop_t *loop, const step_local_t *local,
                                  const Godwit__EnsureSubscription *req, step_done_cb done,
                                  void *arg);
step_t *subscription_set_enabled_start(uv_loop_t *loop, const step_local_t *local,
                                       const Godwit__SetSubscriptionEnabled *req,
                                       step_done_cb done, void *arg);

#endif
