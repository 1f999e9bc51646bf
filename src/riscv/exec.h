/* Internal interfaces between the hart's parts: the interpreter (exec.c),
 * CSRs (csr.c), address translation and memory (mmu.c), floating point
 * (fpu.c) and the compressed-instruction decoder (decode.c). */
#ifndef VESSEL_RISCV_EXEC_H
#define VESSEL_RISCV_EXEC_H

#include "riscv/hart.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum rv_access { RV_ACC_LOAD = 0, RV_ACC_STORE = 1, RV_ACC_FETCH = 2 };

#define RV_MENVCFG_STCE (1ull << 63)
#define RV_MENVCFG_PBMTE (1ull << 62)

/* The sign-extended immediates of the 32-bit instruction formats (shared by
 * the decoder's cache entries and the interpreter's slow path). */
static inline int64_t rv_imm_i(uint32_t insn)
{
    return (int64_t)(int32_t)insn >> 20;
}

static inline int64_t rv_imm_s(uint32_t insn)
{
    return ((int64_t)(int32_t)insn >> 20 & ~31ll) | ((insn >> 7) & 31);
}

static inline int64_t rv_imm_b(uint32_t insn)
{
    return ((int64_t)(int32_t)(insn & 0x80000000u) >> 19) | ((insn & 0x80) << 4) |
           ((insn >> 20) & 0x7e0) | ((insn >> 7) & 0x1e);
}

static inline int64_t rv_imm_u(uint32_t insn)
{
    return (int64_t)(int32_t)(insn & 0xfffff000u);
}

static inline int64_t rv_imm_j(uint32_t insn)
{
    return ((int64_t)(int32_t)(insn & 0x80000000u) >> 11) | (insn & 0xff000) |
           ((insn >> 9) & 0x800) | ((insn >> 20) & 0x7fe);
}

/* decode.c: expand a 16-bit instruction to its 32-bit equivalent; 0 if
 * illegal. */
uint32_t rv_expand_compressed(uint16_t c);

/* Fast-path operations of the decoded-instruction cache; anything else is
 * RV_F_SLOW and runs through the general decoder in exec.c. */
enum rv_fast_op {
    RV_F_SLOW = 0,
    RV_F_ADDI,
    RV_F_ADDIW,
    RV_F_LUI, /* imm = value */
    RV_F_AUIPC,
    RV_F_ANDI,
    RV_F_ORI,
    RV_F_XORI,
    RV_F_SLTI,
    RV_F_SLTIU,
    RV_F_SLLI,
    RV_F_SRLI,
    RV_F_SRAI,
    RV_F_SLLIW,
    RV_F_SRLIW,
    RV_F_SRAIW,
    RV_F_ADD,
    RV_F_SUB,
    RV_F_ADDW,
    RV_F_SUBW,
    RV_F_AND,
    RV_F_OR,
    RV_F_XOR,
    RV_F_SLL,
    RV_F_SRL,
    RV_F_SRA,
    RV_F_SLT,
    RV_F_SLTU,
    RV_F_MUL,
    RV_F_MULW,
    RV_F_BEQ,
    RV_F_BNE,
    RV_F_BLT,
    RV_F_BGE,
    RV_F_BLTU,
    RV_F_BGEU,
    RV_F_JAL,
    RV_F_JALR,
    RV_F_LB,
    RV_F_LH,
    RV_F_LW,
    RV_F_LD,
    RV_F_LBU,
    RV_F_LHU,
    RV_F_LWU,
    RV_F_SB,
    RV_F_SH,
    RV_F_SW,
    RV_F_SD,
    RV_F_DIV,
    RV_F_DIVU,
    RV_F_REM,
    RV_F_REMU,
    RV_F_DIVW,
    RV_F_DIVUW,
    RV_F_REMW,
    RV_F_REMUW,
    RV_F_FP, /* OP-FP and the FMADD family: rv_fpu_exec() */
    RV_F_FLW,
    RV_F_FLD,
    RV_F_FSW,
    RV_F_FSD,
};

/* Fill a decoded-cache entry for the instruction bits raw at pc. */
void rv_decode_entry(struct rv_dentry *e, uint64_t pc, uint32_t raw);

/* hart.c */
void rv_take_trap(struct rv_hart *h, uint64_t cause, uint64_t tval);
void rv_update_ctx(struct rv_hart *h); /* priv or mstatus changed: pick TLB sets */
void rv_set_priv(struct rv_hart *h, unsigned priv);
uint64_t rv_get_time(struct rv_hart *h);
/* Between instruction batches: deferred flushes, stop requests, Sstc,
 * interrupts. True if the hart must stop (*why says why). */
bool rv_check_events(struct rv_hart *h, enum rv_stop *why);

/* csr.c: false = illegal instruction */
bool rv_csr_read(struct rv_hart *h, unsigned csr, uint64_t *val);
bool rv_csr_write(struct rv_hart *h, unsigned csr, uint64_t val);
uint64_t rv_mstatus_read(struct rv_hart *h);

/* mmu.c: the slow paths. On failure they set h->exc_cause/exc_tval and
 * return false. */
bool rv_load_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val);
bool rv_store_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val);
bool rv_fetch_slow(struct rv_hart *h, uint64_t pc, uint32_t *insn);
/* Host pointer for an atomic access of len bytes at va (must be aligned and
 * in RAM; load permission for LR, else store permission). NULL on fault
 * (exception set). */
void *rv_amo_ptr(struct rv_hart *h, uint64_t va, unsigned len, bool is_load);
void rv_tlb_flush_set(struct rv_hart *h, unsigned set);
/* every set that depends on satp (all but M) */
void rv_tlb_flush_virt(struct rv_hart *h);
void rv_tlb_flush_all(struct rv_hart *h);
void rv_tlb_flush_va(struct rv_hart *h, uint64_t va);

static inline unsigned rv_priv_set(unsigned priv)
{
    return priv == RV_PRIV_M ? 2 : priv;
}

/* fpu.c: execute an OP-FP (0x53), FMADD family (0x43..0x4f) instruction.
 * Returns false for an illegal instruction. */
bool rv_fpu_exec(struct rv_hart *h, uint32_t insn);

#endif
