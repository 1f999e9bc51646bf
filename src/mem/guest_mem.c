#include "mem/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void guest_mem_init(struct guest_mem *m)
{
    memset(m, 0, sizeof(*m));
}

int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, uint8_t *hva, int fd,
                         uint64_t fd_offset, vs_err *err)
{
    if (m->nregions == GUEST_MEM_MAX_REGIONS)
        return vs_error(err, ENOSPC, "too many guest memory regions");
    if (size == 0 || size % GUEST_PAGE_SIZE || gpa % GUEST_PAGE_SIZE || gpa + size < gpa)
        return vs_error(err, EINVAL, "guest memory region 0x%llx+0x%llx is not page aligned",
                        (unsigned long long)gpa, (unsigned long long)size);
    for (unsigned i = 0; i < m->nregions; i++) {
        struct guest_mem_region *r = &m->regions[i];
        if (gpa < r->gpa + r->size && r->gpa < gpa + size)
            return vs_error(err, EEXIST, "guest memory region 0x%llx overlaps another",
                            (unsigned long long)gpa);
    }
    struct guest_mem_region *r = &m->regions[m->nregions++];
    *r = (struct guest_mem_region){
        .gpa = gpa, .size = size, .hva = hva, .fd = fd, .fd_offset = fd_offset};
    m->total += size;
    return 0;
}

int guest_mem_add_anon(struct guest_mem *m, uint64_t gpa, uint64_t size, vs_err *err)
{
    int fd = memfd_create("vessel-guest-ram", MFD_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "memfd_create");
    if (ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return vs_error_errno(err, "cannot size guest memory to %llu bytes",
                              (unsigned long long)size);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return vs_error_errno(err, "cannot map %llu bytes of guest memory",
                              (unsigned long long)size);
    }
    madvise(p, size, MADV_MERGEABLE);
    if (guest_mem_add_region(m, gpa, size, p, fd, 0, err) < 0) {
        munmap(p, size);
        close(fd);
        return -1;
    }
    return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        struct guest_mem_region *r = &m->regions[i];
        if (r->hva)
            munmap(r->hva, r->size);
        if (r->fd >= 0)
            close(r->fd);
        free(r->dirty);
    }
    guest_mem_init(m);
}

static struct guest_mem_region *find(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        struct guest_mem_region *r = &m->regions[i];
        /* written to avoid overflow on hostile gpa/len */
        if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

void *guest_mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    struct guest_mem_region *r = find(m, gpa, len);
    return r ? r->hva + (gpa - r->gpa) : NULL;
}

static void mark(struct guest_mem_region *r, uint64_t gpa, uint64_t len)
{
    if (!r->dirty || !len)
        return;
    uint64_t first = (gpa - r->gpa) / GUEST_PAGE_SIZE;
    uint64_t last = (gpa - r->gpa + len - 1) / GUEST_PAGE_SIZE;
    for (uint64_t p = first; p <= last; p++)
        __atomic_fetch_or(&r->dirty[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
}

void *guest_mem_ptr_w(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    struct guest_mem_region *r = find(m, gpa, len);
    if (!r)
        return NULL;
    mark(r, gpa, len);
    return r->hva + (gpa - r->gpa);
}

int guest_mem_read(struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len)
{
    void *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -1;
    memcpy(buf, p, len);
    return 0;
}

int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len)
{
    void *p = guest_mem_ptr_w(m, gpa, len);
    if (!p)
        return -1;
    memcpy(p, buf, len);
    return 0;
}

int guest_mem_dirty_enable(struct guest_mem *m, vs_err *err)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        struct guest_mem_region *r = &m->regions[i];
        if (r->dirty)
            continue;
        size_t words = (r->size / GUEST_PAGE_SIZE + 63) / 64;
        r->dirty = calloc(words, sizeof(uint64_t));
        if (!r->dirty)
            return vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
    }
    return 0;
}

void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    struct guest_mem_region *r = find(m, gpa, len);
    if (r)
        mark(r, gpa, len);
}

void guest_mem_dirty_fetch(struct guest_mem *m, unsigned i, uint64_t *out)
{
    struct guest_mem_region *r = &m->regions[i];
    size_t words = (r->size / GUEST_PAGE_SIZE + 63) / 64;
    for (size_t w = 0; w < words; w++)
        out[w] = r->dirty ? __atomic_exchange_n(&r->dirty[w], 0, __ATOMIC_RELAXED) : 0;
}
