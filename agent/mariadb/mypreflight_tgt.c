/*
 * mypreflight_tgt: the target's checks (mypreflight.h): its server's id,
 * version and binary log, the target database, its disk, and the
 * replication peer (a login to the source as the peer's user, and what
 * that user's grants allow). Each stage sends one statement and turns the
 * answer into findings; the peer's refusal is a finding, not a failure.
 */
#include "mypreflight_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finding.h"
#include "mytext.h"
#include "xalloc.h"

/* ---- the server ------------------------------------------------------------ */

static void s_on_settings(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    if (!r->ok) {
        mypf_fail_query(p, "the target", r);
        return;
    }
    if (r->n_rows != 1) {
        mystep_failf(&p->step, "reading the target's settings: no row returned");
        return;
    }
    const char *version = myconn_col(r, 0, "version");
    uint32_t num = mytext_version_num(version);
    const char *id_s = myconn_col(r, 0, "server_id");
    unsigned long long id = id_s ? strtoull(id_s, NULL, 10) : 0;
    if (id == 0)
        mypf_add(p, MYPF_ERROR, "server_id", "server_id",
                 xstrdup("server_id is 0 on the target: a replica without an id cannot "
                         "replicate"),
                 xasprintf("SET GLOBAL server_id = N; with an N other than the source's %" PRIu32
                           ", and server_id = N in the server's configuration file.",
                           p->src_server_id));
    else if (id == p->src_server_id)
        mypf_add(p, MYPF_ERROR, "server_id", "server_id",
                 xasprintf("the target's server_id is %llu, the source's too: a replica skips "
                           "the events of its own id, so it would ignore every change of the "
                           "source",
                           id),
                 xasprintf("SET GLOBAL server_id = N; with an N other than %llu, and "
                           "server_id = N in the target server's configuration file.",
                           id));
    /* major.minor decides: a newer source may write what an older target
     * does not know (its binary log events, its schema). */
    if (num / 100 < p->src_version_num / 100)
        mypf_add(p, MYPF_ERROR, "server_version", "server_version",
                 xasprintf("the target runs %s, an older version than the source's %s: a "
                           "replica may not read the binary log or the schema of a newer "
                           "primary, so godwit migrates only to the same or a newer "
                           "major.minor version",
                           version ? version : "(unknown)", p->src_version),
                 xasprintf("Upgrade the target server to %u.%u or later, or migrate to another "
                           "target that runs it.",
                           (unsigned)(p->src_version_num / 10000),
                           (unsigned)(p->src_version_num / 100 % 100)));
    if (p->reverse && !mytext_bool(myconn_col(r, 0, "log_bin")))
        mypf_add(p, MYPF_ERROR, "binlog_off", "log_bin",
                 xstrdup("the binary log is off (log_bin) on the target: after the cutover the "
                         "source follows the target (cutover.reverse is on) by replicating the "
                         "target's binary log"),
                 xstrdup("Set log_bin and binlog_format = ROW in the [mariadb] section of the "
                         "target server's configuration file and restart it, or set "
                         "cutover.reverse: off in the plan (then a rollback would lose the "
                         "target's writes)."));
    if (p->reverse && !mytext_bool(myconn_col(r, 0, "log_slave_updates")))
        mypf_add(p, MYPF_ERROR, "log_slave_updates", "log_slave_updates",
                 xstrdup("log_slave_updates is off on the target: with cutover.reverse on the "
                         "source follows it after the cutover from the switch position, so the "
                         "target's binary log must carry the source's transactions it "
                         "replicated, with their GTIDs"),
                 xstrdup(MYPF_LOG_SLAVE_UPDATES_FIX));
    mypf_next(p);
}

static void s_tgt_settings(mypf_t *p)
{
    mypf_query(p, MYPF_LOCAL, "reading the target's settings",
               "SELECT @@version AS version, @@server_id AS server_id, @@log_bin AS log_bin,"
               " @@log_slave_updates AS log_slave_updates",
               s_on_settings);
}

/* ---- the database ---------------------------------------------------------- */

static void s_on_database(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    if (!r->ok) {
        mypf_fail_query(p, "the target", r);
        return;
    }
    /* Names compared by their bytes (mypreflight_src.c says why). */
    size_t n = 0;
    char *some = NULL;
    for (size_t i = 0; i < r->n_rows; i++) {
        const char *db = myconn_col(r, i, "db");
        const char *name = myconn_col(r, i, "name");
        if (!db || !name || strcmp(db, p->database) != 0)
            continue;
        if (n < 3) {
            char *q = mytext_ident(name);
            char *s = some ? xasprintf("%s, %s", some, q) : xstrdup(q);
            free(q);
            free(some);
            some = s;
        }
        n++;
    }
    if (n > 0) {
        char *db = mytext_ident(p->database);
        mypf_add(p, MYPF_ERROR, "target_not_empty", db,
                 xasprintf("database %s on the target already holds %zu table%s (%s%s): the "
                           "copy creates the source's tables there and would meet these",
                           db, n, n == 1 ? "" : "s", some, n > 3 ? ", ..." : ""),
                 xasprintf("Migrate into a database that is missing or empty on the target, or, "
                           "if what it holds is not needed, DROP DATABASE %s; on the target.",
                           db));
        free(db);
    }
    free(some);
    mypf_next(p);
}

static void s_tgt_database(mypf_t *p)
{
    char *db = mypf_literal(p, MYPF_LOCAL, p->database);
    if (!db)
        return;
    char *sql = xasprintf("SELECT t.TABLE_SCHEMA AS db, t.TABLE_NAME AS name"
                          " FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = %s"
                          " ORDER BY BINARY t.TABLE_NAME",
                          db);
    mypf_query(p, MYPF_LOCAL, "reading the target database's tables", sql, s_on_database);
    free(sql);
    free(db);
}

/* ---- the disk ---------------------------------------------------------------- */

static void s_tgt_disk(mypf_t *p)
{
    if (p->data_directory)
        finding_disk_space(p->result, &p->findings_cap, p->data_directory,
                           "mariadb.data_directory", p->src_size, p->margin);
    else
        mypf_add(p, MYPF_INFO, "disk_space_unchecked", "mariadb.data_directory",
                 xstrdup("the target's free disk was not checked against the source's size: "
                         "the agent's config does not say where the server's data is"),
                 xasprintf("Set mariadb.data_directory in %s (the server's @@datadir) and "
                           "restart the agent.",
                           p->config_path));
    mypf_next(p);
}

/* ---- the replication peer -------------------------------------------------- */

/* The kinds of object the copy moves besides tables (SourceFacts.
 * object_kinds, in mypreflight_src's words) and the privilege the peer
 * user needs to see and read each: on the database, or SELECT on
 * mysql.proc (the routines' definitions). */
static const struct {
    const char *kind;
    const char *privilege;      /* on the database; NULL: SELECT on mysql.proc */
} s_kinds[MYPF_OBJECT_KINDS] = {
    { "view", "SHOW VIEW" },
    { "trigger", "TRIGGER" },
    { "routine", NULL },
    { "event", "EVENT" },
};

static void s_on_grants(myconn_t *c, const myconn_result_t *r, void *arg)
{
    mypf_t *p = arg;
    if (!r->ok && r->gone) {
        /* The peer's refusal (a password, a host, the network) is what
         * this check is for: a finding with the server's own words. */
        char *msg = myconn_result_message(NULL, r);
        mypf_add(p, MYPF_ERROR, "replication_connection", p->peer_where,
                 xasprintf("this agent cannot log in to the source as %s: %s; the copy and the "
                           "replication connect the same way",
                           p->peer_where, msg),
                 xasprintf("Check the peer's host, port, user and password_file in %s, that "
                           "the user exists on the source for this host (CREATE USER ... "
                           "IDENTIFIED BY ...), and that the source listens where the peer "
                           "points.",
                           p->config_path));
        free(msg);
        mypf_next(p);
        return;
    }
    if (!r->ok) {
        mypf_fail_query(p, "the source", r);
        return;
    }
    mytext_grants_t g = { 0 };
    for (size_t i = 0; i < r->n_rows; i++)
        mytext_grants_line(r->rows[i][0], p->peer_db, &g);
    char *db = mytext_ident(p->peer_db);
    /* The account as the source knows it, from its own first line. */
    char *who = r->n_rows > 0 ? mytext_grants_grantee(r->rows[0][0]) : NULL;
    if (!g.replication_slave)
        mypf_add(p, MYPF_ERROR, "replication_grant", p->peer_where,
                 xasprintf("%s lacks REPLICATION SLAVE on the source: the target's replication "
                           "reads the source's binary log as that user",
                           p->peer_where),
                 xasprintf("On the source: GRANT REPLICATION SLAVE ON *.* TO %s;",
                           who ? who : "<the peer's user>"));
    if (!g.select_db)
        mypf_add(p, MYPF_ERROR, "replication_grant", p->peer_where,
                 xasprintf("%s lacks SELECT on database %s of the source: the copy reads its "
                           "tables as that user",
                           p->peer_where, db),
                 xasprintf("On the source: GRANT SELECT ON %s.* TO %s;", db,
                           who ? who : "<the peer's user>"));
    bool can[MYPF_OBJECT_KINDS] = { g.show_view, g.trigger, g.proc_select, g.event };
    for (size_t k = 0; k < MYPF_OBJECT_KINDS; k++) {
        if (!p->src_kinds[k] || can[k])
            continue;
        const char *priv = s_kinds[k].privilege;
        char *lacks = priv ? xasprintf("%s on database %s", priv, db)
                           : xstrdup("SELECT on mysql.proc");
        mypf_add(p, MYPF_ERROR, "object_grant", p->peer_where,
                 xasprintf("the source database has %ss, and %s lacks %s: information_schema "
                           "shows a user no %s it may not read, so the copy would leave them "
                           "behind without a word",
                           s_kinds[k].kind, p->peer_where, lacks, s_kinds[k].kind),
                 priv ? xasprintf("On the source: GRANT %s ON %s.* TO %s;", priv, db,
                                  who ? who : "<the peer's user>")
                      : xasprintf("On the source: GRANT SELECT ON mysql.proc TO %s;",
                                  who ? who : "<the peer's user>"));
        free(lacks);
    }
    if (!g.reload)
        mypf_add(p, MYPF_WARNING, "copy_single_reader", p->peer_where,
                 xasprintf("%s lacks RELOAD on the source: the copy's lock (BACKUP STAGE "
                           "BLOCK_COMMIT, held while its readers open one snapshot) needs it, "
                           "so the copy reads with one session, whatever options.parallelism "
                           "says",
                           p->peer_where),
                 xasprintf("On the source: GRANT RELOAD ON *.* TO %s;",
                           who ? who : "<the peer's user>"));
    free(who);
    free(db);
    mypf_next(p);
}

static void s_tgt_peer(mypf_t *p)
{
    if (!p->conn[MYPF_PEER]) {
        mypf_next(p); /* peer_missing is already a finding */
        return;
    }
    /* SHOW GRANTS: the user's own grants and its default role's, which
     * needs no privilege. */
    mypf_query(p, MYPF_PEER, "reading the peer user's grants", "SHOW GRANTS", s_on_grants);
}

static const mypf_fn s_tgt_stages[] = { s_tgt_settings, s_tgt_database, s_tgt_disk, s_tgt_peer,
                                        NULL };

/* ---- starting -------------------------------------------------------------- */

step_t *mypreflight_target_start(uv_loop_t *loop, const mypreflight_local_t *local,
                                 const Godwit__PreflightTarget *req, step_done_cb done, void *arg)
{
    if (!req || !req->database || !req->source || !req->replication || !local)
        return NULL;
    const Godwit__SourceFacts *src = req->source;
    const Godwit__ReplicationConn *rc = req->replication;
    mypf_t *p = mypf_new(loop, local, req->database, s_tgt_stages, done, arg);
    if (!p)
        return NULL;
    p->src_version_num = src->server_version_num;
    p->src_version = xstrdup(src->server_version && src->server_version[0] ? src->server_version
                                                                            : "(unknown)");
    p->src_size = src->database_size;
    p->src_server_id = src->server_id;
    for (size_t i = 0; i < src->n_object_kinds; i++)
        for (size_t k = 0; k < MYPF_OBJECT_KINDS; k++)
            if (src->object_kinds[i] && strcmp(src->object_kinds[i], s_kinds[k].kind) == 0)
                p->src_kinds[k] = true;
    p->margin = req->disk_margin > 0 ? req->disk_margin : 1.0;
    p->reverse = req->reverse;
    p->data_directory = local->data_directory && local->data_directory[0]
                            ? xstrdup(local->data_directory)
                            : NULL;
    p->peer_db = xstrdup(rc->dbname ? rc->dbname : "");
    step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    char *why = NULL;
    const agent_peer_t *peer = step_peer(&sl, rc, &why);
    if (peer) {
        p->peer_where = xasprintf("%s@%s:%" PRId64 " (peer %s)", peer->user, peer->host,
                                  peer->port, peer->name);
        p->conn[MYPF_PEER] = mypf_peer_conn(loop, local, peer);
        if (!p->conn[MYPF_PEER])
            mypf_add(p, MYPF_ERROR, "replication_connection", p->peer_where,
                     xasprintf("peer %s's host, port or user are not ones a connection can be "
                               "made with",
                               peer->name),
                     xasprintf("Correct peer %s in %s.", peer->name, p->config_path));
    } else {
        const char *name = rc->peer && rc->peer[0] ? rc->peer : "(none)";
        char *object = xasprintf("peer %s", name);
        mypf_add(p, MYPF_ERROR, "peer_missing", object,
                 xasprintf("agent %s: %s; the target reads the source through that peer (the "
                           "copy, the replication)",
                           p->agent_name, why),
                 xasprintf("Add a peer named %s (host, port, user, password_file) under peers: "
                           "in %s and restart the agent, or name in the plan's replication one "
                           "of the peers it has.",
                           name, p->config_path));
        free(object);
    }
    free(why);
    return mypf_start(p);
}
