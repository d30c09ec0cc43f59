/*
 * myfencefile: see myfencefile.h. Owns nothing past a call; the JSON is
 * cJSON's, the atomic write fsutil's.
 */
#include "myfencefile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "mytext.h"
#include "xalloc.h"

#define S_KIND "godwit mariadb fence"
#define S_VERSION 1

static const char *const s_modes[] = { "armed", "fenced", "permanent" };

char *myfencefile_path(const char *state_dir)
{
    return xasprintf("%s/mariadb-fence.json", state_dir);
}

char *myfencefile_armed_path(const char *state_dir)
{
    return xasprintf("%s/mariadb-armed.json", state_dir);
}

const char *myfencefile_mode_name(myfence_mode_t mode)
{
    return (unsigned)mode < sizeof s_modes / sizeof *s_modes ? s_modes[mode] : "(unknown)";
}

void myfencefile_add(myfence_rec_t *rec, const char *user, const char *host, bool locked_before)
{
    rec->accounts = xrealloc(rec->accounts, (rec->n_accounts + 1) * sizeof *rec->accounts);
    myfence_account_t *a = &rec->accounts[rec->n_accounts++];
    a->user = xstrdup(user);
    a->host = xstrdup(host);
    a->locked_before = locked_before;
}

int myfencefile_write(const char *path, const myfence_rec_t *rec)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", S_KIND);
    cJSON_AddNumberToObject(j, "version", S_VERSION);
    cJSON_AddStringToObject(j, "database", rec->database ? rec->database : "");
    cJSON_AddStringToObject(j, "mode", myfencefile_mode_name(rec->mode));
    cJSON_AddNumberToObject(j, "lease_deadline_ms", (double)rec->lease_deadline_ms);
    cJSON_AddBoolToObject(j, "read_only_before", rec->read_only_before);
    cJSON *arr = cJSON_AddArrayToObject(j, "accounts");
    for (size_t i = 0; i < rec->n_accounts; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user", rec->accounts[i].user);
        cJSON_AddStringToObject(o, "host", rec->accounts[i].host);
        cJSON_AddBoolToObject(o, "locked_before", rec->accounts[i].locked_before);
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    int rc = fsutil_write_atomic(path, text, strlen(text), 0600);
    cJSON_free(text);
    return rc;
}

/* The checks of one record; false with why. */
static bool s_parse(const cJSON *j, myfence_rec_t *rec, const char **bad)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *db = cJSON_GetObjectItemCaseSensitive(j, "database");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "mode");
    const cJSON *deadline = cJSON_GetObjectItemCaseSensitive(j, "lease_deadline_ms");
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(j, "read_only_before");
    const cJSON *accounts = cJSON_GetObjectItemCaseSensitive(j, "accounts");
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, S_KIND) != 0) {
        *bad = "not a MariaDB fence record (kind)";
        return false;
    }
    if (!cJSON_IsNumber(version) || version->valuedouble != S_VERSION) {
        *bad = "a fence record of another version";
        return false;
    }
    if (!cJSON_IsString(db)) {
        *bad = "no database";
        return false;
    }
    rec->database = xstrdup(db->valuestring);
    bool known = false;
    for (size_t i = 0; cJSON_IsString(mode) && i < sizeof s_modes / sizeof *s_modes; i++)
        if (strcmp(mode->valuestring, s_modes[i]) == 0) {
            rec->mode = (myfence_mode_t)i;
            known = true;
        }
    if (!known) {
        *bad = "no mode, or an unknown one";
        return false;
    }
    if (!cJSON_IsNumber(deadline) || deadline->valuedouble < 0 ||
        deadline->valuedouble != floor(deadline->valuedouble) ||
        deadline->valuedouble > 9007199254740992.0) {
        *bad = "no lease_deadline_ms, or not a whole number of milliseconds";
        return false;
    }
    rec->lease_deadline_ms = (int64_t)deadline->valuedouble;
    if (!cJSON_IsBool(ro)) {
        *bad = "no read_only_before";
        return false;
    }
    rec->read_only_before = cJSON_IsTrue(ro);
    if (!cJSON_IsArray(accounts) || cJSON_GetArraySize(accounts) == 0) {
        *bad = "no accounts";
        return false;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, accounts)
    {
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(a, "user");
        const cJSON *host = cJSON_GetObjectItemCaseSensitive(a, "host");
        const cJSON *locked = cJSON_GetObjectItemCaseSensitive(a, "locked_before");
        if (!cJSON_IsString(user) || !user->valuestring[0] || !cJSON_IsString(host) ||
            !cJSON_IsBool(locked)) {
            *bad = "an account without its user, host or locked_before";
            return false;
        }
        myfencefile_add(rec, user->valuestring, host->valuestring, cJSON_IsTrue(locked));
    }
    return true;
}

bool myfencefile_read(const char *path, myfence_rec_t *rec, char *why, size_t whylen)
{
    memset(rec, 0, sizeof *rec);
    why[0] = '\0';
    char *text = NULL;
    size_t len = 0;
    int rc = fsutil_read_small(path, 1 << 20, &text, &len);
    if (rc != 0) {
        if (rc != -ENOENT)
            snprintf(why, whylen, "%s: %s", path, strerror(-rc));
        return false;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const char *bad = "not JSON";
    bool ok = cJSON_IsObject(j) && s_parse(j, rec, &bad);
    cJSON_Delete(j);
    if (!ok) {
        myfencefile_clear(rec);
        snprintf(why, whylen, "%s: %s", path, bad);
    }
    return ok;
}

char *myfencefile_accounts_sql(const myfence_rec_t *rec, bool only_unlocked, size_t *n)
{
    mytext_buf_t b = { 0 };
    *n = 0;
    for (size_t i = 0; i < rec->n_accounts; i++) {
        const myfence_account_t *a = &rec->accounts[i];
        if (only_unlocked && a->locked_before)
            continue;
        char *u = mytext_ident(a->user);
        char *h = mytext_ident(a->host);
        if (*n > 0)
            mytext_add(&b, ", ");
        mytext_add(&b, u);
        mytext_add(&b, "@");
        mytext_add(&b, h);
        free(u);
        free(h);
        (*n)++;
    }
    return b.s;
}

char *myfencefile_alter_sql(const myfence_rec_t *rec, bool lock, size_t *n)
{
    char *accounts = myfencefile_accounts_sql(rec, true, n);
    if (!accounts)
        return NULL;
    char *sql = xasprintf("ALTER USER IF EXISTS %s ACCOUNT %s", accounts, lock ? "LOCK" : "UNLOCK");
    free(accounts);
    return sql;
}

char *myfencefile_users_in(const myfence_rec_t *rec, char *(*quote)(void *ctx, const char *s),
                           void *ctx)
{
    mytext_buf_t b = { 0 };
    for (size_t i = 0; i < rec->n_accounts; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(rec->accounts[k].user, rec->accounts[i].user) == 0;
        if (seen)
            continue;
        char *q = quote(ctx, rec->accounts[i].user);
        if (!q) {
            free(b.s);
            return NULL;
        }
        if (b.s)
            mytext_add(&b, ", ");
        mytext_add(&b, q);
        free(q);
    }
    return b.s;
}

void myfencefile_clear(myfence_rec_t *rec)
{
    if (!rec)
        return;
    for (size_t i = 0; i < rec->n_accounts; i++) {
        free(rec->accounts[i].user);
        free(rec->accounts[i].host);
    }
    free(rec->accounts);
    free(rec->database);
    memset(rec, 0, sizeof *rec);
}
