/*
 * godwitctl: the operator's command line.
 *
 *   godwitctl keygen NAME --dir DIR [--roles ROLES] [--signing]
 *   godwitctl [--socket PATH] status [--json] [--watch [--interval DUR]]
 *   godwitctl [--socket PATH] ping AGENT [--json]
 *   godwitctl [--socket PATH] proxy AGENT PROXY status|pause|resume|switch BACKEND ...
 *
 * It talks to the coordinator over its control socket (one JSON request,
 * one JSON response) and renders the answer for humans, or passes the JSON
 * through (--json, schema in docs/status-json.md). Exit codes are in
 * docs/godwitctl.md: 0 ok, 1 degraded or failed, 2 usage, 3 coordinator
 * unreachable.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ctlcmd.h"
#include "escape.h"
#include "keys.h"
#include "lsn.h"
#include "units.h"
#include "xalloc.h"

#define EXIT_DEGRADED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
/* cutover and rollback (docs/godwitctl.md): */
#define EXIT_REFUSED 4     /* refused at a gate (or the role check): nothing changed */
#define EXIT_ROLLED_BACK 5 /* aborted: traffic back on the old side, writable */
#define EXIT_UNKNOWN 6     /* aborted, and a proxy or the old side's fence left unknown */
#define DEFAULT_SOCKET "/run/godwit/coordinator.sock"

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: godwitctl [--socket PATH] COMMAND ...\n"
            "  keygen NAME --dir DIR [--roles source,target,proxy] [--signing]\n"
            "                                 write DIR/NAME.key (0600) and DIR/NAME.pub; an\n"
            "                                 agent's .pub names the roles its key may take;\n"
            "                                 --signing: the coordinator's NAME.sign.key and\n"
            "                                 NAME.sign.pub too\n"
            "  status [--json] [--watch] [--interval DUR]\n"
            "                                 agents, their link and key metrics\n"
            "  ping AGENT [--json]            command round trip to one agent\n"
            "  proxy AGENT PROXY status|resume [--json]\n"
            "  proxy AGENT PROXY pause [--lease DUR] [--timeout DUR] [--json]\n"
            "  proxy AGENT PROXY switch blue|green [--lease DUR] [--json]\n"
            "                                 drive one proxy of a proxy agent by hand\n"
            "  plan check PLAN [--json]       validate a plan and run preflight on its agents\n"
            "                                 (read-only; exit 1 if anything blocks)\n"
            "  migrate start PLAN [--name M]  preflight, then start the plan's migrations\n"
            "  migrate status [M] [--json] [--watch]\n"
            "                                 phase, per-table copy state, lag, errors\n"
            "  migrate pause|resume M         disable or enable our subscription\n"
            "  migrate abort M                remove what godwit created; the source is left as it was\n"
            "  cutover M [--dry-run] [--json] switch M's traffic to green (or rehearse it)\n"
            "  rollback M [--dry-run] [--json]\n"
            "                                 switch it back to blue, which followed green\n"
            "  cleanup M [--json]             after a cutover: drop our subscriptions, slots and\n"
            "                                 publications on both sides (no rollback after it)\n"
            "  migrate verify M [--json] [--no-wait]\n"
            "                                 compare every table, source against target, while it streams\n"
            "  version\n"
            "The control socket is --socket, else $GODWIT_SOCKET, else %s.\n"
            "Exit codes: 0 ok, 1 degraded (an agent lost or a database unreachable) or the\n"
            "command failed, 2 usage error, 3 coordinator unreachable.\n",
            DEFAULT_SOCKET);
}

/* ---- control socket client ---- */

/* Sends request, returns the parsed response (caller deletes) or NULL with
 * err filled. */
static cJSON *s_call(const char *path, const cJSON *request, int timeout_s, char *err, size_t errlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    struct timeval tv = { .tv_sec = timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%s: path too long", path);
        close(fd);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot reach the coordinator at %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(request);
    char *line = xasprintf("%s\n", text);
    cJSON_free(text);
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = write(fd, line + off, len - off);
        if (n <= 0) {
            snprintf(err, errlen, "write to %s: %s", path, strerror(errno));
            free(line);
            close(fd);
            return NULL;
        }
        off += (size_t)n;
    }
    free(line);
    size_t cap = 65536, got = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (got + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + got, cap - got - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read from %s: %s", path,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (memchr(buf + got - n, '\n', (size_t)n))
            break;
    }
    close(fd);
    buf[got] = '\0';
    cJSON *resp = cJSON_Parse(buf);
    free(buf);
    if (!resp)
        snprintf(err, errlen, "the coordinator sent an unreadable answer");
    return resp;
}

/* ---- rendering ---- */

/* Escapes every string in the tree in place (common/escape.h) before it is
 * rendered for a terminal: names, messages and errors may come from agents,
 * and a newline or an escape sequence in them must not forge a line or
 * drive the terminal. JSON output is left as it is (cJSON escapes it). */
static void s_humanize(cJSON *node)
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
            s_humanize(n->child);
    }
}

static double s_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *s_str(const cJSON *o, const char *key, const char *dflt)
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

/* Prints the fleet; returns true if every seen agent is connected (none
 * refused or suspect) and every database reachable. */
static bool s_render_status(const cJSON *st, FILE *out)
{
    bool healthy = true;
    const cJSON *co = cJSON_GetObjectItem(st, "coordinator");
    const cJSON *agents = cJSON_GetObjectItem(st, "agents");
    int n = cJSON_GetArraySize(agents), connected = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, agents) if (strcmp(s_str(a, "state", ""), "connected") == 0) connected++;
    const cJSON *rtt = cJSON_GetObjectItem(co, "rtt_ms");
    fprintf(out, "coordinator %s  epoch %.0f  %s  agents %d/%d connected", s_str(co, "version", "?"),
            s_num(co, "epoch", 0), s_str(co, "listen", "?"), connected, n);
    if (s_num(rtt, "samples", 0) > 0)
        fprintf(out, "  rtt p50 %.2f ms p99 %.2f ms", s_num(rtt, "p50", 0), s_num(rtt, "p99", 0));
    fputc('\n', out);
    const cJSON *ref = cJSON_GetObjectItem(co, "refused");
    fprintf(out, "refused: %.0f unknown key, %.0f not CURVE, %.0f failed handshakes, %.0f hellos "
                 "with a role the key may not take; %.0f bad messages (%.0f over max_message); "
                 "%.0f suspect messages ignored\n\n",
            s_num(ref, "unknown_key", 0), s_num(ref, "not_curve", 0),
            s_num(ref, "handshake_failed", 0), s_num(ref, "role", 0), s_num(co, "bad_messages", 0),
            s_num(co, "oversize_messages", 0), s_num(co, "suspect_messages", 0));
    fprintf(out, "%-16s %-7s %-11s %-8s %-9s %-22s %-12s %-14s %s\n", "AGENT", "ROLE", "STATE",
            "SEEN", "RTT", "DATABASE", "WAL RATE", "LSN", "DISK FREE");
    cJSON_ArrayForEach(a, agents)
    {
        char seen[32], rttb[32], db[64] = "-", wal[32] = "-", lsn[32] = "-", disk[64] = "-";
        const char *state = s_str(a, "state", "?");
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
                const char *ver = s_str(pg, "server_version", "?");
                snprintf(db, sizeof db, "up %.*s %s", (int)strcspn(ver, " "), ver,
                         s_str(pg, "wal_level", ""));
            } else {
                snprintf(db, sizeof db, "UNREACHABLE");
                healthy = false;
            }
            s_rate(pg, "wal_bytes_per_sec", wal, sizeof wal);
            snprintf(lsn, sizeof lsn, "%s", s_str(pg, "current_lsn", "-"));
        }
        const cJSON *dk = cJSON_GetObjectItem(a, "disk");
        if (cJSON_IsObject(dk) && cJSON_IsTrue(cJSON_GetObjectItem(dk, "ok"))) {
            char f[32], t[32];
            double size = s_num(dk, "size_bytes", 0), fr = s_num(dk, "free_bytes", 0);
            snprintf(disk, sizeof disk, "%s of %s (%.0f%%)", units_fmt_bytes((uint64_t)fr, f, sizeof f),
                     units_fmt_bytes((uint64_t)size, t, sizeof t), size > 0 ? 100.0 * fr / size : 0);
        } else if (cJSON_IsObject(dk)) {
            snprintf(disk, sizeof disk, "error: %s", s_str(dk, "error", "?"));
        }
        fprintf(out, "%-16s %-7s %-11s %-8s %-9s %-22s %-12s %-14s %s\n", s_str(a, "name", "?"),
                s_str(a, "role", "?"), state, s_age(s_num(a, "last_seen_age_ms", -1), seen, sizeof seen),
                rttb, db, wal, lsn, disk);
        if (cJSON_IsString(cJSON_GetObjectItem(a, "refused")))
            fprintf(out, "    REFUSED: %s\n", s_str(a, "refused", "?"));
        const cJSON *sus = cJSON_GetObjectItem(a, "suspect");
        if (cJSON_IsObject(sus)) {
            healthy = false;
            fprintf(out, "    SUSPECT (%.0f messages only a forger would send; ignored): last: %s\n",
                    s_num(sus, "count", 0), s_str(sus, "reason", "?"));
        }
        if (cJSON_IsObject(pg) && !cJSON_IsTrue(cJSON_GetObjectItem(pg, "reachable")))
            fprintf(out, "    database: %s\n", s_str(pg, "error", "?"));
        if (cJSON_IsObject(dk)) {
            const cJSON *io = cJSON_GetObjectItem(dk, "io");
            if (cJSON_IsObject(io)) {
                char rb[32], wb[32];
                fprintf(out, "    disk %s: read %s, write %s, %.0f/%.0f IOPS r/w, %.0f%% busy\n",
                        s_str(dk, "device", "?"), s_rate(io, "read_bytes_per_sec", rb, sizeof rb),
                        s_rate(io, "write_bytes_per_sec", wb, sizeof wb), s_num(io, "read_iops", 0),
                        s_num(io, "write_iops", 0), s_num(io, "util_percent", 0));
            }
        }
        if (!cJSON_IsObject(pg))
            continue;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "slots"))
        {
            char rb[32];
            fprintf(out, "    slot %s (%s%s%s, %s) retains %s, confirmed %s\n", s_str(s, "name", "?"),
                    s_str(s, "type", "?"), s_str(s, "plugin", "")[0] ? " " : "", s_str(s, "plugin", ""),
                    cJSON_IsTrue(cJSON_GetObjectItem(s, "active")) ? "active" : "inactive",
                    units_fmt_bytes((uint64_t)s_num(s, "retained_bytes", 0), rb, sizeof rb),
                    s_str(s, "confirmed_flush_lsn", "-"));
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "subscriptions"))
        {
            char ab[32];
            const cJSON *since = cJSON_GetObjectItem(s, "seconds_since_last_msg");
            fprintf(out, "    subscription %s (%s) received %s, last message %s ago, errors apply %.0f sync %.0f\n",
                    s_str(s, "name", "?"), cJSON_IsTrue(cJSON_GetObjectItem(s, "enabled")) ? "enabled" : "disabled",
                    s_str(s, "received_lsn", "-"),
                    cJSON_IsNumber(since) ? s_age(since->valuedouble * 1000.0, ab, sizeof ab) : "-",
                    s_num(s, "apply_error_count", 0), s_num(s, "sync_error_count", 0));
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(pg, "publications"))
        fprintf(out, "    publication %s (%s, %.0f tables)\n", s_str(s, "name", "?"),
                s_str(s, "database", "?"), s_num(s, "table_count", 0));
    }
    return healthy;
}

/* ---- commands ---- */

static int s_cmd_keygen(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL, *roles_text = NULL;
    bool signing = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc)
            roles_text = argv[++i];
        else if (strcmp(argv[i], "--signing") == 0)
            signing = true;
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!dir || !name) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    char err[512];
    unsigned roles = 0;
    if (roles_text && keys_roles_parse(roles_text, &roles, err, sizeof err) != 0) {
        fprintf(stderr, "godwitctl: keygen: --roles: %s\n", err);
        return EXIT_USAGE;
    }
    /* --signing on an existing CURVE pair adds the signing pair only (a
     * coordinator from before epoch claims); anything else never overwrites. */
    char *key_path = xasprintf("%s/%s.key", dir, name);
    char *pub_path = xasprintf("%s/%s.pub", dir, name);
    bool have_pair = signing && !roles_text && access(key_path, F_OK) == 0 &&
                     access(pub_path, F_OK) == 0;
    free(key_path);
    free(pub_path);
    keys_pair_t kp;
    if (!have_pair) {
        if (keys_generate(dir, name, roles, &kp, err, sizeof err) != 0) {
            fprintf(stderr, "godwitctl: keygen: %s\n", err);
            return EXIT_DEGRADED;
        }
        printf("wrote %s/%s.key (secret, mode 0600) and %s/%s.pub\npublic key: %s\n", dir, name,
               dir, name, kp.public_z85);
        sodium_memzero(&kp, sizeof kp);
        if (roles) {
            char list[64];
            printf("roles: %s (an agent with this key may take only these)\n",
                   keys_roles_format(roles, list, sizeof list));
        } else if (!signing) {
            printf("no roles line: in a coordinator's allowed_keys this key is refused until its "
                   ".pub says which roles it may take (keygen --roles source,target,proxy)\n");
        }
    }
    if (signing) {
        unsigned char pk[KEYS_SIGN_PUBLIC_LEN];
        if (keys_sign_generate(dir, name, pk, err, sizeof err) != 0) {
            fprintf(stderr, "godwitctl: keygen: %s\n", err);
            return EXIT_DEGRADED;
        }
        printf("wrote %s/%s.sign.key (signing secret, mode 0600) and %s/%s.sign.pub (copy it to "
               "every agent host)\n", dir, name, dir, name);
    }
    return 0;
}

static int s_cmd_status(const char *sock, int argc, char **argv)
{
    bool json = false, watch = false;
    int64_t interval = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--watch") == 0)
            watch = true;
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (!units_parse_duration_ms(argv[++i], &interval) || interval < 100) {
                fprintf(stderr, "godwitctl: --interval: expected a duration of at least 100ms, like 2s\n");
                return EXIT_USAGE;
            }
        } else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    bool tty = isatty(STDOUT_FILENO);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_STATUS));
    int code = 0;
    for (;;) {
        char err[512];
        cJSON *st = s_call(sock, req, 5, err, sizeof err);
        if (!st) {
            fprintf(stderr, "godwitctl: %s\n", err);
            code = EXIT_UNREACHABLE;
            if (!watch)
                break;
        } else if (!cJSON_IsTrue(cJSON_GetObjectItem(st, "ok"))) {
            s_humanize(st);
            fprintf(stderr, "godwitctl: %s\n", s_str(st, "error", "coordinator refused"));
            code = EXIT_DEGRADED;
        } else {
            if (!json)
                s_humanize(st);
            if (watch && tty && !json)
                fputs("\033[H\033[2J", stdout);
            if (json) {
                char *text = watch ? cJSON_PrintUnformatted(st) : cJSON_Print(st);
                puts(text);
                cJSON_free(text);
                /* Health for the exit code, without printing. */
                FILE *null = fopen("/dev/null", "w");
                code = s_render_status(st, null ? null : stderr) ? 0 : EXIT_DEGRADED;
                if (null)
                    fclose(null);
            } else {
                code = s_render_status(st, stdout) ? 0 : EXIT_DEGRADED;
            }
            fflush(stdout);
        }
        cJSON_Delete(st);
        if (!watch)
            break;
        struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    cJSON_Delete(req);
    return code;
}

/* argv[1..]: exactly one operand (*operand) and any of --json (*json)
 * and, where dry is not NULL, --dry-run (*dry). False, with the usage
 * printed, for anything else. */
static bool s_operand(int argc, char **argv, const char **operand, bool *json, bool *dry)
{
    *operand = NULL;
    *json = false;
    if (dry)
        *dry = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = true;
        else if (dry && strcmp(argv[i], "--dry-run") == 0)
            *dry = true;
        else if (!*operand && argv[i][0] != '-')
            *operand = argv[i];
        else
            *operand = "";
    }
    if (!*operand || !**operand) {
        s_usage(stderr);
        return false;
    }
    return true;
}

static int s_cmd_ping(const char *sock, int argc, char **argv)
{
    bool json;
    const char *agent;
    if (!s_operand(argc, argv, &agent, &json, NULL))
        return EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PING));
    cJSON_AddStringToObject(req, "agent", agent);
    char err[512];
    cJSON *resp = s_call(sock, req, 30, err, sizeof err);
    cJSON_Delete(req);
    if (!resp) {
        fprintf(stderr, "godwitctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
    if (!json)
        s_humanize(resp);
    if (json) {
        char *text = cJSON_Print(resp);
        puts(text);
        cJSON_free(text);
    } else if (ok) {
        printf("%s: round trip %.3f ms\n", agent, s_num(resp, "rtt_ms", 0));
    } else {
        fprintf(stderr, "godwitctl: ping %s: %s\n", agent, s_str(resp, "error", "failed"));
    }
    cJSON_Delete(resp);
    return ok ? 0 : EXIT_DEGRADED;
}

/* godwitctl proxy AGENT PROXY OP [BACKEND] [--lease DUR] [--timeout DUR] [--json] */
static int s_cmd_proxy(const char *sock, int argc, char **argv)
{
    bool json = false;
    const char *pos[4] = { NULL, NULL, NULL, NULL };
    int npos = 0;
    int64_t lease = 0, timeout = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((strcmp(argv[i], "--lease") == 0 || strcmp(argv[i], "--timeout") == 0) &&
                   i + 1 < argc) {
            int64_t *v = argv[i][2] == 'l' ? &lease : &timeout;
            if (!units_parse_duration_ms(argv[i + 1], v) || *v <= 0) {
                fprintf(stderr, "godwitctl: %s: expected a duration like 30s or 500ms\n", argv[i]);
                return EXIT_USAGE;
            }
            i++;
        } else if (argv[i][0] != '-' && npos < 4) {
            pos[npos++] = argv[i];
        } else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    bool is_switch = npos >= 3 && strcmp(pos[2], "switch") == 0;
    if (npos < 3 || npos != (is_switch ? 4 : 3)) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PROXY));
    cJSON_AddStringToObject(req, "agent", pos[0]);
    cJSON_AddStringToObject(req, "proxy", pos[1]);
    cJSON_AddStringToObject(req, "op", pos[2]);
    if (is_switch)
        cJSON_AddStringToObject(req, "backend", pos[3]);
    if (lease)
        cJSON_AddNumberToObject(req, "lease_ms", (double)lease);
    if (timeout)
        cJSON_AddNumberToObject(req, "pause_timeout_ms", (double)timeout);
    char err[512];
    /* The coordinator bounds the wait (the pause timeout plus room). */
    cJSON *resp = s_call(sock, req, 30 + (int)((timeout ? timeout : 60000) / 1000) + 5, err,
                         sizeof err);
    cJSON_Delete(req);
    if (!resp) {
        fprintf(stderr, "godwitctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
    if (!json)
        s_humanize(resp);
    const cJSON *st = cJSON_GetObjectItem(resp, "state");
    if (json) {
        char *text = cJSON_Print(resp);
        puts(text);
        cJSON_free(text);
    } else {
        if (!ok)
            fprintf(stderr, "godwitctl: proxy %s %s %s: %s\n", pos[0], pos[1], pos[2],
                    s_str(resp, "error", "failed"));
        if (cJSON_IsObject(st)) {
            const char *be = s_str(st, "backend", "");
            printf("%s/%s (%s): %s%s%s, %s", pos[0], pos[1], s_str(st, "kind", "?"),
                   be[0] ? be : "neither blue nor green", " at ", s_str(st, "address", "?"),
                   cJSON_IsTrue(cJSON_GetObjectItem(st, "paused")) ? "PAUSED" : "not paused");
            if (cJSON_IsTrue(cJSON_GetObjectItem(st, "paused")))
                printf(" (lease %.0f ms left)", s_num(st, "lease_left_ms", 0));
            if (cJSON_IsTrue(cJSON_GetObjectItem(st, "already")))
                printf("; already so, nothing done");
            if (s_num(st, "paused_ms", 0) > 0)
                printf("; traffic was held %.0f ms", s_num(st, "paused_ms", 0));
            if (s_num(st, "terminated", 0) > 0)
                printf("; terminated %.0f blocking transaction(s)", s_num(st, "terminated", 0));
            printf("\n");
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(st, "steps"))
                printf("  %-40s %6.0f ms\n", s_str(s, "name", "?"), s_num(s, "ms", 0));
        }
    }
    cJSON_Delete(resp);
    return ok ? 0 : EXIT_DEGRADED;
}

static void s_render_plan_check(const cJSON *r, FILE *out)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(r, "migrations"))
    {
        fprintf(out, "migration %s: %s/%s -> %s/%s: %.0f blocking, %.0f warnings\n",
                s_str(m, "name", "?"), s_str(m, "source", "?"), s_str(m, "source_database", "?"),
                s_str(m, "target", "?"), s_str(m, "target_database", "?"), s_num(m, "blocking", 0),
                s_num(m, "warnings", 0));
        const cJSON *fa = cJSON_GetObjectItem(m, "source_facts");
        if (cJSON_IsObject(fa)) {
            char b[32];
            fprintf(out, "  source: PostgreSQL %s, %s, %.0f tables\n", s_str(fa, "server_version", "?"),
                    units_fmt_bytes((uint64_t)s_num(fa, "database_size", 0), b, sizeof b),
                    s_num(fa, "tables", 0));
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(m, "findings"))
        {
            const char *sev = s_str(f, "severity", "?");
            fprintf(out, "  %-7s %-6s %s: %s\n", strcmp(sev, "error") == 0 ? "BLOCKS" : sev,
                    s_str(f, "side", "?"), s_str(f, "object", "?"), s_str(f, "message", ""));
            fprintf(out, "                 fix: %s\n", s_str(f, "fix", ""));
        }
    }
    double blocking = s_num(r, "blocking", 0);
    fprintf(out, "%s\n", blocking > 0 ? "plan check: blocked (fix the findings marked BLOCKS)"
                                       : "plan check: ready (nothing blocks)");
}

/* Reads a plan file whole (at most 1 MiB); NULL with a message printed. */
static char *s_read_plan(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "godwitctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20;
    char *text = xmalloc(cap + 2);
    size_t len = fread(text, 1, cap + 1, f);
    fclose(f);
    if (len > cap) {
        fprintf(stderr, "godwitctl: %s: larger than 1 MiB\n", path);
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

static void s_render_verify(const cJSON *v, double now, FILE *out);

static void s_render_cutover(const cJSON *c, double now, FILE *out);

static void s_render_migrations(const cJSON *r, FILE *out)
{
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(r, "migrations"))
    {
        char age[32], lag[32], ret[32];
        double since = s_num(m, "state_since_ms", 0);
        double now = s_num(r, "generated_at_ms", since);
        const cJSON *lb = cJSON_GetObjectItem(m, "lag_bytes");
        const cJSON *rb = cJSON_GetObjectItem(m, "slot_retained_bytes");
        fprintf(out, "migration %s: %s for %s (%s)\n", s_str(m, "name", "?"), s_str(m, "state", "?"),
                s_age(now - since, age, sizeof age), s_str(m, "doing", ""));
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
        fprintf(out, "  %s/%s -> %s/%s; lag %s%s, slot retains %s%s; tables ready %.0f/%d\n",
                s_str(m, "source", "?"), s_str(m, "source_database", "?"), s_str(m, "target", "?"),
                s_str(m, "target_database", "?"),
                cJSON_IsNumber(lb) ? units_fmt_bytes((uint64_t)lb->valuedouble, lag, sizeof lag) : "-",
                lagsec, cJSON_IsNumber(rb) ? units_fmt_bytes((uint64_t)rb->valuedouble, ret, sizeof ret) : "-",
                spill, s_num(m, "tables_ready", 0), cJSON_GetArraySize(cJSON_GetObjectItem(m, "tables")));
        const cJSON *e = cJSON_GetObjectItem(m, "last_error");
        if (cJSON_IsString(e))
            fprintf(out, "  error (attempt %.0f): %s\n", s_num(m, "attempts", 0), e->valuestring);
        const cJSON *cp = cJSON_GetObjectItem(m, "copy");
        if (cJSON_IsObject(cp)) {
            char d[32], t[32], rt[32], eta_text[32] = "not known yet";
            double total = s_num(cp, "bytes_total", 0), doneb = s_num(cp, "bytes_done", 0);
            const cJSON *eta = cJSON_GetObjectItem(cp, "eta_seconds");
            if (cJSON_IsNumber(eta))
                snprintf(eta_text, sizeof eta_text, "about %.0f s", eta->valuedouble);
            fprintf(out, "  copy: %s of %s (%.0f %%), %s/s, ETA %s\n",
                    units_fmt_bytes((uint64_t)doneb, d, sizeof d),
                    units_fmt_bytes((uint64_t)total, t, sizeof t),
                    total > 0 ? 100.0 * doneb / total : 0.0,
                    units_fmt_bytes((uint64_t)s_num(cp, "rate_bytes_per_sec", 0), rt, sizeof rt),
                    eta_text);
        }
        const cJSON *fo = cJSON_GetObjectItem(m, "follow");
        if (cJSON_IsObject(fo)) {
            char fl[32], fr[32];
            fprintf(out, "  blue follows green: slot %s on green %s, lag %s, slot retains %s\n",
                    s_str(fo, "slot", "?"),
                    cJSON_IsTrue(cJSON_GetObjectItem(fo, "active")) ? "active" : "NOT active",
                    units_fmt_bytes((uint64_t)s_num(fo, "lag_bytes", 0), fl, sizeof fl),
                    units_fmt_bytes((uint64_t)s_num(fo, "slot_retained_bytes", 0), fr, sizeof fr));
        }
        const cJSON *sb = cJSON_GetObjectItem(m, "stopped_because");
        if (cJSON_IsString(sb))
            fprintf(out, "  stopped: %s\n", sb->valuestring);
        const cJSON *re = cJSON_GetObjectItem(m, "replication_error");
        if (cJSON_IsObject(re))
            fprintf(out, "  replication error on the target (%.0f times, last %s ago): %s\n",
                    s_num(re, "times", 1), s_age(now - s_num(re, "at_ms", now), age, sizeof age),
                    s_str(re, "message", "?"));
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(m, "tables"))
        {
            /* Copy counters exist only while the table is being copied. */
            char b[32];
            if (strcmp(s_str(t, "state", ""), "data") == 0)
                fprintf(out, "    %-40s %-9s %12.0f rows %12s copied\n", s_str(t, "table", "?"),
                        s_str(t, "state", "?"), s_num(t, "rows_copied", 0),
                        units_fmt_bytes((uint64_t)s_num(t, "bytes_copied", 0), b, sizeof b));
            else
                fprintf(out, "    %-40s %s\n", s_str(t, "table", "?"), s_str(t, "state", "?"));
        }
        const cJSON *v = cJSON_GetObjectItem(m, "verify");
        if (cJSON_IsObject(v))
            s_render_verify(v, now, out);
        const cJSON *cu = cJSON_GetObjectItem(m, "cutover");
        if (cJSON_IsObject(cu))
            s_render_cutover(cu, now, out);
        n++;
    }
    if (n == 0)
        fprintf(out, "no migrations\n");
}

/* A verify report (the "verify" object of a migration's status). */
static void s_render_verify(const cJSON *v, double now, FILE *out)
{
    char age[32];
    const char *state = s_str(v, "state", "?");
    double finished = s_num(v, "finished_at_ms", 0);
    if (strcmp(state, "running") == 0)
        fprintf(out, "  verify: running, %.0f of %.0f tables done\n", s_num(v, "tables_done", 0),
                s_num(v, "tables_total", 0));
    else
        fprintf(out, "  verify: %s, %.0f tables, %s ago%s%s\n", state, s_num(v, "tables_total", 0),
                s_age(now - finished, age, sizeof age), cJSON_IsString(cJSON_GetObjectItem(v, "error"))
                ? ": " : "", s_str(v, "error", ""));
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(cJSON_GetObjectItem(v, "schema"), "findings"))
    {
        fprintf(out, "    schema  %s: %s\n", s_str(f, "object", "?"), s_str(f, "problem", ""));
        fprintf(out, "            run on the target: %s\n", s_str(f, "statement", ""));
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(v, "tables"))
    {
        const char *o = s_str(t, "outcome", "?");
        fprintf(out, "    %-40s %-10s %10.0f rows  %.2f s", s_str(t, "table", "?"), o,
                s_num(t, "source_rows", 0), s_num(t, "seconds", 0));
        if (strcmp(o, "different") == 0)
            fprintf(out, "  %.0f rows differ", s_num(t, "diff_count", 0));
        fputc('\n', out);
        if (cJSON_IsString(cJSON_GetObjectItem(t, "detail")))
            fprintf(out, "      %s\n", s_str(t, "detail", ""));
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "diffs"))
        {
            fprintf(out, "      %s:", s_str(d, "kind", "?"));
            const cJSON *k;
            cJSON_ArrayForEach(k, cJSON_GetObjectItem(d, "key"))
            fprintf(out, " %s=%s", k->string, k->valuestring ? k->valuestring : "?");
            fputc('\n', out);
        }
    }
}

/* Sends req (taken) to the coordinator: 0 when it said ok, else the exit
 * code, with the reason printed. */
static int s_ask(const char *sock, cJSON *req)
{
    char err[512];
    cJSON *resp = s_call(sock, req, 30, err, sizeof err);
    cJSON_Delete(req);
    if (!resp) {
        fprintf(stderr, "godwitctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    int code = 0;
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        s_humanize(resp);
        fprintf(stderr, "godwitctl: %s\n", s_str(resp, "error", "failed"));
        code = EXIT_DEGRADED;
    }
    cJSON_Delete(resp);
    return code;
}

/* Migration name's status response (the caller deletes it; escaped for a
 * terminal unless json), or NULL with the reason printed (coordinator
 * unreachable). */
static cJSON *s_migration_status(const char *sock, const char *name, bool json)
{
    char err[512];
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_STATUS));
    cJSON_AddStringToObject(req, "name", name);
    cJSON *resp = s_call(sock, req, 30, err, sizeof err);
    cJSON_Delete(req);
    if (!resp)
        fprintf(stderr, "godwitctl: %s\n", err);
    else if (!json)
        s_humanize(resp);
    return resp;
}

/* Follows migration name's `key` report (verify, cutover) in its status
 * every poll_ms until its state is one of finals (NULL-terminated); prints
 * it (as JSON, or rendered) and returns code_of(report), or without one 0
 * if that state is finals[0], else EXIT_DEGRADED; EXIT_UNREACHABLE if the
 * coordinator is gone. */
static int s_follow(const char *sock, const char *name, const char *key,
                    const char *const *finals, unsigned poll_ms, bool json,
                    void (*render)(const cJSON *report, double now, FILE *out),
                    int (*code_of)(const cJSON *report))
{
    for (;;) {
        cJSON *resp = s_migration_status(sock, name, json);
        if (!resp)
            return EXIT_UNREACHABLE;
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "migrations"), 0);
        const cJSON *rep = cJSON_GetObjectItem(m, key);
        if (!cJSON_IsObject(rep)) {
            fprintf(stderr, "godwitctl: migration %s: %s\n", name,
                    s_str(resp, "error", "it stopped (the migration left streaming)"));
            cJSON_Delete(resp);
            return EXIT_DEGRADED;
        }
        const char *state = s_str(rep, "state", "");
        for (size_t f = 0; finals[f]; f++) {
            if (strcmp(state, finals[f]) != 0)
                continue;
            if (json) {
                char *out = cJSON_Print(rep);
                puts(out);
                cJSON_free(out);
            } else {
                printf("migration %s:\n", name);
                render(rep, s_num(resp, "generated_at_ms", 0), stdout);
            }
            int code = code_of ? code_of(rep) : f == 0 ? 0 : EXIT_DEGRADED;
            cJSON_Delete(resp);
            return code;
        }
        cJSON_Delete(resp);
        usleep(poll_ms * 1000);
    }
}

/* migrate verify M: starts verify, then (unless --no-wait) follows it until
 * it ends. 0 when every table is equal. */
static int s_cmd_verify(const char *sock, const char *name, bool json, bool wait)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_VERIFY));
    cJSON_AddStringToObject(req, "name", name);
    int code = s_ask(sock, req);
    if (code != 0)
        return code;
    if (!wait) {
        printf("migration %s: verifying; godwitctl migrate status %s shows the report\n", name, name);
        return 0;
    }
    static const char *const finals[] = { "equal", "different", "failed", NULL };
    return s_follow(sock, name, "verify", finals, 300, json, s_render_verify, NULL);
}

/* A cutover report: the outcome and the timeline of its steps. */
static void s_render_cutover(const cJSON *c, double now, FILE *out)
{
    (void)now;
    const char *state = s_str(c, "state", "?");
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(c, "dry_run"));
    const cJSON *wp = cJSON_GetObjectItem(c, "write_pause_ms");
    bool back = strcmp(s_str(c, "direction", ""), "back") == 0;
    fprintf(out, "  %s%s: %s", back ? "rollback" : "cutover", dry ? " rehearsal" : "", state);
    if (cJSON_IsNumber(wp))
        fprintf(out, ", write pause %.1f ms", wp->valuedouble);
    if (cJSON_IsString(cJSON_GetObjectItem(c, "final_lsn")))
        fprintf(out, ", final LSN %s", s_str(c, "final_lsn", "?"));
    if (cJSON_IsString(cJSON_GetObjectItem(c, "reason")))
        fprintf(out, "; %s", s_str(c, "reason", ""));
    if (cJSON_IsString(cJSON_GetObjectItem(c, "follow")))
        fprintf(out, "; %s follows %s: %s", back ? "green" : "blue", back ? "blue" : "green",
                s_str(c, "follow", ""));
    fputc('\n', out);
    const cJSON *px;
    cJSON_ArrayForEach(px, cJSON_GetObjectItem(c, "proxies"))
    {
        if (strcmp(s_str(px, "left", ""), "unknown") == 0)
            fprintf(out, "  proxy %s of agent %s left UNKNOWN: %s\n", s_str(px, "proxy", "?"),
                    s_str(px, "agent", "?"), s_str(px, "why", ""));
    }
    if (cJSON_IsString(cJSON_GetObjectItem(c, "source_left")))
        fprintf(out, "  %s: %s\n", back ? "green" : "blue", s_str(c, "source_left", ""));
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "timeline"))
    {
        fprintf(out, "    %8.1f ms  %-15s %7.1f ms  %s%s%s\n", s_num(t, "at_ms", 0),
                s_str(t, "step", "?"), s_num(t, "ms", 0),
                cJSON_IsTrue(cJSON_GetObjectItem(t, "ok")) ? "ok" : "FAILED",
                cJSON_IsString(cJSON_GetObjectItem(t, "detail")) ? ": " : "",
                s_str(t, "detail", ""));
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItem(t, "agents"))
        {
            fprintf(out, "                %s: %s", s_str(a, "agent", "?"), s_str(a, "what", ""));
            const cJSON *st;
            cJSON_ArrayForEach(st, cJSON_GetObjectItem(a, "steps"))
            fprintf(out, " [%s %.1f ms]", s_str(st, "name", "?"), s_num(st, "ms", 0));
            fputc('\n', out);
        }
    }
}

/* The exit code of a cutover's final report, by its outcome. */
static int s_cutover_code(const cJSON *rep)
{
    const char *outcome = s_str(rep, "outcome", "");
    if (strcmp(outcome, "done") == 0)
        return 0;
    if (strcmp(outcome, "refused") == 0)
        return EXIT_REFUSED;
    if (strcmp(outcome, "rolled_back") == 0)
        return EXIT_ROLLED_BACK;
    if (strcmp(outcome, "unknown") == 0)
        return EXIT_UNKNOWN;
    return EXIT_DEGRADED;
}

/* cutover|rollback M [--dry-run] [--json]: starts it and follows it to
 * its end. The code says how it ended: 0 done (switched, or rehearsed),
 * EXIT_REFUSED, EXIT_ROLLED_BACK, EXIT_UNKNOWN, or 1 for any other error. */
static int s_cmd_cutover(const char *sock, int argc, char **argv)
{
    bool json, dry;
    const char *name;
    if (!s_operand(argc, argv, &name, &json, &dry))
        return EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_CUTOVER));
    cJSON_AddStringToObject(req, "name", name);
    cJSON_AddBoolToObject(req, "dry_run", dry);
    cJSON_AddBoolToObject(req, "rollback", strcmp(argv[0], "rollback") == 0);
    char err[512];
    cJSON *resp = s_call(sock, req, 30, err, sizeof err);
    cJSON_Delete(req);
    if (!resp) {
        fprintf(stderr, "godwitctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        int code = cJSON_IsTrue(cJSON_GetObjectItem(resp, "refused")) ? EXIT_REFUSED
                                                                      : EXIT_DEGRADED;
        s_humanize(resp);
        fprintf(stderr, "godwitctl: %s\n", s_str(resp, "error", "failed"));
        cJSON_Delete(resp);
        return code;
    }
    cJSON_Delete(resp);
    static const char *const finals[] = { "done", "aborted", NULL };
    return s_follow(sock, name, "cutover", finals, 100, json, s_render_cutover, s_cutover_code);
}

/* cleanup M [--json]: asks for it and waits (two minutes at most) until
 * the migration is done. 0 when done; 1 when refused or still failing,
 * with the step's last error. */
static int s_cmd_cleanup(const char *sock, int argc, char **argv)
{
    bool json;
    const char *name;
    if (!s_operand(argc, argv, &name, &json, NULL))
        return EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_CLEANUP));
    cJSON_AddStringToObject(req, "name", name);
    int code = s_ask(sock, req);
    if (code != 0)
        return code;
    for (int waited_ms = 0;; waited_ms += 200) {
        cJSON *resp = s_migration_status(sock, name, json);
        if (!resp)
            return EXIT_UNREACHABLE;
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "migrations"), 0);
        const char *state = s_str(m, "state", "?");
        bool done = strcmp(state, "done") == 0;
        if (done || waited_ms >= 120000) {
            if (json) {
                char *out = cJSON_Print(m);
                puts(out);
                cJSON_free(out);
            } else if (done) {
                printf("migration %s: cleaned up: %s\n", name, s_str(m, "doing", ""));
            } else {
                fprintf(stderr, "godwitctl: migration %s: still %s after two minutes: %s\n", name,
                        state, s_str(m, "last_error", "no error reported"));
            }
            cJSON_Delete(resp);
            return done ? 0 : EXIT_DEGRADED;
        }
        cJSON_Delete(resp);
        usleep(200 * 1000);
    }
}

static int s_cmd_migrate(const char *sock, int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    bool json = false, watch = false, no_wait = false;
    const char *arg = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--no-wait") == 0)
            no_wait = true;
        else if (strcmp(argv[i], "--watch") == 0)
            watch = true;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (!arg && argv[i][0] != '-')
            arg = argv[i];
        else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (strcmp(sub, "verify") == 0 && arg)
        return s_cmd_verify(sock, arg, json, !no_wait);
    cJSON *req = cJSON_CreateObject();
    if (strcmp(sub, "start") == 0 && arg) {
        char *text = s_read_plan(arg);
        if (!text) {
            cJSON_Delete(req);
            return EXIT_USAGE;
        }
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_START));
        cJSON_AddStringToObject(req, "file", arg);
        cJSON_AddStringToObject(req, "text", text);
        if (name)
            cJSON_AddStringToObject(req, "name", name);
        free(text);
    } else if (strcmp(sub, "status") == 0) {
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_MIGRATE_STATUS));
        if (arg)
            cJSON_AddStringToObject(req, "name", arg);
    } else if ((strcmp(sub, "abort") == 0 || strcmp(sub, "pause") == 0 ||
                strcmp(sub, "resume") == 0) && arg) {
        ctlcmd_t cmd = strcmp(sub, "abort") == 0   ? CTLCMD_MIGRATE_ABORT
                       : strcmp(sub, "pause") == 0 ? CTLCMD_MIGRATE_PAUSE
                                                   : CTLCMD_MIGRATE_RESUME;
        cJSON_AddStringToObject(req, "cmd", ctlcmd_name(cmd));
        cJSON_AddStringToObject(req, "name", arg);
    } else {
        cJSON_Delete(req);
        s_usage(stderr);
        return EXIT_USAGE;
    }
    int code = 0;
    for (;;) {
        char err[512];
        cJSON *resp = s_call(sock, req, 120, err, sizeof err);
        if (!resp) {
            fprintf(stderr, "godwitctl: %s\n", err);
            code = EXIT_UNREACHABLE;
        } else {
            bool ok = cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
            code = ok ? 0 : cJSON_IsTrue(cJSON_GetObjectItem(resp, "invalid_plan")) ? EXIT_USAGE
                                                                                  : EXIT_DEGRADED;
            if (!json)
                s_humanize(resp);
            if (json) {
                char *out = watch ? cJSON_PrintUnformatted(resp) : cJSON_Print(resp);
                puts(out);
                cJSON_free(out);
            } else if (!ok) {
                if (cJSON_IsArray(cJSON_GetObjectItem(resp, "migrations")))
                    s_render_plan_check(resp, stderr);
                fprintf(stderr, "godwitctl: %s\n", s_str(resp, "error", "failed"));
            } else if (strcmp(sub, "status") == 0) {
                if (watch && isatty(STDOUT_FILENO))
                    fputs("\033[H\033[2J", stdout);
                s_render_migrations(resp, stdout);
            } else if (strcmp(sub, "start") == 0) {
                const cJSON *s;
                cJSON_ArrayForEach(s, cJSON_GetObjectItem(resp, "started"))
                printf("migration %s started; follow it with: godwitctl migrate status %s\n",
                       s->valuestring, s->valuestring);
            } else {
                printf("migration %s: %s; godwitctl migrate status %s shows when it is done\n",
                       arg, strcmp(sub, "abort") == 0 ? "aborting" : strcmp(sub, "pause") == 0
                                                                        ? "pausing"
                                                                        : "resuming",
                       arg);
            }
            fflush(stdout);
            cJSON_Delete(resp);
        }
        if (!watch || strcmp(sub, "status") != 0)
            break;
        sleep(1);
    }
    cJSON_Delete(req);
    return code;
}

static int s_cmd_plan(const char *sock, int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!path) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    char *text = s_read_plan(path);
    if (!text)
        return EXIT_USAGE;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", ctlcmd_name(CTLCMD_PLAN_CHECK));
    cJSON_AddStringToObject(req, "file", path);
    cJSON_AddStringToObject(req, "text", text);
    free(text);
    char err[512];
    cJSON *resp = s_call(sock, req, 120, err, sizeof err);
    cJSON_Delete(req);
    if (!resp) {
        fprintf(stderr, "godwitctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    int code;
    if (!json)
        s_humanize(resp);
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        bool invalid = cJSON_IsTrue(cJSON_GetObjectItem(resp, "invalid_plan"));
        code = invalid ? EXIT_USAGE : EXIT_DEGRADED;
        if (!json)
            fprintf(stderr, "godwitctl: %s\n", s_str(resp, "error", "plan check failed"));
    } else {
        code = s_num(resp, "blocking", 0) > 0 ? EXIT_DEGRADED : 0;
        if (!json)
            s_render_plan_check(resp, stdout);
    }
    if (json) {
        char *out = cJSON_Print(resp);
        puts(out);
        cJSON_free(out);
    }
    cJSON_Delete(resp);
    return code;
}

int main(int argc, char **argv)
{
    const char *sock = getenv("GODWIT_SOCKET");
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!sock)
        sock = DEFAULT_SOCKET;
    if (i >= argc) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(argc - i, argv + i);
    if (strcmp(cmd, "status") == 0)
        return s_cmd_status(sock, argc - i, argv + i);
    if (strcmp(cmd, "ping") == 0)
        return s_cmd_ping(sock, argc - i, argv + i);
    if (strcmp(cmd, "proxy") == 0)
        return s_cmd_proxy(sock, argc - i, argv + i);
    if (strcmp(cmd, "plan") == 0)
        return s_cmd_plan(sock, argc - i, argv + i);
    if (strcmp(cmd, "migrate") == 0)
        return s_cmd_migrate(sock, argc - i, argv + i);
    if (strcmp(cmd, "cutover") == 0 || strcmp(cmd, "rollback") == 0)
        return s_cmd_cutover(sock, argc - i, argv + i);
    if (strcmp(cmd, "cleanup") == 0)
        return s_cmd_cleanup(sock, argc - i, argv + i);
    if (strcmp(cmd, "version") == 0) {
        printf("godwitctl %s\n", GODWIT_VERSION);
        return 0;
    }
    fprintf(stderr, "godwitctl: unknown command \"%s\"\n", cmd);
    s_usage(stderr);
    return EXIT_USAGE;
}
