/* A small x86-64 instruction encoder for the translator (jit.c): exactly
 * the instructions it emits, each encoded as GNU as encodes it (shortest
 * displacement and immediate forms, the r/m,reg form for register-to-
 * register operations), which tests/unit/test_riscv_x64.c checks byte for
 * byte against `as`. Debian offers asmjit and xbyak (C++) and libgccjit
 * (far too slow to compile a basic block); see README's emulator section. */
#ifndef VESSEL_RISCV_X64_H
#define VESSEL_RISCV_X64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum x64_reg {
    X64_RAX,
    X64_RCX,
    X64_RDX,
    X64_RBX,
    X64_RSP,
    X64_RBP,
    X64_RSI,
    X64_RDI,
    X64_R8,
    X64_R9,
    X64_R10,
    X64_R11,
    X64_R12,
    X64_R13,
    X64_R14,
    X64_R15,
};
#define X64_NOREG (-1)

/* [base + index * scale + disp]; index X64_NOREG for none */
struct x64_mem {
    int base, index;
    unsigned scale; /* 1, 2, 4, 8 */
    int32_t disp;
};

static inline struct x64_mem x64_m(int base, int32_t disp)
{
    return (struct x64_mem){.base = base, .index = X64_NOREG, .scale = 1, .disp = disp};
}

static inline struct x64_mem x64_mi(int base, int index, unsigned scale, int32_t disp)
{
    return (struct x64_mem){.base = base, .index = index, .scale = scale, .disp = disp};
}

/* The output buffer: a write past end sets overflow and writes nothing. */
struct x64 {
    uint8_t *p, *end;
    bool overflow;
};

/* two-operand integer ALU operations (the /digit of 0x81 and the 0x01 + 8n opcodes) */
enum x64_alu { X64_ADD = 0, X64_OR = 1, X64_AND = 4, X64_SUB = 5, X64_XOR = 6, X64_CMP = 7 };
/* shifts (the /digit of 0xc1/0xd3) */
enum x64_shift { X64_ROL = 0, X64_ROR = 1, X64_SHL = 4, X64_SHR = 5, X64_SAR = 7 };
/* condition codes */
enum x64_cc {
    X64_CC_O = 0,
    X64_CC_B = 2,
    X64_CC_AE = 3,
    X64_CC_E = 4,
    X64_CC_NE = 5,
    X64_CC_BE = 6,
    X64_CC_A = 7,
    X64_CC_S = 8,
    X64_CC_P = 0xa, /* parity: an unordered (NaN) ucomisd */
    X64_CC_L = 0xc,
    X64_CC_GE = 0xd,
    X64_CC_LE = 0xe,
    X64_CC_G = 0xf,
};

/* width: 8, 16, 32 or 64 bits where an operation takes one */
void x64_mov_rr(struct x64 *x, unsigned bits, int dst, int src);
void x64_load(struct x64 *x, unsigned bits, int dst, struct x64_mem m);  /* mov dst, [m] */
void x64_store(struct x64 *x, unsigned bits, struct x64_mem m, int src); /* mov [m], src */
/* zero- or sign-extending loads of 8/16 bits into 32/64, and movsxd */
void x64_movzx(struct x64 *x, unsigned from_bits, int dst, struct x64_mem m);
void x64_movsx(struct x64 *x, unsigned from_bits, int dst, struct x64_mem m); /* into 64 */
void x64_movsxd_rr(struct x64 *x, int dst, int src);
void x64_movzx8_rr(struct x64 *x, int dst, int src); /* movzx dst32, src8 */
/* the shortest of mov r32, imm32 / mov r64, simm32 / movabs */
void x64_mov_imm(struct x64 *x, int dst, uint64_t imm);
void x64_store_imm(struct x64 *x, unsigned bits, struct x64_mem m, int32_t imm); /* 32 or 64 */
void x64_alu_rr(struct x64 *x, unsigned bits, enum x64_alu op, int dst, int src);
void x64_alu_rm(struct x64 *x, unsigned bits, enum x64_alu op, int dst, struct x64_mem m);
void x64_alu_ri(struct x64 *x, unsigned bits, enum x64_alu op, int dst, int32_t imm);
void x64_alu_mi(struct x64 *x, unsigned bits, enum x64_alu op, struct x64_mem m, int32_t imm);
void x64_shift_ri(struct x64 *x, unsigned bits, enum x64_shift op, int dst, uint8_t imm);
void x64_shift_rcl(struct x64 *x, unsigned bits, enum x64_shift op, int dst);
void x64_imul_rr(struct x64 *x, unsigned bits, int dst, int src);
void x64_not(struct x64 *x, unsigned bits, int dst);
void x64_neg(struct x64 *x, unsigned bits, int dst);
void x64_test_rr(struct x64 *x, unsigned bits, int a, int b);
void x64_lea(struct x64 *x, int dst, struct x64_mem m);
void x64_setcc(struct x64 *x, enum x64_cc cc, int dst); /* dst: al, cl, dl, bl */
void x64_push(struct x64 *x, int r);
void x64_pop(struct x64 *x, int r);
void x64_ret(struct x64 *x);
void x64_call_r(struct x64 *x, int r);
void x64_jmp_r(struct x64 *x, int r);
void x64_jmp_m(struct x64 *x, struct x64_mem m);
/* Scalar double SSE: op is the second opcode byte after F2 0F (0x10 movsd
 * load, 0x58 add, 0x59 mul, 0x5c sub, 0x5e div, 0x51 sqrt); xmm registers
 * are numbered 0-15. */
void x64_sd_rm(struct x64 *x, uint8_t op, int xmm, struct x64_mem m);
void x64_sd_rr(struct x64 *x, uint8_t op, int dst, int src);
void x64_movsd_store(struct x64 *x, struct x64_mem m, int xmm);
void x64_ucomisd(struct x64 *x, int a, int b);
/* vfmadd231sd family (FMA3), dst = +-(src1 * src2) +- dst: op 0xb9 fmadd,
 * 0xbb fmsub, 0xbd fnmadd, 0xbf fnmsub */
void x64_vfma231sd(struct x64 *x, uint8_t op, int dst, int src1, int src2);
/* The same in single precision (F3 0F ..; ucomiss; vfmadd231ss family) */
void x64_ss_rm(struct x64 *x, uint8_t op, int xmm, struct x64_mem m);
void x64_ss_rr(struct x64 *x, uint8_t op, int dst, int src);
void x64_movss_store(struct x64 *x, struct x64_mem m, int xmm);
void x64_ucomiss(struct x64 *x, int a, int b);
void x64_vfma231ss(struct x64 *x, uint8_t op, int dst, int src1, int src2);
/* Relative jumps and calls with a 32-bit displacement to target. They
 * return the address of the displacement (for x64_patch_rel32) */
uint8_t *x64_jmp(struct x64 *x, const void *target);
uint8_t *x64_jcc(struct x64 *x, enum x64_cc cc, const void *target);
uint8_t *x64_call(struct x64 *x, const void *target);
/* Point a rel32 written by x64_jmp/x64_jcc/x64_call at target. */
void x64_patch_rel32(uint8_t *disp, const void *target);
/* True if target is reachable from p with a rel32. */
bool x64_rel32_ok(const void *p, const void *target);

#endif
