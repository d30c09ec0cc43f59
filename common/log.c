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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

/* Where libsystemd sends journal entries (sd_journal_sendv). */
#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

static struct {
    log_level_t level;
    log_format_t format;
    char tag[32];
    char self[128]; /* the agent's own name, or "" */
} s_log = { LOG_INFO, LOG_TEXT, "godwit", "" };

static const char *const s_names[] = { "debug", "info", "warn", "error" };
/* syslog(3) priorities of the levels, as the journal's PRIORITY */
static const char *const s_priorities[] = { "7", "6", "4", "3" };

void log_init(const char *tag, log_level_t level)
{
    snprintf(s_log.tag, sizeof s_log.tag, "%s", tag);
    s_log.level = level;
}

void log_set_level(log_level_t level) { s_log.level = level; }

void log_set_format(log_format_t format, const char *self)
{
    s_log.format = format;
    snprintf(s_log.self, sizeof s_log.self, "%s", self ? self : "");
}

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

/* One journal field "NAME=value" into buf (value escaped as the text
 * line is); false if it does not fit. */
static bool s_field(char *buf, size_t len, const char *name, const char *value, struct iovec *iov)
{
    int n = snprintf(buf, len, "%s=", name);
    if (n < 0 || (size_t)n >= len)
        return false;
    escape_text(value, strlen(value), buf + n, len - (size_t)n);
    iov->iov_base = buf;
    iov->iov_len = strlen(buf);
    return true;
}

/* The entry for the journal; false if the journal did not take it.
 * libsystemd drops an entry silently when the journal's socket does not
 * exist (journald not running): that is looked at first. */
static bool s_journal(log_level_t level, const log_about_t *about, const char *msg)
{
    if (access(LOG_JOURNAL_SOCKET, F_OK) != 0)
        return false;
    char message[sizeof "MESSAGE=" + 2048 * 2], ident[64], fields[3][300];
    char priority[16], lvl[32];
    struct iovec iov[8];
    int n = 0;
    if (!s_field(message, sizeof message, "MESSAGE", msg, &iov[n++]))
        return false;
    snprintf(priority, sizeof priority, "PRIORITY=%s", s_priorities[level]);
    iov[n++] = (struct iovec){ priority, strlen(priority) };
    snprintf(lvl, sizeof lvl, "GODWIT_LEVEL=%s", s_names[level]);
    iov[n++] = (struct iovec){ lvl, strlen(lvl) };
    snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=godwit-%s", s_log.tag);
    iov[n++] = (struct iovec){ ident, strlen(ident) };
    const char *agent = about && about->agent ? about->agent : s_log.self[0] ? s_log.self : NULL;
    const char *names[3] = { "GODWIT_MIGRATION", "GODWIT_AGENT", "GODWIT_STEP" };
    const char *values[3] = { about ? about->migration : NULL, agent, about ? about->step : NULL };
    for (int i = 0; i < 3; i++)
        if (values[i] && values[i][0] &&
            s_field(fields[i], sizeof fields[i], names[i], values[i], &iov[n]))
            n++;
    return sd_journal_sendv(iov, n) >= 0;
}

static void s_write(log_level_t level, const log_about_t *about, const char *fmt, va_list ap)
{
    char msg[2048], line[sizeof msg * 2 + 128];
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    if (m < 0)
        msg[0] = '\0';
    if (s_log.format == LOG_JOURNAL && s_journal(level, about, msg))
        return;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), s_log.tag, s_names[level]);
    if (n > 0 && (size_t)n < sizeof line)
        escape_text(msg, strlen(msg), line + n, sizeof line - (size_t)n);
    fprintf(stderr, "%s\n", line);
}

void log_write(log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_write(level, NULL, fmt, ap);
    va_end(ap);
}

void log_write_about(log_level_t level, log_about_t about, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_write(level, &about, fmt, ap);
    va_end(ap);
}
