/*
 * standby: what the physical path's steps share (docs/physical.md): the
 * standby's data directory and godwit's markers on it, the commands of the
 * config's postgres.standby section as argv arrays, the one query that
 * reads a standby's state, and the engine's record of the last BaseBackup
 * (pgmon's report shows it as Postgres.basebackup).
 *
 *   basebackup.c      BaseBackup: pg_basebackup into the data directory,
 *                     then the server started (bbprogress.c reads its
 *                     progress)
 *   standby_status.c  StandbyStatus
 *   promote.c         Promote (the cutover's write pause)
 *   standby_drop.c    DropObjects.standby_of_slot: stopped, then removed
 *   rejoin.c          Rejoin: the old primary made a standby of the new one
 *                     (pg_rewind; recoveryconf.c writes its settings); its
 *                     data directory is never marked ours
 *   sbstep.c          what BaseBackup and Rejoin share: the child that
 *                     runs, the server's start and probes, its state
 *
 * The markers. STANDBY_MARKER ("godwit.standby") inside the data directory
 * holds the slot's name: written once pg_basebackup has succeeded, before
 * the server is started; a directory holding it for a slot is godwit's
 * standby of that slot, and the only kind godwit removes. While
 * pg_basebackup runs, "<data_directory>.godwit-partial" next to it holds
 * the slot's name (and "keep" on a second line when the directory was
 * there, empty, before: a mount point is emptied, not removed): a
 * directory left by a killed pg_basebackup is removed only when that
 * marker names the slot.
 *
 * The agent reads and writes the markers itself (small files, on the
 * loop): it runs as root (with run_as) or as the server's user, either of
 * which can. Anything bigger (removing a data directory) is a child.
 */
#ifndef GODWIT_STANDBY_H
#define GODWIT_STANDBY_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_config.h"
#include "godwit.pb-c.h"
#include <libpq-fe.h>
#include <uv.h>

#include "proc.h"
#include "step.h"

#define STANDBY_MARKER "godwit.standby"
#define STANDBY_PARTIAL_SUFFIX ".godwit-partial"

/* Why a step that makes this agent's server a standby of peer through
 * slot (BaseBackup, Rejoin) cannot run here (malloc'd, caller frees), or
 * NULL: no standby section in local's config ("this agent cannot <what>:
 * ..."), a slot name that is not godwit's, a peer it does not list. */
char *standby_refusal(const step_local_t *local, const char *peer, const char *slot,
                      const char *what);

/* What a standby data directory holds. */
typedef enum {
    STANDBY_DIR_MISSING = 0, /* not there */
    STANDBY_DIR_EMPTY,       /* there, empty */
    STANDBY_DIR_OURS,        /* our marker for the slot asked about */
    STANDBY_DIR_OTHER,       /* not empty, no marker for that slot (or unreadable) */
} standby_dir_t;

/* What dir holds for slot; *marked (malloc'd, caller frees; may be NULL)
 * the slot another marker names, if any. A directory that cannot be read
 * is STANDBY_DIR_OTHER with *why (malloc'd) saying why. */
standby_dir_t standby_dir_look(const char *dir, const char *slot, char **marked, char **why);

/* Writes the marker for slot into dir (tmp, fsync, rename), owned like
 * dir; keep_dir: the directory was there before (a mount point, say), so
 * a removal empties it rather than removing it. 0 or -errno. */
int standby_marker_write(const char *dir, const char *slot, bool keep_dir);
/* Whether dir's marker says to keep the directory itself on removal. */
bool standby_marker_keep(const char *dir);
/* Whether dir still holds standby.signal (pg_basebackup -R wrote it; a
 * promotion removes it): a data directory without it is a primary's. */
bool standby_signal_present(const char *dir);

/* The partial marker of dir ("<dir>.godwit-partial"): write (slot,
 * whether dir was there empty, and the process group of the pg_basebackup
 * writing it: 0 before it runs), read (0, -ENOENT, -errno; *slot malloc'd;
 * pgid may be NULL), remove (missing is fine). */
int standby_partial_write(const char *dir, const char *slot, bool keep_dir, int pgid);
int standby_partial_read(const char *dir, char **slot, bool *keep_dir, int *pgid);
int standby_partial_remove(const char *dir);
/* An agent killed -9 leaves its pg_basebackup running (its own session:
 * nothing signals it): the processes of process group pgid, if one of
 * them still runs program, are killed (SIGKILL to the group) before what
 * they write is removed. The number of processes found in the group, 0
 * when none runs program (the group is gone, or the id was reused). */
int standby_orphans_kill(int pgid, const char *program);

/* argv (NULL-terminated, malloc'd with its strings; standby_argv_free):
 * the config's run_as, then the given words. standby_cmd_argv: run_as then
 * one of the config's commands (start, stop). */
char **standby_argv(const agent_standby_t *sb, const char *const *words);
char **standby_cmd_argv(const agent_standby_t *sb, const cfg_strings_t *cmd);
void standby_argv_free(char ***argvp);
/* The removal of dir as run_as: "rm -rf -- dir", or with keep_dir, its
 * contents only ("find dir -mindepth 1 -delete"). */
char **standby_rm_argv(const agent_standby_t *sb, const char *dir, bool keep_dir);

/* Starts argv[0] (PATH looked up) with argv, env (NULL: ours) as a child
 * whose stderr tail is kept (proc.h); on_err and own_group as proc_opts_t.
 * 0 or a negative libuv error. */
int standby_spawn(uv_loop_t *loop, char *const *argv, char *const *env,
                  void (*on_err)(const char *, size_t, void *), bool own_group,
                  proc_done_cb cb, void *arg, proc_t **pp);

/* One round trip on a standby (or a primary): pg_is_in_recovery, the
 * received and replayed positions, the WAL receiver. Columns in_recovery,
 * receive_lsn, replay_lsn, streaming, sender, slot_name (the WAL
 * receiver's slot, "" if none). */
extern const char standby_status_sql[];
/* Fills r's server fields from row 0 of standby_status_sql's result. */
void standby_status_fill(Godwit__StandbyStatusResult *r, const PGresult *res);

/* The engine's record of the last BaseBackup, shown in every report. */
typedef struct {
    char *slot;                 /* NULL: none ran since the agent started */
    const char *phase;          /* "copying", "starting", "done", "failed" */
    uint64_t done_bytes, total_bytes;
    uint64_t started_at_ms;     /* wall clock */
    char *error;                /* failed: why */
} standby_progress_t;

/* Starts the record of a BaseBackup of slot now (phase "copying"). */
void standby_progress_begin(standby_progress_t *p, const char *slot);
/* Phase (static string), and for "failed" why. */
void standby_progress_phase(standby_progress_t *p, const char *phase, const char *error);
/* The record as the report's Basebackup (malloc'd), or NULL if none ran. */
Godwit__Basebackup *standby_progress_report(const standby_progress_t *p);
void standby_progress_clear(standby_progress_t *p);

#endif
