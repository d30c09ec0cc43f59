/*
 * log: see log.h. The one piece of process-wide state in godwit: the log
 * level and tag, written once at start-up by main() and read everywhere.
 * Every message is escaped here (common/escape.h), once for all callers, so
 * text from elsewhere (an agent's event, a server's error) can neither end
 * the line, forge the next one, nor reach the terminal as a control
 * sequence.
 */
#include "log.h"
#include "escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static struct {
    log_level_t level;
    char tag[32];
} s_log = { LOG_INFO, "godwit" };

static const char *const s_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *tag, log_level_t level)
{
    snprintf(s_log.tag, sizeof s_log.tag, "%s", tag);
    s_log.level = level;
}

void log_set_level(log_level_t level) { s_log.level = level; }

bool log_enabled(log_level_t level) { return level >= s_log.level; }

bool log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, s_names[i]) == 0) {
            *out = (log_level_t)i;
            return true;
        }
    }
    return false;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    char msg[2048], line[sizeof msg * 2 + 128];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), s_log.tag, s_names[level]);
    if (n > 0 && (size_t)n < sizeof line)
        escape_text(msg, strlen(msg), line + n, sizeof line - (size_t)n);
    fprintf(stderr, "%s\n", line);
}
