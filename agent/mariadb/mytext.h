/*
 * mytext: the MariaDB engine's pure text work, with no connection and no
 * state, so unit tests reach all of it: identifiers quoted for SQL text,
 * version strings as numbers, the server's yes/no values, and what a
 * user's SHOW GRANTS lines allow on a database.
 *
 * Everything returned as char * is malloc'd; the caller frees it. The
 * growing string (mytext_buf_t) is the one the engine's SQL builders
 * share: its text is the caller's to free.
 */
#ifndef GODWIT_MYTEXT_H
#define GODWIT_MYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ident quoted with backticks, a backtick inside doubled:
 * my`t -> `my``t`. */
char *mytext_ident(const char *ident);

/* `schema`.`name`. */
char *mytext_qname(const char *schema, const char *name);

/* A name the server gives a character set or collation: a-z, 0-9, _
 * (nothing else, so it goes into SQL text as it is). */
bool mytext_plain_name(const char *s);

/* A growing string: { 0 } is empty (s NULL until the first add); s is
 * NUL-terminated after any add, and malloc'd (the caller frees it). */
typedef struct {
    char *s;
    size_t len, cap;
} mytext_buf_t;

/* Appends str; mytext_addn: its first n bytes (no NUL among them). */
void mytext_add(mytext_buf_t *b, const char *str);
void mytext_addn(mytext_buf_t *b, const char *str, size_t n);

/* "10.11.19-MariaDB-0+deb12u1-log" -> 101119, "8.0.36" -> 80036
 * (major * 10000 + minor * 100 + patch); 0 when s does not start with
 * major.minor. A patch above 99 is refused too (0). */
uint32_t mytext_version_num(const char *s);

/* A server's boolean as text: "1", "ON", "YES", "TRUE" (any case) are
 * true; everything else (NULL included) false. */
bool mytext_bool(const char *v);

/* What SHOW GRANTS lines allow, for one database. */
typedef struct {
    bool replication_slave;     /* REPLICATION SLAVE (or ALL PRIVILEGES) ON *.* */
    bool reload;                /* RELOAD (or ALL PRIVILEGES) ON *.*: the copy's lock
                                   (BACKUP STAGE) for more than one reader */
    /* What the copy needs to see and read the database's other objects
     * (each or ALL PRIVILEGES, on *.* or the database): */
    bool show_view;             /* SHOW VIEW: SHOW CREATE VIEW */
    bool trigger;               /* TRIGGER: the triggers */
    bool event;                 /* EVENT: the events */
    bool proc_select;           /* SELECT on mysql.proc, mysql.* or *.*: the routines */
    bool select_db;             /* SELECT (or ALL PRIVILEGES) ON *.* or on the database
                                   (db.*, its name matched as a GRANT pattern: _ and %
                                   wildcards, \ escapes) */
} mytext_grants_t;

/* Adds what one SHOW GRANTS line gives on database db to *g. Lines that
 * are not "GRANT privileges ON object TO ..." (a role granted, SET
 * DEFAULT ROLE) add nothing, as do table and column privileges, routines
 * and PROXY. */
void mytext_grants_line(const char *line, const char *db, mytext_grants_t *g);

/* The grantee of a SHOW GRANTS line as the server wrote it ("`repl`@`%`"),
 * malloc'd; NULL when the line has none. */
char *mytext_grants_grantee(const char *line);

/* Whether name matches a database pattern of a GRANT (SQL LIKE: _ one
 * character, % any run, \ escapes the next one; case-sensitive, as
 * lower_case_table_names=0 makes names). */
bool mytext_db_match(const char *pattern, const char *name);

#endif
