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
               "  --check        validate the config file and exit\n"
               "  --version      print the version and exit\n");
}

/* svc_on_reload's loader: the config's log level. */
static bool s_load_level(const char *path, int *level, char *err, size_t errlen)
{
    agent_config_t cfg;
    if (!agent_config_load(path, &cfg, err, errlen))
        return false;
    *level = cfg.log_level;
    agent_config_free(&cfg);
    return true;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false;
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'k': check = true; break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("godwit-agent %s\n", GODWIT_VERSION); return 0;
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
    log_set_format((log_format_t)cfg.log_format, cfg.name);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = AGENT_EXIT_ERROR;
    agent_t *a = agent_new(&loop, &cfg);
    svc_t *svc = svc_new(&loop);
    svc_on_reload(svc, path, s_load_level);
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
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_error("loop closed with handles still open");
    agent_config_free(&cfg);
    return code;
}
