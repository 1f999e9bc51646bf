/* The guest agent's frames: encode, and check everything before decoding.
 * libc only: built into the static guest agent and into the daemon. */
#include "agent/protocol.h"

#include <stdlib.h>
#include <string.h>

#define REQ_FIXED 20u /* version, flags, rows, cols, argc, envc */

void agent_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t agent_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void agent_frame_header(uint8_t *out, uint8_t type, uint32_t len)
{
    out[0] = type;
    out[1] = out[2] = out[3] = 0;
    agent_put_u32(out + 4, len);
}

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

/* The payload lengths a type allows: [min, max]; false for a type this
 * sender may not send. */
static int type_limits(uint8_t type, enum agent_sender from, uint32_t *min, uint32_t *max)
{
    if (from == AGENT_FROM_HOST) {
        switch (type) {
        case AGENT_REQUEST:
            *min = REQ_FIXED, *max = AGENT_REQUEST_MAX;
            return 1;
        case AGENT_STDIN:
            *min = 1, *max = AGENT_DATA_MAX;
            return 1;
        case AGENT_STDIN_EOF:
            *min = *max = 0;
            return 1;
        case AGENT_RESIZE:
        case AGENT_SIGNAL:
            *min = *max = 4;
            return 1;
        }
        return 0;
    }
    switch (type) {
    case AGENT_STDOUT:
    case AGENT_STDERR:
        *min = 1, *max = AGENT_DATA_MAX;
        return 1;
    case AGENT_EXIT:
        *min = *max = 4;
        return 1;
    case AGENT_ERROR:
        *min = 1, *max = AGENT_ERROR_MAX;
        return 1;
    }
    return 0;
}

long agent_frame_parse(const uint8_t *buf, size_t n, enum agent_sender from, struct agent_frame *f,
                       const char **why)
{
    if (n < AGENT_HDR_LEN)
        return 0;
    uint32_t min, max, len = agent_get_u32(buf + 4);
    if (!type_limits(buf[0], from, &min, &max))
        return fail(why, from == AGENT_FROM_HOST ? "a frame type the host may not send"
                                                 : "a frame type the guest may not send");
    if (buf[1] || buf[2] || buf[3])
        return fail(why, "non-zero reserved bytes in a frame header");
    if (len < min || len > max)
        return fail(why, "a frame length out of range for its type");
    if (n - AGENT_HDR_LEN < len)
        return 0;
    f->type = buf[0];
    f->len = len;
    f->payload = buf + AGENT_HDR_LEN;
    return (long)(AGENT_HDR_LEN + len);
}

uint8_t *agent_request_build(uint32_t flags, uint16_t rows, uint16_t cols, char *const argv[],
                             char *const envp[], size_t *len, const char **why)
{
    if (flags & ~AGENT_FLAG_TTY)
        return fail(why, "unknown request flags"), NULL;
    return agent_request_build_ex(flags, rows, cols, argv, envp, NULL, 0, 0, len, why);
}

uint8_t *agent_request_build_ex(uint32_t flags, uint16_t rows, uint16_t cols, char *const argv[],
                                char *const envp[], const char *cwd, uint32_t uid, uint32_t gid,
                                size_t *len, const char **why)
{
    size_t argc = 0, envc = 0, strings = 0;
    if (cwd) {
        if (cwd[0] != '/')
            return fail(why, "the working directory must be an absolute path"), NULL;
        flags |= AGENT_FLAG_CWD;
        strings += strlen(cwd) + 1;
    } else
        flags &= ~AGENT_FLAG_CWD;
    size_t fixed = REQ_FIXED + ((flags & AGENT_FLAG_USER) ? 8 : 0);
    for (; argv && argv[argc]; argc++)
        strings += strlen(argv[argc]) + 1;
    for (; envp && envp[envc]; envc++)
        strings += strlen(envp[envc]) + 1;
    if (argc == 0)
        return fail(why, "an empty command"), NULL;
    if (argc > AGENT_MAX_ARGS || envc > AGENT_MAX_ENV)
        return fail(why, "too many arguments or environment variables"), NULL;
    if (strings > AGENT_REQUEST_MAX - fixed)
        return fail(why, "the command line and environment are over 256 KiB"), NULL;
    if (flags & ~AGENT_FLAGS_KNOWN)
        return fail(why, "unknown request flags"), NULL;
    size_t plen = fixed + strings;
    uint8_t *out = malloc(AGENT_HDR_LEN + plen);
    if (!out)
        return fail(why, "out of memory"), NULL;
    agent_frame_header(out, AGENT_REQUEST, (uint32_t)plen);
    uint8_t *p = out + AGENT_HDR_LEN;
    agent_put_u32(p, AGENT_VERSION);
    agent_put_u32(p + 4, flags);
    put_u16(p + 8, rows);
    put_u16(p + 10, cols);
    agent_put_u32(p + 12, (uint32_t)argc);
    agent_put_u32(p + 16, (uint32_t)envc);
    if (flags & AGENT_FLAG_USER) {
        agent_put_u32(p + REQ_FIXED, uid);
        agent_put_u32(p + REQ_FIXED + 4, gid);
    }
    p += fixed;
    for (size_t i = 0; i < argc + envc + (cwd ? 1 : 0); i++) {
        const char *s = i < argc ? argv[i] : i < argc + envc ? envp[i - argc] : cwd;
        size_t l = strlen(s) + 1;
        memcpy(p, s, l);
        p += l;
    }
    *len = AGENT_HDR_LEN + plen;
    return out;
}

int agent_request_decode(const uint8_t *p, uint32_t len, struct agent_request *r, const char **why)
{
    memset(r, 0, sizeof(*r));
    if (len < REQ_FIXED || len > AGENT_REQUEST_MAX)
        return fail(why, "a request of the wrong size");
    if (agent_get_u32(p) != AGENT_VERSION)
        return fail(why, "an unsupported protocol version");
    uint32_t flags = agent_get_u32(p + 4);
    uint32_t argc = agent_get_u32(p + 12), envc = agent_get_u32(p + 16);
    if (flags & ~AGENT_FLAGS_KNOWN)
        return fail(why, "unknown request flags");
    if (argc == 0 || argc > AGENT_MAX_ARGS || envc > AGENT_MAX_ENV)
        return fail(why, "a request with no command or too many strings");
    size_t fixed = REQ_FIXED + ((flags & AGENT_FLAG_USER) ? 8 : 0);
    uint32_t extra = (flags & AGENT_FLAG_CWD) ? 1 : 0;
    if (len <= fixed)
        return fail(why, "a request of the wrong size");
    /* the strings must be exactly argc + envc (+ the cwd) NUL-terminated ones */
    const uint8_t *s = p + fixed, *end = p + len;
    uint32_t count = 0;
    for (const uint8_t *q = s; q < end; q++)
        if (!*q)
            count++;
    if (count != argc + envc + extra || end[-1] != 0)
        return fail(why, "request strings that do not match their counts");
    size_t slen = (size_t)(end - s);
    r->mem = malloc(slen ? slen : 1);
    r->argv = calloc((size_t)argc + 1, sizeof(char *));
    r->envp = envc ? calloc((size_t)envc + 1, sizeof(char *)) : NULL;
    if (!r->mem || !r->argv || (envc && !r->envp)) {
        agent_request_free(r);
        return fail(why, "out of memory");
    }
    memcpy(r->mem, s, slen);
    char *q = r->mem;
    if (flags & AGENT_FLAG_USER) {
        r->uid = agent_get_u32(p + REQ_FIXED);
        r->gid = agent_get_u32(p + REQ_FIXED + 4);
    }
    for (uint32_t i = 0; i < argc + envc + extra; i++) {
        if (i == argc + envc) {
            if (q[0] != '/') {
                agent_request_free(r);
                return fail(why, "a working directory that is not an absolute path");
            }
            r->cwd = q;
            break;
        }
        if (i < argc)
            r->argv[i] = q;
        else if (!strchr(q, '=') || q[0] == '=') {
            agent_request_free(r);
            return fail(why, "an environment entry that is not NAME=VALUE");
        } else
            r->envp[i - argc] = q;
        q += strlen(q) + 1;
    }
    if (!r->argv[0][0]) {
        agent_request_free(r);
        return fail(why, "an empty command name");
    }
    r->flags = flags;
    r->rows = get_u16(p + 8);
    r->cols = get_u16(p + 10);
    r->argc = argc;
    r->envc = envc;
    return 0;
}

void agent_request_free(struct agent_request *r)
{
    free(r->argv);
    free(r->envp);
    free(r->mem);
    memset(r, 0, sizeof(*r));
}

int agent_exit_decode(const struct agent_frame *f, int *status, const char **why)
{
    if (f->type != AGENT_EXIT || f->len != 4)
        return fail(why, "not an exit frame");
    uint32_t v = agent_get_u32(f->payload);
    if (v > 255)
        return fail(why, "an exit status over 255");
    *status = (int)v;
    return 0;
}

int agent_signal_decode(const struct agent_frame *f, int *sig, const char **why)
{
    if (f->type != AGENT_SIGNAL || f->len != 4)
        return fail(why, "not a signal frame");
    uint32_t v = agent_get_u32(f->payload);
    if (v < 1 || v > 64)
        return fail(why, "a signal number out of range");
    *sig = (int)v;
    return 0;
}

int agent_resize_decode(const struct agent_frame *f, uint16_t *rows, uint16_t *cols,
                        const char **why)
{
    if (f->type != AGENT_RESIZE || f->len != 4)
        return fail(why, "not a resize frame");
    *rows = get_u16(f->payload);
    *cols = get_u16(f->payload + 2);
    return 0;
}

int agent_reader_init(struct agent_reader *r, size_t max_payload)
{
    r->cap = AGENT_HDR_LEN + max_payload;
    r->start = r->end = 0;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : -1;
}

void agent_reader_free(struct agent_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

uint8_t *agent_reader_space(struct agent_reader *r, size_t *room)
{
    if (r->start) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    *room = r->cap - r->end;
    return r->buf + r->end;
}

void agent_reader_commit(struct agent_reader *r, size_t n)
{
    r->end += n <= r->cap - r->end ? n : r->cap - r->end;
}

int agent_reader_next(struct agent_reader *r, enum agent_sender from, struct agent_frame *f,
                      const char **why)
{
    long n = agent_frame_parse(r->buf + r->start, r->end - r->start, from, f, why);
    if (n < 0)
        return -1;
    if (n == 0) {
        /* a valid header for a frame this buffer cannot hold */
        if (r->end - r->start >= AGENT_HDR_LEN &&
            AGENT_HDR_LEN + (size_t)agent_get_u32(r->buf + r->start + 4) > r->cap)
            return fail(why, "a frame larger than this side accepts");
        return 0;
    }
    r->start += (size_t)n;
    return 1;
}
