/*
 * vtresult: the VerifyTable step's result (see vtresult.h): the rows that
 * differ, the recent keys, the outcome, and the step's end with it.
 */
#include "vtresult.h"
#include "log.h"
#include "units.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define T_MAX_DIFFS 100             /* reported rows; diff_count counts all */
#define T_MAX_RECENT 1000           /* keys for the final check */
#define T_VALUE_SHOWN 200           /* bytes of a multiset row's value in a report */

/* ---- results ------------------------------------------------------------ */

void vtresult_str_set(char **field, char *taken)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = taken;
}

static const char *s_kind_name(vwindow_verdict_t v)
{
    return v == VWINDOW_MISSING ? "missing_on_target"
           : v == VWINDOW_EXTRA ? "extra_on_target"
                                : "changed";
}

/* values (n of them) taken. */
static void s_diff_add(vtstep_t *s, char **values, size_t n, vwindow_verdict_t kind)
{
    Godwit__VerifyTableResult *res = s->result;
    res->diff_count++;
    if (res->n_diffs >= T_MAX_DIFFS) {
        vtstep_strv_free(values, n);
        return;
    }
    Godwit__RowDiff *d = xmalloc(sizeof *d);
    godwit__row_diff__init(d);
    d->n_key = n;
    d->key = values;
    d->kind = xstrdup(s_kind_name(kind));
    res->diffs = xrealloc(res->diffs, (res->n_diffs + 1) * sizeof *res->diffs);
    res->diffs[res->n_diffs++] = d;
}

void vtresult_diff_key(vtstep_t *s, const char *key, vwindow_verdict_t kind)
{
    char **v = vwindow_key_decode(key, s->n_keys);
    size_t n = s->n_keys;
    if (!v) { /* ours, so it decodes; still, never lose the key */
        v = xcalloc(1, sizeof *v);
        v[0] = xstrdup(key);
        n = 1;
    }
    s_diff_add(s, v, n, kind);
}

/* A multiset row's values for a report: long values cut at a character
 * boundary and marked. */
static char *s_shown(const char *v)
{
    if (!v)
        return xstrdup("NULL");
    size_t len = strlen(v);
    if (len <= T_VALUE_SHOWN)
        return xstrdup(v);
    size_t cut = T_VALUE_SHOWN;
    while (cut > 0 && ((unsigned char)v[cut] & 0xC0) == 0x80)
        cut--;
    return xasprintf("%.*s... (%zu bytes)", (int)cut, v, len);
}

void vtresult_on_multiset_diff(vwindow_verdict_t kind, char *const *values, void *arg)
{
    vtstep_t *s = arg;
    char **shown = xcalloc(s->n_cols, sizeof *shown);
    for (size_t i = 0; i < s->n_cols; i++)
        shown[i] = s_shown(values ? values[i] : NULL);
    s_diff_add(s, shown, s->n_cols, kind);
}

void vtresult_recent_add(vtstep_t *s, const char *key, size_t prio)
{
    s->recent = vtstep_grow(s->recent, s->n_recent, &s->cap_recent, sizeof *s->recent, 256);
    s->recent[s->n_recent++] = (vtstep_recent_t){ xstrdup(key), prio };
}

static int s_recent_key_cmp(const void *a, const void *b)
{
    const vtstep_recent_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->prio < y->prio ? -1 : x->prio > y->prio);
}

static int s_recent_prio_cmp(const void *a, const void *b)
{
    const vtstep_recent_t *x = a, *y = b;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* The recent keys into the result: each once, the last batch's first. */
static void s_recent_result(vtstep_t *s)
{
    Godwit__VerifyTableResult *res = s->result;
    if (!s->n_keys) {
        res->recent_count = res->window_changes;
        return;
    }
    if (s->n_recent)
        qsort(s->recent, s->n_recent, sizeof *s->recent, s_recent_key_cmp);
    size_t n = 0;
    for (size_t i = 0; i < s->n_recent; i++) {
        if (n && strcmp(s->recent[n - 1].key, s->recent[i].key) == 0) {
            free(s->recent[i].key);
            continue;
        }
        s->recent[n++] = s->recent[i];
    }
    s->n_recent = n;
    if (n)
        qsort(s->recent, n, sizeof *s->recent, s_recent_prio_cmp);
    res->recent_count = n;
    size_t keep = n < T_MAX_RECENT ? n : T_MAX_RECENT;
    res->recent = keep ? xcalloc(keep, sizeof *res->recent) : NULL;
    for (size_t i = 0; i < keep; i++) {
        Godwit__RowKey *k = xmalloc(sizeof *k);
        godwit__row_key__init(k);
        k->key = vwindow_key_decode(s->recent[i].key, s->n_keys);
        k->n_key = k->key ? s->n_keys : 0;
        res->recent[res->n_recent++] = k;
    }
}

static void s_finish(vtstep_t *s, const char *error)
{
    ProtobufCMessage *payload = NULL;
    if (error) {
        if (s->slot_exists)
            log_warn("verify %s: the verify slot \"%s\" may be left on the source (dropped by the "
                     "next verify, cleanup or abort)", s->run.label, s->req->verify_slot);
    } else {
        Godwit__VerifyTableResult *r = s->result;
        r->seconds = (double)(units_mono_ms() - s->started_ms) / 1000.0;
        log_info("verify %s: %s (%" PRIu64 " rows on the source, %u chunks, %u re-checked, %u "
                 "batches, %" PRIu64 " changes in the windows, slot held at most %" PRIu64
                 " ms, %.2f s)",
                 s->run.label, r->outcome, r->source_rows, r->chunks, r->chunks_rechecked, r->batches,
                 r->window_changes, r->window_ms, r->seconds);
        payload = &r->base;
        s->result = NULL;
    }
    steprun_finish(&s->run, payload, error);
}

void vtresult_done_ok(vtstep_t *s)
{
    s_recent_result(s);
    vtresult_str_set(&s->result->outcome, xstrdup(s->result->diff_count ? "different" : "equal"));
    s_finish(s, NULL);
}
