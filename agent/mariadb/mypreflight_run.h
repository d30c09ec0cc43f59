/*
 * mypreflight_run: what both MariaDB checks (mypreflight.h) run on, the
 * way preflight_run.h is PostgreSQL's: the check (struct mypf), a list of
 * stages run one after the other (a stage sends one statement, its
 * callback turns the answer into findings and calls mypf_next, or ends
 * the check), its connections, its findings and its end.
 *
 * What it owns: the check, its connections (destroyed when it ends), the
 * result being built and copies of what it needs from the request. Its
 * lifecycle is mystep's (mystep.h): the first stage runs one loop turn
 * after the start (so done never runs inside it), and the timer's close
 * frees everything.
 *
 * Never: calls done twice or after step_cancel.
 */
#ifndef GODWIT_MYPREFLIGHT_RUN_H
#define GODWIT_MYPREFLIGHT_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "mypreflight.h"
#include "mystep.h"

#define MYPF_INFO GODWIT__SEVERITY__SEVERITY_INFO
#define MYPF_WARNING GODWIT__SEVERITY__SEVERITY_WARNING
#define MYPF_ERROR GODWIT__SEVERITY__SEVERITY_ERROR

/* The check's connections. */
enum { MYPF_LOCAL = 0, MYPF_PEER = 1, MYPF_CONNS = 2 };

typedef struct mypf mypf_t;
typedef void (*mypf_fn)(mypf_t *p);

/* The kinds of object besides tables the copy moves. */
#define MYPF_OBJECT_KINDS 4

struct mypf {
    mystep_t step;              /* first: the lifecycle (mystep.h) */
    myconn_t *conn[MYPF_CONNS];
    const mypf_fn *stages;      /* NULL-terminated */
    size_t stage;
    uint64_t timeout_ms;        /* each statement's deadline, its connection included */
    Godwit__PreflightResult *result;
    size_t findings_cap;
    char *database;
    char *agent_name, *config_path;

    /* source */
    char **req_names;           /* the request's table names (NULL: every table) */
    size_t n_req;

    /* target */
    uint32_t src_version_num;
    char *src_version;
    uint64_t src_size;
    uint32_t src_server_id;
    bool src_kinds[MYPF_OBJECT_KINDS]; /* the source database has views, triggers,
                                          routines, events (mypreflight_tgt.c: s_kinds) */
    double margin;
    bool reverse;               /* cutover.reverse on (source and target) */
    char *data_directory;       /* NULL: not checked */
    char *peer_where;           /* "user@host:port (peer NAME)"; NULL: no peer */
    char *peer_db;              /* the database on the peer */
};

/* The fix of the log_slave_updates finding (source and target, with
 * cutover.reverse on). */
#define MYPF_LOG_SLAVE_UPDATES_FIX                                                            \
    "SET GLOBAL is not enough, it is read-only: add log_slave_updates = ON to the server's "  \
    "config and restart: the new primary's binary log must carry the GTIDs it replicated so " \
    "the old one can follow it from the switch position"

/* A new check on database with its local connection and stages, not
 * started; NULL for invalid arguments. */
mypf_t *mypf_new(uv_loop_t *loop, const mypreflight_local_t *local, const char *database,
                 const mypf_fn *stages, step_done_cb done, void *arg);
/* A connection to peer as its user (host, port, user, password_file),
 * read-only with local's statement limit, not yet connecting; NULL for a
 * peer whose parameters myconn refuses. */
myconn_t *mypf_peer_conn(uv_loop_t *loop, const mypreflight_local_t *local,
                         const agent_peer_t *peer);
/* Runs the first stage one loop turn later; returns the step. */
step_t *mypf_start(mypf_t *p);

/* Adds a finding (message and fix taken, malloc'd). */
void mypf_add(mypf_t *p, Godwit__Severity sev, const char *code, const char *object,
              char *message, char *fix);
/* Sends sql on conn[i] (what describes it for a failure); cb gets p. */
void mypf_query(mypf_t *p, int i, const char *what, const char *sql, myconn_cb cb);
/* The next stage, or the end with the result after the last. */
void mypf_next(mypf_t *p);
/* Ends the check with an error: mystep_failf(&p->step, ...). */
/* Ends it with the failed statement's error (p->what), on side ("the
 * source", "the target") when given. */
void mypf_fail_query(mypf_t *p, const char *side, const myconn_result_t *r);
/* s as a literal on conn[i] (caller frees), or NULL after ending the
 * check (the connection is gone). */
char *mypf_literal(mypf_t *p, int i, const char *s);

#endif
