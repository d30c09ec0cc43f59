/*
 * preflight_run: what both of preflight's checks (preflight.h) run on: the
 * check itself (struct preflight, on the step runtime, steprun.h), its
 * findings, its statements, the first stage (connecting to the local
 * database) and the check's start and end.
 *
 * What it owns: the check's runtime (steprun.h: the local connection and,
 * on the target, the replication connection and a normal connection to
 * the source; the timer that starts the first stage one loop turn after
 * *_start, so done never runs inside it, and whose close frees
 * everything), both sides' access catalogs, the result being built and
 * copies of what it needs from the request.
 *
 * What it must never do: call done more than once or after
 * step_cancel.
 */
#ifndef GODWIT_PREFLIGHT_RUN_H
#define GODWIT_PREFLIGHT_RUN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"
#include "preflight.h"
#include "proc.h"
#include "steprun.h"

#define SEV_INFO GODWIT__SEVERITY__SEVERITY_INFO
#define SEV_WARNING GODWIT__SEVERITY__SEVERITY_WARNING
#define SEV_ERROR GODWIT__SEVERITY__SEVERITY_ERROR

/* The runtime's connections. */
enum { P_LOCAL = 0, P_REPL = 1, P_SRC = 2 };

typedef struct preflight preflight_t;

/* A table of the source that exists on the target. */
typedef struct {
    char *schema, *name; /* as stored, unquoted */
    char *qname;         /* format('%I.%I'), for messages */
} preflight_run_table_t;

struct preflight {
    /* first: conn[P_LOCAL] the local database; target only: conn[P_REPL]
     * the replication connection to the source, conn[P_SRC] a normal one
     * to the source (its roles); stages, label, what */
    steprun_t run;
    step_done_cb done;        /* the caller's (run.done is s_done) */
    void *arg;

    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;

    Godwit__PreflightResult *result;
    size_t findings_cap;

    char *database;
    char *tables_json;        /* [{"schema":..,"name":..}], NULL for every table (source) */

    /* source */
    bool file_settings_readable;

    /* target */
    uint32_t src_version_num;
    char *src_version;
    uint64_t src_size;
    double disk_margin;
    bool reverse;               /* the source follows the target after the cutover (both
                                   sides; physical source: Rejoin's needs checked) */
    char *data_directory;
    char *extensions_json;    /* ["name", ...] or NULL if none */
    char *repl_user, *repl_db, *repl_passfile, *repl_where;
    char *repl_user_q, *repl_db_q; /* quoted by the target server */
    preflight_run_table_t *existing;      /* source tables found on the target */
    size_t n_existing, next_existing;
    char *app_roles;          /* text[] literal of the plan's application roles */
    bool passwords;           /* the plan copies password hashes */
    char *import_settings;    /* text[] literal of the import profile's settings; NULL: none */
    uint32_t link_mbit;       /* the plan's link between the hosts, Mbit/s */
    bool repl_ok;             /* the replication connection opened (kept for the link) */
    int link_left;            /* round trips still to time */
    uint64_t link_sent_us;    /* when the one in flight was sent */
    double link_best_ms;      /* the fastest so far; < 0: none */
    uint64_t src_wmem_max;    /* the source host's largest TCP send buffer; 0: unknown */
    char *src_congestion;     /* the source host's congestion control; "" unknown */
    cJSON *access[2];         /* the source's and the target's roles and privileges */
    diskprobe_t *probe;       /* the agent's timing of its server's writes (borrowed); NULL: none */
    uint64_t probe_sent_us;   /* when this check sent the probe */

    /* method: physical (preflight_phys.h) */
    uint64_t src_cluster_size;          /* target: the source's every database */
    const agent_standby_t *standby;     /* the config's; NULL: none (target; source with
                                           reverse: Rejoin's) */
    char *bin_dir;                      /* target: where pg_basebackup is */
    char *rev_user;                     /* source with reverse: the reverse peer's user, whose
                                           rights on the source a standby inherits */
    proc_t *proc;                       /* target: pg_basebackup --version, running */
};

/* A new check with its local connection and its stages (preflight_src_stages
 * or preflight_tgt_stages), not started. NULL for invalid arguments. */
preflight_t *preflight_run_new(uv_loop_t *loop, const preflight_local_t *local,
                               const char *database, const steprun_fn *stages,
                               step_done_cb done, void *arg);
/* A second local connection, to database, as run.conn[i] (not yet
 * connecting; the step destroys it); false for invalid parameters. */
bool preflight_run_add_local(preflight_t *p, uv_loop_t *loop, const preflight_local_t *local,
                             int i, const char *database);
/* Runs the first stage one loop turn later; returns p. */
step_t *preflight_run_start(preflight_t *p, uv_loop_t *loop);

void preflight_run_add(preflight_t *p, Godwit__Severity sev, const char *code,
                       const char *object, char *message, char *fix);
void preflight_run_free_existing(preflight_t *p);
void preflight_run_query_on(preflight_t *p, int i, const char *what, const char *sql,
                            int nparams, const char *const *params, pgconn_result_cb cb);
void preflight_run_query(preflight_t *p, const char *what, const char *sql, int nparams,
                         const char *const *params, pgconn_result_cb cb);

/* The first stage of both checks: connects to the local database; a
 * server older than 13 ends the check with that one finding. */
void preflight_run_connect(steprun_t *run);
/* The source's facts from r's one row (server_version_num, server_version,
 * database_size) into p->result->facts; false once it ended the step (an
 * error, or no row). */
bool preflight_run_facts(preflight_t *p, const pgconn_result_t *r);

#endif
