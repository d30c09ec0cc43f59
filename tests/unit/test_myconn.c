/*
 * test_myconn: the MariaDB engine's connection (agent/mariadb/myconn.c)
 * where no server is needed: its parameters, reading a result's columns,
 * the one wording of a failure, the password file (its first line, and
 * the checks of a secret file), and on a real loop: a refused connection
 * (an error that says it, the next statement trying again), a listener
 * that never answers (the deadline ends the statement and drops the
 * suspended connection), destroying from inside the callback and with a
 * statement in flight (no callback after), and no handle left once the
 * loop has run (the loop closes). Against a real server it runs in the
 * integration tests (tests/integration/test_mariadb.py).
 *
 * Ports and files: each test takes a free loopback port from the kernel
 * (bind to port 0) and makes its own mkdtemp folder, removed at the end.
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
#include <sys/stat.h>

#include <cmocka.h>
#include <uv.h>

#include "keys.h"
#include "myconn.h"

/* ---- helpers ---------------------------------------------------------------- */

/* A TCP socket bound to a free loopback port (listening if listen_too);
 * its port in *port. The caller closes it. */
static int s_socket(bool listen_too, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listen_too)
        assert_int_equal(listen(fd, 4), 0);
    return fd;
}

typedef struct {
    int calls;
    bool ok, gone;
    unsigned errnum;
    char error[512];
    bool destroy_in_cb;
    myconn_t **conn;
} s_outcome_t;

static void s_on_result(myconn_t *c, const myconn_result_t *r, void *arg)
{
    s_outcome_t *o = arg;
    o->calls++;
    o->ok = r->ok;
    o->gone = r->gone;
    o->errnum = r->errnum;
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    if (o->destroy_in_cb)
        myconn_destroy(o->conn);
}

static myconn_params_t s_params(int port)
{
    return (myconn_params_t){ .host = "127.0.0.1", .port = port, .user = "godwit",
                              .connect_timeout_ms = 5000 };
}

/* Runs the loop dry and checks that nothing was left open. */
static void s_loop_done(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- without a loop ----------------------------------------------------------- */

static void test_params(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    myconn_params_t p = s_params(3306);
    myconn_t *c = myconn_new(&loop, "t", &p);
    assert_non_null(c);
    assert_false(myconn_busy(c));
    assert_null(myconn_escape_literal(c, "x")); /* not connected */
    myconn_destroy(&c);
    assert_null(c);
    myconn_destroy(&c); /* NULL is fine */

    p.user = NULL;
    assert_null(myconn_new(&loop, "t", &p));
    p = s_params(0);
    assert_null(myconn_new(&loop, "t", &p));
    p = s_params(70000);
    assert_null(myconn_new(&loop, "t", &p));
    p = s_params(3306);
    p.host = "";
    assert_null(myconn_new(&loop, "t", &p));
    p.socket = "/run/mysqld/mysqld.sock"; /* a socket needs no host or port */
    p.port = 0;
    c = myconn_new(&loop, "t", &p);
    assert_non_null(c);
    myconn_destroy(&c);
    p = s_params(3306);
    p.connect_timeout_ms = 0;
    assert_null(myconn_new(&loop, "t", &p));
    assert_null(myconn_new(&loop, "t", NULL));
    s_loop_done(&loop);
}

static void test_columns_and_message(void **state)
{
    char *names[] = { "version", "server_id", "gtid" };
    char *row0[] = { "10.11.19-MariaDB", "1", NULL };
    char *row1[] = { "8.0.36", "2", "0-1-8" };
    char **rows[] = { row0, row1 };
    myconn_result_t r = { .ok = true, .n_rows = 2, .n_cols = 3, .names = names, .rows = rows };
    assert_string_equal(myconn_col(&r, 0, "version"), "10.11.19-MariaDB");
    assert_string_equal(myconn_col(&r, 1, "server_id"), "2");
    assert_null(myconn_col(&r, 0, "gtid"));     /* SQL NULL */
    assert_string_equal(myconn_col(&r, 1, "gtid"), "0-1-8");
    assert_null(myconn_col(&r, 0, "missing"));  /* no such column */
    assert_null(myconn_col(&r, 2, "version"));  /* no such row */
    assert_null(myconn_col(NULL, 0, "version"));

    myconn_result_t e = { .ok = false, .errnum = 1146, .sqlstate = "42S02",
                          .error = "Table 'shop.x' doesn't exist" };
    char *m = myconn_result_message("reading the tables", &e);
    assert_string_equal(m, "reading the tables: Table 'shop.x' doesn't exist (1146, SQLSTATE "
                           "42S02)");
    free(m);
    myconn_result_t own = { .ok = false, .error = "timeout: no result after 5 ms" };
    m = myconn_result_message(NULL, &own);
    assert_string_equal(m, "timeout: no result after 5 ms");
    free(m);
}

/* ---- the password file --------------------------------------------------------- */

static void s_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_password_file(void **state)
{
    char dir[] = "/tmp/godwit-test-myconn-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], why[512];
    snprintf(path, sizeof path, "%s/pass", dir);
    char *pw = NULL;

    s_write(path, "s3cr et\nsecond line\n", 0600);
    assert_true(myconn_read_password(path, &pw, why, sizeof why));
    assert_string_equal(pw, "s3cr et");
    keys_wipe_free(pw);

    s_write(path, "crlf\r\n", 0400);
    assert_true(myconn_read_password(path, &pw, why, sizeof why));
    assert_string_equal(pw, "crlf");
    keys_wipe_free(pw);

    s_write(path, "no newline", 0600);
    assert_true(myconn_read_password(path, &pw, why, sizeof why));
    assert_string_equal(pw, "no newline");
    keys_wipe_free(pw);

    s_write(path, "", 0600);
    assert_true(myconn_read_password(path, &pw, why, sizeof why));
    assert_string_equal(pw, "");
    keys_wipe_free(pw);

    /* Readable by others: refused, saying how to fix it. */
    s_write(path, "s3cret\n", 0644);
    pw = NULL;
    assert_false(myconn_read_password(path, &pw, why, sizeof why));
    assert_null(pw);
    assert_non_null(strstr(why, "mode 0644 lets group or others read it; chmod 600"));

    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_false(myconn_read_password(missing, &pw, why, sizeof why));
    assert_non_null(strstr(why, "No such file or directory"));

    /* A symlink is not followed. */
    char link[300];
    snprintf(link, sizeof link, "%s/link", dir);
    s_write(path, "s3cret\n", 0600);
    assert_int_equal(symlink(path, link), 0);
    assert_false(myconn_read_password(link, &pw, why, sizeof why));
    unlink(link);
    unlink(path);
    rmdir(dir);
}

/* ---- on a loop, without a server ---------------------------------------------- */

/* Nothing listens: the statement fails with the connector's error, and the
 * next one tries again. */
static void test_refused(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int port;
    int fd = s_socket(false, &port); /* bound, not listening: refused */
    myconn_params_t p = s_params(port);
    myconn_t *c = myconn_new(&loop, "t", &p);
    s_outcome_t o = { 0 };
    assert_true(myconn_query(c, "SELECT 1", 5000, s_on_result, &o));
    assert_true(myconn_busy(c));
    assert_false(myconn_query(c, "SELECT 2", 5000, s_on_result, &o)); /* one at a time */
    assert_int_equal(o.calls, 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 1);
    assert_false(o.ok);
    assert_true(o.gone);
    assert_true(o.errnum >= 2000 && o.errnum < 3000);
    assert_non_null(strstr(o.error, "127.0.0.1"));
    assert_false(myconn_busy(c));

    assert_true(myconn_query(c, "SELECT 1", 5000, s_on_result, &o));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 2);
    assert_true(o.gone);

    /* The password file is read at each attempt: a missing one fails it. */
    p.password_file = "/nonexistent/godwit/pass";
    myconn_t *c2 = myconn_new(&loop, "t2", &p);
    assert_true(myconn_query(c2, "SELECT 1", 5000, s_on_result, &o));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 3);
    assert_true(o.gone);
    assert_int_equal(o.errnum, 0);
    assert_non_null(strstr(o.error, "/nonexistent/godwit/pass"));

    myconn_destroy(&c);
    myconn_destroy(&c2);
    close(fd);
    s_loop_done(&loop);
}

/* A listener that accepts and never says a word: the library waits for the
 * server's greeting, the deadline ends the statement and the suspended
 * connect is dropped; destroying from inside the callback is fine. */
static void test_deadline(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int port;
    int fd = s_socket(true, &port);
    myconn_params_t p = s_params(port);
    myconn_t *c = myconn_new(&loop, "t", &p);
    s_outcome_t o = { .destroy_in_cb = true, .conn = &c };
    assert_true(myconn_query(c, "SELECT 1", 200, s_on_result, &o));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 1);
    assert_false(o.ok);
    assert_true(o.gone);
    assert_int_equal(o.errnum, 0);
    assert_string_equal(o.error, "timeout: not connected after 200 ms");
    assert_null(c); /* destroyed in the callback */
    close(fd);
    s_loop_done(&loop);
}

/* Destroyed with a statement in flight (waiting for the greeting): no
 * callback, nothing left on the loop. */
static void test_destroy_in_flight(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int port;
    int fd = s_socket(true, &port);
    myconn_params_t p = s_params(port);
    myconn_t *c = myconn_new(&loop, "t", &p);
    s_outcome_t o = { 0 };
    assert_true(myconn_query(c, "SELECT 1", 5000, s_on_result, &o));
    /* A few turns: connecting, then waiting for the greeting. */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(myconn_busy(c));
    myconn_destroy(&c);
    assert_false(myconn_query(c, "SELECT 1", 5000, s_on_result, &o));
    s_loop_done(&loop);
    assert_int_equal(o.calls, 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_columns_and_message),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_destroy_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
