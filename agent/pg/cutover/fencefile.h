/*
 * fencefile: the file that records a database's write fence (freezer.c) in
 * the agent's state folder, written before any role loses its LOGIN and
 * removed only after every role got it back, so an agent that restarts
 * finds the fences it holds (and lifts the ones not permanent after a
 * lease). One file per database: STATE_DIR/freeze-HEX.json, HEX the
 * database name's bytes; JSON written atomically (tmp, fsync, rename),
 * mode 0600.
 *
 * The armed file (STATE_DIR/armed-HEX.json, same content) is the fence file
 * written ahead, before the write pause (PREPARE with arm): FREEZE then only
 * renames it to the fence file's name, with no sync inside the pause. The
 * data was synced when armed; a machine crash that loses the rename leaves
 * the armed file, which an agent that starts takes for a fence (its roles'
 * LOGIN restored after the restart lease), since it cannot know whether the
 * roles were fenced.
 */
#ifndef GODWIT_FENCEFILE_H
#define GODWIT_FENCEFILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* The fence file of database in state_dir (malloc'd, the caller frees). */
char *fencefile_path(const char *state_dir, const char *database);

/* The armed file of database in state_dir (malloc'd, the caller frees). */
char *fencefile_armed_path(const char *state_dir, const char *database);

/* The fence file's JSON (the caller deletes it), or NULL if there is none
 * (why empty) or it is unreadable or not a fence file (why says so). */
cJSON *fencefile_read(const char *path, char *why, size_t whylen);

/* Writes j to path atomically and durably; 0 or a negative errno. */
int fencefile_write(const char *path, const cJSON *j);

#endif
