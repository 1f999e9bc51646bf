/* The vhost-user protocol's messages (QEMU docs/interop/vhost-user.rst):
 * a 12-byte header (request, flags, payload size) and a payload, file
 * descriptors riding along as SCM_RIGHTS. Encoding what the frontend sends
 * and decoding what a backend replies, with no I/O: a backend is another
 * process (virtiofsd, a vhost-user-blk daemon) and what it sends is checked
 * like guest input before anything uses it (tests/fuzz/fuzz_vhost_user.c). */
#ifndef VESSEL_VIRTIO_VHOST_USER_PROTO_H
#define VESSEL_VIRTIO_VHOST_USER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

enum vhost_user_request {
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_GET_CONFIG = 24,
};

/* Header flags. */
#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_FLAG_REPLY (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)

/* In GET_FEATURES: the backend speaks the protocol-feature extension. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* Protocol features vessel uses. */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9

/* SET_VRING_KICK/CALL/ERR payload: queue index, and "no fd attached". */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD (1u << 8)

/* The most memory regions one SET_MEM_TABLE carries (without the
 * CONFIGURE_MEM_SLOTS extension). */
#define VHOST_USER_MAX_REGIONS 8
#define VHOST_USER_HDR_SIZE 12
/* The largest payload vessel sends or accepts: the memory table. */
#define VHOST_USER_PAYLOAD_MAX (8 + VHOST_USER_MAX_REGIONS * 32)

struct vhost_user_region {
    uint64_t gpa, size, uaddr, mmap_offset;
};

struct vhost_user_vring_addr {
    uint32_t index, flags;
    uint64_t desc, used, avail, log; /* frontend virtual addresses */
};

/* One message on the wire: header + payload, little-endian. */
struct vhost_user_msg {
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
    size_t len; /* bytes used in buf */
};

/* Encoders: each fills m and returns its length. need_reply sets NEED_REPLY
 * (for REPLY_ACK). */
size_t vhost_user_enc_plain(struct vhost_user_msg *m, uint32_t req, int need_reply);
size_t vhost_user_enc_u64(struct vhost_user_msg *m, uint32_t req, uint64_t v, int need_reply);
size_t vhost_user_enc_state(struct vhost_user_msg *m, uint32_t req, uint32_t index, uint32_t num,
                            int need_reply);
size_t vhost_user_enc_addr(struct vhost_user_msg *m, const struct vhost_user_vring_addr *a,
                           int need_reply);
/* -1 if n exceeds VHOST_USER_MAX_REGIONS. */
int vhost_user_enc_mem_table(struct vhost_user_msg *m, const struct vhost_user_region *r,
                             unsigned n, int need_reply, size_t *len);

/* What a reply may carry. */
enum vhost_user_reply_kind {
    VHOST_USER_REPLY_U64,   /* GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, REPLY_ACK */
    VHOST_USER_REPLY_STATE, /* GET_VRING_BASE: {index, num} */
};

struct vhost_user_reply {
    uint64_t u64;
    uint32_t index, num;
};

/* The size of the payload a reply header announces, after checking the
 * header: the version, the REPLY flag, the request it answers (req) and a
 * size no larger than the kind of reply expected. -1 with err set
 * otherwise; the caller then reads exactly that many payload bytes. */
int vhost_user_check_reply_hdr(const uint8_t hdr[VHOST_USER_HDR_SIZE], uint32_t req,
                               enum vhost_user_reply_kind kind, uint32_t *size, vs_err *err);
/* Decode a whole reply (header + payload of len bytes) of the given kind;
 * -1 with err set for anything malformed. Never reads past len. */
int vhost_user_parse_reply(const uint8_t *buf, size_t len, uint32_t req,
                           enum vhost_user_reply_kind kind, struct vhost_user_reply *out,
                           vs_err *err);
const char *vhost_user_request_name(uint32_t req);

#endif
