/* The interpreter (exec.c), the reference accelerator. */
#ifndef VESSEL_RISCV_EXEC_H
#define VESSEL_RISCV_EXEC_H

#include <stdint.h>

#include "riscv/hart.h"

/* Run up to n instructions (traps count) from h->pc; returns how many ran.
 * Leaves early when an instruction asks to (rv_sem_exec's RV_RES_EXIT: WFI,
 * xRET, interrupts to re-check) or the hart stops on a fatal trap. */
uint64_t rv_interp_batch(struct rv_hart *h, uint64_t n);

#endif
