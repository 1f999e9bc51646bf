/* Address translation (Sv39/Sv48, hardware A/D updates), PMP, the TLB and
 * the slow paths of loads, stores and instruction fetch. The interpreter's
 * fast path only looks up the TLB; everything else comes here. */
#include <string.h>

#include "riscv/csr.h"
#include "riscv/mmu.h"

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PBMT (3ull << 61)
#define PTE_N (1ull << 63)
#define PTE_RESERVED (0x7full << 54)

#define PMP_R 1u
#define PMP_W 2u
#define PMP_X 4u
#define PMP_A 0x18u
#define PMP_L 0x80u

void rv_tlb_flush_set(struct rv_hart *h, unsigned set)
{
    memset(h->tlb[set], 0xff, sizeof(h->tlb[set]));
    h->tlb_gen++;
}

void rv_tlb_flush_virt(struct rv_hart *h)
{
    rv_tlb_flush_set(h, 0);
    rv_tlb_flush_set(h, 1);
    rv_tlb_flush_set(h, 3);
}

void rv_tlb_flush_all(struct rv_hart *h)
{
    memset(h->tlb, 0xff, sizeof(h->tlb));
    h->tlb_gen++;
}

void rv_tlb_flush_va(struct rv_hart *h, uint64_t va)
{
    uint64_t tag = va >> 12;
    static const unsigned sets[] = {0, 1, 3};
    for (unsigned si = 0; si < 3; si++)
        for (unsigned k = 0; k < 3; k++) {
            unsigned s = sets[si];
            struct rv_tlb_entry *e = &h->tlb[s][k][tag & (RV_TLB_SIZE - 1)];
            if (e->tag == tag)
                e->tag = UINT64_MAX;
        }
    h->tlb_gen++;
}

/* Does RAM page pa hold translated code? (see struct rv_hart's code_pages) */
static inline bool code_page(const struct rv_hart *h, uint64_t pa)
{
    return h->code_pages && h->code_pages[(pa - h->bus.ram_base) >> 12];
}

/* A store reached translated code: the translator drops that page's blocks
 * (all blocks if two pages were written before it looked). */
static void code_write(struct rv_hart *h, uint64_t pa)
{
    uint64_t page = (pa - h->bus.ram_base) >> 12;
    if (!__atomic_load_n(&h->code_written, __ATOMIC_RELAXED))
        h->code_written_page = page;
    else if (h->code_written_page != page)
        h->code_written_page = UINT64_MAX;
    __atomic_store_n(&h->code_written, true, __ATOMIC_RELEASE);
}

static void pmp_range(const struct rv_hart *h, unsigned i, uint64_t *lo, uint64_t *hi)
{
    unsigned a = (h->pmpcfg[i] & PMP_A) >> 3;
    uint64_t addr = h->pmpaddr[i];
    *lo = *hi = 0;
    switch (a) {
    case 1: /* TOR */
        *lo = i ? h->pmpaddr[i - 1] << 2 : 0;
        *hi = addr << 2;
        break;
    case 2: /* NA4 */
        *lo = addr << 2;
        *hi = *lo + 4;
        break;
    case 3: { /* NAPOT */
        unsigned ones = (unsigned)__builtin_ctzll(~addr);
        if (ones >= 54) {
            *lo = 0;
            *hi = UINT64_MAX;
        } else {
            uint64_t size = 1ull << (ones + 3);
            *lo = (addr << 2) & ~(size - 1);
            *hi = *lo + size;
        }
        break;
    }
    }
}

/* PMP check of [pa, pa+len) for an access of kind acc at privilege priv.
 * If whole_page is non-NULL it is set to whether the verdict holds for the
 * whole 4 KiB page (so the TLB may cache it). */
static bool pmp_check(const struct rv_hart *h, uint64_t pa, uint64_t len, enum rv_access acc,
                      unsigned priv, bool *whole_page)
{
    uint64_t page = pa & ~0xfffull;
    if (whole_page)
        *whole_page = true;
    if (!h->pmp_count)
        return true;
    for (unsigned i = 0; i < h->pmp_count; i++) {
        uint8_t cfg = h->pmpcfg[i];
        if (!(cfg & PMP_A))
            continue;
        uint64_t lo, hi;
        pmp_range(h, i, &lo, &hi);
        if (lo >= hi)
            continue;
        bool overlaps_page = page < hi && page + 4096 > lo;
        bool covers_page = lo <= page && page + 4096 <= hi;
        bool match_any = pa < hi && pa + len > lo;
        bool match_all = lo <= pa && pa + len <= hi;
        if (whole_page && overlaps_page && !covers_page)
            *whole_page = false;
        if (!match_any)
            continue;
        if (!match_all)
            return false; /* partial match fails */
        if (priv == RV_PRIV_M && !(cfg & PMP_L))
            return true;
        unsigned need = acc == RV_ACC_LOAD ? PMP_R : acc == RV_ACC_STORE ? PMP_W : PMP_X;
        return (cfg & need) != 0;
    }
    return priv == RV_PRIV_M;
}

static inline bool in_ram(const struct rv_hart *h, uint64_t pa, uint64_t len)
{
    return pa >= h->bus.ram_base && pa - h->bus.ram_base < h->bus.ram_size &&
           h->bus.ram_size - (pa - h->bus.ram_base) >= len;
}

static uint64_t fault_cause(enum rv_access acc, bool page)
{
    if (page)
        return acc == RV_ACC_LOAD    ? RV_EXC_LOAD_PAGE
               : acc == RV_ACC_STORE ? RV_EXC_STORE_PAGE
                                     : RV_EXC_INSN_PAGE;
    return acc == RV_ACC_LOAD    ? RV_EXC_LOAD_ACCESS
           : acc == RV_ACC_STORE ? RV_EXC_STORE_ACCESS
                                 : RV_EXC_INSN_ACCESS;
}

/* Translate va for access acc; on success *pa is set and *cacheable says the
 * page may go into the TLB. Returns 0 or an exception cause + 1. */
static unsigned translate(struct rv_hart *h, uint64_t va, enum rv_access acc, uint64_t *pa,
                          bool *cacheable)
{
    unsigned priv = h->priv;
    uint64_t mstatus = h->mstatus;
    if (acc != RV_ACC_FETCH && priv == RV_PRIV_M && (mstatus & RV_MSTATUS_MPRV))
        priv = (unsigned)((mstatus & RV_MSTATUS_MPP) >> 11);
    unsigned mode = (unsigned)(h->satp >> 60);
    *cacheable = true;
    if (priv == RV_PRIV_M || mode == 0) {
        *pa = va;
        return 0;
    }
    unsigned levels = mode == 9 ? 4 : 3;
    unsigned vabits = 12 + 9 * levels;
    /* va must be sign-extended from bit vabits-1 */
    int64_t sx = (int64_t)(va << (64 - vabits)) >> (64 - vabits);
    if ((uint64_t)sx != va)
        return (unsigned)fault_cause(acc, true) + 1;

    uint64_t table = (h->satp & ((1ull << 44) - 1)) << 12;
    for (int level = (int)levels - 1; level >= 0; level--) {
        uint64_t idx = (va >> (12 + 9 * level)) & 511;
        uint64_t pte_pa = table + idx * 8;
        if (!in_ram(h, pte_pa, 8) || !pmp_check(h, pte_pa, 8, RV_ACC_LOAD, RV_PRIV_S, NULL))
            return (unsigned)fault_cause(acc, false) + 1;
        uint64_t *ptep = (uint64_t *)(h->bus.ram + (pte_pa - h->bus.ram_base));
        uint64_t pte = __atomic_load_n(ptep, __ATOMIC_ACQUIRE);
    again:
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED) ||
            (pte & PTE_N))
            return (unsigned)fault_cause(acc, true) + 1;
        if ((pte & PTE_PBMT) && (!(h->menvcfg & RV_MENVCFG_PBMTE) || (pte & PTE_PBMT) == PTE_PBMT))
            return (unsigned)fault_cause(acc, true) + 1;
        uint64_t ppn = (pte >> 10) & ((1ull << 44) - 1);
        if (!(pte & (PTE_R | PTE_X))) {
            if (level == 0 || (pte & (PTE_A | PTE_D | PTE_U | PTE_PBMT)))
                return (unsigned)fault_cause(acc, true) + 1;
            table = ppn << 12;
            continue;
        }
        /* leaf */
        bool ok;
        if (acc == RV_ACC_FETCH)
            ok = (pte & PTE_X) != 0;
        else if (acc == RV_ACC_LOAD)
            ok = (pte & PTE_R) || ((mstatus & RV_MSTATUS_MXR) && (pte & PTE_X));
        else
            ok = (pte & PTE_W) != 0;
        if (priv == RV_PRIV_U) {
            ok = ok && (pte & PTE_U);
        } else if (pte & PTE_U) {
            if (acc == RV_ACC_FETCH || !(mstatus & RV_MSTATUS_SUM))
                ok = false;
        }
        if (!ok)
            return (unsigned)fault_cause(acc, true) + 1;
        if (level > 0 && (ppn & ((1ull << (9 * level)) - 1)))
            return (unsigned)fault_cause(acc, true) + 1; /* misaligned superpage */
        uint64_t want = PTE_A | (acc == RV_ACC_STORE ? PTE_D : 0);
        if ((pte & want) != want) {
            /* hardware A/D update, atomic against other harts and the guest */
            if (!pmp_check(h, pte_pa, 8, RV_ACC_STORE, RV_PRIV_S, NULL))
                return (unsigned)fault_cause(acc, false) + 1;
            uint64_t npte = pte | want;
            if (!__atomic_compare_exchange_n(ptep, &pte, npte, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                goto again; /* pte reloaded */
            if (h->bus.dirty)
                h->bus.dirty(h->bus.opaque, pte_pa, 8);
            pte = npte;
        }
        uint64_t offmask = (1ull << (12 + 9 * level)) - 1;
        *pa = ((ppn << 12) & ~offmask) | (va & offmask);
        /* a store through a clean mapping must come back here to set D; a
         * load TLB entry is fine for a clean page */
        return 0;
    }
    return (unsigned)fault_cause(acc, true) + 1;
}

static void tlb_insert(struct rv_hart *h, enum rv_access acc, uint64_t va, uint64_t pa)
{
    unsigned set = acc == RV_ACC_FETCH ? h->iset : h->dset;
    uint64_t tag = va >> 12;
    struct rv_tlb_entry *e = &h->tlb[set][acc][tag & (RV_TLB_SIZE - 1)];
    uint64_t pa_page = pa & ~0xfffull;
    if (acc == RV_ACC_STORE && code_page(h, pa_page))
        return; /* stores to translated code must reach store_one */
    e->tag = tag;
    e->addend = (uintptr_t)(h->bus.ram + (pa_page - h->bus.ram_base)) - (uintptr_t)(tag << 12);
    if (acc == RV_ACC_STORE && h->bus.dirty)
        h->bus.dirty(h->bus.opaque, pa_page, 4096);
}

/* Translate + PMP + TLB fill for one access that does not cross a page.
 * Returns a host pointer for RAM, or NULL with *pa set for MMIO; on fault
 * returns NULL with the exception recorded and *fault = true. */
static uint8_t *access_page(struct rv_hart *h, uint64_t va, unsigned len, enum rv_access acc,
                            uint64_t *pa, bool *fault)
{
    bool cacheable, whole;
    unsigned priv = h->priv;
    if (acc != RV_ACC_FETCH && priv == RV_PRIV_M && (h->mstatus & RV_MSTATUS_MPRV))
        priv = (unsigned)((h->mstatus & RV_MSTATUS_MPP) >> 11);
    *fault = false;
    unsigned r = translate(h, va, acc, pa, &cacheable);
    if (r) {
        h->exc_cause = r - 1;
        h->exc_tval = va;
        *fault = true;
        return NULL;
    }
    if (!pmp_check(h, *pa, len, acc, priv, &whole)) {
        h->exc_cause = fault_cause(acc, false);
        h->exc_tval = va;
        *fault = true;
        return NULL;
    }
    if (!in_ram(h, *pa, len))
        return NULL;
    if (cacheable && whole && in_ram(h, *pa & ~0xfffull, 4096))
        tlb_insert(h, acc, va, *pa);
    return h->bus.ram + (*pa - h->bus.ram_base);
}

static bool load_one(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val)
{
    uint64_t pa;
    bool fault;
    uint8_t *p = access_page(h, va, len, RV_ACC_LOAD, &pa, &fault);
    if (fault)
        return false;
    if (p) {
        uint64_t v = 0;
        memcpy(&v, p, len);
        *val = v;
        return true;
    }
    if (h->bus.mmio_read && (len == 1 || len == 2 || len == 4 || len == 8) &&
        h->bus.mmio_read(h->bus.opaque, pa, len, val))
        return true;
    h->exc_cause = RV_EXC_LOAD_ACCESS;
    h->exc_tval = va;
    return false;
}

static bool store_one(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val)
{
    uint64_t pa;
    bool fault;
    uint8_t *p = access_page(h, va, len, RV_ACC_STORE, &pa, &fault);
    if (fault)
        return false;
    if (p) {
        memcpy(p, &val, len);
        if (h->bus.dirty)
            h->bus.dirty(h->bus.opaque, pa, len);
        if (code_page(h, pa))
            code_write(h, pa);
        return true;
    }
    if (h->bus.mmio_write && (len == 1 || len == 2 || len == 4 || len == 8) &&
        h->bus.mmio_write(h->bus.opaque, pa, val, len))
        return true;
    h->exc_cause = RV_EXC_STORE_ACCESS;
    h->exc_tval = va;
    return false;
}

bool rv_load_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t *val)
{
    unsigned off = va & 0xfff;
    if (likely(off + len <= 4096))
        return load_one(h, va, len, val);
    /* crosses a page: split, little-endian */
    unsigned first = 4096 - off;
    uint64_t lo, hi;
    if (!load_one(h, va, first, &lo) || !load_one(h, va + first, len - first, &hi)) {
        h->exc_tval = va;
        return false;
    }
    *val = lo | (hi << (8 * first));
    return true;
}

bool rv_store_slow(struct rv_hart *h, uint64_t va, unsigned len, uint64_t val)
{
    unsigned off = va & 0xfff;
    if (likely(off + len <= 4096))
        return store_one(h, va, len, val);
    unsigned first = 4096 - off;
    uint64_t pa;
    bool fault;
    /* check both pages before writing either, so a fault leaves memory alone */
    access_page(h, va + first, len - first, RV_ACC_STORE, &pa, &fault);
    if (fault) {
        h->exc_tval = va;
        return false;
    }
    if (!store_one(h, va, first, val) ||
        !store_one(h, va + first, len - first, val >> (8 * first))) {
        h->exc_tval = va;
        return false;
    }
    return true;
}

static bool fetch16(struct rv_hart *h, uint64_t va, uint16_t *out)
{
    uint64_t pa;
    bool fault;
    uint8_t *p = access_page(h, va, 2, RV_ACC_FETCH, &pa, &fault);
    if (fault)
        return false;
    if (p) {
        memcpy(out, p, 2);
        return true;
    }
    uint64_t v;
    if (h->bus.mmio_read && h->bus.mmio_read(h->bus.opaque, pa, 2, &v)) {
        *out = (uint16_t)v;
        return true;
    }
    h->exc_cause = RV_EXC_INSN_ACCESS;
    h->exc_tval = va;
    return false;
}

bool rv_fetch_slow(struct rv_hart *h, uint64_t pc, uint32_t *insn)
{
    uint16_t lo, hi;
    if (!fetch16(h, pc, &lo))
        return false;
    if ((lo & 3) != 3) {
        *insn = lo;
        return true;
    }
    if (!fetch16(h, pc + 2, &hi)) {
        /* tval: the faulting portion's address is fine per spec; use pc+2 */
        return false;
    }
    *insn = lo | ((uint32_t)hi << 16);
    return true;
}

void *rv_amo_ptr(struct rv_hart *h, uint64_t va, unsigned len, bool is_load)
{
    if (va & (len - 1)) {
        h->exc_cause = is_load ? RV_EXC_LOAD_MISALIGNED : RV_EXC_STORE_MISALIGNED;
        h->exc_tval = va;
        return NULL;
    }
    uint64_t pa;
    bool fault;
    uint8_t *p = access_page(h, va, len, is_load ? RV_ACC_LOAD : RV_ACC_STORE, &pa, &fault);
    if (fault)
        return NULL;
    if (!p) {
        h->exc_cause = is_load ? RV_EXC_LOAD_ACCESS : RV_EXC_STORE_ACCESS;
        h->exc_tval = va;
        return NULL;
    }
    if (!is_load && h->bus.dirty)
        h->bus.dirty(h->bus.opaque, pa, len);
    if (!is_load && code_page(h, pa))
        code_write(h, pa);
    return p;
}

int rv_hart_phys_read(struct rv_hart *h, uint64_t pa, void *buf, size_t len)
{
    if (in_ram(h, pa, len)) {
        memcpy(buf, h->bus.ram + (pa - h->bus.ram_base), len);
        return 0;
    }
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t v;
        if (!h->bus.mmio_read || !h->bus.mmio_read(h->bus.opaque, pa + i, 1, &v))
            return -1;
        b[i] = (uint8_t)v;
    }
    return 0;
}

int rv_hart_phys_write(struct rv_hart *h, uint64_t pa, const void *buf, size_t len)
{
    if (in_ram(h, pa, len)) {
        memcpy(h->bus.ram + (pa - h->bus.ram_base), buf, len);
        if (h->bus.dirty)
            h->bus.dirty(h->bus.opaque, pa, (unsigned)len);
        return 0;
    }
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if (!h->bus.mmio_write || !h->bus.mmio_write(h->bus.opaque, pa + i, b[i], 1))
            return -1;
    return 0;
}

/* Page by page: each page is translated for acc, then b is written to it
 * (store; b is only read) or filled from it (load). */
static int virt_copy(struct rv_hart *h, uint64_t va, uint8_t *b, size_t len, enum rv_access acc)
{
    while (len) {
        size_t chunk = 4096 - (va & 0xfff);
        if (chunk > len)
            chunk = len;
        uint64_t pa;
        bool cacheable;
        if (translate(h, va, acc, &pa, &cacheable) ||
            (acc == RV_ACC_STORE ? rv_hart_phys_write(h, pa, b, chunk)
                                 : rv_hart_phys_read(h, pa, b, chunk)) < 0)
            return -1;
        va += chunk;
        b += chunk;
        len -= chunk;
    }
    return 0;
}

int rv_hart_virt_read(struct rv_hart *h, uint64_t va, void *buf, size_t len)
{
    return virt_copy(h, va, buf, len, RV_ACC_LOAD);
}

int rv_hart_virt_write(struct rv_hart *h, uint64_t va, const void *buf, size_t len)
{
    return virt_copy(h, va, (uint8_t *)buf, len, RV_ACC_STORE);
}
