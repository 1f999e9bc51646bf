/* A fake virtio driver for unit tests: plays the guest side of virtio-mmio
 * (register writes, split virtqueues in a fake guest RAM) so device models
 * can be tested end to end without a VM. Header-only, shared by the
 * test_virtq*.c and test_virtio_*.c tests. */
#ifndef VESSEL_TEST_VIRTIO_DRIVER_H
#define VESSEL_TEST_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "mem/guest_mem.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#define FD_RAM_BASE 0x100000ULL
#define FD_RAM_SIZE (8ULL << 20)
#define FD_QUEUE_AREA FD_RAM_BASE                /* 16 KiB per queue */
#define FD_BUF_AREA (FD_RAM_BASE + (1ULL << 20)) /* bump-allocated buffers */

struct fd_queue {
    uint16_t num;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen, next_desc;
};

struct fake_driver {
    struct guest_mem mem;
    struct virtio_mmio mmio;
    struct virtio_dev *dev;
    struct fd_queue q[VIRTIO_MAX_QUEUES];
    uint64_t next_buf;
    int irq_level;
    unsigned irq_raised;
};

static void fd_irq(void *opaque, unsigned irq, int level)
{
    struct fake_driver *f = opaque;
    if (level)
        __atomic_fetch_add(&f->irq_raised, 1, __ATOMIC_SEQ_CST);
    f->irq_level = level;
}

static inline int fd_init_mem(struct fake_driver *f)
{
    memset(f, 0, sizeof(*f));
    guest_mem_init(&f->mem);
    f->next_buf = FD_BUF_AREA;
    return guest_mem_add_anon(&f->mem, FD_RAM_BASE, FD_RAM_SIZE, NULL);
}

static inline void fd_attach(struct fake_driver *f, struct virtio_dev *d)
{
    struct irq_line irq = {.set_level = fd_irq, .opaque = f, .irq = 5};
    f->dev = d;
    virtio_mmio_init(&f->mmio, d, &irq, 0x10000000);
}

static inline uint32_t fd_rd(struct fake_driver *f, uint64_t off)
{
    return (uint32_t)virtio_mmio_read(&f->mmio, off, 4);
}
static inline void fd_wr(struct fake_driver *f, uint64_t off, uint32_t v)
{
    virtio_mmio_write(&f->mmio, off, v, 4);
}

static inline void *fd_ptr(struct fake_driver *f, uint64_t gpa)
{
    return guest_mem_ptr(&f->mem, gpa, 1);
}

/* ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back. */
static inline uint32_t fd_negotiate(struct fake_driver *f, uint64_t features)
{
    fd_wr(f, 0x70, 0);
    fd_wr(f, 0x70, VIRTIO_STATUS_ACKNOWLEDGE);
    fd_wr(f, 0x70, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    fd_wr(f, 0x14, 0);
    uint64_t offered = fd_rd(f, 0x10);
    fd_wr(f, 0x14, 1);
    offered |= (uint64_t)fd_rd(f, 0x10) << 32;
    features &= offered;
    fd_wr(f, 0x24, 0);
    fd_wr(f, 0x20, (uint32_t)features);
    fd_wr(f, 0x24, 1);
    fd_wr(f, 0x20, (uint32_t)(features >> 32));
    fd_wr(f, 0x70, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return fd_rd(f, 0x70);
}

static inline void fd_setup_queue(struct fake_driver *f, unsigned q, uint16_t num)
{
    struct fd_queue *fq = &f->q[q];
    uint64_t base = FD_QUEUE_AREA + q * 0x4000ULL;
    *fq =
        (struct fd_queue){.num = num, .desc = base, .avail = base + 0x1000, .used = base + 0x2000};
    memset(fd_ptr(f, base), 0, 0x4000);
    fd_wr(f, 0x30, q);
    fd_wr(f, 0x38, num);
    fd_wr(f, 0x80, (uint32_t)fq->desc);
    fd_wr(f, 0x84, (uint32_t)(fq->desc >> 32));
    fd_wr(f, 0x90, (uint32_t)fq->avail);
    fd_wr(f, 0x94, (uint32_t)(fq->avail >> 32));
    fd_wr(f, 0xa0, (uint32_t)fq->used);
    fd_wr(f, 0xa4, (uint32_t)(fq->used >> 32));
    fd_wr(f, 0x44, 1);
}

static inline void fd_driver_ok(struct fake_driver *f)
{
    fd_wr(f, 0x70, fd_rd(f, 0x70) | VIRTIO_STATUS_DRIVER_OK);
}

static inline uint64_t fd_alloc(struct fake_driver *f, uint64_t len)
{
    uint64_t g = f->next_buf;
    f->next_buf = (f->next_buf + len + 63) & ~63ULL;
    return g;
}

/* Write descriptor i of queue q. */
static inline void fd_set_desc(struct fake_driver *f, unsigned q, uint16_t i, uint64_t addr,
                               uint32_t len, uint16_t flags, uint16_t next)
{
    struct virtq_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy(fd_ptr(f, f->q[q].desc + 16ULL * i), &d, 16);
}

/* Publish head in the avail ring and bump the index (no kick). */
static inline void fd_publish(struct fake_driver *f, unsigned q, uint16_t head)
{
    struct fd_queue *fq = &f->q[q];
    uint16_t *ring = fd_ptr(f, fq->avail);
    ring[2 + fq->avail_idx % fq->num] = head;
    __atomic_store_n(&ring[1], (uint16_t)(fq->avail_idx + 1), __ATOMIC_RELEASE);
    fq->avail_idx++;
}

struct fd_buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

/* Add a chain of direct descriptors; returns the head. */
static inline uint16_t fd_add(struct fake_driver *f, unsigned q, const struct fd_buf *b, unsigned n)
{
    struct fd_queue *fq = &f->q[q];
    uint16_t head = fq->next_desc % fq->num;
    for (unsigned k = 0; k < n; k++) {
        uint16_t i = (fq->next_desc + k) % fq->num;
        uint16_t next = (fq->next_desc + k + 1) % fq->num;
        fd_set_desc(f, q, i, b[k].gpa, b[k].len,
                    (b[k].writable ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
                    k + 1 < n ? next : 0);
    }
    fq->next_desc = (uint16_t)(fq->next_desc + n);
    fd_publish(f, q, head);
    return head;
}

static inline void fd_kick(struct fake_driver *f, unsigned q)
{
    fd_wr(f, 0x50, q);
}

/* Next used element, if any. */
static inline bool fd_used(struct fake_driver *f, unsigned q, uint32_t *id, uint32_t *len)
{
    struct fd_queue *fq = &f->q[q];
    uint16_t *u = fd_ptr(f, fq->used);
    uint16_t idx = __atomic_load_n(&u[1], __ATOMIC_ACQUIRE);
    if (idx == fq->used_seen)
        return false;
    uint32_t *e = fd_ptr(f, fq->used + 4 + 8ULL * (fq->used_seen % fq->num));
    *id = e[0];
    *len = e[1];
    fq->used_seen++;
    return true;
}

/* Wait up to 5 s for a used element (devices with I/O threads). */
static inline bool fd_wait_used(struct fake_driver *f, unsigned q, uint32_t *id, uint32_t *len)
{
    for (int i = 0; i < 5000; i++) {
        if (fd_used(f, q, id, len))
            return true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static inline bool fd_needs_reset(struct fake_driver *f)
{
    return fd_rd(f, 0x70) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

#define FD_FEATURES_V1 (1ULL << VIRTIO_F_VERSION_1)

#endif
