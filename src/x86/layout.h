/* The guest-physical memory map of vessel's x86 machine (see
 * docs/x86-machine.md). Low memory follows the PC: real-mode area, EBDA,
 * BIOS area with the ACPI tables; RAM above 1 MiB up to the 32-bit PCI
 * hole, the rest of RAM above 4 GiB. */
#ifndef VESSEL_X86_LAYOUT_H
#define VESSEL_X86_LAYOUT_H

#define X86_GDT_ADDR 0x500ULL
#define X86_BOOT_PARAMS_ADDR 0x7000ULL /* the "zero page" */
#define X86_PML4_ADDR 0x9000ULL
#define X86_PDPT_ADDR 0xa000ULL
#define X86_PD_ADDR 0xb000ULL    /* 4 pages: identity map of the low 4 GiB */
#define X86_BOOT_STACK 0x8ff0ULL /* below the page tables, for the ELF entry */
#define X86_CMDLINE_ADDR 0x20000ULL
#define X86_CMDLINE_MAX 0x10000ULL
#define X86_EBDA_START 0x9fc00ULL
#define X86_LOWMEM_END 0xa0000ULL /* VGA hole starts here */
#define X86_BIOS_START 0xe0000ULL
#define X86_ACPI_ADDR 0xe0000ULL /* RSDP first, then the other tables */
#define X86_ACPI_SIZE 0x20000ULL
#define X86_HIGHMEM_START 0x100000ULL /* 1 MiB: where kernels load */

#define X86_MMIO32_START 0xc0000000ULL /* RAM below 4 GiB ends here */
#define X86_PCI_MMIO32_END 0xfec00000ULL
#define X86_IOAPIC_ADDR 0xfec00000ULL
#define X86_LAPIC_ADDR 0xfee00000ULL
#define X86_TSS_ADDR 0xfffbd000ULL /* 3 pages KVM needs on Intel */
#define X86_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define X86_RAM_4G 0x100000000ULL

/* I/O ports of the ACPI fixed hardware (FADT) and other devices. */
#define X86_PM1A_EVT_PORT 0x600
#define X86_PM1A_CNT_PORT 0x604
#define X86_PM_TMR_PORT 0x608
#define X86_RESET_PORT 0xcf9
#define X86_SCI_IRQ 9
#define X86_SLP_TYP_S5 5

#define X86_COM1_PORT 0x3f8
#define X86_COM1_IRQ 4
#define X86_IOAPIC_PINS 24

/* Legacy IRQs 0-15 keep their GSI (ISA), except IRQ0 -> GSI2. PCI INTx
 * lines use GSIs 16-23. */
#define X86_PCI_GSI_BASE 16

#endif
