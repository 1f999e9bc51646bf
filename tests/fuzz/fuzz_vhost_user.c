/* libFuzzer target: replies from a vhost-user backend (another process, so
 * hostile input). The first byte picks the request the reply answers and
 * the kind of reply expected; the rest is what the backend sent. The
 * parser must accept only a well-formed reply of exactly that request and
 * size, and never read past the input. */
#include <stdint.h>
/* Compiled into the target (not taken from libvessel) so the code under
 * test carries the fuzzer's coverage and sanitizer instrumentation. */
#include "../../src/virtio/vhost_user_proto.c"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t req = data[0] & 0x1f;
    enum vhost_user_reply_kind kind =
        (data[0] & 0x20) ? VHOST_USER_REPLY_STATE : VHOST_USER_REPLY_U64;
    /* a copy of exactly the input's size, so ASan sees any over-read */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    memcpy(buf, data + 1, n);
    struct vhost_user_reply r;
    vs_err err;
    int rc = vhost_user_parse_reply(buf, n, req, kind, &r, &err);
    if (rc == 0) {
        /* accepted: the header said this request, a reply, version 1 */
        uint32_t got, flags;
        memcpy(&got, buf, 4);
        memcpy(&flags, buf + 4, 4);
        assert(got == req && (flags & VHOST_USER_FLAG_REPLY) && (flags & 3) == 1);
        assert(n == VHOST_USER_HDR_SIZE + 8);
    }
    if (n >= VHOST_USER_HDR_SIZE) {
        uint32_t sz;
        if (vhost_user_check_reply_hdr(buf, req, kind, &sz, &err) == 0)
            assert(sz <= VHOST_USER_PAYLOAD_MAX);
    }
    free(buf);
    return 0;
}
