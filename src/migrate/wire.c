#include "migrate/wire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "util/crc32c.h"
#include "util/io.h"
#include "util/le.h"

void mig_header_encode(uint8_t out[MIG_HEADER_SIZE])
{
    memcpy(out, MIG_MAGIC, 8);
    vs_put_le(out + 8, MIG_VERSION, 4);
    vs_put_le(out + 12, 0, 4);
}

int mig_header_decode(const uint8_t in[MIG_HEADER_SIZE], vs_err *err)
{
    if (memcmp(in, MIG_MAGIC, 8))
        return vs_error(err, EPROTO, "not a vessel migration stream");
    uint32_t v = (uint32_t)vs_get_le(in + 8, 4);
    if (v != MIG_VERSION)
        return vs_error(err, EPROTO, "migration stream version %u is not %u", v, MIG_VERSION);
    if (vs_get_le(in + 12, 4))
        return vs_error(err, EPROTO, "migration stream: reserved header field set");
    return 0;
}

static uint32_t record_crc(uint32_t type, uint64_t off, uint64_t len, const void *payload)
{
    uint8_t h[MIG_RECORD_SIZE];
    vs_put_le(h, type, 4);
    vs_put_le(h + 4, 0, 4);
    vs_put_le(h + 8, off, 8);
    vs_put_le(h + 16, len, 8);
    uint32_t c = vs_crc32c(0, h, sizeof(h));
    if (payload && len)
        c = vs_crc32c(c, payload, (size_t)len);
    return c;
}

void mig_record_encode(uint8_t out[MIG_RECORD_SIZE], uint32_t type, uint64_t off, uint64_t len,
                       const void *payload)
{
    vs_put_le(out, type, 4);
    vs_put_le(out + 4, record_crc(type, off, len, payload), 4);
    vs_put_le(out + 8, off, 8);
    vs_put_le(out + 16, len, 8);
}

int mig_record_decode(const uint8_t in[MIG_RECORD_SIZE], struct mig_record *r, vs_err *err)
{
    r->type = (uint32_t)vs_get_le(in, 4);
    r->crc = (uint32_t)vs_get_le(in + 4, 4);
    r->off = vs_get_le(in + 8, 8);
    r->len = vs_get_le(in + 16, 8);
    return 0;
}

int mig_record_check(const struct mig_record *r, const void *payload, vs_err *err)
{
    if (record_crc(r->type, r->off, r->len, payload) != r->crc)
        return vs_error(err, EBADMSG,
                        "migration stream: %s record at %#llx corrupted (CRC mismatch)",
                        mig_type_name(r->type), (unsigned long long)r->off);
    return 0;
}

const char *mig_type_name(uint32_t type)
{
    switch (type) {
    case MIG_HELLO:
        return "HELLO";
    case MIG_MEMORY:
        return "MEMORY";
    case MIG_ZERO:
        return "ZERO";
    case MIG_VMSTATE:
        return "VMSTATE";
    case MIG_DISK:
        return "DISK";
    case MIG_DISK_ZERO:
        return "DISK_ZERO";
    case MIG_END:
        return "END";
    case MIG_GO:
        return "GO";
    case MIG_ACCEPT:
        return "ACCEPT";
    case MIG_REFUSE:
        return "REFUSE";
    case MIG_READY:
        return "READY";
    case MIG_RUNNING:
        return "RUNNING";
    case MIG_SYNC:
        return "SYNC";
    case MIG_SYNCED:
        return "SYNCED";
    case MIG_POSTCOPY:
        return "POSTCOPY";
    case MIG_POSTCOPY_DONE:
        return "POSTCOPY_DONE";
    case MIG_PAGE_REQUEST:
        return "PAGE_REQUEST";
    case MIG_COMPLETE:
        return "COMPLETE";
    default:
        return "unknown";
    }
}

int mig_send(struct mig_conn *c, uint32_t type, uint64_t off, const void *payload, uint64_t len,
             vs_err *err)
{
    uint8_t h[MIG_RECORD_SIZE];
    mig_record_encode(h, type, off, len, payload);
    int rc;
    if (c->tls || !payload || !len) {
        rc = mig_conn_write(c, h, sizeof(h));
        if (rc == 0 && payload && len)
            rc = mig_conn_write(c, payload, (size_t)len);
    } else {
        rc = vs_send_full(c->fd, h, sizeof(h), MSG_NOSIGNAL | MSG_MORE);
        if (rc == 0)
            rc = vs_send_full(c->fd, payload, (size_t)len, MSG_NOSIGNAL);
    }
    if (rc < 0)
        return vs_error_errno(err, "migration: sending %s", mig_type_name(type));
    return 0;
}

int mig_recv_record(struct mig_conn *c, int timeout_ms, struct mig_record *r, vs_err *err)
{
    if (timeout_ms >= 0 && !mig_conn_pending(c)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n;
        while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
            ;
        if (n == 0)
            return vs_error(err, ETIMEDOUT, "migration: no answer from the peer in %d ms",
                            timeout_ms);
    }
    uint8_t h[MIG_RECORD_SIZE];
    if (mig_conn_read(c, h, sizeof(h)) < 0)
        return errno == EIO ? vs_error(err, ECONNRESET, "migration: the peer closed the connection")
                            : vs_error_errno(err, "migration: reading from the peer");
    mig_record_decode(h, r, err);
    /* answers carry no payload but REFUSE's message */
    return r->type == MIG_REFUSE || mig_record_check(r, NULL, err) == 0 ? 0 : -1;
}

int mig_recv_message(struct mig_conn *c, const struct mig_record *r, char *buf, vs_err *err)
{
    if (r->off || r->len > MIG_MAX_MESSAGE)
        return vs_error(err, EPROTO, "migration: %s message too long", mig_type_name(r->type));
    if (mig_conn_read(c, buf, (size_t)r->len) < 0)
        return vs_error_errno(err, "migration: reading from the peer");
    if (mig_record_check(r, buf, err) < 0)
        return -1;
    buf[r->len] = 0;
    /* one line of printable text: the peer's words reach a terminal */
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    return 0;
}
