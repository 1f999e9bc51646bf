/* fw_cfg through its x86 registers: select and read, the DMA signature
 * and descriptors run against guest memory (select, read, skip, reads
 * past the end, buffers and descriptors outside RAM), the file
 * directory's byte order, bounds; and the table-loader: vessel's ACPI
 * tables put through a loader run here the way SeaBIOS runs it land as
 * valid tables pointing at each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/fw_cfg.h"
#include "x86/acpi.h"
#include "x86/fw_cfg_items.h"

#define RAM_SIZE (1ULL << 20)

struct fx {
    struct guest_mem mem;
    struct fw_cfg f;
    uint8_t *ram;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    vs_err err;
    guest_mem_init(&x->mem);
    assert_int_equal(guest_mem_add_anon(&x->mem, 0, RAM_SIZE, &err), 0);
    x->ram = guest_mem_ptr(&x->mem, 0, RAM_SIZE);
    assert_int_equal(fw_cfg_init(&x->f, &x->mem, &err), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    fw_cfg_destroy(&x->f);
    guest_mem_destroy(&x->mem);
    free(x);
    return 0;
}

static void sel(struct fx *x, uint16_t key)
{
    fw_cfg_io_write(&x->f, 0, key, 2);
}

static uint8_t rd8(struct fx *x)
{
    return (uint8_t)fw_cfg_io_read(&x->f, 1, 1);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* What the firmware does: the descriptor's address, high half then low,
 * each written big-endian with outl. */
static uint32_t dma(struct fx *x, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t *d = x->ram + desc;
    put_be32(d, control);
    put_be32(d + 4, len);
    put_be32(d + 8, (uint32_t)(addr >> 32));
    put_be32(d + 12, (uint32_t)addr);
    fw_cfg_io_write(&x->f, 4, __builtin_bswap32((uint32_t)(desc >> 32)), 4);
    fw_cfg_io_write(&x->f, 8, __builtin_bswap32((uint32_t)desc), 4);
    return be32(d);
}

static void test_signature_and_id(void **state)
{
    struct fx *x = *state;
    sel(x, FW_CFG_SIGNATURE);
    char sig[5] = {0};
    for (int i = 0; i < 4; i++)
        sig[i] = (char)rd8(x);
    assert_string_equal(sig, "QEMU");
    assert_int_equal(rd8(x), 0); /* past the end */
    sel(x, FW_CFG_ID);
    assert_int_equal(fw_cfg_io_read(&x->f, 1, 4), FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA);
    /* the DMA register reads "QEMU CFG" as bytes in order */
    uint64_t hi = fw_cfg_io_read(&x->f, 4, 4), lo = fw_cfg_io_read(&x->f, 8, 4);
    char d[9] = {0};
    memcpy(d, &hi, 4);
    memcpy(d + 4, &lo, 4);
    assert_string_equal(d, "QEMU CFG");
    /* re-selecting starts over; an unknown key reads zeros */
    sel(x, FW_CFG_SIGNATURE);
    assert_int_equal(rd8(x), 'Q');
    sel(x, 0x1234);
    assert_int_equal(fw_cfg_io_read(&x->f, 1, 4), 0);
}

static void test_directory(void **state)
{
    struct fx *x = *state;
    vs_err err;
    uint8_t e820[40] = {1, 2, 3};
    assert_int_equal(fw_cfg_add_file(&x->f, "etc/e820", e820, sizeof(e820), &err), 0);
    assert_int_equal(fw_cfg_add_file(&x->f, "bootorder", "/pci@i0cf8/*@1\n", 16, &err), 0);
    assert_int_equal(fw_cfg_add_file(&x->f, "etc/e820", e820, 20, &err), 0); /* replaced */
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[79] = 0;
    assert_int_equal(fw_cfg_add_file(&x->f, longname, "", 0, &err), -1);
    sel(x, FW_CFG_FILE_DIR);
    uint8_t dir[4 + 2 * 64];
    for (size_t i = 0; i < sizeof(dir); i++)
        dir[i] = rd8(x);
    assert_int_equal(be32(dir), 2);
    /* size, select big-endian; the name NUL-padded */
    assert_int_equal(be32(dir + 4), 20);
    assert_int_equal(dir[8] << 8 | dir[9], FW_CFG_FILE_FIRST);
    assert_string_equal((char *)dir + 12, "etc/e820");
    assert_int_equal(be32(dir + 68), 16);
    assert_int_equal(dir[72] << 8 | dir[73], FW_CFG_FILE_FIRST + 1);
    assert_string_equal((char *)dir + 76, "bootorder");
    /* the file by its key */
    sel(x, FW_CFG_FILE_FIRST + 1);
    assert_int_equal(rd8(x), '/');
    assert_non_null(fw_cfg_find_file(&x->f, "bootorder"));
}

static void test_dma(void **state)
{
    struct fx *x = *state;
    vs_err err;
    char text[] = "console=ttyS0 quiet";
    assert_int_equal(fw_cfg_add_string(&x->f, FW_CFG_CMDLINE_DATA, text, &err), 0);
    /* select + read in one descriptor; 8 bytes more than the item: zeros */
    memset(x->ram + 0x2000, 0xaa, 64);
    uint32_t c = dma(x, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_DMA_READ | (FW_CFG_CMDLINE_DATA << 16),
                     sizeof(text) + 8, 0x2000);
    assert_int_equal(c, 0);
    assert_string_equal((char *)x->ram + 0x2000, text);
    for (unsigned i = sizeof(text); i < sizeof(text) + 8; i++)
        assert_int_equal(x->ram[0x2000 + i], 0);
    assert_int_equal(x->ram[0x2000 + sizeof(text) + 8], 0xaa); /* not one byte more */
    /* skip then read: the offset carries over, also to the data port */
    dma(x, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP | (FW_CFG_CMDLINE_DATA << 16), 8, 0);
    assert_int_equal(dma(x, 0x1000, FW_CFG_DMA_READ, 4, 0x3000), 0);
    assert_memory_equal(x->ram + 0x3000, "ttyS", 4);
    assert_int_equal(rd8(x), '0');
    /* a buffer outside RAM (or wrapping): the error bit, nothing written */
    c = dma(x, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_DMA_READ | (FW_CFG_SIGNATURE << 16), 16,
            RAM_SIZE - 8);
    assert_true(c & FW_CFG_DMA_ERROR);
    c = dma(x, 0x1000, FW_CFG_DMA_READ, 16, UINT64_MAX - 4);
    assert_true(c & FW_CFG_DMA_ERROR);
    /* writes: no item is writable */
    c = dma(x, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE | (FW_CFG_CMDLINE_DATA << 16), 4,
            0x2000);
    assert_true(c & FW_CFG_DMA_ERROR);
    sel(x, FW_CFG_CMDLINE_DATA);
    assert_int_equal(rd8(x), 'c');
    /* a descriptor outside RAM is ignored */
    fw_cfg_io_write(&x->f, 4, 0, 4);
    fw_cfg_io_write(&x->f, 8, __builtin_bswap32((uint32_t)RAM_SIZE - 8), 4);
    fw_cfg_io_write(&x->f, 4, 0xffffffff, 4);
    fw_cfg_io_write(&x->f, 8, 0xfcffffff, 4);
}

/* ---- a loader run as SeaBIOS runs it ---------------------------------- */

struct blob {
    const char *name;
    uint8_t *host;
    uint64_t addr;
    uint32_t len;
};

static struct blob *find_blob(struct blob *b, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (!strncmp(b[i].name, name, 56))
            return &b[i];
    fail_msg("loader names unknown file %s", name);
    return NULL;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void test_table_loader(void **state)
{
    struct fx *x = *state;
    vs_err err;
    static uint8_t tables[0x10000];
    size_t used;
    struct x86_acpi_config c = {.base = 0,
                                .ncpus = 2,
                                .pci_mmio32_start = 0xc0000000ULL,
                                .pci_mmio32_end = 0xfec00000ULL,
                                .pci_mmio64_start = 0x400000000ULL,
                                .pci_mmio64_end = 0x1400000000ULL,
                                .pci_gsi_base = 16,
                                .pci_gsi_count = 8};
    assert_int_equal(x86_acpi_build(&c, tables, sizeof(tables), &used, &err), 0);
    assert_int_equal(fw_cfg_add_acpi(&x->f, tables, (uint32_t)used, &err), 0);
    const struct fw_cfg_item *loader = fw_cfg_find_file(&x->f, "etc/table-loader");
    assert_non_null(loader);
    assert_int_equal(loader->len % FW_CFG_LOADER_ENTRY_SIZE, 0);
    /* the firmware's memory: blobs placed where it likes */
    static uint8_t fw_mem[0x40000];
    struct blob blobs[2] = {{"etc/acpi/tables"}, {"etc/acpi/rsdp"}};
    uint64_t next = 0x1000;
    for (uint32_t off = 0; off < loader->len; off += FW_CFG_LOADER_ENTRY_SIZE) {
        const uint8_t *e = loader->data + off;
        uint32_t cmd = (uint32_t)le(e, 4);
        if (cmd == FW_CFG_LOADER_ALLOCATE) {
            struct blob *b = find_blob(blobs, 2, (const char *)e + 4);
            const struct fw_cfg_item *it = fw_cfg_find_file(&x->f, b->name);
            uint32_t align = (uint32_t)le(e + 60, 4);
            assert_true(e[64] == FW_CFG_LOADER_ZONE_HIGH || e[64] == FW_CFG_LOADER_ZONE_FSEG);
            next = (next + align - 1) & ~(uint64_t)(align - 1);
            b->addr = next;
            b->host = fw_mem + next;
            b->len = it->len;
            memcpy(b->host, it->data, it->len);
            next += it->len;
            assert_true(next < sizeof(fw_mem));
        } else if (cmd == FW_CFG_LOADER_ADD_POINTER) {
            struct blob *d = find_blob(blobs, 2, (const char *)e + 4);
            struct blob *s = find_blob(blobs, 2, (const char *)e + 60);
            uint32_t o = (uint32_t)le(e + 116, 4);
            unsigned n = e[120];
            assert_true(d->host && s->host && o + n <= d->len);
            uint64_t v = le(d->host + o, n) + s->addr;
            for (unsigned i = 0; i < n; i++)
                d->host[o + i] = (uint8_t)(v >> (8 * i));
        } else if (cmd == FW_CFG_LOADER_ADD_CHECKSUM) {
            struct blob *b = find_blob(blobs, 2, (const char *)e + 4);
            uint32_t o = (uint32_t)le(e + 60, 4), st = (uint32_t)le(e + 64, 4),
                     n = (uint32_t)le(e + 68, 4);
            assert_true(b->host && st + n <= b->len && o < b->len);
            b->host[o] -= x86_acpi_checksum(b->host + st, n);
        } else {
            fail_msg("unknown loader command %u", cmd);
        }
    }
    /* the RSDP: both checksums; its XSDT, and every table it lists, valid
     * at their new addresses */
    uint8_t *rsdp = blobs[1].host;
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(x86_acpi_checksum(rsdp, 20), 0);
    assert_int_equal(x86_acpi_checksum(rsdp, 36), 0);
    uint64_t xsdt = le(rsdp + 24, 8);
    assert_true(xsdt > blobs[0].addr && xsdt < blobs[0].addr + blobs[0].len);
    uint8_t *xp = fw_mem + xsdt;
    assert_memory_equal(xp, "XSDT", 4);
    assert_int_equal(x86_acpi_checksum(xp, (size_t)le(xp + 4, 4)), 0);
    unsigned seen_fadt = 0, seen_madt = 0;
    for (uint32_t o = 36; o < le(xp + 4, 4); o += 8) {
        uint64_t t = le(xp + o, 8);
        assert_true(t >= blobs[0].addr && t < blobs[0].addr + blobs[0].len);
        uint8_t *tp = fw_mem + t;
        if (!memcmp(tp, "FACS", 4))
            continue;
        assert_int_equal(x86_acpi_checksum(tp, (size_t)le(tp + 4, 4)), 0);
        if (!memcmp(tp, "APIC", 4))
            seen_madt++;
        if (!memcmp(tp, "FACP", 4)) {
            seen_fadt++;
            uint64_t dsdt = le(tp + 140, 8);
            assert_true(dsdt >= blobs[0].addr);
            assert_memory_equal(fw_mem + dsdt, "DSDT", 4);
            assert_int_equal(x86_acpi_checksum(fw_mem + dsdt, (size_t)le(fw_mem + dsdt + 4, 4)), 0);
            if (le(tp + 40, 4))
                assert_int_equal(le(tp + 40, 4), dsdt);
        }
    }
    assert_int_equal(seen_fadt, 1);
    assert_int_equal(seen_madt, 1);
}

static void test_loader_bounds(void **state)
{
    struct fx *x = *state;
    vs_err err;
    uint8_t junk[64] = "RSD PTR ";
    junk[15] = 2;
    junk[24] = 0xf0; /* an XSDT past the blob */
    assert_int_equal(fw_cfg_add_acpi(&x->f, junk, sizeof(junk), &err), -1);
    assert_non_null(strstr(err.msg, "outside the blob"));
    assert_int_equal(fw_cfg_add_acpi(&x->f, junk, 10, &err), -1);
    struct fw_cfg_loader l = {0};
    assert_int_equal(fw_cfg_loader_allocate(&l, "x", 3, 1, &err), -1);
    assert_int_equal(fw_cfg_loader_add_pointer(&l, "a", "b", 0, 3, &err), -1);
    fw_cfg_loader_free(&l);
}

static void test_x86_items(void **state)
{
    struct fx *x = *state;
    vs_err err;
    struct x86_ram_layout ram;
    x86_ram_layout(5ULL << 30, &ram); /* 3 GiB low, 2 GiB above 4 GiB */
    struct x86_acpi_config ac = {.ncpus = 4,
                                 .pci_mmio32_start = 0xc0000000ULL,
                                 .pci_mmio32_end = 0xfec00000ULL,
                                 .pci_gsi_base = 16,
                                 .pci_gsi_count = 8};
    unsigned slots[] = {3, 1};
    struct x86_fw_cfg_config c = {.ram = &ram,
                                  .ncpus = 4,
                                  .cmdline = "console=ttyS0",
                                  .acpi = &ac,
                                  .boot_slots = slots,
                                  .nboot = 2};
    assert_int_equal(x86_fw_cfg_populate(&x->f, &c, &err), 0);
    sel(x, FW_CFG_RAM_SIZE);
    uint64_t size = fw_cfg_io_read(&x->f, 1, 4) | fw_cfg_io_read(&x->f, 1, 4) << 32;
    assert_true(size == 5ULL << 30);
    sel(x, FW_CFG_NB_CPUS);
    assert_int_equal(fw_cfg_io_read(&x->f, 1, 2), 4);
    const struct fw_cfg_item *e = fw_cfg_find_file(&x->f, "etc/e820");
    assert_non_null(e);
    assert_int_equal(e->len, 40);
    assert_true(le(e->data + 8, 8) == ram.low);
    assert_true(le(e->data + 20, 8) == 0x100000000ULL);
    assert_true(le(e->data + 28, 8) == ram.high);
    assert_int_equal(le(e->data + 36, 4), 1);
    const struct fw_cfg_item *b = fw_cfg_find_file(&x->f, "bootorder");
    assert_string_equal((char *)b->data, "/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/scsi@1/disk@0,0");
    sel(x, FW_CFG_CMDLINE_DATA);
    assert_int_equal(rd8(x), 'c');
    assert_non_null(fw_cfg_find_file(&x->f, "etc/table-loader"));
    assert_non_null(fw_cfg_find_file(&x->f, "etc/acpi/rsdp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_loader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loader_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_x86_items, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
