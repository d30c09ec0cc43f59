/*
 * toc: the table of contents of a schema-only dump, as pg_restore --list
 * --verbose prints it, and what ApplySchema (schema.c) makes of it: which
 * entries are post-data, which are never applied, which keys move before
 * the data, which are in the scope of the tables asked for, and the list
 * file of a section. Entries are matched by their catalog id (the
 * "tableoid oid" pair of a TOC line), never by parsing names out of a line:
 * names there are not quoted and may hold spaces; what an entry is called
 * comes from the source's catalog (schema.c asks, toc_entry_t keeps it).
 *
 * What it owns: the TOC's text (entries point into it), the entries, their
 * dependencies and catalog names, and the tables asked for. It does no I/O
 * and never talks to a server.
 */
#ifndef GODWIT_TOC_H
#define GODWIT_TOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit.pb-c.h"

/* Entry flags. */
enum {
    TOC_POST = 1 << 0,     /* pg_restore files it as post-data */
    TOC_EXCLUDED = 1 << 1, /* never applied (publication, subscription, database) */
    TOC_KEY = 1 << 2,      /* a primary key or a replica-identity index */
    TOC_MOVED = 1 << 3,    /* post-data, applied with "pre" */
    TOC_SPECIAL = 1 << 4,  /* ENCODING, STDSTRINGS, SEARCHPATH: settings, not objects */
    TOC_IN = 1 << 5,       /* a table in scope: asked for, or a partition of one in scope */
    TOC_OUT = 1 << 6,      /* out of scope: another table, or what depends on one */
};

/* What an entry is, from the source's catalog. */
typedef enum {
    TOC_K_NONE = 0,
    TOC_K_TABLE,         /* ordinary or partitioned table */
    TOC_K_INDEX,
    TOC_K_RELATION,      /* any other pg_class entry (sequence, view, ...) */
    TOC_K_CONSTRAINT,
    TOC_K_TRIGGER,
    TOC_K_RULE,
    TOC_K_POLICY,
    TOC_K_EVENT_TRIGGER,
} toc_kind_t;

/* One line of pg_restore --list. */
typedef struct {
    int id;                /* dump id */
    uint32_t cls, oid;     /* catalog id: the catalog's oid and the object's */
    const char *line;      /* the whole line, in the toc's text */
    const char *desc;      /* "DESC schema name owner", in the toc's text */
    int *deps;             /* dump ids it depends on, malloc'd */
    size_t n_deps, cap_deps;
    unsigned flags;
    toc_kind_t kind;
    char *schema, *table, *name; /* from the source's catalog, malloc'd */
    uint32_t parent;       /* a partition's parent table (its oid), else 0 */
} toc_entry_t;

/* A table asked for. */
typedef struct {
    char *schema, *name;
    bool found;
} toc_want_t;

typedef struct {
    char *text;            /* pg_restore --list --verbose output, lines NUL-split */
    toc_entry_t *entries;  /* in TOC order */
    size_t n_entries, cap_entries;
    size_t *by_id;         /* indexes into entries, sorted by dump id */
    size_t *asked;         /* entries whose catalog id went to the source, in order */
    size_t n_asked;
    toc_want_t *want;      /* the tables asked for, sorted, no duplicates; none: all */
    size_t n_want;
} toc_t;

/* Frees what t holds (not t itself) and clears it. */
void toc_clear(toc_t *t);

/* The tables asked for (copied, sorted, without duplicates). */
void toc_want_set(toc_t *t, Godwit__TableRef *const *tables, size_t n);

/* Splits text (pg_restore --list --verbose, copied) into entries. NULL or
 * an error the caller frees. */
char *toc_parse(toc_t *t, const char *text, size_t len);
/* Marks the entries listed in text (pg_restore --list --section=post-data).
 * NULL or an error the caller frees. */
char *toc_mark_post(toc_t *t, const char *text);
/* Flags what is never applied and the settings entries. */
void toc_mark_excluded(toc_t *t);
/* With tables asked for: flags the tables in scope (TOC_IN) and everything
 * out of it (TOC_OUT); see schema.c's header. source_db names the source in
 * an error. NULL or an error the caller frees. */
char *toc_scope(toc_t *t, const char *source_db);
/* Moves the keys from post to pre, and the entries that only hang on them. */
void toc_move_keys(toc_t *t);
/* In section "post" (post) or "pre"? */
bool toc_selected(const toc_entry_t *e, bool post);

/* The catalog ids of the entries that have one, as two arrays "{1,2,3}"
 * (caller frees both); t->asked records which entry each one is. */
void toc_catalog_ids(toc_t *t, char **cls, char **oids);

/* What a kind is called in the catalog queries, and back. */
toc_kind_t toc_kind_parse(const char *v);
const char *toc_kind_name(toc_kind_t k);
/* Should "post" be judged done by this entry's presence on the target? */
bool toc_checkable_post(toc_kind_t k);

/* The objects whose presence tells whether the section is applied, as a
 * JSON array of {k, s, t, n} (caller frees); NULL when there are none.
 * *n_checked: how many. */
char *toc_check_json(const toc_t *t, bool post, size_t *n_checked);
/* The section's TOC lines, in TOC order, one a line (caller frees); *len
 * its length. */
char *toc_list_text(const toc_t *t, bool post, size_t *len);

/* Appends name to a ", "-separated list of at most a few names (then
 * ", ..."); *n counts them all. The caller frees *list. */
void toc_name_add(char **list, size_t *n, const char *name);

#endif
