/* Where a snapshot is written. The save code (save.c) writes the same
 * things in the same order to every sink: memory (possibly in two passes, a
 * pre-copy while the VM runs and the pages dirtied meanwhile), the memory
 * image's size, the vmstate file, then commit.
 *
 *   directory  the snapshot directory of docs/snapshot-format.md, made
 *              atomic by a temporary directory fsynced and renamed on
 *              commit; closing it uncommitted leaves nothing behind.
 *   fd         a stream of records on a file descriptor (a file, a pipe, a
 *              socket): what live migration sends. snapshot_stream_receive
 *              turns it back into a directory on the other end.
 *
 * Stream format (little-endian; docs/snapshot-format.md, "Streams"):
 *   "VESSTRM1" | u32 version (1) | u32 0
 *   records: u32 type | u32 0 | u64 offset | u64 len | len bytes
 *     1 memory    bytes at offset of the memory image (a later record
 *                 for the same range replaces an earlier one)
 *     2 size      the memory image's size is offset (len 0)
 *     3 vmstate   the vmstate file (offset 0)
 *     4 end       commit (offset 0, len 0); a stream without it is void */
#ifndef VESSEL_SNAPSHOT_SINK_H
#define VESSEL_SNAPSHOT_SINK_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct snapshot_sink;

struct snapshot_sink_ops {
    /* len bytes of the memory image at off, from buf, or (buf NULL) from
     * fd at fd_off without passing through user space where the kernel
     * can (a memfd's page cache). */
    int (*write_memory)(struct snapshot_sink *s, uint64_t off, const void *buf, int fd,
                        uint64_t fd_off, uint64_t len, vs_err *err);
    /* Optional (NULL: zero pages are written as data): len bytes at off
     * read as zero from now on. */
    int (*zero_memory)(struct snapshot_sink *s, uint64_t off, uint64_t len, vs_err *err);
    /* The memory image is size bytes (never written ranges read as zero). */
    int (*memory_size)(struct snapshot_sink *s, uint64_t size, vs_err *err);
    int (*write_vmstate)(struct snapshot_sink *s, const void *buf, size_t len, vs_err *err);
    /* Durable and visible: after this the snapshot exists. */
    int (*commit)(struct snapshot_sink *s, vs_err *err);
    /* Free the sink; an uncommitted one leaves nothing behind. */
    void (*close)(struct snapshot_sink *s);
};

struct snapshot_sink {
    const struct snapshot_sink_ops *ops;
    /* A directory sink's absolute path (what a later diff names as its
     * parent); NULL for a stream. */
    const char *path;
};

/* A new snapshot directory dir (it must not exist; its parent must). */
int snapshot_sink_dir(const char *dir, struct snapshot_sink **out, vs_err *err);
/* A stream on fd (the caller keeps fd; it is written, never read). */
int snapshot_sink_fd(int fd, struct snapshot_sink **out, vs_err *err);
/* NULL-safe. */
void snapshot_sink_close(struct snapshot_sink *s);

/* Read a stream from fd into a new snapshot directory dir, committed when
 * the end record arrives; anything malformed (or a stream cut short)
 * leaves no directory. Returns the bytes of guest memory received. */
int snapshot_stream_receive(int fd, const char *dir, uint64_t *memory_bytes, vs_err *err);

#endif
