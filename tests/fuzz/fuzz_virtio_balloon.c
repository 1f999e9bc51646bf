/* libFuzzer target: virtio-balloon requests on top of the descriptor walker.
 * Every chain the walker accepts is read as an inflate/deflate pfn list, a
 * free page report and a statistics buffer; every page the parsers hand
 * back must lie inside guest RAM, and only such pages are touched. */
#include <stdint.h>
/* Compiled into the target so the code under test carries the fuzzer's
 * instrumentation. */
#include "../../src/virtio/balloon_req.c"
#include "../../src/virtio/virtq.c"
#include <string.h>
#include "mem/guest_mem.h"
#include "virtio/balloon.h"
#include "virtio/virtq.h"
#include "fuzz_virtq_ring.h"

static struct virtq_elem elem;
static struct guest_mem *fuzz_mem;

static void touch(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len)
{
    /* what madvise would drop: it must be RAM, and all of it */
    if (gpa < FUZZ_RAM_GPA || gpa + len > FUZZ_RAM_GPA + FUZZ_RAM_SIZE || len % 4096 ||
        gpa % 4096 || hva != guest_mem_ptr(fuzz_mem, gpa, len))
        __builtin_trap();
    memset(hva, 0, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct virtq vq;
    if (!fuzz_virtq_enable(&vq, data + 1, size - 1, data[0], false))
        return 0;
    fuzz_mem = vq.mem;
    for (int i = 0; i < 8; i++) {
        if (virtq_pop(&vq, &elem) <= 0)
            break;
        struct balloon_range r[64];
        size_t pos = 0, n;
        uint64_t refused = 0;
        while ((n = balloon_parse_pfns(elem.iov, elem.nout, &pos, 64, r)) > 0)
            for (size_t k = 0; k < n; k++) {
                if (r[k].len == 0 || r[k].len > 64 * 4096ULL)
                    __builtin_trap();
                balloon_release_range(vq.mem, r[k], touch, NULL, &refused);
            }
        for (unsigned k = 0; k < elem.nout + elem.nin; k++) {
            struct balloon_range rr = {elem.gpa[k], elem.iov[k].iov_len};
            if (balloon_align_range(&rr.gpa, &rr.len))
                balloon_release_range(vq.mem, rr, touch, NULL, &refused);
        }
        uint8_t buf[200];
        struct balloon_stats st = {0};
        size_t len = iov_to_buf(elem.iov, elem.nout, 0, buf, sizeof(buf));
        if (balloon_parse_stats(buf, len, &st) > (int)(len / 10))
            __builtin_trap();
        virtq_push(&vq, &elem, 0);
    }
    return 0;
}
