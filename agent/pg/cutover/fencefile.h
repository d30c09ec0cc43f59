/*
 * fencefile: the file that records a database's write fence (freezer.c) in
 * the agent's state folder, written before any role loses its LOGIN and
 * removed only after every role got it back, so an agent that restarts
 * finds the fences it holds (and lifts the ones not permanent after a
 * lease). One file per database: STATE_DIR/freeze-HEX.json, HEX the
 * database name's bytes; JSON written atomically (tmp, fsync, rename),
 * mode 0600.
 */
#ifndef GODWIT_FENCEFILE_H
#define GODWIT_FENCEFILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* The fence file of database in state_dir (malloc'd, the caller frees). */
char *fencefile_path(const char *state_dir, const char *database);

/* The fence file's JSON (the caller deletes it), or NULL if there is none
 * (why empty) or it is unreadable or not a fence file (why says so). */
cJSON *fencefile_read(const char *path, char *why, size_t whylen);

/* Writes j to path atomically and durably; 0 or a negative errno. */
int fencefile_write(const char *path, const cJSON *j);

#endif
