#include "virtio/mmio.h"

#include <errno.h>

enum {
    MMIO_MAGIC = 0x000,
    MMIO_VERSION = 0x004,
    MMIO_DEVICE_ID = 0x008,
    MMIO_VENDOR_ID = 0x00c,
    MMIO_DEVICE_FEATURES = 0x010,
    MMIO_DEVICE_FEATURES_SEL = 0x014,
    MMIO_DRIVER_FEATURES = 0x020,
    MMIO_DRIVER_FEATURES_SEL = 0x024,
    MMIO_QUEUE_SEL = 0x030,
    MMIO_QUEUE_NUM_MAX = 0x034,
    MMIO_QUEUE_NUM = 0x038,
    MMIO_QUEUE_READY = 0x044,
    MMIO_QUEUE_NOTIFY = 0x050,
    MMIO_INTERRUPT_STATUS = 0x060,
    MMIO_INTERRUPT_ACK = 0x064,
    MMIO_STATUS = 0x070,
    MMIO_QUEUE_DESC_LOW = 0x080,
    MMIO_QUEUE_DESC_HIGH = 0x084,
    MMIO_QUEUE_DRIVER_LOW = 0x090,
    MMIO_QUEUE_DRIVER_HIGH = 0x094,
    MMIO_QUEUE_DEVICE_LOW = 0x0a0,
    MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    MMIO_CONFIG_GENERATION = 0x0fc,
    MMIO_CONFIG = 0x100,
};

#define MMIO_MAGIC_VALUE 0x74726976 /* "virt" */

static void mmio_update_irq(struct virtio_mmio *m)
{
    irq_line_set(&m->irq, m->dev->isr != 0);
}

static void mmio_notify(struct virtio_dev *d, unsigned q)
{
    mmio_update_irq(d->tr_opaque);
}

static void mmio_notify_config(struct virtio_dev *d)
{
    mmio_update_irq(d->tr_opaque);
}

static const struct virtio_transport_ops mmio_tr = {
    .notify_queue = mmio_notify,
    .notify_config = mmio_notify_config,
};

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev, const struct irq_line *irq,
                      uint64_t base)
{
    *m = (struct virtio_mmio){.dev = dev, .base = base, .vendor_id = VIRTIO_MMIO_VENDOR_VESSEL};
    if (irq)
        m->irq = *irq;
    dev->tr = &mmio_tr;
    dev->tr_opaque = m;
}

int virtio_mmio_register(struct virtio_mmio *m, struct io_bus *bus, vs_err *err)
{
    struct io_region r = {.name = m->dev->name,
                          .base = m->base,
                          .size = VIRTIO_MMIO_SIZE,
                          .read = virtio_mmio_read,
                          .write = virtio_mmio_write,
                          .opaque = m};
    return io_bus_register(bus, &r, err);
}

uint64_t virtio_mmio_read(void *opaque, uint64_t off, unsigned len)
{
    struct virtio_mmio *m = opaque;
    struct virtio_dev *d = m->dev;
    if (off >= MMIO_CONFIG)
        return virtio_config_read(d, (uint32_t)(off - MMIO_CONFIG), len);
    if (len != 4 || off % 4)
        return 0;
    uint64_t v = 0;
    pthread_mutex_lock(&d->lock);
    struct virtq *vq = m->queue_sel < d->nvqs ? &d->vqs[m->queue_sel] : NULL;
    switch (off) {
    case MMIO_MAGIC:
        v = MMIO_MAGIC_VALUE;
        break;
    case MMIO_VERSION:
        v = 2;
        break;
    case MMIO_DEVICE_ID:
        v = d->device_id;
        break;
    case MMIO_VENDOR_ID:
        v = m->vendor_id;
        break;
    case MMIO_DEVICE_FEATURES:
        v = m->dev_features_sel < 2 ? (uint32_t)(d->host_features >> (32 * m->dev_features_sel))
                                    : 0;
        break;
    case MMIO_QUEUE_NUM_MAX:
        v = vq ? vq->num_max : 0;
        break;
    case MMIO_QUEUE_READY:
        v = vq ? vq->ready : 0;
        break;
    case MMIO_INTERRUPT_STATUS:
        v = d->isr;
        break;
    case MMIO_STATUS:
        v = d->status;
        break;
    case MMIO_CONFIG_GENERATION:
        v = d->config_generation;
        break;
    case MMIO_QUEUE_NUM:
        v = vq ? vq->num : 0;
        break;
    case MMIO_QUEUE_DESC_LOW:
        v = vq ? (uint32_t)vq->desc_gpa : 0;
        break;
    case MMIO_QUEUE_DESC_HIGH:
        v = vq ? vq->desc_gpa >> 32 : 0;
        break;
    case MMIO_QUEUE_DRIVER_LOW:
        v = vq ? (uint32_t)vq->avail_gpa : 0;
        break;
    case MMIO_QUEUE_DRIVER_HIGH:
        v = vq ? vq->avail_gpa >> 32 : 0;
        break;
    case MMIO_QUEUE_DEVICE_LOW:
        v = vq ? (uint32_t)vq->used_gpa : 0;
        break;
    case MMIO_QUEUE_DEVICE_HIGH:
        v = vq ? vq->used_gpa >> 32 : 0;
        break;
    case MMIO_DRIVER_FEATURES:
        v = m->drv_features_sel < 2 ? (uint32_t)(d->guest_features >> (32 * m->drv_features_sel))
                                    : 0;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&d->lock);
    return v;
}

static void set_lo(uint64_t *p, uint32_t v)
{
    *p = (*p & 0xffffffff00000000ULL) | v;
}
static void set_hi(uint64_t *p, uint32_t v)
{
    *p = (*p & 0xffffffffULL) | ((uint64_t)v << 32);
}

void virtio_mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct virtio_mmio *m = opaque;
    struct virtio_dev *d = m->dev;
    if (off >= MMIO_CONFIG) {
        virtio_config_write(d, (uint32_t)(off - MMIO_CONFIG), val, len);
        return;
    }
    if (len != 4 || off % 4)
        return;
    uint32_t v = (uint32_t)val;
    switch (off) {
    case MMIO_DRIVER_FEATURES:
        virtio_write_driver_features(d, m->drv_features_sel, v);
        return;
    case MMIO_STATUS:
        if (v & VIRTIO_STATUS_FEATURES_OK) {
            /* This register layout (version 2) is the modern one whatever
             * the driver acknowledged: like QEMU's modern virtio-mmio, take a
             * driver that leaves VIRTIO_F_VERSION_1 out as speaking 1.x
             * rather than refusing FEATURES_OK (virtio 1.2 lets a device
             * refuse; drivers written against QEMU's virt board rely on it
             * not doing so). */
            pthread_mutex_lock(&d->lock);
            if (!(d->status & VIRTIO_STATUS_FEATURES_OK))
                d->guest_features |= 1ULL << VIRTIO_F_VERSION_1;
            pthread_mutex_unlock(&d->lock);
        }
        virtio_write_status(d, (uint8_t)v);
        if (v == 0) {
            pthread_mutex_lock(&d->lock);
            m->queue_sel = 0;
            mmio_update_irq(m);
            pthread_mutex_unlock(&d->lock);
        }
        return;
    case MMIO_QUEUE_READY:
        virtio_queue_set_ready(d, m->queue_sel, v & 1);
        return;
    case MMIO_QUEUE_NOTIFY:
        virtio_queue_kick(d, v & 0xffff);
        return;
    default:
        break;
    }
    pthread_mutex_lock(&d->lock);
    struct virtq *vq = m->queue_sel < d->nvqs ? &d->vqs[m->queue_sel] : NULL;
    /* queue layout is only writable while the queue is disabled */
    bool qw = vq && !vq->ready;
    switch (off) {
    case MMIO_DEVICE_FEATURES_SEL:
        m->dev_features_sel = v;
        break;
    case MMIO_DRIVER_FEATURES_SEL:
        m->drv_features_sel = v;
        break;
    case MMIO_QUEUE_SEL:
        m->queue_sel = v;
        break;
    case MMIO_QUEUE_NUM:
        if (qw)
            vq->num = (uint16_t)(v > 0xffff ? 0 : v);
        break;
    case MMIO_QUEUE_DESC_LOW:
        if (qw)
            set_lo(&vq->desc_gpa, v);
        break;
    case MMIO_QUEUE_DESC_HIGH:
        if (qw)
            set_hi(&vq->desc_gpa, v);
        break;
    case MMIO_QUEUE_DRIVER_LOW:
        if (qw)
            set_lo(&vq->avail_gpa, v);
        break;
    case MMIO_QUEUE_DRIVER_HIGH:
        if (qw)
            set_hi(&vq->avail_gpa, v);
        break;
    case MMIO_QUEUE_DEVICE_LOW:
        if (qw)
            set_lo(&vq->used_gpa, v);
        break;
    case MMIO_QUEUE_DEVICE_HIGH:
        if (qw)
            set_hi(&vq->used_gpa, v);
        break;
    case MMIO_INTERRUPT_ACK:
        d->isr &= ~v;
        mmio_update_irq(m);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w, uint32_t instance)
{
    state_begin(w, "virtio-mmio", instance, 1);
    state_put_u32(w, m->dev_features_sel);
    state_put_u32(w, m->drv_features_sel);
    state_put_u32(w, m->queue_sel);
    state_end(w);
}

int virtio_mmio_load(struct virtio_mmio *m, struct state_reader *r, uint32_t instance, vs_err *err)
{
    uint32_t version;
    if (state_find(r, "virtio-mmio", instance, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "virtio-mmio: unsupported state version %u", version);
    if (state_get_u32(r, &m->dev_features_sel, err) < 0 ||
        state_get_u32(r, &m->drv_features_sel, err) < 0 || state_get_u32(r, &m->queue_sel, err) < 0)
        return -1;
    pthread_mutex_lock(&m->dev->lock);
    mmio_update_irq(m);
    pthread_mutex_unlock(&m->dev->lock);
    return 0;
}
