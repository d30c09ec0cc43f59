/*
 * test_mytext: the MariaDB engine's pure text work (agent/mariadb/mytext.c):
 * identifiers quoted with backticks, version strings as numbers, the
 * server's booleans, SHOW GRANTS lines read for REPLICATION SLAVE and a
 * database's SELECT (wildcard database patterns, column and table grants,
 * roles, quoted names holding the keywords), and a line's grantee. The
 * lines are the ones MariaDB 10.11 prints (checked on a real server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mytext.h"

static void s_expect(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_ident(void **state)
{
    s_expect(mytext_ident("shop"), "`shop`");
    s_expect(mytext_ident("we`ird"), "`we``ird`");
    s_expect(mytext_ident("``"), "``````");
    s_expect(mytext_ident(""), "``");
    s_expect(mytext_ident("a b.c'd\"e"), "`a b.c'd\"e`");
    s_expect(mytext_qname("shop", "or`ders"), "`shop`.`or``ders`");
}

static void test_version(void **state)
{
    assert_int_equal(mytext_version_num("10.11.19-MariaDB-0+deb12u1-log"), 101119);
    assert_int_equal(mytext_version_num("10.6.4-MariaDB"), 100604);
    assert_int_equal(mytext_version_num("11.4.2-MariaDB"), 110402);
    assert_int_equal(mytext_version_num("8.0.36"), 80036);
    assert_int_equal(mytext_version_num("10.11"), 101100);
    assert_int_equal(mytext_version_num("5.7.44-log"), 50744);
    assert_int_equal(mytext_version_num(""), 0);
    assert_int_equal(mytext_version_num(NULL), 0);
    assert_int_equal(mytext_version_num("MariaDB 10.11"), 0);
    assert_int_equal(mytext_version_num("10"), 0);
    assert_int_equal(mytext_version_num("10."), 0);
    assert_int_equal(mytext_version_num("10.100.1"), 0);
    assert_int_equal(mytext_version_num("10.11.100"), 0);
    assert_int_equal(mytext_version_num("999999.1.1"), 0);
    /* major.minor compares as num / 100 */
    assert_true(mytext_version_num("10.6.20") / 100 < mytext_version_num("10.11.2") / 100);
    assert_true(mytext_version_num("10.11.2") / 100 == mytext_version_num("10.11.19") / 100);
}

static void test_bool(void **state)
{
    assert_true(mytext_bool("1"));
    assert_true(mytext_bool("ON"));
    assert_true(mytext_bool("on"));
    assert_true(mytext_bool("Yes"));
    assert_true(mytext_bool("TRUE"));
    assert_false(mytext_bool("0"));
    assert_false(mytext_bool("OFF"));
    assert_false(mytext_bool(""));
    assert_false(mytext_bool(NULL));
    assert_false(mytext_bool("10"));
}

static void test_db_match(void **state)
{
    assert_true(mytext_db_match("shop", "shop"));
    assert_false(mytext_db_match("shop", "Shop"));
    assert_false(mytext_db_match("shop", "shops"));
    assert_true(mytext_db_match("sh_p", "shop"));
    assert_true(mytext_db_match("sh_p", "ship"));
    assert_false(mytext_db_match("sh_p", "shp"));
    assert_true(mytext_db_match("sh\\_p", "sh_p"));
    assert_false(mytext_db_match("sh\\_p", "shop"));
    assert_true(mytext_db_match("%", "anything"));
    assert_true(mytext_db_match("%", ""));
    assert_true(mytext_db_match("app_%", "app_1"));
    assert_true(mytext_db_match("app%", "app"));
    assert_false(mytext_db_match("app%x", "app"));
    assert_true(mytext_db_match("a%b%c", "axxbyyc"));
    assert_false(mytext_db_match("a%b%c", "axxbyy"));
    assert_true(mytext_db_match("100\\%", "100%"));
    assert_false(mytext_db_match("100\\%", "1000"));
}

/* The grants of one user, as lines, for database db. */
static mytext_grants_t s_grants(const char *const *lines, const char *db)
{
    mytext_grants_t g = { 0 };
    for (size_t i = 0; lines[i]; i++)
        mytext_grants_line(lines[i], db, &g);
    return g;
}

static void test_grants(void **state)
{
    /* A replication user as MariaDB 10.11 prints it: no SELECT. */
    const char *const repl[] = {
        "GRANT REPLICATION SLAVE ON *.* TO `repl`@`127.0.0.1` IDENTIFIED BY PASSWORD "
        "'*3FEBEA1F0E8D83C7578AACB7997039DA49CD121E'",
        NULL,
    };
    mytext_grants_t g = s_grants(repl, "shop");
    assert_true(g.replication_slave);
    assert_false(g.select_db);
    assert_false(g.reload);

    /* Both, from a database grant; a role line and a column grant add
     * nothing; another database's grant neither. */
    const char *const both[] = {
        "GRANT `rr` TO `r2`@`%`",
        "GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `r2`@`%` IDENTIFIED BY PASSWORD "
        "'*7B9EBEED26AA52ED10C0F549FA863F13C39E0209'",
        "GRANT SELECT ON `shop`.* TO `r2`@`%`",
        "GRANT SELECT (`id`) ON `shop`.`a` TO `r2`@`%`",
        NULL,
    };
    g = s_grants(both, "shop");
    assert_true(g.replication_slave);
    assert_true(g.select_db);
    assert_true(g.reload);
    assert_false(g.show_view || g.trigger || g.event || g.proc_select);

    /* What the copy needs for views, triggers, events and routines. */
    const char *const objects[] = {
        "GRANT USAGE ON *.* TO `r`@`%`",
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO `r`@`%`",
        "GRANT SELECT ON `mysql`.`proc` TO `r`@`%`",
        NULL,
    };
    g = s_grants(objects, "shop");
    assert_true(g.select_db && g.show_view && g.trigger && g.event && g.proc_select);
    g = s_grants(objects, "other");
    assert_false(g.select_db || g.show_view || g.trigger || g.event);
    assert_true(g.proc_select);
    const char *const mysql_db[] = { "GRANT SELECT ON `mysql`.* TO `r`@`%`", NULL };
    g = s_grants(mysql_db, "shop");
    assert_true(g.proc_select);
    assert_false(g.select_db);
    const char *const other_table[] = { "GRANT SELECT ON `mysql`.`user` TO `r`@`%`", NULL };
    g = s_grants(other_table, "shop");
    assert_false(g.proc_select);
    g = s_grants(both, "other");
    assert_true(g.replication_slave);
    assert_false(g.select_db);

    /* Column and table privileges are not the database's. */
    const char *const narrow[] = {
        "GRANT USAGE ON *.* TO `u`@`%`",
        "GRANT SELECT (`id`), INSERT ON `shop`.* TO `u`@`%`",
        "GRANT SELECT ON `shop`.`orders` TO `u`@`%`",
        "GRANT REPLICATION SLAVE ADMIN ON *.* TO `u`@`%`",
        "GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `u`@`%`",
        "GRANT PROXY ON ''@'%' TO 'u'@'%' WITH GRANT OPTION",
        NULL,
    };
    g = s_grants(narrow, "shop");
    assert_false(g.replication_slave);
    assert_false(g.reload);
    assert_false(g.select_db);

    /* ALL PRIVILEGES on *.* is both; on the database, SELECT only. */
    const char *const root[] = {
        "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        NULL,
    };
    g = s_grants(root, "shop");
    assert_true(g.replication_slave && g.select_db && g.reload);
    assert_true(g.show_view && g.trigger && g.event && g.proc_select);
    const char *const owner[] = { "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`", NULL };
    g = s_grants(owner, "shop");
    assert_false(g.replication_slave);
    assert_true(g.select_db);

    /* Global SELECT (a default role's line included); database patterns. */
    const char *const global[] = { "GRANT SELECT ON *.* TO `rr`", NULL };
    g = s_grants(global, "anything");
    assert_true(g.select_db);
    const char *const pattern[] = { "GRANT SELECT, INSERT ON `sh_p`.* TO `r2`@`%`", NULL };
    assert_true(s_grants(pattern, "shop").select_db);
    assert_false(s_grants(pattern, "shoop").select_db);
    const char *const escaped[] = { "GRANT SELECT ON `sh\\_p`.* TO `r2`@`%`", NULL };
    assert_false(s_grants(escaped, "shop").select_db);
    assert_true(s_grants(escaped, "sh_p").select_db);

    /* Names holding the keywords, backticks and blanks. */
    const char *const odd[] = { "GRANT SELECT ON `a TO b`.* TO `x ON y`@`%`",
                                "GRANT SELECT ON `we``ird`.* TO `u`@`%`", NULL };
    assert_true(s_grants(odd, "a TO b").select_db);
    assert_true(s_grants(odd, "we`ird").select_db);
    assert_false(s_grants(odd, "a").select_db);

    /* MySQL 8's shape: dynamic privileges without blanks; lower case. */
    const char *const mysql8[] = {
        "GRANT SELECT,REPLICATION SLAVE ON *.* TO `repl`@`%`",
        "GRANT BACKUP_ADMIN,BINLOG_ADMIN ON *.* TO `repl`@`%`",
        NULL,
    };
    g = s_grants(mysql8, "shop");
    assert_true(g.replication_slave && g.select_db);
    const char *const lower[] = { "grant replication slave on *.* to repl@'%'", NULL };
    assert_true(s_grants(lower, "shop").replication_slave);

    /* Not grants. */
    const char *const junk[] = { "", "GRANT", "GRANT SELECT", "GRANT SELECT ON *.*",
                                 "SET DEFAULT ROLE `rr` FOR `u`@`%`", "REVOKE SELECT ON *.* FROM u",
                                 "GRANT SELECT ON `unterminated.* TO u", NULL };
    g = s_grants(junk, "shop");
    assert_false(g.replication_slave || g.select_db);
    mytext_grants_line(NULL, "shop", &g);
    assert_false(g.replication_slave || g.select_db);
}

static void test_grantee(void **state)
{
    s_expect(mytext_grants_grantee("GRANT REPLICATION SLAVE ON *.* TO `repl`@`127.0.0.1` "
                                   "IDENTIFIED BY PASSWORD '*3F'"),
             "`repl`@`127.0.0.1`");
    s_expect(mytext_grants_grantee("GRANT `rr` TO `r2`@`%`"), "`r2`@`%`");
    s_expect(mytext_grants_grantee("GRANT SELECT ON *.* TO `a b`@`%` WITH GRANT OPTION"),
             "`a b`@`%`");
    s_expect(mytext_grants_grantee("GRANT SELECT ON *.* TO `rr`"), "`rr`");
    assert_null(mytext_grants_grantee("GRANT SELECT ON *.*"));
    assert_null(mytext_grants_grantee("SET DEFAULT ROLE x"));
    assert_null(mytext_grants_grantee(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ident),   cmocka_unit_test(test_version),
        cmocka_unit_test(test_bool),    cmocka_unit_test(test_db_match),
        cmocka_unit_test(test_grants),  cmocka_unit_test(test_grantee),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
