/* virtio-pci transport on a fake bus: the capability chain a Linux driver
 * walks, common-config programming, MSI-X delivery (and masking), and the
 * INTx + ISR fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

struct fixture {
    struct fake_driver f; /* memory and queue helpers; transport is PCI here */
    struct virtio_pci vp;
    struct msi_sink msi;
    unsigned msi_count;
    uint64_t msi_addr;
    uint32_t msi_data;
    int intx;
};

static int fake_msi(void *opaque, uint64_t addr, uint32_t data)
{
    struct fixture *x = opaque;
    x->msi_count++;
    x->msi_addr = addr;
    x->msi_data = data;
    return 0;
}

static void fake_intx(void *opaque, unsigned irq, int level)
{
    ((struct fixture *)opaque)->intx = level;
}

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (!x || fd_init_mem(&x->f) < 0)
        return -1;
    x->f.dev = virtio_rng_new(&x->f.mem, 0, NULL);
    if (!x->f.dev)
        return -1;
    virtio_pci_init(&x->vp, x->f.dev);
    x->msi = (struct msi_sink){.signal = fake_msi, .opaque = x};
    x->vp.pci.msi = &x->msi;
    x->vp.pci.intx = (struct irq_line){.set_level = fake_intx, .opaque = x};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    virtio_dev_destroy(x->f.dev);
    guest_mem_destroy(&x->f.mem);
    free(x);
    return 0;
}

static uint64_t rd(struct fixture *x, uint64_t off, unsigned len)
{
    return virtio_pci_bar_read(&x->vp, off, len);
}
static void wr(struct fixture *x, uint64_t off, uint64_t v, unsigned len)
{
    virtio_pci_bar_write(&x->vp, off, v, len);
}

/* The guest's config write through the bus: apply wmask, tell the device. */
static void cfg_write16(struct fixture *x, unsigned off, uint16_t v)
{
    for (unsigned i = 0; i < 2; i++) {
        uint8_t m = x->vp.pci.wmask[off + i];
        uint8_t b = (uint8_t)(v >> (8 * i));
        x->vp.pci.cfg[off + i] = (uint8_t)((x->vp.pci.cfg[off + i] & ~m) | (b & m));
    }
    x->vp.pci.config_written(&x->vp.pci, off, 2);
}

static void capabilities_describe_bar0(void **state)
{
    struct fixture *x = *state;
    uint8_t *cfg = x->vp.pci.cfg;
    assert_int_equal(cfg[0] | cfg[1] << 8, 0x1af4);
    assert_int_equal(cfg[2] | cfg[3] << 8, 0x1040 + VIRTIO_ID_RNG);
    assert_int_equal(cfg[PCI_REVISION_ID], 1);
    assert_true(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST);
    bool seen[6] = {0}, msix = false;
    unsigned hops = 0;
    for (uint8_t p = cfg[PCI_CAPABILITY_LIST]; p; p = cfg[p + 1]) {
        assert_true(++hops < 16);
        assert_true(p >= 0x40 && p < 0xf0);
        if (cfg[p] == 0x11)
            msix = true;
        if (cfg[p] == 0x09) {
            assert_int_equal(cfg[p + 4], 0); /* BAR 0 */
            uint32_t off, len;
            memcpy(&off, &cfg[p + 8], 4);
            memcpy(&len, &cfg[p + 12], 4);
            assert_true(off + len <= VP_BAR0_SIZE);
            seen[cfg[p + 3]] = true;
        }
    }
    assert_true(msix);
    assert_true(seen[1] && seen[2] && seen[3]);
    assert_false(seen[4]); /* virtio-rng has no device config */
    assert_int_equal(x->vp.pci.bars[0].size, VP_BAR0_SIZE);
}

/* Bring the device up through the common config; queue 0 at the fake
 * driver's usual place. */
static void bring_up(struct fixture *x, uint16_t vector)
{
    wr(x, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    wr(x, 0x00, 1, 4);
    assert_int_equal(rd(x, 0x04, 4) & 1, 1); /* VERSION_1 */
    wr(x, 0x08, 1, 4);
    wr(x, 0x0c, 1, 4);
    wr(x, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
    assert_true(rd(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(x, 0x12, 2), 1); /* num_queues */
    wr(x, 0x16, 0, 2);
    assert_int_equal(rd(x, 0x18, 2), VIRTQ_MAX_SIZE);
    wr(x, 0x18, 16, 2);
    wr(x, 0x1a, vector, 2);
    uint64_t base = FD_QUEUE_AREA;
    /* Linux writes 64-bit fields as two halves */
    wr(x, 0x20, (uint32_t)base, 4);
    wr(x, 0x24, base >> 32, 4);
    wr(x, 0x28, (uint32_t)(base + 0x1000), 4);
    wr(x, 0x2c, 0, 4);
    wr(x, 0x30, base + 0x2000, 8);
    assert_int_equal(rd(x, 0x20, 4), (uint32_t)base);
    assert_int_equal(rd(x, 0x30, 8), base + 0x2000);
    wr(x, 0x1c, 1, 2);
    assert_int_equal(rd(x, 0x1c, 2), 1);
    wr(x, 0x14, rd(x, 0x14, 1) | VIRTIO_STATUS_DRIVER_OK, 1);
    x->f.q[0] =
        (struct fd_queue){.num = 16, .desc = base, .avail = base + 0x1000, .used = base + 0x2000};
}

static void kick(struct fixture *x)
{
    uint16_t notify_off = (uint16_t)rd(x, 0x1e, 2);
    wr(x, VP_NOTIFY_OFF + notify_off * VP_NOTIFY_MULT, 0, 2);
}

static void msix_delivers_queue_interrupt(void **state)
{
    struct fixture *x = *state;
    cfg_write16(x, VP_CAP_MSIX + 2, 0x8000);
    /* vector 1: address and data */
    wr(x, VP_MSIX_TABLE_OFF + 16 + 0, 0xfee00000, 4);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 4, 0, 4);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 8, 0x4041, 4);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 12, 0, 4); /* unmask */
    bring_up(x, 1);
    assert_int_equal(rd(x, 0x1a, 2), 1);
    struct fd_buf b = {fd_alloc(&x->f, 32), 32, true};
    fd_add(&x->f, 0, &b, 1);
    kick(x);
    uint32_t id, len;
    assert_true(fd_used(&x->f, 0, &id, &len));
    assert_int_equal(len, 32);
    assert_int_equal(x->msi_count, 1);
    assert_int_equal(x->msi_addr, 0xfee00000);
    assert_int_equal(x->msi_data, 0x4041);
    assert_int_equal(x->intx, 0);
}

static void masked_vector_is_pending_until_unmasked(void **state)
{
    struct fixture *x = *state;
    cfg_write16(x, VP_CAP_MSIX + 2, 0x8000);
    wr(x, VP_MSIX_TABLE_OFF + 0, 0xfee00000, 4);
    wr(x, VP_MSIX_TABLE_OFF + 8, 0x30, 4); /* vector 0 stays masked */
    bring_up(x, 0);
    struct fd_buf b = {fd_alloc(&x->f, 8), 8, true};
    fd_add(&x->f, 0, &b, 1);
    kick(x);
    assert_int_equal(x->msi_count, 0);
    assert_int_equal(rd(x, VP_MSIX_PBA_OFF, 8) & 1, 1);
    wr(x, VP_MSIX_TABLE_OFF + 12, 0, 4);
    assert_int_equal(x->msi_count, 1);
    assert_int_equal(rd(x, VP_MSIX_PBA_OFF, 8) & 1, 0);
}

static void out_of_range_vector_reads_back_no_vector(void **state)
{
    struct fixture *x = *state;
    wr(x, 0x10, 99, 2);
    assert_int_equal(rd(x, 0x10, 2), 0xffff);
    wr(x, 0x16, 0, 2);
    wr(x, 0x1a, 7, 2);
    assert_int_equal(rd(x, 0x1a, 2), 0xffff);
}

static void intx_and_isr_without_msix(void **state)
{
    struct fixture *x = *state;
    bring_up(x, 0xffff);
    struct fd_buf b = {fd_alloc(&x->f, 8), 8, true};
    fd_add(&x->f, 0, &b, 1);
    kick(x);
    assert_int_equal(x->intx, 1);
    assert_int_equal(rd(x, VP_ISR_OFF, 1), VIRTIO_ISR_QUEUE);
    assert_int_equal(x->intx, 0); /* reading ISR acknowledged it */
    assert_int_equal(rd(x, VP_ISR_OFF, 1), 0);
}

static void hostile_register_offsets_are_ignored(void **state)
{
    struct fixture *x = *state;
    wr(x, 0x16, 1000, 2); /* select a queue that does not exist */
    wr(x, 0x18, 8, 2);
    wr(x, 0x20, 0x1234, 8);
    wr(x, 0x1c, 1, 2);
    assert_int_equal(rd(x, 0x18, 2), 0);
    wr(x, VP_NOTIFY_OFF + 0xffc, 0, 4); /* kick queue 1023 */
    wr(x, VP_MSIX_TABLE_OFF + 16 * 40, 1, 4);
    assert_int_equal(rd(x, VP_MSIX_TABLE_OFF + 16 * 40, 4), 0);
    assert_int_equal(rd(x, 0x7ff8, 8), 0);
    assert_false(rd(x, 0x14, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void reset_through_common_cfg(void **state)
{
    struct fixture *x = *state;
    bring_up(x, 0xffff);
    wr(x, 0x14, 0, 1);
    assert_int_equal(rd(x, 0x14, 1), 0);
    wr(x, 0x16, 0, 2);
    assert_int_equal(rd(x, 0x1c, 2), 0);
    assert_int_equal(rd(x, 0x20, 8), 0);
}

static void save_load_keeps_msix_table(void **state)
{
    struct fixture *x = *state;
    cfg_write16(x, VP_CAP_MSIX + 2, 0x8000);
    wr(x, VP_MSIX_TABLE_OFF + 0, 0xfee01000, 4);
    struct state_writer w;
    state_writer_init(&w);
    virtio_pci_save(&x->vp, &w, 3);
    struct virtio_pci *vp2 = calloc(1, sizeof(*vp2));
    virtio_pci_init(vp2, x->f.dev);
    struct state_reader r;
    vs_err err;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_pci_load(vp2, &r, 3, &err), 0);
    assert_int_equal(virtio_pci_bar_read(vp2, VP_MSIX_TABLE_OFF, 4), 0xfee01000);
    assert_true(vp2->msix_enabled);
    state_writer_free(&w);
    free(vp2);
}

/* ioeventfds follow the queues and BAR 0 */
struct ioev_rec {
    uint64_t addr;
    int fd;
    bool assign;
};
static struct ioev_rec ioevs[32];
static unsigned nioev;

static int fake_ioeventfd(void *machine, uint64_t addr, unsigned len, bool pio, bool datamatch,
                          uint64_t data, int fd, bool assign)
{
    assert_int_equal(len, 2);
    assert_false(pio);
    if (nioev < 32)
        ioevs[nioev++] = (struct ioev_rec){addr, fd, assign};
    return 0;
}

static void ioeventfds_follow_queues_and_bar(void **state)
{
    struct fixture *x = *state;
    /* a device with kick eventfds: virtio-console (two queues) */
    vs_err err;
    struct virtio_dev *con = virtio_console_new(&x->f.mem, "file:/dev/null", NULL, 0, &err);
    assert_non_null(con);
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    virtio_pci_init(vp, con);
    struct pci_bus bus = {.ioeventfd = fake_ioeventfd};
    vp->pci.bus = &bus;
    uint32_t bar = 0xc0000000;
    memcpy(&vp->pci.cfg[PCI_BAR0], &bar, 4);
    vp->pci.cfg[PCI_COMMAND] = PCI_COMMAND_MEMORY;
    nioev = 0;

    virtio_pci_bar_write(vp, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    virtio_pci_bar_write(vp, 0x08, 1, 4);
    virtio_pci_bar_write(vp, 0x0c, 1, 4);
    virtio_pci_bar_write(vp, 0x14, 0xb, 1);
    for (unsigned q = 0; q < 2; q++) {
        uint64_t base = FD_QUEUE_AREA + q * 0x4000ULL;
        virtio_pci_bar_write(vp, 0x16, q, 2);
        virtio_pci_bar_write(vp, 0x18, 16, 2);
        virtio_pci_bar_write(vp, 0x20, base, 8);
        virtio_pci_bar_write(vp, 0x28, base + 0x1000, 8);
        virtio_pci_bar_write(vp, 0x30, base + 0x2000, 8);
        virtio_pci_bar_write(vp, 0x1c, 1, 2);
    }
    assert_int_equal(nioev, 0); /* not before DRIVER_OK */
    virtio_pci_bar_write(vp, 0x14, 0xf, 1);
    assert_int_equal(nioev, 2);
    assert_int_equal(ioevs[0].addr, 0xc0000000 + VP_NOTIFY_OFF);
    assert_int_equal(ioevs[1].addr, 0xc0000000 + VP_NOTIFY_OFF + VP_NOTIFY_MULT);
    assert_true(ioevs[0].assign && ioevs[0].fd >= 0);

    /* the guest moves BAR 0: old bindings go, new ones come */
    bar = 0xd0000000;
    memcpy(&vp->pci.cfg[PCI_BAR0], &bar, 4);
    vp->pci.config_written(&vp->pci, PCI_BAR0, 4);
    assert_int_equal(nioev, 6);
    assert_false(ioevs[2].assign);
    assert_int_equal(ioevs[2].addr, 0xc0000000 + VP_NOTIFY_OFF);
    assert_true(ioevs[3].assign);
    assert_int_equal(ioevs[3].addr, 0xd0000000 + VP_NOTIFY_OFF);

    /* reset removes them */
    virtio_pci_bar_write(vp, 0x14, 0, 1);
    assert_int_equal(nioev, 8);
    assert_false(ioevs[6].assign || ioevs[7].assign);
    virtio_dev_destroy(con);
    free(vp);
}

/* irqfds: routes made from the MSI-X table, used instead of signal() */
struct irqfd_rec {
    uint64_t addr;
    uint32_t data;
    int fd;
};
static struct irqfd_rec irqfds[16];
static unsigned nirqfd_get, nirqfd_put;

static int fake_irqfd_get(void *opaque, uint64_t addr, uint32_t data)
{
    int fd = eventfd(0, EFD_NONBLOCK);
    assert_true(fd >= 0 && nirqfd_get < 16);
    irqfds[nirqfd_get++] = (struct irqfd_rec){addr, data, fd};
    return fd;
}

static void fake_irqfd_put(void *opaque, int fd)
{
    nirqfd_put++;
    close(fd);
}

static uint64_t irqfd_count(int fd)
{
    uint64_t n = 0;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

static void fill_and_kick(struct fixture *x)
{
    struct fd_buf b = {fd_alloc(&x->f, 8), 8, true};
    fd_add(&x->f, 0, &b, 1);
    kick(x);
    uint32_t id, len;
    assert_true(fd_used(&x->f, 0, &id, &len));
}

static void msix_vectors_go_through_irqfds(void **state)
{
    struct fixture *x = *state;
    x->msi.irqfd_get = fake_irqfd_get;
    x->msi.irqfd_put = fake_irqfd_put;
    nirqfd_get = nirqfd_put = 0;
    cfg_write16(x, VP_CAP_MSIX + 2, 0x8000);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 0, 0xfee00000, 4);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 8, 0x41, 4);
    bring_up(x, 1);
    assert_int_equal(nirqfd_get, 0); /* the entry is still masked */
    wr(x, VP_MSIX_TABLE_OFF + 16 + 12, 0, 4);
    assert_int_equal(nirqfd_get, 1);
    assert_int_equal(irqfds[0].addr, 0xfee00000);
    assert_int_equal(irqfds[0].data, 0x41);
    fill_and_kick(x);
    assert_int_equal(irqfd_count(irqfds[0].fd), 1);
    assert_int_equal(x->msi_count, 0);

    /* masked: pending, delivered through the same route on unmask */
    wr(x, VP_MSIX_TABLE_OFF + 16 + 12, 1, 4);
    fill_and_kick(x);
    assert_int_equal(irqfd_count(irqfds[0].fd), 0);
    assert_int_equal(rd(x, VP_MSIX_PBA_OFF, 8), 2);
    wr(x, VP_MSIX_TABLE_OFF + 16 + 12, 0, 4);
    assert_int_equal(irqfd_count(irqfds[0].fd), 1);
    assert_int_equal(rd(x, VP_MSIX_PBA_OFF, 8), 0);
    assert_int_equal(nirqfd_get, 1);
    assert_int_equal(nirqfd_put, 0);

    /* a new message re-routes */
    wr(x, VP_MSIX_TABLE_OFF + 16 + 8, 0x42, 4);
    assert_int_equal(nirqfd_put, 1);
    assert_int_equal(nirqfd_get, 2);
    assert_int_equal(irqfds[1].data, 0x42);
    fill_and_kick(x);
    assert_int_equal(irqfd_count(irqfds[1].fd), 1);
    assert_int_equal(x->msi_count, 0);

    /* the snapshot keeps the table; the copy routes the same message */
    struct state_writer w;
    state_writer_init(&w);
    virtio_pci_save(&x->vp, &w, 0);
    struct virtio_pci *vp2 = calloc(1, sizeof(*vp2));
    virtio_pci_init(vp2, x->f.dev);
    vp2->pci.msi = &x->msi;
    struct state_reader r;
    vs_err err;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_pci_load(vp2, &r, 0, &err), 0);
    assert_int_equal(nirqfd_get, 3);
    assert_int_equal(irqfds[2].addr, 0xfee00000);
    assert_int_equal(irqfds[2].data, 0x42);
    virtio_pci_release(vp2);
    assert_int_equal(nirqfd_put, 2);
    state_writer_free(&w);
    free(vp2);
    x->f.dev->tr_opaque = &x->vp;

    /* a device reset unassigns the vector: its route goes */
    wr(x, 0x14, 0, 1);
    assert_int_equal(nirqfd_put, 3);
    /* MSI-X disabled: no route even for an assigned, unmasked vector */
    bring_up(x, 1);
    assert_int_equal(nirqfd_get, 4);
    cfg_write16(x, VP_CAP_MSIX + 2, 0);
    assert_int_equal(nirqfd_put, 4);
    virtio_pci_release(&x->vp);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(capabilities_describe_bar0),
        T(msix_delivers_queue_interrupt),
        T(masked_vector_is_pending_until_unmasked),
        T(out_of_range_vector_reads_back_no_vector),
        T(intx_and_isr_without_msix),
        T(hostile_register_offsets_are_ignored),
        T(reset_through_common_cfg),
        T(save_load_keeps_msix_table),
        T(ioeventfds_follow_queues_and_bar),
        T(msix_vectors_go_through_irqfds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
