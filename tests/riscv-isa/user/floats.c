/* printf/strtod of floats, libm, rounding modes, exceptions */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    volatile double vals[] = {0.1, -2.5, 1e300, 1e-310, 3.141592653589793, 2.0 / 3.0, -0.0};
    for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        printf("%.17g %a %e %g\n", vals[i], vals[i], vals[i], vals[i]);
    volatile float f = 1.0f / 3.0f;
    printf("float %.9g %a\n", f, f);
    printf("sqrt %.17g sin %.17g exp %.17g log %.17g pow %.17g\n", sqrt(2.0), sin(1.0), exp(1.5),
           log(10.0), pow(2.0, 0.5));
    printf("sqrtf %.9g fmaf %.9g fma %.17g\n", sqrtf(2.0f), fmaf(f, 3.0f, -1.0f),
           fma(0.1, 10.0, -1.0));
    static const int modes[] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
    static const char *names[] = {"nearest", "towardzero", "downward", "upward"};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        volatile double a = 1.0, b = 3.0;
        volatile double q = a / b, nq = -a / b;
        volatile float qf = (float)q;
        printf("%s: %a %a %a rint(2.5)=%g rint(-3.5)=%g lrint(7.5)=%ld\n", names[m], q, nq,
               (double)qf, rint(2.5), rint(-3.5), lrint(7.5));
    }
    fesetround(FE_TONEAREST);
    feclearexcept(FE_ALL_EXCEPT);
    volatile double z = 0.0, one = 1.0, big = DBL_MAX, tiny = DBL_MIN;
    volatile double r = one / z;
    printf("1/0=%g divbyzero=%d\n", r, fetestexcept(FE_DIVBYZERO) != 0);
    feclearexcept(FE_ALL_EXCEPT);
    r = big * 2.0;
    printf("overflow=%d inexact=%d\n", fetestexcept(FE_OVERFLOW) != 0,
           fetestexcept(FE_INEXACT) != 0);
    feclearexcept(FE_ALL_EXCEPT);
    r = tiny / 3.0;
    printf("underflow=%d %a\n", fetestexcept(FE_UNDERFLOW) != 0, r);
    feclearexcept(FE_ALL_EXCEPT);
    r = sqrt(-one);
    printf("invalid=%d nan=%d\n", fetestexcept(FE_INVALID) != 0, isnan(r));
    printf("strtod %.17g %.17g\n", strtod("2.718281828459045235360", NULL), strtod("1e-320", NULL));
    printf("conv %d %u %lld %d\n", (int)-3.99, (unsigned)3.99e9, (long long)-1e18,
           (int)(float)1e10f);
    printf("fmin %g fmax %g\n", fmin(NAN, 1.0), fmax(-0.0, 0.0));
    return 0;
}
