/* A PCI host bridge with one bus (bus 0), configuration mechanism #1 on
 * ports 0xCF8/0xCFC (and optionally ECAM MMIO), and BARs that the VMM
 * assigns up front so a firmware-less guest finds them programmed; a guest
 * that resizes or moves a BAR is followed (the bus re-registers the region).
 *
 * A device fills in its config header (vendor, device, class, capabilities),
 * marks which config bits the guest may write (wmask), declares BARs, and
 * registers. The bus owns the BAR and command-register semantics. */
#ifndef VESSEL_HW_PCI_H
#define VESSEL_HW_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "hw/bus.h"
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

#define PCI_MAX_DEVICES 32
#define PCI_CFG_SIZE 256

struct pci_bar {
    uint64_t size; /* 0 = unused; a power of two */
    bool io;       /* port I/O BAR (else 32- or 64-bit memory) */
    bool mem64;
    uint64_t addr;   /* current guest address (set by the bus) */
    io_read_fn read; /* offsets are relative to the BAR */
    io_write_fn write;
};

struct pci_bus;

struct pci_device {
    const char *name;
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change outside BARs/command */
    struct pci_bar bars[6];
    void *opaque; /* passed to bar read/write */
    /* Optional: called after the guest wrote config space (e.g. MSI-X enable). */
    void (*config_written)(struct pci_device *d, uint32_t offset, unsigned len);
    /* Set by the bus at registration. */
    struct pci_bus *bus;
    unsigned slot;        /* device number on bus 0 */
    struct irq_line intx; /* INTA# routed to a GSI */
    struct msi_sink *msi; /* the machine's MSI delivery */
};

struct pci_bus {
    struct io_bus *pio, *mmio;
    struct pci_device *devs[PCI_MAX_DEVICES];
    uint32_t cf8;                     /* CONFIG_ADDRESS latch */
    uint64_t mmio32_next, mmio32_end; /* window for 32-bit BARs */
    uint64_t mmio64_next, mmio64_end; /* window for 64-bit BARs */
    uint32_t pio_next, pio_end;
    /* Called to give slot its INTx line (GSI) and the MSI sink. */
    void (*route_intx)(void *opaque, unsigned slot, struct irq_line *out);
    struct msi_sink *msi;
    void *machine;
    /* Optional (KVM: KVM_IOEVENTFD): make a guest write of len bytes at
     * addr (memory space, or port space if pio) signal eventfd fd without an
     * exit to the VMM; with datamatch only writes of that value. assign =
     * false removes it. Returns 0, or -1 if unsupported: then the write
     * reaches the BAR's write callback as usual. A BAR that moves keeps its
     * ioeventfds only if the device re-registers them (config_written). */
    int (*ioeventfd)(void *machine, uint64_t addr, unsigned len, bool pio, bool datamatch,
                     uint64_t data, int fd, bool assign);
    /* Bus-private: config accesses from several vCPUs, and where each BAR
     * is registered on its io_bus while decoding is enabled. */
    pthread_mutex_t lock;
    bool bar_mapped[PCI_MAX_DEVICES][6];
    uint64_t bar_mapped_at[PCI_MAX_DEVICES][6];
};

/* Standard header offsets used by device models. */
enum {
    PCI_VENDOR_ID = 0x00,
    PCI_DEVICE_ID = 0x02,
    PCI_COMMAND = 0x04,
    PCI_STATUS = 0x06,
    PCI_REVISION_ID = 0x08,
    PCI_CLASS_PROG = 0x09,
    PCI_CLASS_DEVICE = 0x0a,
    PCI_HEADER_TYPE = 0x0e,
    PCI_BAR0 = 0x10,
    PCI_SUBSYSTEM_VENDOR_ID = 0x2c,
    PCI_SUBSYSTEM_ID = 0x2e,
    PCI_CAPABILITY_LIST = 0x34,
    PCI_INTERRUPT_LINE = 0x3c,
    PCI_INTERRUPT_PIN = 0x3d,
};
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_INTX_DISABLE 0x400

int pci_bus_init(struct pci_bus *b, struct io_bus *pio, struct io_bus *mmio, vs_err *err);
/* Assign a slot and BAR addresses, register the BARs; d must outlive the bus. */
int pci_register_device(struct pci_bus *b, struct pci_device *d, vs_err *err);
/* Take d off the bus (its BARs stop decoding, its slot is free; the
 * address space its BARs had is not given again). 0, or -1 if d is not on
 * b. Its users quiesced: no vCPU inside its BAR handlers. */
int pci_unregister_device(struct pci_bus *b, struct pci_device *d);
/* Config access as the guest makes it (also used by an ECAM window). */
uint32_t pci_config_read(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, unsigned len);
void pci_config_write(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, uint32_t val,
                      unsigned len);
/* Unregister the config ports and every mapped BAR. */
void pci_bus_destroy(struct pci_bus *b);
/* Config space of every device (section "pci-config", instance = slot);
 * load re-maps the BARs where the saved config puts them. */
void pci_bus_save(struct pci_bus *b, struct state_writer *w);
int pci_bus_load(struct pci_bus *b, struct state_reader *r, vs_err *err);

#endif
