/*
 * godwit-agent: parses arguments and the config file, then runs the agent's
 * loop until a signal stops it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "log.h"
#include "svc.h"

static void s_usage(FILE *f)
{
    fprintf(f, "usage: godwit-agent --config FILE [--check]\n"
               "  --config FILE  agent YAML file (see deploy/agent.example.yaml)\n"
               "  --check        validate the config file and exit\n");
}

/* SIGHUP (the unit's ExecReload): the config file read again; its
 * log_level applies at once, any other change at the next start (the
 * running agent's connections, keys and steps are built from it). A file
 * that does not load leaves everything as it was. */
typedef struct {
    const char *path;
    char *text; /* the file as started */
} reload_t;

static void s_reload(void *arg)
{
    reload_t *r = arg;
    agent_config_t cfg;
    char err[1024];
    if (!agent_config_load(r->path, &cfg, err, sizeof err)) {
        log_error("config not reloaded, nothing changed: %s", err);
        return;
    }
    log_set_level((log_level_t)cfg.log_level);
    bool others = svc_file_differs(r->text, r->path, "log_level");
    log_info("reloaded %s: log_level applied%s", r->path,
             others ? "; its other changes apply at the next start (systemctl restart)" : "");
    agent_config_free(&cfg);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false;
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'k': check = true; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return AGENT_EXIT_CONFIG;
        }
    }
    if (!path || optind != argc) {
        s_usage(stderr);
        return AGENT_EXIT_CONFIG;
    }
    log_init("agent", LOG_INFO);
    agent_config_t cfg;
    char err[1024];
    if (!agent_config_load(path, &cfg, err, sizeof err)) {
        log_error("%s", err);
        return AGENT_EXIT_CONFIG;
    }
    log_set_level((log_level_t)cfg.log_level);
    if (check) {
        printf("%s: ok\n", path);
        agent_config_free(&cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = AGENT_EXIT_ERROR;
    agent_t *a = agent_new(&loop, &cfg);
    svc_t *svc = svc_new(&loop);
    reload_t reload = { path, svc_file_read(path) };
    svc_on_reload(svc, s_reload, &reload);
    if (a) {
        char status[300];
        snprintf(status, sizeof status, "agent %s (%s) running", cfg.name ? cfg.name : "",
                 agent_config_role_name(cfg.role));
        svc_ready(svc, status);
        uv_run(&loop, UV_RUN_DEFAULT);
        svc_stopping(svc, "stopping");
        code = agent_destroy(&a);
    }
    svc_destroy(&svc);
    free(reload.text);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_error("loop closed with handles still open");
    agent_config_free(&cfg);
    return code;
}
