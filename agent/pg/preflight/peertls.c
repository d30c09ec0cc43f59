/*
 * peertls: see peertls.h.
 */
#include "peertls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool peertls_host_is_local(const char *host)
{
    if (!host || !host[0] || host[0] == '/' || host[0] == '@')
        return true; /* libpq: no host is the default Unix socket; @ an abstract one */
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) /* 0.0.0.0 reaches this host too */
        return (ntohl(a4.s_addr) >> 24) == 127 || a4.s_addr == 0;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
        return false;
    }
    return false;
}

bool peertls_check(const char *host, const char *sslmode, char *why, size_t whylen)
{
    if (peertls_host_is_local(host))
        return true;
    const char *mode = sslmode && sslmode[0] ? sslmode : NULL;
    if (mode && strcmp(mode, "verify-full") == 0)
        return true;
    const char *what;
    if (!mode || strcmp(mode, "prefer") == 0 || strcmp(mode, "allow") == 0)
        what = "may travel unencrypted (a server without TLS is accepted) and the server is "
               "not verified";
    else if (strcmp(mode, "disable") == 0)
        what = "travels unencrypted";
    else if (strcmp(mode, "require") == 0)
        what = "is encrypted, but the server's certificate is not verified (anyone on the path "
               "can pose as it)";
    else if (strcmp(mode, "verify-ca") == 0)
        what = "is encrypted and the certificate's CA verified, but not that the certificate "
               "names this host";
    else
        what = "uses an sslmode libpq does not know";
    snprintf(why, whylen, "sslmode %s%s: it %s", mode ? mode : "unset",
             mode ? "" : " (libpq's default, prefer)", what);
    return false;
}
