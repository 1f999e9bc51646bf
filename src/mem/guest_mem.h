/* Guest physical memory as device models see it: regions of host memory,
 * bound-checked translation from guest addresses, and a dirty bitmap for
 * writes made by the VMM itself (KVM's dirty log only sees vCPU writes;
 * the emulator marks its own). Device models never know which accelerator
 * runs the guest: they only hold a struct guest_mem.
 *
 * Regions can be added and removed while the VM runs (memory hot-plug,
 * balloon, virtio-mem). Writers (add, remove, enabling dirty tracking) take
 * the lock and publish a new layout; readers (every guest address a device
 * translates) use whatever layout is current without a lock. A layout is
 * never changed once published and stays readable until guest_mem_destroy,
 * so a reader never sees a half-made one. What a reader must not do is use
 * a pointer into a region while it is removed: remove only with the
 * region's users quiesced (the VM paused). */
#ifndef VESSEL_MEM_GUEST_MEM_H
#define VESSEL_MEM_GUEST_MEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define GUEST_PAGE_SIZE 4096ULL
/* A bound, not a table size: the most regions one VM may have (KVM
 * memslots are numbered below it; a snapshot with more is refused). */
#define GUEST_MEM_MAX_REGIONS 256

struct guest_mem_region {
    uint64_t gpa;  /* guest physical base */
    uint64_t size; /* bytes, a multiple of GUEST_PAGE_SIZE */
    uint8_t *hva;  /* host mapping */
    int fd;        /* memfd or snapshot file backing the region, or -1 */
    uint64_t fd_offset;
    uint64_t *dirty; /* one bit per page written by the VMM, or NULL */
    unsigned slot;   /* stable while the region exists (a KVM memslot number) */
};

/* The regions at one moment, in the order they were added. */
struct guest_mem_layout {
    unsigned n;
    struct guest_mem_region r[];
};

/* Told about every region added or removed, under the writer lock: add
 * before any reader can see the region (failing it fails the add), del
 * after no new reader can, before it is unmapped. */
struct guest_mem_listener {
    int (*region_add)(void *opaque, const struct guest_mem_region *r, vs_err *err);
    void (*region_del)(void *opaque, const struct guest_mem_region *r);
    void *opaque;
};

struct guest_mem {
    struct guest_mem_layout *layout;   /* current; read with guest_mem_layout() */
    pthread_mutex_t lock;              /* writers */
    struct guest_mem_retired *retired; /* old layouts and bitmaps, freed at destroy */
    uint64_t total;                    /* sum of region sizes */
    bool dirty_on;                     /* new regions get a dirty bitmap */
    struct guest_mem_listener listener;
};

void guest_mem_init(struct guest_mem *m);
/* Move everything m holds to dst (which must be initialised and empty);
 * m is left empty. Not while anyone reads either. */
void guest_mem_move(struct guest_mem *dst, struct guest_mem *m);
/* Map size bytes of anonymous shared memory (memfd, so it can be snapshotted
 * and shared) at gpa. */
int guest_mem_add_anon(struct guest_mem *m, uint64_t gpa, uint64_t size, vs_err *err);
/* Map size bytes of private anonymous memory at gpa, marked for the
 * kernel's same-page merging (KSM, --mergeable): KSM only merges private
 * anonymous pages, never a memfd's. A snapshot copies it through the
 * mapping. */
int guest_mem_add_mergeable(struct guest_mem *m, uint64_t gpa, uint64_t size, vs_err *err);
/* Add an existing host range; m owns hva (munmap) and fd (close) from a
 * successful call on. */
int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, uint8_t *hva, int fd,
                         uint64_t fd_offset, vs_err *err);
/* Remove the region that starts at gpa, unmap and close it (its users
 * quiesced). */
int guest_mem_remove_region(struct guest_mem *m, uint64_t gpa, vs_err *err);
void guest_mem_destroy(struct guest_mem *m);
/* From now on every region add and remove is told to l (NULL: nobody);
 * the regions already there are not replayed. */
void guest_mem_set_listener(struct guest_mem *m, const struct guest_mem_listener *l);

/* The current layout: never NULL, valid until guest_mem_destroy. */
static inline const struct guest_mem_layout *guest_mem_layout(const struct guest_mem *m)
{
    return __atomic_load_n(&m->layout, __ATOMIC_ACQUIRE);
}
static inline unsigned guest_mem_nregions(const struct guest_mem *m)
{
    return guest_mem_layout(m)->n;
}
/* Region i of the current layout (i < guest_mem_nregions). */
static inline const struct guest_mem_region *guest_mem_region(const struct guest_mem *m, unsigned i)
{
    return &guest_mem_layout(m)->r[i];
}

/* Host pointer for [gpa, gpa+len) if the whole range lies in one region,
 * else NULL. The only way a device turns a guest address into a pointer. */
void *guest_mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Same, for a range the VMM is about to write: marks it dirty. */
void *guest_mem_ptr_w(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy in/out with bounds checks; -1 if any byte is outside guest RAM. */
int guest_mem_read(struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len);

/* VMM-side dirty tracking (for diff snapshots and live migration), for
 * every region present and added later. */
int guest_mem_dirty_enable(struct guest_mem *m, vs_err *err);
void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy region i's VMM dirty bitmap into out (size/4096 bits) and clear it. */
void guest_mem_dirty_fetch(struct guest_mem *m, unsigned i, uint64_t *out);

#endif
