/*
 * keys: see keys.h. Owns nothing beyond the allow-list arrays it returns.
 * Never logs secret key material.
 */
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "fsutil.h"
#include "xalloc.h"

#define KEYS_MAX_FILE 4096

bool keys_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Extracts the one Z85 key line from file text; false if none or junk. */
static bool s_parse_key_text(const char *text, char out[KEYS_Z85_LEN + 1])
{
    bool found = false;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        if (len > 0 && s[0] != '#') {
            if (found || len != KEYS_Z85_LEN)
                return false;
            memcpy(out, s, KEYS_Z85_LEN);
            out[KEYS_Z85_LEN] = '\0';
            uint8_t bin[32];
            if (!zmq_z85_decode(bin, out))
                return false;
            found = true;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    return found;
}

static int s_write_new(const char *path, const char *text, mode_t mode, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path,
                 e == EEXIST ? "already exists, refusing to overwrite a key" : strerror(e));
        return -e;
    }
    size_t len = strlen(text);
    int rc = 0;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = -errno;
    if (fchmod(fd, mode) != 0 && rc == 0)
        rc = -errno;
    close(fd);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

int keys_generate(const char *dir, const char *name, keys_pair_t *out, char *err, size_t errlen)
{
    if (!keys_name_valid(name)) {
        snprintf(err, errlen, "invalid key name \"%s\": use 1-64 of A-Z a-z 0-9 . _ -", name);
        return -EINVAL;
    }
    int rc = fsutil_mkdirs(dir, 0700);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
        return rc;
    }
    char *secret_path = xasprintf("%s/%s.key", dir, name);
    char *public_path = xasprintf("%s/%s.pub", dir, name);
    char *secret_text = NULL, *public_text = NULL;
    struct stat st;
    if (stat(public_path, &st) == 0) {
        snprintf(err, errlen, "%s: already exists, refusing to overwrite a key", public_path);
        rc = -EEXIST;
        goto out;
    }
    if (zmq_curve_keypair(out->public_z85, out->secret_z85) != 0) {
        snprintf(err, errlen, "zmq_curve_keypair: %s (libzmq built without CURVE?)",
                 zmq_strerror(zmq_errno()));
        rc = -ENOTSUP;
        goto out;
    }
    secret_text = xasprintf("# godwit CURVE secret key \"%s\": keep it mode 0600, never share it\n%s\n",
                            name, out->secret_z85);
    public_text = xasprintf("# godwit CURVE public key \"%s\"\n%s\n", name, out->public_z85);
    rc = s_write_new(secret_path, secret_text, 0600, err, errlen);
    if (rc == 0) {
        rc = s_write_new(public_path, public_text, 0644, err, errlen);
        if (rc != 0)
            unlink(secret_path);
    }
out:
    if (secret_text)
        sodium_memzero(secret_text, strlen(secret_text));
    free(secret_text);
    free(public_text);
    free(secret_path);
    free(public_path);
    return rc;
}

int keys_load_secret(const char *path, keys_pair_t *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "secret key %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "secret key %s: not a regular file", path);
        return -EINVAL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        snprintf(err, errlen, "secret key %s: mode %04o lets group or others read it; chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    close(fd);
    char *text = NULL;
    int rc = fsutil_read_small(path, KEYS_MAX_FILE, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "secret key %s: %s", path, strerror(-rc));
        return rc;
    }
    bool ok = s_parse_key_text(text, out->secret_z85);
    sodium_memzero(text, strlen(text));
    free(text);
    if (!ok) {
        snprintf(err, errlen, "secret key %s: expected one 40-character Z85 key line", path);
        return -EINVAL;
    }
    if (zmq_curve_public(out->public_z85, out->secret_z85) != 0) {
        snprintf(err, errlen, "secret key %s: cannot derive public key: %s", path,
                 zmq_strerror(zmq_errno()));
        return -EINVAL;
    }
    return 0;
}

int keys_load_public(const char *path, char *out, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = fsutil_read_small(path, KEYS_MAX_FILE, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "public key %s: %s", path, strerror(-rc));
        return rc;
    }
    bool ok = s_parse_key_text(text, out);
    free(text);
    if (!ok) {
        snprintf(err, errlen, "public key %s: expected one 40-character Z85 key line", path);
        return -EINVAL;
    }
    return 0;
}

static int s_cmp_entry(const void *a, const void *b)
{
    return strcmp(((const keys_entry_t *)a)->public_z85, ((const keys_entry_t *)b)->public_z85);
}

int keys_allowlist_load(const char *dir, keys_allowlist_t *out, char *err, size_t errlen)
{
    out->entries = NULL;
    out->count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        snprintf(err, errlen, "allowed keys folder %s: %s", dir, strerror(e));
        return -e;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n <= 4 || strcmp(de->d_name + n - 4, ".pub") != 0)
            continue;
        char name[128];
        if (n - 4 >= sizeof name) {
            snprintf(err, errlen, "%s/%s: key name too long", dir, de->d_name);
            rc = -EINVAL;
            break;
        }
        memcpy(name, de->d_name, n - 4);
        name[n - 4] = '\0';
        if (!keys_name_valid(name)) {
            snprintf(err, errlen, "%s/%s: invalid agent name \"%s\"", dir, de->d_name, name);
            rc = -EINVAL;
            break;
        }
        if (out->count == cap) {
            cap = cap ? cap * 2 : 16;
            out->entries = xrealloc(out->entries, cap * sizeof *out->entries);
        }
        keys_entry_t *e = &out->entries[out->count];
        snprintf(e->name, sizeof e->name, "%s", name);
        char *path = xasprintf("%s/%s", dir, de->d_name);
        rc = keys_load_public(path, e->public_z85, err, errlen);
        free(path);
        if (rc != 0)
            break;
        out->count++;
    }
    closedir(d);
    if (rc == 0 && out->count > 1) {
        qsort(out->entries, out->count, sizeof *out->entries, s_cmp_entry);
        for (size_t i = 1; i < out->count; i++) {
            if (strcmp(out->entries[i - 1].public_z85, out->entries[i].public_z85) == 0) {
                snprintf(err, errlen, "%s: the same public key is allowed as \"%s\" and \"%s\"",
                         dir, out->entries[i - 1].name, out->entries[i].name);
                rc = -EINVAL;
                break;
            }
        }
    }
    if (rc != 0)
        keys_allowlist_free(out);
    return rc;
}

const char *keys_allowlist_find(const keys_allowlist_t *list, const char *public_z85)
{
    if (list->count == 0)
        return NULL; /* bsearch on a NULL array is undefined */
    keys_entry_t key;
    snprintf(key.public_z85, sizeof key.public_z85, "%s", public_z85);
    const keys_entry_t *e =
        bsearch(&key, list->entries, list->count, sizeof *list->entries, s_cmp_entry);
    return e ? e->name : NULL;
}

void keys_allowlist_free(keys_allowlist_t *list)
{
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
}
