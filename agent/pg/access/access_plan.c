/*
 * access_plan: see access_plan.h. The roles step's statements, from the
 * same parts the comparison uses (access_roles.h, access_objects.h).
 */
#include "access_plan.h"

#include <stdlib.h>
#include <string.h>

#include "access_cmp.h"
#include "access_json.h"
#include "access_objects.h"
#include "access_roles.h"
#include "xalloc.h"

static void s_plan_add(access_plan_t *p, char *sql)
{
    if (p->n_stmts == p->cap_stmts) {
        p->cap_stmts = p->cap_stmts ? 2 * p->cap_stmts : 16;
        p->stmts = xrealloc(p->stmts, p->cap_stmts * sizeof *p->stmts);
    }
    p->stmts[p->n_stmts++] = sql;
}

/* Collects a created role's statements by kind: CREATE first, then the
 * rest once every role exists. */
typedef struct {
    access_plan_t *plan;
    access_plan_t later;
} s_plan_ctx_t;

static void s_plan_collect(void *arg, char *sql, int what)
{
    s_plan_ctx_t *x = arg;
    if (what == 0) {
        s_plan_add(x->plan, sql);
        return;
    }
    x->plan->n_memberships += what == 1;
    x->plan->n_settings += what == 2;
    s_plan_add(&x->later, sql);
}

bool access_plan_roles(const cJSON *src, const cJSON *dst, const access_quote_t *q,
                       access_plan_t *plan, char **err)
{
    memset(plan, 0, sizeof *plan);
    access_diffs_t diffs = { 0 };
    access_cmp_t c;
    if (!access_cmp_init(&c, src, dst, false, q, &diffs)) {
        *err = xstrdup("the access catalogs are incomplete");
        return false;
    }
    const cJSON *roles = access_json_arr(src, "roles");
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    plan->created = xcalloc(n > 0 ? (size_t)n : 1, sizeof *plan->created);
    s_plan_ctx_t x = { .plan = plan };
    const cJSON *r;
    cJSON_ArrayForEach(r, roles) {
        const char *name = access_json_str(r, "name");
        if (!name || access_cmp_dst_has_role(&c, name))
            continue;
        plan->created[plan->n_created++] = name;
        plan->n_superuser += access_json_true(r, "super");
        access_roles_create(&c, r, s_plan_collect, &x);
    }
    /* Roles that exist already, members of a role created now: that
     * membership is new, like the role. */
    cJSON_ArrayForEach(r, roles) {
        const char *name = access_json_str(r, "name");
        if (!name || !access_cmp_dst_has_role(&c, name))
            continue;
        bool created = false;
        for (size_t i = 0; i < plan->n_created; i++)
            created |= strcmp(plan->created[i], name) == 0;
        if (created)
            continue;
        const cJSON *m;
        cJSON_ArrayForEach(m, access_json_arr(r, "memberof")) {
            const char *g = access_json_str(m, "role");
            bool new_group = false;
            for (size_t i = 0; g && i < plan->n_created; i++)
                new_group |= strcmp(plan->created[i], g) == 0;
            if (new_group && !access_roles_superuser_membership(&c, m)) {
                s_plan_add(&x.later, access_roles_grant_sql(&c, name, m));
                plan->n_memberships++;
            }
        }
    }
    for (size_t i = 0; i < x.later.n_stmts; i++)
        s_plan_add(plan, x.later.stmts[i]);
    free(x.later.stmts);
    /* the database's owner and privileges as the source has them */
    access_objects_database_compare(&c);
    for (size_t i = 0; i < diffs.n; i++) {
        s_plan_add(plan, diffs.v[i].statement);
        diffs.v[i].statement = NULL;
        plan->n_database++;
    }
    access_diffs_free(&diffs);
    if (c.err) {
        *err = c.err;
        access_plan_free(plan);
        return false;
    }
    return true;
}

void access_plan_free(access_plan_t *p)
{
    for (size_t i = 0; p && i < p->n_stmts; i++)
        free(p->stmts[i]);
    if (p) {
        free(p->stmts);
        free(p->created);
        memset(p, 0, sizeof *p);
    }
}
