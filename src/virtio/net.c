/* virtio-net (virtio 1.2, 5.1): one receive and one transmit queue, the
 * MAC in config space, mergeable receive buffers, and checksum/TSO offloads
 * when the backend (tap) can carry them. Each device has its own thread
 * that polls the backend and a kick eventfd; all queue work happens there. */
#include <errno.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "net/net.h"
#include "util/log.h"
#include "util/rate_limit.h"
#include "virtio/rate_state.h"
#include "virtio/devices.h"
#include "util/thread_role.h"

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define RXQ 0
#define TXQ 1
#define PENDING_MAX 256 /* frames buffered while the guest has no rx buffers */
#define POLL_MAX 256
#define RX_MAX_BUFS 64 /* 64 x 1.5 KiB buffers hold the largest (64 KiB) frame */

struct pending_frame {
    size_t len;
    uint8_t *data;
};

struct virtio_net {
    struct virtio_dev dev;
    char name[32];
    struct net_backend *be;
    int kick_fd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;
    bool stop_requested, stopped, exit_requested;
    bool rx_blocked; /* guest ran out of rx buffers */
    bool rx_notify;  /* frames delivered since the last receive interrupt */
    struct pending_frame pending[PENDING_MAX];
    unsigned pend_head, pend_count;
    struct virtq_elem elem;
    struct virtq_elem rx_elems[RX_MAX_BUFS];
    unsigned long rx_dropped;
    /* after a restore or migration: RARP frames from the guest's MAC still
     * to send, and when the next is due (CLOCK_MONOTONIC ns) */
    unsigned announce_left;
    int64_t announce_next;
    /* rate limits, one bucket pair per direction with the same settings
     * (under dev.lock), and when the thread retries the frames it held back
     * (CLOCK_MONOTONIC ns, 0: none) */
    struct vs_rate_limit rl, rx_rl;
    bool rl_on;
    uint64_t tx_retry_ns, rx_retry_ns;
    unsigned index; /* among the VM's NICs */
};

static struct virtio_net *to_net(struct virtio_dev *d)
{
    return (struct virtio_net *)d;
}

/* Copy one frame into the guest's receive buffers. Lock held. Returns
 * false if there is not enough room now (nothing consumed). */
static bool deliver(struct virtio_net *n, const uint8_t *frame, size_t len)
{
    struct virtio_dev *d = &n->dev;
    struct virtq *vq = &d->vqs[RXQ];
    bool mrg = virtio_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
    unsigned used = 0;
    size_t off = 0;
    uint32_t lens[RX_MAX_BUFS];
    unsigned max = mrg ? RX_MAX_BUFS : 1;
    while (off < len && used < max) {
        int ret = virtq_pop(vq, &n->rx_elems[used]);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            return true; /* dropped */
        }
        if (ret == 0)
            break;
        struct virtq_elem *e = &n->rx_elems[used];
        size_t cap = iov_length(&e->iov[e->nout], e->nin);
        if (used == 0 && cap < NET_VNET_HDR_LEN) {
            /* a buffer too small for the header is a driver bug */
            virtq_push(vq, e, 0);
            virtio_dev_set_broken_locked(d, "virtio-net receive buffer smaller than the header");
            return true;
        }
        size_t l = iov_from_buf(&e->iov[e->nout], e->nin, 0, frame + off, len - off);
        lens[used++] = (uint32_t)l;
        off += l;
    }
    if (off < len) {
        /* not enough buffers: put them back and wait for more */
        for (unsigned i = 0; i < used; i++)
            virtq_unpop(vq);
        if (used == max) {
            /* the buffers the driver gives can never hold it: drop */
            n->rx_dropped++;
            return true;
        }
        return false;
    }
    /* num_buffers in the first buffer's header */
    uint16_t nb = (uint16_t)used;
    struct virtq_elem *first = &n->rx_elems[0];
    iov_from_buf(&first->iov[first->nout], first->nin,
                 offsetof(struct virtio_net_hdr_v1, num_buffers), &nb, sizeof(nb));
    for (unsigned i = 0; i < used; i++)
        virtq_push(vq, &n->rx_elems[i], lens[i]);
    return true;
}

/* Lock held: may a frame of len bytes go to the guest now? Takes its
 * tokens if so; otherwise notes when to try again. */
static bool rx_allowed(struct virtio_net *n, size_t len)
{
    if (!n->rl_on)
        return true;
    uint64_t now = vs_now_ns();
    uint64_t wait =
        vs_rate_limit_take(&n->rx_rl, len > NET_VNET_HDR_LEN ? len - NET_VNET_HDR_LEN : 0, now);
    n->rx_retry_ns = wait ? now + wait : 0;
    return wait == 0;
}

static void flush_pending(struct virtio_net *n, bool *notify_rx)
{
    while (n->pend_count) {
        struct pending_frame *p = &n->pending[n->pend_head];
        if (!rx_allowed(n, p->len)) {
            n->rx_blocked = true; /* the thread comes back at rx_retry_ns */
            return;
        }
        if (!deliver(n, p->data, p->len)) {
            n->rx_blocked = true;
            return;
        }
        *notify_rx = true;
        free(p->data);
        p->data = NULL;
        n->pend_head = (n->pend_head + 1) % PENDING_MAX;
        n->pend_count--;
    }
    n->rx_blocked = false;
}

static void queue_frame(struct virtio_net *n, const uint8_t *frame, size_t len)
{
    if (n->pend_count == PENDING_MAX) {
        n->rx_dropped++;
        return;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        n->rx_dropped++;
        return;
    }
    memcpy(copy, frame, len);
    n->pending[(n->pend_head + n->pend_count) % PENDING_MAX] = (struct pending_frame){len, copy};
    n->pend_count++;
}

/* Backend callback (device thread). */
static void net_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    struct virtio_dev *d = &n->dev;
    vs_thread_role_enter(VS_THREAD_IO, n->name);
    pthread_mutex_lock(&d->lock);
    bool stopped = n->stop_requested;
    if (!virtio_dev_running(d) || !d->vqs[RXQ].ready) {
        pthread_mutex_unlock(&d->lock);
        return; /* link not up yet: drop, like a cable not plugged in */
    }
    if (!stopped && !n->pend_count && rx_allowed(n, len) && deliver(n, frame, len)) {
        /* one interrupt per poll round, not per frame: the backend hands
         * over a burst (a socket read becomes many segments) and the
         * guest takes it in one go */
        n->rx_notify = true;
    } else {
        queue_frame(n, frame, len);
        n->rx_blocked = true;
    }
    pthread_mutex_unlock(&d->lock);
}

static bool net_can_receive(void *opaque)
{
    struct virtio_net *n = opaque;
    return !n->rx_blocked && n->pend_count < PENDING_MAX / 2;
}

static void kick(struct virtio_net *n);

/* Called with the device lock held; drops it around each send, because a
 * backend may answer synchronously (slirp calls receive from slirp_input). */
static void process_tx(struct virtio_net *n)
{
    struct virtio_dev *d = &n->dev;
    struct virtq *vq = &d->vqs[TXQ];
    bool pushed = false;
    unsigned budget;
    n->tx_retry_ns = 0;
    for (budget = 0; budget < 256 && virtio_dev_running(d); budget++) {
        int ret = virtq_pop(vq, &n->elem);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            break;
        }
        if (ret == 0)
            break;
        if (n->rl_on) {
            size_t len = iov_length(n->elem.iov, n->elem.nout);
            uint64_t now = vs_now_ns();
            uint64_t wait = vs_rate_limit_take(
                &n->rl, len > NET_VNET_HDR_LEN ? len - NET_VNET_HDR_LEN : 0, now);
            if (wait) {
                virtq_unpop(vq); /* sent when the buckets have refilled */
                n->tx_retry_ns = now + wait;
                break;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (iov_length(n->elem.iov, n->elem.nout) > NET_VNET_HDR_LEN)
            n->be->ops->send(n->be, n->elem.iov, (int)n->elem.nout);
        pthread_mutex_lock(&d->lock);
        virtq_push(vq, &n->elem, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, TXQ);
    /* Out of budget with chains left: the driver added them after seeing
     * avail_event behind and will not kick for them, so come back at once
     * instead of sleeping until the backend's next event. */
    if (budget == 256)
        kick(n);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A self-announce, as QEMU's after a migration: a RARP frame from the
 * guest's MAC goes out through the backend, so the switch or bridge on the
 * new host learns where the guest is now before the guest says anything.
 * Host-side, whether or not the guest's driver is up. Three frames, 50,
 * 150 and 250 ms apart. */
static void announce(struct virtio_net *n, int *timeout)
{
    if (!n->announce_left)
        return;
    int64_t now = mono_ns();
    if (now >= n->announce_next) {
        uint8_t hdr[NET_VNET_HDR_LEN] = {0}, f[60] = {0};
        const uint8_t *mac = n->dev.config;
        memset(f, 0xff, 6);
        memcpy(f + 6, mac, 6);
        f[12] = 0x80, f[13] = 0x35;                 /* RARP */
        f[14] = 0, f[15] = 1;                       /* Ethernet */
        f[16] = 0x08, f[17] = 0x00;                 /* IPv4 */
        f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 3; /* reverse request */
        memcpy(f + 22, mac, 6);
        memcpy(f + 32, mac, 6);
        struct iovec iov[2] = {{hdr, sizeof(hdr)}, {f, sizeof(f)}};
        n->be->ops->send(n->be, iov, 2);
        n->announce_left--;
        n->announce_next = now + (int64_t)(3 - n->announce_left) * 100000000 - 50000000;
    }
    if (n->announce_left) {
        int ms = (int)((n->announce_next - now) / 1000000) + 1;
        if (*timeout < 0 || ms < *timeout)
            *timeout = ms;
    }
}

bool virtio_is_net(const struct virtio_dev *d, unsigned *index)
{
    if (d->device_id != VIRTIO_ID_NET)
        return false;
    *index = ((const struct virtio_net *)d)->index;
    return true;
}

void virtio_net_set_rate_limit(struct virtio_dev *d, const struct vs_rate_config *rc)
{
    struct virtio_net *n = to_net(d);
    pthread_mutex_lock(&d->lock);
    uint64_t throttled = n->rl.throttled, rx_throttled = n->rx_rl.throttled;
    vs_rate_limit_set(&n->rl, rc, vs_now_ns());
    vs_rate_limit_set(&n->rx_rl, rc, vs_now_ns());
    n->rl.throttled = throttled;
    n->rx_rl.throttled = rx_throttled;
    n->rl_on = vs_rate_config_active(rc);
    if (!n->rl_on)
        n->rx_retry_ns = 0;
    pthread_mutex_unlock(&d->lock);
    if (n->thread_started)
        kick(n);
}

void virtio_net_get_rate_limit(struct virtio_dev *d, struct vs_rate_config *rc, uint64_t *throttled)
{
    struct virtio_net *n = to_net(d);
    pthread_mutex_lock(&d->lock);
    *rc = n->rl.cfg;
    *throttled = n->rl.throttled + n->rx_rl.throttled;
    pthread_mutex_unlock(&d->lock);
}

static void *net_thread(void *opaque)
{
    struct virtio_net *n = opaque;
    struct virtio_dev *d = &n->dev;
    struct pollfd fds[POLL_MAX + 1];
    for (;;) {
        pthread_mutex_lock(&n->ctl_lock);
        if (n->exit_requested) {
            pthread_mutex_unlock(&n->ctl_lock);
            break;
        }
        bool stop = n->stop_requested;
        if (stop && !n->stopped) {
            n->stopped = true;
            pthread_cond_broadcast(&n->ctl_cond);
        }
        pthread_mutex_unlock(&n->ctl_lock);

        fds[0] = (struct pollfd){.fd = n->kick_fd, .events = POLLIN};
        int timeout = -1;
        int nb =
            n->be->ops->poll_fill(n->be, fds + 1, POLL_MAX, &timeout, !stop && net_can_receive(n));
        if (!stop)
            announce(n, &timeout);
        for (int dir = 0; dir < 2; dir++) {
            uint64_t at = dir ? n->rx_retry_ns : n->tx_retry_ns;
            if (!at)
                continue;
            uint64_t now = vs_now_ns();
            int ms = at > now ? (int)((at - now + 999999) / 1000000) : 0;
            if (timeout < 0 || ms < timeout)
                timeout = ms;
        }
        int ret = poll(fds, (nfds_t)nb + 1, timeout);
        if (ret < 0 && errno != EINTR) {
            vs_err_log("%s: poll: %s", n->name, strerror(errno));
            break;
        }
        if (ret > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            if (read(n->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                vs_warn("%s: kick: %s", n->name, strerror(errno));
        }
        if (ret < 0)
            for (int i = 0; i <= nb; i++)
                fds[i].revents = 0;
        n->be->ops->poll_done(n->be, fds + 1, nb);
        pthread_mutex_lock(&n->ctl_lock);
        stop = n->stop_requested;
        pthread_mutex_unlock(&n->ctl_lock);
        pthread_mutex_lock(&d->lock);
        if (!stop && virtio_dev_running(d)) {
            process_tx(n);
            if (n->pend_count)
                flush_pending(n, &n->rx_notify);
            else
                n->rx_blocked = false;
        }
        if (n->rx_notify && virtio_dev_running(d))
            virtio_queue_notify_locked(d, RXQ);
        n->rx_notify = false;
        pthread_mutex_unlock(&d->lock);
    }
    return NULL;
}

static void kick(struct virtio_net *n)
{
    uint64_t one = 1;
    if (write(n->kick_fd, &one, sizeof(one)) < 0)
        vs_warn("%s: kick: %s", n->name, strerror(errno));
}

static void net_notify(struct virtio_dev *d, unsigned q)
{
    kick(to_net(d));
}

static void net_driver_ok(struct virtio_dev *d)
{
    struct virtio_net *n = to_net(d);
    if (n->be->offloads && n->be->ops->set_offloads) {
        unsigned f = 0;
        if (virtio_has_feature(d, VIRTIO_NET_F_GUEST_CSUM))
            f |= TUN_F_CSUM;
        if (virtio_has_feature(d, VIRTIO_NET_F_GUEST_TSO4))
            f |= TUN_F_TSO4;
        if (virtio_has_feature(d, VIRTIO_NET_F_GUEST_TSO6))
            f |= TUN_F_TSO6;
        if (virtio_has_feature(d, VIRTIO_NET_F_GUEST_ECN))
            f |= TUN_F_TSO_ECN;
        n->be->ops->set_offloads(n->be, f);
    }
    kick(n);
}

static void net_pause(struct virtio_dev *d)
{
    struct virtio_net *n = to_net(d);
    pthread_mutex_lock(&n->ctl_lock);
    n->stop_requested = true;
    n->stopped = false;
    pthread_mutex_unlock(&n->ctl_lock);
    kick(n);
    pthread_mutex_lock(&n->ctl_lock);
    while (!n->stopped && n->thread_started)
        pthread_cond_wait(&n->ctl_cond, &n->ctl_lock);
    pthread_mutex_unlock(&n->ctl_lock);
}

static void net_resume(struct virtio_dev *d)
{
    struct virtio_net *n = to_net(d);
    pthread_mutex_lock(&n->ctl_lock);
    n->stop_requested = false;
    pthread_mutex_unlock(&n->ctl_lock);
    kick(n);
}

static void drop_pending(struct virtio_net *n)
{
    while (n->pend_count) {
        free(n->pending[n->pend_head].data);
        n->pending[n->pend_head].data = NULL;
        n->pend_head = (n->pend_head + 1) % PENDING_MAX;
        n->pend_count--;
    }
    n->rx_blocked = false;
}

static void net_reset(struct virtio_dev *d)
{
    /* queue work happens under the device lock, so nothing is in flight */
    pthread_mutex_lock(&d->lock);
    drop_pending(to_net(d));
    pthread_mutex_unlock(&d->lock);
}

static void net_destroy(struct virtio_dev *d)
{
    struct virtio_net *n = to_net(d);
    if (n->thread_started) {
        pthread_mutex_lock(&n->ctl_lock);
        n->exit_requested = true;
        pthread_mutex_unlock(&n->ctl_lock);
        kick(n);
        pthread_join(n->thread, NULL);
    }
    if (n->be)
        n->be->ops->close(n->be);
    if (n->kick_fd >= 0)
        close(n->kick_fd);
    drop_pending(n);
    pthread_mutex_destroy(&n->ctl_lock);
    pthread_cond_destroy(&n->ctl_cond);
    virtio_dev_fini(d);
    free(n);
}

static int net_queue_eventfd(struct virtio_dev *d, unsigned q)
{
    return to_net(d)->kick_fd;
}

/* The host backend's state (user networking's) goes with its device. */
static int net_save(struct virtio_dev *d, struct state_writer *w, vs_err *err)
{
    struct net_backend *be = to_net(d)->be;
    struct vs_rate_config rc;
    uint64_t throttled;
    virtio_net_get_rate_limit(d, &rc, &throttled);
    virtio_rate_save(w, d->name, &rc); /* none too: a limit lifted live stays lifted */
    return be->ops->save ? be->ops->save(be, w, err) : 0;
}

static int net_load(struct virtio_dev *d, struct state_reader *r, vs_err *err)
{
    struct virtio_net *n = to_net(d);
    struct net_backend *be = n->be;
    struct vs_rate_config rc;
    bool found;
    if (virtio_rate_load(r, d->name, &rc, &found, err) < 0)
        return -1;
    if (found)
        virtio_net_set_rate_limit(d, &rc);
    if (be->ops->load && be->ops->load(be, r, err) < 0)
        return -1;
    /* restored elsewhere (or migrated): tell the network where we are */
    n->announce_left = 3;
    n->announce_next = mono_ns() + 50000000; /* the guest runs by then */
    return 0;
}

static const struct virtio_dev_ops net_ops = {
    .queue_notify = net_notify,
    .queue_eventfd = net_queue_eventfd,
    .driver_ok = net_driver_ok,
    .reset = net_reset,
    .pause = net_pause,
    .resume = net_resume,
    .save = net_save,
    .load = net_load,
    .destroy = net_destroy,
};

struct virtio_dev *virtio_net_new(struct guest_mem *mem, const struct vm_net_config *nc,
                                  unsigned index, unsigned backend_instance, vs_err *err)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n) {
        vs_error(err, ENOMEM, "virtio-net: out of memory");
        return NULL;
    }
    snprintf(n->name, sizeof(n->name), "virtio-net%u", index);
    n->index = index;
    vs_rate_limit_set(&n->rl, &nc->rate, vs_now_ns());
    vs_rate_limit_set(&n->rx_rl, &nc->rate, vs_now_ns());
    n->rl_on = vs_rate_config_active(&nc->rate);
    pthread_mutex_init(&n->ctl_lock, NULL);
    pthread_cond_init(&n->ctl_cond, NULL);
    n->kick_fd = -1;
    int ret = nc->kind == VM_NET_TAP ? net_tap_open(nc->tap, &n->be, err)
                                     : net_slirp_open(nc, backend_instance, &n->be, err);
    uint64_t features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
                        (1ULL << VIRTIO_NET_F_STATUS);
    if (ret == 0 && n->be->offloads)
        features |= (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
                    (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6) |
                    (1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |
                    (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_ECN);
    virtio_dev_init(&n->dev, n->name, VIRTIO_ID_NET, features, 2, VIRTQ_MAX_SIZE, &net_ops, mem);
    if (ret < 0) {
        vs_error_prefix(err, "--net: ");
        goto fail;
    }
    n->be->receive = net_receive;
    n->be->can_receive = net_can_receive;
    n->be->opaque = n;
    struct virtio_dev *d = &n->dev;
    uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + index)};
    if (nc->mac_set)
        memcpy(mac, nc->mac, 6);
    memcpy(d->config, mac, 6);
    virtio_config_put_u16(d, 6, VIRTIO_NET_S_LINK_UP);
    d->config_len = 12;
    n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->kick_fd < 0) {
        vs_error_errno(err, "%s: eventfd", n->name);
        goto fail;
    }
    ret = pthread_create(&n->thread, NULL, net_thread, n);
    if (ret) {
        vs_error(err, ret, "%s: cannot start its thread: %s", n->name, strerror(ret));
        goto fail;
    }
    n->thread_started = true;
    return d;
fail:
    net_destroy(&n->dev);
    return NULL;
}
