/* The board's CLINT (SiFive-compatible, the layout of an ACLINT MSWI + MTIMER
 * pair): per-hart msip words at 0x0, mtimecmp at 0x4000 and the shared mtime
 * at 0xbff8. mtime runs at RV_CLINT_FREQ from the host's monotonic clock, so
 * guest time advances in real time however fast the harts execute.
 *
 * The timer interrupt is a level: MTIP (or STIP, when the board runs its
 * built-in SBI and the CLINT stands in for the firmware's timer) is high
 * while mtime >= mtimecmp. mtime moves by itself, so nothing writes the
 * level when the deadline passes: each hart thread calls clint_update_timer()
 * between instruction slices and bounds its WFI sleep by clint_deadline(). */
#ifndef VESSEL_RISCV_CLINT_H
#define VESSEL_RISCV_CLINT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "state/state.h"
#include "util/err.h"

#define RV_CLINT_BASE 0x2000000ull
#define RV_CLINT_SIZE 0x10000ull
#define RV_CLINT_FREQ 10000000ull /* 10 MHz, the timebase-frequency */
#define RV_CLINT_MAX_HARTS 64

struct rv_hart;

struct clint {
    unsigned nharts;
    struct rv_hart **harts; /* nharts entries; NULL entries are allowed (tests) */
    uint64_t timer_irq_bit; /* RV_MIP_MTIP, or RV_MIP_STIP for the built-in SBI */
    uint64_t clock_base_ns; /* host monotonic time at mtime == mtime_base */
    uint64_t mtime_base;    /* mtime value at clock_base_ns (snapshots, writes) */
    uint64_t mtimecmp[RV_CLINT_MAX_HARTS];
    uint32_t msip[RV_CLINT_MAX_HARTS];
    /* Test hook: if set, replaces the host clock (nanoseconds); kept by clint_init. */
    uint64_t (*clock_ns)(void);
};

/* harts[i] is hart i; they receive rv_hart_set_irq() calls. c must be
 * zeroed or initialised before (clock_ns survives re-initialisation). */
void clint_init(struct clint *c, struct rv_hart **harts, unsigned nharts, uint64_t timer_irq_bit);
uint64_t clint_mtime(struct clint *c);
/* Set mtime (guest write of the mtime register, or restore). */
void clint_set_mtime(struct clint *c, uint64_t mtime);

/* Drive hart's timer level from mtime vs mtimecmp; returns the level. */
bool clint_update_timer(struct clint *c, unsigned hart);
/* mtime value at which hart's timer fires, UINT64_MAX if never. */
uint64_t clint_deadline(struct clint *c, unsigned hart);
/* Set hart's compare value (also the built-in SBI's set_timer). */
void clint_set_timecmp(struct clint *c, unsigned hart, uint64_t value);
/* Nanoseconds of host time until mtime reaches `mtime`, 0 if passed. */
int64_t clint_ns_until(struct clint *c, uint64_t mtime);

/* io_region callbacks (opaque = struct clint *). */
uint64_t clint_io_read(void *opaque, uint64_t offset, unsigned len);
void clint_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len);

/* State section "riscv-clint", version 1. */
void clint_save(struct clint *c, struct state_writer *w);
int clint_load(struct clint *c, struct state_reader *r, vs_err *err);

#endif
