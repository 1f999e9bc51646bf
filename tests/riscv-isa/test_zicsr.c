/* Zicsr and the machine/supervisor CSR file: read/modify/write forms,
 * read-only and unimplemented CSRs, privilege checks, misa, mhartid,
 * counters and counter enables, sstatus/sie/sip as views. */
#include "rt.h"

static uint64_t u_read_cycle(uint64_t x)
{
    return csr_read(cycle);
}

static uint64_t s_read_mstatus(uint64_t x)
{
    return csr_read(mstatus);
}

static uint64_t s_read_tselect(uint64_t x)
{
    return csr_read(0x7a0);
}

static uint64_t s_status_view(uint64_t x)
{
    csr_set(sstatus, MSTATUS_SIE | MSTATUS_SUM);
    return csr_read(sstatus);
}

static uint64_t u_read_time(uint64_t x)
{
    return csr_read(time);
}

int main(void)
{
    uint64_t old;
    csr_write(mscratch, 0x1234);
    __asm__ volatile("csrrw %0, mscratch, %1" : "=r"(old) : "r"(0xf0f0ull));
    CHECK_EQ(old, 0x1234);
    __asm__ volatile("csrrs %0, mscratch, %1" : "=r"(old) : "r"(0x0f00ull));
    CHECK_EQ(old, 0xf0f0);
    __asm__ volatile("csrrc %0, mscratch, %1" : "=r"(old) : "r"(0x00f0ull));
    CHECK_EQ(old, 0xfff0);
    __asm__ volatile("csrrwi %0, mscratch, 5" : "=r"(old));
    CHECK_EQ(old, 0xff00);
    __asm__ volatile("csrrsi %0, mscratch, 0x18" : "=r"(old));
    CHECK_EQ(old, 5);
    __asm__ volatile("csrrci %0, mscratch, 1" : "=r"(old));
    CHECK_EQ(old, 0x1d);
    CHECK_EQ(csr_read(mscratch), 0x1c);

    uint64_t misa = csr_read(misa);
    CHECK_EQ(misa >> 62, 2);
    for (const char *c = "imafdcsu"; *c; c++)
        CHECK(misa & (1ull << (*c - 'a')));
    CHECK_EQ(csr_read(mhartid), 0);
    CHECK_EQ(csr_read(mstatus) >> 32 & 0xf, 0xa); /* UXL = SXL = 64 */

    /* read-only CSR: reading is fine, csrrs with x0 is fine, writing traps */
    uint64_t n = last_trap.count;
    (void)csr_read(mvendorid);
    __asm__ volatile("csrrs %0, mimpid, x0" : "=r"(old));
    CHECK_EQ(last_trap.count, n);
    __asm__ volatile("csrw mvendorid, %0" ::"r"(1ull));
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 2);
    __asm__ volatile("csrrwi x0, cycle, 0");
    CHECK_EQ(last_trap.count, n + 2);
    /* an unimplemented CSR is illegal; tval holds the instruction */
    __asm__ volatile("csrr %0, 0x7ff" : "=r"(old));
    CHECK_EQ(last_trap.count, n + 3);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ(last_trap.tval & 0xfff0007f, 0x7ff00073);

    /* Sdtrig with no triggers: tselect reads back 0 whatever is written,
     * tdata1-3 read 0 (type 0: no trigger) and ignore writes; no traps */
    n = last_trap.count;
    csr_write(0x7a0, 3); /* tselect */
    CHECK_EQ(csr_read(0x7a0), 0);
    csr_write(0x7a1, ~0ull); /* tdata1 */
    csr_write(0x7a2, 0x1234);
    csr_write(0x7a3, 0x5678);
    CHECK_EQ(csr_read(0x7a1), 0);
    CHECK_EQ(csr_read(0x7a2), 0);
    CHECK_EQ(csr_read(0x7a3), 0);
    CHECK_EQ(csr_read(0x7a4) & 1, 1); /* tinfo: the selected trigger does not exist */
    CHECK_EQ(last_trap.count, n);

    /* counters advance */
    uint64_t i0 = csr_read(minstret), c0 = csr_read(mcycle);
    for (volatile int i = 0; i < 100; i++)
        ;
    uint64_t i1 = csr_read(minstret), c1 = csr_read(mcycle);
    CHECK(i1 - i0 >= 300 && i1 - i0 < 100000);
    CHECK(c1 > c0);
    CHECK(csr_read(instret) >= i1);
    uint64_t t0 = csr_read(time);
    for (volatile int i = 0; i < 100000; i++)
        ;
    CHECK(csr_read(time) > t0);
    csr_write(minstret, 1000);
    CHECK(csr_read(minstret) - 1000 < 10);

    pmp_allow_all();
    /* counter enables: U needs mcounteren and scounteren */
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
    n = last_trap.count;
    run_in_mode(PRV_U, u_read_cycle, 0);
    CHECK_EQ(last_trap.count, n + 1); /* the read traps (the return ECALL is not counted) */
    csr_write(mcounteren, 7);
    run_in_mode(PRV_U, u_read_cycle, 0);
    CHECK_EQ(last_trap.count, n + 2); /* scounteren still 0 */
    CHECK_EQ(last_trap.cause, 2);
    csr_write(scounteren, 2);
    uint64_t t = run_in_mode(PRV_U, u_read_time, 0);
    CHECK_EQ(last_trap.count, n + 2); /* no trap */
    CHECK(t >= t0);

    /* S-mode cannot touch M CSRs */
    n = last_trap.count;
    run_in_mode(PRV_S, s_read_mstatus, 0);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_S);
    run_in_mode(PRV_S, s_read_tselect, 0); /* the trigger CSRs are M-mode's */
    CHECK_EQ(last_trap.count, n + 2);
    CHECK_EQ(last_trap.cause, 2);

    /* sstatus is a restricted view of mstatus */
    csr_clear(mstatus, MSTATUS_SIE | MSTATUS_SUM | MSTATUS_MIE);
    uint64_t ss = run_in_mode(PRV_S, s_status_view, 0);
    CHECK(ss & MSTATUS_SIE);
    CHECK(ss & MSTATUS_SUM);
    CHECK(!(ss & MSTATUS_MPP));
    CHECK(csr_read(mstatus) & MSTATUS_SIE);
    csr_clear(mstatus, MSTATUS_SIE | MSTATUS_SUM);

    /* sie/sip only show delegated interrupts */
    csr_write(mideleg, 0);
    csr_write(mie, 0xaaa);
    CHECK_EQ(csr_read(mie), 0xaaa);
    CHECK_EQ(csr_read(sie), 0);
    csr_write(mideleg, 0x222);
    CHECK_EQ(csr_read(mideleg), 0x222);
    CHECK_EQ(csr_read(sie), 0x222);
    csr_write(sie, 0);
    CHECK_EQ(csr_read(mie), 0x888);
    csr_write(mie, 0);
    csr_write(mip, 2); /* SSIP is writable from M */
    CHECK_EQ(csr_read(sip), 2);
    csr_write(mip, 0);
    csr_write(mideleg, 0);
    /* medeleg: ECALL from M cannot be delegated */
    csr_write(medeleg, ~0ull);
    CHECK(!(csr_read(medeleg) & (1 << 11)));
    CHECK(csr_read(medeleg) & (1 << 8));
    csr_write(medeleg, 0);
    /* mtvec keeps mode 0/1; stvec likewise */
    csr_write(stvec, 0x80001001ull);
    CHECK_EQ(csr_read(stvec), 0x80001001ull);
    /* satp: unsupported modes are ignored */
    csr_write(satp, 0);
    csr_write(satp, 10ull << 60);
    CHECK_EQ(csr_read(satp), 0);
    return 0;
}
