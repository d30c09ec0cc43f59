/*
 * epochs: see epochs.h. Owns the remembered ids and results, and the claim it
 * holds.
 */
#include "epochs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

#define EPOCHS_FILE_MAX 512

typedef struct {
    char *id;        /* NULL: free slot */
    uint8_t *result; /* NULL while running */
    size_t len;
} epochs_entry_t;

struct epochs {
    char *epoch_path;
    uint8_t verify_key[CLAIM_PUBLIC_LEN];
    uint64_t highest;
    bool has_claim;
    claim_t claim;   /* of highest, verified */
    epochs_entry_t ring[EPOCHS_REMEMBER];
    size_t next; /* oldest entry is overwritten */
};

/* Parses the epoch file's text into f; false if it is not one. */
static bool s_parse(epochs_t *f, const char *text)
{
    /* Digits and a newline or the end: strtoull alone would take "-1" as
     * UINT64_MAX and fence out every coordinator for good. */
    char *end = NULL;
    errno = 0;
    unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (errno || !end || end == text || !(end[0] == '\0' || end[0] == '\n'))
        return false;
    f->highest = v;
    if (end[0] == '\0' || end[1] == '\0')
        return true; /* written before claims existed */
    const char *line = end + 1;
    size_t len = strcspn(line, "\n");
    if (line[len] == '\n' && line[len + 1] != '\0')
        return false;
    if (len < 6 || strncmp(line, "claim ", 6) != 0)
        return false;
    f->claim.epoch = v;
    if (!claim_parse(line + 6, len - 6, &f->claim))
        return false;
    f->has_claim = true;
    return true;
}

epochs_t *epochs_open(const char *state_dir, const uint8_t *verify_key, char *err, size_t errlen)
{
    int rc = fsutil_mkdirs(state_dir, 0700);
    if (rc != 0) {
        snprintf(err, errlen, "state_dir %s: %s", state_dir, strerror(-rc));
        return NULL;
    }
    epochs_t *f = xcalloc(1, sizeof *f);
    memcpy(f->verify_key, verify_key, sizeof f->verify_key);
    f->epoch_path = xasprintf("%s/epoch", state_dir);
    char *text = NULL;
    rc = fsutil_read_small(f->epoch_path, EPOCHS_FILE_MAX, &text, NULL);
    if (rc == 0) {
        if (!s_parse(f, text)) {
            snprintf(err, errlen, "%s: malformed epoch file \"%.20s\"", f->epoch_path, text);
            free(text);
            epochs_close(&f);
            return NULL;
        }
        free(text);
        if (f->has_claim && !claim_verify(&f->claim, f->verify_key)) {
            log_warn("%s: the claim of epoch %" PRIu64 " does not verify with "
                     "coordinator.signing_key (was the key replaced?): keeping the epoch, "
                     "dropping the claim",
                     f->epoch_path, f->highest);
            f->has_claim = false;
        }
    } else if (rc != -ENOENT) {
        snprintf(err, errlen, "%s: %s", f->epoch_path, rc == -EFBIG ? "too large for an epoch file"
                                                                    : strerror(-rc));
        epochs_close(&f);
        return NULL;
    }
    return f;
}

uint64_t epochs_highest(const epochs_t *f) { return f->highest; }

const claim_t *epochs_claim(const epochs_t *f) { return f->has_claim ? &f->claim : NULL; }

static epochs_entry_t *s_find(epochs_t *f, const char *id)
{
    for (size_t i = 0; i < EPOCHS_REMEMBER; i++)
        if (f->ring[i].id && strcmp(f->ring[i].id, id) == 0)
            return &f->ring[i];
    return NULL;
}

/* Persists epoch with its claim; 0 or -errno. */
static int s_persist(epochs_t *f, const claim_t *claim)
{
    char hex[CLAIM_TEXT_LEN + 1];
    claim_format(claim, hex);
    char buf[64 + CLAIM_TEXT_LEN];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\nclaim %s\n", claim->epoch, hex);
    return fsutil_write_atomic(f->epoch_path, buf, (size_t)n, 0600);
}

epochs_verdict_t epochs_admit(epochs_t *f, const char *id, uint64_t epoch, const claim_t *claim,
                            const uint8_t **result, size_t *len, char *err, size_t errlen)
{
    /* The claim first: nothing a peer says moves the fence unless the
     * coordinator's signing key vouches for it. */
    if (!claim) {
        snprintf(err, errlen, "the command carries no epoch claim");
        return EPOCHS_BAD_CLAIM;
    }
    if (claim->epoch != epoch) {
        snprintf(err, errlen, "the command's epoch %" PRIu64 " is not its claim's (%" PRIu64 ")",
                 epoch, claim->epoch);
        return EPOCHS_BAD_CLAIM;
    }
    bool known = f->has_claim && claim_equal(claim, &f->claim);
    if (!known && !claim_verify(claim, f->verify_key)) {
        snprintf(err, errlen,
                 "the claim of epoch %" PRIu64 " does not verify with coordinator.signing_key",
                 epoch);
        return EPOCHS_BAD_CLAIM;
    }
    if (epoch < f->highest) {
        snprintf(err, errlen, "epoch %" PRIu64 " is older than %" PRIu64 ", the highest seen",
                 epoch, f->highest);
        return EPOCHS_STALE;
    }
    if (epoch == f->highest && f->has_claim && !known) {
        snprintf(err, errlen,
                 "epoch %" PRIu64 " from another coordinator instance than the one this agent "
                 "follows (a twin on a copy of the journal)",
                 epoch);
        return EPOCHS_TWIN;
    }
    epochs_entry_t *e = s_find(f, id);
    if (e) {
        if (!e->result)
            return EPOCHS_IN_PROGRESS;
        *result = e->result;
        *len = e->len;
        return EPOCHS_REPLAY;
    }
    if (epoch > f->highest || !f->has_claim) {
        int rc = s_persist(f, claim);
        if (rc != 0) {
            snprintf(err, errlen, "cannot persist epoch %" PRIu64 " to %s: %s", epoch,
                     f->epoch_path, strerror(-rc));
            return EPOCHS_ERROR;
        }
        if (epoch > f->highest)
            log_info("coordinator epoch %" PRIu64 " (was %" PRIu64 ")", epoch, f->highest);
        else
            log_info("coordinator epoch %" PRIu64 ": its claim stored", epoch);
        f->highest = epoch;
        f->claim = *claim;
        f->has_claim = true;
    }
    e = &f->ring[f->next];
    f->next = (f->next + 1) % EPOCHS_REMEMBER;
    free(e->id);
    free(e->result);
    e->id = xstrdup(id);
    e->result = NULL;
    e->len = 0;
    return EPOCHS_EXECUTE;
}

void epochs_complete(epochs_t *f, const char *id, const uint8_t *result, size_t len)
{
    epochs_entry_t *e = s_find(f, id);
    if (!e || e->result)
        return;
    e->result = xmalloc(len);
    memcpy(e->result, result, len);
    e->len = len;
}

void epochs_close(epochs_t **fp)
{
    epochs_t *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    for (size_t i = 0; i < EPOCHS_REMEMBER; i++) {
        free(f->ring[i].id);
        free(f->ring[i].result);
    }
    free(f->epoch_path);
    free(f);
}
