/* libFuzzer: what a guest sends the host's agent client (and, with the
 * first byte's low bit set, what a host sends the guest agent). The bytes
 * arrive in chunks whose sizes the input also chooses, through the same
 * reader and decoders both ends use: every frame that comes out must be one
 * its sender may send, within its limit, inside the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/protocol.h"

static void check(const struct agent_reader *r, const struct agent_frame *f, enum agent_sender from)
{
    if (f->payload < r->buf || f->payload + f->len > r->buf + r->cap)
        abort(); /* a payload outside the reader's buffer */
    const char *why;
    int v;
    uint16_t rows, cols;
    struct agent_request req;
    if (from == AGENT_FROM_GUEST) {
        switch (f->type) {
        case AGENT_STDOUT:
        case AGENT_STDERR:
            if (f->len < 1 || f->len > AGENT_DATA_MAX)
                abort();
            break;
        case AGENT_EXIT:
            if (agent_exit_decode(f, &v, &why) == 0 && (v < 0 || v > 255))
                abort();
            break;
        case AGENT_ERROR:
            if (f->len < 1 || f->len > AGENT_ERROR_MAX)
                abort();
            break;
        default:
            abort(); /* a type the guest may not send got through */
        }
        return;
    }
    switch (f->type) {
    case AGENT_REQUEST:
        if (agent_request_decode(f->payload, f->len, &req, &why) == 0) {
            if (!req.argc || !req.argv[0] || !req.argv[0][0] || req.argv[req.argc])
                abort();
            for (uint32_t i = 0; i < req.envc; i++)
                if (!strchr(req.envp[i], '='))
                    abort();
            if (req.envc && req.envp[req.envc])
                abort();
            agent_request_free(&req);
        }
        break;
    case AGENT_STDIN:
        if (f->len < 1 || f->len > AGENT_DATA_MAX)
            abort();
        break;
    case AGENT_STDIN_EOF:
        if (f->len)
            abort();
        break;
    case AGENT_RESIZE:
        agent_resize_decode(f, &rows, &cols, &why);
        break;
    case AGENT_SIGNAL:
        if (agent_signal_decode(f, &v, &why) == 0 && (v < 1 || v > 64))
            abort();
        break;
    default:
        abort(); /* a type the host may not send got through */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum agent_sender from = data[0] & 1 ? AGENT_FROM_HOST : AGENT_FROM_GUEST;
    size_t chunk = 1 + (data[1] % 64) * (data[0] & 2 ? 1024 : 1);
    data += 2;
    size -= 2;
    struct agent_reader r;
    /* each side's reader holds one largest frame of what it receives */
    if (agent_reader_init(&r, from == AGENT_FROM_HOST ? AGENT_REQUEST_MAX : AGENT_DATA_MAX) < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        size_t room;
        uint8_t *p = agent_reader_space(&r, &room);
        size_t n = size - off < chunk ? size - off : chunk;
        if (n > room)
            n = room;
        if (n == 0)
            abort(); /* a full buffer that holds no whole frame */
        memcpy(p, data + off, n);
        agent_reader_commit(&r, n);
        off += n;
        struct agent_frame f;
        const char *why;
        int k;
        while ((k = agent_reader_next(&r, from, &f, &why)) == 1)
            check(&r, &f, from);
        if (k < 0)
            break; /* the connection is dropped here */
    }
    agent_reader_free(&r);
    return 0;
}
