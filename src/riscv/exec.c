/* The interpreter: fetch through the TLB, expand RVC, one switch over the
 * major opcodes. Loads and stores hit the TLB inline and fall back to
 * mmu.c. Instructions run in batches; between batches rv_check_events()
 * takes interrupts and stop requests. */
#include <string.h>

#include "riscv/exec.h"

#define BATCH 4096

#define RD ((insn >> 7) & 31)
#define RS1 ((insn >> 15) & 31)
#define RS2 ((insn >> 20) & 31)
#define F3 ((insn >> 12) & 7)
#define F7 (insn >> 25)
#define IMM_I rv_imm_i(insn)
#define IMM_S rv_imm_s(insn)

#define TLB_IDX(va) (((va) >> 12) & (RV_TLB_SIZE - 1))

/* dst is assigned a T: a 64-bit dst gets the value sign- or zero-extended
 * as T is signed or not, which is what the RISC-V loads want. */
#define LOAD(T, addr, dst)                                                                         \
    do {                                                                                           \
        uint64_t va_ = (addr);                                                                     \
        const struct rv_tlb_entry *e_ = &h->tlb[h->dset][RV_ACC_LOAD][TLB_IDX(va_)];               \
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
        const struct rv_tlb_entry *e_ = &h->tlb[h->dset][RV_ACC_STORE][TLB_IDX(va_)];              \
        if (likely(e_->tag == (va_ >> 12) && (va_ & 0xfff) <= 4096 - sizeof(T))) {                 \
            memcpy((void *)(uintptr_t)(va_ + e_->addend), &v_, sizeof(T));                         \
        } else {                                                                                   \
            if (!rv_store_slow(h, va_, sizeof(T), (uint64_t)v_))                                   \
                goto mem_fault;                                                                    \
        }                                                                                          \
    } while (0)

static inline uint64_t mulhu(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

static inline int64_t mulh(int64_t a, int64_t b)
{
    return (int64_t)(((__int128)a * b) >> 64);
}

static inline int64_t mulhsu(int64_t a, uint64_t b)
{
    return (int64_t)(((__int128)a * (unsigned __int128)b) >> 64);
}

static inline uint64_t ror64(uint64_t v, unsigned s)
{
    s &= 63;
    return s ? (v >> s) | (v << (64 - s)) : v;
}

static inline uint32_t ror32(uint32_t v, unsigned s)
{
    s &= 31;
    return s ? (v >> s) | (v << (32 - s)) : v;
}

static inline uint64_t orc_b(uint64_t v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 8; i++)
        if ((v >> (8 * i)) & 0xff)
            r |= 0xffull << (8 * i);
    return r;
}

static inline int64_t sext32(uint64_t v)
{
    return (int64_t)(int32_t)v;
}

/* M-extension division: x/0 and INT_MIN/-1 do not trap, they give the
 * results the ISA defines. */
static inline uint64_t div64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return UINT64_MAX;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t rem64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint64_t divw(uint64_t a, uint64_t b)
{
    int32_t x32 = (int32_t)a, y32 = (int32_t)b;
    if (y32 == 0)
        return UINT64_MAX;
    if (x32 == INT32_MIN && y32 == -1)
        return (uint64_t)(int64_t)INT32_MIN;
    return (uint64_t)(int64_t)(x32 / y32);
}

static inline uint64_t remw(uint64_t a, uint64_t b)
{
    int32_t x32 = (int32_t)a, y32 = (int32_t)b;
    if (y32 == 0)
        return (uint64_t)(int64_t)x32;
    if (x32 == INT32_MIN && y32 == -1)
        return 0;
    return (uint64_t)(int64_t)(x32 % y32);
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
        return (uint64_t)sext32(__atomic_exchange_n(q, s, __ATOMIC_SEQ_CST));
    case 0x00:
        return (uint64_t)sext32(__atomic_fetch_add(q, s, __ATOMIC_SEQ_CST));
    case 0x04:
        return (uint64_t)sext32(__atomic_fetch_xor(q, s, __ATOMIC_SEQ_CST));
    case 0x0c:
        return (uint64_t)sext32(__atomic_fetch_and(q, s, __ATOMIC_SEQ_CST));
    case 0x08:
        return (uint64_t)sext32(__atomic_fetch_or(q, s, __ATOMIC_SEQ_CST));
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
    return (uint64_t)sext32(old);
}

static bool valid_amo(unsigned f5)
{
    switch (f5) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x08:
    case 0x0c:
    case 0x10:
    case 0x14:
    case 0x18:
    case 0x1c:
        return true;
    }
    return false;
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

static uint64_t exec_batch(struct rv_hart *h, uint64_t n)
{
    uint64_t *const x = h->x;
    uint64_t i = 0;
    uint64_t cause = 0, tval = 0;
    /* Fast-path state kept in locals: h->pc and h->minstret are written back
     * when leaving the fast path (slow path, traps, return). The current
     * code page's host address is remembered until something that could
     * change translation runs (any slow-path instruction or trap). */
    uint64_t cur = h->pc, retired = 0;
    uint64_t fpage = UINT64_MAX;
    uintptr_t faddend = 0;

    while (i < n) {
        uint64_t pc = cur, npc = pc;
        uint32_t insn, raw = 0;
        i++; /* traps count too, so a trap loop still uses up the budget */
        if (likely((pc >> 12) == fpage && (pc & 0xfff) <= 0xffc)) {
            memcpy(&insn, (const void *)(uintptr_t)(pc + faddend), 4);
        } else {
            const struct rv_tlb_entry *fe = &h->tlb[h->iset][RV_ACC_FETCH][TLB_IDX(pc)];
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
        raw = (insn & 3) == 3 ? insn : (insn & 0xffff);
        {
            struct rv_dentry *e = &h->dcache[(pc >> 1) & (RV_DCACHE_SIZE - 1)];
            if (unlikely(e->pc != pc || e->raw != raw))
                rv_decode_entry(e, pc, raw);
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
            switch (e->op) {
            case RV_F_ADDI:
                *rd = a + (uint64_t)imm;
                NEXT;
            case RV_F_ADDIW:
                *rd = (uint64_t)sext32(a + (uint64_t)imm);
                NEXT;
            case RV_F_LUI:
                *rd = (uint64_t)imm;
                NEXT;
            case RV_F_AUIPC:
                *rd = pc + (uint64_t)imm;
                NEXT;
            case RV_F_ANDI:
                *rd = a & (uint64_t)imm;
                NEXT;
            case RV_F_ORI:
                *rd = a | (uint64_t)imm;
                NEXT;
            case RV_F_XORI:
                *rd = a ^ (uint64_t)imm;
                NEXT;
            case RV_F_SLTI:
                *rd = (int64_t)a < imm;
                NEXT;
            case RV_F_SLTIU:
                *rd = a < (uint64_t)imm;
                NEXT;
            case RV_F_SLLI:
                *rd = a << imm;
                NEXT;
            case RV_F_SRLI:
                *rd = a >> imm;
                NEXT;
            case RV_F_SRAI:
                *rd = (uint64_t)((int64_t)a >> imm);
                NEXT;
            case RV_F_SLLIW:
                *rd = (uint64_t)sext32((uint32_t)a << imm);
                NEXT;
            case RV_F_SRLIW:
                *rd = (uint64_t)sext32((uint32_t)a >> imm);
                NEXT;
            case RV_F_SRAIW:
                *rd = (uint64_t)(int64_t)((int32_t)a >> imm);
                NEXT;
            case RV_F_ADD:
                *rd = a + b;
                NEXT;
            case RV_F_SUB:
                *rd = a - b;
                NEXT;
            case RV_F_ADDW:
                *rd = (uint64_t)sext32(a + b);
                NEXT;
            case RV_F_SUBW:
                *rd = (uint64_t)sext32(a - b);
                NEXT;
            case RV_F_AND:
                *rd = a & b;
                NEXT;
            case RV_F_OR:
                *rd = a | b;
                NEXT;
            case RV_F_XOR:
                *rd = a ^ b;
                NEXT;
            case RV_F_SLL:
                *rd = a << (b & 63);
                NEXT;
            case RV_F_SRL:
                *rd = a >> (b & 63);
                NEXT;
            case RV_F_SRA:
                *rd = (uint64_t)((int64_t)a >> (b & 63));
                NEXT;
            case RV_F_SLT:
                *rd = (int64_t)a < (int64_t)b;
                NEXT;
            case RV_F_SLTU:
                *rd = a < b;
                NEXT;
            case RV_F_MUL:
                *rd = a * b;
                NEXT;
            case RV_F_MULW:
                *rd = (uint64_t)sext32((uint32_t)a * (uint32_t)b);
                NEXT;
            case RV_F_DIV:
                *rd = div64(a, b);
                NEXT;
            case RV_F_DIVU:
                *rd = b ? a / b : UINT64_MAX;
                NEXT;
            case RV_F_REM:
                *rd = rem64(a, b);
                NEXT;
            case RV_F_REMU:
                *rd = b ? a % b : a;
                NEXT;
            case RV_F_DIVW:
                *rd = divw(a, b);
                NEXT;
            case RV_F_DIVUW:
                *rd = (uint32_t)b ? (uint64_t)sext32((uint32_t)a / (uint32_t)b) : UINT64_MAX;
                NEXT;
            case RV_F_REMW:
                *rd = remw(a, b);
                NEXT;
            case RV_F_REMUW:
                *rd = (uint64_t)sext32((uint32_t)b ? (uint32_t)a % (uint32_t)b : (uint32_t)a);
                NEXT;
            case RV_F_BEQ:
                BRANCH(a == b);
            case RV_F_BNE:
                BRANCH(a != b);
            case RV_F_BLT:
                BRANCH((int64_t)a < (int64_t)b);
            case RV_F_BGE:
                BRANCH((int64_t)a >= (int64_t)b);
            case RV_F_BLTU:
                BRANCH(a < b);
            case RV_F_BGEU:
                BRANCH(a >= b);
            case RV_F_JAL:
                *rd = npc;
                npc = pc + (uint64_t)imm;
                NEXT;
            case RV_F_JALR:
                *rd = npc;
                npc = (a + (uint64_t)imm) & ~1ull;
                NEXT;
            case RV_F_LB:
                LOAD(int8_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LH:
                LOAD(int16_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LW:
                LOAD(int32_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LD:
                LOAD(uint64_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LBU:
                LOAD(uint8_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LHU:
                LOAD(uint16_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_LWU:
                LOAD(uint32_t, a + (uint64_t)imm, *rd);
                NEXT;
            case RV_F_SB:
                STORE(uint8_t, a + (uint64_t)imm, b);
                NEXT;
            case RV_F_SH:
                STORE(uint16_t, a + (uint64_t)imm, b);
                NEXT;
            case RV_F_SW:
                STORE(uint32_t, a + (uint64_t)imm, b);
                NEXT;
            case RV_F_SD:
                STORE(uint64_t, a + (uint64_t)imm, b);
                NEXT;
            case RV_F_FP:
                /* validates before writing anything: on false the slow path
                 * raises the illegal-instruction trap */
                if (unlikely(!rv_fpu_exec(h, e->insn)))
                    break;
                NEXT;
            case RV_F_FLW:
                if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                    break;
                {
                    uint32_t t;
                    LOAD(uint32_t, a + (uint64_t)imm, t);
                    h->f[e->rd] = 0xffffffff00000000ull | t;
                    h->mstatus |= RV_MSTATUS_FS;
                }
                NEXT;
            case RV_F_FLD:
                if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                    break;
                {
                    uint64_t t;
                    LOAD(uint64_t, a + (uint64_t)imm, t);
                    h->f[e->rd] = t;
                    h->mstatus |= RV_MSTATUS_FS;
                }
                NEXT;
            case RV_F_FSW:
                if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                    break;
                STORE(uint32_t, a + (uint64_t)imm, h->f[e->rs2]);
                NEXT;
            case RV_F_FSD:
                if (unlikely(!(h->mstatus & RV_MSTATUS_FS)))
                    break;
                STORE(uint64_t, a + (uint64_t)imm, h->f[e->rs2]);
                NEXT;
            default:
                break;
            }
#undef NEXT
#undef BRANCH
            /* slow path: architectural state must be current */
            h->pc = pc;
            h->minstret += retired;
            retired = 0;
            insn = e->insn;
            /* only SYSTEM instructions (and traps) change translation */
            if ((insn & 0x7f) == 0x73)
                fpage = UINT64_MAX;
            if (!insn) {
                cause = RV_EXC_ILLEGAL;
                tval = raw;
                goto trap;
            }
        }

        switch (insn & 0x7f) {
        case 0x37: /* LUI */
            x[RD] = (uint64_t)rv_imm_u(insn);
            break;
        case 0x17: /* AUIPC */
            x[RD] = pc + (uint64_t)rv_imm_u(insn);
            break;
        case 0x6f: { /* JAL */
            x[RD] = npc;
            npc = pc + (uint64_t)rv_imm_j(insn);
            break;
        }
        case 0x67: { /* JALR */
            if (F3 != 0)
                goto illegal;
            uint64_t t = (x[RS1] + (uint64_t)IMM_I) & ~1ull;
            x[RD] = npc;
            npc = t;
            break;
        }
        case 0x63: { /* BRANCH */
            uint64_t a = x[RS1], b = x[RS2];
            bool take;
            switch (F3) {
            case 0:
                take = a == b;
                break;
            case 1:
                take = a != b;
                break;
            case 4:
                take = (int64_t)a < (int64_t)b;
                break;
            case 5:
                take = (int64_t)a >= (int64_t)b;
                break;
            case 6:
                take = a < b;
                break;
            case 7:
                take = a >= b;
                break;
            default:
                goto illegal;
            }
            if (take)
                npc = pc + (uint64_t)rv_imm_b(insn);
            break;
        }
        case 0x03: { /* LOAD */
            uint64_t a = x[RS1] + (uint64_t)IMM_I, v;
            switch (F3) {
            case 0:
                LOAD(int8_t, a, v);
                break;
            case 1:
                LOAD(int16_t, a, v);
                break;
            case 2:
                LOAD(int32_t, a, v);
                break;
            case 3:
                LOAD(uint64_t, a, v);
                break;
            case 4:
                LOAD(uint8_t, a, v);
                break;
            case 5:
                LOAD(uint16_t, a, v);
                break;
            case 6:
                LOAD(uint32_t, a, v);
                break;
            default:
                goto illegal;
            }
            x[RD] = v;
            break;
        }
        case 0x23: { /* STORE */
            uint64_t a = x[RS1] + (uint64_t)IMM_S, v = x[RS2];
            switch (F3) {
            case 0:
                STORE(uint8_t, a, v);
                break;
            case 1:
                STORE(uint16_t, a, v);
                break;
            case 2:
                STORE(uint32_t, a, v);
                break;
            case 3:
                STORE(uint64_t, a, v);
                break;
            default:
                goto illegal;
            }
            break;
        }
        case 0x13: { /* OP-IMM */
            uint64_t a = x[RS1], imm = (uint64_t)IMM_I, r;
            unsigned sh = (insn >> 20) & 63, f6 = insn >> 26;
            switch (F3) {
            case 0:
                r = a + imm;
                break;
            case 2:
                r = (int64_t)a < (int64_t)imm;
                break;
            case 3:
                r = a < imm;
                break;
            case 4:
                r = a ^ imm;
                break;
            case 6:
                r = a | imm;
                break;
            case 7:
                r = a & imm;
                break;
            case 1:
                if (f6 == 0) {
                    r = a << sh;
                } else if (f6 == 0x0a) { /* bseti */
                    r = a | (1ull << sh);
                } else if (f6 == 0x12) { /* bclri */
                    r = a & ~(1ull << sh);
                } else if (f6 == 0x1a) { /* binvi */
                    r = a ^ (1ull << sh);
                } else if ((insn >> 20) == 0x600) {
                    r = a ? (uint64_t)__builtin_clzll(a) : 64;
                } else if ((insn >> 20) == 0x601) {
                    r = a ? (uint64_t)__builtin_ctzll(a) : 64;
                } else if ((insn >> 20) == 0x602) {
                    r = (uint64_t)__builtin_popcountll(a);
                } else if ((insn >> 20) == 0x604) {
                    r = (uint64_t)(int64_t)(int8_t)a;
                } else if ((insn >> 20) == 0x605) {
                    r = (uint64_t)(int64_t)(int16_t)a;
                } else {
                    goto illegal;
                }
                break;
            default: /* 5 */
                if (f6 == 0) {
                    r = a >> sh;
                } else if (f6 == 0x10) {
                    r = (uint64_t)((int64_t)a >> sh);
                } else if (f6 == 0x18) { /* rori */
                    r = ror64(a, sh);
                } else if (f6 == 0x12) { /* bexti */
                    r = (a >> sh) & 1;
                } else if ((insn >> 20) == 0x287) {
                    r = orc_b(a);
                } else if ((insn >> 20) == 0x6b8) {
                    r = __builtin_bswap64(a);
                } else {
                    goto illegal;
                }
                break;
            }
            x[RD] = r;
            break;
        }
        case 0x1b: { /* OP-IMM-32 */
            uint64_t a = x[RS1];
            unsigned sh = (insn >> 20) & 31;
            uint64_t r;
            switch (F3) {
            case 0:
                r = (uint64_t)sext32(a + (uint64_t)IMM_I);
                break;
            case 1:
                if (F7 == 0) {
                    r = (uint64_t)sext32((uint32_t)a << sh);
                } else if ((insn >> 26) == 0x02) { /* slli.uw */
                    r = (a & 0xffffffffull) << ((insn >> 20) & 63);
                } else if ((insn >> 20) == 0x600) {
                    r = (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32;
                } else if ((insn >> 20) == 0x601) {
                    r = (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32;
                } else if ((insn >> 20) == 0x602) {
                    r = (uint64_t)__builtin_popcount((uint32_t)a);
                } else {
                    goto illegal;
                }
                break;
            case 5:
                if (F7 == 0)
                    r = (uint64_t)sext32((uint32_t)a >> sh);
                else if (F7 == 0x20)
                    r = (uint64_t)(int64_t)((int32_t)a >> sh);
                else if (F7 == 0x30)
                    r = (uint64_t)sext32(ror32((uint32_t)a, sh));
                else
                    goto illegal;
                break;
            default:
                goto illegal;
            }
            x[RD] = r;
            break;
        }
        case 0x33: { /* OP */
            uint64_t a = x[RS1], b = x[RS2], r;
            switch (F7) {
            case 0x00:
                switch (F3) {
                case 0:
                    r = a + b;
                    break;
                case 1:
                    r = a << (b & 63);
                    break;
                case 2:
                    r = (int64_t)a < (int64_t)b;
                    break;
                case 3:
                    r = a < b;
                    break;
                case 4:
                    r = a ^ b;
                    break;
                case 5:
                    r = a >> (b & 63);
                    break;
                case 6:
                    r = a | b;
                    break;
                default:
                    r = a & b;
                    break;
                }
                break;
            case 0x20:
                switch (F3) {
                case 0:
                    r = a - b;
                    break;
                case 5:
                    r = (uint64_t)((int64_t)a >> (b & 63));
                    break;
                case 4: /* xnor */
                    r = ~(a ^ b);
                    break;
                case 6: /* orn */
                    r = a | ~b;
                    break;
                case 7: /* andn */
                    r = a & ~b;
                    break;
                default:
                    goto illegal;
                }
                break;
            case 0x01: /* M */
                switch (F3) {
                case 0:
                    r = a * b;
                    break;
                case 1:
                    r = (uint64_t)mulh((int64_t)a, (int64_t)b);
                    break;
                case 2:
                    r = (uint64_t)mulhsu((int64_t)a, b);
                    break;
                case 3:
                    r = mulhu(a, b);
                    break;
                case 4:
                    r = div64(a, b);
                    break;
                case 5:
                    r = b ? a / b : UINT64_MAX;
                    break;
                case 6:
                    r = rem64(a, b);
                    break;
                default:
                    r = b ? a % b : a;
                    break;
                }
                break;
            case 0x10: /* sh1add/sh2add/sh3add */
                if (F3 == 2)
                    r = (a << 1) + b;
                else if (F3 == 4)
                    r = (a << 2) + b;
                else if (F3 == 6)
                    r = (a << 3) + b;
                else
                    goto illegal;
                break;
            case 0x05: /* min/max, clmul not implemented */
                if (F3 == 4)
                    r = (int64_t)a < (int64_t)b ? a : b;
                else if (F3 == 5)
                    r = a < b ? a : b;
                else if (F3 == 6)
                    r = (int64_t)a > (int64_t)b ? a : b;
                else if (F3 == 7)
                    r = a > b ? a : b;
                else
                    goto illegal;
                break;
            case 0x30:
                if (F3 == 1)
                    r = ror64(a, 64 - (unsigned)(b & 63));
                else if (F3 == 5)
                    r = ror64(a, (unsigned)b);
                else
                    goto illegal;
                break;
            case 0x24:
                if (F3 == 1)
                    r = a & ~(1ull << (b & 63));
                else if (F3 == 5)
                    r = (a >> (b & 63)) & 1;
                else
                    goto illegal;
                break;
            case 0x14:
                if (F3 != 1)
                    goto illegal;
                r = a | (1ull << (b & 63));
                break;
            case 0x34:
                if (F3 != 1)
                    goto illegal;
                r = a ^ (1ull << (b & 63));
                break;
            default:
                goto illegal;
            }
            x[RD] = r;
            break;
        }
        case 0x3b: { /* OP-32 */
            uint64_t a = x[RS1], b = x[RS2], r;
            uint32_t a32 = (uint32_t)a, b32 = (uint32_t)b;
            switch (F7) {
            case 0x00:
                if (F3 == 0)
                    r = (uint64_t)sext32(a32 + b32);
                else if (F3 == 1)
                    r = (uint64_t)sext32(a32 << (b & 31));
                else if (F3 == 5)
                    r = (uint64_t)sext32(a32 >> (b & 31));
                else
                    goto illegal;
                break;
            case 0x20:
                if (F3 == 0)
                    r = (uint64_t)sext32(a32 - b32);
                else if (F3 == 5)
                    r = (uint64_t)(int64_t)((int32_t)a32 >> (b & 31));
                else
                    goto illegal;
                break;
            case 0x01:
                switch (F3) {
                case 0:
                    r = (uint64_t)sext32(a32 * b32);
                    break;
                case 4:
                    r = divw(a, b);
                    break;
                case 5:
                    r = b32 ? (uint64_t)sext32(a32 / b32) : UINT64_MAX;
                    break;
                case 6:
                    r = remw(a, b);
                    break;
                case 7:
                    r = (uint64_t)sext32(b32 ? a32 % b32 : a32);
                    break;
                default:
                    goto illegal;
                }
                break;
            case 0x04:
                if (F3 == 0)
                    r = (a & 0xffffffffull) + b; /* add.uw */
                else if (F3 == 4 && RS2 == 0)
                    r = a & 0xffff; /* zext.h */
                else
                    goto illegal;
                break;
            case 0x10:
                if (F3 == 2)
                    r = ((a & 0xffffffffull) << 1) + b;
                else if (F3 == 4)
                    r = ((a & 0xffffffffull) << 2) + b;
                else if (F3 == 6)
                    r = ((a & 0xffffffffull) << 3) + b;
                else
                    goto illegal;
                break;
            case 0x30:
                if (F3 == 1)
                    r = (uint64_t)sext32(ror32(a32, 32 - (unsigned)(b & 31)));
                else if (F3 == 5)
                    r = (uint64_t)sext32(ror32(a32, (unsigned)b));
                else
                    goto illegal;
                break;
            default:
                goto illegal;
            }
            x[RD] = r;
            break;
        }
        case 0x0f: /* MISC-MEM */
            if (F3 == 0) {
                unsigned pred = (insn >> 24) & 0xf, succ = (insn >> 20) & 0xf;
                /* host is TSO: only store->load ordering needs a real fence */
                if ((pred & 1) && (succ & 2))
                    __atomic_thread_fence(__ATOMIC_SEQ_CST);
                else
                    __atomic_signal_fence(__ATOMIC_SEQ_CST);
            } else if (F3 != 1) { /* FENCE.I: nothing cached */
                goto illegal;
            }
            break;
        case 0x2f: { /* AMO */
            unsigned f5 = insn >> 27;
            bool dw;
            if (F3 == 3)
                dw = true;
            else if (F3 == 2)
                dw = false;
            else
                goto illegal;
            if (!valid_amo(f5))
                goto illegal;
            uint64_t a = x[RS1];
            unsigned len = dw ? 8 : 4;
            if (f5 == 0x02) { /* LR */
                if (RS2 != 0)
                    goto illegal;
                void *p = rv_amo_ptr(h, a, len, true);
                if (!p)
                    goto mem_fault;
                uint64_t v =
                    dw ? __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST)
                       : (uint64_t)sext32(__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST));
                h->lr_addr = a;
                h->lr_value = v;
                h->lr_valid = true;
                x[RD] = v;
            } else if (f5 == 0x03) { /* SC */
                void *p = rv_amo_ptr(h, a, len, false);
                if (!p)
                    goto mem_fault;
                bool ok = false;
                if (h->lr_valid && h->lr_addr == a) {
                    if (dw) {
                        uint64_t exp = h->lr_value;
                        ok = __atomic_compare_exchange_n((uint64_t *)p, &exp, x[RS2], false,
                                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                    } else {
                        uint32_t exp = (uint32_t)h->lr_value;
                        ok = __atomic_compare_exchange_n((uint32_t *)p, &exp, (uint32_t)x[RS2],
                                                         false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                    }
                }
                h->lr_valid = false;
                x[RD] = !ok;
            } else {
                void *p = rv_amo_ptr(h, a, len, false);
                if (!p)
                    goto mem_fault;
                x[RD] = amo_op(p, f5, dw, x[RS2]);
            }
            break;
        }
        case 0x07: { /* LOAD-FP */
            if (!(h->mstatus & RV_MSTATUS_FS))
                goto illegal;
            uint64_t a = x[RS1] + (uint64_t)IMM_I;
            if (F3 == 2) {
                uint32_t v;
                LOAD(uint32_t, a, v);
                h->f[RD] = 0xffffffff00000000ull | v;
            } else if (F3 == 3) {
                uint64_t v;
                LOAD(uint64_t, a, v);
                h->f[RD] = v;
            } else {
                goto illegal;
            }
            h->mstatus |= RV_MSTATUS_FS;
            break;
        }
        case 0x27: { /* STORE-FP */
            if (!(h->mstatus & RV_MSTATUS_FS))
                goto illegal;
            uint64_t a = x[RS1] + (uint64_t)IMM_S;
            if (F3 == 2)
                STORE(uint32_t, a, h->f[RS2]);
            else if (F3 == 3)
                STORE(uint64_t, a, h->f[RS2]);
            else
                goto illegal;
            break;
        }
        case 0x43:
        case 0x47:
        case 0x4b:
        case 0x4f:
        case 0x53:
            if (!rv_fpu_exec(h, insn))
                goto illegal;
            break;
        case 0x73: { /* SYSTEM */
            unsigned f3 = F3;
            if (f3 == 0) {
                if (insn == 0x00000073) { /* ECALL */
                    if (h->priv != RV_PRIV_M && h->bus.ecall) {
                        h->pc = pc;
                        if (h->bus.ecall(h->bus.opaque, h)) {
                            if (h->pc == pc)
                                h->pc = npc;
                            x[0] = 0;
                            cur = h->pc;
                            if (h->fatal || h->irq_check ||
                                __atomic_load_n(&h->stop_request, __ATOMIC_RELAXED))
                                goto out;
                            continue;
                        }
                    }
                    cause = h->priv == RV_PRIV_U   ? RV_EXC_ECALL_U
                            : h->priv == RV_PRIV_S ? RV_EXC_ECALL_S
                                                   : RV_EXC_ECALL_M;
                    tval = 0;
                    goto trap;
                }
                if (insn == 0x00100073) { /* EBREAK */
                    cause = RV_EXC_BREAKPOINT;
                    tval = pc;
                    goto trap;
                }
                if (insn == 0x30200073) { /* MRET */
                    if (h->priv != RV_PRIV_M)
                        goto illegal;
                    do_mret(h);
                    goto out;
                }
                if (insn == 0x10200073) { /* SRET */
                    if (h->priv < RV_PRIV_S ||
                        (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TSR)))
                        goto illegal;
                    do_sret(h);
                    goto out;
                }
                if (insn == 0x10500073) { /* WFI */
                    if (h->priv == RV_PRIV_U ||
                        (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TW)))
                        goto illegal;
                    h->pc = npc;
                    h->wfi = true;
                    goto out;
                }
                if (F7 == 0x09 && RD == 0) { /* SFENCE.VMA */
                    if (h->priv == RV_PRIV_U ||
                        (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TVM)))
                        goto illegal;
                    if (RS1 == 0) {
                        rv_tlb_flush_virt(h);
                    } else {
                        rv_tlb_flush_va(h, x[RS1]);
                    }
                    break;
                }
                goto illegal;
            }
            if (f3 == 4)
                goto illegal;
            unsigned csr = insn >> 20;
            uint64_t src = (f3 & 4) ? RS1 : x[RS1];
            unsigned op = f3 & 3;
            uint64_t old = 0;
            bool do_read = op != 1 || RD != 0;
            bool do_write = op == 1 || RS1 != 0;
            if (do_read && !rv_csr_read(h, csr, &old))
                goto illegal;
            if (do_write) {
                uint64_t nv = op == 1 ? src : op == 2 ? old | src : old & ~src;
                if (!rv_csr_write(h, csr, nv))
                    goto illegal;
            }
            x[RD] = old;
            x[0] = 0;
            cur = h->pc = npc;
            if (h->irq_check)
                goto out;
            continue;
        }
        default:
            goto illegal;
        }
        x[0] = 0;
        cur = h->pc = npc;
        continue;

    illegal:
        cause = RV_EXC_ILLEGAL;
        /* the instruction as encoded (16 bits for RVC), for trap-and-emulate */
        tval = (raw & 3) == 3 ? raw : (raw & 0xffff);
        goto trap;
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
        uint64_t done = exec_batch(h, n);
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
