/*
 * peertls: whether a peer's connection (docs/config.md: peers) leaves this
 * host, and whether it then verifies the server it reaches.
 *
 * The source's rows travel over the replication connection (the copy, the
 * subscription, verify). Between datacenters that connection should be
 * TLS with a verified server certificate: libpq's sslmode verify-full (or
 * a tunnel whose local end the peer names). peertls_check says when it is
 * not, for preflight's warning `replication_tls`.
 *
 * A host stays on this host when it is a Unix socket folder (a path), an
 * address of the loopback network (127.0.0.0/8, ::1), the unspecified
 * address (0.0.0.0, ::: Linux connects it to this host), or the name
 * localhost. Any other name counts as leaving the host: no name is looked
 * up (a DNS lookup could stall the agent's loop), so a name that resolves
 * to loopback is warned about too (name the address, or use verify-full).
 *
 * Owns nothing.
 */
#ifndef GODWIT_PEERTLS_H
#define GODWIT_PEERTLS_H

#include <stdbool.h>
#include <stddef.h>

/* true if a connection to host does not leave this host (see above). */
bool peertls_host_is_local(const char *host);

/* true if a connection to host with sslmode (NULL: libpq's default,
 * prefer) is fine: it stays on this host, or it is verify-full. Otherwise
 * false, with why (what is missing, for the finding's message) in buf. */
bool peertls_check(const char *host, const char *sslmode, char *why, size_t whylen);

#endif
