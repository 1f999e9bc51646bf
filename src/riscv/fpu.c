/* F and D extensions. See fpu.h for the approach: rounding arithmetic runs
 * on the host SSE unit under the guest's rounding mode when it can
 * (RNE/RTZ/RDN/RUP, no NaN operand), and on an exact software path
 * otherwise (RMM, NaN operands, integer conversions). Everything that is
 * not rounding (sign injection, min/max, compares, classify, moves,
 * float->int saturation) is done explicitly with RISC-V semantics. */
#include <math.h>
#include <string.h>

#include "riscv/hart.h"
#include "riscv/fpu.h"

/* ---------------------------------------------------------------- soft */

enum { C_ZERO, C_FINITE, C_INF, C_QNAN, C_SNAN };

struct unp {
    int cls;
    bool sign;
    int32_t exp;  /* value = sig * 2^(exp - 63) */
    uint64_t sig; /* normalized: bit 63 set (finite only) */
};

struct fmt {
    int p, bias;
    unsigned signbit;
};

static const struct fmt F32 = {24, 127, 31}, F64 = {53, 1023, 63};

static inline const struct fmt *fmt_of(bool dbl)
{
    return dbl ? &F64 : &F32;
}

static struct unp unpack(uint64_t bits, bool dbl)
{
    const struct fmt *f = fmt_of(dbl);
    struct unp u = {0};
    int ebits = dbl ? 11 : 8;
    u.sign = (bits >> f->signbit) & 1;
    uint64_t e = (bits >> (f->p - 1)) & ((1u << ebits) - 1);
    uint64_t frac = bits & ((1ull << (f->p - 1)) - 1);
    if (e == (1u << ebits) - 1) {
        if (!frac)
            u.cls = C_INF;
        else
            u.cls = ((frac >> (f->p - 2)) & 1) ? C_QNAN : C_SNAN;
        return u;
    }
    if (e == 0) {
        if (!frac) {
            u.cls = C_ZERO;
            return u;
        }
        int lz = __builtin_clzll(frac);
        u.cls = C_FINITE;
        u.sig = frac << lz;
        u.exp = 1 - f->bias - (f->p - 1) - lz + 63;
        return u;
    }
    u.cls = C_FINITE;
    u.sig = (frac | (1ull << (f->p - 1))) << (64 - f->p);
    u.exp = (int32_t)e - f->bias;
    return u;
}

static uint64_t pack_inf(bool sign, bool dbl)
{
    return dbl ? ((uint64_t)sign << 63) | 0x7ff0000000000000ull
               : ((uint64_t)sign << 31) | 0x7f800000ull;
}

static uint64_t pack_zero(bool sign, bool dbl)
{
    return (uint64_t)sign << (dbl ? 63 : 31);
}

static uint64_t canonical_nan(bool dbl)
{
    return dbl ? RV_F64_CANONICAL_NAN : RV_F32_CANONICAL_NAN;
}

static inline uint64_t round_bits(uint64_t sig, unsigned s, bool sign, unsigned rm, bool *inexact)
{
    uint64_t q = sig >> s, rem = sig & ((1ull << s) - 1), half = 1ull << (s - 1);
    bool inc;
    *inexact = rem != 0;
    switch (rm) {
    case RV_RNE:
        inc = rem > half || (rem == half && (q & 1));
        break;
    case RV_RTZ:
        inc = false;
        break;
    case RV_RDN:
        inc = rem && sign;
        break;
    case RV_RUP:
        inc = rem && !sign;
        break;
    default: /* RMM */
        inc = rem >= half;
        break;
    }
    return q + inc;
}

static inline uint64_t shr_jam64(uint64_t v, unsigned s)
{
    if (!s)
        return v;
    if (s >= 64)
        return v != 0;
    return (v >> s) | ((v << (64 - s)) != 0);
}

/* Round sig * 2^(exp - 63) (sig != 0, bit 0 may be a sticky bit) to the
 * format, with flags. */
static uint64_t round_pack(bool sign, int32_t exp, uint64_t sig, bool dbl, unsigned rm,
                           uint32_t *flags)
{
    const struct fmt *f = fmt_of(dbl);
    int lz = __builtin_clzll(sig);
    sig <<= lz;
    exp -= lz;
    unsigned shift = (unsigned)(64 - f->p);
    int emin = 1 - f->bias, emax = f->bias;
    uint64_t sbit = (uint64_t)sign << f->signbit;
    bool inexact;
    if (exp >= emin) {
        uint64_t q = round_bits(sig, shift, sign, rm, &inexact);
        if (q >> f->p) {
            q >>= 1;
            exp++;
        }
        if (exp > emax) {
            *flags |= RV_FFLAG_OF | RV_FFLAG_NX;
            bool to_max = rm == RV_RTZ || (rm == RV_RDN && !sign) || (rm == RV_RUP && sign);
            if (to_max)
                return sbit |
                       ((((uint64_t)(2 * f->bias)) << (f->p - 1)) | ((1ull << (f->p - 1)) - 1));
            return pack_inf(sign, dbl);
        }
        if (inexact)
            *flags |= RV_FFLAG_NX;
        return sbit | ((uint64_t)(exp + f->bias) << (f->p - 1)) | (q & ((1ull << (f->p - 1)) - 1));
    }
    /* below the normal range: tininess after rounding (unbounded exponent) */
    uint64_t qu = round_bits(sig, shift, sign, rm, &inexact);
    bool tiny = !(exp == emin - 1 && (qu >> f->p));
    uint64_t s2 = shr_jam64(sig, (unsigned)(emin - exp));
    uint64_t q = round_bits(s2, shift, sign, rm, &inexact);
    if (inexact) {
        *flags |= RV_FFLAG_NX;
        if (tiny)
            *flags |= RV_FFLAG_UF;
    }
    return sbit | q; /* q == 2^(p-1) lands on the smallest normal exponent */
}

typedef unsigned __int128 u128;

static inline u128 shr_jam128(u128 v, unsigned s)
{
    if (!s)
        return v;
    if (s >= 128)
        return v != 0;
    return (v >> s) | ((v << (128 - s)) != 0);
}

static inline int clz128(u128 v)
{
    uint64_t hi = (uint64_t)(v >> 64);
    return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll((uint64_t)v);
}

/* value = R * 2^(X - 125), R < 2^127, R != 0 */
static uint64_t round_pack128(bool sign, int32_t X, u128 R, bool dbl, unsigned rm, uint32_t *flags)
{
    int lz = clz128(R);
    R <<= lz;
    uint64_t sig = (uint64_t)(R >> 64) | ((uint64_t)R != 0);
    return round_pack(sign, X + 2 - lz, sig, dbl, rm, flags);
}

/* sum of two nonzero finite terms R*2^(X-125) (R's MSB at or below 125) */
static uint64_t add_terms(bool sa, int32_t xa, u128 ra, bool sb, int32_t xb, u128 rb, bool dbl,
                          unsigned rm, uint32_t *flags)
{
    if (xa < xb || (xa == xb && ra < rb)) {
        bool ts = sa;
        sa = sb;
        sb = ts;
        int32_t tx = xa;
        xa = xb;
        xb = tx;
        u128 tr = ra;
        ra = rb;
        rb = tr;
    }
    int64_t d = (int64_t)xa - xb;
    rb = shr_jam128(rb, d > 200 ? 200 : (unsigned)d);
    u128 r = sa == sb ? ra + rb : ra - rb;
    if (!r)
        return pack_zero(rm == RV_RDN, dbl);
    return round_pack128(sa, xa, r, dbl, rm, flags);
}

static bool is_nan(const struct unp *u)
{
    return u->cls == C_QNAN || u->cls == C_SNAN;
}

static uint64_t soft_add(uint64_t a, uint64_t b, bool dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, dbl), y = unpack(b, dbl);
    if (is_nan(&x) || is_nan(&y)) {
        if (x.cls == C_SNAN || y.cls == C_SNAN)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_INF) {
        if (y.cls == C_INF && x.sign != y.sign) {
            *fl |= RV_FFLAG_NV;
            return canonical_nan(dbl);
        }
        return a;
    }
    if (y.cls == C_INF)
        return b;
    if (x.cls == C_ZERO && y.cls == C_ZERO)
        return pack_zero(x.sign == y.sign ? x.sign : rm == RV_RDN, dbl);
    if (x.cls == C_ZERO)
        return b;
    if (y.cls == C_ZERO)
        return a;
    return add_terms(x.sign, x.exp, (u128)x.sig << 62, y.sign, y.exp, (u128)y.sig << 62, dbl, rm,
                     fl);
}

static uint64_t soft_mul(uint64_t a, uint64_t b, bool dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, dbl), y = unpack(b, dbl);
    bool s = x.sign ^ y.sign;
    if (is_nan(&x) || is_nan(&y)) {
        if (x.cls == C_SNAN || y.cls == C_SNAN)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_INF || y.cls == C_INF) {
        if (x.cls == C_ZERO || y.cls == C_ZERO) {
            *fl |= RV_FFLAG_NV;
            return canonical_nan(dbl);
        }
        return pack_inf(s, dbl);
    }
    if (x.cls == C_ZERO || y.cls == C_ZERO)
        return pack_zero(s, dbl);
    u128 p = (u128)x.sig * y.sig;
    /* p's MSB is bit 126 or 127: value = p * 2^(ex + ey - 126) */
    return round_pack128(s, x.exp + y.exp + 1, p >> 2, dbl, rm, fl);
}

static uint64_t soft_div(uint64_t a, uint64_t b, bool dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, dbl), y = unpack(b, dbl);
    bool s = x.sign ^ y.sign;
    if (is_nan(&x) || is_nan(&y)) {
        if (x.cls == C_SNAN || y.cls == C_SNAN)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if ((x.cls == C_INF && y.cls == C_INF) || (x.cls == C_ZERO && y.cls == C_ZERO)) {
        *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_INF)
        return pack_inf(s, dbl);
    if (y.cls == C_INF || x.cls == C_ZERO)
        return pack_zero(s, dbl);
    if (y.cls == C_ZERO) {
        *fl |= RV_FFLAG_DZ;
        return pack_inf(s, dbl);
    }
    u128 n = (u128)x.sig << 64;
    u128 q = n / y.sig, r = n % y.sig;
    uint64_t sig;
    int32_t e;
    if (q >> 64) {
        sig = (uint64_t)(q >> 1) | (uint64_t)(q & 1) | (r != 0);
        e = x.exp - y.exp;
    } else {
        sig = (uint64_t)q | (r != 0);
        e = x.exp - y.exp - 1;
    }
    return round_pack(s, e, sig, dbl, rm, fl);
}

static uint64_t isqrt128(u128 m)
{
    uint64_t r = (uint64_t)sqrtl((long double)m);
    while ((u128)r * r > m)
        r--;
    while (r != UINT64_MAX && (u128)(r + 1) * (r + 1) <= m)
        r++;
    return r;
}

static uint64_t soft_sqrt(uint64_t a, bool dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, dbl);
    if (is_nan(&x)) {
        if (x.cls == C_SNAN)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_ZERO)
        return a;
    if (x.sign) {
        *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_INF)
        return a;
    int32_t t = x.exp - 63, t2;
    u128 m;
    if (t & 1) {
        m = (u128)x.sig << 63;
        t2 = t - 63;
    } else {
        m = (u128)x.sig << 64;
        t2 = t - 64;
    }
    uint64_t r = isqrt128(m);
    bool exact = (u128)r * r == m;
    return round_pack(false, t2 / 2 + 63, r | !exact, dbl, rm, fl);
}

static uint64_t soft_fma(uint64_t a, uint64_t b, uint64_t c, bool dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, dbl), y = unpack(b, dbl), z = unpack(c, dbl);
    bool ps = x.sign ^ y.sign;
    bool inf_zero = (x.cls == C_INF && y.cls == C_ZERO) || (x.cls == C_ZERO && y.cls == C_INF);
    if (is_nan(&x) || is_nan(&y) || is_nan(&z)) {
        if (x.cls == C_SNAN || y.cls == C_SNAN || z.cls == C_SNAN || inf_zero)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (inf_zero) {
        *fl |= RV_FFLAG_NV;
        return canonical_nan(dbl);
    }
    if (x.cls == C_INF || y.cls == C_INF) {
        if (z.cls == C_INF && z.sign != ps) {
            *fl |= RV_FFLAG_NV;
            return canonical_nan(dbl);
        }
        return pack_inf(ps, dbl);
    }
    if (z.cls == C_INF)
        return c;
    if (x.cls == C_ZERO || y.cls == C_ZERO) {
        if (z.cls == C_ZERO)
            return pack_zero(ps == z.sign ? ps : rm == RV_RDN, dbl);
        return c;
    }
    u128 p = (u128)x.sig * y.sig;
    int32_t xp = x.exp + y.exp + 1;
    u128 rp = p >> 2; /* exact: the product has at least 22 trailing zeros */
    if (!(p >> 127)) {
        xp--;
        rp = p >> 1;
    }
    if (z.cls == C_ZERO)
        return round_pack128(ps, xp, rp, dbl, rm, fl);
    return add_terms(ps, xp, rp, z.sign, z.exp, (u128)z.sig << 62, dbl, rm, fl);
}

static uint64_t soft_cvt(uint64_t a, bool from_dbl, unsigned rm, uint32_t *fl)
{
    struct unp x = unpack(a, from_dbl);
    bool to_dbl = !from_dbl;
    switch (x.cls) {
    case C_QNAN:
    case C_SNAN:
        if (x.cls == C_SNAN)
            *fl |= RV_FFLAG_NV;
        return canonical_nan(to_dbl);
    case C_INF:
        return pack_inf(x.sign, to_dbl);
    case C_ZERO:
        return pack_zero(x.sign, to_dbl);
    }
    return round_pack(x.sign, x.exp, x.sig, to_dbl, rm, fl);
}

/* ---------------------------------------------------------------- host */

static inline void mx_begin(unsigned rm)
{
    static const uint32_t rc[4] = {0, 3, 1, 2}; /* RNE RTZ RDN RUP -> x86 RC */
    uint32_t m = 0x1f80u | (rc[rm] << 13);
    __asm__ volatile("ldmxcsr %0" ::"m"(m));
}

/* Read the operation's flags. The host's own code only needs round-to-
 * nearest (it never inspects exception flags, and all exceptions stay
 * masked), so the default MXCSR is only restored after another rounding
 * mode: LDMXCSR is slow, and mx_begin() clears the flags anyway. */
static inline uint32_t mx_end(unsigned rm)
{
    uint32_t m, d = 0x1f80u;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    if (rm != RV_RNE)
        __asm__ volatile("ldmxcsr %0" ::"m"(d));
    uint32_t f = 0;
    if (m & 0x01)
        f |= RV_FFLAG_NV;
    if (m & 0x04)
        f |= RV_FFLAG_DZ;
    if (m & 0x08)
        f |= RV_FFLAG_OF;
    if (m & 0x10)
        f |= RV_FFLAG_UF;
    if (m & 0x20)
        f |= RV_FFLAG_NX;
    return f;
}

static bool host_has_fma(void)
{
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("fma") ? 1 : 0;
    }
    return v;
}

static bool bits_nan(uint64_t v, bool dbl)
{
    if (dbl)
        return (v & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
    return (v & 0x7fffffffu) > 0x7f800000u;
}

static uint64_t host_arith(enum rv_fop op, bool dbl, uint64_t a, uint64_t b, uint64_t c,
                           unsigned rm, uint32_t *flags)
{
    uint64_t r = 0;
    if (dbl) {
        double x, y, z;
        memcpy(&x, &a, 8);
        memcpy(&y, &b, 8);
        memcpy(&z, &c, 8);
        mx_begin(rm);
        switch (op) {
        case RV_FOP_ADD:
            __asm__ volatile("addsd %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_SUB:
            __asm__ volatile("subsd %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_MUL:
            __asm__ volatile("mulsd %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_DIV:
            __asm__ volatile("divsd %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_SQRT:
            __asm__ volatile("sqrtsd %0, %0" : "+x"(x));
            break;
        case RV_FOP_FMA:
            __asm__ volatile("vfmadd231sd %2, %1, %0" : "+x"(z) : "x"(x), "x"(y));
            x = z;
            break;
        case RV_FOP_CVT_SD: {
            float fr;
            __asm__ volatile("cvtsd2ss %1, %0" : "=x"(fr) : "x"(x));
            uint32_t fb;
            memcpy(&fb, &fr, 4);
            *flags |= mx_end(rm);
            return bits_nan(fb, false) ? RV_F32_CANONICAL_NAN : fb;
        }
        default:
            break;
        }
        *flags |= mx_end(rm);
        memcpy(&r, &x, 8);
    } else {
        float x, y, z;
        uint32_t a32 = (uint32_t)a, b32 = (uint32_t)b, c32 = (uint32_t)c, r32;
        memcpy(&x, &a32, 4);
        memcpy(&y, &b32, 4);
        memcpy(&z, &c32, 4);
        mx_begin(rm);
        switch (op) {
        case RV_FOP_ADD:
            __asm__ volatile("addss %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_SUB:
            __asm__ volatile("subss %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_MUL:
            __asm__ volatile("mulss %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_DIV:
            __asm__ volatile("divss %1, %0" : "+x"(x) : "x"(y));
            break;
        case RV_FOP_SQRT:
            __asm__ volatile("sqrtss %0, %0" : "+x"(x));
            break;
        case RV_FOP_FMA:
            __asm__ volatile("vfmadd231ss %2, %1, %0" : "+x"(z) : "x"(x), "x"(y));
            x = z;
            break;
        case RV_FOP_CVT_DS: {
            double dr;
            __asm__ volatile("cvtss2sd %1, %0" : "=x"(dr) : "x"(x));
            uint64_t db;
            memcpy(&db, &dr, 8);
            *flags |= mx_end(rm);
            return bits_nan(db, true) ? RV_F64_CANONICAL_NAN : db;
        }
        default:
            break;
        }
        *flags |= mx_end(rm);
        memcpy(&r32, &x, 4);
        r = r32;
    }
    if (bits_nan(r, dbl))
        r = canonical_nan(dbl);
    return r;
}

uint64_t rv_fp_arith(enum rv_fop op, bool dbl, uint64_t a, uint64_t b, uint64_t c, unsigned rm,
                     uint32_t *flags, bool soft)
{
    bool src_dbl = op == RV_FOP_CVT_DS ? false : dbl;
    if (op == RV_FOP_CVT_SD)
        src_dbl = true;
    if (!soft && rm < RV_RMM && !bits_nan(a, src_dbl) &&
        (op == RV_FOP_SQRT || op >= RV_FOP_CVT_SD || !bits_nan(b, dbl)) &&
        (op != RV_FOP_FMA || (!bits_nan(c, dbl) && host_has_fma())))
        return host_arith(op, src_dbl, a, b, c, rm, flags);
    uint64_t sign = dbl ? 1ull << 63 : 1ull << 31;
    switch (op) {
    case RV_FOP_ADD:
        return soft_add(a, b, dbl, rm, flags);
    case RV_FOP_SUB:
        return soft_add(a, b ^ sign, dbl, rm, flags);
    case RV_FOP_MUL:
        return soft_mul(a, b, dbl, rm, flags);
    case RV_FOP_DIV:
        return soft_div(a, b, dbl, rm, flags);
    case RV_FOP_SQRT:
        return soft_sqrt(a, dbl, rm, flags);
    case RV_FOP_FMA:
        return soft_fma(a, b, c, dbl, rm, flags);
    case RV_FOP_CVT_SD:
        return soft_cvt(a, true, rm, flags);
    case RV_FOP_CVT_DS:
        return soft_cvt(a, false, rm, flags);
    }
    return canonical_nan(dbl);
}

static double round_int(double v, unsigned rm)
{
    switch (rm) {
    case RV_RNE:
        return roundeven(v);
    case RV_RTZ:
        return trunc(v);
    case RV_RDN:
        return floor(v);
    case RV_RUP:
        return ceil(v);
    default:
        return round(v);
    }
}

uint64_t rv_fp_to_int(uint64_t a, bool dbl, unsigned kind, unsigned rm, uint32_t *flags)
{
    double v;
    if (dbl) {
        memcpy(&v, &a, 8);
    } else {
        uint32_t a32 = (uint32_t)a;
        float f;
        memcpy(&f, &a32, 4);
        v = f;
    }
    static const uint64_t nan_res[4] = {0x7fffffffull, UINT64_MAX, INT64_MAX, UINT64_MAX};
    if (isnan(v)) {
        *flags |= RV_FFLAG_NV;
        return nan_res[kind];
    }
    double r = round_int(v, rm);
    uint64_t out;
    switch (kind) {
    case 0:
        if (r < -2147483648.0 || r > 2147483647.0) {
            *flags |= RV_FFLAG_NV;
            return v < 0 ? (uint64_t)(int64_t)INT32_MIN : 0x7fffffffull;
        }
        out = (uint64_t)(int64_t)(int32_t)r;
        break;
    case 1:
        if (r < 0.0 || r > 4294967295.0) {
            *flags |= RV_FFLAG_NV;
            return v < 0 ? 0 : UINT64_MAX;
        }
        out = (uint64_t)(int64_t)(int32_t)(uint32_t)r;
        break;
    case 2:
        if (r < -9223372036854775808.0 || r >= 9223372036854775808.0) {
            *flags |= RV_FFLAG_NV;
            return v < 0 ? (uint64_t)INT64_MIN : (uint64_t)INT64_MAX;
        }
        out = (uint64_t)(int64_t)r;
        break;
    default:
        if (r < 0.0 || r >= 18446744073709551616.0) {
            *flags |= RV_FFLAG_NV;
            return v < 0 ? 0 : UINT64_MAX;
        }
        out = (uint64_t)r;
        break;
    }
    if (r != v)
        *flags |= RV_FFLAG_NX;
    return out;
}

uint64_t rv_fp_from_int(uint64_t v, bool dbl, unsigned kind, unsigned rm, uint32_t *flags)
{
    bool sign = false;
    uint64_t mag;
    switch (kind) {
    case 0: {
        int32_t s = (int32_t)v;
        sign = s < 0;
        mag = sign ? (uint64_t)(-(int64_t)s) : (uint64_t)s;
        break;
    }
    case 1:
        mag = (uint32_t)v;
        break;
    case 2:
        sign = (int64_t)v < 0;
        mag = sign ? -v : v;
        break;
    default:
        mag = v;
        break;
    }
    if (!mag)
        return 0;
    return round_pack(sign, 63, mag, dbl, rm, flags);
}

/* ---------------------------------------------------------------- exec */

static inline uint64_t rd_s(struct rv_hart *h, unsigned r)
{
    uint64_t v = h->f[r];
    return (v >> 32) == 0xffffffffu ? (uint32_t)v : RV_F32_CANONICAL_NAN;
}

static inline uint64_t rd_f(struct rv_hart *h, unsigned r, bool dbl)
{
    return dbl ? h->f[r] : rd_s(h, r);
}

static inline void wr_f(struct rv_hart *h, unsigned r, uint64_t v, bool dbl)
{
    h->f[r] = dbl ? v : (0xffffffff00000000ull | (uint32_t)v);
}

static unsigned fclass(uint64_t v, bool dbl)
{
    struct unp u = unpack(v, dbl);
    bool sub = false;
    if (u.cls == C_FINITE) {
        uint64_t e = dbl ? (v >> 52) & 0x7ff : (v >> 23) & 0xff;
        sub = e == 0;
    }
    switch (u.cls) {
    case C_INF:
        return u.sign ? 1u << 0 : 1u << 7;
    case C_ZERO:
        return u.sign ? 1u << 3 : 1u << 4;
    case C_SNAN:
        return 1u << 8;
    case C_QNAN:
        return 1u << 9;
    }
    if (sub)
        return u.sign ? 1u << 2 : 1u << 5;
    return u.sign ? 1u << 1 : 1u << 6;
}

/* a < b (lt) or a <= b on non-NaN bit patterns */
static bool fp_less(uint64_t a, uint64_t b, bool dbl, bool or_equal)
{
    uint64_t sm = dbl ? 1ull << 63 : 1ull << 31;
    bool sa = (a & sm) != 0, sb = (b & sm) != 0;
    uint64_t ma = a & (sm - 1), mb = b & (sm - 1);
    if (ma == 0 && mb == 0)
        return or_equal; /* +0 == -0 */
    if (sa != sb)
        return sa;
    if (a == b)
        return or_equal;
    return sa ? ma > mb : ma < mb;
}

static bool is_snan_bits(uint64_t v, bool dbl)
{
    if (!bits_nan(v, dbl))
        return false;
    return dbl ? !((v >> 51) & 1) : !((v >> 22) & 1);
}

bool rv_fpu_exec(struct rv_hart *h, uint32_t insn)
{
    if (!(h->mstatus & RV_MSTATUS_FS))
        return false;
    unsigned op = insn & 0x7f, rd = (insn >> 7) & 31, rs1 = (insn >> 15) & 31,
             rs2 = (insn >> 20) & 31, f3 = (insn >> 12) & 7;
    unsigned fmt = (insn >> 25) & 3;
    if (fmt > 1)
        return false;
    bool dbl = fmt == 1;
    unsigned rm = f3 == 7 ? h->frm : f3;
    uint32_t fl = 0;
    uint64_t sign = dbl ? 1ull << 63 : 1ull << 31;

    if (op != 0x53) { /* FMADD family */
        if (rm > 4)
            return false;
        uint64_t a = rd_f(h, rs1, dbl), b = rd_f(h, rs2, dbl), c = rd_f(h, insn >> 27, dbl);
        if (op == 0x47) /* fmsub */
            c ^= sign;
        else if (op == 0x4b) /* fnmsub */
            a ^= sign;
        else if (op == 0x4f) { /* fnmadd */
            a ^= sign;
            c ^= sign;
        }
        /* a sign flip must not turn a NaN operand into something else: NaNs
         * stay NaNs, and the canonical NaN result does not depend on signs */
        wr_f(h, rd, rv_fp_arith(RV_FOP_FMA, dbl, a, b, c, rm, &fl, false), dbl);
        goto done;
    }

    unsigned f7 = insn >> 25;
    switch (f7 >> 2) {
    case 0x00:   /* FADD */
    case 0x01:   /* FSUB */
    case 0x02:   /* FMUL */
    case 0x03:   /* FDIV */
    case 0x0b: { /* FSQRT */
        if (rm > 4)
            return false;
        static const enum rv_fop ops[] = {RV_FOP_ADD, RV_FOP_SUB, RV_FOP_MUL, RV_FOP_DIV};
        enum rv_fop o = (f7 >> 2) == 0x0b ? RV_FOP_SQRT : ops[f7 >> 2];
        if (o == RV_FOP_SQRT && rs2 != 0)
            return false;
        wr_f(h, rd, rv_fp_arith(o, dbl, rd_f(h, rs1, dbl), rd_f(h, rs2, dbl), 0, rm, &fl, false),
             dbl);
        break;
    }
    case 0x04: { /* FSGNJ */
        uint64_t a = rd_f(h, rs1, dbl), b = rd_f(h, rs2, dbl), r;
        if (f3 == 0)
            r = (a & ~sign) | (b & sign);
        else if (f3 == 1)
            r = (a & ~sign) | (~b & sign);
        else if (f3 == 2)
            r = a ^ (b & sign);
        else
            return false;
        wr_f(h, rd, r, dbl);
        break;
    }
    case 0x05: { /* FMIN/FMAX */
        if (f3 > 1)
            return false;
        uint64_t a = rd_f(h, rs1, dbl), b = rd_f(h, rs2, dbl), r;
        bool na = bits_nan(a, dbl), nb = bits_nan(b, dbl);
        if (is_snan_bits(a, dbl) || is_snan_bits(b, dbl))
            fl |= RV_FFLAG_NV;
        if (na && nb)
            r = canonical_nan(dbl);
        else if (na)
            r = b;
        else if (nb)
            r = a;
        else if (f3 == 0)
            r = fp_less(a, b, dbl, false) || (a == b) ? a : b;
        else
            r = fp_less(b, a, dbl, false) || (a == b) ? a : b;
        /* -0 vs +0: min picks -0, max picks +0 */
        if (!na && !nb && ((a | b) & ~sign) == 0)
            r = f3 == 0 ? (a | b) : (a & b);
        wr_f(h, rd, r, dbl);
        break;
    }
    case 0x08: /* FCVT.S.D / FCVT.D.S */
        if (rm > 4)
            return false;
        if (fmt == 0 && rs2 == 1)
            wr_f(h, rd, rv_fp_arith(RV_FOP_CVT_SD, false, h->f[rs1], 0, 0, rm, &fl, false), false);
        else if (fmt == 1 && rs2 == 0)
            wr_f(h, rd, rv_fp_arith(RV_FOP_CVT_DS, true, rd_s(h, rs1), 0, 0, rm, &fl, false), true);
        else
            return false;
        break;
    case 0x14: { /* FEQ/FLT/FLE */
        uint64_t a = rd_f(h, rs1, dbl), b = rd_f(h, rs2, dbl);
        bool na = bits_nan(a, dbl), nb = bits_nan(b, dbl), r;
        if (f3 == 2) {
            if (is_snan_bits(a, dbl) || is_snan_bits(b, dbl))
                fl |= RV_FFLAG_NV;
            r = !na && !nb && (a == b || ((a | b) & ~sign) == 0);
        } else if (f3 == 1 || f3 == 0) {
            if (na || nb) {
                fl |= RV_FFLAG_NV;
                r = false;
            } else {
                r = fp_less(a, b, dbl, f3 == 0);
            }
        } else {
            return false;
        }
        h->x[rd] = r;
        break;
    }
    case 0x18: /* FCVT.int.fmt */
        if (rm > 4 || rs2 > 3)
            return false;
        h->x[rd] = rv_fp_to_int(rd_f(h, rs1, dbl), dbl, rs2, rm, &fl);
        break;
    case 0x1a: /* FCVT.fmt.int */
        if (rm > 4 || rs2 > 3)
            return false;
        wr_f(h, rd, rv_fp_from_int(h->x[rs1], dbl, rs2, rm, &fl), dbl);
        break;
    case 0x1c: /* FMV.X / FCLASS */
        if (rs2 != 0)
            return false;
        if (f3 == 0)
            h->x[rd] = dbl ? h->f[rs1] : (uint64_t)(int64_t)(int32_t)h->f[rs1];
        else if (f3 == 1)
            h->x[rd] = fclass(rd_f(h, rs1, dbl), dbl);
        else
            return false;
        h->x[0] = 0;
        return true; /* no FP state written */
    case 0x1e:       /* FMV.W.X / FMV.D.X */
        if (rs2 != 0 || f3 != 0)
            return false;
        wr_f(h, rd, h->x[rs1], dbl);
        break;
    default:
        return false;
    }
done:
    h->x[0] = 0;
    h->fflags |= fl;
    h->mstatus |= RV_MSTATUS_FS;
    return true;
}
