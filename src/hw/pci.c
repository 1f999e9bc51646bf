#include "hw/pci.h"

#include <errno.h>
#include <string.h>
#include "util/log.h"

#define CF8_ENABLE 0x80000000u

static uint64_t bar_addr(const struct pci_device *d, unsigned i)
{
    const uint8_t *c = d->cfg + PCI_BAR0 + 4 * i;
    uint64_t v = (uint64_t)c[0] | (uint64_t)c[1] << 8 | (uint64_t)c[2] << 16 | (uint64_t)c[3] << 24;
    if (d->bars[i].io)
        return v & ~3ULL;
    v &= ~0xfULL;
    if (d->bars[i].mem64 && i < 5) {
        c += 4;
        v |= ((uint64_t)c[0] | (uint64_t)c[1] << 8 | (uint64_t)c[2] << 16 | (uint64_t)c[3] << 24)
             << 32;
    }
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void set_bar(struct pci_device *d, unsigned i, uint64_t addr)
{
    struct pci_bar *bar = &d->bars[i];
    uint32_t lo = (uint32_t)addr;
    if (bar->io)
        lo = (lo & ~3u) | 1;
    else
        lo = (lo & ~0xfu) | (bar->mem64 ? 0x4 : 0);
    put32(d->cfg + PCI_BAR0 + 4 * i, lo);
    if (bar->mem64 && i < 5)
        put32(d->cfg + PCI_BAR0 + 4 * (i + 1), (uint32_t)(addr >> 32));
}

static uint16_t command(const struct pci_device *d)
{
    return (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);
}

/* Make the io_bus registrations match the BAR values and the command
 * register's decode bits. Called with the bus lock held. */
static void remap(struct pci_bus *b, struct pci_device *d)
{
    uint16_t cmd = command(d);
    for (unsigned i = 0; i < 6; i++) {
        struct pci_bar *bar = &d->bars[i];
        if (!bar->size)
            continue;
        struct io_bus *bus = bar->io ? b->pio : b->mmio;
        bool on = bar->io ? (cmd & PCI_COMMAND_IO) : (cmd & PCI_COMMAND_MEMORY);
        uint64_t addr = bar_addr(d, i);
        /* A BAR being sized (all ones) or at 0 decodes nothing. */
        uint64_t limit = bar->io ? 0x10000 : (bar->mem64 ? (1ULL << 52) : (1ULL << 32));
        if (!addr || addr + bar->size > limit)
            on = false;
        bool *mapped = &b->bar_mapped[d->slot][i];
        uint64_t *at = &b->bar_mapped_at[d->slot][i];
        if (*mapped && (!on || *at != addr)) {
            io_bus_unregister(bus, *at, d->opaque);
            *mapped = false;
        }
        if (on && !*mapped) {
            struct io_region r = {.name = d->name,
                                  .base = addr,
                                  .size = bar->size,
                                  .read = bar->read,
                                  .write = bar->write,
                                  .opaque = d->opaque};
            vs_err err;
            if (io_bus_register(bus, &r, &err) < 0) {
                /* The guest moved a BAR onto another device: it decodes
                 * nothing until moved back, as an address conflict would. */
                vs_debug("pci %s BAR%u: %s", d->name, i, err.msg);
                continue;
            }
            *mapped = true;
            *at = addr;
        }
        bar->addr = addr;
    }
}

static uint64_t cf8_read(void *opaque, uint64_t off, unsigned len)
{
    struct pci_bus *b = opaque;
    if (off != 0 || len != 4)
        return ~0ULL;
    return b->cf8;
}

static void cf8_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct pci_bus *b = opaque;
    if (off == 0 && len == 4)
        b->cf8 = (uint32_t)val;
}

/* CONFIG_ADDRESS: enable | bus | device | function | register. */
static bool decode_cf8(uint32_t cf8, unsigned *slot, unsigned *fn, uint32_t *reg)
{
    if (!(cf8 & CF8_ENABLE) || ((cf8 >> 16) & 0xff) != 0)
        return false;
    *slot = (cf8 >> 11) & 0x1f;
    *fn = (cf8 >> 8) & 7;
    *reg = cf8 & 0xfc;
    return true;
}

static uint64_t cfc_read(void *opaque, uint64_t off, unsigned len)
{
    struct pci_bus *b = opaque;
    unsigned slot, fn;
    uint32_t reg;
    if (!decode_cf8(b->cf8, &slot, &fn, &reg) || off + len > 4)
        return ~0ULL;
    return pci_config_read(b, slot, fn, reg + (uint32_t)off, len);
}

static void cfc_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct pci_bus *b = opaque;
    unsigned slot, fn;
    uint32_t reg;
    if (!decode_cf8(b->cf8, &slot, &fn, &reg) || off + len > 4)
        return;
    pci_config_write(b, slot, fn, reg + (uint32_t)off, (uint32_t)val, len);
}

int pci_bus_init(struct pci_bus *b, struct io_bus *pio, struct io_bus *mmio, vs_err *err)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    b->pio = pio;
    b->mmio = mmio;
    b->mmio32_next = 0xc0000000ULL;
    b->mmio32_end = 0xfec00000ULL;
    b->pio_next = 0x1000;
    b->pio_end = 0x10000;
    /* CONFIG_ADDRESS is only decoded as a dword at 0xcf8; byte port 0xcf9
     * is the PC's reset control register (another device). */
    struct io_region a = {.name = "pci-cf8",
                          .base = 0xcf8,
                          .size = 1,
                          .read = cf8_read,
                          .write = cf8_write,
                          .opaque = b};
    struct io_region d = {.name = "pci-cfc",
                          .base = 0xcfc,
                          .size = 4,
                          .read = cfc_read,
                          .write = cfc_write,
                          .opaque = b};
    if (io_bus_register(pio, &a, err) < 0)
        return -1;
    if (io_bus_register(pio, &d, err) < 0) {
        io_bus_unregister(pio, 0xcf8, b);
        return -1;
    }
    return 0;
}

/* With the bus lock held: the device's BARs leave the address spaces and
 * its slot is free. */
static void unplug(struct pci_bus *b, unsigned s)
{
    struct pci_device *d = b->devs[s];
    for (unsigned i = 0; i < 6; i++) {
        if (b->bar_mapped[s][i])
            io_bus_unregister(d->bars[i].io ? b->pio : b->mmio, b->bar_mapped_at[s][i], d->opaque);
        b->bar_mapped[s][i] = false;
    }
    b->devs[s] = NULL;
}

void pci_bus_destroy(struct pci_bus *b)
{
    pthread_mutex_lock(&b->lock);
    for (unsigned s = 0; s < PCI_MAX_DEVICES; s++)
        if (b->devs[s])
            unplug(b, s);
    pthread_mutex_unlock(&b->lock);
    if (b->pio) {
        io_bus_unregister(b->pio, 0xcf8, b);
        io_bus_unregister(b->pio, 0xcfc, b);
    }
}

static int alloc(uint64_t *next, uint64_t end, uint64_t size, uint64_t *out)
{
    uint64_t a = (*next + size - 1) & ~(size - 1);
    if (a < *next || a + size > end || a + size < a)
        return -1;
    *out = a;
    *next = a + size;
    return 0;
}

int pci_register_device(struct pci_bus *b, struct pci_device *d, vs_err *err)
{
    pthread_mutex_lock(&b->lock);
    unsigned slot = 0;
    while (slot < PCI_MAX_DEVICES && b->devs[slot])
        slot++;
    if (slot == PCI_MAX_DEVICES) {
        pthread_mutex_unlock(&b->lock);
        return vs_error(err, ENOSPC, "pci: no free slot for %s", d->name);
    }
    for (unsigned i = 0; i < 6; i++) {
        struct pci_bar *bar = &d->bars[i];
        if (!bar->size)
            continue;
        if (bar->size & (bar->size - 1) || (bar->mem64 && i == 5)) {
            pthread_mutex_unlock(&b->lock);
            return vs_error(err, EINVAL, "pci %s: BAR%u is malformed", d->name, i);
        }
        uint64_t size = bar->size, addr;
        int r;
        if (bar->io) {
            uint64_t next = b->pio_next;
            if (size < 4)
                size = 4;
            r = alloc(&next, b->pio_end, size, &addr);
            if (!r)
                b->pio_next = (uint32_t)next;
        } else {
            if (size < 4096)
                size = 4096; /* keep BARs page-aligned for the guest's mappings */
            if (bar->mem64 && b->mmio64_end > b->mmio64_next)
                r = alloc(&b->mmio64_next, b->mmio64_end, size, &addr);
            else
                r = alloc(&b->mmio32_next, b->mmio32_end, size, &addr);
        }
        if (r < 0) {
            pthread_mutex_unlock(&b->lock);
            return vs_error(err, ENOSPC, "pci %s: no room for BAR%u (%llu bytes)", d->name, i,
                            (unsigned long long)bar->size);
        }
        bar->size = size;
        set_bar(d, i, addr);
        bar->addr = addr;
    }
    d->bus = b;
    d->slot = slot;
    d->msi = b->msi;
    if (d->cfg[PCI_INTERRUPT_PIN] && b->route_intx) {
        b->route_intx(b->machine, slot, &d->intx);
        d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)d->intx.irq;
    }
    /* No firmware runs: leave decoding on, as a BIOS would. */
    uint16_t cmd = command(d);
    for (unsigned i = 0; i < 6; i++)
        if (d->bars[i].size)
            cmd |= d->bars[i].io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    d->cfg[PCI_COMMAND] = (uint8_t)cmd;
    d->cfg[PCI_COMMAND + 1] = (uint8_t)(cmd >> 8);
    b->devs[slot] = d;
    remap(b, d);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

int pci_unregister_device(struct pci_bus *b, struct pci_device *d)
{
    pthread_mutex_lock(&b->lock);
    int rc = d->bus == b && d->slot < PCI_MAX_DEVICES && b->devs[d->slot] == d ? 0 : -1;
    if (rc == 0)
        unplug(b, d->slot);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

uint32_t pci_config_read(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, unsigned len)
{
    if (slot >= PCI_MAX_DEVICES || fn != 0 || off >= PCI_CFG_SIZE || off + len > PCI_CFG_SIZE ||
        (len != 1 && len != 2 && len != 4))
        return 0xffffffffu;
    pthread_mutex_lock(&b->lock);
    struct pci_device *d = b->devs[slot];
    uint32_t v = 0xffffffffu;
    if (d) {
        v = 0;
        for (unsigned i = 0; i < len; i++)
            v |= (uint32_t)d->cfg[off + i] << (8 * i);
    }
    pthread_mutex_unlock(&b->lock);
    return v;
}

/* One byte of a BAR register: the guest may write any address bits; the
 * size and type bits read back as the hardware fixes them. */
static void write_bar_byte(struct pci_device *d, uint32_t off, uint8_t val)
{
    unsigned i = (off - PCI_BAR0) / 4;
    /* The high half of a 64-bit BAR belongs to the BAR below it. */
    unsigned owner = i;
    bool high = false;
    if (!d->bars[i].size && i > 0 && d->bars[i - 1].mem64 && d->bars[i - 1].size) {
        owner = i - 1;
        high = true;
    }
    struct pci_bar *bar = &d->bars[owner];
    if (!bar->size)
        return; /* unimplemented BAR: reads as 0 */
    d->cfg[off] = val;
    uint64_t addr = bar_addr(d, owner);
    uint64_t mask = ~(bar->size - 1);
    if (!bar->mem64)
        mask &= 0xffffffffULL;
    if (bar->io)
        mask &= 0xffffULL | ~0xffffffffULL;
    (void)high;
    set_bar(d, owner, addr & mask);
}

void pci_config_write(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, uint32_t val,
                      unsigned len)
{
    if (slot >= PCI_MAX_DEVICES || fn != 0 || off >= PCI_CFG_SIZE || off + len > PCI_CFG_SIZE ||
        (len != 1 && len != 2 && len != 4))
        return;
    pthread_mutex_lock(&b->lock);
    struct pci_device *d = b->devs[slot];
    if (!d) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    bool map_change = false;
    for (unsigned i = 0; i < len; i++) {
        uint32_t o = off + i;
        uint8_t v = (uint8_t)(val >> (8 * i));
        if (o == PCI_COMMAND) {
            /* I/O, memory, bus master, parity, SERR enables. */
            d->cfg[o] = v & 0x47;
            map_change = true;
        } else if (o == PCI_COMMAND + 1) {
            d->cfg[o] = v & 0x05; /* SERR, INTx disable */
            if (v & 0x04)
                irq_line_set(&d->intx, 0);
        } else if (o == PCI_STATUS || o == PCI_STATUS + 1) {
            d->cfg[o] &= (uint8_t) ~(v & d->wmask[o]); /* write 1 to clear */
        } else if (o >= PCI_BAR0 && o < PCI_BAR0 + 24) {
            write_bar_byte(d, o, v);
            map_change = true;
        } else if (o >= 0x30 && o < 0x34) {
            /* no expansion ROM */
        } else if (o == PCI_INTERRUPT_LINE) {
            d->cfg[o] = v;
        } else {
            d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (v & d->wmask[o]));
        }
    }
    if (map_change)
        remap(b, d);
    pthread_mutex_unlock(&b->lock);
    if (d->config_written)
        d->config_written(d, off, len);
}

void pci_bus_save(struct pci_bus *b, struct state_writer *w)
{
    pthread_mutex_lock(&b->lock);
    for (unsigned s = 0; s < PCI_MAX_DEVICES; s++) {
        if (!b->devs[s])
            continue;
        state_begin(w, "pci-config", s, 1);
        state_put(w, b->devs[s]->cfg, PCI_CFG_SIZE);
        state_end(w);
    }
    pthread_mutex_unlock(&b->lock);
}

int pci_bus_load(struct pci_bus *b, struct state_reader *r, vs_err *err)
{
    for (unsigned s = 0; s < PCI_MAX_DEVICES; s++) {
        struct pci_device *d = b->devs[s];
        if (!d)
            continue;
        uint32_t version;
        uint8_t cfg[PCI_CFG_SIZE];
        if (state_find(r, "pci-config", s, &version, err) < 0)
            return -1;
        if (version != 1)
            return vs_error(err, EINVAL, "pci-config state version %u is not supported", version);
        if (state_get(r, cfg, sizeof(cfg), err) < 0)
            return -1;
        if (memcmp(cfg, d->cfg, 4))
            return vs_error(err, EINVAL, "pci slot %u: saved device is not %s", s, d->name);
        pthread_mutex_lock(&b->lock);
        memcpy(d->cfg, cfg, sizeof(cfg));
        remap(b, d);
        pthread_mutex_unlock(&b->lock);
    }
    return 0;
}
