/* `vessel emu --bare ELF`: run a bare-metal M-mode test program (the ISA
 * test suite in tests/riscv-isa) on one hart with RAM at 0x80000000 and a
 * minimal test board: a CLINT-style timer (mtime at 10 MHz, mtimecmp, msip)
 * at 0x02000000, a console byte register at 0x10000000, and an interrupt
 * line register at 0x00100000 (bit 0 drives MEIP, bit 1 SEIP) so tests can
 * raise external interrupts. The program reports through the HTIF `tohost`
 * word: 1 = pass, (n << 1) | 1 = fail with code n; HTIF console writes
 * (device 1, command 1) are printed.
 *
 * `--accel diff` runs the program twice in lock-step, translated and
 * interpreted, each on its own copy of the board, comparing the harts after
 * every translated block and RAM every DIFF_MEM_EVERY blocks and at the
 * end; time comes from the instruction count so both copies see the same
 * timer interrupts at the same instruction. */
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

#include "riscv/diff.h"
#include "riscv/exec.h"
#include "riscv/hart.h"
#include "riscv/jit.h"
#include "riscv/loader.h"
#include "riscv/trap.h"
#include "riscv/user/emu.h"
#include "util/cleanup.h"

#define BARE_RAM_BASE 0x80000000ull
#define BARE_RAM_SIZE (64ull << 20)
#define CLINT_BASE 0x02000000ull
#define CONSOLE_BASE 0x10000000ull
#define IRQ_BASE 0x00100000ull

#define DIFF_MEM_EVERY 1024

struct bare {
    struct rv_hart hart;
    uint8_t *ram;
    uint64_t tohost, fromhost; /* guest addresses, 0 if absent */
    uint64_t mtimecmp;
    uint64_t time0;
    const uint64_t *vtime; /* lock-step: mtime from this counter instead of the clock */
    bool quiet;            /* lock-step's second copy: its console output is not printed */
};

static uint64_t bare_time(void *opaque)
{
    struct bare *b = opaque;
    if (b->vtime)
        return *b->vtime;
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
        if (pa == CONSOLE_BASE && !b->quiet) {
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

static void bare_close(struct bare *b)
{
    if (!b)
        return;
    rv_hart_destroy(&b->hart);
    munmap(b->ram, BARE_RAM_SIZE);
    free(b);
}

/* A board with the program loaded and the hart reset at its entry. */
static struct bare *bare_open(const char *path, enum rv_accel accel, const uint64_t *vtime,
                              vs_err *err)
{
    struct bare *b = calloc(1, sizeof(*b));
    if (!b) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    b->ram = mmap(NULL, BARE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->ram == MAP_FAILED) {
        free(b);
        vs_error_errno(err, "allocating guest RAM");
        return NULL;
    }
    b->mtimecmp = UINT64_MAX;
    b->vtime = vtime;
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
    if (rv_hart_set_accel(h, accel, err) < 0 || bare_load(b, path, &entry, err) < 0)
        goto fail;
    if (!ram_word(b, b->tohost)) {
        vs_error(err, EINVAL, "%s: no 'tohost' symbol in RAM: cannot tell pass from fail", path);
        goto fail;
    }
    rv_hart_reset(h, entry);
    return b;
fail:
    bare_close(b);
    return NULL;
}

/* HTIF: 0 nothing, 1 console byte handled, 2 the program finished (*status) */
static int bare_tohost(struct bare *b, int *status)
{
    uint64_t *tohost = ram_word(b, b->tohost);
    uint64_t v = __atomic_load_n(tohost, __ATOMIC_ACQUIRE);
    if (!v)
        return 0;
    if ((v >> 48) == 0x0101) { /* HTIF console putchar */
        if (!b->quiet) {
            putchar((int)(v & 0xff));
            fflush(stdout);
        }
        __atomic_store_n(tohost, 0, __ATOMIC_RELEASE);
        uint64_t *fh = ram_word(b, b->fromhost);
        if (fh)
            __atomic_store_n(fh, 1, __ATOMIC_RELEASE);
        return 1;
    }
    if (v == 1) {
        *status = 0;
    } else {
        if (!b->quiet)
            fprintf(stderr, "vessel emu: bare-metal test FAILED with code %llu (tohost %#llx)\n",
                    (unsigned long long)(v >> 1), (unsigned long long)v);
        *status = 1;
    }
    return 2;
}

int rv_bare_run(const char *path, uint64_t max_insns, enum rv_accel accel, int *status, vs_err *err)
{
    struct bare *b = bare_open(path, accel, NULL, err);
    if (!b)
        return -1;
    struct rv_hart *h = &b->hart;
    uint64_t used = 0;
    for (;;) {
        enum rv_stop why = rv_hart_run(h, 20000);
        used += 20000;
        rv_hart_set_irq(h, RV_MIP_MTIP, bare_time(b) >= b->mtimecmp);
        int t = bare_tohost(b, status);
        if (t == 1)
            continue;
        if (t == 2)
            break;
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
    bare_close(b);
    return 0;
}

static void diff_report(struct bare *bj, struct bare *bi, uint64_t step, uint64_t block_pc,
                        const char *what)
{
    char a[2048], b[2048];
    fflush(stdout);
    fprintf(stderr,
            "vessel emu: lock-step: translator and interpreter differ after block %llu "
            "(at pc %#llx): %s\n",
            (unsigned long long)step, (unsigned long long)block_pc, what);
    rv_hart_describe(&bj->hart, a, sizeof(a));
    rv_hart_describe(&bi->hart, b, sizeof(b));
    fprintf(stderr, "--- translator:\n%s--- interpreter:\n%s", a, b);
}

int rv_bare_diff(const char *path, uint64_t max_insns, int *status, vs_err *err)
{
    uint64_t vtime = 0, used = 0;
    struct bare *bj = bare_open(path, RV_ACCEL_JIT, &vtime, err);
    if (!bj)
        return -1;
    struct bare *bi = bare_open(path, RV_ACCEL_INTERP, &vtime, err);
    if (!bi) {
        bare_close(bj);
        return -1;
    }
    bi->quiet = true;
    struct rv_hart *hj = &bj->hart, *hi = &bi->hart;
    char why[1024];
    *status = 4; /* a difference, unless the loop says otherwise */
    for (uint64_t step = 1;; step++) {
        enum rv_stop sj, si;
        for (struct bare **p = (struct bare *[]){bj, bi, NULL}; *p; p++)
            rv_hart_set_irq(&(*p)->hart, RV_MIP_MTIP, vtime >= (*p)->mtimecmp);
        bool stop_j = rv_check_events(hj, &sj), stop_i = rv_check_events(hi, &si);
        uint64_t pc = hj->pc;
        uint64_t k = stop_j ? 0 : rv_jit_step(hj);
        uint64_t ki = stop_i ? 0 : rv_interp_batch(hi, k);
        used += k;
        vtime = used / 8; /* a 10 MHz timer on an 80 MHz hart */
        if (ki != k || stop_j != stop_i) {
            snprintf(why, sizeof(why), "the translator ran %llu instructions, the interpreter %llu",
                     (unsigned long long)k, (unsigned long long)ki);
            diff_report(bj, bi, step, pc, why);
            break;
        }
        if (rv_hart_differs(hj, hi, why, sizeof(why))) {
            diff_report(bj, bi, step, pc, why);
            break;
        }
        int tj = bare_tohost(bj, status), ti = bare_tohost(bi, status);
        bool end = tj == 2 || ti == 2 || hj->fatal;
        if (tj != ti) {
            diff_report(bj, bi, step, pc, "tohost differs");
            *status = 4;
            break;
        }
        if (end || step % DIFF_MEM_EVERY == 0) {
            if (memcmp(bj->ram, bi->ram, BARE_RAM_SIZE)) {
                size_t o = 0;
                while (bj->ram[o] == bi->ram[o])
                    o++;
                snprintf(why, sizeof(why), "RAM differs at %#llx: %#x != %#x",
                         (unsigned long long)(BARE_RAM_BASE + o), bj->ram[o], bi->ram[o]);
                diff_report(bj, bi, step, pc, why);
                *status = 4;
                break;
            }
        }
        if (hj->fatal) {
            char desc[2048];
            rv_hart_describe(hj, desc, sizeof(desc));
            fprintf(stderr, "vessel emu: hart stopped: %s", desc);
            *status = 3;
            break;
        }
        if (end)
            break;
        if (hj->wfi) {
            hj->wfi = hi->wfi = false;
            if (!rv_hart_irq_pending(hj)) {
                uint64_t dl = bj->mtimecmp, sdl = rv_hart_timer_deadline(hj);
                if (sdl < dl)
                    dl = sdl;
                if (dl == UINT64_MAX) {
                    fprintf(stderr, "vessel emu: lock-step: WFI with nothing to wake the hart\n");
                    *status = 2;
                    break;
                }
                if (dl > vtime) { /* skip to the deadline, on both copies */
                    vtime = dl;
                    used = dl * 8;
                }
            }
        }
        if (max_insns && used >= max_insns) {
            fprintf(stderr, "vessel emu: bare-metal test did not finish within %llu instructions\n",
                    (unsigned long long)max_insns);
            *status = 2;
            break;
        }
    }
    if (*status != 4 && getenv("VESSEL_EMU_STATS"))
        fprintf(stderr, "vessel emu: lock-step: %llu instructions agreed\n",
                (unsigned long long)used);
    bare_close(bj);
    bare_close(bi);
    return 0;
}
