/* Hart lifecycle, traps and interrupts, WFI sleep, snapshot state and the
 * thread-safe entry points. The instruction loop itself is in exec.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "riscv/csr.h"
#include "riscv/jit.h"
#include "riscv/mmu.h"
#include "riscv/trap.h"
#include "util/cleanup.h"

#define MISA_RV64GC                                                                                \
    ((2ull << 62) | (1u << 0) /* A */ | (1u << 2) /* C */ | (1u << 3) /* D */ |                    \
     (1u << 5) /* F */ | (1u << 8) /* I */ | (1u << 12) /* M */ | (1u << 18) /* S */ |             \
     (1u << 20) /* U */)

void rv_hart_init(struct rv_hart *h, unsigned hartid, const struct rv_bus *bus)
{
    memset(h, 0, sizeof(*h));
    h->hartid = hartid;
    h->bus = *bus;
    pthread_mutex_init(&h->wait_lock, NULL);
    pthread_cond_init(&h->wait_cond, NULL);
    rv_hart_reset(h, bus->ram_base);
}

void rv_hart_destroy(struct rv_hart *h)
{
    rv_jit_destroy(h);
    pthread_mutex_destroy(&h->wait_lock);
    pthread_cond_destroy(&h->wait_cond);
}

void rv_hart_reset(struct rv_hart *h, uint64_t pc)
{
    memset(h->x, 0, sizeof(h->x));
    memset(h->f, 0, sizeof(h->f));
    h->fflags = h->frm = 0;
    h->pc = pc;
    h->priv = RV_PRIV_M;
    h->x[10] = h->hartid;
    h->misa = MISA_RV64GC;
    h->mstatus = 0;
    h->medeleg = h->mideleg = h->mie = 0;
    __atomic_store_n(&h->mip, 0, __ATOMIC_SEQ_CST);
    h->mtvec = h->mscratch = h->mepc = h->mcause = h->mtval = 0;
    h->mcounteren = h->mcountinhibit = h->menvcfg = h->mseccfg = 0;
    h->stvec = h->sscratch = h->sepc = h->scause = h->stval = h->satp = 0;
    h->scounteren = h->senvcfg = 0;
    h->stimecmp = UINT64_MAX;
    h->minstret = 0;
    h->cycle_offset = 0;
    memset(h->pmpcfg, 0, sizeof(h->pmpcfg));
    memset(h->pmpaddr, 0, sizeof(h->pmpaddr));
    h->pmp_count = RV_NPMP;
    h->lr_valid = false;
    h->fatal = false;
    h->fatal_msg[0] = 0;
    h->irq_check = true;
    h->wfi = false;
    rv_tlb_flush_all(h);
    rv_update_ctx(h);
    rv_hart_code_changed(h); /* a reset usually comes with new code in memory */
}

int rv_hart_set_accel(struct rv_hart *h, enum rv_accel accel, vs_err *err)
{
    if (accel == RV_ACCEL_INTERP) {
        rv_jit_destroy(h);
        return 0;
    }
    if (h->jit)
        return 0;
    return rv_jit_create(h, err);
}

void rv_hart_code_changed(struct rv_hart *h)
{
    __atomic_fetch_add(&h->code_gen, 1, __ATOMIC_RELEASE);
}

void rv_update_ctx(struct rv_hart *h)
{
    unsigned dpriv = h->priv;
    if (dpriv == RV_PRIV_M && (h->mstatus & RV_MSTATUS_MPRV))
        dpriv = (unsigned)((h->mstatus & RV_MSTATUS_MPP) >> 11);
    h->dset = dpriv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_SUM) ? 3 : rv_priv_set(dpriv);
    h->iset = rv_priv_set(h->priv);
}

void rv_set_priv(struct rv_hart *h, unsigned priv)
{
    h->priv = priv;
    rv_update_ctx(h);
    h->irq_check = true;
}

uint64_t rv_get_time(struct rv_hart *h)
{
    if (h->bus.get_time)
        return h->bus.get_time(h->bus.opaque);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 10000000ull + (uint64_t)ts.tv_nsec / 100;
}

static const char *cause_name(uint64_t cause)
{
    static const char *const exc[] = {"instruction address misaligned",
                                      "instruction access fault",
                                      "illegal instruction",
                                      "breakpoint",
                                      "load address misaligned",
                                      "load access fault",
                                      "store/AMO address misaligned",
                                      "store/AMO access fault",
                                      "ecall from U-mode",
                                      "ecall from S-mode",
                                      "reserved",
                                      "ecall from M-mode",
                                      "instruction page fault",
                                      "load page fault",
                                      "reserved",
                                      "store/AMO page fault"};
    if (cause & RV_CAUSE_INTERRUPT)
        return "interrupt";
    return cause < ARRAY_SIZE(exc) ? exc[cause] : "unknown";
}

void rv_take_trap(struct rv_hart *h, uint64_t cause, uint64_t tval)
{
    bool irq = (cause & RV_CAUSE_INTERRUPT) != 0;
    unsigned code = (unsigned)(cause & 63);
    uint64_t deleg = irq ? h->mideleg : h->medeleg;
    h->lr_valid = false;
    if (h->priv <= RV_PRIV_S && ((deleg >> code) & 1)) {
        uint64_t s = h->mstatus;
        h->scause = cause;
        h->sepc = h->pc;
        h->stval = tval;
        s &= ~(RV_MSTATUS_SPP | RV_MSTATUS_SPIE);
        if (h->priv == RV_PRIV_S)
            s |= RV_MSTATUS_SPP;
        if (s & RV_MSTATUS_SIE)
            s |= RV_MSTATUS_SPIE;
        s &= ~RV_MSTATUS_SIE;
        h->mstatus = s;
        uint64_t base = h->stvec & ~3ull;
        h->pc = ((h->stvec & 1) && irq) ? base + 4 * code : base;
        rv_set_priv(h, RV_PRIV_S);
        return;
    }
    uint64_t handler = ((h->mtvec & 1) && irq) ? (h->mtvec & ~3ull) + 4 * code : h->mtvec & ~3ull;
    if (h->mtvec == 0 || (!irq && (code == RV_EXC_INSN_ACCESS || code == RV_EXC_INSN_PAGE) &&
                          h->priv == RV_PRIV_M && h->pc == handler)) {
        snprintf(h->fatal_msg, sizeof(h->fatal_msg),
                 "%s (mcause %#llx) at pc %#llx, tval %#llx, %s", cause_name(cause),
                 (unsigned long long)cause, (unsigned long long)h->pc, (unsigned long long)tval,
                 h->mtvec == 0 ? "no M-mode trap handler (mtvec = 0)"
                               : "while fetching the M-mode trap handler");
        h->fatal = true;
        h->mcause = cause;
        h->mepc = h->pc;
        h->mtval = tval;
        return;
    }
    uint64_t s = h->mstatus;
    h->mcause = cause;
    h->mepc = h->pc;
    h->mtval = tval;
    s &= ~(RV_MSTATUS_MPP | RV_MSTATUS_MPIE);
    s |= (uint64_t)h->priv << 11;
    if (s & RV_MSTATUS_MIE)
        s |= RV_MSTATUS_MPIE;
    s &= ~RV_MSTATUS_MIE;
    h->mstatus = s;
    h->pc = handler;
    rv_set_priv(h, RV_PRIV_M);
}

/* Sstc: drive STIP from stimecmp. */
static void sstc_update(struct rv_hart *h)
{
    if (!(h->menvcfg & RV_MENVCFG_STCE))
        return;
    bool level = rv_get_time(h) >= h->stimecmp;
    uint64_t mip = __atomic_load_n(&h->mip, __ATOMIC_RELAXED);
    if (level != ((mip & RV_MIP_STIP) != 0))
        rv_hart_set_irq(h, RV_MIP_STIP, level);
}

/* Interrupt to take now (cause), or 0. Priority: MEI, MSI, MTI, SEI, SSI, STI. */
static uint64_t pending_interrupt(struct rv_hart *h)
{
    uint64_t pend = __atomic_load_n(&h->mip, __ATOMIC_ACQUIRE) & h->mie;
    if (!pend)
        return 0;
    uint64_t m = pend & ~h->mideleg;
    bool m_en = h->priv < RV_PRIV_M || (h->mstatus & RV_MSTATUS_MIE);
    uint64_t s = pend & h->mideleg;
    bool s_en = h->priv < RV_PRIV_S || (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_SIE));
    static const unsigned order[] = {11, 3, 7, 9, 1, 5};
    uint64_t take = 0;
    if (m_en && m)
        take = m;
    else if (s_en && s)
        take = s;
    if (!take)
        return 0;
    for (unsigned i = 0; i < ARRAY_SIZE(order); i++)
        if (take & (1ull << order[i]))
            return RV_CAUSE_INTERRUPT | order[i];
    return 0;
}

/* Called by the run loop between instruction batches. Returns true if the
 * hart must stop. */
bool rv_check_events(struct rv_hart *h, enum rv_stop *why)
{
    if (__atomic_load_n(&h->flush_request, __ATOMIC_ACQUIRE)) {
        rv_tlb_flush_all(h);
        __atomic_store_n(&h->flush_request, 0, __ATOMIC_SEQ_CST);
    }
    if (__atomic_load_n(&h->stop_request, __ATOMIC_RELAXED)) {
        __atomic_store_n(&h->stop_request, 0, __ATOMIC_SEQ_CST);
        *why = RV_STOP_REQUEST;
        return true;
    }
    sstc_update(h);
    uint64_t cause = pending_interrupt(h);
    if (cause) {
        h->wfi = false;
        rv_take_trap(h, cause, 0);
        if (h->fatal) {
            *why = RV_STOP_FATAL;
            return true;
        }
    }
    h->irq_check = false;
    return false;
}

bool rv_hart_irq_pending(struct rv_hart *h)
{
    sstc_update(h);
    return (__atomic_load_n(&h->mip, __ATOMIC_ACQUIRE) & h->mie) != 0;
}

void rv_hart_set_irq(struct rv_hart *h, uint64_t mip_bit, bool level)
{
    if (level)
        __atomic_fetch_or(&h->mip, mip_bit, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_and(&h->mip, ~mip_bit, __ATOMIC_SEQ_CST);
    if (level)
        rv_hart_wake(h);
}

void rv_hart_request_stop(struct rv_hart *h)
{
    __atomic_store_n(&h->stop_request, 1, __ATOMIC_SEQ_CST);
    rv_hart_wake(h);
}

void rv_hart_flush_tlb(struct rv_hart *h)
{
    if (__atomic_load_n(&h->running, __ATOMIC_ACQUIRE) &&
        pthread_equal(h->thread, pthread_self())) {
        rv_tlb_flush_all(h); /* our own hart, e.g. from its ECALL handler */
        return;
    }
    __atomic_store_n(&h->flush_request, 1, __ATOMIC_SEQ_CST);
    /* the hart flushes between instruction batches (a few microseconds);
     * a hart outside rv_hart_run() flushes before it runs again */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (__atomic_load_n(&h->flush_request, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&h->running, __ATOMIC_ACQUIRE)) {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 1)
            break; /* never wedge the caller */
    }
}

void rv_hart_wake(struct rv_hart *h)
{
    pthread_mutex_lock(&h->wait_lock);
    h->wake_seq++;
    pthread_cond_broadcast(&h->wait_cond);
    pthread_mutex_unlock(&h->wait_lock);
}

bool rv_hart_wait(struct rv_hart *h, int64_t timeout_ns)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ns >= 0) {
        dl.tv_sec += timeout_ns / 1000000000;
        dl.tv_nsec += timeout_ns % 1000000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&h->wait_lock);
    unsigned seq = h->wake_seq;
    bool pending;
    for (;;) {
        pending = (__atomic_load_n(&h->mip, __ATOMIC_ACQUIRE) & h->mie) != 0;
        /* an explicit rv_hart_wake() returns too, even with nothing pending;
         * spurious condition-variable wakeups do not */
        if (pending || __atomic_load_n(&h->stop_request, __ATOMIC_RELAXED) || h->wake_seq != seq)
            break;
        int rc = timeout_ns >= 0 ? pthread_cond_timedwait(&h->wait_cond, &h->wait_lock, &dl)
                                 : pthread_cond_wait(&h->wait_cond, &h->wait_lock);
        if (rc == ETIMEDOUT) {
            pending = (__atomic_load_n(&h->mip, __ATOMIC_ACQUIRE) & h->mie) != 0;
            break;
        }
    }
    pthread_mutex_unlock(&h->wait_lock);
    return pending || rv_hart_irq_pending(h);
}

uint64_t rv_hart_timer_deadline(struct rv_hart *h)
{
    if (!(h->menvcfg & RV_MENVCFG_STCE) || !(h->mie & RV_MIP_STIP))
        return UINT64_MAX;
    return h->stimecmp;
}

void rv_hart_raise(struct rv_hart *h, uint64_t cause, uint64_t tval)
{
    rv_take_trap(h, cause, tval);
}

/* The 64-bit CSRs and state saved in order (version 1 layout). */
static void saved_fields(struct rv_hart *h, uint64_t **f, unsigned *n)
{
    uint64_t *list[] = {&h->pc,      &h->misa,       &h->mstatus,       &h->medeleg,  &h->mideleg,
                        &h->mie,     &h->mtvec,      &h->mscratch,      &h->mepc,     &h->mcause,
                        &h->mtval,   &h->mcounteren, &h->mcountinhibit, &h->menvcfg,  &h->mseccfg,
                        &h->stvec,   &h->sscratch,   &h->sepc,          &h->scause,   &h->stval,
                        &h->satp,    &h->scounteren, &h->senvcfg,       &h->stimecmp, &h->minstret,
                        &h->lr_addr, &h->lr_value};
    *n = ARRAY_SIZE(list);
    memcpy(f, list, sizeof(list));
}

#define SAVED_FIELDS_MAX 32

int rv_hart_save(struct rv_hart *h, struct state_writer *w)
{
    state_begin(w, "riscv-hart", h->hartid, 1);
    for (unsigned i = 0; i < 32; i++)
        state_put_u64(w, h->x[i]);
    for (unsigned i = 0; i < 32; i++)
        state_put_u64(w, h->f[i]);
    uint64_t *fields[SAVED_FIELDS_MAX];
    unsigned nf;
    saved_fields(h, fields, &nf);
    for (unsigned i = 0; i < nf; i++)
        state_put_u64(w, *fields[i]);
    state_put_u64(w, __atomic_load_n(&h->mip, __ATOMIC_ACQUIRE));
    state_put_u64(w, (uint64_t)h->cycle_offset);
    state_put_u32(w, h->fflags);
    state_put_u32(w, h->frm);
    state_put_u32(w, h->priv);
    state_put_u32(w, h->lr_valid);
    state_put_u32(w, h->pmp_count);
    state_put(w, h->pmpcfg, sizeof(h->pmpcfg));
    for (unsigned i = 0; i < RV_NPMP; i++)
        state_put_u64(w, h->pmpaddr[i]);
    state_end(w);
    return 0;
}

int rv_hart_load(struct rv_hart *h, struct state_reader *r, vs_err *err)
{
    uint32_t version, v32;
    uint64_t v;
    if (state_find(r, "riscv-hart", h->hartid, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "riscv-hart %u: unsupported state version %u", h->hartid,
                        version);
    for (unsigned i = 0; i < 32; i++)
        if (state_get_u64(r, &h->x[i], err) < 0)
            return -1;
    for (unsigned i = 0; i < 32; i++)
        if (state_get_u64(r, &h->f[i], err) < 0)
            return -1;
    uint64_t *fields[SAVED_FIELDS_MAX];
    unsigned nf;
    saved_fields(h, fields, &nf);
    for (unsigned i = 0; i < nf; i++)
        if (state_get_u64(r, fields[i], err) < 0)
            return -1;
    if (state_get_u64(r, &v, err) < 0)
        return -1;
    __atomic_store_n(&h->mip, v, __ATOMIC_SEQ_CST);
    if (state_get_u64(r, &v, err) < 0)
        return -1;
    h->cycle_offset = (int64_t)v;
    if (state_get_u32(r, &h->fflags, err) < 0 || state_get_u32(r, &h->frm, err) < 0)
        return -1;
    if (state_get_u32(r, &v32, err) < 0)
        return -1;
    if (v32 != RV_PRIV_U && v32 != RV_PRIV_S && v32 != RV_PRIV_M)
        return vs_error(err, EINVAL, "riscv-hart %u: bad privilege level %u", h->hartid, v32);
    h->priv = v32;
    if (state_get_u32(r, &v32, err) < 0)
        return -1;
    h->lr_valid = v32 != 0;
    if (state_get_u32(r, &v32, err) < 0)
        return -1;
    if (v32 > RV_NPMP)
        return vs_error(err, EINVAL, "riscv-hart %u: bad PMP count %u", h->hartid, v32);
    h->pmp_count = v32;
    if (state_get(r, h->pmpcfg, sizeof(h->pmpcfg), err) < 0)
        return -1;
    for (unsigned i = 0; i < RV_NPMP; i++)
        if (state_get_u64(r, &h->pmpaddr[i], err) < 0)
            return -1;
    h->fflags &= 0x1f;
    h->frm &= 7;
    h->fatal = false;
    h->irq_check = true;
    rv_tlb_flush_all(h);
    rv_update_ctx(h);
    rv_hart_code_changed(h); /* memory was loaded too: translations are stale */
    return 0;
}

void rv_hart_describe(struct rv_hart *h, char *buf, size_t len)
{
    static const char *const names[32] = {"zero", "ra", "sp",  "gp",  "tp", "t0", "t1", "t2",
                                          "s0",   "s1", "a0",  "a1",  "a2", "a3", "a4", "a5",
                                          "a6",   "a7", "s2",  "s3",  "s4", "s5", "s6", "s7",
                                          "s8",   "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
    size_t n = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                                  \
    } while (0)
    if (len)
        buf[0] = 0;
    if (h->fatal_msg[0])
        OUT("%s\n", h->fatal_msg);
    OUT("hart %u: pc %016llx priv %c mstatus %016llx mcause %016llx mtval %016llx mepc %016llx\n",
        h->hartid, (unsigned long long)h->pc, "USHM"[h->priv & 3],
        (unsigned long long)rv_mstatus_read(h), (unsigned long long)h -> mcause,
        (unsigned long long)h -> mtval, (unsigned long long)h -> mepc);
    OUT("  scause %016llx stval %016llx sepc %016llx satp %016llx\n", (unsigned long long)h->scause,
        (unsigned long long)h->stval, (unsigned long long)h->sepc, (unsigned long long)h->satp);
    for (unsigned i = 0; i < 32; i++)
        OUT("  %-4s %016llx%s", names[i], (unsigned long long)h->x[i], (i % 4 == 3) ? "\n" : "");
#undef OUT
}
