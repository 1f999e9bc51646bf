/* Zba, Zbb, Zbs. */
#include "ops.h"
#include "rt.h"

int main(void)
{
    CHECK_EQ(OP_RR("sh1add", 3, 100), 106);
    CHECK_EQ(OP_RR("sh2add", 3, 100), 112);
    CHECK_EQ(OP_RR("sh3add", 3, 100), 124);
    CHECK_EQ(OP_RR("add.uw", 0xffffffff00000001ull, 1), 2);
    CHECK_EQ(OP_RR("sh1add.uw", 0x1000000003ull, 1), 7);
    CHECK_EQ(OP_RR("sh2add.uw", 0x1000000003ull, 1), 13);
    CHECK_EQ(OP_RR("sh3add.uw", 0x1000000003ull, 1), 25);
    CHECK_EQ(OP_RI("slli.uw", 0xffffffff80000000ull, 4), 0x800000000ull);
    CHECK_EQ(OP_RR("andn", 0xff, 0x0f), 0xf0);
    CHECK_EQ(OP_RR("orn", 0, -2), 1);
    CHECK_EQ(OP_RR("xnor", 5, 3), ~6ull);
    CHECK_EQ(OP_R("clz", 1), 63);
    CHECK_EQ(OP_R("clz", 0), 64);
    CHECK_EQ(OP_R("ctz", 0x100), 8);
    CHECK_EQ(OP_R("ctz", 0), 64);
    CHECK_EQ(OP_R("cpop", 0xf0f0), 8);
    CHECK_EQ(OP_R("clzw", 1), 31);
    CHECK_EQ(OP_R("clzw", 0xffffffff00000000ull), 32);
    CHECK_EQ(OP_R("ctzw", 0), 32);
    CHECK_EQ(OP_R("cpopw", 0xffffffff0000000full), 4);
    CHECK_EQ(OP_RR("max", -1, 1), 1);
    CHECK_EQ(OP_RR("maxu", -1, 1), -1);
    CHECK_EQ(OP_RR("min", -1, 1), -1);
    CHECK_EQ(OP_RR("minu", -1, 1), 1);
    CHECK_EQ(OP_R("sext.b", 0x80), -128);
    CHECK_EQ(OP_R("sext.h", 0x8000), -32768);
    CHECK_EQ(OP_R("zext.h", -1), 0xffff);
    CHECK_EQ(OP_RR("rol", 0x8000000000000001ull, 1), 3);
    CHECK_EQ(OP_RR("ror", 3, 1), 0x8000000000000001ull);
    CHECK_EQ(OP_RI("rori", 0xf, 4), 0xf000000000000000ull);
    CHECK_EQ(OP_RR("rolw", 0x80000001, 1), 3);
    CHECK_EQ(OP_RR("rorw", 1, 1), 0xffffffff80000000ull);
    CHECK_EQ(OP_RI("roriw", 0x10, 4), 1);
    CHECK_EQ(OP_R("orc.b", 0x0100200000000003ull), 0xff00ff00000000ffull);
    CHECK_EQ(OP_R("rev8", 0x0102030405060708ull), 0x0807060504030201ull);
    CHECK_EQ(OP_RR("bset", 0, 63), 1ull << 63);
    CHECK_EQ(OP_RR("bclr", -1, 0), -2);
    CHECK_EQ(OP_RR("binv", 4, 2), 0);
    CHECK_EQ(OP_RR("bext", 4, 2), 1);
    CHECK_EQ(OP_RI("bseti", 0, 40), 1ull << 40);
    CHECK_EQ(OP_RI("bclri", -1, 63), 0x7fffffffffffffffull);
    CHECK_EQ(OP_RI("binvi", 0, 1), 2);
    CHECK_EQ(OP_RI("bexti", 0x80, 7), 1);
    return 0;
}
