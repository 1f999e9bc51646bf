#include "x86/acpi.h"

#include <errno.h>
#include <string.h>
#include "util/buf.h"
#include "x86/layout.h"
#include "util/le.h"

#define OEM_ID "VESSEL"
#define OEM_TABLE_ID "VESSELVM"
#define ALIGN_UP_SIZE(x, a) (((x) + (a)-1) / (a) * (a))

uint8_t x86_acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

unsigned x86_acpi_pci_gsi(const struct x86_acpi_config *c, unsigned slot, unsigned pin)
{
    return c->pci_gsi_base + (slot + pin) % c->pci_gsi_count;
}

/* Standard 36-byte description header; length and checksum filled later. */
static void header(struct vs_buf *b, const char *sig, uint8_t rev)
{
    size_t off = vs_buf_reserve(b, 36);
    if (b->oom)
        return;
    uint8_t *h = b->data + off;
    memcpy(h, sig, 4);
    h[8] = rev;
    memcpy(h + 10, OEM_ID, 6);
    memcpy(h + 16, OEM_TABLE_ID, 8);
    vs_put_le(h + 24, 1, 4);   /* OEM revision */
    memcpy(h + 28, "VSSL", 4); /* creator ID */
    vs_put_le(h + 32, 1, 4);   /* creator revision */
}

static void finish_table(struct vs_buf *b)
{
    if (b->oom)
        return;
    vs_put_le(b->data + 4, b->len, 4);
    b->data[9] = 0;
    b->data[9] = (uint8_t)(0 - x86_acpi_checksum(b->data, b->len));
}

/* Generic Address Structure: system I/O space. */
static void gas_io(uint8_t *p, uint16_t port, uint8_t bits)
{
    p[0] = 1; /* system I/O */
    p[1] = bits;
    p[2] = 0;
    p[3] = bits == 8 ? 1 : bits == 16 ? 2 : 3; /* access size */
    vs_put_le(p + 4, port, 8);
}

/* ---- AML ---- */

/* PkgLength counts itself and what follows. */
static void aml_pkglen(struct vs_buf *b, size_t body)
{
    if (body + 1 < 0x40) {
        vs_buf_put_u8(b, (uint8_t)(body + 1));
        return;
    }
    unsigned extra = body + 2 < 0x1000 ? 1 : body + 3 < 0x100000 ? 2 : 3;
    size_t len = body + 1 + extra;
    vs_buf_put_u8(b, (uint8_t)((extra << 6) | (len & 0xf)));
    for (unsigned i = 0; i < extra; i++)
        vs_buf_put_u8(b, (uint8_t)(len >> (4 + 8 * i)));
}

/* op [ext] PkgLength body */
static void aml_wrap(struct vs_buf *out, const uint8_t *op, size_t oplen, const struct vs_buf *body)
{
    vs_buf_append(out, op, oplen);
    aml_pkglen(out, body->len);
    vs_buf_append(out, body->data, body->len);
    if (body->oom)
        out->oom = 1;
}

static void aml_name(struct vs_buf *b, const char *seg)
{
    vs_buf_append(b, seg, strlen(seg));
}

static void aml_int(struct vs_buf *b, uint64_t v)
{
    if (v == 0) {
        vs_buf_put_u8(b, 0x00);
    } else if (v == 1) {
        vs_buf_put_u8(b, 0x01);
    } else if (v <= 0xff) {
        vs_buf_put_u8(b, 0x0a);
        vs_buf_put_u8(b, (uint8_t)v);
    } else if (v <= 0xffff) {
        vs_buf_put_u8(b, 0x0b);
        vs_buf_put_u16(b, (uint16_t)v);
    } else if (v <= 0xffffffffu) {
        vs_buf_put_u8(b, 0x0c);
        vs_buf_put_u32(b, (uint32_t)v);
    } else {
        vs_buf_put_u8(b, 0x0e);
        vs_buf_put_u64(b, v);
    }
}

static uint32_t eisaid(const char *id)
{
    uint16_t vendor = (uint16_t)(((id[0] - 0x40) & 0x1f) << 10 | ((id[1] - 0x40) & 0x1f) << 5 |
                                 ((id[2] - 0x40) & 0x1f));
    unsigned prod = 0;
    for (int i = 3; i < 7; i++) {
        char ch = id[i];
        prod = prod << 4 | (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    /* Stored big-endian, read as a little-endian DWORD. */
    return (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 | (prod >> 8) << 16 |
           (prod & 0xff) << 24;
}

/* Name(seg, integer) */
static void aml_name_int(struct vs_buf *b, const char *seg, uint64_t v)
{
    vs_buf_put_u8(b, 0x08);
    aml_name(b, seg);
    aml_int(b, v);
}

static void aml_name_eisaid(struct vs_buf *b, const char *seg, const char *id)
{
    vs_buf_put_u8(b, 0x08);
    aml_name(b, seg);
    vs_buf_put_u8(b, 0x0c);
    vs_buf_put_u32(b, eisaid(id));
}

/* Name(seg, Buffer(){res}) with the end tag appended. */
static void aml_name_buffer(struct vs_buf *b, const char *seg, const struct vs_buf *res)
{
    struct vs_buf body;
    vs_buf_init(&body);
    aml_int(&body, res->len + 2);
    vs_buf_append(&body, res->data, res->len);
    vs_buf_put_u8(&body, 0x79); /* end tag */
    vs_buf_put_u8(&body, 0x00);
    if (res->oom)
        body.oom = 1;
    vs_buf_put_u8(b, 0x08);
    aml_name(b, seg);
    static const uint8_t op = 0x11;
    aml_wrap(b, &op, 1, &body);
    vs_buf_free(&body);
}

static void aml_device(struct vs_buf *b, const char *seg, const struct vs_buf *body)
{
    static const uint8_t op[] = {0x5b, 0x82};
    struct vs_buf full;
    vs_buf_init(&full);
    aml_name(&full, seg);
    vs_buf_append(&full, body->data, body->len);
    if (body->oom)
        full.oom = 1;
    aml_wrap(b, op, 2, &full);
    vs_buf_free(&full);
}

static void res_io(struct vs_buf *r, uint16_t port, uint8_t len)
{
    uint8_t d[8] = {0x47, 0x01};
    vs_put_le(d + 2, port, 2);
    vs_put_le(d + 4, port, 2);
    d[6] = 1;
    d[7] = len;
    vs_buf_append(r, d, sizeof(d));
}

static void res_irq(struct vs_buf *r, unsigned irq)
{
    uint8_t d[3] = {0x22};
    vs_put_le(d + 1, 1u << irq, 2);
    vs_buf_append(r, d, sizeof(d));
}

/* Address space descriptor, producer: word (w 2), dword (4) or qword (8).
 * A 6-byte header (tag, length, resource type, general flags, type flags),
 * then five w-byte fields: granularity, min, max, translation, length.
 * type: 0 memory, 1 I/O, 2 bus numbers. */
static void res_addr(struct vs_buf *r, unsigned w, uint8_t type, uint64_t min, uint64_t max,
                     uint8_t tflags)
{
    static const uint8_t tag[9] = {[2] = 0x88, [4] = 0x87, [8] = 0x8a};
    uint8_t d[6 + 5 * 8] = {tag[w], (uint8_t)(3 + 5 * w), 0, type, 0x0c, tflags};
    vs_put_le(d + 6 + w, min, w);
    vs_put_le(d + 6 + 2 * w, max, w);
    vs_put_le(d + 6 + 4 * w, max - min + 1, w);
    vs_buf_append(r, d, 6 + 5 * w);
}

static void dsdt_pci0(struct vs_buf *sb, const struct x86_acpi_config *c)
{
    struct vs_buf dev, res, prt, entry;
    vs_buf_init(&dev);
    vs_buf_init(&res);
    vs_buf_init(&prt);
    aml_name_eisaid(&dev, "_HID", "PNP0A03");
    aml_name_int(&dev, "_ADR", 0);
    aml_name_int(&dev, "_UID", 0);
    aml_name_int(&dev, "_BBN", 0);
    aml_name_int(&dev, "_SEG", 0);

    res_addr(&res, 2, 2, 0, 0, 0);           /* bus 0 */
    res_io(&res, 0xcf8, 8);                  /* config mechanism #1 (consumed) */
    res_addr(&res, 2, 1, 0x0000, 0x0cf7, 3); /* I/O below 0xcf8 */
    res_addr(&res, 2, 1, 0x0d00, 0xffff, 3); /* I/O above 0xcff */
    res_addr(&res, 4, 0, (uint32_t)c->pci_mmio32_start, (uint32_t)(c->pci_mmio32_end - 1), 1);
    if (c->pci_mmio64_end > c->pci_mmio64_start)
        res_addr(&res, 8, 0, c->pci_mmio64_start, c->pci_mmio64_end - 1, 1);
    aml_name_buffer(&dev, "_CRS", &res);

    /* _PRT: INTA..INTD of slots 1..31 straight to IOAPIC GSIs. */
    unsigned n = 0;
    for (unsigned slot = 1; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            vs_buf_init(&entry);
            vs_buf_put_u8(&entry, 4);
            aml_int(&entry, (uint64_t)slot << 16 | 0xffff);
            aml_int(&entry, pin);
            aml_int(&entry, 0);
            aml_int(&entry, x86_acpi_pci_gsi(c, slot, pin));
            static const uint8_t pkg = 0x12;
            aml_wrap(&prt, &pkg, 1, &entry);
            vs_buf_free(&entry);
            n++;
        }
    }
    /* More than 255 elements would need VarPackage; 124 fit a Package. */
    struct vs_buf prt_body;
    vs_buf_init(&prt_body);
    vs_buf_put_u8(&prt_body, (uint8_t)n);
    vs_buf_append(&prt_body, prt.data, prt.len);
    if (prt.oom)
        prt_body.oom = 1;
    vs_buf_put_u8(&dev, 0x08);
    aml_name(&dev, "_PRT");
    static const uint8_t pkg = 0x12;
    aml_wrap(&dev, &pkg, 1, &prt_body);
    vs_buf_free(&prt_body);

    aml_device(sb, "PCI0", &dev);
    vs_buf_free(&dev);
    vs_buf_free(&res);
    vs_buf_free(&prt);
}

static void dsdt_isa_device(struct vs_buf *sb, const char *seg, const char *hid, unsigned uid,
                            uint16_t port, uint8_t len, uint16_t port2, int irq)
{
    struct vs_buf dev, res;
    vs_buf_init(&dev);
    vs_buf_init(&res);
    aml_name_eisaid(&dev, "_HID", hid);
    aml_name_int(&dev, "_UID", uid);
    res_io(&res, port, len);
    if (port2)
        res_io(&res, port2, 1);
    if (irq >= 0)
        res_irq(&res, (unsigned)irq);
    aml_name_buffer(&dev, "_CRS", &res);
    aml_device(sb, seg, &dev);
    vs_buf_free(&dev);
    vs_buf_free(&res);
}

static void build_dsdt(struct vs_buf *t, const struct x86_acpi_config *c)
{
    header(t, "DSDT", 2);
    /* Name(\_S5, Package(){SLP_TYPa, SLP_TYPb, 0, 0}) */
    struct vs_buf s5;
    vs_buf_init(&s5);
    vs_buf_put_u8(&s5, 4);
    aml_int(&s5, X86_SLP_TYP_S5);
    aml_int(&s5, X86_SLP_TYP_S5);
    aml_int(&s5, 0);
    aml_int(&s5, 0);
    vs_buf_put_u8(t, 0x08);
    aml_name(t, "\\_S5_");
    static const uint8_t pkg = 0x12;
    aml_wrap(t, &pkg, 1, &s5);
    vs_buf_free(&s5);

    struct vs_buf sb;
    vs_buf_init(&sb);
    aml_name(&sb, "\\_SB_");
    dsdt_pci0(&sb, c);
    dsdt_isa_device(&sb, "COM1", "PNP0501", 1, X86_COM1_PORT, 8, 0, X86_COM1_IRQ);
    dsdt_isa_device(&sb, "RTC_", "PNP0B00", 0, 0x70, 2, 0, 8);
    /* The i8042: data port 0x60 and command/status port 0x64. */
    dsdt_isa_device(&sb, "KBD_", "PNP0303", 0, 0x60, 1, 0x64, 1);
    static const uint8_t scope = 0x10;
    aml_wrap(t, &scope, 1, &sb);
    vs_buf_free(&sb);
    finish_table(t);
}

static void build_fadt(struct vs_buf *t, uint64_t dsdt, uint64_t facs)
{
    header(t, "FACP", 6);
    size_t off = vs_buf_reserve(t, 276 - 36);
    if (t->oom)
        return;
    uint8_t *f = t->data + off - 36;
    vs_put_le(f + 36, facs, 4);
    vs_put_le(f + 40, dsdt, 4);
    f[45] = 0; /* preferred PM profile: unspecified */
    vs_put_le(f + 46, X86_SCI_IRQ, 2);
    vs_put_le(f + 48, 0, 4); /* no SMI_CMD: always in ACPI mode */
    vs_put_le(f + 56, X86_PM1A_EVT_PORT, 4);
    vs_put_le(f + 64, X86_PM1A_CNT_PORT, 4);
    vs_put_le(f + 76, X86_PM_TMR_PORT, 4);
    f[88] = 4;                              /* PM1_EVT_LEN */
    f[89] = 2;                              /* PM1_CNT_LEN */
    f[91] = 4;                              /* PM_TMR_LEN */
    vs_put_le(f + 96, 0x65, 2);             /* no C2 */
    vs_put_le(f + 98, 0x3e9, 2);            /* no C3 */
    f[108] = 0x32;                          /* CMOS century register */
    vs_put_le(f + 109, 0x0003 | 0x0004, 2); /* legacy devices, 8042, no VGA */
    uint32_t flags = 1u << 0                /* WBINVD */
                     | 1u << 2              /* C1 on all CPUs */
                     | 1u << 4              /* power button is not a fixed feature */
                     | 1u << 5              /* no fixed sleep button */
                     | 1u << 6              /* RTC wake status not fixed */
                     | 1u << 8              /* 32-bit PM timer */
                     | 1u << 10;            /* reset register supported */
    vs_put_le(f + 112, flags, 4);
    gas_io(f + 116, X86_RESET_PORT, 8);
    f[128] = 0x06; /* reset value: CPU reset + full reset */
    vs_put_le(f + 132, facs, 8);
    vs_put_le(f + 140, dsdt, 8);
    gas_io(f + 148, X86_PM1A_EVT_PORT, 32);
    gas_io(f + 172, X86_PM1A_CNT_PORT, 16);
    gas_io(f + 208, X86_PM_TMR_PORT, 32);
    memcpy(f + 268, "VESSELVM", 8); /* hypervisor vendor identity */
    finish_table(t);
}

static void build_madt(struct vs_buf *t, const struct x86_acpi_config *c)
{
    header(t, "APIC", 4);
    vs_buf_put_u32(t, (uint32_t)X86_LAPIC_ADDR);
    vs_buf_put_u32(t, 1); /* PCAT_COMPAT: dual 8259s present */
    for (unsigned i = 0; i < c->ncpus; i++) {
        uint8_t lapic[8] = {0, 8, (uint8_t)i, (uint8_t)i, 1, 0, 0, 0};
        vs_buf_append(t, lapic, sizeof(lapic));
    }
    uint8_t ioapic[12] = {1, 12, 0 /* id */, 0};
    vs_put_le(ioapic + 4, X86_IOAPIC_ADDR, 4);
    vs_put_le(ioapic + 8, 0, 4);
    vs_buf_append(t, ioapic, sizeof(ioapic));
    /* IRQ0 (PIT) -> GSI2, edge; IRQ9 (SCI) level, active high. */
    uint8_t iso0[10] = {2, 10, 0, 0};
    vs_put_le(iso0 + 4, 2, 4);
    vs_buf_append(t, iso0, sizeof(iso0));
    uint8_t iso9[10] = {2, 10, 0, X86_SCI_IRQ};
    vs_put_le(iso9 + 4, X86_SCI_IRQ, 4);
    vs_put_le(iso9 + 8, 0x000d, 2);
    vs_buf_append(t, iso9, sizeof(iso9));
    /* LINT1 of every processor is NMI. */
    uint8_t nmi[6] = {4, 6, 0xff, 0, 0, 1};
    vs_buf_append(t, nmi, sizeof(nmi));
    finish_table(t);
}

static void build_xsdt(struct vs_buf *t, const uint64_t *tables, unsigned n)
{
    header(t, "XSDT", 1);
    for (unsigned i = 0; i < n; i++)
        vs_buf_put_u64(t, tables[i]);
    finish_table(t);
}

static void build_facs(struct vs_buf *t)
{
    size_t off = vs_buf_reserve(t, 64);
    if (t->oom)
        return;
    memcpy(t->data + off, "FACS", 4);
    vs_put_le(t->data + off + 4, 64, 4);
    t->data[off + 32] = 2; /* version */
}

/* Append table t to out at a 16-byte (64 for FACS) boundary; returns its
 * guest address. */
static uint64_t place(struct vs_buf *out, const struct vs_buf *t, uint64_t base, size_t align)
{
    size_t pad = ALIGN_UP_SIZE(out->len, align) - out->len;
    vs_buf_reserve(out, pad);
    uint64_t addr = base + out->len;
    vs_buf_append(out, t->data, t->len);
    if (t->oom)
        out->oom = 1;
    return addr;
}

int x86_acpi_build(const struct x86_acpi_config *c, uint8_t *buf, size_t size, size_t *used,
                   vs_err *err)
{
    struct vs_buf out, t;
    vs_buf_init(&out);
    /* RSDP at offset 0 (the legacy scan finds it on a 16-byte boundary). */
    vs_buf_reserve(&out, 36);

    vs_buf_init(&t);
    build_facs(&t);
    uint64_t facs = place(&out, &t, c->base, 64);
    vs_buf_free(&t);

    vs_buf_init(&t);
    build_dsdt(&t, c);
    uint64_t dsdt = place(&out, &t, c->base, 16);
    vs_buf_free(&t);

    uint64_t tables[2];
    vs_buf_init(&t);
    build_fadt(&t, dsdt, facs);
    tables[0] = place(&out, &t, c->base, 16);
    vs_buf_free(&t);

    vs_buf_init(&t);
    build_madt(&t, c);
    tables[1] = place(&out, &t, c->base, 16);
    vs_buf_free(&t);

    vs_buf_init(&t);
    build_xsdt(&t, tables, 2);
    uint64_t xsdt = place(&out, &t, c->base, 16);
    vs_buf_free(&t);

    if (out.oom) {
        vs_buf_free(&out);
        return vs_error(err, ENOMEM, "out of memory building ACPI tables");
    }
    uint8_t *r = out.data;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, OEM_ID, 6);
    r[15] = 2; /* ACPI 2.0+: XSDT */
    vs_put_le(r + 16, 0, 4);
    vs_put_le(r + 20, 36, 4);
    vs_put_le(r + 24, xsdt, 8);
    r[8] = (uint8_t)(0 - x86_acpi_checksum(r, 20));
    r[32] = (uint8_t)(0 - x86_acpi_checksum(r, 36));

    if (out.len > size) {
        size_t n = out.len;
        vs_buf_free(&out);
        return vs_error(err, ENOSPC, "ACPI tables need %zu bytes, %zu available", n, size);
    }
    memcpy(buf, out.data, out.len);
    *used = out.len;
    vs_buf_free(&out);
    return 0;
}
