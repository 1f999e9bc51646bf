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

#define RAM_GPA 0x10000
#define RAM_SIZE (64 * 1024)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct virtq_elem elem;
static struct virtio_blk_req req;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem mem;
    static int init;
    if (!init) {
        guest_mem_init(&mem);
        guest_mem_add_region(&mem, RAM_GPA, RAM_SIZE, ram, -1, 0, NULL);
        init = 1;
    }
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    uint64_t capacity = (uint64_t)data[1] << 12; /* 0..1 MiB */
    memset(ram, 0, sizeof(ram));
    memcpy(ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);

    struct virtq vq;
    virtq_reset(&vq, VIRTQ_MAX_SIZE);
    /* compact layout so short inputs reach deep: avail ring at 0, the
     * descriptor table at 64, the used ring beyond the input */
    vq.num = (uint16_t)(1u << (flags & 3) << ((flags >> 2) & 1)); /* 1..16 */
    vq.avail_gpa = RAM_GPA;
    vq.desc_gpa = RAM_GPA + 64;
    vq.used_gpa = RAM_GPA + 0x8000;
    if (!virtq_enable(&vq, &mem, false, flags & 0x80))
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
