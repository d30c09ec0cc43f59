/*
 * log: leveled logging to stderr for every godwit process.
 *
 * The level is checked before any formatting. Each line carries a UTC
 * timestamp, the level and the process's tag. Lines about an object name it
 * (agent, migration, table) in the message itself. Logging never allocates and
 * never fails the caller. The level and tag live in one small struct owned by
 * the process (set once at start), not scattered globals.
 *
 * Two formats (the configs' log_format): "text", one line per message on
 * stderr; "journal", one entry per message sent to systemd's journal with
 * structured fields next to the same text: PRIORITY, SYSLOG_IDENTIFIER,
 * GODWIT_LEVEL, and for lines about a migration, an agent or a step
 * GODWIT_MIGRATION, GODWIT_AGENT, GODWIT_STEP (log_*_about). An entry the
 * journal does not take is written to stderr as text instead: never lost.
 */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum { LOG_TEXT = 0, LOG_JOURNAL } log_format_t;

/* What a line is about, for the journal's fields; a NULL member is left
 * out. Passed by value; its strings are borrowed for the call only. */
typedef struct {
    const char *migration;
    const char *agent;
    const char *step;
} log_about_t;

/* Sets the process tag ("agent", "coordinator") and minimum level. */
void log_init(const char *tag, log_level_t level);
void log_set_level(log_level_t level);
bool log_enabled(log_level_t level);
/* Parses "debug|info|warn|error"; returns false if unknown. */
bool log_level_parse(const char *s, log_level_t *out);
/* A line about the migration named m. */
static inline log_about_t log_about_migration(const char *m)
{
    return (log_about_t){ .migration = m, .agent = NULL, .step = NULL };
}

/* A line about the agent named a. */
static inline log_about_t log_about_agent(const char *a)
{
    return (log_about_t){ .migration = NULL, .agent = a, .step = NULL };
}

/* The format; self: this process's agent name (every entry's GODWIT_AGENT
 * unless the line names another), or NULL. Copied. */
void log_set_format(log_format_t format, const char *self);

void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_write with the fields of about. */
void log_write_about(log_level_t level, log_about_t about, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO))  log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_enabled(LOG_WARN))  log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* The same, about a migration, an agent or a step: log_info_about(about, fmt, ...). */
#define log_info_about(about, ...) \
    do { if (log_enabled(LOG_INFO)) log_write_about(LOG_INFO, about, __VA_ARGS__); } while (0)
#define log_warn_about(about, ...) \
    do { if (log_enabled(LOG_WARN)) log_write_about(LOG_WARN, about, __VA_ARGS__); } while (0)
#define log_error_about(about, ...) log_write_about(LOG_ERROR, about, __VA_ARGS__)

#endif
