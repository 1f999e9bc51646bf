/* Guest physical memory as device models see it: a few regions of host
 * memory, bound-checked translation from guest addresses, and a dirty bitmap
 * for writes made by the VMM itself (KVM's dirty log only sees vCPU writes;
 * the emulator marks its own). Device models never know which accelerator
 * runs the guest: they only hold a struct guest_mem. */
#ifndef VESSEL_MEM_GUEST_MEM_H
#define VESSEL_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define GUEST_PAGE_SIZE 4096ULL
#define GUEST_MEM_MAX_REGIONS 8

struct guest_mem_region {
    uint64_t gpa;  /* guest physical base */
    uint64_t size; /* bytes, a multiple of GUEST_PAGE_SIZE */
    uint8_t *hva;  /* host mapping */
    int fd;        /* memfd or snapshot file backing the region, or -1 */
    uint64_t fd_offset;
    uint64_t *dirty; /* one bit per page written by the VMM, or NULL */
};

struct guest_mem {
    struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
    unsigned nregions;
    uint64_t total; /* sum of region sizes */
};

void guest_mem_init(struct guest_mem *m);
/* Map size bytes of anonymous shared memory (memfd, so it can be snapshotted
 * and shared) at gpa. */
int guest_mem_add_anon(struct guest_mem *m, uint64_t gpa, uint64_t size, vs_err *err);
/* Map an existing host range (caller keeps ownership of hva/fd). */
int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, uint8_t *hva, int fd,
                         uint64_t fd_offset, vs_err *err);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if the whole range lies in one region,
 * else NULL. The only way a device turns a guest address into a pointer. */
void *guest_mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Same, for a range the VMM is about to write: marks it dirty. */
void *guest_mem_ptr_w(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy in/out with bounds checks; -1 if any byte is outside guest RAM. */
int guest_mem_read(struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len);

/* VMM-side dirty tracking (for diff snapshots and live migration). */
int guest_mem_dirty_enable(struct guest_mem *m, vs_err *err);
void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy region i's VMM dirty bitmap into out (size/4096 bits) and clear it. */
void guest_mem_dirty_fetch(struct guest_mem *m, unsigned i, uint64_t *out);

#endif
