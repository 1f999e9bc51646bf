/* virtio-blk end to end without a VM: a fake driver submits requests over
 * virtio-mmio, the device's io_uring thread serves them from a raw image
 * file, and the test checks the file and the guest buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <errno.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/blk.h"
#include "virtio/devices.h"

#define DISK_SIZE (1 << 20)

struct fixture {
    struct fake_driver f;
    char path[64];
};

static int make_image(struct fixture *x)
{
    snprintf(x->path, sizeof(x->path), "/tmp/vessel-test-blk-XXXXXX");
    int fd = mkstemp(x->path);
    if (fd < 0)
        return -1;
    uint8_t *buf = malloc(DISK_SIZE);
    for (unsigned i = 0; i < DISK_SIZE; i++)
        buf[i] = (uint8_t)(i / 512 + i);
    ssize_t n = write(fd, buf, DISK_SIZE);
    free(buf);
    close(fd);
    return n == DISK_SIZE ? 0 : -1;
}

static int open_dev(struct fixture *x, bool ro, unsigned nq)
{
    struct vm_disk_config dc = {.path = x->path, .readonly = ro, .serial = "SER123"};
    vs_err err;
    struct virtio_dev *d = virtio_blk_new(&x->f.mem, &dc, 0, nq, &err);
    if (!d) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    fd_attach(&x->f, d);
    return 0;
}

static int setup_common(void **state, bool ro, unsigned nq)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (!x || fd_init_mem(&x->f) < 0 || make_image(x) < 0 || open_dev(x, ro, nq) < 0)
        return -1;
    *state = x;
    return 0;
}
static int setup_rw(void **state)
{
    return setup_common(state, false, 1);
}
static int setup_ro(void **state)
{
    return setup_common(state, true, 1);
}
static int setup_mq(void **state)
{
    return setup_common(state, false, 2);
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    virtio_dev_destroy(x->f.dev);
    guest_mem_destroy(&x->f.mem);
    unlink(x->path);
    free(x);
    return 0;
}

static struct fake_driver *ready(void **state, unsigned nq)
{
    struct fake_driver *f = &((struct fixture *)*state)->f;
    uint64_t feat = FD_FEATURES_V1 | (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_DISCARD) |
                    (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) | (1ULL << VIRTIO_BLK_F_RO) |
                    (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_F_RING_EVENT_IDX);
    assert_true(fd_negotiate(f, feat) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++)
        fd_setup_queue(f, q, 64);
    fd_driver_ok(f);
    return f;
}

struct req {
    uint64_t hdr, data, status;
    uint16_t head;
};

/* Queue a request; data is device-writable for IN and GET_ID. */
static struct req submit(struct fake_driver *f, unsigned q, uint32_t type, uint64_t sector,
                         uint32_t len)
{
    struct req r = {
        .hdr = fd_alloc(f, 16), .data = len ? fd_alloc(f, len) : 0, .status = fd_alloc(f, 1)};
    uint32_t *h = fd_ptr(f, r.hdr);
    h[0] = type;
    h[1] = 0;
    memcpy(h + 2, &sector, 8);
    *(uint8_t *)fd_ptr(f, r.status) = 0xff;
    bool w = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    struct fd_buf b[3] = {{r.hdr, 16, false}, {r.data, len, w}, {r.status, 1, true}};
    if (len)
        r.head = fd_add(f, q, b, 3);
    else {
        b[1] = b[2];
        r.head = fd_add(f, q, b, 2);
    }
    return r;
}

static uint8_t wait_status(struct fake_driver *f, unsigned q, struct req *r, uint32_t *len_out)
{
    uint32_t id = 0, len = 0;
    assert_true(fd_wait_used(f, q, &id, &len));
    assert_int_equal(id, r->head);
    if (len_out)
        *len_out = len;
    return *(uint8_t *)fd_ptr(f, r->status);
}

static uint8_t do_req(struct fake_driver *f, unsigned q, uint32_t type, uint64_t sector,
                      uint32_t len, struct req *out)
{
    struct req r = submit(f, q, type, sector, len);
    fd_kick(f, q);
    uint8_t s = wait_status(f, q, &r, NULL);
    if (out)
        *out = r;
    return s;
}

static void file_read(struct fixture *x, uint64_t off, void *buf, size_t len)
{
    FILE *fp = fopen(x->path, "rb");
    assert_non_null(fp);
    fseek(fp, (long)off, SEEK_SET);
    assert_int_equal(fread(buf, 1, len, fp), len);
    fclose(fp);
}

static void config_describes_disk(void **state)
{
    struct fake_driver *f = ready(state, 1);
    uint64_t cap = virtio_mmio_read(&f->mmio, 0x100, 8);
    assert_int_equal(cap, DISK_SIZE / 512);
    assert_int_equal(fd_rd(f, 0x008), VIRTIO_ID_BLOCK);
    fd_wr(f, 0x14, 0);
    assert_false(fd_rd(f, 0x10) & (1u << VIRTIO_BLK_F_RO));
}

static void reads_sectors(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    struct req r = submit(f, 0, VIRTIO_BLK_T_IN, 3, 1024);
    fd_kick(f, 0);
    uint32_t len;
    assert_int_equal(wait_status(f, 0, &r, &len), VIRTIO_BLK_S_OK);
    assert_int_equal(len, 1025);
    uint8_t want[1024];
    file_read(x, 3 * 512, want, sizeof(want));
    assert_memory_equal(fd_ptr(f, r.data), want, sizeof(want));
}

static void writes_and_flushes(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    struct req r = submit(f, 0, VIRTIO_BLK_T_OUT, 7, 512);
    memset(fd_ptr(f, r.data), 0xab, 512);
    fd_kick(f, 0);
    assert_int_equal(wait_status(f, 0, &r, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), VIRTIO_BLK_S_OK);
    uint8_t got[512], want[512];
    memset(want, 0xab, sizeof(want));
    file_read(x, 7 * 512, got, sizeof(got));
    assert_memory_equal(got, want, sizeof(want));
}

static void get_id_returns_serial(void **state)
{
    struct fake_driver *f = ready(state, 1);
    struct req r;
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_GET_ID, 0, 20, &r), VIRTIO_BLK_S_OK);
    assert_string_equal((char *)fd_ptr(f, r.data), "SER123");
}

static void out_of_range_is_ioerr(void **state)
{
    struct fake_driver *f = ready(state, 1);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512, 512, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, 1024, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, 0, 100, NULL), VIRTIO_BLK_S_IOERR);
    assert_false(fd_needs_reset(f));
}

static void unknown_type_is_unsupp(void **state)
{
    struct fake_driver *f = ready(state, 1);
    assert_int_equal(do_req(f, 0, 77, 0, 512, NULL), VIRTIO_BLK_S_UNSUPP);
}

static void write_zeroes_and_discard(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    for (uint32_t type = VIRTIO_BLK_T_DISCARD; type <= VIRTIO_BLK_T_WRITE_ZEROES; type += 2) {
        struct req r = submit(f, 0, type, 0, 16);
        /* the range travels in a device-readable buffer */
        struct virtq_desc *d = fd_ptr(f, f->q[0].desc + 16ULL * ((r.head + 1) % 64));
        d->flags &= (uint16_t)~VIRTQ_DESC_F_WRITE;
        uint64_t seg[2] = {16, 8 | ((uint64_t)(type == VIRTIO_BLK_T_WRITE_ZEROES) << 32)};
        memcpy(fd_ptr(f, r.data), seg, 16);
        fd_kick(f, 0);
        assert_int_equal(wait_status(f, 0, &r, NULL), VIRTIO_BLK_S_OK);
    }
    uint8_t got[4096], zero[4096] = {0};
    file_read(x, 16 * 512, got, sizeof(got));
    assert_memory_equal(got, zero, sizeof(got));
}

static void missing_status_breaks_device(void **state)
{
    struct fake_driver *f = ready(state, 1);
    uint64_t h = fd_alloc(f, 16);
    struct fd_buf b = {h, 16, false};
    fd_add(f, 0, &b, 1);
    fd_kick(f, 0);
    for (int i = 0; i < 5000 && !fd_needs_reset(f); i++)
        usleep(1000);
    assert_true(fd_needs_reset(f));
}

static void many_requests_in_flight(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    struct req r[20];
    for (unsigned i = 0; i < 20; i++)
        r[i] = submit(f, 0, VIRTIO_BLK_T_IN, i * 8, 4096);
    fd_kick(f, 0);
    unsigned seen = 0;
    uint32_t id, len;
    while (seen < 20 && fd_wait_used(f, 0, &id, &len))
        seen++;
    assert_int_equal(seen, 20);
    uint8_t want[4096];
    for (unsigned i = 0; i < 20; i++) {
        assert_int_equal(*(uint8_t *)fd_ptr(f, r[i].status), VIRTIO_BLK_S_OK);
        file_read(x, i * 4096ULL, want, sizeof(want));
        assert_memory_equal(fd_ptr(f, r[i].data), want, sizeof(want));
    }
}

static void readonly_refuses_writes(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    fd_wr(f, 0x14, 0);
    assert_true(fd_rd(f, 0x10) & (1u << VIRTIO_BLK_F_RO));
    struct req r = submit(f, 0, VIRTIO_BLK_T_OUT, 0, 512);
    memset(fd_ptr(f, r.data), 0x55, 512);
    fd_kick(f, 0);
    assert_int_equal(wait_status(f, 0, &r, NULL), VIRTIO_BLK_S_IOERR);
    uint8_t got[512];
    file_read(x, 0, got, sizeof(got));
    assert_int_not_equal(got[1], 0x55);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

static void second_queue_serves(void **state)
{
    struct fake_driver *f = ready(state, 2);
    assert_int_equal(virtio_mmio_read(&f->mmio, 0x100 + VIRTIO_BLK_CFG_NUM_QUEUES, 2), 2);
    assert_int_equal(do_req(f, 1, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

static void pause_holds_requests_until_resume(void **state)
{
    struct fake_driver *f = ready(state, 1);
    f->dev->ops->pause(f->dev);
    struct req r = submit(f, 0, VIRTIO_BLK_T_IN, 0, 512);
    fd_kick(f, 0);
    usleep(20000);
    uint32_t id, len;
    assert_false(fd_used(f, 0, &id, &len));
    f->dev->ops->resume(f->dev);
    assert_int_equal(wait_status(f, 0, &r, NULL), VIRTIO_BLK_S_OK);
}

/* Grown live: the file, the capacity, a config interrupt, and requests
 * beyond the old end work; shrinking, odd sizes and read-only disks are
 * refused with the disk untouched. */
static void resize_grows_disk(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    vs_err err;
    unsigned irqs = f->irq_raised;
    assert_int_equal(virtio_blk_resize(f->dev, 2 * DISK_SIZE, &err), 0);
    assert_int_equal(virtio_mmio_read(&f->mmio, 0x100, 8), 2 * DISK_SIZE / 512);
    assert_true(f->irq_raised > irqs);
    assert_int_equal(fd_rd(f, 0x60) & 2, 2); /* InterruptStatus: config changed */
    struct stat st;
    assert_int_equal(stat(x->path, &st), 0);
    assert_int_equal(st.st_size, 2 * DISK_SIZE);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512 + 5, 512, NULL),
                     VIRTIO_BLK_S_OK);
    assert_int_equal(virtio_blk_resize(f->dev, DISK_SIZE, &err), -1);
    assert_non_null(strstr(err.msg, "only growing"));
    assert_int_equal(virtio_blk_resize(f->dev, 3 * DISK_SIZE + 100, &err), -1);
    assert_int_equal(virtio_mmio_read(&f->mmio, 0x100, 8), 2 * DISK_SIZE / 512);
}

static void resize_refuses_readonly(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(state, 1);
    vs_err err;
    assert_int_equal(virtio_blk_resize(f->dev, 2 * DISK_SIZE, &err), -1);
    assert_int_equal(err.code, EROFS);
    assert_non_null(strstr(err.msg, "read-only"));
    struct stat st;
    assert_int_equal(stat(x->path, &st), 0);
    assert_int_equal(st.st_size, DISK_SIZE);
}

static void reset_then_reinit(void **state)
{
    struct fake_driver *f = ready(state, 1);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    fd_wr(f, 0x70, 0);
    memset(f->q, 0, sizeof(f->q));
    f = ready(state, 1);
    assert_int_equal(do_req(f, 0, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(config_describes_disk, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(reads_sectors, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(writes_and_flushes, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(get_id_returns_serial, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(out_of_range_is_ioerr, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(unknown_type_is_unsupp, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(write_zeroes_and_discard, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(missing_status_breaks_device, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(many_requests_in_flight, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(readonly_refuses_writes, setup_ro, teardown),
        cmocka_unit_test_setup_teardown(second_queue_serves, setup_mq, teardown),
        cmocka_unit_test_setup_teardown(pause_holds_requests_until_resume, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(reset_then_reinit, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(resize_grows_disk, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(resize_refuses_readonly, setup_ro, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
