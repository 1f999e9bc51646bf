/* IEEE-754 binary32/binary64 arithmetic with RISC-V semantics: the five
 * rounding modes (RNE, RTZ, RDN, RUP, RMM), fflags (NV DZ OF UF NX) with
 * tininess detected after rounding, canonical NaNs. Two implementations of
 * the rounding arithmetic: the host's SSE unit (fast; RNE/RTZ/RDN/RUP,
 * non-NaN operands) and an exact software path (everything else, and the
 * reference the unit tests compare the host path against). */
#ifndef VESSEL_RISCV_FPU_H
#define VESSEL_RISCV_FPU_H

#include <stdbool.h>
#include <stdint.h>

enum rv_rm { RV_RNE = 0, RV_RTZ = 1, RV_RDN = 2, RV_RUP = 3, RV_RMM = 4 };

#define RV_FFLAG_NX 0x01u
#define RV_FFLAG_UF 0x02u
#define RV_FFLAG_OF 0x04u
#define RV_FFLAG_DZ 0x08u
#define RV_FFLAG_NV 0x10u

#define RV_F32_CANONICAL_NAN 0x7fc00000u
#define RV_F64_CANONICAL_NAN 0x7ff8000000000000ull

enum rv_fop {
    RV_FOP_ADD,
    RV_FOP_SUB,
    RV_FOP_MUL,
    RV_FOP_DIV,
    RV_FOP_SQRT,
    RV_FOP_FMA,    /* a * b + c */
    RV_FOP_CVT_SD, /* binary64 a -> binary32 */
    RV_FOP_CVT_DS, /* binary32 a -> binary64 */
};

/* One rounded operation on raw bits (binary32 in the low 32 bits when !dbl;
 * dbl is ignored by the conversions, whose formats are in their names). ORs flags into *flags.
 * soft forces the software path. */
uint64_t rv_fp_arith(enum rv_fop op, bool dbl, uint64_t a, uint64_t b, uint64_t c, unsigned rm,
                     uint32_t *flags, bool soft);

/* Integer <-> float conversions. kind: 0 W, 1 WU, 2 L, 3 LU. */
uint64_t rv_fp_to_int(uint64_t a, bool dbl, unsigned kind, unsigned rm, uint32_t *flags);
uint64_t rv_fp_from_int(uint64_t v, bool dbl, unsigned kind, unsigned rm, uint32_t *flags);

/* Execute an OP-FP (0x53) or FMADD-family (0x43..0x4f) instruction on the
 * hart. Returns false (having changed nothing) for an illegal instruction. */
struct rv_hart;
bool rv_fpu_exec(struct rv_hart *h, uint32_t insn);

#endif
