/*
 * standby: see standby.h. The markers, the argv of the config's commands,
 * the status query and the engine's record of the last BaseBackup. Owns
 * nothing past a call but what standby_progress_t holds.
 */
#include "standby.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "units.h"
#include "xalloc.h"

#define S_MARKER_MAX 256
#define S_ERR_MAX 8192

/* The first line of a marker's text, in place. */
static char *s_first_line(char *text)
{
    text[strcspn(text, "\r\n")] = '\0';
    return text;
}

char *standby_refusal(const step_local_t *local, const char *peer, const char *slot,
                      const char *what)
{
    const char *config = local->config_path ? local->config_path : "(unknown)";
    if (!local->standby)
        return xasprintf("this agent cannot %s: its config %s has no postgres.standby section "
                         "(docs/config.md); nothing was done", what, config);
    if (!slot || !step_godwit_name(slot))
        return xasprintf("slot \"%s\" is not a name godwit gives its objects: nothing was done",
                         slot ? slot : "");
    Godwit__ReplicationConn rc = GODWIT__REPLICATION_CONN__INIT;
    rc.peer = (char *)peer;
    rc.dbname = (char *)"postgres";
    char *why = NULL;
    if (!step_peer(local, &rc, &why))
        return why;
    return NULL;
}

standby_dir_t standby_dir_look(const char *dir, const char *slot, char **marked, char **why)
{
    *marked = NULL;
    *why = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return STANDBY_DIR_MISSING;
        *why = xasprintf("cannot read directory %s: %s", dir, strerror(errno));
        return STANDBY_DIR_OTHER;
    }
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    if (empty)
        return STANDBY_DIR_EMPTY;
    char *path = xasprintf("%s/%s", dir, STANDBY_MARKER);
    char *text = NULL;
    int rc = fsutil_read_small(path, S_MARKER_MAX, &text, NULL);
    free(path);
    if (rc != 0) {
        if (rc != -ENOENT)
            *why = xasprintf("cannot read %s/%s: %s", dir, STANDBY_MARKER, strerror(-rc));
        return STANDBY_DIR_OTHER;
    }
    s_first_line(text);
    if (strcmp(text, slot) == 0) {
        free(text);
        return STANDBY_DIR_OURS;
    }
    *marked = text;
    return STANDBY_DIR_OTHER;
}

/* Gives path the owner of dir (the server's user, when the agent is root);
 * failing that is harmless: the server only needs to read it. */
static void s_own_like(const char *path, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && geteuid() == 0 && chown(path, st.st_uid, st.st_gid) != 0) {
        /* read-only for the server then; nothing depends on it */
    }
}

bool standby_marker_keep(const char *dir)
{
    char *path = xasprintf("%s/%s", dir, STANDBY_MARKER);
    char *text = NULL;
    int rc = fsutil_read_small(path, S_MARKER_MAX, &text, NULL);
    free(path);
    if (rc != 0)
        return false;
    char *nl = strchr(text, '\n');
    bool keep = nl && strncmp(nl + 1, "keep", 4) == 0;
    free(text);
    return keep;
}

bool standby_signal_present(const char *dir)
{
    char *path = xasprintf("%s/standby.signal", dir);
    bool there = access(path, F_OK) == 0;
    free(path);
    return there;
}

int standby_marker_write(const char *dir, const char *slot, bool keep_dir)
{
    char *path = xasprintf("%s/%s", dir, STANDBY_MARKER);
    char *text = xasprintf("%s\n%s", slot, keep_dir ? "keep\n" : "");
    int rc = fsutil_write_atomic(path, text, strlen(text), 0600);
    if (rc == 0)
        s_own_like(path, dir);
    free(text);
    free(path);
    return rc;
}

static char *s_partial_path(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--; /* "/data/green/" -> "/data/green.godwit-partial" */
    return xasprintf("%.*s%s", (int)n, dir, STANDBY_PARTIAL_SUFFIX);
}

int standby_partial_write(const char *dir, const char *slot, bool keep_dir, int pgid)
{
    char *path = s_partial_path(dir);
    char *text = xasprintf("%s\n%s\npgid %d\n", slot, keep_dir ? "keep" : "-", pgid);
    int rc = fsutil_write_atomic(path, text, strlen(text), 0600);
    free(text);
    free(path);
    return rc;
}

int standby_partial_read(const char *dir, char **slot, bool *keep_dir, int *pgid)
{
    *slot = NULL;
    *keep_dir = false;
    if (pgid)
        *pgid = 0;
    char *path = s_partial_path(dir);
    char *text = NULL;
    int rc = fsutil_read_small(path, S_MARKER_MAX, &text, NULL);
    free(path);
    if (rc != 0)
        return rc;
    char *nl = strchr(text, '\n');
    *keep_dir = nl && strncmp(nl + 1, "keep", 4) == 0;
    const char *pg = strstr(text, "\npgid ");
    if (pgid && pg)
        *pgid = atoi(pg + 6);
    *slot = xstrdup(s_first_line(text));
    free(text);
    return 0;
}

int standby_partial_remove(const char *dir)
{
    char *path = s_partial_path(dir);
    int rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    free(path);
    return rc;
}

char **standby_argv(const agent_standby_t *sb, const char *const *words)
{
    size_t n = 0;
    while (words[n])
        n++;
    char **argv = xcalloc(sb->run_as.count + n + 1, sizeof *argv);
    size_t k = 0;
    for (size_t i = 0; i < sb->run_as.count; i++)
        argv[k++] = xstrdup(sb->run_as.items[i]);
    for (size_t i = 0; i < n; i++)
        argv[k++] = xstrdup(words[i]);
    argv[k] = NULL;
    return argv;
}

char **standby_cmd_argv(const agent_standby_t *sb, const cfg_strings_t *cmd)
{
    const char **words = xcalloc(cmd->count + 1, sizeof *words);
    for (size_t i = 0; i < cmd->count; i++)
        words[i] = cmd->items[i];
    char **argv = standby_argv(sb, words);
    free(words);
    return argv;
}

char **standby_rm_argv(const agent_standby_t *sb, const char *dir, bool keep_dir)
{
    if (keep_dir) {
        const char *words[] = { "find", dir, "-mindepth", "1", "-delete", NULL };
        return standby_argv(sb, words);
    }
    const char *words[] = { "rm", "-rf", "--", dir, NULL };
    return standby_argv(sb, words);
}

void standby_argv_free(char ***argvp)
{
    if (!argvp || !*argvp)
        return;
    for (char **a = *argvp; *a; a++)
        free(*a);
    free(*argvp);
    *argvp = NULL;
}

int standby_spawn(uv_loop_t *loop, char *const *argv, char *const *env,
                  void (*on_err)(const char *, size_t, void *), bool own_group,
                  proc_done_cb cb, void *arg, proc_t **pp)
{
    proc_opts_t o = {
        .file = argv[0],
        .argv = (const char *const *)argv,
        .env = (const char *const *)env,
        .err_max = S_ERR_MAX,
        .on_err = on_err,
        .own_group = own_group,
    };
    return proc_start(loop, &o, cb, arg, pp);
}

const char standby_status_sql[] =
    "SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,"
    " pg_catalog.pg_last_wal_receive_lsn()::pg_catalog.text AS receive_lsn,"
    " pg_catalog.pg_last_wal_replay_lsn()::pg_catalog.text AS replay_lsn,"
    " coalesce(w.status = 'streaming', false) AS streaming,"
    " coalesce(w.sender_host || ':' || w.sender_port::pg_catalog.text, '') AS sender,"
    " coalesce(w.slot_name, '') AS slot_name"
    " FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true";

/* An LSN column, or 0 (NULL: none received yet, or not a standby). */
static uint64_t s_lsn(const PGresult *res, const char *col)
{
    const char *v = pgconn_col(res, 0, col);
    uint64_t lsn = 0;
    if (!v || !lsn_parse(v, &lsn))
        return 0;
    return lsn;
}

void standby_status_fill(Godwit__StandbyStatusResult *r, const PGresult *res)
{
    if (!res || PQntuples(res) < 1)
        return;
    r->in_recovery = pgconn_col_bool(res, 0, "in_recovery");
    r->receive_lsn = s_lsn(res, "receive_lsn");
    r->replay_lsn = s_lsn(res, "replay_lsn");
    r->streaming = pgconn_col_bool(res, 0, "streaming");
    const char *sender = pgconn_col(res, 0, "sender");
    free(r->sender != protobuf_c_empty_string ? r->sender : NULL);
    r->sender = xstrdup(sender ? sender : "");
}

void standby_progress_clear(standby_progress_t *p)
{
    free(p->slot);
    free(p->error);
    *p = (standby_progress_t){ 0 };
}

void standby_progress_begin(standby_progress_t *p, const char *slot)
{
    standby_progress_clear(p);
    p->slot = xstrdup(slot);
    p->phase = "copying";
    p->started_at_ms = units_now_ms();
}

void standby_progress_phase(standby_progress_t *p, const char *phase, const char *error)
{
    p->phase = phase;
    free(p->error);
    p->error = error ? xstrdup(error) : NULL;
}

Godwit__Basebackup *standby_progress_report(const standby_progress_t *p)
{
    if (!p->slot)
        return NULL;
    Godwit__Basebackup *b = xmalloc(sizeof *b);
    godwit__basebackup__init(b);
    b->slot = xstrdup(p->slot);
    b->phase = xstrdup(p->phase ? p->phase : "");
    b->done_bytes = p->done_bytes;
    b->total_bytes = p->total_bytes;
    b->started_at_ms = p->started_at_ms;
    b->error = xstrdup(p->error ? p->error : "");
    return b;
}

/* Whether process pid is in process group pgid, and runs program (its
 * command line's first word ends in it). */
static bool s_in_group(int pid, int pgid, const char *program, bool *runs)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')'); /* the command may hold spaces */
    int pgrp = 0;
    char state;
    int ppid;
    if (!close || sscanf(close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || pgrp != pgid)
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    f = fopen(path, "r");
    if (f) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0'; /* the first word: argv[0] */
        const char *base = strrchr(buf, '/');
        if (strcmp(base ? base + 1 : buf, program) == 0)
            *runs = true;
    }
    return true;
}

int standby_orphans_kill(int pgid, const char *program)
{
    if (pgid <= 1)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int found = 0;
    bool runs = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0 && s_in_group((int)pid, pgid, program, &runs))
            found++;
    }
    closedir(d);
    if (!runs)
        return 0;
    if (kill(-pgid, SIGKILL) != 0 && errno != ESRCH)
        return -errno;
    log_warn("killed process group %d (%d processes, %s among them), left by an agent that was "
             "killed while it ran", pgid, found, program);
    return found;
}
