/* test=hostile: a guest that attacks its VMM, for
 * tests/integration/isolation/test_hostile_x86.py. In order:
 *   1. every I/O port, read and written with garbage (but the few whose
 *      writes would end the test: COM1, the i8042 command port, PCI
 *      config, the reset port and PM1a_CNT), each walked on its own below;
 *   2. COM1's registers flooded with garbage (control characters and
 *      escape sequences included), then set back;
 *   3. every dword of the PCI configuration space of every bus 0 function
 *      (BARs, command, the MSI-X capability), then sane BARs back;
 *   4. MMIO across the PCI hole and above it (unassigned addresses, every
 *      BAR at a 64 KiB stride) and addresses beyond RAM;
 *   5. every register of every virtio-pci function's BAR (common config,
 *      ISR, device config, notify, MSI-X table and PBA) at random widths;
 *   6. malformed virtqueues on every queue of every virtio function, at
 *      full rate: descriptor loops, chains through the whole table with
 *      4 GiB lengths, addresses outside RAM, indirect tables of garbage
 *      and of loops, rings outside RAM or straddling its end, sizes not
 *      offered, avail indices far ahead, descriptors rewritten while the
 *      device reads them, MSI-X entries with garbage addresses and vectors
 *      for an interrupt storm (fixed delivery only: an NMI or INIT the
 *      guest sends itself would only stop the guest).
 * It prints HOSTILE-<phase> after each and HOSTILE-DONE at the end, and
 * powers off. The VMM must refuse each malformation (or mark the device
 * broken) and stay up, or stop with a clear error. rounds=N sets the
 * number of malformed-queue rounds per device (default 8). */
#include "guest.h"

static u64 seed = 0x2545f4914f6cdd1dull;

static u32 rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (u32)seed;
}
static u64 rnd64(void)
{
    return (u64)rnd() << 32 | rnd();
}

static inline u16 inw(u16 port)
{
    u16 v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void w8(u64 a, u8 v)
{
    *(volatile u8 *)a = v;
}
static inline u8 r8(u64 a)
{
    return *(volatile u8 *)a;
}
static inline void w16(u64 a, u16 v)
{
    *(volatile u16 *)a = v;
}
static inline u16 r16(u64 a)
{
    return *(volatile u16 *)a;
}
static inline void w64(u64 a, u64 v)
{
    mmio_write32(a, (u32)v);
    mmio_write32(a + 4, (u32)(v >> 32));
}
/* A write of a random width (1, 2 or 4 bytes) of garbage. */
static void wrnd(u64 a)
{
    u32 v = rnd();
    switch (v % 3) {
    case 0:
        w8(a, (u8)(v >> 8));
        break;
    case 1:
        w16(a & ~1ULL, (u16)(v >> 8));
        break;
    default:
        mmio_write32(a & ~3ULL, rnd());
    }
}

#define LAPIC 0xfee00000ULL
#define IOAPIC 0xfec00000ULL
#define COM1 0x3f8
#define RING 0x4000000ULL /* 64 MiB: everything the devices may scribble on */
#define RING_PER_Q 0x100000ULL
#define GARBAGE (RING + 0x3000000ULL) /* 64 KiB of garbage descriptors */

static u64 ram_end(void)
{
    /* The tests give the guest --memory 256M; the test reads the size
     * it was given (mem=MiB) to aim at RAM's end. */
    u64 mib = arg_u64("mem");
    return (mib ? mib : 256) << 20;
}

/* ---- 1. ports ---- */

static u16 pm1a_cnt(void)
{
    u8 *fadt = find_table("FACP");
    return fadt ? (u16) * (u32 *)(fadt + 64) : 0x604;
}

static int port_skipped(u32 p, u16 pm1a)
{
    return (p >= COM1 && p < COM1 + 8)    /* flooded below, then set back */
           || p == 0x64                   /* i8042 commands 0xfe and 0xd1 reset */
           || (p >= 0xcf8 && p < 0xd00)   /* PCI config below; 0xcf9 resets */
           || (p >= pm1a && p < pm1a + 2) /* SLP_EN powers off */
           || p == 0xf4;                  /* QEMU's isa-debug-exit, where it exists */
}

static void hostile_ports(void)
{
    u16 pm1a = pm1a_cnt();
    for (u32 p = 0; p < 0x10000; p++) {
        if (port_skipped(p, pm1a))
            continue;
        (void)inb((u16)p);
        outb((u16)p, (u8)rnd());
        if (p >= 0x1000) /* nothing decodes these: bytes will do */
            continue;
        if (!(p & 3)) {
            (void)inl((u16)p);
            outl((u16)p, rnd());
        } else if (!(p & 1)) {
            (void)inw((u16)p);
            outw((u16)p, (u16)rnd());
        }
    }
}

/* ---- 2. COM1 ---- */

static void hostile_uart(void)
{
    for (unsigned i = 0; i < 20000; i++) {
        u16 reg = (u16)(COM1 + (rnd() & 7));
        outb(reg, (u8)rnd());
        (void)inb(reg);
    }
    /* 8N1, divisor 1, no interrupts, no loopback, FIFOs on */
    outb(COM1 + 3, 0x80);
    outb(COM1 + 0, 1);
    outb(COM1 + 1, 0);
    outb(COM1 + 3, 3);
    outb(COM1 + 1, 0);
    outb(COM1 + 4, 3);
    outb(COM1 + 2, 7);
}

/* ---- 3. PCI config ---- */

struct vdev {
    unsigned dev;
    u32 id, bar0, bar1;
    u64 base;
};
static struct vdev vdevs[32];
static unsigned nvdevs;

static u32 cfg_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc);
}
static u32 cfg_rd(unsigned dev, unsigned off)
{
    outl(0xcf8, cfg_addr(0, dev, 0, off));
    return inl(0xcfc);
}
static void cfg_wr(unsigned dev, unsigned off, u32 v)
{
    outl(0xcf8, cfg_addr(0, dev, 0, off));
    outl(0xcfc, v);
}

static void pci_scan(void)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        u32 id = cfg_rd(dev, 0);
        if ((id & 0xffff) != 0x1af4)
            continue;
        struct vdev *v = &vdevs[nvdevs++];
        v->dev = dev;
        v->id = id >> 16;
        v->bar0 = cfg_rd(dev, 0x10);
        v->bar1 = cfg_rd(dev, 0x14);
        v->base = v->bar0 & ~0xfULL;
        if ((v->bar0 & 6) == 4)
            v->base |= (u64)v->bar1 << 32;
        puts_("virtio device ");
        putx(v->id);
        puts_(" at 00:");
        putx(dev);
        puts_(".0 bar ");
        putx(v->base);
        puts_("\n");
    }
}

static void pci_restore(void)
{
    for (unsigned i = 0; i < nvdevs; i++) {
        struct vdev *v = &vdevs[i];
        cfg_wr(v->dev, 0x10, v->bar0);
        cfg_wr(v->dev, 0x14, v->bar1);
        cfg_wr(v->dev, 0x04, 0x6);        /* memory decoding, bus master */
        cfg_wr(v->dev, 0x40, 0x0000c011); /* MSI-X off */
    }
}

static void hostile_pci(void)
{
    for (unsigned dev = 0; dev < 32; dev++)
        for (unsigned fn = 0; fn < 8; fn++)
            for (unsigned off = 0; off < 256; off += 4) {
                u32 a = cfg_addr(0, dev, fn, off);
                outl(0xcf8, a);
                (void)inl(0xcfc);
                outl(0xcf8, a);
                u32 v = rnd();
                switch (v % 3) {
                case 0:
                    outb((u16)(0xcfc + (v >> 8 & 3)), (u8)(v >> 16));
                    break;
                case 1:
                    outw((u16)(0xcfc + (v >> 8 & 2)), (u16)(v >> 16));
                    break;
                default:
                    outl(0xcfc, rnd());
                }
            }
    /* other buses, and addresses without the enable bit */
    for (unsigned i = 0; i < 4096; i++) {
        outl(0xcf8, rnd() & ~3u);
        (void)inl(0xcfc);
        outl(0xcfc, rnd());
    }
    pci_restore();
}

/* ---- 4. MMIO ---- */

static void rw_mmio(u64 a)
{
    (void)mmio_read32(a);
    mmio_write32(a, rnd());
}

static void hostile_mmio(void)
{
    /* beyond RAM, below the PCI hole */
    for (u64 a = ram_end(); a < 0xc0000000ULL; a += 0x1000000ULL)
        rw_mmio(a + (rnd() & 0xffc));
    /* the PCI hole (every BAR at a 64 KiB stride) and above; the in-kernel
     * IOAPIC and local APIC are KVM's, not the VMM's */
    for (u64 a = 0xc0000000ULL; a < 0x100000000ULL; a += 0x10000) {
        if ((a >= IOAPIC && a < IOAPIC + 0x100000) || (a >= LAPIC && a < LAPIC + 0x100000))
            continue;
        rw_mmio(a);
        rw_mmio(a + (rnd() & 0xfffc));
    }
}

/* ---- 5. every BAR register ---- */

#define VP_ISR 0x1000
#define VP_NOTIFY 0x3000
#define VP_MSIX 0x4000
#define VP_BAR_SIZE 0x8000

static void hostile_bars(void)
{
    for (unsigned i = 0; i < nvdevs; i++) {
        u64 b = vdevs[i].base;
        for (u64 off = 0; off < VP_BAR_SIZE; off += 4) {
            (void)mmio_read32(b + off);
            wrnd(b + off + (rnd() & 3));
        }
        w8(b + 0x14, 0); /* reset */
    }
}

/* ---- 6. malformed virtqueues ---- */

struct desc {
    u64 addr;
    u32 len;
    u16 flags, next;
};
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

/* A message the guest can take: fixed (or lowest-priority) delivery of a
 * vector >= 0x20, so that no storm becomes an NMI, SMI or INIT the guest
 * sent itself. The address is garbage half of the time. */
static void msix_entry(u64 t, int garbage_addr)
{
    u32 r = rnd();
    mmio_write32(t + 0, garbage_addr ? rnd() : (u32)LAPIC | (r & 0xff000));
    mmio_write32(t + 4, garbage_addr ? rnd() : 0);
    mmio_write32(t + 8, (0x20 + (r & 0xdf)) | (r >> 8 & 0x100) | (r >> 9 & 0xc000));
    mmio_write32(t + 12, r >> 30 & 1); /* masked now and then */
}

static void fill_queue(volatile struct desc *d, unsigned num, unsigned round)
{
    u64 buf = (u64)d + 0x20000;
    for (unsigned i = 0; i < num; i++) {
        switch ((i + round) % 6) {
        case 0: /* a loop through NEXT */
            d[i] = (struct desc){buf, 0xffffffffu, F_NEXT, (u16)((i + 1) % num)};
            break;
        case 1: /* outside RAM, device-writable */
            d[i] = (struct desc){0xfffffffffff000ULL, 16, F_NEXT | F_WRITE, (u16)(i - 1)};
            break;
        case 2: /* an indirect table of garbage, now and then a huge one */
            d[i] = (struct desc){GARBAGE, round & 1 ? 0x100000 : 0x1000, F_INDIRECT, (u16)rnd()};
            break;
        case 3: /* an indirect table anywhere */
            d[i] = (struct desc){rnd64() & ~0xfULL, rnd() & 0xfff0, F_INDIRECT, 0};
            break;
        case 4: /* a well-formed pair, so the device parses a request */
            d[i] = (struct desc){buf + 64 * i, 16, F_NEXT, (u16)((i + 1) % num)};
            break;
        default:
            d[i] = (struct desc){rnd64(), rnd(), (u16)rnd(), (u16)rnd()};
        }
    }
    if (round % 8 == 1) /* one chain through the whole table, 4 GiB each */
        for (unsigned i = 0; i + 1 < num; i++)
            d[i] = (struct desc){buf, 0xffffffffu, F_NEXT | (i & 1 ? F_WRITE : 0), (u16)(i + 1)};
}

static void malformed_queues(struct vdev *v, unsigned round)
{
    u64 b = v->base, c = b; /* common config at offset 0 */
    w8(c + 0x14, 0);        /* reset */
    for (unsigned i = 0; i < 100 && r8(c + 0x14); i++)
        ;
    w8(c + 0x14, 1 | 2); /* ACKNOWLEDGE | DRIVER */
    for (u32 sel = 0; sel < 2; sel++) {
        mmio_write32(c + 0x00, sel);
        u32 offered = mmio_read32(c + 0x04);
        mmio_write32(c + 0x08, sel);
        mmio_write32(c + 0x0c, round % 8 == 7 ? rnd() : offered);
    }
    w8(c + 0x14, 1 | 2 | 8); /* FEATURES_OK */
    u16 nq = r16(c + 0x12);
    /* MSI-X: every entry of the table, then on (the capability at 0x40) */
    unsigned nvec = ((cfg_rd(v->dev, 0x40) >> 16) & 0x7ff) + 1;
    if (nvec > 64)
        nvec = 64;
    for (unsigned e = 0; e < nvec; e++)
        msix_entry(b + VP_MSIX + 16 * e, rnd() & 1);
    cfg_wr(v->dev, 0x40, cfg_rd(v->dev, 0x40) | 0x80000000u | (round % 8 == 5 ? 0x40000000u : 0));
    w16(c + 0x10, round % 4 == 0 ? (u16)rnd() : 0); /* config vector */
    for (u16 q = 0; q <= nq; q++) {                 /* one queue more than there are */
        u64 area = RING + RING_PER_Q * (q & 31);
        w16(c + 0x16, q);
        u16 max = r16(c + 0x18);
        u16 num = max ? max : 8;
        if (num > 1024)
            num = 1024;
        w16(c + 0x18, round % 8 == 3 ? 0xffff : round % 8 == 6 ? 3 : num);
        w16(c + 0x1a, round % 4 == 2 ? (u16)rnd() : (u16)(rnd() % (nq + 1)));
        u64 desc = area, avail = area + 0x80000, used = area + 0xc0000;
        if (round % 8 == 4)
            used = round & 8 ? LAPIC : 0xd0000000ULL; /* not RAM */
        if (round % 16 == 6)
            desc = ram_end() - 64; /* straddles the end of RAM */
        w64(c + 0x20, desc);
        w64(c + 0x28, avail);
        w64(c + 0x30, used);
        volatile struct desc *d = (void *)area;
        volatile u16 *av = (void *)(area + 0x80000);
        fill_queue(d, num, round);
        av[0] = (u16)rnd();
        av[1] = 0;
        for (unsigned i = 0; i < num; i++)
            av[2 + i] = (u16)(round & 2 ? i : rnd());
        w16(c + 0x1c, 1); /* enable */
    }
    w8(c + 0x14, 1 | 2 | 4 | 8); /* DRIVER_OK */
    for (unsigned k = 0; k < 400; k++) {
        u16 q = (u16)(rnd() % (nq + 2));
        volatile u16 *av = (void *)(RING + RING_PER_Q * (q & 31) + 0x80000);
        av[1] = (u16)(av[1] + (k % 50 == 49 ? 40000 : 1 + (rnd() & 3)));
        /* rewrite a descriptor the device may be reading right now */
        volatile struct desc *d = (void *)(RING + RING_PER_Q * (q & 31));
        d[rnd() & 7] = (struct desc){rnd64(), rnd(), (u16)rnd(), (u16)rnd()};
        w16(b + VP_NOTIFY + 4 * q, q);
        if (!(k & 31)) {
            (void)r8(b + VP_ISR); /* interrupt acknowledge */
            msix_entry(b + VP_MSIX + 16 * (rnd() % nvec), rnd() & 1);
        }
    }
}

static void hostile_queues(void)
{
    /* garbage indirect tables, loops among them */
    volatile struct desc *g = (void *)GARBAGE;
    for (unsigned i = 0; i < 4096; i++)
        g[i] = (struct desc){i & 1 ? rnd64() : GARBAGE + 16 * (rnd() & 4095), rnd(), (u16)rnd(),
                             (u16)rnd()};
    u64 rounds = arg_u64("rounds");
    if (!rounds)
        rounds = 8;
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned i = 0; i < nvdevs; i++)
            malformed_queues(&vdevs[i], r);
    for (unsigned i = 0; i < nvdevs; i++) {
        w8(vdevs[i].base + 0x14, 0);
        cfg_wr(vdevs[i].dev, 0x40, 0);
    }
}

void test_hostile(void)
{
    puts_("HOSTILE-START\n");
    pci_scan();
    hostile_ports();
    puts_("HOSTILE-PORTS\n");
    hostile_uart();
    puts_("\nHOSTILE-UART\n");
    hostile_pci();
    puts_("HOSTILE-PCI\n");
    hostile_mmio();
    puts_("HOSTILE-MMIO\n");
    hostile_bars();
    puts_("HOSTILE-BARS\n");
    hostile_queues();
    puts_("HOSTILE-DONE\n");
}
