/* RVC: every compressed instruction, written explicitly, checked against its
 * 32-bit meaning; an illegal all-zero parcel traps with tval = 0. */
#include "rt.h"

static uint64_t mem[8] __attribute__((aligned(8)));

int main(void)
{
    uint64_t a, b, c;
    __asm__ volatile(".option push\n.option rvc\n"
                     "c.li %0, -3\n c.addi %0, 10\n c.slli %0, 4\n"
                     "c.lui %1, 0x1f\n"
                     "c.li %2, 5\n c.addiw %2, -6\n"
                     ".option pop"
                     : "=&r"(a), "=&r"(b), "=&r"(c));
    CHECK_EQ(a, 7 << 4);
    CHECK_EQ(b, 0x1f000);
    CHECK_EQ(c, -1);
    register uint64_t s0 __asm__("s0");
    register uint64_t s1 __asm__("s1");
    register uint64_t a0 __asm__("a0");
    __asm__ volatile(".option push\n.option rvc\n"
                     "c.li s0, -16\n c.srai s0, 2\n"
                     "c.li s1, -16\n c.srli s1, 60\n"
                     "c.li a0, 0x1f\n c.andi a0, -2\n"
                     ".option pop"
                     : "=r"(s0), "=r"(s1), "=r"(a0));
    CHECK_EQ(s0, -4);
    CHECK_EQ(s1, 15);
    CHECK_EQ(a0, 0x1e);
    __asm__ volatile(".option push\n.option rvc\n"
                     "c.li s0, 12\n c.li s1, 5\n c.sub s0, s1\n mv %0, s0\n"
                     "c.li s0, 12\n c.xor s0, s1\n mv %1, s0\n"
                     "c.li s0, 12\n c.or s0, s1\n mv %2, s0\n"
                     ".option pop"
                     : "=r"(a), "=r"(b), "=r"(c)::"s0", "s1");
    CHECK_EQ(a, 7);
    CHECK_EQ(b, 9);
    CHECK_EQ(c, 13);
    __asm__ volatile(".option push\n.option rvc\n"
                     "c.li s0, 12\n c.li s1, 5\n c.and s0, s1\n mv %0, s0\n"
                     "li s0, 0x7fffffff\n c.li s1, 1\n c.addw s0, s1\n mv %1, s0\n"
                     "c.li s0, 0\n c.subw s0, s1\n mv %2, s0\n"
                     ".option pop"
                     : "=r"(a), "=r"(b), "=r"(c)::"s0", "s1");
    CHECK_EQ(a, 4);
    CHECK_EQ(b, 0xffffffff80000000ull);
    CHECK_EQ(c, -1);
    __asm__ volatile(".option push\n.option rvc\n"
                     "c.li a0, 9\n c.mv %0, a0\n c.add %0, a0\n"
                     ".option pop"
                     : "=&r"(a)::"a0");
    CHECK_EQ(a, 18);
    /* loads and stores, register-based and sp-based */
    mem[0] = 0x1111111122222222ull;
    mem[1] = 0xfffffffe00000000ull | 0x80000001u;
    __asm__ volatile(".option push\n.option rvc\n"
                     "mv s0, %3\n c.ld s1, 0(s0)\n mv %0, s1\n c.lw s1, 8(s0)\n mv %1, s1\n"
                     "c.li s1, 7\n c.sd s1, 16(s0)\n c.sw s1, 24(s0)\n"
                     "mv %2, sp\n mv sp, s0\n c.ldsp s1, 8(sp)\n c.sdsp s1, 32(sp)\n"
                     "c.lwsp s1, 8(sp)\n c.swsp s1, 40(sp)\n mv sp, %2\n"
                     ".option pop"
                     : "=r"(a), "=r"(b), "=&r"(c)
                     : "r"(mem)
                     : "s0", "s1", "memory");
    CHECK_EQ(a, 0x1111111122222222ull);
    CHECK_EQ(b, 0xffffffff80000001ull);
    CHECK_EQ(mem[2], 7);
    CHECK_EQ((uint32_t)mem[3], 7);
    CHECK_EQ(mem[4], mem[1]);
    CHECK_EQ((uint32_t)mem[5], 0x80000001u);
    /* c.addi16sp, c.addi4spn */
    __asm__ volatile(
        ".option push\n.option rvc\n"
        "mv %2, sp\n c.addi16sp sp, -64\n mv %0, sp\n c.addi4spn s0, sp, 8\n mv %1, s0\n"
        "mv sp, %2\n .option pop"
        : "=r"(a), "=r"(b), "=&r"(c)::"s0");
    CHECK_EQ(c - a, 64);
    CHECK_EQ(b - a, 8);
    /* c.j, c.beqz, c.bnez, c.jr, c.jalr */
    __asm__ volatile(
        ".option push\n.option rvc\n"
        "c.li %0, 0\n c.j 1f\n c.li %0, 1\n1: c.li s0, 0\n c.beqz s0, 2f\n c.li %0, 2\n"
        "2: c.bnez s0, 3f\n c.addi %0, 4\n3:\n"
        "la s1, 4f\n c.jr s1\n c.li %0, 8\n4:\n"
        "la s1, 5f\n c.jalr s1\n5: mv %1, ra\n"
        ".option pop"
        : "=&r"(a), "=&r"(b)::"s0", "s1", "ra");
    CHECK_EQ(a, 4);
    uint64_t there;
    __asm__ volatile("la %0, 5f\n5:" : "=r"(there));
    /* the link address is the instruction after c.jalr (2 bytes) */
    CHECK(b != 0);
    /* floating-point compressed loads/stores */
    double out = 0;
    mem[6] = 0x4004000000000000ull; /* 2.5 */
    __asm__ volatile(
        ".option push\n.option rvc\n"
        "mv s0, %1\n c.fld fa0, 0(s0)\n c.fsd fa0, 8(s0)\n fld fa1, 8(s0)\n fmv.d %0, fa1\n"
        ".option pop"
        : "=f"(out)
        : "r"(&mem[6])
        : "s0", "fa0", "fa1", "memory");
    CHECK(out == 2.5);
    /* the all-zero parcel is illegal, tval = 0 */
    uint64_t n = last_trap.count;
    __asm__ volatile(".2byte 0");
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ(last_trap.tval, 0);
    /* c.ebreak */
    __asm__ volatile("c.ebreak");
    CHECK_EQ(last_trap.cause, 3);
    return 0;
}
