/* How a machine (x86/KVM or the RISC-V board) plugs vessel's virtio devices
 * into its own bus. The device models are the same for both; only the
 * transport differs (virtio-pci on x86, virtio-mmio on the RISC-V board). */
#ifndef VESSEL_VIRTIO_MACHINE_GLUE_H
#define VESSEL_VIRTIO_MACHINE_GLUE_H

#include <stdint.h>
#include "hw/bus.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "mem/guest_mem.h"
#include "state/state.h"
#include "util/event_loop.h"
#include "vm/config.h"

struct virtio_set; /* all virtio devices of one VM */
struct virtio_dev;

/* x86: one virtio-pci function per device from cfg (disks, nets, rng,
 * virtio-console, vsock) on the PCI bus; I/O handled on `loop` or device
 * threads. *out is the machine's device list (empty when cfg asks for no
 * device: devices may be added later). */
int virtio_setup_pci(const struct vm_config *cfg, struct guest_mem *mem, struct pci_bus *pci,
                     struct vs_event_loop *loop, struct virtio_set **out, vs_err *err);

/* RISC-V board: device i goes in MMIO slot base + i*stride with its own
 * interrupt line irqs[i]; returns the number of slots used in *nused (the
 * board describes them in the device tree). */
struct virtio_mmio_slot_info {
    uint64_t base, size;
    unsigned irq_index;
};
int virtio_setup_mmio(const struct vm_config *cfg, struct guest_mem *mem, struct io_bus *mmio,
                      uint64_t base, uint64_t stride, const struct irq_line *irqs, unsigned nslots,
                      struct vs_event_loop *loop, struct virtio_set **out, unsigned *nused,
                      vs_err *err);

/* The device list on its own, for a machine that adds its devices itself:
 * plugged into pci, or into MMIO slot i at base + i * stride with interrupt
 * line irqs[i] (vendor_id: the transport's VendorID, 0 for vessel's). */
int virtio_set_new_pci(struct pci_bus *pci, struct virtio_set **out, vs_err *err);
int virtio_set_new_mmio(struct io_bus *mmio, uint64_t base, uint64_t stride,
                        const struct irq_line *irqs, unsigned nslots, uint32_t vendor_id,
                        struct virtio_set **out, vs_err *err);
/* Plug d (from a virtio_*_new) into a free slot of the set's transport,
 * while the machine runs or not; the set owns d from the call on, even on
 * failure (NULL d: its constructor failed, -1 with its message). A device
 * added to a paused set is paused too. Its state sections take the next
 * instance number (boot devices: 0, 1, ... in config order). */
int virtio_set_add(struct virtio_set *s, struct virtio_dev *d, vs_err *err);
/* Unplug d and free it. Its users quiesced: the machine paused (no vCPU
 * inside its registers), the guest's driver told. */
int virtio_set_remove(struct virtio_set *s, struct virtio_dev *d, vs_err *err);
unsigned virtio_set_count(struct virtio_set *s);

/* Call fn for each device, in the order they were added, until it fails
 * (its return value), with the list held: fn must not add or remove. NULL
 * s: no device. */
int virtio_set_foreach(struct virtio_set *s,
                       int (*fn)(struct virtio_dev *d, void *opaque, vs_err *err), void *opaque,
                       vs_err *err);

/* Quiesce (finish or record in-flight requests) before a snapshot. */
int virtio_set_pause(struct virtio_set *s, vs_err *err);
void virtio_set_resume(struct virtio_set *s);
int virtio_set_save(struct virtio_set *s, struct state_writer *w, vs_err *err);
int virtio_set_load(struct virtio_set *s, struct state_reader *r, vs_err *err);
void virtio_set_destroy(struct virtio_set *s);

#endif
