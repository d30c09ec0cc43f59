/*
 * cfgerr: how the config loader words a problem. One format for every
 * message, "NAME:LINE: dotted.field: message" (see cfg.h), and one way
 * to show what the file held ("got ...").
 *
 * Owns nothing: the message goes into the caller's buffer. Never logs.
 */
#include "cfgerr.h"
#include "cfgyaml.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes "NAME:LINE: PATH: message" into e->err; returns false. line0 is
 * libyaml's 0-based line. */
bool cfgerr_fail(const cfgerr_t *e, size_t line0, const char *path, const char *fmt, ...)
{
    if (!e->err || e->errlen == 0)
        return false;
    int n;
    if (path && *path)
        n = snprintf(e->err, e->errlen, "%s:%zu: %s: ", e->name, line0 + 1, path);
    else
        n = snprintf(e->err, e->errlen, "%s:%zu: ", e->name, line0 + 1);
    if (n >= 0 && (size_t)n < e->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err + n, e->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Describes what a node is, for "got ..." in messages: null, a mapping, a
 * sequence or the scalar quoted (shortened, control bytes escaped). */
const char *cfgerr_describe(const yaml_node_t *node, char *buf, size_t len)
{
    if (!node)
        return "nothing";
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        break;
    default:
        return "nothing";
    }
    if (cfgyaml_is_null(node))
        return "null";
    const char *v = (const char *)node->data.scalar.value;
    size_t vlen = node->data.scalar.length;

    assert(len >= 16);
    size_t o = 0;
    const size_t limit = len - 8; /* room for '"', "...", '"' and NUL */
    buf[o++] = '"';
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;
        if (o + need > limit) {
            /* Do not leave half a UTF-8 character before the "...". */
            size_t lead = o;
            while (lead > 1 && ((unsigned char)buf[lead - 1] & 0xc0) == 0x80)
                lead--;
            if (lead > 1) {
                unsigned char b0 = (unsigned char)buf[lead - 1];
                size_t want = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 1;
                if (o - (lead - 1) < want)
                    o = lead - 1;
            }
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 4)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        else {
            if (need == 2)
                buf[o++] = '\\';
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
