/*
 * coord_config: the coordinator's YAML file (see
 * deploy/coordinator.example.yaml).
 */
#ifndef GODWIT_COORD_CONFIG_H
#define GODWIT_COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct {
    char *listen;               /* tcp://host:port the ROUTER binds */
    char *secret_key;           /* coordinator.key (mode 0600) */
    char *signing_key;          /* coordinator.sign.key (mode 0600); default: next to secret_key */
    char *allowed_keys;         /* folder of NAME.pub files: the allow-list */
    char *control_socket;       /* unix socket for godwitctl (mode 0600) */
    char *journal;              /* SQLite file: epoch and, later, migrations */
    int log_level;              /* log_level_t: debug, info, warn, error */
    int log_format;             /* log_format_t: text (stderr), journal */
    int64_t ping_interval_ms;   /* coordinator -> agent ping, for round trip */
    int64_t lost_after_ms;      /* no message for this long: agent lost */
    int64_t max_message_bytes;  /* largest message taken from an agent (docs/config.md) */
    int64_t handshake_timeout_ms;
    int64_t tcp_keepalive_ms;   /* idle time before kernel keepalive probes */
    int64_t refusal_log_interval_ms; /* one refusal line per peer per interval */
    struct {
        char *listen;           /* HOST:PORT of the Prometheus endpoint; NULL: off */
        bool allow_remote;      /* a listen address other than loopback is allowed */
    } metrics;
    struct {
        int64_t per_source;     /* copies at once from one source agent; 0: no cap */
        int64_t per_target;     /* copies at once into one target agent; 0: no cap */
        int64_t per_link;       /* copies at once between two sites; 0: no cap */
    } copies;
} coord_config_t;

bool coord_config_load(const char *path, coord_config_t *cfg, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
void coord_config_free(coord_config_t *cfg);

#endif
