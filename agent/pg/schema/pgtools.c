/* pgtools: running PostgreSQL's client programs as children (pgtools.h). */
#include "pgtools.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* text folded onto one line: runs of whitespace with a line break become
 * one space, trailing whitespace goes. The caller frees. */
static char *s_oneline(const char *text)
{
    char *out = xstrdup(text ? text : "");
    size_t o = 0;
    for (const char *p = out; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
                o--;
            while (p[1] == '\n' || p[1] == '\r' || p[1] == ' ' || p[1] == '\t')
                p++;
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return out;
}

char *pgtools_failure(const char *what, const proc_result_t *r)
{
    char *status = proc_status_text(r);
    char *err = s_oneline(r->err);
    char *text = xasprintf("%s %s%s%s", what, status, err[0] ? ": " : "", err);
    free(err);
    free(status);
    return text;
}

char *pgtools_program(const char *bin_dir, const char *name)
{
    if (!bin_dir[0])
        return xstrdup(name); /* looked up in PATH */
    size_t n = strlen(bin_dir);
    return xasprintf("%s%s%s", bin_dir, bin_dir[n - 1] == '/' ? "" : "/", name);
}

char **pgtools_env(const char *host, const char *port, const char *user, const char *passfile,
                   const char *sslmode, const char *dbname, const char *connect_timeout)
{
    static const char *const drop[] = {"PG", NULL};
    const struct {
        const char *name, *value;
    } vars[] = {
        {"PGHOST", host},         {"PGPORT", port},       {"PGUSER", user},
        {"PGPASSFILE", passfile}, {"PGSSLMODE", sslmode}, {"PGDATABASE", dbname},
        {"PGAPPNAME", "godwit-agent"}, {"PGCONNECT_TIMEOUT", connect_timeout},
    };
    /* Where libpq finds the files that verify a server (and prove us to
     * it): the agent's own settings, kept (docs/operations.md). */
    static const char *const keep[] = {"PGSSLROOTCERT", "PGSSLCRL", "PGSSLCERT", "PGSSLKEY"};
    enum { N = sizeof vars / sizeof vars[0], K = sizeof keep / sizeof keep[0] };
    char *owned[N + K];
    const char *set[N + K + 1];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (!vars[i].value || !vars[i].value[0])
            continue;
        owned[n] = xasprintf("%s=%s", vars[i].name, vars[i].value);
        set[n] = owned[n];
        n++;
    }
    for (size_t i = 0; i < K; i++) {
        const char *v = getenv(keep[i]);
        if (!v || !v[0])
            continue;
        owned[n] = xasprintf("%s=%s", keep[i], v);
        set[n] = owned[n];
        n++;
    }
    set[n] = NULL;
    char **env = proc_env_new(drop, set);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    return env;
}
