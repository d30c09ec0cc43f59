/*
 * godwit-coordinator: parses arguments and the config file, then runs the
 * coordinator's loop until a signal or a fatal condition stops it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "coord.h"
#include "log.h"
#include "svc.h"

static void s_usage(FILE *f)
{
    fprintf(f, "usage: godwit-coordinator --config FILE [--check]\n"
               "  --config FILE  coordinator YAML file (see deploy/coordinator.example.yaml)\n"
               "  --check        validate the config file and exit\n"
               "  --version      print the version and exit\n");
}

/* svc_on_reload's loader: the config's log level. */
static bool s_load_level(const char *path, int *level, char *err, size_t errlen)
{
    coord_config_t cfg;
    if (!coord_config_load(path, &cfg, err, errlen))
        return false;
    *level = cfg.log_level;
    coord_config_free(&cfg);
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
        case 'V': printf("godwit-coordinator %s\n", GODWIT_VERSION); return 0;
        default: s_usage(stderr); return COORD_EXIT_CONFIG;
        }
    }
    if (!path || optind != argc) {
        s_usage(stderr);
        return COORD_EXIT_CONFIG;
    }
    log_init("coordinator", LOG_INFO);
    coord_config_t cfg;
    char err[1024];
    if (!coord_config_load(path, &cfg, err, sizeof err)) {
        log_error("%s", err);
        return COORD_EXIT_CONFIG;
    }
    log_set_level((log_level_t)cfg.log_level);
    if (check) {
        printf("%s: ok\n", path);
        coord_config_free(&cfg);
        return 0;
    }
    log_set_format((log_format_t)cfg.log_format, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* One descriptor per agent connection: take what the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = COORD_EXIT_ERROR;
    coord_t *c = coord_new(&loop, &cfg);
    svc_t *svc = svc_new(&loop);
    svc_on_reload(svc, path, s_load_level);
    if (c) {
        svc_ready(svc, "coordinator running");
        uv_run(&loop, UV_RUN_DEFAULT);
        svc_stopping(svc, "stopping");
        code = coord_destroy(&c);
    }
    svc_destroy(&svc);
    uv_run(&loop, UV_RUN_DEFAULT); /* finish closing what a failed start opened */
    if (uv_loop_close(&loop) != 0)
        log_error("loop closed with handles still open");
    coord_config_free(&cfg);
    return code;
}
