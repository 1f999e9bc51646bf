/* A disk image as a device model sees it: a byte-addressed backend behind a
 * small vtable, implemented by raw files (block/raw.c) and qcow2 overlays
 * (block/qcow2.c). virtio-blk (and anything else that needs a disk) only
 * holds a struct disk.
 *
 * Threading: a backend may be called from several I/O threads at once
 * (virtio-blk multi-queue); a backend that keeps metadata (qcow2) locks
 * internally. Calls block; callers run them off the vCPU threads.
 *
 * Fast path: a backend whose bytes map 1:1 onto a host file (raw) sets
 * `direct_fd`, and the caller may submit reads and writes on that fd itself
 * (io_uring) instead of calling read/write. Backends that translate offsets
 * (qcow2) set direct_fd = -1. */
#ifndef VESSEL_BLOCK_DISK_H
#define VESSEL_BLOCK_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "util/err.h"
#include "vm/config.h"

struct disk;

struct disk_ops {
    /* Transfer exactly the iovec's total length at byte offset off; return 0
     * or -errno (a short transfer is -EIO). Ranges beyond size are refused
     * by the caller, so a backend may assume off + len <= size. */
    int (*read)(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt);
    int (*write)(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt);
    /* Make every completed write durable (fdatasync for raw); 0 or -errno. */
    int (*flush)(struct disk *d);
    /* Optional (NULL = unsupported): deallocate / zero [off, off+len).
     * After discard the range may read as anything; after write_zeroes it
     * reads as zeroes; may_unmap lets write_zeroes deallocate. */
    int (*discard)(struct disk *d, uint64_t off, uint64_t len);
    int (*write_zeroes)(struct disk *d, uint64_t off, uint64_t len, bool may_unmap);
    /* Optional (NULL = unsupported): freeze the image as it is now; it
     * becomes the read-only backing file of a new overlay created at
     * overlay, and every later write goes there. Only while no request is
     * in flight (the VM is paused). */
    int (*push_overlay)(struct disk *d, const char *overlay, vs_err *err);
    /* Optional (NULL: all of it is): 1 if any of [off, off + len) is held
     * by this image itself, 0 if all of it reads through to the backing
     * file (or as zeroes where there is none); -errno. What a migration
     * copies of an overlay whose backing file the destination has too. */
    int (*allocated)(struct disk *d, uint64_t off, uint64_t len);
    /* Release everything, including d itself. */
    void (*close)(struct disk *d);
};

struct disk {
    const struct disk_ops *ops;
    uint64_t size; /* guest-visible bytes */
    bool readonly;
    enum vm_disk_cache cache;
    int direct_fd;    /* see above; -1 if reads/writes must go through ops */
    const char *path; /* for messages; owned by the backend */
    void *priv;       /* backend's own state */
};

static inline uint64_t disk_size(const struct disk *d)
{
    return d->size;
}
static inline int disk_read(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return d->ops->read(d, off, iov, iovcnt);
}
static inline int disk_write(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return d->ops->write(d, off, iov, iovcnt);
}
static inline int disk_flush(struct disk *d)
{
    return d->ops->flush(d);
}

/* Open path as format ("raw", "qcow2", or NULL to probe: qcow2 magic
 * "QFI\xfb" selects qcow2, anything else is raw). cache: writeback uses the
 * page cache, none opens O_DIRECT (falls back to buffered where the file
 * system refuses it), unsafe makes flush a no-op. */
int disk_open(const char *path, const char *format, bool readonly, enum vm_disk_cache cache,
              struct disk **out, vs_err *err);
/* Open a raw image (used by disk_open and by qcow2 for raw backing files). */
int raw_open(const char *path, bool readonly, enum vm_disk_cache cache, struct disk **out,
             vs_err *err);
/* NULL-safe. */
void disk_close(struct disk *d);
/* ops->push_overlay, or an error saying which disks can be frozen. */
int disk_push_overlay(struct disk *d, const char *overlay, vs_err *err);

/* Helpers for backends. */
uint64_t iov_total(const struct iovec *iov, int iovcnt);

#endif
