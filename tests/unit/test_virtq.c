/* The virtio core and split virtqueue, driven by a fake driver over
 * virtio-mmio against virtio-rng (the simplest device): negotiation, reset,
 * indirect descriptors, EVENT_IDX, and the hostile-guest cases — every
 * malformed chain must mark the device DEVICE_NEEDS_RESET without touching
 * memory outside guest RAM (this test also runs under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/devices.h"

struct fixture {
    struct fake_driver f;
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (!x || fd_init_mem(&x->f) < 0)
        return -1;
    struct virtio_dev *d = virtio_rng_new(&x->f.mem, 0, NULL);
    if (!d)
        return -1;
    fd_attach(&x->f, d);
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

static struct fake_driver *ready(void **state, uint64_t features)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    assert_true(fd_negotiate(f, FD_FEATURES_V1 | features) & VIRTIO_STATUS_FEATURES_OK);
    fd_setup_queue(f, 0, 16);
    fd_driver_ok(f);
    return f;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void identifies_as_virtio_mmio_v2(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    assert_int_equal(fd_rd(f, 0x000), 0x74726976);
    assert_int_equal(fd_rd(f, 0x004), 2);
    assert_int_equal(fd_rd(f, 0x008), VIRTIO_ID_RNG);
    fd_wr(f, 0x30, 0);
    assert_int_equal(fd_rd(f, 0x034), VIRTQ_MAX_SIZE);
    fd_wr(f, 0x30, 5);
    assert_int_equal(fd_rd(f, 0x034), 0); /* no such queue */
}

static void rng_fills_buffers(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint64_t a = fd_alloc(f, 64), b = fd_alloc(f, 100);
    struct fd_buf bufs[] = {{a, 64, true}, {b, 100, true}};
    uint16_t head = fd_add(f, 0, bufs, 2);
    unsigned irqs = f->irq_raised;
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(id, head);
    assert_int_equal(len, 164);
    assert_false(all_zero(fd_ptr(f, a), 64));
    assert_false(all_zero(fd_ptr(f, b), 100));
    assert_true(f->irq_raised > irqs);
    assert_int_equal(fd_rd(f, 0x60) & VIRTIO_ISR_QUEUE, VIRTIO_ISR_QUEUE);
    fd_wr(f, 0x64, VIRTIO_ISR_QUEUE);
    assert_int_equal(f->irq_level, 0);
    assert_false(fd_needs_reset(f));
}

static void accepts_driver_without_version_1(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    /* as QEMU's modern virtio-mmio does: a driver that leaves VERSION_1 out
     * (xv6's, written for QEMU's virt board) still gets FEATURES_OK, and the
     * device runs as a 1.x device, which is what this register layout is */
    assert_true(fd_negotiate(f, 0) & VIRTIO_STATUS_FEATURES_OK);
    assert_true(virtio_has_feature(f->dev, VIRTIO_F_VERSION_1));
    fd_setup_queue(f, 0, 8);
    fd_driver_ok(f);
    assert_true(fd_rd(f, 0x70) & VIRTIO_STATUS_DRIVER_OK);
    assert_false(fd_needs_reset(f));
}

static void vendor_id(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    assert_int_equal(fd_rd(f, 0x00), 0x74726976);                /* "virt" */
    assert_int_equal(fd_rd(f, 0x0c), VIRTIO_MMIO_VENDOR_VESSEL); /* "VSSL" */
    f->mmio.vendor_id = VIRTIO_MMIO_VENDOR_QEMU;                 /* --virtio-vendor qemu */
    assert_int_equal(fd_rd(f, 0x0c), 0x554d4551);                /* "QEMU", as xv6 checks */
}

static void refuses_unoffered_feature(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    fd_wr(f, 0x70, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    fd_wr(f, 0x24, 0);
    fd_wr(f, 0x20, 1u << 5); /* bit 5 is not offered by virtio-rng */
    fd_wr(f, 0x24, 1);
    fd_wr(f, 0x20, 1);
    fd_wr(f, 0x70, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_false(fd_rd(f, 0x70) & VIRTIO_STATUS_FEATURES_OK);
}

static void indirect_table_works(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_INDIRECT_DESC);
    uint64_t table = fd_alloc(f, 3 * 16), a = fd_alloc(f, 8), b = fd_alloc(f, 8);
    struct virtq_desc t[3] = {
        {a, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2},
        {0, 0, 0, 0},
        {b, 8, VIRTQ_DESC_F_WRITE, 0},
    };
    memcpy(fd_ptr(f, table), t, sizeof(t));
    fd_set_desc(f, 0, 0, table, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(id, 0);
    assert_int_equal(len, 16);
    assert_false(fd_needs_reset(f));
}

static void zero_length_descriptor_is_skipped(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint64_t a = fd_alloc(f, 32);
    struct fd_buf bufs[] = {{a, 0, true}, {a, 32, true}};
    fd_add(f, 0, bufs, 2);
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(len, 32);
    assert_false(fd_needs_reset(f));
}

static void event_idx_suppresses_interrupts(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_EVENT_IDX);
    uint16_t *avail = fd_ptr(f, f->q[0].avail);
    uint16_t *used = fd_ptr(f, f->q[0].used);
    uint64_t a = fd_alloc(f, 16);
    struct fd_buf buf = {a, 16, true};
    uint32_t id, len;

    fd_add(f, 0, &buf, 1);
    unsigned irqs = f->irq_raised;
    fd_kick(f, 0);
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(f->irq_raised, irqs + 1); /* first one always */
    /* the device asks to be kicked for the next avail entry */
    assert_int_equal(used[2 + 4 * f->q[0].num], 1);

    avail[2 + f->q[0].num] = 2; /* used_event: interrupt once used->idx passes 2 */
    fd_add(f, 0, &buf, 1);
    irqs = f->irq_raised;
    fd_kick(f, 0);
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(f->irq_raised, irqs); /* idx 2 reached, not passed */
    fd_add(f, 0, &buf, 1);
    fd_kick(f, 0);
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(f->irq_raised, irqs + 1);
}

static void no_interrupt_flag_is_respected(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint16_t *avail = fd_ptr(f, f->q[0].avail);
    avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
    struct fd_buf buf = {fd_alloc(f, 16), 16, true};
    fd_add(f, 0, &buf, 1);
    unsigned irqs = f->irq_raised;
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(f->irq_raised, irqs);
}

/* Hostile chains: each must break the device, produce no used entry and
 * leave the host intact. */
static void expect_broken(struct fake_driver *f)
{
    fd_kick(f, 0);
    uint32_t id, len;
    assert_false(fd_used(f, 0, &id, &len));
    assert_true(fd_needs_reset(f));
    assert_true(fd_rd(f, 0x60) & VIRTIO_ISR_CONFIG);
    /* further kicks do nothing */
    fd_kick(f, 0);
    assert_false(fd_used(f, 0, &id, &len));
}

static void hostile_loop(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint64_t a = fd_alloc(f, 16);
    fd_set_desc(f, 0, 0, a, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    fd_set_desc(f, 0, 1, a, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_self_loop_in_indirect(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_INDIRECT_DESC);
    uint64_t table = fd_alloc(f, 32), a = fd_alloc(f, 16);
    struct virtq_desc t[2] = {{a, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1},
                              {a, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1}};
    memcpy(fd_ptr(f, table), t, sizeof(t));
    fd_set_desc(f, 0, 0, table, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_address_outside_ram(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_set_desc(f, 0, 0, FD_RAM_BASE + FD_RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_address_below_ram(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_set_desc(f, 0, 0, 0x1000, 16, VIRTQ_DESC_F_WRITE, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_huge_length(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_set_desc(f, 0, 0, FD_BUF_AREA, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_wrapping_address(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_set_desc(f, 0, 0, 0xfffffffffffffff0ULL, 0x100, VIRTQ_DESC_F_WRITE, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_head_out_of_range(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_publish(f, 0, 16); /* queue size is 16 */
    expect_broken(f);
}

static void hostile_next_out_of_range(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_set_desc(f, 0, 0, FD_BUF_AREA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 200);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_avail_index_jump(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint16_t *avail = fd_ptr(f, f->q[0].avail);
    avail[1] = 1000;
    expect_broken(f);
}

static void hostile_indirect_in_indirect(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_INDIRECT_DESC);
    uint64_t table = fd_alloc(f, 16);
    struct virtq_desc t = {table, 16, VIRTQ_DESC_F_INDIRECT, 0};
    memcpy(fd_ptr(f, table), &t, sizeof(t));
    fd_set_desc(f, 0, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_indirect_without_feature(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint64_t table = fd_alloc(f, 16);
    struct virtq_desc t = {FD_BUF_AREA, 16, VIRTQ_DESC_F_WRITE, 0};
    memcpy(fd_ptr(f, table), &t, sizeof(t));
    fd_set_desc(f, 0, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_indirect_bad_length(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_INDIRECT_DESC);
    fd_set_desc(f, 0, 0, fd_alloc(f, 64), 0, VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_indirect_huge_table(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_INDIRECT_DESC);
    fd_set_desc(f, 0, 0, FD_BUF_AREA, 0xfffffff0u, VIRTQ_DESC_F_INDIRECT, 0);
    fd_publish(f, 0, 0);
    expect_broken(f);
}

static void hostile_readable_after_writable(void **state)
{
    struct fake_driver *f = ready(state, 0);
    uint64_t a = fd_alloc(f, 32);
    struct fd_buf bufs[] = {{a, 16, true}, {a + 16, 16, false}};
    fd_add(f, 0, bufs, 2);
    expect_broken(f);
}

static void hostile_ring_outside_ram(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    assert_true(fd_negotiate(f, FD_FEATURES_V1) & VIRTIO_STATUS_FEATURES_OK);
    fd_wr(f, 0x30, 0);
    fd_wr(f, 0x38, 256);
    fd_wr(f, 0x80, (uint32_t)(FD_RAM_BASE + FD_RAM_SIZE - 16));
    fd_wr(f, 0x90, (uint32_t)FD_RAM_BASE);
    fd_wr(f, 0xa0, (uint32_t)FD_RAM_BASE);
    fd_wr(f, 0x44, 1);
    assert_true(fd_needs_reset(f));
}

static void hostile_queue_size_not_power_of_two(void **state)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    assert_true(fd_negotiate(f, FD_FEATURES_V1) & VIRTIO_STATUS_FEATURES_OK);
    fd_setup_queue(f, 0, 12);
    assert_true(fd_needs_reset(f));
}

static void reset_recovers_broken_device(void **state)
{
    struct fake_driver *f = ready(state, 0);
    fd_publish(f, 0, 99);
    expect_broken(f);
    fd_wr(f, 0x70, 0);
    assert_int_equal(fd_rd(f, 0x70), 0);
    assert_int_equal(f->irq_level, 0);
    f->q[0] = (struct fd_queue){0};
    f = ready(state, 0);
    struct fd_buf buf = {fd_alloc(f, 16), 16, true};
    fd_add(f, 0, &buf, 1);
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(len, 16);
    assert_false(fd_needs_reset(f));
}

static void save_load_round_trip(void **state)
{
    struct fake_driver *f = ready(state, 1ULL << VIRTIO_F_RING_EVENT_IDX);
    struct fd_buf buf = {fd_alloc(f, 16), 16, true};
    fd_add(f, 0, &buf, 1);
    fd_kick(f, 0);
    uint32_t id, len;
    assert_true(fd_used(f, 0, &id, &len));

    struct state_writer w;
    state_writer_init(&w);
    vs_err err;
    assert_int_equal(virtio_dev_save(f->dev, &w, 0, &err), 0);
    assert_int_equal(state_writer_status(&w, &err), 0);

    /* a fresh device on the same memory continues where the old one was */
    struct virtio_dev *d2 = virtio_rng_new(&f->mem, 0, &err);
    assert_non_null(d2);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_dev_load(d2, &r, 0, &err), 0);
    state_writer_free(&w);
    virtio_dev_destroy(f->dev);
    fd_attach(f, d2);
    assert_int_equal(fd_rd(f, 0x70) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
    fd_add(f, 0, &buf, 1);
    fd_kick(f, 0);
    assert_true(fd_used(f, 0, &id, &len));
    assert_int_equal(len, 16);
}

static void load_rejects_other_device(void **state)
{
    struct fake_driver *f = ready(state, 0);
    struct state_writer w;
    state_writer_init(&w);
    vs_err err;
    assert_int_equal(virtio_dev_save(f->dev, &w, 0, &err), 0);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_dev_load(f->dev, &r, 1, &err), -1); /* wrong instance */
    state_writer_free(&w);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(identifies_as_virtio_mmio_v2),
        T(rng_fills_buffers),
        T(accepts_driver_without_version_1),
        T(vendor_id),
        T(refuses_unoffered_feature),
        T(indirect_table_works),
        T(zero_length_descriptor_is_skipped),
        T(event_idx_suppresses_interrupts),
        T(no_interrupt_flag_is_respected),
        T(hostile_loop),
        T(hostile_self_loop_in_indirect),
        T(hostile_address_outside_ram),
        T(hostile_address_below_ram),
        T(hostile_huge_length),
        T(hostile_wrapping_address),
        T(hostile_head_out_of_range),
        T(hostile_next_out_of_range),
        T(hostile_avail_index_jump),
        T(hostile_indirect_in_indirect),
        T(hostile_indirect_without_feature),
        T(hostile_indirect_bad_length),
        T(hostile_indirect_huge_table),
        T(hostile_readable_after_writable),
        T(hostile_ring_outside_ram),
        T(hostile_queue_size_not_power_of_two),
        T(reset_recovers_broken_device),
        T(save_load_round_trip),
        T(load_rejects_other_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
