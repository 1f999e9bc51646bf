/* x86-64 encoding: REX, ModRM, SIB, displacements and immediates for the
 * instructions x64.h lists, in the forms GNU as picks. */
#include "riscv/x64.h"

#include <string.h>

static void byte(struct x64 *x, uint8_t b)
{
    if (x->p >= x->end) {
        x->overflow = true;
        return;
    }
    *x->p++ = b;
}

static void u32(struct x64 *x, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        byte(x, (uint8_t)(v >> (8 * i)));
}

static bool fits8(int64_t v)
{
    return v >= -128 && v <= 127;
}

/* REX with W and the high bits of reg (R), index (X), base/rm (B); force:
 * emit even if empty (byte registers spl/bpl/sil/dil). */
static void rex(struct x64 *x, bool w, int reg, int index, int rm, bool force)
{
    uint8_t r = (uint8_t)(0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (index >= 8 ? 2 : 0) |
                          (rm >= 8 ? 1 : 0));
    if (r != 0x40 || force)
        byte(x, r);
}

static void prefix16(struct x64 *x, unsigned bits)
{
    if (bits == 16)
        byte(x, 0x66);
}

/* ModRM (+ SIB + displacement) for reg and a memory operand */
static void modrm_mem(struct x64 *x, int reg, struct x64_mem m)
{
    unsigned mod;
    bool needs_disp = (m.base & 7) == 5; /* rbp/r13: no mod 00 form */
    if (m.disp == 0 && !needs_disp)
        mod = 0;
    else if (fits8(m.disp))
        mod = 1;
    else
        mod = 2;
    if (m.index == X64_NOREG && (m.base & 7) != 4) {
        byte(x, (uint8_t)((mod << 6) | ((reg & 7) << 3) | (m.base & 7)));
    } else {
        unsigned ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
        unsigned idx = m.index == X64_NOREG ? 4 : (unsigned)(m.index & 7);
        byte(x, (uint8_t)((mod << 6) | ((reg & 7) << 3) | 4));
        byte(x, (uint8_t)((ss << 6) | (idx << 3) | (m.base & 7)));
    }
    if (mod == 1)
        byte(x, (uint8_t)(int8_t)m.disp);
    else if (mod == 2)
        u32(x, (uint32_t)m.disp);
}

static void modrm_rr(struct x64 *x, int reg, int rm)
{
    byte(x, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

/* opcode bytes with a register and a memory operand */
static void op_m(struct x64 *x, unsigned bits, const uint8_t *op, unsigned oplen, int reg,
                 struct x64_mem m, bool byte_reg)
{
    prefix16(x, bits);
    rex(x, bits == 64, reg, m.index == X64_NOREG ? 0 : m.index, m.base, byte_reg && reg >= 4);
    for (unsigned i = 0; i < oplen; i++)
        byte(x, op[i]);
    modrm_mem(x, reg, m);
}

static void op_r(struct x64 *x, unsigned bits, const uint8_t *op, unsigned oplen, int reg, int rm,
                 bool byte_rm)
{
    prefix16(x, bits);
    rex(x, bits == 64, reg, 0, rm, byte_rm && rm >= 4);
    for (unsigned i = 0; i < oplen; i++)
        byte(x, op[i]);
    modrm_rr(x, reg, rm);
}

void x64_mov_rr(struct x64 *x, unsigned bits, int dst, int src)
{
    op_r(x, bits, (const uint8_t[]){bits == 8 ? 0x88 : 0x89}, 1, src, dst, bits == 8);
}

void x64_load(struct x64 *x, unsigned bits, int dst, struct x64_mem m)
{
    op_m(x, bits, (const uint8_t[]){bits == 8 ? 0x8a : 0x8b}, 1, dst, m, bits == 8);
}

void x64_store(struct x64 *x, unsigned bits, struct x64_mem m, int src)
{
    op_m(x, bits, (const uint8_t[]){bits == 8 ? 0x88 : 0x89}, 1, src, m, bits == 8);
}

void x64_movzx(struct x64 *x, unsigned from_bits, int dst, struct x64_mem m)
{
    op_m(x, 32, (const uint8_t[]){0x0f, from_bits == 8 ? 0xb6 : 0xb7}, 2, dst, m, false);
}

void x64_movsx(struct x64 *x, unsigned from_bits, int dst, struct x64_mem m)
{
    if (from_bits == 32)
        op_m(x, 64, (const uint8_t[]){0x63}, 1, dst, m, false);
    else
        op_m(x, 64, (const uint8_t[]){0x0f, from_bits == 8 ? 0xbe : 0xbf}, 2, dst, m, false);
}

void x64_movsxd_rr(struct x64 *x, int dst, int src)
{
    op_r(x, 64, (const uint8_t[]){0x63}, 1, dst, src, false);
}

void x64_movzx8_rr(struct x64 *x, int dst, int src)
{
    op_r(x, 32, (const uint8_t[]){0x0f, 0xb6}, 2, dst, src, true);
}

void x64_mov_imm(struct x64 *x, int dst, uint64_t imm)
{
    if (imm <= 0xffffffffull) {
        rex(x, false, 0, 0, dst, false);
        byte(x, (uint8_t)(0xb8 + (dst & 7)));
        u32(x, (uint32_t)imm);
    } else if ((int64_t)imm >= INT32_MIN && (int64_t)imm <= INT32_MAX) {
        rex(x, true, 0, 0, dst, false);
        byte(x, 0xc7);
        modrm_rr(x, 0, dst);
        u32(x, (uint32_t)imm);
    } else {
        rex(x, true, 0, 0, dst, false);
        byte(x, (uint8_t)(0xb8 + (dst & 7)));
        u32(x, (uint32_t)imm);
        u32(x, (uint32_t)(imm >> 32));
    }
}

void x64_store_imm(struct x64 *x, unsigned bits, struct x64_mem m, int32_t imm)
{
    op_m(x, bits, (const uint8_t[]){0xc7}, 1, 0, m, false);
    u32(x, (uint32_t)imm);
}

void x64_alu_rr(struct x64 *x, unsigned bits, enum x64_alu op, int dst, int src)
{
    op_r(x, bits, (const uint8_t[]){(uint8_t)(op * 8 + 1)}, 1, src, dst, false);
}

void x64_alu_rm(struct x64 *x, unsigned bits, enum x64_alu op, int dst, struct x64_mem m)
{
    op_m(x, bits, (const uint8_t[]){(uint8_t)(op * 8 + 3)}, 1, dst, m, false);
}

void x64_alu_ri(struct x64 *x, unsigned bits, enum x64_alu op, int dst, int32_t imm)
{
    if (fits8(imm)) {
        op_r(x, bits, (const uint8_t[]){0x83}, 1, op, dst, false);
        byte(x, (uint8_t)(int8_t)imm);
    } else if (dst == X64_RAX) {
        prefix16(x, bits);
        rex(x, bits == 64, 0, 0, 0, false);
        byte(x, (uint8_t)(op * 8 + 5));
        u32(x, (uint32_t)imm);
    } else {
        op_r(x, bits, (const uint8_t[]){0x81}, 1, op, dst, false);
        u32(x, (uint32_t)imm);
    }
}

void x64_alu_mi(struct x64 *x, unsigned bits, enum x64_alu op, struct x64_mem m, int32_t imm)
{
    if (fits8(imm)) {
        op_m(x, bits, (const uint8_t[]){0x83}, 1, op, m, false);
        byte(x, (uint8_t)(int8_t)imm);
    } else {
        op_m(x, bits, (const uint8_t[]){0x81}, 1, op, m, false);
        u32(x, (uint32_t)imm);
    }
}

void x64_shift_ri(struct x64 *x, unsigned bits, enum x64_shift op, int dst, uint8_t imm)
{
    if (imm == 1) {
        op_r(x, bits, (const uint8_t[]){0xd1}, 1, op, dst, false);
    } else {
        op_r(x, bits, (const uint8_t[]){0xc1}, 1, op, dst, false);
        byte(x, imm);
    }
}

void x64_shift_rcl(struct x64 *x, unsigned bits, enum x64_shift op, int dst)
{
    op_r(x, bits, (const uint8_t[]){0xd3}, 1, op, dst, false);
}

void x64_imul_rr(struct x64 *x, unsigned bits, int dst, int src)
{
    op_r(x, bits, (const uint8_t[]){0x0f, 0xaf}, 2, dst, src, false);
}

void x64_not(struct x64 *x, unsigned bits, int dst)
{
    op_r(x, bits, (const uint8_t[]){0xf7}, 1, 2, dst, false);
}

void x64_neg(struct x64 *x, unsigned bits, int dst)
{
    op_r(x, bits, (const uint8_t[]){0xf7}, 1, 3, dst, false);
}

void x64_test_rr(struct x64 *x, unsigned bits, int a, int b)
{
    op_r(x, bits, (const uint8_t[]){0x85}, 1, b, a, false);
}

void x64_lea(struct x64 *x, int dst, struct x64_mem m)
{
    op_m(x, 64, (const uint8_t[]){0x8d}, 1, dst, m, false);
}

void x64_setcc(struct x64 *x, enum x64_cc cc, int dst)
{
    op_r(x, 32, (const uint8_t[]){0x0f, (uint8_t)(0x90 + cc)}, 2, 0, dst, true);
}

void x64_push(struct x64 *x, int r)
{
    rex(x, false, 0, 0, r, false);
    byte(x, (uint8_t)(0x50 + (r & 7)));
}

void x64_pop(struct x64 *x, int r)
{
    rex(x, false, 0, 0, r, false);
    byte(x, (uint8_t)(0x58 + (r & 7)));
}

void x64_ret(struct x64 *x)
{
    byte(x, 0xc3);
}

void x64_call_r(struct x64 *x, int r)
{
    op_r(x, 32, (const uint8_t[]){0xff}, 1, 2, r, false);
}

void x64_jmp_r(struct x64 *x, int r)
{
    op_r(x, 32, (const uint8_t[]){0xff}, 1, 4, r, false);
}

void x64_jmp_m(struct x64 *x, struct x64_mem m)
{
    op_m(x, 32, (const uint8_t[]){0xff}, 1, 4, m, false);
}

void x64_sd_rm(struct x64 *x, uint8_t op, int xmm, struct x64_mem m)
{
    byte(x, 0xf2);
    op_m(x, 32, (const uint8_t[]){0x0f, op}, 2, xmm, m, false);
}

void x64_sd_rr(struct x64 *x, uint8_t op, int dst, int src)
{
    byte(x, 0xf2);
    op_r(x, 32, (const uint8_t[]){0x0f, op}, 2, dst, src, false);
}

void x64_movsd_store(struct x64 *x, struct x64_mem m, int xmm)
{
    byte(x, 0xf2);
    op_m(x, 32, (const uint8_t[]){0x0f, 0x11}, 2, xmm, m, false);
}

void x64_ucomisd(struct x64 *x, int a, int b)
{
    byte(x, 0x66);
    op_r(x, 32, (const uint8_t[]){0x0f, 0x2e}, 2, a, b, false);
}

void x64_vfma231sd(struct x64 *x, uint8_t op, int dst, int src1, int src2)
{
    /* VEX3: C4, RXB.mmmmm (0F38), W.vvvv.L.pp (W1, 66), opcode, ModRM */
    byte(x, 0xc4);
    byte(x, (uint8_t)((dst >= 8 ? 0 : 0x80) | 0x40 | (src2 >= 8 ? 0 : 0x20) | 0x02));
    byte(x, (uint8_t)(0x80 | ((~src1 & 15) << 3) | 0x01));
    byte(x, op);
    modrm_rr(x, dst, src2);
}

void x64_ss_rm(struct x64 *x, uint8_t op, int xmm, struct x64_mem m)
{
    byte(x, 0xf3);
    op_m(x, 32, (const uint8_t[]){0x0f, op}, 2, xmm, m, false);
}

void x64_ss_rr(struct x64 *x, uint8_t op, int dst, int src)
{
    byte(x, 0xf3);
    op_r(x, 32, (const uint8_t[]){0x0f, op}, 2, dst, src, false);
}

void x64_movss_store(struct x64 *x, struct x64_mem m, int xmm)
{
    byte(x, 0xf3);
    op_m(x, 32, (const uint8_t[]){0x0f, 0x11}, 2, xmm, m, false);
}

void x64_ucomiss(struct x64 *x, int a, int b)
{
    op_r(x, 32, (const uint8_t[]){0x0f, 0x2e}, 2, a, b, false);
}

void x64_vfma231ss(struct x64 *x, uint8_t op, int dst, int src1, int src2)
{
    /* as x64_vfma231sd with VEX.W0 */
    byte(x, 0xc4);
    byte(x, (uint8_t)((dst >= 8 ? 0 : 0x80) | 0x40 | (src2 >= 8 ? 0 : 0x20) | 0x02));
    byte(x, (uint8_t)(((~src1 & 15) << 3) | 0x01));
    byte(x, op);
    modrm_rr(x, dst, src2);
}

bool x64_rel32_ok(const void *p, const void *target)
{
    int64_t d = (int64_t)((intptr_t)target - (intptr_t)p);
    return d > INT32_MIN + 16 && d < INT32_MAX - 16;
}

void x64_patch_rel32(uint8_t *disp, const void *target)
{
    int32_t d = (int32_t)((intptr_t)target - (intptr_t)(disp + 4));
    memcpy(disp, &d, 4);
}

static uint8_t *rel32(struct x64 *x, const void *target)
{
    uint8_t *at = x->p;
    u32(x, 0);
    if (!x->overflow)
        x64_patch_rel32(at, target);
    return at;
}

uint8_t *x64_jmp(struct x64 *x, const void *target)
{
    byte(x, 0xe9);
    return rel32(x, target);
}

uint8_t *x64_jcc(struct x64 *x, enum x64_cc cc, const void *target)
{
    byte(x, 0x0f);
    byte(x, (uint8_t)(0x80 + cc));
    return rel32(x, target);
}

uint8_t *x64_call(struct x64 *x, const void *target)
{
    byte(x, 0xe8);
    return rel32(x, target);
}
