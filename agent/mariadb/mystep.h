/*
 * mystep: the lifecycle every MariaDB step embeds as its first member
 * (mypreflight, myrepl, myverify, mycopy), the way agent/pg/steprun.h is
 * PostgreSQL's; it is bound to myconn as steprun is to pgconn. It holds
 * what each step had a copy of: the step's handle, the loop's timer, done
 * and its arg, whether the step has ended, and the statement in flight
 * (its label for a failure). What differs between steps (its connections,
 * its own fields, how its failure is logged) is given by a small table of
 * hooks, mystep_ops_t.
 *
 *   struct my_step { mystep_t step; ...own fields...; };
 *   s = xcalloc(1, sizeof *s);
 *   mystep_init(&s->step, loop, &s_ops, done, arg);
 *   ... own fields, connections ...
 *   return mystep_defer(&s->step, s_first);
 *
 * The rules of agent/step.h, kept here once:
 *
 * - done runs exactly once, and never from inside the step's start
 *   function: the first callback (mystep_defer's first) runs from the timer
 *   one loop turn later, and only that or a callback after it ends the step.
 * - mystep_finish ends the step: the step's connections are destroyed
 *   (ops->close: no myconn callback runs afterwards), the timer closes, and
 *   done runs last with the payload (NULL for a step without one) or the
 *   error. Nothing of the step is touched after done returns; its memory
 *   goes in the timer's close callback (ops->release frees the step's own
 *   fields and the step itself). A second mystep_finish does nothing.
 * - step_cancel() disposes the same way and calls nothing: done never runs.
 *
 * Ownership: a payload handed to mystep_finish is taken; it goes to done,
 * or is freed (an error, a step already ended, or no done). A step whose
 * start fails after mystep_init (a connection refused) is ended with
 * step_cancel() on its handle, which frees it without calling done.
 *
 * Never: done from inside mystep_init, mystep_defer or step_cancel (only
 * mystep_finish runs it, and mystep_failf, mystep_fail_query,
 * mystep_query and mystep_literal through it); a step's memory freed
 * before its timer's close callback.
 */
#ifndef GODWIT_MYSTEP_H
#define GODWIT_MYSTEP_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "myconn.h"
#include "step.h"

typedef struct mystep mystep_t;
typedef void (*mystep_fn)(mystep_t *s);

/* What a step adds to the lifecycle; static, borrowed for the step's life. */
typedef struct {
    /* Destroys the step's connections (myconn_destroy: no callback runs
     * afterwards); called once, when the step ends or is cancelled. */
    mystep_fn close;
    /* Frees the step's own fields and the step itself; called once, from
     * the timer's close callback. */
    mystep_fn release;
    /* Optional: logs the error the step ends with (mystep_finish, before
     * done). A step logs its own success where it succeeds. */
    void (*log_error)(mystep_t *s, const char *error);
} mystep_ops_t;

struct mystep {
    step_t base;              /* first: step_cancel() calls base.cancel */
    const mystep_ops_t *ops;
    uv_timer_t timer;         /* defers the first callback; its close frees the step */
    mystep_fn first;          /* what the timer runs */
    step_done_cb done;        /* NULL once the step has ended */
    void *arg;
    bool disposed;            /* ended or cancelled: no callback of the step runs */
    char *what;               /* the statement in flight, for its failure */
};

/* Sets s up on loop (its timer initialised, not started). From here on the
 * step ends only through mystep_finish or step_cancel(). */
void mystep_init(mystep_t *s, uv_loop_t *loop, const mystep_ops_t *ops, step_done_cb done,
                 void *arg);

/* Runs first(s) one loop turn later (never when the step has ended before);
 * returns the step's handle for the start function to return. */
step_t *mystep_defer(mystep_t *s, mystep_fn first);

/* Ends the step with payload (taken; NULL: none) when error is NULL, or
 * with error (then payload is freed). See above; a step already ended
 * frees payload and does nothing else. */
void mystep_finish(mystep_t *s, ProtobufCMessage *payload, const char *error);

/* The same, but payload goes to done with the error too (taken): what is
 * known of a failure that matters to the caller (PromoteResult's
 * promote_requested). payload NULL: as mystep_finish. */
void mystep_finish_both(mystep_t *s, ProtobufCMessage *payload, const char *error);

/* Runs fn(s) after ms on the step's timer (a poll's next try; never when
 * the step has ended before). Only after the first callback ran: the timer
 * is the one mystep_defer started. */
void mystep_after(mystep_t *s, uint64_t ms, mystep_fn fn);

/* Ends the step with a formatted error. */
void mystep_failf(mystep_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the step with the failed statement's error in myconn's wording
 * ("WHAT: the error (errnum, SQLSTATE 42000)", say); what NULL: the statement
 * in flight (s->what, as mystep_query set it), or "a statement". */
void mystep_fail_query(mystep_t *s, const char *what, const myconn_result_t *r);

/* Sends sql on conn (its deadline timeout_ms) with what kept as the
 * statement in flight; cb gets arg. false, after ending the step with
 * "WHAT: cannot send the statement", when myconn refuses it (a statement
 * in flight, a destroyed connection). */
bool mystep_query(mystep_t *s, myconn_t *conn, const char *what, const char *sql,
                  uint64_t timeout_ms, myconn_cb cb, void *arg);

/* str as a string literal on conn (caller frees), or NULL after ending the
 * step ("cannot quote ... the connection is gone"). */
char *mystep_literal(mystep_t *s, myconn_t *conn, const char *str);

/* "CHANGE MASTER 'connection' TO" the peer peer_name (host, port, user,
 * the password read from password_file; NULL or "": none) "MASTER_USE_GTID
 * = slave_pos", quoted on conn: malloc'd, holding the password (free it
 * with keys_wipe_free; never log it). NULL after ending the step (the
 * password file unreadable, a value that cannot be quoted). connection is
 * one step_godwit_name accepted (it goes in as it is). */
char *mystep_change_master_sql(mystep_t *s, myconn_t *conn, const char *connection,
                               const char *peer_name, const char *host, int port,
                               const char *user, const char *password_file);

/* Whether step is a running or ended mystep with these ops (a step's kind:
 * mycopy_is). */
bool mystep_is(const step_t *step, const mystep_ops_t *ops);

#endif
