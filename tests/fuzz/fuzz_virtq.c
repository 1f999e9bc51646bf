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

#define RAM_GPA 0x10000
#define RAM_SIZE (64 * 1024)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct virtq_elem elem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem mem;
    static int init;
    if (!init) {
        guest_mem_init(&mem);
        guest_mem_add_region(&mem, RAM_GPA, RAM_SIZE, ram, -1, 0, NULL);
        init = 1;
    }
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    memset(ram, 0, sizeof(ram));
    memcpy(ram, data + 1, size - 1 < RAM_SIZE ? size - 1 : RAM_SIZE);

    struct virtq vq;
    virtq_reset(&vq, VIRTQ_MAX_SIZE);
    /* compact layout so short inputs reach deep: avail ring at 0, the
     * descriptor table at 64, the used ring beyond the input */
    vq.num = (uint16_t)(1u << (flags & 3) << ((flags >> 2) & 1)); /* 1..16 */
    vq.avail_gpa = RAM_GPA;
    vq.desc_gpa = RAM_GPA + 64;
    vq.used_gpa = RAM_GPA + 0x8000;
    if (!virtq_enable(&vq, &mem, flags & 0x40, flags & 0x80))
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
