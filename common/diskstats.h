/*
 * diskstats: the block device under a path and its I/O rates, from
 * /proc/self/mountinfo, /proc/diskstats and statvfs(3).
 *
 * Parsing is split from reading so it can be tested on fixed text.
 * Rates need two samples; the first sample has no rates.
 */
#ifndef GODWIT_DISKSTATS_H
#define GODWIT_DISKSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned major, minor;
    char name[64];
    uint64_t reads_completed, sectors_read;
    uint64_t writes_completed, sectors_written;
    uint64_t io_ticks_ms; /* field 10: time spent doing I/O */
} diskstats_dev_t;

typedef struct {
    double read_bytes_per_sec, write_bytes_per_sec;
    double read_iops, write_iops;
    double util_percent; /* 0..100, clamped */
} diskstats_rates_t;

typedef struct {
    uint64_t size_bytes, free_bytes, free_inodes;
} diskstats_fs_t;

/* Finds the line for major:minor in /proc/diskstats text. Returns false if
 * absent or the line is malformed. */
bool diskstats_parse(const char *text, unsigned major, unsigned minor, diskstats_dev_t *out);

/* Rates between two samples of the same device taken elapsed_ms apart
 * (sectors are 512 bytes). A counter that went backwards gives 0. */
void diskstats_rates(const diskstats_dev_t *before, const diskstats_dev_t *after,
                     uint64_t elapsed_ms, diskstats_rates_t *out);

/* From mountinfo text, the major:minor of the mount that holds path (longest
 * mount-point prefix; used when stat's st_dev is an anonymous device such as
 * on btrfs or overlay, by resolving the mount source /dev/... node).
 * Returns false if none. */
bool diskstats_mountinfo_device(const char *mountinfo, const char *path, unsigned *major,
                                unsigned *minor);

/* The device under path: stat(2), falling back to mountinfo. 0 or -errno;
 * -ENODEV if the filesystem has no block device (tmpfs). */
int diskstats_device_for_path(const char *path, unsigned *major, unsigned *minor);

/* Reads /proc/diskstats for the device. 0 or -errno (-ENODEV if absent). */
int diskstats_read(unsigned major, unsigned minor, diskstats_dev_t *out);

/* statvfs of path. 0 or -errno. */
int diskstats_fs(const char *path, diskstats_fs_t *out);

#endif
