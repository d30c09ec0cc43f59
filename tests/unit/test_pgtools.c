/*
 * pgtools: the environment of a PostgreSQL client program the agent runs
 * (pg_dump, pg_restore): no PG* variable of the agent's but its TLS files',
 * and the connection's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "pgtools.h"

/* The value of name in env, or NULL. */
static const char *s_get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (char **e = env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static void test_connection_and_tls_files(void **state)
{
    (void)state;
    setenv("PGHOST", "elsewhere", 1);
    setenv("PGSERVICE", "svc", 1);
    setenv("PGSSLROOTCERT", "/etc/godwit/ca.crt", 1);
    setenv("PGSSLCRL", "", 1);
    unsetenv("PGSSLCERT");
    setenv("GODWIT_UNRELATED", "kept", 1);
    char **env = pgtools_env("db1", "5433", "repl", NULL, "verify-full", "shop", "");
    assert_string_equal(s_get(env, "PGHOST"), "db1");
    assert_string_equal(s_get(env, "PGPORT"), "5433");
    assert_string_equal(s_get(env, "PGUSER"), "repl");
    assert_string_equal(s_get(env, "PGSSLMODE"), "verify-full");
    assert_string_equal(s_get(env, "PGDATABASE"), "shop");
    assert_null(s_get(env, "PGPASSFILE"));
    assert_null(s_get(env, "PGCONNECT_TIMEOUT"));
    assert_null(s_get(env, "PGSERVICE"));
    assert_string_equal(s_get(env, "PGSSLROOTCERT"), "/etc/godwit/ca.crt");
    assert_null(s_get(env, "PGSSLCRL"));
    assert_null(s_get(env, "PGSSLCERT"));
    assert_string_equal(s_get(env, "GODWIT_UNRELATED"), "kept");
    proc_env_free(&env);
    assert_null(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_and_tls_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
