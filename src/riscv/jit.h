/* The translator: RISC-V basic blocks to x86-64 (jit.c). */
#ifndef VESSEL_RISCV_JIT_H
#define VESSEL_RISCV_JIT_H

#include <stdbool.h>
#include <stdint.h>

#include "riscv/hart.h"

/* True on hosts the translator can generate code for. */
bool rv_jit_available(void);
/* Allocate / free h->jit (the code buffer and the block tables). */
int rv_jit_create(struct rv_hart *h, vs_err *err);
void rv_jit_destroy(struct rv_hart *h);
/* Like rv_interp_batch: run up to n instructions (traps count) from h->pc
 * through translated blocks, leaving early where an instruction asks to.
 * Returns how many ran. */
uint64_t rv_jit_batch(struct rv_hart *h, uint64_t n);
/* The lock-step tester's unit: exactly one translated block at h->pc (or
 * one instruction where nothing can be translated). Returns how many
 * instructions ran (traps count), which the interpreter then runs on its
 * copy of the machine. */
uint64_t rv_jit_step(struct rv_hart *h);

/* Statistics, for tests and VESSEL_EMU_STATS. */
struct rv_jit_stats {
    uint64_t blocks;        /* translated */
    uint64_t flushes;       /* whole-cache invalidations */
    uint64_t chained;       /* direct exits patched into jumps */
    uint64_t fallback;      /* instructions the interpreter ran instead */
    uint64_t invalidations; /* pages whose blocks a store dropped */
};
void rv_jit_get_stats(struct rv_hart *h, struct rv_jit_stats *s);

#endif
