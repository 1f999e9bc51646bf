/* ACPI tables vessel generates for its x86 machine: RSDP, XSDT, FADT (with
 * PM1a event/control blocks, so `poweroff` writes SLP_TYP|SLP_EN and the
 * reset register), FACS, DSDT (AML: \_S5, the PCI host bridge PNP0A03 with
 * _CRS and _PRT, COM1 and the RTC) and MADT (local APICs, IOAPIC, interrupt
 * source overrides, LINT1 NMI). A pure builder over a buffer: the caller
 * copies the result to guest memory at `base`. */
#ifndef VESSEL_X86_ACPI_H
#define VESSEL_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct x86_acpi_config {
    uint64_t base; /* guest address of the blob; the RSDP is at offset 0 */
    unsigned ncpus;
    uint64_t pci_mmio32_start, pci_mmio32_end; /* [start, end) */
    uint64_t pci_mmio64_start, pci_mmio64_end;
    unsigned pci_gsi_base, pci_gsi_count; /* INTx of slot s, pin p -> base + (s+p)%count */
};

/* Build all tables into buf (size bytes); *used gets the bytes written. */
int x86_acpi_build(const struct x86_acpi_config *c, uint8_t *buf, size_t size, size_t *used,
                   vs_err *err);
/* Sum of bytes (a valid table sums to 0). */
uint8_t x86_acpi_checksum(const uint8_t *p, size_t len);
/* The GSI the _PRT gives slot/pin (0 = INTA). */
unsigned x86_acpi_pci_gsi(const struct x86_acpi_config *c, unsigned slot, unsigned pin);

#endif
