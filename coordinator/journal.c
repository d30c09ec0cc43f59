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
#include <sys/stat.h>
#include <time.h>
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
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1);"
    "CREATE TABLE IF NOT EXISTS migration ("
    "  name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS event ("
    "  id INTEGER PRIMARY KEY, migration TEXT NOT NULL, at INTEGER NOT NULL,"
    "  state TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);";

/* The journal holds the plans (hosts, users, passfile paths): only the
 * coordinator's user may read it. The file is created 0600 before SQLite
 * opens it (SQLite would create it 0644 under the usual umask) and SQLite
 * gives its -wal, -shm and -journal files the main file's mode; one left
 * readable by others (an older version, a copy) is tightened, with a
 * warning. */
static bool s_private_files(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "journal %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    if ((st.st_mode & 077) && fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "journal %s: mode %04o lets others read it, and chmod 600 failed: %s",
                 path, (unsigned)(st.st_mode & 07777), strerror(errno));
        close(fd);
        return false;
    }
    if (st.st_mode & 077)
        log_warn("journal %s: was mode %04o (readable by others); now 0600", path,
                 (unsigned)(st.st_mode & 07777));
    close(fd);
    static const char *const suffixes[] = { "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char *side = xasprintf("%s%s", path, suffixes[i]);
        if (stat(side, &st) == 0 && (st.st_mode & 077)) {
            if (chmod(side, 0600) != 0) {
                snprintf(err, errlen, "journal %s: mode %04o lets others read it, and chmod 600 "
                         "failed: %s", side, (unsigned)(st.st_mode & 07777), strerror(errno));
                free(side);
                return false;
            }
            log_warn("journal %s: was mode %04o (readable by others); now 0600", side,
                     (unsigned)(st.st_mode & 07777));
        }
        free(side);
    }
    return true;
}

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

    if (!s_private_files(path, err, errlen)) {
        close(fd);
        return NULL;
    }
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

void journal_checkpoint(journal_t *j)
{
    int rc = sqlite3_wal_checkpoint_v2(j->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK)
        log_warn("journal %s: checkpoint: %s", j->path, sqlite3_errmsg(j->db));
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

/* ---- migrations ---- */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one statement with text parameters; SQLITE_DONE or the error code. */
static int s_exec(journal_t *j, const char *sql, int n, const char *const *params,
                  const int64_t *ints, int nints)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT);
    for (int i = 0; i < nints; i++)
        sqlite3_bind_int64(st, n + i + 1, ints[i]);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

static bool s_begin(journal_t *j) { return sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK; }
static bool s_commit(journal_t *j) { return sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK; }
static void s_rollback(journal_t *j) { sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL); }

static int s_log(journal_t *j, const char *name, const char *state, const char *kind,
                 const char *detail)
{
    const char *p[4] = { name, state, kind, detail ? detail : "" };
    int64_t at = s_now_ms();
    return s_exec(j, "INSERT INTO event (migration, state, kind, detail, at) VALUES (?, ?, ?, ?, ?)",
                  4, p, &at, 1);
}

bool journal_migration_create(journal_t *j, const char *name, const char *spec_json,
                              const char *state, char *err, size_t errlen)
{
    return journal_migration_create_detail(j, name, spec_json, state, "", err, errlen);
}

bool journal_migration_create_detail(journal_t *j, const char *name, const char *spec_json,
                                     const char *state, const char *detail, char *err,
                                     size_t errlen)
{
    if (!s_begin(j)) {
        snprintf(err, errlen, "journal %s: %s", j->path, sqlite3_errmsg(j->db));
        return false;
    }
    sqlite3_stmt *st = NULL;
    bool exists = false;
    if (sqlite3_prepare_v2(j->db, "SELECT state FROM migration WHERE name = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            exists = strcmp((const char *)sqlite3_column_text(st, 0), "aborted") != 0;
    }
    sqlite3_finalize(st);
    if (exists) {
        s_rollback(j);
        snprintf(err, errlen, "migration %s already exists; abort it first to start it again", name);
        return false;
    }
    const char *p[3] = { name, spec_json, state };
    int64_t now[2] = { s_now_ms(), s_now_ms() };
    int rc = s_exec(j,
                    "INSERT OR REPLACE INTO migration (name, spec, state, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    3, p, now, 2);
    if (rc == SQLITE_DONE)
        rc = s_log(j, name, state, "created", detail);
    if (rc != SQLITE_DONE || !s_commit(j)) {
        snprintf(err, errlen, "journal %s: %s", j->path, sqlite3_errmsg(j->db));
        s_rollback(j);
        return false;
    }
    return true;
}

bool journal_migration_move(journal_t *j, const char *name, const char *from, const char *to,
                            const char *detail, char *err, size_t errlen)
{
    if (!s_begin(j)) {
        snprintf(err, errlen, "journal %s: %s", j->path, sqlite3_errmsg(j->db));
        return false;
    }
    const char *p[3] = { to, name, from };
    int64_t now = s_now_ms();
    /* s_exec binds the texts first (?1-?3), then updated_at (?4). */
    int rc = s_exec(j, "UPDATE migration SET state = ?1, updated_at = ?4"
                       " WHERE name = ?2 AND state = ?3", 3, p, &now, 1);
    bool moved = rc == SQLITE_DONE && sqlite3_changes(j->db) == 1;
    if (moved)
        rc = s_log(j, name, to, "moved", detail);
    if (!moved || rc != SQLITE_DONE || !s_commit(j)) {
        snprintf(err, errlen, "journal %s: migration %s: %s", j->path, name,
                 moved ? sqlite3_errmsg(j->db) : "not in the expected state");
        s_rollback(j);
        return false;
    }
    return true;
}

bool journal_batch_begin(journal_t *j)
{
    if (s_begin(j))
        return true;
    log_warn("journal %s: cannot begin a batch: %s", j->path, sqlite3_errmsg(j->db));
    return false;
}

bool journal_batch_commit(journal_t *j)
{
    if (s_commit(j))
        return true;
    log_warn("journal %s: cannot commit a batch: %s", j->path, sqlite3_errmsg(j->db));
    s_rollback(j);
    return false;
}

bool journal_event(journal_t *j, const char *name, const char *state, const char *kind,
                   const char *detail)
{
    int rc = s_log(j, name, state, kind, detail);
    if (rc != SQLITE_DONE)
        log_warn("journal %s: event for %s: %s", j->path, name, sqlite3_errmsg(j->db));
    return rc == SQLITE_DONE;
}

bool journal_migrations(journal_t *j, journal_migration_cb cb, void *arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db, "SELECT name, spec, state FROM migration ORDER BY created_at",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    while (sqlite3_step(st) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), arg);
    sqlite3_finalize(st);
    return true;
}

bool journal_meta_get(journal_t *j, const char *key, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        *value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return found;
}

bool journal_meta_set(journal_t *j, const char *key, int64_t value)
{
    const char *p[1] = { key };
    int rc = s_exec(j, "INSERT INTO meta (key, value) VALUES (?, ?)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    1, p, &value, 1);
    if (rc != SQLITE_DONE)
        log_warn("journal %s: setting %s: %s", j->path, key, sqlite3_errmsg(j->db));
    return rc == SQLITE_DONE;
}

bool journal_events(journal_t *j, const char *name, journal_event_cb cb, void *arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "SELECT e.at, e.state, e.kind, e.detail FROM event e"
                           " JOIN migration m ON m.name = e.migration"
                           " WHERE e.migration = ? AND e.at >= m.created_at ORDER BY e.id",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((uint64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3), arg);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
}

char *journal_last_event(journal_t *j, const char *name, const char *kind)
{
    sqlite3_stmt *st = NULL;
    char *detail = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "SELECT e.detail FROM event e JOIN migration m ON m.name = e.migration"
                           " WHERE e.migration = ? AND e.kind = ? AND e.at >= m.created_at"
                           " ORDER BY e.id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        detail = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return detail;
}
