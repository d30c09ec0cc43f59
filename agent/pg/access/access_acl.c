/*
 * access_acl: see access_acl.h. Reads a document's ACL array into a sorted
 * set and writes the statements that make the target's set the source's.
 */
#include "access_acl.h"

#include <stdlib.h>
#include <string.h>

#include "access_buf.h"
#include "xalloc.h"

static int s_ace_cmp(const void *a, const void *b)
{
    const access_acl_entry_t *x = a, *y = b;
    int r = strcmp(x->who, y->who);
    return r ? r : strcmp(x->priv, y->priv);
}

/* The privileges of a document's ACL array, sorted; owner and boot of that
 * side name whose entries are the owner's and the bootstrap superuser's. */
access_acl_t access_acl_read(const cJSON *acl, const char *owner, const char *boot)
{
    access_acl_t a = { 0 };
    int n = cJSON_IsArray(acl) ? cJSON_GetArraySize(acl) : 0;
    a.v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *a.v);
    const cJSON *e;
    cJSON_ArrayForEach(e, acl) {
        const cJSON *g = cJSON_GetArrayItem(e, 0);
        const char *priv = cJSON_GetStringValue(cJSON_GetArrayItem(e, 1));
        if (!priv)
            continue;
        a.v[a.n].who = access_cmp_who(cJSON_IsString(g) ? g->valuestring : NULL, owner, boot);
        a.v[a.n].priv = priv;
        a.v[a.n].grantable = cJSON_IsTrue(cJSON_GetArrayItem(e, 2));
        a.n++;
    }
    qsort(a.v, a.n, sizeof *a.v, s_ace_cmp);
    return a;
}

void access_acl_free(access_acl_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].who);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

/* Privilege lists of one grantee, by what the target must do. */
enum { L_GRANT, L_GRANT_OPTION, L_REVOKE, L_REVOKE_OPTION, L__COUNT };

static void s_privs_emit(access_cmp_t *c, const access_acl_at_t *at, const char *who,
                         access_buf_t lists[])
{
    if (!lists[L_GRANT].n && !lists[L_GRANT_OPTION].n && !lists[L_REVOKE].n &&
        !lists[L_REVOKE_OPTION].n)
        return;
    char *who_sql = access_cmp_who_sql(c, who, at->owner);
    char *who_text = access_cmp_who_text(who);
    access_buf_t stmt = { 0 }, problem = { 0 };
    if (at->kind == ACCESS_DEFAULT_PRIVILEGES)
        access_buf_addf(&problem, "%s for %s differ:", at->object, who_text);
    else
        access_buf_addf(&problem, "privileges of %s on %s differ:", who_text, at->object);
    static const char *const what[L__COUNT] = {
        [L_GRANT] = "on the source only",
        [L_GRANT_OPTION] = "with grant option on the source only",
        [L_REVOKE] = "on the target only",
        [L_REVOKE_OPTION] = "with grant option on the target only",
    };
    const char *sep = " ";
    for (int l = 0; l < L__COUNT; l++) {
        if (!lists[l].n)
            continue;
        access_buf_addf(&problem, "%s%s %s", sep, what[l], lists[l].s);
        sep = "; ";
        const char *tail = l == L_GRANT_OPTION ? " WITH GRANT OPTION" : "";
        if (l == L_GRANT || l == L_GRANT_OPTION)
            access_buf_addf(&stmt, "%s%sGRANT %s ON %s TO %s%s;", stmt.n ? " " : "", at->prefix,
                            lists[l].s, at->on, who_sql, tail);
        else
            access_buf_addf(&stmt, "%s%sREVOKE %s%s ON %s FROM %s;", stmt.n ? " " : "", at->prefix,
                            l == L_REVOKE_OPTION ? "GRANT OPTION FOR " : "", lists[l].s, at->on,
                            who_sql);
    }
    access_cmp_diff(c, at->kind, at->absent, xstrdup(at->object), access_buf_take(&problem),
                    access_buf_take(&stmt));
    free(who_sql);
    free(who_text);
}

/* Compares two sorted privilege sets and adds one finding per grantee that
 * differs, with the GRANTs and REVOKEs that make the target's the
 * source's. */
void access_acl_compare(access_cmp_t *c, const access_acl_at_t *at, const access_acl_t *sa,
                        const access_acl_t *da)
{
    size_t i = 0, j = 0;
    const char *cur = NULL;
    access_buf_t lists[L__COUNT] = { { 0 } };
    for (;;) {
        const access_acl_entry_t *x = i < sa->n ? &sa->v[i] : NULL,
                                 *y = j < da->n ? &da->v[j] : NULL;
        int cmp = !x ? 1 : !y ? -1 : s_ace_cmp(x, y);
        const access_acl_entry_t *e = cmp <= 0 ? x : y;
        if (!e || (cur && strcmp(cur, e->who) != 0)) {
            if (cur)
                s_privs_emit(c, at, cur, lists);
            for (int l = 0; l < L__COUNT; l++)
                free(access_buf_take(&lists[l]));
        }
        if (!e)
            break;
        cur = e->who;
        int l = -1;
        if (cmp < 0)
            l = x->grantable ? L_GRANT_OPTION : L_GRANT;
        else if (cmp > 0)
            l = L_REVOKE;
        else if (x->grantable && !y->grantable)
            l = L_GRANT_OPTION;
        else if (!x->grantable && y->grantable)
            l = L_REVOKE_OPTION;
        if (l >= 0)
            access_buf_addf(&lists[l], "%s%s%s", lists[l].n ? ", " : "", e->priv, at->priv_suffix);
        if (cmp <= 0)
            i++;
        if (cmp >= 0)
            j++;
    }
}
