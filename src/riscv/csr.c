/* Control and status registers: access checks (privilege, read-only,
 * counter enables, TVM, FS), WARL masks, and side effects (TLB flushes,
 * interrupt re-evaluation). */
#include "riscv/csr.h"
#include "riscv/mmu.h"
#include "riscv/trap.h"

#define MSTATUS_WMASK                                                                              \
    (RV_MSTATUS_SIE | RV_MSTATUS_MIE | RV_MSTATUS_SPIE | RV_MSTATUS_MPIE | RV_MSTATUS_SPP |        \
     RV_MSTATUS_MPP | RV_MSTATUS_FS | RV_MSTATUS_MPRV | RV_MSTATUS_SUM | RV_MSTATUS_MXR |          \
     RV_MSTATUS_TVM | RV_MSTATUS_TW | RV_MSTATUS_TSR)
#define SSTATUS_MASK                                                                               \
    (RV_MSTATUS_SIE | RV_MSTATUS_SPIE | RV_MSTATUS_SPP | RV_MSTATUS_FS | RV_MSTATUS_XS |           \
     RV_MSTATUS_SUM | RV_MSTATUS_MXR | RV_MSTATUS_UXL | RV_MSTATUS_SD)
#define SSTATUS_WMASK                                                                              \
    (RV_MSTATUS_SIE | RV_MSTATUS_SPIE | RV_MSTATUS_SPP | RV_MSTATUS_FS | RV_MSTATUS_SUM |          \
     RV_MSTATUS_MXR)
#define MIP_ALL (RV_MIP_SSIP | RV_MIP_MSIP | RV_MIP_STIP | RV_MIP_MTIP | RV_MIP_SEIP | RV_MIP_MEIP)
#define S_INTS (RV_MIP_SSIP | RV_MIP_STIP | RV_MIP_SEIP)
/* exceptions M-mode may delegate: everything but ECALL from M */
#define MEDELEG_MASK 0xb3ffull

uint64_t rv_mstatus_read(struct rv_hart *h)
{
    uint64_t s = h->mstatus | (2ull << 32) | (2ull << 34); /* UXL = SXL = 64 */
    if ((s & RV_MSTATUS_FS) == RV_MSTATUS_FS)
        s |= RV_MSTATUS_SD;
    return s;
}

static uint64_t mip_read(struct rv_hart *h)
{
    return __atomic_load_n(&h->mip, __ATOMIC_ACQUIRE);
}

static bool counter_allowed(struct rv_hart *h, unsigned idx)
{
    if (h->priv == RV_PRIV_M)
        return true;
    if (!((h->mcounteren >> idx) & 1))
        return false;
    if (h->priv == RV_PRIV_U && !((h->scounteren >> idx) & 1))
        return false;
    return true;
}

/* Sstc: below M, stimecmp needs menvcfg.STCE and mcounteren.TM */
static bool stimecmp_allowed(struct rv_hart *h)
{
    return h->priv == RV_PRIV_M || ((h->menvcfg & RV_MENVCFG_STCE) && (h->mcounteren & 2));
}

static void mstatus_write(struct rv_hart *h, uint64_t val)
{
    uint64_t old = h->mstatus;
    uint64_t nv = (old & ~MSTATUS_WMASK) | (val & MSTATUS_WMASK);
    if (((nv & RV_MSTATUS_MPP) >> 11) == 2)
        nv = (nv & ~RV_MSTATUS_MPP) | (old & RV_MSTATUS_MPP); /* reserved: keep */
    h->mstatus = nv;
    uint64_t ch = old ^ nv;
    if (ch & RV_MSTATUS_MXR)
        rv_tlb_flush_virt(h);
    if (ch & (RV_MSTATUS_MPRV | RV_MSTATUS_MPP | RV_MSTATUS_SUM))
        rv_update_ctx(h); /* SUM selects between the two S data sets */
    if (ch & (RV_MSTATUS_MIE | RV_MSTATUS_SIE))
        h->irq_check = true;
}

static bool fp_enabled(struct rv_hart *h)
{
    return (h->mstatus & RV_MSTATUS_FS) != 0;
}

bool rv_csr_read(struct rv_hart *h, unsigned csr, uint64_t *val)
{
    if (((csr >> 8) & 3) > h->priv)
        return false;
    switch (csr) {
    case 0x001:
        if (!fp_enabled(h))
            return false;
        *val = h->fflags;
        return true;
    case 0x002:
        if (!fp_enabled(h))
            return false;
        *val = h->frm;
        return true;
    case 0x003:
        if (!fp_enabled(h))
            return false;
        *val = h->fflags | (h->frm << 5);
        return true;
    case 0xc00: /* cycle */
        if (!counter_allowed(h, 0))
            return false;
        *val = h->minstret + (uint64_t)h->cycle_offset;
        return true;
    case 0xc01: /* time */
        if (!counter_allowed(h, 1))
            return false;
        *val = rv_get_time(h);
        return true;
    case 0xc02: /* instret */
        if (!counter_allowed(h, 2))
            return false;
        *val = h->minstret;
        return true;
    case 0x100:
        *val = rv_mstatus_read(h) & SSTATUS_MASK;
        return true;
    case 0x104:
        *val = h->mie & h->mideleg;
        return true;
    case 0x105:
        *val = h->stvec;
        return true;
    case 0x106:
        *val = h->scounteren;
        return true;
    case 0x10a:
        *val = h->senvcfg;
        return true;
    case 0x140:
        *val = h->sscratch;
        return true;
    case 0x141:
        *val = h->sepc;
        return true;
    case 0x142:
        *val = h->scause;
        return true;
    case 0x143:
        *val = h->stval;
        return true;
    case 0x144:
        *val = mip_read(h) & h->mideleg;
        return true;
    case 0x14d:
        if (!stimecmp_allowed(h))
            return false;
        *val = h->stimecmp;
        return true;
    case 0x180:
        if (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TVM))
            return false;
        *val = h->satp;
        return true;
    case 0xf11: /* mvendorid */
    case 0xf12: /* marchid */
    case 0xf13: /* mimpid */
    case 0xf15: /* mconfigptr */
        *val = 0;
        return true;
    case 0xf14:
        *val = h->hartid;
        return true;
    case 0x300:
        *val = rv_mstatus_read(h);
        return true;
    case 0x301:
        *val = h->misa;
        return true;
    case 0x302:
        *val = h->medeleg;
        return true;
    case 0x303:
        *val = h->mideleg;
        return true;
    case 0x304:
        *val = h->mie;
        return true;
    case 0x305:
        *val = h->mtvec;
        return true;
    case 0x306:
        *val = h->mcounteren;
        return true;
    case 0x30a:
        *val = h->menvcfg;
        return true;
    case 0x320:
        *val = h->mcountinhibit;
        return true;
    case 0x340:
        *val = h->mscratch;
        return true;
    case 0x341:
        *val = h->mepc;
        return true;
    case 0x342:
        *val = h->mcause;
        return true;
    case 0x343:
        *val = h->mtval;
        return true;
    case 0x344:
        *val = mip_read(h);
        return true;
    case 0x747:
        *val = h->mseccfg;
        return true;
    case 0x7a0: /* Sdtrig with no triggers: tselect reads back 0 ... */
    case 0x7a1: /* ... and tdata1 type 0 says "no trigger here" */
    case 0x7a2:
    case 0x7a3:
        *val = 0;
        return true;
    case 0x7a4: /* tinfo: 1 when the selected trigger does not exist */
        *val = 1;
        return true;
    case 0xb00:
        *val = h->minstret + (uint64_t)h->cycle_offset;
        return true;
    case 0xb02:
        *val = h->minstret;
        return true;
    }
    if (csr >= 0x3a0 && csr <= 0x3af) { /* pmpcfg: even numbers only on RV64 */
        if (csr & 1)
            return false;
        unsigned base = (csr - 0x3a0) * 4;
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++)
            if (base + i < h->pmp_count)
                v |= (uint64_t)h->pmpcfg[base + i] << (8 * i);
        *val = v;
        return true;
    }
    if (csr >= 0x3b0 && csr <= 0x3ef) {
        unsigned i = csr - 0x3b0;
        *val = i < h->pmp_count ? h->pmpaddr[i] : 0;
        return true;
    }
    if ((csr >= 0xc03 && csr <= 0xc1f)) { /* hpmcounters: present, zero */
        if (!counter_allowed(h, csr - 0xc00))
            return false;
        *val = 0;
        return true;
    }
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) {
        *val = 0;
        return true;
    }
    return false;
}

bool rv_csr_write(struct rv_hart *h, unsigned csr, uint64_t val)
{
    if (((csr >> 8) & 3) > h->priv || (csr >> 10) == 3)
        return false;
    switch (csr) {
    case 0x001:
        if (!fp_enabled(h))
            return false;
        h->fflags = val & 0x1f;
        h->mstatus |= RV_MSTATUS_FS;
        return true;
    case 0x002:
        if (!fp_enabled(h))
            return false;
        h->frm = val & 7;
        h->mstatus |= RV_MSTATUS_FS;
        return true;
    case 0x003:
        if (!fp_enabled(h))
            return false;
        h->fflags = val & 0x1f;
        h->frm = (val >> 5) & 7;
        h->mstatus |= RV_MSTATUS_FS;
        return true;
    case 0x100:
        mstatus_write(h, (h->mstatus & ~SSTATUS_WMASK) | (val & SSTATUS_WMASK));
        return true;
    case 0x104:
        h->mie = (h->mie & ~h->mideleg) | (val & h->mideleg & S_INTS);
        h->irq_check = true;
        return true;
    case 0x105:
        h->stvec = val & ~2ull;
        return true;
    case 0x106:
        h->scounteren = val & 0xffffffffull;
        return true;
    case 0x10a:
        h->senvcfg = val & 1;
        return true;
    case 0x140:
        h->sscratch = val;
        return true;
    case 0x141:
        h->sepc = val & ~1ull;
        return true;
    case 0x142:
        h->scause = val;
        return true;
    case 0x143:
        h->stval = val;
        return true;
    case 0x144:
        if (h->mideleg & RV_MIP_SSIP)
            rv_hart_set_irq(h, RV_MIP_SSIP, val & RV_MIP_SSIP);
        h->irq_check = true;
        return true;
    case 0x14d:
        if (!stimecmp_allowed(h))
            return false;
        h->stimecmp = val;
        h->irq_check = true;
        return true;
    case 0x180: {
        if (h->priv == RV_PRIV_S && (h->mstatus & RV_MSTATUS_TVM))
            return false;
        uint64_t mode = val >> 60;
        if (mode != 0 && mode != 8 && mode != 9)
            return true; /* unsupported mode: write ignored */
        /* no ASID bits implemented (ASIDLEN = 0): every satp write flushes */
        h->satp = val & ((0xfull << 60) | ((1ull << 44) - 1));
        rv_tlb_flush_virt(h);
        return true;
    }
    case 0x300:
        mstatus_write(h, val);
        return true;
    case 0x301: /* misa: fixed */
        return true;
    case 0x302:
        h->medeleg = val & MEDELEG_MASK;
        return true;
    case 0x303:
        h->mideleg = val & S_INTS;
        h->irq_check = true;
        return true;
    case 0x304:
        h->mie = val & MIP_ALL;
        h->irq_check = true;
        return true;
    case 0x305:
        h->mtvec = val & ~2ull;
        return true;
    case 0x306:
        h->mcounteren = val & 0xffffffffull;
        return true;
    case 0x30a:
        h->menvcfg = val & (RV_MENVCFG_STCE | RV_MENVCFG_PBMTE | 1);
        h->irq_check = true;
        return true;
    case 0x320:
        h->mcountinhibit = val & 0xfffffffdull;
        return true;
    case 0x340:
        h->mscratch = val;
        return true;
    case 0x341:
        h->mepc = val & ~1ull;
        return true;
    case 0x342:
        h->mcause = val;
        return true;
    case 0x343:
        h->mtval = val;
        return true;
    case 0x344: {
        uint64_t mask = RV_MIP_SSIP | RV_MIP_SEIP;
        if (!(h->menvcfg & RV_MENVCFG_STCE))
            mask |= RV_MIP_STIP;
        uint64_t cur = mip_read(h), nv;
        do {
            nv = (cur & ~mask) | (val & mask);
        } while (!__atomic_compare_exchange_n(&h->mip, &cur, nv, false, __ATOMIC_ACQ_REL,
                                              __ATOMIC_ACQUIRE));
        h->irq_check = true;
        return true;
    }
    case 0x747:
        h->mseccfg = 0;
        return true;
    case 0x7a0: /* Sdtrig, no triggers: writes are ignored */
    case 0x7a1:
    case 0x7a2:
    case 0x7a3:
    case 0x7a4:
        return true;
    case 0xb00:
        h->cycle_offset = (int64_t)(val - h->minstret);
        return true;
    case 0xb02: {
        /* the instruction that writes instret retires too; keep cycle steady */
        uint64_t cycle = h->minstret + (uint64_t)h->cycle_offset;
        h->minstret = val - 1;
        h->cycle_offset = (int64_t)(cycle - h->minstret);
        return true;
    }
    }
    if (csr >= 0x3a0 && csr <= 0x3af) {
        if (csr & 1)
            return false;
        unsigned base = (csr - 0x3a0) * 4;
        for (unsigned i = 0; i < 8; i++) {
            unsigned n = base + i;
            if (n >= h->pmp_count || (h->pmpcfg[n] & 0x80))
                continue; /* locked */
            uint8_t c = (uint8_t)(val >> (8 * i));
            c &= 0x9f;
            if ((c & 3) == 2) /* R=0 W=1 is reserved */
                c &= ~3u;
            h->pmpcfg[n] = c;
        }
        rv_tlb_flush_all(h);
        return true;
    }
    if (csr >= 0x3b0 && csr <= 0x3ef) {
        unsigned i = csr - 0x3b0;
        if (i < h->pmp_count && !(h->pmpcfg[i] & 0x80) &&
            !(i + 1 < h->pmp_count && (h->pmpcfg[i + 1] & 0x80) &&
              ((h->pmpcfg[i + 1] >> 3) & 3) == 1))
            h->pmpaddr[i] = val & ((1ull << 54) - 1);
        rv_tlb_flush_all(h);
        return true;
    }
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f))
        return true;
    return false;
}
