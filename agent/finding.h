/*
 * finding: a preflight's findings (Finding in the proto: severity, a
 * stable code, the object, what is wrong and why it matters, the fix),
 * shared by every engine's checks: adding one to a PreflightResult, and
 * the one check every target makes the same way, its free disk against
 * the source's size.
 */
#ifndef GODWIT_FINDING_H
#define GODWIT_FINDING_H

#include <stddef.h>
#include <stdint.h>

#include "godwit.pb-c.h"

/* Adds a finding to r (*cap: the capacity of r->findings, grown here);
 * takes message and fix (malloc'd), copies code and object. */
void finding_add(Godwit__PreflightResult *r, size_t *cap, Godwit__Severity sev,
                 const char *code, const char *object, char *message, char *fix);

/* The target's free disk (statvfs of data_directory's filesystem) against
 * the source database's size times margin: an error "disk_space" when it
 * is short, or when it cannot be read (config_key, e.g.
 * "postgres.data_directory", is the setting that names the folder). The
 * one blocking call of a check: a statvfs, as the agent's disk report
 * makes. */
void finding_disk_space(Godwit__PreflightResult *r, size_t *cap, const char *data_directory,
                        const char *config_key, uint64_t size, double margin);

#endif
