/* An address space of device regions: the x86 port-I/O space, an MMIO space,
 * or the RISC-V board's physical bus. Devices register callbacks; the
 * accelerator (KVM exit handler, emulator load/store) dispatches accesses. */
#ifndef VESSEL_HW_BUS_H
#define VESSEL_HW_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "util/err.h"

/* len is 1, 2, 4 or 8; offset is relative to the region base; data is
 * little-endian in a uint64_t. */
typedef uint64_t (*io_read_fn)(void *opaque, uint64_t offset, unsigned len);
typedef void (*io_write_fn)(void *opaque, uint64_t offset, uint64_t value, unsigned len);

struct io_region {
    const char *name;
    uint64_t base, size;
    io_read_fn read;
    io_write_fn write;
    void *opaque;
};

struct io_bus {
    const char *name;
    struct io_region *regions; /* sorted by base */
    unsigned n, cap;
    pthread_rwlock_t lock; /* PCI BAR moves change the map at run time */
};

void io_bus_init(struct io_bus *b, const char *name);
void io_bus_destroy(struct io_bus *b);
int io_bus_register(struct io_bus *b, const struct io_region *r, vs_err *err);
/* Remove the region that starts at base for this opaque; 0 if found. */
int io_bus_unregister(struct io_bus *b, uint64_t base, void *opaque);
/* Dispatch; false if no device claims addr (reads then return all ones). */
bool io_bus_read(struct io_bus *b, uint64_t addr, unsigned len, uint64_t *value);
bool io_bus_write(struct io_bus *b, uint64_t addr, uint64_t value, unsigned len);

#endif
