/* virtio-rng (virtio 1.2, 5.4): every writable buffer the driver offers is
 * filled from the host's getrandom(). Cheap enough to serve on the vCPU
 * thread that kicked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include "virtio/devices.h"

struct virtio_rng {
    struct virtio_dev dev;
    char name[32];
    struct virtq_elem elem;
};

static void rng_process(struct virtio_dev *d)
{
    struct virtio_rng *r = (struct virtio_rng *)d;
    pthread_mutex_lock(&d->lock);
    bool pushed = false;
    while (virtio_dev_running(d)) {
        int ret = virtq_pop(&d->vqs[0], &r->elem);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, d->vqs[0].error);
            break;
        }
        if (ret == 0)
            break;
        uint32_t done = 0;
        for (unsigned i = r->elem.nout; i < r->elem.nout + r->elem.nin; i++) {
            struct iovec *v = &r->elem.iov[i];
            size_t got = 0;
            while (got < v->iov_len) {
                ssize_t n = getrandom((uint8_t *)v->iov_base + got, v->iov_len - got, 0);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                got += (size_t)n;
            }
            done += (uint32_t)got;
            if (got < v->iov_len)
                break;
        }
        virtq_push(&d->vqs[0], &r->elem, done);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, 0);
    pthread_mutex_unlock(&d->lock);
}

static void rng_notify(struct virtio_dev *d, unsigned q)
{
    rng_process(d);
}

static void rng_destroy(struct virtio_dev *d)
{
    virtio_dev_fini(d);
    free(d);
}

static const struct virtio_dev_ops rng_ops = {
    .queue_notify = rng_notify,
    .driver_ok = rng_process,
    .destroy = rng_destroy,
};

struct virtio_dev *virtio_rng_new(struct guest_mem *mem, unsigned index, vs_err *err)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r) {
        vs_error(err, ENOMEM, "virtio-rng: out of memory");
        return NULL;
    }
    snprintf(r->name, sizeof(r->name), "virtio-rng%u", index);
    virtio_dev_init(&r->dev, r->name, VIRTIO_ID_RNG, 0, 1, VIRTQ_MAX_SIZE, &rng_ops, mem);
    r->dev.config_len = 0;
    return &r->dev;
}
