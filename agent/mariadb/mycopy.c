/*
 * mycopy: see mycopy.h. The copy is one chain of statements, each sent
 * from the previous one's callback, on these sessions:
 *
 *   tgt         the target's control session: the connection's existence,
 *               the database, the tables, the replication at the end
 *   lock        the source's BACKUP STAGE session, only while the readers
 *               open their snapshots (n > 1)
 *   rd[i].src   reader i on the source, in its snapshot
 *   rd[i].tgt   reader i's writer on the target
 *
 * Order: (1) the connection on the target (exists: mended if need be,
 * already_done), the target's other replication connections (one that
 * runs refuses the copy); (2) the readers' snapshots and their proof
 * (equal binary log positions), the GTID position, checked against the
 * target's binary log (s_on_target_binlog); (3) the source's database read,
 * its tables' definitions, (3b) its views', routines', triggers' and
 * events' definitions; (4) the target's database created, adopted or
 * cleaned, the tables created; (5) the rows, the readers taking tables
 * from one queue; (5b) the views, routines, triggers and events made;
 * (6) the replication connection made and started.
 *
 * Values (mykey.h): a numeric column is selected as it is and written as the
 * number's text (checked to be one: digits, sign, point, exponent), so a
 * BIGINT's keyset comparison stays exact (a FLOAT is read as a DOUBLE:
 * its own text has too few digits); every other column is selected as
 * HEX() and written as X'..', so no byte goes through a character set.
 * Every session of the copy runs in time zone +00:00, so a TIMESTAMP's text
 * means the same instant on both servers.
 *
 * Memory: a reader holds one chunk (S_CHUNK_ROWS rows, hexed) and its
 * INSERTs at a time; a table without a usable key is read in one SELECT,
 * so the whole table is in the agent's memory, twice (result and INSERTs).
 *
 * Limits: the information_schema shows a user only the views, triggers,
 * events and routines it holds a privilege on, so one the peer's user
 * cannot see is not copied (mycopy.h lists the privileges). The target's
 * binary log and its replication connections are read before the first
 * write but may change before gtid_slave_pos is set: that then fails
 * after the rows are written (1947, 1948, 1198), and a new copy starts
 * over.
 *
 * What it owns: everything above, copies of the request and of what it
 * needs from local. Its lifecycle is mystep's (mystep.h): the chain starts
 * one loop turn after the start, and the timer's close callback frees the
 * step. Never: done twice, done after step_cancel or from inside
 * mycopy_start; the peer's password in a log line.
 */
#include "mycopy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gtid.h"
#include "keys.h"
#include "log.h"
#include "mykey.h"
#include "mystep.h"
#include "mytext.h"
#include "xalloc.h"

#define S_CHUNK_ROWS 2000
#define S_INSERT_BYTES (4u << 20) /* an INSERT's text is cut after this (max_allowed_packet) */
#define S_READERS_DEFAULT 2
#define S_READERS_MAX 16
#define S_ROWS_TIMEOUT_FACTOR 10

/* MariaDB's error numbers this file acts on. */
#define S_ER_DBACCESS_DENIED 1044
#define S_ER_ACCESS_DENIED 1045
#define S_ER_SPECIFIC_ACCESS_DENIED 1227
#define S_ER_SLAVE_MUST_STOP 1198             /* a replication connection runs */
#define S_ER_MASTER_CONNECTION_NOT_EXIST 1617 /* SHOW SLAVE 'x' STATUS of a missing x */
#define S_ER_GTID_POS_CONFLICTS 1947          /* gtid_slave_pos behind the binary log */
#define S_ER_GTID_POS_MISSING_DOMAIN 1948     /* gtid_slave_pos lacks a binary log domain */
#define S_ER_TABLEACCESS_DENIED 1142          /* SHOW VIEW (or SELECT) denied on a view */
#define S_ER_NO_SUCH_TABLE 1146               /* a view on a view not made yet */
#define S_ER_VIEW_INVALID 1356                /* the same, said of a view */
#define S_ER_NO_SUCH_USER 1449                /* a DEFINER the target lacks, where it must exist */
#define S_ER_BINLOG_CREATE_ROUTINE_NEED_SUPER 1419 /* a function or trigger without SUPER */

enum { S_INIT = 0, S_COPYING, S_DONE };
/* The names PostgreSQL's copy gives its tables' states (migrate.md). */
static const char *const s_state_names[] = { "waiting", "copying", "copied" };

typedef struct {
    char *name;          /* as the server spells it */
    char *create_sql;    /* SHOW CREATE TABLE */
    size_t n_cols;
    char **cols;         /* quoted */
    mykey_kind_t *kind;  /* how it is read and written (mykey.h) */
    bool *keyok;         /* a type a chunk's key may have (mykey_range_type) */
    char **charset;      /* a string column's character set (a key's literal); NULL: none */
    size_t n_pk;
    size_t *pk;          /* indices into cols */
    const char **pk_cols;        /* the key's columns, kinds and character sets, key order */
    mykey_kind_t *pk_kind;       /* (borrowed from cols and charset): mykey_key_t */
    const char **pk_charset;
    bool keyset;         /* read in key order in chunks; false: one read */
    int state;
    uint64_t rows_done;
    uint64_t bytes;      /* its data on the source (DATA_LENGTH: InnoDB's estimate) */
    uint64_t rows_est;   /* its rows on the source (TABLE_ROWS: InnoDB's estimate) */
    char *after;         /* the next chunk's WHERE; NULL: from the start */
} s_table_t;

/* The objects beside tables, in the order they are made on the target:
 * routines before views (CREATE VIEW fails on a function that does not
 * exist, 1305; a routine's body is not checked until it runs), views,
 * then triggers and events. */
enum { S_OBJ_FUNCTION = 0, S_OBJ_PROCEDURE, S_OBJ_VIEW, S_OBJ_TRIGGER, S_OBJ_EVENT, S_OBJ_KINDS };

static const struct {
    const char *word;      /* SHOW CREATE WORD */
    const char *name;      /* for messages */
    const char *column;    /* SHOW CREATE's column holding the definition */
    const char *privilege; /* what the peer's user needs to read it (MariaDB 10.11, tried) */
} s_kinds[S_OBJ_KINDS] = {
    { "FUNCTION", "function", "Create Function", "SELECT on mysql.proc" },
    { "PROCEDURE", "procedure", "Create Procedure", "SELECT on mysql.proc" },
    { "VIEW", "view", "Create View", "SELECT and SHOW VIEW on the database" },
    { "TRIGGER", "trigger", "SQL Original Statement", "TRIGGER on the database" },
    { "EVENT", "event", "Create Event", "EVENT on the database" },
};

typedef struct {
    int kind;            /* S_OBJ_* */
    char *name;
    char *create_sql;    /* SHOW CREATE's (an event's status made DISABLE ON SLAVE) */
    char *sql_mode;      /* the object's (a view's: the reader session's) */
    char *cs_client, *coll_conn;
    char *time_zone;     /* an event's; NULL for the others */
    bool made;
    char *error;         /* a view's last failure, while it waits for another view */
} s_obj_t;

typedef struct mycopy mycopy_t;

typedef struct {
    mycopy_t *c;
    size_t i;
    myconn_t *src, *tgt;
    char *snap_file;
    uint64_t snap_pos;
    s_table_t *t;        /* the table being copied */
    char **stmts;        /* the chunk's INSERTs */
    size_t n_stmts, next_stmt;
    size_t chunk_rows;
    bool finished;
} s_reader_t;

struct mycopy {
    mystep_t step;       /* first: the lifecycle (mystep.h) */
    uv_loop_t *loop;

    char *database, *connection, *config_path;
    char *peer_name, *peer_host, *peer_user, *peer_password_file;
    int peer_port;
    myconn_params_t server; /* strings below are its own copies */
    char *srv_host, *srv_socket, *srv_user, *srv_password_file;
    uint64_t timeout_ms, rows_timeout_ms;

    myconn_t *tgt, *lock;
    s_reader_t *rd;
    size_t n_rd;
    size_t step_i;       /* the reader or table a chain of statements is at */

    bool listed;
    s_table_t *tables;
    size_t n_tables, next_table;
    char *charset, *collation; /* the source database's defaults */
    char *src_db_lit;    /* the database as a literal of the source's sessions */
    char *gtid_pos;      /* the snapshot's */
    char *slave_pos;     /* what gtid_slave_pos is set to: gtid_pos and the target's own domains */
    bool repair_start;   /* already_done: START SLAVE after the filter */
    s_obj_t *objs;       /* views, routines, triggers, events: in s_kinds order */
    size_t n_objs;
    size_t n_kind[S_OBJ_KINDS];
    bool obj_progress;   /* a view made in this pass over the views */
    char *rbr_triggers;  /* the target's @@slave_run_triggers_for_rbr */
    char *view_mode;     /* the reader session's sql_mode: SHOW CREATE VIEW's text is in it */
    char **ddl;          /* statements run in turn on tgt (s_ddl_next) */
    size_t n_ddl, ddl_i;
    void (*ddl_then)(mycopy_t *c);
    uint64_t rows;
    uint64_t t_snapshot, t_last_write;
};

static const char *const s_tgt_init[] = { "SET SESSION sql_log_bin = 0",
                                          "SET SESSION foreign_key_checks = 0",
                                          "SET SESSION unique_checks = 0",
                                          "SET NAMES utf8mb4",
                                          "SET SESSION time_zone = '+00:00'",
                                          NULL };
static const char *const s_src_init[] = { "SET NAMES utf8mb4",
                                          "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                                          "SET SESSION time_zone = '+00:00'", NULL };

/* ---- ending ----------------------------------------------------------------- */

static void s_table_free(s_table_t *t)
{
    free(t->name);
    free(t->create_sql);
    for (size_t j = 0; j < t->n_cols; j++) {
        free(t->cols[j]);
        free(t->charset[j]);
    }
    free(t->cols);
    free(t->charset);
    free(t->kind);
    free(t->keyok);
    free(t->pk);
    free(t->pk_cols);
    free(t->pk_kind);
    free(t->pk_charset);
    free(t->after);
}

static void s_reader_stmts_free(s_reader_t *rd)
{
    for (size_t k = 0; k < rd->n_stmts; k++)
        free(rd->stmts[k]);
    free(rd->stmts);
    rd->stmts = NULL;
    rd->n_stmts = rd->next_stmt = 0;
}

static void s_obj_free(s_obj_t *o)
{
    free(o->name);
    free(o->create_sql);
    free(o->sql_mode);
    free(o->cs_client);
    free(o->coll_conn);
    free(o->time_zone);
    free(o->error);
}

static void s_ddl_free(mycopy_t *c)
{
    for (size_t i = 0; i < c->n_ddl; i++)
        free(c->ddl[i]);
    free(c->ddl);
    c->ddl = NULL;
    c->n_ddl = c->ddl_i = 0;
}

static void s_release(mystep_t *s)
{
    mycopy_t *c = (mycopy_t *)s;
    for (size_t i = 0; i < c->n_objs; i++)
        s_obj_free(&c->objs[i]);
    free(c->objs);
    free(c->rbr_triggers);
    free(c->view_mode);
    s_ddl_free(c);
    for (size_t i = 0; i < c->n_rd; i++) {
        free(c->rd[i].snap_file);
        s_reader_stmts_free(&c->rd[i]);
    }
    free(c->rd);
    for (size_t i = 0; i < c->n_tables; i++)
        s_table_free(&c->tables[i]);
    free(c->tables);
    free(c->database);
    free(c->connection);
    free(c->config_path);
    free(c->peer_name);
    free(c->peer_host);
    free(c->peer_user);
    free(c->peer_password_file);
    free(c->srv_host);
    free(c->srv_socket);
    free(c->srv_user);
    free(c->srv_password_file);
    free(c->charset);
    free(c->collation);
    free(c->src_db_lit);
    free(c->gtid_pos);
    free(c->slave_pos);
    free(c);
}

/* The source's lock first: closing its session ends the backup stage. */
static void s_close(mystep_t *s)
{
    mycopy_t *c = (mycopy_t *)s;
    myconn_destroy(&c->lock);
    for (size_t i = 0; i < c->n_rd; i++) {
        myconn_destroy(&c->rd[i].src);
        myconn_destroy(&c->rd[i].tgt);
    }
    myconn_destroy(&c->tgt);
}

/* The error is the caller's to log (once, with the command). */
static void s_log_error(mystep_t *s, const char *error)
{
    mycopy_t *c = (mycopy_t *)s;
    log_debug("copy of database %s (connection %s): %s", c->database, c->connection, error);
}

static const mystep_ops_t s_ops = { .close = s_close, .release = s_release,
                                    .log_error = s_log_error };

/* ---- helpers ---------------------------------------------------------------- */

static bool s_access_denied(const myconn_result_t *r)
{
    return r->errnum == S_ER_SPECIFIC_ACCESS_DENIED || r->errnum == S_ER_ACCESS_DENIED ||
           r->errnum == S_ER_DBACCESS_DENIED;
}

/* A value of column j of t as an INSERT writes it: NULL, or its literal
 * (mykey_literal_add, without a character set: the column converts X'..'
 * as it would '...'). A value not of its column's form (never seen: the
 * server prints a number's text, HEX() hex digits) goes as X'..' of its
 * own bytes, which the column also converts as it would '...'. */
static void s_add_value(mytext_buf_t *b, const s_table_t *t, size_t j, const char *v)
{
    if (!v) {
        mytext_add(b, "NULL");
        return;
    }
    if (mykey_literal_add(b, v, t->kind[j], NULL))
        return;
    static const char hexd[] = "0123456789ABCDEF";
    mytext_add(b, "X'");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char two[2] = { hexd[*p >> 4], hexd[*p & 15] };
        mytext_addn(b, two, 2);
    }
    mytext_add(b, "'");
}

static uint64_t s_elapsed(const mycopy_t *c)
{
    return c->t_last_write >= c->t_snapshot ? c->t_last_write - c->t_snapshot : 0;
}

/* Fails the copy when a replication connection of the target other than
 * ours runs (SHOW ALL SLAVES STATUS in r): gtid_slave_pos cannot be set
 * then (1198). when ends the message ("nothing was written"). */
static bool s_other_running(mycopy_t *c, const myconn_result_t *r, const char *when)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *name = myconn_col(r, i, "Connection_name");
        const char *io = myconn_col(r, i, "Slave_IO_Running");
        const char *sql = myconn_col(r, i, "Slave_SQL_Running");
        if (name && strcmp(name, c->connection) == 0)
            continue;
        /* The I/O thread is also "Connecting" or "Preparing": only "No" is stopped. */
        if ((io && strcmp(io, "No") != 0) || (sql && strcmp(sql, "No") != 0)) {
            mystep_failf(&c->step,
                         "the target replicates on connection %s%s%s: its gtid_slave_pos cannot be "
                         "set while it runs (stop it, or copy once it is done): %s",
                         name && name[0] ? "'" : "", name && name[0] ? name : "(the default)",
                         name && name[0] ? "'" : "", when);
            return true;
        }
    }
    return false;
}

/* Statements run in turn on the target's control session (c->ddl, freed
 * once all ran), then then(c). */
static void s_ddl_next(mycopy_t *c);

static void s_on_ddl(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, NULL, r);
        return;
    }
    s_ddl_next(c);
}

static void s_ddl_next(mycopy_t *c)
{
    if (c->ddl_i == c->n_ddl) {
        void (*then)(mycopy_t *) = c->ddl_then;
        s_ddl_free(c);
        then(c);
        return;
    }
    mystep_query(&c->step, c->tgt, "dropping what an earlier copy left on the target",
                 c->ddl[c->ddl_i++], c->timeout_ms, s_on_ddl, c);
}

/* Takes sql. */
static void s_ddl_add(mycopy_t *c, char *sql)
{
    c->ddl = xrealloc(c->ddl, (c->n_ddl + 1) * sizeof *c->ddl);
    c->ddl[c->n_ddl++] = sql;
}

/* ---- (6) replication -------------------------------------------------------- */

static void s_on_started(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "starting the replication on the target", r);
        return;
    }
    Godwit__MyCopyResult *res = xcalloc(1, sizeof *res);
    godwit__my_copy_result__init(res);
    res->already_done = false;
    res->gtid_pos = xstrdup(c->gtid_pos);
    res->tables = (uint32_t)c->n_tables;
    res->rows = c->rows;
    res->copy_ms = (double)s_elapsed(c);
    log_info("copy of database %s (connection %s): %zu tables, %" PRIu64
             " rows in %.0f ms; replication started after %s",
             c->database, c->connection, c->n_tables, c->rows, res->copy_ms,
             c->gtid_pos[0] ? c->gtid_pos : "(the beginning)");
    mystep_finish(&c->step, &res->base, NULL);
}

static void s_on_filter(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step,
                          "setting the replication connection's replicate_do_db on the target", r);
        return;
    }
    /* The connection name passed step_godwit_name: [a-z0-9_] only. */
    char *sql = xasprintf("START SLAVE '%s'", c->connection);
    mystep_query(&c->step, c->tgt, "starting the replication", sql, c->timeout_ms, s_on_started, c);
    free(sql);
}

static void s_on_changed(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step,
                          "creating the replication connection on the target (CHANGE MASTER)", r);
        return;
    }
    /* A per-connection filter is set while the connection is stopped
     * (after CHANGE MASTER made it, before START SLAVE): MariaDB refuses it
     * for a connection that does not exist (1210). SET GLOBAL does not
     * outlive a restart of the server. */
    char *db = mystep_literal(&c->step, c->tgt, c->database);
    if (!db)
        return;
    char *sql = xasprintf("SET GLOBAL `%s`.replicate_do_db = %s", c->connection, db);
    mystep_query(&c->step, c->tgt, "setting replicate_do_db", sql, c->timeout_ms, s_on_filter, c);
    free(sql);
    free(db);
}

static void s_on_slave_pos(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok && (r->errnum == S_ER_GTID_POS_CONFLICTS ||
                   r->errnum == S_ER_GTID_POS_MISSING_DOMAIN)) {
        /* Checked before the first write (s_on_target_binlog): the
         * target's binary log took a GTID of its own since. */
        char *msg = myconn_result_message(NULL, r);
        mystep_failf(&c->step,
                     "setting gtid_slave_pos to '%s' on the target: its binary log took a GTID of "
                     "the target's own since the copy began (%s): the database is copied but not "
                     "replicated; a new copy starts over, and checks the target's binary log "
                     "before it writes",
                     c->slave_pos, msg);
        free(msg);
        return;
    }
    if (!r->ok) {
        mystep_fail_query(&c->step, "setting gtid_slave_pos on the target", r);
        return;
    }
    char *sql = mystep_change_master_sql(&c->step, c->tgt, c->connection, c->peer_name,
                                         c->peer_host, c->peer_port, c->peer_user,
                                         c->peer_password_file);
    if (!sql)
        return;
    /* Never logged: the statement holds the password. */
    mystep_query(&c->step, c->tgt, "creating the replication connection", sql, c->timeout_ms,
                 s_on_changed, c);
    keys_wipe_free(sql);
}

static void s_on_all_slaves(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the target's replication connections", r);
        return;
    }
    if (s_other_running(c, r, "the database is copied, a new copy starts over"))
        return;
    char *pos = mystep_literal(&c->step, c->tgt, c->slave_pos);
    if (!pos)
        return;
    char *sql = xasprintf("SET GLOBAL gtid_slave_pos = %s", pos);
    mystep_query(&c->step, c->tgt, "setting gtid_slave_pos", sql, c->timeout_ms, s_on_slave_pos, c);
    free(sql);
    free(pos);
}

static void s_replicate(mycopy_t *c)
{
    log_info("copy of database %s (connection %s): %" PRIu64 " rows of %zu tables written in "
             "%" PRIu64 " ms",
             c->database, c->connection, c->rows, c->n_tables, s_elapsed(c));
    mystep_query(&c->step, c->tgt, "reading the target's replication connections",
                 "SHOW ALL SLAVES STATUS", c->timeout_ms, s_on_all_slaves, c);
}

/* ---- (5b) the views, routines, triggers and events --------------------------- */

/* After every row is written (a trigger made before would fire for the
 * copy's INSERTs) and before replication starts, on the target's control
 * session (sql_log_bin = 0, in the database: SHOW CREATE's text names the
 * table of a trigger, a routine and an event without their database).
 * Each is made as mariadb-dump makes it: in a session with the object's
 * sql_mode, character_set_client (and _results) and collation_connection,
 * an event's time_zone too (its STARTS and ENDS are in it); a view with
 * the reader session's sql_mode, the one SHOW CREATE VIEW printed it in.
 * Views made in name order, a view that fails because another view is not
 * there yet (1146, 1356) waits for the next pass; a pass that makes none
 * fails the copy naming one. */
static void s_make_next(mycopy_t *c);

static void s_on_obj_made(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    s_obj_t *o = &c->objs[c->step_i];
    if (!r->ok && o->kind == S_OBJ_VIEW &&
        (r->errnum == S_ER_NO_SUCH_TABLE || r->errnum == S_ER_VIEW_INVALID)) {
        free(o->error);
        o->error = myconn_result_message(NULL, r);
        c->step_i++;
        s_make_next(c);
        return;
    }
    if (!r->ok && r->errnum == S_ER_NO_SUCH_USER) {
        /* A missing DEFINER is only a note (1449) for most objects, but an
         * error for a view that calls a stored function (10.11, tried). */
        char *q = mytext_qname(c->database, o->name);
        char *msg = myconn_result_message(NULL, r);
        mystep_failf(&c->step,
                     "creating %s %s on the target: %s: create that account on the target "
                     "(CREATE USER, with its grants: the application needs it there after the "
                     "cutover too) and start the copy again",
                     s_kinds[o->kind].name, q, msg);
        free(msg);
        free(q);
        return;
    }
    if (!r->ok && (r->errnum == S_ER_SPECIFIC_ACCESS_DENIED ||
                   r->errnum == S_ER_BINLOG_CREATE_ROUTINE_NEED_SUPER)) {
        /* 10.11, tried: a DEFINER other than the session's user needs SET
         * USER (or SUPER); a function or a trigger on a server whose binary
         * log is on needs SUPER or log_bin_trust_function_creators = ON,
         * sql_log_bin = 0 or not. */
        char *q = mytext_qname(c->database, o->name);
        char *msg = myconn_result_message(NULL, r);
        mystep_failf(&c->step,
                     "creating %s %s on the target: %s: the target agent's user needs SET USER "
                     "(to keep the DEFINER), and for functions and triggers SUPER or SET GLOBAL "
                     "log_bin_trust_function_creators = ON on the target",
                     s_kinds[o->kind].name, q, msg);
        free(msg);
        free(q);
        return;
    }
    if (!r->ok) {
        char *q = mytext_qname(c->database, o->name);
        char *what = xasprintf("creating %s %s on the target", s_kinds[o->kind].name, q);
        mystep_fail_query(&c->step, what, r);
        free(what);
        free(q);
        return;
    }
    o->made = true;
    c->obj_progress = c->obj_progress || o->kind == S_OBJ_VIEW;
    c->step_i++;
    s_make_next(c);
}

static void s_on_obj_session(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    s_obj_t *o = &c->objs[c->step_i];
    if (!r->ok) {
        char *q = mytext_qname(c->database, o->name);
        char *what = xasprintf("setting the session of %s %s (sql_mode '%s', character set "
                               "%s, collation %s) on the target",
                               s_kinds[o->kind].name, q, o->sql_mode, o->cs_client, o->coll_conn);
        mystep_fail_query(&c->step, what, r);
        free(what);
        free(q);
        return;
    }
    mystep_query(&c->step, c->tgt, "creating a view, routine, trigger or event", o->create_sql,
                 c->timeout_ms, s_on_obj_made, c);
}

static void s_on_session_back(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "setting the target session back", r);
        return;
    }
    s_replicate(c);
}

static void s_make_next(mycopy_t *c)
{
    while (c->step_i < c->n_objs && c->objs[c->step_i].made)
        c->step_i++;
    if (c->step_i == c->n_objs || c->objs[c->step_i].kind > S_OBJ_VIEW) {
        /* Past the views: another pass while one waits and the last made one. */
        size_t wait = c->n_objs;
        for (size_t i = 0; i < c->n_objs && wait == c->n_objs; i++)
            if (c->objs[i].kind == S_OBJ_VIEW && !c->objs[i].made)
                wait = i;
        if (wait < c->n_objs && c->obj_progress) {
            c->obj_progress = false;
            c->step_i = wait;
            s_make_next(c);
            return;
        }
        if (wait < c->n_objs) {
            char *q = mytext_qname(c->database, c->objs[wait].name);
            mystep_failf(&c->step,
                         "creating view %s on the target: %s (no other view left to make "
                         "first: it reads a table or view the source lacks too)",
                         q, c->objs[wait].error ? c->objs[wait].error : "failed");
            free(q);
            return;
        }
    }
    if (c->step_i == c->n_objs) {
        log_info("copy of database %s (connection %s): %zu functions, %zu procedures, %zu views, "
                 "%zu triggers and %zu events made on the target",
                 c->database, c->connection, c->n_kind[S_OBJ_FUNCTION],
                 c->n_kind[S_OBJ_PROCEDURE], c->n_kind[S_OBJ_VIEW], c->n_kind[S_OBJ_TRIGGER],
                 c->n_kind[S_OBJ_EVENT]);
        /* Back to s_tgt_init's session (sql_mode: the server's default). */
        mystep_query(&c->step, c->tgt, "setting the target session back",
                     "SET NAMES utf8mb4, SESSION time_zone = '+00:00',"
                     " SESSION sql_mode = @@GLOBAL.sql_mode",
                     c->timeout_ms, s_on_session_back, c);
        return;
    }
    s_obj_t *o = &c->objs[c->step_i];
    char *mode = mystep_literal(&c->step, c->tgt, o->sql_mode);
    char *cs = mode ? mystep_literal(&c->step, c->tgt, o->cs_client) : NULL;
    char *co = cs ? mystep_literal(&c->step, c->tgt, o->coll_conn) : NULL;
    char *tz = co && o->time_zone ? mystep_literal(&c->step, c->tgt, o->time_zone) : NULL;
    if (co && (!o->time_zone || tz)) {
        char *tzs = tz ? xasprintf(", SESSION time_zone = %s", tz) : xstrdup("");
        char *sql = xasprintf("SET SESSION sql_mode = %s, SESSION character_set_client = %s,"
                              " SESSION character_set_results = %s,"
                              " SESSION collation_connection = %s%s",
                              mode, cs, cs, co, tzs);
        mystep_query(&c->step, c->tgt, "setting an object's session", sql, c->timeout_ms,
                     s_on_obj_session, c);
        free(sql);
        free(tzs);
    }
    free(mode);
    free(cs);
    free(co);
    free(tz);
}

static void s_on_use_again(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "using the target database", r);
        return;
    }
    c->step_i = 0;
    c->obj_progress = false;
    s_make_next(c);
}

/* USE again: the control session sat idle through the rows, and a
 * session made again (myconn reconnects) has no database. */
static void s_make_objects(mycopy_t *c)
{
    if (c->n_objs == 0) {
        s_replicate(c);
        return;
    }
    char *db = mytext_ident(c->database);
    char *sql = xasprintf("USE %s", db);
    mystep_query(&c->step, c->tgt, "using the target database", sql, c->timeout_ms,
                 s_on_use_again, c);
    free(sql);
    free(db);
}

/* ---- (5) the rows ----------------------------------------------------------- */

static void s_reader_next(s_reader_t *rd);

static void s_on_committed(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    s_reader_t *rd = arg;
    mycopy_t *c = rd->c;
    if (!r->ok) {
        mystep_fail_query(&c->step, "ending a reader's snapshot on the source", r);
        return;
    }
    myconn_destroy(&rd->src);
    myconn_destroy(&rd->tgt);
    rd->finished = true;
    for (size_t i = 0; i < c->n_rd; i++)
        if (!c->rd[i].finished)
            return;
    s_make_objects(c);
}

static void s_write_next(s_reader_t *rd);

static void s_on_inserted(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    s_reader_t *rd = arg;
    mycopy_t *c = rd->c;
    if (!r->ok) {
        char *what = xasprintf("writing rows of table %s on the target", rd->t->name);
        mystep_fail_query(&c->step, what, r);
        free(what);
        return;
    }
    s_write_next(rd);
}

/* Sends the chunk's next INSERT; after the last, the chunk is counted and
 * the reader goes on. */
static void s_write_next(s_reader_t *rd)
{
    mycopy_t *c = rd->c;
    if (rd->next_stmt < rd->n_stmts) {
        const char *sql = rd->stmts[rd->next_stmt++];
        mystep_query(&c->step, rd->tgt, "writing rows", sql, c->rows_timeout_ms, s_on_inserted, rd);
        return;
    }
    s_reader_stmts_free(rd);
    s_table_t *t = rd->t;
    t->rows_done += rd->chunk_rows;
    c->rows += rd->chunk_rows;
    c->t_last_write = uv_now(c->loop);
    if (!t->keyset || rd->chunk_rows < S_CHUNK_ROWS) {
        t->state = S_DONE;
        log_debug("copy of database %s: table %s done, %" PRIu64 " rows", c->database, t->name,
                  t->rows_done);
        rd->t = NULL;
    }
    s_reader_next(rd);
}

/* The INSERTs of a chunk, each cut after S_INSERT_BYTES. */
static void s_build_inserts(s_reader_t *rd, const myconn_result_t *r)
{
    const s_table_t *t = rd->t;
    mycopy_t *c = rd->c;
    char *qname = mytext_qname(c->database, t->name);
    mytext_buf_t head = { 0 };
    mytext_add(&head, "INSERT INTO ");
    mytext_add(&head, qname);
    mytext_add(&head, " (");
    for (size_t j = 0; j < t->n_cols; j++) {
        if (j)
            mytext_add(&head, ", ");
        mytext_add(&head, t->cols[j]);
    }
    mytext_add(&head, ") VALUES ");
    free(qname);

    size_t cap = 0;
    mytext_buf_t b = { 0 };
    for (size_t i = 0; i < r->n_rows; i++) {
        if (!b.s)
            mytext_addn(&b, head.s, head.len);
        else
            mytext_add(&b, ", ");
        mytext_add(&b, "(");
        for (size_t j = 0; j < t->n_cols; j++) {
            if (j)
                mytext_add(&b, ", ");
            s_add_value(&b, t, j, r->rows[i][j]);
        }
        mytext_add(&b, ")");
        if (b.len >= S_INSERT_BYTES || i + 1 == r->n_rows) {
            if (rd->n_stmts == cap) {
                cap = cap ? cap * 2 : 4;
                rd->stmts = xrealloc(rd->stmts, cap * sizeof *rd->stmts);
            }
            rd->stmts[rd->n_stmts++] = b.s;
            b = (mytext_buf_t){ 0 };
        }
    }
    free(head.s);
}

static mykey_key_t s_key(const s_table_t *t)
{
    return (mykey_key_t){ .n = t->n_pk,
                          .cols = t->pk_cols,
                          .kind = t->pk_kind,
                          .charset = t->pk_charset };
}

/* The WHERE of the chunk after the last row of r: the rows above its key
 * (mykey_range_where, the form the range optimizer reads as ranges of the
 * key, each value with its column's character set as an introducer, so
 * that the comparison uses the column's collation, as ORDER BY does).
 * NULL when a value is not of its column's form. */
static char *s_keyset_where(const s_table_t *t, const myconn_result_t *r)
{
    char **last = r->rows[r->n_rows - 1];
    const char **lower = xcalloc(t->n_pk, sizeof *lower);
    for (size_t k = 0; k < t->n_pk; k++)
        lower[k] = last[t->pk[k]];
    mykey_key_t key = s_key(t);
    char *cond = NULL;
    char *where = NULL;
    if (mykey_range_where(&key, lower, t->n_pk, NULL, 0, &cond))
        where = xasprintf(" WHERE %s", cond);
    free(cond);
    free(lower);
    return where;
}

static void s_on_chunk(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    s_reader_t *rd = arg;
    mycopy_t *c = rd->c;
    s_table_t *t = rd->t;
    if (!r->ok) {
        char *what = xasprintf("reading rows of table %s on the source", t->name);
        mystep_fail_query(&c->step, what, r);
        free(what);
        return;
    }
    if (r->n_cols != t->n_cols) {
        mystep_failf(&c->step,
                     "reading rows of table %s on the source: %zu columns returned, %zu expected",
                     t->name, r->n_cols, t->n_cols);
        return;
    }
    rd->chunk_rows = r->n_rows;
    if (r->n_rows > 0) {
        /* A key's value is never NULL, so the last row's values make a
         * WHERE; a key column the server answers NULL for would not. */
        if (t->keyset) {
            char **last = r->rows[r->n_rows - 1];
            for (size_t k = 0; k < t->n_pk; k++)
                if (!last[t->pk[k]]) {
                    mystep_failf(&c->step, "table %s: a primary key column read as NULL", t->name);
                    return;
                }
            free(t->after);
            t->after = s_keyset_where(t, r);
            if (!t->after) {
                mystep_failf(&c->step,
                             "table %s: the last row's key is not of its columns' "
                             "form (a number's text, or hex digits)",
                             t->name);
                return;
            }
        }
        s_build_inserts(rd, r);
    }
    s_write_next(rd);
}

static void s_reader_next(s_reader_t *rd)
{
    mycopy_t *c = rd->c;
    if (c->step.disposed)
        return;
    if (!rd->t) {
        if (c->next_table == c->n_tables) {
            mystep_query(&c->step, rd->src, "ending a reader's snapshot", "COMMIT", c->timeout_ms,
                         s_on_committed, rd);
            return;
        }
        rd->t = &c->tables[c->next_table++];
        rd->t->state = S_COPYING;
        log_debug("copy of database %s: reader %zu copies table %s", c->database, rd->i,
                  rd->t->name);
    }
    s_table_t *t = rd->t;
    mytext_buf_t b = { 0 };
    mytext_add(&b, "SELECT ");
    for (size_t j = 0; j < t->n_cols; j++) {
        if (j)
            mytext_add(&b, ", ");
        char *sel = mykey_select(t->cols[j], t->kind[j]);
        mytext_add(&b, sel);
        free(sel);
    }
    char *qname = mytext_qname(c->database, t->name);
    mytext_add(&b, " FROM ");
    mytext_add(&b, qname);
    free(qname);
    if (t->keyset) {
        if (t->after)
            mytext_add(&b, t->after);
        mykey_key_t key = s_key(t);
        char *order = mykey_order_by(&key);
        mytext_add(&b, " ORDER BY ");
        mytext_add(&b, order);
        free(order);
        char limit[32];
        snprintf(limit, sizeof limit, " LIMIT %d", S_CHUNK_ROWS);
        mytext_add(&b, limit);
    }
    mystep_query(&c->step, rd->src, "reading rows", b.s, c->rows_timeout_ms, s_on_chunk, rd);
    free(b.s);
}

static void s_copy_rows(mycopy_t *c)
{
    myconn_params_t tp = c->server;
    tp.database = NULL;
    tp.init = s_tgt_init;
    for (size_t i = 0; i < c->n_rd; i++) {
        c->rd[i].tgt = myconn_new(c->loop, "agent mycopy writer", &tp);
        if (!c->rd[i].tgt) {
            mystep_failf(&c->step, "cannot make a writer's session on the target");
            return;
        }
    }
    log_info("copy of database %s (connection %s): copying the rows of %zu tables with %zu "
             "readers",
             c->database, c->connection, c->n_tables, c->n_rd);
    c->t_last_write = uv_now(c->loop);
    for (size_t i = 0; i < c->n_rd && !c->step.disposed; i++)
        s_reader_next(&c->rd[i]);
}

/* ---- (4) the target's database and tables ---------------------------------- */

static void s_create_next(mycopy_t *c);

static void s_on_created_table(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        char *what = xasprintf("creating table %s on the target", c->tables[c->step_i].name);
        mystep_fail_query(&c->step, what, r);
        free(what);
        return;
    }
    c->step_i++;
    s_create_next(c);
}

static void s_create_next(mycopy_t *c)
{
    if (c->step_i == c->n_tables) {
        s_copy_rows(c);
        return;
    }
    mystep_query(&c->step, c->tgt, "creating a table", c->tables[c->step_i].create_sql,
                 c->timeout_ms, s_on_created_table, c);
}

static void s_on_use(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "using the target database", r);
        return;
    }
    /* SHOW CREATE TABLE's text names the table alone: it goes into the
     * session's database. */
    c->step_i = 0;
    s_create_next(c);
}

static void s_use(mycopy_t *c)
{
    char *db = mytext_ident(c->database);
    char *sql = xasprintf("USE %s", db);
    mystep_query(&c->step, c->tgt, "using the target database", sql, c->timeout_ms, s_on_use, c);
    free(sql);
    free(db);
}

static void s_on_db_ready(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "preparing the target database", r);
        return;
    }
    s_use(c);
}

/* What a copy of ours that died left in the database (r: kind, db, name):
 * its views first (DROP TABLE leaves a view), its tables with their
 * triggers, its routines and events. */
static void s_on_old_objects(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading what a copy left on the target", r);
        return;
    }
    size_t n = 0;
    static const char *const order[] = { "VIEW", "TABLE", "FUNCTION", "PROCEDURE", "EVENT" };
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        mytext_buf_t tables = { 0 };
        for (size_t i = 0; i < r->n_rows; i++) {
            const char *kind = myconn_col(r, i, "kind"), *db = myconn_col(r, i, "db");
            const char *name = myconn_col(r, i, "name");
            /* information_schema compares names without case: the bytes here. */
            if (!kind || !db || !name || strcmp(kind, order[k]) != 0 ||
                strcmp(db, c->database) != 0)
                continue;
            char *q = mytext_qname(c->database, name);
            n++;
            if (strcmp(kind, "TABLE") == 0) {
                mytext_add(&tables, tables.s ? ", " : "DROP TABLE IF EXISTS ");
                mytext_add(&tables, q);
            } else {
                s_ddl_add(c, xasprintf("DROP %s IF EXISTS %s", kind, q));
            }
            free(q);
        }
        if (tables.s)
            s_ddl_add(c, tables.s);
    }
    if (n == 0) {
        s_use(c);
        return;
    }
    log_warn("copy of database %s (connection %s): dropping the %zu tables, views, routines "
             "and events an earlier copy left on the target",
             c->database, c->connection, n);
    c->ddl_i = 0;
    c->ddl_then = s_use;
    s_ddl_next(c);
}

static void s_on_target_db(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the target database", r);
        return;
    }
    char *dbq = mytext_ident(c->database);
    char *created = xasprintf("godwit copy %s: created", c->connection);
    char *adopted = xasprintf("godwit copy %s: adopted", c->connection);
    char *sql = NULL;
    const char *what = NULL;
    myconn_cb cb = s_on_db_ready;
    if (r->n_rows == 0) {
        char *lit = mystep_literal(&c->step, c->tgt, created);
        if (!lit)
            goto out;
        char *cs = c->charset ? xasprintf(" CHARACTER SET %s", c->charset) : xstrdup("");
        char *co = c->collation ? xasprintf(" COLLATE %s", c->collation) : xstrdup("");
        sql = xasprintf("CREATE DATABASE %s%s%s COMMENT %s", dbq, cs, co, lit);
        what = "creating the target database";
        free(cs);
        free(co);
        free(lit);
    } else {
        const char *comment = myconn_col(r, 0, "comment");
        const char *n_s = myconn_col(r, 0, "n");
        unsigned long long n = n_s ? strtoull(n_s, NULL, 10) : 0;
        if (comment && (strcmp(comment, created) == 0 || strcmp(comment, adopted) == 0)) {
            /* A copy of ours that died: its tables go, the copy starts again. */
            char *lit = mystep_literal(&c->step, c->tgt, c->database);
            if (!lit)
                goto out;
            sql = xasprintf(
                "SELECT 'TABLE' AS kind, TABLE_SCHEMA AS db, TABLE_NAME AS name"
                " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %1$s AND TABLE_TYPE <> 'VIEW'"
                " UNION ALL SELECT 'VIEW', TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS"
                " WHERE TABLE_SCHEMA = %1$s"
                " UNION ALL SELECT ROUTINE_TYPE, ROUTINE_SCHEMA, ROUTINE_NAME"
                " FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %1$s"
                " UNION ALL SELECT 'EVENT', EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS"
                " WHERE EVENT_SCHEMA = %1$s",
                lit);
            what = "reading what a copy left on the target";
            cb = s_on_old_objects;
            free(lit);
        } else if (n == 0) {
            char *lit = mystep_literal(&c->step, c->tgt, adopted);
            if (!lit)
                goto out;
            sql = xasprintf("ALTER DATABASE %s COMMENT %s", dbq, lit);
            what = "adopting the target database";
            free(lit);
        } else {
            mystep_failf(&c->step,
                         "the target database %s holds tables that godwit did not copy: nothing "
                         "was written",
                         dbq);
            goto out;
        }
    }
    mystep_query(&c->step, c->tgt, what, sql, c->timeout_ms, cb, c);
out:
    free(sql);
    free(dbq);
    free(created);
    free(adopted);
}

static void s_target_db(mycopy_t *c)
{
    char *db = mystep_literal(&c->step, c->tgt, c->database);
    if (!db)
        return;
    char *sql = xasprintf("SELECT s.SCHEMA_COMMENT AS comment,"
                          " (SELECT COUNT(*) FROM information_schema.TABLES t"
                          "  WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME) AS n"
                          " FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = %s",
                          db);
    mystep_query(&c->step, c->tgt, "reading the target database", sql, c->timeout_ms,
                 s_on_target_db, c);
    free(sql);
    free(db);
}

/* ---- (3b) the source's views, routines, triggers and events ----------------- */

/* Read by the first reader, in its snapshot, after the tables (SHOW
 * CREATE of these is not read in the snapshot but at the moment it runs:
 * one changed meanwhile is made as it is then). Their text is read with
 * character_set_results = binary, as mariadb-dump reads it: the bytes as
 * stored, which the target reads again in the object's
 * character_set_client. A definition the peer's user cannot read fails
 * the copy naming the privilege (s_kinds); an object it cannot see at all
 * (information_schema shows a user only what it holds a privilege on) is
 * not copied: see mycopy.h. */

/* Before the first write: the target's slave_run_triggers_for_rbr. With
 * YES (or LOGGING, ENFORCE) the replication's SQL thread fires the
 * target's triggers for each row event it applies; the source's row
 * events already hold what its triggers did (a BEFORE trigger's values in
 * the row, another table's rows written by a trigger as events of their
 * own), so the triggers we make would apply their effect a second time. */
static void s_before_target(mycopy_t *c)
{
    if (c->n_kind[S_OBJ_TRIGGER] > 0 &&
        (!c->rbr_triggers || strcasecmp(c->rbr_triggers, "NO") != 0)) {
        mystep_failf(&c->step,
                     "the target's slave_run_triggers_for_rbr is %s: it would fire the %zu "
                     "triggers the copy makes for every row the replication applies, on top of "
                     "what the source's triggers wrote in those rows: SET GLOBAL "
                     "slave_run_triggers_for_rbr = NO on the target (and in its configuration "
                     "file): nothing was written",
                     c->rbr_triggers ? c->rbr_triggers : "unknown", c->n_kind[S_OBJ_TRIGGER]);
        return;
    }
    s_target_db(c);
}

/* An event's CREATE with its status DISABLE ON SLAVE instead of ENABLE
 * (malloc'd), as the server gives a replicated CREATE EVENT: it does not
 * run on the target while the target replicates (STATUS
 * SLAVESIDE_DISABLED). A disabled event stays so. NULL for a text without
 * its status where SHOW CREATE EVENT prints it ("ON COMPLETION [NOT]
 * PRESERVE status", after the schedule, before COMMENT and DO). */
static char *s_event_slave_disabled(const char *sql)
{
    static const char en[] = "PRESERVE ENABLE";
    const char *p = strstr(sql, en);
    const char *d = strstr(sql, "PRESERVE DISABLE");
    if (d && (!p || d < p))
        return xstrdup(sql); /* DISABLE, or DISABLE ON SLAVE already */
    if (!p || (p[sizeof en - 1] != ' ' && p[sizeof en - 1] != '\n'))
        return NULL;
    return xasprintf("%.*sPRESERVE DISABLE ON SLAVE%s", (int)(p - sql), sql, p + sizeof en - 1);
}

static void s_obj_show_next(mycopy_t *c);

static void s_on_obj_show(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    s_obj_t *o = &c->objs[c->step_i];
    const char *kind = s_kinds[o->kind].name;
    char *q = mytext_qname(c->database, o->name);
    const char *def = r->ok && r->n_rows == 1 ? myconn_col(r, 0, s_kinds[o->kind].column) : NULL;
    if (!r->ok && (s_access_denied(r) || r->errnum == S_ER_TABLEACCESS_DENIED)) {
        char *msg = myconn_result_message(NULL, r);
        mystep_failf(&c->step,
                     "reading the definition of %s %s on the source: %s: peer %s's user needs %s "
                     "to copy it: nothing was written",
                     kind, q, msg, c->peer_name, s_kinds[o->kind].privilege);
        free(msg);
        goto out;
    }
    if (!r->ok) {
        char *what = xasprintf("reading the definition of %s %s on the source", kind, q);
        mystep_fail_query(&c->step, what, r);
        free(what);
        goto out;
    }
    if (!def) {
        /* A routine the user may run (EXECUTE) but not read: SHOW CREATE
         * answers its row with a NULL definition. */
        mystep_failf(&c->step,
                     "reading the definition of %s %s on the source: none returned: peer %s's "
                     "user needs %s to copy it: nothing was written",
                     kind, q, c->peer_name, s_kinds[o->kind].privilege);
        goto out;
    }
    const char *mode = o->kind == S_OBJ_VIEW ? c->view_mode : myconn_col(r, 0, "sql_mode");
    const char *cs = myconn_col(r, 0, "character_set_client");
    const char *co = myconn_col(r, 0, "collation_connection");
    const char *tz = o->kind == S_OBJ_EVENT ? myconn_col(r, 0, "time_zone") : "";
    if (!mode || !mytext_plain_name(cs) || !mytext_plain_name(co) || !tz) {
        mystep_failf(&c->step,
                     "reading the definition of %s %s on the source: its sql_mode, character "
                     "set, collation or time zone is missing or unexpected: nothing was written",
                     kind, q);
        goto out;
    }
    o->create_sql = o->kind == S_OBJ_EVENT ? s_event_slave_disabled(def) : xstrdup(def);
    if (!o->create_sql) {
        mystep_failf(&c->step,
                     "event %s: its definition on the source has no ENABLE or DISABLE where "
                     "SHOW CREATE EVENT prints its status: nothing was written",
                     q);
        goto out;
    }
    o->sql_mode = xstrdup(mode);
    o->cs_client = xstrdup(cs);
    o->coll_conn = xstrdup(co);
    o->time_zone = o->kind == S_OBJ_EVENT ? xstrdup(tz) : NULL;
    c->step_i++;
    s_obj_show_next(c);
out:
    free(q);
}

static void s_on_results_back(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "setting the reader's character_set_results back", r);
        return;
    }
    s_before_target(c);
}

static void s_obj_show_next(mycopy_t *c)
{
    if (c->step_i == c->n_objs) {
        mystep_query(&c->step, c->rd[0].src, "setting character_set_results back",
                     "SET SESSION character_set_results = utf8mb4", c->timeout_ms,
                     s_on_results_back, c);
        return;
    }
    const s_obj_t *o = &c->objs[c->step_i];
    char *q = mytext_qname(c->database, o->name);
    char *sql = xasprintf("SHOW CREATE %s %s", s_kinds[o->kind].word, q);
    mystep_query(&c->step, c->rd[0].src, "reading a definition", sql, c->timeout_ms,
                 s_on_obj_show, c);
    free(sql);
    free(q);
}

static void s_on_results_binary(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "setting the reader's character_set_results to binary", r);
        return;
    }
    c->step_i = 0;
    s_obj_show_next(c);
}

static void s_on_obj_list(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the source's views, routines, triggers and events",
                          r);
        return;
    }
    c->objs = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *c->objs);
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *kind = myconn_col(r, i, "kind"), *db = myconn_col(r, i, "db");
        const char *name = myconn_col(r, i, "name");
        int k = kind ? atoi(kind) : -1;
        /* information_schema compares names without case: the bytes here. */
        if (k < 0 || k >= S_OBJ_KINDS || !db || !name || strcmp(db, c->database) != 0)
            continue;
        if (!c->view_mode)
            c->view_mode = xstrdup(myconn_col(r, i, "mode") ? myconn_col(r, i, "mode") : "");
        s_obj_t *o = &c->objs[c->n_objs++];
        o->kind = k;
        o->name = xstrdup(name);
        c->n_kind[k]++;
    }
    log_info("copy of database %s (connection %s): %zu functions, %zu procedures, %zu views, "
             "%zu triggers, %zu events to copy",
             c->database, c->connection, c->n_kind[S_OBJ_FUNCTION], c->n_kind[S_OBJ_PROCEDURE],
             c->n_kind[S_OBJ_VIEW], c->n_kind[S_OBJ_TRIGGER], c->n_kind[S_OBJ_EVENT]);
    if (c->n_objs == 0) {
        s_before_target(c);
        return;
    }
    mystep_query(&c->step, c->rd[0].src, "setting character_set_results to binary",
                 "SET SESSION character_set_results = binary", c->timeout_ms,
                 s_on_results_binary, c);
}

/* Rows: kind (S_OBJ_*), db, name, mode (the session's sql_mode), in the
 * order they are made: a table's triggers in their ACTION_ORDER (SHOW
 * CREATE TRIGGER has no FOLLOWS: made in that order, they keep it). */
static void s_list_objects(mycopy_t *c)
{
    const char *db = c->src_db_lit;
    char *sql = xasprintf(
        "SELECT x.kind, x.db, x.name, @@SESSION.sql_mode AS mode FROM ("
        "SELECT %2$d AS kind, ROUTINE_SCHEMA AS db, ROUTINE_NAME AS name, '' AS tbl, 0 AS ord"
        " FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %1$s"
        " AND ROUTINE_TYPE = 'FUNCTION'"
        " UNION ALL SELECT %3$d, ROUTINE_SCHEMA, ROUTINE_NAME, '', 0"
        " FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %1$s"
        " AND ROUTINE_TYPE = 'PROCEDURE'"
        " UNION ALL SELECT %4$d, TABLE_SCHEMA, TABLE_NAME, '', 0 FROM information_schema.VIEWS"
        " WHERE TABLE_SCHEMA = %1$s"
        " UNION ALL SELECT %5$d, TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_ORDER"
        " FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %1$s"
        " UNION ALL SELECT %6$d, EVENT_SCHEMA, EVENT_NAME, '', 0 FROM information_schema.EVENTS"
        " WHERE EVENT_SCHEMA = %1$s"
        ") x ORDER BY x.kind, BINARY x.tbl, x.ord, BINARY x.name",
        db, S_OBJ_FUNCTION, S_OBJ_PROCEDURE, S_OBJ_VIEW, S_OBJ_TRIGGER, S_OBJ_EVENT);
    mystep_query(&c->step, c->rd[0].src, "reading the views, routines, triggers and events", sql,
                 c->timeout_ms, s_on_obj_list, c);
    free(sql);
}

/* ---- (3) the source's database ---------------------------------------------- */

static void s_show_create_next(mycopy_t *c);

static void s_on_show_create(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    s_table_t *t = &c->tables[c->step_i];
    if (!r->ok) {
        char *what = xasprintf("reading the definition of table %s on the source", t->name);
        mystep_fail_query(&c->step, what, r);
        free(what);
        return;
    }
    if (r->n_rows != 1 || r->n_cols < 2 || !r->rows[0][1]) {
        mystep_failf(&c->step,
                     "reading the definition of table %s on the source: no definition returned",
                     t->name);
        return;
    }
    t->create_sql = xstrdup(r->rows[0][1]);
    c->step_i++;
    s_show_create_next(c);
}

static void s_show_create_next(mycopy_t *c)
{
    if (c->step_i == c->n_tables) {
        s_list_objects(c);
        return;
    }
    char *q = mytext_qname(c->database, c->tables[c->step_i].name);
    char *sql = xasprintf("SHOW CREATE TABLE %s", q);
    mystep_query(&c->step, c->rd[0].src, "reading a table's definition", sql, c->timeout_ms,
                 s_on_show_create, c);
    free(sql);
    free(q);
}

static s_table_t *s_table_find(mycopy_t *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_tables; i++)
        if (strcmp(c->tables[i].name, name) == 0)
            return &c->tables[i];
    return NULL;
}

static void s_on_pk(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the source tables' primary keys", r);
        return;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        s_table_t *t = s_table_find(c, myconn_col(r, i, "tbl"));
        const char *col = myconn_col(r, i, "col");
        if (!t || !col)
            continue;
        char *q = mytext_ident(col);
        size_t j = 0;
        while (j < t->n_cols && strcmp(t->cols[j], q) != 0)
            j++;
        free(q);
        if (j == t->n_cols) {
            mystep_failf(&c->step, "table %s: primary key column %s is not among its columns",
                         t->name, col);
            return;
        }
        t->pk = xrealloc(t->pk, (t->n_pk + 1) * sizeof *t->pk);
        t->pk[t->n_pk++] = j;
    }
    for (size_t i = 0; i < c->n_tables; i++) {
        s_table_t *t = &c->tables[i];
        if (t->n_cols == 0) {
            mystep_failf(&c->step, "table %s: no columns read on the source", t->name);
            return;
        }
        t->keyset = t->n_pk > 0;
        t->pk_cols = xcalloc(t->n_pk ? t->n_pk : 1, sizeof *t->pk_cols);
        t->pk_kind = xcalloc(t->n_pk ? t->n_pk : 1, sizeof *t->pk_kind);
        t->pk_charset = xcalloc(t->n_pk ? t->n_pk : 1, sizeof *t->pk_charset);
        for (size_t k = 0; k < t->n_pk; k++) {
            size_t j = t->pk[k];
            t->keyset = t->keyset && t->keyok[j];
            t->pk_cols[k] = t->cols[j];
            t->pk_kind[k] = t->kind[j];
            t->pk_charset[k] = t->charset[j];
        }
        if (!t->keyset)
            log_warn("copy of database %s: table %s has no primary key usable for chunks: its "
                     "rows are read in one statement, all in memory",
                     c->database, t->name);
    }
    c->listed = true;
    c->step_i = 0;
    s_show_create_next(c);
}

static void s_on_columns(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the source tables' columns", r);
        return;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        s_table_t *t = s_table_find(c, myconn_col(r, i, "tbl"));
        const char *col = myconn_col(r, i, "col");
        const char *type = myconn_col(r, i, "type");
        const char *cs = myconn_col(r, i, "cs");
        const char *gen = myconn_col(r, i, "gen");
        if (!t || !col || !type)
            continue;
        if (gen && strcmp(gen, "NEVER") != 0)
            continue; /* generated: the target computes it */
        size_t j = t->n_cols++;
        t->cols = xrealloc(t->cols, t->n_cols * sizeof *t->cols);
        t->kind = xrealloc(t->kind, t->n_cols * sizeof *t->kind);
        t->charset = xrealloc(t->charset, t->n_cols * sizeof *t->charset);
        t->keyok = xrealloc(t->keyok, t->n_cols * sizeof *t->keyok);
        t->cols[j] = mytext_ident(col);
        t->kind[j] = mykey_kind(type);
        t->charset[j] = mytext_plain_name(cs) && strcmp(cs, "binary") != 0 ? xstrdup(cs) : NULL;
        t->keyok[j] = mykey_range_type(type);
    }
    char *sql = xasprintf("SELECT TABLE_NAME AS tbl, COLUMN_NAME AS col"
                          " FROM information_schema.STATISTICS"
                          " WHERE TABLE_SCHEMA = %s AND INDEX_NAME = 'PRIMARY'"
                          " ORDER BY TABLE_NAME, SEQ_IN_INDEX",
                          c->src_db_lit);
    mystep_query(&c->step, c->rd[0].src, "reading the primary keys", sql, c->timeout_ms, s_on_pk,
                 c);
    free(sql);
}

static void s_on_tables(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the source database's tables", r);
        return;
    }
    c->tables = xcalloc(r->n_rows ? r->n_rows : 1, sizeof *c->tables);
    for (size_t i = 0; i < r->n_rows; i++) {
        if (!r->rows[i][0])
            continue;
        s_table_t *t = &c->tables[c->n_tables++];
        t->name = xstrdup(r->rows[i][0]);
        t->state = S_INIT;
        const char *b = myconn_col(r, i, "bytes"), *n = myconn_col(r, i, "n");
        t->bytes = b ? strtoull(b, NULL, 10) : 0;
        t->rows_est = n ? strtoull(n, NULL, 10) : 0;
    }
    char *sql = xasprintf("SELECT TABLE_NAME AS tbl, COLUMN_NAME AS col, DATA_TYPE AS type,"
                          " CHARACTER_SET_NAME AS cs, IS_GENERATED AS gen"
                          " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
                          " ORDER BY TABLE_NAME, ORDINAL_POSITION",
                          c->src_db_lit);
    mystep_query(&c->step, c->rd[0].src, "reading the columns", sql, c->timeout_ms, s_on_columns,
                 c);
    free(sql);
}

static void s_on_source_db(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the source database", r);
        return;
    }
    char *dbq = mytext_ident(c->database);
    const char *cs = myconn_col(r, 0, "cs");
    if (r->n_rows != 1 || !cs) {
        mystep_failf(&c->step,
                     "database %s does not exist on the source (or its user may not see it): "
                     "nothing was written",
                     dbq);
        free(dbq);
        return;
    }
    free(dbq);
    const char *co = myconn_col(r, 0, "co");
    c->charset = mytext_plain_name(cs) ? xstrdup(cs) : NULL;
    c->collation = mytext_plain_name(co) ? xstrdup(co) : NULL;
    char *sql = xasprintf("SELECT TABLE_NAME AS name, DATA_LENGTH AS bytes, TABLE_ROWS AS n"
                          " FROM information_schema.TABLES"
                          " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'"
                          " ORDER BY BINARY TABLE_NAME",
                          c->src_db_lit);
    mystep_query(&c->step, c->rd[0].src, "reading the tables", sql, c->timeout_ms, s_on_tables, c);
    free(sql);
}

static void s_read_source(mycopy_t *c)
{
    c->src_db_lit = mystep_literal(&c->step, c->rd[0].src, c->database);
    if (!c->src_db_lit)
        return;
    const char *db = c->src_db_lit;
    char *sql = xasprintf(
        "SELECT s.DEFAULT_CHARACTER_SET_NAME AS cs, s.DEFAULT_COLLATION_NAME AS co"
        " FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = %s",
        db);
    mystep_query(&c->step, c->rd[0].src, "reading the source database", sql, c->timeout_ms,
                 s_on_source_db, c);
    free(sql);
}

/* ---- (2) the snapshot --------------------------------------------------------- */

/* MariaDB's check of SET GLOBAL gtid_slave_pos (10.11, tried on a server):
 * only the last GTID of each domain in @@gtid_binlog_pos counts, and only
 * when it is the server's own (its server_id is @@server_id; a GTID it
 * replicated never conflicts). For such a GTID D-S-N, a position whose
 * GTID of domain D has a sequence number below N fails with 1947 (equal is
 * fine, whatever its server_id), a position without domain D with 1948;
 * both are only warnings when gtid_strict_mode is off. So a conflict in a
 * domain of the snapshot's position refuses the copy here (strict mode),
 * and the target's own GTID of a domain the snapshot's position lacks (a
 * target with a gtid_domain_id of its own) goes into the position we set:
 * the source, which never had that domain, serves the others. */
static void s_on_target_binlog(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the target's binary log position", r);
        return;
    }
    const char *id_s = myconn_col(r, 0, "id");
    const char *strict_s = myconn_col(r, 0, "strict");
    const char *binlog = myconn_col(r, 0, "pos");
    const char *rbr = myconn_col(r, 0, "rbr_triggers");
    free(c->rbr_triggers);
    c->rbr_triggers = rbr ? xstrdup(rbr) : NULL;
    gtid_t *snap = NULL, *own = NULL;
    size_t n_snap = 0, n_own = 0;
    if (!id_s || !binlog || !gtid_list_parse(c->gtid_pos, &snap, &n_snap) ||
        !gtid_list_parse(binlog, &own, &n_own)) {
        mystep_failf(&c->step,
                     "the target's binary log position ('%s') or the snapshot's ('%s') is not a "
                     "GTID list: nothing was written",
                     binlog ? binlog : "(none)", c->gtid_pos);
        return;
    }
    unsigned long long server_id = strtoull(id_s, NULL, 10);
    bool strict = strict_s && strcmp(strict_s, "0") != 0;
    mytext_buf_t pos = { 0 };
    mytext_add(&pos, c->gtid_pos);
    for (size_t i = 0; i < n_own; i++) {
        const gtid_t *g = &own[i];
        if (g->server != server_id)
            continue;
        const gtid_t *p = NULL;
        for (size_t j = 0; j < n_snap && !p; j++)
            if (snap[j].domain == g->domain)
                p = &snap[j];
        if (!p) {
            char one[80];
            snprintf(one, sizeof one, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, pos.len ? "," : "",
                     g->domain, g->server, g->seq);
            mytext_add(&pos, one);
            continue;
        }
        if (p->seq >= g->seq)
            continue;
        if (!strict) {
            log_warn("copy of database %s (connection %s): the target's binary log holds its "
                     "own GTID %" PRIu32 "-%" PRIu32 "-%" PRIu64 ", more recent than the "
                     "snapshot's %" PRIu32 "-%" PRIu32 "-%" PRIu64 " (gtid_strict_mode is off: "
                     "replication goes on)",
                     c->database, c->connection, g->domain, g->server, g->seq, p->domain,
                     p->server, p->seq);
            continue;
        }
        mystep_failf(&c->step,
                     "the target's binary log (@@gtid_binlog_pos '%s') holds its own GTID %" PRIu32
                     "-%" PRIu32 "-%" PRIu64 ", more recent than the snapshot's position '%s' in "
                     "domain %" PRIu32 ": gtid_slave_pos could not be set (1947): nothing was "
                     "written. On a target that holds nothing else: RESET MASTER on the target; "
                     "otherwise give the target's server its own gtid_domain_id, so that its "
                     "transactions stay out of the source's domains (this GTID stays until the "
                     "target's binary log is reset)",
                     binlog, g->domain, g->server, g->seq, c->gtid_pos, g->domain);
        free(snap);
        free(own);
        free(pos.s);
        return;
    }
    free(snap);
    free(own);
    c->slave_pos = pos.s ? pos.s : xstrdup("");
    if (strcmp(c->slave_pos, c->gtid_pos) != 0)
        log_info("copy of database %s (connection %s): gtid_slave_pos will be '%s', the "
                 "snapshot's position and the target's own domains",
                 c->database, c->connection, c->slave_pos);
    s_read_source(c);
}

static void s_on_gtid(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the snapshot's GTID position on the source", r);
        return;
    }
    /* NULL: the position is not an event boundary of the binary log (or
     * its file is gone). "": no GTID was logged before it (a fresh
     * server): replication then starts from the first binary log. */
    const char *pos = r->n_rows == 1 ? r->rows[0][0] : NULL;
    if (!pos) {
        mystep_failf(&c->step, "the source has no GTID position for %s:%" PRIu64 ": nothing was "
                               "written",
                     c->rd[0].snap_file, c->rd[0].snap_pos);
        return;
    }
    c->gtid_pos = xstrdup(pos);
    log_info("copy of database %s (connection %s): snapshot at %s:%" PRIu64 ", GTID position "
             "'%s', %zu readers",
             c->database, c->connection, c->rd[0].snap_file, c->rd[0].snap_pos, pos, c->n_rd);
    mystep_query(&c->step, c->tgt, "reading the target's binary log position",
                 "SELECT @@GLOBAL.server_id AS id, @@GLOBAL.gtid_strict_mode AS strict,"
                 " @@GLOBAL.gtid_binlog_pos AS pos,"
                 " @@GLOBAL.slave_run_triggers_for_rbr AS rbr_triggers",
                 c->timeout_ms, s_on_target_binlog, c);
}

static void s_snap_check(mycopy_t *c)
{
    for (size_t i = 1; i < c->n_rd; i++)
        if (strcmp(c->rd[i].snap_file, c->rd[0].snap_file) != 0 ||
            c->rd[i].snap_pos != c->rd[0].snap_pos) {
            mystep_failf(&c->step,
                         "the readers' snapshots are at different binary log positions (%s:%" PRIu64
                         " and %s:%" PRIu64 "): nothing was written",
                         c->rd[0].snap_file, c->rd[0].snap_pos, c->rd[i].snap_file,
                         c->rd[i].snap_pos);
            return;
        }
    char *file = mystep_literal(&c->step, c->rd[0].src, c->rd[0].snap_file);
    if (!file)
        return;
    char *sql = xasprintf("SELECT BINLOG_GTID_POS(%s, %" PRIu64 ") AS pos", file,
                          c->rd[0].snap_pos);
    mystep_query(&c->step, c->rd[0].src, "reading the GTID position", sql, c->timeout_ms, s_on_gtid,
                 c);
    free(sql);
    free(file);
}

static void s_on_lock_end(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "BACKUP STAGE END on the source", r);
        return;
    }
    myconn_destroy(&c->lock);
    s_snap_check(c);
}

static void s_snap_next(mycopy_t *c);

static void s_on_snap_status(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    s_reader_t *rd = &c->rd[c->step_i];
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading a reader's binary log position on the source", r);
        return;
    }
    const char *file = NULL, *pos = NULL;
    for (size_t i = 0; i < r->n_rows; i++) {
        if (r->n_cols < 2 || !r->rows[i][0])
            continue;
        if (strcmp(r->rows[i][0], "Binlog_snapshot_file") == 0)
            file = r->rows[i][1];
        else if (strcmp(r->rows[i][0], "Binlog_snapshot_position") == 0)
            pos = r->rows[i][1];
    }
    if (!file || !file[0] || !pos) {
        mystep_failf(&c->step,
                     "the source gives no binary log position for a snapshot (is log_bin on?): "
                     "nothing was written");
        return;
    }
    rd->snap_file = xstrdup(file);
    rd->snap_pos = strtoull(pos, NULL, 10);
    c->step_i++;
    s_snap_next(c);
}

static void s_on_snap_started(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "opening a reader's snapshot on the source", r);
        return;
    }
    mystep_query(&c->step, conn, "reading a reader's binary log position",
                 "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'", c->timeout_ms, s_on_snap_status,
                 c);
}

/* Opens reader step_i's snapshot; after the last, the lock goes. */
static void s_snap_next(mycopy_t *c)
{
    if (c->step_i == c->n_rd) {
        if (c->lock)
            mystep_query(&c->step, c->lock, "BACKUP STAGE END", "BACKUP STAGE END", c->timeout_ms,
                         s_on_lock_end, c);
        else
            s_snap_check(c);
        return;
    }
    if (c->step_i == 0)
        c->t_snapshot = uv_now(c->loop);
    mystep_query(&c->step, c->rd[c->step_i].src, "opening a snapshot",
                 "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", c->timeout_ms,
                 s_on_snap_started, c);
}

/* Without RELOAD the snapshot is one reader's: nothing to prove. */
static void s_one_reader(mycopy_t *c, const myconn_result_t *r)
{
    char *msg = myconn_result_message(NULL, r);
    log_warn("copy of database %s (connection %s): peer %s's user may not hold BACKUP STAGE "
             "(%s; it needs RELOAD): the copy runs with one reader",
             c->database, c->connection, c->peer_name, msg);
    free(msg);
    myconn_destroy(&c->lock);
    for (size_t i = 1; i < c->n_rd; i++)
        myconn_destroy(&c->rd[i].src);
    c->n_rd = 1;
    c->step_i = 0;
    s_snap_next(c);
}

static void s_on_block_commit(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok && s_access_denied(r)) {
        s_one_reader(c, r);
        return;
    }
    if (!r->ok) {
        mystep_fail_query(&c->step, "BACKUP STAGE BLOCK_COMMIT on the source", r);
        return;
    }
    c->step_i = 0;
    s_snap_next(c);
}

static void s_on_backup_start(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok && s_access_denied(r)) {
        s_one_reader(c, r);
        return;
    }
    if (!r->ok) {
        mystep_fail_query(&c->step, "BACKUP STAGE START on the source", r);
        return;
    }
    mystep_query(&c->step, c->lock, "BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE BLOCK_COMMIT",
                 c->timeout_ms, s_on_block_commit, c);
}

static void s_connect_next(mycopy_t *c);

static void s_on_reader_connected(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        char *what = xasprintf("connecting to the source through peer %s", c->peer_name);
        mystep_fail_query(&c->step, what, r);
        free(what);
        return;
    }
    c->step_i++;
    s_connect_next(c);
}

/* Every reader connects before the lock is taken, so the source's commits
 * wait only for the snapshots, not for logins. */
static void s_connect_next(mycopy_t *c)
{
    if (c->step_i < c->n_rd) {
        mystep_query(&c->step, c->rd[c->step_i].src, "connecting to the source", "SELECT 1",
                     c->timeout_ms, s_on_reader_connected, c);
        return;
    }
    if (c->lock) {
        mystep_query(&c->step, c->lock, "BACKUP STAGE START", "BACKUP STAGE START", c->timeout_ms,
                     s_on_backup_start, c);
        return;
    }
    c->step_i = 0;
    s_snap_next(c);
}

/* ---- (1) the connection --------------------------------------------------------- */

static void s_on_done_pos(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading gtid_slave_pos on the target", r);
        return;
    }
    const char *pos = r->n_rows == 1 ? r->rows[0][0] : NULL;
    Godwit__MyCopyResult *res = xcalloc(1, sizeof *res);
    godwit__my_copy_result__init(res);
    res->already_done = true;
    res->gtid_pos = xstrdup(pos ? pos : "");
    log_info("copy of database %s: replication connection %s exists already: nothing copied",
             c->database, c->connection);
    mystep_finish(&c->step, &res->base, NULL);
}

static void s_done_pos(mycopy_t *c)
{
    mystep_query(&c->step, c->tgt, "reading gtid_slave_pos",
                 "SELECT @@GLOBAL.gtid_slave_pos AS pos", c->timeout_ms, s_on_done_pos, c);
}

static void s_on_repair_started(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "starting the stopped replication connection on the target", r);
        return;
    }
    log_info("copy of database %s: replication connection %s (stopped, without an error) "
             "started again",
             c->database, c->connection);
    s_done_pos(c);
}

static void s_repair_start(mycopy_t *c)
{
    if (!c->repair_start) {
        s_done_pos(c);
        return;
    }
    char *sql = xasprintf("START SLAVE '%s'", c->connection);
    mystep_query(&c->step, c->tgt, "starting the replication", sql, c->timeout_ms,
                 s_on_repair_started, c);
    free(sql);
}

static void s_on_repair_filter(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step,
                          "setting the replication connection's replicate_do_db on the target", r);
        return;
    }
    s_repair_start(c);
}

static void s_repair_filter(mycopy_t *c)
{
    char *db = mystep_literal(&c->step, c->tgt, c->database);
    if (!db)
        return;
    char *sql = xasprintf("SET GLOBAL `%s`.replicate_do_db = %s", c->connection, db);
    mystep_query(&c->step, c->tgt, "setting replicate_do_db", sql, c->timeout_ms,
                 s_on_repair_filter, c);
    free(sql);
    free(db);
}

static void s_on_repair_stopped(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "stopping the replication connection on the target", r);
        return;
    }
    s_repair_filter(c);
}

/* The connection exists (SHOW SLAVE 'NAME' STATUS in r): the copy is
 * written and gtid_slave_pos set (both come before CHANGE MASTER). What a
 * copy that died after CHANGE MASTER, or a restart of the target's server
 * (SET GLOBAL's filter is not kept), can leave is mended: the filter set
 * when it is not exactly the database (stopping a connection that runs
 * without it), a connection stopped without an error started. One stopped
 * with an error stays stopped: the coordinator reports its error. */
static void s_repair(mycopy_t *c, const myconn_result_t *r)
{
    const char *filter = myconn_col(r, 0, "Replicate_Do_DB");
    const char *io = myconn_col(r, 0, "Slave_IO_Running");
    const char *sql = myconn_col(r, 0, "Slave_SQL_Running");
    const char *io_err = myconn_col(r, 0, "Last_IO_Errno");
    const char *sql_err = myconn_col(r, 0, "Last_SQL_Errno");
    /* The I/O thread is also "Connecting" or "Preparing": only "No" is stopped. */
    bool running = (io && strcmp(io, "No") != 0) || (sql && strcmp(sql, "No") != 0);
    bool errors = (io_err && strtoul(io_err, NULL, 10) != 0) ||
                  (sql_err && strtoul(sql_err, NULL, 10) != 0);
    bool filter_ok = filter && strcmp(filter, c->database) == 0;
    c->repair_start = !errors && (!running || !filter_ok);
    if (filter_ok) {
        s_repair_start(c);
        return;
    }
    log_warn("copy of database %s: replication connection %s replicates %s%s%s instead of the "
             "database alone (a copy that died, or a restart of the target's server: put "
             "%s.replicate_do_db = %s in its config): setting it%s",
             c->database, c->connection, filter && filter[0] ? "'" : "",
             filter && filter[0] ? filter : "every database", filter && filter[0] ? "'" : "",
             c->connection, c->database, running ? ", the connection stopped meanwhile" : "");
    if (!running) {
        s_repair_filter(c);
        return;
    }
    char *stop = xasprintf("STOP SLAVE '%s'", c->connection);
    mystep_query(&c->step, c->tgt, "stopping the replication", stop, c->timeout_ms,
                 s_on_repair_stopped, c);
    free(stop);
}

static void s_on_first_slaves(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (!r->ok) {
        mystep_fail_query(&c->step, "reading the target's replication connections", r);
        return;
    }
    if (s_other_running(c, r, "nothing was written"))
        return;
    c->step_i = 0;
    s_connect_next(c);
}

static void s_on_slave_status(myconn_t *conn, const myconn_result_t *r, void *arg)
{
    mycopy_t *c = arg;
    if (r->ok && r->n_rows > 0) {
        s_repair(c, r);
        return;
    }
    if (!r->ok && r->errnum != S_ER_MASTER_CONNECTION_NOT_EXIST) {
        mystep_fail_query(&c->step, "reading the replication connection on the target", r);
        return;
    }
    /* Checked again before gtid_slave_pos is set: one may start meanwhile. */
    mystep_query(&c->step, c->tgt, "reading the target's replication connections",
                 "SHOW ALL SLAVES STATUS", c->timeout_ms, s_on_first_slaves, c);
}

static void s_first(mystep_t *s)
{
    mycopy_t *c = (mycopy_t *)s;
    /* The connection name passed step_godwit_name: [a-z0-9_] only, so it
     * is its own literal (nothing is connected yet to escape with). */
    char *sql = xasprintf("SHOW SLAVE '%s' STATUS", c->connection);
    mystep_query(&c->step, c->tgt, "reading the replication connection", sql, c->timeout_ms,
                 s_on_slave_status, c);
    free(sql);
}

/* ---- the interface ------------------------------------------------------------- */

step_t *mycopy_start(uv_loop_t *loop, const mycopy_local_t *local, const Godwit__MyCopy *req,
                     step_done_cb done, void *arg, char **why)
{
    *why = NULL;
    if (!loop || !local || !req || !done || local->statement_timeout_ms == 0) {
        *why = xstrdup("invalid arguments");
        return NULL;
    }
    const char *path = local->config_path ? local->config_path : "the agent's config";
    if (!step_godwit_name(req->connection)) {
        *why = xasprintf("the replication connection's name \"%s\" is not one godwit gives "
                         "(godwit_ and a-z, 0-9, _)",
                         req->connection ? req->connection : "");
        return NULL;
    }
    if (!req->database || !req->database[0] || !req->source_database ||
        strcmp(req->database, req->source_database) != 0) {
        *why = xstrdup("the target database must have the source's name in this version");
        return NULL;
    }
    if (strchr(req->database, ',')) {
        /* replicate_do_db = 'a,b' is the two databases a and b. */
        *why = xasprintf("database \"%s\": a name with a comma cannot be a replication "
                         "connection's replicate_do_db",
                         req->database);
        return NULL;
    }
    const agent_peer_t *peer = NULL;
    for (size_t i = 0; req->peer && i < local->n_peers; i++)
        if (local->peers[i].name && strcmp(local->peers[i].name, req->peer) == 0)
            peer = &local->peers[i];
    if (!peer) {
        *why = xasprintf("no peer named %s in %s: the copy reads the source through it",
                         req->peer && req->peer[0] ? req->peer : "(none)", path);
        return NULL;
    }
    if (!peer->host || !peer->host[0] || !peer->user || peer->port <= 0 || peer->port > 65535) {
        *why = xasprintf("peer %s in %s lacks a host, a port or a user", peer->name, path);
        return NULL;
    }

    mycopy_t *c = xcalloc(1, sizeof *c);
    mystep_init(&c->step, loop, &s_ops, done, arg);
    c->loop = loop;
    c->database = xstrdup(req->database);
    c->connection = xstrdup(req->connection);
    c->config_path = xstrdup(path);
    c->peer_name = xstrdup(peer->name);
    c->peer_host = xstrdup(peer->host);
    c->peer_user = xstrdup(peer->user);
    c->peer_password_file = xstrdup(peer->password_file);
    c->peer_port = (int)peer->port;
    c->srv_host = xstrdup(local->server.host);
    c->srv_socket = xstrdup(local->server.socket);
    c->srv_user = xstrdup(local->server.user);
    c->srv_password_file = xstrdup(local->server.password_file);
    c->server = local->server;
    c->server.host = c->srv_host;
    c->server.socket = c->srv_socket;
    c->server.user = c->srv_user;
    c->server.password_file = c->srv_password_file;
    c->server.database = NULL;
    c->server.init = NULL;
    c->timeout_ms = local->statement_timeout_ms;
    c->rows_timeout_ms = local->statement_timeout_ms * S_ROWS_TIMEOUT_FACTOR;

    size_t n = req->parallelism ? req->parallelism : S_READERS_DEFAULT;
    if (n > S_READERS_MAX)
        n = S_READERS_MAX;
    c->n_rd = n;
    c->rd = xcalloc(n, sizeof *c->rd);

    myconn_params_t tp = c->server;
    tp.init = s_tgt_init;
    c->tgt = myconn_new(loop, "agent mycopy target", &tp);
    myconn_params_t sp = {
        .host = c->peer_host,
        .port = c->peer_port,
        .user = c->peer_user,
        .password_file = c->peer_password_file,
        .connect_timeout_ms = local->server.connect_timeout_ms,
        .init = s_src_init,
    };
    bool ok = c->tgt != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        c->rd[i].c = c;
        c->rd[i].i = i;
        c->rd[i].src = myconn_new(loop, "agent mycopy reader", &sp);
        ok = c->rd[i].src != NULL;
    }
    if (ok && n > 1) {
        const char *const lock_init[] = { NULL };
        sp.init = lock_init;
        c->lock = myconn_new(loop, "agent mycopy lock", &sp);
        ok = c->lock != NULL;
    }
    if (!ok) {
        *why = xasprintf("the target's or peer %s's connection parameters are not ones a "
                         "session can be made with",
                         peer->name);
        step_t *step = &c->step.base;
        step_cancel(&step); /* no callback; c goes in the timer's close */
        return NULL;
    }
    return mystep_defer(&c->step, s_first);
}

bool mycopy_is(const step_t *step, const char *connection)
{
    if (!mystep_is(step, &s_ops) || !connection)
        return false;
    const mycopy_t *c = (const mycopy_t *)step;
    return strcmp(c->connection, connection) == 0;
}

Godwit__SyncStatusResult *mycopy_progress(const step_t *step)
{
    Godwit__SyncStatusResult *res = xcalloc(1, sizeof *res);
    godwit__sync_status_result__init(res);
    if (!mystep_is(step, &s_ops))
        return res;
    const mycopy_t *c = (const mycopy_t *)step;
    res->exists = c->listed;
    if (!c->listed || c->n_tables == 0)
        return res;
    bool all_done = true;
    res->tables = xcalloc(c->n_tables, sizeof *res->tables);
    for (size_t i = 0; i < c->n_tables; i++) {
        const s_table_t *t = &c->tables[i];
        Godwit__TableSync *ts = xcalloc(1, sizeof *ts);
        godwit__table_sync__init(ts);
        ts->table = xcalloc(1, sizeof *ts->table);
        godwit__table_ref__init(ts->table);
        ts->table->schema = xstrdup(c->database);
        ts->table->name = xstrdup(t->name);
        ts->state = xstrdup(s_state_names[t->state]);
        ts->rows_done = t->rows_done;
        /* Bytes for the coordinator's ETA: the table's data size on the
         * source, and as much of it as the rows written are of its
         * estimated rows (InnoDB's figures are estimates). */
        ts->bytes_total = t->bytes;
        ts->bytes_done = t->state == S_DONE ? t->bytes
                         : t->rows_est ? (uint64_t)((double)t->bytes *
                                                    ((double)t->rows_done / (double)t->rows_est))
                                       : 0;
        if (ts->bytes_done > ts->bytes_total)
            ts->bytes_done = ts->bytes_total;
        all_done = all_done && t->state == S_DONE;
        res->tables[res->n_tables++] = ts;
    }
    res->all_ready = all_done;
    return res;
}
