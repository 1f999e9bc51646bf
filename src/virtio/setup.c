/* The machine's device list: every virtio device of one VM, each plugged
 * into the machine's transport (virtio-pci on x86, virtio-mmio on the
 * RISC-V board). The config's devices are added at boot (virtio_setup_*);
 * devices can be added and removed while the machine runs
 * (virtio_set_add, virtio_set_remove): the ground for hot-plug. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "util/log.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"

struct virtio_entry {
    struct virtio_dev *dev;
    struct virtio_pci *pci; /* its transport: one of the two */
    struct virtio_mmio *mmio;
    unsigned instance; /* of its state sections: order of addition, never reused */
    unsigned slot;     /* virtio-mmio slot */
};

struct virtio_set {
    pthread_mutex_t lock; /* the list; never taken by device or vCPU threads */
    struct virtio_entry *e;
    unsigned n, cap;
    unsigned next_instance;
    bool paused;
    /* the transport: a PCI bus, or MMIO slots at base + i * stride with
     * interrupt line irqs[i] */
    struct pci_bus *pci;
    struct io_bus *mmio_bus;
    uint64_t mmio_base, mmio_stride;
    struct irq_line *irqs;
    unsigned nslots;
    uint32_t mmio_vendor; /* 0: the transport's default */
};

static struct virtio_set *set_new(void)
{
    struct virtio_set *s = calloc(1, sizeof(*s));
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    return s;
}

int virtio_set_new_pci(struct pci_bus *pci, struct virtio_set **out, vs_err *err)
{
    struct virtio_set *s = set_new();
    if (!s)
        return vs_error(err, ENOMEM, "virtio: out of memory");
    s->pci = pci;
    *out = s;
    return 0;
}

int virtio_set_new_mmio(struct io_bus *mmio, uint64_t base, uint64_t stride,
                        const struct irq_line *irqs, unsigned nslots, uint32_t vendor_id,
                        struct virtio_set **out, vs_err *err)
{
    if (stride < VIRTIO_MMIO_SIZE)
        return vs_error(err, EINVAL, "virtio-mmio stride 0x%llx is below 0x%x",
                        (unsigned long long)stride, VIRTIO_MMIO_SIZE);
    struct virtio_set *s = set_new();
    if (!s || !(s->irqs = calloc(nslots ? nslots : 1, sizeof(*s->irqs)))) {
        free(s);
        return vs_error(err, ENOMEM, "virtio: out of memory");
    }
    memcpy(s->irqs, irqs, nslots * sizeof(*irqs));
    s->mmio_bus = mmio;
    s->mmio_base = base;
    s->mmio_stride = stride;
    s->nslots = nslots;
    s->mmio_vendor = vendor_id;
    *out = s;
    return 0;
}

/* The lowest virtio-mmio slot no device holds (nslots: none is free). */
static unsigned free_slot(const struct virtio_set *s)
{
    for (unsigned slot = 0;; slot++) {
        bool used = false;
        for (unsigned i = 0; i < s->n && !used; i++)
            used = s->e[i].mmio && s->e[i].slot == slot;
        if (!used)
            return slot;
    }
}

/* Plug e->dev into the set's transport; with s->lock held. On failure the
 * transport it was given (if any) is left for discard. */
static int plug(struct virtio_set *s, struct virtio_entry *e, vs_err *err)
{
    if (s->pci) {
        e->pci = calloc(1, sizeof(*e->pci));
        if (!e->pci)
            return vs_error(err, ENOMEM, "virtio: out of memory");
        virtio_pci_init(e->pci, e->dev);
        if (pci_register_device(s->pci, &e->pci->pci, err) < 0)
            return vs_error_prefix(err, "%s: ", e->dev->name);
        return 0;
    }
    if (!s->mmio_bus)
        return 0; /* a list without a transport (tests) */
    e->slot = free_slot(s);
    if (e->slot >= s->nslots)
        return vs_error(err, E2BIG,
                        "%u virtio devices requested, the board has %u virtio-mmio slots", s->n + 1,
                        s->nslots);
    e->mmio = calloc(1, sizeof(*e->mmio));
    if (!e->mmio)
        return vs_error(err, ENOMEM, "virtio: out of memory");
    virtio_mmio_init(e->mmio, e->dev, &s->irqs[e->slot], s->mmio_base + e->slot * s->mmio_stride);
    if (s->mmio_vendor)
        e->mmio->vendor_id = s->mmio_vendor;
    if (virtio_mmio_register(e->mmio, s->mmio_bus, err) < 0)
        return vs_error_prefix(err, "%s: ", e->dev->name);
    return 0;
}

/* Free a device no bus reaches, then its transport (the device's threads
 * may signal through it until they stop). */
static void discard(struct virtio_entry *e)
{
    virtio_dev_destroy(e->dev);
    if (e->pci)
        virtio_pci_release(e->pci);
    free(e->pci);
    free(e->mmio);
}

/* Take e off the transport and free it and its device. */
static void unplug(struct virtio_set *s, struct virtio_entry *e)
{
    if (e->mmio)
        io_bus_unregister(s->mmio_bus, e->mmio->base, e->mmio);
    if (e->pci)
        pci_unregister_device(s->pci, &e->pci->pci);
    discard(e);
}

/* Room for one more entry; with s->lock held. */
static int grow(struct virtio_set *s, vs_err *err)
{
    if (s->n < s->cap)
        return 0;
    unsigned cap = s->cap ? s->cap * 2 : 8;
    struct virtio_entry *e = realloc(s->e, cap * sizeof(*e));
    if (!e)
        return vs_error(err, ENOMEM, "virtio: out of memory");
    s->e = e;
    s->cap = cap;
    return 0;
}

int virtio_set_add(struct virtio_set *s, struct virtio_dev *d, vs_err *err)
{
    if (!d)
        return -1; /* its constructor failed and said why */
    struct virtio_entry e = {.dev = d};
    pthread_mutex_lock(&s->lock);
    e.instance = s->next_instance;
    int rc = plug(s, &e, err);
    if (rc < 0) {
        discard(&e);
    } else if ((rc = grow(s, err)) < 0) {
        unplug(s, &e);
    } else {
        /* a device that arrives while the others are quiesced is too */
        if (s->paused && d->ops->pause)
            d->ops->pause(d);
        s->e[s->n++] = e;
        s->next_instance++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int virtio_set_remove(struct virtio_set *s, struct virtio_dev *d, vs_err *err)
{
    pthread_mutex_lock(&s->lock);
    unsigned i = 0;
    while (i < s->n && s->e[i].dev != d)
        i++;
    if (i == s->n) {
        pthread_mutex_unlock(&s->lock);
        return vs_error(err, ENOENT, "%s is not one of the machine's devices", d->name);
    }
    struct virtio_entry gone = s->e[i];
    memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(s->e[0]));
    s->n--;
    unplug(s, &gone);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

unsigned virtio_set_count(struct virtio_set *s)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    unsigned n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int create_devices(const struct vm_config *cfg, struct guest_mem *mem,
                          struct vs_event_loop *loop, struct virtio_set *s, vs_err *err)
{
    unsigned nq = cfg->cpus > 1 ? cfg->cpus : 1;
    if (nq > VIRTIO_MAX_QUEUES - 1)
        nq = VIRTIO_MAX_QUEUES - 1;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        if (virtio_set_add(s, virtio_blk_new(mem, &cfg->disks[i], i, nq, err), err) < 0)
            return -1;
    for (unsigned i = 0, user = 0; i < cfg->nnets; i++) {
        const struct vm_net_config *nc = &cfg->nets[i];
        unsigned instance = nc->kind == VM_NET_TAP ? 0 : user++;
        if (virtio_set_add(s, virtio_net_new(mem, nc, i, instance, err), err) < 0)
            return -1;
    }
    if (cfg->rng && virtio_set_add(s, virtio_rng_new(mem, 0, err), err) < 0)
        return -1;
    if (cfg->vconsole &&
        virtio_set_add(s, virtio_console_new(mem, cfg->vconsole, loop, 0, err), err) < 0)
        return -1;
    if (cfg->vsock_cid &&
        virtio_set_add(s, virtio_vsock_new(mem, cfg->vsock_cid, cfg->vsock_uds, loop, err), err) <
            0)
        return -1;
    if (cfg->balloon.enabled &&
        virtio_set_add(s, virtio_balloon_new(mem, &cfg->balloon, err), err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nshares; i++)
        if (virtio_set_add(s, virtio_fs_new(mem, &cfg->shares[i], i, loop, err), err) < 0)
            return -1;
    return 0;
}

int virtio_setup_pci(const struct vm_config *cfg, struct guest_mem *mem, struct pci_bus *pci,
                     struct vs_event_loop *loop, struct virtio_set **out, vs_err *err)
{
    *out = NULL;
    struct virtio_set *s;
    if (virtio_set_new_pci(pci, &s, err) < 0)
        return -1;
    if (create_devices(cfg, mem, loop, s, err) < 0) {
        virtio_set_destroy(s);
        return -1;
    }
    *out = s;
    return 0;
}

int virtio_setup_mmio(const struct vm_config *cfg, struct guest_mem *mem, struct io_bus *mmio,
                      uint64_t base, uint64_t stride, const struct irq_line *irqs, unsigned nslots,
                      struct vs_event_loop *loop, struct virtio_set **out, unsigned *nused,
                      vs_err *err)
{
    *out = NULL;
    *nused = 0;
    struct virtio_set *s;
    if (virtio_set_new_mmio(mmio, base, stride, irqs, nslots,
                            cfg->virtio_vendor_qemu ? VIRTIO_MMIO_VENDOR_QEMU : 0, &s, err) < 0)
        return -1;
    if (create_devices(cfg, mem, loop, s, err) < 0) {
        virtio_set_destroy(s);
        return -1;
    }
    *nused = s->n;
    *out = s;
    return 0;
}

/* fn for each entry, in the order of addition, with the list held, until
 * one fails. */
static int each_entry(struct virtio_set *s,
                      int (*fn)(struct virtio_set *s, struct virtio_entry *e, void *opaque,
                                vs_err *err),
                      void *opaque, vs_err *err)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < s->n; i++)
        rc = fn(s, &s->e[i], opaque, err) < 0 ? -1 : 0;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

struct dev_fn {
    int (*fn)(struct virtio_dev *d, void *opaque, vs_err *err);
    void *opaque;
};

static int call_dev_fn(struct virtio_set *s, struct virtio_entry *e, void *opaque, vs_err *err)
{
    struct dev_fn *f = opaque;
    return f->fn(e->dev, f->opaque, err);
}

int virtio_set_foreach(struct virtio_set *s,
                       int (*fn)(struct virtio_dev *d, void *opaque, vs_err *err), void *opaque,
                       vs_err *err)
{
    struct dev_fn f = {fn, opaque};
    return each_entry(s, call_dev_fn, &f, err);
}

/* Quiesce (pause) or restart (resume) every device, once per change. */
static void set_paused(struct virtio_set *s, bool pause)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; s->paused != pause && i < s->n; i++) {
        struct virtio_dev *d = s->e[i].dev;
        void (*op)(struct virtio_dev *) = pause ? d->ops->pause : d->ops->resume;
        if (op)
            op(d);
    }
    s->paused = pause;
    pthread_mutex_unlock(&s->lock);
}

int virtio_set_pause(struct virtio_set *s, vs_err *err)
{
    set_paused(s, true);
    return 0;
}

void virtio_set_resume(struct virtio_set *s)
{
    set_paused(s, false);
}

static int save_entry(struct virtio_set *s, struct virtio_entry *e, void *w, vs_err *err)
{
    if (virtio_dev_save(e->dev, w, e->instance, err) < 0)
        return -1;
    if (e->pci)
        virtio_pci_save(e->pci, w, e->instance);
    if (e->mmio)
        virtio_mmio_save(e->mmio, w, e->instance);
    return 0;
}

int virtio_set_save(struct virtio_set *s, struct state_writer *w, vs_err *err)
{
    if (each_entry(s, save_entry, w, err) < 0)
        return -1;
    return state_writer_status(w, err);
}

static int load_entry(struct virtio_set *s, struct virtio_entry *e, void *r, vs_err *err)
{
    if (virtio_dev_load(e->dev, r, e->instance, err) < 0 ||
        (e->pci && virtio_pci_load(e->pci, r, e->instance, err) < 0) ||
        (e->mmio && virtio_mmio_load(e->mmio, r, e->instance, err) < 0))
        return -1;
    return 0;
}

/* Restart what the driver had running (requests it queued while the source
 * was paused are picked up now). */
static int restart_entry(struct virtio_set *s, struct virtio_entry *e, void *opaque, vs_err *err)
{
    struct virtio_dev *d = e->dev;
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && d->ops->driver_ok)
        d->ops->driver_ok(d);
    return 0;
}

int virtio_set_load(struct virtio_set *s, struct state_reader *r, vs_err *err)
{
    if (each_entry(s, load_entry, r, err) < 0)
        return -1;
    return each_entry(s, restart_entry, NULL, err);
}

void virtio_set_destroy(struct virtio_set *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        unplug(s, &s->e[i]);
    free(s->e);
    free(s->irqs);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
