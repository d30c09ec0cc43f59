/*
 * log: leveled logging to stderr for every godwit process.
 *
 * The level is checked before any formatting. Each line carries a UTC
 * timestamp, the level and the process's tag. Lines about an object name it
 * (agent, migration, table) in the message itself. Logging never allocates and
 * never fails the caller. The level and tag live in one small struct owned by
 * the process (set once at start), not scattered globals.
 */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Sets the process tag ("agent", "coordinator") and minimum level. */
void log_init(const char *tag, log_level_t level);
void log_set_level(log_level_t level);
bool log_enabled(log_level_t level);
/* Parses "debug|info|warn|error"; returns false if unknown. */
bool log_level_parse(const char *s, log_level_t *out);

void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO))  log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_enabled(LOG_WARN))  log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
