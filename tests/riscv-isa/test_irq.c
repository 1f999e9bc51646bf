/* Interrupts: machine software/timer/external, their priority
 * (MEI > MSI > MTI > SEI > SSI > STI), global enables per mode, delegation
 * through mideleg, WFI waking up (and sleeping), Sstc stimecmp, vectored
 * mtvec. */
#include "rt.h"

static volatile uint64_t order[8];
static volatile unsigned norder;

static int m_irq(struct frame *f)
{
    if (!(f->cause >> 63))
        return 0;
    unsigned code = f->cause & 63;
    order[norder++ & 7] = code;
    if (code == 3)
        *CLINT_MSIP = 0;
    else if (code == 7)
        *CLINT_MTIMECMP = ~0ull;
    else if (code == 11)
        *TEST_IRQ = 0;
    else if (code == 9)
        *TEST_IRQ = 0;
    else if (code == 1)
        csr_clear(mip, 2);
    else if (code == 5)
        csr_clear(mip, 32);
    return 1;
}

static int s_irq(struct frame *f)
{
    if (!(f->cause >> 63))
        return 0;
    unsigned code = f->cause & 63;
    order[norder++ & 7] = 0x100 | code;
    if (code == 1)
        csr_clear(sip, 2);
    else if (code == 5)
        csr_write(stimecmp, ~0ull);
    else if (code == 9)
        *TEST_IRQ = 0; /* the test board lets S reach its register (no PMP on MMIO here) */
    return 1;
}

static uint64_t s_enable_and_spin(uint64_t x)
{
    csr_set(sstatus, MSTATUS_SIE);
    for (volatile int i = 0; i < 100; i++)
        ;
    csr_clear(sstatus, MSTATUS_SIE);
    return norder;
}

static uint64_t s_wait_stimer(uint64_t delta)
{
    csr_write(stimecmp, csr_read(time) + delta);
    csr_set(sie, 32);
    csr_set(sstatus, MSTATUS_SIE);
    for (int i = 0; i < 1000 && !norder; i++)
        __asm__ volatile("wfi");
    csr_clear(sstatus, MSTATUS_SIE);
    return norder;
}

static uint64_t u_spin(uint64_t x)
{
    for (volatile int i = 0; i < 200; i++)
        ;
    return norder;
}

static volatile unsigned vec_hits;
void vec_handler(void);
__asm__(".option push\n .option norvc\n .align 2\n vec_table:\n"
        " j vec_bad\n j vec_bad\n j vec_bad\n j vec_msi\n"
        " j vec_bad\n j vec_bad\n j vec_bad\n j vec_bad\n"
        " j vec_bad\n j vec_bad\n j vec_bad\n j vec_bad\n"
        "vec_bad: li a0, 7777\n j rt_exit\n"
        "vec_msi: csrw mscratch, t0\n li t0, 0x02000000\n sw zero, 0(t0)\n"
        " la t0, vec_hits\n amoadd.w zero, t0, (t0)\n" /* any nonzero increment */
        " csrr t0, mscratch\n mret\n .option pop\n");
extern char vec_table[];

int main(void)
{
    pmp_allow_all();
    csr_write(stvec, (uint64_t)strap_entry);
    mtrap_hook = m_irq;
    strap_hook = s_irq;
    *CLINT_MTIMECMP = ~0ull;

    /* MSI: pending but MIE = 0 -> nothing; then taken */
    csr_write(mie, 1 << 3);
    *CLINT_MSIP = 1;
    for (volatile int i = 0; i < 10; i++)
        ;
    CHECK_EQ(norder, 0);
    CHECK(csr_read(mip) & (1 << 3));
    csr_set(mstatus, MSTATUS_MIE);
    for (volatile int i = 0; i < 10; i++)
        ;
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 3);
    CHECK_EQ(last_trap.cause, (1ull << 63) | 3);

    /* priority among M interrupts, all pending at once */
    norder = 0;
    csr_write(mie, (1 << 3) | (1 << 7) | (1 << 11));
    *CLINT_MSIP = 1;
    *CLINT_MTIMECMP = 0;
    *TEST_IRQ = 1;
    CHECK_EQ(csr_read(mip) & 0x888, 0x888);
    csr_set(mstatus, MSTATUS_MIE);
    for (volatile int i = 0; i < 10; i++)
        ;
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[0], 11);
    CHECK_EQ(order[1], 3);
    CHECK_EQ(order[2], 7);

    /* S-level interrupts not delegated are taken in M, after the M ones */
    norder = 0;
    csr_write(mideleg, 0);
    csr_write(mie, (1 << 1) | (1 << 5) | (1 << 9) | (1 << 7));
    csr_write(mip, (1 << 1) | (1 << 5));
    *TEST_IRQ = 2; /* SEIP */
    *CLINT_MTIMECMP = 0;
    csr_set(mstatus, MSTATUS_MIE);
    for (volatile int i = 0; i < 10; i++)
        ;
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(norder, 4);
    CHECK_EQ(order[0], 7);
    CHECK_EQ(order[1], 9);
    CHECK_EQ(order[2], 1);
    CHECK_EQ(order[3], 5);

    /* delegated S interrupts: never taken in M, taken in S only with SIE
     * (in S) and always in U */
    norder = 0;
    csr_write(mideleg, (1 << 1) | (1 << 5) | (1 << 9));
    csr_write(mie, (1 << 1));
    csr_set(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    csr_write(mip, 1 << 1);
    for (volatile int i = 0; i < 10; i++)
        ;
    CHECK_EQ(norder, 0);
    csr_clear(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    CHECK_EQ(run_in_mode(PRV_S, s_enable_and_spin, 0), 1);
    CHECK_EQ(order[0], 0x101);
    CHECK_EQ(last_trap.mode, 1);
    csr_write(mip, 1 << 1);
    CHECK_EQ(run_in_mode(PRV_U, u_spin, 0), 2); /* SIE = 0, but U is below S */
    CHECK_EQ(order[1], 0x101);
    /* an M interrupt preempts S-mode even with MIE = 0 */
    norder = 0;
    csr_write(mie, 1 << 3);
    *CLINT_MSIP = 1;
    run_in_mode(PRV_S, u_spin, 0);
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 3);

    /* WFI sleeps until the timer fires; the interrupt is then taken */
    norder = 0;
    csr_write(mie, 1 << 7);
    *CLINT_MTIMECMP = *CLINT_MTIME + 20000; /* 2 ms at 10 MHz */
    csr_set(mstatus, MSTATUS_MIE);
    uint64_t i0 = csr_read(minstret);
    while (!norder)
        __asm__ volatile("wfi");
    uint64_t i1 = csr_read(minstret);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(order[0], 7);
    CHECK(i1 - i0 < 200000); /* slept instead of spinning through 2 ms */
    /* WFI with MIE = 0 still wakes up on a pending enabled interrupt */
    norder = 0;
    *CLINT_MTIMECMP = *CLINT_MTIME + 10000;
    __asm__ volatile("wfi");
    CHECK(csr_read(mip) & (1 << 7));
    CHECK_EQ(norder, 0);
    *CLINT_MTIMECMP = ~0ull;

    /* Sstc: stimecmp drives STIP, delegated to S */
    norder = 0;
    csr_write(menvcfg, 1ull << 63);
    csr_write(mideleg, 1 << 5);
    csr_write(mie, 0);
    csr_write(mcounteren, 2);
    CHECK_EQ(run_in_mode(PRV_S, s_wait_stimer, 20000), 1);
    CHECK_EQ(order[0], 0x105);
    csr_write(menvcfg, 0);

    /* vectored mtvec: interrupts go to base + 4 * cause */
    csr_write(mideleg, 0);
    mtrap_hook = 0;
    uint64_t saved = csr_read(mtvec);
    csr_write(mtvec, (uint64_t)vec_table | 1);
    csr_write(mie, 1 << 3);
    *CLINT_MSIP = 1;
    csr_set(mstatus, MSTATUS_MIE);
    for (volatile int i = 0; i < 10; i++)
        ;
    csr_clear(mstatus, MSTATUS_MIE);
    csr_write(mtvec, saved);
    CHECK(vec_hits != 0);
    return 0;
}
