/*
 * keys: CURVE key pairs on disk and the allow-list of agent keys.
 *
 * A key pair NAME is two files: NAME.key (the secret key, Z85, mode 0600,
 * never group- or world-readable) and NAME.pub (the public key, Z85). Each
 * file holds comment lines starting with '#' and one 40-character Z85 line.
 * The public key is derivable from the secret one, so NAME.key alone is
 * enough for a client. An allow-list is a folder of NAME.pub files: the
 * agent's name is NAME, whatever the agent says about itself.
 *
 * Functions return 0 or a negative errno and write a reason into err.
 */
#ifndef GODWIT_KEYS_H
#define GODWIT_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEYS_Z85_LEN 40

typedef struct {
    char public_z85[KEYS_Z85_LEN + 1];
    char secret_z85[KEYS_Z85_LEN + 1];
} keys_pair_t;

typedef struct {
    char name[128];
    char public_z85[KEYS_Z85_LEN + 1];
} keys_entry_t;

typedef struct {
    keys_entry_t *entries; /* owned; sorted by public key */
    size_t count;
} keys_allowlist_t;

/* A valid key name: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool keys_name_valid(const char *name);

/* Generates a pair and writes DIR/NAME.key (0600, O_EXCL: refused if it
 * exists) and DIR/NAME.pub (0644). Creates DIR (0700) if missing. */
int keys_generate(const char *dir, const char *name, keys_pair_t *out, char *err, size_t errlen);

/* Loads a secret key file; refuses one that is group- or world-readable or
 * not a regular file, and derives the public key. */
int keys_load_secret(const char *path, keys_pair_t *out, char *err, size_t errlen);

/* Loads a public key file into out (KEYS_Z85_LEN + 1 bytes). */
int keys_load_public(const char *path, char *out, char *err, size_t errlen);

/* Loads every NAME.pub in dir. Files with other suffixes are ignored; a
 * malformed .pub file, an invalid NAME, or the same key under two names is an
 * error. The caller frees with keys_allowlist_free(). */
int keys_allowlist_load(const char *dir, keys_allowlist_t *out, char *err, size_t errlen);
/* The name for a public key in Z85, or NULL. Borrowed from the list. */
const char *keys_allowlist_find(const keys_allowlist_t *list, const char *public_z85);
void keys_allowlist_free(keys_allowlist_t *list);

#endif
