/* One instruction on register operands, so the compiler cannot fold it. */
#ifndef OPS_H
#define OPS_H
#include <stdint.h>

#define OP_RR(insn, a, b)                                                                          \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile(insn " %0, %1, %2" : "=r"(r_) : "r"((uint64_t)(a)), "r"((uint64_t)(b)));  \
        r_;                                                                                        \
    })
#define OP_RI(insn, a, imm)                                                                        \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile(insn " %0, %1, %2" : "=r"(r_) : "r"((uint64_t)(a)), "i"(imm));            \
        r_;                                                                                        \
    })
#define OP_R(insn, a)                                                                              \
    ({                                                                                             \
        uint64_t r_;                                                                               \
        __asm__ volatile(insn " %0, %1" : "=r"(r_) : "r"((uint64_t)(a)));                          \
        r_;                                                                                        \
    })
#endif
