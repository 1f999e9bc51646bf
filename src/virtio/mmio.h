/* virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): a 0x200-byte
 * register window per device and one interrupt line. */
#ifndef VESSEL_VIRTIO_MMIO_H
#define VESSEL_VIRTIO_MMIO_H

#include "hw/bus.h"
#include "hw/irq.h"
#include "virtio/virtio.h"

#define VIRTIO_MMIO_SIZE 0x200

/* VendorID register values: vessel's own ("VSSL") and QEMU's ("QEMU"), which
 * some guests written for QEMU's virt board check for. */
#define VIRTIO_MMIO_VENDOR_VESSEL 0x4c535356u
#define VIRTIO_MMIO_VENDOR_QEMU 0x554d4551u

struct virtio_mmio {
    struct virtio_dev *dev;
    struct irq_line irq;
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    uint32_t vendor_id; /* VIRTIO_MMIO_VENDOR_VESSEL unless the board says otherwise */
    uint64_t base;
};

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev, const struct irq_line *irq,
                      uint64_t base);
/* Register window [base, base+VIRTIO_MMIO_SIZE) on bus. */
int virtio_mmio_register(struct virtio_mmio *m, struct io_bus *bus, vs_err *err);
uint64_t virtio_mmio_read(void *opaque, uint64_t off, unsigned len);
void virtio_mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned len);
void virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w, uint32_t instance);
int virtio_mmio_load(struct virtio_mmio *m, struct state_reader *r, uint32_t instance, vs_err *err);

#endif
