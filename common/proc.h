/*
 * proc: one child process started with uv_spawn from an argv array (never a
 * shell), with its stdout captured (up to a limit) and the tail of its stderr
 * kept, reported once when it has exited and its pipes are drained.
 *
 * The child's stdin is /dev/null. Its stdout goes to /dev/null unless
 * out_max > 0, its stderr unless err_max > 0. Output is read on the loop; nothing blocks. A child that has
 * exited while something it left behind still holds a pipe open is reported
 * two seconds later with what was read by then.
 *
 * Ownership: proc_start() hands the caller a proc_t that the caller releases
 * with proc_destroy(), after the done callback or instead of it. Its handles
 * are freed in their close callbacks; a running child is signalled first and
 * the memory goes once the child has been reaped. Buffers in a proc_result_t
 * are borrowed: valid only during the callback.
 *
 * What it must never do: run the callback from inside proc_start or more than
 * once, close the process handle before the child is reaped (that would leave
 * a zombie), or pass anything through a shell.
 */
#ifndef GODWIT_PROC_H
#define GODWIT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct proc proc_t;

typedef struct {
    int64_t exit_status;   /* the child's exit code; -1 when a signal ended it */
    int term_signal;       /* the signal that ended it, 0 if it exited */
    const char *out;       /* stdout, NUL-terminated ("" when not captured) */
    size_t out_len;
    bool out_truncated;    /* more than out_max bytes came; the rest was dropped */
    const char *err;       /* stderr, NUL-terminated: all of it, or its beginning
                              and its end joined by "\n[...]\n" */
    size_t err_len;
    bool err_truncated;    /* part of the middle of stderr was dropped */
} proc_result_t;

typedef void (*proc_done_cb)(proc_t *p, const proc_result_t *r, void *arg);

typedef struct {
    const char *file;              /* program; a name without '/' is looked up in PATH */
    const char *const *argv;       /* argv[0] first, NULL-terminated */
    const char *const *env;        /* "NAME=value", NULL-terminated; NULL inherits ours */
    size_t out_max;                /* bytes of stdout kept; 0: stdout to /dev/null */
    size_t err_max;                /* bytes of stderr kept: the first half and the last
                                      half (where the error and its context usually
                                      are); 0: stderr to /dev/null */
    /* Optional: each chunk of stderr as it is read (err_max > 0), before it
     * is kept; with the callback's arg. For a child that reports progress
     * there (pg_basebackup --progress). Never called after proc_destroy. */
    void (*on_err)(const char *data, size_t len, void *arg);
    /* The child leads a process group of its own (a new session): every
     * signal proc_kill and proc_destroy send goes to the whole group, so
     * what a wrapper (runuser) started goes with it. */
    bool own_group;
} proc_opts_t;

/* Starts the child. 0 and *pp set, or a negative libuv error (nothing runs,
 * cb is never called, *pp stays NULL). cb runs exactly once, never from
 * inside this call, after the child has exited and its pipes are drained.
 * The strings in opts are used during this call only. */
int proc_start(uv_loop_t *loop, const proc_opts_t *opts, proc_done_cb cb, void *arg,
               proc_t **pp);

/* Asks a running child (its group: own_group) to stop: SIGTERM now, SIGKILL after grace_ms if it is
 * still there. cb still runs once it has gone (term_signal set). No effect
 * on a child that has already exited or been asked. */
void proc_kill(proc_t *p, uint64_t grace_ms);

/* True until the child has been reaped. */
bool proc_running(const proc_t *p);
int proc_pid(const proc_t *p);

/* No callback after this. A running child gets SIGTERM now and SIGKILL after
 * grace_ms; the memory goes once it has been reaped and the handles have
 * closed. Clears *pp; NULL and *pp == NULL are fine. May be called from cb. */
void proc_destroy(proc_t **pp, uint64_t grace_ms);

/* "exited with status 1" or "was killed by signal 9 (Killed)": a malloc'd
 * string the caller frees. */
char *proc_status_text(const proc_result_t *r);

/* A copy of this process's environment without the variables whose names
 * start with one of drop_prefixes (NULL-terminated, may be NULL), followed
 * by the "NAME=value" strings of set (NULL-terminated, may be NULL). The
 * result is NULL-terminated; free it with proc_env_free(). */
char **proc_env_new(const char *const *drop_prefixes, const char *const *set);
void proc_env_free(char ***envp);

#endif
