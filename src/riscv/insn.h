/* Instruction decoding, shared by the interpreter (exec.c) and the
 * translator (jit.c): the immediates of the 32-bit formats, the operation
 * every RV64GC (+ Zba/Zbb/Zbs) instruction decodes to, and the decoded
 * instruction. A leaf: it includes nothing of the hart. */
#ifndef VESSEL_RISCV_INSN_H
#define VESSEL_RISCV_INSN_H

#include <stdbool.h>
#include <stdint.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

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

/* The integer operations of two operands a and b, as one expression each
 * (b is rs2's value, or the immediate for the I forms listed in
 * RV_ALU_IMM_OPS). sem.h turns each into an rv_alu_NAME() helper; the
 * interpreter and the translator both use those. */
#define RV_ALU_OPS(X)                                                                              \
    X(ADD, a + b)                                                                                  \
    X(SUB, a - b)                                                                                  \
    X(SLL, a << (b & 63))                                                                          \
    X(SLT, (uint64_t)((int64_t)a < (int64_t)b))                                                    \
    X(SLTU, (uint64_t)(a < b))                                                                     \
    X(XOR, a ^ b)                                                                                  \
    X(SRL, a >> (b & 63))                                                                          \
    X(SRA, (uint64_t)((int64_t)a >> (b & 63)))                                                     \
    X(OR, a | b)                                                                                   \
    X(AND, a &b)                                                                                   \
    X(ADDW, rv_sext32(a + b))                                                                      \
    X(SUBW, rv_sext32(a - b))                                                                      \
    X(SLLW, rv_sext32((uint32_t)a << (b & 31)))                                                    \
    X(SRLW, rv_sext32((uint32_t)a >> (b & 31)))                                                    \
    X(SRAW, (uint64_t)(int64_t)((int32_t)a >> (b & 31)))                                           \
    X(MUL, a *b)                                                                                   \
    X(MULH, (uint64_t)(((__int128)(int64_t)a * (int64_t)b) >> 64))                                 \
    X(MULHSU, (uint64_t)(((__int128)(int64_t)a * (unsigned __int128)b) >> 64))                     \
    X(MULHU, (uint64_t)(((unsigned __int128)a * b) >> 64))                                         \
    X(DIV, rv_div64(a, b))                                                                         \
    X(DIVU, b ? a / b : UINT64_MAX)                                                                \
    X(REM, rv_rem64(a, b))                                                                         \
    X(REMU, b ? a % b : a)                                                                         \
    X(MULW, rv_sext32((uint32_t)a *(uint32_t)b))                                                   \
    X(DIVW, rv_div32(a, b))                                                                        \
    X(DIVUW, (uint32_t)b ? rv_sext32((uint32_t)a / (uint32_t)b) : UINT64_MAX)                      \
    X(REMW, rv_rem32(a, b))                                                                        \
    X(REMUW, rv_sext32((uint32_t)b ? (uint32_t)a % (uint32_t)b : (uint32_t)a))                     \
    X(SH1ADD, (a << 1) + b)                                                                        \
    X(SH2ADD, (a << 2) + b)                                                                        \
    X(SH3ADD, (a << 3) + b)                                                                        \
    X(ADD_UW, (a & 0xffffffffull) + b)                                                             \
    X(SH1ADD_UW, ((a & 0xffffffffull) << 1) + b)                                                   \
    X(SH2ADD_UW, ((a & 0xffffffffull) << 2) + b)                                                   \
    X(SH3ADD_UW, ((a & 0xffffffffull) << 3) + b)                                                   \
    X(SLL_UW, (a & 0xffffffffull) << (b & 63)) /* only as slli.uw */                               \
    X(ANDN, a & ~b)                                                                                \
    X(ORN, a | ~b)                                                                                 \
    X(XNOR, ~(a ^ b))                                                                              \
    X(CLZ, a ? (uint64_t)__builtin_clzll(a) : 64)                                                  \
    X(CTZ, a ? (uint64_t)__builtin_ctzll(a) : 64)                                                  \
    X(CPOP, (uint64_t)__builtin_popcountll(a))                                                     \
    X(CLZW, (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32)                               \
    X(CTZW, (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32)                               \
    X(CPOPW, (uint64_t)__builtin_popcount((uint32_t)a))                                            \
    X(MAX, (int64_t)a > (int64_t)b ? a : b)                                                        \
    X(MAXU, a > b ? a : b)                                                                         \
    X(MIN, (int64_t)a < (int64_t)b ? a : b)                                                        \
    X(MINU, a < b ? a : b)                                                                         \
    X(SEXT_B, (uint64_t)(int64_t)(int8_t)a)                                                        \
    X(SEXT_H, (uint64_t)(int64_t)(int16_t)a)                                                       \
    X(ZEXT_H, a & 0xffff)                                                                          \
    X(ROL, rv_ror64(a, 64 - (unsigned)(b & 63)))                                                   \
    X(ROR, rv_ror64(a, (unsigned)b))                                                               \
    X(ROLW, rv_sext32(rv_ror32((uint32_t)a, 32 - (unsigned)(b & 31))))                             \
    X(RORW, rv_sext32(rv_ror32((uint32_t)a, (unsigned)b)))                                         \
    X(ORC_B, rv_orc_b(a))                                                                          \
    X(REV8, __builtin_bswap64(a))                                                                  \
    X(BCLR, a & ~(1ull << (b & 63)))                                                               \
    X(BEXT, (a >> (b & 63)) & 1)                                                                   \
    X(BINV, a ^ (1ull << (b & 63)))                                                                \
    X(BSET, a | (1ull << (b & 63)))

/* I forms: (immediate op, the ALU op it computes with b = immediate) */
#define RV_ALU_IMM_OPS(X)                                                                          \
    X(ADDI, ADD)                                                                                   \
    X(SLTI, SLT)                                                                                   \
    X(SLTIU, SLTU)                                                                                 \
    X(XORI, XOR)                                                                                   \
    X(ORI, OR)                                                                                     \
    X(ANDI, AND)                                                                                   \
    X(SLLI, SLL)                                                                                   \
    X(SRLI, SRL)                                                                                   \
    X(SRAI, SRA)                                                                                   \
    X(ADDIW, ADDW)                                                                                 \
    X(SLLIW, SLLW)                                                                                 \
    X(SRLIW, SRLW)                                                                                 \
    X(SRAIW, SRAW)                                                                                 \
    X(RORI, ROR)                                                                                   \
    X(RORIW, RORW)                                                                                 \
    X(BCLRI, BCLR)                                                                                 \
    X(BEXTI, BEXT)                                                                                 \
    X(BINVI, BINV)                                                                                 \
    X(BSETI, BSET)                                                                                 \
    X(SLLI_UW, SLL_UW)

/* Everything else, one operation per instruction (the _W/_D suffixes of
 * the atomics are the access width). */
#define RV_OTHER_OPS(X)                                                                            \
    X(ILLEGAL)                                                                                     \
    X(LUI)                                                                                         \
    X(AUIPC)                                                                                       \
    X(JAL)                                                                                         \
    X(JALR)                                                                                        \
    X(BEQ)                                                                                         \
    X(BNE)                                                                                         \
    X(BLT)                                                                                         \
    X(BGE)                                                                                         \
    X(BLTU)                                                                                        \
    X(BGEU)                                                                                        \
    X(LB)                                                                                          \
    X(LH)                                                                                          \
    X(LW)                                                                                          \
    X(LD)                                                                                          \
    X(LBU)                                                                                         \
    X(LHU)                                                                                         \
    X(LWU)                                                                                         \
    X(SB)                                                                                          \
    X(SH)                                                                                          \
    X(SW)                                                                                          \
    X(SD)                                                                                          \
    X(FLW)                                                                                         \
    X(FLD)                                                                                         \
    X(FSW)                                                                                         \
    X(FSD)                                                                                         \
    X(FP) /* OP-FP and the FMADD family: rv_fpu_exec() */                                          \
    X(LR_W)                                                                                        \
    X(LR_D)                                                                                        \
    X(SC_W)                                                                                        \
    X(SC_D)                                                                                        \
    X(AMO_W) /* aux = funct5 */                                                                    \
    X(AMO_D)                                                                                       \
    X(FENCE) /* imm = pred/succ bits */                                                            \
    X(FENCE_I)                                                                                     \
    X(ECALL)                                                                                       \
    X(EBREAK)                                                                                      \
    X(MRET)                                                                                        \
    X(SRET)                                                                                        \
    X(WFI)                                                                                         \
    X(SFENCE_VMA)                                                                                  \
    X(CSRRW) /* imm = the CSR number */                                                            \
    X(CSRRS)                                                                                       \
    X(CSRRC)                                                                                       \
    X(CSRRWI) /* rs1 = the 5-bit immediate */                                                      \
    X(CSRRSI)                                                                                      \
    X(CSRRCI)

enum rv_op {
#define RV_OP_ENUM(name, ...) RV_OP_##name,
#define RV_OP_ENUM1(name) RV_OP_##name,
#define RV_OP_ENUM_I(name, base) RV_OP_##name,
    RV_OTHER_OPS(RV_OP_ENUM1) RV_ALU_OPS(RV_OP_ENUM) RV_ALU_IMM_OPS(RV_OP_ENUM_I) RV_OP_COUNT
#undef RV_OP_ENUM
#undef RV_OP_ENUM1
#undef RV_OP_ENUM_I
};

/* A decoded instruction. decode is a pure function of the instruction
 * bits, so a cached entry is valid whenever pc and raw match what was just
 * fetched (self-modifying code and DMA need no invalidation). */
struct rv_dentry {
    uint64_t pc;
    int64_t imm;   /* per op: the sign-extended immediate, shift amount, CSR number */
    uint32_t raw;  /* as fetched (16 bits for RVC) */
    uint32_t insn; /* the expanded 32-bit form; 0 = illegal */
    uint8_t op;    /* enum rv_op */
    uint8_t rd, rs1, rs2, len, aux;
};

/* decode.c: expand a 16-bit instruction to its 32-bit equivalent (0 if
 * illegal), and decode raw (as fetched: 16 bits for RVC) at pc. Every
 * encoding the hart implements gets its operation; the rest RV_OP_ILLEGAL. */
uint32_t rv_expand_compressed(uint16_t c);
void rv_decode(struct rv_dentry *e, uint64_t pc, uint32_t raw);
/* The operation's name ("addi", ...), for diagnostics and tests. */
const char *rv_op_name(enum rv_op op);

#endif
