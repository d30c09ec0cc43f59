/*
 * access_cmp: see access_cmp.h. One comparison's context: quoting through
 * the caller's functions, the differences found and the role tokens both
 * sides are compared by.
 */
#include "access_cmp.h"

#include <string.h>

#include "access_json.h"
#include "xalloc.h"

/* name quoted for SQL (caller frees); on failure the name itself, with the
 * comparison marked failed (it reports that instead of any statement). */
char *access_cmp_ident(access_cmp_t *c, const char *name)
{
    char *q = c->q->ident(c->q->ctx, name);
    if (!q) {
        if (!c->err)
            c->err = xasprintf("cannot quote the name \"%s\" for SQL", name);
        return xstrdup(name);
    }
    return q;
}

char *access_cmp_literal(access_cmp_t *c, const char *value)
{
    char *q = c->q->literal(c->q->ctx, value);
    if (!q) {
        if (!c->err)
            c->err = xasprintf("cannot quote the value \"%s\" for SQL", value);
        return xstrdup("''");
    }
    return q;
}

void access_cmp_diff(access_cmp_t *c, access_kind_t kind, bool absent, char *object,
                     char *problem, char *statement)
{
    access_diffs_t *d = c->out;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    access_diff_t *x = &d->v[d->n++];
    x->kind = kind;
    x->absent = absent;
    x->restored = false;
    x->object = object;
    x->problem = problem;
    x->statement = statement ? statement : xstrdup("");
}

/* Who a role is, compared across sides: the bootstrap superuser as such,
 * PUBLIC (NULL) as such, any other role by name. Tokens start with a
 * character a name is compared past: "B", "P", "O" (the object's owner) or
 * "n" followed by the name. Caller frees. */
char *access_cmp_who(const char *name, const char *owner, const char *boot)
{
    if (!name)
        return xstrdup("P");
    if (owner && strcmp(name, owner) == 0)
        return xstrdup("O");
    if (boot && strcmp(name, boot) == 0)
        return xstrdup("B");
    return xasprintf("n%s", name);
}

/* A role token as SQL on the target (caller frees); owner: the name the
 * owner token stands for there (already mapped). */
char *access_cmp_who_sql(access_cmp_t *c, const char *who, const char *owner)
{
    switch (who[0]) {
    case 'P':
        return xstrdup("PUBLIC");
    case 'O':
        return owner ? access_cmp_ident(c, owner) : xstrdup("PUBLIC");
    case 'B':
        return access_cmp_ident(c, c->dst_boot);
    default:
        return access_cmp_ident(c, who + 1);
    }
}

/* A role token in a sentence (caller frees). */
char *access_cmp_who_text(const char *who)
{
    switch (who[0]) {
    case 'P':
        return xstrdup("PUBLIC");
    case 'O':
        return xstrdup("the owner");
    case 'B':
        return xstrdup("the bootstrap superuser");
    default:
        return xstrdup(who + 1);
    }
}

/* An owner name on the source, as the name it must have on the target
 * (the bootstrap superuser is the target's). Borrowed. */
const char *access_cmp_owner_on_target(const access_cmp_t *c, const char *src_owner)
{
    return src_owner && strcmp(src_owner, c->src_boot) == 0 ? c->dst_boot : src_owner;
}

/* Whether the target has a role of this name (described or not: its
 * bootstrap superuser and predefined roles are not described). */
bool access_cmp_dst_has_role(const access_cmp_t *c, const char *name)
{
    return access_json_by_name(access_json_arr(c->dst, "roles"), "name", name) ||
           !access_json_in_strings(access_json_arr(c->dst, "missing"), name);
}

bool access_cmp_init(access_cmp_t *c, const cJSON *src, const cJSON *dst, bool fenced,
                     const access_quote_t *q, access_diffs_t *out)
{
    memset(c, 0, sizeof *c);
    c->src = src;
    c->dst = dst;
    c->src_boot = access_json_str(src, "bootstrap");
    c->dst_boot = access_json_str(dst, "bootstrap");
    c->dst_db = access_json_str(dst, "db");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(dst, "version");
    c->dst_version = cJSON_IsNumber(v) ? v->valueint : 0;
    c->fenced = fenced;
    c->q = q;
    c->out = out;
    return c->src_boot && c->dst_boot && c->dst_db;
}
