/*
 * pgoutput: see pgoutput.h. A cursor over the message's bytes; every read
 * checks that the bytes are there first and the first failed read ends the
 * parse with its reason. Counts (columns, relations) are bounded by the bytes
 * left before anything is allocated, so garbage can neither overrun the
 * input nor make us allocate more than a few times its size.
 *
 * Layouts (PostgreSQL's "Logical Replication Message Formats", protocol
 * version 1, no streaming: no transaction id in change messages):
 *   B  int64 final LSN, int64 timestamp, int32 xid
 *   C  int8 flags, int64 commit LSN, int64 end LSN, int64 timestamp
 *   O  int64 commit LSN, string name
 *   R  int32 relid, string namespace, string name, int8 replica identity,
 *      int16 ncols, per column: int8 flags, string name, int32 type, int32 typmod
 *   Y  int32 type oid, string namespace, string name
 *   I  int32 relid, 'N' tuple
 *   U  int32 relid, ['K' tuple | 'O' tuple], 'N' tuple
 *   D  int32 relid, 'K' tuple | 'O' tuple
 *   T  int32 nrels, int8 options, int32 relid x nrels
 *   M  int8 flags, int64 LSN, string prefix, int32 length, bytes
 *   tuple: int16 ncols, per column 'n' | 'u' | 't' int32 len, bytes | 'b' int32 len, bytes
 * Integers are big-endian; strings end with a NUL byte.
 */
#include "pgoutput.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
    const char *why;        /* the first failure; NULL while fine */
} s_cur_t;

static bool s_fail(s_cur_t *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return false;
}

static bool s_need(s_cur_t *c, size_t n, const char *what)
{
    if (c->why)
        return false;
    if ((size_t)(c->end - c->p) < n)
        return s_fail(c, what);
    return true;
}

static uint8_t s_u8(s_cur_t *c, const char *what)
{
    if (!s_need(c, 1, what))
        return 0;
    return *c->p++;
}

static uint16_t s_u16(s_cur_t *c, const char *what)
{
    if (!s_need(c, 2, what))
        return 0;
    uint16_t v = (uint16_t)((uint16_t)c->p[0] << 8 | c->p[1]);
    c->p += 2;
    return v;
}

static uint32_t s_u32(s_cur_t *c, const char *what)
{
    if (!s_need(c, 4, what))
        return 0;
    uint32_t v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
                 c->p[3];
    c->p += 4;
    return v;
}

static uint64_t s_u64(s_cur_t *c, const char *what)
{
    uint64_t hi = s_u32(c, what);
    uint64_t lo = s_u32(c, what);
    return hi << 32 | lo;
}

/* A NUL-terminated string inside the buffer. */
static const char *s_str(s_cur_t *c, const char *what)
{
    if (c->why)
        return "";
    const uint8_t *nul = memchr(c->p, 0, (size_t)(c->end - c->p));
    if (!nul) {
        s_fail(c, what);
        return "";
    }
    const char *s = (const char *)c->p;
    c->p = nul + 1;
    return s;
}

static bool s_tuple(s_cur_t *c, pgoutput_tuple_t *t)
{
    uint16_t n = s_u16(c, "a tuple's column count is cut off");
    if (c->why)
        return false;
    /* Every column takes at least its kind byte. */
    if ((size_t)(c->end - c->p) < n)
        return s_fail(c, "a tuple claims more columns than there are bytes");
    t->n = n;
    t->cols = n ? xcalloc(n, sizeof *t->cols) : NULL;
    for (uint16_t i = 0; i < n; i++) {
        pgoutput_col_t *col = &t->cols[i];
        col->kind = (char)s_u8(c, "a tuple's column kind is cut off");
        if (c->why)
            return false;
        switch (col->kind) {
        case 'n':
        case 'u':
            break;
        case 't':
        case 'b': {
            uint32_t len = s_u32(c, "a column's length is cut off");
            if (!s_need(c, len, "a column's value is cut off"))
                return false;
            col->data = (const char *)c->p;
            col->len = len;
            c->p += len;
            break;
        }
        default:
            return s_fail(c, "a tuple column of an unknown kind");
        }
    }
    return true;
}

static void s_tuple_free(pgoutput_tuple_t *t)
{
    free(t->cols);
    t->cols = NULL;
    t->n = 0;
}

static bool s_relation(s_cur_t *c, pgoutput_msg_t *m)
{
    m->relid = s_u32(c, "the relation id is cut off");
    m->nspname = s_str(c, "the relation's schema is not terminated");
    m->relname = s_str(c, "the relation's name is not terminated");
    m->replident = (char)s_u8(c, "the relation's replica identity is cut off");
    m->n_relcols = s_u16(c, "the relation's column count is cut off");
    if (c->why)
        return false;
    /* A column takes at least 10 bytes: flags, an empty name, type, typmod. */
    if ((size_t)(c->end - c->p) / 10 < m->n_relcols)
        return s_fail(c, "a relation claims more columns than there are bytes");
    m->relcols = m->n_relcols ? xcalloc(m->n_relcols, sizeof *m->relcols) : NULL;
    for (uint16_t i = 0; i < m->n_relcols; i++) {
        pgoutput_relcol_t *rc = &m->relcols[i];
        rc->flags = s_u8(c, "a relation column is cut off");
        rc->name = s_str(c, "a relation column's name is not terminated");
        rc->type_oid = s_u32(c, "a relation column's type is cut off");
        rc->typmod = (int32_t)s_u32(c, "a relation column's type modifier is cut off");
    }
    return !c->why;
}

static bool s_old_and_new(s_cur_t *c, pgoutput_msg_t *m)
{
    uint8_t tag = s_u8(c, "an update is cut off");
    if (c->why)
        return false;
    if (tag == 'K' || tag == 'O') {
        m->old_kind = (char)tag;
        if (!s_tuple(c, &m->old_tuple))
            return false;
        tag = s_u8(c, "an update's new row is missing");
        if (c->why)
            return false;
    }
    if (tag != 'N')
        return s_fail(c, "an update without its new row");
    return s_tuple(c, &m->new_tuple);
}

static bool s_body(s_cur_t *c, pgoutput_msg_t *m)
{
    switch (m->kind) {
    case 'B':
        m->lsn = s_u64(c, "a begin is cut off");
        m->timestamp = (int64_t)s_u64(c, "a begin is cut off");
        m->xid = s_u32(c, "a begin is cut off");
        return !c->why;
    case 'C':
        m->flags = s_u8(c, "a commit is cut off");
        m->lsn = s_u64(c, "a commit is cut off");
        m->end_lsn = s_u64(c, "a commit is cut off");
        m->timestamp = (int64_t)s_u64(c, "a commit is cut off");
        return !c->why;
    case 'O':
        m->lsn = s_u64(c, "an origin is cut off");
        m->origin = s_str(c, "an origin's name is not terminated");
        return !c->why;
    case 'R':
        return s_relation(c, m);
    case 'Y':
        m->relid = s_u32(c, "a type is cut off");
        m->nspname = s_str(c, "a type's schema is not terminated");
        m->relname = s_str(c, "a type's name is not terminated");
        return !c->why;
    case 'I':
        m->relid = s_u32(c, "an insert is cut off");
        if (s_u8(c, "an insert is cut off") != 'N')
            return s_fail(c, "an insert without its new row");
        return s_tuple(c, &m->new_tuple);
    case 'U':
        m->relid = s_u32(c, "an update is cut off");
        return !c->why && s_old_and_new(c, m);
    case 'D': {
        m->relid = s_u32(c, "a delete is cut off");
        uint8_t tag = s_u8(c, "a delete is cut off");
        if (c->why)
            return false;
        if (tag != 'K' && tag != 'O')
            return s_fail(c, "a delete without its old key or row");
        m->old_kind = (char)tag;
        return s_tuple(c, &m->old_tuple);
    }
    case 'T': {
        uint32_t n = s_u32(c, "a truncate is cut off");
        m->flags = s_u8(c, "a truncate is cut off");
        if (c->why)
            return false;
        if ((size_t)(c->end - c->p) / 4 < n)
            return s_fail(c, "a truncate claims more relations than there are bytes");
        m->n_relids = n;
        m->relids = n ? xcalloc(n, sizeof *m->relids) : NULL;
        for (uint32_t i = 0; i < n; i++)
            m->relids[i] = s_u32(c, "a truncate is cut off");
        return !c->why;
    }
    case 'M': {
        m->flags = s_u8(c, "a message is cut off");
        m->lsn = s_u64(c, "a message is cut off");
        m->prefix = s_str(c, "a message's prefix is not terminated");
        uint32_t len = s_u32(c, "a message is cut off");
        if (!s_need(c, len, "a message's content is cut off"))
            return false;
        m->content = (const char *)c->p;
        m->content_len = len;
        c->p += len;
        return true;
    }
    default:
        return s_fail(c, "a message of an unknown type");
    }
}

bool pgoutput_parse(const uint8_t *buf, size_t len, pgoutput_msg_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    s_cur_t c = { buf, buf ? buf + len : buf, NULL };
    if (!buf || len == 0) {
        *why = "an empty message";
        return false;
    }
    out->kind = (char)s_u8(&c, "an empty message");
    bool ok = s_body(&c, out);
    if (ok && c.p != c.end)
        ok = s_fail(&c, "bytes left after the message");
    if (!ok) {
        *why = c.why ? c.why : "a malformed message";
        pgoutput_msg_clear(out);
        return false;
    }
    return true;
}

void pgoutput_msg_clear(pgoutput_msg_t *m)
{
    if (!m)
        return;
    free(m->relcols);
    free(m->relids);
    s_tuple_free(&m->old_tuple);
    s_tuple_free(&m->new_tuple);
    memset(m, 0, sizeof *m);
}
