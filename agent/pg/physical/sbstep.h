/*
 * sbstep: what the two steps that make this agent's server a standby share
 * (basebackup.c: a new standby with pg_basebackup; rejoin.c: the old
 * primary with pg_rewind), embedded by both as their first member (its
 * own first member is the step runtime, steprun.h):
 *
 *   - the request's names: the data directory, the slot, the peer;
 *   - the child that runs (at most one), killed with its group and waited
 *     for when the step winds down (sbstep_wind_down, sbstep_child_*);
 *   - the server's start: the config's start command, then a connection
 *     attempt every S_PROBE_MS until S_START_WAIT_MS have passed
 *     (sbstep_start), or first a connection attempt and the start command
 *     only if nothing answers (sbstep_probe);
 *   - then standby_status_sql, whose answer goes to the step's answer hook.
 *
 * What differs between the steps (names in messages and log lines, the
 * BaseBackup's progress record) comes in through sbstep_ops_t, defined by
 * each step; every failure goes through sbstep_fail, which tells the
 * step's phase hook before the step ends.
 *
 * Owns: the names' copies, the child while it runs, the start command's
 * failure. Borrows local (its standby section and peers) and the ops.
 * Never frees the step itself: the step's release hook does, after
 * sbstep_release.
 */
#ifndef GODWIT_SBSTEP_H
#define GODWIT_SBSTEP_H

#include <stdbool.h>
#include <stdint.h>

#include "standby.h"
#include "steprun.h"

typedef struct sbstep sbstep_t;

/* The request's slot on the peer: missing (exists false) or physical. */
typedef void (*sbstep_slot_cb)(sbstep_t *s, bool exists);

typedef struct {
    const char *conn_name;   /* the local connection's name (pgstep_local_conn) */
    const char *server;      /* the server in the timeout's message */
    const char *start_cmd;   /* the start command in its failure */
    const char *starting;    /* the log line as the start command runs */
    bool name_start_failure; /* the timeout's message also names the start command's failure */
    /* Optional: a phase of the step ("starting"; "failed" with why). */
    void (*phase)(sbstep_t *s, const char *phase, const char *error);
    /* The server answered standby_status_sql: res (taken) as sbstep_result
     * made it; the hook ends the step. */
    void (*answer)(sbstep_t *s, Godwit__StandbyStatusResult *res);
} sbstep_ops_t;

struct sbstep {
    steprun_t run;               /* first: conn[0] is the one connection, label */
    const sbstep_ops_t *ops;     /* borrowed: the step's, static */
    const step_local_t *local;   /* borrowed: the engine's */
    const agent_standby_t *sb;   /* local->standby */
    const agent_peer_t *peer;    /* from local's peers */
    char *slot, *dir;            /* the request's slot; local->standby's data directory */
    proc_t *proc;                /* the child running, if any */
    bool started;                /* the start command ran */
    uint64_t start_deadline;     /* uv_now when waiting for the server ends */
    char *start_error;           /* the start command's failure, if it failed */
    sbstep_slot_cb slot_cb;      /* sbstep_peer_slot's, while it looks */
};

/* The peer of local's config called name, or NULL. */
const agent_peer_t *sbstep_peer(const step_local_t *local, const char *name);
/* Sets s up (its run aside: the step starts it): copies of slot and of
 * local->standby's data directory. local->standby must be set. */
void sbstep_init(sbstep_t *s, const sbstep_ops_t *ops, const step_local_t *local,
                 const agent_peer_t *peer, const char *slot);
/* Frees what s owns (not s): for the step's release hook. */
void sbstep_release(sbstep_t *s);

/* Connects conn[0] to the peer (database postgres, the agent's statement
 * timeout) and looks up the request's slot there: cb(s, exists) once it
 * is missing or a physical slot, conn[0] still open; otherwise (no
 * connection, a slot of that name of another kind) the step ends. */
void sbstep_peer_slot(sbstep_t *s, sbstep_slot_cb cb);

/* Ends the step with why, the phase hook told first ("failed"). */
void sbstep_fail(sbstep_t *s, const char *why);
void sbstep_failf(sbstep_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For the step's wind_down hook: the running child, if any, is killed
 * (its group with it) and the wind-down ends when it has gone; else now. */
void sbstep_wind_down(sbstep_t *s);
/* A child's end (the child is released): false once the step winds down
 * (nothing more to do), else true with *why (malloc'd, caller frees) its
 * failure, NULL if it exited 0. what names it in *why. */
bool sbstep_child_end(sbstep_t *s, const proc_result_t *r, const char *what, char **why)
    __attribute__((warn_unused_result));
/* The same, for a child whose failure ends the step: true if the step
 * goes on (it exited 0); false once the step is over (winding down, or
 * failed naming what). */
bool sbstep_child_over(sbstep_t *s, const proc_result_t *r, const char *what)
    __attribute__((warn_unused_result));

/* One connection attempt to the local server (the agent's postgres.host
 * and port) on run.conn[0] (the one there before destroyed); cb gets s. */
void sbstep_local_connect(sbstep_t *s, pgconn_connect_cb cb);

/* The server answering: a connection attempt; if it fails, the start
 * command (unless the server says it is starting up: then waiting), then
 * the probes; then standby_status_sql. */
void sbstep_probe(sbstep_t *s);
/* The start command (phase "starting"), then the probes as above. */
void sbstep_start(sbstep_t *s);

/* A StandbyStatusResult (malloc'd, caller frees) from row 0 of res (a
 * standby_status_sql result): the data directory, started as s says;
 * ours and already false (the step says otherwise). */
Godwit__StandbyStatusResult *sbstep_result(const sbstep_t *s, const PGresult *res);

#endif
