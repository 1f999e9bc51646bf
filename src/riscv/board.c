/* The riscv64 board: RAM, CLINT, PLIC, UART, test device and virtio-mmio
 * slots around the harts (one host thread each), the boot flows (firmware
 * in M-mode, or the built-in SBI with the kernel entered in S-mode), and the
 * machine's side of the control API and snapshots. */
#include "riscv/board.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hw/bus.h"
#include "hw/serial_console.h"
#include "hw/uart8250.h"
#include "mem/guest_mem.h"
#include "riscv/clint.h"
#include "riscv/fdt.h"
#include "riscv/hart.h"
#include "riscv/jit.h"
#include "riscv/loader.h"
#include "riscv/plic.h"
#include "riscv/sbi.h"
#include "riscv/trap.h"
#include "util/cleanup.h"
#include "util/event_loop.h"
#include "util/log.h"
#include "virtio/machine_glue.h"
#include "vm/machine.h"
#include "vm/pause.h"
#include "util/thread_role.h"

#define MIB (1024ull * 1024ull)
#define KERNEL_OFFSET 0x200000ull       /* the kernel (or U-Boot) after 2 MiB of firmware */
#define FW_JUMP_FDT_OFFSET 0x2200000ull /* where fw_jump copies the device tree */
#define SLICE_INSNS 20000               /* instructions between timer and request checks */
#define DEFAULT_APPEND "console=ttyS0"
#define WFI_MAX_SLEEP_NS 1000000000ll /* a safety net: interrupts wake the hart */

enum hart_state { HART_STARTED, HART_STOPPED, HART_START_PENDING, HART_STOP_PENDING };

enum exit_reason {
    EXIT_NONE,
    EXIT_POWEROFF,
    EXIT_REBOOT,
    EXIT_FAIL,
    EXIT_FATAL,
    EXIT_SIGNAL, /* a host signal the runner handed over: 128 + signo */
};

enum boot_mode {
    BOOT_FIRMWARE,  /* --bios: every hart enters the firmware in M-mode */
    BOOT_SBI,       /* --kernel alone: hart 0 in S-mode, the built-in SBI */
    BOOT_BAREMETAL, /* --kernel ELF without --bios: M-mode at its entry */
};

struct hart_ctl {
    struct rv_board *board;
    unsigned id;
    pthread_t thread;
    bool thread_started;
    enum hart_state state; /* HSM state, under board->lock */
    uint64_t start_addr, start_arg;
    bool parked; /* waiting in the board (stopped or paused) */
    /* VESSEL_RISCV_STATS: instructions retired and thread CPU time, summed
     * over the runs of this hart (reboots) */
    uint64_t insns, cpu_ns;
};

struct rv_board {
    const struct vm_config *cfg;
    unsigned nharts;
    unsigned allowed_harts; /* HSM starts only harts below this (hot-plug), under lock */
    struct guest_mem mem;
    struct rv_ram ram;
    struct rv_hart *harts;
    struct rv_hart **hart_ptrs;
    struct hart_ctl *ctl;
    struct io_bus bus;
    struct clint clint;
    struct plic plic;
    struct uart8250 uart;
    struct serial_console *console; /* the runner's */
    struct vs_event_loop loop;
    bool loop_started;
    struct virtio_set *virtio;
    unsigned nvirtio;
    struct rv_sbi sbi;
    enum boot_mode mode;
    bool booted_once; /* RAM was written by a previous boot */
    bool booted_once_warned;
    bool overcommitted;    /* more harts than host CPUs */
    bool restored;         /* state loaded from a snapshot: no boot */
    unsigned throttle_pct; /* atomic: the share of time each hart sleeps (migration) */
    struct vm_control vmctl;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum exit_reason exit; /* first reason wins */
    int exit_code;
    struct vm_pause pause; /* vm/pause.h, under lock */
    char fatal[sizeof(((vs_err *)0)->msg)];
};

static const struct vm_pause_hooks pause_hooks;

/* ---- machine-wide stop ------------------------------------------------- */

static void kick_all(struct rv_board *b)
{
    for (unsigned i = 0; i < b->nharts; i++)
        rv_hart_request_stop(&b->harts[i]);
    pthread_cond_broadcast(&b->cond);
}

/* Called from any thread: end the current run of the machine. */
static void machine_exit(struct rv_board *b, enum exit_reason why, int code)
{
    pthread_mutex_lock(&b->lock);
    if (b->exit == EXIT_NONE) {
        b->exit = why;
        b->exit_code = code;
    }
    kick_all(b);
    pthread_mutex_unlock(&b->lock);
}

/* ---- devices ----------------------------------------------------------- */

static uint64_t test_read(void *opaque, uint64_t offset, unsigned len)
{
    return 0;
}

/* SiFive test device: the low 16 bits say what, the high 16 an exit code. */
static void test_write(void *opaque, uint64_t offset, uint64_t value, unsigned len)
{
    struct rv_board *b = opaque;
    if (offset != 0)
        return;
    uint32_t v = (uint32_t)value;
    switch (v & 0xffff) {
    case RV_TEST_PASS:
        machine_exit(b, EXIT_POWEROFF, 0);
        break;
    case RV_TEST_FAIL:
        machine_exit(b, EXIT_FAIL, (v >> 16) ? (int)(v >> 16) : 1);
        break;
    case RV_TEST_RESET:
        machine_exit(b, EXIT_REBOOT, 0);
        break;
    }
}

static bool bus_read(void *opaque, uint64_t pa, unsigned len, uint64_t *val)
{
    struct rv_board *b = opaque;
    return io_bus_read(&b->bus, pa, len, val);
}

static bool bus_write(void *opaque, uint64_t pa, uint64_t val, unsigned len)
{
    struct rv_board *b = opaque;
    return io_bus_write(&b->bus, pa, val, len);
}

static uint64_t bus_time(void *opaque)
{
    struct rv_board *b = opaque;
    return clint_mtime(&b->clint);
}

static void bus_dirty(void *opaque, uint64_t pa, unsigned len)
{
    struct rv_board *b = opaque;
    guest_mem_mark_dirty(&b->mem, pa, len);
}

static bool bus_ecall(void *opaque, struct rv_hart *h)
{
    struct rv_board *b = opaque;
    if (b->mode != BOOT_SBI || h->priv != RV_PRIV_S)
        return false;
    return rv_sbi_handle(&b->sbi, h);
}

/* ---- built-in SBI ------------------------------------------------------ */

static void sbi_putchar(void *opaque, uint8_t c)
{
    struct rv_board *b = opaque;
    serial_console_write(b->console, &c, 1);
}

/* Console input is shared with the UART: take it from its receive FIFO. */
static int sbi_getchar(void *opaque)
{
    struct rv_board *b = opaque;
    if (!(uart8250_read(&b->uart, UART_LSR) & 1))
        return -1;
    return uart8250_read(&b->uart, UART_RBR);
}

static void sbi_set_timer(void *opaque, unsigned hart, uint64_t value)
{
    struct rv_board *b = opaque;
    clint_set_timecmp(&b->clint, hart, value);
}

static void sbi_send_ipi(void *opaque, unsigned hart)
{
    struct rv_board *b = opaque;
    rv_hart_set_irq(&b->harts[hart], RV_MIP_SSIP, true);
}

static void sbi_remote_sfence(void *opaque, unsigned hart)
{
    struct rv_board *b = opaque;
    rv_hart_flush_tlb(&b->harts[hart]);
}

static void sbi_remote_fence_i(void *opaque, unsigned hart)
{
    struct rv_board *b = opaque;
    rv_hart_code_changed(&b->harts[hart]);
}

static long sbi_hart_start(void *opaque, unsigned hart, uint64_t addr, uint64_t arg)
{
    struct rv_board *b = opaque;
    long ret = SBI_SUCCESS;
    pthread_mutex_lock(&b->lock);
    if (b->ctl[hart].state != HART_STOPPED) {
        ret = SBI_ERR_ALREADY_AVAILABLE;
    } else if (hart >= b->allowed_harts) {
        ret = SBI_ERR_DENIED; /* present, not plugged: 'vm update --cpus' */
    } else {
        b->ctl[hart].start_addr = addr;
        b->ctl[hart].start_arg = arg;
        b->ctl[hart].state = HART_START_PENDING;
        pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    return ret;
}

static long sbi_hart_stop(void *opaque, unsigned hart)
{
    struct rv_board *b = opaque;
    pthread_mutex_lock(&b->lock);
    b->ctl[hart].state = HART_STOP_PENDING;
    pthread_mutex_unlock(&b->lock);
    rv_hart_request_stop(&b->harts[hart]);
    return SBI_SUCCESS;
}

static long sbi_hart_status(void *opaque, unsigned hart)
{
    struct rv_board *b = opaque;
    pthread_mutex_lock(&b->lock);
    enum hart_state s = b->ctl[hart].state;
    pthread_mutex_unlock(&b->lock);
    switch (s) {
    case HART_STARTED:
        return SBI_HSM_STARTED;
    case HART_STOPPED:
        return SBI_HSM_STOPPED;
    case HART_START_PENDING:
        return SBI_HSM_START_PENDING;
    default:
        return SBI_HSM_STOP_PENDING;
    }
}

static void sbi_system_reset(void *opaque, uint32_t type, uint32_t reason)
{
    struct rv_board *b = opaque;
    if (type == SBI_RESET_SHUTDOWN)
        machine_exit(b, reason == 1 ? EXIT_FAIL : EXIT_POWEROFF, reason == 1 ? 1 : 0);
    else
        machine_exit(b, EXIT_REBOOT, 0);
}

/* ---- harts ------------------------------------------------------------- */

/* Enter S-mode at pc as if firmware had handed over: every trap but ECALLs
 * from S/M delegated, S-level interrupts delegated, counters readable, no
 * PMP (nothing in M-mode to protect). */
static void enter_smode(struct rv_board *b, struct rv_hart *h, uint64_t pc, uint64_t a1)
{
    rv_hart_reset(h, pc);
    h->pmp_count = 0;
    h->medeleg = 0xffffull & ~((1ull << RV_EXC_ECALL_S) | (1ull << 10) | (1ull << RV_EXC_ECALL_M) |
                               (1ull << 14));
    h->mideleg = RV_MIP_SSIP | RV_MIP_STIP | RV_MIP_SEIP;
    h->mcounteren = 7;
    h->scounteren = 7; /* as OpenSBI leaves it: U-mode may read cycle, time, instret */
    h->x[10] = h->hartid;
    h->x[11] = a1;
    rv_set_priv(h, RV_PRIV_S);
}

static void report_fatal(struct rv_board *b, struct rv_hart *h)
{
    char desc[2048];
    rv_hart_describe(h, desc, sizeof(desc));
    /* the whole register dump goes to stderr; the error line summarises */
    fprintf(stderr, "vessel: riscv64 hart %u state:\n%s%s", h->hartid, desc,
            desc[0] && desc[strlen(desc) - 1] == '\n' ? "" : "\n");
    char *nl = strchr(desc, '\n');
    if (nl)
        *nl = 0;
    pthread_mutex_lock(&b->lock);
    if (!b->fatal[0])
        snprintf(b->fatal, sizeof(b->fatal), "riscv64 hart %u stopped: %.400s", h->hartid, desc);
    pthread_mutex_unlock(&b->lock);
    machine_exit(b, EXIT_FATAL, 0);
}

/* Called with b->lock held: wait while the hart is stopped (HSM) or the
 * machine is paused. Returns false when the machine is exiting. */
static bool hart_park(struct rv_board *b, struct hart_ctl *c)
{
    struct rv_hart *h = &b->harts[c->id];
    for (;;) {
        if (b->exit != EXIT_NONE)
            return false;
        if (c->state == HART_STOP_PENDING)
            c->state = HART_STOPPED;
        if (!b->pause.requested && c->state == HART_START_PENDING) {
            enter_smode(b, h, c->start_addr, c->start_arg);
            c->state = HART_STARTED;
        }
        if (!b->pause.requested && c->state == HART_STARTED) {
            c->parked = false;
            return true;
        }
        c->parked = true;
        pthread_cond_broadcast(&b->cond); /* a pause() may wait for this */
        pthread_cond_wait(&b->cond, &b->lock);
    }
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Auto-converge (a migration slowing a guest that dirties memory faster
 * than the link): after each slice the hart owes pct/(100-pct) of the time
 * it ran and sleeps it off in steps of at most 2 ms, so a pause or a stop
 * still reaches it quickly. Returns whether it slept. */
static bool hart_throttle(struct rv_board *b, int64_t *slice_start, int64_t *debt_ns)
{
    unsigned pct = __atomic_load_n(&b->throttle_pct, __ATOMIC_ACQUIRE);
    int64_t now = mono_ns();
    if (!pct || !*slice_start) {
        *slice_start = now;
        *debt_ns = 0;
        return false;
    }
    *debt_ns += (now - *slice_start) * pct / (100 - pct);
    bool slept = false;
    while (*debt_ns >= 1000000 && !vm_pause_requested(&b->pause) &&
           __atomic_load_n(&b->exit, __ATOMIC_ACQUIRE) == EXIT_NONE) {
        int64_t step = *debt_ns < 2000000 ? *debt_ns : 2000000;
        struct timespec ts = {0, step};
        nanosleep(&ts, NULL);
        *debt_ns -= step;
        slept = true;
    }
    *slice_start = mono_ns();
    return slept;
}

static void *hart_thread(void *arg)
{
    struct hart_ctl *c = arg;
    struct rv_board *b = c->board;
    struct rv_hart *h = &b->harts[c->id];
    char name[16];
    snprintf(name, sizeof(name), "rv-hart%u", c->id);
    pthread_setname_np(pthread_self(), name);
    vs_thread_role_enter(VS_THREAD_VCPU, name);

    pthread_mutex_lock(&b->lock);
    bool run = hart_park(b, c);
    pthread_mutex_unlock(&b->lock);
    int64_t slice_start = 0, debt_ns = 0;
    while (run) {
        clint_update_timer(&b->clint, c->id);
        enum rv_stop r = rv_hart_run(h, SLICE_INSNS);
        if (r == RV_STOP_WFI) {
            /* Sleep until the next timer deadline. One that has passed is
             * already a pending (masked) level and must not bound the sleep:
             * OpenSBI leaves mtimecmp in the past with MTIE off. */
            clint_update_timer(&b->clint, c->id);
            int64_t ns = WFI_MAX_SLEEP_NS;
            int64_t t = clint_ns_until(&b->clint, clint_deadline(&b->clint, c->id));
            if (t > 0 && t < ns)
                ns = t;
            uint64_t sstc = rv_hart_timer_deadline(h);
            t = sstc == UINT64_MAX ? 0 : clint_ns_until(&b->clint, sstc);
            if (t > 0 && t < ns)
                ns = t;
            rv_hart_wait(h, ns);
        } else if (r == RV_STOP_FATAL) {
            report_fatal(b, h);
        } else if (r == RV_STOP_BUDGET && hart_throttle(b, &slice_start, &debt_ns)) {
            /* slept off its share */
        } else if (r == RV_STOP_BUDGET && b->overcommitted) {
            /* More harts than host CPUs: a hart spinning on a lock must not
             * hold a CPU for a whole scheduler slice while the hart it
             * waits for is runnable (SMP bring-up timed out otherwise). */
            sched_yield();
        }
        if (r == RV_STOP_REQUEST || r == RV_STOP_FATAL) {
            pthread_mutex_lock(&b->lock);
            run = hart_park(b, c);
            pthread_mutex_unlock(&b->lock);
        }
    }
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    pthread_mutex_lock(&b->lock);
    c->insns += h->minstret;
    c->cpu_ns += (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec;
    c->parked = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* With VESSEL_RISCV_STATS set: one line per hart and a total on stderr, for
 * benchmarks (minstret is what the guest sees, so a guest that writes it
 * skews the count). */
static void print_stats(struct rv_board *b)
{
    const char *e = getenv("VESSEL_RISCV_STATS");
    if (!e || !*e || !strcmp(e, "0"))
        return;
    uint64_t insns = 0, ns = 0;
    for (unsigned i = 0; i < b->nharts; i++) {
        struct hart_ctl *c = &b->ctl[i];
        fprintf(stderr,
                "vessel: riscv64 stats: hart %u: %llu instructions in %.3f s CPU (%.0f MIPS)\n", i,
                (unsigned long long)c->insns, c->cpu_ns / 1e9,
                c->cpu_ns ? c->insns * 1e3 / c->cpu_ns : 0.0);
        insns += c->insns;
        ns += c->cpu_ns;
    }
    fprintf(stderr, "vessel: riscv64 stats: total: %llu instructions in %.3f s CPU (%.0f MIPS)\n",
            (unsigned long long)insns, ns / 1e9, ns ? insns * 1e3 / ns : 0.0);
}

/* ---- boot -------------------------------------------------------------- */

static uint64_t align_down(uint64_t v, uint64_t a)
{
    return v & ~(a - 1);
}

static bool overlaps(uint64_t a_lo, uint64_t a_hi, uint64_t b_lo, uint64_t b_hi)
{
    return a_lo < b_hi && b_lo < a_hi;
}

static void fill_fdt_config(struct rv_board *b, struct rv_fdt_config *fc, const char *append)
{
    memset(fc, 0, sizeof(*fc));
    fc->nharts = b->nharts;
    fc->ram_base = b->ram.base;
    fc->ram_size = b->ram.size;
    fc->isa = RV_BOARD_ISA;
    fc->mmu_type = RV_BOARD_MMU;
    fc->bootargs = append;
    fc->nvirtio = b->nvirtio;
    fc->virtio_size = RV_VIRTIO_STRIDE;
    for (unsigned i = 0; i < b->nvirtio && i < RV_FDT_MAX_VIRTIO; i++) {
        fc->virtio_base[i] = RV_VIRTIO_BASE + i * RV_VIRTIO_STRIDE;
        fc->virtio_irq[i] = RV_VIRTIO_IRQ_FIRST + i;
    }
}

/* A reboot starts from zeroed RAM, as after power-on. Dropping the pages of
 * the memfd is far cheaper than writing zeros over all of them (and keeps
 * untouched RAM unallocated). */
static void clear_ram(struct rv_board *b)
{
    if (madvise(b->ram.host, b->ram.size, MADV_REMOVE) < 0)
        memset(b->ram.host, 0, b->ram.size);
}

/* Put firmware, kernel, initrd and device tree in RAM and set every hart's
 * entry state. Runs at start and on every guest reboot. */
static int board_boot(struct rv_board *b, vs_err *err)
{
    const struct vm_config *cfg = b->cfg;
    struct rv_image bios = {0}, kernel = {0};
    uint64_t ram_end = b->ram.base + b->ram.size;
    uint64_t kernel_addr = b->ram.base + KERNEL_OFFSET;

    if (b->booted_once)
        clear_ram(b);
    b->booted_once = true;
    if (cfg->bios) {
        if (rv_load_image(&b->ram, cfg->bios, "bios", b->ram.base, &bios, err) < 0)
            return -1;
        b->mode = BOOT_FIRMWARE;
        /* fw_jump copies the device tree to a fixed address and hangs
         * silently if that is not RAM; fw_dynamic has no such limit */
        if (b->ram.size < FW_JUMP_FDT_OFFSET + 2 * MIB && !b->booted_once_warned) {
            vs_warn("RAM ends below 0x%llx, where OpenSBI's fw_jump copies the device tree: "
                    "fw_jump needs --memory %lluM or more (fw_dynamic does not)",
                    (unsigned long long)(b->ram.base + FW_JUMP_FDT_OFFSET + 2 * MIB),
                    (unsigned long long)((FW_JUMP_FDT_OFFSET + 2 * MIB) / MIB));
            b->booted_once_warned = true;
        }
    }
    if (cfg->kernel) {
        if (rv_load_image(&b->ram, cfg->kernel, "kernel", kernel_addr, &kernel, err) < 0)
            return -1;
        if (cfg->bios && overlaps(bios.low, bios.high, kernel.low, kernel.high))
            return vs_error(
                err, EINVAL, "bios %s (0x%llx-0x%llx) and kernel %s (0x%llx-0x%llx) overlap",
                cfg->bios, (unsigned long long)bios.low, (unsigned long long)bios.high, cfg->kernel,
                (unsigned long long)kernel.low, (unsigned long long)kernel.high);
        /* loading the kernel must not have clobbered the firmware */
        if (cfg->bios && rv_load_image(&b->ram, cfg->bios, "bios", b->ram.base, &bios, err) < 0)
            return -1;
        if (!cfg->bios)
            b->mode = kernel.elf ? BOOT_BAREMETAL : BOOT_SBI;
    }
    uint64_t payload_high = cfg->kernel ? kernel.high : bios.high;

    /* the device tree goes at the top of RAM (below 3 GiB, like QEMU) */
    const char *append = cfg->append ? cfg->append : DEFAULT_APPEND;
    cleanup_free char *append_cpus = NULL;
    if (b->allowed_harts < b->nharts) {
        /* harts beyond --cpus are present but not started at boot */
        if (asprintf(&append_cpus, "%s maxcpus=%u", append, b->allowed_harts) < 0)
            return vs_error(err, ENOMEM, "out of memory");
        append = append_cpus;
    }
    struct rv_fdt_config fc;
    fill_fdt_config(b, &fc, append);
    cleanup_free uint8_t *initrd = NULL;
    size_t initrd_len = 0;
    if (cfg->initrd && rv_read_file(cfg->initrd, "initrd", &initrd, &initrd_len, err) < 0)
        return -1;
    if (initrd) {
        fc.initrd_start = b->ram.base; /* placeholder values: same blob size */
        fc.initrd_end = b->ram.base + 1;
    }
    void *blob;
    size_t fdt_len;
    if (rv_fdt_build(&fc, &blob, &fdt_len, err) < 0)
        return -1;
    free(blob);
    uint64_t top = ram_end;
    if (b->ram.base < 0xc0000000ull && top > 0xc0000000ull)
        top = 0xc0000000ull;
    size_t extra = sizeof(struct rv_fw_dynamic_info) + 64;
    if (fdt_len + extra > top - payload_high)
        return vs_error(err, EFBIG, "no room in RAM for the device tree after the kernel");
    uint64_t fdt_addr = align_down(top - fdt_len - extra, 2 * MIB);
    if (fdt_addr < payload_high)
        fdt_addr = align_down(top - fdt_len - extra, 8);
    uint64_t info_addr = ALIGN_UP(fdt_addr + fdt_len, 8);

    if (initrd) {
        /* far enough above the kernel that it can unpack and grow (QEMU's
         * rule), else right after it; never over the device tree or where
         * fw_jump moves it */
        uint64_t half = b->ram.size / 2 < 128 * MIB ? b->ram.size / 2 : 128 * MIB;
        uint64_t start = ALIGN_UP(kernel_addr + half, 2 * MIB);
        uint64_t fwfdt_lo = b->ram.base + FW_JUMP_FDT_OFFSET, fwfdt_hi = fwfdt_lo + 2 * MIB;
        uint64_t cands[3] = {start, ALIGN_UP(payload_high, 2 * MIB), ALIGN_UP(fwfdt_hi, 2 * MIB)};
        uint64_t addr = 0;
        for (unsigned i = 0; i < 3 && !addr; i++) {
            uint64_t s = cands[i] < payload_high ? ALIGN_UP(payload_high, 2 * MIB) : cands[i];
            if (s > fdt_addr || initrd_len > fdt_addr - s)
                continue;
            if (cfg->bios && overlaps(s, s + initrd_len, fwfdt_lo, fwfdt_hi))
                continue;
            addr = s;
        }
        if (!addr)
            return vs_error(err, EFBIG,
                            "initrd %s (%.1f MiB) does not fit in RAM (%llu MiB) after the "
                            "kernel; give more --memory",
                            cfg->initrd, initrd_len / (double)MIB,
                            (unsigned long long)(b->ram.size / MIB));
        if (rv_load_blob(&b->ram, addr, initrd, initrd_len, "initrd", err) < 0)
            return -1;
        fc.initrd_start = addr;
        fc.initrd_end = addr + initrd_len;
    }
    if (rv_fdt_build(&fc, &blob, &fdt_len, err) < 0)
        return -1;
    int r = rv_load_blob(&b->ram, fdt_addr, blob, fdt_len, "device tree", err);
    free(blob);
    if (r < 0)
        return -1;
    struct rv_fw_dynamic_info info = {
        .magic = RV_FW_DYNAMIC_MAGIC,
        .version = RV_FW_DYNAMIC_VERSION,
        .next_addr = cfg->kernel ? kernel.entry : 0,
        .next_mode = 1, /* S-mode */
        .options = 0,
        .boot_hart = UINT64_MAX, /* any hart may boot (lottery) */
    };
    if (rv_load_blob(&b->ram, info_addr, &info, sizeof(info), "firmware info", err) < 0)
        return -1;

    /* device state back to power-on */
    clint_init(&b->clint, b->hart_ptrs, b->nharts, b->mode == BOOT_SBI ? RV_MIP_STIP : RV_MIP_MTIP);
    uart8250_reset(&b->uart);
    plic_reset(&b->plic);

    for (unsigned i = 0; i < b->nharts; i++) {
        struct rv_hart *h = &b->harts[i];
        struct hart_ctl *c = &b->ctl[i];
        c->state = HART_STARTED;
        switch (b->mode) {
        case BOOT_FIRMWARE:
            rv_hart_reset(h, bios.entry);
            h->x[11] = fdt_addr;
            h->x[12] = info_addr;
            break;
        case BOOT_BAREMETAL:
            rv_hart_reset(h, kernel.entry);
            h->x[11] = fdt_addr;
            break;
        case BOOT_SBI:
            if (i == 0)
                enter_smode(b, h, kernel.entry, fdt_addr);
            else
                c->state = HART_STOPPED; /* until HSM hart_start */
            break;
        }
    }
    vs_debug("riscv64: %s boot, fdt at 0x%llx (%zu bytes), initrd 0x%llx-0x%llx",
             b->mode == BOOT_FIRMWARE ? "firmware"
             : b->mode == BOOT_SBI    ? "sbi"
                                      : "bare-metal",
             (unsigned long long)fdt_addr, fdt_len, (unsigned long long)fc.initrd_start,
             (unsigned long long)fc.initrd_end);
    return 0;
}

/* ---- control API ------------------------------------------------------- */

/* The shared pause protocol (vm/pause.h): a hart parks in hart_park. */
static void pause_kick(void *machine)
{
    kick_all(machine);
}

static bool pause_all_parked(void *machine)
{
    struct rv_board *b = machine;
    for (unsigned i = 0; i < b->nharts; i++)
        if (!b->ctl[i].parked && b->ctl[i].thread_started)
            return false;
    return true;
}

static bool pause_stopping(void *machine)
{
    return ((struct rv_board *)machine)->exit != EXIT_NONE;
}

static const struct vm_pause_hooks pause_hooks = {
    .kick = pause_kick, .all_parked = pause_all_parked, .stopping = pause_stopping};

static int ctl_pause(void *machine, vs_err *err)
{
    return vm_pause(&((struct rv_board *)machine)->pause, err);
}

static int ctl_resume(void *machine, vs_err *err)
{
    return vm_resume(&((struct rv_board *)machine)->pause, err);
}

static bool ctl_is_paused(void *machine)
{
    return vm_is_paused(&((struct rv_board *)machine)->pause);
}

static int ctl_set_vcpus(void *machine, unsigned n, vs_err *err)
{
    struct rv_board *b = machine;
    if (n < 1 || n > b->nharts)
        return vs_error(err, EINVAL, "cpus: %u is not in 1..%u (--max-cpus)", n, b->nharts);
    pthread_mutex_lock(&b->lock);
    b->allowed_harts = n;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void ctl_vcpu_counts(void *machine, unsigned *present, unsigned *allowed, unsigned *running)
{
    struct rv_board *b = machine;
    pthread_mutex_lock(&b->lock);
    *present = b->nharts;
    *allowed = b->allowed_harts;
    *running = 0;
    for (unsigned i = 0; i < b->nharts; i++)
        *running += b->ctl[i].state == HART_STARTED || b->ctl[i].state == HART_START_PENDING;
    pthread_mutex_unlock(&b->lock);
}

/* Section "riscv-board-cpus" version 1: u32 allowed_harts (absent in older
 * snapshots: --cpus). */
static void cpus_save(struct rv_board *b, struct state_writer *w)
{
    state_begin(w, "riscv-board-cpus", 0, 1);
    state_put_u32(w, b->allowed_harts);
    state_end(w);
}

static int cpus_load(struct rv_board *b, struct state_reader *r, vs_err *err)
{
    uint32_t version, n;
    vs_err absent;
    if (state_find(r, "riscv-board-cpus", 0, &version, &absent) < 0)
        return 0;
    if (version != 1 || state_get_u32(r, &n, err) < 0 || n < 1 || n > b->nharts)
        return vs_error(err, EINVAL, "riscv-board-cpus: bad state");
    b->allowed_harts = n;
    return 0;
}

/* Section "riscv-board": machine-level state the devices do not hold. */
static void board_save(struct rv_board *b, struct state_writer *w)
{
    state_begin(w, "riscv-board", 0, 1);
    state_put_u32(w, b->nharts);
    state_put_u32(w, b->mode);
    for (unsigned i = 0; i < b->nharts; i++) {
        state_put_u32(w, b->ctl[i].state);
        state_put_u64(w, b->ctl[i].start_addr);
        state_put_u64(w, b->ctl[i].start_arg);
    }
    state_end(w);
}

static int board_load(struct rv_board *b, struct state_reader *r, vs_err *err)
{
    uint32_t version, n, mode;
    if (state_find(r, "riscv-board", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "riscv-board: unsupported state version %u", version);
    if (state_get_u32(r, &n, err) < 0 || state_get_u32(r, &mode, err) < 0)
        return -1;
    if (n != b->nharts)
        return vs_error(err, EINVAL, "riscv-board: state has %u harts, the machine %u", n,
                        b->nharts);
    if (mode > BOOT_BAREMETAL)
        return vs_error(err, EINVAL, "riscv-board: bad boot mode %u", mode);
    b->mode = mode;
    for (unsigned i = 0; i < n; i++) {
        uint32_t st;
        if (state_get_u32(r, &st, err) < 0 || state_get_u64(r, &b->ctl[i].start_addr, err) < 0 ||
            state_get_u64(r, &b->ctl[i].start_arg, err) < 0)
            return -1;
        if (st > HART_STOP_PENDING)
            return vs_error(err, EINVAL, "riscv-board: bad hart state %u", st);
        b->ctl[i].state = st;
    }
    return 0;
}

static int ctl_save_state(void *machine, struct state_writer *w, vs_err *err)
{
    struct rv_board *b = machine;
    if (!ctl_is_paused(b))
        return vs_error(err, EBUSY, "the machine must be paused to save its state");
    board_save(b, w);
    cpus_save(b, w);
    for (unsigned i = 0; i < b->nharts; i++) {
        if (rv_hart_save(&b->harts[i], w) < 0)
            return vs_error(err, EIO, "hart %u: saving state failed", i);
    }
    clint_save(&b->clint, w);
    plic_save(&b->plic, w);
    uart8250_save(&b->uart, w, 0);
    if (b->virtio && virtio_set_save(b->virtio, w, err) < 0)
        return -1;
    return state_writer_status(w, err);
}

static int board_load_state(struct rv_board *b, struct state_reader *r, vs_err *err)
{
    if (board_load(b, r, err) < 0 || cpus_load(b, r, err) < 0)
        return -1;
    for (unsigned i = 0; i < b->nharts; i++) {
        if (rv_hart_load(&b->harts[i], r, err) < 0)
            return -1;
    }
    clint_init(&b->clint, b->hart_ptrs, b->nharts, b->mode == BOOT_SBI ? RV_MIP_STIP : RV_MIP_MTIP);
    if (clint_load(&b->clint, r, err) < 0 || plic_load(&b->plic, r, err) < 0 ||
        uart8250_load(&b->uart, r, 0, err) < 0)
        return -1;
    if (b->virtio && virtio_set_load(b->virtio, r, err) < 0)
        return -1;
    return 0;
}

static int ctl_load_state(void *machine, struct state_reader *r, vs_err *err)
{
    struct rv_board *b = machine;
    if (board_load_state(b, r, err) < 0)
        return -1;
    b->restored = true;
    return 0;
}

static struct guest_mem *ctl_memory(void *machine)
{
    struct rv_board *b = machine;
    return &b->mem;
}

static int ctl_enable_dirty_log(void *machine, vs_err *err)
{
    struct rv_board *b = machine;
    if (guest_mem_dirty_enable(&b->mem, err) < 0)
        return -1;
    /* writable TLB entries were made before tracking: forget them */
    for (unsigned i = 0; i < b->nharts; i++)
        rv_hart_flush_tlb(&b->harts[i]);
    return 0;
}

static int ctl_fetch_dirty_log(void *machine, unsigned region, uint64_t *bitmap, vs_err *err)
{
    struct rv_board *b = machine;
    if (region >= guest_mem_nregions(&b->mem))
        return vs_error(err, EINVAL, "no memory region %u", region);
    guest_mem_dirty_fetch(&b->mem, region, bitmap);
    /* the hart reports a page when it maps it writable: re-arm */
    for (unsigned i = 0; i < b->nharts; i++)
        rv_hart_flush_tlb(&b->harts[i]);
    return 0;
}

static void ctl_throttle(void *machine, unsigned pct)
{
    struct rv_board *b = machine;
    __atomic_store_n(&b->throttle_pct, pct > 99 ? 99 : pct, __ATOMIC_RELEASE);
}

static struct virtio_set *ctl_devices(void *machine)
{
    return ((struct rv_board *)machine)->virtio;
}

static void ctl_request_stop(void *machine)
{
    machine_exit(machine, EXIT_POWEROFF, 0);
}

static size_t ctl_console_input(void *machine, const uint8_t *buf, size_t len)
{
    struct rv_board *b = machine;
    return uart8250_receive(&b->uart, buf, len);
}

static void ctl_host_signal(void *machine, int signo)
{
    /* SIGUSR1 (a dump of the vCPUs) has nothing to print here yet */
    if (signo != SIGUSR1)
        machine_exit(machine, EXIT_SIGNAL, signo);
}

static int ctl_cpu_features(void *machine, struct vs_buf *out, vs_err *err)
{
    /* an emulated hart does not depend on the host CPU */
    return 0;
}

/* ---- lifetime ---------------------------------------------------------- */

static void board_destroy(struct rv_board *b)
{
    if (b->harts) {
        for (unsigned i = 0; i < b->nharts; i++)
            rv_hart_destroy(&b->harts[i]);
    }
    if (b->virtio)
        virtio_set_destroy(b->virtio);
    if (b->loop_started)
        vs_event_loop_destroy(&b->loop);
    uart8250_destroy(&b->uart);
    plic_destroy(&b->plic);
    io_bus_destroy(&b->bus);
    guest_mem_destroy(&b->mem);
    free(b->harts);
    free(b->hart_ptrs);
    free(b->ctl);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b);
}

static int add_region(struct rv_board *b, const char *name, uint64_t base, uint64_t size,
                      io_read_fn rd, io_write_fn wr, void *opaque, vs_err *err)
{
    struct io_region r = {
        .name = name, .base = base, .size = size, .read = rd, .write = wr, .opaque = opaque};
    return io_bus_register(&b->bus, &r, err);
}

static int board_create(const struct vm_config *cfg, struct guest_mem *adopt,
                        struct serial_console *console, struct rv_board **out, vs_err *err)
{
    unsigned n = cfg->cpus ? cfg->cpus : 1;
    unsigned allowed = n;
    if (cfg->max_cpus > n)
        n = cfg->max_cpus;
    if (n > RV_CLINT_MAX_HARTS || n > RV_PLIC_MAX_CTX / 2)
        return vs_error(err, EINVAL, "riscv64 board: at most %d harts (asked for %u)",
                        RV_CLINT_MAX_HARTS, n);
    if (vm_config_validate(cfg, err) < 0)
        return vs_error_prefix(err, "riscv64 board: ");

    struct rv_board *b = calloc(1, sizeof(*b));
    if (!b)
        return vs_error(err, ENOMEM, "out of memory");
    b->cfg = cfg;
    b->nharts = n;
    b->allowed_harts = allowed;
    b->overcommitted = n > 1 && (long)n > sysconf(_SC_NPROCESSORS_ONLN);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->pause = (struct vm_pause){.lock = &b->lock,
                                 .cond = &b->cond,
                                 .hooks = &pause_hooks,
                                 .machine = b,
                                 .devices = &b->virtio};
    io_bus_init(&b->bus, "riscv64");
    guest_mem_init(&b->mem);
    plic_init(&b->plic, NULL, n);
    uart8250_init(&b->uart, NULL, 0, NULL, NULL, NULL);
    b->harts = calloc(n, sizeof(*b->harts));
    b->hart_ptrs = calloc(n, sizeof(*b->hart_ptrs));
    b->ctl = calloc(n, sizeof(*b->ctl));
    if (!b->harts || !b->hart_ptrs || !b->ctl) {
        board_destroy(b);
        return vs_error(err, ENOMEM, "out of memory");
    }

    if (adopt) {
        if (guest_mem_nregions(adopt) != 1 || guest_mem_region(adopt, 0)->gpa != RV_RAM_BASE) {
            board_destroy(b);
            return vs_error(err, EINVAL, "riscv64 snapshot: expected one RAM region at 0x%llx",
                            RV_RAM_BASE);
        }
        guest_mem_move(&b->mem, adopt);
    } else if ((cfg->mergeable ? guest_mem_add_mergeable : guest_mem_add_anon)(
                   &b->mem, RV_RAM_BASE, ALIGN_UP(cfg->memory, GUEST_PAGE_SIZE), err) < 0) {
        board_destroy(b);
        return -1;
    }
    /* the harts address RAM directly: one region, fixed for the board's
     * life */
    const struct guest_mem_region *ram = guest_mem_region(&b->mem, 0);
    b->ram.host = ram->hva;
    b->ram.base = ram->gpa;
    b->ram.size = ram->size;

    struct rv_bus bus = {
        .ram = b->ram.host,
        .ram_base = b->ram.base,
        .ram_size = b->ram.size,
        .mmio_read = bus_read,
        .mmio_write = bus_write,
        .get_time = bus_time,
        .ecall = bus_ecall,
        .dirty = bus_dirty,
        .opaque = b,
    };
    for (unsigned i = 0; i < n; i++) {
        rv_hart_init(&b->harts[i], i, &bus);
        bool jit =
            cfg->accel == VM_ACCEL_JIT || (cfg->accel == VM_ACCEL_DEFAULT && rv_jit_available());
        if (jit && rv_hart_set_accel(&b->harts[i], RV_ACCEL_JIT, err) < 0) {
            board_destroy(b); /* the harts not set up yet are zeroes: destroying them is fine */
            return -1;
        }
        b->hart_ptrs[i] = &b->harts[i];
        b->ctl[i].board = b;
        b->ctl[i].id = i;
    }
    clint_init(&b->clint, b->hart_ptrs, n, RV_MIP_MTIP);
    plic_destroy(&b->plic);
    plic_init(&b->plic, b->hart_ptrs, n);

    b->console = console;
    uart8250_destroy(&b->uart);
    struct irq_line uart_irq = plic_irq_line(&b->plic, RV_UART_IRQ);
    uart8250_init(&b->uart, &uart_irq, 0, serial_console_uart_tx, serial_console_uart_rx_ready,
                  b->console);

    struct rv_sbi_ops ops = {
        .putchar = sbi_putchar,
        .getchar = sbi_getchar,
        .set_timer = sbi_set_timer,
        .send_ipi = sbi_send_ipi,
        .remote_sfence = sbi_remote_sfence,
        .remote_fence_i = sbi_remote_fence_i,
        .hart_start = sbi_hart_start,
        .hart_stop = sbi_hart_stop,
        .hart_status = sbi_hart_status,
        .system_reset = sbi_system_reset,
        .opaque = b,
    };
    rv_sbi_init(&b->sbi, &ops, n);

    if (add_region(b, "sifive-test", RV_TEST_BASE, RV_TEST_SIZE, test_read, test_write, b, err) <
            0 ||
        add_region(b, "clint", RV_CLINT_BASE, RV_CLINT_SIZE, clint_io_read, clint_io_write,
                   &b->clint, err) < 0 ||
        add_region(b, "plic", RV_PLIC_BASE, RV_PLIC_SIZE, plic_io_read, plic_io_write, &b->plic,
                   err) < 0 ||
        add_region(b, "uart", RV_UART_BASE, RV_UART_SIZE, uart8250_io_read, uart8250_io_write,
                   &b->uart, err) < 0) {
        board_destroy(b);
        return -1;
    }

    if (vs_event_loop_init(&b->loop, err) < 0) {
        board_destroy(b);
        return -1;
    }
    b->loop_started = true;
    struct irq_line irqs[RV_VIRTIO_SLOTS];
    for (unsigned i = 0; i < RV_VIRTIO_SLOTS; i++)
        irqs[i] = plic_irq_line(&b->plic, RV_VIRTIO_IRQ_FIRST + i);
    if (virtio_setup_mmio(cfg, &b->mem, &b->bus, RV_VIRTIO_BASE, RV_VIRTIO_STRIDE, irqs,
                          RV_VIRTIO_SLOTS, &b->loop, &b->virtio, &b->nvirtio, err) < 0) {
        board_destroy(b);
        return -1;
    }
    if (vs_event_loop_start_thread(&b->loop, "rv-io", err) < 0) {
        board_destroy(b);
        return -1;
    }

    b->vmctl = (struct vm_control){
        .machine = b,
        .arch = VM_ARCH_RISCV64,
        .cfg = cfg,
        .pause = ctl_pause,
        .resume = ctl_resume,
        .is_paused = ctl_is_paused,
        .save_state = ctl_save_state,
        .memory = ctl_memory,
        .enable_dirty_log = ctl_enable_dirty_log,
        .fetch_dirty_log = ctl_fetch_dirty_log,
        .throttle = ctl_throttle,
        .devices = ctl_devices,
        .request_stop = ctl_request_stop,
        .cpu_features = ctl_cpu_features,
        .load_state = ctl_load_state,
        .console_input = ctl_console_input,
        .host_signal = ctl_host_signal,
        .set_vcpus = ctl_set_vcpus,
        .vcpu_counts = ctl_vcpu_counts,
    };
    *out = b;
    return 0;
}

/* Run harts until the machine exits; returns the exit reason. */
static enum exit_reason board_run_once(struct rv_board *b, vs_err *err)
{
    for (unsigned i = 0; i < b->nharts; i++) {
        struct hart_ctl *c = &b->ctl[i];
        c->parked = false;
        int e = pthread_create(&c->thread, NULL, hart_thread, c);
        if (e) {
            machine_exit(b, EXIT_FATAL, 0);
            snprintf(b->fatal, sizeof(b->fatal), "cannot start hart thread: %s", strerror(e));
            break;
        }
        c->thread_started = true;
    }
    pthread_mutex_lock(&b->lock);
    while (b->exit == EXIT_NONE)
        pthread_cond_wait(&b->cond, &b->lock);
    kick_all(b);
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < b->nharts; i++) {
        if (b->ctl[i].thread_started)
            pthread_join(b->ctl[i].thread, NULL);
        b->ctl[i].thread_started = false;
    }
    return b->exit;
}

static int board_main(struct rv_board *b, bool booted, vs_err *err)
{
    const struct vm_config *cfg = b->cfg;
    for (;;) {
        if (!booted && board_boot(b, err) < 0)
            return -1;
        booted = false;
        enum exit_reason why = board_run_once(b, err);
        switch (why) {
        case EXIT_REBOOT:
            if (cfg->no_reboot)
                return 0;
            vs_info("riscv64: guest rebooted");
            b->exit = EXIT_NONE;
            b->fatal[0] = 0;
            continue;
        case EXIT_FATAL:
            return vs_error(err, EFAULT, "%s", b->fatal[0] ? b->fatal : "riscv64 hart failed");
        case EXIT_FAIL:
            return b->exit_code;
        case EXIT_SIGNAL:
            return 128 + b->exit_code;
        default:
            return 0;
        }
    }
}

/* vm_machine_ops.create: adopt is a snapshot's memory (NULL for a boot,
 * which happens in run). */
static int riscv_create(const struct vm_config *cfg, struct guest_mem *adopt,
                        const struct vm_host *host, struct vm_control **out, vs_err *err)
{
    struct rv_board *b;
    if (board_create(cfg, adopt, host->console, &b, err) < 0) {
        if (adopt)
            guest_mem_destroy(adopt); /* ours from the call on, even on failure */
        return -1;
    }
    *out = &b->vmctl;
    return 0;
}

static int riscv_run(struct vm_control *ctl, vs_err *err)
{
    struct rv_board *b = ctl->machine;
    int r = board_main(b, b->restored, err);
    if (!b->restored)
        print_stats(b);
    return r;
}

static void riscv_destroy(struct vm_control *ctl)
{
    board_destroy(ctl->machine);
}

/* An emulated hart depends on nothing from the host CPU: no
 * check_cpu_features. */
const struct vm_machine_ops riscv_machine_ops = {
    .arch = VM_ARCH_RISCV64,
    .create = riscv_create,
    .run = riscv_run,
    .destroy = riscv_destroy,
};
