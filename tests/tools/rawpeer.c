/*
 * rawpeer: a scriptable godwit peer for the tests that play an attacker or
 * a broken peer. It speaks the real transport (ZeroMQ with CURVE, godwit
 * frames) but builds every message by hand from the script, so a test can
 * send what no real agent or coordinator would: a forged hello, a result
 * for a command never sent, a command naming another database's objects,
 * a frame over the size limit.
 *
 *   godwit-rawpeer agent --endpoint EP --key NAME.key --server-key coordinator.pub
 *       a DEALER dialing a coordinator with an agent's key
 *   godwit-rawpeer coordinator --bind EP --key coordinator.key
 *       a ROUTER bound as CURVE server with no allow-list (it takes any
 *       client key), answering the last peer that spoke
 *
 * Once its socket is set up it prints "ready". The script is read from
 * standard input, one command per line; each is answered on standard output
 * (flushed) so a test can drive it step by step:
 *   send PATH=VALUE ...    build an Envelope and send it  -> "sent" | "error ..."
 *   sendraw HEX            send these bytes as one frame (no godwit header added)
 *   sendsize N             send one frame of N zero bytes
 *   recv MS [BODY]         wait up to MS for the next message (of that body,
 *                          others are skipped): "msg BODY", then one
 *                          "PATH=VALUE" line per field set, then "end";
 *                          "timeout" if none came; "bad REASON" if it did
 *                          not decode
 *   sleep MS
 * PATH names Envelope fields through protobuf-c's own descriptors, e.g.
 * hello.role=ROLE_PROXY, result.command_id=1.7, command.drop_objects.slot=s.
 * NAME+ appends an element to a repeated field (hello.capabilities+=ping,
 * command.verify_roles.roles+=app), NAME[I] addresses element I. Enums take
 * their value name or number, bytes take hex. VALUE and printed values are
 * percent-encoded where they hold bytes outside '!'..'~' or '%'. msg_id and
 * the version are filled in unless set.
 *
 * Exit: 0 at the end of the script or on SIGTERM/SIGINT, 2 on bad usage or a
 * setup error. Never installed; the tests drive it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"
#include "wire.h"
#include "xalloc.h"

#define RP_LINE_MAX (4 * 1024 * 1024)
#define RP_RID_MAX 256

typedef struct {
    void *ctx;
    void *sock;
    bool router;
    uint8_t rid[RP_RID_MAX]; /* router: the last peer that spoke */
    size_t rid_len;
    uint64_t next_msg_id;
} rp_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* ---- percent encoding ---- */

static int s_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes %XX in place; returns the decoded length. */
static size_t s_unpercent(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && s_hexval(r[1]) >= 0 && s_hexval(r[2]) >= 0) {
            *w++ = (char)(s_hexval(r[1]) * 16 + s_hexval(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void s_print_percent(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '%')
            printf("%%%02X", p[i]);
        else
            putchar(p[i]);
    }
}

/* ---- building a message from PATH=VALUE ---- */

static bool s_set_scalar(const ProtobufCFieldDescriptor *f, void *dst, const char *value,
                         char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = (int32_t)strtol(value, &end, 0);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = (int64_t)strtoll(value, &end, 0);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = (uint32_t)strtoul(value, &end, 0);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = (uint64_t)strtoull(value, &end, 0);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = strtof(value, &end);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = strtod(value, &end);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        end = (char *)value + strlen(value);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, value);
        if (v) {
            *(int *)dst = v->value;
            end = (char *)value + strlen(value);
        } else {
            *(int *)dst = (int)strtol(value, &end, 0);
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *copy = xstrdup(value);
        s_unpercent(copy);
        *(char **)dst = copy;
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t n = strlen(value);
        if (n % 2) {
            snprintf(err, errlen, "%s: odd number of hex digits", f->name);
            return false;
        }
        ProtobufCBinaryData *b = dst;
        b->len = n / 2;
        b->data = xmalloc(b->len ? b->len : 1);
        for (size_t i = 0; i < b->len; i++) {
            int hi = s_hexval(value[2 * i]), lo = s_hexval(value[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "%s: not hex", f->name);
                return false;
            }
            b->data[i] = (uint8_t)(hi * 16 + lo);
        }
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        snprintf(err, errlen, "%s is a message: name one of its fields", f->name);
        return false;
    }
    if (errno || !end || end == value || *end) {
        snprintf(err, errlen, "%s: bad value \"%s\"", f->name, value);
        return false;
    }
    return true;
}

static size_t s_scalar_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

static ProtobufCMessage *s_new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

/* Sets PATH (relative to msg) to value. */
static bool s_set(ProtobufCMessage *msg, char *path, const char *value, char *err, size_t errlen)
{
    char *dot = strchr(path, '.');
    if (dot)
        *dot = '\0';
    char *seg = path;
    bool append = false;
    long index = -1;
    size_t sl = strlen(seg);
    if (sl && seg[sl - 1] == '+') {
        append = true;
        seg[sl - 1] = '\0';
    } else if (sl && seg[sl - 1] == ']') {
        char *br = strchr(seg, '[');
        if (!br) {
            snprintf(err, errlen, "%s: bad index", seg);
            return false;
        }
        *br = '\0';
        index = strtol(br + 1, NULL, 10);
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, seg);
    if (!f) {
        snprintf(err, errlen, "%s has no field \"%s\"", msg->descriptor->name, seg);
        return false;
    }
    char *base = (char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
        if (*which && *which != f->id) {
            snprintf(err, errlen, "%s: another member of its oneof is set", f->name);
            return false;
        }
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    void *dst;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)(base + f->quantifier_offset);
        char **arr = (char **)(base + f->offset);
        size_t esz = s_scalar_size(f);
        if (append || index == (long)*n) {
            *arr = xrealloc(*arr, (*n + 1) * esz);
            memset(*arr + *n * esz, 0, esz);
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                ((ProtobufCMessage **)*arr)[*n] = s_new_message(f->descriptor);
            index = (long)(*n)++;
        } else if (index < 0 || index >= (long)*n) {
            snprintf(err, errlen, "%s: give an index below %zu or append with +", f->name, *n);
            return false;
        }
        dst = *arr + (size_t)index * esz;
    } else {
        dst = base + f->offset;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage **sub = dst;
        if (!*sub)
            *sub = s_new_message(f->descriptor);
        if (!dot) {
            if (!*value)
                return true; /* "field=": the sub-message, empty */
            snprintf(err, errlen, "%s is a message: name one of its fields", f->name);
            return false;
        }
        return s_set(*sub, dot + 1, value, err, errlen);
    }
    if (dot) {
        snprintf(err, errlen, "%s is not a message", f->name);
        return false;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
        char *old = *(char **)dst;
        if (old && old != (char *)f->default_value)
            free(old);
    }
    return s_set_scalar(f, dst, value, err, errlen);
}

/* ---- printing a message as PATH=VALUE lines ---- */

static void s_print_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        printf("%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        printf("%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        printf("%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        printf("%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        printf("%.9g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        printf("%.17g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        printf("%s", *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (v)
            printf("%s", v->name);
        else
            printf("%d", *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        s_print_percent((const uint8_t *)s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        for (size_t i = 0; i < b->len; i++)
            printf("%02x", b->data[i]);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
}

/* Whether a proto3 scalar holds its zero value (then it is not printed). */
static bool s_is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, s_scalar_size(f)) == 0;
    }
    }
}

static void s_print(const ProtobufCMessage *m, const char *prefix)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                char ep[560];
                snprintf(ep, sizeof ep, "%s[%zu]", path, k);
                const void *p = arr + k * s_scalar_size(f);
                if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                    s_print(*(ProtobufCMessage *const *)p, ep);
                } else {
                    printf("%s=", ep);
                    s_print_value(f, p);
                    putchar('\n');
                }
            }
            continue;
        }
        const void *p = base + f->offset;
        bool oneof = f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
        if (!oneof && s_is_zero(f, p))
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
            if (sub) {
                printf("%s=\n", path); /* present, even if all its fields are zero */
                s_print(sub, path);
            }
            continue;
        }
        printf("%s=", path);
        s_print_value(f, p);
        putchar('\n');
    }
}

/* ---- transport ---- */

static int s_send_frame(rp_t *rp, const void *buf, size_t len)
{
    if (rp->router) {
        if (!rp->rid_len)
            return -ENOTCONN;
        if (zmq_send(rp->sock, rp->rid, rp->rid_len, ZMQ_SNDMORE) < 0)
            return -zmq_errno();
    }
    if (zmq_send(rp->sock, buf, len, 0) < 0)
        return -zmq_errno();
    return 0;
}

static void s_cmd_send(rp_t *rp, char *args)
{
    Godwit__Envelope *env = (Godwit__Envelope *)s_new_message(&godwit__envelope__descriptor);
    char err[512] = "";
    bool ok = true;
    for (char *tok = strtok(args, " \t"); ok && tok; tok = strtok(NULL, " \t")) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, sizeof err, "\"%s\" is not PATH=VALUE", tok);
            ok = false;
            break;
        }
        *eq = '\0';
        ok = s_set(&env->base, tok, eq + 1, err, sizeof err);
    }
    if (ok) {
        if (!env->msg_id)
            env->msg_id = ++rp->next_msg_id;
        size_t len = 0;
        uint8_t *buf = wire_encode(env, &len);
        if (!buf) {
            snprintf(err, sizeof err, "message too large to encode");
            ok = false;
        } else {
            int rc = s_send_frame(rp, buf, len);
            free(buf);
            if (rc) {
                snprintf(err, sizeof err, "send: %s", zmq_strerror(-rc));
                ok = false;
            }
        }
    }
    protobuf_c_message_free_unpacked(&env->base, NULL);
    if (ok)
        printf("sent\n");
    else
        printf("error %s\n", err);
}

static void s_cmd_sendbytes(rp_t *rp, const uint8_t *buf, size_t len)
{
    int rc = s_send_frame(rp, buf, len);
    if (rc)
        printf("error send: %s\n", zmq_strerror(-rc));
    else
        printf("sent\n");
}

/* Receives one message within timeout_ms; prints it unless body is set
 * and it is another body (then keeps waiting). */
static void s_cmd_recv(rp_t *rp, long timeout_ms, const char *body)
{
    void *watch = zmq_stopwatch_start();
    for (;;) {
        long left = timeout_ms - (long)(zmq_stopwatch_intermediate(watch) / 1000);
        if (left < 0 || s_stop) {
            printf("timeout\n");
            break;
        }
        zmq_pollitem_t item = { rp->sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(&item, 1, left > 100 ? 100 : left);
        if (n <= 0)
            continue;
        zmq_msg_t parts[2];
        int got = 0;
        bool more = true;
        while (more && got < 2) {
            zmq_msg_init(&parts[got]);
            if (zmq_msg_recv(&parts[got], rp->sock, 0) < 0) {
                zmq_msg_close(&parts[got]);
                break;
            }
            more = zmq_msg_more(&parts[got]);
            got++;
        }
        while (more) { /* more frames than expected: drain them */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, rp->sock, 0);
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }
        zmq_msg_t *frame = &parts[got - 1];
        if (rp->router && got == 2 && zmq_msg_size(&parts[0]) <= RP_RID_MAX) {
            memcpy(rp->rid, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]));
            rp->rid_len = zmq_msg_size(&parts[0]);
        }
        const char *reason = NULL;
        Godwit__Envelope *env = wire_decode(zmq_msg_data(frame), zmq_msg_size(frame), &reason);
        bool printed = false;
        if (!env) {
            printf("bad %s\n", reason);
            printed = true;
        } else if (!body || strcmp(body, wire_body_name(env)) == 0) {
            printf("msg %s\n", wire_body_name(env));
            s_print(&env->base, "");
            printf("end\n");
            printed = true;
        }
        wire_free(&env);
        for (int i = 0; i < got; i++)
            zmq_msg_close(&parts[i]);
        if (printed)
            break;
    }
    zmq_stopwatch_stop(watch);
}

static int s_usage(void)
{
    fprintf(stderr,
            "usage: godwit-rawpeer agent --endpoint EP --key NAME.key --server-key coordinator.pub\n"
            "       godwit-rawpeer coordinator --bind EP --key coordinator.key\n");
    return 2;
}

int main(int argc, char **argv)
{
    /* No SA_RESTART: a signal must end the blocking read of the script. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (argc < 2)
        return s_usage();
    const char *endpoint = NULL, *bind = NULL, *key = NULL, *server_key = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--bind") == 0)
            bind = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--server-key") == 0)
            server_key = argv[i + 1];
        else
            return s_usage();
    }
    rp_t rp = { 0 };
    rp.router = strcmp(argv[1], "coordinator") == 0;
    if (!key || (rp.router ? !bind : (!endpoint || !server_key)) ||
        (!rp.router && strcmp(argv[1], "agent") != 0))
        return s_usage();
    char err[512];
    keys_pair_t pair;
    char server_pub[KEYS_Z85_LEN + 1];
    if (keys_load_secret(key, &pair, err, sizeof err) != 0 ||
        (!rp.router && keys_load_public(server_key, server_pub, err, sizeof err) != 0)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    rp.ctx = zmq_ctx_new();
    rp.sock = zmq_socket(rp.ctx, rp.router ? ZMQ_ROUTER : ZMQ_DEALER);
    int one = 1, zero = 0;
    zmq_setsockopt(rp.sock, ZMQ_LINGER, &zero, sizeof zero);
    int rc;
    if (rp.router) {
        zmq_setsockopt(rp.sock, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(rp.sock, ZMQ_CURVE_SECRETKEY, pair.secret_z85, KEYS_Z85_LEN);
        rc = zmq_bind(rp.sock, bind);
    } else {
        zmq_setsockopt(rp.sock, ZMQ_CURVE_SERVERKEY, server_pub, KEYS_Z85_LEN);
        zmq_setsockopt(rp.sock, ZMQ_CURVE_PUBLICKEY, pair.public_z85, KEYS_Z85_LEN);
        zmq_setsockopt(rp.sock, ZMQ_CURVE_SECRETKEY, pair.secret_z85, KEYS_Z85_LEN);
        rc = zmq_connect(rp.sock, endpoint);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", rp.router ? bind : endpoint, zmq_strerror(zmq_errno()));
        zmq_close(rp.sock);
        zmq_ctx_term(rp.ctx);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    char *line = xmalloc(RP_LINE_MAX);
    while (!s_stop && fgets(line, RP_LINE_MAX, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *cmd = line + strspn(line, " \t");
        char *args = cmd + strcspn(cmd, " \t");
        if (*args)
            *args++ = '\0';
        if (!*cmd || *cmd == '#')
            continue;
        if (strcmp(cmd, "send") == 0) {
            s_cmd_send(&rp, args);
        } else if (strcmp(cmd, "sendraw") == 0) {
            size_t n = strlen(args) / 2;
            uint8_t *buf = xmalloc(n ? n : 1);
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)(s_hexval(args[2 * i]) * 16 + s_hexval(args[2 * i + 1]));
            s_cmd_sendbytes(&rp, buf, n);
            free(buf);
        } else if (strcmp(cmd, "sendsize") == 0) {
            size_t n = strtoul(args, NULL, 10);
            uint8_t *buf = xcalloc(1, n ? n : 1);
            s_cmd_sendbytes(&rp, buf, n);
            free(buf);
        } else if (strcmp(cmd, "recv") == 0) {
            char *b = args + strcspn(args, " \t");
            if (*b)
                *b++ = '\0';
            s_cmd_recv(&rp, strtol(args, NULL, 10), *b ? b : NULL);
        } else if (strcmp(cmd, "sleep") == 0) {
            zmq_poll(NULL, 0, strtol(args, NULL, 10));
            printf("slept\n");
        } else {
            printf("error unknown command \"%s\"\n", cmd);
        }
    }
    free(line);
    zmq_close(rp.sock);
    zmq_ctx_term(rp.ctx);
    return 0;
}
