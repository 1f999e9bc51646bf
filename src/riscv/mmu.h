/* Address translation, PMP and the TLB (mmu.c): the slow paths behind the
 * TLB lookups the interpreter and the translator do inline. On failure the
 * slow paths set h->exc_cause/exc_tval and return false. */
#ifndef VESSEL_RISCV_MMU_H
#define VESSEL_RISCV_MMU_H

#include <stdbool.h>
#include <stdint.h>

#include "riscv/hart.h"

enum rv_access { RV_ACC_LOAD = 0, RV_ACC_STORE = 1, RV_ACC_FETCH = 2 };

#define RV_TLB_IDX(va) (((va) >> 12) & (RV_TLB_SIZE - 1))

bool rv_load_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val);
bool rv_store_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val);
bool rv_fetch_slow(struct rv_hart *h, uint64_t pc, uint32_t *insn);
/* Host pointer for an atomic access of len bytes at va (must be aligned and
 * in RAM; load permission for LR, else store permission). NULL on fault
 * (exception set). */
void *rv_amo_ptr(struct rv_hart *h, uint64_t va, unsigned len, bool is_load);
void rv_tlb_flush_set(struct rv_hart *h, unsigned set);
/* every set that depends on satp (all but M) */
void rv_tlb_flush_virt(struct rv_hart *h);
void rv_tlb_flush_all(struct rv_hart *h);
void rv_tlb_flush_va(struct rv_hart *h, uint64_t va);

static inline unsigned rv_priv_set(unsigned priv)
{
    return priv == 3 ? 2 : priv;
}

#endif
