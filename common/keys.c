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

static const char *const s_role_names[] = { "source", "target", "proxy" };

unsigned keys_role_bit(const char *name)
{
    for (unsigned i = 0; i < 3; i++)
        if (strcmp(name, s_role_names[i]) == 0)
            return 1u << i;
    return 0;
}

int keys_roles_parse(const char *text, unsigned *out, char *err, size_t errlen)
{
    unsigned roles = 0;
    const char *p = text;
    for (;;) {
        p += strspn(p, " \t,");
        if (!*p)
            break;
        size_t n = strcspn(p, " \t,");
        char word[16];
        unsigned bit = 0;
        if (n < sizeof word) {
            memcpy(word, p, n);
            word[n] = '\0';
            bit = keys_role_bit(word);
        }
        if (!bit) {
            snprintf(err, errlen, "unknown role \"%.*s\" (known: source, target, proxy)",
                     (int)(n > 32 ? 32 : n), p);
            return -EINVAL;
        }
        roles |= bit;
        p += n;
    }
    if (!roles) {
        snprintf(err, errlen, "no role given (source, target, proxy)");
        return -EINVAL;
    }
    *out = roles;
    return 0;
}

const char *keys_roles_format(unsigned roles, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < 3; i++) {
        if (!(roles & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", s_role_names[i]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}

/* What a key file holds: the one Z85 key line and, in an agent's .pub, its
 * roles line. */
typedef struct {
    char key[KEYS_Z85_LEN + 1];
    unsigned roles; /* 0: no roles line */
} s_keyfile_t;

/* Parses key file text: comment and blank lines, one Z85 key line and,
 * when roles_allowed, at most one "roles:" line. On error writes
 * "LINE: reason" into why (never key material) and returns false. */
static bool s_parse_key_text(const char *text, bool roles_allowed, s_keyfile_t *out, char *why,
                             size_t whylen)
{
    bool found = false;
    const char *p = text;
    int line = 0;
    out->roles = 0;
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        if (len > 6 && roles_allowed && strncmp(s, "roles:", 6) == 0) {
            char list[256], reason[128];
            if (out->roles) {
                snprintf(why, whylen, "%d: roles: a second roles line", line);
                return false;
            }
            snprintf(list, sizeof list, "%.*s", (int)(len - 6), s + 6);
            if (keys_roles_parse(list, &out->roles, reason, sizeof reason) != 0) {
                snprintf(why, whylen, "%d: roles: %.96s", line, reason);
                return false;
            }
        } else if (len > 0 && s[0] != '#') {
            if (found || len != KEYS_Z85_LEN) {
                snprintf(why, whylen, "%d: expected one 40-character Z85 key line", line);
                return false;
            }
            memcpy(out->key, s, KEYS_Z85_LEN);
            out->key[KEYS_Z85_LEN] = '\0';
            uint8_t bin[32];
            if (!zmq_z85_decode(bin, out->key)) {
                snprintf(why, whylen, "%d: expected one 40-character Z85 key line", line);
                return false;
            }
            found = true;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    if (!found)
        snprintf(why, whylen, "expected one 40-character Z85 key line");
    return found;
}

/* Opens a secret file (keys.h: keys_read_secret) and checks it before
 * reading a byte: a regular file (no symlink), not group- or
 * world-accessible, owned by the user that runs us. Reads it whole (at most
 * KEYS_MAX_FILE bytes) from the checked descriptor into *text
 * (NUL-terminated, caller wipes and frees). */
int keys_read_secret(const char *what, const char *path, char **text, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
        return -EINVAL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        snprintf(err, errlen, "%s %s: mode %04o lets group or others read it; chmod 600 %s", what,
                 path, (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        snprintf(err, errlen,
                 "%s %s: owned by uid %u, not by uid %u that runs godwit: someone else controls "
                 "it; chown it to the service user",
                 what, path, (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_size > KEYS_MAX_FILE) {
        close(fd);
        snprintf(err, errlen, "%s %s: larger than %d bytes, not a secret file", what, path,
                 KEYS_MAX_FILE);
        return -EFBIG;
    }
    char *buf = xmalloc(KEYS_MAX_FILE + 1);
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, KEYS_MAX_FILE - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            sodium_memzero(buf, KEYS_MAX_FILE + 1);
            free(buf);
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
            return -e;
        }
        if (n == 0 || used + (size_t)n == KEYS_MAX_FILE) {
            used += (size_t)n;
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    if (strlen(buf) != used) {
        sodium_memzero(buf, KEYS_MAX_FILE + 1);
        free(buf);
        snprintf(err, errlen, "%s %s: holds a NUL byte, not a secret file", what, path);
        return -EINVAL;
    }
    *text = buf;
    return 0;
}

void keys_wipe_free(char *text)
{
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
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

int keys_generate(const char *dir, const char *name, unsigned roles, keys_pair_t *out, char *err,
                  size_t errlen)
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
    if (roles) {
        char list[64];
        public_text = xasprintf("# godwit CURVE public key \"%s\"\n%s\n"
                                "# the roles an agent with this key may take (source, target, proxy)\n"
                                "roles: %s\n",
                                name, out->public_z85, keys_roles_format(roles, list, sizeof list));
    } else {
        public_text = xasprintf("# godwit CURVE public key \"%s\"\n%s\n", name, out->public_z85);
    }
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
    char *text = NULL;
    int rc = keys_read_secret("secret key", path, &text, err, errlen);
    if (rc != 0)
        return rc;
    s_keyfile_t kf;
    char why[128];
    bool ok = s_parse_key_text(text, false, &kf, why, sizeof why);
    keys_wipe_free(text);
    if (!ok) {
        sodium_memzero(&kf, sizeof kf);
        snprintf(err, errlen, "secret key %s:%s%s", path, why[0] >= '0' && why[0] <= '9' ? "" : " ",
                 why);
        return -EINVAL;
    }
    memcpy(out->secret_z85, kf.key, sizeof out->secret_z85);
    sodium_memzero(&kf, sizeof kf);
    if (zmq_curve_public(out->public_z85, out->secret_z85) != 0) {
        snprintf(err, errlen, "secret key %s: cannot derive public key: %s", path,
                 zmq_strerror(zmq_errno()));
        return -EINVAL;
    }
    return 0;
}

/* Loads a .pub file; roles (may be NULL) gets its roles line, 0 if none. */
static int s_load_public(const char *path, char *out, unsigned *roles, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = fsutil_read_small(path, KEYS_MAX_FILE, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "public key %s: %s", path, strerror(-rc));
        return rc;
    }
    s_keyfile_t kf;
    char why[128];
    bool ok = s_parse_key_text(text, true, &kf, why, sizeof why);
    free(text);
    if (!ok) {
        snprintf(err, errlen, "public key %s:%s%s", path, why[0] >= '0' && why[0] <= '9' ? "" : " ",
                 why);
        return -EINVAL;
    }
    memcpy(out, kf.key, KEYS_Z85_LEN + 1);
    if (roles)
        *roles = kf.roles;
    return 0;
}

int keys_load_public(const char *path, char *out, char *err, size_t errlen)
{
    return s_load_public(path, out, NULL, err, errlen);
}

/* ---- the signing pair ---- */

#define SIGN_SEED_TAG "ed25519-seed:"
#define SIGN_PUBLIC_TAG "ed25519:"

int keys_sign_generate(const char *dir, const char *name, unsigned char pk[KEYS_SIGN_PUBLIC_LEN],
                       char *err, size_t errlen)
{
    if (!keys_name_valid(name)) {
        snprintf(err, errlen, "invalid key name \"%s\": use 1-64 of A-Z a-z 0-9 . _ -", name);
        return -EINVAL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return -ENOTSUP;
    }
    int rc = fsutil_mkdirs(dir, 0700);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
        return rc;
    }
    char *secret_path = xasprintf("%s/%s.sign.key", dir, name);
    char *public_path = xasprintf("%s/%s.sign.pub", dir, name);
    unsigned char seed[crypto_sign_SEEDBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char seed_hex[2 * crypto_sign_SEEDBYTES + 1], pk_hex[2 * KEYS_SIGN_PUBLIC_LEN + 1];
    char *secret_text = NULL, *public_text = NULL;
    struct stat st;
    if (stat(public_path, &st) == 0) {
        snprintf(err, errlen, "%s: already exists, refusing to overwrite a key", public_path);
        rc = -EEXIST;
        goto out;
    }
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_bin2hex(seed_hex, sizeof seed_hex, seed, sizeof seed);
    sodium_bin2hex(pk_hex, sizeof pk_hex, pk, KEYS_SIGN_PUBLIC_LEN);
    secret_text = xasprintf("# godwit Ed25519 signing secret key \"%s\": the coordinator signs its "
                            "epoch claims with it;\n# keep it mode 0600, never share it\n"
                            SIGN_SEED_TAG " %s\n",
                            name, seed_hex);
    public_text = xasprintf("# godwit Ed25519 signing public key \"%s\": copy it to every agent "
                            "host\n" SIGN_PUBLIC_TAG " %s\n",
                            name, pk_hex);
    rc = s_write_new(secret_path, secret_text, 0600, err, errlen);
    if (rc == 0) {
        rc = s_write_new(public_path, public_text, 0644, err, errlen);
        if (rc != 0)
            unlink(secret_path);
    }
out:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(seed_hex, sizeof seed_hex);
    keys_wipe_free(secret_text);
    free(public_text);
    free(secret_path);
    free(public_path);
    return rc;
}

/* The one "TAG HEX" line of a signing key file (comments and blank lines
 * aside) decoded into out (outlen bytes); false if there is not exactly
 * one, or it is not that many bytes of hex. */
static bool s_parse_sign_text(const char *text, const char *tag, unsigned char *out, size_t outlen)
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
        size_t tl = strlen(tag);
        if (len > 0 && s[0] != '#') {
            if (found || len <= tl || strncmp(s, tag, tl) != 0)
                return false;
            const char *hex = s + tl;
            size_t hl = len - tl;
            while (hl > 0 && (*hex == ' ' || *hex == '\t')) {
                hex++;
                hl--;
            }
            size_t got = 0;
            if (hl != 2 * outlen || sodium_hex2bin(out, outlen, hex, hl, NULL, &got, NULL) != 0 ||
                got != outlen)
                return false;
            found = true;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    return found;
}

int keys_load_sign_secret(const char *path, unsigned char sk[KEYS_SIGN_SECRET_LEN],
                          unsigned char pk[KEYS_SIGN_PUBLIC_LEN], char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return -ENOTSUP;
    }
    char *text = NULL;
    int rc = keys_read_secret("signing key", path, &text, err, errlen);
    if (rc != 0)
        return rc;
    unsigned char seed[crypto_sign_SEEDBYTES];
    bool ok = s_parse_sign_text(text, SIGN_SEED_TAG, seed, sizeof seed);
    keys_wipe_free(text);
    if (!ok) {
        snprintf(err, errlen, "signing key %s: expected one line \"" SIGN_SEED_TAG " HEX\" (64 hex "
                 "digits); godwitctl keygen NAME --signing writes one", path);
        sodium_memzero(seed, sizeof seed);
        return -EINVAL;
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
    return 0;
}

int keys_load_sign_public(const char *path, unsigned char pk[KEYS_SIGN_PUBLIC_LEN], char *err,
                          size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return -ENOTSUP;
    }
    char *text = NULL;
    int rc = fsutil_read_small(path, KEYS_MAX_FILE, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "signing public key %s: %s", path, strerror(-rc));
        return rc;
    }
    bool ok = s_parse_sign_text(text, SIGN_PUBLIC_TAG, pk, KEYS_SIGN_PUBLIC_LEN);
    free(text);
    if (!ok) {
        snprintf(err, errlen, "signing public key %s: expected one line \"" SIGN_PUBLIC_TAG " HEX\" "
                 "(64 hex digits), as godwitctl keygen NAME --signing writes NAME.sign.pub", path);
        return -EINVAL;
    }
    return 0;
}

/* ---- the allow-list ---- */

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
        rc = s_load_public(path, e->public_z85, &e->roles, err, errlen);
        if (rc == 0 && !e->roles) {
            snprintf(err, errlen,
                     "allowed key %s: roles: missing: add a line \"roles: source\" (any of source, "
                     "target, proxy) naming the roles agent \"%s\" may take",
                     path, name);
            rc = -EINVAL;
        }
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

const keys_entry_t *keys_allowlist_entry(const keys_allowlist_t *list, const char *public_z85)
{
    if (list->count == 0)
        return NULL; /* bsearch on a NULL array is undefined */
    keys_entry_t key;
    snprintf(key.public_z85, sizeof key.public_z85, "%s", public_z85);
    return bsearch(&key, list->entries, list->count, sizeof *list->entries, s_cmp_entry);
}

const char *keys_allowlist_find(const keys_allowlist_t *list, const char *public_z85)
{
    const keys_entry_t *e = keys_allowlist_entry(list, public_z85);
    return e ? e->name : NULL;
}

void keys_allowlist_free(keys_allowlist_t *list)
{
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
}
