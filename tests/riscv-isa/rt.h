/* Bare-metal ISA test runtime (crt.S + rt.c). A test is main(); CHECK()
 * failures report the source line through tohost, so a failing test says
 * where: "FAILED with code <line>". */
#ifndef RT_H
#define RT_H

#include <stdint.h>

struct frame {
    uint64_t x[32];
    uint64_t epc, cause, tval, status;
};

/* Every trap taken is recorded here by the default handlers. */
struct trap_record {
    volatile uint64_t count, cause, tval, epc, status;
    volatile unsigned mode; /* 3: taken in M (handle_mtrap), 1: in S */
};
extern struct trap_record last_trap;

/* Optional per-test handlers; return nonzero if they handled the trap
 * (default: record it and skip the trapping instruction; for a fetch
 * fault, return to the caller through ra). */
extern int (*mtrap_hook)(struct frame *f);
extern int (*strap_hook)(struct frame *f);

void rt_exit(int code) __attribute__((noreturn));
void rt_fail(int line) __attribute__((noreturn));
void rt_puts(const char *s);
void rt_puthex(uint64_t v);
uint64_t run_in_mode(unsigned mode, uint64_t (*fn)(uint64_t), uint64_t arg);
extern char strap_entry[], mtrap_entry[], _free_mem[], _end[];

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            rt_fail(__LINE__);                                                                     \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                           \
        if (a_ != b_) {                                                                            \
            rt_puts("mismatch: ");                                                                 \
            rt_puthex(a_);                                                                         \
            rt_puts(" != ");                                                                       \
            rt_puthex(b_);                                                                         \
            rt_puts("\n");                                                                         \
            rt_fail(__LINE__);                                                                     \
        }                                                                                          \
    } while (0)

#define csr_read(csr)                                                                              \
    ({                                                                                             \
        uint64_t v_;                                                                               \
        __asm__ volatile("csrr %0, " #csr : "=r"(v_)::"memory");                                   \
        v_;                                                                                        \
    })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" ::"rK"((uint64_t)(val)) : "memory")
#define csr_set(csr, val) __asm__ volatile("csrs " #csr ", %0" ::"rK"((uint64_t)(val)) : "memory")
#define csr_clear(csr, val) __asm__ volatile("csrc " #csr ", %0" ::"rK"((uint64_t)(val)) : "memory")

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)

#define CLINT_MSIP ((volatile uint32_t *)0x02000000)
#define CLINT_MTIMECMP ((volatile uint64_t *)0x02004000)
#define CLINT_MTIME ((volatile uint64_t *)0x0200bff8)
#define TEST_IRQ ((volatile uint32_t *)0x00100000)

/* Open PMP entry 0 to everything so S and U can run. */
static inline void pmp_allow_all(void)
{
    csr_write(pmpaddr0, ~0ull >> 10);
    csr_write(pmpcfg0, 0x1f); /* NAPOT RWX */
}

#endif
