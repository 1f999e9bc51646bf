/* virtio-balloon request parsing: statistics buffers, pfn lists and page
 * ranges from the guest, checked before the host acts on them. */
#include <stdlib.h>
#include <string.h>
#include "virtio/balloon.h"

static const char *const stat_names[VIRTIO_BALLOON_S_NR] = {
    "swap_in",      "swap_out",         "major_faults", "minor_faults",        "free_memory",
    "total_memory", "available_memory", "disk_caches",  "hugetlb_allocations", "hugetlb_failures",
};

const char *balloon_stat_name(unsigned tag)
{
    return tag < VIRTIO_BALLOON_S_NR ? stat_names[tag] : NULL;
}

int balloon_parse_stats(const uint8_t *buf, size_t len, struct balloon_stats *st)
{
    int n = 0;
    for (size_t off = 0; off < len && len - off >= 10; off += 10) {
        uint16_t tag = (uint16_t)(buf[off] | buf[off + 1] << 8);
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = v << 8 | buf[off + 2 + i];
        if (tag >= VIRTIO_BALLOON_S_NR)
            continue;
        st->val[tag] = v;
        st->valid |= 1u << tag;
        n++;
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t balloon_parse_pfns(const struct iovec *iov, unsigned n, size_t *pos, size_t max_pfns,
                          struct balloon_range *out)
{
    /* The driver hands out pages in the order its allocator gave them,
     * often descending: sorted, a chain of 256 pfns is a few runs, and
     * each run is one madvise (a call costs far more than a page). */
    uint64_t gpa[256];
    size_t nr = 0, k = 0;
    if (max_pfns > 256)
        max_pfns = 256;
    for (; k < max_pfns; k++) {
        uint8_t b[4];
        if (iov_to_buf(iov, n, (*pos) * 4, b, 4) != 4)
            break;
        (*pos)++;
        gpa[k] = (uint64_t)(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24)
                 << VIRTIO_BALLOON_PFN_SHIFT;
    }
    qsort(gpa, k, sizeof(gpa[0]), cmp_u64);
    for (size_t i = 0; i < k; i++) {
        if (nr && out[nr - 1].gpa + out[nr - 1].len == gpa[i])
            out[nr - 1].len += VIRTIO_BALLOON_PAGE;
        else if (!nr || gpa[i] >= out[nr - 1].gpa + out[nr - 1].len) /* duplicates once */
            out[nr++] = (struct balloon_range){gpa[i], VIRTIO_BALLOON_PAGE};
    }
    return nr;
}

bool balloon_align_range(uint64_t *gpa, uint64_t *len)
{
    uint64_t start = *gpa, end;
    if (__builtin_add_overflow(start, *len, &end))
        end = UINT64_MAX;
    uint64_t a = (start + VIRTIO_BALLOON_PAGE - 1) & ~(VIRTIO_BALLOON_PAGE - 1);
    uint64_t b = end & ~(VIRTIO_BALLOON_PAGE - 1);
    if (a < start || b <= a) /* wrapped, or nothing whole left */
        return false;
    *gpa = a;
    *len = b - a;
    return true;
}

void balloon_release_range(struct guest_mem *mem, struct balloon_range r,
                           void (*release)(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len),
                           void *opaque, uint64_t *refused)
{
    uint8_t *hva = guest_mem_ptr(mem, r.gpa, r.len);
    if (hva) {
        release(opaque, hva, r.gpa, r.len);
        return;
    }
    /* not all in one region: page by page, giving back what is RAM */
    for (uint64_t off = 0; off < r.len; off += VIRTIO_BALLOON_PAGE) {
        uint64_t gpa = r.gpa + off;
        if (gpa < r.gpa) { /* wrapped */
            *refused += (r.len - off) / VIRTIO_BALLOON_PAGE;
            return;
        }
        uint8_t *p = guest_mem_ptr(mem, gpa, VIRTIO_BALLOON_PAGE);
        if (p)
            release(opaque, p, gpa, VIRTIO_BALLOON_PAGE);
        else
            ++*refused;
    }
}
