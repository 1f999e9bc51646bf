/* virtio-vsock (virtio 1.2, 5.10) bridged to unix sockets as Firecracker
 * does, for hosts without vhost-vsock:
 *   - host -> guest: connect to the unix socket at `uds`, write
 *     "CONNECT <port>\n"; vessel answers "OK <host port>\n" once the guest
 *     accepted, then the socket carries the stream.
 *   - guest -> host: a guest connect to CID 2 port P becomes a connection to
 *     the unix socket "<uds>_P".
 * Stream sockets only; credit-based flow control as the spec describes. One
 * thread per device polls the sockets and a kick eventfd. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "util/io.h"
#include "util/log.h"
#include "virtio/devices.h"
#include "util/unix_socket.h"
#include "util/thread_role.h"

#define RXQ 0
#define TXQ 1
#define EVQ 2
#define HOST_CID 2
#define VSOCK_TYPE_STREAM 1
enum {
    OP_REQUEST = 1,
    OP_RESPONSE,
    OP_RST,
    OP_SHUTDOWN,
    OP_RW,
    OP_CREDIT_UPDATE,
    OP_CREDIT_REQUEST,
};
#define SHUT_RCV_FLAG 1
#define SHUT_SEND_FLAG 2
#define BUF_ALLOC (256 * 1024)
#define MAX_CONNS 64
#define CTRL_MAX 256
#define LOCAL_PORT_BASE 0x40000000u

struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum conn_state { C_FREE, C_WAIT_LINE, C_WAIT_RESPONSE, C_OPEN };

struct conn {
    enum conn_state state;
    int fd;
    uint32_t local_port, peer_port;
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    uint32_t tx_cnt;       /* bytes sent to the guest */
    uint32_t fwd_cnt;      /* bytes from the guest written to the host socket */
    uint32_t fwd_reported; /* fwd_cnt last told to the guest */
    bool host_eof;
    char line[32];
    unsigned line_len;
};

struct virtio_vsock {
    struct virtio_dev dev;
    uint64_t cid;
    char *uds;
    int listen_fd, kick_fd;
    pthread_t thread;
    bool thread_started;
    volatile bool exit_requested;
    struct conn conns[MAX_CONNS];
    uint32_t next_local_port;
    bool reset_event; /* tell the guest its connections are gone (restore) */
    struct vsock_hdr ctrl[CTRL_MAX];
    unsigned ctrl_head, ctrl_count;
    struct virtq_elem elem;
};

static struct virtio_vsock *to_vs(struct virtio_dev *d)
{
    return (struct virtio_vsock *)d;
}

static struct vsock_hdr hdr_for(struct virtio_vsock *v, struct conn *c, uint16_t op)
{
    return (struct vsock_hdr){.src_cid = HOST_CID,
                              .dst_cid = v->cid,
                              .src_port = c->local_port,
                              .dst_port = c->peer_port,
                              .type = VSOCK_TYPE_STREAM,
                              .op = op,
                              .buf_alloc = BUF_ALLOC,
                              .fwd_cnt = c->fwd_cnt};
}

/* Put a header-only packet in the receive queue, or queue it. Lock held. */
static bool send_ctrl_now(struct virtio_vsock *v, const struct vsock_hdr *h)
{
    struct virtio_dev *d = &v->dev;
    struct virtq *vq = &d->vqs[RXQ];
    int ret = virtq_pop(vq, &v->elem);
    if (ret < 0) {
        virtio_dev_set_broken_locked(d, vq->error);
        return true;
    }
    if (ret == 0)
        return false;
    if (iov_length(&v->elem.iov[v->elem.nout], v->elem.nin) < sizeof(*h)) {
        virtq_push(vq, &v->elem, 0);
        virtio_dev_set_broken_locked(d, "vsock receive buffer smaller than a header");
        return true;
    }
    iov_from_buf(&v->elem.iov[v->elem.nout], v->elem.nin, 0, h, sizeof(*h));
    virtq_push(vq, &v->elem, sizeof(*h));
    virtio_queue_notify_locked(d, RXQ);
    return true;
}

static void send_ctrl(struct virtio_vsock *v, const struct vsock_hdr *h)
{
    if (!v->ctrl_count && send_ctrl_now(v, h))
        return;
    if (v->ctrl_count == CTRL_MAX) {
        vs_warn("%s: control queue full, dropping a packet", v->dev.name);
        return;
    }
    v->ctrl[(v->ctrl_head + v->ctrl_count++) % CTRL_MAX] = *h;
}

static void flush_ctrl(struct virtio_vsock *v)
{
    while (v->ctrl_count && send_ctrl_now(v, &v->ctrl[v->ctrl_head])) {
        v->ctrl_head = (v->ctrl_head + 1) % CTRL_MAX;
        v->ctrl_count--;
    }
}

static void rst_reply(struct virtio_vsock *v, const struct vsock_hdr *in)
{
    struct vsock_hdr h = {.src_cid = HOST_CID,
                          .dst_cid = v->cid,
                          .src_port = in->dst_port,
                          .dst_port = in->src_port,
                          .type = VSOCK_TYPE_STREAM,
                          .op = OP_RST};
    send_ctrl(v, &h);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = C_FREE;
}

static struct conn *conn_alloc(struct virtio_vsock *v)
{
    for (unsigned i = 0; i < MAX_CONNS; i++)
        if (v->conns[i].state == C_FREE) {
            memset(&v->conns[i], 0, sizeof(v->conns[i]));
            v->conns[i].fd = -1;
            return &v->conns[i];
        }
    return NULL;
}

static struct conn *conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
    for (unsigned i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &v->conns[i];
        if (c->state >= C_WAIT_RESPONSE && c->local_port == local && c->peer_port == peer)
            return c;
    }
    return NULL;
}

/* One packet from the guest. Lock held. */
static void handle_tx_packet(struct virtio_vsock *v, const struct virtq_elem *e)
{
    struct vsock_hdr h;
    size_t total = iov_length(e->iov, e->nout);
    if (iov_to_buf(e->iov, e->nout, 0, &h, sizeof(h)) != sizeof(h))
        return; /* too short to answer: drop */
    if (h.src_cid != v->cid || h.dst_cid != HOST_CID || h.type != VSOCK_TYPE_STREAM) {
        if (h.op != OP_RST)
            rst_reply(v, &h);
        return;
    }
    if (h.len > total - sizeof(h))
        h.len = (uint32_t)(total - sizeof(h)); /* never trust len beyond the buffers */
    struct conn *c = conn_find(v, h.dst_port, h.src_port);
    if (c) {
        c->peer_buf_alloc = h.buf_alloc;
        c->peer_fwd_cnt = h.fwd_cnt;
    }
    switch (h.op) {
    case OP_REQUEST: {
        if (c) {
            rst_reply(v, &h);
            return;
        }
        char path[160];
        snprintf(path, sizeof(path), "%s_%u", v->uds ? v->uds : "", h.dst_port);
        int fd = v->uds ? vs_unix_connect(path, NULL) : -1;
        c = fd >= 0 ? conn_alloc(v) : NULL;
        if (!c) {
            if (fd >= 0)
                close(fd);
            rst_reply(v, &h);
            return;
        }
        *c = (struct conn){.state = C_OPEN,
                           .fd = fd,
                           .local_port = h.dst_port,
                           .peer_port = h.src_port,
                           .peer_buf_alloc = h.buf_alloc,
                           .peer_fwd_cnt = h.fwd_cnt};
        struct vsock_hdr r = hdr_for(v, c, OP_RESPONSE);
        send_ctrl(v, &r);
        return;
    }
    case OP_RESPONSE:
        if (!c || c->state != C_WAIT_RESPONSE) {
            rst_reply(v, &h);
            return;
        }
        c->state = C_OPEN;
        char ok[32];
        int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
        vs_send_full(c->fd, ok, (size_t)n, MSG_NOSIGNAL);
        return;
    case OP_RW: {
        if (!c || c->state != C_OPEN) {
            rst_reply(v, &h);
            return;
        }
        /* copy out of guest memory in chunks */
        uint8_t buf[4096];
        size_t off = sizeof(h), left = h.len;
        while (left) {
            size_t l = left < sizeof(buf) ? left : sizeof(buf);
            iov_to_buf(e->iov, e->nout, off, buf, l);
            vs_send_full(c->fd, buf, l, MSG_NOSIGNAL);
            off += l;
            left -= l;
        }
        c->fwd_cnt += h.len;
        if (c->fwd_cnt - c->fwd_reported >= BUF_ALLOC / 4) {
            c->fwd_reported = c->fwd_cnt;
            struct vsock_hdr u = hdr_for(v, c, OP_CREDIT_UPDATE);
            send_ctrl(v, &u);
        }
        return;
    }
    case OP_CREDIT_REQUEST:
        if (c) {
            c->fwd_reported = c->fwd_cnt;
            struct vsock_hdr u = hdr_for(v, c, OP_CREDIT_UPDATE);
            send_ctrl(v, &u);
        } else {
            rst_reply(v, &h);
        }
        return;
    case OP_CREDIT_UPDATE:
        return; /* credit already taken from the header */
    case OP_SHUTDOWN:
        if (!c)
            return;
        if (h.flags & SHUT_SEND_FLAG)
            shutdown(c->fd, SHUT_WR);
        if ((h.flags & (SHUT_SEND_FLAG | SHUT_RCV_FLAG)) == (SHUT_SEND_FLAG | SHUT_RCV_FLAG)) {
            struct vsock_hdr r = hdr_for(v, c, OP_RST);
            send_ctrl(v, &r);
            conn_close(c);
        }
        return;
    case OP_RST:
        if (c)
            conn_close(c);
        return;
    default:
        rst_reply(v, &h);
        return;
    }
}

static void process_tx(struct virtio_vsock *v)
{
    struct virtio_dev *d = &v->dev;
    struct virtq *vq = &d->vqs[TXQ];
    bool pushed = false;
    while (virtio_dev_running(d)) {
        int ret = virtq_pop(vq, &v->elem);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            break;
        }
        if (ret == 0)
            break;
        struct virtq_elem e = v->elem; /* handle_tx may reuse v->elem for rx */
        handle_tx_packet(v, &e);
        virtq_push(vq, &e, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, TXQ);
}

/* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET through the event queue. Lock held. */
static void send_reset_event(struct virtio_vsock *v)
{
    struct virtio_dev *d = &v->dev;
    struct virtq *vq = &d->vqs[EVQ];
    int ret = virtq_pop(vq, &v->elem);
    if (ret < 0) {
        virtio_dev_set_broken_locked(d, vq->error);
        return;
    }
    if (ret == 0)
        return; /* retried when the driver adds an event buffer */
    uint32_t id = 0;
    size_t n = iov_from_buf(&v->elem.iov[v->elem.nout], v->elem.nin, 0, &id, sizeof(id));
    virtq_push(vq, &v->elem, (uint32_t)n);
    virtio_queue_notify_locked(d, EVQ);
    v->reset_event = false;
}

static uint32_t credit(const struct conn *c)
{
    uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
    return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* Host socket readable on an open connection: move data to the guest. */
static void host_to_guest(struct virtio_vsock *v, struct conn *c)
{
    struct virtio_dev *d = &v->dev;
    struct virtq *vq = &d->vqs[RXQ];
    uint32_t cr = credit(c);
    if (!cr || v->ctrl_count)
        return;
    int ret = virtq_pop(vq, &v->elem);
    if (ret < 0) {
        virtio_dev_set_broken_locked(d, vq->error);
        return;
    }
    if (ret == 0)
        return;
    struct virtq_elem *e = &v->elem;
    size_t room = iov_length(&e->iov[e->nout], e->nin);
    if (room <= sizeof(struct vsock_hdr)) {
        virtq_push(vq, e, 0);
        virtio_dev_set_broken_locked(d, "vsock receive buffer smaller than a header");
        return;
    }
    size_t want = room - sizeof(struct vsock_hdr);
    if (want > cr)
        want = cr;
    uint8_t buf[65536];
    if (want > sizeof(buf))
        want = sizeof(buf);
    ssize_t n = recv(c->fd, buf, want, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        virtq_unpop(vq);
        return;
    }
    struct vsock_hdr h;
    if (n <= 0) {
        /* host closed its side: tell the guest nothing more will come */
        c->host_eof = true;
        h = hdr_for(v, c, OP_SHUTDOWN);
        h.flags = SHUT_RCV_FLAG | SHUT_SEND_FLAG;
        n = 0;
    } else {
        h = hdr_for(v, c, OP_RW);
        h.len = (uint32_t)n;
        c->tx_cnt += (uint32_t)n;
        c->fwd_reported = c->fwd_cnt;
    }
    iov_from_buf(&e->iov[e->nout], e->nin, 0, &h, sizeof(h));
    iov_from_buf(&e->iov[e->nout], e->nin, sizeof(h), buf, (size_t)n);
    virtq_push(vq, e, (uint32_t)(sizeof(h) + (size_t)n));
    virtio_queue_notify_locked(d, RXQ);
}

/* Host-initiated connection: read "CONNECT <port>\n". */
static void read_connect_line(struct virtio_vsock *v, struct conn *c)
{
    char ch;
    ssize_t n = recv(c->fd, &ch, 1, MSG_DONTWAIT);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    if (ch != '\n') {
        if (c->line_len + 1 >= sizeof(c->line))
            conn_close(c);
        else
            c->line[c->line_len++] = ch;
        return;
    }
    c->line[c->line_len] = 0;
    unsigned port;
    char extra;
    if (sscanf(c->line, "CONNECT %u%c", &port, &extra) != 1) {
        conn_close(c);
        return;
    }
    c->peer_port = port;
    c->local_port = v->next_local_port++;
    c->state = C_WAIT_RESPONSE;
    c->peer_buf_alloc = 0;
    struct vsock_hdr h = hdr_for(v, c, OP_REQUEST);
    send_ctrl(v, &h);
}

static void *vsock_thread(void *opaque)
{
    struct virtio_vsock *v = opaque;
    struct virtio_dev *d = &v->dev;
    vs_thread_role_enter(VS_THREAD_IO, "virtio-vsock0");
    struct pollfd fds[MAX_CONNS + 2];
    int idx[MAX_CONNS + 2];
    while (!v->exit_requested) {
        int n = 0;
        fds[n] = (struct pollfd){.fd = v->kick_fd, .events = POLLIN};
        idx[n++] = -1;
        if (v->listen_fd >= 0) {
            fds[n] = (struct pollfd){.fd = v->listen_fd, .events = POLLIN};
            idx[n++] = -2;
        }
        pthread_mutex_lock(&d->lock);
        bool rx_room = virtio_dev_running(d) && virtq_has_avail(&d->vqs[RXQ]);
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &v->conns[i];
            bool want = c->state == C_WAIT_LINE || (c->state == C_OPEN && !c->host_eof && rx_room &&
                                                    credit(c) > 0 && !v->ctrl_count);
            if (want) {
                fds[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
                idx[n++] = i;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t val;
            if (read(v->kick_fd, &val, sizeof(val)) < 0 && errno != EAGAIN)
                break;
        }
        pthread_mutex_lock(&d->lock);
        bool running = virtio_dev_running(d);
        if (running) {
            if (v->reset_event)
                send_reset_event(v);
            flush_ctrl(v);
            process_tx(v);
        }
        for (int k = 1; k < n; k++) {
            if (!fds[k].revents)
                continue;
            if (idx[k] == -2) {
                int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                struct conn *c = fd >= 0 ? conn_alloc(v) : NULL;
                if (!c) {
                    if (fd >= 0)
                        close(fd);
                    continue;
                }
                c->fd = fd;
                c->state = C_WAIT_LINE;
                continue;
            }
            struct conn *c = &v->conns[idx[k]];
            if (c->state == C_WAIT_LINE && running)
                read_connect_line(v, c);
            else if (c->state == C_OPEN && running)
                host_to_guest(v, c);
        }
        if (running)
            flush_ctrl(v);
        pthread_mutex_unlock(&d->lock);
    }
    return NULL;
}

static void kick(struct virtio_vsock *v)
{
    uint64_t one = 1;
    if (write(v->kick_fd, &one, sizeof(one)) < 0)
        vs_warn("%s: kick: %s", v->dev.name, strerror(errno));
}

static void vsock_notify(struct virtio_dev *d, unsigned q)
{
    kick(to_vs(d));
}

static void vsock_driver_ok(struct virtio_dev *d)
{
    kick(to_vs(d));
}

static void vsock_reset(struct virtio_dev *d)
{
    /* the guest forgot every connection: so do we */
    struct virtio_vsock *v = to_vs(d);
    pthread_mutex_lock(&d->lock);
    for (unsigned i = 0; i < MAX_CONNS; i++)
        if (v->conns[i].state != C_FREE && v->conns[i].state != C_WAIT_LINE)
            conn_close(&v->conns[i]);
    v->ctrl_count = 0;
    pthread_mutex_unlock(&d->lock);
}

/* After a restore the host side of every connection is gone. */
static int vsock_load(struct virtio_dev *d, struct state_reader *r, vs_err *err)
{
    struct virtio_vsock *v = to_vs(d);
    pthread_mutex_lock(&d->lock);
    v->reset_event = true;
    /* the generic load brought back the snapshot's config space; a clone
     * (or a restore with --vsock) has a CID of its own */
    virtio_config_put_u64(&v->dev, 0, v->cid);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void vsock_destroy(struct virtio_dev *d)
{
    struct virtio_vsock *v = to_vs(d);
    if (v->thread_started) {
        v->exit_requested = true;
        kick(v);
        pthread_join(v->thread, NULL);
    }
    for (unsigned i = 0; i < MAX_CONNS; i++)
        if (v->conns[i].state != C_FREE)
            conn_close(&v->conns[i]);
    if (v->listen_fd >= 0) {
        close(v->listen_fd);
        unlink(v->uds);
    }
    if (v->kick_fd >= 0)
        close(v->kick_fd);
    free(v->uds);
    virtio_dev_fini(d);
    free(v);
}

static int vsock_queue_eventfd(struct virtio_dev *d, unsigned q)
{
    return to_vs(d)->kick_fd;
}

static const struct virtio_dev_ops vsock_ops = {
    .queue_notify = vsock_notify,
    .queue_eventfd = vsock_queue_eventfd,
    .driver_ok = vsock_driver_ok,
    .reset = vsock_reset,
    .load = vsock_load,
    .destroy = vsock_destroy,
};

struct virtio_dev *virtio_vsock_new(struct guest_mem *mem, uint32_t cid, const char *uds,
                                    struct vs_event_loop *loop, vs_err *err)
{
    if (cid < 3) {
        vs_error(err, EINVAL, "--vsock: guest CID %u is reserved (use 3 or more)", cid);
        return NULL;
    }
    if (!uds) {
        vs_error(err, EINVAL,
                 "--vsock: this host has no /dev/vhost-vsock; give --vsock-uds PATH for the "
                 "unix-socket bridge");
        return NULL;
    }
    struct virtio_vsock *v = calloc(1, sizeof(*v));
    if (!v) {
        vs_error(err, ENOMEM, "virtio-vsock: out of memory");
        return NULL;
    }
    v->listen_fd = v->kick_fd = -1;
    for (unsigned i = 0; i < MAX_CONNS; i++)
        v->conns[i].fd = -1;
    v->cid = cid;
    v->next_local_port = LOCAL_PORT_BASE;
    virtio_dev_init(&v->dev, "virtio-vsock0", VIRTIO_ID_VSOCK, 0, 3, VIRTQ_MAX_SIZE, &vsock_ops,
                    mem);
    virtio_config_put_u64(&v->dev, 0, cid);
    v->dev.config_len = 8;
    v->uds = strdup(uds);
    /* room for the "_PORT" suffix of the per-port sockets next to it */
    if (!v->uds || strlen(uds) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 12) {
        vs_error(err, ENAMETOOLONG, "--vsock-uds: path '%s' is too long", uds);
        goto fail;
    }
    v->listen_fd = vs_unix_listen(uds, 16, err);
    if (v->listen_fd < 0) {
        vs_error_prefix(err, "--vsock-uds: ");
        goto fail;
    }
    v->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->kick_fd < 0) {
        vs_error_errno(err, "virtio-vsock: eventfd");
        goto fail;
    }
    int ret = pthread_create(&v->thread, NULL, vsock_thread, v);
    if (ret) {
        vs_error(err, ret, "virtio-vsock: cannot start its thread: %s", strerror(ret));
        goto fail;
    }
    v->thread_started = true;
    return &v->dev;
fail:
    vsock_destroy(&v->dev);
    return NULL;
}
