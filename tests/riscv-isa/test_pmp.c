/* PMP: no entries = S/U denied, NAPOT/TOR/NA4 matching, R/W/X per entry,
 * lowest-numbered entry wins, partial matches fail, locked entries bind
 * M-mode and cannot be changed, pmpaddr WARL readback (OpenSBI probes it). */
#include "rt.h"

static uint64_t data[512] __attribute__((aligned(4096)));
static volatile uint64_t val;

static uint64_t u_read(uint64_t a)
{
    val = *(volatile uint64_t *)a;
    return val;
}

static uint64_t u_write(uint64_t a)
{
    *(volatile uint64_t *)a = 7;
    return 0;
}

static uint64_t napot(uint64_t base, uint64_t size)
{
    return (base >> 2) | ((size >> 3) - 1);
}

#define CFG(i, v) ((uint64_t)(v) << (8 * (i)))
#define R 1
#define W 2
#define X 4
#define TOR (1 << 3)
#define NA4 (2 << 3)
#define NAPOT (3 << 3)
#define L 0x80

int main(void)
{
    /* pmpaddr is WARL: bits 53:0 */
    csr_write(pmpaddr3, ~0ull);
    CHECK_EQ(csr_read(pmpaddr3), (1ull << 54) - 1);
    csr_write(pmpaddr3, 0);

    /* no entry active: M is fine, S/U accesses fail (fetch of the first
     * instruction: access fault, then run_in_mode is abandoned) */
    csr_write(pmpcfg0, 0);
    uint64_t n = last_trap.count;
    run_in_mode(PRV_U, u_read, (uint64_t)data);
    CHECK(last_trap.count > n);
    CHECK_EQ(last_trap.cause, 1);

    /* entry 0: the data page read-only (NAPOT 4 KiB); entry 1: everything RWX */
    uint64_t d = (uint64_t)data;
    csr_write(pmpaddr0, napot(d, 4096));
    csr_write(pmpaddr1, ~0ull >> 10);
    csr_write(pmpcfg0, CFG(0, NAPOT | R) | CFG(1, NAPOT | R | W | X));
    CHECK_EQ(csr_read(pmpcfg0) & 0xffff, (NAPOT | R) | ((NAPOT | R | W | X) << 8));
    data[1] = 42;
    n = last_trap.count;
    CHECK_EQ(run_in_mode(PRV_U, u_read, d + 8), 42);
    CHECK_EQ(last_trap.count, n);
    run_in_mode(PRV_U, u_write, d + 8);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 7);
    CHECK_EQ(last_trap.tval, d + 8);
    CHECK_EQ(data[1], 42);
    run_in_mode(PRV_S, u_write, d + 16);
    CHECK_EQ(last_trap.cause, 7);
    /* M-mode ignores unlocked entries */
    ((volatile uint64_t *)data)[2] = 5;
    CHECK_EQ(((volatile uint64_t *)data)[2], 5);
    /* an aligned access that an entry covers only partially fails, even
     * though that entry grants everything */
    csr_write(pmpaddr0, (d + 64) >> 2);
    csr_write(pmpcfg0, CFG(0, NA4 | R | W | X) | CFG(1, NAPOT | R | W | X));
    n = last_trap.count;
    run_in_mode(PRV_U, u_read, d + 64);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 5);
    CHECK_EQ(last_trap.tval, d + 64);

    /* TOR: entry 0 [0, d) and entry 1 [d, d + 4096) -> no access; 2: all */
    csr_write(pmpaddr0, d >> 2);
    csr_write(pmpaddr1, (d + 4096) >> 2);
    csr_write(pmpaddr2, ~0ull >> 10);
    csr_write(pmpcfg0, CFG(0, TOR | R | W | X) | CFG(1, TOR) | CFG(2, NAPOT | R | W | X));
    n = last_trap.count;
    run_in_mode(PRV_U, u_read, d + 64);
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 5);
    CHECK_EQ(run_in_mode(PRV_U, u_read, d + 4096),
             data[512 - 512 + 0] * 0 + *(uint64_t *)(d + 4096));
    /* NA4: exactly one word */
    csr_write(pmpaddr1, (d + 64) >> 2);
    csr_write(pmpcfg0, CFG(0, 0) | CFG(1, NA4) | CFG(2, NAPOT | R | W | X));
    n = last_trap.count;
    run_in_mode(PRV_U, u_read, d + 64);
    CHECK_EQ(last_trap.count, n + 1);
    run_in_mode(PRV_U, u_read, d + 72);
    CHECK_EQ(last_trap.count, n + 1);

    /* a locked entry binds M-mode and cannot be rewritten */
    csr_write(pmpaddr0, napot(d + 2048, 2048));
    csr_write(pmpcfg0, CFG(0, NAPOT | R | L) | CFG(2, NAPOT | R | W | X));
    n = last_trap.count;
    volatile uint64_t *vd = data;
    vd[300] = 9;
    CHECK_EQ(last_trap.count, n + 1);
    CHECK_EQ(last_trap.cause, 7);
    CHECK_EQ(vd[300], 0); /* reading is still allowed */
    CHECK_EQ(vd[1], 42);  /* outside the locked entry */
    csr_write(pmpaddr0, 0);
    CHECK_EQ(csr_read(pmpaddr0), napot(d + 2048, 2048));
    csr_write(pmpcfg0, CFG(2, NAPOT | R | W | X));
    CHECK_EQ(csr_read(pmpcfg0) & 0xff, NAPOT | R | L);
    return 0;
}
