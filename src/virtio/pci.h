/* virtio-pci, modern interface only (virtio 1.2, 4.1): vendor capabilities
 * pointing at the common, notify, ISR and device-config windows of BAR 0,
 * and an MSI-X table (one vector per queue plus one for config changes) in
 * the same BAR. INTx with the ISR register is the fallback when the driver
 * does not enable MSI-X. */
#ifndef VESSEL_VIRTIO_PCI_H
#define VESSEL_VIRTIO_PCI_H

#include "hw/pci.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_MSIX_MAX (VIRTIO_MAX_QUEUES + 1)

/* BAR 0 layout. */
#define VP_COMMON_OFF 0x0000
#define VP_COMMON_LEN 0x40
#define VP_ISR_OFF 0x1000
#define VP_DEVICE_OFF 0x2000
#define VP_NOTIFY_OFF 0x3000
#define VP_NOTIFY_MULT 4
#define VP_MSIX_TABLE_OFF 0x4000
#define VP_MSIX_PBA_OFF 0x5000
#define VP_BAR0_SIZE 0x8000

/* Config-space capability offsets. */
#define VP_CAP_MSIX 0x40

struct virtio_pci {
    struct pci_device pci;
    struct virtio_dev *dev;
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    uint16_t msix_config;
    unsigned nvec;
    struct {
        uint32_t addr_lo, addr_hi, data, ctrl;
    } msix[VIRTIO_PCI_MSIX_MAX];
    uint64_t pba;
    bool msix_enabled, msix_masked;
    /* Queue kicks the hypervisor turns into eventfd signals (ioeventfd). */
    uint64_t ioev_addr[VIRTIO_MAX_QUEUES];
    int ioev_fd[VIRTIO_MAX_QUEUES];
    bool ioev_on[VIRTIO_MAX_QUEUES];
    /* Per MSI-X entry: an irqfd bound to the (addr, data) it was made for,
     * or -1 (then vectors go through msi_sink.signal). Derived from the
     * table, never saved. */
    int irqfd[VIRTIO_PCI_MSIX_MAX];
    uint64_t irqfd_addr[VIRTIO_PCI_MSIX_MAX];
    uint32_t irqfd_data[VIRTIO_PCI_MSIX_MAX];
};

/* Fill the PCI function (config header, capabilities, BAR 0); the caller
 * registers vp->pci on its bus. */
void virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *dev);
/* Bring the ioeventfds in line with the queues and BAR 0 (after status,
 * queue or config-space changes); a no-op without bus support. */
void virtio_pci_sync_ioeventfds(struct virtio_pci *vp);
/* Give back the irqfds (the device's threads must be stopped). */
void virtio_pci_release(struct virtio_pci *vp);
uint64_t virtio_pci_bar_read(void *opaque, uint64_t off, unsigned len);
void virtio_pci_bar_write(void *opaque, uint64_t off, uint64_t val, unsigned len);
void virtio_pci_save(struct virtio_pci *vp, struct state_writer *w, uint32_t instance);
int virtio_pci_load(struct virtio_pci *vp, struct state_reader *r, uint32_t instance, vs_err *err);

#endif
