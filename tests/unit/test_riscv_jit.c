/* The translator (src/riscv/jit.c) against the interpreter: random
 * instruction streams in lock-step (a bounded run of the fuzz target's
 * generator), and the cases a translator gets wrong first: stores into
 * translated code, FENCE.I, a precise fault in the middle of a block, an
 * interrupt arriving while translated code spins in a chained loop, an
 * indirect-jump-heavy loop, and LR/SC contention between two harts on two
 * host threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "riscv_jit_diff.h"

/* ---- a few encodings ---- */

static uint32_t i_type(int32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op)
{
    return ((uint32_t)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

static uint32_t s_type(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3)
{
    return ((uint32_t)((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
           ((uint32_t)(imm & 0x1f) << 7) | 0x23;
}

static uint32_t b_type(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3)
{
    uint32_t u = (uint32_t)imm;
    return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
           (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}

static uint32_t jal(unsigned rd, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) |
           (((u >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}

#define ADDI(rd, rs1, imm) i_type(imm, rs1, 0, rd, 0x13)
#define LD(rd, rs1, imm) i_type(imm, rs1, 3, rd, 0x03)
#define LW(rd, rs1, imm) i_type(imm, rs1, 2, rd, 0x03)
#define SW(rs2, rs1, imm) s_type(imm, rs2, rs1, 2)
#define SD(rs2, rs1, imm) s_type(imm, rs2, rs1, 3)
#define JALR(rd, rs1, imm) i_type(imm, rs1, 0, rd, 0x67)
#define BNE(rs1, rs2, imm) b_type(imm, rs2, rs1, 1)
#define FENCE_I 0x0000100f
#define EBREAK 0x00100073

/* ---- machines ---- */

struct pair {
    struct jd_machine j, i;
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    if (!p || jd_open(&p->j, RV_ACCEL_JIT) < 0 || jd_open(&p->i, RV_ACCEL_INTERP) < 0)
        return -1;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    jd_close(&p->j);
    jd_close(&p->i);
    free(p);
    return 0;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void random_programs_agree(void **state)
{
    struct pair *p = *state;
    static uint8_t data[8192];
    char why[1024];
    for (uint64_t seed = 1; seed <= 300; seed++) {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull;
        for (size_t k = 0; k < sizeof(data); k += 8) {
            uint64_t v = xorshift(&s);
            memcpy(data + k, &v, 8);
        }
        /* a third of the programs mostly integer ops: bias the opcodes */
        if (seed % 3 == 0)
            for (size_t k = 256; k + 4 <= sizeof(data); k += 4)
                data[k] = (uint8_t)((data[k] & 0x80) | 0x33 | ((data[k] & 1) << 3));
        if (jd_run(&p->j, &p->i, data, sizeof(data), why, sizeof(why)))
            fail_msg("seed %llu: %s", (unsigned long long)seed, why);
    }
    struct rv_jit_stats st;
    rv_jit_get_stats(&p->j.hart, &st);
    assert_true(st.blocks > 1000);
}

static void random_programs_agree_in_user_mode(void **state)
{
    /* U-mode without paging or PMP: loads take the translator's direct
     * path into RAM, faults outside it included */
    struct pair *p = *state;
    static uint8_t data[8192];
    char why[1024];
    p->j.user = p->i.user = true;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        uint64_t s = seed * 0x51afd7ed558ccd1dull;
        for (size_t k = 0; k < sizeof(data); k += 8) {
            uint64_t v = xorshift(&s);
            memcpy(data + k, &v, 8);
        }
        if (jd_run(&p->j, &p->i, data, sizeof(data), why, sizeof(why)))
            fail_msg("seed %llu: %s", (unsigned long long)seed, why);
    }
    p->j.user = p->i.user = false;
}

static void random_programs_agree_in_batches(void **state)
{
    struct pair *p = *state;
    static uint8_t data[8192];
    char why[1024];
    for (uint64_t seed = 1; seed <= 60; seed++) {
        uint64_t s = seed * 0x2545f4914f6cdd1dull;
        for (size_t k = 0; k < sizeof(data); k += 8) {
            uint64_t v = xorshift(&s);
            memcpy(data + k, &v, 8);
        }
        if (jd_run_batches(&p->j, &p->i, data, sizeof(data), seed, why, sizeof(why)))
            fail_msg("seed %llu: %s", (unsigned long long)seed, why);
    }
}

/* Load a program at JD_CODE and run it on one machine until EBREAK traps
 * (mtvec 0 here: the hart stops with a fatal trap we check). */
static void load(struct jd_machine *m, const uint32_t *code, unsigned n)
{
    memset(m->ram, 0, JD_RAM_SIZE);
    memcpy(m->ram + JD_CODE, code, n * 4);
    rv_hart_reset(&m->hart, JD_RAM_BASE + JD_CODE);
    m->hart.mtvec = 0;
}

static void run_to_ebreak(struct jd_machine *m)
{
    for (int k = 0; k < 1000 && !m->hart.fatal; k++)
        rv_hart_run(&m->hart, 100000);
    assert_true(m->hart.fatal);
    assert_int_equal(m->hart.mcause, RV_EXC_BREAKPOINT);
}

static void stores_into_translated_code(void **state)
{
    struct pair *p = *state;
    /* x10 counts; the loop body's "addi x10, x10, 1" is rewritten into
     * "addi x10, x10, 100" by a store from the same block after the first
     * pass, with no FENCE.I: the next pass must see the new instruction */
    uint32_t code[] = {
        ADDI(11, 0, 3),                /* 0: x11 = 3 passes */
        ADDI(5, 0, 0),                 /* 4 */
        /* 8: loop */ ADDI(10, 10, 1), /* rewritten */
        ADDI(11, 11, -1),              /* 12 */
        SW(12, 13, 0),                 /* 16: [x13] = x12 (x13 = &insn at 8) */
        BNE(11, 0, -12),               /* 20: back to 8 */
        EBREAK,                        /* 24 */
    };
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code, sizeof(code) / 4);
        mc->hart.x[12] = ADDI(10, 10, 100);
        mc->hart.x[13] = JD_RAM_BASE + JD_CODE + 8;
        run_to_ebreak(mc);
        assert_int_equal(mc->hart.x[10], 1 + 100 + 100);
    }
}

static void fence_i_after_rewrite(void **state)
{
    struct pair *p = *state;
    /* call a function at 0x100 (returns x10 = 7), rewrite it to return 9,
     * FENCE.I, call again: x11 = first, x10 = second */
    uint32_t code[0x48] = {0};
    code[0] = JALR(1, 14, 0);  /* call *x14 */
    code[1] = ADDI(11, 10, 0); /* x11 = x10 */
    code[2] = SW(12, 14, 0);   /* rewrite the function's first instruction */
    code[3] = FENCE_I;
    code[4] = JALR(1, 14, 0);
    code[5] = EBREAK;
    code[0x40] = ADDI(10, 0, 7); /* the function, at +0x100 */
    code[0x41] = JALR(0, 1, 0);
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code, sizeof(code) / 4);
        mc->hart.x[12] = ADDI(10, 0, 9);
        mc->hart.x[14] = JD_RAM_BASE + JD_CODE + 0x100;
        run_to_ebreak(mc);
        assert_int_equal(mc->hart.x[11], 7);
        assert_int_equal(mc->hart.x[10], 9);
    }
}

static void precise_fault_mid_block(void **state)
{
    struct pair *p = *state;
    uint32_t code[] = {
        ADDI(5, 0, 1),  /* 0 */
        ADDI(6, 0, 2),  /* 4 */
        LD(7, 9, 0x10), /* 8: x9 = an address outside RAM: load access fault */
        ADDI(8, 0, 3),  /* 12: must not run */
        EBREAK,
    };
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code, sizeof(code) / 4);
        mc->hart.x[9] = 0x40000000;
        uint64_t i0 = mc->hart.minstret;
        rv_hart_run(&mc->hart, 1000);
        assert_true(mc->hart.fatal); /* mtvec 0: the trap stops the hart */
        assert_int_equal(mc->hart.mcause, RV_EXC_LOAD_ACCESS);
        assert_int_equal(mc->hart.mepc, JD_RAM_BASE + JD_CODE + 8);
        assert_int_equal(mc->hart.mtval, 0x40000010);
        assert_int_equal(mc->hart.x[5], 1);
        assert_int_equal(mc->hart.x[6], 2);
        assert_int_equal(mc->hart.x[8], 0);
        assert_int_equal(mc->hart.minstret - i0, 3); /* the faulting load counts */
    }
    /* and a store fault in the middle of a block leaves memory alone */
    uint32_t code2[] = {ADDI(5, 0, 1), SD(5, 2, 0), SD(5, 9, 0), ADDI(8, 0, 3), EBREAK};
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code2, sizeof(code2) / 4);
        mc->hart.x[2] = JD_RAM_BASE + JD_DATA;
        mc->hart.x[9] = JD_RAM_BASE + JD_RAM_SIZE; /* just past RAM */
        rv_hart_run(&mc->hart, 1000);
        assert_int_equal(mc->hart.mcause, RV_EXC_STORE_ACCESS);
        assert_int_equal(mc->hart.mepc, JD_RAM_BASE + JD_CODE + 8);
        assert_int_equal(mc->hart.mtval, JD_RAM_BASE + JD_RAM_SIZE);
        assert_int_equal(mc->ram[JD_DATA], 1);
        assert_int_equal(mc->hart.x[8], 0);
    }
}

struct irq_arg {
    struct rv_hart *h;
};

static void *raise_timer(void *arg)
{
    struct irq_arg *a = arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    rv_hart_set_irq(a->h, RV_MIP_MTIP, true);
    nanosleep(&ts, NULL);
    rv_hart_request_stop(a->h);
    return NULL;
}

static void interrupt_during_long_loop(void **state)
{
    struct pair *p = *state;
    /* a loop of two chained blocks that never leaves translated code on
     * its own; the handler (at +0x100) records mcause in x20 and spins */
    uint32_t code[0x44] = {0};
    code[0] = ADDI(10, 10, 1);
    code[1] = jal(0, 4);
    code[2] = ADDI(10, 10, 1);
    code[3] = jal(0, -12);
    code[0x40] = i_type(0x342, 0, 2, 20, 0x73); /* csrr x20, mcause */
    code[0x41] = jal(0, 0);
    struct jd_machine *mc = &p->j;
    load(mc, code, sizeof(code) / 4);
    mc->hart.mtvec = JD_RAM_BASE + JD_CODE + 0x100;
    mc->hart.mie = RV_MIP_MTIP;
    mc->hart.mstatus |= RV_MSTATUS_MIE;
    struct irq_arg a = {&mc->hart};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, raise_timer, &a), 0);
    enum rv_stop why = rv_hart_run(&mc->hart, UINT64_MAX / 2);
    pthread_join(t, NULL);
    assert_int_equal(why, RV_STOP_REQUEST);
    assert_int_equal(mc->hart.x[20], RV_CAUSE_INTERRUPT | 7);
    assert_true(mc->hart.mepc >= JD_RAM_BASE + JD_CODE &&
                mc->hart.mepc < JD_RAM_BASE + JD_CODE + 16);
    assert_true(mc->hart.x[10] > 1000); /* the loop ran translated for a while */
    struct rv_jit_stats st;
    rv_jit_get_stats(&mc->hart, &st);
    assert_true(st.chained >= 1);
    __atomic_store_n(&mc->hart.mip, 0, __ATOMIC_SEQ_CST);
}

static void *run_until_stopped(void *arg)
{
    struct rv_hart *h = arg;
    for (int k = 0; k < 100000 && !h->fatal; k++)
        rv_hart_run(h, 1000000);
    return NULL;
}

static void lr_sc_contention_between_harts(void **state)
{
    /* two translated harts on two host threads increment one word with
     * LR/SC retry loops: no increment may be lost */
    struct pair *p = *state;
    enum { N = 100000 };
    const uint32_t lr = (0x02u << 27) | (11u << 15) | (2u << 12) | (10u << 7) | 0x2f;
    const uint32_t sc = (0x03u << 27) | (10u << 20) | (11u << 15) | (2u << 12) | (12u << 7) | 0x2f;
    uint32_t code[] = {
        lr, ADDI(10, 10, 1), sc, BNE(12, 0, -12), ADDI(13, 13, -1), BNE(13, 0, -20), EBREAK};
    struct jd_machine *m = &p->j;
    load(m, code, sizeof(code) / 4);
    static struct rv_hart other;
    rv_hart_init(&other, 1, &m->hart.bus);
    assert_int_equal(rv_hart_set_accel(&other, RV_ACCEL_JIT, NULL), 0);
    rv_hart_reset(&other, JD_RAM_BASE + JD_CODE);
    other.mtvec = 0;
    struct rv_hart *hs[2] = {&m->hart, &other};
    for (int k = 0; k < 2; k++) {
        hs[k]->x[11] = JD_RAM_BASE + JD_DATA;
        hs[k]->x[13] = N;
    }
    memset(m->ram + JD_DATA, 0, 4);
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&t[k], NULL, run_until_stopped, hs[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 2; k++) {
        assert_true(hs[k]->fatal);
        assert_int_equal(hs[k]->mcause, RV_EXC_BREAKPOINT);
    }
    uint32_t v;
    memcpy(&v, m->ram + JD_DATA, 4);
    assert_int_equal(v, 2 * N);
    rv_hart_destroy(&other);
}

static void indirect_jumps(void **state)
{
    struct pair *p = *state;
    /* 1000 calls through a register: the jump cache's path, both ways */
    uint32_t code[0x44] = {0};
    code[0] = ADDI(11, 0, 1000);
    code[1] = JALR(1, 14, 0); /* call */
    code[2] = ADDI(11, 11, -1);
    code[3] = BNE(11, 0, -8);
    code[4] = EBREAK;
    code[0x40] = ADDI(10, 10, 3);
    code[0x41] = JALR(0, 1, 0); /* ret */
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code, sizeof(code) / 4);
        mc->hart.x[14] = JD_RAM_BASE + JD_CODE + 0x100;
        run_to_ebreak(mc);
        assert_int_equal(mc->hart.x[10], 3000);
        assert_int_equal(mc->hart.minstret, 1 + 1000 * 5 + 1);
    }
}

/* Registers a block holds in host registers are loaded on entry only if
 * the block may read them before writing them, and stored back at an exit
 * only if written by then: an exit (a taken branch, a fault, the end of the
 * block) before the write must leave memory's value alone, one after it
 * must store it, and a block that loops to its own start keeps them all. */
static void cached_registers_at_every_exit(void **state)
{
    struct pair *p = *state;
    const uint32_t beq = b_type(12, 0, 6, 0); /* beq x6, x0, +12 */
    uint32_t code[] = {
        BNE(6, 0, 24),   /* 0: x6 != 0: taken before x7, x8 are written */
        LD(9, 9, 0),     /* 4: x9 = 0x40000000 when x6 == 0 && x5 == 1: fault */
        ADDI(7, 0, 11),  /* 8: x7, x8: written first, used twice: cached */
        ADDI(8, 7, 2),   /* 12 */
        ADDI(7, 7, 1),   /* 16 */
        ADDI(8, 8, 3),   /* 20 */
        ADDI(10, 10, 1), /* 24: a loop on its own start: x10, x11 */
        ADDI(11, 11, -1), BNE(11, 0, -8), beq, /* 36: x6 == 0: to 48 */
        ADDI(12, 7, 0),                        /* 40 */
        EBREAK,                                /* 44 */
        ADDI(12, 8, 0),                        /* 48 */
        EBREAK,
    };
    for (int run = 0; run < 3; run++) {
        uint64_t regs[2][32];
        for (int m = 0; m < 2; m++) {
            struct jd_machine *mc = m ? &p->i : &p->j;
            load(mc, code, sizeof(code) / 4);
            for (unsigned r = 1; r < 32; r++)
                mc->hart.x[r] = 0x1000 + r;
            mc->hart.x[6] = run == 0;
            mc->hart.x[9] = run == 2 ? 0x40000000 : JD_RAM_BASE + JD_DATA;
            mc->hart.x[11] = 50;
            if (run == 2) {
                rv_hart_run(&mc->hart, 1000);
                assert_int_equal(mc->hart.mcause, RV_EXC_LOAD_ACCESS);
                assert_int_equal(mc->hart.mepc, JD_RAM_BASE + JD_CODE + 4);
            } else {
                run_to_ebreak(mc);
            }
            memcpy(regs[m], mc->hart.x, sizeof(regs[m]));
        }
        for (unsigned r = 0; r < 32; r++)
            if (regs[0][r] != regs[1][r])
                fail_msg("run %d: x%u is %#llx translated, %#llx interpreted", run, r,
                         (unsigned long long)regs[0][r], (unsigned long long)regs[1][r]);
        assert_int_equal(regs[0][7], run == 1 ? 12 : 0x1007);
        assert_int_equal(regs[0][8], run == 1 ? 16 : 0x1008);
        assert_int_equal(regs[0][11], run == 2 ? 50 : 0);
        assert_int_equal(regs[0][10], run == 2 ? 0x100a : 0x100a + 50);
    }
}

/* User-mode emulation's direct loads ([r11 + x[rs1] + imm], the bounds
 * check beside them) with negative offsets, at the end of RAM and just
 * past it (the slow path computes the address again), in blocks that keep
 * seven guest registers in host registers, three of them caller-saved
 * ones that live across a DIV helper call. */
static void user_mode_loads_and_helper_calls(void **state)
{
    struct pair *p = *state;
#define R(f7, rs2, rs1, f3, rd)                                                                    \
    (((f7) << 25) | ((rs2) << 20) | ((rs1) << 15) | ((f3) << 12) | ((rd) << 7) | 0x33)
    uint32_t code[] = {
        ADDI(9, 0, 5),       /* 0: a block that does not loop */
        ADDI(10, 9, 1),      /* 4 */
        R(1, 9, 10, 4, 11),  /* 8: div x11, x10, x9 */
        R(0, 10, 11, 0, 12), /* 12: add x12, x11, x10 */
        R(0, 11, 12, 0, 13), /* 16: add x13, x12, x11 */
        LD(7, 5, 8),         /* 20: loop */
        LW(8, 5, -4),        /* 24 */
        R(0, 7, 9, 0, 9),    /* add x9, x9, x7 */
        R(0, 8, 10, 0, 10),  /* add x10, x10, x8 */
        R(1, 6, 9, 4, 11),   /* div x11, x9, x6 */
        R(0, 11, 12, 0, 12), /* add x12, x12, x11 */
        ADDI(5, 5, 8),
        R(0, 10, 13, 0, 13), /* add x13, x13, x10 */
        ADDI(6, 6, -1),
        BNE(6, 0, -36), /* 56: back to 20 */
        LD(14, 15, -8), /* 60: the last 8 bytes of RAM */
        LD(16, 15, -7), /* 64: one byte past it: access fault */
        EBREAK,
    };
#undef R
    uint64_t regs[2][32];
    for (int m = 0; m < 2; m++) {
        struct jd_machine *mc = m ? &p->i : &p->j;
        load(mc, code, sizeof(code) / 4);
        for (size_t k = 0; k < 4096; k++)
            mc->ram[JD_DATA + k] = (uint8_t)(k * 37 + 11);
        memset(mc->ram + JD_RAM_SIZE - 8, 0x5a, 8);
        for (unsigned r = 1; r < 32; r++)
            mc->hart.x[r] = 0x1000 + r;
        mc->hart.x[5] = JD_RAM_BASE + JD_DATA + 16;
        mc->hart.x[6] = 200;
        mc->hart.x[15] = JD_RAM_BASE + JD_RAM_SIZE;
        mc->hart.pmp_count = 0;
        rv_set_priv(&mc->hart, RV_PRIV_U);
        for (int k = 0; k < 100 && !mc->hart.fatal; k++)
            rv_hart_run(&mc->hart, 1000);
        assert_true(mc->hart.fatal);
        assert_int_equal(mc->hart.mcause, RV_EXC_LOAD_ACCESS);
        assert_int_equal(mc->hart.mepc, JD_RAM_BASE + JD_CODE + 64);
        assert_int_equal(mc->hart.mtval, JD_RAM_BASE + JD_RAM_SIZE - 7);
        memcpy(regs[m], mc->hart.x, sizeof(regs[m]));
    }
    for (unsigned r = 0; r < 32; r++)
        if (regs[0][r] != regs[1][r])
            fail_msg("x%u is %#llx translated, %#llx interpreted", r,
                     (unsigned long long)regs[0][r], (unsigned long long)regs[1][r]);
    assert_int_equal(regs[0][14], 0x5a5a5a5a5a5a5a5aull);
    assert_int_equal(regs[0][16], 0x1010);
    assert_int_equal(regs[0][6], 0);
    assert_int_equal(p->j.hart.minstret, p->i.hart.minstret);
    struct rv_jit_stats st;
    rv_jit_get_stats(&p->j.hart, &st);
    assert_true(st.fallback < 100); /* the loop ran translated */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(random_programs_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(random_programs_agree_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(random_programs_agree_in_user_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(stores_into_translated_code, setup, teardown),
        cmocka_unit_test_setup_teardown(fence_i_after_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(precise_fault_mid_block, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupt_during_long_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(indirect_jumps, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_registers_at_every_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(user_mode_loads_and_helper_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(lr_sc_contention_between_harts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
