/*
 * agent_config: the agent's YAML file (see deploy/agent.example.yaml).
 * Everything local and secret lives here, never in messages.
 */
#ifndef GODWIT_AGENT_CONFIG_H
#define GODWIT_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { AGENT_ROLE_SOURCE = 0, AGENT_ROLE_TARGET, AGENT_ROLE_PROXY } agent_role_t;

typedef struct {
    char *name;                 /* informational; the coordinator uses the key file name */
    int role;                   /* agent_role_t */
    int log_level;              /* log_level_t: debug, info, warn, error */
    char *state_dir;            /* epoch file and other durable agent state */
    int64_t report_interval_ms;
    struct {
        char *endpoint;         /* tcp://host:port */
        char *public_key;       /* path to coordinator.pub */
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
    } postgres;
} agent_config_t;

/* Loads path with defaults applied. On failure err names file, line and
 * field and *cfg holds nothing to free. */
bool agent_config_load(const char *path, agent_config_t *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void agent_config_free(agent_config_t *cfg);
const char *agent_role_name(int role);

#endif
