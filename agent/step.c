/*
 * step: see step.h. What every engine's steps share: the peer a message
 * names, and the names godwit gives its objects.
 */
#include "step.h"
#include "xalloc.h"

#include <string.h>

static bool s_set(const char *v)
{
    return v && v[0];
}

const agent_peer_t *step_peer(const step_local_t *local, const Godwit__ReplicationConn *remote,
                              char **why)
{
    const char *config = local && local->config_path ? local->config_path : "(unknown)";
    if (!remote || !s_set(remote->peer)) {
        *why = xasprintf("the command names no peer to connect to (older coordinators sent an "
                         "address: this agent connects only to the peers in its config %s)",
                         config);
        return NULL;
    }
    if (!s_set(remote->dbname)) {
        *why = xasprintf("the command names no database on peer \"%s\"", remote->peer);
        return NULL;
    }
    for (size_t i = 0; local && i < local->n_peers; i++)
        if (strcmp(local->peers[i].name, remote->peer) == 0)
            return &local->peers[i];
    *why = xasprintf("peer \"%s\" is not in this agent's peers (config %s): this agent "
                     "connects only to the servers its config lists; add it there, or name "
                     "one of those in the plan",
                     remote->peer, config);
    return NULL;
}

bool step_godwit_name(const char *name)
{
    static const char prefix[] = "godwit_";
    if (!name || strncmp(name, prefix, sizeof prefix - 1) != 0)
        return false;
    size_t n = strlen(name + sizeof prefix - 1);
    if (n < 1 || n > 56)
        return false;
    for (const char *c = name + sizeof prefix - 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}
