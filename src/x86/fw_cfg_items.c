#include "x86/fw_cfg_items.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "x86/layout.h"

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* etc/e820: packed {le64 address, le64 length, le32 type}; RAM only, as
 * QEMU gives it (the firmware reserves its own areas). */
static int add_e820(struct fw_cfg *f, const struct x86_ram_layout *ram, vs_err *err)
{
    uint8_t e[2 * 20];
    unsigned n = 0;
    put_le(e, 0, 8);
    put_le(e + 8, ram->low, 8);
    put_le(e + 16, E820_RAM, 4);
    n++;
    if (ram->high) {
        put_le(e + 20, X86_RAM_4G, 8);
        put_le(e + 28, ram->high, 8);
        put_le(e + 36, E820_RAM, 4);
        n++;
    }
    return fw_cfg_add_file(f, "etc/e820", e, 20 * n, err);
}

/* bootorder: one OpenFirmware path a line; SeaBIOS matches a virtio-blk
 * function by the "/pci@i0cf8/ANY@SLOT" prefix, OVMF by the full path. */
static int add_bootorder(struct fw_cfg *f, const unsigned *slots, unsigned n, vs_err *err)
{
    if (!n)
        return 0;
    char *buf = calloc(n, 40);
    if (!buf)
        return vs_error(err, ENOMEM, "fw_cfg: out of memory");
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, 40, "/pci@i0cf8/scsi@%x/disk@0,0\n", slots[i] & 0x1f);
    buf[--len] = 0; /* newlines between entries, none after the last */
    int rc = fw_cfg_add_file(f, "bootorder", buf, (uint32_t)len + 1, err);
    free(buf);
    return rc;
}

int x86_fw_cfg_populate(struct fw_cfg *f, const struct x86_fw_cfg_config *c, vs_err *err)
{
    uint8_t no_menu[2] = {0, 0};
    if (fw_cfg_add_u64(f, FW_CFG_RAM_SIZE, c->ram->size, err) < 0 ||
        fw_cfg_add_u16(f, FW_CFG_NB_CPUS, (uint16_t)c->ncpus, err) < 0 ||
        fw_cfg_add_u16(f, FW_CFG_MAX_CPUS, (uint16_t)c->ncpus, err) < 0 ||
        fw_cfg_add_u16(f, FW_CFG_NOGRAPHIC, 1, err) < 0 ||
        fw_cfg_add_u16(f, FW_CFG_BOOT_MENU, 0, err) < 0 ||
        fw_cfg_add_file(f, "etc/show-boot-menu", no_menu, 2, err) < 0 ||
        add_e820(f, c->ram, err) < 0 || add_bootorder(f, c->boot_slots, c->nboot, err) < 0)
        return -1;
    if (c->cmdline) {
        uint32_t n = (uint32_t)strlen(c->cmdline) + 1;
        if (fw_cfg_add_u32(f, FW_CFG_CMDLINE_SIZE, n, err) < 0 ||
            fw_cfg_add_bytes(f, FW_CFG_CMDLINE_DATA, c->cmdline, n, err) < 0)
            return -1;
    }
    if (!c->acpi)
        return 0;
    struct x86_acpi_config ac = *c->acpi;
    ac.base = 0; /* pointers as offsets: the loader relocates them */
    size_t cap = X86_ACPI_SIZE, used;
    uint8_t *blob = calloc(1, cap);
    if (!blob)
        return vs_error(err, ENOMEM, "fw_cfg: out of memory");
    int rc = x86_acpi_build(&ac, blob, cap, &used, err);
    if (rc == 0)
        rc = fw_cfg_add_acpi(f, blob, (uint32_t)used, err);
    free(blob);
    return rc;
}
