/* RV64I: ALU, shifts, compares, LUI/AUIPC, branches, jumps, loads/stores of
 * every width with sign/zero extension, misaligned accesses, FENCE. */
#include "ops.h"
#include "rt.h"

static volatile uint8_t buf[64] __attribute__((aligned(16)));

static int branch(uint64_t a, uint64_t b)
{
    int r = 0;
    uint64_t t;
#define BR(insn, bit)                                                                              \
    __asm__ volatile("li %0, 0\n" insn " %1, %2, 1f\n li %0, 1\n1:" : "=&r"(t) : "r"(a), "r"(b));  \
    r |= (int)(!t) << bit;
    BR("beq", 0)
    BR("bne", 1)
    BR("blt", 2)
    BR("bge", 3)
    BR("bltu", 4)
    BR("bgeu", 5)
    return r;
}

int main(void)
{
    CHECK_EQ(OP_RR("add", 5, -7), -2);
    CHECK_EQ(OP_RR("sub", 5, 7), -2);
    CHECK_EQ(OP_RR("addw", 0x7fffffff, 1), 0xffffffff80000000);
    CHECK_EQ(OP_RR("subw", 0, 0x80000000), 0xffffffff80000000);
    CHECK_EQ(OP_RI("addi", 10, -11), -1);
    CHECK_EQ(OP_RI("addiw", 0xffffffff, 1), 0);
    CHECK_EQ(OP_RR("sll", 1, 63), 1ull << 63);
    CHECK_EQ(OP_RR("sll", 1, 64 + 3), 8); /* shift amount mod 64 */
    CHECK_EQ(OP_RR("srl", 1ull << 63, 63), 1);
    CHECK_EQ(OP_RR("sra", 1ull << 63, 63), -1);
    CHECK_EQ(OP_RR("sllw", 1, 31), 0xffffffff80000000);
    CHECK_EQ(OP_RR("srlw", 0x80000000, 31), 1);
    CHECK_EQ(OP_RR("sraw", 0x80000000, 31), -1);
    CHECK_EQ(OP_RR("srlw", 0xffffffff00000010, 4), 1);
    CHECK_EQ(OP_RI("slli", 3, 62), 0xc000000000000000);
    CHECK_EQ(OP_RI("srli", -1, 60), 15);
    CHECK_EQ(OP_RI("srai", 0x8000000000000000, 4), 0xf800000000000000);
    CHECK_EQ(OP_RI("slliw", 3, 31), 0xffffffff80000000);
    CHECK_EQ(OP_RI("srliw", 0xffffffff, 28), 15);
    CHECK_EQ(OP_RI("sraiw", 0x80000000, 4), 0xfffffffff8000000);
    CHECK_EQ(OP_RR("slt", -1, 0), 1);
    CHECK_EQ(OP_RR("sltu", -1, 0), 0);
    CHECK_EQ(OP_RI("slti", -5, -4), 1);
    CHECK_EQ(OP_RI("sltiu", 5, -1), 1); /* immediate sign-extended, compared unsigned */
    CHECK_EQ(OP_RR("xor", 0xff00, 0x0ff0), 0xf0f0);
    CHECK_EQ(OP_RR("or", 0xff00, 0x0ff0), 0xfff0);
    CHECK_EQ(OP_RR("and", 0xff00, 0x0ff0), 0x0f00);
    CHECK_EQ(OP_RI("xori", 0, -1), -1);
    CHECK_EQ(OP_RI("ori", 0x100, 0x0ff), 0x1ff);
    CHECK_EQ(OP_RI("andi", -1, 0x7ff), 0x7ff);

    uint64_t v;
    __asm__ volatile("lui %0, 0x80000" : "=r"(v));
    CHECK_EQ(v, 0xffffffff80000000);
    uint64_t pc1, pc2;
    __asm__ volatile("auipc %0, 0\n auipc %1, 1" : "=r"(pc1), "=r"(pc2));
    CHECK_EQ(pc2 - pc1, 0x1000 + 4);

    CHECK_EQ(branch(1, 1), 0x01 | 0x08 | 0x20);
    CHECK_EQ(branch(-1, 1), 0x02 | 0x04 | 0x20);
    CHECK_EQ(branch(1, -1), 0x02 | 0x08 | 0x10);

    /* jal / jalr link addresses */
    uint64_t link, target;
    __asm__ volatile("la %1, 1f\n jalr %0, 0(%1)\n 1:" : "=r"(link), "=r"(target));
    CHECK_EQ(link, target);
    __asm__ volatile("jal %0, 1f\n nop\n 1:" : "=r"(link));
    __asm__ volatile("auipc %0, 0" : "=r"(target));
    CHECK(link < target && target - link <= 16);
    /* jalr clears bit 0 of the target */
    __asm__ volatile("la %1, 1f\n addi %1, %1, 1\n jalr %0, 0(%1)\n nop\n 1:"
                     : "=r"(link), "=r"(target));

    /* loads and stores */
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)(0x80 + i);
    volatile uint64_t *p = (volatile uint64_t *)buf;
    CHECK_EQ(*(volatile int8_t *)buf, (int8_t)0x80);
    CHECK_EQ(*(volatile uint8_t *)buf, 0x80);
    CHECK_EQ(*(volatile int16_t *)buf, (int16_t)0x8180);
    CHECK_EQ(*(volatile uint16_t *)buf, 0x8180);
    CHECK_EQ(*(volatile int32_t *)buf, (int32_t)0x83828180);
    CHECK_EQ(*(volatile uint32_t *)buf, 0x83828180);
    CHECK_EQ(p[0], 0x8786858483828180);
    __asm__ volatile("lw %0, 1(%1)" : "=r"(v) : "r"(buf)); /* misaligned: handled */
    CHECK_EQ(v, (uint64_t)(int64_t)(int32_t)0x84838281);
    __asm__ volatile("ld %0, 3(%1)" : "=r"(v) : "r"(buf));
    CHECK_EQ(v, 0x8a89888786858483);
    __asm__ volatile("sd %0, 5(%1)" ::"r"(0x1122334455667788ull), "r"(buf) : "memory");
    CHECK_EQ(buf[5], 0x88);
    CHECK_EQ(buf[12], 0x11);
    __asm__ volatile("sb %0, 0(%1)\n sh %0, 2(%1)\n sw %0, 8(%1)" ::"r"(0xdeadbeefcafef00dull),
                     "r"(buf)
                     : "memory");
    CHECK_EQ(buf[0], 0x0d);
    CHECK_EQ(*(volatile uint16_t *)(buf + 2), 0xf00d);
    CHECK_EQ(*(volatile uint32_t *)(buf + 8), 0xcafef00d);
    __asm__ volatile("fence\n fence rw, rw\n fence.i" ::: "memory");
    /* x0 stays zero */
    __asm__ volatile("li x0, 5\n mv %0, x0" : "=r"(v));
    CHECK_EQ(v, 0);
    return 0;
}
