/*
 * coord_config: schema of the coordinator's YAML file and its defaults.
 * Owns the strings in coord_config_t (freed by coord_config_free).
 */
#include "coord_config.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "metricsd.h"
#include "migset.h"
#include "xalloc.h"

/* Same order as log_level_t. */
static const char *const s_levels[] = { "debug", "info", "warn", "error", NULL };
/* Same order as log_format_t. */
static const char *const s_log_formats[] = { "text", "journal", NULL };

#define F(k, t, field, req) { .key = k, .type = t, .offset = offsetof(coord_config_t, field), .required = req }
#define R(k, t, field, lo, hi) \
    { .key = k, .type = t, .offset = offsetof(coord_config_t, field), .min = lo, .max = hi }

/* metrics: the listen address must parse, and be loopback unless
 * allow_remote says otherwise (the endpoint has no authentication). */
static bool s_metrics_check(const void *base, const char **field, char *why, size_t whylen)
{
    const coord_config_t *cfg = base;
    struct sockaddr_storage ss;
    bool loopback = false;
    if (!metricsd_addr_parse(cfg->metrics.listen, &ss, &loopback, why, whylen)) {
        *field = "listen";
        return false;
    }
    if (!loopback && !cfg->metrics.allow_remote) {
        *field = "listen";
        snprintf(why, whylen,
                 "\"%s\" is not a loopback address: the metrics endpoint has no "
                 "authentication; set metrics.allow_remote: true to serve it beyond this host",
                 cfg->metrics.listen);
        return false;
    }
    return true;
}

static const cfg_field_t s_metrics[] = {
    F("listen", CFG_STRING, metrics.listen, true),
    F("allow_remote", CFG_BOOL, metrics.allow_remote, false),
    CFG_END,
};

static const cfg_field_t s_copies[] = {
    R("per_source", CFG_INT, copies.per_source, 0, 1000),
    R("per_target", CFG_INT, copies.per_target, 0, 1000),
    R("per_link", CFG_INT, copies.per_link, 0, 1000),
    CFG_END,
};

static const cfg_field_t s_schema[] = {
    F("listen", CFG_ENDPOINT, listen, true),
    F("secret_key", CFG_PATH, secret_key, true),
    F("signing_key", CFG_PATH, signing_key, false),
    F("allowed_keys", CFG_PATH, allowed_keys, true),
    F("control_socket", CFG_PATH, control_socket, true),
    F("journal", CFG_PATH, journal, true),
    { .key = "log_level", .type = CFG_ENUM, .offset = offsetof(coord_config_t, log_level),
      .enum_values = s_levels },
    { .key = "log_format", .type = CFG_ENUM, .offset = offsetof(coord_config_t, log_format),
      .enum_values = s_log_formats },
    R("ping_interval", CFG_DURATION_MS, ping_interval_ms, 100, 60000),
    R("lost_after", CFG_DURATION_MS, lost_after_ms, 500, 600000),
    R("max_message", CFG_BYTES, max_message_bytes, 4096, 64 << 20),
    R("handshake_timeout", CFG_DURATION_MS, handshake_timeout_ms, 100, 60000),
    R("tcp_keepalive", CFG_DURATION_MS, tcp_keepalive_ms, 1000, 3600000),
    R("refusal_log_interval", CFG_DURATION_MS, refusal_log_interval_ms, 1000, 3600000),
    { .key = "metrics", .type = CFG_SECTION, .children = s_metrics,
      .item_check = s_metrics_check },
    { .key = "copies", .type = CFG_SECTION, .children = s_copies },
    CFG_END,
};

bool coord_config_load(const char *path, coord_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ping_interval_ms = 1000;
    cfg->lost_after_ms = 3000;
    cfg->max_message_bytes = 1 << 20;
    cfg->handshake_timeout_ms = 5000;
    cfg->tcp_keepalive_ms = 10000;
    cfg->refusal_log_interval_ms = 60000;
    cfg->copies.per_source = MIGSET_COPIES_PER_SOURCE;
    cfg->copies.per_target = MIGSET_COPIES_PER_TARGET;
    cfg->log_level = 1; /* info */
    if (!cfg_load(path, s_schema, cfg, err, errlen))
        return false;
    if (!cfg->signing_key) {
        /* Next to the CURVE secret key: coordinator.key -> coordinator.sign.key */
        const char *sk = cfg->secret_key;
        size_t n = strlen(sk);
        if (n > 4 && strcmp(sk + n - 4, ".key") == 0)
            cfg->signing_key = xasprintf("%.*s.sign.key", (int)(n - 4), sk);
        else
            cfg->signing_key = xasprintf("%s.sign.key", sk);
    }
    return true;
}

void coord_config_free(coord_config_t *cfg)
{
    cfg_free(s_schema, cfg);
}
