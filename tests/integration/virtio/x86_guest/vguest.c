/* Tier-1 virtio-pci test guest: a minimal driver for the virtio-rng PCI
 * function that checks MSI-X delivery the way a Linux driver uses it, on the
 * host's /dev/kvm (PVM runs little kernel-mode code fast enough for this).
 * The command line picks the test:
 *   vt=msix  vectors per entry, masking with the pending bit, a message
 *            rewritten while masked (re-routing), the queue moved to another
 *            entry, a device reset and a second bring-up; then a reboot
 *            (vessel --no-reboot exits 0)
 *   vt=loop  one request and its interrupt every few milliseconds, forever,
 *            printing "irq N" (the snapshot/restore test stops it)
 * Output goes to COM1, one "VG ..." line per result. */
#include "x86io.h"

static inline void wr8(u64 a, u8 v)
{
    *(volatile u8 *)a = v;
}
static inline u8 rd8(u64 a)
{
    return *(volatile u8 *)a;
}
static inline void barrier(void)
{
    __asm__ volatile("mfence" ::: "memory");
}

static void putc_(char c)
{
    while (!(inb(0x3f8 + 5) & 0x20))
        ;
    outb(0x3f8, (u8)c);
}
static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}
static void putu(u64 v)
{
    char b[21];
    int i = 20;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_(&b[i]);
}

static void reboot(void)
{
    outb(0x64, 0xfe);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void fail(const char *why)
{
    puts_("VG FAIL ");
    puts_(why);
    puts_("\n");
    reboot();
}

/* ---- interrupts ---- */

extern char isr_0x40[], isr_0x41[], isr_0x42[], isr_0x43[];
#define LAPIC 0xfee00000ULL
static volatile u32 irqs[4]; /* per vector 0x40..0x43 */
static u8 idt[256 * 16] __attribute__((aligned(16)));

void on_irq(u64 vec)
{
    if (vec >= 0x40 && vec < 0x44)
        irqs[vec - 0x40]++;
    mmio_write32(LAPIC + 0xb0, 0); /* EOI */
}

static void idt_set(unsigned vec, void *handler)
{
    u64 h = (u64)handler;
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    u8 *e = &idt[vec * 16];
    e[0] = (u8)h;
    e[1] = (u8)(h >> 8);
    e[2] = (u8)cs;
    e[3] = (u8)(cs >> 8);
    e[4] = 0;    /* IST */
    e[5] = 0x8e; /* present, DPL 0, interrupt gate */
    e[6] = (u8)(h >> 16);
    e[7] = (u8)(h >> 24);
    for (int i = 0; i < 4; i++)
        e[8 + i] = (u8)(h >> (32 + 8 * i));
}

static void irq_setup(void)
{
    idt_set(0x40, isr_0x40);
    idt_set(0x41, isr_0x41);
    idt_set(0x42, isr_0x42);
    idt_set(0x43, isr_0x43);
    struct __attribute__((packed)) {
        u16 limit;
        u64 base;
    } d = {sizeof(idt) - 1, (u64)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
    mmio_write32(LAPIC + 0x80, 0);     /* TPR: accept everything */
    mmio_write32(LAPIC + 0xf0, 0x1ff); /* software enable, spurious vector 0xff */
    __asm__ volatile("sti");
}

/* Wait (interrupts on) until vector vec has fired more than `seen` times;
 * a bounded number of iterations, since the guest must not hang a test. */
static int wait_irq(unsigned vec, u32 seen)
{
    for (u32 i = 0; i < 200000; i++) {
        if (irqs[vec - 0x40] > seen)
            return 1;
        __asm__ volatile("pause");
    }
    return 0;
}

static void delay(u32 n)
{
    for (volatile u32 i = 0; i < n; i++)
        __asm__ volatile("pause");
}

/* ---- PCI ---- */

static u32 cfg_rd(unsigned dev, unsigned off)
{
    outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
    return inl(0xcfc);
}
static void cfg_wr(unsigned dev, unsigned off, u32 v)
{
    outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
    outl(0xcfc, v);
}

static unsigned pdev;
static u64 bar0, common, notify, msix_table, pba;
static u32 notify_mult;
static unsigned msix_cap;

static void pci_find_rng(void)
{
    for (pdev = 0; pdev < 32; pdev++)
        if (cfg_rd(pdev, 0) == (0x1044u << 16 | 0x1af4))
            break;
    if (pdev == 32)
        fail("no virtio-rng PCI function");
    bar0 = cfg_rd(pdev, 0x10) & ~0xfULL;
    cfg_wr(pdev, 0x04, cfg_rd(pdev, 0x04) | 0x6); /* memory decoding, bus master */
    for (unsigned p = cfg_rd(pdev, 0x34) & 0xff; p; p = (cfg_rd(pdev, p) >> 8) & 0xff) {
        u32 h = cfg_rd(pdev, p);
        if ((h & 0xff) == 0x11) {
            msix_cap = p;
            msix_table = bar0 + (cfg_rd(pdev, p + 4) & ~7u);
            pba = bar0 + (cfg_rd(pdev, p + 8) & ~7u);
        } else if ((h & 0xff) == 0x09) {
            u64 at = bar0 + cfg_rd(pdev, p + 8);
            switch ((h >> 24) & 0xff) {
            case 1:
                common = at;
                break;
            case 2:
                notify = at;
                notify_mult = cfg_rd(pdev, p + 16);
                break;
            }
        }
    }
    if (!msix_cap || !common || !notify)
        fail("capabilities missing");
}

static void msix_enable(int on)
{
    u32 h = cfg_rd(pdev, msix_cap);
    h = on ? h | 0x80000000u : h & ~0x80000000u;
    cfg_wr(pdev, msix_cap, h);
}

static void msix_entry(unsigned e, u8 vector, int masked)
{
    u64 t = msix_table + 16 * e;
    mmio_write32(t + 12, 1);
    mmio_write32(t + 0, (u32)LAPIC); /* destination APIC 0, physical */
    mmio_write32(t + 4, 0);
    mmio_write32(t + 8, vector); /* fixed, edge */
    mmio_write32(t + 12, masked ? 1 : 0);
}

static void msix_mask(unsigned e, int masked)
{
    mmio_write32(msix_table + 16 * e + 12, masked ? 1 : 0);
}

/* ---- the virtqueue ---- */

#define QSZ 8
static struct {
    u64 addr;
    u32 len;
    u16 flags, next;
} desc[QSZ] __attribute__((aligned(4096)));
static struct {
    u16 flags, idx, ring[QSZ];
} avail __attribute__((aligned(4096)));
static struct {
    u16 flags;
    volatile u16 idx;
    struct {
        u32 id, len;
    } ring[QSZ];
} used __attribute__((aligned(4096)));
static u8 rngbuf[QSZ][16];
static u16 next_avail, seen_used, notify_off;

static void device_up(u16 queue_vector)
{
    wr8(common + 0x14, 0); /* reset */
    while (rd8(common + 0x14))
        ;
    wr8(common + 0x14, 1 | 2);
    mmio_write32(common + 0x08, 1);
    mmio_write32(common + 0x0c, 1); /* VIRTIO_F_VERSION_1 */
    mmio_write32(common + 0x08, 0);
    mmio_write32(common + 0x0c, 0);
    wr8(common + 0x14, 1 | 2 | 8);
    if (!(rd8(common + 0x14) & 8))
        fail("FEATURES_OK refused");
    mmio_write16(common + 0x10, 0); /* config changes: entry 0 */
    mmio_write16(common + 0x16, 0);
    mmio_write16(common + 0x18, QSZ);
    mmio_write16(common + 0x1a, queue_vector);
    if (*(volatile u16 *)(common + 0x1a) != queue_vector)
        fail("queue vector not taken");
    *(volatile u64 *)(common + 0x20) = (u64)desc;
    *(volatile u64 *)(common + 0x28) = (u64)&avail;
    *(volatile u64 *)(common + 0x30) = (u64)&used;
    notify_off = *(volatile u16 *)(common + 0x1e);
    mmio_write16(common + 0x1c, 1);
    next_avail = 0;
    seen_used = 0;
    avail.idx = 0;
    wr8(common + 0x14, 1 | 2 | 8 | 4);
}

/* Offer one 16-byte buffer and kick. */
static void request(void)
{
    u16 slot = next_avail % QSZ;
    desc[slot].addr = (u64)rngbuf[slot];
    desc[slot].len = 16;
    desc[slot].flags = 2; /* device writes */
    desc[slot].next = 0;
    avail.ring[slot] = slot;
    barrier();
    avail.idx = ++next_avail;
    barrier();
    mmio_write16(notify + (u64)notify_off * notify_mult, 0);
}

static int wait_used(void)
{
    for (u32 i = 0; i < 200000; i++) {
        if (used.idx != seen_used) {
            seen_used = used.idx;
            return 1;
        }
        __asm__ volatile("pause");
    }
    return 0;
}

static void ok(const char *what)
{
    puts_("VG OK ");
    puts_(what);
    puts_("\n");
}

static void test_msix(void)
{
    /* entry 0: config changes (0x40), entry 1: the queue (0x41) */
    msix_entry(0, 0x40, 0);
    msix_entry(1, 0x41, 0);
    msix_enable(1);
    device_up(1);
    u32 n = irqs[1];
    request();
    if (!wait_irq(0x41, n) || !wait_used())
        fail("no queue interrupt on vector 0x41");
    if (irqs[0] || irqs[2])
        fail("interrupt on the wrong vector");
    ok("vector");

    /* masked: the interrupt waits in the PBA, arrives on unmask */
    msix_mask(1, 1);
    n = irqs[1];
    request();
    if (!wait_used())
        fail("request not served while masked");
    delay(20000);
    if (irqs[1] != n)
        fail("a masked vector interrupted");
    if (!(mmio_read32(pba) & 2))
        fail("pending bit not set");
    msix_mask(1, 0);
    if (!wait_irq(0x41, n))
        fail("pending interrupt not delivered on unmask");
    if (mmio_read32(pba) & 2)
        fail("pending bit still set");
    ok("pending");

    /* a new message, written while masked: the interrupt follows it */
    msix_entry(1, 0x42, 0);
    n = irqs[2];
    u32 old = irqs[1];
    request();
    if (!wait_irq(0x42, n) || !wait_used())
        fail("no interrupt on the re-programmed vector 0x42");
    if (irqs[1] != old)
        fail("interrupt on the old vector");
    ok("reroute");

    /* the queue moves to entry 0, which config changes use: its route,
     * made at the start, must have survived entry 1's re-routing */
    mmio_write16(common + 0x1a, 0);
    n = irqs[0];
    old = irqs[2];
    request();
    if (!wait_irq(0x40, n) || !wait_used())
        fail("no interrupt on entry 0 after the queue moved to it");
    if (irqs[2] != old)
        fail("interrupt on the entry the queue left");
    ok("move");

    /* a device reset, then a bring-up on the other entry (virtio-rng has
     * two: the queue now shares entry 0 with config changes) */
    msix_entry(0, 0x43, 0);
    device_up(0);
    n = irqs[3];
    old = irqs[2];
    request();
    if (!wait_irq(0x43, n) || !wait_used())
        fail("no interrupt after the device reset");
    if (irqs[2] != old)
        fail("interrupt on the unassigned entry after reset");
    ok("reset");

    /* MSI-X off: back to INTx, no message */
    msix_enable(0);
    old = irqs[3];
    request();
    if (!wait_used())
        fail("request not served without MSI-X");
    delay(20000);
    if (irqs[3] != old)
        fail("MSI while MSI-X is disabled");
    ok("disable");
}

static void test_loop(void)
{
    msix_entry(0, 0x40, 0);
    msix_entry(1, 0x41, 0);
    msix_enable(1);
    device_up(1);
    for (u64 i = 1;; i++) {
        u32 n = irqs[1];
        request();
        if (!wait_irq(0x41, n) || !wait_used())
            fail("no queue interrupt");
        puts_("irq ");
        putu(i);
        puts_("\n");
        delay(50000);
    }
}

static int has_arg(const char *cmdline, const char *a)
{
    for (const char *p = cmdline; *p; p++) {
        const char *x = p, *y = a;
        while (*y && *x == *y)
            x++, y++;
        if (!*y && (*x == 0 || *x == ' ') && (p == cmdline || p[-1] == ' '))
            return 1;
    }
    return 0;
}

void vguest_main(u8 *bp)
{
    u64 lo = *(u32 *)(bp + 0x228), hi = *(u32 *)(bp + 0xc8); /* cmd_line_ptr, ext_ */
    const char *cmdline = (const char *)(lo | hi << 32);
    puts_("VG start\n");
    irq_setup();
    pci_find_rng();
    if (has_arg(cmdline, "vt=loop"))
        test_loop();
    test_msix();
    puts_("VG done\n");
    reboot();
}
