/* What fw_cfg tells firmware (SeaBIOS, OVMF) about vessel's x86 machine:
 * RAM size and map (etc/e820), CPUs, no graphics, no boot menu, the boot
 * order (virtio-blk PCI functions as OpenFirmware paths), the kernel
 * command line where one is given and the ACPI tables through
 * etc/table-loader. */
#ifndef VESSEL_X86_FW_CFG_ITEMS_H
#define VESSEL_X86_FW_CFG_ITEMS_H

#include "hw/fw_cfg.h"
#include "x86/acpi.h"
#include "x86/boot.h"

struct x86_fw_cfg_config {
    const struct x86_ram_layout *ram;
    unsigned ncpus;
    const char *cmdline; /* NULL: none */
    /* the tables' layout (its base is ignored: the loader places them) */
    const struct x86_acpi_config *acpi;
    /* PCI slots (bus 0, function 0) of the boot disks, first first */
    const unsigned *boot_slots;
    unsigned nboot;
};

int x86_fw_cfg_populate(struct fw_cfg *f, const struct x86_fw_cfg_config *c, vs_err *err);

#endif
