/*
 * workdir: the schema step's private temp folder (schema.c): made with
 * mkdtemp under /tmp, holding the dump (workdir_t.dump_path, written by
 * pg_dump) and the restore list (list_path, written here), and removed,
 * files first, when the step winds down. Every file operation is a uv_fs_t
 * request on the loop, one at a time; nothing blocks.
 *
 * What it owns: the one request, the paths, the list file's descriptor
 * while it is written and the list's text. It never removes anything but
 * its two files and its folder. A request that cannot start reports through
 * its callback as if it had run (then from inside the call).
 */
#ifndef GODWIT_WORKDIR_H
#define GODWIT_WORKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct workdir workdir_t;
/* A request's outcome: error NULL, or why (the callee's; copy to keep). */
typedef void (*workdir_cb)(workdir_t *w, const char *error, void *arg);
/* The folder and its files are gone (workdir_remove). */
typedef void (*workdir_gone_cb)(workdir_t *w, void *arg);

struct workdir {
    uv_loop_t *loop;
    char *name;            /* names the step in a warning: "schema on database shop" */
    uv_fs_t fs;
    bool busy;             /* a request on fs is in flight */
    bool removing;         /* workdir_remove was called: only the removal goes on */
    char *dir, *dump_path, *list_path;
    int cleanup_step;
    uv_file list_fd;
    bool list_open;
    char *list_text;       /* the list file's content */
    size_t list_len, list_off;
    char *list_error;      /* a write failed; reported once the file is closed */
    workdir_cb cb;         /* the request's */
    workdir_gone_cb gone;
    void *arg;
};

/* Sets w up (name copied); nothing exists yet. */
void workdir_init(workdir_t *w, uv_loop_t *loop, const char *name);
/* Frees what w holds (not w); nothing may be in flight. */
void workdir_clear(workdir_t *w);

/* Makes the folder; cb(w, NULL or why, arg). */
void workdir_create(workdir_t *w, workdir_cb cb, void *arg);
/* Writes text (taken: malloc'd, len bytes) to the list file, created new;
 * cb(w, NULL or why, arg) once it is closed. */
void workdir_write_list(workdir_t *w, char *text, size_t len, workdir_cb cb, void *arg);
/* Removes the files and the folder, after the request in flight if there is
 * one (its cb is not called then); gone(w, arg) once it is over (from
 * inside this call when there is nothing to remove). A failure to remove is
 * logged, not reported. */
void workdir_remove(workdir_t *w, workdir_gone_cb gone, void *arg);

#endif
