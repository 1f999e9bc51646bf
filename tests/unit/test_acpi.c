#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/acpi.h"
#include "x86/layout.h"

#define BASE 0xe0000ULL
static uint8_t buf[0x20000];
static size_t used;

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static uint8_t *at(uint64_t gpa)
{
    assert_true(gpa >= BASE && gpa < BASE + used);
    return buf + (gpa - BASE);
}

static void build(unsigned ncpus)
{
    struct x86_acpi_config c = {.base = BASE,
                                .ncpus = ncpus,
                                .pci_mmio32_start = 0xc0000000ULL,
                                .pci_mmio32_end = 0xfec00000ULL,
                                .pci_mmio64_start = 0x400000000ULL,
                                .pci_mmio64_end = 0x1400000000ULL,
                                .pci_gsi_base = 16,
                                .pci_gsi_count = 8};
    vs_err err;
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(x86_acpi_build(&c, buf, sizeof(buf), &used, &err), 0);
}

/* A table at gpa with signature sig: length in bounds, checksum zero. */
static uint8_t *table(uint64_t gpa, const char *sig)
{
    uint8_t *t = at(gpa);
    assert_memory_equal(t, sig, 4);
    uint32_t len = rd32(t + 4);
    assert_true(len >= 36);
    assert_true(gpa + len <= BASE + used);
    assert_int_equal(x86_acpi_checksum(t, len), 0);
    return t;
}

static uint8_t *xsdt_find(const char *sig)
{
    uint8_t *x = table(rd64(buf + 24), "XSDT");
    for (uint32_t off = 36; off < rd32(x + 4); off += 8) {
        uint8_t *t = at(rd64(x + off));
        if (!memcmp(t, sig, 4))
            return table(rd64(x + off), sig);
    }
    fail_msg("%s not in the XSDT", sig);
    return NULL;
}

static void rsdp(void **state)
{
    build(1);
    assert_memory_equal(buf, "RSD PTR ", 8);
    assert_int_equal(x86_acpi_checksum(buf, 20), 0);
    assert_int_equal(buf[15], 2);
    assert_int_equal(rd32(buf + 20), 36);
    assert_int_equal(x86_acpi_checksum(buf, 36), 0);
    table(rd64(buf + 24), "XSDT");
}

static void fadt(void **state)
{
    build(2);
    uint8_t *f = xsdt_find("FACP");
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);
    table(rd64(f + 140), "DSDT");
    assert_int_equal(rd32(f + 40), rd64(f + 140)); /* 32- and 64-bit DSDT agree */
    uint8_t *facs = at(rd64(f + 132));
    assert_memory_equal(facs, "FACS", 4);
    assert_int_equal(rd64(f + 132) % 64, 0);
    /* Full (not hardware-reduced) ACPI with PM1a blocks for poweroff. */
    uint32_t flags = rd32(f + 112);
    assert_false(flags & (1u << 20));
    assert_true(flags & (1u << 10)); /* reset register */
    assert_int_equal(rd32(f + 64), X86_PM1A_CNT_PORT);
    assert_int_equal(rd32(f + 56), X86_PM1A_EVT_PORT);
    assert_int_equal(f[89], 2);
    assert_int_equal(rd32(f + 46) & 0xffff, X86_SCI_IRQ);
    assert_int_equal(f[116], 1); /* reset register in I/O space */
    assert_int_equal(rd64(f + 120), X86_RESET_PORT);
    assert_int_equal(rd64(f + 172 + 4), X86_PM1A_CNT_PORT);
}

static void madt(void **state)
{
    build(8);
    uint8_t *m = xsdt_find("APIC");
    assert_int_equal(rd32(m + 36), X86_LAPIC_ADDR);
    unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
    uint32_t len = rd32(m + 4);
    int seen[8] = {0};
    for (uint32_t off = 44; off < len;) {
        uint8_t type = m[off], l = m[off + 1];
        assert_true(l >= 2 && off + l <= len);
        if (type == 0) {
            assert_int_equal(l, 8);
            assert_true(m[off + 4] & 1);
            assert_true(m[off + 3] < 8);
            seen[m[off + 3]]++;
            lapics++;
        } else if (type == 1) {
            assert_int_equal(rd32(m + off + 4), X86_IOAPIC_ADDR);
            assert_int_equal(rd32(m + off + 8), 0);
            ioapics++;
        } else if (type == 2) {
            if (m[off + 3] == 0)
                assert_int_equal(rd32(m + off + 4), 2); /* IRQ0 -> GSI2 */
            if (m[off + 3] == 9)
                assert_int_equal(m[off + 8] & 0xc, 0xc); /* SCI level-triggered */
            isos++;
        } else if (type == 4) {
            nmis++;
        }
        off += l;
    }
    assert_int_equal(lapics, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(ioapics, 1);
    assert_int_equal(isos, 2);
    assert_int_equal(nmis, 1);

    build(64);
    m = xsdt_find("APIC");
    assert_int_equal(rd32(m + 4), 44 + 64 * 8 + 12 + 2 * 10 + 6);
}

/* Decode an AML PkgLength at p; returns its value and sets *n to its size. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
    unsigned extra = p[0] >> 6;
    *n = 1 + extra;
    if (!extra)
        return p[0] & 0x3f;
    uint32_t v = p[0] & 0x0f;
    for (unsigned i = 0; i < extra; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    return v;
}

static const uint8_t *find(const uint8_t *h, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hl; i++)
        if (!memcmp(h + i, needle, nl))
            return h + i;
    return NULL;
}

static void dsdt(void **state)
{
    build(1);
    uint8_t *f = xsdt_find("FACP");
    uint8_t *d = table(rd64(f + 140), "DSDT");
    uint32_t len = rd32(d + 4);
    assert_int_equal(d[8], 2); /* 64-bit integers */
    /* Name(\_S5_, Package(4){5, 5, 0, 0}) first. */
    const uint8_t *p = d + 36;
    assert_int_equal(p[0], 0x08);
    assert_memory_equal(p + 1, "\\_S5_", 5);
    assert_int_equal(p[6], 0x12);
    unsigned n;
    uint32_t pl = pkglen(p + 7, &n);
    assert_int_equal(p[7 + n], 4);
    assert_int_equal(p[8 + n], 0x0a);
    assert_int_equal(p[9 + n], X86_SLP_TYP_S5);
    p += 7 + pl;
    /* Scope(\_SB_) runs exactly to the end of the table. */
    assert_int_equal(p[0], 0x10);
    pl = pkglen(p + 1, &n);
    assert_int_equal(p + 1 + pl, d + len);
    assert_memory_equal(p + 1 + n, "\\_SB_", 5);
    /* The devices and the PCI host bridge's methods are there. */
    assert_non_null(find(d, len, "PCI0"));
    assert_non_null(find(d, len, "_PRT"));
    assert_non_null(find(d, len, "_CRS"));
    assert_non_null(find(d, len, "COM1"));
    /* EISAID("PNP0A03") = 0x030ad041 little-endian after a DWordPrefix. */
    const uint8_t pnp0a03[] = {0x0c, 0x41, 0xd0, 0x0a, 0x03, 0};
    assert_non_null(find(d, len, (const char *)pnp0a03));
}

static void prt_routing(void **state)
{
    struct x86_acpi_config c = {.pci_gsi_base = 16, .pci_gsi_count = 8};
    assert_int_equal(x86_acpi_pci_gsi(&c, 1, 0), 17);
    assert_int_equal(x86_acpi_pci_gsi(&c, 7, 1), 16);
    for (unsigned s = 0; s < 32; s++)
        for (unsigned p = 0; p < 4; p++) {
            unsigned g = x86_acpi_pci_gsi(&c, s, p);
            assert_true(g >= 16 && g < 24);
        }
}

static void too_small(void **state)
{
    struct x86_acpi_config c = {.base = BASE, .ncpus = 4, .pci_gsi_count = 8};
    uint8_t small[64];
    size_t u;
    vs_err err;
    assert_int_equal(x86_acpi_build(&c, small, sizeof(small), &u, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rsdp), cmocka_unit_test(fadt),        cmocka_unit_test(madt),
        cmocka_unit_test(dsdt), cmocka_unit_test(prt_routing), cmocka_unit_test(too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
