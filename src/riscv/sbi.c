#include "riscv/sbi.h"

#include <stddef.h>
#include "riscv/hart.h"

enum { A0 = 10, A1, A2, A3, A4, A5, A6, A7 };

/* legacy extension ids (v0.1) */
enum {
    SBI_LEGACY_SET_TIMER = 0,
    SBI_LEGACY_PUTCHAR = 1,
    SBI_LEGACY_GETCHAR = 2,
    SBI_LEGACY_CLEAR_IPI = 3,
    SBI_LEGACY_SEND_IPI = 4,
    SBI_LEGACY_FENCE_I = 5,
    SBI_LEGACY_SFENCE_VMA = 6,
    SBI_LEGACY_SFENCE_VMA_ASID = 7,
    SBI_LEGACY_SHUTDOWN = 8,
};

struct sbiret {
    long error;
    uint64_t value;
};

void rv_sbi_init(struct rv_sbi *s, const struct rv_sbi_ops *ops, unsigned nharts)
{
    s->ops = *ops;
    s->nharts = nharts;
}

static bool extension_present(uint64_t eid)
{
    switch (eid) {
    case SBI_LEGACY_SET_TIMER ... SBI_LEGACY_SHUTDOWN:
    case SBI_EXT_BASE:
    case SBI_EXT_TIME:
    case SBI_EXT_IPI:
    case SBI_EXT_RFENCE:
    case SBI_EXT_HSM:
    case SBI_EXT_SRST:
    case SBI_EXT_DBCN:
        return true;
    default:
        return false;
    }
}

typedef void (*hart_fn)(void *opaque, unsigned hart);

/* Apply fn to every hart of an SBI v0.2 hart mask: bit i is hart base + i;
 * base == -1 means all harts. */
static long for_each_in_mask(struct rv_sbi *s, uint64_t mask, uint64_t base, hart_fn fn)
{
    if (!fn)
        return SBI_ERR_NOT_SUPPORTED;
    if (base == UINT64_MAX) {
        for (unsigned h = 0; h < s->nharts; h++)
            fn(s->ops.opaque, h);
        return SBI_SUCCESS;
    }
    /* validate first, so an invalid mask has no partial effect */
    for (unsigned i = 0; i < 64; i++) {
        if ((mask >> i) & 1) {
            if (base >= s->nharts || i >= s->nharts - base)
                return SBI_ERR_INVALID_PARAM;
        }
    }
    for (unsigned i = 0; i < 64; i++) {
        if ((mask >> i) & 1)
            fn(s->ops.opaque, (unsigned)(base + i));
    }
    return SBI_SUCCESS;
}

/* Legacy calls pass a pointer (S-mode virtual address) to the hart mask;
 * NULL means all harts. */
static long legacy_mask(struct rv_sbi *s, struct rv_hart *h, uint64_t ptr, hart_fn fn)
{
    uint64_t mask;
    if (ptr == 0)
        return for_each_in_mask(s, 0, UINT64_MAX, fn);
    if (rv_hart_virt_read(h, ptr, &mask, sizeof(mask)) < 0)
        return SBI_ERR_INVALID_ADDRESS;
    return for_each_in_mask(s, mask, 0, fn);
}

static struct sbiret base_call(struct rv_sbi *s, uint64_t fid, uint64_t a0)
{
    switch (fid) {
    case 0: /* spec version: 2.0 (DBCN) */
        return (struct sbiret){SBI_SUCCESS, 2u << 24};
    case 1:
        return (struct sbiret){SBI_SUCCESS, SBI_IMPL_ID};
    case 2:
        return (struct sbiret){SBI_SUCCESS, SBI_IMPL_VERSION};
    case 3:
        return (struct sbiret){SBI_SUCCESS, extension_present(a0) ? 1 : 0};
    case 4: /* mvendorid, marchid, mimpid */
    case 5:
    case 6:
        return (struct sbiret){SBI_SUCCESS, 0};
    default:
        return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
    }
}

static struct sbiret hsm_call(struct rv_sbi *s, struct rv_hart *h, uint64_t fid, uint64_t a0,
                              uint64_t a1, uint64_t a2)
{
    switch (fid) {
    case 0: /* hart_start(hartid, start_addr, opaque) */
        if (a0 >= s->nharts)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        if (!s->ops.hart_start)
            return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
        return (struct sbiret){s->ops.hart_start(s->ops.opaque, (unsigned)a0, a1, a2), 0};
    case 1: /* hart_stop() */
        if (!s->ops.hart_stop)
            return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
        return (struct sbiret){s->ops.hart_stop(s->ops.opaque, h->hartid), 0};
    case 2: /* hart_get_status(hartid) */
        if (a0 >= s->nharts)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        if (!s->ops.hart_status)
            return (struct sbiret){SBI_SUCCESS, SBI_HSM_STARTED};
        return (struct sbiret){SBI_SUCCESS,
                               (uint64_t)s->ops.hart_status(s->ops.opaque, (unsigned)a0)};
    case 3: /* hart_suspend(type, resume_addr, opaque) */
        /* Default retentive suspend behaves like WFI; returning at once is
         * an allowed spurious wake-up. Non-retentive suspend is not offered. */
        if (a0 == 0)
            return (struct sbiret){SBI_SUCCESS, 0};
        if (a0 == 0x80000000u || (a0 >= 0x10000000u && a0 <= 0x7fffffffu) ||
            (a0 >= 0x90000000u && a0 <= 0xffffffffu))
            return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
        return (struct sbiret){SBI_ERR_INVALID_PARAM, 0}; /* reserved type */
    default:
        return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
    }
}

static void fence_i_noop(void *opaque, unsigned hart)
{
    /* the interpreter fetches from memory every time: nothing to flush */
}

/* what RFENCE's remote_fence_i does: the board's hook, or nothing */
static hart_fn fence_i_fn(const struct rv_sbi *s)
{
    return s->ops.remote_fence_i ? s->ops.remote_fence_i : fence_i_noop;
}

static struct sbiret dbcn_call(struct rv_sbi *s, struct rv_hart *h, uint64_t fid, uint64_t a0,
                               uint64_t a1, uint64_t a2)
{
    uint8_t buf[256];
    switch (fid) {
    case 0: { /* console_write(num_bytes, base_lo, base_hi) */
        if (a2 != 0)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        uint64_t n = a0 < sizeof(buf) ? a0 : sizeof(buf); /* partial writes are allowed */
        if (n && rv_hart_phys_read(h, a1, buf, n) < 0)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        for (uint64_t i = 0; i < n && s->ops.putchar; i++)
            s->ops.putchar(s->ops.opaque, buf[i]);
        return (struct sbiret){SBI_SUCCESS, n};
    }
    case 1: { /* console_read(num_bytes, base_lo, base_hi) */
        if (a2 != 0)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        uint64_t n = 0, max = a0 < sizeof(buf) ? a0 : sizeof(buf);
        while (n < max && s->ops.getchar) {
            int c = s->ops.getchar(s->ops.opaque);
            if (c < 0)
                break;
            buf[n++] = (uint8_t)c;
        }
        if (n && rv_hart_phys_write(h, a1, buf, n) < 0)
            return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        return (struct sbiret){SBI_SUCCESS, n};
    }
    case 2: /* console_write_byte(byte) */
        if (s->ops.putchar)
            s->ops.putchar(s->ops.opaque, (uint8_t)a0);
        return (struct sbiret){SBI_SUCCESS, 0};
    default:
        return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
    }
}

static bool legacy_call(struct rv_sbi *s, struct rv_hart *h, uint64_t eid)
{
    uint64_t a0 = h->x[A0];
    long ret = SBI_SUCCESS;
    switch (eid) {
    case SBI_LEGACY_SET_TIMER:
        if (s->ops.set_timer)
            s->ops.set_timer(s->ops.opaque, h->hartid, a0);
        break;
    case SBI_LEGACY_PUTCHAR:
        if (s->ops.putchar)
            s->ops.putchar(s->ops.opaque, (uint8_t)a0);
        break;
    case SBI_LEGACY_GETCHAR:
        ret = s->ops.getchar ? s->ops.getchar(s->ops.opaque) : -1;
        break;
    case SBI_LEGACY_CLEAR_IPI:
        rv_hart_set_irq(h, RV_MIP_SSIP, false);
        break;
    case SBI_LEGACY_SEND_IPI:
        ret = legacy_mask(s, h, a0, s->ops.send_ipi);
        break;
    case SBI_LEGACY_FENCE_I:
        ret = legacy_mask(s, h, a0, fence_i_fn(s));
        break;
    case SBI_LEGACY_SFENCE_VMA:
    case SBI_LEGACY_SFENCE_VMA_ASID:
        ret = legacy_mask(s, h, a0, s->ops.remote_sfence);
        break;
    case SBI_LEGACY_SHUTDOWN:
        if (s->ops.system_reset)
            s->ops.system_reset(s->ops.opaque, SBI_RESET_SHUTDOWN, 0);
        break;
    }
    h->x[A0] = (uint64_t)(int64_t)ret;
    return true;
}

bool rv_sbi_handle(struct rv_sbi *s, struct rv_hart *h)
{
    uint64_t eid = h->x[A7], fid = h->x[A6];
    uint64_t a0 = h->x[A0], a1 = h->x[A1], a2 = h->x[A2];
    struct sbiret r = {SBI_ERR_NOT_SUPPORTED, 0};

    if (eid <= SBI_LEGACY_SHUTDOWN)
        return legacy_call(s, h, eid);

    switch (eid) {
    case SBI_EXT_BASE:
        r = base_call(s, fid, a0);
        break;
    case SBI_EXT_TIME:
        if (fid == 0 && s->ops.set_timer) {
            s->ops.set_timer(s->ops.opaque, h->hartid, a0);
            r = (struct sbiret){SBI_SUCCESS, 0};
        }
        break;
    case SBI_EXT_IPI:
        if (fid == 0)
            r.error = for_each_in_mask(s, a0, a1, s->ops.send_ipi);
        break;
    case SBI_EXT_RFENCE:
        if (fid == 0)
            r.error = for_each_in_mask(s, a0, a1, fence_i_fn(s));
        else if (fid == 1 || fid == 2)
            r.error = for_each_in_mask(s, a0, a1, s->ops.remote_sfence);
        break;
    case SBI_EXT_HSM:
        r = hsm_call(s, h, fid, a0, a1, a2);
        break;
    case SBI_EXT_SRST:
        if (fid == 0) {
            if (a0 > SBI_RESET_WARM) {
                r.error = SBI_ERR_INVALID_PARAM;
            } else if (a1 > 1 && a1 < 0xE0000000u) {
                r.error = SBI_ERR_INVALID_PARAM; /* reserved reason */
            } else if (s->ops.system_reset) {
                s->ops.system_reset(s->ops.opaque, (uint32_t)a0, (uint32_t)a1);
                r.error = SBI_SUCCESS;
            }
        }
        break;
    case SBI_EXT_DBCN:
        r = dbcn_call(s, h, fid, a0, a1, a2);
        break;
    }
    h->x[A0] = (uint64_t)(int64_t)r.error;
    h->x[A1] = r.value;
    return true;
}
