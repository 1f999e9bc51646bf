#include "x86/boot.h"

#include <errno.h>
#include <string.h>
#include "util/cleanup.h"
#include "x86/layout.h"

#define PAGE 4096ULL

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr8(uint8_t *p, uint8_t v)
{
    p[0] = v;
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)v);
    wr16(p + 2, (uint16_t)(v >> 16));
}
static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

void x86_ram_layout(uint64_t mem_size, struct x86_ram_layout *out)
{
    const uint64_t gib = 1ULL << 30;
    out->size = mem_size;
    out->low = mem_size < X86_MMIO32_START ? mem_size : X86_MMIO32_START;
    out->high = mem_size - out->low;
    out->mmio64_start = ALIGN_UP(X86_RAM_4G + out->high, gib);
}

unsigned x86_e820_build(const struct x86_ram_layout *ram, struct x86_e820_entry *out, unsigned max)
{
    uint64_t low = ram->low, high = ram->high;
    struct x86_e820_entry e[5];
    unsigned n = 0;
    e[n++] = (struct x86_e820_entry){0, X86_EBDA_START, E820_RAM};
    e[n++] =
        (struct x86_e820_entry){X86_EBDA_START, X86_LOWMEM_END - X86_EBDA_START, E820_RESERVED};
    e[n++] =
        (struct x86_e820_entry){X86_BIOS_START, X86_HIGHMEM_START - X86_BIOS_START, E820_RESERVED};
    if (low > X86_HIGHMEM_START)
        e[n++] = (struct x86_e820_entry){X86_HIGHMEM_START, low - X86_HIGHMEM_START, E820_RAM};
    if (high)
        e[n++] = (struct x86_e820_entry){X86_RAM_4G, high, E820_RAM};
    if (n > max)
        n = max;
    memcpy(out, e, n * sizeof(*e));
    return n;
}

int x86_bzimage_parse(const uint8_t *img, size_t len, struct x86_bzimage *out, vs_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len < 0x300 || rd16(img + HDR_BOOT_FLAG) != 0xaa55 || rd32(img + HDR_HEADER) != HDR_MAGIC)
        return vs_error(err, EINVAL, "not a bzImage (no boot flag or \"HdrS\" setup header)");
    out->version = rd16(img + HDR_VERSION);
    if (out->version < 0x020a)
        return vs_error(err, EINVAL, "bzImage boot protocol %u.%02u is too old (need 2.10)",
                        out->version >> 8, out->version & 0xff);
    out->loadflags = img[HDR_LOADFLAGS];
    if (!(out->loadflags & LOADFLAG_LOADED_HIGH))
        return vs_error(err, EINVAL, "zImage (not loaded high) is not supported");
    /* The setup header ends where the jump at 0x200 lands. */
    out->hdr_end = 0x202 + img[HDR_JUMP + 1];
    if (out->hdr_end > len)
        out->hdr_end = len;
    if (out->version >= 0x020c) {
        out->xloadflags = rd16(img + HDR_XLOADFLAGS);
        if (!(out->xloadflags & XLF_KERNEL_64))
            return vs_error(err, EINVAL, "bzImage has no 64-bit entry point (32-bit kernel?)");
    }
    unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    out->setup_size = (size_t)(sects + 1) * 512;
    if (out->setup_size >= len)
        return vs_error(err, EINVAL, "bzImage is truncated (setup is %zu bytes of %zu)",
                        out->setup_size, len);
    out->kernel_offset = out->setup_size;
    out->kernel_size = len - out->setup_size;
    out->initrd_addr_max = rd32(img + HDR_INITRD_ADDR_MAX);
    if (!out->initrd_addr_max)
        out->initrd_addr_max = 0x37ffffff;
    out->kernel_alignment = rd32(img + HDR_KERNEL_ALIGNMENT);
    out->relocatable = img[HDR_RELOCATABLE] != 0;
    out->cmdline_size = out->version >= 0x0206 ? rd32(img + HDR_CMDLINE_SIZE) : 255;
    out->pref_address = out->version >= 0x020a ? rd64(img + HDR_PREF_ADDRESS) : 0;
    out->init_size = out->version >= 0x020a ? rd32(img + HDR_INIT_SIZE) : 0;
    if (out->init_size < out->kernel_size)
        out->init_size = (uint32_t)out->kernel_size;
    return 0;
}

int x86_initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t ram_end,
                     uint64_t *addr, vs_err *err)
{
    uint64_t top = limit < ram_end ? limit : ram_end;
    top &= ~(PAGE - 1);
    if (!size || size > top || ((top - size) & ~(PAGE - 1)) < floor)
        return vs_error(err, ENOSPC, "%llu MiB do not fit in guest memory below %llu MiB",
                        (unsigned long long)(size >> 20), (unsigned long long)(top >> 20));
    *addr = (top - size) & ~(PAGE - 1);
    return 0;
}

int x86_boot_params_build(uint8_t *zp, const struct x86_boot_params_in *in, vs_err *err)
{
    memset(zp, 0, BP_SIZE);
    if (in->image && in->bz) {
        size_t end = in->bz->hdr_end;
        if (end > BP_E820_TABLE)
            end = BP_E820_TABLE; /* never let a header clobber the e820 table */
        if (end > BP_HDR)
            memcpy(zp + BP_HDR, in->image + BP_HDR, end - BP_HDR);
    } else {
        /* No bzImage header (ELF entry): the fields the kernel reads. */
        wr16(zp + HDR_BOOT_FLAG, 0xaa55);
        wr32(zp + HDR_HEADER, HDR_MAGIC);
        wr16(zp + HDR_VERSION, 0x020f);
        wr32(zp + HDR_KERNEL_ALIGNMENT, 0x1000000);
    }
    if (in->bz && in->cmdline_len + 1 > in->bz->cmdline_size && in->bz->cmdline_size)
        return vs_error(err, E2BIG, "kernel command line is %u bytes; this kernel takes %u",
                        in->cmdline_len, in->bz->cmdline_size - 1);
    wr8(zp + HDR_TYPE_OF_LOADER, 0xff); /* undefined boot loader */
    wr8(zp + HDR_LOADFLAGS, zp[HDR_LOADFLAGS] | LOADFLAG_CAN_USE_HEAP);
    wr16(zp + HDR_HEAP_END_PTR, 0xfe00);
    wr32(zp + HDR_CMD_LINE_PTR, (uint32_t)in->cmdline_addr);
    wr32(zp + BP_EXT_CMD_LINE_PTR, (uint32_t)(in->cmdline_addr >> 32));
    wr32(zp + HDR_CMDLINE_SIZE, in->cmdline_len);
    if (in->initrd_size) {
        wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)in->initrd_addr);
        wr32(zp + HDR_RAMDISK_SIZE, (uint32_t)in->initrd_size);
        wr32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(in->initrd_addr >> 32));
        wr32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(in->initrd_size >> 32));
    }
    wr64(zp + BP_ACPI_RSDP_ADDR, in->rsdp_addr);
    if (in->ne820 > BP_E820_MAX)
        return vs_error(err, EINVAL, "too many e820 entries (%u)", in->ne820);
    zp[BP_E820_ENTRIES] = (uint8_t)in->ne820;
    for (unsigned i = 0; i < in->ne820; i++) {
        uint8_t *e = zp + BP_E820_TABLE + 20 * i;
        wr64(e, in->e820[i].addr);
        wr64(e + 8, in->e820[i].size);
        wr32(e + 16, in->e820[i].type);
    }
    return 0;
}

/* ---- ELF ---- */

#define PT_LOAD 1
#define PT_NOTE 4
#define XEN_ELFNOTE_PHYS32_ENTRY 18

bool x86_is_elf(const uint8_t *img, size_t len)
{
    return len >= 4 && !memcmp(img, "\177ELF", 4);
}

static int elf_notes(const uint8_t *img, size_t len, uint64_t off, uint64_t size,
                     struct x86_elf *out)
{
    if (off > len || size > len - off)
        return -1;
    const uint8_t *p = img + off, *end = img + off + size;
    while (end - p >= 12) {
        uint32_t namesz = rd32(p), descsz = rd32(p + 4), type = rd32(p + 8);
        uint64_t nsz = (namesz + 3ULL) & ~3ULL, dsz = (descsz + 3ULL) & ~3ULL;
        if (nsz > (uint64_t)(end - p - 12) || dsz > (uint64_t)(end - p - 12) - nsz)
            return -1;
        const uint8_t *name = p + 12, *desc = name + nsz;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(name, "Xen", 4) &&
            descsz >= 4) {
            out->has_pvh = true;
            out->pvh_entry = rd32(desc);
        }
        p = desc + dsz;
    }
    return 0;
}

int x86_elf_parse(const uint8_t *img, size_t len, struct x86_elf *out, vs_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len < 52 || !x86_is_elf(img, len))
        return vs_error(err, EINVAL, "not an ELF file");
    out->is64 = img[4] == 2;
    if ((img[4] != 1 && img[4] != 2) || img[5] != 1)
        return vs_error(err, EINVAL, "ELF kernel is not little-endian ELF32/ELF64");
    uint16_t machine = rd16(img + 18);
    if (machine != 62 && machine != 3)
        return vs_error(err, EINVAL, "ELF kernel is for machine %u, not x86", machine);
    uint64_t phoff;
    unsigned phentsize, phnum;
    if (out->is64) {
        if (len < 64)
            return vs_error(err, EINVAL, "ELF header is truncated");
        out->entry = rd64(img + 24);
        phoff = rd64(img + 32);
        phentsize = rd16(img + 54);
        phnum = rd16(img + 56);
    } else {
        out->entry = rd32(img + 24);
        phoff = rd32(img + 28);
        phentsize = rd16(img + 42);
        phnum = rd16(img + 44);
    }
    if (phentsize < (out->is64 ? 56u : 32u) || phoff > len ||
        (uint64_t)phnum * phentsize > len - phoff)
        return vs_error(err, EINVAL, "ELF program headers lie outside the file");
    out->lowest = UINT64_MAX;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * phentsize;
        uint32_t type = rd32(ph);
        uint64_t offset, paddr, filesz, memsz;
        if (out->is64) {
            offset = rd64(ph + 8);
            paddr = rd64(ph + 24);
            filesz = rd64(ph + 32);
            memsz = rd64(ph + 40);
        } else {
            offset = rd32(ph + 4);
            paddr = rd32(ph + 12);
            filesz = rd32(ph + 16);
            memsz = rd32(ph + 20);
        }
        if (type == PT_NOTE) {
            if (elf_notes(img, len, offset, filesz, out) < 0)
                return vs_error(err, EINVAL, "ELF note segment is malformed");
            continue;
        }
        if (type != PT_LOAD || !memsz)
            continue;
        if (offset > len || filesz > len - offset || filesz > memsz || paddr + memsz < paddr)
            return vs_error(err, EINVAL, "ELF segment %u lies outside the file", i);
        if (out->nsegs == X86_ELF_MAX_SEGS)
            return vs_error(err, EINVAL, "ELF kernel has more than %d loadable segments",
                            X86_ELF_MAX_SEGS);
        out->segs[out->nsegs++] = (struct x86_elf_seg){paddr, filesz, memsz, offset};
        if (paddr < out->lowest)
            out->lowest = paddr;
        if (paddr + memsz > out->highest)
            out->highest = paddr + memsz;
    }
    if (!out->nsegs)
        return vs_error(err, EINVAL, "ELF kernel has no loadable segment");
    return 0;
}
