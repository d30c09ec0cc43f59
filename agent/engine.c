/*
 * engine: see engine.h. Which engine an agent's config names.
 */
#include "engine.h"
#include "my_engine.h"
#include "pg_engine.h"

bool engine_open(uv_loop_t *loop, const agent_config_t *cfg, const char *agent_name,
                 engine_event_cb event, void *arg, engine_t **out)
{
    *out = NULL;
    if (cfg->has_mariadb)
        *out = my_engine_open(loop, cfg, agent_name, event, arg);
    else if (cfg->has_postgres)
        *out = pg_engine_open(loop, cfg, agent_name, event, arg);
    else
        return true;
    return *out != NULL;
}
