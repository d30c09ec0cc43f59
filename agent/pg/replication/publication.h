/*
 * publication: the EnsurePublication step on the source (replobj.c says
 * the rules it follows): our publication, created with its marker if
 * missing, made to name the requested tables (or all of them) and to
 * publish every change as the partition root.
 *
 * EnsureSlot (slot.c) runs the same stages first: its struct embeds a
 * publication_t, and its stage list starts with PUBLICATION_STAGES.
 */
#ifndef GODWIT_PUBLICATION_H
#define GODWIT_PUBLICATION_H

#include <stdbool.h>
#include <stddef.h>

#include "replobj.h"

typedef struct publication publication_t;

struct publication {
    replobj_t obj;              /* first */
    char *name;
    Godwit__TableRef *tables;   /* copies (schema, name), n_tables of them */
    size_t n_tables;            /* 0: FOR ALL TABLES */
    char *tables_json;          /* [{"schema":..,"name":..}], NULL when n_tables is 0 */
    bool exists, all_tables, same_tables, options_ok;
};

/* The publication's stages: the first ones of every step on a
 * publication, in this order (a concurrent create goes back to the
 * lookup, the third of them). */
void publication_lookup(steprun_t *run);
void publication_tables(steprun_t *run);
void publication_options(steprun_t *run);
#define PUBLICATION_STAGES                                                                     \
    replobj_names, replobj_connect, publication_lookup, publication_tables, publication_options

/* A publication step (EnsurePublication, EnsureSlot) of size bytes for name
 * and tables (replobj_new), or NULL if they are invalid. kind names it in
 * messages. */
publication_t *publication_new(size_t size, uv_loop_t *loop, const step_local_t *local,
                               const char *database, const steprun_fn *stages, const char *kind,
                               const char *name, Godwit__TableRef *const *tables,
                               size_t n_tables, steprun_fn release, step_done_cb done,
                               void *arg);

/* Frees p's own fields (not p). */
void publication_clear(publication_t *p);

/* Returns NULL (and does not call done) only for invalid arguments. */
step_t *publication_ensure_start(uv_loop_t *loop, const step_local_t *local,
                                 const Godwit__EnsurePublication *req, step_done_cb done, void *arg);

#endif
