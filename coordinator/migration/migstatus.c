/*
 * migstatus: see migstatus.h. Reads the migration and its agents' latest
 * reports; changes nothing.
 */
#include "migstatus.h"

#include <stdio.h>
#include <string.h>

#include "gtid.h"
#include "lsn.h"

/* key: a copy of the running report, else of the last one, else null. */
static void s_report(cJSON *o, const char *key, const cJSON *running, const cJSON *last)
{
    if (running)
        cJSON_AddItemToObject(o, key, cJSON_Duplicate(running, true));
    else if (last)
        cJSON_AddItemToObject(o, key, cJSON_Duplicate(last, true));
    else
        cJSON_AddNullToObject(o, key);
}

/* The physical path's figures: lag from the standby's replay position
 * (the target's report) against the source's WAL, the slot's retention,
 * and the base backup's progress while it runs (pg_basebackup's own
 * figures, the ETA from its rate so far). */
static void s_physical(cJSON *o, const migration_t *g, const Godwit__Report *rep,
                       const Godwit__Slot *slot)
{
    const Godwit__Report *trep = agentlink_report(g->env->link, g->m->target.agent);
    const Godwit__Postgres *tp = trep ? trep->postgres : NULL;
    bool lag = rep && rep->postgres && tp && tp->in_recovery && tp->replay_lsn;
    if (lag)
        cJSON_AddNumberToObject(o, "lag_bytes",
                                (double)lsn_diff(rep->postgres->current_lsn, tp->replay_lsn));
    else
        cJSON_AddNullToObject(o, "lag_bytes");
    if (slot && slot->has_replay_lag)
        cJSON_AddNumberToObject(o, "lag_seconds", slot->replay_lag_seconds);
    else
        cJSON_AddNullToObject(o, "lag_seconds");
    if (slot)
        cJSON_AddNumberToObject(o, "slot_retained_bytes", (double)slot->retained_bytes);
    else
        cJSON_AddNullToObject(o, "slot_retained_bytes");
    cJSON_AddNullToObject(o, "slot_spill_bytes");
    if (tp && tp->in_recovery) {
        cJSON *s = cJSON_AddObjectToObject(o, "standby");
        char pos[32];
        cJSON_AddBoolToObject(s, "streaming", tp->wal_receiver_streaming);
        cJSON_AddStringToObject(s, "receive_lsn", lsn_format(tp->receive_lsn, pos, sizeof pos));
        cJSON_AddStringToObject(s, "replay_lsn", lsn_format(tp->replay_lsn, pos, sizeof pos));
    } else {
        cJSON_AddNullToObject(o, "standby");
    }
    const Godwit__Basebackup *bb = tp ? tp->basebackup : NULL;
    if (!bb || !bb->phase || !bb->phase[0]) {
        cJSON_AddNullToObject(o, "basebackup");
        return;
    }
    cJSON *b = cJSON_AddObjectToObject(o, "basebackup");
    cJSON_AddStringToObject(b, "phase", bb->phase);
    cJSON_AddNumberToObject(b, "done_bytes", (double)bb->done_bytes);
    cJSON_AddNumberToObject(b, "total_bytes", (double)bb->total_bytes);
    if (bb->total_bytes)
        cJSON_AddNumberToObject(b, "percent", 100.0 * (double)bb->done_bytes /
                                              (double)bb->total_bytes);
    else
        cJSON_AddNullToObject(b, "percent");
    double elapsed_s = bb->started_at_ms && trep->collected_at_ms > bb->started_at_ms
                           ? (double)(trep->collected_at_ms - bb->started_at_ms) / 1000.0 : 0;
    if (strcmp(bb->phase, "copying") == 0 && elapsed_s > 0 && bb->done_bytes &&
        bb->total_bytes > bb->done_bytes)
        cJSON_AddNumberToObject(b, "eta_seconds", elapsed_s * (double)(bb->total_bytes -
                                                   bb->done_bytes) / (double)bb->done_bytes);
    else
        cJSON_AddNullToObject(b, "eta_seconds");
    if (bb->error && bb->error[0])
        cJSON_AddStringToObject(b, "error", bb->error);
}

/* MariaDB's figures: our replication connection's state as the streaming
 * poll last read it, its lag in seconds (Seconds_Behind_Master) and in
 * transactions (the source's binary log position against the target's
 * gtid_slave_pos). Switched: the way back's instead (blue reading green
 * through revname; "direction": "back"), against green's position; with
 * cutover.reverse off nothing replicates. */
static void s_mariadb(cJSON *o, const migration_t *g, const Godwit__Report *rep)
{
    const Godwit__ReplicaStatusResult *rs = g->replica;
    bool back = g->state == M_SWITCHED;
    if (back)
        rep = agentlink_report(g->env->link, g->m->target.agent);
    cJSON_AddStringToObject(o, "replication_direction",
                            back ? (g->m->cutover.reverse_off ? "none" : "back") : "forward");
    const Godwit__MariadbReplica *rp = rs && rs->exists ? rs->replica : NULL;
    if (rp && rp->seconds_behind >= 0)
        cJSON_AddNumberToObject(o, "lag_seconds", (double)rp->seconds_behind);
    else
        cJSON_AddNullToObject(o, "lag_seconds");
    cJSON_AddNullToObject(o, "lag_bytes");
    cJSON_AddNullToObject(o, "slot_retained_bytes");
    cJSON_AddNullToObject(o, "slot_spill_bytes");
    long long behind = rs && rep && rep->mariadb
                           ? gtid_behind(rep->mariadb->gtid_binlog_pos, rs->gtid_slave_pos) : -1;
    if (behind >= 0)
        cJSON_AddNumberToObject(o, "lag_transactions", (double)behind);
    else
        cJSON_AddNullToObject(o, "lag_transactions");
    if (!rp) {
        cJSON_AddNullToObject(o, "replica");
        return;
    }
    cJSON *r = cJSON_AddObjectToObject(o, "replica");
    cJSON_AddStringToObject(r, "connection", rp->connection_name);
    cJSON_AddBoolToObject(r, "io_running", rp->io_running);
    cJSON_AddBoolToObject(r, "sql_running", rp->sql_running);
    cJSON_AddStringToObject(r, "gtid_slave_pos", rs->gtid_slave_pos);
    cJSON_AddStringToObject(r, "gtid_io_pos", rp->gtid_io_pos);
    if (rp->last_error[0])
        cJSON_AddStringToObject(r, "last_error", rp->last_error);
    else
        cJSON_AddNullToObject(r, "last_error");
}

cJSON *migstatus_json(const migration_t *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", g->m->name);
    cJSON_AddStringToObject(o, "state", migration_state_name(g->state));
    bool physical = g->m->method == PLAN_METHOD_PHYSICAL;
    bool mariadb = g->m->engine == PLAN_ENGINE_MARIADB;
    cJSON_AddStringToObject(o, "engine", plan_engine_name(g->m->engine));
    cJSON_AddStringToObject(o, "method", physical ? "physical" : "logical");
    /* The physical path moves the whole server, not only the database the
     * plan names (its fence and its proxies' entry). */
    cJSON_AddStringToObject(o, "scope", physical ? "server" : "database");
    /* In the copy phase without a copy slot nothing runs: queued, also
     * before the tick's admission pass has said why. */
    bool queued = migration_copy_phase(g) && !g->copy_slot;
    cJSON_AddStringToObject(o, "doing", g->copy_queued[0] ? g->copy_queued
                                        : queued ? "queued: waiting for the next admission of copies"
                                                 : migration_doing(g->state));
    cJSON_AddBoolToObject(o, "copy_queued", queued);
    cJSON_AddNumberToObject(o, "state_since_ms", (double)g->state_since_ms);
    if (g->wave)
        cJSON_AddNumberToObject(o, "wave", g->wave);
    else
        cJSON_AddNullToObject(o, "wave");
    cJSON_AddStringToObject(o, "source", g->m->source.agent);
    cJSON_AddStringToObject(o, "source_database", g->m->source.database);
    cJSON_AddStringToObject(o, "target", g->m->target.agent);
    cJSON_AddStringToObject(o, "target_database", g->m->target.database);
    cJSON_AddNumberToObject(o, "attempts", g->attempts);
    if (g->last_error)
        cJSON_AddStringToObject(o, "last_error", g->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    if (g->stopped_because)
        cJSON_AddStringToObject(o, "stopped_because", g->stopped_because);
    else
        cJSON_AddNullToObject(o, "stopped_because");
    /* The plan's limits the figures below are judged against. */
    cJSON_AddNumberToObject(o, "max_lag_ms", (double)g->m->options.max_lag_ms);
    if (g->m->options.slot_wal_limit_bytes)
        cJSON_AddNumberToObject(o, "slot_wal_limit_bytes", (double)g->m->options.slot_wal_limit_bytes);
    else
        cJSON_AddNullToObject(o, "slot_wal_limit_bytes");
    /* Lag: our slot on the source, from the source agent's latest report. */
    const Godwit__Report *rep = agentlink_report(g->env->link, g->m->source.agent);
    const Godwit__Slot *slot = migration_report_slot(rep, g->objname);
    if (mariadb) {
        s_mariadb(o, g, rep);
    } else if (physical) {
        s_physical(o, g, rep, slot);
    } else if (slot && slot->confirmed_flush_lsn) {
        cJSON_AddNumberToObject(o, "lag_bytes",
                                (double)lsn_diff(rep->postgres->current_lsn, slot->confirmed_flush_lsn));
        cJSON_AddNumberToObject(o, "slot_retained_bytes", (double)slot->retained_bytes);
        if (slot->has_spill)
            cJSON_AddNumberToObject(o, "slot_spill_bytes", (double)slot->spill_bytes);
        else
            cJSON_AddNullToObject(o, "slot_spill_bytes");
        if (slot->has_replay_lag)
            cJSON_AddNumberToObject(o, "lag_seconds", slot->replay_lag_seconds);
        else
            cJSON_AddNullToObject(o, "lag_seconds");
    } else {
        cJSON_AddNullToObject(o, "lag_seconds");
        cJSON_AddNullToObject(o, "lag_bytes");
        cJSON_AddNullToObject(o, "slot_retained_bytes");
        cJSON_AddNullToObject(o, "slot_spill_bytes");
    }
    cJSON *tables = cJSON_AddArrayToObject(o, "tables");
    size_t ready = 0;
    if (g->sync) {
        for (size_t i = 0; i < g->sync->n_tables; i++) {
            const Godwit__TableSync *t = g->sync->tables[i];
            cJSON *j = cJSON_CreateObject();
            char name[300];
            snprintf(name, sizeof name, "%s.%s", t->table ? t->table->schema : "?",
                     t->table ? t->table->name : "?");
            cJSON_AddStringToObject(j, "table", name);
            cJSON_AddStringToObject(j, "state", t->state);
            cJSON_AddNumberToObject(j, "rows_copied", (double)t->rows_done);
            cJSON_AddNumberToObject(j, "bytes_copied", (double)t->bytes_done);
            cJSON_AddNumberToObject(j, "bytes_total", (double)t->bytes_total);
            cJSON_AddItemToArray(tables, j);
            ready += strcmp(t->state, "ready") == 0;
        }
        cJSON_AddNumberToObject(o, "apply_error_count", (double)g->sync->apply_error_count);
        cJSON_AddNumberToObject(o, "sync_error_count", (double)g->sync->sync_error_count);
    }
    cJSON_AddNumberToObject(o, "tables_ready", (double)ready);
    if (g->state == M_COPY && g->copy.total) {
        cJSON_AddItemToObject(o, "copy", copyeta_json(&g->copy));
    } else {
        cJSON_AddNullToObject(o, "copy");
    }
    cJSON *ip = importprof_status(g);
    if (ip)
        cJSON_AddItemToObject(o, "import_profile", ip);
    else
        cJSON_AddNullToObject(o, "import_profile");
    if (g->repl_error) {
        cJSON *e = cJSON_AddObjectToObject(o, "replication_error");
        cJSON_AddStringToObject(e, "message", g->repl_error);
        cJSON_AddNumberToObject(e, "at_ms", (double)g->repl_error_at_ms);
        cJSON_AddNumberToObject(e, "times", g->repl_error_repeats);
    } else {
        cJSON_AddNullToObject(o, "replication_error");
    }
    /* After a cutover: blue following green, from green's slot for it. */
    const Godwit__Report *trep = agentlink_report(g->env->link, g->m->target.agent);
    const Godwit__Slot *rslot =
        g->state == M_SWITCHED ? migration_report_slot(trep, g->revname) : NULL;
    if (rslot) {
        cJSON *f = cJSON_AddObjectToObject(o, "follow");
        cJSON_AddStringToObject(f, "slot", g->revname);
        cJSON_AddBoolToObject(f, "active", rslot->active);
        /* physical: blue is a standby of green; its replay position */
        const Godwit__Postgres *bp = rep ? rep->postgres : NULL;
        uint64_t at = physical ? (bp && bp->in_recovery ? bp->replay_lsn : 0)
                               : rslot->confirmed_flush_lsn;
        cJSON_AddNumberToObject(f, "lag_bytes", at ? (double)lsn_diff(trep->postgres->current_lsn,
                                                                      at) : 0);
        cJSON_AddNumberToObject(f, "slot_retained_bytes", (double)rslot->retained_bytes);
    } else {
        cJSON_AddNullToObject(o, "follow");
    }
    s_report(o, "cutover", g->cutover ? cutover_report(g->cutover) : NULL, g->cutover_last);
    s_report(o, "verify", g->verify ? verify_report(g->verify) : NULL, g->verify_last);
    return o;
}
