/*
 * test_my_engine: the MariaDB engine behind engine.h (agent/mariadb/
 * my_engine.c) without a server: engine_open picks it for a mariadb
 * section, with its capability and its disk path; a server that refuses
 * is one db.unreachable event naming the server and a report with
 * reachable false and the connector's reason; a command other than the
 * preflight is refused with its name, and an invalid preflight as such;
 * the cutover's commands that MariaDB has no part of refused before they
 * run (a FreezeSource or Promote with the final check, MyFollow naming a
 * peer the config lacks); closing leaves nothing on the loop (the fence's
 * lease timer included). Against a real server the engine
 * runs in tests/integration/test_mariadb.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "engine.h"

typedef struct {
    int events;
    char code[64], object[128], message[512];
} s_events_t;

static void s_on_event(Godwit__Severity severity, const char *code, const char *message,
                       const char *object, void *arg)
{
    s_events_t *e = arg;
    e->events++;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->object, sizeof e->object, "%s", object ? object : "");
    snprintf(e->message, sizeof e->message, "%s", message ? message : "");
}

static void s_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    fail_msg("no step should have started");
}

/* A loopback port where nothing listens (bound, not listening: refused). */
static int s_refusing_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static void test_engine(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int fd;
    int port = s_refusing_port(&fd);
    agent_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = "/etc/godwit/agent.yaml";
    cfg.has_mariadb = true;
    cfg.mariadb.host = "127.0.0.1";
    cfg.mariadb.port = port;
    cfg.mariadb.user = "godwit";
    cfg.mariadb.data_directory = "/var/lib/mysql";
    cfg.mariadb.connect_timeout_ms = 2000;
    cfg.mariadb.statement_timeout_ms = 2000;
    char state_dir[] = "/tmp/godwit-test-my-engine-XXXXXX";
    assert_non_null(mkdtemp(state_dir));
    cfg.state_dir = state_dir;

    s_events_t ev = { 0 };
    engine_t *e = NULL;
    assert_true(engine_open(&loop, &cfg, "blue", s_on_event, &ev, &e));
    assert_non_null(e);
    assert_string_equal(e->ops->name, "mariadb");
    assert_string_equal(e->capabilities[0], "mariadb");
    assert_null(e->capabilities[1]);
    assert_string_equal(e->disk_path, "/var/lib/mysql");

    /* Before any answer: not read yet. */
    Godwit__Report r = GODWIT__REPORT__INIT;
    engine_report(e, &r);
    assert_non_null(r.mariadb);
    assert_false(r.mariadb->reachable);
    assert_string_equal(r.mariadb->error, "not read yet");
    assert_null(r.postgres);
    godwit__mariadb__free_unpacked(r.mariadb, NULL);

    /* The first reading (started by open) is refused: one event. */
    for (int i = 0; i < 200 && ev.events == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(ev.events, 1);
    assert_string_equal(ev.code, "db.unreachable");
    char object[64];
    snprintf(object, sizeof object, "127.0.0.1:%d", port);
    assert_string_equal(ev.object, object);
    assert_non_null(strstr(ev.message, "Can't connect"));
    engine_report(e, &r);
    assert_false(r.mariadb->reachable);
    assert_non_null(strstr(r.mariadb->error, "Can't connect"));
    assert_int_equal(r.mariadb->age_ms, 0);
    assert_null(r.mariadb->replica);
    godwit__mariadb__free_unpacked(r.mariadb, NULL);

    /* Still unreachable on the next tick: no second event. */
    engine_tick(e);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    usleep(20000);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(ev.events, 1);

    /* Another command: refused with its name, nothing started. */
    Godwit__ApplySchema as = GODWIT__APPLY_SCHEMA__INIT;
    Godwit__Command cmd = GODWIT__COMMAND__INIT;
    cmd.action_case = GODWIT__COMMAND__ACTION_APPLY_SCHEMA;
    cmd.apply_schema = &as;
    char *why = NULL;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_non_null(why);
    assert_non_null(strstr(why, "apply_schema: the MariaDB engine runs preflight and monitoring "
                                "in this version"));
    free(why);
    why = NULL;
    /* The physical path is PostgreSQL's. */
    Godwit__PreflightSource ps = GODWIT__PREFLIGHT_SOURCE__INIT;
    ps.database = "shop";
    ps.physical = true;
    cmd.action_case = GODWIT__COMMAND__ACTION_PREFLIGHT_SOURCE;
    cmd.preflight_source = &ps;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_non_null(strstr(why, "preflight_source: method physical is PostgreSQL's"));
    free(why);
    why = NULL;
    /* A preflight without its request: invalid. */
    cmd.action_case = GODWIT__COMMAND__ACTION_PREFLIGHT_TARGET;
    cmd.preflight_target = NULL;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_string_equal(why, "invalid request");
    free(why);
    assert_false(engine_copy_is(e, NULL, "shop", "godwit_shop"));

    /* The cutover: the final check is not MariaDB's; a follow's source is
     * a peer of the config. */
    Godwit__CheckRows check = GODWIT__CHECK_ROWS__INIT;
    Godwit__CheckRows *checks[] = { &check };
    Godwit__FreezeSource fz = GODWIT__FREEZE_SOURCE__INIT;
    char *roles[] = { "app" };
    fz.database = "shop";
    fz.mode = GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE;
    fz.n_app_roles = 1;
    fz.app_roles = roles;
    fz.n_check = 1;
    fz.check = checks;
    cmd.action_case = GODWIT__COMMAND__ACTION_FREEZE_SOURCE;
    cmd.freeze_source = &fz;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_non_null(strstr(why, "the final check is not available for MariaDB"));
    free(why);
    why = NULL;
    Godwit__Promote pr = GODWIT__PROMOTE__INIT;
    pr.database = "shop";
    pr.final_gtid = "0-1-5";
    pr.replica_connection = "godwit_shop";
    pr.n_check = 1;
    pr.check = checks;
    cmd.action_case = GODWIT__COMMAND__ACTION_PROMOTE;
    cmd.promote = &pr;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_non_null(strstr(why, "the final check is not available for MariaDB"));
    free(why);
    why = NULL;
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = "green";
    rc.dbname = "shop";
    Godwit__MyFollow mf = GODWIT__MY_FOLLOW__INIT;
    mf.database = "shop";
    mf.connection = "godwit_shop_rev";
    mf.source = &rc;
    mf.gtid = "0-2-9";
    cmd.action_case = GODWIT__COMMAND__ACTION_MY_FOLLOW;
    cmd.my_follow = &mf;
    assert_null(engine_start(e, &cmd, s_done, NULL, &why));
    assert_non_null(strstr(why, "green"));
    assert_non_null(strstr(why, "/etc/godwit/agent.yaml"));
    free(why);
    why = NULL;

    engine_close(&e);
    assert_null(e);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
    assert_int_equal(rmdir(state_dir), 0);
}

/* No engine section: no engine (a proxy agent). */
static void test_none(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    agent_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    engine_t *e = (engine_t *)&cfg; /* overwritten */
    assert_true(engine_open(&loop, &cfg, "px", s_on_event, NULL, &e));
    assert_null(e);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
