/*
 * finding: see finding.h. Owns nothing: a finding belongs to the result
 * it was added to.
 */
#include "finding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskstats.h"
#include "units.h"
#include "xalloc.h"

void finding_add(Godwit__PreflightResult *r, size_t *cap, Godwit__Severity sev,
                 const char *code, const char *object, char *message, char *fix)
{
    if (r->n_findings == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        r->findings = xrealloc(r->findings, *cap * sizeof *r->findings);
    }
    Godwit__Finding *f = xmalloc(sizeof *f);
    godwit__finding__init(f);
    f->severity = sev;
    f->code = xstrdup(code);
    f->object = xstrdup(object);
    f->message = message;
    f->fix = fix;
    r->findings[r->n_findings++] = f;
}

void finding_disk_space(Godwit__PreflightResult *r, size_t *cap, const char *data_directory,
                        const char *config_key, uint64_t size, double margin)
{
    diskstats_fs_t fs;
    int rc = diskstats_fs(data_directory, &fs);
    if (rc != 0) {
        finding_add(
            r, cap, GODWIT__SEVERITY__SEVERITY_ERROR, "disk_space", data_directory,
            xasprintf("cannot read the free space of the target's data directory %s: %s",
                      data_directory, strerror(-rc)),
            xasprintf("Point the agent's %s at the target server's data directory, readable "
                      "by the agent.",
                      config_key));
        return;
    }
    double need_d = (double)size * margin;
    uint64_t need = need_d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)need_d;
    if (fs.free_bytes >= need)
        return;
    char free_s[32], size_s[32], need_s[32], short_s[32];
    units_fmt_bytes(fs.free_bytes, free_s, sizeof free_s);
    units_fmt_bytes(size, size_s, sizeof size_s);
    units_fmt_bytes(need, need_s, sizeof need_s);
    units_fmt_bytes(need - fs.free_bytes, short_s, sizeof short_s);
    finding_add(r, cap, GODWIT__SEVERITY__SEVERITY_ERROR, "disk_space", data_directory,
                xasprintf("the target's data directory %s has %s free, but the source database "
                          "is %s and with a margin of %.2f needs %s: the copy would fill the "
                          "disk and stop the target server",
                          data_directory, free_s, size_s, margin, need_s),
                xasprintf("Free or add at least %s on the filesystem of %s.", short_s,
                          data_directory));
}
