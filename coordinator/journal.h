/*
 * journal: the coordinator's durable state in SQLite.
 *
 * For now it holds the coordinator epoch, the fencing token every command
 * carries: each start of a coordinator on a journal takes the next epoch, so
 * agents can refuse a coordinator that was paused or replaced. Only one
 * coordinator runs on a journal at a time: journal_open takes an exclusive
 * lock (flock on JOURNAL.lock) that the process holds until it exits.
 * Writes use synchronous=FULL; a transition is recorded before it is acted on.
 */
#ifndef GODWIT_JOURNAL_H
#define GODWIT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

/* Opens (creating) the journal and takes the single-coordinator lock.
 * NULL with err filled if the file cannot be opened or another coordinator
 * holds it. */
journal_t *journal_open(const char *path, char *err, size_t errlen);
/* Increments and returns the epoch durably; 0 on error (err filled). */
uint64_t journal_next_epoch(journal_t *j, char *err, size_t errlen);
void journal_close(journal_t **jp);

#endif
