/*
 * test_journal: coordinator/journal.c, the coordinator's durable state in
 * SQLite.
 *
 * Covers: the epoch taken anew by every start and kept across a reopen;
 * the single-coordinator lock (a second open refused naming the pid that
 * holds it, and free again once closed); the journal and its side files
 * private (0600; one left readable by others tightened); a migration
 * created once (a second create refused while it is not aborted; an aborted
 * one replaced) and listed with its spec and state, oldest first; a move
 * only from the state it is in (a stale move refused, nothing changed); an
 * event's detail read back as the latest of its kind since the migration
 * was created (and not one of an earlier migration of that name); and an
 * unusable path refused with the path in the error.
 *
 * Files: every test gets its own folder (tmpdir.h), removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "log.h"
#include "tmpdir.h"
#include "xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

static journal_t *s_open(const char *dir)
{
    char *path = xasprintf("%s/journal.db", dir);
    char err[512] = "";
    journal_t *j = journal_open(path, err, sizeof err);
    if (!j)
        fail_msg("journal_open %s: %s", path, err);
    free(path);
    return j;
}

typedef struct {
    int n;
    char names[8][32];
    char specs[8][64];
    char states[8][32];
} listing_t;

static void s_list_cb(const char *name, const char *spec_json, const char *state, void *arg)
{
    listing_t *l = arg;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        snprintf(l->specs[l->n], sizeof l->specs[0], "%s", spec_json);
        snprintf(l->states[l->n], sizeof l->states[0], "%s", state);
    }
    l->n++;
}

static listing_t s_list(journal_t *j)
{
    listing_t l = { 0 };
    assert_true(journal_migrations(j, s_list_cb, &l));
    return l;
}

/* A pause longer than the journal's clock step (ms), so that two records
 * have different times. */
static void s_tick(void)
{
    struct timespec ts = { 0, 3 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

/* ---- tests ------------------------------------------------------------ */

static void test_epoch_grows_and_survives_a_reopen(void **state)
{
    const char *dir = *state;
    char err[256] = "";
    journal_t *j = s_open(dir);
    assert_int_equal(journal_next_epoch(j, err, sizeof err), 1);
    assert_int_equal(journal_next_epoch(j, err, sizeof err), 2);
    journal_close(&j);
    assert_null(j);
    j = s_open(dir);
    assert_int_equal(journal_next_epoch(j, err, sizeof err), 3);
    journal_close(&j);
    journal_close(&j); /* NULL is fine */
}

static void test_one_coordinator_per_journal(void **state)
{
    const char *dir = *state;
    journal_t *j = s_open(dir);
    char *path = xasprintf("%s/journal.db", dir);
    char err[512] = "";
    assert_null(journal_open(path, err, sizeof err));
    char *pid = xasprintf("pid %ld", (long)getpid());
    assert_non_null(strstr(err, "in use by another coordinator"));
    assert_non_null(strstr(err, pid));
    assert_non_null(strstr(err, path));
    journal_close(&j);
    j = journal_open(path, err, sizeof err); /* the lock went with the close */
    assert_non_null(j);
    journal_close(&j);
    free(pid);
    free(path);
}

static void test_files_are_private(void **state)
{
    const char *dir = *state;
    char *path = xasprintf("%s/journal.db", dir);
    char *wal = xasprintf("%s-wal", path);
    journal_t *j = s_open(dir);
    char err[256] = "";
    assert_true(journal_migration_create(j, "m1", "{}", "planned", err, sizeof err));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    journal_close(&j);
    /* A copy or an older version left it readable: tightened on open. */
    assert_int_equal(chmod(path, 0644), 0);
    j = s_open(dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(s_list(j).n, 1); /* and nothing lost */
    journal_close(&j);
    free(wal);
    free(path);
}

static void test_migration_created_once(void **state)
{
    const char *dir = *state;
    journal_t *j = s_open(dir);
    char err[256] = "";
    assert_true(journal_migration_create(j, "orders", "{\"a\":1}", "planned", err, sizeof err));
    s_tick();
    assert_true(journal_migration_create(j, "users", "{\"b\":2}", "planned", err, sizeof err));
    assert_false(journal_migration_create(j, "orders", "{\"c\":3}", "planned", err, sizeof err));
    assert_non_null(strstr(err, "migration orders already exists"));
    listing_t l = s_list(j);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[0], "orders"); /* oldest first */
    assert_string_equal(l.specs[0], "{\"a\":1}");
    assert_string_equal(l.names[1], "users");
    /* Aborted, it may be started again: the new spec replaces the old. */
    assert_true(journal_migration_move(j, "orders", "planned", "aborted", "test", err,
                                       sizeof err));
    s_tick();
    assert_true(journal_migration_create(j, "orders", "{\"c\":3}", "planned", err, sizeof err));
    l = s_list(j);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[1], "orders"); /* created anew: now the newest */
    assert_string_equal(l.specs[1], "{\"c\":3}");
    assert_string_equal(l.states[1], "planned");
    journal_close(&j);
}

static void test_move_only_from_the_state_it_is_in(void **state)
{
    const char *dir = *state;
    journal_t *j = s_open(dir);
    char err[256] = "";
    assert_true(journal_migration_create(j, "orders", "{}", "planned", err, sizeof err));
    assert_true(journal_migration_move(j, "orders", "planned", "copying", "start", err,
                                       sizeof err));
    /* A second coordinator's view, or a retry of an old decision. */
    assert_false(journal_migration_move(j, "orders", "planned", "aborted", "stale", err,
                                        sizeof err));
    assert_non_null(strstr(err, "not in the expected state"));
    assert_false(journal_migration_move(j, "nobody", "planned", "copying", "", err, sizeof err));
    listing_t l = s_list(j);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.states[0], "copying");
    char *detail = journal_last_event(j, "orders", "moved");
    assert_non_null(detail);
    assert_string_equal(detail, "start"); /* the refused move logged nothing */
    free(detail);
    journal_close(&j);
}

static void test_last_event_of_this_migration(void **state)
{
    const char *dir = *state;
    journal_t *j = s_open(dir);
    char err[256] = "";
    assert_true(journal_migration_create(j, "orders", "{}", "streaming", err, sizeof err));
    assert_null(journal_last_event(j, "orders", "cutover"));
    assert_true(journal_event(j, "orders", "streaming", "cutover", "{\"step\":\"paused\"}"));
    assert_true(journal_event(j, "orders", "streaming", "cutover", "{\"step\":\"fenced\"}"));
    assert_true(journal_event(j, "orders", "streaming", "intent", "other kind"));
    char *d = journal_last_event(j, "orders", "cutover");
    assert_string_equal(d, "{\"step\":\"fenced\"}");
    free(d);
    assert_null(journal_last_event(j, "users", "cutover"));
    /* Started again after an abort: the earlier run's events are history. */
    assert_true(journal_migration_move(j, "orders", "streaming", "aborted", "", err, sizeof err));
    s_tick();
    assert_true(journal_migration_create(j, "orders", "{}", "planned", err, sizeof err));
    assert_null(journal_last_event(j, "orders", "cutover"));
    journal_close(&j);
    /* Reopened, the events are still there. */
    j = s_open(dir);
    d = journal_last_event(j, "orders", "created");
    assert_non_null(d);
    free(d);
    journal_close(&j);
}

static void test_unusable_path_refused(void **state)
{
    const char *dir = *state;
    char *path = xasprintf("%s/no-such-folder/journal.db", dir);
    char err[512] = "";
    assert_null(journal_open(path, err, sizeof err));
    assert_non_null(strstr(err, "no-such-folder"));
    free(path);
}

int main(void)
{
    log_init("test_journal", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_epoch_grows_and_survives_a_reopen, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_one_coordinator_per_journal, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_files_are_private, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_migration_created_once, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_move_only_from_the_state_it_is_in, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_last_event_of_this_migration, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_unusable_path_refused, tmpdir_setup,
                                        tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
