/* libFuzzer target: the split-virtqueue descriptor walker. The input is a
 * guest memory image (descriptor table, avail ring, indirect tables,
 * buffers); virtq_pop must either return a chain whose every iovec lies in
 * guest memory, or fail. ASan catches any access outside the image. */
#include <stdint.h>
/* Compiled into the target (not taken from libvessel) so the code under
 * test carries the fuzzer's coverage and sanitizer instrumentation. */
#include "../../src/virtio/virtq.c"
#include <string.h>
#include "mem/guest_mem.h"
#include "virtio/virtq.h"
#include "fuzz_virtq_ring.h"

static struct virtq_elem elem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    struct virtq vq;
    if (!fuzz_virtq_enable(&vq, data + 1, size - 1, flags, flags & 0x40))
        return 0;
    for (int i = 0; i < 16; i++) {
        int r = virtq_pop(&vq, &elem);
        if (r <= 0)
            break;
        /* every buffer must be inside the image: touch its bytes */
        uint32_t total = 0;
        for (unsigned k = 0; k < elem.nout + elem.nin; k++) {
            volatile uint8_t *p = elem.iov[k].iov_base;
            if (elem.iov[k].iov_len) {
                (void)p[0];
                (void)p[elem.iov[k].iov_len - 1];
            }
            if (k >= elem.nout)
                memset(elem.iov[k].iov_base, 0xa5, elem.iov[k].iov_len);
            total += (uint32_t)elem.iov[k].iov_len;
        }
        virtq_push(&vq, &elem, total);
        virtq_should_notify(&vq);
    }
    return 0;
}
