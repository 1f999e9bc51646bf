/* Each instruction's behaviour on the hart, for the instructions the
 * interpreter does not inline and everything the translator does not emit:
 * system instructions, CSRs, atomics, fences, floating point, and the
 * general (slow-path) form of the rest. */
#include <string.h>

#include "riscv/csr.h"
#include "riscv/fpu.h"
#include "riscv/mmu.h"
#include "riscv/sem.h"
#include "riscv/trap.h"

#define RV_ALU_OUTOFLINE(name, expr)                                                               \
    static uint64_t alu_##name(uint64_t a, uint64_t b)                                             \
    {                                                                                              \
        return rv_alu_##name(a, b);                                                                \
    }
RV_ALU_OPS(RV_ALU_OUTOFLINE)
#undef RV_ALU_OUTOFLINE

const rv_alu_fn rv_alu_helpers[RV_OP_COUNT] = {
#define ENTRY(name, expr) [RV_OP_##name] = alu_##name,
#define ENTRY_I(iname, name) [RV_OP_##iname] = alu_##name,
    RV_ALU_OPS(ENTRY) RV_ALU_IMM_OPS(ENTRY_I)
#undef ENTRY
#undef ENTRY_I
};

bool rv_sem_load(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val)
{
    const struct rv_tlb_entry *e = &h->tlb[h->dset][RV_ACC_LOAD][RV_TLB_IDX(va)];
    if (likely(e->tag == (va >> 12) && (va & 0xfff) <= 4096 - len)) {
        uint64_t v = 0;
        memcpy(&v, (const void *)(uintptr_t)(va + e->addend), len);
        *val = v;
        return true;
    }
    return rv_load_slow(h, va, len, val);
}

bool rv_sem_store(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val)
{
    const struct rv_tlb_entry *e = &h->tlb[h->dset][RV_ACC_STORE][RV_TLB_IDX(va)];
    if (likely(e->tag == (va >> 12) && (va & 0xfff) <= 4096 - len)) {
        memcpy((void *)(uintptr_t)(va + e->addend), &val, len);
        return true;
    }
    return rv_store_slow(h, va, len, val);
}

/* AMO on host memory; returns the old value. */
static uint64_t amo_op(void *p, unsigned f5, bool dw, uint64_t src)
{
    if (dw) {
        uint64_t *q = p;
        switch (f5) {
        case 0x01:
            return __atomic_exchange_n(q, src, __ATOMIC_SEQ_CST);
        case 0x00:
            return __atomic_fetch_add(q, src, __ATOMIC_SEQ_CST);
        case 0x04:
            return __atomic_fetch_xor(q, src, __ATOMIC_SEQ_CST);
        case 0x0c:
            return __atomic_fetch_and(q, src, __ATOMIC_SEQ_CST);
        case 0x08:
            return __atomic_fetch_or(q, src, __ATOMIC_SEQ_CST);
        }
        uint64_t old = __atomic_load_n(q, __ATOMIC_RELAXED), nv;
        do {
            switch (f5) {
            case 0x10:
                nv = (int64_t)old < (int64_t)src ? old : src;
                break;
            case 0x14:
                nv = (int64_t)old > (int64_t)src ? old : src;
                break;
            case 0x18:
                nv = old < src ? old : src;
                break;
            default:
                nv = old > src ? old : src;
                break;
            }
        } while (
            !__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
        return old;
    }
    uint32_t *q = p, s = (uint32_t)src;
    switch (f5) {
    case 0x01:
        return rv_sext32(__atomic_exchange_n(q, s, __ATOMIC_SEQ_CST));
    case 0x00:
        return rv_sext32(__atomic_fetch_add(q, s, __ATOMIC_SEQ_CST));
    case 0x04:
        return rv_sext32(__atomic_fetch_xor(q, s, __ATOMIC_SEQ_CST));
    case 0x0c:
        return rv_sext32(__atomic_fetch_and(q, s, __ATOMIC_SEQ_CST));
    case 0x08:
        return rv_sext32(__atomic_fetch_or(q, s, __ATOMIC_SEQ_CST));
    }
    uint32_t old = __atomic_load_n(q, __ATOMIC_RELAXED), nv;
    do {
        switch (f5) {
        case 0x10:
            nv = (int32_t)old < (int32_t)s ? old : s;
            break;
        case 0x14:
            nv = (int32_t)old > (int32_t)s ? old : s;
            break;
        case 0x18:
            nv = old < s ? old : s;
            break;
        default:
            nv = old > s ? old : s;
            break;
        }
    } while (!__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return rv_sext32(old);
}

static void do_mret(struct rv_hart *h)
{
    uint64_t s = h->mstatus;
    unsigned mpp = (unsigned)((s & RV_MSTATUS_MPP) >> 11);
    s = (s & ~RV_MSTATUS_MIE) | ((s & RV_MSTATUS_MPIE) ? RV_MSTATUS_MIE : 0);
    s |= RV_MSTATUS_MPIE;
    s &= ~RV_MSTATUS_MPP;
    if (mpp != RV_PRIV_M)
        s &= ~RV_MSTATUS_MPRV;
    h->mstatus = s;
    h->pc = h->mepc;
    rv_set_priv(h, mpp);
}

static void do_sret(struct rv_hart *h)
{
    uint64_t s = h->mstatus;
    unsigned spp = (s & RV_MSTATUS_SPP) ? RV_PRIV_S : RV_PRIV_U;
    s = (s & ~RV_MSTATUS_SIE) | ((s & RV_MSTATUS_SPIE) ? RV_MSTATUS_SIE : 0);
    s |= RV_MSTATUS_SPIE;
    s &= ~RV_MSTATUS_SPP;
    s &= ~RV_MSTATUS_MPRV;
    h->mstatus = s;
    h->pc = h->sepc;
    rv_set_priv(h, spp);
}

static enum rv_res trap(struct rv_hart *h, uint64_t cause, uint64_t tval)
{
    h->exc_cause = cause;
    h->exc_tval = tval;
    return RV_RES_TRAP;
}

static enum rv_res illegal(struct rv_hart *h, const struct rv_dentry *e)
{
    /* the instruction as encoded (16 bits for RVC), for trap-and-emulate */
    return trap(h, RV_EXC_ILLEGAL, e->raw);
}

static enum rv_res csr_op(struct rv_hart *h, const struct rv_dentry *e)
{
    uint64_t *x = h->x;
    unsigned csr = (unsigned)e->imm;
    bool imm_form = e->op >= RV_OP_CSRRWI;
    unsigned op = imm_form ? e->op - RV_OP_CSRRWI : e->op - RV_OP_CSRRW; /* 0 W, 1 S, 2 C */
    uint64_t src = imm_form ? e->rs1 : x[e->rs1];
    uint64_t old = 0;
    bool do_read = op != 0 || e->rd != 0;
    bool do_write = op == 0 || e->rs1 != 0;
    if (do_read && !rv_csr_read(h, csr, &old))
        return illegal(h, e);
    if (do_write) {
        uint64_t nv = op == 0 ? src : op == 1 ? old | src : old & ~src;
        if (!rv_csr_write(h, csr, nv))
            return illegal(h, e);
    }
    x[e->rd] = old;
    x[0] = 0;
    h->pc += e->len;
    return h->irq_check ? RV_RES_EXIT : RV_RES_CONT;
}

static unsigned load_len(unsigned op)
{
    switch (op) {
    case RV_OP_LB:
    case RV_OP_LBU:
        return 1;
    case RV_OP_LH:
    case RV_OP_LHU:
        return 2;
    case RV_OP_LW:
    case RV_OP_LWU:
        return 4;
    default:
        return 8;
    }
}

enum rv_res rv_sem_exec(struct rv_hart *h, const struct rv_dentry *e)
{
    uint64_t *x = h->x;
    const uint64_t pc = h->pc, npc = pc + e->len;
    const uint64_t a = x[e->rs1], b = x[e->rs2];
    const int64_t imm = e->imm;
    uint64_t v;
    unsigned op = e->op;

    if (rv_op_is_alu(op)) {
        x[e->rd] = rv_alu_helpers[op](a, rv_op_is_alu_imm(op) ? (uint64_t)imm : b);
        goto next;
    }
    switch (op) {
    case RV_OP_LUI:
        x[e->rd] = (uint64_t)imm;
        goto next;
    case RV_OP_AUIPC:
        x[e->rd] = pc + (uint64_t)imm;
        goto next;
    case RV_OP_JAL:
        x[e->rd] = npc;
        x[0] = 0;
        h->pc = pc + (uint64_t)imm;
        return RV_RES_CONT;
    case RV_OP_JALR:
        x[e->rd] = npc;
        x[0] = 0;
        h->pc = (a + (uint64_t)imm) & ~1ull;
        return RV_RES_CONT;
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU:
        h->pc = rv_branch_taken(op, a, b) ? pc + (uint64_t)imm : npc;
        return RV_RES_CONT;
    case RV_OP_LB:
    case RV_OP_LH:
    case RV_OP_LW:
    case RV_OP_LD:
    case RV_OP_LBU:
    case RV_OP_LHU:
    case RV_OP_LWU: {
        unsigned len = load_len(op);
        if (!rv_sem_load(h, a + (uint64_t)imm, len, &v))
            return RV_RES_TRAP;
        if (op == RV_OP_LB)
            v = (uint64_t)(int64_t)(int8_t)v;
        else if (op == RV_OP_LH)
            v = (uint64_t)(int64_t)(int16_t)v;
        else if (op == RV_OP_LW)
            v = rv_sext32(v);
        x[e->rd] = v;
        goto next;
    }
    case RV_OP_SB:
    case RV_OP_SH:
    case RV_OP_SW:
    case RV_OP_SD:
        if (!rv_sem_store(h, a + (uint64_t)imm, 1u << (op - RV_OP_SB), b))
            return RV_RES_TRAP;
        goto next;
    case RV_OP_FLW:
    case RV_OP_FLD:
        if (!(h->mstatus & RV_MSTATUS_FS))
            return illegal(h, e);
        if (!rv_sem_load(h, a + (uint64_t)imm, op == RV_OP_FLW ? 4 : 8, &v))
            return RV_RES_TRAP;
        h->f[e->rd] = op == RV_OP_FLW ? 0xffffffff00000000ull | v : v;
        h->mstatus |= RV_MSTATUS_FS;
        goto next;
    case RV_OP_FSW:
    case RV_OP_FSD:
        if (!(h->mstatus & RV_MSTATUS_FS))
            return illegal(h, e);
        if (!rv_sem_store(h, a + (uint64_t)imm, op == RV_OP_FSW ? 4 : 8, h->f[e->rs2]))
            return RV_RES_TRAP;
        goto next;
    case RV_OP_FP:
        /* validates before writing anything */
        if (!rv_fpu_exec(h, e->insn))
            return illegal(h, e);
        goto next;
    case RV_OP_LR_W:
    case RV_OP_LR_D: {
        bool dw = op == RV_OP_LR_D;
        void *p = rv_amo_ptr(h, a, dw ? 8 : 4, true);
        if (!p)
            return RV_RES_TRAP;
        v = dw ? __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST)
               : rv_sext32(__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST));
        h->lr_addr = a;
        h->lr_value = v;
        h->lr_valid = true;
        x[e->rd] = v;
        goto next;
    }
    case RV_OP_SC_W:
    case RV_OP_SC_D: {
        bool dw = op == RV_OP_SC_D;
        void *p = rv_amo_ptr(h, a, dw ? 8 : 4, false);
        if (!p)
            return RV_RES_TRAP;
        bool ok = false;
        if (h->lr_valid && h->lr_addr == a) {
            if (dw) {
                uint64_t exp = h->lr_value;
                ok = __atomic_compare_exchange_n((uint64_t *)p, &exp, b, false, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST);
            } else {
                uint32_t exp = (uint32_t)h->lr_value;
                ok = __atomic_compare_exchange_n((uint32_t *)p, &exp, (uint32_t)b, false,
                                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            }
        }
        h->lr_valid = false;
        x[e->rd] = !ok;
        goto next;
    }
    case RV_OP_AMO_W:
    case RV_OP_AMO_D: {
        bool dw = op == RV_OP_AMO_D;
        void *p = rv_amo_ptr(h, a, dw ? 8 : 4, false);
        if (!p)
            return RV_RES_TRAP;
        x[e->rd] = amo_op(p, e->aux, dw, b);
        goto next;
    }
    case RV_OP_FENCE: {
        unsigned pred = (unsigned)(imm >> 4) & 0xf, succ = (unsigned)imm & 0xf;
        /* host is TSO: only store->load ordering needs a real fence */
        if ((pred & 1) && (succ & 2))
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        else
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
        goto next;
    }
    case RV_OP_FENCE_I:
        /* the interpreter checks decoded instructions against memory at
         * every fetch; translations must go */
        rv_hart_code_changed(h);
        goto next;
    case RV_OP_ECALL:
        if (h->priv != RV_PRIV_M && h->bus.ecall && h->bus.ecall(h->bus.opaque, h)) {
            if (h->pc == pc)
                h->pc = npc;
            x[0] = 0;
            if (h->fatal || h->irq_check || __atomic_load_n(&h->stop_request, __ATOMIC_RELAXED))
                return RV_RES_EXIT;
            return RV_RES_CONT;
        }
        return trap(h,
                    h->priv == RV_PRIV_U   ? RV_EXC_ECALL_U
                    : h->priv == RV_PRIV_S ? RV_EXC_ECALL_S
                                           : RV_EXC_ECALL_M,
                    0);
    case RV_OP_EBREAK:
        return trap(h, RV_EXC_BREAKPOINT, pc);
    case RV_OP_MRET:
        if (h->priv != RV_PRIV_M)
            return illegal(h, e);
        do_mret(h);
        return RV_RES_EXIT;
    case RV_OP_SRET:
        if (h->priv < RV_PRIV_S || (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TSR)))
            return illegal(h, e);
        do_sret(h);
        return RV_RES_EXIT;
    case RV_OP_WFI:
        if (h->priv == RV_PRIV_U || (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TW)))
            return illegal(h, e);
        h->pc = npc;
        h->wfi = true;
        return RV_RES_EXIT;
    case RV_OP_SFENCE_VMA:
        if (h->priv == RV_PRIV_U || (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TVM)))
            return illegal(h, e);
        if (e->rs1 == 0)
            rv_tlb_flush_virt(h);
        else
            rv_tlb_flush_va(h, a);
        goto next;
    case RV_OP_CSRRW:
    case RV_OP_CSRRS:
    case RV_OP_CSRRC:
    case RV_OP_CSRRWI:
    case RV_OP_CSRRSI:
    case RV_OP_CSRRCI:
        return csr_op(h, e);
    default:
        return illegal(h, e);
    }
next:
    x[0] = 0;
    h->pc = npc;
    return RV_RES_CONT;
}
