/*
 * promtext: a writer of Prometheus's text exposition format (version
 * 0.0.4): a family's HELP and TYPE lines, its samples with labels, and
 * histograms as _bucket{le=...}, _sum and _count. Mechanism only: which
 * families exist and what they mean is the caller's (coordinator/metrics.c).
 *
 * Label values and HELP text are escaped as the format says (a label value:
 * backslash, double quote and newline; HELP: backslash and newline), so any
 * string may be a value. Metric and label names are the caller's constants
 * and are asserted valid ([a-zA-Z_:][a-zA-Z0-9_:]*, labels without ':').
 * The format wants every sample of a family right after its header: the
 * writer asserts that a sample's name belongs to the family last begun.
 *
 * Owns its buffer (grown with xrealloc; out of memory aborts, xalloc.h).
 * Never: does I/O, keeps a clock, or writes a value it was not given.
 */
#ifndef GODWIT_PROMTEXT_H
#define GODWIT_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PROMTEXT_GAUGE = 0, PROMTEXT_COUNTER, PROMTEXT_HISTOGRAM } promtext_type_t;

/* A histogram's figures: bounds are the buckets' upper bounds (ascending,
 * finite, borrowed: a static table), counts[i] the observations in bucket
 * i alone (bounds[i-1], bounds[i]]; those above the last bound count only
 * in count. The text shows them cumulative, with le="+Inf" = count. */
#define PROMTEXT_HIST_MAX 24
typedef struct {
    const double *bounds;
    size_t n;
    uint64_t counts[PROMTEXT_HIST_MAX];
    double sum;
    uint64_t count;
} promtext_hist_t;

/* An empty histogram over bounds (n <= PROMTEXT_HIST_MAX, ascending). */
void promtext_hist_init(promtext_hist_t *h, const double *bounds, size_t n);
void promtext_hist_observe(promtext_hist_t *h, double v);

typedef struct promtext promtext_t;

promtext_t *promtext_new(void);
void promtext_destroy(promtext_t **pp);

/* Begins family name: "# HELP name help" and "# TYPE name type". */
void promtext_family(promtext_t *p, const char *name, promtext_type_t type, const char *help);

/* One sample of the family last begun (a gauge or a counter): name is the
 * family's. labels: NULL, or pairs { "key", "value", ..., NULL } (values
 * escaped here). */
void promtext_sample(promtext_t *p, const char *name, const char *const *labels, double value);

/* One histogram of the family last begun (a histogram; name is the
 * family's): its _bucket lines with labels plus le, _sum and _count. */
void promtext_histogram(promtext_t *p, const char *name, const char *const *labels,
                        const promtext_hist_t *h);

/* The text so far (NUL-terminated, borrowed: valid until the next call)
 * and its length. */
const char *promtext_text(const promtext_t *p, size_t *len);
/* Hands the text over (the caller frees it) and empties p. */
char *promtext_take(promtext_t *p, size_t *len);

/* A number as the format writes it into buf (>= 32 bytes): integers
 * exactly, others in the shortest form that reads back the same,
 * "NaN", "+Inf", "-Inf". Returns buf. */
const char *promtext_number(double v, char *buf, size_t len);

#endif
