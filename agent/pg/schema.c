/*
 * schema: ApplySchema, the schema phase on the target host (step.h has the
 * contract with the caller). The source's schema is read with pg_dump and
 * applied to the target database with pg_restore, in two sections:
 *
 *   "pre"  before the data: everything pg_restore files as pre-data (types,
 *          functions, sequences, tables, defaults, partitions), plus what the
 *          apply workers need before the first change arrives: primary keys
 *          and each replica-identity index (its TOC entry carries the ALTER
 *          TABLE ... REPLICA IDENTITY USING INDEX), with the comments and
 *          partition-index attachments that hang on those only.
 *   "post" after the copy: every other post-data entry (secondary indexes,
 *          unique and foreign-key constraints, triggers, rules, policies).
 *
 * Owners and privileges are restored as the source has them (each object's
 * ALTER ... OWNER TO, its GRANTs and REVOKEs, default privileges with the
 * post-data section, policies with their roles): the roles step (roles.c)
 * ran first and made every role they name. The restore itself runs as the
 * agent's own role, a superuser, and so do the copy and the subscription's
 * apply, so owners on the target do not change how replication writes.
 *
 * Publications and subscriptions (and what hangs on them) are never applied:
 * a logical-replication target must not get the source's.
 *
 * Tables asked for: pg_dump always dumps the whole schema (pg_dump --table
 * would leave out the schemas, types and functions the tables need). The
 * scope is then cut out of the TOC: the tables asked for and, transitively,
 * the partitions of those that are partitioned are in scope; every other
 * TABLE entry is out, and so is every entry that depends on one, directly or
 * transitively (its owned sequences, defaults, constraints, indexes,
 * triggers, comments, views over it, foreign keys to or from it, partition
 * attachments). Everything else (schemas, types, functions, other sequences)
 * is kept. A table asked for that the source lacks is an error naming it; so
 * is an in-scope table or column default that needs something out of scope
 * (an inheritance parent, a sequence owned by another table), rather than
 * leaving it out silently. The idempotency checks see only the scope.
 *
 * Steps, one after the other: a private temp dir (mkdtemp under /tmp);
 * pg_dump --schema-only --format=custom into it; pg_restore --list twice (all
 * entries with their dependencies, then the post-data ones); the source's
 * catalog, asked over a normal connection which TOC entries are primary keys
 * and replica-identity indexes and what each entry is called (entries are
 * matched by their catalog id, the "tableoid oid" pair of a TOC line, never
 * by parsing names out of it: names there are not quoted and may hold
 * spaces); the target's catalog, asked whether the section is already
 * applied; then, only if nothing of it exists yet, the chosen entries are
 * written to a list file and pg_restore --use-list --single-transaction
 * applies them. The temp dir is removed before done runs.
 *
 * Idempotency: one transaction applies a section, so finding all of its
 * tables ("pre") or named objects ("post") on the target means it was
 * applied (already_done); finding none means it was not; finding some is an
 * error (something else created them).
 *
 * Children get the agent's environment minus every PG* variable, plus the
 * connection (for the source: the peer the command names, as the agent's
 * config describes it, and the database the command names) as PGHOST,
 * PGPORT, PGUSER, PGPASSFILE, PGSSLMODE, PGDATABASE:
 * never on a command line, never a password. The target database goes to
 * pg_restore as --dbname, which libpq would read as a connection string if
 * it held '=' or began with a URI prefix; such names are refused.
 *
 * What it owns: its runtime (steprun.h: the two connections, the timer
 * that starts the work one loop turn after schema_apply_start, the label,
 * the statement in flight, done), up to one child (proc), up to one uv_fs_t
 * request, the temp dir, the TOC and the result. It ends through the
 * runtime's wind_down hook: a failure or success first winds down (the
 * connections close, the child is killed and waited for, the file request
 * finishes, the temp dir goes) and only then does the runtime report.
 * Cancelling (the runtime's cancel, then the same hook) winds down the same
 * way with no callback. The runtime lets the memory go when both the
 * wind-down and its timer's close are over, whichever comes last.
 *
 * What it must never do: change the source (its session is read-only), run
 * a shell, report twice or after cancel, or block the loop.
 */
#include "log.h"
#include "pgconn.h"
#include "proc.h"
#include "steprun.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KILL_GRACE_MS 2000         /* SIGTERM, then SIGKILL after this */
#define S_ERR_MAX 4096               /* stderr kept per child */
#define S_TOC_MAX (256u << 20)       /* pg_restore --list output kept */
#define S_TMP_TEMPLATE "/tmp/godwit-schema-XXXXXX"
#define S_DUMP_FILE "schema.dump"
#define S_LIST_FILE "restore.list"
#define S_NAMES_SHOWN 5              /* objects named in an error */

/* Entry flags. */
enum {
    F_POST = 1 << 0,      /* pg_restore files it as post-data */
    F_EXCLUDED = 1 << 1,  /* never applied (publication, subscription, database) */
    F_KEY = 1 << 2,       /* a primary key or a replica-identity index */
    F_MOVED = 1 << 3,     /* post-data, applied with "pre" */
    F_SPECIAL = 1 << 4,   /* ENCODING, STDSTRINGS, SEARCHPATH: settings, not objects */
    F_IN = 1 << 5,        /* a table in scope: asked for, or a partition of one in scope */
    F_OUT = 1 << 6,       /* out of scope: another table, or what depends on one */
};

/* What an entry is, from the source's catalog. */
typedef enum {
    K_NONE = 0,
    K_TABLE,          /* ordinary or partitioned table */
    K_INDEX,
    K_RELATION,       /* any other pg_class entry (sequence, view, ...) */
    K_CONSTRAINT,
    K_TRIGGER,
    K_RULE,
    K_POLICY,
    K_EVENT_TRIGGER,
} s_kind_t;

static const struct {
    const char *name; /* as the source query writes it, and the target query reads it */
    s_kind_t kind;
} s_kinds[] = {
    {"table", K_TABLE},       {"index", K_INDEX},   {"relation", K_RELATION},
    {"constraint", K_CONSTRAINT}, {"trigger", K_TRIGGER}, {"rule", K_RULE},
    {"policy", K_POLICY},     {"event trigger", K_EVENT_TRIGGER},
};

/* One line of pg_restore --list. */
typedef struct {
    int id;                /* dump id */
    uint32_t cls, oid;     /* catalog id: the catalog's oid and the object's */
    const char *line;      /* the whole line, in s->toc */
    const char *desc;      /* "DESC schema name owner", in s->toc */
    int *deps;             /* dump ids it depends on, malloc'd */
    size_t n_deps, cap_deps;
    unsigned flags;
    s_kind_t kind;
    char *schema, *table, *name; /* from the source's catalog, malloc'd */
    uint32_t parent;       /* a partition's parent table (its oid), else 0 */
} s_entry_t;

/* The runtime's connections. */
enum { S_SRC = 0, S_DST = 1 };

/* A table asked for. */
typedef struct {
    char *schema, *name;
    bool found;
} s_want_t;

typedef struct {
    steprun_t run;         /* first: conn[S_SRC], conn[S_DST], label, what, the kick,
                              done, the outcome while winding down */
    bool stopping;         /* finished or cancelled: only the wind-down goes on */
    bool post;             /* section "post", else "pre" */

    char *database;        /* target database */
    char *source_db;
    char *pg_dump, *pg_restore;
    char **src_env, **dst_env;
    s_want_t *want;        /* the tables asked for, sorted, no duplicates; none: all */
    size_t n_want;
    int64_t statement_timeout_ms;
    int64_t connect_timeout_ms;

    proc_t *proc;          /* the child running, if any */
    const char *proc_what; /* its name in errors */
    uv_fs_t fs;
    bool fs_busy;          /* a request on fs is in flight */
    char *dir, *dump_path, *list_path;
    int cleanup_step;
    uv_file list_fd;
    bool list_open;
    char *list_text;       /* the list file's content */
    size_t list_len, list_off;
    char *list_error;      /* a write failed; reported once the file is closed */

    char *toc;             /* pg_restore --list --verbose output, lines NUL-split */
    s_entry_t *entries;    /* in TOC order */
    size_t n_entries, cap_entries;
    size_t *by_id;         /* indexes into entries, sorted by dump id */
    size_t *asked;         /* entries whose catalog id went to the source, in order */
    size_t n_asked;
    uint32_t objects;      /* entries of the section to apply */
    size_t n_checked;      /* objects asked about on the target */

    Godwit__ApplySchemaResult *result; /* until it goes to steprun_finish */
    char *refused;         /* the request was refused at the start: why */
} schema_t;

static void s_cleanup(schema_t *s);
static void s_failf(schema_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- small helpers ------------------------------------------------------- */

static bool s_nonempty(const char *v)
{
    return v && v[0];
}

/* text folded onto one line: runs of whitespace with a line break become
 * one space, trailing whitespace goes. The caller frees. */
static char *s_oneline(const char *text)
{
    char *out = xstrdup(text ? text : "");
    size_t o = 0;
    for (const char *p = out; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
                o--;
            while (p[1] == '\n' || p[1] == '\r' || p[1] == ' ' || p[1] == '\t')
                p++;
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return out;
}

/* Orders tables asked for by schema, then name. */
static int s_cmp_want(const void *a, const void *b)
{
    const s_want_t *x = a, *y = b;
    int c = strcmp(x->schema, y->schema);
    return c ? c : strcmp(x->name, y->name);
}

/* True when the entry's description is desc, or desc followed by more words
 * ("PUBLICATION" matches "PUBLICATION TABLE" too). */
static bool s_desc_is(const s_entry_t *e, const char *desc)
{
    size_t n = strlen(desc);
    return strncmp(e->desc, desc, n) == 0 && (e->desc[n] == ' ' || e->desc[n] == '\0');
}

static bool s_desc_exact(const s_entry_t *e, const char *desc)
{
    size_t n = strlen(desc);
    return strncmp(e->desc, desc, n) == 0 && e->desc[n] == ' ';
}

/* ---- finishing ----------------------------------------------------------- */

static void s_free_entries(schema_t *s)
{
    for (size_t i = 0; i < s->n_entries; i++) {
        free(s->entries[i].deps);
        free(s->entries[i].schema);
        free(s->entries[i].table);
        free(s->entries[i].name);
    }
    free(s->entries);
    s->entries = NULL;
    s->n_entries = 0;
}

static void s_free(schema_t *s)
{
    s_free_entries(s);
    free(s->by_id);
    free(s->asked);
    free(s->toc);
    free(s->list_text);
    free(s->list_error);
    free(s->dir);
    free(s->dump_path);
    free(s->list_path);
    for (size_t i = 0; i < s->n_want; i++) {
        free(s->want[i].schema);
        free(s->want[i].name);
    }
    free(s->want);
    proc_env_free(&s->src_env);
    proc_env_free(&s->dst_env);
    free(s->pg_dump);
    free(s->pg_restore);
    free(s->database);
    free(s->source_db);
    if (s->result)
        godwit__apply_schema_result__free_unpacked(s->result, NULL);
    free(s->refused);
    free(s);
}

/* The runtime's release hook: both the wind-down and the timer's close are
 * over. */
static void s_release(steprun_t *run)
{
    s_free((schema_t *)run);
}

/* The wind-down is over (the temp dir is gone): the runtime ends with the
 * outcome steprun_finish kept and reports it, unless it was cancelled. */
static void s_wound_down(schema_t *s)
{
    steprun_wound_down(&s->run);
}

/* Ends the step with the outcome (error NULL: s->result); the runtime winds
 * down first (s_wind_down). */
static void s_finish(schema_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (error) {
        if (s->result) {
            godwit__apply_schema_result__free_unpacked(s->result, NULL);
            s->result = NULL;
        }
        /* the agent logs the failure with the command; this is the detail */
        log_debug("schema %s on database %s: %s", s->post ? "post" : "pre", s->database, error);
    } else {
        if (s->result->already_done)
            log_info("schema %s on database %s: already done", s->post ? "post" : "pre",
                     s->database);
        else
            log_info("schema %s on database %s: applied %" PRIu32 " objects",
                     s->post ? "post" : "pre", s->database, s->result->objects);
        payload = &s->result->base;
        s->result = NULL;
    }
    steprun_finish(&s->run, payload, error);
}

static void s_failf(schema_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    s_finish(s, msg ? msg : "out of memory formatting an error");
    free(msg);
}

/* The runtime's wind_down hook: it has ended (the outcome kept) or was
 * cancelled, and done will not run before the wind-down is over; the
 * runtime destroyed the connections. Stops the child; the cleanup follows
 * once no child and no file request is left (their callbacks see
 * s->stopping). */
static void s_wind_down(steprun_t *run, bool cancelled)
{
    schema_t *s = (schema_t *)run;
    if (cancelled)
        log_info("schema %s on database %s: cancelled", s->post ? "post" : "pre", s->database);
    s->stopping = true;
    if (s->proc) {
        proc_kill(s->proc, S_KILL_GRACE_MS);
        return;
    }
    if (s->fs_busy)
        return; /* the list file, if open, is open only while a request runs */
    s_cleanup(s);
}

static void s_cleanup_next(schema_t *s);

static void s_on_cleanup(uv_fs_t *req)
{
    schema_t *s = req->data;
    s->fs_busy = false;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r < 0 && r != UV_ENOENT) {
        const char *path = s->cleanup_step == 1   ? s->dump_path
                           : s->cleanup_step == 2 ? s->list_path
                                                  : s->dir;
        log_warn("schema on database %s: cannot remove %s: %s", s->database, path,
                 uv_strerror((int)r));
    }
    s_cleanup_next(s);
}

/* Removes the temp dir's files and the dir; then the wind-down is over. */
static void s_cleanup_next(schema_t *s)
{
    int rc;
    if (!s->dir) {
        s_wound_down(s);
        return;
    }
    s->fs.data = s;
    switch (s->cleanup_step++) {
    case 0:
        rc = uv_fs_unlink(s->run.loop, &s->fs, s->dump_path, s_on_cleanup);
        break;
    case 1:
        rc = uv_fs_unlink(s->run.loop, &s->fs, s->list_path, s_on_cleanup);
        break;
    case 2:
        rc = uv_fs_rmdir(s->run.loop, &s->fs, s->dir, s_on_cleanup);
        break;
    default:
        s_wound_down(s);
        return;
    }
    s->fs_busy = true;
    if (rc < 0) {
        s->fs.result = rc;
        s_on_cleanup(&s->fs);
    }
}

static void s_cleanup(schema_t *s)
{
    s->cleanup_step = 0;
    s_cleanup_next(s);
}

/* ---- children ------------------------------------------------------------ */

/* Starts a child whose outcome goes to cb. */
static void s_spawn(schema_t *s, const char *what, const char *file, const char *const *argv,
                    char **env, size_t out_max, proc_done_cb cb)
{
    proc_opts_t o = {
        .file = file,
        .argv = argv,
        .env = (const char *const *)env,
        .out_max = out_max,
        .err_max = S_ERR_MAX,
    };
    s->proc_what = what;
    log_debug("schema on database %s: running %s", s->database, what);
    int rc = proc_start(s->run.loop, &o, cb, s, &s->proc);
    if (rc != 0)
        s_failf(s, "cannot start %s: %s", file, uv_strerror(rc));
}

/* At the top of every child callback: drops the child. true when the caller
 * goes on: not stopping and the child succeeded (else the step has ended). */
static bool s_child_ok(schema_t *s, const proc_result_t *r)
{
    proc_destroy(&s->proc, 0);
    if (s->stopping) {
        s_cleanup(s);
        return false;
    }
    if (r->exit_status == 0 && r->term_signal == 0)
        return true;
    char *status = proc_status_text(r);
    char *err = s_oneline(r->err);
    s_failf(s, "%s %s%s%s", s->proc_what, status, err[0] ? ": " : "", err);
    free(err);
    free(status);
    return false;
}

/* ---- reading the TOC ----------------------------------------------------- */

static int s_cmp_id(const void *a, const void *b, void *arg)
{
    const s_entry_t *e = arg;
    int x = e[*(const size_t *)a].id, y = e[*(const size_t *)b].id;
    return (x > y) - (x < y);
}

static s_entry_t *s_find(schema_t *s, int id)
{
    size_t lo = 0, hi = s->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int v = s->entries[s->by_id[mid]].id;
        if (v == id)
            return &s->entries[s->by_id[mid]];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Parses "ID; CLS OID DESC ..." into a new entry. false if malformed. */
static bool s_parse_entry(schema_t *s, char *line)
{
    char *p = line, *end;
    long id = strtol(p, &end, 10);
    if (end == p || *end != ';' || end[1] != ' ' || id < 0 || id > INT32_MAX)
        return false;
    p = end + 2;
    unsigned long cls = strtoul(p, &end, 10);
    if (end == p || *end != ' ')
        return false;
    p = end + 1;
    unsigned long oid = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || cls > UINT32_MAX || oid > UINT32_MAX)
        return false;
    if (s->n_entries == s->cap_entries) {
        s->cap_entries = s->cap_entries ? 2 * s->cap_entries : 256;
        s->entries = xrealloc(s->entries, s->cap_entries * sizeof *s->entries);
    }
    s_entry_t *e = &s->entries[s->n_entries++];
    memset(e, 0, sizeof *e);
    e->id = (int)id;
    e->cls = (uint32_t)cls;
    e->oid = (uint32_t)oid;
    e->line = line;
    e->desc = end + 1;
    return true;
}

/* Parses ";\tdepends on: 6 851" into e's dependencies. */
static bool s_parse_deps(s_entry_t *e, const char *list)
{
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            return true;
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id > INT32_MAX)
            return false;
        if (e->n_deps == e->cap_deps) {
            e->cap_deps = e->cap_deps ? 2 * e->cap_deps : 4;
            e->deps = xrealloc(e->deps, e->cap_deps * sizeof *e->deps);
        }
        e->deps[e->n_deps++] = (int)id;
        p = end;
    }
}

/* Splits s->toc (pg_restore --list --verbose) into entries. NULL or an
 * error the caller frees. */
static char *s_parse_toc(schema_t *s)
{
    static const char deps_prefix[] = ";\tdepends on:";
    size_t lineno = 0;
    char *next;
    for (char *line = s->toc; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (line[0] == '\0')
            continue;
        if (strncmp(line, deps_prefix, sizeof deps_prefix - 1) == 0) {
            if (s->n_entries == 0 ||
                !s_parse_deps(&s->entries[s->n_entries - 1], line + sizeof deps_prefix - 1))
                return xasprintf("cannot read line %zu of pg_restore --list: %s", lineno, line);
            continue;
        }
        if (line[0] == ';')
            continue;
        if (!s_parse_entry(s, line))
            return xasprintf("cannot read line %zu of pg_restore --list: %s", lineno, line);
    }
    s->by_id = xmalloc((s->n_entries ? s->n_entries : 1) * sizeof *s->by_id);
    for (size_t i = 0; i < s->n_entries; i++)
        s->by_id[i] = i;
    qsort_r(s->by_id, s->n_entries, sizeof *s->by_id, s_cmp_id, s->entries);
    for (size_t i = 1; i < s->n_entries; i++)
        if (s->entries[s->by_id[i]].id == s->entries[s->by_id[i - 1]].id)
            return xasprintf("pg_restore --list shows dump id %d twice",
                             s->entries[s->by_id[i]].id);
    return NULL;
}

/* Marks the entries listed in text (pg_restore --list --section=post-data). */
static char *s_mark_post(schema_t *s, const char *text)
{
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (line[0] != ';' && line[0] != '\n' && line[0] != '\r') {
            char *end;
            long id = strtol(line, &end, 10);
            s_entry_t *e = (end != line && *end == ';') ? s_find(s, (int)id) : NULL;
            if (!e)
                return xasprintf("pg_restore --list --section=post-data shows an entry the full "
                                 "list does not have: %.*s",
                                 (int)(nl ? nl - line : (ptrdiff_t)strlen(line)), line);
            e->flags |= F_POST;
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* Flags what is never applied and the settings entries. */
static void s_mark_excluded(schema_t *s)
{
    for (size_t i = 0; i < s->n_entries; i++) {
        s_entry_t *e = &s->entries[i];
        if (s_desc_is(e, "PUBLICATION") || s_desc_is(e, "SUBSCRIPTION") ||
            s_desc_is(e, "DATABASE"))
            e->flags |= F_EXCLUDED;
        else if (e->cls == 0 && e->oid == 0 &&
                 (s_desc_exact(e, "ENCODING") || s_desc_exact(e, "STDSTRINGS") ||
                  s_desc_exact(e, "SEARCHPATH")))
            e->flags |= F_SPECIAL;
    }
    /* and whatever depends on those (comments, security labels) */
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < s->n_entries; i++) {
            s_entry_t *e = &s->entries[i];
            if (e->flags & F_EXCLUDED)
                continue;
            for (size_t d = 0; d < e->n_deps; d++) {
                s_entry_t *de = s_find(s, e->deps[d]);
                if (de && (de->flags & F_EXCLUDED)) {
                    e->flags |= F_EXCLUDED;
                    changed = true;
                    break;
                }
            }
        }
    }
}

/* Moves the keys from post to pre, and the entries that only hang on moved
 * ones and on pre-data (a comment on a primary key, the ATTACH of a
 * partition's primary-key index to its parent's). */
static void s_move_keys(schema_t *s)
{
    for (size_t i = 0; i < s->n_entries; i++) {
        s_entry_t *e = &s->entries[i];
        if ((e->flags & (F_POST | F_KEY | F_EXCLUDED | F_OUT)) == (F_POST | F_KEY))
            e->flags |= F_MOVED;
    }
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < s->n_entries; i++) {
            s_entry_t *e = &s->entries[i];
            if ((e->flags & (F_POST | F_MOVED | F_EXCLUDED | F_OUT)) != F_POST ||
                e->cls != 0 ||
                !(s_desc_exact(e, "COMMENT") || s_desc_exact(e, "SECURITY LABEL") ||
                  s_desc_exact(e, "INDEX ATTACH")))
                continue;
            bool on_moved = false, on_post = false;
            for (size_t d = 0; d < e->n_deps; d++) {
                s_entry_t *de = s_find(s, e->deps[d]);
                if (!de)
                    continue;
                if (de->flags & F_MOVED)
                    on_moved = true;
                else if (de->flags & F_POST)
                    on_post = true;
            }
            if (on_moved && !on_post) {
                e->flags |= F_MOVED;
                changed = true;
            }
        }
    }
}

static void s_name_add(char **list, size_t *n, const char *name);

static int s_cmp_oid(const void *a, const void *b, void *arg)
{
    const s_entry_t *e = arg;
    uint32_t x = e[*(const size_t *)a].oid, y = e[*(const size_t *)b].oid;
    return (x > y) - (x < y);
}

/* The TABLE entry of table oid, among tabs (sorted by oid). */
static s_entry_t *s_find_table(schema_t *s, const size_t *tabs, size_t n_tabs, uint32_t oid)
{
    size_t lo = 0, hi = n_tabs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = s->entries[tabs[mid]].oid;
        if (v == oid)
            return &s->entries[tabs[mid]];
        if (v < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* "schema.name" of a catalog-named entry, else its description. The caller
 * frees. */
static char *s_entry_text(const s_entry_t *e)
{
    if (e->name && e->schema && e->schema[0])
        return xasprintf("%s.%s", e->schema, e->name);
    return xstrdup(e->desc);
}

/* With tables asked for: flags the tables in scope (F_IN) and everything out
 * of it (F_OUT); see the top of the file. NULL or an error the caller
 * frees. */
static char *s_scope(schema_t *s)
{
    if (s->n_want == 0)
        return NULL;
    size_t *tabs = xmalloc((s->n_entries ? s->n_entries : 1) * sizeof *tabs);
    size_t n_tabs = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        s_entry_t *e = &s->entries[i];
        if (e->kind != K_TABLE || !s_desc_exact(e, "TABLE") || (e->flags & F_EXCLUDED))
            continue;
        tabs[n_tabs++] = i;
        s_want_t key = {.schema = e->schema, .name = e->name};
        s_want_t *w = bsearch(&key, s->want, s->n_want, sizeof *s->want, s_cmp_want);
        if (w) {
            w->found = true;
            e->flags |= F_IN;
        }
    }
    char *names = NULL, *err = NULL;
    size_t n_names = 0;
    for (size_t i = 0; i < s->n_want; i++) {
        if (s->want[i].found)
            continue;
        char *t = xasprintf("%s.%s", s->want[i].schema, s->want[i].name);
        s_name_add(&names, &n_names, t);
        free(t);
    }
    if (n_names > 0) {
        err = xasprintf("the source database %s has no table %s (asked for %zu %s)",
                        s->source_db, names, s->n_want, s->n_want == 1 ? "table" : "tables");
        goto out;
    }

    /* partitions of tables in scope, at any depth */
    qsort_r(tabs, n_tabs, sizeof *tabs, s_cmp_oid, s->entries);
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < n_tabs; i++) {
            s_entry_t *e = &s->entries[tabs[i]];
            if ((e->flags & F_IN) || !e->parent)
                continue;
            s_entry_t *p = s_find_table(s, tabs, n_tabs, e->parent);
            if (p && (p->flags & F_IN)) {
                e->flags |= F_IN;
                changed = true;
            }
        }
    }
    for (size_t i = 0; i < n_tabs; i++)
        if (!(s->entries[tabs[i]].flags & F_IN))
            s->entries[tabs[i]].flags |= F_OUT;

    /* what depends on them; a table in scope stays (checked below) */
    changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < s->n_entries; i++) {
            s_entry_t *e = &s->entries[i];
            if (e->flags & (F_OUT | F_IN))
                continue;
            for (size_t d = 0; d < e->n_deps; d++) {
                s_entry_t *de = s_find(s, e->deps[d]);
                if (de && (de->flags & F_OUT)) {
                    e->flags |= F_OUT;
                    changed = true;
                    break;
                }
            }
        }
    }

    /* a table in scope, or a default of one, that needs what is out of it
     * (a partition's own parent is fine: its attachment is a separate entry) */
    for (size_t i = 0; i < s->n_entries; i++) {
        s_entry_t *e = &s->entries[i];
        bool table = e->flags & F_IN;
        if (!table && !((e->flags & F_OUT) && s_desc_exact(e, "DEFAULT")))
            continue;
        for (size_t d = 0; d < e->n_deps; d++) {
            s_entry_t *de = s_find(s, e->deps[d]);
            if (!de)
                continue;
            if (table && (de->flags & F_OUT) && !(de->kind == K_TABLE && de->oid == e->parent)) {
                char *a = s_entry_text(e), *b = s_entry_text(de);
                char *t = xasprintf("table %s needs %s", a, b);
                s_name_add(&names, &n_names, t);
                free(t);
                free(b);
                free(a);
                break;
            }
            if (!table && (de->flags & F_IN)) {
                char *a = s_entry_text(de);
                char *t = xasprintf("%s (a column default of %s)", e->desc, a);
                s_name_add(&names, &n_names, t);
                free(t);
                free(a);
                break;
            }
        }
    }
    if (n_names > 0)
        err = xasprintf("the tables asked for need objects of tables that were not asked for: "
                        "%s; ask for those tables too",
                        names);
out:
    free(names);
    free(tabs);
    return err;
}

/* In the section asked for? */
static bool s_selected(const schema_t *s, const s_entry_t *e)
{
    if (e->flags & (F_EXCLUDED | F_OUT))
        return false;
    bool pre = !(e->flags & F_POST) || (e->flags & F_MOVED);
    return s->post ? !pre : pre;
}

/* ---- steps --------------------------------------------------------------- */

static void s_src_connect(schema_t *s);
static void s_check_target(schema_t *s);
static void s_write_list(schema_t *s);

/* Sends one statement on run.conn[i]. Not steprun_query: a failure here
 * winds down (s_failf) before the runtime ends. */
static void s_query(schema_t *s, int i, const char *what, const char *sql, int nparams,
                    const char *const *params, pgconn_result_cb cb)
{
    free(s->run.what);
    s->run.what = xstrdup(what);
    uint64_t deadline = (uint64_t)s->statement_timeout_ms + STEP_DEADLINE_SLACK_MS;
    int rc = pgconn_query(s->run.conn[i], sql, nparams, params, deadline, cb, s);
    if (rc != 0)
        s_failf(s, "%s: cannot send the statement: %s", what, strerror(-rc));
}

static void s_fail_query(schema_t *s, const pgconn_result_t *r)
{
    char *why = pgconn_result_message(s->run.what, r);
    s_failf(s, "%s", why);
    free(why);
}

static void s_on_list_post(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    if (r->out_truncated) {
        s_failf(s, "pg_restore --list printed more than %u bytes", S_TOC_MAX);
        return;
    }
    char *err = s_mark_post(s, r->out);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    s_mark_excluded(s);
    s_src_connect(s);
}

static void s_on_list(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    if (r->out_truncated) {
        s_failf(s, "pg_restore --list printed more than %u bytes", S_TOC_MAX);
        return;
    }
    s->toc = xmalloc(r->out_len + 1);
    memcpy(s->toc, r->out, r->out_len + 1);
    char *err = s_parse_toc(s);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    const char *argv[] = {"pg_restore", "--list", "--section=post-data", s->dump_path, NULL};
    s_spawn(s, "pg_restore --list --section=post-data", s->pg_restore, argv, s->dst_env,
            S_TOC_MAX, s_on_list_post);
}

static void s_on_dump(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    const char *argv[] = {"pg_restore", "--list", "--verbose", s->dump_path, NULL};
    s_spawn(s, "pg_restore --list", s->pg_restore, argv, s->dst_env, S_TOC_MAX, s_on_list);
}

static void s_run_dump(schema_t *s)
{
    const char *argv[16];
    char *file = xasprintf("--file=%s", s->dump_path);
    char *lock = xasprintf("--lock-wait-timeout=%" PRId64, s->statement_timeout_ms);
    size_t n = 0;
    argv[n++] = "pg_dump";
    argv[n++] = "--schema-only";
    argv[n++] = "--format=custom";
    argv[n++] = "--no-publications";
    argv[n++] = "--no-subscriptions";
    argv[n++] = lock;
    argv[n++] = file;
    argv[n] = NULL; /* the whole schema: s_scope cuts the tables asked for out of it */
    s_spawn(s, "pg_dump", s->pg_dump, argv, s->src_env, 0, s_on_dump);
    free(lock);
    free(file);
}

static void s_on_mkdtemp(uv_fs_t *req)
{
    schema_t *s = req->data;
    s->fs_busy = false;
    ssize_t r = req->result;
    if (r == 0 && req->path)
        s->dir = xstrdup(req->path);
    uv_fs_req_cleanup(req);
    if (s->dir) {
        s->dump_path = xasprintf("%s/%s", s->dir, S_DUMP_FILE);
        s->list_path = xasprintf("%s/%s", s->dir, S_LIST_FILE);
    }
    if (s->stopping) {
        s_cleanup(s);
        return;
    }
    if (!s->dir) {
        s_failf(s, "cannot create a temporary directory %s: %s", S_TMP_TEMPLATE,
                uv_strerror(r < 0 ? (int)r : UV_EINVAL));
        return;
    }
    s_run_dump(s);
}

static void s_first(steprun_t *run)
{
    schema_t *s = (schema_t *)run;
    log_info("schema %s on database %s: reading the schema of %s", s->post ? "post" : "pre",
             s->database, s->source_db);
    s->fs.data = s;
    s->fs_busy = true;
    int rc = uv_fs_mkdtemp(s->run.loop, &s->fs, S_TMP_TEMPLATE, s_on_mkdtemp);
    if (rc < 0) {
        s->fs.result = rc;
        s_on_mkdtemp(&s->fs);
    }
}

/* ---- the source's catalog ------------------------------------------------ */

/* One row per catalog id asked about (in the order asked: ord): whether the
 * catalog is one this step knows (covered), and if the object is still
 * there, what it is, its schema, table and name, and whether it is a key
 * ("pre" needs it). A unique constraint is a key when its index is the
 * replica identity (pg_dump writes the ALTER TABLE ... REPLICA IDENTITY into
 * that constraint's entry, or into the index's for a plain unique index). */
static const char s_src_sql[] =
    "SELECT t.ord, t.cls::pg_catalog.regclass IN ("
    "   'pg_catalog.pg_class'::pg_catalog.regclass,"
    "   'pg_catalog.pg_constraint'::pg_catalog.regclass,"
    "   'pg_catalog.pg_trigger'::pg_catalog.regclass,"
    "   'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
    "   'pg_catalog.pg_policy'::pg_catalog.regclass,"
    "   'pg_catalog.pg_event_trigger'::pg_catalog.regclass) AS covered,"
    " x.kind, x.schema, x.tab, x.name, x.key, x.parent"
    " FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),"
    "   pg_catalog.unnest($2::pg_catalog.oid[])) WITH ORDINALITY AS t(cls, obj, ord)"
    " LEFT JOIN LATERAL ("
    "   SELECT CASE WHEN c.relkind IN ('r', 'p') THEN 'table'"
    "     WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'relation' END AS kind,"
    "    n.nspname AS schema, c.relname AS tab, c.relname AS name,"
    "    COALESCE(i.indisreplident, false) AS key,"
    "    CASE WHEN c.relispartition THEN (SELECT h.inhparent FROM pg_catalog.pg_inherits h"
    "     WHERE h.inhrelid = c.oid LIMIT 1) END AS parent"
    "   FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid"
    "   WHERE t.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'constraint', n.nspname, COALESCE(r.relname, ty.typname), k.conname,"
    "    k.contype = 'p' OR (k.contype = 'u' AND COALESCE(i.indisreplident, false)),"
    "    NULL::pg_catalog.oid"
    "   FROM pg_catalog.pg_constraint k"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = k.connamespace"
    "   LEFT JOIN pg_catalog.pg_class r ON r.oid = k.conrelid"
    "   LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid"
    "   LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = k.conindid"
    "   WHERE t.cls = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'trigger', n.nspname, r.relname, g.tgname, false, NULL"
    "   FROM pg_catalog.pg_trigger g"
    "   JOIN pg_catalog.pg_class r ON r.oid = g.tgrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND g.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'rule', n.nspname, r.relname, w.rulename, false, NULL"
    "   FROM pg_catalog.pg_rewrite w"
    "   JOIN pg_catalog.pg_class r ON r.oid = w.ev_class"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'policy', n.nspname, r.relname, p.polname, false, NULL"
    "   FROM pg_catalog.pg_policy p"
    "   JOIN pg_catalog.pg_class r ON r.oid = p.polrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    "   WHERE t.cls = 'pg_catalog.pg_policy'::pg_catalog.regclass AND p.oid = t.obj"
    "  UNION ALL"
    "   SELECT 'event trigger', '', '', e.evtname, false, NULL"
    "   FROM pg_catalog.pg_event_trigger e"
    "   WHERE t.cls = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass AND e.oid = t.obj"
    " ) x ON true";

static s_kind_t s_kind_parse(const char *v)
{
    for (size_t i = 0; v && i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (strcmp(v, s_kinds[i].name) == 0)
            return s_kinds[i].kind;
    return K_NONE;
}

static const char *s_kind_name(s_kind_t k)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (s_kinds[i].kind == k)
            return s_kinds[i].name;
    return "object";
}

/* Should "post" be judged done by this entry's presence on the target? */
static bool s_checkable_post(s_kind_t k)
{
    return k == K_INDEX || k == K_CONSTRAINT || k == K_TRIGGER || k == K_RULE ||
           k == K_POLICY || k == K_EVENT_TRIGGER;
}

static void s_on_src_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    const PGresult *res = r->res;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *ordv = pgconn_col(res, row, "ord");
        unsigned long ord = ordv ? strtoul(ordv, NULL, 10) : 0;
        if (ord < 1 || ord > s->n_asked) {
            s_failf(s, "%s: unexpected row %d", s->run.what, row);
            return;
        }
        s_entry_t *e = &s->entries[s->asked[ord - 1]];
        const char *kind = pgconn_col(res, row, "kind");
        const char *covered = pgconn_col(res, row, "covered");
        if (!kind) {
            if (covered && covered[0] == 't' && !(e->flags & F_EXCLUDED)) {
                s_failf(s, "the source's schema changed while it was read: the object of dump "
                           "entry \"%s\" (catalog %" PRIu32 ", oid %" PRIu32 ") is gone; run "
                           "the step again",
                        e->line, e->cls, e->oid);
                return;
            }
            continue;
        }
        e->kind = s_kind_parse(kind);
        e->schema = xstrdup(pgconn_col(res, row, "schema"));
        e->table = xstrdup(pgconn_col(res, row, "tab"));
        e->name = xstrdup(pgconn_col(res, row, "name"));
        const char *key = pgconn_col(res, row, "key");
        if (key && key[0] == 't')
            e->flags |= F_KEY;
        const char *parent = pgconn_col(res, row, "parent");
        unsigned long pv = parent ? strtoul(parent, NULL, 10) : 0;
        e->parent = pv <= UINT32_MAX ? (uint32_t)pv : 0;
    }
    pgconn_destroy(&s->run.conn[S_SRC]);
    char *err = s_scope(s);
    if (err) {
        s_finish(s, err);
        free(err);
        return;
    }
    s_move_keys(s);
    s_check_target(s);
}

/* "{1,2,3}" for the catalog ids of the entries that have one. */
static void s_src_query(schema_t *s)
{
    s->asked = xmalloc((s->n_entries ? s->n_entries : 1) * sizeof *s->asked);
    size_t cap = 64;
    char *cls = xmalloc(cap), *oids = xmalloc(cap);
    size_t lc = 0, lo = 0;
    cls[lc++] = '{';
    oids[lo++] = '{';
    for (size_t i = 0; i < s->n_entries; i++) {
        const s_entry_t *e = &s->entries[i];
        if (e->cls == 0 || e->oid == 0)
            continue;
        if (lc + 16 > cap || lo + 16 > cap) {
            cap *= 2;
            cls = xrealloc(cls, cap);
            oids = xrealloc(oids, cap);
        }
        const char *sep = s->n_asked ? "," : "";
        lc += (size_t)sprintf(cls + lc, "%s%" PRIu32, sep, e->cls);
        lo += (size_t)sprintf(oids + lo, "%s%" PRIu32, sep, e->oid);
        s->asked[s->n_asked++] = i;
    }
    cls[lc++] = '}';
    cls[lc] = '\0';
    oids[lo++] = '}';
    oids[lo] = '\0';
    const char *params[2] = {cls, oids};
    s_query(s, S_SRC, "reading the source's catalog", s_src_sql, 2, params, s_on_src_rows);
    free(cls);
    free(oids);
}

static void s_on_src_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    schema_t *s = arg;
    if (!ok) {
        s_failf(s, "cannot connect to the source database %s: %s", s->source_db,
                error ? error : "unknown error");
        return;
    }
    s_src_query(s);
}

static void s_src_connect(schema_t *s)
{
    int rc = pgconn_connect(s->run.conn[S_SRC], (uint64_t)s->connect_timeout_ms,
                            s_on_src_connect, s);
    if (rc != 0)
        s_failf(s, "cannot start connecting to the source: %s", strerror(-rc));
}

/* ---- the target: already applied? ---------------------------------------- */

/* One row per object asked about: its name for messages and whether the
 * target has it. */
static const char s_dst_sql[] =
    "SELECT pg_catalog.format(CASE WHEN o.k IN ('table', 'index') THEN '%2$I.%4$I'"
    "   WHEN o.k = 'event trigger' THEN 'event trigger %4$I'"
    "   ELSE '%1$s %4$I on %2$I.%3$I' END, o.k, o.s, o.t, o.n) AS what,"
    " CASE o.k"
    "  WHEN 'table' THEN EXISTS (SELECT FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace"
    "   WHERE ns.nspname = o.s AND c.relname = o.n AND c.relkind IN ('r', 'p'))"
    "  WHEN 'index' THEN EXISTS (SELECT FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace"
    "   WHERE ns.nspname = o.s AND c.relname = o.n AND c.relkind IN ('i', 'I'))"
    "  WHEN 'constraint' THEN EXISTS (SELECT FROM pg_catalog.pg_constraint k"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = k.connamespace"
    "   LEFT JOIN pg_catalog.pg_class r ON r.oid = k.conrelid"
    "   LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid"
    "   WHERE ns.nspname = o.s AND k.conname = o.n"
    "   AND COALESCE(r.relname, ty.typname) = o.t)"
    "  WHEN 'trigger' THEN EXISTS (SELECT FROM pg_catalog.pg_trigger g"
    "   JOIN pg_catalog.pg_class r ON r.oid = g.tgrelid"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND g.tgname = o.n)"
    "  WHEN 'rule' THEN EXISTS (SELECT FROM pg_catalog.pg_rewrite w"
    "   JOIN pg_catalog.pg_class r ON r.oid = w.ev_class"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND w.rulename = o.n)"
    "  WHEN 'policy' THEN EXISTS (SELECT FROM pg_catalog.pg_policy p"
    "   JOIN pg_catalog.pg_class r ON r.oid = p.polrelid"
    "   JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace"
    "   WHERE ns.nspname = o.s AND r.relname = o.t AND p.polname = o.n)"
    "  WHEN 'event trigger' THEN EXISTS (SELECT FROM pg_catalog.pg_event_trigger e"
    "   WHERE e.evtname = o.n)"
    "  ELSE false END AS present"
    " FROM pg_catalog.json_to_recordset($1::pg_catalog.json) AS o(k text, s text, t text, n text)";

/* Appends name to a ", "-separated list of at most S_NAMES_SHOWN. */
static void s_name_add(char **list, size_t *n, const char *name)
{
    if (++*n > S_NAMES_SHOWN) {
        if (*n == S_NAMES_SHOWN + 1) {
            char *l = xasprintf("%s, ...", *list);
            free(*list);
            *list = l;
        }
        return;
    }
    char *l = *list ? xasprintf("%s, %s", *list, name) : xstrdup(name);
    free(*list);
    *list = l;
}

static void s_done_already(schema_t *s)
{
    s->result = xmalloc(sizeof *s->result);
    godwit__apply_schema_result__init(s->result);
    s->result->already_done = true;
    s->result->objects = 0;
    s_finish(s, NULL);
}

static void s_on_dst_rows(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!r->ok) {
        s_fail_query(s, r);
        return;
    }
    const PGresult *res = r->res;
    size_t present = 0, missing = 0;
    char *present_names = NULL, *missing_names = NULL;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *what = pgconn_col(res, row, "what");
        const char *p = pgconn_col(res, row, "present");
        if (p && p[0] == 't')
            s_name_add(&present_names, &present, what ? what : "?");
        else
            s_name_add(&missing_names, &missing, what ? what : "?");
    }
    pgconn_destroy(&s->run.conn[S_DST]);
    if (present + missing != s->n_checked) {
        s_failf(s, "%s: %zu rows for %zu objects", s->run.what, present + missing,
                s->n_checked);
    } else if (missing == 0) {
        s_done_already(s);
    } else if (present > 0) {
        s_failf(s,
                "database %s already has %zu of the %zu %s of this section (%s) but lacks %zu "
                "(%s): godwit applies a section in one transaction, so something else "
                "created them; drop them (or add the missing ones) and run the step again",
                s->database, present, s->n_checked,
                s->post ? "indexes, constraints and triggers" : "tables",
                present_names, missing, missing_names);
    } else {
        s_write_list(s);
    }
    free(present_names);
    free(missing_names);
}

/* The objects whose presence tells whether the section is applied, as JSON
 * for s_dst_sql; NULL when there are none. */
static char *s_check_json(schema_t *s)
{
    cJSON *a = cJSON_CreateArray();
    s->n_checked = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const s_entry_t *e = &s->entries[i];
        if (!s_selected(s, e) || !e->name)
            continue;
        if (s->post ? !s_checkable_post(e->kind) : e->kind != K_TABLE)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "k", s_kind_name(e->kind));
        cJSON_AddStringToObject(o, "s", e->schema);
        cJSON_AddStringToObject(o, "t", e->table);
        cJSON_AddStringToObject(o, "n", e->name);
        cJSON_AddItemToArray(a, o);
        s->n_checked++;
    }
    char *out = NULL;
    if (s->n_checked > 0) {
        char *text = cJSON_PrintUnformatted(a);
        out = xstrdup(text); /* one allocator for everything s owns */
        cJSON_free(text);
    }
    cJSON_Delete(a);
    return out;
}

static void s_on_dst_connect(pgconn_t *c, bool ok, const char *error, void *arg)
{
    schema_t *s = arg;
    if (!ok) {
        s_failf(s, "cannot connect to database %s: %s", s->database,
                error ? error : "unknown error");
        return;
    }
    char *json = s_check_json(s);
    const char *params[1] = {json};
    s_query(s, S_DST, "checking what the target already has", s_dst_sql, 1, params,
            s_on_dst_rows);
    free(json);
}

/* Counts the section; decides what needs the target. */
static void s_check_target(schema_t *s)
{
    s->objects = 0;
    size_t tables = 0, checkable = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const s_entry_t *e = &s->entries[i];
        if (!s_selected(s, e) || (e->flags & F_SPECIAL))
            continue;
        s->objects++;
        tables += e->kind == K_TABLE;
        checkable += s_checkable_post(e->kind);
    }
    if (!s->post && tables == 0) {
        s_failf(s, "the schema of source database %s has no tables to migrate", s->source_db);
        return;
    }
    if (s->post && s->objects == 0) {
        /* nothing after the data: done by definition */
        s_done_already(s);
        return;
    }
    if (s->post && checkable == 0) {
        /* nothing to recognise it by (only attachments): apply; a second
         * run then fails on pg_restore's error, which names the object */
        log_warn("schema post on database %s: no named object to check; applying", s->database);
        s_write_list(s);
        return;
    }
    int rc = pgconn_connect(s->run.conn[S_DST], (uint64_t)s->connect_timeout_ms,
                            s_on_dst_connect, s);
    if (rc != 0)
        s_failf(s, "cannot start connecting to database %s: %s", s->database, strerror(-rc));
}

/* ---- applying ------------------------------------------------------------ */

static void s_on_restore(proc_t *p, const proc_result_t *r, void *arg)
{
    schema_t *s = arg;
    if (!s_child_ok(s, r))
        return;
    s->result = xmalloc(sizeof *s->result);
    godwit__apply_schema_result__init(s->result);
    s->result->already_done = false;
    s->result->objects = s->objects;
    s_finish(s, NULL);
}

static void s_run_restore(schema_t *s)
{
    log_info("schema %s on database %s: applying %" PRIu32 " objects", s->post ? "post" : "pre",
             s->database, s->objects);
    char *list = xasprintf("--use-list=%s", s->list_path);
    char *db = xasprintf("--dbname=%s", s->database);
    /* with owners and privileges: the roles step made every role they name */
    const char *argv[] = {"pg_restore", list, "--single-transaction", "--exit-on-error",
                          "--no-tablespaces", db, s->dump_path, NULL};
    s_spawn(s, "pg_restore", s->pg_restore, argv, s->dst_env, 0, s_on_restore);
    free(db);
    free(list);
}

static void s_on_list_closed(uv_fs_t *req)
{
    schema_t *s = req->data;
    s->fs_busy = false;
    s->list_open = false;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (s->stopping) {
        s_cleanup(s);
        return;
    }
    if (s->list_error) {
        s_finish(s, s->list_error);
        return;
    }
    if (r < 0) {
        s_failf(s, "cannot write %s: %s", s->list_path, uv_strerror((int)r));
        return;
    }
    s_run_restore(s);
}

static void s_list_close(schema_t *s)
{
    s->fs_busy = true;
    int rc = uv_fs_close(s->run.loop, &s->fs, s->list_fd, s_on_list_closed);
    if (rc < 0) {
        s->fs.result = rc;
        s_on_list_closed(&s->fs);
    }
}

static void s_list_write_more(schema_t *s);

static void s_on_list_written(uv_fs_t *req)
{
    schema_t *s = req->data;
    s->fs_busy = false;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r < 0 && !s->stopping)
        s->list_error = xasprintf("cannot write %s: %s", s->list_path, uv_strerror((int)r));
    if (r < 0 || s->stopping) {
        s_list_close(s);
        return;
    }
    s->list_off += (size_t)r;
    s_list_write_more(s);
}

static void s_list_write_more(schema_t *s)
{
    if (s->list_off == s->list_len) {
        s_list_close(s);
        return;
    }
    uv_buf_t buf = uv_buf_init(s->list_text + s->list_off, (unsigned)(s->list_len - s->list_off));
    s->fs_busy = true;
    int rc = uv_fs_write(s->run.loop, &s->fs, s->list_fd, &buf, 1, -1, s_on_list_written);
    if (rc < 0) {
        s->fs.result = rc;
        s_on_list_written(&s->fs);
    }
}

static void s_on_list_opened(uv_fs_t *req)
{
    schema_t *s = req->data;
    s->fs_busy = false;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r >= 0) {
        s->list_fd = (uv_file)r;
        s->list_open = true;
    }
    if (s->stopping) {
        if (s->list_open)
            s_list_close(s);
        else
            s_cleanup(s);
        return;
    }
    if (r < 0) {
        s_failf(s, "cannot create %s: %s", s->list_path, uv_strerror((int)r));
        return;
    }
    s_list_write_more(s);
}

/* The section's TOC lines, in TOC order, into the list file. */
static void s_write_list(schema_t *s)
{
    size_t len = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const s_entry_t *e = &s->entries[i];
        if (s_selected(s, e) || (e->flags & F_SPECIAL))
            len += strlen(e->line) + 1;
    }
    s->list_text = xmalloc(len + 1);
    s->list_len = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const s_entry_t *e = &s->entries[i];
        if (!s_selected(s, e) && !(e->flags & F_SPECIAL))
            continue;
        size_t n = strlen(e->line);
        memcpy(s->list_text + s->list_len, e->line, n);
        s->list_len += n;
        s->list_text[s->list_len++] = '\n';
    }
    s->list_text[s->list_len] = '\0';
    s->list_off = 0;
    s->fs.data = s;
    s->fs_busy = true;
    int rc = uv_fs_open(s->run.loop, &s->fs, s->list_path,
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, s_on_list_opened);
    if (rc < 0) {
        s->fs.result = rc;
        s_on_list_opened(&s->fs);
    }
}

/* ---- start --------------------------------------------------------------- */

/* The kick of a request refused at the start (s->refused set). */
static void s_refused(steprun_t *run)
{
    steprun_finish(run, NULL, ((schema_t *)run)->refused);
}

/* A database name libpq would take for a connection string. */
static bool s_conninfo_like(const char *db)
{
    return strchr(db, '=') || strncmp(db, "postgresql://", 13) == 0 ||
           strncmp(db, "postgres://", 11) == 0;
}

static bool s_valid(const step_local_t *local, const Godwit__ApplySchema *req)
{
    if (!local || !s_nonempty(local->host) || local->port <= 0 || local->port > 65535 ||
        !local->bin_dir || local->connect_timeout_ms <= 0 || local->statement_timeout_ms <= 0)
        return false;
    if (!req || !s_nonempty(req->database) || !req->section ||
        (strcmp(req->section, "pre") != 0 && strcmp(req->section, "post") != 0))
        return false;
    char *why = NULL;
    if (!step_peer(local, req->source, &why)) {
        log_warn("schema on database %s: %s", req->database, why);
        free(why);
        return false;
    }
    for (size_t i = 0; i < req->n_tables; i++)
        if (!req->tables[i] || !s_nonempty(req->tables[i]->schema) ||
            !s_nonempty(req->tables[i]->name))
            return false;
    return true;
}

static char *s_program(const char *bin_dir, const char *name)
{
    if (!bin_dir[0])
        return xstrdup(name); /* looked up in PATH */
    size_t n = strlen(bin_dir);
    return xasprintf("%s%s%s", bin_dir, bin_dir[n - 1] == '/' ? "" : "/", name);
}

/* A child's environment: the agent's without any PG* variable, plus libpq's
 * connection variables for the values given (NULL or "" left out), so no
 * connection detail ever shows on a command line. Caller frees with
 * proc_env_free. */
static char **s_libpq_env(const char *host, const char *port, const char *user,
                          const char *passfile, const char *sslmode, const char *dbname,
                          const char *connect_timeout)
{
    static const char *const drop[] = {"PG", NULL};
    const struct {
        const char *name, *value;
    } vars[] = {
        {"PGHOST", host},         {"PGPORT", port},       {"PGUSER", user},
        {"PGPASSFILE", passfile}, {"PGSSLMODE", sslmode}, {"PGDATABASE", dbname},
        {"PGAPPNAME", "godwit-agent"}, {"PGCONNECT_TIMEOUT", connect_timeout},
    };
    enum { N = sizeof vars / sizeof vars[0] };
    char *owned[N];
    const char *set[N + 1];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (!s_nonempty(vars[i].value))
            continue;
        owned[n] = xasprintf("%s=%s", vars[i].name, vars[i].value);
        set[n] = owned[n];
        n++;
    }
    set[n] = NULL;
    char **env = proc_env_new(drop, set);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    return env;
}

step_t *schema_apply_start(uv_loop_t *loop, const step_local_t *local,
                           const Godwit__ApplySchema *req, step_done_cb done, void *arg)
{
    if (!loop || !done || !s_valid(local, req))
        return NULL;
    const Godwit__ReplicationConn *rc = req->source;
    char *why = NULL;
    const agent_peer_t *peer = step_peer(local, rc, &why); /* s_valid found it */
    free(why);
    char connect_timeout[32], src_port[24], dst_port[16]; /* for the children's environment */
    snprintf(connect_timeout, sizeof connect_timeout, "%" PRId64,
             (local->connect_timeout_ms + 999) / 1000);
    snprintf(src_port, sizeof src_port, "%" PRId64, peer->port);
    snprintf(dst_port, sizeof dst_port, "%d", local->port);
    char *options = xasprintf("-c statement_timeout=%" PRId64 " -c search_path="
                              " -c default_transaction_read_only=on",
                              local->statement_timeout_ms);
    /* the source, as a normal (not a replication) connection */
    pgconn_t *src = step_remote_conn(loop, "agent schema source", local, rc, false,
                                     "godwit-agent", options);
    pgconn_t *dst = step_local_conn(loop, "agent schema target", local, req->database,
                                    "godwit-agent", options);
    free(options);
    if (!src || !dst) {
        pgconn_destroy(&src);
        pgconn_destroy(&dst);
        return NULL;
    }

    schema_t *s = xcalloc(1, sizeof *s);
    s->run.conn[S_SRC] = src;
    s->run.conn[S_DST] = dst;
    s->run.wind_down = s_wind_down;
    s->post = strcmp(req->section, "post") == 0;
    s->database = xstrdup(req->database);
    s->source_db = xstrdup(rc->dbname);
    s->pg_dump = s_program(local->bin_dir, "pg_dump");
    s->pg_restore = s_program(local->bin_dir, "pg_restore");
    s->statement_timeout_ms = local->statement_timeout_ms;
    s->connect_timeout_ms = local->connect_timeout_ms;
    s->list_fd = -1;
    if (req->n_tables > 0) {
        s->want = xcalloc(req->n_tables, sizeof *s->want);
        for (size_t i = 0; i < req->n_tables; i++) {
            s->want[i].schema = xstrdup(req->tables[i]->schema);
            s->want[i].name = xstrdup(req->tables[i]->name);
        }
        qsort(s->want, req->n_tables, sizeof *s->want, s_cmp_want);
        for (size_t i = 0; i < req->n_tables; i++) {
            if (s->n_want > 0 && s_cmp_want(&s->want[s->n_want - 1], &s->want[i]) == 0) {
                free(s->want[i].schema);
                free(s->want[i].name);
            } else {
                s->want[s->n_want++] = s->want[i];
            }
        }
    }

    /* Children: the agent's environment without PG*, plus the connection. */
    s->src_env = s_libpq_env(peer->host, src_port, peer->user, peer->passfile, peer->sslmode,
                             rc->dbname, connect_timeout);
    s->dst_env = s_libpq_env(local->host, dst_port, local->user, local->passfile, NULL, NULL,
                             connect_timeout);

    steprun_fn first = s_first;
    if (s_conninfo_like(req->database)) {
        /* refused before anything runs, reported (next turn) like any failure */
        s->refused = xasprintf("database name %s contains '=' or starts like a URI: pg_restore "
                               "would read it as connection options; rename the database",
                               req->database);
        log_debug("schema on database %s: %s", req->database, s->refused);
        first = s_refused;
    }
    s->run.plain_errors = true; /* this step's errors never carried a prefix */
    steprun_start(&s->run, loop,
                  xasprintf("schema %s on database %s", s->post ? "post" : "pre", req->database),
                  done, arg, s_release, first);
    return &s->run.base;
}
