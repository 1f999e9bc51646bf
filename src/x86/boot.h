/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst) as pure
 * functions over buffers: parse and check a bzImage setup header, build the
 * e820 map and the "zero page" (struct boot_params), place the initrd, and
 * parse an ELF vmlinux (PT_LOAD segments, the PVH entry note). Nothing here
 * touches KVM, so the unit tests and fuzzers drive it directly. */
#ifndef VESSEL_X86_BOOT_H
#define VESSEL_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

/* Offsets inside struct boot_params (zero-page.rst) and the setup header. */
enum {
    BP_ACPI_RSDP_ADDR = 0x070,
    BP_EXT_RAMDISK_IMAGE = 0x0c0,
    BP_EXT_RAMDISK_SIZE = 0x0c4,
    BP_EXT_CMD_LINE_PTR = 0x0c8,
    BP_E820_ENTRIES = 0x1e8,
    BP_SENTINEL = 0x1ef,
    BP_HDR = 0x1f1, /* struct setup_header starts here */
    BP_E820_TABLE = 0x2d0,
    BP_SIZE = 0x1000,

    HDR_SETUP_SECTS = 0x1f1,
    HDR_BOOT_FLAG = 0x1fe,
    HDR_JUMP = 0x200,
    HDR_HEADER = 0x202,
    HDR_VERSION = 0x206,
    HDR_TYPE_OF_LOADER = 0x210,
    HDR_LOADFLAGS = 0x211,
    HDR_CODE32_START = 0x214,
    HDR_RAMDISK_IMAGE = 0x218,
    HDR_RAMDISK_SIZE = 0x21c,
    HDR_HEAP_END_PTR = 0x224,
    HDR_CMD_LINE_PTR = 0x228,
    HDR_INITRD_ADDR_MAX = 0x22c,
    HDR_KERNEL_ALIGNMENT = 0x230,
    HDR_RELOCATABLE = 0x234,
    HDR_XLOADFLAGS = 0x236,
    HDR_CMDLINE_SIZE = 0x238,
    HDR_PREF_ADDRESS = 0x258,
    HDR_INIT_SIZE = 0x260,
};
#define BP_E820_MAX 128
#define HDR_MAGIC 0x53726448u /* "HdrS" */
#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02

enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct x86_e820_entry {
    uint64_t addr, size;
    uint32_t type;
};

/* Where a machine's RAM goes, computed once from its size: low RAM from 0
 * up to the 32-bit PCI hole at 3 GiB, the rest from 4 GiB; the 64-bit PCI
 * window starts at the first 1 GiB boundary above RAM. */
struct x86_ram_layout {
    uint64_t size;         /* all of it */
    uint64_t low, high;    /* bytes from 0 and from 4 GiB */
    uint64_t mmio64_start; /* 64-bit PCI MMIO window */
};
void x86_ram_layout(uint64_t mem_size, struct x86_ram_layout *out);
/* The PC memory map for that RAM: RAM below the EBDA, the EBDA and BIOS
 * areas reserved (the ACPI tables live there), RAM from 1 MiB to the PCI
 * hole and the rest above 4 GiB. Returns the number of entries (at most 5). */
unsigned x86_e820_build(const struct x86_ram_layout *ram, struct x86_e820_entry *out, unsigned max);

struct x86_bzimage {
    uint16_t version;
    uint8_t loadflags;
    uint16_t xloadflags;
    size_t setup_size; /* boot sector + setup sectors, in bytes */
    size_t hdr_end;    /* setup header ends at this file offset */
    size_t kernel_offset, kernel_size;
    uint32_t initrd_addr_max, kernel_alignment, cmdline_size, init_size;
    bool relocatable;
    uint64_t pref_address;
};

/* Check that img is a bzImage vessel can start in 64-bit mode: boot flag,
 * "HdrS", protocol >= 2.10, LOADED_HIGH, XLF_KERNEL_64 (2.12+). One line in
 * err saying what is wrong otherwise. */
int x86_bzimage_parse(const uint8_t *img, size_t len, struct x86_bzimage *out, vs_err *err);

/* Place an initrd of size bytes: the highest page-aligned address such that
 * it ends at or below both limit (initrd_addr_max + 1) and ram_end, and
 * starts at or above floor (the end of the kernel's memory). */
int x86_initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t ram_end,
                     uint64_t *addr, vs_err *err);

struct x86_boot_params_in {
    const uint8_t *image; /* bzImage, to copy its setup header; NULL for ELF */
    const struct x86_bzimage *bz;
    uint64_t cmdline_addr;
    uint32_t cmdline_len; /* without the NUL */
    uint64_t initrd_addr, initrd_size;
    const struct x86_e820_entry *e820;
    unsigned ne820;
    uint64_t rsdp_addr;
};
/* Fill zp (BP_SIZE bytes). */
int x86_boot_params_build(uint8_t *zp, const struct x86_boot_params_in *in, vs_err *err);

/* ELF64 (or ELF32) x86 executable: PT_LOAD segments by physical address. */
#define X86_ELF_MAX_SEGS 16
struct x86_elf_seg {
    uint64_t paddr, filesz, memsz, offset;
};
struct x86_elf {
    bool is64;
    uint64_t entry;
    bool has_pvh;
    uint32_t pvh_entry; /* XEN_ELFNOTE_PHYS32_ENTRY */
    struct x86_elf_seg segs[X86_ELF_MAX_SEGS];
    unsigned nsegs;
    uint64_t lowest, highest; /* physical span of the segments */
};
/* true if img starts with the ELF magic. */
bool x86_is_elf(const uint8_t *img, size_t len);
int x86_elf_parse(const uint8_t *img, size_t len, struct x86_elf *out, vs_err *err);

/* PVH start info (xen/include/public/arch-x86/hvm/start_info.h). */
#define PVH_START_MAGIC 0x336ec578u
struct pvh_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct pvh_module {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct pvh_memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

#endif
