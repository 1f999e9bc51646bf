#include "virtio/virtq.h"

#include <string.h>

/* Offsets inside the rings (virtio 1.2, 2.7.6 and 2.7.8). */
#define AVAIL_SIZE(num) (6ULL + 2ULL * (num))
#define USED_SIZE(num) (6ULL + 8ULL * (num))

void virtq_reset(struct virtq *vq, uint16_t num_max)
{
    memset(vq, 0, sizeof(*vq));
    vq->num_max = num_max;
    vq->num = num_max;
    vq->msix_vector = 0xffff;
}

static bool fail(struct virtq *vq, const char *why)
{
    vq->error = why;
    return false;
}

bool virtq_enable(struct virtq *vq, struct guest_mem *mem, bool event_idx, bool indirect)
{
    vq->mem = mem;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    if (vq->num == 0 || vq->num > vq->num_max || (vq->num & (vq->num - 1)))
        return fail(vq, "queue size is not a power of two within the maximum");
    if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
        return fail(vq, "misaligned ring address");
    vq->desc = guest_mem_ptr(mem, vq->desc_gpa, 16ULL * vq->num);
    vq->avail = guest_mem_ptr(mem, vq->avail_gpa, AVAIL_SIZE(vq->num));
    if (!vq->desc || !vq->avail || !guest_mem_ptr(mem, vq->used_gpa, USED_SIZE(vq->num)))
        return fail(vq, "ring outside guest memory");
    vq->ready = true;
    return true;
}

static inline uint16_t avail_idx(struct virtq *vq)
{
    return __atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE);
}

/* The used ring is written through guest_mem_ptr_w so the VMM's own dirty
 * tracking sees every write (the range was validated at enable time). */
static void *used_ptr(struct virtq *vq, uint64_t off, uint64_t len)
{
    return guest_mem_ptr_w(vq->mem, vq->used_gpa + off, len);
}

static void set_avail_event(struct virtq *vq)
{
    if (!vq->event_idx)
        return;
    uint16_t *p = used_ptr(vq, 4 + 8ULL * vq->num, 2);
    if (p)
        __atomic_store_n(p, vq->last_avail, __ATOMIC_RELAXED);
}

bool virtq_has_avail(struct virtq *vq)
{
    return vq->ready && !vq->error && avail_idx(vq) != vq->last_avail;
}

static int pop_fail(struct virtq *vq, const char *why)
{
    vq->error = why;
    return -1;
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
    if (vq->error)
        return -1;
    if (!vq->ready)
        return 0;
    uint16_t idx = avail_idx(vq);
    if ((uint16_t)(idx - vq->last_avail) > vq->num)
        return pop_fail(vq, "available index moved by more than the queue size");
    if (idx == vq->last_avail) {
        set_avail_event(vq);
        /* the driver may have added a chain before it saw avail_event */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        idx = avail_idx(vq);
        if (idx == vq->last_avail)
            return 0;
        if ((uint16_t)(idx - vq->last_avail) > vq->num)
            return pop_fail(vq, "available index moved by more than the queue size");
    }
    uint16_t head = __atomic_load_n(&vq->avail[2 + vq->last_avail % vq->num], __ATOMIC_RELAXED);
    if (head >= vq->num)
        return pop_fail(vq, "available ring entry out of range");

    const struct virtq_desc *table = vq->desc;
    unsigned table_len = vq->num, visited = 0, n = 0;
    bool in_indirect = false;
    uint64_t total = 0;
    uint16_t i = head;
    e->head = head;
    e->nout = e->nin = 0;
    for (;;) {
        if (visited++ >= table_len)
            return pop_fail(vq, "descriptor chain longer than its table (a loop?)");
        struct virtq_desc d;
        memcpy(&d, &table[i], sizeof(d)); /* one read: the guest may change it */
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return pop_fail(vq, "indirect descriptor without the feature");
            if (in_indirect)
                return pop_fail(vq, "indirect descriptor inside an indirect table");
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return pop_fail(vq, "indirect descriptor with NEXT set");
            if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE)
                return pop_fail(vq, "bad indirect table length");
            if (d.addr % 8)
                return pop_fail(vq, "misaligned indirect table");
            table = guest_mem_ptr(vq->mem, d.addr, d.len);
            if (!table)
                return pop_fail(vq, "indirect table outside guest memory");
            table_len = d.len / 16;
            visited = 0;
            in_indirect = true;
            i = 0;
            continue;
        }
        /* A zero-length buffer carries nothing: skip it. */
        if (d.len) {
            bool writable = d.flags & VIRTQ_DESC_F_WRITE;
            if (!writable && e->nin)
                return pop_fail(vq, "readable descriptor after a writable one");
            total += d.len;
            if (total > UINT32_MAX)
                return pop_fail(vq, "descriptor chain longer than 4 GiB");
            if (n >= VIRTQ_MAX_SIZE)
                return pop_fail(vq, "too many descriptors in a chain");
            void *p = writable ? guest_mem_ptr_w(vq->mem, d.addr, d.len)
                               : guest_mem_ptr(vq->mem, d.addr, d.len);
            if (!p)
                return pop_fail(vq, "descriptor buffer outside guest memory");
            e->iov[n].iov_base = p;
            e->iov[n].iov_len = d.len;
            e->gpa[n] = d.addr;
            n++;
            if (writable)
                e->nin++;
            else
                e->nout++;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= table_len)
            return pop_fail(vq, "descriptor next index out of range");
        i = d.next;
    }
    vq->last_avail++;
    vq->inflight++;
    set_avail_event(vq);
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    vq->last_avail--;
    vq->inflight--;
}

bool virtq_push_head(struct virtq *vq, uint16_t head, uint32_t len)
{
    if (!vq->ready)
        return false;
    uint32_t *slot = used_ptr(vq, 4 + 8ULL * (vq->used_idx % vq->num), 8);
    uint16_t *idxp = used_ptr(vq, 2, 2);
    if (!slot || !idxp)
        return false;
    slot[0] = head;
    slot[1] = len;
    vq->used_idx++;
    __atomic_store_n(idxp, vq->used_idx, __ATOMIC_RELEASE);
    if (vq->inflight)
        vq->inflight--;
    return true;
}

void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len)
{
    /* Re-mark what the device wrote: dirty tracking may have been read and
     * cleared between pop and now. */
    uint32_t left = len;
    for (unsigned k = e->nout; k < e->nout + e->nin && left; k++) {
        uint32_t l = e->iov[k].iov_len < left ? (uint32_t)e->iov[k].iov_len : left;
        guest_mem_ptr_w(vq->mem, e->gpa[k], l);
        left -= l;
    }
    virtq_push_head(vq, e->head, len);
}

bool virtq_should_notify(struct virtq *vq)
{
    if (!vq->ready)
        return false;
    /* pairs with the driver's barrier between writing used_event/flags and
     * reading used->idx */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(__atomic_load_n(&vq->avail[0], __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint16_t old = vq->signalled_used, new = vq->used_idx;
    bool valid = vq->signalled_used_valid;
    vq->signalled_used = new;
    vq->signalled_used_valid = true;
    if (!valid)
        return true;
    uint16_t event = __atomic_load_n(&vq->avail[2 + vq->num], __ATOMIC_RELAXED);
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

size_t iov_length(const struct iovec *iov, unsigned n)
{
    size_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t l = iov[i].iov_len - skip;
        if (l > len - done)
            l = len - done;
        memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip, l);
        done += l;
        skip = 0;
    }
    return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t l = iov[i].iov_len - skip;
        if (l > len - done)
            l = len - done;
        memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, l);
        done += l;
        skip = 0;
    }
    return done;
}
