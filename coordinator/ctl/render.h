/*
 * render: godwitctl's output for humans: the coordinator's JSON answers
 * (status, plan check, migrations, verify and cutover reports) as lines
 * for a terminal, and the escaping that makes those lines safe. JSON
 * output (--json) does not come here. Renders what it is given; talks to
 * nobody.
 */
#ifndef GODWIT_RENDER_H
#define GODWIT_RENDER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

/* Escapes every string in the tree in place (common/escape.h) before it is
 * rendered for a terminal: names, messages and errors may come from agents,
 * and a newline or an escape sequence in them must not forge a line or
 * drive the terminal. JSON output is left as it is (cJSON escapes it). */
void render_humanize(cJSON *node);
/* Field key of o if it is a number (render_num) or a string (render_str);
 * dflt if it is missing or of another type. */
double render_num(const cJSON *o, const char *key, double dflt);
const char *render_str(const cJSON *o, const char *key, const char *dflt);
/* Prints the fleet; returns true if every seen agent is connected (none
 * refused or suspect) and every database reachable. */
bool render_status(const cJSON *st, FILE *out);
/* A plan check's report: each migration's findings, then the verdict. */
void render_plan_check(const cJSON *r, FILE *out);
/* A migrate status answer: each migration, its tables, and its verify and
 * cutover reports. */
void render_migrations(const cJSON *r, FILE *out);
/* A verify report (the "verify" object of a migration's status). */
void render_verify(const cJSON *v, double now, FILE *out);
/* A cutover report: the outcome and the timeline of its steps. */
void render_cutover(const cJSON *c, double now, FILE *out);
/* The fleet at a glance (fleetview.h's summary). */
void render_fleet(const cJSON *f, FILE *out);
/* A migration's audit trail (migrate audit): one line per event, its UTC
 * time, the migration's state then, its kind and what it says. */
void render_audit(const cJSON *r, FILE *out);

#endif
