#include "virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "util/log.h"

void virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id, uint64_t features,
                     unsigned nvqs, uint16_t queue_max, const struct virtio_dev_ops *ops,
                     struct guest_mem *mem)
{
    d->name = name;
    d->device_id = device_id;
    d->host_features = features | (1ULL << VIRTIO_F_VERSION_1) |
                       (1ULL << VIRTIO_F_RING_INDIRECT_DESC) | (1ULL << VIRTIO_F_RING_EVENT_IDX);
    d->guest_features = 0;
    d->status = 0;
    d->broken = false;
    d->nvqs = nvqs > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES : nvqs;
    for (unsigned i = 0; i < d->nvqs; i++)
        virtq_reset(&d->vqs[i], queue_max);
    d->ops = ops;
    d->mem = mem;
    d->isr = 0;
    pthread_mutex_init(&d->lock, NULL);
}

void virtio_dev_fini(struct virtio_dev *d)
{
    pthread_mutex_destroy(&d->lock);
}

void virtio_dev_destroy(struct virtio_dev *d)
{
    if (d && d->ops->destroy)
        d->ops->destroy(d);
}

uint32_t virtio_read_device_features(struct virtio_dev *d, unsigned sel)
{
    return sel < 2 ? (uint32_t)(d->host_features >> (32 * sel)) : 0;
}

uint32_t virtio_read_driver_features(struct virtio_dev *d, unsigned sel)
{
    pthread_mutex_lock(&d->lock);
    uint32_t v = sel < 2 ? (uint32_t)(d->guest_features >> (32 * sel)) : 0;
    pthread_mutex_unlock(&d->lock);
    return v;
}

void virtio_write_driver_features(struct virtio_dev *d, unsigned sel, uint32_t val)
{
    pthread_mutex_lock(&d->lock);
    /* features are frozen once FEATURES_OK is set */
    if (sel < 2 && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t mask = 0xffffffffULL << (32 * sel);
        d->guest_features = (d->guest_features & ~mask) | ((uint64_t)val << (32 * sel));
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_dev_reset(struct virtio_dev *d)
{
    if (d->ops->reset)
        d->ops->reset(d);
    pthread_mutex_lock(&d->lock);
    for (unsigned i = 0; i < d->nvqs; i++)
        virtq_reset(&d->vqs[i], d->vqs[i].num_max);
    d->guest_features = 0;
    d->status = 0;
    d->broken = false;
    d->isr = 0;
    pthread_mutex_unlock(&d->lock);
}

void virtio_write_status(struct virtio_dev *d, uint8_t status)
{
    if (status == 0) {
        virtio_dev_reset(d);
        return;
    }
    pthread_mutex_lock(&d->lock);
    uint8_t old = d->status;
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        /* Accept the features only if they are a subset of ours and the
         * driver speaks virtio 1.x; otherwise FEATURES_OK stays clear and
         * the driver gives up (virtio 1.2, 3.1.1). */
        bool ok =
            !(d->guest_features & ~d->host_features) && virtio_has_feature(d, VIRTIO_F_VERSION_1);
        if (!ok) {
            vs_warn("%s: driver features 0x%llx refused (need VERSION_1, subset of 0x%llx)",
                    d->name, (unsigned long long)d->guest_features,
                    (unsigned long long)d->host_features);
            status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    /* DEVICE_NEEDS_RESET is the device's to set. */
    d->status = (uint8_t)((status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
                          (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    bool start = (status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
                 (d->status & VIRTIO_STATUS_FEATURES_OK);
    pthread_mutex_unlock(&d->lock);
    if (start && d->ops->driver_ok)
        d->ops->driver_ok(d);
}

uint64_t virtio_config_read(struct virtio_dev *d, uint32_t off, unsigned len)
{
    if (len > 8 || off >= d->config_len || len > d->config_len - off)
        return 0;
    uint64_t v = 0;
    pthread_mutex_lock(&d->lock);
    memcpy(&v, d->config + off, len);
    pthread_mutex_unlock(&d->lock);
    return v;
}

void virtio_config_write(struct virtio_dev *d, uint32_t off, uint64_t val, unsigned len)
{
    if (len > 8 || off >= d->config_len || len > d->config_len - off)
        return;
    if (!d->ops->config_write)
        return; /* read-only config space */
    pthread_mutex_lock(&d->lock);
    memcpy(d->config + off, &val, len);
    pthread_mutex_unlock(&d->lock);
    d->ops->config_write(d, off, len);
}

void virtio_queue_set_ready(struct virtio_dev *d, unsigned q, bool ready)
{
    if (q >= d->nvqs)
        return;
    pthread_mutex_lock(&d->lock);
    struct virtq *vq = &d->vqs[q];
    if (!ready) {
        vq->ready = false;
    } else if (!vq->ready) {
        if (!virtq_enable(vq, d->mem, virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX),
                          virtio_has_feature(d, VIRTIO_F_RING_INDIRECT_DESC)))
            virtio_dev_set_broken_locked(d, vq->error);
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_queue_kick(struct virtio_dev *d, unsigned q)
{
    if (q >= d->nvqs || !d->ops->queue_notify)
        return;
    d->ops->queue_notify(d, q);
}

void virtio_dev_set_broken_locked(struct virtio_dev *d, const char *why)
{
    if (d->broken)
        return;
    d->broken = true;
    vs_warn("%s: guest driver error: %s; device needs reset", d->name, why ? why : "?");
    d->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    for (unsigned i = 0; i < d->nvqs; i++)
        if (!d->vqs[i].error)
            d->vqs[i].error = "device broken";
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_config_changed_locked(d);
}

void virtio_queue_notify_locked(struct virtio_dev *d, unsigned q)
{
    if (q >= d->nvqs || !virtq_should_notify(&d->vqs[q]))
        return;
    d->isr |= VIRTIO_ISR_QUEUE;
    if (d->tr && d->tr->notify_queue)
        d->tr->notify_queue(d, q);
}

void virtio_config_changed_locked(struct virtio_dev *d)
{
    d->config_generation++;
    d->isr |= VIRTIO_ISR_CONFIG;
    if (d->tr && d->tr->notify_config)
        d->tr->notify_config(d);
}

void virtio_config_put_u16(struct virtio_dev *d, uint32_t off, uint16_t v)
{
    memcpy(d->config + off, &v, 2);
}
void virtio_config_put_u32(struct virtio_dev *d, uint32_t off, uint32_t v)
{
    memcpy(d->config + off, &v, 4);
}
void virtio_config_put_u64(struct virtio_dev *d, uint32_t off, uint64_t v)
{
    memcpy(d->config + off, &v, 8);
}

/* Section "virtio/<name>" version 1:
 *   u32 device_id | u64 host_features | u64 guest_features | u32 status |
 *   u32 config_generation | u32 isr | u32 broken | u32 config_len | config |
 *   u32 nvqs | per queue: u32 num, ready, msix_vector, last_avail, used_idx,
 *   signalled_used, signalled_valid | u64 desc, avail, used
 * Followed by the device's own section(s) from ops->save. */
int virtio_dev_save(struct virtio_dev *d, struct state_writer *w, uint32_t instance, vs_err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "virtio/%s", d->name);
    pthread_mutex_lock(&d->lock);
    state_begin(w, name, instance, 1);
    state_put_u32(w, d->device_id);
    state_put_u64(w, d->host_features);
    state_put_u64(w, d->guest_features);
    state_put_u32(w, d->status);
    state_put_u32(w, d->config_generation);
    state_put_u32(w, d->isr);
    state_put_u32(w, d->broken);
    state_put_u32(w, d->config_len);
    state_put(w, d->config, d->config_len);
    state_put_u32(w, d->nvqs);
    for (unsigned i = 0; i < d->nvqs; i++) {
        struct virtq *vq = &d->vqs[i];
        state_put_u32(w, vq->num);
        state_put_u32(w, vq->ready);
        state_put_u32(w, vq->msix_vector);
        state_put_u32(w, vq->last_avail);
        state_put_u32(w, vq->used_idx);
        state_put_u32(w, vq->signalled_used);
        state_put_u32(w, vq->signalled_used_valid);
        state_put_u64(w, vq->desc_gpa);
        state_put_u64(w, vq->avail_gpa);
        state_put_u64(w, vq->used_gpa);
    }
    state_end(w);
    pthread_mutex_unlock(&d->lock);
    if (d->ops->save && d->ops->save(d, w, err) < 0)
        return -1;
    return state_writer_status(w, err);
}

int virtio_dev_load(struct virtio_dev *d, struct state_reader *r, uint32_t instance, vs_err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "virtio/%s", d->name);
    uint32_t version;
    if (state_find(r, name, instance, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "%s: unsupported state version %u", name, version);
    uint32_t id, status, gen, isr, broken, clen, nvqs;
    uint64_t hf, gf;
    if (state_get_u32(r, &id, err) < 0 || state_get_u64(r, &hf, err) < 0 ||
        state_get_u64(r, &gf, err) < 0 || state_get_u32(r, &status, err) < 0 ||
        state_get_u32(r, &gen, err) < 0 || state_get_u32(r, &isr, err) < 0 ||
        state_get_u32(r, &broken, err) < 0 || state_get_u32(r, &clen, err) < 0)
        return -1;
    if (id != d->device_id || clen != d->config_len)
        return vs_error(err, EINVAL, "%s: saved device does not match this one", name);
    if (hf & ~d->host_features)
        return vs_error(err, EINVAL, "%s: saved features 0x%llx not offered by this build", name,
                        (unsigned long long)hf);
    uint8_t config[VIRTIO_CONFIG_MAX];
    if (state_get(r, config, clen, err) < 0 || state_get_u32(r, &nvqs, err) < 0)
        return -1;
    if (nvqs != d->nvqs)
        return vs_error(err, EINVAL, "%s: saved %u queues, device has %u", name, nvqs, d->nvqs);
    pthread_mutex_lock(&d->lock);
    d->guest_features = gf;
    d->status = (uint8_t)status;
    d->config_generation = (uint8_t)gen;
    d->isr = isr;
    d->broken = broken != 0;
    memcpy(d->config, config, clen);
    int ret = 0;
    for (unsigned i = 0; i < nvqs && ret == 0; i++) {
        struct virtq *vq = &d->vqs[i];
        uint32_t num, ready, vec, la, ui, su, sv;
        uint64_t dg, ag, ug;
        if (state_get_u32(r, &num, err) < 0 || state_get_u32(r, &ready, err) < 0 ||
            state_get_u32(r, &vec, err) < 0 || state_get_u32(r, &la, err) < 0 ||
            state_get_u32(r, &ui, err) < 0 || state_get_u32(r, &su, err) < 0 ||
            state_get_u32(r, &sv, err) < 0 || state_get_u64(r, &dg, err) < 0 ||
            state_get_u64(r, &ag, err) < 0 || state_get_u64(r, &ug, err) < 0) {
            ret = -1;
            break;
        }
        uint16_t max = vq->num_max;
        virtq_reset(vq, max);
        vq->num = (uint16_t)num;
        vq->msix_vector = (uint16_t)vec;
        vq->desc_gpa = dg;
        vq->avail_gpa = ag;
        vq->used_gpa = ug;
        if (ready && !virtq_enable(vq, d->mem, virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX),
                                   virtio_has_feature(d, VIRTIO_F_RING_INDIRECT_DESC))) {
            ret = vs_error(err, EINVAL, "%s: queue %u: %s", name, i, vq->error);
            break;
        }
        vq->last_avail = (uint16_t)la;
        vq->used_idx = (uint16_t)ui;
        vq->signalled_used = (uint16_t)su;
        vq->signalled_used_valid = sv != 0;
    }
    pthread_mutex_unlock(&d->lock);
    if (ret < 0)
        return -1;
    if (d->ops->load && d->ops->load(d, r, err) < 0)
        return -1;
    return 0;
}
