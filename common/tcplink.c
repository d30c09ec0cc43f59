/*
 * tcplink: see tcplink.h.
 */
#include "tcplink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

bool tcplink_parse_max(const char *line, uint64_t *out)
{
    uint64_t lo, def, hi;
    char rest;
    if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %c", &lo, &def, &hi, &rest) != 3)
        return false;
    *out = hi;
    return true;
}

/* The contents of root + rel, small, trailing newline removed; NULL if
 * unreadable. Caller frees. */
static char *s_read(const char *root, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/proc/sys/%s", root, rel);
    char *text = NULL;
    size_t len = 0;
    if (fsutil_read_small(path, 4096, &text, &len) != 0)
        return NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    return text;
}

void tcplink_read_limits(const char *root, tcplink_limits_t *out)
{
    memset(out, 0, sizeof *out);
    char *t = s_read(root, "net/ipv4/tcp_rmem");
    if (t && !tcplink_parse_max(t, &out->rmem_max))
        out->rmem_max = 0;
    free(t);
    t = s_read(root, "net/ipv4/tcp_wmem");
    if (t && !tcplink_parse_max(t, &out->wmem_max))
        out->wmem_max = 0;
    free(t);
    t = s_read(root, "net/ipv4/tcp_congestion_control");
    if (t)
        snprintf(out->congestion, sizeof out->congestion, "%s", t);
    free(t);
}

uint64_t tcplink_bdp_bytes(double mbit, double rtt_ms)
{
    double b = mbit * 1e6 / 8.0 * rtt_ms / 1000.0;
    return b <= 0 ? 0 : b >= 1.8e19 ? UINT64_MAX : (uint64_t)b;
}

double tcplink_ceiling_mbit(uint64_t window, double rtt_ms)
{
    return (double)window * 8.0 / (rtt_ms / 1000.0) / 1e6;
}
