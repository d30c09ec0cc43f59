/*
 * myfence: the MariaDB source's write fence for the cutover (FreezeSource,
 * proto/godwit.proto) and its lease, as agent/pg/cutover/freezer.h is
 * PostgreSQL's. What it owns: the fence's record (myfencefile.h), the
 * lease timer, and the lift it runs itself when the lease runs out.
 *
 * The fence. The application's accounts (every (User, Host) of
 * mysql.global_priv whose User is one of app_roles) are locked (ALTER USER
 * ... ACCOUNT LOCK: no new session), their sessions get drain_timeout_ms
 * to end their open transactions (information_schema.INNODB_TRX joined
 * with PROCESSLIST), then every session of theirs left is killed (KILL
 * CONNECTION) and must be gone within about 2 s; only then is the server
 * made read_only (SET GLOBAL read_only = ON waits behind running
 * transactions, so it comes after the kill), and @@global.gtid_binlog_pos
 * read then is the final position (FreezeSourceResult.final_gtid): no
 * application commit can follow it. read_only alone is not the fence: an
 * account with SUPER or READ_ONLY ADMIN writes through it.
 *
 * The fence's session runs sql_log_bin = 0: locking accounts is not an
 * event of the binary log (the target would replicate it, and the final
 * position would be the fence's own GTID).
 *
 * The record. Written (tmp, fsync, rename) before any account is touched,
 * with what each account and read_only were before; removed only after
 * every account is as it was. PREPARE with arm writes it ahead (the armed
 * record, under the lease): FREEZE then takes the accounts from it and
 * reads nothing first. Since the fence record is written durably before
 * any change, an armed record found alone at a start means no FREEZE
 * changed anything: it is dropped when its lease has run out.
 *
 * The lease. A FREEZE holds for lease_ms (from the fence) unless made
 * permanent (KEEP, or FREEZE with permanent); when it runs out the agent
 * lifts the fence itself (as UNFREEZE) and says so with an event
 * "freeze.lease_expired" ("freeze.lease_unfreeze_failed" if it could not).
 * The deadline is on the wall clock in the record: an agent that starts
 * lifts a fence whose lease ran out meanwhile, gives one still running the
 * rest of it, and keeps a permanent one.
 *
 * Never: a fence without its record on disk first; an account unlocked
 * that was locked before the fence; the agent's own account locked; the
 * record removed before the accounts are unlocked.
 */
#ifndef GODWIT_MYFENCE_H
#define GODWIT_MYFENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "godwit.pb-c.h"
#include "myconn.h"
#include "myfencefile.h"
#include "step.h"

typedef struct myfence myfence_t;

/* Something the keeper did on its own (the lease): error false is a
 * warning. Strings borrowed for the call. */
typedef void (*myfence_event_cb)(bool error, const char *code, const char *message, void *arg);

/* server is copied (its strings are borrowed and must outlive the
 * keeper); timeout_ms bounds each statement, its connection included;
 * state_dir holds the record (copied). Looks at the records an earlier
 * run left (see above) and starts what they need. */
myfence_t *myfence_new(uv_loop_t *loop, const myconn_params_t *server, uint64_t timeout_ms,
                       const char *state_dir, myfence_event_cb event, void *arg);

/* Cancels its own lift and the lease (the record stays: the next agent
 * finds it). Every FreezeSource step must have ended or been cancelled.
 * Clears *fp; the memory goes in the timer's close callback. */
void myfence_destroy(myfence_t **fp);

/* Runs one FreezeSource (a step: step.h); done gets a malloc'd
 * FreezeSourceResult or the error. NULL with *why (malloc'd) for a
 * request refused before anything runs. */
step_t *myfence_run(myfence_t *f, const Godwit__FreezeSource *req, step_done_cb done, void *arg,
                    char **why);

/* Whether a fence of ours holds this server (its record is there). */
bool myfence_held(const myfence_t *f);

/* For Promote, which lifts a fence it finds (a rollback's old source):
 * the record into *rec (the caller clears it); false when there is none
 * (why empty) or it cannot be read (why). */
bool myfence_record(const myfence_t *f, myfence_rec_t *rec, char *why, size_t whylen);

/* The accounts have been unlocked by someone else than the fence's steps
 * (Promote): the record is removed and the lease ended. false (logged)
 * if the record could not be removed. */
bool myfence_lifted(myfence_t *f, const char *by);

#endif
