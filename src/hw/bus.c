#include "hw/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void io_bus_init(struct io_bus *b, const char *name)
{
    memset(b, 0, sizeof(*b));
    b->name = name;
    pthread_rwlock_init(&b->lock, NULL);
}

void io_bus_destroy(struct io_bus *b)
{
    free(b->regions);
    pthread_rwlock_destroy(&b->lock);
    b->regions = NULL;
    b->n = b->cap = 0;
}

int io_bus_register(struct io_bus *b, const struct io_region *r, vs_err *err)
{
    if (!r->size || r->base + r->size < r->base)
        return vs_error(err, EINVAL, "%s: bad region for %s", b->name, r->name);
    pthread_rwlock_wrlock(&b->lock);
    unsigned pos = 0;
    for (; pos < b->n; pos++) {
        struct io_region *o = &b->regions[pos];
        if (r->base < o->base + o->size && o->base < r->base + r->size) {
            pthread_rwlock_unlock(&b->lock);
            return vs_error(err, EEXIST, "%s: %s at 0x%llx overlaps %s", b->name, r->name,
                            (unsigned long long)r->base, o->name);
        }
        if (o->base > r->base)
            break;
    }
    if (b->n == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 16;
        struct io_region *n = realloc(b->regions, cap * sizeof(*n));
        if (!n) {
            pthread_rwlock_unlock(&b->lock);
            return vs_error(err, ENOMEM, "out of memory");
        }
        b->regions = n;
        b->cap = cap;
    }
    memmove(&b->regions[pos + 1], &b->regions[pos], (b->n - pos) * sizeof(*r));
    b->regions[pos] = *r;
    b->n++;
    pthread_rwlock_unlock(&b->lock);
    return 0;
}

int io_bus_unregister(struct io_bus *b, uint64_t base, void *opaque)
{
    int ret = -1;
    pthread_rwlock_wrlock(&b->lock);
    for (unsigned i = 0; i < b->n; i++) {
        if (b->regions[i].base == base && b->regions[i].opaque == opaque) {
            memmove(&b->regions[i], &b->regions[i + 1], (b->n - i - 1) * sizeof(b->regions[0]));
            b->n--;
            ret = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&b->lock);
    return ret;
}

/* Binary search; the caller holds the read lock. */
static struct io_region *lookup(struct io_bus *b, uint64_t addr)
{
    unsigned lo = 0, hi = b->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        struct io_region *r = &b->regions[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

bool io_bus_read(struct io_bus *b, uint64_t addr, unsigned len, uint64_t *value)
{
    pthread_rwlock_rdlock(&b->lock);
    struct io_region *r = lookup(b, addr);
    if (!r || !r->read) {
        pthread_rwlock_unlock(&b->lock);
        *value = len >= 8 ? ~0ULL : (1ULL << (len * 8)) - 1;
        return false;
    }
    io_read_fn fn = r->read;
    void *opaque = r->opaque;
    uint64_t off = addr - r->base;
    pthread_rwlock_unlock(&b->lock);
    *value = fn(opaque, off, len);
    return true;
}

bool io_bus_write(struct io_bus *b, uint64_t addr, uint64_t value, unsigned len)
{
    pthread_rwlock_rdlock(&b->lock);
    struct io_region *r = lookup(b, addr);
    if (!r || !r->write) {
        pthread_rwlock_unlock(&b->lock);
        return r != NULL;
    }
    io_write_fn fn = r->write;
    void *opaque = r->opaque;
    uint64_t off = addr - r->base;
    pthread_rwlock_unlock(&b->lock);
    fn(opaque, off, value, len);
    return true;
}
