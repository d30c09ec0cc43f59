/*
 * engine: the seam between the agent and a database engine. The agent
 * (agent.c) owns the link to the coordinator, the epoch fence, the disk
 * samples and the proxies; everything that knows a database's catalogs,
 * replication and SQL sits behind this interface, one implementation per
 * engine in its own folder (agent/pg/ for PostgreSQL: pg_engine.c;
 * agent/mariadb/ for MariaDB: my_engine.c).
 *
 * An engine does three things for the agent:
 *   - monitoring: tick starts its next reading of the server; report puts
 *     the last one into the agent's Report (never waiting for the server);
 *     what it notices on its own (server reachable or not, a replication
 *     error in its log, a fence that could not be kept) comes through the
 *     event callback given to its open;
 *   - steps: start runs one typed command of the protocol (actions.h lists
 *     them) as a step (step.h), after checking what the command may reach
 *     (its peer must be in the agent's config: step_peer);
 *   - the copy: a running copy step answers whether it copies a given
 *     replication and how far it got, so re-sent copy commands join it and
 *     a status request reads it.
 *
 * Ownership: engine_open returns an engine the agent owns and closes with
 * engine_close, after it cancelled every step the engine started (steps may
 * use the engine's state, the PostgreSQL freezer for instance). The config
 * passed to open is borrowed and outlives the engine.
 *
 * Errors: open returns false after logging why; start returns NULL with
 * *why (malloc'd, the caller frees) and calls nothing.
 */
#ifndef GODWIT_ENGINE_H
#define GODWIT_ENGINE_H

#include <stdbool.h>
#include <uv.h>

#include "agent_config.h"
#include "godwit.pb-c.h"
#include "step.h"

typedef struct engine engine_t;

/* Something the engine noticed, for the coordinator (strings borrowed for
 * the call; object may be NULL). */
typedef void (*engine_event_cb)(Godwit__Severity severity, const char *code, const char *message,
                                const char *object, void *arg);

typedef struct {
    const char *name;                 /* "postgresql", "mariadb", for logs */
    void (*tick)(engine_t *e);
    void (*report)(engine_t *e, Godwit__Report *r);
    step_t *(*start)(engine_t *e, const Godwit__Command *cmd, step_done_cb done, void *arg,
                     char **why);
    bool (*copy_is)(const step_t *step, const char *database, const char *name);
    Godwit__SyncStatusResult *(*copy_progress)(const step_t *step); /* malloc'd, caller frees */
    void (*close)(engine_t *e);
} engine_ops_t;

/* Every engine's private struct starts with this. capabilities are what
 * this engine, as its config made it, announces in the agent's Hello
 * (NULL-terminated, static; at most 5): "pg.physical" only when the
 * config says how to make a standby. disk_path is the server's data
 * directory, whose filesystem the agent reports (borrowed from the
 * config; NULL: no disk figures). */
struct engine {
    const engine_ops_t *ops;
    const char *const *capabilities;
    const char *disk_path;
};

/* Opens the engine cfg names (PostgreSQL from its postgres section,
 * MariaDB from its mariadb section; the config allows one) into *out;
 * *out is NULL when cfg names none (a proxy-only agent). false (logged) if
 * it could not open. agent_name names the agent in findings. */
bool engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                 engine_event_cb event, void *arg, engine_t **out);

/* Starts the engine's next reading of its server. */
static inline void engine_tick(engine_t *e)
{
    e->ops->tick(e);
}

/* Puts the engine's last reading into r. */
static inline void engine_report(engine_t *e, Godwit__Report *r)
{
    e->ops->report(e, r);
}

/* Starts the step of cmd; done(payload, error, arg) reports it once,
 * never from inside this call. NULL with *why if refused or invalid. */
static inline step_t *engine_start(engine_t *e, const Godwit__Command *cmd, step_done_cb done,
                                   void *arg, char **why)
{
    return e->ops->start(e, cmd, done, arg, why);
}

/* Whether step is the engine's copy into database for the replication
 * name. */
static inline bool engine_copy_is(const engine_t *e, const step_t *step, const char *database,
                                  const char *name)
{
    return e->ops->copy_is(step, database, name);
}

/* How far the copy step has got (malloc'd; the caller frees it). */
static inline Godwit__SyncStatusResult *engine_copy_progress(const engine_t *e,
                                                             const step_t *step)
{
    return e->ops->copy_progress(step);
}

/* Closes *ep (NULL is fine) and clears it. Every step it started must have
 * been cancelled or have reported. */
static inline void engine_close(engine_t **ep)
{
    if (*ep) {
        engine_t *e = *ep;
        *ep = NULL;
        e->ops->close(e);
    }
}

#endif
