#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/boot.h"
#include "x86/layout.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* A minimal bzImage: boot sector + 4 setup sectors + payload. */
static uint8_t img[16384];
static void make_bzimage(uint16_t version, uint8_t loadflags, uint16_t xlf)
{
    memset(img, 0, sizeof(img));
    img[HDR_SETUP_SECTS] = 4;
    img[HDR_BOOT_FLAG] = 0x55;
    img[HDR_BOOT_FLAG + 1] = 0xaa;
    img[HDR_JUMP] = 0xeb;
    img[HDR_JUMP + 1] = 0x6a; /* header ends at 0x26c */
    memcpy(img + HDR_HEADER, "HdrS", 4);
    img[HDR_VERSION] = (uint8_t)version;
    img[HDR_VERSION + 1] = (uint8_t)(version >> 8);
    img[HDR_LOADFLAGS] = loadflags;
    img[HDR_XLOADFLAGS] = (uint8_t)xlf;
    uint32_t max = 0x7fffffff, align = 0x200000, cmdsz = 2048, init = 0x1000000;
    memcpy(img + HDR_INITRD_ADDR_MAX, &max, 4);
    memcpy(img + HDR_KERNEL_ALIGNMENT, &align, 4);
    img[HDR_RELOCATABLE] = 1;
    memcpy(img + HDR_CMDLINE_SIZE, &cmdsz, 4);
    memcpy(img + HDR_INIT_SIZE, &init, 4);
}

static void bzimage_ok(void **state)
{
    make_bzimage(0x020f, LOADFLAG_LOADED_HIGH, XLF_KERNEL_64);
    struct x86_bzimage bz;
    vs_err err;
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), 0);
    assert_int_equal(bz.version, 0x020f);
    assert_int_equal(bz.setup_size, 5 * 512);
    assert_int_equal(bz.kernel_offset, 5 * 512);
    assert_int_equal(bz.kernel_size, sizeof(img) - 5 * 512);
    assert_int_equal(bz.hdr_end, 0x26c);
    assert_int_equal(bz.initrd_addr_max, 0x7fffffff);
    assert_int_equal(bz.kernel_alignment, 0x200000);
    assert_true(bz.relocatable);
    assert_int_equal(bz.cmdline_size, 2048);
    assert_int_equal(bz.init_size, 0x1000000);
}

static void bzimage_refused(void **state)
{
    struct x86_bzimage bz;
    vs_err err;
    make_bzimage(0x020f, LOADFLAG_LOADED_HIGH, XLF_KERNEL_64);
    img[HDR_HEADER] = 'X';
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), -1);
    assert_non_null(strstr(err.msg, "HdrS"));

    make_bzimage(0x0209, LOADFLAG_LOADED_HIGH, 0);
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), -1);
    assert_non_null(strstr(err.msg, "too old"));

    make_bzimage(0x020f, 0, XLF_KERNEL_64);
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), -1);
    assert_non_null(strstr(err.msg, "zImage"));

    make_bzimage(0x020f, LOADFLAG_LOADED_HIGH, 0);
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), -1);
    assert_non_null(strstr(err.msg, "64-bit"));

    make_bzimage(0x020f, LOADFLAG_LOADED_HIGH, XLF_KERNEL_64);
    assert_int_equal(x86_bzimage_parse(img, 5 * 512, &bz, &err), -1); /* no payload */
    assert_int_equal(x86_bzimage_parse(img, 100, &bz, &err), -1);
}

static const struct x86_ram_layout *ram_of(uint64_t size)
{
    static struct x86_ram_layout l;
    x86_ram_layout(size, &l);
    return &l;
}

/* The RAM layout, computed once per machine: low RAM up to the PCI hole,
 * the rest from 4 GiB, the 64-bit PCI window above it on a 1 GiB boundary. */
static void ram_layout(void **state)
{
    struct x86_ram_layout l;
    x86_ram_layout(256ULL << 20, &l);
    assert_int_equal(l.low, 256ULL << 20);
    assert_int_equal(l.high, 0);
    assert_int_equal(l.mmio64_start, X86_RAM_4G);
    x86_ram_layout(8ULL << 30, &l);
    assert_int_equal(l.size, 8ULL << 30);
    assert_int_equal(l.low, X86_MMIO32_START);
    assert_int_equal(l.high, (8ULL << 30) - X86_MMIO32_START);
    assert_int_equal(l.mmio64_start, 9ULL << 30);
    x86_ram_layout(X86_MMIO32_START + (2ULL << 20), &l);
    assert_int_equal(l.high, 2ULL << 20);
    assert_int_equal(l.mmio64_start, 5ULL << 30);
}

static void e820_layout(void **state)
{
    struct x86_e820_entry e[8];
    unsigned n = x86_e820_build(ram_of(256ULL << 20), e, 8);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, X86_EBDA_START);
    assert_int_equal(e[0].type, E820_RAM);
    assert_int_equal(e[2].addr, X86_BIOS_START); /* ACPI tables live here */
    assert_int_equal(e[2].type, E820_RESERVED);
    assert_int_equal(e[3].addr, 1 << 20);
    assert_int_equal(e[3].addr + e[3].size, 256ULL << 20);
    /* Sorted and not overlapping. */
    for (unsigned i = 1; i < n; i++)
        assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);

    n = x86_e820_build(ram_of(8ULL << 30), e, 8);
    assert_int_equal(n, 5);
    assert_int_equal(e[3].addr + e[3].size, X86_MMIO32_START);
    assert_int_equal(e[4].addr, X86_RAM_4G);
    uint64_t ram = 0;
    for (unsigned i = 0; i < n; i++)
        if (e[i].type == E820_RAM)
            ram += e[i].size;
    /* All RAM but the EBDA and the BIOS area. */
    assert_int_equal(ram, (8ULL << 30) - (X86_HIGHMEM_START - X86_EBDA_START));
}

static void zero_page(void **state)
{
    make_bzimage(0x020f, LOADFLAG_LOADED_HIGH, XLF_KERNEL_64);
    struct x86_bzimage bz;
    vs_err err;
    assert_int_equal(x86_bzimage_parse(img, sizeof(img), &bz, &err), 0);
    struct x86_e820_entry e[8];
    unsigned n = x86_e820_build(ram_of(512ULL << 20), e, 8);
    static uint8_t zp[BP_SIZE];
    memset(zp, 0xcc, sizeof(zp));
    struct x86_boot_params_in in = {.image = img,
                                    .bz = &bz,
                                    .cmdline_addr = X86_CMDLINE_ADDR,
                                    .cmdline_len = 13,
                                    .initrd_addr = 0x1f000000,
                                    .initrd_size = 0x123456,
                                    .e820 = e,
                                    .ne820 = n,
                                    .rsdp_addr = X86_ACPI_ADDR};
    assert_int_equal(x86_boot_params_build(zp, &in, &err), 0);
    assert_memory_equal(zp + HDR_HEADER, "HdrS", 4);
    assert_int_equal(zp[HDR_TYPE_OF_LOADER], 0xff);
    assert_true(zp[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH);
    assert_true(zp[HDR_LOADFLAGS] & LOADFLAG_CAN_USE_HEAP);
    assert_int_equal(rd32(zp + HDR_CMD_LINE_PTR), X86_CMDLINE_ADDR);
    assert_int_equal(rd32(zp + HDR_RAMDISK_IMAGE), 0x1f000000);
    assert_int_equal(rd32(zp + HDR_RAMDISK_SIZE), 0x123456);
    assert_int_equal(rd64(zp + BP_ACPI_RSDP_ADDR), X86_ACPI_ADDR);
    assert_int_equal(zp[BP_E820_ENTRIES], n);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = zp + BP_E820_TABLE + 20 * i;
        assert_int_equal(rd64(p), e[i].addr);
        assert_int_equal(rd64(p + 8), e[i].size);
        assert_int_equal(rd32(p + 16), e[i].type);
    }
    /* Nothing outside the header copy and the fields we set. */
    assert_int_equal(zp[0], 0);
    assert_int_equal(zp[BP_SENTINEL], 0);

    /* A command line longer than the kernel takes is refused. */
    in.cmdline_len = 4096;
    assert_int_equal(x86_boot_params_build(zp, &in, &err), -1);
    /* ELF entry: no bzImage header, the magic is synthesized. */
    in.cmdline_len = 13;
    in.image = NULL;
    in.bz = NULL;
    assert_int_equal(x86_boot_params_build(zp, &in, &err), 0);
    assert_memory_equal(zp + HDR_HEADER, "HdrS", 4);
}

static void initrd_placement(void **state)
{
    uint64_t addr;
    vs_err err;
    /* Highest page-aligned spot under both limits. */
    assert_int_equal(x86_initrd_place(0x1800, 0x2000000, 0x38000000, 256ULL << 20, &addr, &err), 0);
    assert_int_equal(addr, (256ULL << 20) - 0x2000);
    assert_int_equal(addr % 4096, 0);
    assert_int_equal(x86_initrd_place(0x1000, 0x100000, 0x8000000, 256ULL << 20, &addr, &err), 0);
    assert_int_equal(addr, 0x8000000 - 0x1000);
    /* Does not fit above the kernel. */
    assert_int_equal(
        x86_initrd_place(300ULL << 20, 0x2000000, 0x38000000, 256ULL << 20, &addr, &err), -1);
    assert_non_null(strstr(err.msg, "do not fit"));
    assert_int_equal(x86_initrd_place(200ULL << 20, 100ULL << 20, ~0ULL, 256ULL << 20, &addr, &err),
                     -1);
}

/* A tiny ELF64 with one PT_LOAD and a PVH note. */
static void elf_parse(void **state)
{
    uint8_t e[512] = {0};
    memcpy(e, "\177ELF", 4);
    e[4] = 2; /* 64-bit */
    e[5] = 1;
    e[18] = 62; /* x86-64 */
    uint64_t entry = 0x200020, phoff = 64;
    memcpy(e + 24, &entry, 8);
    memcpy(e + 32, &phoff, 8);
    e[54] = 56;
    e[56] = 2;
    uint8_t *ph = e + 64;
    uint32_t load = 1, note = 4;
    uint64_t off = 256, paddr = 0x200000, filesz = 32, memsz = 0x1000;
    memcpy(ph, &load, 4);
    memcpy(ph + 8, &off, 8);
    memcpy(ph + 24, &paddr, 8);
    memcpy(ph + 32, &filesz, 8);
    memcpy(ph + 40, &memsz, 8);
    ph += 56;
    uint64_t noff = 300, nsz = 20;
    memcpy(ph, &note, 4);
    memcpy(ph + 8, &noff, 8);
    memcpy(ph + 32, &nsz, 8);
    uint32_t n[] = {4, 4, 18};
    memcpy(e + 300, n, 12);
    memcpy(e + 312, "Xen", 4);
    uint32_t pvh = 0x200040;
    memcpy(e + 316, &pvh, 4);

    struct x86_elf elf;
    vs_err err;
    assert_int_equal(x86_elf_parse(e, sizeof(e), &elf, &err), 0);
    assert_true(elf.is64);
    assert_int_equal(elf.entry, 0x200020);
    assert_int_equal(elf.nsegs, 1);
    assert_int_equal(elf.lowest, 0x200000);
    assert_int_equal(elf.highest, 0x201000);
    assert_true(elf.has_pvh);
    assert_int_equal(elf.pvh_entry, 0x200040);

    /* A segment pointing past the end of the file is refused. */
    off = 500;
    memcpy(e + 64 + 8, &off, 8);
    assert_int_equal(x86_elf_parse(e, sizeof(e), &elf, &err), -1);
    /* So is a note whose size runs past its segment. */
    off = 256;
    memcpy(e + 64 + 8, &off, 8);
    n[0] = 1000;
    memcpy(e + 300, n, 4);
    assert_int_equal(x86_elf_parse(e, sizeof(e), &elf, &err), -1);
    /* Not x86. */
    e[18] = 183;
    assert_int_equal(x86_elf_parse(e, sizeof(e), &elf, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bzimage_ok), cmocka_unit_test(bzimage_refused),
        cmocka_unit_test(ram_layout), cmocka_unit_test(e820_layout),
        cmocka_unit_test(zero_page),  cmocka_unit_test(initrd_placement),
        cmocka_unit_test(elf_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
