/* The device tree of the riscv64 board, generated with libfdt from the
 * configured machine (what QEMU's virt board describes, minus what vessel
 * does not emulate): memory, cpus with their interrupt controllers, CLINT,
 * PLIC, the NS16550 UART, the SiFive test device with syscon poweroff and
 * reboot nodes, the virtio-mmio slots in use, and /chosen (bootargs,
 * stdout-path, initrd). OpenSBI, U-Boot and Linux all read it. */
#ifndef VESSEL_RISCV_FDT_H
#define VESSEL_RISCV_FDT_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define RV_FDT_MAX_VIRTIO 8

struct rv_fdt_config {
    unsigned nharts;
    uint64_t ram_base, ram_size;
    const char *isa;                   /* riscv,isa of every cpu */
    const char *mmu_type;              /* "riscv,sv39", "riscv,sv48" */
    const char *bootargs;              /* NULL: no bootargs property */
    uint64_t initrd_start, initrd_end; /* both 0: no initrd */
    unsigned nvirtio;
    uint64_t virtio_base[RV_FDT_MAX_VIRTIO], virtio_size;
    unsigned virtio_irq[RV_FDT_MAX_VIRTIO];
};

/* Build the blob into a malloc'd buffer (*out, *len: the packed size). */
int rv_fdt_build(const struct rv_fdt_config *c, void **out, size_t *len, vs_err *err);

#endif
