/* One RISC-V hart: RV64IMAFDC + Zicsr + Zifencei + Zba/Zbb/Zbs, M/S/U
 * privilege, Sv39/Sv48 with hardware A/D updates and a per-hart TLB, PMP,
 * Sstc. The board (or the user-mode emulator) provides memory through
 * struct rv_bus and drives the hart with rv_hart_run(); everything else
 * (CLINT, PLIC, SBI) lives outside and talks to the hart through
 * rv_hart_set_irq() and the public CSR fields below.
 *
 * Threading: a hart is run by one thread at a time. rv_hart_set_irq(),
 * rv_hart_request_stop(), rv_hart_flush_tlb() (deferred) and rv_hart_wake()
 * may be called from any thread. LR/SC reservations work across harts
 * (SC is a compare-and-swap against the value LR observed) and AMOs are
 * __atomic operations on host memory. */
#ifndef VESSEL_RISCV_HART_H
#define VESSEL_RISCV_HART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "riscv/insn.h"
#include "state/state.h"
#include "util/err.h"

struct rv_hart;

struct rv_bus {
    uint8_t *ram; /* fast path: host memory backing [ram_base, ram_base + ram_size) */
    uint64_t ram_base, ram_size;
    /* Everything outside RAM. Return false for an access fault. len is 1, 2, 4 or 8. */
    bool (*mmio_read)(void *opaque, uint64_t pa, unsigned len, uint64_t *val);
    bool (*mmio_write)(void *opaque, uint64_t pa, uint64_t val, unsigned len);
    /* mtime ticks (timebase 10 MHz) for the time CSR and Sstc. */
    uint64_t (*get_time)(void *opaque);
    /* Optional: called for ECALL from S-mode (built-in SBI) or U-mode (user-mode
     * emulation) before trapping; return true if handled (the hart then
     * advances pc past the ECALL). */
    bool (*ecall)(void *opaque, struct rv_hart *h);
    /* Optional: RAM page written. Called when the hart maps a RAM page
     * writable in its TLB (page granularity), so after clearing a dirty
     * bitmap call rv_hart_flush_tlb() to get notified again. */
    void (*dirty)(void *opaque, uint64_t pa, unsigned len);
    void *opaque;
};

/* privilege levels */
#define RV_PRIV_U 0u
#define RV_PRIV_S 1u
#define RV_PRIV_M 3u

/* mip/mie bits */
#define RV_MIP_SSIP (1ull << 1)
#define RV_MIP_MSIP (1ull << 3)
#define RV_MIP_STIP (1ull << 5)
#define RV_MIP_MTIP (1ull << 7)
#define RV_MIP_SEIP (1ull << 9)
#define RV_MIP_MEIP (1ull << 11)

/* mstatus bits */
#define RV_MSTATUS_SIE (1ull << 1)
#define RV_MSTATUS_MIE (1ull << 3)
#define RV_MSTATUS_SPIE (1ull << 5)
#define RV_MSTATUS_UBE (1ull << 6)
#define RV_MSTATUS_MPIE (1ull << 7)
#define RV_MSTATUS_SPP (1ull << 8)
#define RV_MSTATUS_VS (3ull << 9)
#define RV_MSTATUS_MPP (3ull << 11)
#define RV_MSTATUS_FS (3ull << 13)
#define RV_MSTATUS_XS (3ull << 15)
#define RV_MSTATUS_MPRV (1ull << 17)
#define RV_MSTATUS_SUM (1ull << 18)
#define RV_MSTATUS_MXR (1ull << 19)
#define RV_MSTATUS_TVM (1ull << 20)
#define RV_MSTATUS_TW (1ull << 21)
#define RV_MSTATUS_TSR (1ull << 22)
#define RV_MSTATUS_UXL (3ull << 32)
#define RV_MSTATUS_SXL (3ull << 34)
#define RV_MSTATUS_SD (1ull << 63)

/* exception causes */
enum rv_exc {
    RV_EXC_INSN_MISALIGNED = 0,
    RV_EXC_INSN_ACCESS = 1,
    RV_EXC_ILLEGAL = 2,
    RV_EXC_BREAKPOINT = 3,
    RV_EXC_LOAD_MISALIGNED = 4,
    RV_EXC_LOAD_ACCESS = 5,
    RV_EXC_STORE_MISALIGNED = 6,
    RV_EXC_STORE_ACCESS = 7,
    RV_EXC_ECALL_U = 8,
    RV_EXC_ECALL_S = 9,
    RV_EXC_ECALL_M = 11,
    RV_EXC_INSN_PAGE = 12,
    RV_EXC_LOAD_PAGE = 13,
    RV_EXC_STORE_PAGE = 15,
};
#define RV_CAUSE_INTERRUPT (1ull << 63)

#define RV_TLB_SIZE 256
#define RV_NPMP 16

/* A TLB entry maps one 4 KiB virtual page to host memory (RAM only; MMIO
 * always takes the slow path). tag = vaddr >> 12, or UINT64_MAX if empty. */
struct rv_tlb_entry {
    uint64_t tag;
    uintptr_t addend; /* host = vaddr + addend */
};

/* The decoded-instruction cache (private; struct rv_dentry in insn.h). */
#define RV_DCACHE_SIZE 16384

enum rv_stop { RV_STOP_BUDGET, RV_STOP_WFI, RV_STOP_REQUEST, RV_STOP_FATAL };

struct rv_hart {
    /* architectural state */
    uint64_t x[32], pc;
    uint64_t f[32]; /* NaN-boxed single values live in the low 32 bits */
    uint32_t fflags, frm;
    unsigned priv; /* RV_PRIV_U, RV_PRIV_S or RV_PRIV_M */
    unsigned hartid;

    /* CSRs (public: the board and SBI read and write these directly) */
    uint64_t misa, mstatus, medeleg, mideleg, mie;
    uint64_t mip; /* atomic: use __atomic builtins or rv_hart_set_irq() */
    uint64_t mtvec, mscratch, mepc, mcause, mtval, mcounteren, mcountinhibit;
    uint64_t menvcfg, mseccfg;
    uint64_t stvec, sscratch, sepc, scause, stval, satp, scounteren, senvcfg;
    uint64_t stimecmp; /* Sstc: STIP = (time >= stimecmp) while menvcfg.STCE */
    uint64_t minstret; /* mcycle advances with it */
    uint8_t pmpcfg[RV_NPMP];
    uint64_t pmpaddr[RV_NPMP];
    /* Implemented PMP entries: RV_NPMP after reset, so (as on hardware) S and
     * U accesses fail until M-mode programs an entry; a board that starts a
     * hart directly in S-mode without firmware sets pmp_count = 0 (no PMP:
     * everything allowed) or programs entry 0 itself. */
    unsigned pmp_count;

    /* LR/SC reservation: address and the value LR loaded */
    uint64_t lr_addr, lr_value;
    bool lr_valid;

    /* set by rv_hart_run() on RV_STOP_FATAL; rv_hart_describe() prints it */
    char fatal_msg[160];

    /* ---- private below this line ---- */
    struct rv_bus bus;
    /* TLBs per translation set and access kind (load, store, fetch). Sets:
     * 0 U, 1 S (data with SUM = 0, and all S fetches), 2 M (bare), 3 S data
     * with SUM = 1, so Linux toggling SUM switches sets instead of flushing.
     * Fetch and data sets differ under MPRV. */
    struct rv_tlb_entry tlb[4][3][RV_TLB_SIZE];
    unsigned dset, iset; /* current data / fetch TLB set */
    struct rv_dentry dcache[RV_DCACHE_SIZE];
    int64_t cycle_offset; /* mcycle = minstret + cycle_offset */
    int stop_request;     /* atomic */
    int flush_request;    /* atomic: deferred TLB flush from another thread */
    int running;          /* atomic: inside rv_hart_run() on thread `thread` */
    pthread_t thread;
    bool irq_check; /* re-evaluate interrupts before the next instruction */
    bool wfi;       /* the last instruction was a WFI that should sleep */
    bool fatal;
    uint64_t exc_cause, exc_tval; /* exception raised by a memory helper */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
    unsigned wake_seq; /* under wait_lock: rv_hart_wake() calls */

    /* The translator (jit.c), NULL under the interpreter. Its generated
     * code reads and writes the fields below by offset. */
    struct rv_jit *jit;
    int64_t jit_budget;    /* instructions the current batch may still run */
    uint64_t jit_link;     /* the exit stub an unchained block exit came from, or 0 */
    uint64_t jit_jc_key;   /* xor'd into pcs in the indirect-jump cache (mode, epoch) */
    uint64_t jit_ram_bias; /* bus.ram - bus.ram_base: r11 in generated code */
    /* One byte per RAM page: set where translated code came from. Such
     * pages get no store TLB entries, so every store to them goes through
     * mmu.c, which sets code_written. */
    uint8_t *code_pages;
    bool code_written;
    uint64_t code_written_page; /* the RAM page (index) written, if only one */
    uint32_t code_gen;          /* bumped by rv_hart_code_changed(): blocks re-check their code */
    uint64_t tlb_gen; /* bumped by every TLB flush: translations of virtual pcs go stale */
};

/* The accelerator rv_hart_run() uses: the interpreter (the reference) or
 * the translator to x86-64 (x86-64 hosts only). */
enum rv_accel { RV_ACCEL_INTERP, RV_ACCEL_JIT };

/* Switch accelerators (before running, or between rv_hart_run() calls).
 * -1 + err if the translator is not available here. */
int rv_hart_set_accel(struct rv_hart *h, enum rv_accel accel, vs_err *err);
/* Code in guest memory may have changed behind the hart's back (a system
 * call's buffer, a new mapping, another hart's FENCE.I request): drop
 * translations before the hart runs on. Thread-safe. */
void rv_hart_code_changed(struct rv_hart *h);

/* Zero the hart, set misa and the bus. */
void rv_hart_init(struct rv_hart *h, unsigned hartid, const struct rv_bus *bus);
void rv_hart_destroy(struct rv_hart *h);
/* M-mode at pc, a0 = hartid, other registers and CSRs reset. */
void rv_hart_reset(struct rv_hart *h, uint64_t pc);

/* Run up to max_insns instructions. Returns on budget exhaustion, on WFI
 * with no locally enabled interrupt pending (pc already past the WFI), on
 * rv_hart_request_stop(), or on a fatal condition (a trap into M-mode with
 * mtvec 0, or a fault while fetching the M-mode trap handler itself):
 * rv_hart_describe() then explains. */
enum rv_stop rv_hart_run(struct rv_hart *h, uint64_t max_insns);

/* Thread-safe: set or clear a mip bit (RV_MIP_*), waking rv_hart_wait(). */
void rv_hart_set_irq(struct rv_hart *h, uint64_t mip_bit, bool level);
/* Thread-safe: make rv_hart_run() return RV_STOP_REQUEST soon; wakes rv_hart_wait(). */
void rv_hart_request_stop(struct rv_hart *h);
/* Thread-safe: flush the TLB. From another thread (remote SFENCE through
 * the SBI) it waits until the hart has flushed, or is not running, so the
 * fence is complete when it returns. */
void rv_hart_flush_tlb(struct rv_hart *h);

/* For the board after RV_STOP_WFI: sleep until an interrupt is pending and
 * locally enabled (mip & mie), a stop is requested, rv_hart_wake() is called,
 * or timeout_ns passes (negative: no timeout). Returns true if an interrupt
 * is pending. */
bool rv_hart_wait(struct rv_hart *h, int64_t timeout_ns);
void rv_hart_wake(struct rv_hart *h);
/* Sstc: the mtime value at which this hart's STIP fires, or UINT64_MAX. The
 * board folds it into its WFI timeout. */
uint64_t rv_hart_timer_deadline(struct rv_hart *h);
/* True if an interrupt is pending and locally enabled (what WFI waits for). */
bool rv_hart_irq_pending(struct rv_hart *h);

/* Raise an exception from outside (e.g. SBI handler rejecting a call):
 * delivered as if the current instruction trapped. */
void rv_hart_raise(struct rv_hart *h, uint64_t cause, uint64_t tval);

/* Guest memory through the hart's view (physical, RAM or MMIO). 0 or -1. */
int rv_hart_phys_read(struct rv_hart *h, uint64_t pa, void *buf, size_t len);
int rv_hart_phys_write(struct rv_hart *h, uint64_t pa, const void *buf, size_t len);
/* Guest memory through the current translation (satp, priv as for a load or
 * store in the current mode); used by the SBI (DBCN) and user-mode
 * emulation. 0 or -1 on fault. */
int rv_hart_virt_read(struct rv_hart *h, uint64_t va, void *buf, size_t len);
int rv_hart_virt_write(struct rv_hart *h, uint64_t va, const void *buf, size_t len);

/* Snapshot section "riscv-hart", instance = hartid. */
int rv_hart_save(struct rv_hart *h, struct state_writer *w);
int rv_hart_load(struct rv_hart *h, struct state_reader *r, vs_err *err);

/* One paragraph: fatal message (if any), pc, priv, mcause/mtval, x regs. */
void rv_hart_describe(struct rv_hart *h, char *buf, size_t len);

#endif
