/* The differential tester's comparison (diff.c): two harts that ran the same
 * instructions, one translated and one interpreted, must agree on every
 * architectural register. */
#ifndef VESSEL_RISCV_DIFF_H
#define VESSEL_RISCV_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "riscv/hart.h"

/* True if a and b differ in pc, privilege, the integer and FP registers,
 * fflags/frm, the trap and translation CSRs, minstret or the LR
 * reservation; buf (if len) says where, first differences first. */
bool rv_hart_differs(const struct rv_hart *a, const struct rv_hart *b, char *buf, size_t len);

#endif
