#include "riscv/clint.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include "riscv/hart.h"

#define CLINT_MSIP 0x0000u
#define CLINT_MTIMECMP 0x4000u
#define CLINT_MTIME 0xbff8u

static uint64_t host_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(struct clint *c)
{
    return c->clock_ns ? c->clock_ns() : host_clock_ns();
}

void clint_init(struct clint *c, struct rv_hart **harts, unsigned nharts, uint64_t timer_irq_bit)
{
    uint64_t (*hook)(void) = c->clock_ns;
    memset(c, 0, sizeof(*c));
    c->clock_ns = hook;
    c->harts = harts;
    c->nharts = nharts > RV_CLINT_MAX_HARTS ? RV_CLINT_MAX_HARTS : nharts;
    c->timer_irq_bit = timer_irq_bit;
    for (unsigned i = 0; i < RV_CLINT_MAX_HARTS; i++)
        c->mtimecmp[i] = UINT64_MAX;
    c->clock_base_ns = now_ns(c);
}

/* 10 MHz: one tick per 100 ns. */
uint64_t clint_mtime(struct clint *c)
{
    uint64_t base_ns = __atomic_load_n(&c->clock_base_ns, __ATOMIC_ACQUIRE);
    uint64_t base = __atomic_load_n(&c->mtime_base, __ATOMIC_ACQUIRE);
    return base + (now_ns(c) - base_ns) / (1000000000ull / RV_CLINT_FREQ);
}

void clint_set_mtime(struct clint *c, uint64_t mtime)
{
    __atomic_store_n(&c->mtime_base, mtime, __ATOMIC_RELEASE);
    __atomic_store_n(&c->clock_base_ns, now_ns(c), __ATOMIC_RELEASE);
    for (unsigned i = 0; i < c->nharts; i++)
        clint_update_timer(c, i);
}

int64_t clint_ns_until(struct clint *c, uint64_t mtime)
{
    uint64_t now = clint_mtime(c);
    if (mtime <= now)
        return 0;
    uint64_t d = mtime - now;
    if (d > (uint64_t)INT64_MAX / 100)
        return INT64_MAX;
    return (int64_t)(d * (1000000000ull / RV_CLINT_FREQ));
}

uint64_t clint_deadline(struct clint *c, unsigned hart)
{
    if (hart >= c->nharts)
        return UINT64_MAX;
    return __atomic_load_n(&c->mtimecmp[hart], __ATOMIC_ACQUIRE);
}

bool clint_update_timer(struct clint *c, unsigned hart)
{
    if (hart >= c->nharts)
        return false;
    bool level = clint_mtime(c) >= clint_deadline(c, hart);
    struct rv_hart *h = c->harts ? c->harts[hart] : NULL;
    if (h) {
        bool cur = (__atomic_load_n(&h->mip, __ATOMIC_ACQUIRE) & c->timer_irq_bit) != 0;
        if (cur != level)
            rv_hart_set_irq(h, c->timer_irq_bit, level);
    }
    return level;
}

void clint_set_timecmp(struct clint *c, unsigned hart, uint64_t value)
{
    if (hart >= c->nharts)
        return;
    __atomic_store_n(&c->mtimecmp[hart], value, __ATOMIC_RELEASE);
    clint_update_timer(c, hart);
    /* a sleeping hart recomputes its wake-up time */
    if (c->harts && c->harts[hart])
        rv_hart_wake(c->harts[hart]);
}

static void set_msip(struct clint *c, unsigned hart, uint32_t v)
{
    v &= 1;
    __atomic_store_n(&c->msip[hart], v, __ATOMIC_RELEASE);
    if (c->harts && c->harts[hart])
        rv_hart_set_irq(c->harts[hart], RV_MIP_MSIP, v != 0);
}

/* 64-bit registers may be accessed as two 32-bit halves. */
static uint64_t read_half(uint64_t reg, uint64_t offset, unsigned len)
{
    if (len == 8)
        return reg;
    unsigned shift = (unsigned)(offset & 7) * 8;
    uint64_t mask = len >= 8 ? ~0ull : ((1ull << (len * 8)) - 1);
    return (reg >> shift) & mask;
}

static uint64_t write_half(uint64_t reg, uint64_t offset, uint64_t value, unsigned len)
{
    if (len == 8)
        return value;
    unsigned shift = (unsigned)(offset & 7) * 8;
    uint64_t mask = ((1ull << (len * 8)) - 1) << shift;
    return (reg & ~mask) | ((value << shift) & mask);
}

uint64_t clint_io_read(void *opaque, uint64_t offset, unsigned len)
{
    struct clint *c = opaque;
    if (offset < CLINT_MSIP + 4ull * c->nharts) {
        if (len != 4 || (offset & 3))
            return 0;
        return __atomic_load_n(&c->msip[offset / 4], __ATOMIC_ACQUIRE);
    }
    if (offset >= CLINT_MTIMECMP && offset < CLINT_MTIMECMP + 8ull * c->nharts) {
        unsigned hart = (unsigned)((offset - CLINT_MTIMECMP) / 8);
        return read_half(clint_deadline(c, hart), offset, len);
    }
    if (offset >= CLINT_MTIME && offset < CLINT_MTIME + 8)
        return read_half(clint_mtime(c), offset, len);
    return 0;
}

void clint_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len)
{
    struct clint *c = opaque;
    if (offset < CLINT_MSIP + 4ull * c->nharts) {
        if (len == 4 && !(offset & 3))
            set_msip(c, (unsigned)(offset / 4), (uint32_t)value);
        return;
    }
    if (offset >= CLINT_MTIMECMP && offset < CLINT_MTIMECMP + 8ull * c->nharts) {
        unsigned hart = (unsigned)((offset - CLINT_MTIMECMP) / 8);
        clint_set_timecmp(c, hart, write_half(clint_deadline(c, hart), offset, value, len));
        return;
    }
    if (offset >= CLINT_MTIME && offset < CLINT_MTIME + 8)
        clint_set_mtime(c, write_half(clint_mtime(c), offset, value, len));
}

void clint_save(struct clint *c, struct state_writer *w)
{
    state_begin(w, "riscv-clint", 0, 1);
    state_put_u32(w, c->nharts);
    state_put_u64(w, clint_mtime(c));
    for (unsigned i = 0; i < c->nharts; i++) {
        state_put_u64(w, c->mtimecmp[i]);
        state_put_u32(w, c->msip[i]);
    }
    state_end(w);
}

int clint_load(struct clint *c, struct state_reader *r, vs_err *err)
{
    uint32_t version, n;
    uint64_t mtime;
    if (state_find(r, "riscv-clint", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "riscv-clint: unsupported state version %u", version);
    if (state_get_u32(r, &n, err) < 0 || state_get_u64(r, &mtime, err) < 0)
        return -1;
    if (n != c->nharts)
        return vs_error(err, EINVAL, "riscv-clint: state has %u harts, the machine %u", n,
                        c->nharts);
    for (unsigned i = 0; i < n; i++) {
        uint64_t cmp;
        uint32_t msip;
        if (state_get_u64(r, &cmp, err) < 0 || state_get_u32(r, &msip, err) < 0)
            return -1;
        c->mtimecmp[i] = cmp;
        set_msip(c, i, msip);
    }
    clint_set_mtime(c, mtime);
    return 0;
}
