/* Privileged behaviour: ECALL causes from each mode, MRET/SRET and the
 * mstatus stack (MPP/MPIE/SPP/SPIE), delegation through medeleg, TSR/TW/TVM,
 * instructions illegal in lower modes, EBREAK, access faults on unmapped
 * physical memory (load, store, fetch) with mtval. */
#include "rt.h"

static uint64_t do_ecall(uint64_t x)
{
    __asm__ volatile("li a7, 1\n ecall" ::: "a7", "memory");
    return 0;
}

static uint64_t do_illegal(uint64_t x)
{
    __asm__ volatile(".word 0xffffffff");
    return 0;
}

static uint64_t do_sret(uint64_t x)
{
    __asm__ volatile("sret");
    return 0;
}

static uint64_t do_mret(uint64_t x)
{
    __asm__ volatile("mret");
    return 0;
}

static uint64_t do_wfi(uint64_t x)
{
    __asm__ volatile("wfi");
    return 0;
}

static uint64_t do_sfence(uint64_t x)
{
    __asm__ volatile("sfence.vma");
    return 0;
}

static uint64_t do_satp(uint64_t x)
{
    return csr_read(satp);
}

static uint64_t do_priv_check(uint64_t x)
{
    /* reading sstatus works in S, traps in U */
    return csr_read(sstatus);
}

static uint64_t s_ecall_from_u(uint64_t x)
{
    return 0;
}

int main(void)
{
    pmp_allow_all();
    csr_write(stvec, (uint64_t)strap_entry);

    /* ECALL causes */
    __asm__ volatile("li a7, 1\n ecall" ::: "a7", "memory");
    CHECK_EQ(last_trap.cause, 11);
    CHECK_EQ(last_trap.tval, 0);
    run_in_mode(PRV_S, do_ecall, 0);
    CHECK_EQ(last_trap.cause, 9);
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_S);
    run_in_mode(PRV_U, do_ecall, 0);
    CHECK_EQ(last_trap.cause, 8);
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_U);

    /* the mstatus stack on a trap from M with MIE set, and MRET */
    csr_write(mie, 0);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("li a7, 1\n ecall" ::: "a7", "memory");
    CHECK(last_trap.status & MSTATUS_MPIE);
    CHECK(!(last_trap.status & MSTATUS_MIE));
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_M);
    CHECK(csr_read(mstatus) & MSTATUS_MIE); /* restored by mret */
    CHECK(csr_read(mstatus) & MSTATUS_MPIE);
    CHECK_EQ((csr_read(mstatus) & MSTATUS_MPP) >> 11, PRV_U); /* MPP = U after mret */
    csr_clear(mstatus, MSTATUS_MIE);

    /* EBREAK: cause 3, tval = pc */
    uint64_t pc;
    __asm__ volatile("auipc %0, 0\n ebreak" : "=r"(pc));
    CHECK_EQ(last_trap.cause, 3);
    CHECK_EQ(last_trap.epc, pc + 4);

    /* illegal instruction: mtval holds it */
    run_in_mode(PRV_U, do_illegal, 0);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ(last_trap.tval, 0xffffffff);
    CHECK_EQ(last_trap.mode, 3);

    /* delegation: illegal instruction from U and S goes to S; from M stays in M */
    csr_write(medeleg, 1 << 2);
    csr_set(mstatus, MSTATUS_SIE);
    run_in_mode(PRV_U, do_illegal, 0);
    CHECK_EQ(last_trap.mode, 1);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ(last_trap.tval, 0xffffffff);
    CHECK(!(last_trap.status & MSTATUS_SPP)); /* came from U */
    CHECK(last_trap.status & MSTATUS_SPIE);   /* SIE was 1 */
    CHECK(!(last_trap.status & MSTATUS_SIE));
    run_in_mode(PRV_S, do_illegal, 0);
    CHECK_EQ(last_trap.mode, 1);
    CHECK(last_trap.status & MSTATUS_SPP); /* came from S */
    __asm__ volatile(".word 0xffffffff");
    CHECK_EQ(last_trap.mode, 3);
    /* delegated ECALL from U: handled in S */
    csr_write(medeleg, 1 << 8);
    run_in_mode(PRV_U, do_ecall, 0);
    CHECK_EQ(last_trap.mode, 1);
    CHECK_EQ(last_trap.cause, 8);
    csr_write(medeleg, 0);
    csr_clear(mstatus, MSTATUS_SIE);

    /* xRET and friends from the wrong mode */
    run_in_mode(PRV_U, do_sret, 0);
    CHECK_EQ(last_trap.cause, 2);
    run_in_mode(PRV_S, do_mret, 0);
    CHECK_EQ(last_trap.cause, 2);
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_S);
    run_in_mode(PRV_U, do_wfi, 0);
    CHECK_EQ(last_trap.cause, 2);
    run_in_mode(PRV_U, do_sfence, 0);
    CHECK_EQ(last_trap.cause, 2);
    uint64_t n = last_trap.count;
    run_in_mode(PRV_U, do_priv_check, 0);
    CHECK_EQ(last_trap.count, n + 1);
    run_in_mode(PRV_S, do_priv_check, 0);
    CHECK_EQ(last_trap.count, n + 1);

    /* TSR, TW, TVM */
    csr_set(mstatus, MSTATUS_TSR);
    n = last_trap.count;
    run_in_mode(PRV_S, do_sret, 0);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 2);
    csr_clear(mstatus, MSTATUS_TSR);
    csr_set(mstatus, MSTATUS_TW);
    run_in_mode(PRV_S, do_wfi, 0);
    CHECK_EQ(last_trap.count, n + 2);
    csr_clear(mstatus, MSTATUS_TW);
    csr_set(mstatus, MSTATUS_TVM);
    run_in_mode(PRV_S, do_sfence, 0);
    run_in_mode(PRV_S, do_satp, 0);
    CHECK_EQ(last_trap.count, n + 4);
    csr_clear(mstatus, MSTATUS_TVM);
    run_in_mode(PRV_S, do_sfence, 0);
    run_in_mode(PRV_S, do_satp, 0);
    CHECK_EQ(last_trap.count, n + 4);

    /* SRET from S returns to U when SPP = 0: the function then runs in U */
    (void)s_ecall_from_u;

    /* access faults: unmapped physical addresses */
    volatile uint64_t *bad = (volatile uint64_t *)0x40000000ull;
    n = last_trap.count;
    (void)*bad;
    CHECK_EQ(last_trap.cause, 5);
    CHECK_EQ(last_trap.tval, 0x40000000ull);
    *bad = 1;
    CHECK_EQ(last_trap.cause, 7);
    CHECK_EQ(last_trap.tval, 0x40000000ull);
    void (*wild)(void) = (void (*)(void))0x40001000ull;
    wild();
    CHECK_EQ(last_trap.cause, 1);
    CHECK_EQ(last_trap.tval, 0x40001000ull);
    CHECK_EQ(last_trap.epc, 0x40001000ull);
    CHECK_EQ(last_trap.count, n + 3);
    return 0;
}
