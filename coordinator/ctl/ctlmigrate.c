/*
 * ctlmigrate: see ctlmigrate.h. The commands that start something long (verify,
 * cutover, cleanup) follow it by polling the migration's status until it
 * ends.
 */
#include "ctlmigrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "ctlcmd.h"
#include "render.h"

/* A new request {"cmd": cmd, "name": name} (no name when NULL; the
 * caller deletes it, or passes it on to whoever takes it). */
static cJSON *s_request(ctlcmd_t cmd, const char *name)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(cmd));
    if (name)
        cJSON_AddStringToObject(req, "name", name);
    return req;
}

/* Sends req (taken) to the coordinator: 0 when it said ok, else the exit
 * code, with the reason printed. */
static int s_ask(const char *sock, cJSON *req)
{
    cJSON *resp = client_request(sock, req, 30);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    int code = 0;
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        render_humanize(resp);
        fprintf(stderr, "godwitctl: %s\n", render_str(resp, "error", "failed"));
        code = CLI_EXIT_DEGRADED;
    }
    cJSON_Delete(resp);
    return code;
}

/* Migration name's status response (the caller deletes it; escaped for a
 * terminal unless json), or NULL with the reason printed (coordinator
 * unreachable). */
static cJSON *s_migration_status(const char *sock, const char *name, bool json)
{
    cJSON *req = s_request(CTLCMD_MIGRATE_STATUS, name);
    cJSON *resp = client_request(sock, req, 30);
    if (resp && !json)
        render_humanize(resp);
    return resp;
}

/* Follows migration name's `key` report (verify, cutover) in its status
 * every poll_ms until its state is one of finals (NULL-terminated); prints
 * it (as JSON, or rendered) and returns code_of(report), or without one 0
 * if that state is finals[0], else CLI_EXIT_DEGRADED; CLI_EXIT_UNREACHABLE
 * if the coordinator is gone. */
static int s_follow(const char *sock, const char *name, const char *key,
                    const char *const *finals, unsigned poll_ms, bool json,
                    void (*render)(const cJSON *report, double now, FILE *out),
                    int (*code_of)(const cJSON *report))
{
    for (;;) {
        cJSON *resp = s_migration_status(sock, name, json);
        if (!resp)
            return CLI_EXIT_UNREACHABLE;
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "migrations"), 0);
        const cJSON *rep = cJSON_GetObjectItem(m, key);
        if (!cJSON_IsObject(rep)) {
            fprintf(stderr, "godwitctl: migration %s: %s\n", name,
                    render_str(resp, "error", "it stopped (the migration left streaming)"));
            cJSON_Delete(resp);
            return CLI_EXIT_DEGRADED;
        }
        const char *state = render_str(rep, "state", "");
        for (size_t f = 0; finals[f]; f++) {
            if (strcmp(state, finals[f]) != 0)
                continue;
            if (json) {
                char *out = cJSON_Print(rep);
                puts(out);
                cJSON_free(out);
            } else {
                printf("migration %s:\n", name);
                render(rep, render_num(resp, "generated_at_ms", 0), stdout);
            }
            int code = code_of ? code_of(rep) : f == 0 ? 0 : CLI_EXIT_DEGRADED;
            cJSON_Delete(resp);
            return code;
        }
        cJSON_Delete(resp);
        usleep(poll_ms * 1000);
    }
}

/* migrate verify M: starts verify, then (unless --no-wait) follows it until
 * it ends. 0 when every table is equal. */
static int s_cmd_verify(const char *sock, const char *name, bool json, bool wait)
{
    cJSON *req = s_request(CTLCMD_MIGRATE_VERIFY, name);
    int code = s_ask(sock, req);
    if (code != 0)
        return code;
    if (!wait) {
        printf("migration %s: verifying; godwitctl migrate status %s shows the report\n", name, name);
        return 0;
    }
    static const char *const finals[] = { "equal", "different", "failed", NULL };
    return s_follow(sock, name, "verify", finals, 300, json, render_verify, NULL);
}

/* The exit code of a cutover's final report, by its outcome. */
static int s_cutover_code(const cJSON *rep)
{
    const char *outcome = render_str(rep, "outcome", "");
    if (strcmp(outcome, "done") == 0)
        return 0;
    if (strcmp(outcome, "refused") == 0)
        return CLI_EXIT_REFUSED;
    if (strcmp(outcome, "rolled_back") == 0)
        return CLI_EXIT_ROLLED_BACK;
    if (strcmp(outcome, "unknown") == 0)
        return CLI_EXIT_UNKNOWN;
    return CLI_EXIT_DEGRADED;
}

/* Sends a cutover request (req, taken): 0 once the coordinator started
 * it, else the exit code (a gate refused it: CLI_EXIT_REFUSED), with the
 * reason printed. */
static int s_ask_cutover(const char *sock, cJSON *req)
{
    cJSON *resp = client_request(sock, req, 30);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    int code = 0;
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        code = cJSON_IsTrue(cJSON_GetObjectItem(resp, "refused")) ? CLI_EXIT_REFUSED
                                                                  : CLI_EXIT_DEGRADED;
        render_humanize(resp);
        fprintf(stderr, "godwitctl: %s\n", render_str(resp, "error", "failed"));
    }
    cJSON_Delete(resp);
    return code;
}

/* The group's members' last cutover reports from one status answer: their
 * states into *all_final, the exit code of the first that did not end
 * done (0 if all did), the longest write pause. */
typedef struct {
    bool all_final;
    int code;
    double longest_pause_ms;
} s_group_t;

/* The migration called name in a status answer, or NULL. */
static const cJSON *s_named(const cJSON *resp, const char *name)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(resp, "migrations"))
    {
        if (strcmp(render_str(m, "name", ""), name) == 0)
            return m;
    }
    return NULL;
}

static s_group_t s_group_look(const cJSON *resp, char **names, int n)
{
    s_group_t g = { .all_final = true };
    for (int i = 0; i < n; i++) {
        const cJSON *rep = cJSON_GetObjectItem(s_named(resp, names[i]), "cutover");
        const char *state = render_str(rep, "state", "");
        if (strcmp(state, "done") != 0 && strcmp(state, "aborted") != 0) {
            g.all_final = false;
            continue;
        }
        if (!g.code && s_cutover_code(rep))
            g.code = s_cutover_code(rep);
        double p = render_num(rep, "write_pause_ms", 0);
        g.longest_pause_ms = p > g.longest_pause_ms ? p : g.longest_pause_ms;
    }
    return g;
}

/* cutover (back: rollback) M1 M2 ... [--dry-run] [--json]: one write
 * pause for all (cutgroup.h); follows every member's report until all
 * ended. */
static int s_cutover_group(const char *sock, char **names, int n, bool back, bool dry, bool json)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_CUTOVER));
    cJSON_AddItemToObject(req, "names", cJSON_CreateStringArray((const char *const *)names, n));
    cJSON_AddBoolToObject(req, "dry_run", dry);
    cJSON_AddBoolToObject(req, "rollback", back);
    int asked = s_ask_cutover(sock, req);
    if (asked)
        return asked;
    cJSON *st;
    s_group_t g;
    for (;;) {
        if (!(st = s_migration_status(sock, NULL, json)))
            return CLI_EXIT_UNREACHABLE;
        g = s_group_look(st, names, n);
        if (g.all_final)
            break;
        cJSON_Delete(st);
        usleep(100 * 1000);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "group", cJSON_CreateStringArray((const char *const *)names, n));
    cJSON_AddStringToObject(out, "state", g.code ? "aborted" : "done");
    cJSON_AddBoolToObject(out, "dry_run", dry);
    cJSON_AddBoolToObject(out, "rollback", back);
    cJSON_AddNumberToObject(out, "write_pause_ms", g.longest_pause_ms);
    cJSON *members = cJSON_AddArrayToObject(out, "members");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(st, "migrations"))
    {
        for (int i = 0; i < n; i++) {
            if (strcmp(render_str(m, "name", ""), names[i]) != 0)
                continue;
            cJSON *rep = cJSON_Duplicate(cJSON_GetObjectItem(m, "cutover"), true);
            cJSON_AddStringToObject(rep, "migration", names[i]);
            cJSON_AddItemToArray(members, rep);
            if (!json) {
                printf("migration %s:\n", names[i]);
                render_cutover(rep, render_num(st, "generated_at_ms", 0), stdout);
            }
        }
    }
    if (json) {
        char *text = cJSON_Print(out);
        puts(text);
        cJSON_free(text);
    } else {
        printf("%s group of %d migrations%s: %s; the longest write pause %.1f ms\n",
               back ? "rollback" : "cutover", n, dry ? " (rehearsal)" : "",
               !g.code  ? "done"
               : back ? "aborted, every member back on green"
                      : "aborted, every member back on blue",
               g.longest_pause_ms);
    }
    cJSON_Delete(out);
    cJSON_Delete(st);
    return g.code;
}

int ctlmigrate_cutover(const char *sock, int argc, char **argv)
{
    bool json = false, dry = false, unknown = false;
    char **names = calloc((size_t)argc, sizeof *names);
    int n = 0;
    for (int i = 1; names && i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (argv[i][0] != '-')
            names[n++] = argv[i];
        else
            unknown = true;
    }
    bool rollback = strcmp(argv[0], "rollback") == 0;
    if (!names || unknown || n < 1) {
        free(names);
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (n > 1) {
        int code = s_cutover_group(sock, names, n, rollback, dry, json);
        free(names);
        return code;
    }
    const char *name = names[0];
    free(names);
    cJSON *req = s_request(CTLCMD_CUTOVER, name);
    cJSON_AddBoolToObject(req, "dry_run", dry);
    cJSON_AddBoolToObject(req, "rollback", rollback);
    int asked = s_ask_cutover(sock, req);
    if (asked)
        return asked;
    static const char *const finals[] = { "done", "aborted", NULL };
    return s_follow(sock, name, "cutover", finals, 100, json, render_cutover, s_cutover_code);
}

int ctlmigrate_cleanup(const char *sock, int argc, char **argv)
{
    bool json;
    const char *name;
    if (!cli_operand(argc, argv, &name, &json, NULL))
        return CLI_EXIT_USAGE;
    cJSON *req = s_request(CTLCMD_MIGRATE_CLEANUP, name);
    int code = s_ask(sock, req);
    if (code != 0)
        return code;
    for (int waited_ms = 0;; waited_ms += 200) {
        cJSON *resp = s_migration_status(sock, name, json);
        if (!resp)
            return CLI_EXIT_UNREACHABLE;
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "migrations"), 0);
        const char *state = render_str(m, "state", "?");
        bool done = strcmp(state, "done") == 0;
        if (done || waited_ms >= 120000) {
            if (json) {
                char *out = cJSON_Print(m);
                puts(out);
                cJSON_free(out);
            } else if (done) {
                printf("migration %s: cleaned up: %s\n", name, render_str(m, "doing", ""));
            } else {
                fprintf(stderr, "godwitctl: migration %s: still %s after two minutes: %s\n", name,
                        state, render_str(m, "last_error", "no error reported"));
            }
            cJSON_Delete(resp);
            return done ? 0 : CLI_EXIT_DEGRADED;
        }
        cJSON_Delete(resp);
        usleep(200 * 1000);
    }
}

int ctlmigrate_migrate(const char *sock, int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    bool json = false, watch = false, no_wait = false;
    const char *arg = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--no-wait") == 0)
            no_wait = true;
        else if (strcmp(argv[i], "--watch") == 0)
            watch = true;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (!arg && argv[i][0] != '-')
            arg = argv[i];
        else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (strcmp(sub, "verify") == 0 && arg)
        return s_cmd_verify(sock, arg, json, !no_wait);
    cJSON *req = cJSON_CreateObject();
    if (strcmp(sub, "start") == 0 && arg) {
        char *text = cli_read_plan(arg);
        if (!text) {
            cJSON_Delete(req);
            return CLI_EXIT_USAGE;
        }
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_START));
        cJSON_AddStringToObject(req, "file", arg);
        cJSON_AddStringToObject(req, "text", text);
        if (name)
            cJSON_AddStringToObject(req, "name", name);
        free(text);
    } else if (strcmp(sub, "status") == 0) {
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_STATUS));
        if (arg)
            cJSON_AddStringToObject(req, "name", arg);
    } else if (strcmp(sub, "audit") == 0 && arg && !watch) {
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_AUDIT));
        cJSON_AddStringToObject(req, "name", arg);
    } else if ((strcmp(sub, "abort") == 0 || strcmp(sub, "pause") == 0 ||
                strcmp(sub, "resume") == 0) && arg) {
        ctlcmd_t cmd = strcmp(sub, "abort") == 0   ? CTLCMD_MIGRATE_ABORT
                       : strcmp(sub, "pause") == 0 ? CTLCMD_MIGRATE_PAUSE
                                                   : CTLCMD_MIGRATE_RESUME;
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(cmd));
        cJSON_AddStringToObject(req, "name", arg);
    } else {
        cJSON_Delete(req);
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int code = 0;
    for (;;) {
        cJSON *resp = client_call(sock, req, 120);
        if (!resp) {
            code = CLI_EXIT_UNREACHABLE;
        } else {
            bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
            code = ok ? 0
                   : cJSON_IsTrue(cJSON_GetObjectItem(resp, "invalid_plan")) ? CLI_EXIT_USAGE
                                                                             : CLI_EXIT_DEGRADED;
            if (!json)
                render_humanize(resp);
            if (json) {
                char *out = watch ? cJSON_PrintUnformatted(resp) : cJSON_Print(resp);
                puts(out);
                cJSON_free(out);
            } else if (!ok) {
                if (cJSON_IsArray(cJSON_GetObjectItem(resp, "migrations")))
                    render_plan_check(resp, stderr);
                fprintf(stderr, "godwitctl: %s\n", render_str(resp, "error", "failed"));
            } else if (strcmp(sub, "status") == 0) {
                if (watch && isatty(STDOUT_FILENO))
                    fputs("\033[H\033[2J", stdout);
                render_migrations(resp, stdout);
            } else if (strcmp(sub, "audit") == 0) {
                render_audit(resp, stdout);
            } else if (strcmp(sub, "start") == 0) {
                const cJSON *s;
                cJSON_ArrayForEach(s, cJSON_GetObjectItem(resp, "started"))
                printf("migration %s started; follow it with: godwitctl migrate status %s\n",
                       s->valuestring, s->valuestring);
            } else {
                printf("migration %s: %s; godwitctl migrate status %s shows when it is done\n",
                       arg, strcmp(sub, "abort") == 0 ? "aborting" : strcmp(sub, "pause") == 0
                                                                        ? "pausing"
                                                                        : "resuming",
                       arg);
            }
            fflush(stdout);
            cJSON_Delete(resp);
        }
        if (!watch || strcmp(sub, "status") != 0)
            break;
        sleep(1);
    }
    cJSON_Delete(req);
    return code;
}

int ctlmigrate_plan(const char *sock, int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!path) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *text = cli_read_plan(path);
    if (!text)
        return CLI_EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PLAN_CHECK));
    cJSON_AddStringToObject(req, "file", path);
    cJSON_AddStringToObject(req, "text", text);
    free(text);
    /* Each migration's checks have their own deadline at the coordinator,
     * which always answers; a fleet of hundreds takes a while. */
    cJSON *resp = client_request(sock, req, 600);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    int code;
    if (!json)
        render_humanize(resp);
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        bool invalid = cJSON_IsTrue(cJSON_GetObjectItem(resp, "invalid_plan"));
        code = invalid ? CLI_EXIT_USAGE : CLI_EXIT_DEGRADED;
        if (!json)
            fprintf(stderr, "godwitctl: %s\n", render_str(resp, "error", "plan check failed"));
    } else {
        code = render_num(resp, "blocking", 0) > 0 ? CLI_EXIT_DEGRADED : 0;
        if (!json)
            render_plan_check(resp, stdout);
    }
    if (json) {
        char *out = cJSON_Print(resp);
        puts(out);
        cJSON_free(out);
    }
    cJSON_Delete(resp);
    return code;
}
