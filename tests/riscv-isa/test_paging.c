/* Sv39 and Sv48: page walks at every level, gigapages and 4 KiB pages,
 * hardware A/D updates, permission faults (R/W/X, U vs SUM, MXR), invalid
 * and misaligned-superpage PTEs, non-canonical addresses, SFENCE.VMA, MPRV,
 * satp mode switching, and code remapped or rewritten under a translator.
 * Faults are taken in M and recorded. */
#include "rt.h"

#define PTE_V 1ull
#define PTE_R 2ull
#define PTE_W 4ull
#define PTE_X 8ull
#define PTE_U 16ull
#define PTE_A 64ull
#define PTE_D 128ull

static uint64_t tables[6][512] __attribute__((aligned(4096)));
static uint8_t pages[8][4096] __attribute__((aligned(4096)));

#define VBASE 0x40000000ull /* test pages live at VBASE + i * 4096 */

static uint64_t pte(void *pa, uint64_t flags)
{
    return (((uint64_t)pa >> 12) << 10) | flags;
}

static volatile uint64_t s_val;

static uint64_t s_read(uint64_t va)
{
    s_val = 0xdead;
    s_val = *(volatile uint64_t *)va;
    return s_val;
}

static uint64_t s_write(uint64_t va)
{
    *(volatile uint64_t *)va = 0x5a5a;
    return 0;
}

static uint64_t s_exec(uint64_t va)
{
    ((void (*)(void))va)();
    return 0;
}

static uint64_t s_call(uint64_t va)
{
    return ((uint64_t(*)(void))va)();
}

static uint64_t s_sfence_all(uint64_t x)
{
    __asm__ volatile("sfence.vma" ::: "memory");
    return 0;
}

static uint64_t s_sfence_va(uint64_t va)
{
    __asm__ volatile("sfence.vma %0" ::"r"(va) : "memory");
    return 0;
}

/* Build the mapping for mode 8 (Sv39) or 9 (Sv48); returns satp. */
static uint64_t build(unsigned mode)
{
    for (int t = 0; t < 6; t++)
        for (int i = 0; i < 512; i++)
            tables[t][i] = 0;
    uint64_t *root = tables[0], *l1, *l0;
    uint64_t *top = root;
    if (mode == 9) {
        /* level 3 -> level 2 table in tables[1] */
        root[0] = pte(tables[1], PTE_V);
        top = tables[1];
    }
    /* identity gigapage for RAM (0x80000000, index 2), S-only RWX */
    top[2] = pte((void *)0x80000000ull, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    /* VBASE (index 1) -> level 1 -> level 0 with 4 KiB pages */
    l1 = tables[2];
    l0 = tables[3];
    top[1] = pte(l1, PTE_V);
    l1[0] = pte(l0, PTE_V);
    l0[0] = pte(pages[0], PTE_V | PTE_R | PTE_W);                         /* A/D clear */
    l0[1] = pte(pages[1], PTE_V | PTE_R | PTE_A);                         /* read-only */
    l0[2] = pte(pages[2], PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D); /* user */
    l0[3] = pte(pages[3], PTE_R | PTE_W | PTE_A | PTE_D);                 /* not valid */
    l0[4] = pte(pages[4], PTE_V | PTE_X | PTE_A);                         /* execute-only */
    l0[5] = pte(pages[5], PTE_V | PTE_W | PTE_A | PTE_D); /* W without R: reserved */
    l0[6] = pte(pages[6], PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D); /* RWX */
    /* a level-1 leaf (2 MiB) whose PPN is not 2 MiB aligned */
    l1[1] = pte(pages[0], PTE_V | PTE_R | PTE_A);
    /* an aligned 2 MiB megapage: VBASE + 4 MiB -> RAM base */
    l1[2] = pte((void *)0x80000000ull, PTE_V | PTE_R | PTE_A);
    return ((uint64_t)mode << 60) | ((uint64_t)root >> 12);
}

static void expect_fault(uint64_t cause, uint64_t tval)
{
    CHECK_EQ(last_trap.cause, cause);
    CHECK_EQ(last_trap.tval, tval);
}

static void run_suite(unsigned mode)
{
    uint64_t satp = build(mode);
    csr_write(satp, satp);
    CHECK_EQ(csr_read(satp), satp);
    run_in_mode(PRV_S, s_sfence_all, 0);
    for (int i = 0; i < 8; i++)
        *(volatile uint64_t *)pages[i] = 0x1000 + (uint64_t)i;

    uint64_t n = last_trap.count;
    /* read sets A; write sets D (hardware update) */
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE), 0x1000);
    CHECK_EQ(last_trap.count, n);
    CHECK(tables[3][0] & PTE_A);
    CHECK(!(tables[3][0] & PTE_D));
    run_in_mode(PRV_S, s_write, VBASE + 8);
    CHECK_EQ(last_trap.count, n);
    CHECK(tables[3][0] & PTE_D);
    CHECK_EQ(*(volatile uint64_t *)(pages[0] + 8), 0x5a5a);

    /* store to a read-only page */
    run_in_mode(PRV_S, s_write, VBASE + 0x1000 + 16);
    expect_fault(15, VBASE + 0x1000 + 16);
    CHECK_EQ((last_trap.status & MSTATUS_MPP) >> 11, PRV_S);
    CHECK(!(tables[3][1] & PTE_D));
    /* user page from S: fault unless SUM */
    run_in_mode(PRV_S, s_read, VBASE + 0x2000);
    expect_fault(13, VBASE + 0x2000);
    csr_set(mstatus, MSTATUS_SUM);
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x2000), 0x1002);
    /* ... but S may never execute a user page, SUM or not */
    n = last_trap.count;
    run_in_mode(PRV_S, s_exec, VBASE + 0x2000);
    expect_fault(12, VBASE + 0x2000);
    csr_clear(mstatus, MSTATUS_SUM);
    /* invalid PTE, reserved W-only PTE */
    run_in_mode(PRV_S, s_read, VBASE + 0x3000);
    expect_fault(13, VBASE + 0x3000);
    run_in_mode(PRV_S, s_write, VBASE + 0x5000);
    expect_fault(15, VBASE + 0x5000);
    /* execute-only page: loads fault unless MXR */
    run_in_mode(PRV_S, s_read, VBASE + 0x4000);
    expect_fault(13, VBASE + 0x4000);
    csr_set(mstatus, MSTATUS_MXR);
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x4000), 0x1004);
    csr_clear(mstatus, MSTATUS_MXR);
    /* fetch from a non-executable page */
    run_in_mode(PRV_S, s_exec, VBASE);
    expect_fault(12, VBASE);
    /* execute from an executable page: put "ret" there */
    *(volatile uint32_t *)pages[6] = 0x00008067;
    n = last_trap.count;
    run_in_mode(PRV_S, s_exec, VBASE + 0x6000);
    CHECK_EQ(last_trap.count, n);
    /* the same virtual address remapped to another page of code: what runs
     * is the new page's (a translator must not keep the old translation),
     * and mapping the first page back finds its code again */
    static const uint32_t one[] = {0x00100513 /* li a0, 1 */, 0x00008067 /* ret */};
    static const uint32_t two[] = {0x00200513 /* li a0, 2 */, 0x00008067};
    for (int i = 0; i < 2; i++) {
        ((volatile uint32_t *)(pages[6] + 0x100))[i] = one[i];
        ((volatile uint32_t *)(pages[7] + 0x100))[i] = two[i];
    }
    __asm__ volatile("fence.i" ::: "memory");
    CHECK_EQ(run_in_mode(PRV_S, s_call, VBASE + 0x6100), 1);
    tables[3][6] = pte(pages[7], PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    run_in_mode(PRV_S, s_sfence_va, VBASE + 0x6000);
    CHECK_EQ(run_in_mode(PRV_S, s_call, VBASE + 0x6100), 2);
    tables[3][6] = pte(pages[6], PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    run_in_mode(PRV_S, s_sfence_all, 0);
    CHECK_EQ(run_in_mode(PRV_S, s_call, VBASE + 0x6100), 1);
    /* and code rewritten in place through its mapping, then FENCE.I */
    ((volatile uint32_t *)(pages[6] + 0x100))[0] = 0x00300513; /* li a0, 3 */
    __asm__ volatile("fence.i" ::: "memory");
    CHECK_EQ(run_in_mode(PRV_S, s_call, VBASE + 0x6100), 3);
    /* U cannot execute supervisor pages (all code here is S-only) */
    extern char rt_return_stub[];
    run_in_mode(PRV_U, s_read, VBASE + 0x2000);
    expect_fault(12, (uint64_t)rt_return_stub); /* after the fault on s_read itself */
    /* aligned megapage: offsets inside it translate linearly */
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x400000 + ((uint64_t)pages[5] - 0x80000000ull)),
             0x1005);
    /* misaligned superpage */
    run_in_mode(PRV_S, s_read, VBASE + 0x200000);
    expect_fault(13, VBASE + 0x200000);
    /* unmapped and non-canonical addresses */
    run_in_mode(PRV_S, s_read, 0x100000000ull * 3);
    expect_fault(13, 0x100000000ull * 3);
    uint64_t noncanon = mode == 8 ? (1ull << 39) : (1ull << 48);
    run_in_mode(PRV_S, s_read, noncanon);
    expect_fault(13, noncanon);
    /* sign-extended high half is canonical but unmapped */
    run_in_mode(PRV_S, s_read, ~0ull << 12);
    expect_fault(13, ~0ull << 12);

    /* SFENCE.VMA makes a changed PTE visible */
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x1000), 0x1001);
    tables[3][1] = pte(pages[7], PTE_V | PTE_R | PTE_A);
    run_in_mode(PRV_S, s_sfence_va, VBASE + 0x1000);
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x1000), 0x1007);
    tables[3][1] = pte(pages[1], PTE_V | PTE_R | PTE_A);
    run_in_mode(PRV_S, s_sfence_all, 0);
    CHECK_EQ(run_in_mode(PRV_S, s_read, VBASE + 0x1000), 0x1001);
    /* a page removed after use faults once flushed */
    tables[3][1] = 0;
    run_in_mode(PRV_S, s_sfence_all, 0);
    run_in_mode(PRV_S, s_read, VBASE + 0x1000);
    expect_fault(13, VBASE + 0x1000);

    /* MPRV: M-mode loads and stores translated as S */
    tables[3][0] &= ~(PTE_A | PTE_D);
    run_in_mode(PRV_S, s_sfence_all, 0);
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, (uint64_t)PRV_S << 11);
    csr_set(mstatus, MSTATUS_MPRV);
    uint64_t v = *(volatile uint64_t *)VBASE;
    csr_clear(mstatus, MSTATUS_MPRV);
    CHECK_EQ(v, 0x1000);
    CHECK(tables[3][0] & PTE_A);
    csr_write(satp, 0);
}

int main(void)
{
    pmp_allow_all();
    run_suite(8);
    run_suite(9);
    /* without paging, S sees physical memory */
    CHECK_EQ(run_in_mode(PRV_S, s_read, (uint64_t)pages[2]), 0x1002);
    return 0;
}
