/* RV64M including the division corner cases (by zero, overflow). */
#include "ops.h"
#include "rt.h"

#define MIN64 0x8000000000000000ull

int main(void)
{
    CHECK_EQ(OP_RR("mul", 7, -3), -21);
    CHECK_EQ(OP_RR("mul", 0x100000001ull, 0x100000001ull), 0x200000001ull);
    CHECK_EQ(OP_RR("mulh", -1, -1), 0);
    CHECK_EQ(OP_RR("mulh", MIN64, MIN64), 0x4000000000000000ull);
    CHECK_EQ(OP_RR("mulhu", -1, -1), 0xfffffffffffffffeull);
    CHECK_EQ(OP_RR("mulhsu", -1, -1), -1);
    CHECK_EQ(OP_RR("mulhsu", 2, -1), 1);
    CHECK_EQ(OP_RR("mulw", 0x10000, 0x10000), 0);
    CHECK_EQ(OP_RR("mulw", 0x7fffffff, 2), 0xfffffffffffffffeull);
    CHECK_EQ(OP_RR("div", -7, 2), -3);
    CHECK_EQ(OP_RR("div", 7, 0), -1);
    CHECK_EQ(OP_RR("div", MIN64, -1), MIN64);
    CHECK_EQ(OP_RR("divu", -1, 2), 0x7fffffffffffffffull);
    CHECK_EQ(OP_RR("divu", 5, 0), -1);
    CHECK_EQ(OP_RR("rem", -7, 2), -1);
    CHECK_EQ(OP_RR("rem", 7, 0), 7);
    CHECK_EQ(OP_RR("rem", MIN64, -1), 0);
    CHECK_EQ(OP_RR("remu", -1, 10), 5);
    CHECK_EQ(OP_RR("remu", 9, 0), 9);
    CHECK_EQ(OP_RR("divw", 0x80000000, -1), 0xffffffff80000000ull);
    CHECK_EQ(OP_RR("divw", -9, 0), -1);
    CHECK_EQ(OP_RR("divuw", 0xffffffff, 2), 0x7fffffff);
    CHECK_EQ(OP_RR("divuw", 0x123, 0), -1);
    CHECK_EQ(OP_RR("remw", 0x80000000, -1), 0);
    CHECK_EQ(OP_RR("remw", -9, 0), -9);
    CHECK_EQ(OP_RR("remw", 0x1fffffff7ull, 0), -9); /* upper bits ignored */
    CHECK_EQ(OP_RR("remuw", 0xffffffff, 0), -1);
    CHECK_EQ(OP_RR("remuw", 0x80000005ull, 0x10), 5);
    return 0;
}
