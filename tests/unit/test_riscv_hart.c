/* The RISC-V hart (src/riscv/hart.c, exec.c, decode.c, csr.c, mmu.c) with a
 * tiny in-memory bus: running code, the instruction counter, traps, a fatal
 * stop with no M-mode handler, WFI, the ECALL hook, stop requests from
 * another thread, snapshot round trip, RVC expansion, LR/SC across harts. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "riscv/insn.h"
#include "riscv/trap.h"
#include "riscv/hart.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1u << 20)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static int ecalls;

static bool no_mmio_read(void *o, uint64_t pa, unsigned len, uint64_t *v)
{
    return false;
}

static bool no_mmio_write(void *o, uint64_t pa, uint64_t v, unsigned len)
{
    return false;
}

static bool count_ecall(void *o, struct rv_hart *h)
{
    ecalls++;
    h->x[10] = 42;
    return true;
}

static void put(uint64_t addr, const uint32_t *code, size_t n)
{
    memcpy(ram + (addr - RAM_BASE), code, n * 4);
}

static void make(struct rv_hart *h)
{
    struct rv_bus bus = {.ram = ram,
                         .ram_base = RAM_BASE,
                         .ram_size = RAM_SIZE,
                         .mmio_read = no_mmio_read,
                         .mmio_write = no_mmio_write,
                         .ecall = count_ecall};
    memset(ram, 0, sizeof(ram));
    rv_hart_init(h, 0, &bus);
    rv_hart_reset(h, RAM_BASE);
}

/* addi a0, zero, 0; addi a1, zero, 100; loop: addi a0, a0, 3; addi a1, a1, -1;
 * bnez a1, loop; wfi; j . */
static const uint32_t loop_prog[] = {0x00000513, 0x06400593, 0x00350513, 0xfff58593,
                                     0xfe059ce3, 0x10500073, 0x0000006f};

static void runs_code(void **state)
{
    struct rv_hart h;
    make(&h);
    put(RAM_BASE, loop_prog, 7);
    enum rv_stop why = rv_hart_run(&h, 1000000);
    assert_int_equal(why, RV_STOP_WFI);
    assert_int_equal(h.x[10], 300);
    assert_int_equal(h.x[11], 0);
    assert_int_equal(h.pc, RAM_BASE + 0x18); /* after the WFI */
    assert_int_equal(h.minstret, 2 + 3 * 100 + 1);
    /* the budget is honoured: the j . loop runs until it is used up */
    why = rv_hart_run(&h, 5000);
    assert_int_equal(why, RV_STOP_BUDGET);
    assert_int_equal(h.pc, RAM_BASE + 0x18);
    rv_hart_destroy(&h);
}

static void fatal_without_handler(void **state)
{
    struct rv_hart h;
    make(&h);
    /* lui t0, 0x40000; jr t0  -> fetch from unmapped memory, mtvec = 0 */
    static const uint32_t prog[] = {0x400002b7, 0x00028067};
    put(RAM_BASE, prog, 2);
    assert_int_equal(rv_hart_run(&h, 1000), RV_STOP_FATAL);
    char buf[2048];
    rv_hart_describe(&h, buf, sizeof(buf));
    assert_non_null(strstr(buf, "instruction access fault"));
    assert_non_null(strstr(buf, "mtvec = 0"));
    assert_non_null(strstr(buf, "t0   0000000040000000"));
    assert_int_equal(h.mcause, RV_EXC_INSN_ACCESS);
    assert_int_equal(h.mtval, 0x40000000);
    /* stays stopped */
    assert_int_equal(rv_hart_run(&h, 1000), RV_STOP_FATAL);
    rv_hart_destroy(&h);
}

static void trap_to_handler(void **state)
{
    struct rv_hart h;
    make(&h);
    /* illegal instruction at RAM_BASE; handler at +0x100: wfi */
    static const uint32_t prog[] = {0xffffffff};
    static const uint32_t handler[] = {0x10500073};
    put(RAM_BASE, prog, 1);
    put(RAM_BASE + 0x100, handler, 1);
    h.mtvec = RAM_BASE + 0x100;
    assert_int_equal(rv_hart_run(&h, 100), RV_STOP_WFI);
    assert_int_equal(h.mcause, RV_EXC_ILLEGAL);
    assert_int_equal(h.mepc, RAM_BASE);
    assert_int_equal(h.mtval, 0xffffffff);
    assert_int_equal(h.priv, RV_PRIV_M);
    rv_hart_destroy(&h);
}

static void ecall_hook_and_irq(void **state)
{
    struct rv_hart h;
    make(&h);
    /* U-mode: ecall; wfi would be illegal in U, so: ecall; j . */
    static const uint32_t prog[] = {0x00000073, 0x0000006f};
    put(RAM_BASE, prog, 2);
    h.pmp_count = 0;
    rv_set_priv(&h, RV_PRIV_U);
    ecalls = 0;
    assert_int_equal(rv_hart_run(&h, 10), RV_STOP_BUDGET);
    assert_int_equal(ecalls, 1);
    assert_int_equal(h.x[10], 42);
    assert_int_equal(h.pc, RAM_BASE + 4);
    /* a machine timer interrupt, enabled, traps to mtvec from U (the
     * handler spins: j .) */
    static const uint32_t handler[] = {0x0000006f};
    put(RAM_BASE + 0x200, handler, 1);
    h.mtvec = RAM_BASE + 0x200;
    h.mie = RV_MIP_MTIP;
    rv_hart_set_irq(&h, RV_MIP_MTIP, true);
    assert_true(rv_hart_irq_pending(&h));
    assert_int_equal(rv_hart_run(&h, 100), RV_STOP_BUDGET);
    assert_int_equal(h.pc, RAM_BASE + 0x200);
    assert_int_equal(h.mcause, RV_CAUSE_INTERRUPT | 7);
    assert_int_equal(h.mepc, RAM_BASE + 4);
    assert_int_equal((h.mstatus & RV_MSTATUS_MPP) >> 11, RV_PRIV_U);
    rv_hart_destroy(&h);
}

static void *stopper(void *arg)
{
    usleep(20000);
    rv_hart_request_stop(arg);
    return NULL;
}

static void stop_from_other_thread(void **state)
{
    struct rv_hart h;
    make(&h);
    static const uint32_t spin[] = {0x0000006f};
    put(RAM_BASE, spin, 1);
    pthread_t t;
    pthread_create(&t, NULL, stopper, &h);
    assert_int_equal(rv_hart_run(&h, UINT64_MAX), RV_STOP_REQUEST);
    pthread_join(t, NULL);
    rv_hart_destroy(&h);
}

static void *waker(void *arg)
{
    usleep(20000);
    rv_hart_set_irq(arg, RV_MIP_MSIP, true);
    return NULL;
}

static void wfi_wait(void **state)
{
    struct rv_hart h;
    make(&h);
    h.mie = RV_MIP_MSIP;
    assert_false(rv_hart_wait(&h, 1000000)); /* 1 ms, nothing pending */
    pthread_t t;
    pthread_create(&t, NULL, waker, &h);
    assert_true(rv_hart_wait(&h, 5000000000ll));
    pthread_join(t, NULL);
    rv_hart_destroy(&h);
}

static void snapshot_round_trip(void **state)
{
    struct rv_hart h, g;
    make(&h);
    put(RAM_BASE, loop_prog, 7);
    rv_hart_run(&h, 50);
    h.satp = 8ull << 60 | 0x80123;
    h.f[3] = 0x4000000000000000ull;
    h.frm = 4;
    struct state_writer w;
    state_writer_init(&w);
    assert_int_equal(rv_hart_save(&h, &w), 0);
    vs_err err;
    assert_int_equal(state_writer_status(&w, &err), 0);
    make(&g);
    put(RAM_BASE, loop_prog, 7);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(rv_hart_load(&g, &r, &err), 0);
    assert_memory_equal(g.x, h.x, sizeof(h.x));
    assert_int_equal(g.pc, h.pc);
    assert_int_equal(g.satp, h.satp);
    assert_int_equal(g.f[3], h.f[3]);
    assert_int_equal(g.frm, 4);
    assert_int_equal(g.minstret, h.minstret);
    /* both continue identically */
    g.satp = h.satp = 0;
    rv_hart_run(&h, 1000);
    rv_hart_run(&g, 1000);
    assert_int_equal(g.x[10], 300);
    assert_int_equal(h.x[10], 300);
    /* a truncated section is refused */
    struct state_writer w2;
    state_writer_init(&w2);
    state_begin(&w2, "riscv-hart", 0, 1);
    state_put_u64(&w2, 1);
    state_end(&w2);
    assert_int_equal(state_reader_init(&r, w2.buf.data, w2.buf.len, &err), 0);
    assert_int_equal(rv_hart_load(&g, &r, &err), -1);
    state_writer_free(&w);
    state_writer_free(&w2);
    rv_hart_destroy(&h);
    rv_hart_destroy(&g);
}

static void rvc_expansion(void **state)
{
    assert_int_equal(rv_expand_compressed(0x0505), 0x00150513); /* c.addi a0, 1 */
    assert_int_equal(rv_expand_compressed(0x8082), 0x00008067); /* c.ret */
    assert_int_equal(rv_expand_compressed(0x4501), 0x00000513); /* c.li a0, 0 */
    assert_int_equal(rv_expand_compressed(0x6108), 0x00053503); /* c.ld a0, 0(a0) */
    assert_int_equal(rv_expand_compressed(0x0000), 0);          /* illegal */
    assert_int_equal(rv_expand_compressed(0x9002), 0x00100073); /* c.ebreak */
    assert_int_equal(rv_expand_compressed(0x852e), 0x00b00533); /* c.mv a0, a1 */
}

struct lrsc {
    struct rv_hart h;
};

static void lr_sc_across_harts(void **state)
{
    struct rv_hart a, b;
    make(&a);
    struct rv_bus bus = a.bus;
    rv_hart_init(&b, 1, &bus);
    /* a: lr.d t1, (a0); then (after b stores) sc.d t2, t3, (a0); wfi */
    static const uint32_t pa[] = {0x1005332f, 0x19c533af, 0x10500073};
    /* b: sd t3, 0(a0); wfi */
    static const uint32_t pb[] = {0x01c53023, 0x10500073};
    put(RAM_BASE, pa, 3);
    put(RAM_BASE + 0x100, pb, 2);
    uint64_t *word = (uint64_t *)(ram + 0x1000);
    *word = 5;
    a.x[10] = b.x[10] = RAM_BASE + 0x1000;
    a.x[28] = 7;
    b.x[28] = 9;
    b.pc = RAM_BASE + 0x100;
    rv_hart_run(&a, 1); /* lr */
    assert_int_equal(a.x[6], 5);
    assert_int_equal(rv_hart_run(&b, 10), RV_STOP_WFI);
    assert_int_equal(rv_hart_run(&a, 10), RV_STOP_WFI);
    assert_int_equal(a.x[7], 1); /* sc failed */
    assert_int_equal(*word, 9);
    /* without interference it succeeds */
    a.pc = RAM_BASE;
    rv_hart_run(&a, 10);
    assert_int_equal(a.x[7], 0);
    assert_int_equal(*word, 7);
    rv_hart_destroy(&a);
    rv_hart_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_code),
        cmocka_unit_test(fatal_without_handler),
        cmocka_unit_test(trap_to_handler),
        cmocka_unit_test(ecall_hook_and_irq),
        cmocka_unit_test(stop_from_other_thread),
        cmocka_unit_test(wfi_wait),
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(rvc_expansion),
        cmocka_unit_test(lr_sc_across_harts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
