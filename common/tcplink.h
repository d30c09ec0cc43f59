/*
 * tcplink: what a host's TCP settings allow one connection to carry over a
 * long link, for preflight's link checks. A single TCP connection carries
 * at most its window per round trip; the window is bounded by the
 * receiver's largest receive buffer (net.ipv4.tcp_rmem, third value) and
 * the sender's largest send buffer (net.ipv4.tcp_wmem). A link of B bit/s
 * and a round trip of R s needs B x R / 8 bytes of both (the bandwidth-
 * delay product): 1 Gbit/s at 25 ms, about 3 MB.
 *
 * Reads files under /proc/sys (tcplink_read_limits); the rest is pure.
 */
#ifndef GODWIT_TCPLINK_H
#define GODWIT_TCPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t rmem_max;       /* net.ipv4.tcp_rmem's maximum, bytes; 0 if unknown */
    uint64_t wmem_max;       /* net.ipv4.tcp_wmem's maximum, bytes; 0 if unknown */
    char congestion[32];     /* net.ipv4.tcp_congestion_control; "" if unknown */
} tcplink_limits_t;

/* This host's limits from /proc/sys (root: "" for /proc/sys itself; a
 * test's folder with the same layout otherwise). Fields it cannot read
 * stay 0 or "". */
void tcplink_read_limits(const char *root, tcplink_limits_t *out);

/* The third of the three numbers of a tcp_rmem or tcp_wmem line
 * ("4096\t131072\t6291456"); false if the line is not three numbers. */
bool tcplink_parse_max(const char *line, uint64_t *out);

/* The bandwidth-delay product in bytes of mbit Mbit/s at rtt_ms. */
uint64_t tcplink_bdp_bytes(double mbit, double rtt_ms);

/* The most one connection carries, in Mbit/s, with a window of window
 * bytes at rtt_ms (rtt_ms > 0). */
double tcplink_ceiling_mbit(uint64_t window, double rtt_ms);

#endif
