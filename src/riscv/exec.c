/* The interpreter: fetch through the TLB, decode once into the
 * decoded-instruction cache (decode.c), then one switch over the decoded
 * operations. The hot ones (integer, loads and stores hitting the TLB,
 * branches) are inline, with the semantics of sem.h; everything else goes
 * through rv_sem_exec(), the same code the translator calls. Instructions
 * run in batches; between batches rv_check_events() takes interrupts and
 * stop requests. */
#include <string.h>

#include "riscv/exec.h"
#include "riscv/fpu.h"
#include "riscv/jit.h"
#include "riscv/mmu.h"
#include "riscv/sem.h"
#include "riscv/trap.h"

#define BATCH 4096

/* dst is assigned a T: a 64-bit dst gets the value sign- or zero-extended
 * as T is signed or not, which is what the RISC-V loads want. */
#define LOAD(T, addr, dst)                                                                         \
    do {                                                                                           \
        uint64_t va_ = (addr);                                                                     \
        const struct rv_tlb_entry *e_ = &h->tlb[h->dset][RV_ACC_LOAD][RV_TLB_IDX(va_)];            \
        if (likely(e_->tag == (va_ >> 12) && (va_ & 0xfff) <= 4096 - sizeof(T))) {                 \
            T v_;                                                                                  \
            memcpy(&v_, (const void *)(uintptr_t)(va_ + e_->addend), sizeof(T));                   \
            dst = v_;                                                                              \
        } else {                                                                                   \
            uint64_t t_;                                                                           \
            if (!rv_load_slow(h, va_, sizeof(T), &t_))                                             \
                goto mem_fault;                                                                    \
            dst = (T)t_;                                                                           \
        }                                                                                          \
    } while (0)

#define STORE(T, addr, val)                                                                        \
    do {                                                                                           \
        uint64_t va_ = (addr);                                                                     \
        T v_ = (T)(val);                                                                           \
        const struct rv_tlb_entry *e_ = &h->tlb[h->dset][RV_ACC_STORE][RV_TLB_IDX(va_)];           \
        if (likely(e_->tag == (va_ >> 12) && (va_ & 0xfff) <= 4096 - sizeof(T))) {                 \
            memcpy((void *)(uintptr_t)(va_ + e_->addend), &v_, sizeof(T));                         \
        } else {                                                                                   \
            if (!rv_store_slow(h, va_, sizeof(T), (uint64_t)v_))                                   \
                goto mem_fault;                                                                    \
        }                                                                                          \
    } while (0)

uint64_t rv_interp_batch(struct rv_hart *h, uint64_t n)
{
    uint64_t *const x = h->x;
    uint64_t i = 0;
    uint64_t cause = 0, tval = 0;
    /* Fast-path state kept in locals: h->pc and h->minstret are written back
     * when leaving the fast path (rv_sem_exec, traps, return). The current
     * code page's host address is remembered until something that could
     * change translation runs (anything through rv_sem_exec, or a trap). */
    uint64_t cur = h->pc, retired = 0;
    uint64_t fpage = UINT64_MAX;
    uintptr_t faddend = 0;

    while (i < n) {
        uint64_t pc = cur, npc;
        uint32_t insn;
        i++; /* traps count too, so a trap loop still uses up the budget */
        if (likely((pc >> 12) == fpage && (pc & 0xfff) <= 0xffc)) {
            memcpy(&insn, (const void *)(uintptr_t)(pc + faddend), 4);
        } else {
            const struct rv_tlb_entry *fe = &h->tlb[h->iset][RV_ACC_FETCH][RV_TLB_IDX(pc)];
            if (likely(fe->tag == (pc >> 12) && (pc & 0xfff) <= 0xffc)) {
                fpage = pc >> 12;
                faddend = fe->addend;
                memcpy(&insn, (const void *)(uintptr_t)(pc + faddend), 4);
            } else if (!rv_fetch_slow(h, pc, &insn)) {
                cause = h->exc_cause;
                tval = h->exc_tval;
                goto trap;
            }
        }
        retired++;
        uint32_t raw = (insn & 3) == 3 ? insn : (insn & 0xffff);
        struct rv_dentry *e = &h->dcache[(pc >> 1) & (RV_DCACHE_SIZE - 1)];
        if (unlikely(e->pc != pc || e->raw != raw))
            rv_decode(e, pc, raw);
        npc = pc + e->len;
        uint64_t *const rd = &x[e->rd];
        const uint64_t a = x[e->rs1], b = x[e->rs2];
        const int64_t imm = e->imm;
/* (no do/while: continue must reach the instruction loop) */
#define NEXT                                                                                       \
    {                                                                                              \
        x[0] = 0;                                                                                  \
        cur = npc;                                                                                 \
        continue;                                                                                  \
    }
#define BRANCH(cond)                                                                               \
    {                                                                                              \
        if (cond)                                                                                  \
            npc = pc + (uint64_t)imm;                                                              \
        cur = npc;                                                                                 \
        continue;                                                                                  \
    }
#define ALU_CASE(name, expr)                                                                       \
    case RV_OP_##name:                                                                             \
        *rd = rv_alu_##name(a, b);                                                                 \
        NEXT;
#define ALU_IMM_CASE(iname, name)                                                                  \
    case RV_OP_##iname:                                                                            \
        *rd = rv_alu_##name(a, (uint64_t)imm);                                                     \
        NEXT;
        switch (e->op) {
            RV_ALU_OPS(ALU_CASE)
            RV_ALU_IMM_OPS(ALU_IMM_CASE)
        case RV_OP_LUI:
            *rd = (uint64_t)imm;
            NEXT;
        case RV_OP_AUIPC:
            *rd = pc + (uint64_t)imm;
            NEXT;
        case RV_OP_BEQ:
            BRANCH(a == b);
        case RV_OP_BNE:
            BRANCH(a != b);
        case RV_OP_BLT:
            BRANCH((int64_t)a < (int64_t)b);
        case RV_OP_BGE:
            BRANCH((int64_t)a >= (int64_t)b);
        case RV_OP_BLTU:
            BRANCH(a < b);
        case RV_OP_BGEU:
            BRANCH(a >= b);
        case RV_OP_JAL:
            *rd = npc;
            npc = pc + (uint64_t)imm;
            NEXT;
        case RV_OP_JALR:
            *rd = npc;
            npc = (a + (uint64_t)imm) & ~1ull;
            NEXT;
        case RV_OP_LB:
            LOAD(int8_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LH:
            LOAD(int16_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LW:
            LOAD(int32_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LD:
            LOAD(uint64_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LBU:
            LOAD(uint8_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LHU:
            LOAD(uint16_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_LWU:
            LOAD(uint32_t, a + (uint64_t)imm, *rd);
            NEXT;
        case RV_OP_SB:
            STORE(uint8_t, a + (uint64_t)imm, b);
            NEXT;
        case RV_OP_SH:
            STORE(uint16_t, a + (uint64_t)imm, b);
            NEXT;
        case RV_OP_SW:
            STORE(uint32_t, a + (uint64_t)imm, b);
            NEXT;
        case RV_OP_SD:
            STORE(uint64_t, a + (uint64_t)imm, b);
            NEXT;
        case RV_OP_FP:
            /* validates before writing anything: on false rv_sem_exec
             * raises the illegal-instruction trap */
            if (unlikely(!rv_fpu_exec(h, e->insn)))
                break;
            NEXT;
        case RV_OP_FLW:
            if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                break;
            {
                uint32_t t;
                LOAD(uint32_t, a + (uint64_t)imm, t);
                h->f[e->rd] = 0xffffffff00000000ull | t;
            }
            h->mstatus |= RV_MSTATUS_FS;
            NEXT;
        case RV_OP_FSW:
            if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                break;
            STORE(uint32_t, a + (uint64_t)imm, h->f[e->rs2]);
            NEXT;
        case RV_OP_FLD:
            if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                break;
            LOAD(uint64_t, a + (uint64_t)imm, h->f[e->rd]);
            h->mstatus |= RV_MSTATUS_FS;
            NEXT;
        case RV_OP_FSD:
            if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                break;
            STORE(uint64_t, a + (uint64_t)imm, h->f[e->rs2]);
            NEXT;
        default:
            break;
        }
#undef NEXT
#undef BRANCH
#undef ALU_CASE
#undef ALU_IMM_CASE
        /* everything else, with the architectural state current */
        h->pc = pc;
        h->minstret += retired;
        retired = 0;
        fpage = UINT64_MAX;
        switch (rv_sem_exec(h, e)) {
        case RV_RES_CONT:
            cur = h->pc;
            continue;
        case RV_RES_EXIT:
            goto out;
        case RV_RES_TRAP:
            cause = h->exc_cause;
            tval = h->exc_tval;
            goto trap;
        }
    mem_fault:
        cause = h->exc_cause;
        tval = h->exc_tval;
    trap:
        x[0] = 0;
        h->pc = pc;
        h->minstret += retired;
        retired = 0;
        rv_take_trap(h, cause, tval);
        cur = h->pc;
        fpage = UINT64_MAX;
        if (h->fatal)
            goto out;
    }
    h->pc = cur;
out:
    h->minstret += retired;
    return i;
}

static enum rv_stop run(struct rv_hart *h, uint64_t max_insns);

enum rv_stop rv_hart_run(struct rv_hart *h, uint64_t max_insns)
{
    h->thread = pthread_self();
    __atomic_store_n(&h->running, 1, __ATOMIC_SEQ_CST);
    enum rv_stop why = run(h, max_insns);
    __atomic_store_n(&h->running, 0, __ATOMIC_SEQ_CST);
    /* a remote fence that raced with the exit is applied now */
    if (__atomic_load_n(&h->flush_request, __ATOMIC_ACQUIRE)) {
        rv_tlb_flush_all(h);
        __atomic_store_n(&h->flush_request, 0, __ATOMIC_SEQ_CST);
    }
    return why;
}

static enum rv_stop run(struct rv_hart *h, uint64_t max_insns)
{
    enum rv_stop why;
    if (h->fatal)
        return RV_STOP_FATAL;
    while (max_insns) {
        if (rv_check_events(h, &why))
            return why;
        uint64_t n = max_insns < BATCH ? max_insns : BATCH;
        uint64_t done = h->jit ? rv_jit_batch(h, n) : rv_interp_batch(h, n);
        if (h->fatal)
            return RV_STOP_FATAL;
        max_insns -= done < max_insns ? done : max_insns;
        if (h->wfi) {
            h->wfi = false;
            if (!rv_hart_irq_pending(h))
                return RV_STOP_WFI;
        }
    }
    return RV_STOP_BUDGET;
}
