#include "virtio/vhost_user.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "util/cleanup.h"
#include "util/log.h"

/* Protocol features vessel asks for (the backend may offer more). */
#define FE_PROTOCOL_FEATURES (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK)

int vhost_user_send(int sock, const struct vhost_user_msg *m, const int *fds, unsigned nfds,
                    vs_err *err)
{
    if (nfds > VHOST_USER_MAX_REGIONS)
        return vs_error(err, EINVAL, "vhost-user: %u fds in one message", nfds);
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = (void *)m->buf, .iov_len = m->len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return vs_error_errno(err, "vhost-user: sending %s",
                              vhost_user_request_name(m->buf[0] | m->buf[1] << 8));
    /* a stream socket takes a message this small whole, or fails */
    if ((size_t)n != m->len)
        return vs_error(err, EIO, "vhost-user: short send (%zd of %zu bytes)", n, m->len);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly len bytes by deadline; file descriptors a backend attaches to a
 * reply are closed (no reply vessel reads carries any). */
static int recv_exact(int sock, uint8_t *buf, size_t len, int64_t deadline, uint32_t req,
                      vs_err *err)
{
    size_t got = 0;
    while (got < len) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return vs_error(err, ETIMEDOUT, "vhost-user: no reply to %s within the timeout",
                            vhost_user_request_name(req));
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vs_error_errno(err, "vhost-user: poll");
        if (r == 0)
            continue;
        union {
            char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = buf + got, .iov_len = len - got};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u)};
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return vs_error_errno(err, "vhost-user: reading the reply to %s",
                                  vhost_user_request_name(req));
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < nf; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    close(fd);
                }
            }
        if (n == 0)
            return vs_error(err, ECONNRESET, "vhost-user: backend hung up before replying to %s",
                            vhost_user_request_name(req));
        got += (size_t)n;
    }
    return 0;
}

int vhost_user_recv_reply(int sock, uint32_t req, enum vhost_user_reply_kind kind, int timeout_ms,
                          struct vhost_user_reply *out, vs_err *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    uint8_t buf[VHOST_USER_HDR_SIZE + 8];
    uint32_t size;
    if (recv_exact(sock, buf, VHOST_USER_HDR_SIZE, deadline, req, err) < 0 ||
        vhost_user_check_reply_hdr(buf, req, kind, &size, err) < 0 ||
        recv_exact(sock, buf + VHOST_USER_HDR_SIZE, size, deadline, req, err) < 0)
        return -1;
    return vhost_user_parse_reply(buf, VHOST_USER_HDR_SIZE + size, req, kind, out, err);
}

static uint32_t msg_req(const struct vhost_user_msg *m)
{
    return (uint32_t)m->buf[0] | (uint32_t)m->buf[1] << 8 | (uint32_t)m->buf[2] << 16 |
           (uint32_t)m->buf[3] << 24;
}

/* One request; a reply of `kind` read when asked (reply != NULL), else the
 * REPLY_ACK status when the message asked for one. fe->lock held. */
static int rpc(struct vhost_user_frontend *fe, const struct vhost_user_msg *m, const int *fds,
               unsigned nfds, enum vhost_user_reply_kind kind, struct vhost_user_reply *reply,
               vs_err *err)
{
    if (fe->failed)
        return vs_error(err, EPIPE, "%s: its vhost-user backend is gone", fe->what);
    uint32_t req = msg_req(m);
    if (vhost_user_send(fe->sock, m, fds, nfds, err) < 0)
        return -1;
    if (reply)
        return vhost_user_recv_reply(fe->sock, req, kind, fe->timeout_ms, reply, err);
    if (m->buf[4] & VHOST_USER_FLAG_NEED_REPLY) {
        struct vhost_user_reply ack;
        if (vhost_user_recv_reply(fe->sock, req, VHOST_USER_REPLY_U64, fe->timeout_ms, &ack, err) <
            0)
            return -1;
        if (ack.u64)
            return vs_error(err, EPROTO, "vhost-user: backend refused %s (status %llu)",
                            vhost_user_request_name(req), (unsigned long long)ack.u64);
    }
    return 0;
}

static int ack(const struct vhost_user_frontend *fe)
{
    return (fe->protocol >> VHOST_USER_PROTOCOL_F_REPLY_ACK) & 1;
}

static int get_u64(struct vhost_user_frontend *fe, uint32_t req, uint64_t *v, vs_err *err)
{
    struct vhost_user_msg m;
    struct vhost_user_reply r;
    vhost_user_enc_plain(&m, req, 0);
    if (rpc(fe, &m, NULL, 0, VHOST_USER_REPLY_U64, &r, err) < 0)
        return -1;
    *v = r.u64;
    return 0;
}

static int set_u64(struct vhost_user_frontend *fe, uint32_t req, uint64_t v, vs_err *err)
{
    struct vhost_user_msg m;
    vhost_user_enc_u64(&m, req, v, ack(fe));
    return rpc(fe, &m, NULL, 0, 0, NULL, err);
}

static int set_state(struct vhost_user_frontend *fe, uint32_t req, unsigned q, uint32_t num,
                     vs_err *err)
{
    struct vhost_user_msg m;
    vhost_user_enc_state(&m, req, q, num, ack(fe));
    return rpc(fe, &m, NULL, 0, 0, NULL, err);
}

static int set_fd(struct vhost_user_frontend *fe, uint32_t req, unsigned q, int fd, vs_err *err)
{
    struct vhost_user_msg m;
    vhost_user_enc_u64(&m, req, q & VHOST_USER_VRING_IDX_MASK, ack(fe));
    return rpc(fe, &m, &fd, 1, 0, NULL, err);
}

static void raise_irq(struct virtio_dev *d, unsigned q)
{
    pthread_mutex_lock(&d->lock);
    d->isr |= VIRTIO_ISR_QUEUE;
    if (d->tr && d->tr->notify_queue)
        d->tr->notify_queue(d, q);
    pthread_mutex_unlock(&d->lock);
}

static void drain(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another reader got there first */
    }
}

/* The backend used buffers of a queue: the device's interrupt. */
static void on_call(void *opaque, int fd, uint32_t events)
{
    struct vhost_user_frontend *fe = opaque;
    drain(fd);
    for (unsigned q = 0; q < fe->dev->nvqs; q++)
        if (fe->call[q] == fd)
            raise_irq(fe->dev, q);
}

static void on_err(void *opaque, int fd, uint32_t events)
{
    struct vhost_user_frontend *fe = opaque;
    drain(fd);
    if (!fe->err_reported) {
        fe->err_reported = true;
        for (unsigned q = 0; q < fe->dev->nvqs; q++)
            if (fe->err[q] == fd)
                vs_warn("%s: the vhost-user backend reports an error on queue %u", fe->what, q);
    }
}

/* After failure the device serves kicks itself. */
static void on_kick_failed(void *opaque, int fd, uint32_t events)
{
    struct vhost_user_frontend *fe = opaque;
    drain(fd);
    for (unsigned q = 0; q < fe->dev->nvqs; q++)
        if (fe->kick[q] == fd)
            virtio_queue_kick(fe->dev, q);
}

static void on_hangup(void *opaque, int fd, uint32_t events)
{
    struct vhost_user_frontend *fe = opaque;
    vhost_user_frontend_fail(fe, "the backend closed its socket");
}

void vhost_user_frontend_fail(struct vhost_user_frontend *fe, const char *why)
{
    pthread_mutex_lock(&fe->lock);
    bool first = !fe->failed;
    fe->failed = true;
    fe->started = false;
    pthread_mutex_unlock(&fe->lock);
    if (!first)
        return;
    vs_warn("%s: %s; the device fails every request from now on", fe->what, why);
    if (fe->loop && fe->watching) {
        vs_event_loop_del(fe->loop, fe->sock);
        for (unsigned q = 0; q < fe->dev->nvqs; q++)
            vs_event_loop_add(fe->loop, fe->kick[q], EPOLLIN, on_kick_failed, fe, NULL);
    }
    if (fe->on_failed)
        fe->on_failed(fe);
}

int vhost_user_frontend_init(struct vhost_user_frontend *fe, struct virtio_dev *dev,
                             const char *what, int sock, struct vs_event_loop *loop, vs_err *err)
{
    fe->dev = dev;
    fe->what = what;
    fe->sock = sock;
    fe->loop = loop;
    fe->timeout_ms = 5000;
    pthread_mutex_init(&fe->lock, NULL);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        fe->kick[q] = fe->call[q] = fe->err[q] = -1;
    pthread_mutex_lock(&fe->lock);
    int rc = get_u64(fe, VHOST_USER_GET_FEATURES, &fe->backend_features, err);
    if (rc == 0 && (fe->backend_features >> VHOST_USER_F_PROTOCOL_FEATURES) & 1) {
        uint64_t offered;
        rc = get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &offered, err);
        if (rc == 0) {
            uint64_t want = offered & FE_PROTOCOL_FEATURES;
            rc = set_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, want, err);
            fe->protocol = want; /* REPLY_ACK applies from the next message on */
        }
    }
    if (rc == 0) {
        struct vhost_user_msg m;
        vhost_user_enc_plain(&m, VHOST_USER_SET_OWNER, ack(fe));
        rc = rpc(fe, &m, NULL, 0, 0, NULL, err);
    }
    pthread_mutex_unlock(&fe->lock);
    if (rc < 0)
        return vs_error_prefix(err, "%s: ", what);
    for (unsigned q = 0; q < dev->nvqs; q++) {
        fe->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        fe->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        fe->err[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fe->kick[q] < 0 || fe->call[q] < 0 || fe->err[q] < 0)
            return vs_error_errno(err, "%s: eventfd", what);
    }
    if (loop) {
        for (unsigned q = 0; q < dev->nvqs; q++)
            if (vs_event_loop_add(loop, fe->call[q], EPOLLIN, on_call, fe, err) < 0 ||
                vs_event_loop_add(loop, fe->err[q], EPOLLIN, on_err, fe, err) < 0)
                return -1;
        /* only the hang-up: replies are read by the thread that asked */
        if (vs_event_loop_add(loop, sock, EPOLLRDHUP, on_hangup, fe, err) < 0)
            return -1;
        fe->watching = true;
    }
    return 0;
}

/* The memory table: every guest RAM region, by its fd. */
static int send_mem_table(struct vhost_user_frontend *fe, vs_err *err)
{
    const struct guest_mem_layout *l = guest_mem_layout(fe->dev->mem);
    if (l->n > VHOST_USER_MAX_REGIONS)
        return vs_error(err, E2BIG, "%s: guest memory has %u regions, vhost-user takes %d",
                        fe->what, l->n, VHOST_USER_MAX_REGIONS);
    struct vhost_user_region r[VHOST_USER_MAX_REGIONS];
    int fds[VHOST_USER_MAX_REGIONS];
    for (unsigned i = 0; i < l->n; i++) {
        const struct guest_mem_region *g = &l->r[i];
        if (g->fd < 0)
            return vs_error(err, EINVAL,
                            "%s: guest RAM at 0x%llx is not shared memory (no memfd): the "
                            "vhost-user backend cannot map it",
                            fe->what, (unsigned long long)g->gpa);
        r[i] = (struct vhost_user_region){.gpa = g->gpa,
                                          .size = g->size,
                                          .uaddr = (uintptr_t)g->hva,
                                          .mmap_offset = g->fd_offset};
        fds[i] = g->fd;
    }
    struct vhost_user_msg m;
    size_t len;
    vhost_user_enc_mem_table(&m, r, l->n, ack(fe), &len);
    return rpc(fe, &m, fds, l->n, 0, NULL, err);
}

static int start_queue(struct vhost_user_frontend *fe, unsigned q, vs_err *err)
{
    struct virtio_dev *d = fe->dev;
    pthread_mutex_lock(&d->lock);
    struct virtq *vq = &d->vqs[q];
    uint16_t num = vq->num, base = vq->last_avail;
    uint8_t *desc = guest_mem_ptr(d->mem, vq->desc_gpa, 16ULL * num);
    uint8_t *avail = guest_mem_ptr(d->mem, vq->avail_gpa, 6 + 2ULL * num);
    uint8_t *used = guest_mem_ptr(d->mem, vq->used_gpa, 6 + 8ULL * num);
    pthread_mutex_unlock(&d->lock);
    if (!desc || !avail || !used)
        return vs_error(err, EFAULT, "%s: queue %u's rings are outside guest RAM", fe->what, q);
    struct vhost_user_vring_addr a = {.index = q,
                                      .desc = (uintptr_t)desc,
                                      .used = (uintptr_t)used,
                                      .avail = (uintptr_t)avail,
                                      .log = vq->used_gpa};
    struct vhost_user_msg m;
    vhost_user_enc_addr(&m, &a, ack(fe));
    if (set_state(fe, VHOST_USER_SET_VRING_NUM, q, num, err) < 0 ||
        set_state(fe, VHOST_USER_SET_VRING_BASE, q, base, err) < 0 ||
        rpc(fe, &m, NULL, 0, 0, NULL, err) < 0 ||
        set_fd(fe, VHOST_USER_SET_VRING_KICK, q, fe->kick[q], err) < 0 ||
        set_fd(fe, VHOST_USER_SET_VRING_CALL, q, fe->call[q], err) < 0 ||
        set_fd(fe, VHOST_USER_SET_VRING_ERR, q, fe->err[q], err) < 0)
        return -1;
    /* with the protocol-feature extension rings start disabled */
    if ((fe->backend_features >> VHOST_USER_F_PROTOCOL_FEATURES) & 1)
        return set_state(fe, VHOST_USER_SET_VRING_ENABLE, q, 1, err);
    return 0;
}

int vhost_user_frontend_start(struct vhost_user_frontend *fe, vs_err *err)
{
    struct virtio_dev *d = fe->dev;
    pthread_mutex_lock(&d->lock);
    uint64_t features =
        d->guest_features | (fe->backend_features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES));
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_lock(&fe->lock);
    int rc = set_u64(fe, VHOST_USER_SET_FEATURES, features, err);
    if (rc == 0)
        rc = send_mem_table(fe, err);
    for (unsigned q = 0; rc == 0 && q < d->nvqs; q++)
        if (d->vqs[q].ready)
            rc = start_queue(fe, q, err);
    if (rc == 0)
        fe->started = true;
    pthread_mutex_unlock(&fe->lock);
    if (rc < 0)
        return -1;
    /* kicks the driver made before the backend had the rings */
    for (unsigned q = 0; q < d->nvqs; q++)
        if (d->vqs[q].ready)
            vhost_user_frontend_kick(fe, q);
    return 0;
}

void vhost_user_frontend_stop(struct vhost_user_frontend *fe)
{
    struct virtio_dev *d = fe->dev;
    vs_err err = {0};
    pthread_mutex_lock(&fe->lock);
    bool was = fe->started;
    int rc = 0;
    for (unsigned q = 0; was && rc == 0 && q < d->nvqs; q++) {
        if (!d->vqs[q].ready)
            continue;
        struct vhost_user_msg m;
        struct vhost_user_reply r;
        vhost_user_enc_state(&m, VHOST_USER_GET_VRING_BASE, q, 0, 0);
        rc = rpc(fe, &m, NULL, 0, VHOST_USER_REPLY_STATE, &r, &err);
        if (rc == 0 && r.index != q)
            rc = vs_error(&err, EPROTO, "vhost-user: GET_VRING_BASE for queue %u answered for %u",
                          q, r.index);
    }
    fe->started = false;
    pthread_mutex_unlock(&fe->lock);
    if (rc < 0)
        vhost_user_frontend_fail(fe, err.msg);
}

void vhost_user_frontend_kick(struct vhost_user_frontend *fe, unsigned q)
{
    if (q >= fe->dev->nvqs || fe->kick[q] < 0)
        return;
    uint64_t one = 1;
    if (write(fe->kick[q], &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is saturated, the backend has a kick pending */
    }
}

int vhost_user_frontend_kickfd(struct vhost_user_frontend *fe, unsigned q)
{
    return q < fe->dev->nvqs ? fe->kick[q] : -1;
}

void vhost_user_frontend_unwatch(struct vhost_user_frontend *fe)
{
    if (!fe->dev || !fe->loop || !fe->watching)
        return;
    vs_event_loop_del(fe->loop, fe->sock);
    for (unsigned q = 0; q < fe->dev->nvqs; q++) {
        vs_event_loop_del(fe->loop, fe->call[q]);
        vs_event_loop_del(fe->loop, fe->err[q]);
        vs_event_loop_del(fe->loop, fe->kick[q]);
    }
    fe->watching = false;
}

void vhost_user_frontend_destroy(struct vhost_user_frontend *fe)
{
    if (!fe->dev)
        return;
    vhost_user_frontend_unwatch(fe);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (fe->kick[q] >= 0)
            close(fe->kick[q]);
        if (fe->call[q] >= 0)
            close(fe->call[q]);
        if (fe->err[q] >= 0)
            close(fe->err[q]);
    }
    if (fe->sock >= 0)
        close(fe->sock);
    fe->sock = -1;
    pthread_mutex_destroy(&fe->lock);
    fe->dev = NULL;
}
