/*
 * journal: see journal.h. Owns the sqlite3 handle and the lock fd.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

struct journal {
    sqlite3 *db;
    int lock_fd;
    char *path;
};

static const char *const s_schema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('epoch', 0);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1);";

journal_t *journal_open(const char *path, char *err, size_t errlen)
{
    char *lock_path = xasprintf("%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "journal lock %s: %s", lock_path, strerror(errno));
        free(lock_path);
        return NULL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[n] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen,
                 "journal %s is in use by another coordinator (pid %s): refusing to run two "
                 "coordinators on one journal",
                 path, pid[0] ? pid : "unknown");
        close(fd);
        free(lock_path);
        return NULL;
    }
    free(lock_path);
    char pid[32];
    int pl = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)pl, 0) != pl)
        log_warn("journal %s: cannot record pid in lock file", path);

    journal_t *j = xcalloc(1, sizeof *j);
    j->lock_fd = fd;
    j->path = xstrdup(path);
    int rc = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(j->db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=2000;",
                          NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(j->db, s_schema, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "journal %s: %s", path, msg ? msg : sqlite3_errmsg(j->db));
        sqlite3_free(msg);
        journal_close(&j);
        return NULL;
    }
    return j;
}

uint64_t journal_next_epoch(journal_t *j, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(j->db,
                          "BEGIN IMMEDIATE; UPDATE meta SET value = value + 1 WHERE key = 'epoch'; COMMIT;",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "journal %s: next epoch: %s", j->path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    uint64_t epoch = 0;
    if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = 'epoch'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        epoch = (uint64_t)sqlite3_column_int64(st, 0);
    else
        snprintf(err, errlen, "journal %s: read epoch: %s", j->path, sqlite3_errmsg(j->db));
    sqlite3_finalize(st);
    return epoch;
}

void journal_close(journal_t **jp)
{
    journal_t *j = *jp;
    if (!j)
        return;
    *jp = NULL;
    if (j->db)
        sqlite3_close(j->db);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the flock */
    free(j->path);
    free(j);
}
