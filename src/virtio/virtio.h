/* The virtio 1.x device core: feature negotiation, device status and reset,
 * configuration space, and the hooks a transport (virtio-pci, virtio-mmio)
 * and a device model (blk, net, rng, console, vsock) plug into. A device
 * never knows its transport; a transport never knows the device type. */
#ifndef VESSEL_VIRTIO_VIRTIO_H
#define VESSEL_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "state/state.h"
#include "util/err.h"
#include "virtio/virtq.h"

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Device-independent feature bits. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Device IDs. */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS 26

#define VIRTIO_MAX_QUEUES 17
#define VIRTIO_CONFIG_MAX 256

/* ISR bits (pci ISR register, mmio InterruptStatus). */
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

struct virtio_dev;

/* What a device model provides. Callbacks run with dev->lock NOT held unless
 * said otherwise. */
struct virtio_dev_ops {
    /* The driver kicked queue q (vCPU thread). */
    void (*queue_notify)(struct virtio_dev *d, unsigned q);
    /* Status gained DRIVER_OK: start processing. */
    void (*driver_ok)(struct virtio_dev *d);
    /* The driver reset the device (or the VMM does): stop using the queues
     * and finish or drop in-flight requests before returning. The core then
     * clears queues, features and status. */
    void (*reset)(struct virtio_dev *d);
    /* Optional: an eventfd that counts as a kick of queue q (the transport
     * may have the hypervisor signal it directly: KVM ioeventfd), or -1. */
    int (*queue_eventfd)(struct virtio_dev *d, unsigned q);
    /* Driver wrote config space at [off, off+len) (already stored). */
    void (*config_write)(struct virtio_dev *d, uint32_t off, unsigned len);
    /* Quiesce for a snapshot: no request in flight after return. */
    void (*pause)(struct virtio_dev *d);
    void (*resume)(struct virtio_dev *d);
    /* Device-specific state beyond the core's, with what belongs to the
     * device (its host backend's state) in sections of their own (may be
     * NULL). */
    int (*save)(struct virtio_dev *d, struct state_writer *w, vs_err *err);
    int (*load)(struct virtio_dev *d, struct state_reader *r, vs_err *err);
    void (*destroy)(struct virtio_dev *d);
};

/* What a transport provides to raise interrupts. */
struct virtio_transport_ops {
    void (*notify_queue)(struct virtio_dev *d, unsigned q);
    void (*notify_config)(struct virtio_dev *d);
};

struct virtio_dev {
    const char *name; /* "virtio-blk0" */
    uint32_t device_id;
    uint64_t host_features;
    uint64_t guest_features;
    uint8_t status;
    uint8_t config_generation;
    bool broken;
    uint8_t config[VIRTIO_CONFIG_MAX];
    uint32_t config_len;
    struct virtq vqs[VIRTIO_MAX_QUEUES];
    unsigned nvqs;
    struct guest_mem *mem;
    /* Serialises transport register access, queue ring access and
     * interrupt state between vCPU threads and device threads. */
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    const struct virtio_transport_ops *tr;
    void *tr_opaque;
    uint32_t isr; /* pending ISR bits (transport-visible) */
};

void virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id, uint64_t features,
                     unsigned nvqs, uint16_t queue_max, const struct virtio_dev_ops *ops,
                     struct guest_mem *mem);
void virtio_dev_fini(struct virtio_dev *d);
/* Stop the device's threads and free it (ops->destroy); NULL-safe. */
void virtio_dev_destroy(struct virtio_dev *d);

static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
    return (d->guest_features >> bit) & 1;
}

/* Transport side. Called without the lock held; they take it. */
uint32_t virtio_read_device_features(struct virtio_dev *d, unsigned sel);
void virtio_write_driver_features(struct virtio_dev *d, unsigned sel, uint32_t val);
uint32_t virtio_read_driver_features(struct virtio_dev *d, unsigned sel);
void virtio_write_status(struct virtio_dev *d, uint8_t status);
uint64_t virtio_config_read(struct virtio_dev *d, uint32_t off, unsigned len);
void virtio_config_write(struct virtio_dev *d, uint32_t off, uint64_t val, unsigned len);
/* Queue enable/disable by the driver; the queue fields were set before. */
void virtio_queue_set_ready(struct virtio_dev *d, unsigned q, bool ready);
void virtio_queue_kick(struct virtio_dev *d, unsigned q);
/* Full device reset (driver wrote status 0, or VMM reset). */
void virtio_dev_reset(struct virtio_dev *d);

/* Device side. */
/* Mark broken: DEVICE_NEEDS_RESET, config interrupt, all queues stop. Call
 * with the lock held. */
void virtio_dev_set_broken_locked(struct virtio_dev *d, const char *why);
/* After virtq_push(es): interrupt the driver if it wants one (EVENT_IDX or
 * NO_INTERRUPT respected). Lock held. */
void virtio_queue_notify_locked(struct virtio_dev *d, unsigned q);
/* Config space changed: bump generation, config interrupt. Lock held. */
void virtio_config_changed_locked(struct virtio_dev *d);
static inline bool virtio_dev_running(const struct virtio_dev *d)
{
    return (d->status & VIRTIO_STATUS_DRIVER_OK) && !d->broken;
}

/* Little-endian config-space helpers. */
void virtio_config_put_u16(struct virtio_dev *d, uint32_t off, uint16_t v);
void virtio_config_put_u32(struct virtio_dev *d, uint32_t off, uint32_t v);
void virtio_config_put_u64(struct virtio_dev *d, uint32_t off, uint64_t v);

/* Core state (status, features, config, queues) as section
 * "virtio/<name>"; then ops->save. */
int virtio_dev_save(struct virtio_dev *d, struct state_writer *w, uint32_t instance, vs_err *err);
int virtio_dev_load(struct virtio_dev *d, struct state_reader *r, uint32_t instance, vs_err *err);

#endif
