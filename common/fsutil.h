/*
 * fsutil: small file-system mechanisms shared by agent and coordinator.
 * Durable writes are tmp + fsync + rename + fsync(dir), so a crash leaves the
 * old or the new content, never a torn file. I/O functions return 0 or a
 * negative errno.
 */
#ifndef GODWIT_FSUTIL_H
#define GODWIT_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Atomically replaces path with data (created with mode). */
int fsutil_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same replacement without its two syncs: readers see the new content
 * at once, but a crash of the machine may leave the old one, or an empty
 * file, until fsutil_sync_path(path) has returned 0. */
int fsutil_write_atomic_unsynced(const char *path, const void *data, size_t len, mode_t mode);
/* Makes path's content and its name in its directory durable (fsync of
 * both); 0 or -errno. */
int fsutil_sync_path(const char *path);
/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer
 * the caller frees. Returns 0, -ENOENT, -EFBIG or another -errno. */
int fsutil_read_small(const char *path, size_t max, char **out, size_t *lenp);
/* mkdir -p with mode for the created components; 0 or -errno. */
int fsutil_mkdirs(const char *path, mode_t mode);

#endif
