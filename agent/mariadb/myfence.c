/*
 * myfence: see myfence.h. A FreezeSource step is a list of stages run one
 * after the other on one session of the local server (sql_log_bin = 0);
 * the stages that do not apply pass straight to the next. Waits (the
 * drain, the killed sessions' going) are polls on the step's timer
 * (mystep_after), one short statement each: nothing waits on the loop.
 *
 * What it owns: the keeper (its lease timer, whose close callback frees
 * it; the lift it runs itself) and each step (its session, its copy of the
 * request, the record being built, the result).
 *
 * Order of a FREEZE (each stage's name is the TimedStep it adds):
 *   record: the fence record written (from the armed one if there is one,
 *     else from the accounts read now), the lease started or ended;
 *   "lock accounts": ALTER USER IF EXISTS a, b ACCOUNT LOCK for the
 *     accounts not locked before;
 *   "drain": until no session of those users has an open transaction,
 *     drain_timeout_ms at most (10 ms polls);
 *   "kill sessions": KILL CONNECTION for each session of theirs left, then
 *     until none is left (2 s at most, 1 ms polls; a session that shows up
 *     meanwhile is killed too), else FAILED;
 *   "read_only": SET GLOBAL read_only = ON;
 *   "final position": @@global.gtid_binlog_pos.
 * MariaDB 10.11, as checked on a server: ALTER USER IF EXISTS on a
 * missing account is a note (1974); KILL of a thread gone meanwhile fails
 * with 1094 (not counted); a killed session stays in PROCESSLIST
 * (COMMAND 'Killed') until its rollback is done.
 *
 * Never: done from inside myfence_run; the record removed before the
 * accounts are unlocked; a step started while the keeper lifts the fence
 * itself.
 */
#include "myfence.h"

#include <errno.h>
#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mystep.h"
#include "mytext.h"
#include "units.h"
#include "xalloc.h"

#define S_DEFAULT_DRAIN_MS 2000
#define S_DEFAULT_LEASE_MS 30000
#define S_DRAIN_POLL_MS 10
#define S_GONE_MS 2000          /* killed sessions must be gone within this */
#define S_GONE_POLL_MS 1
#define S_RETRY_MS 1000         /* a lease that expires while a step runs: tried again */

struct myfence {
    uv_loop_t *loop;
    myconn_params_t server;     /* strings borrowed from the agent's config */
    uint64_t timeout_ms;
    char *state_dir;
    char *path;                 /* the fence record */
    char *armed_path;           /* the armed record */
    myfence_event_cb event;
    void *event_arg;
    uv_timer_t lease;           /* its close callback frees the keeper */
    step_t *internal;           /* the lift the keeper runs itself (lease) */
    unsigned running;           /* the coordinator's FreezeSource steps running */
};

typedef struct fz fz_t;
typedef void (*s_stage_fn)(fz_t *s);

struct fz {
    mystep_t step;              /* first: the lifecycle (mystep.h) */
    myfence_t *f;
    bool internal;              /* the keeper's own lift */
    myconn_t *conn;
    const s_stage_fn *stages;   /* NULL-terminated */
    size_t stage;
    Godwit__FreezeSource__Mode mode;
    const char *label;          /* "freeze", "unfreeze", "keep", "prepare" */
    bool arm, permanent;
    uint64_t drain_ms, lease_ms;
    char *database;
    char **roles;
    size_t n_roles;

    myfence_rec_t rec;          /* the record: read, or being built */
    bool have_rec;
    bool from_armed;            /* FREEZE: the record came from the armed one */
    bool read_only;             /* @@global.read_only as read by this step */
    char *me;                   /* the agent's own user (CURRENT_USER()'s user part) */
    char *users_in;             /* the accounts' users as literals, for IN (...) */

    uint64_t *killed;           /* the sessions killed so far */
    size_t n_killed;
    uint64_t *to_kill;          /* the sessions the last list found */
    size_t n_to_kill, next_kill;

    uint64_t stage_us;          /* when the timed stage began (units_mono_us) */
    uint64_t wait_us;           /* when the current wait began */
    Godwit__FreezeSourceResult *result;
};

static void s_lease_expired(uv_timer_t *t);

/* The stages of a step that has nothing (more) to do. */
static const s_stage_fn s_none[] = { NULL };

/* ---- the step's ending ---------------------------------------------------- */

static void s_close(mystep_t *ms)
{
    fz_t *s = (fz_t *)ms;
    myconn_destroy(&s->conn);
    if (!s->internal && s->f->running > 0)
        s->f->running--;
}

static void s_release(mystep_t *ms)
{
    fz_t *s = (fz_t *)ms;
    if (s->result)
        godwit__freeze_source_result__free_unpacked(s->result, NULL);
    myfencefile_clear(&s->rec);
    for (size_t i = 0; i < s->n_roles; i++)
        free(s->roles[i]);
    free(s->roles);
    free(s->database);
    free(s->me);
    free(s->users_in);
    free(s->killed);
    free(s->to_kill);
    free(s);
}

static void s_log_error(mystep_t *ms, const char *error)
{
    fz_t *s = (fz_t *)ms;
    log_warn("mariadb fence (%s, database %s): %s", s->label, s->database, error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* ---- running ---------------------------------------------------------------- */

static void s_next(fz_t *s)
{
    if (s->step.disposed)
        return;
    s_stage_fn fn = s->stages[s->stage];
    if (!fn) {
        ProtobufCMessage *payload = &s->result->base;
        s->result = NULL;
        mystep_finish(&s->step, payload, NULL);
        return;
    }
    s->stage++;
    fn(s);
}

static void s_first(mystep_t *ms)
{
    fz_t *s = (fz_t *)ms;
    s->stage_us = units_mono_us();
    s_next(s);
}

static void s_query(fz_t *s, const char *what, const char *sql, myconn_cb cb)
{
    mystep_query(&s->step, s->conn, what, sql, s->f->timeout_ms, cb, s);
}

/* A TimedStep name with the time since the last one. */
static void s_timed(fz_t *s, const char *name)
{
    uint64_t now = units_mono_us();
    Godwit__TimedStep *t = xmalloc(sizeof *t);
    godwit__timed_step__init(t);
    t->name = xstrdup(name);
    t->ms = (double)(now - s->stage_us) / 1000.0;
    s->stage_us = now;
    Godwit__FreezeSourceResult *r = s->result;
    r->steps = xrealloc(r->steps, (r->n_steps + 1) * sizeof *r->steps);
    r->steps[r->n_steps++] = t;
}

/* The lease of a record of mode MYFENCE_FENCED or MYFENCE_ARMED runs from
 * now; a permanent fence has none. */
static void s_lease_apply(fz_t *s)
{
    myfence_t *f = s->f;
    if (s->rec.mode == MYFENCE_PERMANENT) {
        uv_timer_stop(&f->lease);
        s->rec.lease_deadline_ms = 0;
        return;
    }
    s->rec.lease_deadline_ms = (int64_t)(units_now_ms() + s->lease_ms);
    uv_timer_start(&f->lease, s_lease_expired, s->lease_ms, 0);
}

static bool s_ok(fz_t *s, const myconn_result_t *r)
{
    if (!r->ok) {
        mystep_fail_query(&s->step, NULL, r);
        return false;
    }
    return true;
}

static void s_on_ok(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (s_ok(s, r))
        s_next(s);
}

static char *s_quote(void *ctx, const char *str)
{
    fz_t *s = ctx;
    return myconn_escape_literal(s->conn, str);
}

/* The users of the record's accounts as an IN list; false after failing
 * the step (the session is connected by then: a statement ran). */
static bool s_users_in(fz_t *s)
{
    if (s->users_in)
        return true;
    s->users_in = myfencefile_users_in(&s->rec, s_quote, s);
    if (!s->users_in)
        mystep_failf(&s->step, "cannot quote the application's user names for SQL: the "
                               "connection is gone");
    return s->users_in != NULL;
}

/* ---- reading the server: settings and accounts ------------------------------- */

static void s_on_settings(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!s_ok(s, r))
        return;
    if (r->n_rows != 1) {
        mystep_failf(&s->step, "%s: no row returned", s->step.what);
        return;
    }
    s->read_only = mytext_bool(myconn_col(r, 0, "ro"));
    const char *me = myconn_col(r, 0, "me");
    const char *at = me ? strrchr(me, '@') : NULL;
    s->me = at ? xasprintf("%.*s", (int)(at - me), me) : xstrdup(me ? me : "");
    s_next(s);
}

/* Connects, and reads what a record needs of the server. */
static void s_settings(fz_t *s)
{
    s_query(s, "reading @@global.read_only",
            "SELECT @@global.read_only AS ro, CURRENT_USER() AS me", s_on_settings);
}

static void s_on_accounts(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!s_ok(s, r))
        return;
    for (size_t i = 0; i < s->n_roles; i++) {
        bool found = false;
        for (size_t k = 0; k < r->n_rows && !found; k++) {
            const char *u = myconn_col(r, k, "user");
            found = u && strcmp(u, s->roles[i]) == 0;
        }
        if (!found) {
            mystep_failf(&s->step, "no account of user \"%s\" on the source (mysql.global_priv; "
                                   "cutover.app_roles names the application's users): nothing "
                                   "was changed",
                         s->roles[i]);
            return;
        }
        if (strcmp(s->roles[i], s->me) == 0) {
            mystep_failf(&s->step, "user \"%s\" is the agent's own account: it cannot be fenced "
                                   "(give the application an account of its own): nothing was "
                                   "changed",
                         s->roles[i]);
            return;
        }
    }
    myfencefile_clear(&s->rec);
    s->rec.database = xstrdup(s->database);
    s->rec.read_only_before = s->read_only;
    for (size_t k = 0; k < r->n_rows; k++) {
        const char *u = myconn_col(r, k, "user");
        const char *h = myconn_col(r, k, "host");
        /* Exact bytes (the IN compares with the column's collation). */
        bool want = false;
        for (size_t i = 0; u && h && i < s->n_roles && !want; i++)
            want = strcmp(u, s->roles[i]) == 0;
        if (want)
            myfencefile_add(&s->rec, u, h, mytext_bool(myconn_col(r, k, "locked")));
    }
    s->have_rec = true;
    s_next(s);
}

/* The accounts of app_roles as they are now (not when the record is
 * there already). */
static void s_accounts(fz_t *s)
{
    if (s->have_rec) {
        s_next(s);
        return;
    }
    mytext_buf_t in = { 0 };
    for (size_t i = 0; i < s->n_roles; i++) {
        char *q = mystep_literal(&s->step, s->conn, s->roles[i]);
        if (!q) {
            free(in.s);
            return;
        }
        if (i > 0)
            mytext_add(&in, ", ");
        mytext_add(&in, q);
        free(q);
    }
    char *sql = xasprintf("SELECT User AS user, Host AS host,"
                          " IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') AS locked"
                          " FROM mysql.global_priv WHERE User IN (%s)"
                          " AND IFNULL(JSON_VALUE(Priv, '$.is_role'), 'false') <> 'true'"
                          " ORDER BY User, Host",
                          in.s);
    s_query(s, "reading the application's accounts (mysql.global_priv)", sql, s_on_accounts);
    free(sql);
    free(in.s);
}

/* ---- PREPARE ------------------------------------------------------------------ */

/* Answers fenced; goes on to arm only when asked and there is no fence. */
static void s_prep_begin(fz_t *s)
{
    myfence_t *f = s->f;
    s->result->fenced = myfence_held(f);
    if (!s->arm || s->result->fenced || s->n_roles == 0) {
        log_info("mariadb fence: prepare for database %s: %s", s->database,
                 s->result->fenced ? "our fence holds this server" : "no fence of ours here");
        s->stage = 0;
        s->stages = s_none;
    }
    s_next(s);
}

static void s_prep_arm(fz_t *s)
{
    s->rec.mode = MYFENCE_ARMED;
    s_lease_apply(s);
    int rc = myfencefile_write(s->f->armed_path, &s->rec);
    if (rc != 0) {
        uv_timer_stop(&s->f->lease);
        mystep_failf(&s->step, "cannot write %s: %s", s->f->armed_path, strerror(-rc));
        return;
    }
    s_timed(s, "arm");
    log_info("mariadb fence: armed for database %s (%zu accounts), lease %" PRIu64 " ms",
             s->database, s->rec.n_accounts, s->lease_ms);
    s_next(s);
}

static const s_stage_fn s_prepare_stages[] = { s_prep_begin, s_settings, s_accounts, s_prep_arm,
                                               NULL };

/* ---- FREEZE ----------------------------------------------------------------------- */

/* The record there is: ours already (already), or the armed one. */
static void s_fz_begin(fz_t *s)
{
    myfence_t *f = s->f;
    char why[512];
    if (myfencefile_read(f->path, &s->rec, why, sizeof why)) {
        s->have_rec = true;
        s->result->already = true;
    } else if (why[0]) {
        mystep_failf(&s->step, "%s: nothing was changed", why);
        return;
    } else if (myfencefile_read(f->armed_path, &s->rec, why, sizeof why)) {
        s->have_rec = true;
        s->from_armed = true;
    } else if (why[0]) {
        log_warn("mariadb fence: %s: the accounts are read again", why);
    }
    s_next(s);
}

/* The fence record, durable before any account is touched. */
static void s_fz_record(fz_t *s)
{
    myfence_t *f = s->f;
    if (!s->result->already || s->rec.mode != MYFENCE_PERMANENT)
        s->rec.mode = s->permanent ? MYFENCE_PERMANENT : MYFENCE_FENCED;
    if (!s->rec.database || !s->rec.database[0]) {
        free(s->rec.database);
        s->rec.database = xstrdup(s->database);
    }
    s_lease_apply(s);
    int rc = myfencefile_write(f->path, &s->rec);
    if (rc != 0) {
        mystep_failf(&s->step, "cannot write %s: %s", f->path, strerror(-rc));
        return;
    }
    if (s->from_armed && unlink(f->armed_path) != 0 && errno != ENOENT)
        log_warn("mariadb fence: cannot remove %s: %s", f->armed_path, strerror(errno));
    s_timed(s, "record");
    s_next(s);
}

/* ALTER USER ... ACCOUNT LOCK (or UNLOCK) of the record's accounts that
 * were not locked before the fence; with none, the next stage. */
static void s_alter_accounts(fz_t *s, bool lock)
{
    size_t n = 0;
    char *sql = myfencefile_alter_sql(&s->rec, lock, &n);
    if (!sql) {
        s_next(s);
        return;
    }
    s_query(s, sql, sql, s_on_ok);
    free(sql);
}

static void s_fz_lock(fz_t *s)
{
    s_alter_accounts(s, true);
}

static void s_fz_locked(fz_t *s)
{
    s_timed(s, "lock accounts");
    s->wait_us = units_mono_us();
    s_next(s);
}

static void s_fz_drain(fz_t *s);

/* A poll's next try: the caller stepped the index back to its stage. */
static void s_again(mystep_t *ms)
{
    s_next((fz_t *)ms);
}

static void s_on_drain(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!s_ok(s, r))
        return;
    const char *n_s = r->n_rows == 1 ? myconn_col(r, 0, "n") : NULL;
    unsigned long long n = n_s ? strtoull(n_s, NULL, 10) : 0;
    uint64_t waited_ms = (units_mono_us() - s->wait_us) / 1000;
    if (n == 0 || waited_ms >= s->drain_ms) {
        if (n > 0)
            log_info("mariadb fence: %llu sessions of the application still in a transaction "
                     "after %" PRIu64 " ms: killed",
                     n, waited_ms);
        s_timed(s, "drain");
        s_next(s);
        return;
    }
    s->stage--; /* the drain once more */
    mystep_after(&s->step, S_DRAIN_POLL_MS, s_again);
}

static void s_fz_drain(fz_t *s)
{
    if (!s_users_in(s))
        return;
    char *sql = xasprintf("SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t"
                          " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
                          " WHERE p.USER IN (%s) AND p.ID <> CONNECTION_ID()",
                          s->users_in);
    s_query(s, "waiting for the application's transactions to end", sql, s_on_drain);
    free(sql);
}

static bool s_was_killed(const fz_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_killed; i++)
        if (s->killed[i] == id)
            return true;
    return false;
}

static void s_kill_next(fz_t *s);

static void s_on_killed(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!r->ok && r->errnum != ER_NO_SUCH_THREAD) {
        mystep_fail_query(&s->step, NULL, r);
        return;
    }
    uint64_t id = s->to_kill[s->next_kill++];
    s->killed = xrealloc(s->killed, (s->n_killed + 1) * sizeof *s->killed);
    s->killed[s->n_killed++] = id;
    if (r->ok)
        s->result->terminated++;
    s_kill_next(s);
}

/* Kills the listed sessions one by one, then polls until none is left. */
static void s_kill_next(fz_t *s)
{
    if (s->step.disposed)
        return;
    if (s->next_kill >= s->n_to_kill) {
        s_next(s); /* the poll */
        return;
    }
    char *sql = xasprintf("KILL CONNECTION %" PRIu64, s->to_kill[s->next_kill]);
    s_query(s, sql, sql, s_on_killed);
    free(sql);
}

/* The sessions of the application's users: those not killed yet are
 * killed (first pass, or one that slipped in), the others are waited for. */
static void s_on_sessions(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!s_ok(s, r))
        return;
    free(s->to_kill);
    s->to_kill = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *s->to_kill);
    s->n_to_kill = 0;
    s->next_kill = 0;
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *id_s = myconn_col(r, i, "id");
        uint64_t id = id_s ? strtoull(id_s, NULL, 10) : 0;
        if (id && !s_was_killed(s, id))
            s->to_kill[s->n_to_kill++] = id;
    }
    if (r->n_rows == 0) {
        s_timed(s, "kill sessions");
        s_next(s);
        return;
    }
    uint64_t waited_ms = (units_mono_us() - s->wait_us) / 1000;
    if (s->n_to_kill == 0 && waited_ms >= S_GONE_MS) {
        mystep_failf(&s->step, "%zu sessions of the application's users (%s) are still there "
                               "%" PRIu64 " ms after KILL CONNECTION (a long rollback?): the "
                               "accounts stay locked, the server is not made read_only",
                     r->n_rows, s->users_in, waited_ms);
        return;
    }
    s->stage--; /* the list once more, after the kills or the poll's pause */
    if (s->n_to_kill > 0)
        s_kill_next(s);
    else
        mystep_after(&s->step, S_GONE_POLL_MS, s_again);
}

static void s_fz_sessions(fz_t *s)
{
    if (s->n_killed == 0 && s->n_to_kill == 0)
        s->wait_us = units_mono_us();
    char *sql = xasprintf("SELECT ID AS id FROM information_schema.PROCESSLIST"
                          " WHERE USER IN (%s) AND ID <> CONNECTION_ID()",
                          s->users_in);
    s_query(s, "listing the application's sessions", sql, s_on_sessions);
    free(sql);
}

static void s_fz_read_only(fz_t *s)
{
    s_query(s, "SET GLOBAL read_only = ON", "SET GLOBAL read_only = ON", s_on_ok);
}

static void s_fz_read_only_done(fz_t *s)
{
    s_timed(s, "read_only");
    s_next(s);
}

static void s_on_position(myconn_t *c, const myconn_result_t *r, void *arg)
{
    (void)c;
    fz_t *s = arg;
    if (!s_ok(s, r))
        return;
    if (r->n_rows != 1) {
        mystep_failf(&s->step, "%s: no row returned", s->step.what);
        return;
    }
    const char *pos = myconn_col(r, 0, "pos");
    s->result->final_gtid = xstrdup(pos ? pos : "");
    s_timed(s, "final position");
    if (s->rec.mode == MYFENCE_PERMANENT)
        log_info("mariadb fence: database %s: fenced for good (final position '%s', %u sessions "
                 "killed)",
                 s->database, s->result->final_gtid, s->result->terminated);
    else
        log_info("mariadb fence: database %s: fenced (final position '%s', %u sessions killed), "
                 "lease %" PRIu64 " ms",
                 s->database, s->result->final_gtid, s->result->terminated, s->lease_ms);
    s_next(s);
}

static void s_fz_position(fz_t *s)
{
    s_query(s, "reading @@global.gtid_binlog_pos",
            "SELECT @@global.gtid_binlog_pos AS pos", s_on_position);
}

/* The stages' order is the fence's (see the top); the drain and the
 * session list step the index back to themselves while they poll. */
static const s_stage_fn s_freeze_stages[] = {
    s_fz_begin, s_settings,  s_accounts,     s_fz_record,         s_fz_lock,     s_fz_locked,
    s_fz_drain, s_fz_sessions, s_fz_read_only, s_fz_read_only_done, s_fz_position, NULL,
};

/* ---- UNFREEZE ------------------------------------------------------------------------ */

static void s_uf_begin(fz_t *s)
{
    myfence_t *f = s->f;
    char why[512];
    if (myfencefile_read(f->path, &s->rec, why, sizeof why)) {
        s->have_rec = true;
        s_next(s);
        return;
    }
    if (why[0]) {
        mystep_failf(&s->step, "%s: the fence cannot be lifted from it; nothing was changed "
                               "(unlock the application's accounts and set read_only by hand, "
                               "then remove the file)",
                     why);
        return;
    }
    /* No fence; an armed record changed nothing. */
    if (unlink(f->armed_path) == 0)
        log_info("mariadb fence: disarmed (no fence came)");
    uv_timer_stop(&f->lease);
    s->result->already = true;
    s->stage = 0;
    s->stages = s_none;
    s_next(s);
}

static void s_uf_unlock(fz_t *s)
{
    s_alter_accounts(s, false);
}

static void s_uf_unlocked(fz_t *s)
{
    s_timed(s, "unlock accounts");
    const char *sql = s->rec.read_only_before ? "SET GLOBAL read_only = ON"
                                              : "SET GLOBAL read_only = OFF";
    s_query(s, sql, sql, s_on_ok);
}

static void s_uf_end(fz_t *s)
{
    s_timed(s, "read_only");
    if (!myfence_lifted(s->f, s->internal ? "the lease's end" : "unfreeze")) {
        mystep_failf(&s->step, "the accounts are unlocked but %s could not be removed (see the "
                               "agent's log)",
                     s->f->path);
        return;
    }
    s_next(s);
}

static const s_stage_fn s_unfreeze_stages[] = { s_uf_begin, s_uf_unlock, s_uf_unlocked, s_uf_end,
                                                NULL };

/* ---- KEEP ------------------------------------------------------------------------------ */

static void s_keep(fz_t *s)
{
    myfence_t *f = s->f;
    char why[512];
    if (!myfencefile_read(f->path, &s->rec, why, sizeof why)) {
        mystep_failf(&s->step, "%s", why[0] ? why : "no fence of ours holds this server: "
                                                    "nothing to keep");
        return;
    }
    uv_timer_stop(&f->lease);
    if (s->rec.mode == MYFENCE_PERMANENT) {
        s->result->already = true;
        s_next(s);
        return;
    }
    s->rec.mode = MYFENCE_PERMANENT;
    s->rec.lease_deadline_ms = 0;
    int rc = myfencefile_write(f->path, &s->rec);
    if (rc != 0) {
        /* The lease is off either way: the coordinator asked for good. */
        mystep_failf(&s->step, "cannot write %s: %s", f->path, strerror(-rc));
        return;
    }
    log_info("mariadb fence: database %s: the fence holds for good (lease ended)", s->database);
    s_timed(s, "keep");
    s_next(s);
}

static const s_stage_fn s_keep_stages[] = { s_keep, NULL };

/* ---- the keeper --------------------------------------------------------------------- */

static fz_t *s_step_new(myfence_t *f, const Godwit__FreezeSource *req, bool internal,
                        step_done_cb done, void *arg)
{
    myconn_params_t sp = f->server;
    sp.database = NULL;
    /* The fence is the source's alone: not an event of its binary log. */
    const char *init[] = { "SET SESSION sql_log_bin = 0", NULL };
    sp.init = init;
    myconn_t *conn = myconn_new(f->loop, "agent myfence", &sp);
    if (!conn)
        return NULL;
    fz_t *s = xcalloc(1, sizeof *s);
    mystep_init(&s->step, f->loop, &s_ops, done, arg);
    s->f = f;
    s->internal = internal;
    if (!internal)
        f->running++;
    s->conn = conn;
    s->mode = req->mode;
    s->arm = req->arm;
    s->permanent = req->permanent;
    s->drain_ms = req->drain_timeout_ms ? req->drain_timeout_ms : S_DEFAULT_DRAIN_MS;
    s->lease_ms = req->lease_ms ? req->lease_ms : S_DEFAULT_LEASE_MS;
    s->database = xstrdup(req->database ? req->database : "");
    s->roles = xcalloc(req->n_app_roles ? req->n_app_roles : 1, sizeof *s->roles);
    for (size_t i = 0; i < req->n_app_roles; i++)
        s->roles[s->n_roles++] = xstrdup(req->app_roles[i]);
    s->result = xmalloc(sizeof *s->result);
    godwit__freeze_source_result__init(s->result);
    switch (req->mode) {
    case GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE:
        s->label = "prepare";
        s->stages = s_prepare_stages;
        break;
    case GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE:
        s->label = "freeze";
        s->stages = s_freeze_stages;
        break;
    case GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE:
        s->label = "unfreeze";
        s->stages = s_unfreeze_stages;
        break;
    default:
        s->label = "keep";
        s->stages = s_keep_stages;
        break;
    }
    return s;
}

step_t *myfence_run(myfence_t *f, const Godwit__FreezeSource *req, step_done_cb done, void *arg,
                    char **why)
{
    *why = NULL;
    if (!f || !req || !done) {
        *why = xstrdup("freeze_source: invalid request");
        return NULL;
    }
    if (req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_PREPARE &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE &&
        req->mode != GODWIT__FREEZE_SOURCE__MODE__MODE_KEEP) {
        *why = xstrdup("freeze_source: no mode (PREPARE, FREEZE, KEEP or UNFREEZE): nothing was "
                       "done");
        return NULL;
    }
    if (req->n_check > 0) {
        *why = xstrdup("freeze_source: the final check is not available for MariaDB (check must "
                       "be empty): nothing was done");
        return NULL;
    }
    for (size_t i = 0; i < req->n_app_roles; i++) {
        if (!req->app_roles[i] || !req->app_roles[i][0]) {
            *why = xstrdup("freeze_source: an empty user name in app_roles: nothing was done");
            return NULL;
        }
    }
    if (req->mode == GODWIT__FREEZE_SOURCE__MODE__MODE_FREEZE && req->n_app_roles == 0) {
        *why = xstrdup("freeze_source: FREEZE without app_roles (the application's users): "
                       "nothing to fence, nothing was done");
        return NULL;
    }
    if (f->internal) {
        *why = xstrdup("freeze_source: the fence's lease ran out and the agent is lifting it "
                       "now: nothing was done; send the command again in a moment");
        return NULL;
    }
    fz_t *s = s_step_new(f, req, false, done, arg);
    if (!s) {
        *why = xstrdup("freeze_source: invalid connection parameters for the local server");
        return NULL;
    }
    return mystep_defer(&s->step, s_first);
}

static void s_internal_done(ProtobufCMessage *payload, const char *error, void *arg)
{
    myfence_t *f = arg;
    f->internal = NULL;
    if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    if (error) {
        log_error("mariadb fence: the lease ran out but the fence could not be lifted: %s",
                  error);
        f->event(true, "freeze.lease_unfreeze_failed", error, f->event_arg);
        /* Tried again: a fence must not outlive its lease for good. */
        uv_timer_start(&f->lease, s_lease_expired, S_RETRY_MS * 5, 0);
    } else {
        log_warn("mariadb fence: the lease ran out without word from the coordinator: fence "
                 "lifted, the server is writable again");
        f->event(false, "freeze.lease_expired",
                 "the freeze's lease ran out without word from the coordinator: the source is "
                 "writable again",
                 f->event_arg);
    }
}

static void s_lease_expired(uv_timer_t *t)
{
    myfence_t *f = t->data;
    if (f->internal || f->running > 0) {
        uv_timer_start(&f->lease, s_lease_expired, S_RETRY_MS, 0);
        return;
    }
    myfence_rec_t rec;
    char why[512];
    if (!myfencefile_read(f->path, &rec, why, sizeof why)) {
        if (why[0]) {
            log_error("mariadb fence: the lease ran out but %s", why);
            f->event(true, "freeze.lease_unfreeze_failed", why, f->event_arg);
        } else if (unlink(f->armed_path) == 0) {
            log_info("mariadb fence: armed for a fence that did not come; disarmed");
        }
        return;
    }
    bool permanent = rec.mode == MYFENCE_PERMANENT;
    char *db = xstrdup(rec.database);
    myfencefile_clear(&rec);
    if (permanent) {
        free(db);
        return;
    }
    log_warn("mariadb fence: database %s: the lease ran out; lifting the fence", db);
    Godwit__FreezeSource req = GODWIT__FREEZE_SOURCE__INIT;
    req.database = db;
    req.mode = GODWIT__FREEZE_SOURCE__MODE__MODE_UNFREEZE;
    fz_t *s = s_step_new(f, &req, true, s_internal_done, f);
    free(db);
    if (!s) {
        log_error("mariadb fence: the lease ran out but the local server's connection "
                  "parameters are invalid: the fence stays");
        return;
    }
    f->internal = mystep_defer(&s->step, s_first);
}

/* What an earlier run left (see myfence.h): an armed record alone under
 * its lease or dropped, a fence lifted, given the rest of its lease, or
 * kept. */
static void s_at_start(myfence_t *f)
{
    int64_t now = (int64_t)units_now_ms();
    myfence_rec_t rec;
    char why[512];
    bool fenced = myfencefile_read(f->path, &rec, why, sizeof why);
    bool damaged = !fenced && why[0];
    if (damaged)
        log_error("mariadb fence: %s: left as it is (the accounts and read_only may be the "
                  "fence's: set them by hand, then remove the file)",
                  why);
    if (fenced || damaged) {
        if (unlink(f->armed_path) == 0)
            log_info("mariadb fence: %s of an earlier run removed (a fence record is there)",
                     f->armed_path);
    } else {
        myfence_rec_t armed;
        if (myfencefile_read(f->armed_path, &armed, why, sizeof why)) {
            if (armed.lease_deadline_ms <= now) {
                if (unlink(f->armed_path) == 0)
                    log_info("mariadb fence: armed by an earlier run for a fence that did not "
                             "come, its lease over: disarmed");
            } else {
                log_info("mariadb fence: armed by an earlier run; disarmed in %" PRId64
                         " ms unless a FREEZE comes",
                         armed.lease_deadline_ms - now);
                uv_timer_start(&f->lease, s_lease_expired,
                               (uint64_t)(armed.lease_deadline_ms - now), 0);
            }
            myfencefile_clear(&armed);
        } else if (why[0]) {
            log_warn("mariadb fence: %s: removed (an armed record changed nothing)", why);
            unlink(f->armed_path);
        }
    }
    if (!fenced)
        return;
    if (rec.mode == MYFENCE_PERMANENT) {
        log_info("mariadb fence: database %s: the fence an earlier run made permanent holds "
                 "this server: kept",
                 rec.database);
    } else if (rec.lease_deadline_ms <= now) {
        log_warn("mariadb fence: database %s: an earlier run's fence, its lease over %" PRId64
                 " ms ago: lifting it",
                 rec.database, now - rec.lease_deadline_ms);
        uv_timer_start(&f->lease, s_lease_expired, 0, 0);
    } else {
        log_warn("mariadb fence: database %s: an earlier run's fence holds this server; "
                 "lifting it in %" PRId64 " ms (the rest of its lease) unless the coordinator "
                 "decides",
                 rec.database, rec.lease_deadline_ms - now);
        uv_timer_start(&f->lease, s_lease_expired, (uint64_t)(rec.lease_deadline_ms - now), 0);
    }
    myfencefile_clear(&rec);
}

myfence_t *myfence_new(uv_loop_t *loop, const myconn_params_t *server, uint64_t timeout_ms,
                       const char *state_dir, myfence_event_cb event, void *arg)
{
    if (!loop || !server || !state_dir || !event || timeout_ms == 0)
        return NULL;
    myfence_t *f = xcalloc(1, sizeof *f);
    f->loop = loop;
    f->server = *server;
    f->timeout_ms = timeout_ms;
    f->state_dir = xstrdup(state_dir);
    f->path = myfencefile_path(state_dir);
    f->armed_path = myfencefile_armed_path(state_dir);
    f->event = event;
    f->event_arg = arg;
    uv_timer_init(loop, &f->lease);
    f->lease.data = f;
    s_at_start(f);
    return f;
}

static void s_on_closed(uv_handle_t *h)
{
    myfence_t *f = h->data;
    free(f->state_dir);
    free(f->path);
    free(f->armed_path);
    free(f);
}

void myfence_destroy(myfence_t **fp)
{
    myfence_t *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    step_cancel(&f->internal);
    uv_close((uv_handle_t *)&f->lease, s_on_closed);
}

bool myfence_held(const myfence_t *f)
{
    return access(f->path, F_OK) == 0;
}

bool myfence_record(const myfence_t *f, myfence_rec_t *rec, char *why, size_t whylen)
{
    return myfencefile_read(f->path, rec, why, whylen);
}

bool myfence_lifted(myfence_t *f, const char *by)
{
    uv_timer_stop(&f->lease);
    if (unlink(f->armed_path) != 0 && errno != ENOENT)
        log_warn("mariadb fence: cannot remove %s: %s", f->armed_path, strerror(errno));
    if (unlink(f->path) != 0 && errno != ENOENT) {
        log_error("mariadb fence: cannot remove %s: %s", f->path, strerror(errno));
        return false;
    }
    log_info("mariadb fence: lifted (%s): the accounts are as they were before the fence",
             by);
    return true;
}
