/* Traps, privilege changes, interrupts and time: the hart's internal
 * interface (hart.c) to the instruction paths, CSRs and the user-mode
 * emulator. */
#ifndef VESSEL_RISCV_TRAP_H
#define VESSEL_RISCV_TRAP_H

#include <stdbool.h>
#include <stdint.h>

#include "riscv/hart.h"

void rv_take_trap(struct rv_hart *h, uint64_t cause, uint64_t tval);
void rv_update_ctx(struct rv_hart *h); /* priv or mstatus changed: pick TLB sets */
void rv_set_priv(struct rv_hart *h, unsigned priv);
uint64_t rv_get_time(struct rv_hart *h);
/* Between instruction batches: deferred flushes, stop requests, Sstc,
 * interrupts. True if the hart must stop (*why says why). */
bool rv_check_events(struct rv_hart *h, enum rv_stop *why);

#endif
