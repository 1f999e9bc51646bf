/* `vessel emu --bare ELF`: run a bare-metal M-mode test program (the ISA
 * test suite in tests/riscv-isa) on one hart with RAM at 0x80000000 and a
 * minimal test board: a CLINT-style timer (mtime at 10 MHz, mtimecmp, msip)
 * at 0x02000000, a console byte register at 0x10000000, and an interrupt
 * line register at 0x00100000 (bit 0 drives MEIP, bit 1 SEIP) so tests can
 * raise external interrupts. The program reports through the HTIF `tohost`
 * word: 1 = pass, (n << 1) | 1 = fail with code n; HTIF console writes
 * (device 1, command 1) are printed. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "riscv/hart.h"
#include "riscv/loader.h"
#include "riscv/user/emu.h"
#include "util/cleanup.h"

#define BARE_RAM_BASE 0x80000000ull
#define BARE_RAM_SIZE (64ull << 20)
#define CLINT_BASE 0x02000000ull
#define CONSOLE_BASE 0x10000000ull
#define IRQ_BASE 0x00100000ull

struct bare {
    struct rv_hart hart;
    uint8_t *ram;
    uint64_t tohost, fromhost; /* guest addresses, 0 if absent */
    uint64_t mtimecmp;
    uint64_t time0;
};

static uint64_t bare_time(void *opaque)
{
    struct bare *b = opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * 10000000ull + (uint64_t)ts.tv_nsec / 100) - b->time0;
}

static bool bare_read(void *opaque, uint64_t pa, unsigned len, uint64_t *val)
{
    struct bare *b = opaque;
    if (pa >= CLINT_BASE && pa < CLINT_BASE + 0x10000) {
        uint64_t off = pa - CLINT_BASE, v;
        if (off < 8)
            v = (__atomic_load_n(&b->hart.mip, __ATOMIC_ACQUIRE) & RV_MIP_MSIP) ? 1 : 0;
        else if (off >= 0x4000 && off < 0x4008)
            v = b->mtimecmp >> (8 * (off - 0x4000));
        else if (off >= 0xbff8)
            v = bare_time(b) >> (8 * (off - 0xbff8));
        else
            v = 0;
        *val = len == 8 ? v : v & ((1ull << (8 * len)) - 1);
        return true;
    }
    if (pa >= CONSOLE_BASE && pa < CONSOLE_BASE + 8) {
        *val = pa == CONSOLE_BASE + 5 ? 0x60 : 0; /* 8250 LSR: transmitter empty */
        return true;
    }
    if (pa >= IRQ_BASE && pa < IRQ_BASE + 8) {
        uint64_t mip = __atomic_load_n(&b->hart.mip, __ATOMIC_ACQUIRE);
        *val = ((mip & RV_MIP_MEIP) ? 1 : 0) | ((mip & RV_MIP_SEIP) ? 2 : 0);
        return true;
    }
    return false;
}

static bool bare_write(void *opaque, uint64_t pa, uint64_t val, unsigned len)
{
    struct bare *b = opaque;
    if (pa >= CLINT_BASE && pa < CLINT_BASE + 0x10000) {
        uint64_t off = pa - CLINT_BASE;
        if (off < 4) {
            rv_hart_set_irq(&b->hart, RV_MIP_MSIP, val & 1);
        } else if (off >= 0x4000 && off < 0x4008) {
            unsigned sh = 8 * (unsigned)(off - 0x4000);
            uint64_t mask = (len == 8 ? ~0ull : ((1ull << (8 * len)) - 1)) << sh;
            b->mtimecmp = (b->mtimecmp & ~mask) | ((val << sh) & mask);
            rv_hart_set_irq(&b->hart, RV_MIP_MTIP, bare_time(b) >= b->mtimecmp);
        }
        return true;
    }
    if (pa >= CONSOLE_BASE && pa < CONSOLE_BASE + 8) {
        if (pa == CONSOLE_BASE) {
            putchar((int)(val & 0xff));
            fflush(stdout);
        }
        return true;
    }
    if (pa >= IRQ_BASE && pa < IRQ_BASE + 8) {
        rv_hart_set_irq(&b->hart, RV_MIP_MEIP, val & 1);
        rv_hart_set_irq(&b->hart, RV_MIP_SEIP, val & 2);
        return true;
    }
    return false;
}

static uint8_t *bare_place(void *ctx, uint64_t pa, uint64_t len)
{
    struct bare *b = ctx;
    if (pa < BARE_RAM_BASE || pa - BARE_RAM_BASE > BARE_RAM_SIZE ||
        len > BARE_RAM_SIZE - (pa - BARE_RAM_BASE))
        return NULL;
    return b->ram + (pa - BARE_RAM_BASE);
}

/* Load PT_LOAD segments into RAM and find the tohost/fromhost symbols. */
static int bare_load(struct bare *b, const char *path, uint64_t *entry, vs_err *err)
{
    cleanup_free uint8_t *data = NULL;
    size_t len;
    struct rv_elf e;
    if (rv_read_file(path, "test program", &data, &len, err) < 0 ||
        rv_elf_parse(&e, data, len, path, "riscv64", err) < 0)
        return -1;
    char space[64];
    snprintf(space, sizeof(space), "RAM (%#llx+%lluM)", BARE_RAM_BASE, BARE_RAM_SIZE >> 20);
    struct rv_elf_target t = {.place = bare_place, .ctx = b, .space = space};
    if (rv_elf_load(&e, &t, path, NULL, NULL, err) < 0)
        return -1;
    *entry = e.eh.e_entry;
    b->tohost = rv_elf_symbol(&e, "tohost");
    b->fromhost = rv_elf_symbol(&e, "fromhost");
    return 0;
}

static uint64_t *ram_word(struct bare *b, uint64_t addr)
{
    if (addr < BARE_RAM_BASE || addr - BARE_RAM_BASE > BARE_RAM_SIZE - 8 || (addr & 7))
        return NULL;
    return (uint64_t *)(b->ram + (addr - BARE_RAM_BASE));
}

int rv_bare_run(const char *path, uint64_t max_insns, int *status, vs_err *err)
{
    struct bare *b = calloc(1, sizeof(*b));
    if (!b)
        return vs_error(err, ENOMEM, "out of memory");
    int rc = -1;
    b->ram = mmap(NULL, BARE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->ram == MAP_FAILED) {
        free(b);
        return vs_error_errno(err, "allocating guest RAM");
    }
    b->mtimecmp = UINT64_MAX;
    b->time0 = 0;
    b->time0 = bare_time(b);
    struct rv_bus bus = {
        .ram = b->ram,
        .ram_base = BARE_RAM_BASE,
        .ram_size = BARE_RAM_SIZE,
        .mmio_read = bare_read,
        .mmio_write = bare_write,
        .get_time = bare_time,
        .opaque = b,
    };
    struct rv_hart *h = &b->hart;
    rv_hart_init(h, 0, &bus);
    uint64_t entry = 0;
    if (bare_load(b, path, &entry, err) < 0)
        goto out;
    uint64_t *tohost = ram_word(b, b->tohost);
    if (!tohost) {
        vs_error(err, EINVAL, "%s: no 'tohost' symbol in RAM: cannot tell pass from fail", path);
        goto out;
    }
    rv_hart_reset(h, entry);
    uint64_t used = 0;
    for (;;) {
        enum rv_stop why = rv_hart_run(h, 20000);
        used += 20000;
        rv_hart_set_irq(h, RV_MIP_MTIP, bare_time(b) >= b->mtimecmp);
        uint64_t v = __atomic_load_n(tohost, __ATOMIC_ACQUIRE);
        if (v) {
            if ((v >> 48) == 0x0101) { /* HTIF console putchar */
                putchar((int)(v & 0xff));
                fflush(stdout);
                __atomic_store_n(tohost, 0, __ATOMIC_RELEASE);
                uint64_t *fh = ram_word(b, b->fromhost);
                if (fh)
                    __atomic_store_n(fh, 1, __ATOMIC_RELEASE);
                continue;
            }
            if (v == 1) {
                *status = 0;
            } else {
                fprintf(stderr,
                        "vessel emu: bare-metal test FAILED with code %llu (tohost %#llx)\n",
                        (unsigned long long)(v >> 1), (unsigned long long)v);
                *status = 1;
            }
            break;
        }
        if (why == RV_STOP_FATAL) {
            char desc[2048];
            rv_hart_describe(h, desc, sizeof(desc));
            fprintf(stderr, "vessel emu: hart stopped: %s", desc);
            *status = 3;
            break;
        }
        if (why == RV_STOP_WFI) {
            /* sleep until an enabled interrupt is pending; the timer is
             * passive here, so wake at its deadline (re-sleeping if the
             * condition variable's clock woke us a little early) */
            for (int k = 0; k < 100; k++) {
                rv_hart_set_irq(h, RV_MIP_MTIP, bare_time(b) >= b->mtimecmp);
                if (rv_hart_irq_pending(h))
                    break;
                uint64_t now = bare_time(b), dl = b->mtimecmp;
                uint64_t sdl = rv_hart_timer_deadline(h);
                if (sdl < dl)
                    dl = sdl;
                if (dl == UINT64_MAX) {
                    rv_hart_wait(h, 100000000); /* nothing can wake it: let the budget end it */
                    break;
                }
                int64_t ns = dl <= now ? 0 : (int64_t)(dl - now) * 100;
                if (ns > 100000000)
                    ns = 100000000;
                rv_hart_wait(h, ns);
            }
        }
        if (max_insns && used >= max_insns) {
            fprintf(stderr, "vessel emu: bare-metal test did not finish within %llu instructions\n",
                    (unsigned long long)max_insns);
            *status = 2;
            break;
        }
    }
    rc = 0;
out:
    rv_hart_destroy(h);
    munmap(b->ram, BARE_RAM_SIZE);
    free(b);
    return rc;
}
