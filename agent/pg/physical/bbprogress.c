/* bbprogress: pg_basebackup's progress lines (bbprogress.h). */
#include "bbprogress.h"

#include <string.h>

/* Reads the digits at *s into *v (advancing *s); false if there are none
 * or they overflow what kB can be turned into bytes. */
static bool s_number(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t n = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX / 1024 - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *v = n;
    return true;
}

bool bbprogress_parse_line(const char *line, uint64_t *done_bytes, uint64_t *total_bytes)
{
    const char *p = line;
    while (*p == ' ')
        p++; /* the figures are right-aligned to the total's width */
    uint64_t done = 0, total = 0;
    if (!s_number(&p, &done))
        return false;
    if (*p == '/') {
        p++;
        if (!s_number(&p, &total))
            return false;
    }
    if (strncmp(p, " kB (", 5) != 0)
        return false;
    *done_bytes = done * 1024;
    *total_bytes = total * 1024;
    return true;
}

static void s_line_end(bbprogress_t *p)
{
    p->line[p->len] = '\0';
    uint64_t done = 0, total = 0;
    if (p->len > 0 && bbprogress_parse_line(p->line, &done, &total)) {
        p->done_bytes = done;
        p->total_bytes = total;
        p->seen = true;
    }
    p->len = 0;
}

void bbprogress_feed(bbprogress_t *p, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n' || c == '\r') {
            s_line_end(p);
            continue;
        }
        if (p->len < sizeof p->line - 1)
            p->line[p->len++] = c;
    }
}
