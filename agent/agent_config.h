/*
 * agent_config: the agent's YAML file (see deploy/agent.example.yaml).
 * Everything local and secret lives here, never in messages: among it the
 * peers, the only servers of the other side this agent connects to, which
 * messages name and never address.
 */
#ifndef GODWIT_AGENT_CONFIG_H
#define GODWIT_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "cfg.h"

typedef enum { AGENT_ROLE_SOURCE = 0, AGENT_ROLE_TARGET, AGENT_ROLE_PROXY } agent_role_t;

typedef enum { PROXY_KIND_PGBOUNCER = 0, PROXY_KIND_HAPROXY, PROXY_KIND_NGINX } proxy_kind_t;

/* What to do when a PAUSE is still waiting for running transactions when
 * its pause_timeout ends (PgBouncer). */
typedef enum { PROXY_ON_TIMEOUT_RESUME = 0, PROXY_ON_TIMEOUT_TERMINATE } proxy_on_timeout_t;

/* One entry of the proxies list (docs/config.md). Only the section of its
 * kind is set; the others stay zero. */
typedef struct {
    char *name;                 /* what messages call it */
    int kind;                   /* proxy_kind_t */
    char *blue, *green;         /* "host:port" of each backend */
    int64_t pause_timeout_ms;   /* default wait for running transactions on PAUSE */
    int on_pause_timeout;       /* proxy_on_timeout_t */
    int64_t lease_ms;           /* default lease of a PAUSE */
    int64_t command_timeout_ms; /* one admin command, test or reload */
    struct {
        char *host;             /* admin console */
        int64_t port;
        char *user;
        char *passfile;
        char *database;         /* the [databases] entry we point */
        char *dbname;           /* the backend database it names; default: database */
        char *include_file;     /* holds that one entry; rewritten on SWITCH */
        char *entry_options;    /* appended to the entry: "pool_size=20 ..." */
        char *backend_user;     /* terminate policy: who may pg_terminate_backend */
        char *backend_passfile;
    } pgbouncer;
    struct {
        char *socket;           /* stats socket with "level admin" */
        char *frontend;         /* held on PAUSE (maxconn 0) */
        char *backend;
        char *blue_server, *green_server;
        char *state_file;       /* server-state-file written after SWITCH */
        char *config_file;      /* optional: its backend's server lines made to match
                                   after SWITCH (NULL: left alone) */
        cfg_strings_t reload_argv; /* hitless reload: how RESUME lets held connections in */
    } haproxy;
    struct {
        char *include_file;     /* the upstream's server line(s); rewritten on SWITCH */
        cfg_strings_t test_argv;   /* e.g. [nginx, -t, -q] */
        cfg_strings_t reload_argv; /* e.g. [nginx, -s, reload] */
        char *pid_file;         /* the master's; used to confirm new workers */
        char *server_options;   /* appended to the server line: "max_fails=0" */
    } nginx;
} agent_proxy_t;

/* One entry of the peers list (docs/config.md): a server of the other side
 * of a migration, of the agent's own engine, which commands name by `name`
 * (the target's way to the source, the source's way to the target after a
 * cutover). A PostgreSQL peer's passfile is read by this agent's libpq and,
 * inside a subscription's connection string, by the local PostgreSQL
 * server; a MariaDB peer's password_file by this agent only. */
typedef struct {
    char *name;
    char *host;
    int64_t port;               /* default 5432; 3306 in an agent with a mariadb section */
    char *user;
    char *sslmode;              /* NULL: libpq's default */
    char *passfile;             /* NULL: none */
    char *password_file;        /* MariaDB: its first line is the password; NULL: none */
} agent_peer_t;

/* postgres.standby (docs/config.md): this target can be made a physical
 * standby of its peer (method: physical, docs/physical.md). The argv
 * lists are run without a shell; run_as prefixes pg_basebackup, start,
 * stop and the removal of the data directory (the server's OS user). */
typedef struct {
    char *data_directory;       /* where pg_basebackup writes; the standby's */
    cfg_strings_t run_as;       /* e.g. [runuser, -u, postgres, --]; empty: as the agent */
    cfg_strings_t start;        /* e.g. [pg_ctl, -D, DIR, -l, LOG, -w, start] */
    cfg_strings_t stop;         /* e.g. [pg_ctl, -D, DIR, -m, fast, -w, stop] */
} agent_standby_t;

typedef struct {
    char *path;                 /* the file this was loaded from, for messages */
    char *name;                 /* informational; the coordinator uses the key file name */
    int role;                   /* agent_role_t */
    int log_level;              /* log_level_t: debug, info, warn, error */
    int log_format;             /* log_format_t: text (stderr), journal */
    char *jurisdiction;         /* data residency label ("eu", "no"); NULL: none */
    char *site;                 /* the datacenter's label ("fra", "osl"); NULL: none */
    char *state_dir;            /* epoch file and other durable agent state */
    int64_t report_interval_ms;
    struct {
        char *endpoint;         /* tcp://host:port */
        char *public_key;       /* path to coordinator.pub */
        char *signing_key;      /* path to coordinator.sign.pub; default: next to public_key */
    } coordinator;
    char *secret_key;           /* path to NAME.key (mode 0600) */
    bool has_postgres;
    struct {
        char *host;
        int64_t port;
        char *dbname;
        char *user;
        char *passfile;
        char *data_directory;
        char *bin_dir;          /* pg_dump, pg_restore; default: newest installed */
        char *log_file;         /* the server's log, followed for replication errors; NULL: not */
        int64_t connect_timeout_ms;
        int64_t statement_timeout_ms;
        bool has_standby;       /* the standby section is given */
        agent_standby_t standby;
    } postgres;
    /* mariadb (docs/config.md): the local MariaDB server, instead of
     * postgres (a file with both is refused). */
    bool has_mariadb;
    struct {
        char *host;             /* default 127.0.0.1; TCP */
        int64_t port;           /* default 3306 */
        char *socket;           /* a Unix socket: wins over host and port; NULL: none */
        char *user;             /* required */
        char *password_file;    /* its first line is the password; NULL: none */
        char *database;         /* the agent's own session's default; NULL: none */
        char *data_directory;   /* its disk is reported and checked; NULL: not */
        int64_t connect_timeout_ms;
        int64_t statement_timeout_ms;
    } mariadb;
    cfg_list_t proxies;         /* agent_proxy_t items */
    cfg_list_t peers;           /* agent_peer_t items, names unique */
} agent_config_t;

/* Loads path with defaults applied. On failure err names file, line and
 * field and *cfg holds nothing to free. */
bool agent_config_load(const char *path, agent_config_t *cfg, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
void agent_config_free(agent_config_t *cfg);
const char *agent_config_role_name(int role);
/* The peer called name, or NULL. */
const agent_peer_t *agent_config_peer_find(const agent_config_t *cfg, const char *name);
const char *agent_config_proxy_kind_name(int kind);
/* Splits "host:port" (a checked config value) into host (copied into buf)
 * and port; false if it is not one. */
bool agent_config_split_hostport(const char *hp, char *host, size_t hostlen, int *port);

#endif
