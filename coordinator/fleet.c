/*
 * fleet: see fleet.h. The link state machine is the table s_link below.
 */
#include "fleet.h"
#include "proxycmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lsn.h"
#include "xalloc.h"

struct fleet {
    fleet_agent_t **agents; /* sorted by name */
    size_t count;
    struct {
        uint64_t at_mono;
        double ms;
    } rtt_ring[FLEET_RTT_RING];
    uint64_t rtt_total;
};

static const char *const s_state_names[LINK__COUNT] = { "never_seen", "connected", "lost",
                                                         "refused" };
static const char *const s_event_names[LINK_EV__COUNT] = { "hello", "message", "silent",
                                                           "hello refused" };

/* Link transitions. A row not listed leaves the state as it is. */
static const struct {
    link_state_t from;
    link_event_t ev;
    link_state_t to;
    const char *comment;
} s_link[] = {
    { LINK_NEVER_SEEN, LINK_EV_HELLO, LINK_CONNECTED, "first hello" },
    { LINK_NEVER_SEEN, LINK_EV_MESSAGE, LINK_CONNECTED, "first message" },
    { LINK_LOST, LINK_EV_HELLO, LINK_CONNECTED, "hello after silence" },
    { LINK_LOST, LINK_EV_MESSAGE, LINK_CONNECTED, "message after silence" },
    { LINK_CONNECTED, LINK_EV_SILENT, LINK_LOST, "missed heartbeats" },
    { LINK_CONNECTED, LINK_EV_HELLO, LINK_CONNECTED, "reconnected" },
    { LINK_NEVER_SEEN, LINK_EV_REFUSED, LINK_REFUSED, "hello refused" },
    { LINK_CONNECTED, LINK_EV_REFUSED, LINK_REFUSED, "hello refused" },
    { LINK_LOST, LINK_EV_REFUSED, LINK_REFUSED, "hello refused" },
    { LINK_REFUSED, LINK_EV_REFUSED, LINK_REFUSED, "hello refused again" },
    { LINK_REFUSED, LINK_EV_HELLO, LINK_CONNECTED, "hello accepted" },
    { LINK__COUNT, LINK_EV__COUNT, LINK__COUNT, NULL },
};

const char *fleet_state_name(link_state_t s)
{
    return s < LINK__COUNT ? s_state_names[s] : "?";
}

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp((*(fleet_agent_t *const *)a)->name, (*(fleet_agent_t *const *)b)->name);
}

fleet_t *fleet_new(const keys_allowlist_t *allow)
{
    fleet_t *f = xcalloc(1, sizeof *f);
    f->agents = xcalloc(allow->count ? allow->count : 1, sizeof *f->agents);
    for (size_t i = 0; i < allow->count; i++) {
        fleet_agent_t *a = xcalloc(1, sizeof *a);
        snprintf(a->name, sizeof a->name, "%s", allow->entries[i].name);
        a->allowed_roles = allow->entries[i].roles;
        f->agents[f->count++] = a;
    }
    qsort(f->agents, f->count, sizeof *f->agents, s_cmp_name);
    return f;
}

void fleet_destroy(fleet_t **fp)
{
    fleet_t *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    for (size_t i = 0; i < f->count; i++) {
        if (f->agents[i]->report)
            godwit__report__free_unpacked(f->agents[i]->report, NULL);
        free(f->agents[i]);
    }
    free(f->agents);
    free(f);
}

size_t fleet_count(const fleet_t *f) { return f->count; }
fleet_agent_t *fleet_at(fleet_t *f, size_t i) { return i < f->count ? f->agents[i] : NULL; }

fleet_agent_t *fleet_find(fleet_t *f, const char *name)
{
    fleet_agent_t key;
    snprintf(key.name, sizeof key.name, "%s", name);
    fleet_agent_t *kp = &key;
    fleet_agent_t **hit = bsearch(&kp, f->agents, f->count, sizeof *f->agents, s_cmp_name);
    return hit ? *hit : NULL;
}

link_state_t fleet_event(fleet_agent_t *a, link_event_t ev, uint64_t now_mono, const char *reason)
{
    for (int i = 0; s_link[i].comment; i++) {
        if (s_link[i].from != a->state || s_link[i].ev != ev)
            continue;
        link_state_t to = s_link[i].to;
        if (to != a->state)
            log_info_about(log_about_agent(a->name), "agent %s: from %s to %s: %s (%s)", a->name,
                           s_state_names[a->state], s_state_names[to], reason, s_link[i].comment);
        else
            log_info_about(log_about_agent(a->name), "agent %s: %s: %s", a->name, s_event_names[ev],
                           reason);
        if (to == LINK_CONNECTED && (a->state != LINK_CONNECTED || ev == LINK_EV_HELLO)) {
            a->max_report_gap_ms = 0;
            a->last_report_mono = 0;
        }
        a->state = to;
        break;
    }
    return a->state;
}

void fleet_touch(fleet_agent_t *a, const void *rid, size_t rid_len, uint64_t now_ms,
                 uint64_t now_mono)
{
    if (rid_len <= FLEET_RID_MAX) {
        memcpy(a->rid, rid, rid_len);
        a->rid_len = rid_len;
    }
    a->last_seen_ms = now_ms;
    a->last_seen_mono = now_mono;
    a->messages++;
}

void fleet_set_report(fleet_agent_t *a, Godwit__Report **reportp, uint64_t now_mono)
{
    if (a->report)
        godwit__report__free_unpacked(a->report, NULL);
    a->report = *reportp;
    *reportp = NULL;
    if (a->last_report_mono) {
        uint64_t gap = now_mono - a->last_report_mono;
        if (gap > a->max_report_gap_ms)
            a->max_report_gap_ms = gap;
    }
    a->last_report_mono = now_mono;
    a->reports++;
}

void fleet_record_rtt(fleet_t *f, fleet_agent_t *a, double rtt_ms, uint64_t now_mono)
{
    a->rtt_ms = rtt_ms;
    a->rtt_samples++;
    f->rtt_ring[f->rtt_total % FLEET_RTT_RING].at_mono = now_mono;
    f->rtt_ring[f->rtt_total % FLEET_RTT_RING].ms = rtt_ms;
    f->rtt_total++;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

size_t fleet_rtt_window(const fleet_t *f, uint64_t now_mono, uint64_t window_ms,
                        const double *pcts, double *out, size_t npcts)
{
    size_t n = f->rtt_total < FLEET_RTT_RING ? (size_t)f->rtt_total : FLEET_RTT_RING;
    double *v = xmalloc((n ? n : 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (now_mono - f->rtt_ring[i].at_mono <= window_ms)
            v[k++] = f->rtt_ring[i].ms;
    if (k > 0) {
        qsort(v, k, sizeof *v, s_cmp_double);
        for (size_t p = 0; p < npcts; p++) {
            size_t idx = (size_t)ceil(pcts[p] / 100.0 * (double)k);
            idx = idx == 0 ? 0 : idx - 1;
            out[p] = v[idx < k ? idx : k - 1];
        }
    }
    free(v);
    return k;
}

uint64_t fleet_rtt_samples(const fleet_t *f) { return f->rtt_total; }

static void s_add_lsn(cJSON *o, const char *key, uint64_t lsn)
{
    char buf[LSN_STRLEN];
    cJSON_AddStringToObject(o, key, lsn_format(lsn, buf, sizeof buf));
}

static cJSON *s_disk_json(const Godwit__Disk *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", d->path);
    cJSON_AddBoolToObject(o, "ok", d->ok);
    if (!d->ok) {
        cJSON_AddStringToObject(o, "error", d->error);
        return o;
    }
    cJSON_AddNumberToObject(o, "size_bytes", (double)d->size_bytes);
    cJSON_AddNumberToObject(o, "free_bytes", (double)d->free_bytes);
    cJSON_AddNumberToObject(o, "free_inodes", (double)d->free_inodes);
    cJSON_AddStringToObject(o, "device", d->device);
    if (d->has_io) {
        cJSON *io = cJSON_AddObjectToObject(o, "io");
        cJSON_AddNumberToObject(io, "read_bytes_per_sec", d->read_bytes_per_sec);
        cJSON_AddNumberToObject(io, "write_bytes_per_sec", d->write_bytes_per_sec);
        cJSON_AddNumberToObject(io, "read_iops", d->read_iops);
        cJSON_AddNumberToObject(io, "write_iops", d->write_iops);
        cJSON_AddNumberToObject(io, "util_percent", d->util_percent);
    } else {
        cJSON_AddNullToObject(o, "io");
    }
    return o;
}

static cJSON *s_pg_json(const Godwit__Postgres *p, uint64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "reachable", p->reachable);
    if (p->error[0])
        cJSON_AddStringToObject(o, "error", p->error);
    else
        cJSON_AddNullToObject(o, "error");
    /* the physical path's base backup: while it runs the server does not
     * exist yet */
    const Godwit__Basebackup *bb = p->basebackup;
    if (bb && bb->phase && bb->phase[0]) {
        cJSON *b = cJSON_AddObjectToObject(o, "basebackup");
        cJSON_AddStringToObject(b, "slot", bb->slot);
        cJSON_AddStringToObject(b, "phase", bb->phase);
        cJSON_AddNumberToObject(b, "done_bytes", (double)bb->done_bytes);
        cJSON_AddNumberToObject(b, "total_bytes", (double)bb->total_bytes);
        cJSON_AddNumberToObject(b, "started_at_ms", (double)bb->started_at_ms);
        if (bb->error && bb->error[0])
            cJSON_AddStringToObject(b, "error", bb->error);
        else
            cJSON_AddNullToObject(b, "error");
    } else {
        cJSON_AddNullToObject(o, "basebackup");
    }
    if (p->collected_at_ms == 0)
        return o; /* never read: no figures */
    cJSON_AddNumberToObject(o, "collected_at_ms", (double)p->collected_at_ms);
    cJSON_AddNumberToObject(o, "age_ms",
                            now_ms > p->collected_at_ms ? (double)(now_ms - p->collected_at_ms) : 0);
    cJSON_AddStringToObject(o, "server_version", p->server_version);
    cJSON_AddNumberToObject(o, "server_version_num", p->server_version_num);
    cJSON_AddStringToObject(o, "wal_level", p->wal_level);
    cJSON_AddBoolToObject(o, "in_recovery", p->in_recovery);
    if (p->in_recovery) {
        s_add_lsn(o, "receive_lsn", p->receive_lsn);
        s_add_lsn(o, "replay_lsn", p->replay_lsn);
        cJSON_AddBoolToObject(o, "wal_receiver_streaming", p->wal_receiver_streaming);
    }
    s_add_lsn(o, "current_lsn", p->current_lsn);
    cJSON_AddNumberToObject(o, "current_lsn_bytes", (double)p->current_lsn);
    if (p->has_wal_rate)
        cJSON_AddNumberToObject(o, "wal_bytes_per_sec", p->wal_bytes_per_sec);
    else
        cJSON_AddNullToObject(o, "wal_bytes_per_sec");
    cJSON_AddNumberToObject(o, "max_slot_wal_keep_size_mb", (double)p->max_slot_wal_keep_size_mb);
    cJSON *dbs = cJSON_AddArrayToObject(o, "databases");
    for (size_t i = 0; i < p->n_databases; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", p->databases[i]->name);
        cJSON_AddNumberToObject(d, "size_bytes", (double)p->databases[i]->size_bytes);
        cJSON_AddItemToArray(dbs, d);
    }
    cJSON *slots = cJSON_AddArrayToObject(o, "slots");
    for (size_t i = 0; i < p->n_slots; i++) {
        const Godwit__Slot *s = p->slots[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "type", s->type);
        cJSON_AddStringToObject(j, "plugin", s->plugin);
        cJSON_AddStringToObject(j, "database", s->database);
        cJSON_AddBoolToObject(j, "active", s->active);
        cJSON_AddNumberToObject(j, "retained_bytes", (double)s->retained_bytes);
        s_add_lsn(j, "restart_lsn", s->restart_lsn);
        s_add_lsn(j, "confirmed_flush_lsn", s->confirmed_flush_lsn);
        cJSON_AddStringToObject(j, "wal_status", s->wal_status);
        if (s->has_spill)
            cJSON_AddNumberToObject(j, "spill_bytes", (double)s->spill_bytes);
        else
            cJSON_AddNullToObject(j, "spill_bytes");
        if (s->has_replay_lag)
            cJSON_AddNumberToObject(j, "replay_lag_seconds", s->replay_lag_seconds);
        else
            cJSON_AddNullToObject(j, "replay_lag_seconds");
        cJSON_AddItemToArray(slots, j);
    }
    cJSON *subs = cJSON_AddArrayToObject(o, "subscriptions");
    for (size_t i = 0; i < p->n_subscriptions; i++) {
        const Godwit__Subscription *s = p->subscriptions[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "database", s->database);
        cJSON_AddBoolToObject(j, "enabled", s->enabled);
        s_add_lsn(j, "received_lsn", s->received_lsn);
        s_add_lsn(j, "latest_end_lsn", s->latest_end_lsn);
        if (s->has_last_msg)
            cJSON_AddNumberToObject(j, "seconds_since_last_msg", s->seconds_since_last_msg);
        else
            cJSON_AddNullToObject(j, "seconds_since_last_msg");
        if (s->has_error_counts) {
            cJSON_AddNumberToObject(j, "apply_error_count", (double)s->apply_error_count);
            cJSON_AddNumberToObject(j, "sync_error_count", (double)s->sync_error_count);
        } else {
            cJSON_AddNullToObject(j, "apply_error_count");
            cJSON_AddNullToObject(j, "sync_error_count");
        }
        cJSON_AddItemToArray(subs, j);
    }
    cJSON *pubs = cJSON_AddArrayToObject(o, "publications");
    for (size_t i = 0; i < p->n_publications; i++) {
        const Godwit__Publication *s = p->publications[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "database", s->database);
        cJSON_AddBoolToObject(j, "all_tables", s->all_tables);
        cJSON_AddNumberToObject(j, "table_count", s->table_count);
        cJSON_AddItemToArray(pubs, j);
    }
    return o;
}

/* The MariaDB engine's reading (docs/status-json.md: agents[].mariadb). */
static cJSON *s_mariadb_json(const Godwit__Mariadb *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "reachable", m->reachable);
    if (m->error && m->error[0])
        cJSON_AddStringToObject(o, "error", m->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddNumberToObject(o, "age_ms", (double)m->age_ms);
    if (!m->reachable && !(m->version && m->version[0]))
        return o;
    cJSON_AddStringToObject(o, "version", m->version);
    cJSON_AddNumberToObject(o, "server_id", m->server_id);
    cJSON_AddBoolToObject(o, "log_bin", m->log_bin);
    cJSON_AddStringToObject(o, "binlog_format", m->binlog_format);
    cJSON_AddStringToObject(o, "binlog_row_image", m->binlog_row_image);
    cJSON_AddBoolToObject(o, "gtid_strict_mode", m->gtid_strict_mode);
    cJSON_AddStringToObject(o, "gtid_binlog_pos", m->gtid_binlog_pos);
    cJSON_AddStringToObject(o, "gtid_current_pos", m->gtid_current_pos);
    cJSON_AddStringToObject(o, "gtid_slave_pos", m->gtid_slave_pos);
    cJSON_AddBoolToObject(o, "read_only", m->read_only);
    cJSON_AddNumberToObject(o, "binlog_expire_seconds", (double)m->binlog_expire_seconds);
    const Godwit__MariadbReplica *r = m->replica;
    if (!r) {
        cJSON_AddNullToObject(o, "replica");
        return o;
    }
    cJSON *j = cJSON_AddObjectToObject(o, "replica");
    cJSON_AddStringToObject(j, "connection_name", r->connection_name);
    cJSON_AddStringToObject(j, "master_host", r->master_host);
    cJSON_AddNumberToObject(j, "master_port", r->master_port);
    cJSON_AddBoolToObject(j, "io_running", r->io_running);
    cJSON_AddBoolToObject(j, "sql_running", r->sql_running);
    if (r->seconds_behind >= 0)
        cJSON_AddNumberToObject(j, "seconds_behind", (double)r->seconds_behind);
    else
        cJSON_AddNullToObject(j, "seconds_behind");
    if (r->last_error && r->last_error[0])
        cJSON_AddStringToObject(j, "last_error", r->last_error);
    else
        cJSON_AddNullToObject(j, "last_error");
    cJSON_AddStringToObject(j, "gtid_io_pos", r->gtid_io_pos);
    return o;
}

cJSON *fleet_agent_json(const fleet_agent_t *a, uint64_t now_ms, uint64_t now_mono)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", a->name);
    cJSON_AddStringToObject(o, "state", fleet_state_name(a->state));
    cJSON_AddStringToObject(o, "role", a->role[0] ? a->role : "unknown");
    cJSON *roles = cJSON_AddArrayToObject(o, "allowed_roles");
    static const char *const names[] = { "source", "target", "proxy" };
    for (unsigned i = 0; i < 3; i++)
        if (a->allowed_roles & (1u << i))
            cJSON_AddItemToArray(roles, cJSON_CreateString(names[i]));
    if (a->refused[0])
        cJSON_AddStringToObject(o, "refused", a->refused);
    else
        cJSON_AddNullToObject(o, "refused");
    if (a->suspect_count) {
        cJSON *su = cJSON_AddObjectToObject(o, "suspect");
        cJSON_AddStringToObject(su, "reason", a->suspect);
        cJSON_AddNumberToObject(su, "count", (double)a->suspect_count);
        cJSON_AddNumberToObject(su, "last_at_ms", (double)a->suspect_at_ms);
    } else {
        cJSON_AddNullToObject(o, "suspect");
    }
    if (a->state == LINK_NEVER_SEEN) {
        cJSON_AddNullToObject(o, "last_seen_ms");
        return o;
    }
    cJSON_AddStringToObject(o, "version", a->version);
    cJSON_AddStringToObject(o, "hostname", a->hostname);
    if (a->jurisdiction[0])
        cJSON_AddStringToObject(o, "jurisdiction", a->jurisdiction);
    else
        cJSON_AddNullToObject(o, "jurisdiction");
    if (a->site[0])
        cJSON_AddStringToObject(o, "site", a->site);
    else
        cJSON_AddNullToObject(o, "site");
    cJSON_AddStringToObject(o, "peer_address", a->peer_address);
    cJSON_AddNumberToObject(o, "last_seen_ms", (double)a->last_seen_ms);
    cJSON_AddNumberToObject(o, "last_seen_age_ms", (double)(now_mono - a->last_seen_mono));
    cJSON_AddNumberToObject(o, "connected_since_ms", (double)a->connected_since_ms);
    cJSON_AddNumberToObject(o, "hellos", (double)a->hellos);
    cJSON_AddNumberToObject(o, "report_interval_ms", a->report_interval_ms);
    cJSON_AddNumberToObject(o, "reports", (double)a->reports);
    cJSON_AddNumberToObject(o, "max_report_gap_ms", (double)a->max_report_gap_ms);
    cJSON_AddNumberToObject(o, "highest_epoch", (double)a->highest_epoch);
    if (a->rtt_samples)
        cJSON_AddNumberToObject(o, "rtt_ms", a->rtt_ms);
    else
        cJSON_AddNullToObject(o, "rtt_ms");
    if (a->last_refusal[0])
        cJSON_AddStringToObject(o, "last_refusal", a->last_refusal);
    else
        cJSON_AddNullToObject(o, "last_refusal");
    const Godwit__Report *r = a->report;
    if (r && r->disk)
        cJSON_AddItemToObject(o, "disk", s_disk_json(r->disk));
    else
        cJSON_AddNullToObject(o, "disk");
    if (r && r->postgres)
        cJSON_AddItemToObject(o, "postgres", s_pg_json(r->postgres, now_ms));
    else
        cJSON_AddNullToObject(o, "postgres");
    if (r && r->mariadb)
        cJSON_AddItemToObject(o, "mariadb", s_mariadb_json(r->mariadb));
    else
        cJSON_AddNullToObject(o, "mariadb");
    if (r && r->n_proxies) {
        cJSON *px = cJSON_AddArrayToObject(o, "proxies");
        for (size_t i = 0; i < r->n_proxies; i++)
            cJSON_AddItemToArray(px, proxycmd_state_json(r->proxies[i]));
    }
    return o;
}
