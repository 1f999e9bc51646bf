/* The board's PLIC (SiFive layout, as on QEMU's virt): RV_PLIC_NSRC - 1
 * level-triggered sources, two contexts per hart (2h = M-mode external
 * interrupt, 2h+1 = S-mode), 3-bit priorities. Devices drive sources
 * through an irq_line (plic_irq_line()); a source that is still high when
 * the guest completes it becomes pending again, so no edge is ever lost.
 * Thread-safe: device threads raise lines while harts claim. */
#ifndef VESSEL_RISCV_PLIC_H
#define VESSEL_RISCV_PLIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

#define RV_PLIC_BASE 0xc000000ull
#define RV_PLIC_SIZE 0x4000000ull
#define RV_PLIC_NSRC 96 /* sources 1..95 (0 means "none") */
#define RV_PLIC_WORDS (RV_PLIC_NSRC / 32)
#define RV_PLIC_MAX_CTX 128
#define RV_PLIC_PRIO_MASK 7u

struct rv_hart;

struct plic {
    pthread_mutex_t lock;
    unsigned nctx; /* 2 per hart */
    struct rv_hart **harts;
    /* Hook for tests or other boards: called instead of rv_hart_set_irq. */
    void (*set_eip)(void *opaque, unsigned ctx, bool level);
    void *set_eip_opaque;
    /* state */
    uint32_t priority[RV_PLIC_NSRC];
    uint32_t pending[RV_PLIC_WORDS];
    uint32_t claimed[RV_PLIC_WORDS];
    uint32_t level[RV_PLIC_WORDS];
    uint32_t enable[RV_PLIC_MAX_CTX][RV_PLIC_WORDS];
    uint32_t threshold[RV_PLIC_MAX_CTX];
    bool eip[RV_PLIC_MAX_CTX];
};

void plic_init(struct plic *p, struct rv_hart **harts, unsigned nharts);
void plic_destroy(struct plic *p);
/* Back to power-on state; source levels are kept (devices still drive them). */
void plic_reset(struct plic *p);
/* Drive source src (1..RV_PLIC_NSRC-1) to level. */
void plic_set_level(struct plic *p, unsigned src, int level);
/* An irq_line wired to source src. */
struct irq_line plic_irq_line(struct plic *p, unsigned src);

/* io_region callbacks (opaque = struct plic *). */
uint64_t plic_io_read(void *opaque, uint64_t offset, unsigned len);
void plic_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len);

/* State section "riscv-plic", version 1. */
void plic_save(struct plic *p, struct state_writer *w);
int plic_load(struct plic *p, struct state_reader *r, vs_err *err);

#endif
