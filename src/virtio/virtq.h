/* Split virtqueues (virtio 1.2, 2.7): the descriptor table, the available
 * ring the driver fills and the used ring the device fills, all in guest
 * memory the guest can change at any moment. Every index and address the
 * guest supplies is checked; a malformed chain marks the queue broken (the
 * caller then marks the device DEVICE_NEEDS_RESET) and never makes the host
 * touch memory outside guest RAM. */
#ifndef VESSEL_VIRTIO_VIRTQ_H
#define VESSEL_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "mem/guest_mem.h"

#define VIRTQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq {
    /* Driver-programmed layout. */
    uint16_t num;     /* queue size (power of two, <= num_max) */
    uint16_t num_max; /* what the device offers */
    bool ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t msix_vector; /* virtio-pci only */
    /* Negotiated ring features. */
    bool event_idx, indirect;
    /* Device position. */
    uint16_t last_avail; /* next avail entry to consume */
    uint16_t used_idx;   /* next used entry to fill (shadow of used->idx) */
    uint16_t signalled_used;
    bool signalled_used_valid;
    unsigned inflight; /* popped, not yet pushed */
    /* Cached host views, valid while ready. */
    struct guest_mem *mem;
    struct virtq_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[num], used_event */
    const char *error;        /* why the queue broke, or NULL */
};

/* One descriptor chain. iov[0..nout) are driver->device (readable) buffers,
 * iov[nout..nout+nin) device->driver (writable) ones. */
struct virtq_elem {
    uint16_t head;
    unsigned nout, nin;
    struct iovec iov[VIRTQ_MAX_SIZE];
    uint64_t gpa[VIRTQ_MAX_SIZE];
};

/* Reset to the post-reset state (not ready, size num_max, addresses 0). */
void virtq_reset(struct virtq *vq, uint16_t num_max);
/* Validate the driver's layout and map the rings; false (vq->error set) if
 * the size or an address is invalid. */
bool virtq_enable(struct virtq *vq, struct guest_mem *mem, bool event_idx, bool indirect);
/* 1: elem filled; 0: queue empty; -1: malformed (vq->error says why). */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);
/* Return a popped chain with `len` bytes written to its writable part. */
void virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t len);
/* Same for a head index only (elem not kept: e.g. after save/load). */
bool virtq_push_head(struct virtq *vq, uint16_t head, uint32_t len);
/* Put back the last popped chain (e.g. no room to use it now). */
void virtq_unpop(struct virtq *vq);
/* Should the driver be interrupted for what was pushed since the last time? */
bool virtq_should_notify(struct virtq *vq);
/* Are there chains available (without consuming)? */
bool virtq_has_avail(struct virtq *vq);

/* Copy helpers over an element's iovecs. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);
size_t iov_length(const struct iovec *iov, unsigned n);

#endif
