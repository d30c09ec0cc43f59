/*
 * cutstep: what each step of the cutover (cutover.h) sends, and what the
 * agents' answers say: the proxies' pause, switch and resume, the fence
 * (prepare, freeze, keep, unfreeze, again), the sequences with the final
 * check, the role check, and after the switch the other direction (the
 * old subscription and slot dropped, the new slot advanced, followed).
 * Each function is the step table's action for its step (cutover.c,
 * s_steps); the answers come back to s_on_result, which ends the step
 * (cutover_step_over) once all are in. A step whose commands are all
 * skipped is over at once: callers send nothing after an action (cu may be
 * gone when it returns).
 */
#ifndef GODWIT_CUTSTEP_H
#define GODWIT_CUTSTEP_H

#include "cutover.h"

/* One step's action: sends its commands. */
typedef void (*cutstep_fn)(cutover_t *cu);

void cutstep_check(cutover_t *cu);
void cutstep_pause(cutover_t *cu);
void cutstep_freeze(cutover_t *cu);
void cutstep_sequences(cutover_t *cu);
/* method: physical, instead of the sequences: `to` waits for the final LSN
 * and is promoted, its roles' LOGIN given back; `from`'s fence made
 * permanent at once. engine: mariadb the same with the final GTID: our
 * connection on `to` stopped, `to` made writable. */
void cutstep_promote(cutover_t *cu);
/* method: physical, after the resume: `from` made a standby of `to` through
 * the slot new_name (Rejoin: pg_rewind where they parted). engine:
 * mariadb: `from` replicates from `to` through the connection new_name
 * from the switch GTID (MyFollow). */
void cutstep_rejoin(cutover_t *cu);
void cutstep_switch_to(cutover_t *cu);
void cutstep_switch_back(cutover_t *cu);
void cutstep_resume(cutover_t *cu);
void cutstep_unfreeze(cutover_t *cu);
void cutstep_refence(cutover_t *cu);
/* engine: mariadb, after an abort's restore: the fence K_REFENCE made on
 * `to` lifted (it had none before the pause). */
void cutstep_unfence_to(cutover_t *cu);
void cutstep_restore(cutover_t *cu);
void cutstep_drop_old(cutover_t *cu);
void cutstep_drop_old_slot(cutover_t *cu);
void cutstep_advance(cutover_t *cu);
void cutstep_follow(cutover_t *cu);

/* Frees the sequences step's answers the final check compares (cu->kept,
 * cu->seqs); they are NULL after. */
void cutstep_answers_free(cutover_t *cu);

#endif
