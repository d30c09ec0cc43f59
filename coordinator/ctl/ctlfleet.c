/*
 * ctlfleet: see ctlfleet.h. Each command parses its arguments, asks the
 * coordinator (client.h) and prints the answer (render.h, or the JSON as
 * it came with --json).
 */
#include "ctlfleet.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "ctlcmd.h"
#include "fleetview.h"
#include "keys.h"
#include "render.h"
#include "units.h"
#include "xalloc.h"

int ctlfleet_keygen(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL, *roles_text = NULL;
    bool signing = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc)
            roles_text = argv[++i];
        else if (strcmp(argv[i], "--signing") == 0)
            signing = true;
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!dir || !name) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char err[512];
    unsigned roles = 0;
    if (roles_text && keys_roles_parse(roles_text, &roles, err, sizeof err) != 0) {
        fprintf(stderr, "godwitctl: keygen: --roles: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    /* --signing on an existing CURVE pair adds the signing pair only (a
     * coordinator from before epoch claims); anything else never overwrites. */
    char *key_path = xasprintf("%s/%s.key", dir, name);
    char *pub_path = xasprintf("%s/%s.pub", dir, name);
    bool have_pair = signing && !roles_text && access(key_path, F_OK) == 0 &&
                     access(pub_path, F_OK) == 0;
    free(key_path);
    free(pub_path);
    keys_pair_t kp;
    if (!have_pair) {
        if (keys_generate(dir, name, roles, &kp, err, sizeof err) != 0) {
            fprintf(stderr, "godwitctl: keygen: %s\n", err);
            return CLI_EXIT_DEGRADED;
        }
        printf("wrote %s/%s.key (secret, mode 0600) and %s/%s.pub\npublic key: %s\n", dir, name,
               dir, name, kp.public_z85);
        sodium_memzero(&kp, sizeof kp);
        if (roles) {
            char list[64];
            printf("roles: %s (an agent with this key may take only these)\n",
                   keys_roles_format(roles, list, sizeof list));
        } else if (!signing) {
            printf("no roles line: in a coordinator's allowed_keys this key is refused until its "
                   ".pub says which roles it may take (keygen --roles source,target,proxy)\n");
        }
    }
    if (signing) {
        unsigned char pk[KEYS_SIGN_PUBLIC_LEN];
        if (keys_sign_generate(dir, name, pk, err, sizeof err) != 0) {
            fprintf(stderr, "godwitctl: keygen: %s\n", err);
            return CLI_EXIT_DEGRADED;
        }
        printf("wrote %s/%s.sign.key (signing secret, mode 0600) and %s/%s.sign.pub (copy it to "
               "every agent host)\n", dir, name, dir, name);
    }
    return 0;
}

/* [--json] [--watch] [--interval DUR] from argv[first] on; false (usage
 * printed) on anything else. */
static bool s_watch_opts(int argc, char **argv, int first, bool *json, bool *watch,
                         int64_t *interval)
{
    *json = *watch = false;
    *interval = 1000;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = true;
        else if (strcmp(argv[i], "--watch") == 0)
            *watch = true;
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (!units_parse_duration_ms(argv[++i], interval) || *interval < 100) {
                fprintf(stderr, "godwitctl: --interval: expected a duration of at least 100ms, like 2s\n");
                return false;
            }
        } else {
            cli_usage(stderr);
            return false;
        }
    }
    return true;
}

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int ctlfleet_status(const char *sock, int argc, char **argv)
{
    bool json, watch;
    int64_t interval;
    if (!s_watch_opts(argc, argv, 1, &json, &watch, &interval))
        return CLI_EXIT_USAGE;
    bool tty = isatty(STDOUT_FILENO);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_STATUS));
    int code = 0;
    for (;;) {
        cJSON *st = client_call(sock, req, 5);
        if (!st) {
            code = CLI_EXIT_UNREACHABLE;
            if (!watch)
                break;
        } else if (!cJSON_IsTrue(cJSON_GetObjectItem(st, "ok"))) {
            render_humanize(st);
            fprintf(stderr, "godwitctl: %s\n", render_str(st, "error", "coordinator refused"));
            code = CLI_EXIT_DEGRADED;
        } else {
            if (!json)
                render_humanize(st);
            if (watch && tty && !json)
                fputs("\033[H\033[2J", stdout);
            if (json) {
                char *text = watch ? cJSON_PrintUnformatted(st) : cJSON_Print(st);
                puts(text);
                cJSON_free(text);
                /* Health for the exit code, without printing. */
                FILE *null = fopen("/dev/null", "w");
                code = render_status(st, null ? null : stderr) ? 0 : CLI_EXIT_DEGRADED;
                if (null)
                    fclose(null);
            } else {
                code = render_status(st, stdout) ? 0 : CLI_EXIT_DEGRADED;
            }
            fflush(stdout);
        }
        cJSON_Delete(st);
        if (!watch)
            break;
        s_sleep_ms(interval);
    }
    cJSON_Delete(req);
    return code;
}

/* One fleet summary from the coordinator's two answers, or NULL (exit code
 * in *code, the reason printed). */
static cJSON *s_fleet_once(const char *sock, int *code)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_STATUS));
    cJSON *st = client_call(sock, req, 5);
    cJSON_Delete(req);
    if (!st) {
        *code = CLI_EXIT_UNREACHABLE;
        return NULL;
    }
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_STATUS));
    cJSON *ms = client_call(sock, req, 30);
    cJSON_Delete(req);
    if (!ms || !cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")) ||
        !cJSON_IsTrue(cJSON_GetObjectItem(ms, "ok"))) {
        *code = ms ? CLI_EXIT_DEGRADED : CLI_EXIT_UNREACHABLE;
        if (ms) {
            render_humanize(ms);
            fprintf(stderr, "godwitctl: %s\n", render_str(ms, "error", "coordinator refused"));
        }
        cJSON_Delete(st);
        cJSON_Delete(ms);
        return NULL;
    }
    cJSON *fv = fleetview_build(st, ms);
    cJSON_Delete(st);
    cJSON_Delete(ms);
    /* Degraded while anything is an error. */
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(fv, "problems"), 0);
    *code = p && strcmp(render_str(p, "severity", ""), "error") == 0 ? CLI_EXIT_DEGRADED : 0;
    return fv;
}

/* Prints a fleet command's answer as godwitctl does without --json. */
static void s_fleet_print(const cJSON *resp, const char *verb)
{
    const cJSON *w = cJSON_GetObjectItem(resp, "wave");
    char what[32] = "fleet";
    if (cJSON_IsNumber(w))
        snprintf(what, sizeof what, "wave %d", (int)w->valuedouble);
    const cJSON *n;
    if (strcmp(verb, "pause") == 0) {
        printf("%s paused: %s\n", what, cJSON_IsNumber(w) ? "its migrations that can pause pause"
                                                          : "no copy starts and no wave opens "
                                                            "until godwitctl fleet resume");
    } else if (strcmp(verb, "resume") == 0) {
        printf("%s resumed: %s\n", what, cJSON_IsNumber(w) ? "its paused migrations resume"
                                                           : "copies may start, waves may open");
    } else {
        printf("%s aborting: every migration before its cutover drops what it made\n", what);
    }
    bool pause = strcmp(verb, "pause") == 0, resume = strcmp(verb, "resume") == 0;
    const char *key = pause ? "paused" : resume ? "resumed" : "aborting";
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(resp, key))
    printf("  migration %s: %s\n", n->valuestring,
           pause ? "pausing" : resume ? "resuming" : "aborting");
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(resp, "skipped"))
    printf("  migration %s: left as it is: %s\n", render_str(n, "name", "?"),
           render_str(n, "why", ""));
}

/* Prints resp as JSON or, with the human printer, as text; returns the
 * exit code. Deletes resp. */
static int s_fleet_answer(cJSON *resp, bool json, const char *verb)
{
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
    if (json) {
        char *text = cJSON_Print(resp);
        puts(text);
        cJSON_free(text);
    } else {
        render_humanize(resp);
        if (!ok) {
            fprintf(stderr, "godwitctl: %s\n", render_str(resp, "error", "failed"));
        } else if (strcmp(verb, "go") == 0) {
            const cJSON *w = cJSON_GetObjectItem(resp, "waves");
            const char *waiting = render_str(w, "waiting", "");
            printf("wave %d may open%s: %s\n", (int)render_num(resp, "wave", 0),
                   cJSON_IsTrue(cJSON_GetObjectItem(resp, "accept_failures"))
                       ? " (the failures so far accepted)" : "",
                   waiting[0] ? waiting : "it opens at the coordinator's next tick");
        } else {
            s_fleet_print(resp, verb);
        }
    }
    cJSON_Delete(resp);
    return ok ? 0 : CLI_EXIT_DEGRADED;
}

/* fleet pause|resume|abort [--wave N] [--json]; fleet go [--accept-failures] [--json] */
static int s_fleet_change(const char *sock, int argc, char **argv)
{
    const char *verb = argv[0];
    bool go = strcmp(verb, "go") == 0, json = false, accept = false;
    long wave = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (go && strcmp(argv[i], "--accept-failures") == 0) {
            accept = true;
        } else if (!go && strcmp(argv[i], "--wave") == 0 && i + 1 < argc &&
                   (wave = strtol(argv[i + 1], &end, 10)) >= 1 && *end == '\0') {
            i++;
        } else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    static const struct {
        const char *verb;
        ctlcmd_t cmd;
    } s_verbs[] = {
        { "pause", CTLCMD_FLEET_PAUSE },
        { "resume", CTLCMD_FLEET_RESUME },
        { "abort", CTLCMD_FLEET_ABORT },
        { "go", CTLCMD_FLEET_GO },
    };
    ctlcmd_t cmd = CTLCMD_FLEET_GO;
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        if (strcmp(s_verbs[i].verb, verb) == 0)
            cmd = s_verbs[i].cmd;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(cmd));
    if (wave)
        cJSON_AddNumberToObject(req, "wave", (double)wave);
    if (accept)
        cJSON_AddBoolToObject(req, "accept_failures", true);
    cJSON *resp = client_request(sock, req, 60);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    return s_fleet_answer(resp, json, verb);
}

int ctlfleet_fleet(const char *sock, int argc, char **argv)
{
    bool json, watch;
    int64_t interval;
    if (argc >= 2 && (strcmp(argv[1], "pause") == 0 || strcmp(argv[1], "resume") == 0 ||
                      strcmp(argv[1], "abort") == 0 || strcmp(argv[1], "go") == 0))
        return s_fleet_change(sock, argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!s_watch_opts(argc, argv, 2, &json, &watch, &interval))
        return CLI_EXIT_USAGE;
    bool tty = isatty(STDOUT_FILENO);
    int code = 0;
    for (;;) {
        cJSON *fv = s_fleet_once(sock, &code);
        if (fv && json) {
            char *text = watch ? cJSON_PrintUnformatted(fv) : cJSON_Print(fv);
            puts(text);
            cJSON_free(text);
        } else if (fv) {
            render_humanize(fv);
            if (watch && tty)
                fputs("\033[H\033[2J", stdout);
            render_fleet(fv, stdout);
        }
        fflush(stdout);
        cJSON_Delete(fv);
        if (!watch)
            break;
        s_sleep_ms(interval);
    }
    return code;
}

int ctlfleet_ping(const char *sock, int argc, char **argv)
{
    bool json;
    const char *agent;
    if (!cli_operand(argc, argv, &agent, &json, NULL))
        return CLI_EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PING));
    cJSON_AddStringToObject(req, "agent", agent);
    cJSON *resp = client_request(sock, req, 30);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
    if (!json)
        render_humanize(resp);
    if (json) {
        char *text = cJSON_Print(resp);
        puts(text);
        cJSON_free(text);
    } else if (ok) {
        printf("%s: round trip %.3f ms\n", agent, render_num(resp, "rtt_ms", 0));
    } else {
        fprintf(stderr, "godwitctl: ping %s: %s\n", agent, render_str(resp, "error", "failed"));
    }
    cJSON_Delete(resp);
    return ok ? 0 : CLI_EXIT_DEGRADED;
}

int ctlfleet_proxy(const char *sock, int argc, char **argv)
{
    bool json = false;
    const char *pos[4] = { NULL, NULL, NULL, NULL };
    int npos = 0;
    int64_t lease = 0, timeout = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((strcmp(argv[i], "--lease") == 0 || strcmp(argv[i], "--timeout") == 0) &&
                   i + 1 < argc) {
            int64_t *v = argv[i][2] == 'l' ? &lease : &timeout;
            if (!units_parse_duration_ms(argv[i + 1], v) || *v <= 0) {
                fprintf(stderr, "godwitctl: %s: expected a duration like 30s or 500ms\n", argv[i]);
                return CLI_EXIT_USAGE;
            }
            i++;
        } else if (argv[i][0] != '-' && npos < 4) {
            pos[npos++] = argv[i];
        } else {
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    bool is_switch = npos >= 3 && strcmp(pos[2], "switch") == 0;
    if (npos < 3 || npos != (is_switch ? 4 : 3)) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PROXY));
    cJSON_AddStringToObject(req, "agent", pos[0]);
    cJSON_AddStringToObject(req, "proxy", pos[1]);
    cJSON_AddStringToObject(req, "op", pos[2]);
    if (is_switch)
        cJSON_AddStringToObject(req, "backend", pos[3]);
    if (lease)
        cJSON_AddNumberToObject(req, "lease_ms", (double)lease);
    if (timeout)
        cJSON_AddNumberToObject(req, "pause_timeout_ms", (double)timeout);
    /* The coordinator bounds the wait (the pause timeout plus room). */
    cJSON *resp = client_request(sock, req, 30 + (int)((timeout ? timeout : 60000) / 1000) + 5);
    if (!resp)
        return CLI_EXIT_UNREACHABLE;
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
    if (!json)
        render_humanize(resp);
    const cJSON *st = cJSON_GetObjectItem(resp, "state");
    if (json) {
        char *text = cJSON_Print(resp);
        puts(text);
        cJSON_free(text);
    } else {
        if (!ok)
            fprintf(stderr, "godwitctl: proxy %s %s %s: %s\n", pos[0], pos[1], pos[2],
                    render_str(resp, "error", "failed"));
        if (cJSON_IsObject(st)) {
            const char *be = render_str(st, "backend", "");
            printf("%s/%s (%s): %s%s%s, %s", pos[0], pos[1], render_str(st, "kind", "?"),
                   be[0] ? be : "neither blue nor green", " at ", render_str(st, "address", "?"),
                   cJSON_IsTrue(cJSON_GetObjectItem(st, "paused")) ? "PAUSED" : "not paused");
            if (cJSON_IsTrue(cJSON_GetObjectItem(st, "paused")))
                printf(" (lease %.0f ms left)", render_num(st, "lease_left_ms", 0));
            if (cJSON_IsTrue(cJSON_GetObjectItem(st, "already")))
                printf("; already so, nothing done");
            if (render_num(st, "paused_ms", 0) > 0)
                printf("; traffic was held %.0f ms", render_num(st, "paused_ms", 0));
            if (render_num(st, "terminated", 0) > 0)
                printf("; terminated %.0f blocking transaction(s)",
                       render_num(st, "terminated", 0));
            printf("\n");
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(st, "steps"))
                printf("  %-40s %6.0f ms\n", render_str(s, "name", "?"), render_num(s, "ms", 0));
        }
    }
    cJSON_Delete(resp);
    return ok ? 0 : CLI_EXIT_DEGRADED;
}
