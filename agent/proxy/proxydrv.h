/*
 * proxydrv: what a proxy driver is and the helpers every driver shares.
 * A driver carries out one request at a time on one proxy and reads the
 * proxy's state back after every change: what it reports is what the proxy
 * said, not what was asked for. The set (proxy.c) owns the queue, the lease
 * and the drivers; the drivers (proxy_pgbouncer.c, proxy_haproxy.c,
 * proxy_nginx.c) include only this header, never proxy.h.
 *
 * Errors: drivers report through their done callback (NULL on success, else
 * why); the file helpers are I/O and return 0 or a negative errno.
 */
#ifndef GODWIT_PROXYDRV_H
#define GODWIT_PROXYDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"
#include "godwit.pb-c.h"
#include "proc.h"

typedef enum { PROXYDRV_BLUE = 0, PROXYDRV_GREEN = 1, PROXYDRV_OTHER = -1 } proxydrv_backend_t;

/* One request for a driver. */
typedef struct {
    Godwit__ProxyAction__Op op;
    proxydrv_backend_t backend;       /* SWITCH */
    uint64_t pause_timeout_ms;     /* PAUSE */
    bool then_resume;              /* SWITCH: the same job goes on as the RESUME once the
                                      proxy reads the new backend back; a driver may leave
                                      syncing its files until that RESUME is done */
} proxydrv_req_t;

/* What a driver reads back; filled in by the driver, owned by proxy.c. */
typedef struct {
    bool known;                    /* the fields below were read from the proxy */
    proxydrv_backend_t backend;
    char address[300];             /* as the proxy shows it */
    bool paused;
    bool already;                  /* nothing to do: it was in the asked state */
    uint32_t terminated;           /* PgBouncer: blockers terminated by policy */
    Godwit__ProxyStep **steps;
    size_t n_steps;
} proxydrv_out_t;

/* Records a step that began at started_mono (units_mono_ms) and ends now. */
void proxydrv_out_step(proxydrv_out_t *o, const char *name, uint64_t started_mono);
/* SWITCH's include file (PgBouncer, nginx): what is at path is kept in
 * *old (malloc'd, the caller frees; NULL if there was no file; at most max
 * bytes) and text is written there atomically, durably if sync (else see
 * fsutil_write_atomic_unsynced). 0, or a negative errno with what failed in
 * err. */
int proxydrv_file_swap(const char *path, size_t max, const char *text, bool sync, char **old,
                       size_t *old_len, char *err, size_t errlen);
/* Puts back what proxydrv_file_swap kept (removes the file if there was
 * none); 0 or a negative errno. */
int proxydrv_file_restore(const char *path, const char *old, size_t old_len);
/* blue, green or other for a host and port the proxy shows. */
proxydrv_backend_t proxydrv_match(const agent_proxy_t *cfg, const char *host, int port);

/* A driver's done: error NULL on success. May be called from inside run. */
typedef void (*proxydrv_done_cb)(void *arg, const char *error);

/* The request a driver is carrying out (what run was given) and the
 * buffer its failure's message is written in. A driver holds one;
 * proxydrv_job_end ends it, once. */
typedef struct {
    const proxydrv_req_t *req;     /* NULL: idle */
    proxydrv_out_t *out;
    proxydrv_done_cb done;
    void *arg;
    char err[1024];
} proxydrv_job_t;

/* Takes on run's request (all borrowed until the job ends). */
void proxydrv_job_begin(proxydrv_job_t *j, const proxydrv_req_t *req, proxydrv_out_t *out,
                        proxydrv_done_cb done, void *arg);
/* Clears the job, then calls its done with error (NULL: success): the
 * done may start the next request at once. */
void proxydrv_job_end(proxydrv_job_t *j, const char *error);
/* Writes a failure's message into j->err and returns it. */
const char *proxydrv_job_errf(proxydrv_job_t *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same for a command of the driver's that failed (r, from proc.h):
 * "WHAT (ARGV0) STATUS: STDERR". */
const char *proxydrv_job_cmd_failed(proxydrv_job_t *j, const char *what, const char *argv0,
                                    const proc_result_t *r);

typedef struct proxydrv proxydrv_t;
struct proxydrv {
    /* Starts req; fills out; calls done exactly once. */
    void (*run)(proxydrv_t *d, const proxydrv_req_t *req, proxydrv_out_t *out,
                proxydrv_done_cb done, void *arg);
    /* Stops what runs (no done afterwards) and frees d, possibly later. */
    void (*destroy)(proxydrv_t *d);
};

#endif
