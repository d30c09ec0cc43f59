/*
 * keys: CURVE key pairs on disk, the allow-list of agent keys with the roles
 * each key may take, the coordinator's Ed25519 signing pair, and the checks
 * every secret file passes before it is read (keys_read_secret).
 *
 * A key pair NAME is two files: NAME.key (the secret key, Z85, mode 0600,
 * never group- or world-readable, owned by the user that runs godwit) and
 * NAME.pub (the public key, Z85). Each file holds comment lines starting with
 * '#' and one 40-character Z85 line; an agent's NAME.pub also holds one
 * "roles:" line (source, target, proxy), the roles its key may take. The
 * public key is derivable from the secret one, so NAME.key alone is enough
 * for a client. An allow-list is a folder of NAME.pub files: the agent's name
 * is NAME and its roles are its file's, whatever the agent says about itself.
 * An allow-listed key without a roles line is an error: no key gets every
 * role by default.
 *
 * The signing pair (coordinator only) is NAME.sign.key ("ed25519-seed: HEX",
 * the same file checks as a CURVE secret key) and NAME.sign.pub ("ed25519:
 * HEX"); common/claim.h says what it signs.
 *
 * Functions return 0 or a negative errno and write a reason into err.
 */
#ifndef GODWIT_KEYS_H
#define GODWIT_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEYS_Z85_LEN 40
#define KEYS_SIGN_PUBLIC_LEN 32 /* crypto_sign_PUBLICKEYBYTES */
#define KEYS_SIGN_SECRET_LEN 64 /* crypto_sign_SECRETKEYBYTES */

/* The roles a key may take, as bits. */
#define KEYS_ROLE_SOURCE 1u
#define KEYS_ROLE_TARGET 2u
#define KEYS_ROLE_PROXY 4u
#define KEYS_ROLE_ALL 7u

typedef struct {
    char public_z85[KEYS_Z85_LEN + 1];
    char secret_z85[KEYS_Z85_LEN + 1];
} keys_pair_t;

typedef struct {
    char name[128];
    char public_z85[KEYS_Z85_LEN + 1];
    unsigned roles;        /* KEYS_ROLE_* bits from its roles line; never 0 */
} keys_entry_t;

typedef struct {
    keys_entry_t *entries; /* owned; sorted by public key */
    size_t count;
} keys_allowlist_t;

/* A valid key name: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool keys_name_valid(const char *name);

/* The bit of one role name ("source", "target", "proxy"), 0 if unknown. */
unsigned keys_role_bit(const char *name);
/* Parses a roles list ("source, target", commas or blanks between names)
 * into bits; -EINVAL naming the word it does not know, or an empty list. */
int keys_roles_parse(const char *text, unsigned *out, char *err, size_t errlen);
/* The roles as "source, target" into buf; returns buf. */
const char *keys_roles_format(unsigned roles, char *buf, size_t len);

/* Generates a pair and writes DIR/NAME.key (0600, O_EXCL: refused if it
 * exists) and DIR/NAME.pub (0644), with a roles line when roles is not 0.
 * Creates DIR (0700) if missing. */
int keys_generate(const char *dir, const char *name, unsigned roles, keys_pair_t *out, char *err,
                  size_t errlen);

/* Reads a small secret file whole (at most 4 KiB: a key, a password) into
 * *text (NUL-terminated; the caller frees it with keys_wipe_free), after
 * checking it as every secret file is checked: a regular file (no
 * symlink), not group- or world-accessible, owned by the user that runs
 * godwit. what names it in err ("secret key", "mariadb.password_file"). */
int keys_read_secret(const char *what, const char *path, char **text, char *err, size_t errlen);
/* Zeroes text and frees it (NULL is fine). */
void keys_wipe_free(char *text);

/* Loads a secret key file; refuses one that is group- or world-readable,
 * owned by another user than the one running, or not a regular file, and
 * derives the public key. */
int keys_load_secret(const char *path, keys_pair_t *out, char *err, size_t errlen);

/* Loads a public key file into out (KEYS_Z85_LEN + 1 bytes); a roles line is
 * allowed and ignored. */
int keys_load_public(const char *path, char *out, char *err, size_t errlen);

/* Generates a signing pair and writes DIR/NAME.sign.key (0600, refused if it
 * exists) and DIR/NAME.sign.pub (0644). Creates DIR (0700) if missing. */
int keys_sign_generate(const char *dir, const char *name, unsigned char pk[KEYS_SIGN_PUBLIC_LEN],
                       char *err, size_t errlen);
/* Loads a signing secret key file with keys_load_secret's checks; fills sk
 * and its public half pk. */
int keys_load_sign_secret(const char *path, unsigned char sk[KEYS_SIGN_SECRET_LEN],
                          unsigned char pk[KEYS_SIGN_PUBLIC_LEN], char *err, size_t errlen);
/* Loads a signing public key file. */
int keys_load_sign_public(const char *path, unsigned char pk[KEYS_SIGN_PUBLIC_LEN], char *err,
                          size_t errlen);

/* Loads every NAME.pub in dir. Files with other suffixes are ignored; a
 * malformed .pub file, one without a roles line, an invalid NAME, or the
 * same key under two names is an error, naming the file (and line). The
 * caller frees with keys_allowlist_free(). */
int keys_allowlist_load(const char *dir, keys_allowlist_t *out, char *err, size_t errlen);
/* The entry for a public key in Z85, or NULL. Borrowed from the list. */
const keys_entry_t *keys_allowlist_entry(const keys_allowlist_t *list, const char *public_z85);
/* The name for a public key in Z85, or NULL. Borrowed from the list. */
const char *keys_allowlist_find(const keys_allowlist_t *list, const char *public_z85);
void keys_allowlist_free(keys_allowlist_t *list);

#endif
