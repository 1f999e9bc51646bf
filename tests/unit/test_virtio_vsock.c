/* virtio-vsock's unix-socket bridge without a VM: the fake driver plays the
 * guest's vsock transport (REQUEST/RESPONSE/RW/SHUTDOWN/RST packets) while
 * the test plays the host side through the unix sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/devices.h"

#define CID 7
#define RXQ 0
#define TXQ 1
#define NRX 32

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct fixture {
    struct fake_driver f;
    char uds[64];
    uint64_t rx[NRX];
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (!x || fd_init_mem(&x->f) < 0)
        return -1;
    snprintf(x->uds, sizeof(x->uds), "/tmp/vessel-test-vsock-%d.sock", getpid());
    vs_err err;
    struct virtio_dev *d = virtio_vsock_new(&x->f.mem, CID, x->uds, NULL, &err);
    if (!d) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    fd_attach(&x->f, d);
    struct fake_driver *f = &x->f;
    if (!(fd_negotiate(f, FD_FEATURES_V1) & VIRTIO_STATUS_FEATURES_OK))
        return -1;
    fd_setup_queue(f, 0, 64);
    fd_setup_queue(f, 1, 64);
    fd_setup_queue(f, 2, 8);
    for (unsigned i = 0; i < NRX; i++) {
        x->rx[i] = fd_alloc(f, 4096);
        struct fd_buf b = {x->rx[i], 4096, true};
        fd_add(f, RXQ, &b, 1);
    }
    fd_driver_ok(f);
    fd_kick(f, RXQ);
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

/* Guest sends a packet. */
static void gsend(struct fixture *x, uint16_t op, uint32_t src_port, uint32_t dst_port,
                  const char *payload, uint32_t flags)
{
    struct fake_driver *f = &x->f;
    uint32_t len = payload ? (uint32_t)strlen(payload) : 0;
    uint64_t a = fd_alloc(f, sizeof(struct hdr) + len);
    struct hdr h = {.src_cid = CID,
                    .dst_cid = 2,
                    .src_port = src_port,
                    .dst_port = dst_port,
                    .len = len,
                    .type = 1,
                    .op = op,
                    .flags = flags,
                    .buf_alloc = 65536};
    memcpy(fd_ptr(f, a), &h, sizeof(h));
    if (len)
        memcpy(fd_ptr(f, a + sizeof(h)), payload, len);
    struct fd_buf b = {a, (uint32_t)(sizeof(h) + len), false};
    fd_add(f, TXQ, &b, 1);
    fd_kick(f, TXQ);
}

/* Guest receives the next packet. */
static struct hdr grecv(struct fixture *x, char *payload, size_t cap)
{
    uint32_t id = 0, len = 0;
    assert_true(fd_wait_used(&x->f, RXQ, &id, &len));
    assert_true(len >= sizeof(struct hdr));
    struct hdr h;
    memcpy(&h, fd_ptr(&x->f, x->rx[id % NRX]), sizeof(h));
    assert_int_equal(h.src_cid, 2);
    assert_int_equal(h.dst_cid, CID);
    assert_int_equal(len, sizeof(h) + h.len);
    if (payload) {
        size_t n = h.len < cap - 1 ? h.len : cap - 1;
        memcpy(payload, fd_ptr(&x->f, x->rx[id % NRX] + sizeof(h)), n);
        payload[n] = 0;
    }
    return h;
}

static int unix_connect(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

static void read_line(int s, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap && read(s, buf + n, 1) == 1 && buf[n] != '\n')
        n++;
    buf[n] = 0;
}

static void config_has_cid(void **state)
{
    struct fixture *x = *state;
    assert_int_equal(virtio_mmio_read(&x->f.mmio, 0x100, 8), CID);
    assert_int_equal(fd_rd(&x->f, 0x008), VIRTIO_ID_VSOCK);
}

static void host_connects_to_guest(void **state)
{
    struct fixture *x = *state;
    int s = unix_connect(x->uds);
    assert_int_equal(write(s, "CONNECT 1234\n", 13), 13);
    struct hdr req = grecv(x, NULL, 0);
    assert_int_equal(req.op, 1); /* REQUEST */
    assert_int_equal(req.dst_port, 1234);
    gsend(x, 2, 1234, req.src_port, NULL, 0); /* RESPONSE */
    char line[64];
    read_line(s, line, sizeof(line));
    char want[32];
    snprintf(want, sizeof(want), "OK %u", req.src_port);
    assert_string_equal(line, want);

    assert_int_equal(write(s, "hello guest", 11), 11);
    char payload[64];
    struct hdr rw = grecv(x, payload, sizeof(payload));
    assert_int_equal(rw.op, 5);
    assert_string_equal(payload, "hello guest");

    gsend(x, 5, 1234, req.src_port, "hello host", 0);
    char got[16] = {0};
    assert_int_equal(read(s, got, 10), 10);
    assert_string_equal(got, "hello host");

    gsend(x, 4, 1234, req.src_port, NULL, 3); /* SHUTDOWN both ways */
    assert_int_equal(read(s, got, 1), 0);     /* host sees EOF */
    struct hdr rst = grecv(x, NULL, 0);
    assert_int_equal(rst.op, 3);
    close(s);
}

static void guest_connects_to_host(void **state)
{
    struct fixture *x = *state;
    char path[80];
    snprintf(path, sizeof(path), "%s_5000", x->uds);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    unlink(path);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    gsend(x, 1, 40000, 5000, NULL, 0); /* REQUEST */
    struct hdr resp = grecv(x, NULL, 0);
    assert_int_equal(resp.op, 2);
    assert_int_equal(resp.src_port, 5000);
    assert_int_equal(resp.dst_port, 40000);
    int c = accept(l, NULL, NULL);
    gsend(x, 5, 40000, 5000, "ping", 0);
    char got[8] = {0};
    assert_int_equal(read(c, got, 4), 4);
    assert_string_equal(got, "ping");
    assert_int_equal(write(c, "pong", 4), 4);
    char payload[16];
    struct hdr rw = grecv(x, payload, sizeof(payload));
    assert_int_equal(rw.op, 5);
    assert_string_equal(payload, "pong");
    close(c); /* host closes: the guest is told */
    struct hdr sd = grecv(x, NULL, 0);
    assert_int_equal(sd.op, 4);
    close(l);
    unlink(path);
}

static void request_to_port_without_listener_is_reset(void **state)
{
    struct fixture *x = *state;
    gsend(x, 1, 40001, 5999, NULL, 0);
    struct hdr r = grecv(x, NULL, 0);
    assert_int_equal(r.op, 3);
    assert_int_equal(r.dst_port, 40001);
}

static void hostile_length_and_unknown_connection(void **state)
{
    struct fixture *x = *state;
    /* a RW for no connection, with a len far beyond its buffer */
    struct fake_driver *f = &x->f;
    uint64_t a = fd_alloc(f, sizeof(struct hdr));
    struct hdr h = {.src_cid = CID,
                    .dst_cid = 2,
                    .src_port = 1,
                    .dst_port = 2,
                    .len = 0xffffffff,
                    .type = 1,
                    .op = 5};
    memcpy(fd_ptr(f, a), &h, sizeof(h));
    struct fd_buf b = {a, sizeof(h), false};
    fd_add(f, TXQ, &b, 1);
    fd_kick(f, TXQ);
    struct hdr r = grecv(x, NULL, 0);
    assert_int_equal(r.op, 3);
    /* a short packet is dropped, the device keeps working */
    uint64_t s = fd_alloc(f, 8);
    struct fd_buf sb = {s, 8, false};
    fd_add(f, TXQ, &sb, 1);
    fd_kick(f, TXQ);
    request_to_port_without_listener_is_reset(state);
    assert_false(fd_needs_reset(f));
}

static void restore_sends_transport_reset_event(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = &x->f;
    uint64_t ev = fd_alloc(f, 8);
    memset(fd_ptr(f, ev), 0xff, 8);
    struct fd_buf b = {ev, 8, true};
    fd_add(f, 2, &b, 1);
    struct state_writer w;
    state_writer_init(&w);
    vs_err err;
    assert_int_equal(virtio_dev_save(f->dev, &w, 0, &err), 0);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_dev_load(f->dev, &r, 0, &err), 0);
    state_writer_free(&w);
    f->dev->ops->driver_ok(f->dev);
    uint32_t id, len;
    assert_true(fd_wait_used(f, 2, &id, &len));
    assert_int_equal(len, 4);
    uint32_t event;
    memcpy(&event, fd_ptr(f, ev), 4);
    assert_int_equal(event, 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
}

static void bad_cid_and_missing_uds_are_refused(void **state)
{
    struct guest_mem m;
    guest_mem_init(&m);
    vs_err err;
    assert_null(virtio_vsock_new(&m, 2, "/tmp/x.sock", NULL, &err));
    assert_non_null(strstr(err.msg, "reserved"));
    assert_null(virtio_vsock_new(&m, 3, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "--vsock-uds"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(config_has_cid),
        T(host_connects_to_guest),
        T(guest_connects_to_host),
        T(request_to_port_without_listener_is_reset),
        T(hostile_length_and_unknown_connection),
        T(restore_sends_transport_reset_event),
        cmocka_unit_test(bad_cid_and_missing_uds_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
