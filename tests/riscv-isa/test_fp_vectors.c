/* F and D rounding arithmetic through the real instructions: every vector
 * of fp_vectors.h (exact reference from gen_fp_vectors.py: all five rounding
 * modes including RMM, subnormals, overflow, NaNs) with the mode in frm
 * (dynamic rounding), checking the result bits and the accrued flags. */
#include "fp_vectors.h"
#include "rt.h"

static uint64_t run(const struct fp_vector *v, uint64_t *flags)
{
    uint64_t r;
    csr_write(frm, v->rm);
    csr_write(fflags, 0);
#define S3(insn)                                                                                   \
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n fmv.w.x ft2, %3\n" insn                  \
                     "\n fmv.x.w %0, ft3"                                                          \
                     : "=r"(r)                                                                     \
                     : "r"(v->a), "r"(v->b), "r"(v->c)                                             \
                     : "ft0", "ft1", "ft2", "ft3")
#define D3(insn)                                                                                   \
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft2, %3\n" insn                  \
                     "\n fmv.x.d %0, ft3"                                                          \
                     : "=r"(r)                                                                     \
                     : "r"(v->a), "r"(v->b), "r"(v->c)                                             \
                     : "ft0", "ft1", "ft2", "ft3")
    if (!v->dbl) {
        switch (v->op) {
        case FPV_ADD:
            S3("fadd.s ft3, ft0, ft1");
            break;
        case FPV_SUB:
            S3("fsub.s ft3, ft0, ft1");
            break;
        case FPV_MUL:
            S3("fmul.s ft3, ft0, ft1");
            break;
        case FPV_DIV:
            S3("fdiv.s ft3, ft0, ft1");
            break;
        case FPV_SQRT:
            S3("fsqrt.s ft3, ft0");
            break;
        case FPV_FMADD:
            S3("fmadd.s ft3, ft0, ft1, ft2");
            break;
        default: /* widen to double */
            __asm__ volatile("fmv.w.x ft0, %1\n fcvt.d.s ft3, ft0\n fmv.x.d %0, ft3"
                             : "=r"(r)
                             : "r"(v->a)
                             : "ft0", "ft3");
            break;
        }
        if (v->op != FPV_CVT)
            r &= 0xffffffffull;
    } else {
        switch (v->op) {
        case FPV_ADD:
            D3("fadd.d ft3, ft0, ft1");
            break;
        case FPV_SUB:
            D3("fsub.d ft3, ft0, ft1");
            break;
        case FPV_MUL:
            D3("fmul.d ft3, ft0, ft1");
            break;
        case FPV_DIV:
            D3("fdiv.d ft3, ft0, ft1");
            break;
        case FPV_SQRT:
            D3("fsqrt.d ft3, ft0");
            break;
        case FPV_FMADD:
            D3("fmadd.d ft3, ft0, ft1, ft2");
            break;
        default: /* narrow to single; the result must be NaN-boxed */
            __asm__ volatile("fmv.d.x ft0, %1\n fcvt.s.d ft3, ft0\n fmv.x.d %0, ft3"
                             : "=r"(r)
                             : "r"(v->a)
                             : "ft0", "ft3");
            CHECK_EQ(r >> 32, 0xffffffffu);
            r &= 0xffffffffull;
            break;
        }
    }
    *flags = csr_read(fflags);
    return r;
}

int main(void)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < FP_VECTOR_COUNT; i++) {
        const struct fp_vector *v = &fp_vectors[i];
        uint64_t flags, r = run(v, &flags);
        if (r != v->r || flags != v->flags) {
            if (bad++ < 10) {
                rt_puts("vector ");
                rt_puthex(i);
                rt_puts(": got ");
                rt_puthex(r);
                rt_puts(" flags ");
                rt_puthex(flags);
                rt_puts(" want ");
                rt_puthex(v->r);
                rt_puts(" flags ");
                rt_puthex(v->flags);
                rt_puts("\n");
            }
        }
    }
    CHECK_EQ(bad, 0);
    /* frm = RMM, static rm fields override it */
    csr_write(frm, 4);
    CHECK_EQ(csr_read(fcsr) >> 5, 4);
    return 0;
}
