/*
 * journal: the coordinator's durable state in SQLite.
 *
 * It holds the coordinator epoch, the fencing token every command carries
 * (each start of a coordinator on a journal takes the next epoch, so agents
 * can refuse a coordinator that was paused or replaced), and every
 * migration: its spec (the plan's entry, as JSON), its current state, and a
 * log of events. A state change and its event are one transaction. Only one
 * coordinator runs on a journal at a time: journal_open takes an exclusive
 * lock (flock on JOURNAL.lock) that the process holds until it exits.
 * Writes use synchronous=FULL; a transition is recorded before it is acted on.
 * The journal and its side files are mode 0600: they hold the plans.
 */
#ifndef GODWIT_JOURNAL_H
#define GODWIT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct journal journal_t;

/* Opens (creating) the journal and takes the single-coordinator lock.
 * NULL with err filled if the file cannot be opened or another coordinator
 * holds it. */
journal_t *journal_open(const char *path, char *err, size_t errlen);
/* Increments and returns the epoch durably; 0 on error (err filled). */
uint64_t journal_next_epoch(journal_t *j, char *err, size_t errlen);
void journal_close(journal_t **jp);
/* Copies the write-ahead log into the database now (SQLite's passive
 * checkpoint: never waits for readers), so that the next writes do not
 * run an automatic checkpoint, with its syncs, themselves: called before
 * a write pause whose steps are journaled. Failure is only logged. */
void journal_checkpoint(journal_t *j);

/* A durable setting of the coordinator's own (meta table): *value, or
 * false if key was never set or cannot be read. */
bool journal_meta_get(journal_t *j, const char *key, int64_t *value);
/* Sets it; false (logged) if the journal refused. */
bool journal_meta_set(journal_t *j, const char *key, int64_t value);

/* Records a new migration in state. False (err filled) if one with that
 * name exists and is not aborted (an aborted one is replaced). */
bool journal_migration_create(journal_t *j, const char *name, const char *spec_json,
                              const char *state, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
/* The same, with detail in its "created" event (journal_last_event). */
bool journal_migration_create_detail(journal_t *j, const char *name, const char *spec_json,
                                     const char *state, const char *detail, char *err,
                                     size_t errlen) GODWIT_MUSTCHECK;
/* Moves a migration from one state to another (only if it is still in
 * `from`) and logs the event, in one transaction. */
bool journal_migration_move(journal_t *j, const char *name, const char *from, const char *to,
                            const char *detail, char *err, size_t errlen)
    GODWIT_MUSTCHECK;
/* Several journal_event calls in one transaction: all are written, or
 * none (begin false: logged, the events go one by one). */
bool journal_batch_begin(journal_t *j);
bool journal_batch_commit(journal_t *j);

/* Logs an event (kind: "intent", "failed", ...) without changing state. */
bool journal_event(journal_t *j, const char *name, const char *state, const char *kind,
                   const char *detail);
/* The detail of the migration's latest event of kind since it was created
 * (malloc'd, caller frees), or NULL if there is none. */
char *journal_last_event(journal_t *j, const char *name, const char *kind);

/* One event of a migration: at (ms since the epoch), the state it was in,
 * its kind and detail; the strings are valid during the call only. */
typedef void (*journal_event_cb)(uint64_t at_ms, const char *state, const char *kind,
                                 const char *detail, void *arg);
/* Calls cb for every event of the migration name since it was created,
 * oldest first; false if the journal cannot be read. */
bool journal_events(journal_t *j, const char *name, journal_event_cb cb, void *arg);

typedef void (*journal_migration_cb)(const char *name, const char *spec_json, const char *state,
                                     void *arg);
/* Calls cb for every migration, oldest first. */
bool journal_migrations(journal_t *j, journal_migration_cb cb, void *arg);

#endif
