/*
 * preflight: the read-only checks of phase 1 (see preflight.h for what is
 * checked and for the contract with the caller).
 *
 * A check is a fixed list of stages (preflight_src_stages in
 * preflight_src.c, preflight_tgt_stages in preflight_tgt.c) run one after
 * the other by the step runtime (steprun.h, steprun_next). A stage
 * sends one statement or opens one connection; its callback turns the
 * answer into findings (or facts) and calls steprun_next() again. After the
 * last stage the result goes to done. A stage that cannot run (connection
 * refused, statement failed) ends the check with an error instead: a
 * missing answer is never read as "nothing wrong".
 *
 * SQL: every statement is parameterised and pg_catalog-qualified (the local
 * session runs with an empty search_path); table and extension names travel
 * as one JSON parameter and are compared with nspname/relname. The one
 * statement that needs a name in its text, the target's "does this table
 * hold rows", quotes it with PQescapeIdentifier. Names in findings and in fix
 * texts come quoted by the server (format('%I.%I'), quote_ident), so they
 * can be pasted into psql as they are.
 *
 * The target also reads the source's and its own roles and privileges
 * through access.h (a normal connection to the source, as the schema
 * phase and verify make) and reports what the roles step will create,
 * what it will leave as it is, and what would change owner or rights.
 *
 * This file starts a check (its request read into the check, the peers
 * it names looked up) and cancels it; the check itself, its runtime and
 * its findings are preflight_run.h's.
 *
 * What it owns: each check (preflight_run.h says what one holds), from
 * *_start until the runtime's close frees it.
 *
 * What it must never do: change anything on a server (the local session
 * also runs with default_transaction_read_only=on), call done more than once
 * or after step_cancel, or block the loop (the one exception is the
 * statvfs of the data directory, as the agent's disk report does).
 */
#include "preflight.h"
#include "peertls.h"
#include "preflight_phys.h"
#include "preflight_run.h"
#include "preflight_src.h"
#include "preflight_tgt.h"
#include "pgconn.h"
#include "tcplink.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lifetime ----------------------------------------------------------- */

/* [{"schema":..,"name":..}] for n refs (caller frees), or NULL when a ref is
 * incomplete. n must be > 0. */
static char *s_tables_json(Godwit__TableRef *const *refs, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const Godwit__TableRef *t = refs[i];
        if (!t || !t->schema || !t->schema[0] || !t->name || !t->name[0]) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", t->schema);
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddItemToArray(a, o);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *out = xstrdup(text); /* one allocator for everything p owns */
    cJSON_free(text);
    return out;
}

/* The peer rc names in local's config, or NULL after a blocking finding
 * (code) naming the agent, the peer and the config file. why: what the
 * peer is for; plan_key: the plan's section that names it. */
/* A warning (tls_code) when the connection to peer leaves this host
 * without verifying the server (peertls.h). */
static void s_tls_finding(preflight_t *p, const preflight_local_t *local,
                          const agent_peer_t *peer, const char *tls_code)
{
    char why[256];
    if (peertls_check(peer->host, peer->sslmode, why, sizeof why))
        return;
    const char *config = local->config_path ? local->config_path : "the agent's config";
    char *object = xasprintf("peer %s", peer->name);
    preflight_run_add(
        p, SEV_WARNING, tls_code, object,
        xasprintf("the connection to peer %s (%s:%lld) leaves this host with %s; the source's "
                  "rows travel over it (the copy, the replication, verify)",
                  peer->name, peer->host, (long long)peer->port, why),
        xasprintf("Set sslmode: verify-full for peer %s in %s, with the server's CA in the "
                  "agent's ~/.postgresql/root.crt (and the PostgreSQL server's, for the "
                  "subscription), or carry the connection through a tunnel (SSH, WireGuard) "
                  "and point the peer at its local end; see docs/operations.md.",
                  peer->name, config));
    free(object);
}

static const agent_peer_t *s_peer_finding(preflight_t *p, const preflight_local_t *local,
                                          const Godwit__ReplicationConn *rc, const char *code,
                                          const char *why, const char *plan_key,
                                          const char *tls_code)
{
    step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                        .config_path = local->config_path };
    char *reason = NULL;
    const agent_peer_t *peer = step_peer(&sl, rc, &reason);
    if (peer) {
        free(reason);
        s_tls_finding(p, local, peer, tls_code);
        return peer;
    }
    const char *name = rc && rc->peer && rc->peer[0] ? rc->peer : "(none)";
    const char *config = local->config_path ? local->config_path : "(unknown)";
    char *object = xasprintf("peer %s", name);
    preflight_run_add(
        p, SEV_ERROR, code, object,
        rc && rc->peer && rc->peer[0] && rc->dbname && rc->dbname[0]
            ? xasprintf("agent %s has no peer \"%s\" in its config %s, and %s: the agent "
                        "connects only to the servers its config lists",
                        local->agent_name ? local->agent_name : "(unnamed)", name, config, why)
            : xasprintf("agent %s: %s", local->agent_name ? local->agent_name : "(unnamed)",
                        reason),
        xasprintf("Add a peer named %s (host, port, user, and passfile or sslmode if needed) "
                  "under peers: in %s and restart the agent, or name in the plan's %s one "
                  "of the peers it has.",
                  name, local->config_path ? local->config_path : "the agent's config", plan_key));
    free(object);
    free(reason);
    return NULL;
}

step_t *preflight_source_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightSource *req, step_done_cb done, void *arg)
{
    if (!req)
        return NULL;
    char *tables = NULL;
    if (req->n_tables > 0 && !(tables = s_tables_json(req->tables, req->n_tables)))
        return NULL;
    preflight_t *p = preflight_run_new(loop, local, req->database,
                                       req->physical ? preflight_phys_src_stages
                                                     : preflight_src_stages, done, arg);
    if (!p) {
        free(tables);
        return NULL;
    }
    p->tables_json = tables;
    p->result->facts = xmalloc(sizeof *p->result->facts);
    godwit__source_facts__init(p->result->facts);
    /* This host's TCP limits, for the target's link checks. */
    tcplink_limits_t tl;
    tcplink_read_limits("", &tl);
    p->result->facts->tcp_wmem_max = tl.wmem_max;
    p->result->facts->tcp_congestion = xstrdup(tl.congestion);
    p->reverse = req->reverse != NULL;
    p->standby = local->standby;
    if (req->reverse) {
        const agent_peer_t *peer = s_peer_finding(
            p, local, req->reverse, "reverse_replication_peer",
            "after the cutover the source follows the target through that peer "
            "(cutover.reverse on)",
            "reverse_replication", "reverse_replication_tls");
        /* pg_rewind connects to the database postgres: the functions'
         * EXECUTE grants are that database's. */
        if (peer && peer->user && req->physical &&
            preflight_run_add_local(p, loop, local, P_REPL, "postgres"))
            p->rev_user = xstrdup(peer->user);
    }
    return preflight_run_start(p, loop);
}

/* A physical replication connection (replication=true: what pg_basebackup
 * and a standby open, matched by pg_hba.conf's keyword "replication") to
 * peer, not yet connecting. */
static pgconn_t *s_physical_conn(uv_loop_t *loop, const preflight_local_t *local,
                                 const agent_peer_t *peer)
{
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%" PRId64, peer->port);
    snprintf(timeout, sizeof timeout, "%" PRId64, (local->connect_timeout_ms + 999) / 1000);
    const char *kw[10], *val[10];
    int n = 0;
    kw[n] = "host", val[n++] = peer->host;
    kw[n] = "port", val[n++] = port;
    kw[n] = "user", val[n++] = peer->user;
    if (peer->passfile && peer->passfile[0])
        kw[n] = "passfile", val[n++] = peer->passfile;
    if (peer->sslmode && peer->sslmode[0])
        kw[n] = "sslmode", val[n++] = peer->sslmode;
    kw[n] = "replication", val[n++] = "true";
    kw[n] = "application_name", val[n++] = "godwit-agent";
    kw[n] = "connect_timeout", val[n++] = timeout;
    kw[n] = NULL, val[n] = NULL;
    return pgconn_new(loop, "agent preflight physical replication", kw, val);
}

/* PreflightTarget.physical: no local server (preflight_phys.h). */
static step_t *s_target_physical(uv_loop_t *loop, const preflight_local_t *local,
                                 const Godwit__PreflightTarget *req, step_done_cb done, void *arg)
{
    const Godwit__SourceFacts *src = req->source;
    const Godwit__ReplicationConn *rc = req->replication;
    const char *database = req->database && req->database[0] ? req->database : "postgres";
    preflight_t *p = preflight_run_new(loop, local, database, preflight_phys_tgt_stages, done,
                                       arg);
    if (!p)
        return NULL;
    const agent_peer_t *peer =
        s_peer_finding(p, local, rc, "replication_peer",
                       "the standby is made from the source through that peer (pg_basebackup, "
                       "then its WAL stream)",
                       "replication", "replication_tls");
    if (peer)
        p->run.conn[P_REPL] = s_physical_conn(loop, local, peer);
    p->src_version_num = src->server_version_num;
    p->src_version = xstrdup(src->server_version && src->server_version[0]
                                 ? src->server_version
                                 : "(unknown)");
    p->src_cluster_size = src->cluster_size ? src->cluster_size : src->database_size;
    p->disk_margin = req->disk_margin > 0 ? req->disk_margin : 1.0;
    p->standby = local->standby;
    p->bin_dir = xstrdup(local->bin_dir ? local->bin_dir : "");
    p->repl_user = xstrdup(peer ? peer->user : "");
    p->repl_passfile = peer && peer->passfile ? xstrdup(peer->passfile) : NULL;
    p->repl_where = peer ? xasprintf("%s@%s:%" PRId64 " (peer %s)", peer->user, peer->host,
                                     peer->port, peer->name)
                         : xasprintf("peer %s", rc->peer ? rc->peer : "");
    return preflight_run_start(p, loop);
}

step_t *preflight_target_start(uv_loop_t *loop, const preflight_local_t *local,
                               const Godwit__PreflightTarget *req, step_done_cb done, void *arg)
{
    if (req && req->physical && req->source && req->source->server_version_num &&
        req->replication && local && req->replication->dbname && req->replication->dbname[0])
        return s_target_physical(loop, local, req, done, arg);
    if (!req || !req->source || req->source->server_version_num == 0 || !req->replication ||
        !local || !local->data_directory || !local->data_directory[0])
        return NULL;
    const Godwit__SourceFacts *src = req->source;
    const Godwit__ReplicationConn *rc = req->replication;
    if (!rc->dbname || !rc->dbname[0])
        return NULL;
    for (size_t i = 0; i < src->n_extensions; i++)
        if (!src->extensions[i] || !src->extensions[i][0])
            return NULL;
    char *tables = NULL;
    if (src->n_tables > 0 && !(tables = s_tables_json(src->tables, src->n_tables)))
        return NULL;

    preflight_t *p = preflight_run_new(loop, local, req->database, preflight_tgt_stages, done, arg);
    if (!p) {
        free(tables);
        return NULL;
    }
    const agent_peer_t *peer =
        s_peer_finding(p, local, rc, "replication_peer",
                       "the target reads the source through that peer (the schema, the copy, "
                       "the subscription, verify)",
                       "replication", "replication_tls");
    if (peer) {
        step_local_t sl = { .peers = local->peers, .n_peers = local->n_peers,
                            .config_path = local->config_path,
                            .connect_timeout_ms = local->connect_timeout_ms };
        p->run.conn[P_REPL] = pgstep_remote_conn(loop, "agent preflight replication", &sl, rc,
                                                 true, "godwit-agent", NULL);
        /* jit off: see access.h */
        char *src_opts = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                                   " -c default_transaction_read_only=on -c jit=off",
                                   local->statement_timeout_ms);
        p->run.conn[P_SRC] = pgstep_remote_conn(loop, "agent preflight source", &sl, rc, false,
                                                "godwit-agent", src_opts);
        free(src_opts);
    }
    p->app_roles = pgconn_text_array(req->app_roles, req->n_app_roles);
    p->passwords = req->passwords;
    if (req->n_import_settings)
        p->import_settings = pgconn_text_array(req->import_settings, req->n_import_settings);
    p->link_mbit = req->link_mbit ? req->link_mbit : 1000;
    p->src_wmem_max = src->tcp_wmem_max;
    p->src_congestion = xstrdup(src->tcp_congestion ? src->tcp_congestion : "");
    p->tables_json = tables;
    p->src_version_num = src->server_version_num;
    p->src_version = xstrdup(src->server_version && src->server_version[0]
                                 ? src->server_version
                                 : "(unknown)");
    p->src_size = src->database_size;
    p->disk_margin = req->disk_margin > 0 ? req->disk_margin : 1.0;
    p->reverse = req->reverse;
    p->data_directory = xstrdup(local->data_directory);
    p->probe = local->disk_probe;
    if (src->n_extensions > 0) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < src->n_extensions; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(src->extensions[i]));
        char *text = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        p->extensions_json = xstrdup(text);
        cJSON_free(text);
    }
    p->repl_user = xstrdup(peer ? peer->user : "");
    p->repl_db = xstrdup(rc->dbname);
    p->repl_passfile = peer && peer->passfile ? xstrdup(peer->passfile) : NULL;
    p->repl_where = peer ? xasprintf("%s@%s:%" PRId64 "/%s (peer %s)", peer->user, peer->host,
                                     peer->port, rc->dbname, peer->name)
                         : xasprintf("peer %s", rc->peer ? rc->peer : "");
    return preflight_run_start(p, loop);
}
