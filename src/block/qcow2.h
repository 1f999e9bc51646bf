/* qcow2 (version 2 and 3) images and copy-on-write overlays, read and write,
 * behind the disk vtable (block/disk.h). Clusters the overlay does not hold
 * are read from its backing file (raw or qcow2, any depth up to
 * QCOW2_MAX_CHAIN); writes allocate clusters at the end of the file and keep
 * refcounts exact, so `qemu-img check` accepts what vessel writes.
 *
 * Not supported (refused with a message): encryption, external data files,
 * extended L2 entries, zstd compression, writing to images with internal
 * snapshots or a dirty/corrupt flag. Compressed (zlib) clusters are read, and
 * rewritten uncompressed on write. A writable image can be frozen under
 * its device (disk_push_overlay). */
#ifndef VESSEL_BLOCK_QCOW2_H
#define VESSEL_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "block/disk.h"
#include "util/err.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define QCOW2_MAX_CHAIN 16

/* The parsed and validated header (host byte order). */
struct qcow2_header {
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t incompatible_features, compatible_features, autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    char backing_file[1024]; /* "" when there is none */
    char backing_format[32]; /* from the header extension; "" if absent */
};

/* Validate a header from the first bytes of a file (up to one cluster).
 * file_size bounds the table offsets. Never reads past len. */
int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
                       vs_err *err);

/* Open a qcow2 image; its backing chain is opened read-only. */
int qcow2_open(const char *path, bool readonly, enum vm_disk_cache cache, struct disk **out,
               vs_err *err);

/* Create a qcow2 v3 image of size bytes (64 KiB clusters). With backing
 * (path as written into the image; relative paths are relative to the new
 * image's directory) the image is an empty overlay; size 0 then means the
 * backing file's size. backing_format is "raw", "qcow2" or NULL to probe.
 * Fails if path exists. */
int qcow2_create(const char *path, uint64_t size, const char *backing, const char *backing_format,
                 vs_err *err);

/* True if the first 4 bytes are the qcow2 magic. */
/* d is a qcow2 image (opened by disk_open). */
bool qcow2_is(const struct disk *d);
/* d's backing file name as its header has it (relative names are relative
 * to d's directory) and its format ("qcow2" or "raw"); name malloc'd; NULLs
 * when d has none or is no qcow2 image; -errno. */
int qcow2_backing_of(struct disk *d, char **path, const char **format);

bool qcow2_probe(const uint8_t *buf, size_t len);

#endif
