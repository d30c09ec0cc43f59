/*
 * render: see render.h. Every renderer reads its fields with render_num and
 * render_str, so a field missing from the coordinator's answer prints as a
 * default ("?", "-", 0) instead of failing.
 */
#include "render.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "units.h"

void render_humanize(cJSON *node)
{
    for (cJSON *n = node; n; n = n->next) {
        if (cJSON_IsString(n) && n->valuestring && escape_needed(n->valuestring)) {
            char *e = escape_dup(n->valuestring);
            cJSON_SetValuestring(n, e);
            free(e);
        }
        if (n->string && escape_needed(n->string)) {
            char *e = escape_dup(n->string);
            if (!(n->type & cJSON_StringIsConst))
                cJSON_free(n->string);
            n->type &= ~cJSON_StringIsConst;
            n->string = cJSON_malloc(strlen(e) + 1);
            memcpy(n->string, e, strlen(e) + 1);
            free(e);
        }
        if (n->child)
            render_humanize(n->child);
    }
}

double render_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

const char *render_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static const char *s_age(double ms, char *buf, size_t len)
{
    if (ms < 0)
        return "-";
    return units_fmt_duration_ms((uint64_t)ms, buf, len);
}

static const char *s_rate(const cJSON *o, const char *key, char *buf, size_t len)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v))
        return "-";
    char b[32];
    snprintf(buf, len, "%s/s", units_fmt_bytes((uint64_t)llround(v->valuedouble), b, sizeof b));
    return buf;
}

/* A MariaDB server's lines under its agent: why it is unreachable, or its
 * binlog settings and, as a replica, its replication. */
static void s_render_mariadb(const cJSON *my, FILE *out)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItem(my, "reachable"))) {
        fprintf(out, "    database: %s\n", render_str(my, "error", "?"));
        return;
    }
    fprintf(out, "    mariadb server_id %.0f, binlog %s (%s, %s), gtid_strict_mode %s%s\n",
            render_num(my, "server_id", 0),
            cJSON_IsTrue(cJSON_GetObjectItem(my, "log_bin")) ? "on" : "OFF",
            render_str(my, "binlog_format", "?"), render_str(my, "binlog_row_image", "?"),
            cJSON_IsTrue(cJSON_GetObjectItem(my, "gtid_strict_mode")) ? "on" : "off",
            cJSON_IsTrue(cJSON_GetObjectItem(my, "read_only")) ? ", read_only" : "");
    const cJSON *r = cJSON_GetObjectItem(my, "replica");
    if (!cJSON_IsObject(r))
        return;
    const cJSON *behind = cJSON_GetObjectItem(r, "seconds_behind");
    char lag[32] = "unknown";
    if (cJSON_IsNumber(behind))
        snprintf(lag, sizeof lag, "%.0f s", behind->valuedouble);
    fprintf(out, "    replica of %s:%.0f: io %s, sql %s, behind %s, gtid_io_pos %s%s%s\n",
            render_str(r, "master_host", "?"), render_num(r, "master_port", 0),
            cJSON_IsTrue(cJSON_GetObjectItem(r, "io_running")) ? "running" : "STOPPED",
            cJSON_IsTrue(cJSON_GetObjectItem(r, "sql_running")) ? "running" : "STOPPED", lag,
            render_str(r, "gtid_io_pos", "-"),
            cJSON_IsString(cJSON_GetObjectItem(r, "last_error")) ? "; error: " : "",
            render_str(r, "last_error", ""));
}

bool render_status(const cJSON *st, FILE *out)
{
    bool healthy = true;
    const cJSON *co = cJSON_GetObjectItem(st, "coordinator");
    const cJSON *agents = cJSON_GetObjectItem(st, "agents");
    int n = cJSON_GetArraySize(agents), connected = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, agents) if (strcmp(render_str(a, "state", ""), "connected") == 0)
        connected++;
    const cJSON *rtt = cJSON_GetObjectItem(co, "rtt_ms");
    fprintf(out, "coordinator %s  epoch %.0f  %s  agents %d/%d connected",
            render_str(co, "version", "?"), render_num(co, "epoch", 0),
            render_str(co, "listen", "?"), connected, n);
    if (render_num(rtt, "samples", 0) > 0)
        fprintf(out, "  rtt p50 %.2f ms p99 %.2f ms", render_num(rtt, "p50", 0),
                render_num(rtt, "p99", 0));
    fputc('\n', out);
    const cJSON *ref = cJSON_GetObjectItem(co, "refused");
    fprintf(out,
            "refused: %.0f unknown key, %.0f not CURVE, %.0f failed handshakes, %.0f hellos "
            "with a role the key may not take; %.0f bad messages (%.0f over max_message); "
            "%.0f suspect messages ignored\n\n",
            render_num(ref, "unknown_key", 0), render_num(ref, "not_curve", 0),
            render_num(ref, "handshake_failed", 0), render_num(ref, "role", 0),
            render_num(co, "bad_messages", 0), render_num(co, "oversize_messages", 0),
            render_num(co, "suspect_messages", 0));
    fprintf(out, "%-16s %-7s %-11s %-8s %-9s %-22s %-12s %-14s %s\n", "AGENT", "ROLE", "STATE",
            "SEEN", "RTT", "DATABASE", "WAL RATE", "LSN", "DISK FREE");
    cJSON_ArrayForEach(a, agents)
    {
        char seen[32], rttb[32], db[64] = "-", wal[32] = "-", lsn[32] = "-", disk[64] = "-";
        const char *state = render_str(a, "state", "?");
        if (strcmp(state, "lost") == 0 || strcmp(state, "refused") == 0)
            healthy = false;
        const cJSON *r = cJSON_GetObjectItem(a, "rtt_ms");
        if (cJSON_IsNumber(r))
            snprintf(rttb, sizeof rttb, "%.2f ms", r->valuedouble);
        else
            snprintf(rttb, sizeof rttb, "-");
        const cJSON *pg = cJSON_GetObjectItem(a, "postgres");
        if (cJSON_IsObject(pg)) {
            if (cJSON_IsTrue(cJSON_GetObjectItem(pg, "reachable"))) {
                /* "15.20 (Debian 15.20-0+deb12u1)": the number is enough here. */
                const char *ver = render_str(pg, "server_version", "?");
                snprintf(db, sizeof db, "up %.*s %s", (int)strcspn(ver, " "), ver,
                         render_str(pg, "wal_level", ""));
            } else {
                snprintf(db, sizeof db, "UNREACHABLE");
                healthy = false;
            }
            s_rate(pg, "wal_bytes_per_sec", wal, sizeof wal);
            snprintf(lsn, sizeof lsn, "%s", render_str(pg, "current_lsn", "-"));
        }
        const cJSON *my = cJSON_GetObjectItem(a, "mariadb");
        if (cJSON_IsObject(my)) {
            if (cJSON_IsTrue(cJSON_GetObjectItem(my, "reachable"))) {
                /* "10.11.19-MariaDB-0+deb12u1": the number is enough here */
                const char *ver = render_str(my, "version", "?");
                snprintf(db, sizeof db, "up mariadb %.*s", (int)strcspn(ver, "-"), ver);
            } else {
                snprintf(db, sizeof db, "UNREACHABLE");
                healthy = false;
            }
            /* the GTID position stands where PostgreSQL's LSN does */
            snprintf(lsn, sizeof lsn, "%s", render_str(my, "gtid_binlog_pos", "-"));
        }
        const cJSON *dk = cJSON_GetObjectItem(a, "disk");
        if (cJSON_IsObject(dk) && cJSON_IsTrue(cJSON_GetObjectItem(dk, "ok"))) {
            char f[32], t[32];
            double size = render_num(dk, "size_bytes", 0), fr = render_num(dk, "free_bytes", 0);
            snprintf(disk, sizeof disk, "%s of %s (%.0f%%)", units_fmt_bytes((uint64_t)fr, f, sizeof f),
                     units_fmt_bytes((uint64_t)size, t, sizeof t), size > 0 ? 100.0 * fr / size : 0);
        } else if (cJSON_IsObject(dk)) {
            snprintf(disk, sizeof disk, "error: %s", render_str(dk, "error", "?"));
        }
        fprintf(out, "%-16s %-7s %-11s %-8s %-9s %-22s %-12s %-14s %s\n",
                render_str(a, "name", "?"), render_str(a, "role", "?"), state,
                s_age(render_num(a, "last_seen_age_ms", -1), seen, sizeof seen), rttb, db, wal, lsn,
                disk);
        if (cJSON_IsString(cJSON_GetObjectItem(a, "refused")))
            fprintf(out, "    REFUSED: %s\n", render_str(a, "refused", "?"));
        const cJSON *sus = cJSON_GetObjectItem(a, "suspect");
        if (cJSON_IsObject(sus)) {
            healthy = false;
            fprintf(out, "    SUSPECT (%.0f messages only a forger would send; ignored): last: %s\n",
                    render_num(sus, "count", 0), render_str(sus, "reason", "?"));
        }
        if (cJSON_IsObject(pg) && !cJSON_IsTrue(cJSON_GetObjectItem(pg, "reachable")))
            fprintf(out, "    database: %s\n", render_str(pg, "error", "?"));
        if (cJSON_IsObject(my))
            s_render_mariadb(my, out);
        if (cJSON_IsObject(dk)) {
            const cJSON *io = cJSON_GetObjectItem(dk, "io");
            if (cJSON_IsObject(io)) {
                char rb[32], wb[32];
                fprintf(out, "    disk %s: read %s, write %s, %.0f/%.0f IOPS r/w, %.0f%% busy\n",
                        render_str(dk, "device", "?"),
                        s_rate(io, "read_bytes_per_sec", rb, sizeof rb),
                        s_rate(io, "write_bytes_per_sec", wb, sizeof wb),
                        render_num(io, "read_iops", 0), render_num(io, "write_iops", 0),
                        render_num(io, "util_percent", 0));
            }
        }
        if (!cJSON_IsObject(pg))
            continue;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "slots"))
        {
            char rb[32];
            fprintf(out, "    slot %s (%s%s%s, %s) retains %s, confirmed %s\n",
                    render_str(s, "name", "?"), render_str(s, "type", "?"),
                    render_str(s, "plugin", "")[0] ? " " : "", render_str(s, "plugin", ""),
                    cJSON_IsTrue(cJSON_GetObjectItem(s, "active")) ? "active" : "inactive",
                    units_fmt_bytes((uint64_t)render_num(s, "retained_bytes", 0), rb, sizeof rb),
                    render_str(s, "confirmed_flush_lsn", "-"));
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "subscriptions"))
        {
            char ab[32];
            const cJSON *since = cJSON_GetObjectItem(s, "seconds_since_last_msg");
            fprintf(out,
                    "    subscription %s (%s) received %s, last message %s ago, errors apply %.0f "
                    "sync %.0f\n",
                    render_str(s, "name", "?"),
                    cJSON_IsTrue(cJSON_GetObjectItem(s, "enabled")) ? "enabled" : "disabled",
                    render_str(s, "received_lsn", "-"),
                    cJSON_IsNumber(since) ? s_age(since->valuedouble * 1000.0, ab, sizeof ab) : "-",
                    render_num(s, "apply_error_count", 0), render_num(s, "sync_error_count", 0));
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "publications"))
        fprintf(out, "    publication %s (%s, %.0f tables)\n", render_str(s, "name", "?"),
                render_str(s, "database", "?"), render_num(s, "table_count", 0));
    }
    return healthy;
}

void render_plan_check(const cJSON *r, FILE *out)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(r, "migrations"))
    {
        const cJSON *from = cJSON_GetObjectItem(m, "from"), *wave = cJSON_GetObjectItem(m, "wave");
        char origin[160] = "";
        if (cJSON_IsString(from))
            snprintf(origin, sizeof origin, " (%s)", from->valuestring);
        if (cJSON_IsNumber(wave))
            snprintf(origin + strlen(origin), sizeof origin - strlen(origin), " [wave %d]",
                     (int)wave->valuedouble);
        fprintf(out, "migration %s: %s/%s -> %s/%s%s: %.0f blocking, %.0f warnings\n",
                render_str(m, "name", "?"), render_str(m, "source", "?"),
                render_str(m, "source_database", "?"), render_str(m, "target", "?"),
                render_str(m, "target_database", "?"), origin, render_num(m, "blocking", 0),
                render_num(m, "warnings", 0));
        const cJSON *fa = cJSON_GetObjectItem(m, "source_facts");
        if (cJSON_IsObject(fa)) {
            char b[32];
            bool my = strcmp(render_str(fa, "engine", ""), "mariadb") == 0;
            fprintf(out, "  source: %s%s, %s, %.0f tables\n", my ? "" : "PostgreSQL ",
                    render_str(fa, "server_version", "?"),
                    units_fmt_bytes((uint64_t)render_num(fa, "database_size", 0), b, sizeof b),
                    render_num(fa, "tables", 0));
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(m, "findings"))
        {
            const char *sev = render_str(f, "severity", "?");
            fprintf(out, "  %-7s %-6s %s: %s\n", strcmp(sev, "error") == 0 ? "BLOCKS" : sev,
                    render_str(f, "side", "?"), render_str(f, "object", "?"),
                    render_str(f, "message", ""));
            fprintf(out, "                 fix: %s\n", render_str(f, "fix", ""));
        }
    }
    double blocking = render_num(r, "blocking", 0);
    fprintf(out, "%s\n", blocking > 0 ? "plan check: blocked (fix the findings marked BLOCKS)"
                                       : "plan check: ready (nothing blocks)");
}

void render_migrations(const cJSON *r, FILE *out)
{
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(r, "migrations"))
    {
        char age[32], lag[32], ret[32];
        double since = render_num(m, "state_since_ms", 0);
        double now = render_num(r, "generated_at_ms", since);
        const cJSON *lb = cJSON_GetObjectItem(m, "lag_bytes");
        const cJSON *rb = cJSON_GetObjectItem(m, "slot_retained_bytes");
        fprintf(out, "migration %s: %s for %s (%s)\n", render_str(m, "name", "?"),
                render_str(m, "state", "?"), s_age(now - since, age, sizeof age),
                render_str(m, "doing", ""));
        const cJSON *sp = cJSON_GetObjectItem(m, "slot_spill_bytes");
        char spill[48] = "";
        if (cJSON_IsNumber(sp) && sp->valuedouble > 0) {
            char b[32];
            snprintf(spill, sizeof spill, " (spilled %s)",
                     units_fmt_bytes((uint64_t)sp->valuedouble, b, sizeof b));
        }
        const cJSON *ls = cJSON_GetObjectItem(m, "lag_seconds");
        char lagsec[32] = "";
        if (cJSON_IsNumber(ls))
            snprintf(lagsec, sizeof lagsec, " (%.3f s)", ls->valuedouble);
        char lagtext[32], rettext[32];
        snprintf(lagtext, sizeof lagtext, "%s", cJSON_IsNumber(lb)
                 ? units_fmt_bytes((uint64_t)lb->valuedouble, lag, sizeof lag) : "-");
        snprintf(rettext, sizeof rettext, "%s", cJSON_IsNumber(rb)
                 ? units_fmt_bytes((uint64_t)rb->valuedouble, ret, sizeof ret) : "-");
        const cJSON *lt = cJSON_GetObjectItem(m, "lag_transactions");
        if (strcmp(render_str(m, "engine", "postgresql"), "mariadb") == 0) {
            char txn[48] = "-";
            if (cJSON_IsNumber(lt))
                snprintf(txn, sizeof txn, "%.0f transaction(s)", lt->valuedouble);
            /* tables: the copy's progress, as far as a status poll saw it
             * (none when the copy ended between two polls) */
            int nt = cJSON_GetArraySize(cJSON_GetObjectItem(m, "tables"));
            char tabtext[32] = "";
            if (nt > 0)
                snprintf(tabtext, sizeof tabtext, "; tables %d", nt);
            fprintf(out, "  mariadb %s/%s -> %s/%s; lag %s%s%s\n",
                    render_str(m, "source", "?"), render_str(m, "source_database", "?"),
                    render_str(m, "target", "?"), render_str(m, "target_database", "?"),
                    txn, lagsec, tabtext);
            const cJSON *rp = cJSON_GetObjectItem(m, "replica");
            if (cJSON_IsObject(rp))
                fprintf(out, "  replica %s%s: I/O %s, SQL %s, at %s%s%s\n",
                        render_str(rp, "connection", "?"),
                        strcmp(render_str(m, "replication_direction", ""), "back") == 0
                            ? " (the way back: blue follows green)" : "",
                        cJSON_IsTrue(cJSON_GetObjectItem(rp, "io_running")) ? "running" : "STOPPED",
                        cJSON_IsTrue(cJSON_GetObjectItem(rp, "sql_running")) ? "running" : "STOPPED",
                        render_str(rp, "gtid_slave_pos", "?"),
                        cJSON_IsString(cJSON_GetObjectItem(rp, "last_error")) ? ": " : "",
                        render_str(rp, "last_error", ""));
        } else if (strcmp(render_str(m, "method", "logical"), "physical") == 0)
            fprintf(out, "  physical: the whole server %s -> %s (every database); lag %s%s, "
                    "slot retains %s\n", render_str(m, "source", "?"),
                    render_str(m, "target", "?"), lagtext, lagsec, rettext);
        else
            fprintf(out, "  %s/%s -> %s/%s; lag %s%s, slot retains %s%s; tables ready %.0f/%d\n",
                    render_str(m, "source", "?"), render_str(m, "source_database", "?"),
                    render_str(m, "target", "?"), render_str(m, "target_database", "?"),
                    lagtext, lagsec, rettext, spill, render_num(m, "tables_ready", 0),
                    cJSON_GetArraySize(cJSON_GetObjectItem(m, "tables")));
        const cJSON *e = cJSON_GetObjectItem(m, "last_error");
        if (cJSON_IsString(e))
            fprintf(out, "  error (attempt %.0f): %s\n", render_num(m, "attempts", 0),
                    e->valuestring);
        const cJSON *cp = cJSON_GetObjectItem(m, "copy");
        if (cJSON_IsObject(cp)) {
            char d[32], t[32], rt[32], eta_text[32] = "not known yet";
            double total = render_num(cp, "bytes_total", 0),
                   doneb = render_num(cp, "bytes_done", 0);
            const cJSON *eta = cJSON_GetObjectItem(cp, "eta_seconds");
            if (cJSON_IsNumber(eta))
                snprintf(eta_text, sizeof eta_text, "about %.0f s", eta->valuedouble);
            fprintf(
                out, "  copy: %s of %s (%.0f %%), %s/s, ETA %s\n",
                units_fmt_bytes((uint64_t)doneb, d, sizeof d),
                units_fmt_bytes((uint64_t)total, t, sizeof t),
                total > 0 ? 100.0 * doneb / total : 0.0,
                units_fmt_bytes((uint64_t)render_num(cp, "rate_bytes_per_sec", 0), rt, sizeof rt),
                eta_text);
        }
        const cJSON *bb = cJSON_GetObjectItem(m, "basebackup");
        if (cJSON_IsObject(bb) && strcmp(render_str(bb, "phase", ""), "done") != 0) {
            char d[32], t[32], eta_text[32] = "not known yet";
            const cJSON *eta = cJSON_GetObjectItem(bb, "eta_seconds");
            if (cJSON_IsNumber(eta))
                snprintf(eta_text, sizeof eta_text, "about %.0f s", eta->valuedouble);
            fprintf(out, "  base backup: %s, %s of %s (%.0f %%), ETA %s%s%s\n",
                    render_str(bb, "phase", "?"),
                    units_fmt_bytes((uint64_t)render_num(bb, "done_bytes", 0), d, sizeof d),
                    units_fmt_bytes((uint64_t)render_num(bb, "total_bytes", 0), t, sizeof t),
                    render_num(bb, "percent", 0), eta_text,
                    cJSON_IsString(cJSON_GetObjectItem(bb, "error")) ? ": " : "",
                    render_str(bb, "error", ""));
        }
        const cJSON *sbs = cJSON_GetObjectItem(m, "standby");
        if (cJSON_IsObject(sbs))
            fprintf(out, "  standby: %s, received %s, replayed %s\n",
                    cJSON_IsTrue(cJSON_GetObjectItem(sbs, "streaming")) ? "streaming"
                                                                         : "NOT streaming",
                    render_str(sbs, "receive_lsn", "?"), render_str(sbs, "replay_lsn", "?"));
        const cJSON *ip = cJSON_GetObjectItem(m, "import_profile");
        if (cJSON_IsObject(ip)) {
            fprintf(out, "  import profile on %s: %s", render_str(m, "target", "?"),
                    render_str(ip, "state", "?"));
            const cJSON *st;
            const char *sep = ":";
            cJSON_ArrayForEach(st, cJSON_GetObjectItem(ip, "settings"))
            {
                const cJSON *was = cJSON_GetObjectItem(st, "was");
                fprintf(out, "%s %s %s", sep, render_str(st, "name", "?"),
                        render_str(st, "value", "?"));
                if (cJSON_IsString(was))
                    fprintf(out, " (was %s, now %s)", was->valuestring,
                            render_str(st, "now", "?"));
                sep = ",";
            }
            fputc('\n', out);
            const cJSON *pe = cJSON_GetObjectItem(ip, "pending");
            if (cJSON_IsString(pe))
                fprintf(out, "    %s\n", pe->valuestring);
        }
        const cJSON *fo = cJSON_GetObjectItem(m, "follow");
        if (cJSON_IsObject(fo)) {
            char fl[32], fr[32];
            fprintf(
                out, "  blue follows green: slot %s on green %s, lag %s, slot retains %s\n",
                render_str(fo, "slot", "?"),
                cJSON_IsTrue(cJSON_GetObjectItem(fo, "active")) ? "active" : "NOT active",
                units_fmt_bytes((uint64_t)render_num(fo, "lag_bytes", 0), fl, sizeof fl),
                units_fmt_bytes((uint64_t)render_num(fo, "slot_retained_bytes", 0), fr, sizeof fr));
        }
        const cJSON *sb = cJSON_GetObjectItem(m, "stopped_because");
        if (cJSON_IsString(sb))
            fprintf(out, "  stopped: %s\n", sb->valuestring);
        const cJSON *re = cJSON_GetObjectItem(m, "replication_error");
        if (cJSON_IsObject(re))
            fprintf(out, "  replication error on the target (%.0f times, last %s ago): %s\n",
                    render_num(re, "times", 1),
                    s_age(now - render_num(re, "at_ms", now), age, sizeof age),
                    render_str(re, "message", "?"));
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(m, "tables"))
        {
            /* Copy counters exist only while the table is being copied. */
            char b[32];
            if (strcmp(render_str(t, "state", ""), "data") == 0)
                fprintf(out, "    %-40s %-9s %12.0f rows %12s copied\n",
                        render_str(t, "table", "?"), render_str(t, "state", "?"),
                        render_num(t, "rows_copied", 0),
                        units_fmt_bytes((uint64_t)render_num(t, "bytes_copied", 0), b, sizeof b));
            else
                fprintf(out, "    %-40s %s\n", render_str(t, "table", "?"),
                        render_str(t, "state", "?"));
        }
        const cJSON *v = cJSON_GetObjectItem(m, "verify");
        if (cJSON_IsObject(v))
            render_verify(v, now, out);
        const cJSON *cu = cJSON_GetObjectItem(m, "cutover");
        if (cJSON_IsObject(cu))
            render_cutover(cu, now, out);
        n++;
    }
    if (n == 0)
        fprintf(out, "no migrations\n");
    const cJSON *cp = cJSON_GetObjectItem(r, "copies");
    if (cJSON_IsObject(cp) && n > 0) {
        char s[24] = "no cap", t[24] = "no cap", l[24] = "no cap";
        if (render_num(cp, "per_source", 0) > 0)
            snprintf(s, sizeof s, "%.0f", render_num(cp, "per_source", 0));
        if (render_num(cp, "per_target", 0) > 0)
            snprintf(t, sizeof t, "%.0f", render_num(cp, "per_target", 0));
        if (render_num(cp, "per_link", 0) > 0)
            snprintf(l, sizeof l, "%.0f", render_num(cp, "per_link", 0));
        fprintf(out, "copies: %.0f running, %.0f queued (at once: %s per source, %s per target, "
                "%s per link)\n", render_num(cp, "running", 0), render_num(cp, "queued", 0), s, t, l);
    }
}

void render_verify(const cJSON *v, double now, FILE *out)
{
    char age[32];
    const char *state = render_str(v, "state", "?");
    double finished = render_num(v, "finished_at_ms", 0);
    if (strcmp(state, "running") == 0)
        fprintf(out, "  verify: running, %.0f of %.0f tables done\n",
                render_num(v, "tables_done", 0), render_num(v, "tables_total", 0));
    else
        fprintf(out, "  verify: %s, %.0f tables, %s ago%s%s\n", state,
                render_num(v, "tables_total", 0), s_age(now - finished, age, sizeof age),
                cJSON_IsString(cJSON_GetObjectItem(v, "error")) ? ": " : "",
                render_str(v, "error", ""));
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(cJSON_GetObjectItem(v, "schema"), "findings"))
    {
        fprintf(out, "    schema  %s: %s\n", render_str(f, "object", "?"),
                render_str(f, "problem", ""));
        fprintf(out, "            run on the target: %s\n", render_str(f, "statement", ""));
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(v, "tables"))
    {
        const char *o = render_str(t, "outcome", "?");
        fprintf(out, "    %-40s %-10s %10.0f rows  %.2f s", render_str(t, "table", "?"), o,
                render_num(t, "source_rows", 0), render_num(t, "seconds", 0));
        if (strcmp(o, "different") == 0)
            fprintf(out, "  %.0f rows differ", render_num(t, "diff_count", 0));
        fputc('\n', out);
        if (cJSON_IsString(cJSON_GetObjectItem(t, "detail")))
            fprintf(out, "      %s\n", render_str(t, "detail", ""));
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "diffs"))
        {
            fprintf(out, "      %s:", render_str(d, "kind", "?"));
            const cJSON *k;
            cJSON_ArrayForEach(k, cJSON_GetObjectItem(d, "key"))
            fprintf(out, " %s=%s", k->string, k->valuestring ? k->valuestring : "?");
            fputc('\n', out);
        }
    }
}

void render_cutover(const cJSON *c, double now, FILE *out)
{
    (void)now;
    const char *state = render_str(c, "state", "?");
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(c, "dry_run"));
    const cJSON *wp = cJSON_GetObjectItem(c, "write_pause_ms");
    bool back = strcmp(render_str(c, "direction", ""), "back") == 0;
    fprintf(out, "  %s%s: %s", back ? "rollback" : "cutover", dry ? " rehearsal" : "", state);
    if (cJSON_IsNumber(wp))
        fprintf(out, ", write pause %.1f ms", wp->valuedouble);
    if (cJSON_IsString(cJSON_GetObjectItem(c, "final_lsn")))
        fprintf(out, ", final LSN %s", render_str(c, "final_lsn", "?"));
    /* engine: mariadb: GTID positions (an empty one is a position too) */
    if (cJSON_IsString(cJSON_GetObjectItem(c, "final_gtid")))
        fprintf(out, ", final GTID %s", render_str(c, "final_gtid", "?")[0]
                                            ? render_str(c, "final_gtid", "?") : "(empty)");
    if (cJSON_IsString(cJSON_GetObjectItem(c, "switch_gtid")))
        fprintf(out, ", switch GTID %s", render_str(c, "switch_gtid", "?")[0]
                                             ? render_str(c, "switch_gtid", "?") : "(empty)");
    if (cJSON_IsString(cJSON_GetObjectItem(c, "reason")))
        fprintf(out, "; %s", render_str(c, "reason", ""));
    if (cJSON_IsString(cJSON_GetObjectItem(c, "follow")))
        fprintf(out, "; %s follows %s: %s", back ? "green" : "blue", back ? "blue" : "green",
                render_str(c, "follow", ""));
    fputc('\n', out);
    const cJSON *px;
    cJSON_ArrayForEach(px, cJSON_GetObjectItem(c, "proxies"))
    {
        if (strcmp(render_str(px, "left", ""), "unknown") == 0)
            fprintf(out, "  proxy %s of agent %s left UNKNOWN: %s\n", render_str(px, "proxy", "?"),
                    render_str(px, "agent", "?"), render_str(px, "why", ""));
    }
    if (cJSON_IsString(cJSON_GetObjectItem(c, "source_left")))
        fprintf(out, "  %s: %s\n", back ? "green" : "blue", render_str(c, "source_left", ""));
    if (cJSON_IsString(cJSON_GetObjectItem(c, "target_left")))
        fprintf(out, "  %s: %s\n", back ? "blue" : "green", render_str(c, "target_left", ""));
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "timeline"))
    {
        fprintf(out, "    %8.1f ms  %-15s %7.1f ms  %s%s%s\n", render_num(t, "at_ms", 0),
                render_str(t, "step", "?"), render_num(t, "ms", 0),
                cJSON_IsTrue(cJSON_GetObjectItem(t, "ok")) ? "ok" : "FAILED",
                cJSON_IsString(cJSON_GetObjectItem(t, "detail")) ? ": " : "",
                render_str(t, "detail", ""));
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItem(t, "agents"))
        {
            fprintf(out, "                %s: %s", render_str(a, "agent", "?"),
                    render_str(a, "what", ""));
            const cJSON *st;
            cJSON_ArrayForEach(st, cJSON_GetObjectItem(a, "steps"))
            fprintf(out, " [%s %.1f ms]", render_str(st, "name", "?"), render_num(st, "ms", 0));
            fputc('\n', out);
        }
    }
}

/* One audit event's detail in a line: an operator's command with who ran
 * it and its outcome, a cutover record by its state, else the text (or the
 * object, compact). */
static void s_audit_detail(const char *kind, const cJSON *d, FILE *out)
{
    if (!cJSON_IsObject(d)) {
        fputs(cJSON_IsString(d) ? d->valuestring : "", out);
        return;
    }
    if (strcmp(kind, "operator") == 0) {
        const cJSON *by = cJSON_GetObjectItem(d, "by");
        fprintf(out, "%s", render_str(d, "command", "?"));
        if (cJSON_IsTrue(cJSON_GetObjectItem(d, "dry_run")))
            fputs(" (dry run)", out);
        if (cJSON_IsTrue(cJSON_GetObjectItem(d, "rollback")))
            fputs(" (rollback)", out);
        if (cJSON_IsObject(by))
            fprintf(out, " by %s (uid %.0f, pid %.0f)", render_str(by, "user", "?"),
                    render_num(by, "uid", -1), render_num(by, "pid", -1));
        else
            fputs(" by an unknown client", out);
        fprintf(out, ": %s", render_str(d, "outcome", "?"));
        const char *err = render_str(d, "error", NULL);
        if (err)
            fprintf(out, ": %s", err);
        return;
    }
    char *text = cJSON_PrintUnformatted(d);
    fputs(text, out);
    cJSON_free(text);
}

void render_audit(const cJSON *r, FILE *out)
{
    const cJSON *events = cJSON_GetObjectItem(r, "events");
    fprintf(out, "migration %s: %s, %d events\n", render_str(r, "migration", "?"),
            render_str(r, "state", "?"), cJSON_GetArraySize(events));
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        time_t secs = (time_t)(render_num(e, "at_ms", 0) / 1000);
        int ms = (int)((long long)render_num(e, "at_ms", 0) % 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&secs, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        const char *kind = render_str(e, "kind", "?");
        fprintf(out, "%s.%03dZ  %-15s %-9s ", when, ms, render_str(e, "state", "?"), kind);
        s_audit_detail(kind, cJSON_GetObjectItem(e, "detail"), out);
        fputc('\n', out);
    }
}

/* The schedule's lines of fleet status: one for the schedule, one per
 * wave (its counts, its copies' bytes and ETA while they run). */
static void s_fleet_waves(const cJSON *w, FILE *out)
{
    if (!cJSON_IsObject(w))
        return;
    const cJSON *next = cJSON_GetObjectItem(w, "next");
    fprintf(out, "waves: schedule %.0f, go %s, %.0f failed (error budget %.0f, %.0f accepted); ",
            render_num(w, "schedule", 0), render_str(w, "go", "?"), render_num(w, "failed", 0),
            render_num(w, "error_budget", 0), render_num(w, "accepted_failures", 0));
    if (cJSON_IsNumber(next))
        fprintf(out, "%s\n", render_str(w, "waiting", "the next wave opens at the next tick"));
    else
        fputs("every wave has opened\n", out);
    const cJSON *one;
    cJSON_ArrayForEach(one, cJSON_GetObjectItem(w, "waves"))
    {
        fprintf(out, "  wave %-3.0f %4.0f migrations: %.0f passed, %.0f failed, %.0f on their way, "
                "%.0f scheduled", render_num(one, "wave", 0), render_num(one, "migrations", 0),
                render_num(one, "passed", 0), render_num(one, "failed", 0),
                render_num(one, "pending", 0), render_num(one, "scheduled", 0));
        const cJSON *c = cJSON_GetObjectItem(one, "copy");
        if (render_num(c, "bytes_total", 0) > 0) {
            char done[32], total[32], eta[32] = "unknown";
            const cJSON *e = cJSON_GetObjectItem(c, "eta_seconds");
            if (cJSON_IsNumber(e))
                units_fmt_duration_ms((uint64_t)(e->valuedouble * 1000), eta, sizeof eta);
            fprintf(out, "; copying %s of %s, done in about %s",
                    units_fmt_bytes((uint64_t)render_num(c, "bytes_done", 0), done, sizeof done),
                    units_fmt_bytes((uint64_t)render_num(c, "bytes_total", 0), total, sizeof total),
                    eta);
        }
        fputc('\n', out);
    }
}

void render_fleet(const cJSON *f, FILE *out)
{
    const cJSON *ag = cJSON_GetObjectItem(f, "agents");
    fprintf(out, "fleet: %.0f migrations; agents: %.0f connected of %.0f", render_num(f, "migrations", 0),
            render_num(ag, "connected", 0), render_num(ag, "total", 0));
    if (render_num(ag, "lost", 0) > 0)
        fprintf(out, ", %.0f lost", render_num(ag, "lost", 0));
    if (render_num(ag, "refused", 0) > 0)
        fprintf(out, ", %.0f refused", render_num(ag, "refused", 0));
    if (cJSON_IsTrue(cJSON_GetObjectItem(f, "fleet_paused")))
        fputs("; PAUSED (no copy starts, no wave opens)", out);
    fputc('\n', out);
    const cJSON *ph;
    fputs("phases:", out);
    int n = 0;
    cJSON_ArrayForEach(ph, cJSON_GetObjectItem(f, "phases"))
    fprintf(out, "%s %s %.0f", n++ ? "," : "", ph->string, ph->valuedouble);
    fputs(n ? "\n" : " none\n", out);
    const cJSON *c = cJSON_GetObjectItem(f, "copy");
    if (render_num(c, "running", 0) + render_num(c, "queued", 0) > 0) {
        char done[32], total[32], rate[32], eta[32] = "unknown";
        const cJSON *e = cJSON_GetObjectItem(c, "eta_seconds");
        if (cJSON_IsNumber(e))
            units_fmt_duration_ms((uint64_t)(e->valuedouble * 1000), eta, sizeof eta);
        fprintf(out, "copies: %.0f running, %.0f queued; %s of %s, %s/s, running ones done in about %s\n",
                render_num(c, "running", 0), render_num(c, "queued", 0),
                units_fmt_bytes((uint64_t)render_num(c, "bytes_done", 0), done, sizeof done),
                units_fmt_bytes((uint64_t)render_num(c, "bytes_total", 0), total, sizeof total),
                units_fmt_bytes((uint64_t)render_num(c, "rate_bytes_per_sec", 0), rate, sizeof rate),
                eta);
    }
    s_fleet_waves(cJSON_GetObjectItem(f, "waves"), out);
    const cJSON *v = cJSON_GetObjectItem(f, "verify");
    fprintf(out, "verify (streaming): %.0f equal, %.0f different, %.0f running, %.0f not verified\n",
            render_num(v, "equal", 0), render_num(v, "different", 0), render_num(v, "running", 0),
            render_num(v, "not_verified", 0));
    const cJSON *problems = cJSON_GetObjectItem(f, "problems");
    int np = cJSON_GetArraySize(problems);
    fprintf(out, "problems: %d%s\n", np, np ? "" : " (none)");
    const cJSON *p;
    cJSON_ArrayForEach(p, problems)
    fprintf(out, "  %-7s %s: %s\n", render_str(p, "severity", "?"), render_str(p, "object", "?"),
            render_str(p, "message", ""));
    const cJSON *next = cJSON_GetObjectItem(f, "next");
    fprintf(out, "next: %s   (%s)\n", render_str(next, "command", "?"), render_str(next, "why", ""));
}
