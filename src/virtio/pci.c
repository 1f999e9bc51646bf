#include "virtio/pci.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define PCI_VENDOR_REDHAT_QUMRANET 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1
#define VIRTIO_MSI_NO_VECTOR 0xffff

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint64_t msix_addr(const struct virtio_pci *vp, unsigned v)
{
    return ((uint64_t)vp->msix[v].addr_hi << 32) | vp->msix[v].addr_lo;
}

/* Lock held. */
static void msix_fire(struct virtio_pci *vp, uint16_t vec)
{
    if (vec >= vp->nvec)
        return;
    if (vp->msix_masked || (vp->msix[vec].ctrl & MSIX_ENTRY_MASKED)) {
        vp->pba |= 1ULL << vec;
        return;
    }
    /* The irqfd path: one eventfd write, KVM injects from the write. A
     * route made for an older (addr, data) is never used (the sync below
     * drops it on every table write). */
    if (vp->irqfd[vec] >= 0) {
        uint64_t one = 1;
        if (write(vp->irqfd[vec], &one, sizeof(one)) == sizeof(one))
            return;
    }
    struct msi_sink *msi = vp->pci.msi;
    if (msi && msi->signal)
        msi->signal(msi->opaque, msix_addr(vp, vec), vp->msix[vec].data);
}

static bool vector_in_use(const struct virtio_pci *vp, unsigned v)
{
    if (vp->msix_config == v)
        return true;
    for (unsigned q = 0; q < vp->dev->nvqs; q++)
        if (vp->dev->vqs[q].msix_vector == v)
            return true;
    return false;
}

static void irqfd_drop(struct virtio_pci *vp, unsigned v)
{
    struct msi_sink *msi = vp->pci.msi;
    if (vp->irqfd[v] < 0)
        return;
    if (msi && msi->irqfd_put)
        msi->irqfd_put(msi->opaque, vp->irqfd[v]);
    else
        close(vp->irqfd[v]);
    vp->irqfd[v] = -1;
}

/* Bring the irqfd routes in line with the MSI-X table (lock held): a
 * vector that MSI-X is enabled for and a queue or the config change uses
 * gets an irqfd for its current (addr, data) once the driver unmasks it.
 * A masked entry keeps an up-to-date route (mask/unmask costs nothing);
 * an entry whose message changed loses its route at once and gets a new
 * one when unmasked, so a driver rewriting a masked entry word by word
 * does not re-route for each word. Called after table, enable/mask,
 * vector-assignment and status writes, and after a restore. */
static void msix_routes_sync_locked(struct virtio_pci *vp)
{
    struct msi_sink *msi = vp->pci.msi;
    for (unsigned v = 0; v < vp->nvec; v++) {
        uint64_t addr = msix_addr(vp, v);
        uint32_t data = vp->msix[v].data;
        bool use = vp->msix_enabled && vector_in_use(vp, v);
        if (vp->irqfd[v] >= 0 && (!use || vp->irqfd_addr[v] != addr || vp->irqfd_data[v] != data))
            irqfd_drop(vp, v);
        if (vp->irqfd[v] < 0 && use && !(vp->msix[v].ctrl & MSIX_ENTRY_MASKED) && msi &&
            msi->irqfd_get) {
            vp->irqfd[v] = msi->irqfd_get(msi->opaque, addr, data);
            vp->irqfd_addr[v] = addr;
            vp->irqfd_data[v] = data;
        }
    }
}

void virtio_pci_release(struct virtio_pci *vp)
{
    for (unsigned v = 0; v < vp->nvec; v++)
        irqfd_drop(vp, v);
}

static void msix_deliver_pending(struct virtio_pci *vp)
{
    if (!vp->msix_enabled || vp->msix_masked)
        return;
    for (unsigned v = 0; v < vp->nvec; v++)
        if ((vp->pba & (1ULL << v)) && !(vp->msix[v].ctrl & MSIX_ENTRY_MASKED)) {
            vp->pba &= ~(1ULL << v);
            msix_fire(vp, (uint16_t)v);
        }
}

static void intx_update(struct virtio_pci *vp)
{
    irq_line_set(&vp->pci.intx, !vp->msix_enabled && vp->dev->isr != 0);
}

static void vp_notify_queue(struct virtio_dev *d, unsigned q)
{
    struct virtio_pci *vp = d->tr_opaque;
    if (vp->msix_enabled)
        msix_fire(vp, d->vqs[q].msix_vector);
    else
        intx_update(vp);
}

static void vp_notify_config(struct virtio_dev *d)
{
    struct virtio_pci *vp = d->tr_opaque;
    if (vp->msix_enabled)
        msix_fire(vp, vp->msix_config);
    else
        intx_update(vp);
}

static const struct virtio_transport_ops vp_tr = {
    .notify_queue = vp_notify_queue,
    .notify_config = vp_notify_config,
};

/* Lock held. */
static void ioeventfd_sync_locked(struct virtio_pci *vp)
{
    struct pci_bus *bus = vp->pci.bus;
    struct virtio_dev *d = vp->dev;
    if (!bus || !bus->ioeventfd || !d->ops->queue_eventfd)
        return;
    uint32_t bar;
    memcpy(&bar, &vp->pci.cfg[PCI_BAR0], 4);
    uint64_t base = bar & ~0xfULL;
    bool decoding = vp->pci.cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY;
    for (unsigned q = 0; q < d->nvqs; q++) {
        int fd = d->ops->queue_eventfd(d, q);
        uint64_t addr = base + VP_NOTIFY_OFF + (uint64_t)q * VP_NOTIFY_MULT;
        bool want = fd >= 0 && decoding && base && d->vqs[q].ready &&
                    (d->status & VIRTIO_STATUS_DRIVER_OK) && !d->broken;
        if (vp->ioev_on[q] && (!want || vp->ioev_addr[q] != addr || vp->ioev_fd[q] != fd)) {
            bus->ioeventfd(bus->machine, vp->ioev_addr[q], 2, false, false, 0, vp->ioev_fd[q],
                           false);
            vp->ioev_on[q] = false;
        }
        /* Linux kicks with a 16-bit write of the queue index; a failure
         * just leaves kicks on the BAR's write path */
        if (want && !vp->ioev_on[q] &&
            bus->ioeventfd(bus->machine, addr, 2, false, false, 0, fd, true) == 0) {
            vp->ioev_on[q] = true;
            vp->ioev_addr[q] = addr;
            vp->ioev_fd[q] = fd;
        }
    }
}

void virtio_pci_sync_ioeventfds(struct virtio_pci *vp)
{
    pthread_mutex_lock(&vp->dev->lock);
    ioeventfd_sync_locked(vp);
    pthread_mutex_unlock(&vp->dev->lock);
}

static void vp_config_written(struct pci_device *p, uint32_t off, unsigned len)
{
    struct virtio_pci *vp = p->opaque;
    if (off < PCI_BAR0 + 4 && off + len > PCI_COMMAND)
        virtio_pci_sync_ioeventfds(vp); /* decoding switched or BAR 0 moved */
    if (off + len <= VP_CAP_MSIX + 2 || off >= VP_CAP_MSIX + 4)
        return;
    uint16_t ctrl;
    memcpy(&ctrl, &p->cfg[VP_CAP_MSIX + 2], 2);
    pthread_mutex_lock(&vp->dev->lock);
    vp->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
    vp->msix_masked = ctrl & MSIX_CTRL_MASKALL;
    intx_update(vp);
    msix_routes_sync_locked(vp);
    msix_deliver_pending(vp);
    pthread_mutex_unlock(&vp->dev->lock);
}

static uint8_t add_vcap(struct virtio_pci *vp, uint8_t at, uint8_t next, uint8_t type, uint32_t off,
                        uint32_t len, uint8_t cap_len)
{
    uint8_t *c = &vp->pci.cfg[at];
    c[0] = PCI_CAP_ID_VNDR;
    c[1] = next;
    c[2] = cap_len;
    c[3] = type;
    c[4] = 0; /* BAR 0 */
    put32(c + 8, off);
    put32(c + 12, len);
    return at;
}

void virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *dev)
{
    memset(vp, 0, sizeof(*vp));
    vp->dev = dev;
    vp->nvec = dev->nvqs + 1;
    vp->msix_config = VIRTIO_MSI_NO_VECTOR;
    for (unsigned v = 0; v < vp->nvec; v++) {
        vp->msix[v].ctrl = MSIX_ENTRY_MASKED;
        vp->irqfd[v] = -1;
    }
    dev->tr = &vp_tr;
    dev->tr_opaque = vp;

    struct pci_device *p = &vp->pci;
    p->name = dev->name;
    p->opaque = vp;
    p->config_written = vp_config_written;
    uint8_t *cfg = p->cfg;
    put16(cfg + PCI_VENDOR_ID, PCI_VENDOR_REDHAT_QUMRANET);
    put16(cfg + PCI_DEVICE_ID, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->device_id));
    put16(cfg + PCI_STATUS, PCI_STATUS_CAP_LIST);
    cfg[PCI_REVISION_ID] = 1;
    uint16_t cls;
    switch (dev->device_id) {
    case VIRTIO_ID_BLOCK:
        cls = 0x0180; /* mass storage, other */
        break;
    case VIRTIO_ID_NET:
        cls = 0x0200; /* ethernet */
        break;
    case VIRTIO_ID_CONSOLE:
        cls = 0x0780; /* communication, other */
        break;
    default:
        cls = 0xff00;
        break;
    }
    put16(cfg + PCI_CLASS_DEVICE, cls);
    put16(cfg + PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_REDHAT_QUMRANET);
    put16(cfg + PCI_SUBSYSTEM_ID, 0x1100);
    cfg[PCI_INTERRUPT_PIN] = 1;
    p->wmask[PCI_INTERRUPT_LINE] = 0xff;

    /* Capability chain: MSI-X, common, notify, ISR, device. */
    cfg[PCI_CAPABILITY_LIST] = VP_CAP_MSIX;
    uint8_t *m = &cfg[VP_CAP_MSIX];
    m[0] = PCI_CAP_ID_MSIX;
    m[1] = 0x4c;
    put16(m + 2, (uint16_t)(vp->nvec - 1));
    put32(m + 4, VP_MSIX_TABLE_OFF | 0);
    put32(m + 8, VP_MSIX_PBA_OFF | 0);
    p->wmask[VP_CAP_MSIX + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;

    add_vcap(vp, 0x4c, 0x5c, VIRTIO_PCI_CAP_COMMON_CFG, VP_COMMON_OFF, VP_COMMON_LEN, 16);
    add_vcap(vp, 0x5c, 0x70, VIRTIO_PCI_CAP_NOTIFY_CFG, VP_NOTIFY_OFF,
             VP_NOTIFY_MULT * (dev->nvqs ? dev->nvqs : 1), 20);
    put32(&cfg[0x5c + 16], VP_NOTIFY_MULT);
    add_vcap(vp, 0x70, dev->config_len ? 0x80 : 0, VIRTIO_PCI_CAP_ISR_CFG, VP_ISR_OFF, 4, 16);
    if (dev->config_len)
        add_vcap(vp, 0x80, 0, VIRTIO_PCI_CAP_DEVICE_CFG, VP_DEVICE_OFF, dev->config_len, 16);

    p->bars[0] = (struct pci_bar){
        .size = VP_BAR0_SIZE, .read = virtio_pci_bar_read, .write = virtio_pci_bar_write};
}

static uint64_t extract(uint64_t v, uint64_t off_in_field, unsigned len)
{
    v >>= 8 * off_in_field;
    return len >= 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

/* Common configuration (struct virtio_pci_common_cfg). Lock held. */
static uint64_t common_read(struct virtio_pci *vp, uint64_t off, unsigned len)
{
    struct virtio_dev *d = vp->dev;
    struct virtq *vq = vp->queue_sel < d->nvqs ? &d->vqs[vp->queue_sel] : NULL;
    /* whole-register value and its base offset */
    uint64_t base, v = 0;
    if (off < 0x14) {
        base = off & ~3ULL;
        switch (base) {
        case 0x00:
            v = vp->dfselect;
            break;
        case 0x04:
            v = vp->dfselect < 2 ? (uint32_t)(d->host_features >> (32 * vp->dfselect)) : 0;
            break;
        case 0x08:
            v = vp->gfselect;
            break;
        case 0x0c:
            v = vp->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * vp->gfselect)) : 0;
            break;
        case 0x10:
            v = vp->msix_config | ((uint32_t)d->nvqs << 16);
            break;
        }
    } else if (off < 0x16) {
        base = 0x14;
        v = d->status | ((uint32_t)d->config_generation << 8);
    } else if (off < 0x20) {
        base = off & ~1ULL;
        switch (base) {
        case 0x16:
            v = vp->queue_sel;
            break;
        case 0x18:
            v = vq ? vq->num : 0;
            break;
        case 0x1a:
            v = vq ? vq->msix_vector : VIRTIO_MSI_NO_VECTOR;
            break;
        case 0x1c:
            v = vq ? vq->ready : 0;
            break;
        case 0x1e:
            v = vq ? vp->queue_sel : 0; /* notify offset = queue index */
            break;
        }
    } else if (off < 0x38) {
        base = off & ~7ULL;
        if (vq)
            v = base == 0x20 ? vq->desc_gpa : base == 0x28 ? vq->avail_gpa : vq->used_gpa;
    } else {
        return 0;
    }
    return extract(v, off - base, len);
}

static void set_part(uint64_t *field, uint64_t off_in_field, uint64_t val, unsigned len)
{
    uint64_t mask = len >= 8 ? ~0ULL : ((1ULL << (8 * len)) - 1);
    *field = (*field & ~(mask << (8 * off_in_field))) | ((val & mask) << (8 * off_in_field));
}

static void common_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned len)
{
    struct virtio_dev *d = vp->dev;
    switch (off) {
    case 0x0c:
        virtio_write_driver_features(d, vp->gfselect, (uint32_t)val);
        return;
    case 0x14:
        virtio_write_status(d, (uint8_t)val);
        pthread_mutex_lock(&d->lock);
        if ((uint8_t)val == 0) {
            vp->queue_sel = 0;
            vp->msix_config = VIRTIO_MSI_NO_VECTOR;
            intx_update(vp);
        }
        ioeventfd_sync_locked(vp);
        msix_routes_sync_locked(vp); /* a reset unassigns every vector */
        pthread_mutex_unlock(&d->lock);
        return;
    case 0x1c:
        if (val == 1)
            virtio_queue_set_ready(d, vp->queue_sel, true);
        return;
    }
    pthread_mutex_lock(&d->lock);
    struct virtq *vq = vp->queue_sel < d->nvqs ? &d->vqs[vp->queue_sel] : NULL;
    bool qw = vq && !vq->ready;
    switch (off) {
    case 0x00:
        vp->dfselect = (uint32_t)val;
        break;
    case 0x08:
        vp->gfselect = (uint32_t)val;
        break;
    case 0x10:
        vp->msix_config = val < vp->nvec ? (uint16_t)val : VIRTIO_MSI_NO_VECTOR;
        msix_routes_sync_locked(vp);
        break;
    case 0x16:
        vp->queue_sel = (uint16_t)val;
        break;
    case 0x18:
        if (qw)
            vq->num = (uint16_t)val;
        break;
    case 0x1a:
        if (vq) {
            vq->msix_vector = val < vp->nvec ? (uint16_t)val : VIRTIO_MSI_NO_VECTOR;
            msix_routes_sync_locked(vp);
        }
        break;
    default:
        if (qw && off >= 0x20 && off < 0x38) {
            uint64_t base = off & ~7ULL;
            uint64_t *f = base == 0x20   ? &vq->desc_gpa
                          : base == 0x28 ? &vq->avail_gpa
                                         : &vq->used_gpa;
            set_part(f, off - base, val, len);
        }
        break;
    }
    pthread_mutex_unlock(&d->lock);
}

static uint64_t msix_read(struct virtio_pci *vp, uint64_t off, unsigned len)
{
    if (off >= VP_MSIX_PBA_OFF) {
        uint64_t o = off - VP_MSIX_PBA_OFF;
        return o < 8 ? extract(vp->pba, o, len) : 0;
    }
    uint64_t o = off - VP_MSIX_TABLE_OFF;
    unsigned e = (unsigned)(o / 16), w = (unsigned)(o % 16) / 4;
    if (e >= vp->nvec || (len > 4 && len != 8))
        return 0;
    uint32_t *words = &vp->msix[e].addr_lo;
    if (len == 8 && w % 2 == 0)
        return words[w] | ((uint64_t)words[w + 1] << 32);
    return extract(words[w], o % 4, len);
}

static void msix_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned len)
{
    if (off < VP_MSIX_TABLE_OFF || off >= VP_MSIX_PBA_OFF)
        return; /* PBA is read-only */
    uint64_t o = off - VP_MSIX_TABLE_OFF;
    unsigned e = (unsigned)(o / 16), w = (unsigned)(o % 16) / 4;
    if (e >= vp->nvec)
        return;
    uint32_t *words = &vp->msix[e].addr_lo;
    if (len == 8 && w % 2 == 0) {
        words[w] = (uint32_t)val;
        words[w + 1] = (uint32_t)(val >> 32);
    } else if (len <= 4) {
        uint64_t word = words[w];
        set_part(&word, o % 4, val, len);
        words[w] = (uint32_t)word;
    }
    msix_routes_sync_locked(vp);
    msix_deliver_pending(vp);
}

uint64_t virtio_pci_bar_read(void *opaque, uint64_t off, unsigned len)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *d = vp->dev;
    if (off >= VP_DEVICE_OFF && off < VP_DEVICE_OFF + 0x1000)
        return virtio_config_read(d, (uint32_t)(off - VP_DEVICE_OFF), len);
    uint64_t v = 0;
    pthread_mutex_lock(&d->lock);
    if (off < VP_COMMON_OFF + VP_COMMON_LEN) {
        v = common_read(vp, off, len);
    } else if (off == VP_ISR_OFF) {
        /* reading ISR acknowledges it (and lowers INTx) */
        v = d->isr;
        d->isr = 0;
        intx_update(vp);
    } else if (off >= VP_MSIX_TABLE_OFF && off < VP_BAR0_SIZE) {
        v = msix_read(vp, off, len);
    }
    pthread_mutex_unlock(&d->lock);
    return v;
}

void virtio_pci_bar_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *d = vp->dev;
    if (off < VP_COMMON_OFF + VP_COMMON_LEN) {
        common_write(vp, off, val, len);
    } else if (off >= VP_DEVICE_OFF && off < VP_DEVICE_OFF + 0x1000) {
        virtio_config_write(d, (uint32_t)(off - VP_DEVICE_OFF), val, len);
    } else if (off >= VP_NOTIFY_OFF && off < VP_NOTIFY_OFF + 0x1000) {
        virtio_queue_kick(d, (unsigned)((off - VP_NOTIFY_OFF) / VP_NOTIFY_MULT));
    } else if (off >= VP_MSIX_TABLE_OFF && off < VP_BAR0_SIZE) {
        pthread_mutex_lock(&d->lock);
        msix_write(vp, off, val, len);
        pthread_mutex_unlock(&d->lock);
    }
}

/* Section "virtio-pci" v1: selectors, MSI-X table, PBA, MSI-X control. */
void virtio_pci_save(struct virtio_pci *vp, struct state_writer *w, uint32_t instance)
{
    pthread_mutex_lock(&vp->dev->lock);
    state_begin(w, "virtio-pci", instance, 1);
    state_put_u32(w, vp->dfselect);
    state_put_u32(w, vp->gfselect);
    state_put_u32(w, vp->queue_sel);
    state_put_u32(w, vp->msix_config);
    state_put_u32(w, vp->nvec);
    state_put(w, vp->msix, sizeof(vp->msix[0]) * vp->nvec);
    state_put_u64(w, vp->pba);
    state_put(w, vp->pci.cfg, PCI_CFG_SIZE);
    state_end(w);
    pthread_mutex_unlock(&vp->dev->lock);
}

int virtio_pci_load(struct virtio_pci *vp, struct state_reader *r, uint32_t instance, vs_err *err)
{
    uint32_t version, dfs, gfs, qs, mc, nvec;
    if (state_find(r, "virtio-pci", instance, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "virtio-pci: unsupported state version %u", version);
    if (state_get_u32(r, &dfs, err) < 0 || state_get_u32(r, &gfs, err) < 0 ||
        state_get_u32(r, &qs, err) < 0 || state_get_u32(r, &mc, err) < 0 ||
        state_get_u32(r, &nvec, err) < 0)
        return -1;
    if (nvec != vp->nvec)
        return vs_error(err, EINVAL, "virtio-pci: saved %u MSI-X vectors, device has %u", nvec,
                        vp->nvec);
    uint8_t cfg[PCI_CFG_SIZE];
    pthread_mutex_lock(&vp->dev->lock);
    int ret = 0;
    if (state_get(r, vp->msix, sizeof(vp->msix[0]) * nvec, err) < 0 ||
        state_get_u64(r, &vp->pba, err) < 0 || state_get(r, cfg, sizeof(cfg), err) < 0) {
        ret = -1;
    } else {
        vp->dfselect = dfs;
        vp->gfselect = gfs;
        vp->queue_sel = (uint16_t)qs;
        vp->msix_config = (uint16_t)mc;
        memcpy(vp->pci.cfg, cfg, sizeof(cfg));
        uint16_t ctrl;
        memcpy(&ctrl, &cfg[VP_CAP_MSIX + 2], 2);
        vp->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
        vp->msix_masked = ctrl & MSIX_CTRL_MASKALL;
        intx_update(vp);
        ioeventfd_sync_locked(vp);
        /* the routes follow the restored table (fds are not state) */
        msix_routes_sync_locked(vp);
    }
    pthread_mutex_unlock(&vp->dev->lock);
    return ret;
}
