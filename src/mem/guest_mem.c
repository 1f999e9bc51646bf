#include "mem/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "util/log.h"
#include <sys/mman.h>
#include <unistd.h>

/* Layouts and bitmaps a reader may still hold: freed at destroy. Hot-plug
 * is rare, so what they cost until then is a few small allocations. */
struct guest_mem_retired {
    void *p;
    struct guest_mem_retired *next;
};

/* Every guest_mem starts with no region; shared, never written. */
static struct guest_mem_layout empty_layout;

void guest_mem_init(struct guest_mem *m)
{
    memset(m, 0, sizeof(*m));
    m->layout = &empty_layout;
    pthread_mutex_init(&m->lock, NULL);
}

static size_t bitmap_bytes(uint64_t size)
{
    return (size / GUEST_PAGE_SIZE + 63) / 64 * sizeof(uint64_t);
}

/* With m->lock held. A layout or bitmap nobody can reach any more, but a
 * reader may still hold. */
static void retire(struct guest_mem *m, void *p)
{
    if (!p || p == &empty_layout)
        return;
    struct guest_mem_retired *r = malloc(sizeof(*r));
    if (!r)
        return; /* leaked rather than freed under a reader */
    r->p = p;
    r->next = m->retired;
    m->retired = r;
}

static struct guest_mem_layout *layout_new(unsigned n)
{
    return calloc(1, sizeof(struct guest_mem_layout) + n * sizeof(struct guest_mem_region));
}

/* With m->lock held: make l current; the old one is retired. */
static void publish(struct guest_mem *m, struct guest_mem_layout *l)
{
    struct guest_mem_layout *old = m->layout;
    __atomic_store_n(&m->layout, l, __ATOMIC_RELEASE);
    retire(m, old);
}

static unsigned free_slot(const struct guest_mem_layout *l)
{
    for (unsigned slot = 0;; slot++) {
        bool used = false;
        for (unsigned i = 0; i < l->n && !used; i++)
            used = l->r[i].slot == slot;
        if (!used)
            return slot;
    }
}

int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, uint8_t *hva, int fd,
                         uint64_t fd_offset, vs_err *err)
{
    if (size == 0 || size % GUEST_PAGE_SIZE || gpa % GUEST_PAGE_SIZE || gpa + size < gpa)
        return vs_error(err, EINVAL, "guest memory region 0x%llx+0x%llx is not page aligned",
                        (unsigned long long)gpa, (unsigned long long)size);
    pthread_mutex_lock(&m->lock);
    const struct guest_mem_layout *cur = m->layout;
    int rc = -1;
    struct guest_mem_layout *l = NULL;
    uint64_t *dirty = NULL;
    if (cur->n == GUEST_MEM_MAX_REGIONS) {
        vs_error(err, ENOSPC, "too many guest memory regions");
        goto out;
    }
    for (unsigned i = 0; i < cur->n; i++) {
        const struct guest_mem_region *r = &cur->r[i];
        if (gpa < r->gpa + r->size && r->gpa < gpa + size) {
            vs_error(err, EEXIST, "guest memory region 0x%llx overlaps another",
                     (unsigned long long)gpa);
            goto out;
        }
    }
    l = layout_new(cur->n + 1);
    dirty = m->dirty_on ? calloc(1, bitmap_bytes(size)) : NULL;
    if (!l || (m->dirty_on && !dirty)) {
        vs_error(err, ENOMEM, "out of memory for guest memory regions");
        goto out;
    }
    memcpy(l->r, cur->r, cur->n * sizeof(cur->r[0]));
    l->n = cur->n + 1;
    struct guest_mem_region *r = &l->r[cur->n];
    *r = (struct guest_mem_region){.gpa = gpa,
                                   .size = size,
                                   .hva = hva,
                                   .fd = fd,
                                   .fd_offset = fd_offset,
                                   .dirty = dirty,
                                   .slot = free_slot(cur)};
    if (m->listener.region_add && m->listener.region_add(m->listener.opaque, r, err) < 0)
        goto out;
    publish(m, l);
    l = NULL;
    dirty = NULL;
    m->total += size;
    rc = 0;
out:
    pthread_mutex_unlock(&m->lock);
    free(l);
    free(dirty);
    return rc;
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

int guest_mem_add_mergeable(struct guest_mem *m, uint64_t gpa, uint64_t size, vs_err *err)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return vs_error_errno(err, "cannot map %llu bytes of guest memory",
                              (unsigned long long)size);
    /* 4 KiB pages: KSM does not merge inside huge pages */
    madvise(p, size, MADV_NOHUGEPAGE);
    if (madvise(p, size, MADV_MERGEABLE) < 0)
        vs_warn("--mergeable: madvise(MADV_MERGEABLE): %s (no KSM in this kernel?)",
                strerror(errno));
    if (guest_mem_add_region(m, gpa, size, p, -1, 0, err) < 0) {
        munmap(p, size);
        return -1;
    }
    return 0;
}

static void region_release(const struct guest_mem_region *r)
{
    if (r->hva)
        munmap(r->hva, r->size);
    if (r->fd >= 0)
        close(r->fd);
}

int guest_mem_remove_region(struct guest_mem *m, uint64_t gpa, vs_err *err)
{
    pthread_mutex_lock(&m->lock);
    const struct guest_mem_layout *cur = m->layout;
    unsigned k = 0;
    while (k < cur->n && cur->r[k].gpa != gpa)
        k++;
    struct guest_mem_layout *l = k < cur->n ? layout_new(cur->n - 1) : NULL;
    if (!l) {
        pthread_mutex_unlock(&m->lock);
        return k < cur->n ? vs_error(err, ENOMEM, "out of memory")
                          : vs_error(err, ENOENT, "no guest memory region at 0x%llx",
                                     (unsigned long long)gpa);
    }
    struct guest_mem_region gone = cur->r[k];
    memcpy(l->r, cur->r, k * sizeof(cur->r[0]));
    memcpy(l->r + k, cur->r + k + 1, (cur->n - k - 1) * sizeof(cur->r[0]));
    l->n = cur->n - 1;
    publish(m, l);
    if (m->listener.region_del)
        m->listener.region_del(m->listener.opaque, &gone);
    retire(m, gone.dirty);
    region_release(&gone);
    m->total -= gone.size;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void guest_mem_set_listener(struct guest_mem *m, const struct guest_mem_listener *l)
{
    pthread_mutex_lock(&m->lock);
    m->listener = l ? *l : (struct guest_mem_listener){0};
    pthread_mutex_unlock(&m->lock);
}

void guest_mem_move(struct guest_mem *dst, struct guest_mem *m)
{
    pthread_mutex_lock(&m->lock);
    dst->layout = m->layout;
    dst->retired = m->retired;
    dst->total = m->total;
    dst->dirty_on = m->dirty_on;
    m->layout = &empty_layout;
    m->retired = NULL;
    m->total = 0;
    m->dirty_on = false;
    pthread_mutex_unlock(&m->lock);
}

void guest_mem_destroy(struct guest_mem *m)
{
    if (!m->layout)
        return; /* never initialised */
    struct guest_mem_layout *l = m->layout;
    for (unsigned i = 0; i < l->n; i++) {
        region_release(&l->r[i]);
        free(l->r[i].dirty);
    }
    if (l != &empty_layout)
        free(l);
    for (struct guest_mem_retired *r = m->retired, *next; r; r = next) {
        next = r->next;
        free(r->p);
        free(r);
    }
    pthread_mutex_destroy(&m->lock);
    guest_mem_init(m);
}

static const struct guest_mem_region *find(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct guest_mem_layout *l = guest_mem_layout(m);
    for (unsigned i = 0; i < l->n; i++) {
        const struct guest_mem_region *r = &l->r[i];
        /* written to avoid overflow on hostile gpa/len */
        if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

void *guest_mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct guest_mem_region *r = find(m, gpa, len);
    return r ? r->hva + (gpa - r->gpa) : NULL;
}

static void mark(const struct guest_mem_region *r, uint64_t gpa, uint64_t len)
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
    const struct guest_mem_region *r = find(m, gpa, len);
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
    pthread_mutex_lock(&m->lock);
    const struct guest_mem_layout *cur = m->layout;
    bool missing = false;
    for (unsigned i = 0; i < cur->n; i++)
        missing = missing || !cur->r[i].dirty;
    int rc = 0;
    struct guest_mem_layout *l = missing ? layout_new(cur->n) : NULL;
    if (missing && !l) {
        rc = vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
        goto out;
    }
    if (l) {
        memcpy(l->r, cur->r, cur->n * sizeof(cur->r[0]));
        l->n = cur->n;
        for (unsigned i = 0; i < l->n; i++) {
            if (l->r[i].dirty)
                continue;
            l->r[i].dirty = calloc(1, bitmap_bytes(l->r[i].size));
            if (!l->r[i].dirty) {
                for (unsigned k = 0; k < i; k++)
                    if (l->r[k].dirty != cur->r[k].dirty)
                        free(l->r[k].dirty);
                free(l);
                rc = vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
                goto out;
            }
        }
        publish(m, l);
    }
    m->dirty_on = true;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct guest_mem_region *r = find(m, gpa, len);
    if (r)
        mark(r, gpa, len);
}

void guest_mem_dirty_fetch(struct guest_mem *m, unsigned i, uint64_t *out)
{
    const struct guest_mem_region *r = guest_mem_region(m, i);
    size_t words = bitmap_bytes(r->size) / sizeof(uint64_t);
    for (size_t w = 0; w < words; w++)
        out[w] = r->dirty ? __atomic_exchange_n(&r->dirty[w], 0, __ATOMIC_RELAXED) : 0;
}
