/* The behaviour of each instruction, in one place for both accelerators:
 * the integer operations as inline rv_alu_NAME(a, b) helpers (and an
 * out-of-line table of the same for generated code), branch conditions,
 * and rv_sem_exec() for every instruction with the hart as it is (system,
 * CSRs, atomics, fences, floating point and the memory slow paths). The
 * interpreter inlines the hot ones and calls rv_sem_exec() for the rest;
 * the translator emits the hot ones and calls the same helpers. */
#ifndef VESSEL_RISCV_SEM_H
#define VESSEL_RISCV_SEM_H

#include <stdbool.h>
#include <stdint.h>

#include "riscv/hart.h"
#include "riscv/insn.h"

static inline uint64_t rv_sext32(uint64_t v)
{
    return (uint64_t)(int64_t)(int32_t)v;
}

static inline uint64_t rv_ror64(uint64_t v, unsigned s)
{
    s &= 63;
    return s ? (v >> s) | (v << (64 - s)) : v;
}

static inline uint32_t rv_ror32(uint32_t v, unsigned s)
{
    s &= 31;
    return s ? (v >> s) | (v << (32 - s)) : v;
}

static inline uint64_t rv_orc_b(uint64_t v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 8; i++)
        if ((v >> (8 * i)) & 0xff)
            r |= 0xffull << (8 * i);
    return r;
}

/* M-extension division: x/0 and INT_MIN/-1 do not trap, they give the
 * results the ISA defines. */
static inline uint64_t rv_div64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return UINT64_MAX;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t rv_rem64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint64_t rv_div32(uint64_t a, uint64_t b)
{
    int32_t x32 = (int32_t)a, y32 = (int32_t)b;
    if (y32 == 0)
        return UINT64_MAX;
    if (x32 == INT32_MIN && y32 == -1)
        return (uint64_t)(int64_t)INT32_MIN;
    return (uint64_t)(int64_t)(x32 / y32);
}

static inline uint64_t rv_rem32(uint64_t a, uint64_t b)
{
    int32_t x32 = (int32_t)a, y32 = (int32_t)b;
    if (y32 == 0)
        return (uint64_t)(int64_t)x32;
    if (x32 == INT32_MIN && y32 == -1)
        return 0;
    return (uint64_t)(int64_t)(x32 % y32);
}

#define RV_ALU_FN(name, expr)                                                                      \
    static inline uint64_t rv_alu_##name(uint64_t a, uint64_t b)                                   \
    {                                                                                              \
        return expr;                                                                               \
    }
RV_ALU_OPS(RV_ALU_FN)
#undef RV_ALU_FN

/* Out-of-line copies of rv_alu_NAME, indexed by operation (the I forms
 * point at their ALU operation); NULL for everything that is not an ALU
 * operation. */
typedef uint64_t (*rv_alu_fn)(uint64_t a, uint64_t b);
extern const rv_alu_fn rv_alu_helpers[RV_OP_COUNT];

static inline bool rv_op_is_alu(unsigned op)
{
    return op >= RV_OP_ADD && op < RV_OP_COUNT;
}

/* an I form: b is the entry's imm, not rs2's value */
static inline bool rv_op_is_alu_imm(unsigned op)
{
    return op >= RV_OP_ADDI && op < RV_OP_COUNT;
}

static inline bool rv_branch_taken(unsigned op, uint64_t a, uint64_t b)
{
    switch (op) {
    case RV_OP_BEQ:
        return a == b;
    case RV_OP_BNE:
        return a != b;
    case RV_OP_BLT:
        return (int64_t)a < (int64_t)b;
    case RV_OP_BGE:
        return (int64_t)a >= (int64_t)b;
    case RV_OP_BLTU:
        return a < b;
    default:
        return a >= b;
    }
}

/* What rv_sem_exec() did. */
enum rv_res {
    RV_RES_CONT, /* done; h->pc is the next instruction */
    RV_RES_EXIT, /* done; h->pc is the next instruction, but leave the instruction loop
                    (interrupts to re-check, WFI, privilege or translation changed) */
    RV_RES_TRAP, /* exception: h->exc_cause/h->exc_tval; h->pc is still the instruction's */
};

/* Execute any one decoded instruction e at h->pc (h->minstret current,
 * counting e itself). The interpreter's slow path and the translator's
 * out-of-line instructions. */
enum rv_res rv_sem_exec(struct rv_hart *h, const struct rv_dentry *e);

/* Loads and stores through the TLB (host memory on a hit, mmu.c's slow
 * path otherwise). len is 1, 2, 4 or 8; loads zero-extend. False on an
 * exception (h->exc_cause/exc_tval set). */
bool rv_sem_load(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val);
bool rv_sem_store(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val);

#endif
