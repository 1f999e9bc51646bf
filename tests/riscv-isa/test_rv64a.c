/* RV64A: LR/SC (success, failure without/after a reservation), every AMO
 * in W and D forms, misaligned AMO traps. */
#include "rt.h"

static volatile uint64_t d __attribute__((aligned(8)));
static volatile uint32_t w[2] __attribute__((aligned(8)));

#define AMO(insn, addr, src)                                                                       \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile(insn " %0, %2, (%1)"                                                      \
                         : "=r"(r_)                                                                \
                         : "r"(addr), "r"((uint64_t)(src))                                         \
                         : "memory");                                                              \
        r_;                                                                                        \
    })

int main(void)
{
    uint64_t r, sc;
    d = 5;
    __asm__ volatile("lr.d %0, (%2)\n sc.d %1, %3, (%2)"
                     : "=&r"(r), "=&r"(sc)
                     : "r"(&d), "r"(9ull)
                     : "memory");
    CHECK_EQ(r, 5);
    CHECK_EQ(sc, 0);
    CHECK_EQ(d, 9);
    /* SC without a reservation fails and does not write */
    __asm__ volatile("sc.d %0, %2, (%1)" : "=&r"(sc) : "r"(&d), "r"(1ull) : "memory");
    CHECK_EQ(sc, 1);
    CHECK_EQ(d, 9);
    /* reservation broken by a different value stored in between */
    __asm__ volatile("lr.d %0, (%2)\n sd %4, 0(%2)\n sc.d %1, %3, (%2)"
                     : "=&r"(r), "=&r"(sc)
                     : "r"(&d), "r"(1ull), "r"(77ull)
                     : "memory");
    CHECK_EQ(sc, 1);
    CHECK_EQ(d, 77);
    /* SC to another address than the reservation fails */
    w[0] = 3;
    __asm__ volatile("lr.w %0, (%2)\n sc.w %1, %3, (%4)"
                     : "=&r"(r), "=&r"(sc)
                     : "r"(&w[0]), "r"(1ull), "r"(&w[1])
                     : "memory");
    CHECK_EQ(sc, 1);
    w[0] = 0xfffffffe;
    __asm__ volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)"
                     : "=&r"(r), "=&r"(sc)
                     : "r"(&w[0]), "r"(4ull)
                     : "memory");
    CHECK_EQ(r, 0xfffffffffffffffeull); /* lr.w sign-extends */
    CHECK_EQ(sc, 0);
    CHECK_EQ(w[0], 4);

    d = 10;
    CHECK_EQ(AMO("amoswap.d", &d, 20), 10);
    CHECK_EQ(AMO("amoadd.d", &d, 5), 20);
    CHECK_EQ(AMO("amoxor.d", &d, 0xff), 25);
    CHECK_EQ(d, 25 ^ 0xff);
    d = 0xf0;
    CHECK_EQ(AMO("amoand.d", &d, 0x3c), 0xf0);
    CHECK_EQ(AMO("amoor.d", &d, 0x1), 0x30);
    CHECK_EQ(d, 0x31);
    d = -5;
    CHECK_EQ(AMO("amomin.d", &d, 3), -5);
    CHECK_EQ(d, -5);
    CHECK_EQ(AMO("amomax.d", &d, 3), -5);
    CHECK_EQ(d, 3);
    CHECK_EQ(AMO("amominu.d", &d, -1), 3);
    CHECK_EQ(d, 3);
    CHECK_EQ(AMO("amomaxu.d", &d, -1), 3);
    CHECK_EQ(d, -1);

    w[0] = 0x7fffffff;
    w[1] = 0xaaaaaaaa;
    CHECK_EQ(AMO("amoadd.w", &w[0], 1), 0x7fffffff);
    CHECK_EQ(w[0], 0x80000000);
    CHECK_EQ(w[1], 0xaaaaaaaa); /* the neighbour is untouched */
    CHECK_EQ(AMO("amoswap.w", &w[0], 7), 0xffffffff80000000ull);
    CHECK_EQ(AMO("amomin.w", &w[0], -2), 7);
    CHECK_EQ(w[0], 0xfffffffe);
    CHECK_EQ(AMO("amomaxu.w", &w[0], 1), 0xfffffffffffffffeull);
    CHECK_EQ(w[0], 0xfffffffe);
    CHECK_EQ(AMO("amominu.w", &w[0], 1), 0xfffffffffffffffeull);
    CHECK_EQ(w[0], 1);
    CHECK_EQ(AMO("amomax.w", &w[0], -1), 1);
    CHECK_EQ(w[0], 1);
    CHECK_EQ(AMO("amoxor.w", &w[0], 3), 1);
    CHECK_EQ(AMO("amoor.w", &w[0], 8), 2);
    CHECK_EQ(AMO("amoand.w", &w[0], 0xc), 10);
    CHECK_EQ(w[0], 8);

    /* misaligned AMO: store/AMO address misaligned (6), tval = address */
    uint64_t n = last_trap.count;
    AMO("amoadd.d", (volatile char *)&d + 4, 1);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 6);
    CHECK_EQ(last_trap.tval, (uint64_t)&d + 4);
    /* misaligned LR: load address misaligned (4) */
    __asm__ volatile("lr.w %0, (%1)" : "=r"(r) : "r"((volatile char *)&w[0] + 2) : "memory");
    CHECK_EQ(last_trap.cause, 4);
    return 0;
}
