/* F/D beyond rounding: NaN boxing, sign injection, min/max, compares and
 * their flags, classify, conversions to and from integers with saturation,
 * moves, loads/stores, fcsr fields, invalid rounding modes and FS = Off. */
#include "rt.h"

static inline uint64_t fbits_s(float f)
{
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    return u;
}

#define FOP1(insn, a)                                                                              \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile("fmv.d.x ft0, %1\n" insn " %0, ft0"                                       \
                         : "=r"(r_)                                                                \
                         : "r"((uint64_t)(a))                                                      \
                         : "ft0");                                                                 \
        r_;                                                                                        \
    })
#define FOP2X(insn, a, b)                                                                          \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n" insn " %0, ft0, ft1"                \
                         : "=r"(r_)                                                                \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b))                                  \
                         : "ft0", "ft1");                                                          \
        r_;                                                                                        \
    })
#define FOP2F(insn, a, b)                                                                          \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n" insn                                \
                         " ft2, ft0, ft1\n fmv.x.d %0, ft2"                                        \
                         : "=r"(r_)                                                                \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b))                                  \
                         : "ft0", "ft1", "ft2");                                                   \
        r_;                                                                                        \
    })
#define XTOF(insn, a)                                                                              \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile(insn " ft0, %1\n fmv.x.d %0, ft0"                                         \
                         : "=r"(r_)                                                                \
                         : "r"((uint64_t)(a))                                                      \
                         : "ft0");                                                                 \
        r_;                                                                                        \
    })

#define BOX(x) (0xffffffff00000000ull | (uint32_t)(x))
#define S_QNAN 0x7fc00000u
#define S_SNAN 0x7f800001u
#define D_QNAN 0x7ff8000000000000ull
#define D_SNAN 0x7ff0000000000001ull
#define D_ONE 0x3ff0000000000000ull
#define D_MONE 0xbff0000000000000ull
#define D_NZERO 0x8000000000000000ull
#define S_ONE 0x3f800000u

static void flags_clear(void)
{
    csr_write(fflags, 0);
}

int main(void)
{
    flags_clear();
    /* NaN boxing: a single operand that is not boxed reads as the canonical NaN */
    CHECK_EQ(FOP2F("fadd.s", 0x3f800000ull, BOX(S_ONE)), BOX(S_QNAN));
    CHECK_EQ(FOP2F("fadd.s", BOX(S_ONE), BOX(S_ONE)), BOX(0x40000000));
    CHECK_EQ(FOP1("fclass.s", 0x0000000000000000ull), 1 << 9); /* unboxed -> qNaN */
    /* fmv.x.w sign-extends the low 32 bits, no unboxing */
    CHECK_EQ(FOP1("fmv.x.w", 0x12345678deadbeefull), 0xffffffffdeadbeefull);
    CHECK_EQ(XTOF("fmv.w.x", 0x1234567800000001ull), BOX(1));
    CHECK_EQ(XTOF("fmv.d.x", 0x1234567800000001ull), 0x1234567800000001ull);

    /* sign injection (also on NaNs, bits only) */
    CHECK_EQ(FOP2F("fsgnj.d", D_ONE, D_NZERO), D_MONE);
    CHECK_EQ(FOP2F("fsgnjn.d", D_ONE, D_NZERO), D_ONE);
    CHECK_EQ(FOP2F("fsgnjx.d", D_MONE, D_NZERO), D_ONE);
    CHECK_EQ(FOP2F("fsgnj.d", D_SNAN, D_NZERO), D_SNAN | D_NZERO);
    CHECK_EQ(FOP2F("fsgnjn.s", BOX(S_ONE), BOX(S_ONE)), BOX(0xbf800000));
    CHECK_EQ(csr_read(fflags), 0);

    /* min/max: one NaN -> the other operand; sNaN raises NV; -0 < +0 */
    CHECK_EQ(FOP2F("fmin.d", D_QNAN, D_ONE), D_ONE);
    CHECK_EQ(csr_read(fflags), 0);
    CHECK_EQ(FOP2F("fmax.d", D_ONE, D_SNAN), D_ONE);
    CHECK_EQ(csr_read(fflags), 0x10);
    flags_clear();
    CHECK_EQ(FOP2F("fmin.d", D_QNAN, D_SNAN), D_QNAN);
    CHECK_EQ(FOP2F("fmin.d", 0ull, D_NZERO), D_NZERO);
    CHECK_EQ(FOP2F("fmax.d", D_NZERO, 0ull), 0);
    CHECK_EQ(FOP2F("fmin.s", BOX(0xc0000000), BOX(S_ONE)), BOX(0xc0000000));
    CHECK_EQ(FOP2F("fmax.s", BOX(S_QNAN), BOX(S_QNAN)), BOX(S_QNAN));
    flags_clear();

    /* compares: feq is quiet (NV only for sNaN), flt/fle signal on any NaN */
    CHECK_EQ(FOP2X("feq.d", D_QNAN, D_ONE), 0);
    CHECK_EQ(csr_read(fflags), 0);
    CHECK_EQ(FOP2X("feq.d", D_SNAN, D_ONE), 0);
    CHECK_EQ(csr_read(fflags), 0x10);
    flags_clear();
    CHECK_EQ(FOP2X("flt.d", D_QNAN, D_ONE), 0);
    CHECK_EQ(csr_read(fflags), 0x10);
    flags_clear();
    CHECK_EQ(FOP2X("fle.d", D_NZERO, 0), 1);
    CHECK_EQ(FOP2X("flt.d", D_NZERO, 0), 0);
    CHECK_EQ(FOP2X("feq.d", D_NZERO, 0), 1);
    CHECK_EQ(FOP2X("flt.d", D_MONE, D_ONE), 1);
    CHECK_EQ(FOP2X("flt.s", BOX(0xc0000000), BOX(0xbf800000)), 1);
    CHECK_EQ(csr_read(fflags), 0);

    /* classify */
    CHECK_EQ(FOP1("fclass.d", 0xfff0000000000000ull), 1 << 0);
    CHECK_EQ(FOP1("fclass.d", D_MONE), 1 << 1);
    CHECK_EQ(FOP1("fclass.d", 0x800fffffffffffffull), 1 << 2);
    CHECK_EQ(FOP1("fclass.d", D_NZERO), 1 << 3);
    CHECK_EQ(FOP1("fclass.d", 0), 1 << 4);
    CHECK_EQ(FOP1("fclass.d", 1), 1 << 5);
    CHECK_EQ(FOP1("fclass.d", D_ONE), 1 << 6);
    CHECK_EQ(FOP1("fclass.d", 0x7ff0000000000000ull), 1 << 7);
    CHECK_EQ(FOP1("fclass.d", D_SNAN), 1 << 8);
    CHECK_EQ(FOP1("fclass.d", D_QNAN), 1 << 9);
    CHECK_EQ(FOP1("fclass.s", BOX(0x00000001)), 1 << 5);

    /* float -> int: rounding mode from the instruction, saturation, NV/NX */
    CHECK_EQ(FOP1("fcvt.w.d", 0x4004000000000000ull), 2);  /* 2.5 rne */
    CHECK_EQ(FOP1("fcvt.w.d ", 0x400c000000000000ull), 4); /* 3.5 rne */
    CHECK_EQ(csr_read(fflags), 1);
    flags_clear();
    CHECK_EQ(FOP1("fcvt.l.d", 0xc004000000000000ull), -2); /* -2.5 rne */
    __asm__ volatile("nop");
    uint64_t r;
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.d %0, ft0, rmm"
                     : "=r"(r)
                     : "r"(0x4004000000000000ull)
                     : "ft0");
    CHECK_EQ(r, 3);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.d %0, ft0, rdn"
                     : "=r"(r)
                     : "r"(0xc004000000000000ull)
                     : "ft0");
    CHECK_EQ(r, -3);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.d %0, ft0, rup"
                     : "=r"(r)
                     : "r"(0x4000000000000001ull)
                     : "ft0");
    CHECK_EQ(r, 3);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.d %0, ft0, rtz"
                     : "=r"(r)
                     : "r"(0xc00fffffffffffffull)
                     : "ft0");
    CHECK_EQ(r, -3);
    flags_clear();
    CHECK_EQ(FOP1("fcvt.w.d", 0x41e0000000000000ull), 0x7fffffff); /* 2^31 saturates */
    CHECK_EQ(csr_read(fflags), 0x10);
    flags_clear();
    CHECK_EQ(FOP1("fcvt.w.d", 0xc1e0000000000000ull), 0xffffffff80000000ull); /* -2^31 exact */
    CHECK_EQ(csr_read(fflags), 0);
    CHECK_EQ(FOP1("fcvt.w.d", D_QNAN), 0x7fffffff);
    CHECK_EQ(FOP1("fcvt.wu.d", D_QNAN), 0xffffffffffffffffull);
    CHECK_EQ(FOP1("fcvt.l.d", D_QNAN), 0x7fffffffffffffffull);
    CHECK_EQ(FOP1("fcvt.lu.d", D_QNAN), 0xffffffffffffffffull);
    CHECK_EQ(FOP1("fcvt.l.d", 0xfff0000000000000ull), 0x8000000000000000ull);
    CHECK_EQ(FOP1("fcvt.lu.d", D_MONE), 0);
    CHECK_EQ(csr_read(fflags), 0x10);
    flags_clear();
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.lu.d %0, ft0, rtz"
                     : "=r"(r)
                     : "r"(0xbfe0000000000000ull)
                     : "ft0");
    CHECK_EQ(r, 0); /* -0.5 truncates to 0: inexact, not invalid */
    CHECK_EQ(csr_read(fflags), 1);
    flags_clear();
    CHECK_EQ(FOP1("fcvt.wu.d", 0x41efffffffe00000ull), 0xffffffffffffffffull); /* 2^32-1 */
    CHECK_EQ(csr_read(fflags), 0);
    CHECK_EQ(FOP1("fcvt.lu.d", 0x43e0000000000000ull), 0x8000000000000000ull); /* 2^63 */
    CHECK_EQ(FOP1("fcvt.l.s", BOX(0xdf000000)), 0x8000000000000000ull);        /* -2^63 */
    CHECK_EQ(FOP1("fcvt.w.s", BOX(0x4f000000)), 0x7fffffff);                   /* 2^31 */
    CHECK_EQ(FOP1("fcvt.wu.s", BOX(0x4f800000)), 0xffffffffffffffffull);       /* 2^32 */
    flags_clear();

    /* int -> float: rounding, NX */
    CHECK_EQ(XTOF("fcvt.d.l", -1), D_MONE);
    CHECK_EQ(XTOF("fcvt.d.lu", -1), 0x43f0000000000000ull);
    CHECK_EQ(csr_read(fflags), 1);
    flags_clear();
    CHECK_EQ(XTOF("fcvt.d.w", 0x00000000ffffffffull), D_MONE); /* low 32 bits, signed */
    CHECK_EQ(XTOF("fcvt.d.wu", 0xffffffff00000003ull), 0x4008000000000000ull);
    CHECK_EQ(XTOF("fcvt.s.w", 16777217), BOX(0x4b800000)); /* rne */
    __asm__ volatile("fcvt.s.w ft0, %1, rmm\n fmv.x.d %0, ft0"
                     : "=r"(r)
                     : "r"(16777219ull)
                     : "ft0");
    CHECK_EQ(r, BOX(0x4b800002));
    __asm__ volatile("fcvt.s.l ft0, %1, rup\n fmv.x.d %0, ft0"
                     : "=r"(r)
                     : "r"(16777217ull)
                     : "ft0");
    CHECK_EQ(r, BOX(0x4b800001));
    __asm__ volatile("fcvt.s.lu ft0, %1, rdn\n fmv.x.d %0, ft0" : "=r"(r) : "r"(-1ull) : "ft0");
    CHECK_EQ(r, BOX(0x5f7fffff));
    CHECK_EQ(XTOF("fcvt.s.l", 0), BOX(0));
    flags_clear();

    /* loads and stores of both widths; flw boxes */
    static uint64_t mem[2];
    mem[0] = 0x11111111bf800000ull;
    __asm__ volatile("flw ft0, 0(%1)\n fmv.x.d %0, ft0\n fsw ft0, 8(%1)"
                     : "=r"(r)
                     : "r"(mem)
                     : "ft0", "memory");
    CHECK_EQ(r, BOX(0xbf800000));
    CHECK_EQ(mem[1] & 0xffffffff, 0xbf800000);
    __asm__ volatile("fld ft0, 0(%0)\n fsd ft0, 8(%0)" ::"r"(mem) : "ft0", "memory");
    CHECK_EQ(mem[1], mem[0]);

    /* fcsr: frm/fflags views, flags accrue across instructions */
    csr_write(fcsr, 0xff);
    CHECK_EQ(csr_read(frm), 7);
    CHECK_EQ(csr_read(fflags), 0x1f);
    csr_write(fcsr, 0);
    FOP2F("fdiv.d", D_ONE, 0);
    FOP2F("fadd.d", D_ONE, 1);
    CHECK_EQ(csr_read(fflags), 0x08 | 0x01);
    flags_clear();

    /* invalid rounding modes are illegal instructions: static 5, dynamic with frm 5 */
    uint64_t n = last_trap.count;
    __asm__ volatile(".word 0x02005053"); /* fadd.d f0, f0, f0 with rm = 5 */
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 2);
    csr_write(frm, 5);
    __asm__ volatile("fadd.d ft0, ft0, ft0" ::: "ft0");
    CHECK_EQ(last_trap.count, n + 2);
    csr_write(frm, 0);
    /* sign injection has no rounding mode: still fine with frm = 5 */
    csr_write(frm, 5);
    __asm__ volatile("fsgnj.d ft0, ft0, ft0" ::: "ft0");
    CHECK_EQ(last_trap.count, n + 2);
    csr_write(frm, 0);

    /* writing FP state makes mstatus.FS dirty (and SD set) */
    csr_clear(mstatus, MSTATUS_FS);
    csr_set(mstatus, 1ull << 13); /* Initial */
    __asm__ volatile("fmv.d.x ft0, zero" ::: "ft0");
    CHECK_EQ((csr_read(mstatus) >> 13) & 3, 3);
    CHECK(csr_read(mstatus) >> 63);
    /* FS = Off: FP instructions and fcsr are illegal */
    csr_clear(mstatus, MSTATUS_FS);
    __asm__ volatile("fmv.d.x ft0, zero" ::: "ft0");
    CHECK_EQ(last_trap.count, n + 3);
    CHECK_EQ(last_trap.cause, 2);
    (void)csr_read(fcsr);
    CHECK_EQ(last_trap.count, n + 4);
    csr_set(mstatus, 1ull << 13);
    (void)fbits_s;
    return 0;
}
