/*
 * agent_config: schema of the agent's YAML file and its defaults.
 * Owns the strings in agent_config_t (freed by agent_config_free).
 * The peers list is the only place an address of the other side comes
 * from (step.h's step_peer resolves a message's peer name against it).
 */
#include "agent_config.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "xalloc.h"

/* Same order as log_level_t. */
static const char *const s_levels[] = { "debug", "info", "warn", "error", NULL };
/* Same order as log_format_t. */
static const char *const s_log_formats[] = { "text", "journal", NULL };

static const char *const s_roles[] = { "source", "target", "proxy", NULL };

#define F(k, t, field, req) { .key = k, .type = t, .offset = offsetof(agent_config_t, field), .required = req }
#define R(k, t, field, req, lo, hi)                                                             \
    { .key = k, .type = t, .offset = offsetof(agent_config_t, field), .required = req, .min = lo, \
      .max = hi }

static const cfg_field_t s_coordinator[] = {
    F("endpoint", CFG_ENDPOINT, coordinator.endpoint, true),
    F("public_key", CFG_PATH, coordinator.public_key, true),
    F("signing_key", CFG_PATH, coordinator.signing_key, false),
    CFG_END,
};

static const cfg_field_t s_standby[] = {
    F("data_directory", CFG_PATH, postgres.standby.data_directory, true),
    R("run_as", CFG_STRING_LIST, postgres.standby.run_as, false, 1, 16),
    R("start", CFG_STRING_LIST, postgres.standby.start, true, 1, 64),
    R("stop", CFG_STRING_LIST, postgres.standby.stop, true, 1, 64),
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
    { .key = "standby", .type = CFG_SECTION, .children = s_standby },
    CFG_END,
};

/* An agent runs one database engine: a second engine's section is refused
 * at the line of the one that comes second in the file (each section's
 * check sees only what the file gave before it; both sections' required
 * keys say whether one was given). */
static bool s_one_engine(const agent_config_t *cfg, const char **field, char *why, size_t whylen)
{
    if (cfg->postgres.data_directory && cfg->mariadb.user) {
        *field = NULL;
        snprintf(why, whylen, "an agent runs one database engine: this file has a postgres and "
                              "a mariadb section; keep the one of this host's server");
        return false;
    }
    return true;
}

static bool s_postgres_check(const void *item, const char **field, char *why, size_t whylen)
{
    return s_one_engine(item, field, why, whylen);
}

static const cfg_field_t s_mariadb[] = {
    F("host", CFG_STRING, mariadb.host, false),
    R("port", CFG_INT, mariadb.port, false, 1, 65535),
    F("socket", CFG_PATH, mariadb.socket, false),
    F("user", CFG_STRING, mariadb.user, true),
    F("password_file", CFG_PATH, mariadb.password_file, false),
    F("database", CFG_STRING, mariadb.database, false),
    F("data_directory", CFG_PATH, mariadb.data_directory, false),
    R("connect_timeout", CFG_DURATION_MS, mariadb.connect_timeout_ms, false, 100, 600000),
    R("statement_timeout", CFG_DURATION_MS, mariadb.statement_timeout_ms, false, 100, 600000),
    CFG_END,
};

static bool s_mariadb_check(const void *item, const char **field, char *why, size_t whylen)
{
    return s_one_engine(item, field, why, whylen);
}

static const char *const s_kinds[] = { "pgbouncer", "haproxy", "nginx", NULL };
static const char *const s_on_timeout[] = { "resume", "terminate", NULL };

/* Rows of one proxies[] item: offsets from the start of an agent_proxy_t. */
#define P(k, t, field, req) { .key = k, .type = t, .offset = offsetof(agent_proxy_t, field), .required = req }
#define PR(k, t, field, req, lo, hi)                                                            \
    { .key = k, .type = t, .offset = offsetof(agent_proxy_t, field), .required = req, .min = lo, \
      .max = hi }

static const cfg_field_t s_pgbouncer[] = {
    P("host", CFG_STRING, pgbouncer.host, false),
    PR("port", CFG_INT, pgbouncer.port, false, 1, 65535),
    P("user", CFG_STRING, pgbouncer.user, false),
    P("passfile", CFG_PATH, pgbouncer.passfile, false),
    P("database", CFG_STRING, pgbouncer.database, true),
    P("dbname", CFG_STRING, pgbouncer.dbname, false),
    P("include_file", CFG_PATH, pgbouncer.include_file, true),
    P("entry_options", CFG_STRING, pgbouncer.entry_options, false),
    P("backend_user", CFG_STRING, pgbouncer.backend_user, false),
    P("backend_passfile", CFG_PATH, pgbouncer.backend_passfile, false),
    CFG_END,
};

static const cfg_field_t s_haproxy[] = {
    P("socket", CFG_PATH, haproxy.socket, true),
    P("frontend", CFG_STRING, haproxy.frontend, true),
    P("backend", CFG_STRING, haproxy.backend, true),
    P("blue_server", CFG_STRING, haproxy.blue_server, true),
    P("green_server", CFG_STRING, haproxy.green_server, true),
    P("state_file", CFG_PATH, haproxy.state_file, true),
    P("config_file", CFG_PATH, haproxy.config_file, false),
    PR("reload_argv", CFG_STRING_LIST, haproxy.reload_argv, true, 1, 64),
    CFG_END,
};

static const cfg_field_t s_nginx[] = {
    P("include_file", CFG_PATH, nginx.include_file, true),
    PR("test_argv", CFG_STRING_LIST, nginx.test_argv, true, 1, 64),
    PR("reload_argv", CFG_STRING_LIST, nginx.reload_argv, true, 1, 64),
    P("pid_file", CFG_PATH, nginx.pid_file, true),
    P("server_options", CFG_STRING, nginx.server_options, false),
    CFG_END,
};

static const cfg_field_t s_proxy[] = {
    P("name", CFG_STRING, name, true),
    { .key = "kind", .type = CFG_ENUM, .offset = offsetof(agent_proxy_t, kind), .required = true,
      .enum_values = s_kinds },
    P("blue", CFG_STRING, blue, true),
    P("green", CFG_STRING, green, true),
    PR("pause_timeout", CFG_DURATION_MS, pause_timeout_ms, false, 10, 3600000),
    { .key = "on_pause_timeout", .type = CFG_ENUM,
      .offset = offsetof(agent_proxy_t, on_pause_timeout), .enum_values = s_on_timeout },
    PR("lease", CFG_DURATION_MS, lease_ms, false, 100, 3600000),
    PR("command_timeout", CFG_DURATION_MS, command_timeout_ms, false, 100, 600000),
    { .key = "pgbouncer", .type = CFG_SECTION, .children = s_pgbouncer },
    { .key = "haproxy", .type = CFG_SECTION, .children = s_haproxy },
    { .key = "nginx", .type = CFG_SECTION, .children = s_nginx },
    CFG_END,
};

bool agent_config_split_hostport(const char *hp, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || (size_t)(colon - hp) >= hostlen)
        return false;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
        return false;
    for (const char *c = hp; c < colon; c++)
        if (*c == ' ' || *c == '\t' || *c == ';' || *c == '=' || *c == '\'' || *c == '#')
            return false;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    *port = (int)p;
    return true;
}

/* A proxy's section must match its kind, and the backends must be host:port. */
static bool s_proxy_check(const void *item, const char **field, char *why, size_t whylen)
{
    const agent_proxy_t *p = item;
    char host[256];
    int port;
    if (!agent_config_split_hostport(p->blue, host, sizeof host, &port)) {
        *field = "blue";
        snprintf(why, whylen, "expected host:port, got \"%s\"", p->blue);
        return false;
    }
    if (!agent_config_split_hostport(p->green, host, sizeof host, &port)) {
        *field = "green";
        snprintf(why, whylen, "expected host:port, got \"%s\"", p->green);
        return false;
    }
    bool has[3] = { p->pgbouncer.database != NULL, p->haproxy.socket != NULL,
                    p->nginx.include_file != NULL };
    for (int k = 0; k < 3; k++) {
        if (k == p->kind && !has[k]) {
            *field = s_kinds[k];
            snprintf(why, whylen, "missing: a proxy of kind %s needs this section", s_kinds[k]);
            return false;
        }
        if (k != p->kind && has[k]) {
            *field = s_kinds[k];
            snprintf(why, whylen, "not allowed: this proxy is of kind %s", s_kinds[p->kind]);
            return false;
        }
    }
    if (p->kind == PROXY_KIND_PGBOUNCER) {
        for (const char *c = p->pgbouncer.database; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '_')) {
                *field = "pgbouncer.database";
                snprintf(why, whylen, "expected a plain name (letters, digits, _), got \"%s\"",
                         p->pgbouncer.database);
                return false;
            }
        }
    }
    return true;
}

/* Rows of one peers[] item. */
#define PE(k, t, field, req) { .key = k, .type = t, .offset = offsetof(agent_peer_t, field), .required = req }

static const cfg_field_t s_peer[] = {
    PE("name", CFG_STRING, name, true),
    PE("host", CFG_STRING, host, true),
    { .key = "port", .type = CFG_INT, .offset = offsetof(agent_peer_t, port), .min = 1,
      .max = 65535 },
    PE("user", CFG_STRING, user, true),
    PE("sslmode", CFG_STRING, sslmode, false),
    PE("passfile", CFG_PATH, passfile, false),
    PE("password_file", CFG_PATH, password_file, false),
    CFG_END,
};

/* libpq's sslmode values. */
static const char *const s_sslmodes[] = { "disable", "allow", "prefer", "require", "verify-ca",
                                          "verify-full", NULL };

/* A peer's name is a plain word (plans and messages name it); its sslmode
 * one libpq knows. */
static bool s_peer_check(const void *item, const char **field, char *why, size_t whylen)
{
    const agent_peer_t *p = item;
    size_t n = strlen(p->name);
    bool plain = n <= 63;
    for (const char *c = p->name; plain && *c; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '_' || *c == '-' || *c == '.';
    if (!plain) {
        *field = "name";
        snprintf(why, whylen, "expected a plain name (letters, digits, _, -, ., at most 63), "
                              "got \"%s\"", p->name);
        return false;
    }
    if (p->passfile && p->password_file) {
        *field = "password_file";
        snprintf(why, whylen, "give passfile (a PostgreSQL peer) or password_file (a MariaDB "
                              "peer), not both");
        return false;
    }
    if (p->sslmode) {
        size_t i = 0;
        while (s_sslmodes[i] && strcmp(s_sslmodes[i], p->sslmode) != 0)
            i++;
        if (!s_sslmodes[i]) {
            *field = "sslmode";
            snprintf(why, whylen, "expected one of [disable, allow, prefer, require, verify-ca, "
                                  "verify-full], got \"%s\"", p->sslmode);
            return false;
        }
    }
    return true;
}

static bool s_proxies_unique(const agent_config_t *cfg, const char *path, char *err, size_t errlen)
{
    const agent_proxy_t *ps = cfg->proxies.items;
    for (size_t i = 0; i < cfg->proxies.count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(ps[i].name, ps[j].name) == 0) {
                snprintf(err, errlen, "%s: proxies[%zu].name: \"%s\" is already proxies[%zu]",
                         path, i, ps[i].name, j);
                return false;
            }
    return true;
}

static const cfg_field_t s_schema[] = {
    F("name", CFG_STRING, name, false),
    { .key = "role", .type = CFG_ENUM, .offset = offsetof(agent_config_t, role), .required = true,
      .enum_values = s_roles },
    { .key = "log_level", .type = CFG_ENUM, .offset = offsetof(agent_config_t, log_level),
      .enum_values = s_levels },
    { .key = "log_format", .type = CFG_ENUM, .offset = offsetof(agent_config_t, log_format),
      .enum_values = s_log_formats },
    F("jurisdiction", CFG_LABEL, jurisdiction, false),
    F("site", CFG_LABEL, site, false),
    F("state_dir", CFG_PATH, state_dir, true),
    R("report_interval", CFG_DURATION_MS, report_interval_ms, false, 100, 60000),
    { .key = "coordinator", .type = CFG_SECTION, .required = true, .children = s_coordinator },
    F("secret_key", CFG_PATH, secret_key, true),
    { .key = "postgres", .type = CFG_SECTION, .children = s_postgres,
      .item_check = s_postgres_check },
    { .key = "mariadb", .type = CFG_SECTION, .children = s_mariadb,
      .item_check = s_mariadb_check },
    { .key = "proxies", .type = CFG_LIST, .offset = offsetof(agent_config_t, proxies),
      .min = 1, .max = 64, .children = s_proxy, .item_size = sizeof(agent_proxy_t),
      .item_check = s_proxy_check },
    { .key = "peers", .type = CFG_LIST, .offset = offsetof(agent_config_t, peers), .min = 1,
      .max = 64, .children = s_peer, .item_size = sizeof(agent_peer_t),
      .item_check = s_peer_check, .unique = "name" },
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

const char *agent_config_proxy_kind_name(int kind)
{
    return kind >= 0 && kind < 3 ? s_kinds[kind] : "unknown";
}

const char *agent_config_role_name(int role)
{
    return role >= 0 && role < 3 ? s_roles[role] : "unknown";
}

const agent_peer_t *agent_config_peer_find(const agent_config_t *cfg, const char *name)
{
    const agent_peer_t *ps = cfg->peers.items;
    for (size_t i = 0; name && i < cfg->peers.count; i++)
        if (strcmp(ps[i].name, name) == 0)
            return &ps[i];
    return NULL;
}

bool agent_config_load(const char *path, agent_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->report_interval_ms = 1000;
    cfg->postgres.port = 5432;
    cfg->postgres.connect_timeout_ms = 2000;
    cfg->postgres.statement_timeout_ms = 2000;
    cfg->mariadb.port = 3306;
    cfg->mariadb.connect_timeout_ms = 2000;
    cfg->mariadb.statement_timeout_ms = 2000;
    cfg->log_level = 1; /* info */
    if (!cfg_load(path, s_schema, cfg, err, errlen))
        return false;
    if (!s_proxies_unique(cfg, path, err, errlen)) {
        cfg_free(s_schema, cfg);
        return false;
    }
    cfg->has_postgres = cfg->postgres.data_directory != NULL;
    cfg->postgres.has_standby = cfg->postgres.standby.data_directory != NULL;
    cfg->has_mariadb = cfg->mariadb.user != NULL;
    cfg->path = xstrdup(path);
    /* A peer is a server of the agent's own engine. */
    agent_peer_t *peers = cfg->peers.items;
    for (size_t i = 0; i < cfg->peers.count; i++)
        if (!peers[i].port)
            peers[i].port = cfg->has_mariadb ? 3306 : 5432;
    if (!cfg->coordinator.signing_key) {
        /* Next to the CURVE public key: coordinator.pub -> coordinator.sign.pub */
        const char *pk = cfg->coordinator.public_key;
        size_t n = strlen(pk);
        if (n > 4 && strcmp(pk + n - 4, ".pub") == 0)
            cfg->coordinator.signing_key = xasprintf("%.*s.sign.pub", (int)(n - 4), pk);
        else
            cfg->coordinator.signing_key = xasprintf("%s.sign.pub", pk);
    }
    agent_proxy_t *ps = cfg->proxies.items;
    for (size_t i = 0; i < cfg->proxies.count; i++) {
        agent_proxy_t *p = &ps[i];
        if (!p->pause_timeout_ms)
            p->pause_timeout_ms = 10000;
        if (!p->lease_ms)
            p->lease_ms = 30000;
        if (!p->command_timeout_ms)
            p->command_timeout_ms = 10000;
        if (p->kind == PROXY_KIND_PGBOUNCER) {
            if (!p->pgbouncer.host)
                p->pgbouncer.host = xstrdup("127.0.0.1");
            if (!p->pgbouncer.port)
                p->pgbouncer.port = 6432;
            if (!p->pgbouncer.user)
                p->pgbouncer.user = xstrdup("pgbouncer");
            if (!p->pgbouncer.dbname)
                p->pgbouncer.dbname = xstrdup(p->pgbouncer.database);
            if (!p->pgbouncer.backend_user)
                p->pgbouncer.backend_user = xstrdup("postgres");
        }
    }
    if (!cfg->postgres.host)
        cfg->postgres.host = xstrdup("127.0.0.1");
    if (!cfg->postgres.dbname)
        cfg->postgres.dbname = xstrdup("postgres");
    if (!cfg->postgres.user)
        cfg->postgres.user = xstrdup("postgres");
    if (cfg->has_postgres && !cfg->postgres.bin_dir)
        cfg->postgres.bin_dir = s_default_bin_dir();
    if (cfg->has_mariadb && !cfg->mariadb.host)
        cfg->mariadb.host = xstrdup("127.0.0.1");
    return true;
}

void agent_config_free(agent_config_t *cfg)
{
    cfg_free(s_schema, cfg);
    free(cfg->path);
    cfg->path = NULL;
}
