/* Differential testing of the translator against the interpreter on
 * random instruction streams (shared by tests/unit/test_riscv_jit.c, a
 * bounded run with fixed seeds, and tests/fuzz/fuzz_riscv_jit.c, the
 * libFuzzer target): bytes become a program of valid RV64GC (+ Zba/Zbb/Zbs)
 * instructions after a fixed prologue that points half the registers into
 * RAM; two harts (translated, interpreted) on two copies of the memory run
 * it in lock-step, block by block, and must agree on every register and CSR
 * after each block and on memory at the end. Traps go to an M-mode handler
 * that skips the faulting instruction, so faults mid-block, in handlers and
 * at random jump targets are all compared too. Header-only. */
#ifndef VESSEL_TEST_RISCV_JIT_DIFF_H
#define VESSEL_TEST_RISCV_JIT_DIFF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "riscv/diff.h"
#include "riscv/exec.h"
#include "riscv/hart.h"
#include "riscv/insn.h"
#include "riscv/jit.h"
#include "riscv/trap.h"

#define JD_RAM_BASE 0x80000000ull
#define JD_RAM_SIZE (1ull << 20)
#define JD_HANDLER 0x100  /* trap handler: mepc += 4; mret */
#define JD_CODE 0x1000    /* the program */
#define JD_DATA 0x40000   /* what the pointer registers point into */
#define JD_MAX_INSNS 2048 /* per program */
#define JD_BUDGET 20000   /* instructions per run */

struct jd_machine {
    struct rv_hart hart;
    uint8_t *ram;
    bool user; /* run the program in U-mode with no PMP, as user-mode emulation does */
};

static inline bool jd_no_mmio_read(void *o, uint64_t pa, unsigned len, uint64_t *v)
{
    return false;
}

static inline bool jd_no_mmio_write(void *o, uint64_t pa, uint64_t v, unsigned len)
{
    return false;
}

static inline uint64_t jd_time(void *o)
{
    return 12345; /* fixed: both copies read the same */
}

static inline int jd_open(struct jd_machine *m, enum rv_accel accel)
{
    memset(m, 0, sizeof(*m));
    m->ram = mmap(NULL, JD_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->ram == MAP_FAILED)
        return -1;
    struct rv_bus bus = {.ram = m->ram,
                         .ram_base = JD_RAM_BASE,
                         .ram_size = JD_RAM_SIZE,
                         .mmio_read = jd_no_mmio_read,
                         .mmio_write = jd_no_mmio_write,
                         .get_time = jd_time,
                         .opaque = m};
    rv_hart_init(&m->hart, 0, &bus);
    return rv_hart_set_accel(&m->hart, accel, NULL);
}

static inline void jd_close(struct jd_machine *m)
{
    rv_hart_destroy(&m->hart);
    munmap(m->ram, JD_RAM_SIZE);
}

static inline void jd_put32(uint8_t *ram, uint64_t off, uint32_t v)
{
    memcpy(ram + off, &v, 4);
}

/* Is this CSR number safe to touch (deterministic on both copies)? The
 * clock (time) is not; neither is replacing the trap handler. */
static inline bool jd_csr_ok(unsigned csr)
{
    return csr != 0xc01 && csr != 0x305 && csr != 0x105;
}

/* Fill ram with the handler and a program made of data; returns the
 * number of instructions. */
static inline unsigned jd_build(uint8_t *ram, const uint8_t *data, size_t size, uint64_t regs[32])
{
    /* handler: csrr t6, mepc; addi t6, t6, 4; csrw mepc, t6; mret */
    jd_put32(ram, JD_HANDLER, 0x34102ff3);
    jd_put32(ram, JD_HANDLER + 4, 0x004f8f93);
    jd_put32(ram, JD_HANDLER + 8, 0x341f9073);
    jd_put32(ram, JD_HANDLER + 12, 0x30200073);
    /* registers: x1-x15 point into the data area, the rest from the input */
    memset(regs, 0, 32 * sizeof(uint64_t));
    size_t pos = 0;
    for (unsigned r = 1; r < 32; r++) {
        uint64_t v = 0;
        for (unsigned k = 0; k < 8 && pos < size; k++)
            v |= (uint64_t)data[pos++] << (8 * k);
        regs[r] = r < 16 ? JD_RAM_BASE + JD_DATA + (v & 0xfff8) : v;
    }
    uint64_t off = JD_CODE;
    unsigned n = 0;
    struct rv_dentry e;
    while (pos + 4 <= size && n < JD_MAX_INSNS) {
        uint32_t w;
        memcpy(&w, data + pos, 4);
        pos += 4;
        if ((w & 3) != 3)
            w &= 0xffff;
        rv_decode(&e, 0, w);
        if (e.op == RV_OP_ILLEGAL && (w & 0xff) != 0x77)
            continue; /* keep a few illegal encodings (low byte 0x77) */
        if (e.op >= RV_OP_CSRRW && e.op <= RV_OP_CSRRCI && !jd_csr_ok((unsigned)e.imm))
            continue;
        if (e.op == RV_OP_WFI)
            continue; /* would wait for an interrupt nothing raises */
        if ((w & 3) == 3) {
            jd_put32(ram, off, w);
            off += 4;
        } else {
            uint16_t c = (uint16_t)w;
            memcpy(ram + off, &c, 2);
            off += 2;
        }
        n++;
    }
    /* the end: jump to itself (the budget stops it) */
    jd_put32(ram, off, 0x0000006f);
    /* the data area: a pattern */
    for (unsigned i = 0; i < 0x10000; i += 8) {
        uint64_t v = 0x0123456789abcdefull * (i + 1);
        memcpy(ram + JD_DATA + i, &v, 8);
    }
    return n;
}

static inline void jd_reset(struct jd_machine *m, const uint64_t regs[32])
{
    struct rv_hart *h = &m->hart;
    rv_hart_reset(h, JD_RAM_BASE + JD_CODE);
    memcpy(h->x, regs, 32 * sizeof(uint64_t));
    h->mtvec = JD_RAM_BASE + JD_HANDLER;
    h->mstatus |= 1ull << 13; /* FS: initial */
    for (unsigned i = 0; i < 32; i++)
        h->f[i] = regs[i] ^ 0x3ff0000000000000ull;
    if (m->user) { /* traps still go to the M-mode handler, which returns to U */
        h->pmp_count = 0;
        rv_set_priv(h, RV_PRIV_U);
    }
}

/* Run the program on both; 0 if they agree, else 1 with a description in
 * why. */
static inline int jd_run(struct jd_machine *mj, struct jd_machine *mi, const uint8_t *data,
                         size_t size, char *why, size_t len)
{
    uint64_t regs[32];
    memset(mj->ram, 0, JD_RAM_SIZE);
    jd_build(mj->ram, data, size, regs);
    memcpy(mi->ram, mj->ram, JD_RAM_SIZE);
    jd_reset(mj, regs);
    jd_reset(mi, regs);
    struct rv_hart *hj = &mj->hart, *hi = &mi->hart;
    uint64_t used = 0;
    while (used < JD_BUDGET && !hj->fatal) {
        uint64_t pc = hj->pc;
        uint64_t k = rv_jit_step(hj);
        uint64_t ki = rv_interp_batch(hi, k);
        used += k ? k : 1;
        if (k != ki) {
            snprintf(why, len, "block at %#llx: translator ran %llu, interpreter %llu",
                     (unsigned long long)pc, (unsigned long long)k, (unsigned long long)ki);
            return 1;
        }
        char d[512];
        if (rv_hart_differs(hj, hi, d, sizeof(d))) {
            snprintf(why, len, "after the block at %#llx: %s", (unsigned long long)pc, d);
            return 1;
        }
        hj->wfi = hi->wfi = false;
    }
    if (memcmp(mj->ram, mi->ram, JD_RAM_SIZE)) {
        size_t o = 0;
        while (mj->ram[o] == mi->ram[o])
            o++;
        snprintf(why, len, "RAM differs at %#llx", (unsigned long long)(JD_RAM_BASE + o));
        return 1;
    }
    return 0;
}

/* The same program through rv_hart_run() in batches of random sizes on
 * the translator (tails of batches run interpreted, blocks are cut by the
 * budget) and in one batch on the interpreter: the same instruction count
 * must give the same state. */
static inline int jd_run_batches(struct jd_machine *mj, struct jd_machine *mi, const uint8_t *data,
                                 size_t size, uint64_t seed, char *why, size_t len)
{
    uint64_t regs[32];
    memset(mj->ram, 0, JD_RAM_SIZE);
    jd_build(mj->ram, data, size, regs);
    memcpy(mi->ram, mj->ram, JD_RAM_SIZE);
    jd_reset(mj, regs);
    jd_reset(mi, regs);
    uint64_t used = 0;
    while (used < JD_BUDGET && !mj->hart.fatal) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t n = 1 + (seed >> 33) % 300;
        rv_hart_run(&mj->hart, n);
        used += n;
        mj->hart.wfi = false;
    }
    rv_hart_run(&mi->hart, used);
    char d[512];
    if (!mj->hart.fatal && rv_hart_differs(&mj->hart, &mi->hart, d, sizeof(d))) {
        snprintf(why, len, "after %llu instructions: %s", (unsigned long long)used, d);
        return 1;
    }
    if (!mj->hart.fatal && memcmp(mj->ram, mi->ram, JD_RAM_SIZE)) {
        snprintf(why, len, "RAM differs after %llu instructions", (unsigned long long)used);
        return 1;
    }
    return 0;
}

#endif
