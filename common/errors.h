/*
 * errors: how a godwit function says it failed. One convention per kind of
 * code, so a reader knows from a signature what a failure looks like and
 * who reports it.
 *
 * Decisions (parse, check, compare, choose a next step) return bool, true
 * when it went through, and are marked GODWIT_MUSTCHECK: ignoring a "no" is
 * a bug the compiler should see. When the caller shows the reason, it comes
 * in a caller's buffer `char *why, size_t whylen` (or `err, errlen`), one
 * line naming the file, line and field or the object it is about; a
 * reason of unbounded length comes as `char **why`, malloc'd, the caller
 * frees.
 *
 * I/O (files, sockets, processes, libpq, ZeroMQ, libuv) returns int: 0, or
 * a negative errno the caller names with strerror(-rc) (zmq_strerror,
 * uv_strerror for theirs); with a reason buffer when a path or a command
 * belongs in the message.
 *
 * Constructors (x_new, x_open, x_start) return the object or NULL; the
 * reason is logged where it happened, or put in the caller's err buffer
 * when the caller is the one to report it (a config loader, a journal).
 *
 * Asynchronous work (a step, a proxy action, a query) reports through its
 * callback exactly once: a payload, or NULL and an error string borrowed
 * for the call.
 *
 * A failure is logged once, where it happens; callers add their context to
 * the message they pass on, not a second log line. Programmer errors (a
 * table out of range, a broken invariant) are assert()s, and running out
 * of memory is xalloc.h's one policy: abort.
 */
#ifndef GODWIT_ERRORS_H
#define GODWIT_ERRORS_H

/* A decision whose "no" must not be ignored. */
#define GODWIT_MUSTCHECK __attribute__((warn_unused_result))

#endif
