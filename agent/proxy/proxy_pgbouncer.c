/*
 * proxy_pgbouncer: the PgBouncer driver (proxydrv.h). Talks to the admin
 * console (the "pgbouncer" database) through pgconn with the simple query
 * protocol only, which is all the console speaks, and points one
 * [databases] entry at blue or green by rewriting the include file that
 * holds that entry (pgbouncer.ini: `%include FILE` under [databases]).
 *
 *   STATUS  SHOW DATABASES: the entry's host, port and paused flag
 *   PAUSE   (once no server connection of the entry is still logging in:
 *           SHOW POOLS) PAUSE db: waits for running transactions, then holds
 *           new ones.
 *           Bounded by pause_timeout; then on_pause_timeout says what to do:
 *           resume (drop the waiting PAUSE and RESUME: the pause failed), or
 *           terminate (the backends of the transactions still running, as
 *           SHOW SERVERS lists them, get pg_terminate_backend on the current
 *           backend; the PAUSE then completes)
 *   SWITCH  rewrite the include file (tmp + fsync + rename), RELOAD, read
 *           back; if PgBouncer does not show the new address, the old file
 *           is put back and RELOADed. A SWITCH that goes on as the RESUME
 *           (then_resume) leaves the syncs until the RESUME is done
 *   RESUME  RESUME db
 * Each reads the entry first and does nothing if it is already so; PAUSE
 * and RESUME take PgBouncer's answer as the outcome (no read-back).
 *
 * Owns: the admin connection (kept between operations), a second admin
 * connection and a backend connection used only by the timeout policy, the
 * pause timer. Never: sends anything but our fixed statements to the console
 * (the entry name is checked to be a plain word when the config loads).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "pgconn.h"
#include "proxy_pgbouncer.h"
#include "units.h"
#include "xalloc.h"

#define PGB_FILE_MAX (64 * 1024)
#define PGB_LOGIN_POLL_MS 5

typedef struct pgb pgb_t;
typedef void (*pgb_next_fn)(pgb_t *d);

/* One connection and the statement waiting for it to be connected. */
typedef struct {
    pgb_t *d;
    pgconn_t *conn;
    char *sql;
    bool simple;
    const char *param;       /* one parameter (backend conn) */
    pgconn_result_cb cb;
} link_t;

struct pgb {
    proxydrv_t base;
    uv_loop_t *loop;
    const agent_proxy_t *cfg;
    link_t admin, aux, backend;
    uv_timer_t timer;
    /* the operation running */
    proxydrv_job_t job;         /* the request being carried out */
    pgb_next_fn after_read;
    uint64_t step_mono;
    char host[256];          /* what the entry points at, from the last read */
    int port;
    char *old_file;          /* SWITCH: the include file before (NULL: none) */
    size_t old_len;
    bool pause_waiting;
    bool pause_abandoned;    /* the waiting PAUSE was dropped: ignore its callback */
    bool timed_out;
    bool unsynced;           /* the include file was replaced without its syncs (a SWITCH
                                going on as the RESUME): synced as the next operation ends */
    char pids[1024];         /* terminate: "{1,2}" */
    char why[512];           /* why a pause is being given up */
};

static uint64_t s_cmd_ms(const pgb_t *d) { return (uint64_t)d->cfg->command_timeout_ms; }

static void s_read(pgb_t *d, pgb_next_fn next);
static void s_gave_up_read(pgb_t *d);

/* Makes a switched include file durable (see unsynced). Traffic already
 * flows by what PgBouncer loaded; a crash of the host before this leaves
 * the old file (or an empty one), so PgBouncer restarts on blue, fenced
 * for good: an outage, never a split, and the coordinator, which has no
 * answer yet, sends the switch again. */
static void s_sync(pgb_t *d)
{
    uint64_t t = units_mono_ms();
    int rc = fsutil_sync_path(d->cfg->pgbouncer.include_file);
    if (rc != 0) {
        log_warn("proxy %s: syncing %s: %s (tried again after the next operation)",
                 d->cfg->name, d->cfg->pgbouncer.include_file, strerror(-rc));
        return;
    }
    d->unsynced = false;
    if (d->job.out)
        proxydrv_out_step(d->job.out, "sync include file", t);
}

static void s_finish(pgb_t *d, const char *error)
{
    if (error && d->pause_waiting) {
        /* The terminate policy failed while PAUSE still waits: give up as
         * the resume policy does, so that no failure leaves traffic held. */
        int n = snprintf(d->why, sizeof d->why,
                         "PAUSE %s waited over %llu ms and terminating the blockers failed: %s",
                         d->cfg->pgbouncer.database,
                         (unsigned long long)d->job.req->pause_timeout_ms, error);
        if (n >= (int)sizeof d->why) /* cut short: the message is still the right one */
            d->why[sizeof d->why - 1] = '\0';
        d->pause_waiting = false;
        d->pause_abandoned = true;
        pgconn_disconnect(d->admin.conn);
        s_read(d, s_gave_up_read);
        return;
    }
    uv_timer_stop(&d->timer);
    free(d->old_file);
    d->old_file = NULL;
    if (d->unsynced && !(d->job.req->op == GODWIT__PROXY_ACTION__OP__OP_SWITCH &&
                         d->job.req->then_resume && !error))
        s_sync(d);
    proxydrv_job_end(&d->job, error);
}

/* Ends the request with a failure formatted as printf does. */
#define s_failf(d, ...) s_finish((d), proxydrv_job_errf(&(d)->job, __VA_ARGS__))

/* ---- running statements ---- */

static void s_link_send(link_t *l)
{
    pgb_t *d = l->d;
    int rc = l->simple ? pgconn_query_simple(l->conn, l->sql, s_cmd_ms(d), l->cb, d)
                       : pgconn_query(l->conn, l->sql, 1, &l->param, s_cmd_ms(d), l->cb, d);
    if (rc != 0)
        s_failf(d, "%s: cannot send \"%s\": %s", pgconn_name(l->conn), l->sql, strerror(-rc));
}

static void s_link_connected(pgconn_t *c, bool ok, const char *error, void *arg)
{
    link_t *l = arg;
    if (!ok) {
        s_failf(l->d, "cannot connect to %s: %s", pgconn_name(c), error);
        return;
    }
    s_link_send(l);
}

/* Runs sql on l (connecting first if needed); cb gets the result. */
static void s_exec(link_t *l, const char *sql, bool simple, const char *param, pgconn_result_cb cb)
{
    if (!l->conn) {
        s_failf(l->d, "invalid connection parameters for \"%s\"", sql);
        return;
    }
    free(l->sql);
    l->sql = xstrdup(sql);
    l->simple = simple;
    l->param = param;
    l->cb = cb;
    if (pgconn_is_ready(l->conn)) {
        s_link_send(l);
        return;
    }
    int rc = pgconn_connect(l->conn, s_cmd_ms(l->d), s_link_connected, l);
    if (rc != 0)
        s_failf(l->d, "%s: cannot connect: %s", pgconn_name(l->conn), strerror(-rc));
}

/* The console's name for the [databases] entry, as it appears in statements. */
static char *s_stmt(const pgb_t *d, const char *verb)
{
    return xasprintf("%s %s", verb, d->cfg->pgbouncer.database);
}

/* ---- reading the entry back ---- */

static void s_read_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("SHOW DATABASES", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    const char *db = d->cfg->pgbouncer.database;
    for (int i = 0; i < PQntuples(r->res); i++) {
        if (strcmp(pgconn_col_str(r->res, i, "name"), db) != 0)
            continue;
        proxydrv_out_t *o = d->job.out;
        snprintf(d->host, sizeof d->host, "%s", pgconn_col_str(r->res, i, "host"));
        d->port = (int)pgconn_col_i64(r->res, i, "port", 0);
        o->known = true;
        o->backend = proxydrv_match(d->cfg, d->host, d->port);
        snprintf(o->address, sizeof o->address, "%s:%d", d->host, d->port);
        o->paused = pgconn_col_i64(r->res, i, "paused", 0) != 0;
        pgb_next_fn next = d->after_read;
        d->after_read = NULL;
        next(d);
        return;
    }
    s_failf(d, "PgBouncer has no database entry \"%s\" (SHOW DATABASES)", db);
}

static void s_read(pgb_t *d, pgb_next_fn next)
{
    d->after_read = next;
    s_exec(&d->admin, "SHOW DATABASES", true, NULL, s_read_done);
}

static void s_done_ok(pgb_t *d) { s_finish(d, NULL); }

/* ---- STATUS ---- */

static void s_status(pgb_t *d) { s_read(d, s_done_ok); }

/* ---- RESUME ---- */

static void s_resume_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("RESUME", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    proxydrv_out_step(d->job.out, "resume", d->step_mono);
    /* Answered: the entry is resumed (no read-back: see s_pause_done). */
    d->job.out->paused = false;
    s_finish(d, NULL);
}

static void s_resume_read(pgb_t *d)
{
    if (!d->job.out->paused) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->step_mono = units_mono_ms();
    char *sql = s_stmt(d, "RESUME");
    s_exec(&d->admin, sql, true, NULL, s_resume_done);
    free(sql);
}

/* ---- PAUSE ---- */

static void s_pause_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (d->pause_abandoned)
        return; /* dropped by the resume policy, which carries on */
    d->pause_waiting = false;
    uv_timer_stop(&d->timer);
    if (!r->ok) {
        /* PgBouncer may hold the entry paused all the same (the connection
         * was lost while it waited): read it back and resume it if so, so
         * that a failed pause never leaves traffic held. */
        char *m = pgconn_result_message("PAUSE", r);
        snprintf(d->why, sizeof d->why, "%s", m);
        free(m);
        s_read(d, s_gave_up_read);
        return;
    }
    proxydrv_out_step(d->job.out, d->timed_out ? "pause (after terminating blockers)" : "pause",
                      d->step_mono);
    /* PgBouncer answers PAUSE once the entry is paused: no read-back. A
     * SHOW DATABASES after it proved nothing an admin could not undo the
     * next moment, and cost a round trip per entry inside the write pause:
     * in a group of 50 entries of one PgBouncer, 50 listings of every
     * entry, about 40 ms after the last PAUSE was answered. */
    d->job.out->paused = true;
    s_finish(d, NULL);
}

/* Resume policy, after the waiting PAUSE was dropped or failed (d->why). */
static void s_gave_up_resumed(pgb_t *d)
{
    s_failf(d, "%s: gave up and resumed%s", d->why,
            d->job.out->paused ? "; but PgBouncer still shows it paused" : "");
}

static void s_gave_up_resume_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("RESUME after the pause timed out", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    proxydrv_out_step(d->job.out, "resume (gave up)", d->step_mono);
    s_read(d, s_gave_up_resumed);
}

static void s_gave_up_read(pgb_t *d)
{
    if (!d->job.out->paused) {
        s_gave_up_resumed(d);
        return;
    }
    d->step_mono = units_mono_ms();
    char *sql = s_stmt(d, "RESUME");
    s_exec(&d->admin, sql, true, NULL, s_gave_up_resume_done);
    free(sql);
}

/* Terminate policy: the blockers are gone; the PAUSE still waiting on the
 * admin connection completes by itself (s_pause_done). */
static void s_terminated(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("terminating the blocking transactions", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    d->job.out->terminated = (uint32_t)pgconn_col_u64(r->res, 0, "n");
    proxydrv_out_step(d->job.out, "terminate blockers", d->step_mono);
    log_warn("proxy %s: PAUSE %s waited over %llu ms: terminated %u blocking transaction(s) "
             "on %s:%d (on_pause_timeout: terminate)",
             d->cfg->name, d->cfg->pgbouncer.database,
             (unsigned long long)d->job.req->pause_timeout_ms, d->job.out->terminated, d->host,
             d->port);
}

static void s_servers_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("SHOW SERVERS", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    size_t n = 0;
    int len = snprintf(d->pids, sizeof d->pids, "{");
    for (int i = 0; i < PQntuples(r->res) && len < (int)sizeof d->pids - 16; i++) {
        if (strcmp(pgconn_col_str(r->res, i, "database"), d->cfg->pgbouncer.database) != 0 ||
            strncmp(pgconn_col_str(r->res, i, "state"), "active", 6) != 0)
            continue;
        int64_t pid = pgconn_col_i64(r->res, i, "remote_pid", 0);
        if (pid <= 0)
            continue;
        len += snprintf(d->pids + len, sizeof d->pids - (size_t)len, "%s%lld", n ? "," : "",
                        (long long)pid);
        n++;
    }
    snprintf(d->pids + len, sizeof d->pids - (size_t)len, "}");
    if (n == 0) {
        log_warn("proxy %s: PAUSE waits, but no active server connection is listed; waiting on",
                 d->cfg->name);
        return;
    }
    /* The backend connection goes to where the entry points now. */
    pgconn_destroy(&d->backend.conn);
    char port[16];
    snprintf(port, sizeof port, "%d", d->port);
    const char *kw[] = { "host", "port", "user", "dbname", "passfile", "application_name", NULL };
    const char *val[] = { d->host, port, d->cfg->pgbouncer.backend_user, d->cfg->pgbouncer.dbname,
                          d->cfg->pgbouncer.backend_passfile, "godwit-agent", NULL };
    if (!d->cfg->pgbouncer.backend_passfile) {
        kw[4] = "application_name";
        val[4] = "godwit-agent";
        kw[5] = val[5] = NULL;
    }
    d->backend.conn = pgconn_new(d->loop, "pgbouncer backend", kw, val);
    if (!d->backend.conn) {
        s_failf(d, "terminate: invalid backend connection parameters");
        return;
    }
    d->step_mono = units_mono_ms();
    s_exec(&d->backend,
           "SELECT count(*) FILTER (WHERE t) AS n FROM "
           "(SELECT pg_catalog.pg_terminate_backend(p) AS t FROM pg_catalog.unnest($1::int[]) p) s",
           false, d->pids, s_terminated);
}

static void s_on_pause_timeout(uv_timer_t *t)
{
    pgb_t *d = t->data;
    if (!d->pause_waiting || !d->job.req)
        return;
    d->timed_out = true;
    proxydrv_out_step(d->job.out, "pause (timed out)", d->step_mono);
    d->step_mono = units_mono_ms();
    if (d->cfg->on_pause_timeout == PROXY_ON_TIMEOUT_TERMINATE) {
        s_exec(&d->aux, "SHOW SERVERS", true, NULL, s_servers_done);
        return;
    }
    log_warn("proxy %s: PAUSE %s still waits after %llu ms: giving up and resuming",
             d->cfg->name, d->cfg->pgbouncer.database,
             (unsigned long long)d->job.req->pause_timeout_ms);
    snprintf(d->why, sizeof d->why,
             "PAUSE %s still waited for running transactions after %llu ms "
             "(on_pause_timeout: resume)",
             d->cfg->pgbouncer.database, (unsigned long long)d->job.req->pause_timeout_ms);
    d->pause_abandoned = true;
    d->pause_waiting = false;
    pgconn_disconnect(d->admin.conn);
    s_read(d, s_gave_up_read);
}

static void s_pause_send(pgb_t *d)
{
    d->pause_waiting = true;
    char *sql = s_stmt(d, "PAUSE");
    /* The statement's own deadline leaves room for the policy to act. */
    int rc = pgconn_query_simple(d->admin.conn, sql, d->job.req->pause_timeout_ms + 3 * s_cmd_ms(d),
                                 s_pause_done, d);
    free(sql);
    if (rc != 0) {
        d->pause_waiting = false;
        s_failf(d, "cannot send PAUSE: %s", strerror(-rc));
        return;
    }
    uv_timer_start(&d->timer, s_on_pause_timeout, d->job.req->pause_timeout_ms, 0);
}

/* PAUSE closes the entry's server connections that are still logging in,
 * and PgBouncer counts each as a failed login: with no server left after
 * the switch, it then fails its waiting clients at RESUME ("server login
 * has been failing", or a wait of server_login_retry; see docs/proxy.md).
 * So PAUSE waits, half of pause_timeout at most, until SHOW POOLS shows
 * none of the entry's in sv_login. */
static void s_pause_check(pgb_t *d);

static void s_on_login_wait(uv_timer_t *t)
{
    s_pause_check(t->data);
}

static void s_pools_done(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    (void)c;
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("SHOW POOLS", r);
        s_failf(d, "%s", m);
        free(m);
        return;
    }
    int64_t logging_in = 0;
    for (int i = 0; i < PQntuples(r->res); i++)
        if (strcmp(pgconn_col_str(r->res, i, "database"), d->cfg->pgbouncer.database) == 0)
            logging_in += pgconn_col_i64(r->res, i, "sv_login", 0);
    uint64_t bound = d->job.req->pause_timeout_ms / 2;
    if (logging_in > 0 && units_mono_ms() - d->step_mono < bound) {
        uv_timer_start(&d->timer, s_on_login_wait, PGB_LOGIN_POLL_MS, 0);
        return;
    }
    if (logging_in > 0)
        log_warn("proxy %s: %lld server connections of %s still log in after %llu ms; pausing "
                 "anyway (clients may see \"server login has been failing\" after the pause)",
                 d->cfg->name, (long long)logging_in, d->cfg->pgbouncer.database,
                 (unsigned long long)bound);
    s_pause_send(d);
}

static void s_pause_check(pgb_t *d)
{
    s_exec(&d->admin, "SHOW POOLS", true, NULL, s_pools_done);
}

static void s_pause_read(pgb_t *d)
{
    if (d->job.out->paused) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->step_mono = units_mono_ms();
    s_pause_check(d);
}

/* ---- SWITCH ---- */

static char *s_entry(const pgb_t *d, proxydrv_backend_t b)
{
    char host[256];
    int port = 0;
    if (!agent_config_split_hostport(b == PROXYDRV_BLUE ? d->cfg->blue : d->cfg->green, host,
                                     sizeof host, &port))
        host[0] = '\0';
    const char *opts = d->cfg->pgbouncer.entry_options;
    return xasprintf("; written by godwit-agent (proxy %s): %s\n%s = host=%s port=%d dbname=%s%s%s\n",
                     d->cfg->name, b == PROXYDRV_BLUE ? "blue" : "green", d->cfg->pgbouncer.database,
                     host, port, d->cfg->pgbouncer.dbname, opts ? " " : "", opts ? opts : "");
}

static void s_restored_reloaded(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    s_failf(d, "%s; put the old include file back%s", d->job.err,
            r->ok ? " and reloaded" : " but RELOAD failed");
}

/* Puts the old include file back and reloads; fails with d->job.err as set. */
static void s_restore(pgb_t *d)
{
    const char *path = d->cfg->pgbouncer.include_file;
    int rc = proxydrv_file_restore(path, d->old_file, d->old_len);
    if (rc == 0)
        d->unsynced = false; /* the old file back, synced */
    if (rc != 0) {
        size_t n = strlen(d->job.err);
        snprintf(d->job.err + n, sizeof d->job.err - n, "; restoring %s failed: %s", path,
                 strerror(-rc));
        s_finish(d, d->job.err);
        return;
    }
    s_exec(&d->admin, "RELOAD", true, NULL, s_restored_reloaded);
}

static void s_switch_checked(pgb_t *d)
{
    if (d->job.out->backend == d->job.req->backend) {
        s_finish(d, NULL);
        return;
    }
    snprintf(d->job.err, sizeof d->job.err, "after RELOAD PgBouncer shows %s for %s, not %s",
             d->job.out->address, d->cfg->pgbouncer.database,
             d->job.req->backend == PROXYDRV_BLUE ? d->cfg->blue : d->cfg->green);
    s_restore(d);
}

static void s_reloaded(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    pgb_t *d = arg;
    if (!r->ok) {
        char *m = pgconn_result_message("RELOAD", r);
        snprintf(d->job.err, sizeof d->job.err, "%s", m);
        free(m);
        s_restore(d);
        return;
    }
    proxydrv_out_step(d->job.out, "reload", d->step_mono);
    s_read(d, s_switch_checked);
}

static void s_switch_read(pgb_t *d)
{
    const char *path = d->cfg->pgbouncer.include_file;
    if (d->job.out->backend == d->job.req->backend) {
        d->job.out->already = true;
        s_finish(d, NULL);
        return;
    }
    d->step_mono = units_mono_ms();
    char *entry = s_entry(d, d->job.req->backend);
    /* With then_resume the syncs wait until the RESUME is done: they took
     * 1-6 ms here, and once 52 ms, inside the write pause. */
    int rc = proxydrv_file_swap(path, PGB_FILE_MAX, entry, !d->job.req->then_resume, &d->old_file,
                                &d->old_len, d->job.err, sizeof d->job.err);
    free(entry);
    if (rc != 0) {
        s_finish(d, d->job.err);
        return;
    }
    if (d->job.req->then_resume)
        d->unsynced = true;
    proxydrv_out_step(d->job.out, "rewrite include file", d->step_mono);
    d->step_mono = units_mono_ms();
    s_exec(&d->admin, "RELOAD", true, NULL, s_reloaded);
}

/* ---- the driver ---- */

static void s_run(proxydrv_t *base, const proxydrv_req_t *req, proxydrv_out_t *out,
                  proxydrv_done_cb done, void *arg)
{
    pgb_t *d = (pgb_t *)base;
    proxydrv_job_begin(&d->job, req, out, done, arg);
    d->pause_abandoned = d->pause_waiting = d->timed_out = false;
    switch (req->op) {
    case GODWIT__PROXY_ACTION__OP__OP_PAUSE: s_read(d, s_pause_read); break;
    case GODWIT__PROXY_ACTION__OP__OP_RESUME: s_read(d, s_resume_read); break;
    case GODWIT__PROXY_ACTION__OP__OP_SWITCH: s_read(d, s_switch_read); break;
    default: s_status(d); break;
    }
}

static void s_timer_closed(uv_handle_t *h)
{
    pgb_t *d = h->data;
    free(d->admin.sql);
    free(d->aux.sql);
    free(d->backend.sql);
    free(d->old_file);
    free(d);
}

static void s_destroy(proxydrv_t *base)
{
    pgb_t *d = (pgb_t *)base;
    if (d->unsynced) {
        d->job.out = NULL;
        s_sync(d);
    }
    pgconn_destroy(&d->admin.conn);
    pgconn_destroy(&d->aux.conn);
    pgconn_destroy(&d->backend.conn);
    uv_close((uv_handle_t *)&d->timer, s_timer_closed);
}

static pgconn_t *s_admin_conn(uv_loop_t *loop, const agent_proxy_t *cfg, const char *name)
{
    char port[16];
    snprintf(port, sizeof port, "%lld", (long long)cfg->pgbouncer.port);
    const char *kw[] = { "host", "port", "user", "dbname", "passfile", NULL };
    const char *val[] = { cfg->pgbouncer.host, port, cfg->pgbouncer.user, "pgbouncer",
                          cfg->pgbouncer.passfile, NULL };
    if (!cfg->pgbouncer.passfile)
        kw[4] = val[4] = NULL;
    return pgconn_new(loop, name, kw, val);
}

proxydrv_t *proxy_pgbouncer_new(uv_loop_t *loop, const agent_proxy_t *cfg)
{
    pgb_t *d = xcalloc(1, sizeof *d);
    d->base.run = s_run;
    d->base.destroy = s_destroy;
    d->loop = loop;
    d->cfg = cfg;
    d->admin.d = d->aux.d = d->backend.d = d;
    d->admin.conn = s_admin_conn(loop, cfg, "pgbouncer admin");
    d->aux.conn = s_admin_conn(loop, cfg, "pgbouncer admin (policy)");
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    return &d->base;
}
