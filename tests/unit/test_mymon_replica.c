/*
 * test_mymon_replica: one row of SHOW ALL SLAVES STATUS or SHOW SLAVE
 * 'name' STATUS read into a MariadbReplica (mymon_replica, shared by mymon
 * and myrepl's ReplicaStatus), from results built by hand in the shape
 * MariaDB 10.11 answers: running is "Yes" only ("Connecting" is not), a
 * NULL Seconds_Behind_Master is -1, the SQL thread's error wins over the
 * IO thread's, and SHOW SLAVE 'name' STATUS, which has no Connection_name
 * column, takes the name given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mymon.h"

static char *s_names[] = { "Connection_name", "Master_Host", "Master_Port", "Slave_IO_Running",
                           "Slave_SQL_Running", "Seconds_Behind_Master", "Last_IO_Error",
                           "Last_SQL_Error", "Gtid_IO_Pos" };
#define S_NCOLS (sizeof s_names / sizeof *s_names)

static myconn_result_t s_result(char ***rows, size_t n_rows, size_t first_col)
{
    return (myconn_result_t){ .ok = true, .n_rows = n_rows, .n_cols = S_NCOLS - first_col,
                              .names = s_names + first_col, .rows = rows };
}

static void test_all_slaves_row(void **state)
{
    char *row0[] = { "godwit_shop", "10.0.0.5", "3306", "Yes", "Yes", "7", "", "", "0-1-42" };
    char *row1[] = { "other", "10.0.0.6", "99999", "Connecting", "Yes", NULL,
                     "error connecting to master", "", "" };
    char **rows[] = { row0, row1 };
    myconn_result_t r = s_result(rows, 2, 0);

    Godwit__MariadbReplica *rep = mymon_replica(&r, 0, NULL);
    assert_string_equal(rep->connection_name, "godwit_shop");
    assert_string_equal(rep->master_host, "10.0.0.5");
    assert_int_equal(rep->master_port, 3306);
    assert_true(rep->io_running);
    assert_true(rep->sql_running);
    assert_int_equal(rep->seconds_behind, 7);
    assert_string_equal(rep->last_error, "");
    assert_string_equal(rep->gtid_io_pos, "0-1-42");
    godwit__mariadb_replica__free_unpacked(rep, NULL);

    /* Connecting is not running; NULL behind is -1; a port out of range 0;
     * the row's own name wins over the one given. */
    rep = mymon_replica(&r, 1, "ignored");
    assert_string_equal(rep->connection_name, "other");
    assert_int_equal(rep->master_port, 0);
    assert_false(rep->io_running);
    assert_true(rep->sql_running);
    assert_int_equal(rep->seconds_behind, -1);
    assert_string_equal(rep->last_error, "error connecting to master");
    godwit__mariadb_replica__free_unpacked(rep, NULL);
}

/* SHOW SLAVE 'name' STATUS: no Connection_name column. */
static void test_one_slave_row(void **state)
{
    char *row0[] = { "127.0.0.1", "1", "No", "No", NULL, "io failed", "sql failed", "" };
    char **rows[] = { row0 };
    myconn_result_t r = s_result(rows, 1, 1);

    Godwit__MariadbReplica *rep = mymon_replica(&r, 0, "godwit_t");
    assert_string_equal(rep->connection_name, "godwit_t");
    assert_string_equal(rep->master_host, "127.0.0.1");
    assert_int_equal(rep->master_port, 1);
    assert_false(rep->io_running);
    assert_false(rep->sql_running);
    assert_int_equal(rep->seconds_behind, -1);
    assert_string_equal(rep->last_error, "sql failed");
    assert_string_equal(rep->gtid_io_pos, "");
    godwit__mariadb_replica__free_unpacked(rep, NULL);

    /* No name given either: empty, as the default connection's. */
    rep = mymon_replica(&r, 0, NULL);
    assert_string_equal(rep->connection_name, "");
    godwit__mariadb_replica__free_unpacked(rep, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_slaves_row),
        cmocka_unit_test(test_one_slave_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
