/*
 * myfencefile: the record of the MariaDB fence (myfence.h) in the agent's
 * state folder, pure file work with no connection, so unit tests reach all
 * of it. The fence holds a whole server (accounts and read_only are the
 * server's, not a database's), and an agent has one server: one file,
 * STATE_DIR/mariadb-fence.json; the record written ahead by a PREPARE with
 * arm is STATE_DIR/mariadb-armed.json, the same content with mode "armed".
 *
 * What it holds: every account (User, Host) the fence locks, with whether
 * it was locked before the fence came (an unfreeze unlocks only the others);
 * @@global.read_only before the fence; the mode; the lease's deadline on
 * the wall clock (milliseconds since the epoch; 0 for a permanent fence),
 * so an agent that restarts knows whether the lease ran out meanwhile; the
 * database the fence was asked for (for log lines).
 *
 * Written atomically and durably (tmp, fsync, rename: fsutil), mode 0600,
 * always before the server is changed. A file that is not exactly such a
 * record (a field missing or of another type, an unknown mode, no account)
 * is refused by myfencefile_read with why: a fence is never lifted from a
 * guess.
 *
 * Ownership: a record's strings and accounts are malloc'd and freed by
 * myfencefile_clear; paths returned are the caller's to free.
 */
#ifndef GODWIT_MYFENCEFILE_H
#define GODWIT_MYFENCEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MYFENCE_ARMED = 0,      /* written ahead (PREPARE with arm): nothing changed yet */
    MYFENCE_FENCED = 1,     /* the fence holds, under its lease */
    MYFENCE_PERMANENT = 2,  /* the fence holds for good (KEEP, or FREEZE permanent) */
} myfence_mode_t;

typedef struct {
    char *user;
    char *host;
    bool locked_before;     /* account_locked before the fence: left locked by an unfreeze */
} myfence_account_t;

typedef struct {
    char *database;
    myfence_mode_t mode;
    int64_t lease_deadline_ms;  /* wall clock, ms since the epoch; 0: permanent */
    bool read_only_before;      /* @@global.read_only before the fence */
    myfence_account_t *accounts;
    size_t n_accounts;
} myfence_rec_t;

/* STATE_DIR/mariadb-fence.json and STATE_DIR/mariadb-armed.json
 * (malloc'd, the caller frees). */
char *myfencefile_path(const char *state_dir);
char *myfencefile_armed_path(const char *state_dir);

/* "armed", "fenced", "permanent". */
const char *myfencefile_mode_name(myfence_mode_t mode);

/* Appends an account (strings copied). */
void myfencefile_add(myfence_rec_t *rec, const char *user, const char *host, bool locked_before);

/* Writes rec to path atomically and durably; 0 or a negative errno. */
int myfencefile_write(const char *path, const myfence_rec_t *rec);

/* Reads path into *rec (cleared first; the caller clears it after).
 * false when there is no file (why empty) or it is unreadable or not a
 * fence record (why says so, naming the path). */
bool myfencefile_read(const char *path, myfence_rec_t *rec, char *why, size_t whylen);

/* The accounts, each as `user`@`host` (mytext_ident's quoting), joined by
 * ", ": all of them (only_unlocked false), or only those not locked before
 * the fence. NULL when there are none to name (malloc'd, caller frees);
 * *n gets how many are named. */
char *myfencefile_accounts_sql(const myfence_rec_t *rec, bool only_unlocked, size_t *n);

/* "ALTER USER IF EXISTS <the accounts not locked before the fence>
 * ACCOUNT LOCK" (or UNLOCK): what the fence does and undoes (malloc'd);
 * NULL when there is none to name. *n gets how many are named. */
char *myfencefile_alter_sql(const myfence_rec_t *rec, bool lock, size_t *n);

/* The distinct user names of the accounts, each as a string literal
 * through quote (a connection's escaping: myconn_escape_literal's shape),
 * joined by ", " for an IN (...) list; NULL when quote fails or there is
 * no account (malloc'd, caller frees). */
char *myfencefile_users_in(const myfence_rec_t *rec, char *(*quote)(void *ctx, const char *s),
                           void *ctx);

/* Frees what rec holds and zeroes it; NULL is fine. */
void myfencefile_clear(myfence_rec_t *rec);

#endif
