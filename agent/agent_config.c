/*
 * agent_config: schema of the agent's YAML file and its defaults.
 * Owns the strings in agent_config_t (freed by agent_config_free).
 */
#include "agent_config.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xalloc.h"

/* Same order as log_level_t. */
static const char *const s_levels[] = { "debug", "info", "warn", "error", NULL };

static const char *const s_roles[] = { "source", "target", "proxy", NULL };

#define F(k, t, field, req) { .key = k, .type = t, .offset = offsetof(agent_config_t, field), .required = req }
#define R(k, t, field, req, lo, hi)                                                             \
    { .key = k, .type = t, .offset = offsetof(agent_config_t, field), .required = req, .min = lo, \
      .max = hi }

static const cfg_field_t s_coordinator[] = {
    F("endpoint", CFG_ENDPOINT, coordinator.endpoint, true),
    F("public_key", CFG_PATH, coordinator.public_key, true),
    CFG_END,
};

static const cfg_field_t s_postgres[] = {
    F("host", CFG_STRING, postgres.host, false),
    R("port", CFG_INT, postgres.port, false, 1, 65535),
    F("dbname", CFG_STRING, postgres.dbname, false),
    F("user", CFG_STRING, postgres.user, false),
    F("passfile", CFG_PATH, postgres.passfile, false),
    F("data_directory", CFG_PATH, postgres.data_directory, true),
    F("bin_dir", CFG_PATH, postgres.bin_dir, false),
    F("log_file", CFG_PATH, postgres.log_file, false),
    R("connect_timeout", CFG_DURATION_MS, postgres.connect_timeout_ms, false, 100, 600000),
    R("statement_timeout", CFG_DURATION_MS, postgres.statement_timeout_ms, false, 100, 600000),
    CFG_END,
};

static const cfg_field_t s_schema[] = {
    F("name", CFG_STRING, name, false),
    { .key = "role", .type = CFG_ENUM, .offset = offsetof(agent_config_t, role), .required = true,
      .enum_values = s_roles },
    { .key = "log_level", .type = CFG_ENUM, .offset = offsetof(agent_config_t, log_level),
      .enum_values = s_levels },
    F("state_dir", CFG_PATH, state_dir, true),
    R("report_interval", CFG_DURATION_MS, report_interval_ms, false, 100, 60000),
    { .key = "coordinator", .type = CFG_SECTION, .required = true, .children = s_coordinator },
    F("secret_key", CFG_PATH, secret_key, true),
    { .key = "postgres", .type = CFG_SECTION, .children = s_postgres },
    CFG_END,
};

/* The newest /usr/lib/postgresql/N/bin (Debian's layout), or NULL. */
static char *s_default_bin_dir(void)
{
    glob_t g;
    char *best = NULL;
    long best_v = -1;
    if (glob("/usr/lib/postgresql/*/bin/pg_dump", 0, NULL, &g) != 0)
        return NULL;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (v > best_v) {
            best_v = v;
            free(best);
            best = xasprintf("/usr/lib/postgresql/%ld/bin", v);
        }
    }
    globfree(&g);
    return best;
}

const char *agent_role_name(int role)
{
    return role >= 0 && role < 3 ? s_roles[role] : "unknown";
}

bool agent_config_load(const char *path, agent_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->report_interval_ms = 1000;
    cfg->postgres.port = 5432;
    cfg->postgres.connect_timeout_ms = 2000;
    cfg->postgres.statement_timeout_ms = 2000;
    cfg->log_level = 1; /* info */
    if (!cfg_load(path, s_schema, cfg, err, errlen))
        return false;
    cfg->has_postgres = cfg->postgres.data_directory != NULL;
    if (!cfg->postgres.host)
        cfg->postgres.host = xstrdup("127.0.0.1");
    if (!cfg->postgres.dbname)
        cfg->postgres.dbname = xstrdup("postgres");
    if (!cfg->postgres.user)
        cfg->postgres.user = xstrdup("postgres");
    if (cfg->has_postgres && !cfg->postgres.bin_dir)
        cfg->postgres.bin_dir = s_default_bin_dir();
    return true;
}

void agent_config_free(agent_config_t *cfg)
{
    cfg_free(s_schema, cfg);
}
