/*
 * svc: telling systemd where a daemon is (a unit with Type=notify):
 * READY=1 once it serves, STOPPING=1 once it winds down, STATUS= lines,
 * and the watchdog's WATCHDOG=1 from a timer on the daemon's own loop, so
 * that a loop that stops turning stops the keep-alives and systemd
 * restarts the daemon (WatchdogSec=). Every message goes through libsystemd's
 * sd_notify; a daemon not started by systemd (no NOTIFY_SOCKET) sends
 * nothing and svc costs nothing.
 *
 * The keep-alive timer runs at half the interval systemd asks for
 * (WATCHDOG_USEC, for this process: WATCHDOG_PID) and is unreferenced: it
 * never keeps the loop alive by itself.
 *
 * A reload (SIGHUP, the units' ExecReload): svc_on_reload's callback runs on
 * the loop, between RELOADING=1 and READY=1.
 *
 * Owns: its timer and its SIGHUP handle (closed by svc_destroy; the struct
 * is freed in the last close callback, so run the loop once more after
 * svc_destroy).
 */
#ifndef GODWIT_SVC_H
#define GODWIT_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct svc svc_t;

/* The watchdog's keep-alive started if systemd asks for one; never NULL. */
svc_t *svc_new(uv_loop_t *loop);

/* READY=1 with status (a line for `systemctl status`). */
void svc_ready(svc_t *s, const char *status);

/* STOPPING=1 with status. */
void svc_stopping(svc_t *s, const char *status);

/* Loads the config at path and gives its log level; false with err (file,
 * line and field) if it does not load. */
typedef bool (*svc_load_level_fn)(const char *path, int *log_level, char *err, size_t errlen);

/* On SIGHUP (the units' ExecReload), between RELOADING=1 and READY=1: the
 * config at path loaded again with load; its log_level applies at once, any
 * other change to the file (against its text read now) is logged as
 * applying at the next start; a file that does not load changes nothing.
 * path is borrowed for svc's lifetime. The handle is unreferenced: it never
 * keeps the loop alive by itself. */
void svc_on_reload(svc_t *s, const char *path, svc_load_level_fn load);

/* The watchdog's interval systemd asked for, in ms; 0 if none. */
uint64_t svc_watchdog_ms(const svc_t *s);

/* Stops the keep-alive and closes the timer; *sp is NULL after. */
void svc_destroy(svc_t **sp);

#endif
