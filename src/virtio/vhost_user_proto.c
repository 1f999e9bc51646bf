#include "virtio/vhost_user_proto.h"

#include <errno.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t hdr(struct vhost_user_msg *m, uint32_t req, uint32_t size, int need_reply)
{
    put32(m->buf, req);
    put32(m->buf + 4, VHOST_USER_VERSION | (need_reply ? VHOST_USER_FLAG_NEED_REPLY : 0));
    put32(m->buf + 8, size);
    m->len = VHOST_USER_HDR_SIZE + size;
    return m->len;
}

size_t vhost_user_enc_plain(struct vhost_user_msg *m, uint32_t req, int need_reply)
{
    return hdr(m, req, 0, need_reply);
}

size_t vhost_user_enc_u64(struct vhost_user_msg *m, uint32_t req, uint64_t v, int need_reply)
{
    put64(m->buf + VHOST_USER_HDR_SIZE, v);
    return hdr(m, req, 8, need_reply);
}

size_t vhost_user_enc_state(struct vhost_user_msg *m, uint32_t req, uint32_t index, uint32_t num,
                            int need_reply)
{
    put32(m->buf + VHOST_USER_HDR_SIZE, index);
    put32(m->buf + VHOST_USER_HDR_SIZE + 4, num);
    return hdr(m, req, 8, need_reply);
}

size_t vhost_user_enc_addr(struct vhost_user_msg *m, const struct vhost_user_vring_addr *a,
                           int need_reply)
{
    uint8_t *p = m->buf + VHOST_USER_HDR_SIZE;
    put32(p, a->index);
    put32(p + 4, a->flags);
    put64(p + 8, a->desc);
    put64(p + 16, a->used);
    put64(p + 24, a->avail);
    put64(p + 32, a->log);
    return hdr(m, VHOST_USER_SET_VRING_ADDR, 40, need_reply);
}

int vhost_user_enc_mem_table(struct vhost_user_msg *m, const struct vhost_user_region *r,
                             unsigned n, int need_reply, size_t *len)
{
    if (n > VHOST_USER_MAX_REGIONS)
        return -1;
    uint8_t *p = m->buf + VHOST_USER_HDR_SIZE;
    put32(p, n);
    put32(p + 4, 0);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = p + 8 + 32 * i;
        put64(e, r[i].gpa);
        put64(e + 8, r[i].size);
        put64(e + 16, r[i].uaddr);
        put64(e + 24, r[i].mmap_offset);
    }
    *len = hdr(m, VHOST_USER_SET_MEM_TABLE, 8 + 32 * n, need_reply);
    return 0;
}

static uint32_t reply_size(enum vhost_user_reply_kind kind)
{
    (void)kind;
    return 8; /* a u64, or a vring state {u32 index, u32 num} */
}

int vhost_user_check_reply_hdr(const uint8_t h[VHOST_USER_HDR_SIZE], uint32_t req,
                               enum vhost_user_reply_kind kind, uint32_t *size, vs_err *err)
{
    uint32_t got = get32(h), flags = get32(h + 4), sz = get32(h + 8);
    if ((flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
        return vs_error(err, EPROTO, "vhost-user: reply to %s has version %u (want 1)",
                        vhost_user_request_name(req), flags & VHOST_USER_VERSION_MASK);
    if (!(flags & VHOST_USER_FLAG_REPLY))
        return vs_error(err, EPROTO, "vhost-user: got a request (%u) where a reply to %s was due",
                        got, vhost_user_request_name(req));
    if (got != req)
        return vs_error(err, EPROTO, "vhost-user: reply to request %u where %s was asked", got,
                        vhost_user_request_name(req));
    if (sz != reply_size(kind))
        return vs_error(err, EPROTO, "vhost-user: reply to %s has %u payload bytes (want %u)",
                        vhost_user_request_name(req), sz, reply_size(kind));
    *size = sz;
    return 0;
}

int vhost_user_parse_reply(const uint8_t *buf, size_t len, uint32_t req,
                           enum vhost_user_reply_kind kind, struct vhost_user_reply *out,
                           vs_err *err)
{
    uint32_t size;
    if (len < VHOST_USER_HDR_SIZE)
        return vs_error(err, EPROTO, "vhost-user: reply to %s cut short (%zu bytes)",
                        vhost_user_request_name(req), len);
    if (vhost_user_check_reply_hdr(buf, req, kind, &size, err) < 0)
        return -1;
    if (len != VHOST_USER_HDR_SIZE + (size_t)size)
        return vs_error(err, EPROTO, "vhost-user: reply to %s is %zu bytes, header says %u",
                        vhost_user_request_name(req), len, VHOST_USER_HDR_SIZE + size);
    const uint8_t *p = buf + VHOST_USER_HDR_SIZE;
    memset(out, 0, sizeof(*out));
    if (kind == VHOST_USER_REPLY_STATE) {
        out->index = get32(p);
        out->num = get32(p + 4);
    } else {
        out->u64 = get64(p);
    }
    return 0;
}

const char *vhost_user_request_name(uint32_t req)
{
    switch (req) {
    case VHOST_USER_GET_FEATURES:
        return "GET_FEATURES";
    case VHOST_USER_SET_FEATURES:
        return "SET_FEATURES";
    case VHOST_USER_SET_OWNER:
        return "SET_OWNER";
    case VHOST_USER_RESET_OWNER:
        return "RESET_OWNER";
    case VHOST_USER_SET_MEM_TABLE:
        return "SET_MEM_TABLE";
    case VHOST_USER_SET_VRING_NUM:
        return "SET_VRING_NUM";
    case VHOST_USER_SET_VRING_ADDR:
        return "SET_VRING_ADDR";
    case VHOST_USER_SET_VRING_BASE:
        return "SET_VRING_BASE";
    case VHOST_USER_GET_VRING_BASE:
        return "GET_VRING_BASE";
    case VHOST_USER_SET_VRING_KICK:
        return "SET_VRING_KICK";
    case VHOST_USER_SET_VRING_CALL:
        return "SET_VRING_CALL";
    case VHOST_USER_SET_VRING_ERR:
        return "SET_VRING_ERR";
    case VHOST_USER_GET_PROTOCOL_FEATURES:
        return "GET_PROTOCOL_FEATURES";
    case VHOST_USER_SET_PROTOCOL_FEATURES:
        return "SET_PROTOCOL_FEATURES";
    case VHOST_USER_GET_QUEUE_NUM:
        return "GET_QUEUE_NUM";
    case VHOST_USER_SET_VRING_ENABLE:
        return "SET_VRING_ENABLE";
    case VHOST_USER_GET_CONFIG:
        return "GET_CONFIG";
    default:
        return "request ?";
    }
}
