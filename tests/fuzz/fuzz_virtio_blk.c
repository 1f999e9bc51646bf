/* libFuzzer target: virtio-blk request parsing on top of the descriptor
 * walker. Any chain the walker accepts goes through virtio_blk_parse; the
 * data iovecs it returns are touched, the status byte written, as the I/O
 * engine would. */
#include <stdint.h>
/* Compiled into the target (not taken from libvessel) so the code under
 * test carries the fuzzer's coverage and sanitizer instrumentation. */
#include "../../src/virtio/blk_req.c"
#include "../../src/virtio/virtq.c"
#include <string.h>
#include "mem/guest_mem.h"
#include "virtio/blk.h"
#include "virtio/virtq.h"
#include "fuzz_virtq_ring.h"

static struct virtq_elem elem;
static struct virtio_blk_req req;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    uint64_t capacity = (uint64_t)data[1] << 12; /* 0..1 MiB */
    struct virtq vq;
    if (!fuzz_virtq_enable(&vq, data + 2, size - 2, flags, false))
        return 0;
    for (int i = 0; i < 8; i++) {
        if (virtq_pop(&vq, &elem) <= 0)
            break;
        if (virtio_blk_parse(&elem, capacity, flags & 0x40, "fuzz-serial", &req) < 0)
            break;
        *req.status = req.done ? req.result : 0;
        if (!req.done && (req.type == 0 || req.type == 1)) {
            uint64_t total = 0;
            for (unsigned k = 0; k < req.ndata; k++) {
                if (req.type == 0)
                    memset(req.data[k].iov_base, 0x5a, req.data[k].iov_len);
                else if (req.data[k].iov_len)
                    (void)((volatile uint8_t *)req.data[k].iov_base)[req.data[k].iov_len - 1];
                total += req.data[k].iov_len;
            }
            if (total != req.len || req.offset + req.len > capacity)
                __builtin_trap();
        }
        for (unsigned k = 0; k < req.nranges; k++)
            if (req.ranges[k].off + req.ranges[k].len > capacity)
                __builtin_trap();
        virtq_push(&vq, &elem, req.in_len);
    }
    return 0;
}
