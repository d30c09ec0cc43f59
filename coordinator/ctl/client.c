/*
 * client: see client.h. One connection per request: connect, write the
 * request as one line, read until the answer's newline or EOF, close.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "xalloc.h"

/* Sends request, returns the parsed response (caller deletes) or NULL with
 * err filled. */
static cJSON *s_call(const char *path, const cJSON *request, int timeout_s, char *err, size_t errlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    struct timeval tv = { .tv_sec = timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%s: path too long", path);
        close(fd);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot reach the coordinator at %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(request);
    char *line = xasprintf("%s\n", text);
    cJSON_free(text);
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = write(fd, line + off, len - off);
        if (n <= 0) {
            snprintf(err, errlen, "write to %s: %s", path, strerror(errno));
            free(line);
            close(fd);
            return NULL;
        }
        off += (size_t)n;
    }
    free(line);
    size_t cap = 65536, got = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (got + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + got, cap - got - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read from %s: %s", path,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (memchr(buf + got - n, '\n', (size_t)n))
            break;
    }
    close(fd);
    buf[got] = '\0';
    cJSON *resp = cJSON_Parse(buf);
    free(buf);
    if (!resp)
        snprintf(err, errlen, "the coordinator sent an unreadable answer");
    return resp;
}

cJSON *client_call(const char *path, const cJSON *request, int timeout_s)
{
    char err[512];
    cJSON *resp = s_call(path, request, timeout_s, err, sizeof err);
    if (!resp)
        fprintf(stderr, "godwitctl: %s\n", err);
    return resp;
}

cJSON *client_request(const char *path, cJSON *request, int timeout_s)
{
    cJSON *resp = client_call(path, request, timeout_s);
    cJSON_Delete(request);
    return resp;
}
