/* The machine glue: build every virtio device a VM config asks for and plug
 * each into the machine's transport (virtio-pci on x86, virtio-mmio on the
 * RISC-V board). */
#include <errno.h>
#include <stdlib.h>
#include "util/log.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"

#define VIRTIO_SET_MAX (VM_MAX_DISKS + VM_MAX_NETS + 3)

struct virtio_set {
    struct virtio_dev *devs[VIRTIO_SET_MAX];
    struct virtio_pci *pci[VIRTIO_SET_MAX];
    struct virtio_mmio *mmio[VIRTIO_SET_MAX];
    unsigned n;
    bool paused;
    struct io_bus *mmio_bus;
};

static int add(struct virtio_set *s, struct virtio_dev *d, vs_err *err)
{
    if (!d)
        return -1;
    if (s->n == VIRTIO_SET_MAX) {
        virtio_dev_destroy(d);
        return vs_error(err, E2BIG, "too many virtio devices");
    }
    s->devs[s->n++] = d;
    return 0;
}

static int create_devices(const struct vm_config *cfg, struct guest_mem *mem,
                          struct vs_event_loop *loop, struct virtio_set *s, vs_err *err)
{
    unsigned nq = cfg->cpus > 1 ? cfg->cpus : 1;
    if (nq > VIRTIO_MAX_QUEUES - 1)
        nq = VIRTIO_MAX_QUEUES - 1;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        if (add(s, virtio_blk_new(mem, &cfg->disks[i], i, nq, err), err) < 0)
            return -1;
    for (unsigned i = 0, user = 0; i < cfg->nnets; i++) {
        const struct vm_net_config *nc = &cfg->nets[i];
        unsigned instance = nc->kind == VM_NET_TAP ? 0 : user++;
        if (add(s, virtio_net_new(mem, nc, i, instance, err), err) < 0)
            return -1;
    }
    if (cfg->rng && add(s, virtio_rng_new(mem, 0, err), err) < 0)
        return -1;
    if (cfg->vconsole && add(s, virtio_console_new(mem, cfg->vconsole, loop, 0, err), err) < 0)
        return -1;
    if (cfg->vsock_cid &&
        add(s, virtio_vsock_new(mem, cfg->vsock_cid, cfg->vsock_uds, loop, err), err) < 0)
        return -1;
    return 0;
}

int virtio_setup_pci(const struct vm_config *cfg, struct guest_mem *mem, struct pci_bus *pci,
                     struct vs_event_loop *loop, struct virtio_set **out, vs_err *err)
{
    *out = NULL;
    struct virtio_set *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "virtio: out of memory");
    if (create_devices(cfg, mem, loop, s, err) < 0)
        goto fail;
    for (unsigned i = 0; i < s->n; i++) {
        s->pci[i] = calloc(1, sizeof(*s->pci[i]));
        if (!s->pci[i]) {
            vs_error(err, ENOMEM, "virtio: out of memory");
            goto fail;
        }
        virtio_pci_init(s->pci[i], s->devs[i]);
        if (pci_register_device(pci, &s->pci[i]->pci, err) < 0) {
            vs_error_prefix(err, "%s: ", s->devs[i]->name);
            goto fail;
        }
    }
    if (s->n == 0) {
        free(s);
        return 0;
    }
    *out = s;
    return 0;
fail:
    virtio_set_destroy(s);
    return -1;
}

int virtio_setup_mmio(const struct vm_config *cfg, struct guest_mem *mem, struct io_bus *mmio,
                      uint64_t base, uint64_t stride, const struct irq_line *irqs, unsigned nslots,
                      struct vs_event_loop *loop, struct virtio_set **out, unsigned *nused,
                      vs_err *err)
{
    *out = NULL;
    *nused = 0;
    struct virtio_set *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "virtio: out of memory");
    s->mmio_bus = mmio;
    if (create_devices(cfg, mem, loop, s, err) < 0)
        goto fail;
    if (s->n > nslots) {
        vs_error(err, E2BIG, "%u virtio devices requested, the board has %u virtio-mmio slots",
                 s->n, nslots);
        goto fail;
    }
    if (stride < VIRTIO_MMIO_SIZE) {
        vs_error(err, EINVAL, "virtio-mmio stride 0x%llx is below 0x%x", (unsigned long long)stride,
                 VIRTIO_MMIO_SIZE);
        goto fail;
    }
    for (unsigned i = 0; i < s->n; i++) {
        s->mmio[i] = calloc(1, sizeof(*s->mmio[i]));
        if (!s->mmio[i]) {
            vs_error(err, ENOMEM, "virtio: out of memory");
            goto fail;
        }
        virtio_mmio_init(s->mmio[i], s->devs[i], &irqs[i], base + i * stride);
        if (cfg->virtio_vendor_qemu)
            s->mmio[i]->vendor_id = VIRTIO_MMIO_VENDOR_QEMU;
        if (virtio_mmio_register(s->mmio[i], mmio, err) < 0) {
            vs_error_prefix(err, "%s: ", s->devs[i]->name);
            free(s->mmio[i]);
            s->mmio[i] = NULL;
            goto fail;
        }
    }
    *nused = s->n;
    if (s->n == 0) {
        free(s);
        return 0;
    }
    *out = s;
    return 0;
fail:
    virtio_set_destroy(s);
    return -1;
}

int virtio_set_foreach(struct virtio_set *s,
                       int (*fn)(struct virtio_dev *d, void *opaque, vs_err *err), void *opaque,
                       vs_err *err)
{
    for (unsigned i = 0; s && i < s->n; i++)
        if (fn(s->devs[i], opaque, err) < 0)
            return -1;
    return 0;
}

int virtio_set_pause(struct virtio_set *s, vs_err *err)
{
    if (!s || s->paused)
        return 0;
    for (unsigned i = 0; i < s->n; i++)
        if (s->devs[i]->ops->pause)
            s->devs[i]->ops->pause(s->devs[i]);
    s->paused = true;
    return 0;
}

void virtio_set_resume(struct virtio_set *s)
{
    if (!s || !s->paused)
        return;
    for (unsigned i = 0; i < s->n; i++)
        if (s->devs[i]->ops->resume)
            s->devs[i]->ops->resume(s->devs[i]);
    s->paused = false;
}

int virtio_set_save(struct virtio_set *s, struct state_writer *w, vs_err *err)
{
    if (!s)
        return 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (virtio_dev_save(s->devs[i], w, i, err) < 0)
            return -1;
        if (s->pci[i])
            virtio_pci_save(s->pci[i], w, i);
        if (s->mmio[i])
            virtio_mmio_save(s->mmio[i], w, i);
    }
    return state_writer_status(w, err);
}

int virtio_set_load(struct virtio_set *s, struct state_reader *r, vs_err *err)
{
    if (!s)
        return 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (virtio_dev_load(s->devs[i], r, i, err) < 0)
            return -1;
        if (s->pci[i] && virtio_pci_load(s->pci[i], r, i, err) < 0)
            return -1;
        if (s->mmio[i] && virtio_mmio_load(s->mmio[i], r, i, err) < 0)
            return -1;
    }
    /* restart what the driver had running (requests it queued while the
     * source was paused are picked up now) */
    for (unsigned i = 0; i < s->n; i++)
        if ((s->devs[i]->status & VIRTIO_STATUS_DRIVER_OK) && s->devs[i]->ops->driver_ok)
            s->devs[i]->ops->driver_ok(s->devs[i]);
    return 0;
}

void virtio_set_destroy(struct virtio_set *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        if (s->mmio[i] && s->mmio_bus)
            io_bus_unregister(s->mmio_bus, s->mmio[i]->base, s->mmio[i]);
        virtio_dev_destroy(s->devs[i]);
        if (s->pci[i])
            virtio_pci_release(s->pci[i]);
        /* the buses keep pointers to the transports until they are torn
         * down; destroy is the last thing a VM does */
        free(s->pci[i]);
        free(s->mmio[i]);
    }
    free(s);
}
