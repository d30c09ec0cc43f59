/*
 * recoveryconf: the recovery settings Rejoin (rejoin.h) writes into a
 * data directory to make its server a standby of a peer: standby.signal,
 * and primary_conninfo and primary_slot_name in postgresql.auto.conf, and
 * the connection strings this takes (pg_rewind's --source-server, the
 * standby's primary_conninfo).
 *
 * Two quotings meet here. A libpq connection string quotes a value in
 * single quotes with \ and ' escaped by a backslash
 * (recoveryconf_conn_value); postgresql.conf quotes a string in single
 * quotes with ' and \ doubled (recoveryconf_guc_quote, as ALTER SYSTEM
 * writes them). primary_conninfo is the first inside the second.
 *
 * A connection string built here never holds a password: the peer's
 * passfile is named (passfile=...) or given to a child through its
 * environment (pgtools.h).
 *
 * Owns nothing past a call; the pure functions (everything but
 * recoveryconf_write) touch no file, for unit tests.
 */
#ifndef GODWIT_RECOVERYCONF_H
#define GODWIT_RECOVERYCONF_H

#include <stdbool.h>

#include "agent_config.h"

/* The file holding ALTER SYSTEM's settings, and the one that makes a
 * server start as a standby. */
#define RECOVERYCONF_AUTO "postgresql.auto.conf"
#define RECOVERYCONF_SIGNAL "standby.signal"

/* v as a value of a libpq connection string: as is when it is only
 * letters, digits, '_' and '.', else quoted (libpq's appendConnStrVal).
 * Caller frees. */
char *recoveryconf_conn_value(const char *v);

/* "host=H port=P user=U [passfile=F] [sslmode=S] [dbname=D]
 * [application_name=A]" for peer: passfile only when with_passfile and
 * the peer has one; dbname and app left out when NULL. Caller frees. */
char *recoveryconf_conninfo(const agent_peer_t *peer, bool with_passfile, const char *dbname,
                            const char *app);

/* v as a postgresql.conf string literal: '...' with ' and \ doubled.
 * Caller frees. */
char *recoveryconf_guc_quote(const char *v);

/* postgresql.auto.conf's text old (NULL: no file) without any line that
 * sets primary_conninfo or primary_slot_name (any case), then
 *   primary_conninfo = '<conninfo>'
 *   primary_slot_name = '<slot>'
 * Every other line kept, in its order. Caller frees. */
char *recoveryconf_rewrite(const char *old, const char *conninfo, const char *slot);

/* Whether text (postgresql.auto.conf's) sets primary_slot_name to slot,
 * the last of its lines for that key deciding. */
bool recoveryconf_sets_slot(const char *text, const char *slot);

/* Whether dir is already set up by recoveryconf_write for slot: it holds
 * standby.signal and its postgresql.auto.conf names slot. */
bool recoveryconf_present(const char *dir, const char *slot);

/* Writes standby.signal (empty) and postgresql.auto.conf (rewritten as
 * above) into dir, each tmp + fsync + rename, mode 0600; when the agent
 * runs as root, both are given dir's owner (the server's OS user). 0 or
 * -errno, with *what (static) naming the file that failed. */
int recoveryconf_write(const char *dir, const char *conninfo, const char *slot,
                       const char **what);

#endif
