#include "riscv/plic.h"

#include <errno.h>
#include <string.h>
#include "riscv/hart.h"

#define PLIC_PRIORITY 0x0u
#define PLIC_PENDING 0x1000u
#define PLIC_ENABLE 0x2000u
#define PLIC_ENABLE_STRIDE 0x80u
#define PLIC_CONTEXT 0x200000u
#define PLIC_CONTEXT_STRIDE 0x1000u

static inline bool bit_get(const uint32_t *w, unsigned i)
{
    return (w[i / 32] >> (i % 32)) & 1;
}

static inline void bit_set(uint32_t *w, unsigned i, bool v)
{
    if (v)
        w[i / 32] |= 1u << (i % 32);
    else
        w[i / 32] &= ~(1u << (i % 32));
}

void plic_init(struct plic *p, struct rv_hart **harts, unsigned nharts)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->harts = harts;
    p->nctx = nharts * 2 > RV_PLIC_MAX_CTX ? RV_PLIC_MAX_CTX : nharts * 2;
}

static void update(struct plic *p);

void plic_reset(struct plic *p)
{
    pthread_mutex_lock(&p->lock);
    memset(p->priority, 0, sizeof(p->priority));
    memset(p->claimed, 0, sizeof(p->claimed));
    memset(p->enable, 0, sizeof(p->enable));
    memset(p->threshold, 0, sizeof(p->threshold));
    memcpy(p->pending, p->level, sizeof(p->pending));
    for (unsigned c = 0; c < p->nctx; c++)
        p->eip[c] = !p->eip[c]; /* drive every output again */
    update(p);
    pthread_mutex_unlock(&p->lock);
}

void plic_destroy(struct plic *p)
{
    pthread_mutex_destroy(&p->lock);
}

/* The best source context ctx may take: pending, enabled, priority above 0;
 * 0 if none. Ties go to the lowest source number. */
static unsigned best_source(struct plic *p, unsigned ctx, uint32_t *prio_out)
{
    unsigned best = 0;
    uint32_t best_prio = 0;
    for (unsigned w = 0; w < RV_PLIC_WORDS; w++) {
        uint32_t cand = p->pending[w] & p->enable[ctx][w] & ~p->claimed[w];
        while (cand) {
            unsigned src = w * 32 + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (p->priority[src] > best_prio) {
                best_prio = p->priority[src];
                best = src;
            }
        }
    }
    if (prio_out)
        *prio_out = best_prio;
    return best;
}

/* Called with the lock held: recompute every context's external interrupt. */
static void update(struct plic *p)
{
    for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
        uint32_t prio;
        bool level = best_source(p, ctx, &prio) != 0 && prio > p->threshold[ctx];
        if (level == p->eip[ctx])
            continue;
        p->eip[ctx] = level;
        if (p->set_eip) {
            p->set_eip(p->set_eip_opaque, ctx, level);
        } else if (p->harts && p->harts[ctx / 2]) {
            rv_hart_set_irq(p->harts[ctx / 2], (ctx & 1) ? RV_MIP_SEIP : RV_MIP_MEIP, level);
        }
    }
}

void plic_set_level(struct plic *p, unsigned src, int level)
{
    if (src == 0 || src >= RV_PLIC_NSRC)
        return;
    pthread_mutex_lock(&p->lock);
    bit_set(p->level, src, level != 0);
    /* a claimed source is pended again on completion if still high */
    if (!bit_get(p->claimed, src))
        bit_set(p->pending, src, level != 0);
    update(p);
    pthread_mutex_unlock(&p->lock);
}

static void line_set(void *opaque, unsigned irq, int level)
{
    plic_set_level(opaque, irq, level);
}

struct irq_line plic_irq_line(struct plic *p, unsigned src)
{
    return (struct irq_line){.set_level = line_set, .opaque = p, .irq = src};
}

static uint32_t claim(struct plic *p, unsigned ctx)
{
    unsigned src = best_source(p, ctx, NULL);
    if (src) {
        bit_set(p->pending, src, false);
        bit_set(p->claimed, src, true);
    }
    return src;
}

static void complete(struct plic *p, unsigned ctx, uint32_t src)
{
    /* the spec ignores completions of sources not enabled for the context */
    if (src == 0 || src >= RV_PLIC_NSRC || !bit_get(p->enable[ctx], src))
        return;
    bit_set(p->claimed, src, false);
    if (bit_get(p->level, src))
        bit_set(p->pending, src, true);
}

uint64_t plic_io_read(void *opaque, uint64_t offset, unsigned len)
{
    struct plic *p = opaque;
    uint64_t v = 0;
    if (len != 4 || (offset & 3))
        return 0;
    pthread_mutex_lock(&p->lock);
    if (offset < PLIC_PENDING) {
        unsigned src = (unsigned)(offset / 4);
        if (src < RV_PLIC_NSRC)
            v = p->priority[src];
    } else if (offset < PLIC_PENDING + 4 * RV_PLIC_WORDS) {
        v = p->pending[(offset - PLIC_PENDING) / 4];
    } else if (offset >= PLIC_ENABLE && offset < PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((offset - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
        unsigned w = (unsigned)((offset - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) / 4;
        if (ctx < p->nctx && w < RV_PLIC_WORDS)
            v = p->enable[ctx][w];
    } else if (offset >= PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((offset - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
        unsigned reg = (unsigned)((offset - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE);
        if (ctx < p->nctx) {
            if (reg == 0) {
                v = p->threshold[ctx];
            } else if (reg == 4) {
                v = claim(p, ctx);
                update(p);
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
    return v;
}

void plic_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len)
{
    struct plic *p = opaque;
    if (len != 4 || (offset & 3))
        return;
    uint32_t v = (uint32_t)value;
    pthread_mutex_lock(&p->lock);
    if (offset < PLIC_PENDING) {
        unsigned src = (unsigned)(offset / 4);
        if (src > 0 && src < RV_PLIC_NSRC)
            p->priority[src] = v & RV_PLIC_PRIO_MASK;
    } else if (offset >= PLIC_ENABLE && offset < PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((offset - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
        unsigned w = (unsigned)((offset - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) / 4;
        if (ctx < p->nctx && w < RV_PLIC_WORDS)
            p->enable[ctx][w] = w == 0 ? v & ~1u : v; /* source 0 does not exist */
    } else if (offset >= PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((offset - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
        unsigned reg = (unsigned)((offset - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE);
        if (ctx < p->nctx) {
            if (reg == 0)
                p->threshold[ctx] = v & RV_PLIC_PRIO_MASK;
            else if (reg == 4)
                complete(p, ctx, v);
        }
    }
    /* the pending array is read-only */
    update(p);
    pthread_mutex_unlock(&p->lock);
}

void plic_save(struct plic *p, struct state_writer *w)
{
    pthread_mutex_lock(&p->lock);
    state_begin(w, "riscv-plic", 0, 1);
    state_put_u32(w, p->nctx);
    state_put(w, p->priority, sizeof(p->priority));
    state_put(w, p->pending, sizeof(p->pending));
    state_put(w, p->claimed, sizeof(p->claimed));
    state_put(w, p->level, sizeof(p->level));
    for (unsigned c = 0; c < p->nctx; c++) {
        state_put(w, p->enable[c], sizeof(p->enable[c]));
        state_put_u32(w, p->threshold[c]);
    }
    state_end(w);
    pthread_mutex_unlock(&p->lock);
}

int plic_load(struct plic *p, struct state_reader *r, vs_err *err)
{
    uint32_t version, nctx;
    if (state_find(r, "riscv-plic", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "riscv-plic: unsupported state version %u", version);
    if (state_get_u32(r, &nctx, err) < 0)
        return -1;
    if (nctx != p->nctx)
        return vs_error(err, EINVAL, "riscv-plic: state has %u contexts, the machine %u", nctx,
                        p->nctx);
    struct plic tmp;
    if (state_get(r, tmp.priority, sizeof(tmp.priority), err) < 0 ||
        state_get(r, tmp.pending, sizeof(tmp.pending), err) < 0 ||
        state_get(r, tmp.claimed, sizeof(tmp.claimed), err) < 0 ||
        state_get(r, tmp.level, sizeof(tmp.level), err) < 0)
        return -1;
    for (unsigned c = 0; c < nctx; c++) {
        if (state_get(r, tmp.enable[c], sizeof(tmp.enable[c]), err) < 0 ||
            state_get_u32(r, &tmp.threshold[c], err) < 0)
            return -1;
    }
    pthread_mutex_lock(&p->lock);
    for (unsigned s = 0; s < RV_PLIC_NSRC; s++)
        p->priority[s] = tmp.priority[s] & RV_PLIC_PRIO_MASK;
    memcpy(p->pending, tmp.pending, sizeof(p->pending));
    memcpy(p->claimed, tmp.claimed, sizeof(p->claimed));
    memcpy(p->level, tmp.level, sizeof(p->level));
    for (unsigned c = 0; c < nctx; c++) {
        memcpy(p->enable[c], tmp.enable[c], sizeof(p->enable[c]));
        p->threshold[c] = tmp.threshold[c] & RV_PLIC_PRIO_MASK;
        p->eip[c] = !p->eip[c]; /* force update() to drive every output */
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
    return 0;
}
