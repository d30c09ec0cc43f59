/*
 * units: parsing and printing of the quantities operators read: bytes,
 * durations, rates. Pure functions; no allocation unless the name says so.
 */
#ifndef GODWIT_UNITS_H
#define GODWIT_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "250ms", "2s", "1.5s", "1m", "1h" -> milliseconds. A bare number is refused
 * (ambiguous). Returns false on any junk, overflow or negative value. */
bool units_parse_duration_ms(const char *s, int64_t *out_ms);
/* "512", "64kB", "10MB", "1GB", "1KiB", "1MiB", "1GiB", "1TiB" -> bytes
 * (kB/MB/GB as PostgreSQL reads them: powers of 1024). */
bool units_parse_bytes(const char *s, int64_t *out);

/* "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "4.00 GiB" into buf; returns buf. */
const char *units_fmt_bytes(uint64_t bytes, char *buf, size_t len);
/* "850 ms", "3.2 s", "4m05s", "2h03m", "3d04h" into buf; returns buf. */
const char *units_fmt_duration_ms(uint64_t ms, char *buf, size_t len);

/* Wall clock and monotonic clock in ms. */
uint64_t units_now_ms(void);
uint64_t units_mono_ms(void);
/* The monotonic clock in microseconds, for short durations. */
uint64_t units_mono_us(void);

#endif
