/*
 * steprun: the runtime every agent step embeds as its first member (after
 * it, the step's own fields). It owns what every step has: the loop, one
 * timer (the kick that starts the work one loop turn after the start
 * function returned, then the step's own waits), up to STEPRUN_MAX_CONNS
 * connections, the label that prefixes a failure, the statement in flight,
 * and the done callback, which runs exactly once.
 *
 *   struct my_step { steprun_t run; ...; Godwit__MyResult *result; };
 *   s = xcalloc(1, sizeof *s);
 *   ... own fields ...
 *   steprun_start(&s->run, loop, label, done, arg, my_release, my_first);
 *   return &s->run.base;
 *
 * Ending: steprun_finish(r, payload, error) once (steprun_failf and
 * steprun_fail_query call it): the connections are destroyed (an open
 * transaction rolls back), the step's stop hook runs, the timer closes, and
 * done runs last with payload (taken; NULL for a step without one) or
 * "label: error"; nothing of the step is touched afterwards. Its memory
 * goes in the timer's close callback, through the step's release hook,
 * which frees the step's own fields and the step itself. step_cancel()
 * disposes the same way without calling done.
 *
 * A step that runs more than the runtime owns, and must see it gone before
 * it reports (a child process to kill and wait for, temp files to remove),
 * sets the wind_down hook: steprun_finish then keeps the outcome, destroys
 * the connections and calls wind_down(r, false); the step calls
 * steprun_wound_down(r) once all of it is gone (from inside the hook, if
 * nothing was left), and only then does the runtime end as above and run
 * done. step_cancel() calls wind_down(r, true) after disposing (done will
 * not run). Either way wind_down runs once, and the step's memory goes only
 * when both the wind-down and the timer's close are over.
 *
 * Error convention: a step reports failures only through done; its
 * start function returns NULL (calling nothing) only for invalid arguments.
 */
#ifndef GODWIT_STEPRUN_H
#define GODWIT_STEPRUN_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pgconn.h"
#include "pgstep.h"

#define STEPRUN_MAX_CONNS 3

typedef struct steprun steprun_t;
typedef void (*steprun_fn)(steprun_t *r);
/* cancelled: step_cancel() (done will not run), else steprun_finish. */
typedef void (*steprun_wind_fn)(steprun_t *r, bool cancelled);

struct steprun {
    step_t base;                       /* first: step_cancel() calls base.cancel */
    uv_loop_t *loop;
    uv_timer_t timer;                  /* the kick, then the step's own (steprun_after) */
    pgconn_t *conn[STEPRUN_MAX_CONNS]; /* destroyed when the step ends */
    char *label;                       /* prefixes a failure: "roles in database shop" */
    bool plain_errors;                 /* a failure goes to done without the label */
    char *what;                        /* the statement in flight, for its failure */
    step_done_cb done;
    void *arg;
    bool disposed;
    steprun_fn release;                /* frees the step's fields and the step */
    steprun_fn stop;                   /* optional: stops what else it runs (children) */
    steprun_fn first;                  /* what the kick runs */
    const steprun_fn *stages;          /* optional: NULL-terminated, run by steprun_next */
    size_t stage;                      /* the next of them */
    steprun_fn complete;               /* optional: after the last stage, ends the step with
                                          its payload; none: it ends without one */
    steprun_wind_fn wind_down;         /* optional: winds down what the step runs outside
                                          the runtime; ends with steprun_wound_down */
    bool winding;                      /* wind_down has been called */
    bool wound;                        /* steprun_wound_down has been called */
    bool timer_closed;                 /* the timer's close is over (waiting for wound) */
    ProtobufCMessage *held_payload;    /* the outcome kept while winding down */
    char *held_error;
};

/* Sets r up (label taken: malloc'd) and kicks first(r) one loop turn later:
 * done never runs from inside the step's start function. */
void steprun_start(steprun_t *r, uv_loop_t *loop, char *label, step_done_cb done, void *arg,
                   steprun_fn release, steprun_fn first);

/* Ends the step (see above); a second call does nothing. */
void steprun_finish(steprun_t *r, ProtobufCMessage *payload, const char *error);
/* The step's wind-down is over (see wind_down above): the runtime ends with
 * the outcome kept by steprun_finish, or, after a cancel, lets the memory go
 * once the timer has closed. */
void steprun_wound_down(steprun_t *r);
void steprun_failf(steprun_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends it with the server's error for the statement in flight (its
 * description, r->what, never its text), on `side` ("source", "target")
 * when given. */
void steprun_fail_query(steprun_t *r, const char *side, const pgconn_result_t *res);

/* Sends one statement on r->conn[i] (its description what is kept for a
 * failure); cb gets r as arg. A send that fails ends the step. */
void steprun_query(steprun_t *r, int i, const char *what, const char *sql, int nparams,
                   const char *const *params, uint64_t timeout_ms, pgconn_result_cb cb);
void steprun_query_simple(steprun_t *r, int i, const char *what, const char *sql,
                          uint64_t timeout_ms, pgconn_result_cb cb);

/* ident quoted by the server's rules on r->conn[i] (caller frees), or NULL
 * after ending the step with an error. */
char *steprun_ident(steprun_t *r, int i, const char *ident);

/* Runs fn(r) after ms on the step's timer (replacing what it waited for);
 * steprun_after_stop: waits for nothing any more. */
void steprun_after(steprun_t *r, uint64_t ms, steprun_fn fn);
void steprun_after_stop(steprun_t *r);

/* Runs the next of r->stages, or after the last one r->complete (or ends
 * the step without a payload). A stage sends one thing and its callback
 * calls steprun_next again, or ends the step. */
void steprun_next(steprun_t *r);

#endif
