/* The vhost-user frontend against a fake backend on a socketpair: the
 * handshake, what starting a device sends (features, a memory table whose
 * fd maps the guest's RAM, ring addresses as frontend addresses, kick/call
 * fds, enable), REPLY_ACK, GET_VRING_BASE on stop, a call eventfd turned
 * into the device's interrupt, a backend that hangs up or replies garbage;
 * and the reply parser on malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/vhost_user.h"

#define RAM_GPA 0x80000000ULL
#define RAM_SIZE (1ULL << 20)

/* ---- the reply parser ------------------------------------------------- */

static void put_hdr(uint8_t *b, uint32_t req, uint32_t flags, uint32_t size)
{
    memcpy(b, &req, 4);
    memcpy(b + 4, &flags, 4);
    memcpy(b + 8, &size, 4);
}

static void test_parse_reply(void **state)
{
    uint8_t b[32];
    struct vhost_user_reply r;
    vs_err err;
    uint64_t v = 0x123456789ULL;
    put_hdr(b, VHOST_USER_GET_FEATURES, 1 | VHOST_USER_FLAG_REPLY, 8);
    memcpy(b + 12, &v, 8);
    assert_int_equal(
        vhost_user_parse_reply(b, 20, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), 0);
    assert_true(r.u64 == v);
    /* cut short, too long, wrong request, no REPLY flag, wrong version,
     * a size the kind does not have */
    assert_int_equal(
        vhost_user_parse_reply(b, 19, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), -1);
    assert_int_equal(
        vhost_user_parse_reply(b, 21, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), -1);
    assert_int_equal(
        vhost_user_parse_reply(b, 8, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), -1);
    assert_int_equal(vhost_user_parse_reply(b, 20, VHOST_USER_GET_PROTOCOL_FEATURES,
                                            VHOST_USER_REPLY_U64, &r, &err),
                     -1);
    put_hdr(b, VHOST_USER_GET_FEATURES, 1, 8);
    assert_int_equal(
        vhost_user_parse_reply(b, 20, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), -1);
    assert_non_null(strstr(err.msg, "request"));
    put_hdr(b, VHOST_USER_GET_FEATURES, 2 | VHOST_USER_FLAG_REPLY, 8);
    assert_int_equal(
        vhost_user_parse_reply(b, 20, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &r, &err), -1);
    put_hdr(b, VHOST_USER_GET_FEATURES, 1 | VHOST_USER_FLAG_REPLY, 0xffffffffu);
    uint32_t size;
    assert_int_equal(
        vhost_user_check_reply_hdr(b, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_U64, &size, &err),
        -1);
    /* a vring state */
    put_hdr(b, VHOST_USER_GET_VRING_BASE, 1 | VHOST_USER_FLAG_REPLY, 8);
    uint32_t st[2] = {1, 77};
    memcpy(b + 12, st, 8);
    assert_int_equal(
        vhost_user_parse_reply(b, 20, VHOST_USER_GET_VRING_BASE, VHOST_USER_REPLY_STATE, &r, &err),
        0);
    assert_int_equal(r.index, 1);
    assert_int_equal(r.num, 77);
}

static void test_encode(void **state)
{
    struct vhost_user_msg m;
    struct vhost_user_region reg[VHOST_USER_MAX_REGIONS + 1] = {{1, 2, 3, 4}};
    size_t len;
    assert_int_equal(vhost_user_enc_mem_table(&m, reg, 1, 1, &len), 0);
    assert_int_equal(len, 12 + 8 + 32);
    uint32_t flags;
    memcpy(&flags, m.buf + 4, 4);
    assert_int_equal(flags, 1 | VHOST_USER_FLAG_NEED_REPLY);
    uint64_t uaddr;
    memcpy(&uaddr, m.buf + 12 + 8 + 16, 8);
    assert_int_equal(uaddr, 3);
    assert_int_equal(vhost_user_enc_mem_table(&m, reg, VHOST_USER_MAX_REGIONS + 1, 0, &len), -1);
    struct vhost_user_vring_addr a = {.index = 1, .desc = 10, .used = 20, .avail = 30};
    assert_int_equal(vhost_user_enc_addr(&m, &a, 0), 12 + 40);
    uint64_t used;
    memcpy(&used, m.buf + 12 + 16, 8); /* desc, used, avail: the spec's order */
    assert_int_equal(used, 20);
}

/* ---- a fake backend --------------------------------------------------- */

enum misbehave { GOOD, HANG_UP_AT_START, GARBAGE_FEATURES };

struct backend {
    int sock;
    enum misbehave how;
    pthread_t thread;
    unsigned seen[32]; /* requests by number */
    uint64_t features_set;
    int mem_fd;
    struct vhost_user_region region;
    uint32_t nregions;
    struct vhost_user_vring_addr addr[2];
    uint32_t num[2], base[2];
    int call_fd[2];
    int enabled[2];
};

static int recv_msg(int sock, uint8_t *buf, size_t cap, int *fds, unsigned *nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr a;
    } u;
    struct iovec iov = {buf, 12};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u)};
    ssize_t n = recvmsg(sock, &mh, 0);
    if (n != 12)
        return -1;
    *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(fds, CMSG_DATA(c), k * sizeof(int));
        *nfds = k;
    }
    uint32_t size;
    memcpy(&size, buf + 8, 4);
    if (size > cap - 12 || (size && read(sock, buf + 12, size) != (ssize_t)size))
        return -1;
    return (int)(12 + size);
}

static void reply(int sock, uint32_t req, const void *payload)
{
    uint8_t b[20];
    put_hdr(b, req, 1 | VHOST_USER_FLAG_REPLY, 8);
    memcpy(b + 12, payload, 8);
    assert_int_equal(write(sock, b, 20), 20);
}

static void *backend_main(void *arg)
{
    struct backend *be = arg;
    uint8_t buf[512];
    int fds[8];
    unsigned nfds;
    for (;;) {
        if (recv_msg(be->sock, buf, sizeof(buf), fds, &nfds) < 0)
            break;
        uint32_t req, flags;
        memcpy(&req, buf, 4);
        memcpy(&flags, buf + 4, 4);
        if (req < 32)
            be->seen[req]++;
        uint64_t u64 = 0;
        memcpy(&u64, buf + 12, 8);
        uint32_t idx = (uint32_t)u64 & 0xff, num = (uint32_t)(u64 >> 32);
        switch (req) {
        case VHOST_USER_GET_FEATURES: {
            if (be->how == GARBAGE_FEATURES) {
                uint8_t junk[12];
                put_hdr(junk, VHOST_USER_GET_FEATURES, 1 | VHOST_USER_FLAG_REPLY, 4096);
                assert_int_equal(write(be->sock, junk, 12), 12);
                break;
            }
            uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
            reply(be->sock, req, &f);
            break;
        }
        case VHOST_USER_GET_PROTOCOL_FEATURES: {
            uint64_t f = (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) | (1ULL << 15);
            reply(be->sock, req, &f);
            break;
        }
        case VHOST_USER_SET_FEATURES:
            be->features_set = u64;
            if (be->how == HANG_UP_AT_START) {
                close(be->sock);
                be->sock = -1;
                return NULL;
            }
            break;
        case VHOST_USER_SET_MEM_TABLE:
            memcpy(&be->nregions, buf + 12, 4);
            memcpy(&be->region, buf + 20, sizeof(be->region));
            be->mem_fd = nfds ? fds[0] : -1;
            break;
        case VHOST_USER_SET_VRING_NUM:
            if (idx < 2)
                be->num[idx] = num;
            break;
        case VHOST_USER_SET_VRING_BASE:
            if (idx < 2)
                be->base[idx] = num;
            break;
        case VHOST_USER_SET_VRING_ADDR:
            if (idx < 2) {
                uint64_t v[4];
                memcpy(v, buf + 20, 32);
                be->addr[idx] = (struct vhost_user_vring_addr){
                    .index = idx, .desc = v[0], .used = v[1], .avail = v[2], .log = v[3]};
            }
            break;
        case VHOST_USER_SET_VRING_CALL:
            if (idx < 2)
                be->call_fd[idx] = nfds ? fds[0] : -1;
            break;
        case VHOST_USER_SET_VRING_KICK:
        case VHOST_USER_SET_VRING_ERR:
            if (nfds)
                close(fds[0]);
            break;
        case VHOST_USER_SET_VRING_ENABLE:
            if (idx < 2)
                be->enabled[idx] = (int)num;
            break;
        case VHOST_USER_GET_VRING_BASE: {
            uint32_t st[2] = {idx, 5};
            reply(be->sock, req, st);
            break;
        }
        }
        if ((flags & VHOST_USER_FLAG_NEED_REPLY) && req != VHOST_USER_GET_VRING_BASE) {
            uint64_t ok = 0;
            reply(be->sock, req, &ok);
        }
    }
    return NULL;
}

struct fixture {
    struct guest_mem mem;
    struct virtio_dev dev;
    struct vhost_user_frontend fe;
    struct backend be;
    volatile unsigned irqs, failed;
    struct vs_event_loop loop;
    bool loop_on;
};

static const struct virtio_dev_ops no_ops = {0};

static void count_irq(struct virtio_dev *d, unsigned q)
{
    struct fixture *x = d->tr_opaque;
    x->irqs++;
}
static const struct virtio_transport_ops tr = {.notify_queue = count_irq};

static void on_failed(struct vhost_user_frontend *fe)
{
    struct fixture *x = fe->dev->tr_opaque;
    x->failed++;
}

static struct fixture *setup(enum misbehave how, bool with_loop, int *rc, vs_err *err)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (with_loop) {
        assert_int_equal(vs_event_loop_init(&x->loop, err), 0);
        assert_int_equal(vs_event_loop_start_thread(&x->loop, "test-loop", err), 0);
        x->loop_on = true;
    }
    guest_mem_init(&x->mem);
    assert_int_equal(guest_mem_add_anon(&x->mem, RAM_GPA, RAM_SIZE, err), 0);
    virtio_dev_init(&x->dev, "vu-test", 26, 0, 2, 256, &no_ops, &x->mem);
    x->dev.tr = &tr;
    x->dev.tr_opaque = x;
    x->fe.on_failed = on_failed;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    x->be = (struct backend){.sock = sv[1], .how = how, .mem_fd = -1, .call_fd = {-1, -1}};
    pthread_create(&x->be.thread, NULL, backend_main, &x->be);
    *rc = vhost_user_frontend_init(&x->fe, &x->dev, "test device", sv[0],
                                   with_loop ? &x->loop : NULL, err);
    x->fe.timeout_ms = 2000;
    return x;
}

static void teardown(struct fixture *x)
{
    vhost_user_frontend_destroy(&x->fe); /* closes our end: the backend's read ends */
    pthread_join(x->be.thread, NULL);
    if (x->be.sock >= 0)
        close(x->be.sock);
    if (x->loop_on)
        vs_event_loop_destroy(&x->loop);
    if (x->be.mem_fd >= 0)
        close(x->be.mem_fd);
    for (int i = 0; i < 2; i++)
        if (x->be.call_fd[i] >= 0)
            close(x->be.call_fd[i]);
    virtio_dev_fini(&x->dev);
    guest_mem_destroy(&x->mem);
    free(x);
}

/* The driver programmed queue 1 (queue 0 left unused). */
static void program_queue(struct fixture *x)
{
    struct virtq *vq = &x->dev.vqs[1];
    vq->num = 128;
    vq->desc_gpa = RAM_GPA + 0x1000;
    vq->avail_gpa = RAM_GPA + 0x2000;
    vq->used_gpa = RAM_GPA + 0x3000;
    x->dev.guest_features = 1ULL << VIRTIO_F_VERSION_1;
    virtio_queue_set_ready(&x->dev, 1, true);
    assert_true(vq->ready);
}

static void test_start_stop(void **state)
{
    vs_err err = {0};
    int rc;
    struct fixture *x = setup(GOOD, true, &rc, &err);
    assert_int_equal(rc, 0);
    assert_true(x->fe.backend_features & (1ULL << VIRTIO_F_VERSION_1));
    /* only REPLY_ACK of what it offered */
    assert_true(x->fe.protocol == (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK));
    program_queue(x);
    assert_int_equal(vhost_user_frontend_start(&x->fe, &err), 0);
    assert_int_equal(x->be.seen[VHOST_USER_SET_OWNER], 1);
    /* the driver's features, and the protocol-feature bit */
    assert_true(x->be.features_set ==
                ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)));
    /* one region: the guest's RAM by a memfd that maps it */
    assert_int_equal(x->be.nregions, 1);
    assert_true(x->be.region.gpa == RAM_GPA);
    assert_true(x->be.region.size == RAM_SIZE);
    assert_true(x->be.mem_fd >= 0);
    uint8_t *hva = guest_mem_ptr(&x->mem, RAM_GPA, RAM_SIZE);
    assert_true(x->be.region.uaddr == (uintptr_t)hva);
    uint8_t *view =
        mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, x->be.mem_fd, (off_t)x->be.region.mmap_offset);
    assert_true(view != MAP_FAILED);
    hva[0x1234] = 0x5a; /* the backend sees the guest's writes */
    assert_int_equal(view[0x1234], 0x5a);
    munmap(view, RAM_SIZE);
    /* only the ready queue, at frontend addresses */
    assert_int_equal(x->be.seen[VHOST_USER_SET_VRING_ADDR], 1);
    assert_int_equal(x->be.num[1], 128);
    assert_true(x->be.addr[1].desc == (uintptr_t)(hva + 0x1000));
    assert_true(x->be.addr[1].avail == (uintptr_t)(hva + 0x2000));
    assert_true(x->be.addr[1].used == (uintptr_t)(hva + 0x3000));
    assert_int_equal(x->be.enabled[1], 1);
    assert_true(x->be.call_fd[1] >= 0);
    /* the backend signals its call fd: the event loop raises the
     * device's interrupt */
    uint64_t one = 1;
    assert_int_equal(write(x->be.call_fd[1], &one, 8), 8);
    for (int i = 0; i < 1000 && !x->irqs; i++)
        usleep(1000);
    assert_int_equal(x->irqs, 1);
    assert_true(x->dev.isr & VIRTIO_ISR_QUEUE);
    assert_int_equal(vhost_user_frontend_start(&x->fe, &err), 0); /* restart is fine */
    vhost_user_frontend_stop(&x->fe);
    assert_int_equal(x->be.seen[VHOST_USER_GET_VRING_BASE], 1);
    assert_false(x->fe.failed);
    assert_int_equal(x->failed, 0);
    teardown(x);
}

static void test_backend_hangs_up(void **state)
{
    vs_err err = {0};
    int rc;
    struct fixture *x = setup(HANG_UP_AT_START, false, &rc, &err);
    assert_int_equal(rc, 0);
    program_queue(x);
    assert_int_equal(vhost_user_frontend_start(&x->fe, &err), -1);
    assert_non_null(strstr(err.msg, "SET_FEATURES"));
    vhost_user_frontend_fail(&x->fe, err.msg);
    vhost_user_frontend_fail(&x->fe, "again"); /* said once */
    assert_int_equal(x->failed, 1);
    assert_true(x->fe.failed);
    vhost_user_frontend_stop(&x->fe); /* nothing to take back, no hang */
    assert_int_equal(vhost_user_frontend_start(&x->fe, &err), -1);
    teardown(x);
}

static void test_garbage_reply(void **state)
{
    vs_err err = {0};
    int rc;
    struct fixture *x = setup(GARBAGE_FEATURES, false, &rc, &err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, "test device"));
    assert_non_null(strstr(err.msg, "payload bytes"));
    teardown(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reply),   cmocka_unit_test(test_encode),
        cmocka_unit_test(test_start_stop),    cmocka_unit_test(test_backend_hangs_up),
        cmocka_unit_test(test_garbage_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
