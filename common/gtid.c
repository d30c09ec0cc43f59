/*
 * gtid: see gtid.h.
 */
#include "gtid.h"

#include <stdlib.h>

#include "xalloc.h"

bool gtid_list_parse(const char *text, gtid_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (const char *p = text; p && *p;) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (!*p)
            break;
        unsigned long long v[3];
        for (int k = 0; k < 3; k++) {
            char *end = NULL;
            if (*p < '0' || *p > '9')
                goto bad;
            v[k] = strtoull(p, &end, 10);
            p = end;
            if (k < 2 && *p++ != '-')
                goto bad;
        }
        if (v[0] > UINT32_MAX || v[1] > UINT32_MAX || (*p && *p != ','))
            goto bad;
        if (*p == ',')
            p++;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = (gtid_t){ (uint32_t)v[0], (uint32_t)v[1], (uint64_t)v[2] };
    }
    return true;
bad:
    free(*out);
    *out = NULL;
    *n = 0;
    return false;
}

long long gtid_behind(const char *source, const char *target)
{
    gtid_t *s = NULL, *t = NULL;
    size_t ns = 0, nt = 0;
    long long behind = 0;
    if (!gtid_list_parse(source, &s, &ns) || !gtid_list_parse(target, &t, &nt))
        behind = -1;
    for (size_t i = 0; behind >= 0 && i < ns; i++) {
        const gtid_t *have = NULL;
        for (size_t j = 0; j < nt && !have; j++)
            if (t[j].domain == s[i].domain)
                have = &t[j];
        if (!have)
            behind = -1;
        else if (s[i].seq > have->seq)
            behind += (long long)(s[i].seq - have->seq);
    }
    free(s);
    free(t);
    return behind;
}
