/* The tier-1 x86 test guest: a few hundred instructions of kernel-mode code
 * per test, so it runs quickly on PVM (each guest kernel instruction is
 * emulated) and on hardware KVM alike. The test to run is chosen by the
 * command line ("test=NAME"); every test ends with an ACPI power-off found
 * through the RSDP -> XSDT -> FADT -> DSDT (\_S5) chain vessel generates, so
 * that chain is tested too. Output goes to COM1. */
#include "guest.h"

extern char trampoline_start[], trampoline_end[], trampoline_cr3[];
extern volatile u32 ap_next;

/* ---- serial ---- */

#define COM1 0x3f8
static volatile u32 print_lock;

static void lock(void)
{
    while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
        __asm__ volatile("pause");
}
static void unlock(void)
{
    __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static void putc_(char c)
{
    /* vessel's UART transmits at once, so THRE is set on the first read. */
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (u8)c);
}
void puts_(const char *s)
{
    while (*s) {
        if (*s == '\n')
            putc_('\r');
        putc_(*s++);
    }
}
void putx(u64 v)
{
    char b[17];
    int i = 16;
    b[i] = 0;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    puts_(b + i);
}
void putu(u64 v)
{
    char b[21];
    int i = 20;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_(b + i);
}

static int memeq(const void *a, const void *b, u64 n)
{
    const u8 *x = a, *y = b;
    for (u64 i = 0; i < n; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

/* ---- boot information ---- */

static u8 *boot_params; /* Linux zero page (64-bit entry) */
static u8 *pvh_info;    /* hvm_start_info (PVH entry) */
static const char *cmdline = "";

static u64 rd64(const void *p)
{
    return *(const u64 *)p;
}
static u32 rd32(const void *p)
{
    return *(const u32 *)p;
}

static const char *arg(const char *key)
{
    /* Value of key=... on the command line, or 0. */
    const char *s = cmdline;
    u64 n = 0;
    while (key[n])
        n++;
    while (*s) {
        while (*s == ' ')
            s++;
        if (memeq(s, key, n) && s[n] == '=')
            return s + n + 1;
        while (*s && *s != ' ')
            s++;
    }
    return 0;
}
static int arg_is(const char *key, const char *val)
{
    const char *v = arg(key);
    if (!v)
        return 0;
    u64 i = 0;
    for (; val[i]; i++)
        if (v[i] != val[i])
            return 0;
    return v[i] == 0 || v[i] == ' ';
}

/* ---- ACPI ---- */

static u8 *rsdp(void)
{
    u64 a = 0;
    if (boot_params)
        a = rd64(boot_params + 0x70);
    else if (pvh_info)
        a = rd64(pvh_info + 0x20);
    if (a)
        return (u8 *)a;
    for (u64 p = 0xe0000; p < 0x100000; p += 16)
        if (memeq((void *)p, "RSD PTR ", 8))
            return (u8 *)p;
    return 0;
}

u8 *find_table(const char *sig)
{
    u8 *r = rsdp();
    if (!r)
        return 0;
    int x = r[15] >= 2 && rd64(r + 24);
    u8 *sdt = x ? (u8 *)rd64(r + 24) : (u8 *)(u64)rd32(r + 16);
    u32 len = rd32(sdt + 4);
    u32 esz = x ? 8 : 4;
    for (u32 off = 36; off + esz <= len; off += esz) {
        u8 *t = x ? (u8 *)rd64(sdt + off) : (u8 *)(u64)rd32(sdt + off);
        if (memeq(t, sig, 4))
            return t;
    }
    return 0;
}

/* SLP_TYPa from the DSDT's \_S5 package. */
static int s5_type(u8 *fadt)
{
    u8 *dsdt = (u8 *)(u64)rd32(fadt + 40);
    if (rd32(fadt + 4) >= 148 && rd64(fadt + 140))
        dsdt = (u8 *)rd64(fadt + 140);
    u32 len = rd32(dsdt + 4);
    for (u32 i = 36; i + 8 < len; i++) {
        if (!memeq(dsdt + i, "_S5_", 4) || dsdt[i + 4] != 0x12)
            continue;
        u8 *p = dsdt + i + 5;
        p += 1 + (*p >> 6); /* PkgLength */
        p++;                /* NumElements */
        if (*p == 0x0a)
            return p[1];
        return *p == 0x01 ? 1 : 0;
    }
    return -1;
}

void poweroff(void)
{
    u8 *fadt = find_table("FACP");
    if (fadt) {
        int typ = s5_type(fadt);
        u32 flags = rd32(fadt + 112);
        u32 pm1a = rd32(fadt + 64);
        if (typ < 0) {
            puts_("guest: no \\_S5 in the DSDT\n");
        } else if (!(flags & (1u << 20)) && pm1a) {
            outw((u16)pm1a, (u16)(typ << 10 | 1 << 13));
        } else if (rd32(fadt + 4) >= 256 && rd64(fadt + 248)) {
            /* Hardware-reduced: the sleep control register (QEMU microvm). */
            u8 space = fadt[244];
            u64 addr = rd64(fadt + 248);
            u8 v = (u8)(typ << 2 | 1 << 5);
            if (space == 1)
                outb((u16)addr, v);
            else
                *(volatile u8 *)addr = v;
        }
    } else {
        puts_("guest: no FADT\n");
    }
    /* Still here: QEMU's isa-debug-exit, then stop. */
    outb(0xf4, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- local APIC / SMP ---- */

#define LAPIC 0xfee00000ULL

static u32 apic_id(void)
{
    return mmio_read32(LAPIC + 0x20) >> 24;
}

static volatile u32 aps_up;

void ap_main(void)
{
    lock();
    puts_("cpu up: apic id ");
    putu(apic_id());
    puts_("\n");
    unlock();
    __atomic_add_fetch(&aps_up, 1, __ATOMIC_SEQ_CST);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void test_smp(void)
{
    u8 *madt = find_table("APIC");
    if (!madt) {
        puts_("smp: no MADT\n");
        return;
    }
    /* Copy the trampoline and give it our page tables. */
    u64 cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    u8 *dst = (u8 *)0x10000;
    for (char *s = trampoline_start; s < trampoline_end; s++)
        *dst++ = (u8)*s;
    *(u32 *)(0x10000 + (trampoline_cr3 - trampoline_start)) = (u32)cr3;
    u32 self = apic_id(), n = 1;
    puts_("cpu up: apic id ");
    putu(self);
    puts_(" (bsp)\n");
    u32 len = rd32(madt + 4);
    for (u32 off = 44; off + 2 <= len; off += madt[off + 1]) {
        if (madt[off + 1] < 2)
            break;
        if (madt[off] != 0 || !(madt[off + 4] & 1) || madt[off + 3] == self)
            continue;
        u32 id = madt[off + 3];
        n++;
        mmio_write32(LAPIC + 0x310, id << 24);
        mmio_write32(LAPIC + 0x300, 0x4500); /* INIT */
        mmio_write32(LAPIC + 0x310, id << 24);
        mmio_write32(LAPIC + 0x300, 0x4600 | (0x10000 >> 12)); /* SIPI */
    }
    while (__atomic_load_n(&aps_up, __ATOMIC_SEQ_CST) < n - 1)
        __asm__ volatile("pause");
    lock();
    puts_("smp: ");
    putu(n);
    puts_(" cpus up\n");
    unlock();
}

/* ---- tests ---- */

/* Prints one e820 entry (address, size, type); its size when it is RAM. */
static u64 e820_entry(const u8 *e)
{
    puts_("e820: ");
    putx(rd64(e));
    puts_(" ");
    putx(rd64(e + 8));
    puts_(" ");
    putu(rd32(e + 16));
    puts_("\n");
    return rd32(e + 16) == 1 ? rd64(e + 8) : 0;
}

static void test_e820(void)
{
    u64 total = 0;
    if (boot_params) {
        u8 n = boot_params[0x1e8];
        for (u8 i = 0; i < n; i++) {
            u8 *e = boot_params + 0x2d0 + 20 * i;
            total += e820_entry(e);
        }
    } else if (pvh_info) {
        u32 n = rd32(pvh_info + 0x30);
        u8 *e = (u8 *)rd64(pvh_info + 0x28);
        for (u32 i = 0; i < n; i++, e += 24) {
            total += e820_entry(e);
        }
    }
    puts_("ram total kib: ");
    putu(total >> 10);
    puts_("\n");
}

static void test_io(void)
{
    /* Nothing decodes port 0x1234: reads float high. */
    puts_("port 0x1234: ");
    putx(inl(0x1234));
    puts_("\n");
    /* PCI config mechanism #1: 00:00.0 is the host bridge. */
    outl(0xcf8, 0x80000000u);
    puts_("pci 00:00.0: ");
    putx(inl(0xcfc));
    puts_("\n");
    outl(0xcf8, 0x80000000u | 31 << 11);
    puts_("pci 00:1f.0: ");
    putx(inl(0xcfc));
    puts_("\n");
    /* An MMIO hole inside the PCI window: reads float high too. */
    puts_("mmio 0xd0000000: ");
    putx(mmio_read32(0xd0000000ULL));
    puts_("\n");
    mmio_write32(0xd0000000ULL, 0x12345678);
    /* The in-kernel IOAPIC: version register. */
    mmio_write32(0xfec00000ULL, 1);
    puts_("ioapic version: ");
    putx(mmio_read32(0xfec00010ULL) & 0xff);
    puts_("\n");
    /* CMOS RTC, 24 h, BCD by default. */
    outb(0x70, 0x0b);
    u8 b = inb(0x71);
    outb(0x70, 0x09);
    u8 year = inb(0x71);
    outb(0x70, 0x32);
    u8 century = inb(0x71);
    puts_("rtc year: ");
    putx(century);
    putx(year >> 4);
    putx(year & 15);
    puts_(" regb ");
    putx(b);
    puts_("\n");
}

static void test_echo(void)
{
    /* Echo the serial input upper-cased until a '.' arrives. */
    puts_("echo: ready\n");
    for (;;) {
        while (!(inb(COM1 + 5) & 1))
            __asm__ volatile("pause");
        char c = (char)inb(COM1);
        if (c == '.')
            break;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        putc_(c);
    }
    puts_("\necho: done\n");
}

static void test_exits(void)
{
    /* N port writes to port 0x80 (the POST port vessel ignores): the cost
     * of the exit round trip dominates. */
    u64 n = arg_u64("n");
    for (u64 i = 0; i < n; i++)
        outb(0x80, 0);
    puts_("exits: done\n");
}

u64 arg_u64(const char *key)
{
    const char *v = arg(key);
    u64 n = 0;
    while (v && *v >= '0' && *v <= '9')
        n = n * 10 + (u64)(*v++ - '0');
    return n;
}

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

/* For the snapshot tests: dirty touch=N MiB from 16 MiB on, then count
 * forever; an 'x' on COM1 resets the counter (a restored guest must keep
 * counting from where it was). */
static void test_counter(void)
{
    u64 mib = arg_u64("touch");
    if (mib) {
        for (u64 a = 16ULL << 20; a < (16ULL + mib) << 20; a += 4096)
            *(volatile u64 *)a = a;
        puts_("touched ");
        putu(mib);
        puts_(" MiB\n");
    }
    u32 count = 0;
    for (;;) {
        puts_("count ");
        for (int sh = 28; sh >= 0; sh -= 4)
            putc_("0123456789abcdef"[(count >> sh) & 15]);
        puts_("\n");
        count++;
        if ((inb(COM1 + 5) & 1) && inb(COM1) == 'x') {
            count = 0;
            puts_("guest broken: counter reset\n");
        }
        /* A few hundred lines per second on hardware KVM. */
        u64 t0 = rdtsc();
        while (rdtsc() - t0 < 5000000)
            __asm__ volatile("pause");
    }
}

void guest_main(u8 *bp, u8 *pvh)
{
    boot_params = bp;
    pvh_info = pvh;
    if (bp)
        cmdline = (const char *)(rd32(bp + 0x228) | (u64)rd32(bp + 0xc8) << 32);
    else if (pvh && rd64(pvh + 0x18))
        cmdline = (const char *)rd64(pvh + 0x18);
    puts_("vessel test guest: ");
    puts_(bp ? "64-bit entry" : "pvh entry");
    puts_(", cmdline \"");
    puts_(cmdline);
    puts_("\"\n");

    if (arg_is("test", "e820")) {
        test_e820();
    } else if (arg_is("test", "smp")) {
        test_smp();
    } else if (arg_is("test", "io")) {
        test_io();
    } else if (arg_is("test", "echo")) {
        test_echo();
    } else if (arg_is("test", "reboot-smp")) {
        /* CMOS RAM survives a reboot: count boots there, bring the APs up
         * on every boot, reboot twice, then power off. */
        outb(0x70, 0x40);
        u8 boots = (u8)(inb(0x71) + 1);
        outb(0x70, 0x40);
        outb(0x71, boots);
        puts_("boot ");
        putu(boots);
        puts_("\n");
        test_smp();
        if (boots < 3) {
            outb(0xcf9, 0x06);
            for (;;)
                __asm__ volatile("pause");
        }
    } else if (arg_is("test", "counter")) {
        test_counter();
    } else if (arg_is("test", "exits")) {
        test_exits();
    } else if (arg_is("test", "reboot")) {
        puts_("rebooting via ");
        if (arg_is("via", "kbd")) {
            puts_("i8042\n");
            outb(0x64, 0xfe);
        } else {
            puts_("0xcf9\n");
            outb(0xcf9, 0x06);
        }
        for (;;)
            __asm__ volatile("pause");
    } else if (arg_is("test", "triple")) {
        /* An empty IDT: the #UD cannot be delivered -> #DF -> shutdown. */
        puts_("triple fault next\n");
        struct __attribute__((packed)) {
            u16 limit;
            u64 base;
        } idt = {0, 0};
        __asm__ volatile("lidt %0; ud2" ::"m"(idt));
    } else if (arg_is("test", "hostile")) {
        test_hostile();
    } else if (arg_is("test", "hang")) {
        puts_("hanging\n");
        for (;;)
            __asm__ volatile("cli; hlt");
    } else {
        puts_("hello from the vessel test guest\n");
    }
    poweroff();
}
