/*
 * access: who owns what, and who may do what, in one database: the roles
 * the database needs (with their attributes, memberships and settings), the
 * owners and privileges of its objects (columns too), the database's own
 * owner and privileges, default privileges, row-level security and
 * policies.
 *
 * One statement (access_catalog_sql) reads all of it as one JSON document,
 * the same on the source and on the target, so the two can be compared
 * field by field. Everything else here is pure: access_compare() turns the
 * source's and the target's documents into differences, each with the
 * statement that fixes it on the target; access_plan_roles() (access_plan.h)
 * lists what the roles step runs on the target before the schema is
 * restored. Preflight, the roles step, VerifySchema and the cutover's
 * VerifyRoles all read and judge through here, so they agree on what "the
 * same" means.
 *
 * "The same" means: roles by name with the same attributes, memberships
 * and settings; each object present on both sides (by its identity,
 * pg_identify_object's) with the same owner and the same privileges
 * (grantee, privilege, grant option; the grantor is not compared); the same
 * default privileges and policies. The bootstrap superuser is the bootstrap
 * superuser on either side, whatever its name. An object on one side only is
 * not an access difference (the schema comparison reports missing tables).
 *
 * Names in statements are quoted by the caller's functions (access_quote_t:
 * PQescapeIdentifier and PQescapeLiteral on its connection); object
 * identities are the server's own, quoted by it. Nothing here does I/O or
 * keeps state between calls; nothing here ever sees a password.
 */
#ifndef GODWIT_ACCESS_H
#define GODWIT_ACCESS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "pgconn.h"

/* The one statement: one row, one text column "access", the catalog as
 * JSON. $1 (text[]) names roles to describe as well (the plan's application
 * roles; on the target, the roles the source's catalog describes, so both
 * describe the same names). Run it with an empty search_path and jit off:
 * the planner's estimates for its recursive part make JIT compile for a
 * second or more (measured: 2.5 s with JIT, 0.15 s without, on a database
 * of a dozen tables) what runs in milliseconds. */
extern const char access_catalog_sql[];

/* Quoting for SQL text: each returns a malloc'd string the caller frees, or
 * NULL when the value cannot be quoted. */
typedef struct {
    char *(*ident)(void *ctx, const char *name);
    char *(*literal)(void *ctx, const char *value);
    void *ctx;
} access_quote_t;

/* PQescapeIdentifier and PQescapeLiteral on c (pgconn_escape_*). */
access_quote_t access_quote_conn(pgconn_t *c);

typedef enum {
    ACCESS_APP_ROLE_UNKNOWN = 0, /* an application role the source does not have */
    ACCESS_ROLE_MISSING,         /* a role the target lacks (the roles step creates it) */
    ACCESS_ROLE_SUPERUSER,       /* a superuser, or membership in one, that godwit never
                                    grants by itself */
    ACCESS_ROLE,                 /* an existing role's attributes, memberships or settings */
    ACCESS_BOOTSTRAP,            /* the bootstrap superusers' names differ (information) */
    ACCESS_DATABASE,             /* the database's owner or privileges */
    ACCESS_OWNER,                /* an object's owner */
    ACCESS_PRIVILEGES,           /* an object's or a column's privileges */
    ACCESS_DEFAULT_PRIVILEGES,
    ACCESS_POLICY,               /* a policy, or a table's row-level security */
    ACCESS__COUNT
} access_kind_t;

/* One difference; every string is malloc'd and owned by the list. */
typedef struct {
    access_kind_t kind;
    char *object;     /* what it is about: "role app", "table public.t", ... */
    char *problem;    /* what differs, source against target */
    char *statement;  /* what to run on the target to fix it; "" when nothing can */
    bool absent;      /* the target has nothing of it yet (a role, a default
                         privileges entry, a policy): creating, not changing */
    bool restored;    /* an object whose privileges a schema restore sets too
                         where they differ from their initial ones: the
                         schema public, an extension's objects */
} access_diff_t;

typedef struct {
    access_diff_t *v;
    size_t n, cap;
} access_diffs_t;

/* A stable code for the kind ("role_missing", "object_owner", ...). */
const char *access_kind_code(access_kind_t k);

/* The catalog in text (access_catalog_sql's column), or NULL with *err (the
 * caller frees) when it is not one. The caller frees it with cJSON_Delete. */
cJSON *access_parse(const char *text, char **err);

/* The names of the roles src describes, as a text[] literal for the other
 * side's $1. Caller frees. */
char *access_role_names(const cJSON *src);

/* Appends every difference of dst (the target) from src (the source) to
 * out. fenced: our fence holds the target database, so a role that can log
 * in on the source may lack LOGIN on the target (the cutover lifts it): not
 * a difference. false with *err (caller frees) when a name could not be
 * quoted; out then holds what was found before. */
bool access_compare(const cJSON *src, const cJSON *dst, bool fenced, const access_quote_t *q,
                    access_diffs_t *out, char **err) GODWIT_MUSTCHECK;
void access_diffs_free(access_diffs_t *d);

#endif
