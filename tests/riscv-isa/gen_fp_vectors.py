#!/usr/bin/env python3
"""Generate fp_vectors.h: IEEE-754 binary32/binary64 test vectors for the five
RISC-V rounding modes, computed with exact rational arithmetic (fractions) so
the reference is independent of any floating-point unit, including vessel's.
Flags follow RISC-V: NV DZ OF UF NX, tininess detected after rounding, a NaN
result is the canonical NaN.

    python3 gen_fp_vectors.py > fp_vectors.h
"""
import random
import struct
from fractions import Fraction
from math import isqrt

NX, UF, OF, DZ, NV = 1, 2, 4, 8, 16
RNE, RTZ, RDN, RUP, RMM = range(5)
OPS = ["add", "sub", "mul", "div", "sqrt", "fmadd", "cvt"]


class Fmt:
    def __init__(self, p, ebits):
        self.p, self.ebits = p, ebits
        self.bias = (1 << (ebits - 1)) - 1
        self.emin, self.emax = 1 - self.bias, self.bias
        self.width = p + ebits
        self.cnan = ((1 << ebits) - 1) << (p - 1) | 1 << (p - 2)

    def sign_bit(self):
        return 1 << (self.width - 1)


F32, F64 = Fmt(24, 8), Fmt(53, 11)


def classify(f, bits):
    e = (bits >> (f.p - 1)) & ((1 << f.ebits) - 1)
    frac = bits & ((1 << (f.p - 1)) - 1)
    sign = bits >> (f.width - 1)
    if e == (1 << f.ebits) - 1:
        if frac == 0:
            return "inf", sign, None
        return ("qnan" if frac >> (f.p - 2) else "snan"), sign, None
    if e == 0:
        val = Fraction(frac) * Fraction(2) ** (f.emin - f.p + 1)
    else:
        val = Fraction(frac | 1 << (f.p - 1)) * Fraction(2) ** (e - f.bias - f.p + 1)
    if val == 0:
        return "zero", sign, Fraction(0)
    return "fin", sign, -val if sign else val


def ilog2(x):
    """floor(log2(x)) for a positive Fraction"""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def pack(f, sign, n, q_exp):
    """sign, integer significand n, value n * 2^q_exp (already rounded)"""
    s = sign << (f.width - 1)
    if n == 0:
        return s
    v = Fraction(n) * Fraction(2) ** q_exp
    if v < Fraction(2) ** f.emin:
        return s | int(v / Fraction(2) ** (f.emin - f.p + 1))
    e = ilog2(v)
    frac = int(v / Fraction(2) ** (e - f.p + 1)) - (1 << (f.p - 1))
    return s | (e + f.bias) << (f.p - 1) | frac


def round_inc(rm, sign, n, cmp_half, exact):
    if exact:
        return False
    if rm == RNE:
        return cmp_half > 0 or (cmp_half == 0 and n & 1)
    if rm == RTZ:
        return False
    if rm == RDN:
        return sign == 1
    if rm == RUP:
        return sign == 0
    return cmp_half >= 0


def round_value(f, sign, m, rm, sqrt_of=None):
    """Round |x| = m (Fraction > 0), or sqrt(sqrt_of), to format f. -> (bits, flags)"""
    if sqrt_of is not None:
        a = sqrt_of
        e = ilog2(a) // 2  # 2^e <= sqrt(a) < 2^(e+1)
    else:
        e = ilog2(m)

    def at(quantum_exp):
        qn = Fraction(2) ** quantum_exp
        if sqrt_of is not None:
            t = sqrt_of / (qn * qn)  # q^2
            n = isqrt(t.numerator // t.denominator)
            exact = Fraction(n * n) == t
            h = (Fraction(2 * n + 1, 2)) ** 2
            cmp = (t > h) - (t < h)
        else:
            q = m / qn
            n = q.numerator // q.denominator
            rem = q - n
            exact = rem == 0
            cmp = (rem > Fraction(1, 2)) - (rem < Fraction(1, 2))
        return n, cmp, exact

    flags = 0
    # unbounded-exponent rounding decides overflow and tininess
    n, cmp, exact = at(e - f.p + 1)
    nu = n + round_inc(rm, sign, n, cmp, exact)
    vu = Fraction(nu) * Fraction(2) ** (e - f.p + 1)
    if vu >= Fraction(2) ** (f.emax + 1):
        flags |= OF | NX
        to_max = rm == RTZ or (rm == RDN and not sign) or (rm == RUP and sign)
        if to_max:
            return (sign << (f.width - 1)) | ((2 * f.bias) << (f.p - 1)) | ((1 << (f.p - 1)) - 1), flags
        return (sign << (f.width - 1)) | (((1 << f.ebits) - 1) << (f.p - 1)), flags
    tiny = vu < Fraction(2) ** f.emin
    if e < f.emin:
        qe = f.emin - f.p + 1
        n, cmp, exact = at(qe)
    else:
        qe = e - f.p + 1
    n2 = n + round_inc(rm, sign, n, cmp, exact)
    if not exact:
        flags |= NX
        if tiny:
            flags |= UF
    return pack(f, sign, n2, qe), flags


def result_of_value(f, x, rm, zero_sign):
    if x == 0:
        return zero_sign << (f.width - 1), 0
    return round_value(f, 1 if x < 0 else 0, abs(x), rm)


def ref(op, f, a, b, c, rm):
    """-> (result bits, flags) of op on raw bits a, b, c in format f"""
    if op == "cvt":  # f is the source format; the other is the destination
        g = F32 if f is F64 else F64
        ca, sa, va = classify(f, a)
        if ca in ("qnan", "snan"):
            return g.cnan, NV if ca == "snan" else 0
        if ca == "inf":
            return (sa << (g.width - 1)) | (((1 << g.ebits) - 1) << (g.p - 1)), 0
        if ca == "zero":
            return sa << (g.width - 1), 0
        return round_value(g, sa, abs(va), rm)
    ca, sa, va = classify(f, a)
    cb, sb, vb = classify(f, b)
    cc, sc, vc = classify(f, c)
    nans = [k for k in ((ca, cb) if op != "sqrt" else (ca,))]
    if op == "fmadd":
        nans.append(cc)
    inf = (((1 << f.ebits) - 1) << (f.p - 1))
    if op == "fmadd" and ((ca == "inf" and cb == "zero") or (ca == "zero" and cb == "inf")):
        return f.cnan, NV
    if any(k in ("qnan", "snan") for k in nans):
        return f.cnan, NV if "snan" in nans else 0
    if op in ("add", "sub"):
        if op == "sub":
            sb ^= 1
            vb = -vb if vb is not None else None
        if ca == "inf" and cb == "inf":
            if sa != sb:
                return f.cnan, NV
            return (sa << (f.width - 1)) | inf, 0
        if ca == "inf":
            return (sa << (f.width - 1)) | inf, 0
        if cb == "inf":
            return (sb << (f.width - 1)) | inf, 0
        s = va + vb
        if s == 0:
            zs = sa if (ca == "zero" and cb == "zero" and sa == sb) else (1 if rm == RDN else 0)
            if ca == "zero" and cb == "zero" and sa == sb:
                zs = sa
            return zs << (f.width - 1), 0
        return result_of_value(f, s, rm, 0)
    if op == "mul":
        s = sa ^ sb
        if ca == "inf" or cb == "inf":
            if ca == "zero" or cb == "zero":
                return f.cnan, NV
            return (s << (f.width - 1)) | inf, 0
        if ca == "zero" or cb == "zero":
            return s << (f.width - 1), 0
        return result_of_value(f, va * vb, rm, s)
    if op == "div":
        s = sa ^ sb
        if (ca == "inf" and cb == "inf") or (ca == "zero" and cb == "zero"):
            return f.cnan, NV
        if ca == "inf":
            return (s << (f.width - 1)) | inf, 0
        if cb == "inf" or ca == "zero":
            return s << (f.width - 1), 0
        if cb == "zero":
            return (s << (f.width - 1)) | inf, DZ
        return result_of_value(f, va / vb, rm, s)
    if op == "sqrt":
        if ca == "zero":
            return a, 0
        if sa:
            return f.cnan, NV
        if ca == "inf":
            return a, 0
        return round_value(f, 0, None, rm, sqrt_of=va)
    if op == "fmadd":
        ps = sa ^ sb
        if ca == "inf" or cb == "inf":
            if cc == "inf" and sc != ps:
                return f.cnan, NV
            return (ps << (f.width - 1)) | inf, 0
        if cc == "inf":
            return (sc << (f.width - 1)) | inf, 0
        p = va * vb
        s = p + vc
        if s == 0:
            pzero = ca == "zero" or cb == "zero"
            if pzero and cc == "zero":
                zs = ps if ps == sc else (1 if rm == RDN else 0)
            else:
                zs = 1 if rm == RDN else 0
            return zs << (f.width - 1), 0
        return result_of_value(f, s, rm, 0)
    raise ValueError(op)


def specials(f):
    p, eb = f.p, f.ebits
    one = f.bias << (p - 1)
    maxe = (1 << eb) - 1
    sb = f.sign_bit()
    v = [0, sb, one, one | sb, one + 1, one - 1, (one + (1 << (p - 1))),  # 2.0
         (maxe << (p - 1)), (maxe << (p - 1)) | sb,  # inf
         f.cnan, f.cnan | sb, (maxe << (p - 1)) | 1,  # qnan, snan
         ((maxe - 1) << (p - 1)) | ((1 << (p - 1)) - 1),  # max
         1 << (p - 1), (1 << (p - 1)) | sb,  # min normal
         1, (1 << (p - 1)) - 1, 1 | sb,  # subnormals
         (1 << (p - 1)) + (1 << (p - 2)),  # 1.5 * min normal
         (f.bias + 1) << (p - 1) | (1 << (p - 2)),  # 3.0
         ]
    return v


def rand_bits(f, rng):
    kind = rng.random()
    if kind < 0.15:  # near the subnormal boundary
        e = rng.randint(0, 3)
    elif kind < 0.3:  # near overflow
        e = rng.randint((1 << f.ebits) - 5, (1 << f.ebits) - 2)
    else:
        e = rng.randint(f.bias - 30, f.bias + 30)
    frac = rng.getrandbits(f.p - 1)
    if rng.random() < 0.3:  # short significands make exact results and ties
        frac &= ~((1 << (f.p - 1 - rng.randint(1, 8))) - 1)
    return (rng.getrandbits(1) << (f.width - 1)) | (e << (f.p - 1)) | frac


def ties(f):
    """operand pairs whose exact sum lands halfway between two neighbours"""
    one = f.bias << (f.p - 1)
    half_ulp = (f.bias - f.p) << (f.p - 1)  # 2^-p
    three_halves_ulp = half_ulp | (1 << (f.p - 2))
    return [(one, half_ulp), (one + 1, half_ulp), (one | f.sign_bit(), half_ulp | f.sign_bit()),
            (one, three_halves_ulp), (1, 1 << (f.p - 1))]


def main():
    rng = random.Random(20261124)
    out = []
    for f, fname in ((F32, 0), (F64, 1)):
        sp = specials(f)
        pairs = [(a, b) for a in sp for b in sp]
        rng.shuffle(pairs)
        pairs = pairs[:100] + ties(f) + [(rand_bits(f, rng), rand_bits(f, rng)) for _ in range(80)]
        for op in OPS:
            for rm in range(5):
                for (a, b) in pairs if op not in ("sqrt", "cvt") else [(x, 0) for x in sp] + [
                        (rand_bits(f, rng) & ~f.sign_bit(), 0) for _ in range(40)]:
                    c = 0
                    if op == "fmadd":
                        c = rng.choice(sp) if rng.random() < 0.5 else rand_bits(f, rng)
                    if op == "cvt" and f is F32 and rm:
                        continue  # widening is exact: one mode is enough
                    r, fl = ref(op, f, a, b, c, rm)
                    out.append((OPS.index(op), fname, rm, fl, a, b, c, r))
    print("/* Generated by gen_fp_vectors.py (exact rational reference); do not edit. */")
    print("// clang-format off")
    print("#ifndef FP_VECTORS_H\n#define FP_VECTORS_H\n#include <stdint.h>")
    print("enum fpv_op { FPV_ADD, FPV_SUB, FPV_MUL, FPV_DIV, FPV_SQRT, FPV_FMADD, FPV_CVT };")
    print("struct fp_vector {\n    uint8_t op, dbl, rm, flags;\n    uint64_t a, b, c, r;\n};")
    print(f"#define FP_VECTOR_COUNT {len(out)}")
    print("static const struct fp_vector fp_vectors[FP_VECTOR_COUNT] = {")
    for v in out:
        print("    {%d, %d, %d, %d, 0x%x, 0x%x, 0x%x, 0x%x}," % v)
    print("};\n// clang-format on\n#endif")


if __name__ == "__main__":
    main()
