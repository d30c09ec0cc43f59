/*
 * schema: the ApplySchema step on the target host (the schema phase),
 * under the contract of step.h: the source's schema read with pg_dump and
 * applied to the target database with pg_restore, one section ("pre" before
 * the data, "post" after the copy) at a time. schema.c says how.
 */
#ifndef GODWIT_SCHEMA_H
#define GODWIT_SCHEMA_H

#include "step.h"

/* done's payload is a Godwit__ApplySchemaResult. NULL (done not called)
 * only for invalid arguments. */
step_t *schema_apply_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__ApplySchema *req, step_done_cb done, void *arg);

#endif
