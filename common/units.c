/*
 * units: parsing and printing of bytes and durations as operators write and
 * read them, and the two clocks every process uses.
 *
 * Parsing is exact and strict: a number (optionally with a decimal fraction)
 * and a unit, nothing else. A value that does not come out as a whole number
 * of the base unit ("0.5ms", "0.1kB"), a sign, an overflow or any trailing
 * junk is refused rather than rounded or clipped, so a typo in a config file
 * is an error and never a surprising value. Printing is for humans (logs,
 * godwitctl) and truncates rather than rounds.
 *
 * Owns nothing; never allocates; no state.
 */
#include "units.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    uint64_t mult;
} s_unit_t;

static const s_unit_t s_duration_units[] = {
    { "ms", 1 },
    { "s", 1000 },
    { "m", 60 * 1000 },
    { "h", 60 * 60 * 1000 },
    { NULL, 0 },
};

/* kB/MB/GB/TB as PostgreSQL reads them: powers of 1024. */
static const s_unit_t s_byte_units[] = {
    { "B", 1 },
    { "kB", UINT64_C(1) << 10 },
    { "KB", UINT64_C(1) << 10 },
    { "MB", UINT64_C(1) << 20 },
    { "GB", UINT64_C(1) << 30 },
    { "TB", UINT64_C(1) << 40 },
    { "KiB", UINT64_C(1) << 10 },
    { "MiB", UINT64_C(1) << 20 },
    { "GiB", UINT64_C(1) << 30 },
    { "TiB", UINT64_C(1) << 40 },
    { NULL, 0 },
};

/* At most this many significant fraction digits; with every multiplier
 * below 10^9, more could never give a whole number of the base unit. */
#define S_MAX_FRAC_DIGITS 9

/*
 * Parses "NUMBER[.FRACTION][ ]UNIT" where UNIT is looked up in units; an
 * empty unit is accepted only when bare_mult is non-zero (its multiplier).
 * The result must be a whole number of the base unit and fit in int64_t.
 */
static bool s_parse_quantity(const char *s, const s_unit_t *units, uint64_t bare_mult,
                             int64_t *out)
{
    if (!s)
        return false;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false; /* no sign, no leading blank, no ".5" */

    uint64_t whole = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return false;
        whole = whole * 10 + d;
    }

    uint64_t frac = 0, frac_scale = 1;
    if (*p == '.') {
        p++;
        const char *fs = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == fs)
            return false; /* "1.s" */
        const char *fe = p;
        while (fe > fs && fe[-1] == '0')
            fe--; /* "1.50" is "1.5" */
        if (fe - fs > S_MAX_FRAC_DIGITS)
            return false;
        for (const char *q = fs; q < fe; q++) {
            frac = frac * 10 + (uint64_t)(*q - '0');
            frac_scale *= 10;
        }
    }

    const char *blank = p;
    while (*p == ' ')
        p++;

    uint64_t mult = 0;
    if (*p == '\0') {
        if (p != blank)
            return false; /* "1 ": a blank must lead to a unit */
        mult = bare_mult;
    } else {
        for (const s_unit_t *u = units; u->name; u++) {
            if (strcmp(p, u->name) == 0) {
                mult = u->mult;
                break;
            }
        }
    }
    if (mult == 0)
        return false;

    /* frac < 10^9 and mult <= 2^40, so frac * mult cannot overflow. */
    uint64_t frac_part = frac * mult;
    if (frac_part % frac_scale != 0)
        return false;
    frac_part /= frac_scale;

    if (whole > ((uint64_t)INT64_MAX - frac_part) / mult)
        return false;
    *out = (int64_t)(whole * mult + frac_part);
    return true;
}

bool units_parse_duration_ms(const char *s, int64_t *out_ms)
{
    return s_parse_quantity(s, s_duration_units, 0, out_ms);
}

bool units_parse_bytes(const char *s, int64_t *out)
{
    return s_parse_quantity(s, s_byte_units, 1, out);
}

const char *units_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    /* KiB and MiB with one decimal, larger units with two. Move up a unit
     * when rounding would print "1024.0". */
    int unit = 1;
    double v = (double)bytes / 1024.0;
    for (;;) {
        int decimals = unit <= 2 ? 1 : 2;
        double half = decimals == 1 ? 0.05 : 0.005;
        if (v + half < 1024.0 || unit == 6) {
            snprintf(buf, len, "%.*f %s", decimals, v, names[unit]);
            return buf;
        }
        v /= 1024.0;
        unit++;
    }
}

const char *units_fmt_duration_ms(uint64_t ms, char *buf, size_t len)
{
    const uint64_t sec = 1000, min = 60 * sec, hour = 60 * min, day = 24 * hour;
    if (ms < sec)
        snprintf(buf, len, "%llu ms", (unsigned long long)ms);
    else if (ms < min)
        snprintf(buf, len, "%llu.%llu s", (unsigned long long)(ms / sec),
                 (unsigned long long)(ms % sec / 100));
    else if (ms < hour)
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(ms / min),
                 (unsigned long long)(ms % min / sec));
    else if (ms < day)
        snprintf(buf, len, "%lluh%02llum", (unsigned long long)(ms / hour),
                 (unsigned long long)(ms % hour / min));
    else
        snprintf(buf, len, "%llud%02lluh", (unsigned long long)(ms / day),
                 (unsigned long long)(ms % day / hour));
    return buf;
}

static uint64_t s_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t units_now_ms(void)
{
    return s_clock_ms(CLOCK_REALTIME);
}

uint64_t units_mono_ms(void)
{
    return s_clock_ms(CLOCK_MONOTONIC);
}

uint64_t units_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
