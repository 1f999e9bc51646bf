/* Control and status registers (csr.c). */
#ifndef VESSEL_RISCV_CSR_H
#define VESSEL_RISCV_CSR_H

#include <stdbool.h>
#include <stdint.h>

#include "riscv/hart.h"

#define RV_MENVCFG_STCE (1ull << 63)
#define RV_MENVCFG_PBMTE (1ull << 62)

/* false = illegal instruction */
bool rv_csr_read(struct rv_hart *h, unsigned csr, uint64_t *val);
bool rv_csr_write(struct rv_hart *h, unsigned csr, uint64_t val);
uint64_t rv_mstatus_read(struct rv_hart *h);

#endif
