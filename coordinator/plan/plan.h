/*
 * plan: the migration plan file (YAML; see docs/plan.md and
 * deploy/plan.example.yaml). A plan names one or more migrations, each with
 * its source agent and database, its target agent and database, the peer
 * through which the target reaches the source for logical replication (a
 * name from the target agent's config: addresses, users and passfiles live
 * there, never in a plan or a message), the tables (default: all) and
 * options.
 *
 * A plan may also describe a fleet without repeating itself: each entry of
 * `fleets` is a template (a migration without its name and sides) and an
 * inventory (a source agent, a target agent and the databases moving
 * between them, with overrides for the peers and proxies). Loading expands
 * every inventory database into one migration, after the ones written out,
 * and checks them all alike; plan_origin() says where one came from.
 *
 * plan_load_string() parses and checks a plan; errors name the file, the
 * line where the loader knows it, and the field. A plan is owned by its
 * caller and released with plan_free().
 */
#ifndef GODWIT_PLAN_H
#define GODWIT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "cfg.h"

typedef struct {
    char *agent;     /* allow-listed agent name */
    char *database;
} plan_side_t;

typedef struct {
    char *schema;
    char *name;
} plan_table_t;

/* A proxy the cutover switches: a name from the proxy agent's config.
 * hold (default true): the proxy holds new transactions during the write
 * pause (PAUSE, RESUME). false: it cannot (nginx); the cutover only
 * switches it, and the freeze alone stops writes through it. */
typedef struct {
    char *agent;
    char *proxy;
    bool hold;
} plan_proxy_t;

/* How one side reaches the other's server for logical replication: a peer
 * of that side's agent, by name (docs/config.md "peers"). */
typedef struct {
    char *peer;
} plan_conn_t;

/* How a migration moves its data (docs/physical.md): logical replication
 * of one database, or a physical standby of the whole server. */
typedef enum { PLAN_METHOD_LOGICAL = 0, PLAN_METHOD_PHYSICAL } plan_method_t;

/* The database engine of both sides (docs/mariadb.md): the agents' engine
 * must be this one. */
typedef enum { PLAN_ENGINE_POSTGRESQL = 0, PLAN_ENGINE_MARIADB } plan_engine_t;

typedef struct {
    char *name;
    int method;                       /* plan_method_t */
    int engine;                       /* plan_engine_t */
    plan_side_t source, target;
    plan_conn_t replication;          /* how the target reaches the source: a peer of
                                         the target agent */
    plan_conn_t reverse_replication;  /* how the source reaches the target (after the
                                         switch): a peer of the source agent; peer
                                         NULL when not given */
    cfg_strings_t tables_raw;   /* "schema.table" as written; empty: all */
    plan_table_t *tables;       /* parsed from tables_raw */
    size_t n_tables;
    struct {
        int64_t disk_margin_percent;   /* target free space >= source size x this / 100 */
        int64_t max_lag_ms;            /* cutover gate (later phases) */
        int64_t slot_wal_limit_bytes;  /* source protection (later phases) */
        int64_t source_disk_floor_bytes;
        int64_t parallelism;
        int64_t verify_batch_rows;     /* rows verify compares at one position; 0: the agent's */
        int64_t verify_slot_wait_ms;   /* bound on creating verify's slot; 0: the agent's */
        char *target_jurisdiction;     /* the target agent's label must be this; NULL: any */
        int64_t link_mbit;             /* the link between source and target, Mbit/s (preflight's
                                          TCP window checks); default 1000 */
        int64_t basebackup_max_rate;   /* physical: pg_basebackup's --max-rate, bytes/s; 0: none */
    } options;
    struct {
        cfg_strings_t app_roles;       /* fenced on the source at the freeze */
        cfg_list_t proxies;            /* of plan_proxy_t, switched together */
        int64_t max_write_pause_ms;    /* default 2 s */
        int64_t drain_timeout_ms;      /* default: half of max_write_pause */
        int64_t lease_ms;              /* default 15 s */
        int reverse_off;               /* 0: "on" (default), 1: "off": replication
                                          target -> source after the switch */
        int64_t verify_max_age_ms;     /* the gate: the last verify finished this recently
                                          (default 10 min) */
        int64_t abort_timeout_ms;      /* an abort gives up on an agent (a proxy, the
                                          source's unfreeze) it cannot reach this long
                                          after it began (default 10 s) */
    } cutover;
    struct {
        bool passwords;                /* copy the created roles' password hashes */
    } roles;
    /* Server settings of the target relaxed for the initial load (copy,
     * catchup, post-data) and reverted after it (docs/import-profile.md).
     * 0 (or "on") leaves a setting alone. */
    struct {
        int synchronous_commit_off;    /* 1: "off" */
        int64_t max_wal_size_bytes;
        int64_t checkpoint_timeout_ms;
        int64_t maintenance_work_mem_bytes;
        int64_t max_parallel_maintenance_workers;
        int full_page_writes_off;      /* 1: "off", only with accept_torn_page_risk */
        bool accept_torn_page_risk;
    } import_profile;
} plan_migration_t;

/* One setting of an import profile as the server takes it. */
typedef struct {
    const char *name;                  /* static */
    char value[32];                    /* "off", "16384MB", "1800s" */
} plan_setting_t;

#define PLAN_IMPORT_SETTINGS_MAX 6

/* The settings m's import profile changes, in a fixed order, into out;
 * their count (0: the plan gives none). */
size_t plan_import_settings(const plan_migration_t *m, plan_setting_t out[PLAN_IMPORT_SETTINGS_MAX]);

/* One inventory entry of a fleet: databases on one source agent that move
 * to one target agent, each under the same name. Every member the entry
 * leaves out (NULL, empty) is the template's. */
typedef struct {
    char *source;                     /* the source agent */
    char *target;                     /* the target agent */
    cfg_strings_t databases;          /* one migration each */
    char *name_prefix;                /* the migration's name is this + the
                                         database's; NULL: the database's */
    plan_conn_t replication;          /* peer NULL: the template's */
    plan_conn_t reverse_replication;  /* peer NULL: the template's */
    cfg_list_t proxies;               /* of plan_proxy_t; empty: the template's */
} plan_inventory_t;

/* One fleet: a template and its inventory. The template comes first so the
 * template's rows are the migration's own (same offsets). */
typedef struct {
    plan_migration_t tmpl;            /* name, source and target unused */
    cfg_list_t inventory;             /* of plan_inventory_t */
} plan_fleet_t;

/* In a fleet's proxy names (the template's or an entry's), this stands
 * for the database each expansion is of: one PgBouncer holds one proxy
 * entry per database ("pgb_{database}"). */
#define PLAN_DATABASE_MARK "{database}"

/* Where an expanded migration came from: fleets[fleet].inventory[item]
 * .databases[database]. */
typedef struct {
    size_t fleet, item, database;
} plan_origin_t;

/* How a plan's waves open (plan_waves_t.go). */
typedef enum {
    PLAN_GO_AUTO = 0,  /* a wave opens when the waves before it passed their gate */
    PLAN_GO_OPERATOR,  /* ... and the operator said godwitctl fleet go */
} plan_go_t;

/* A plan's schedule: its migrations start in waves, in the plan's order
 * (the written-out ones, then the fleets' expansions): the canary first,
 * then waves of size. A wave opens when every migration of the waves
 * before it is streaming and verified equal, or failed, and no more than
 * error_budget have failed (docs/fleet.md). size 0: no waves, every
 * migration starts at once. */
typedef struct {
    int64_t canary;        /* the first wave's migrations (default 1) */
    int64_t size;          /* each later wave's */
    int go;                /* plan_go_t */
    int64_t error_budget;  /* failed migrations tolerated; one more stops the schedule */
} plan_waves_t;

typedef struct {
    cfg_list_t migrations;      /* of plan_migration_t: the ones written out,
                                   then the fleets' expansions */
    cfg_list_t fleets;          /* of plan_fleet_t, as written */
    size_t n_written;           /* migrations written out (before the expansions) */
    plan_origin_t *origins;     /* per expanded migration i: origins[i - n_written];
                                   owned */
    plan_waves_t waves;
} plan_t;

/* Parses text (name is used in errors) into *plan. False with err filled
 * (and nothing to free) on any problem. */
bool plan_load_string(const char *name, const char *text, plan_t *plan, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
size_t plan_count(const plan_t *plan);
plan_migration_t *plan_at(const plan_t *plan, size_t i);
plan_migration_t *plan_find(const plan_t *plan, const char *name);
/* Where migration i came from: false for one written out under
 * `migrations`, true with *out filled for a fleet's expansion. */
bool plan_origin(const plan_t *plan, size_t i, plan_origin_t *out);
/* The same as the file's path, "fleets[0].inventory[2].databases[1]",
 * into buf (len bytes); false (buf untouched) for one written out. */
bool plan_origin_path(const plan_t *plan, size_t i, char *buf, size_t len);
/* The wave migration i starts in (1: the canary), or 0 when the plan has
 * no waves. */
unsigned plan_wave(const plan_t *plan, size_t i);
void plan_free(plan_t *plan);

/* The migration as a one-migration plan in JSON (which is YAML), so the
 * journal can keep it and plan_load_string can read it back with every
 * check. Caller frees the string. */
char *plan_migration_to_json(const plan_migration_t *m);

/* "postgresql" or "mariadb" (static). */
const char *plan_engine_name(int engine);

#endif
