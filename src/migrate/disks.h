/* Disks that move with a live migration (`vessel vm migrate --copy-disks`):
 * every writable disk's content streams to the destination with the
 * memory, and the chunks the guest writes meanwhile are sent again, so a
 * VM on local disks moves whole (docs/migration.md).
 *
 * Source: tracking starts before the first chunk is read (virtio-blk marks
 * a chunk when a write to it completes); round 0 sends every chunk the
 * destination lacks (all non-zero ones, or for a qcow2 overlay whose
 * backing file the destination has too, only the overlay's own); every
 * later round, and the last one with the guest paused, sends the chunks
 * written since. Destination: creates each disk in its --storage
 * directory (raw stays raw; qcow2 stays qcow2, on the same backing file),
 * and writes the records into it through the machine's own disk. Records
 * are DISK / DISK_ZERO (migrate/wire.h) of at most MIG_DISK_CHUNK bytes. */
#ifndef VESSEL_MIGRATE_DISKS_H
#define VESSEL_MIGRATE_DISKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "block/disk.h"
#include "util/err.h"
#include "vm/config.h"
#include "vm/control.h"

#define MIG_DISK_CHUNK_SHIFT 16
#define MIG_DISK_CHUNK (1u << MIG_DISK_CHUNK_SHIFT)
#define MIG_DISK_INDEX_SHIFT 56
#define MIG_DISK_MAX_SIZE (1ull << MIG_DISK_INDEX_SHIFT)

/* ---- source ---- */

/* Sends one record; accounts, paces and checks for cancellation. */
typedef int (*mig_disk_send_fn)(void *opaque, uint32_t type, uint64_t off, const void *buf,
                                uint64_t len, vs_err *err);

struct mig_disks;
/* Start tracking every writable disk of the machine (none: *out NULL). */
int mig_disks_start(struct vm_control *ctl, struct mig_disks **out, vs_err *err);
/* The HELLO's "disks" array: index, size, format, backing file. */
json_t *mig_disks_hello(const struct mig_disks *md);
/* Round 0: what the destination lacks of every disk. */
int mig_disks_send_all(struct mig_disks *md, mig_disk_send_fn send, void *opaque, vs_err *err);
/* Take the chunks written since the last fetch; the bytes now pending. A
 * disk whose size changed is an error. */
int mig_disks_fetch(struct mig_disks *md, uint64_t *pending, vs_err *err);
/* Send the pending chunks (their content now). */
int mig_disks_send_dirty(struct mig_disks *md, mig_disk_send_fn send, void *opaque, vs_err *err);
/* Stop tracking and free (NULL-safe). */
void mig_disks_stop(struct mig_disks *md);

/* ---- destination ---- */

struct mig_disk_in {
    unsigned index; /* in the configuration's disk list */
    uint64_t size;  /* bytes */
    char format[8]; /* raw, qcow2 */
    char *backing;  /* qcow2: the backing file both hosts have, or NULL */
    char *backing_format;
    char *path;        /* created here (malloc'd) */
    struct disk *disk; /* the machine's, once built */
};

struct mig_disks_in {
    unsigned n;
    struct mig_disk_in d[VM_MAX_DISKS];
    uint8_t *buf; /* one chunk */
};

/* The HELLO's "disks" (absent: none), checked against the configuration. */
int mig_disks_in_parse(struct mig_disks_in *di, const json_t *disks, const struct vm_config *cfg,
                       vs_err *err);
/* Create each disk in dir (refused: no dir, a file already there) and
 * point cfg's disks at them. An overlay's backing file (relative names
 * relative to dir, as qcow2 has them) must lie in dir or in one of the
 * allowed directories: the source names it, and the guest reads it. */
int mig_disks_in_create(struct mig_disks_in *di, const char *dir, const char *const *allowed,
                        unsigned nallowed, struct vm_config *cfg, vs_err *err);
/* The machine is built: find its disks. */
int mig_disks_in_attach(struct mig_disks_in *di, struct vm_control *ctl, vs_err *err);
/* Whether a record's disk and range are acceptable: the disk index (or -1)
 * and the byte offset in it. */
int mig_disks_in_check(const struct mig_disks_in *di, uint64_t off, uint64_t len,
                       struct mig_disk_in **d, uint64_t *at, vs_err *err);
/* Make the received disks durable. */
int mig_disks_in_flush(struct mig_disks_in *di, vs_err *err);
/* Free; with remove, delete the files created (the migration failed). */
void mig_disks_in_free(struct mig_disks_in *di, bool remove);

#endif
