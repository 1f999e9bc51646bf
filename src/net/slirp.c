/* User-mode networking through libslirp: the guest sits on 10.0.2.0/24
 * (gateway 10.0.2.2, DNS 10.0.2.3, DHCP hands out 10.0.2.15), outgoing
 * connections become host sockets, and hostfwd rules forward host ports in.
 * libslirp is not thread-safe: every call happens on the device thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "net/net.h"
#include "net/slirp_state.h"
#include "util/log.h"
#include "util/parse.h"

#define SLIRP_MAX_TIMERS 32
#define SLIRP_MAX_FDS 256

struct slirp_timer {
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms; /* -1 = not armed */
    bool used;
};

struct slirp_net {
    struct net_backend b;
    Slirp *slirp;
    struct slirp_timer timers[SLIRP_MAX_TIMERS];
    /* pollfds of the current round, filled by add_poll */
    struct pollfd *fds;
    int nfds, maxfds;
    uint8_t frame[NET_MAX_FRAME];    /* slirp -> guest, filled in send_packet */
    uint8_t tx_frame[NET_MAX_FRAME]; /* guest -> slirp, gathered under the lock */
    struct slirp_state_link st;      /* snapshots, and the lock every slirp call takes */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct slirp_net *s = opaque;
    if (len + NET_VNET_HDR_LEN > sizeof(s->frame))
        return (ssize_t)len;
    memset(s->frame, 0, NET_VNET_HDR_LEN);
    memcpy(s->frame + NET_VNET_HDR_LEN, buf, len);
    s->b.receive(s->b.opaque, s->frame, len + NET_VNET_HDR_LEN);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    vs_debug("slirp: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct slirp_net *s = opaque;
    for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++)
        if (!s->timers[i].used) {
            s->timers[i] = (struct slirp_timer){cb, cb_opaque, -1, true};
            return &s->timers[i];
        }
    vs_warn("slirp: out of timers");
    return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
    if (timer)
        ((struct slirp_timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    if (timer)
        ((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) {}
static void cb_unregister_poll_fd(int fd, void *opaque) {}
static void cb_notify(void *opaque) {}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

static int add_poll(int fd, int events, void *opaque)
{
    struct slirp_net *s = opaque;
    if (s->nfds >= s->maxfds)
        return -1;
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = ev};
    return s->nfds++;
}

static int get_revents(int idx, void *opaque)
{
    struct slirp_net *s = opaque;
    if (idx < 0 || idx >= s->nfds)
        return 0;
    short r = s->fds[idx].revents;
    int ev = 0;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & POLLERR)
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static int slirp_poll_fill(struct net_backend *b, struct pollfd *fds, int max, int *timeout,
                           bool can_rx)
{
    struct slirp_net *s = (struct slirp_net *)b;
    s->fds = fds;
    s->nfds = 0;
    s->maxfds = max;
    uint32_t t = UINT32_MAX;
    slirp_state_lock(&s->st);
    slirp_pollfds_fill(s->slirp, &t, add_poll, s);
    int64_t now = now_ms();
    for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++)
        if (s->timers[i].used && s->timers[i].expire_ms >= 0) {
            int64_t d = s->timers[i].expire_ms - now;
            if (d < 0)
                d = 0;
            if (d < t)
                t = (uint32_t)d;
        }
    slirp_state_poll_fill(&s->st, &t, can_rx);
    slirp_state_unlock(&s->st);
    if (t != UINT32_MAX && (*timeout < 0 || (int)t < *timeout))
        *timeout = (int)t;
    return s->nfds;
}

static void slirp_poll_done(struct net_backend *b, struct pollfd *fds, int n)
{
    struct slirp_net *s = (struct slirp_net *)b;
    s->fds = fds;
    s->nfds = n;
    slirp_state_lock(&s->st);
    slirp_pollfds_poll(s->slirp, 0, get_revents, s);
    int64_t now = now_ms();
    for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++) {
        struct slirp_timer *t = &s->timers[i];
        if (t->used && t->expire_ms >= 0 && t->expire_ms <= now) {
            t->expire_ms = -1;
            t->cb(t->cb_opaque);
        }
    }
    slirp_state_poll_done(&s->st);
    slirp_state_unlock(&s->st);
}

static int slirp_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct slirp_net *s = (struct slirp_net *)b;
    /* gather, dropping the virtio-net header (no offloads are offered); the
     * buffer is the backend's, so the gather happens under its lock */
    size_t len = 0, skip = NET_VNET_HDR_LEN;
    uint8_t *pkt = s->tx_frame;
    int rc = 0;
    slirp_state_lock(&s->st);
    for (int i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;
        const uint8_t *p = iov[i].iov_base;
        if (skip) {
            size_t k = skip < l ? skip : l;
            skip -= k;
            p += k;
            l -= k;
        }
        if (len + l > sizeof(s->tx_frame)) {
            rc = -EMSGSIZE;
            break;
        }
        memcpy(pkt + len, p, l);
        len += l;
    }
    if (!rc && len)
        slirp_input(s->slirp, pkt, (int)len);
    slirp_state_unlock(&s->st);
    return rc;
}

static void slirp_close(struct net_backend *b)
{
    struct slirp_net *s = (struct slirp_net *)b;
    slirp_state_detach(&s->st);
    slirp_cleanup(s->slirp);
    free(s);
}

static int slirp_save(struct net_backend *b, struct state_writer *w, vs_err *err)
{
    return slirp_state_save_section(&((struct slirp_net *)b)->st, w, err);
}

static int slirp_load(struct net_backend *b, struct state_reader *r, vs_err *err)
{
    return slirp_state_load_section(&((struct slirp_net *)b)->st, r, err);
}

static const struct net_backend_ops slirp_ops = {
    .poll_fill = slirp_poll_fill,
    .poll_done = slirp_poll_done,
    .send = slirp_send,
    .save = slirp_save,
    .load = slirp_load,
    .close = slirp_close,
};

int net_parse_hostfwd(const char *spec, bool *udp, uint32_t *host_addr, int *host_port,
                      uint32_t *guest_addr, int *guest_port, vs_err *err)
{
    /* proto:[haddr]:hport-[gaddr]:gport */
    char buf[128];
    if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
        return vs_error(err, EINVAL, "hostfwd '%s' is too long", spec);
    char *p = buf, *c1 = strchr(p, ':');
    if (!c1)
        goto bad;
    *c1 = 0;
    if (strcmp(p, "tcp") == 0 || *p == 0)
        *udp = false;
    else if (strcmp(p, "udp") == 0)
        *udp = true;
    else
        goto bad;
    char *haddr = c1 + 1, *c2 = strchr(haddr, ':');
    if (!c2)
        goto bad;
    *c2 = 0;
    char *hport = c2 + 1, *dash = strchr(hport, '-');
    if (!dash)
        goto bad;
    *dash = 0;
    char *gaddr = dash + 1, *c3 = strrchr(gaddr, ':');
    if (!c3)
        goto bad;
    *c3 = 0;
    char *gport = c3 + 1;
    struct in_addr a;
    if (*haddr == 0)
        *host_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, haddr, &a) == 1)
        *host_addr = a.s_addr;
    else
        goto bad;
    if (*gaddr == 0)
        *guest_addr = htonl(0x0a00020f); /* 10.0.2.15 */
    else if (inet_pton(AF_INET, gaddr, &a) == 1)
        *guest_addr = a.s_addr;
    else
        goto bad;
    uint64_t hp, gp;
    if (vs_parse_u64(hport, 0, 65535, &hp, NULL) < 0 ||
        vs_parse_u64(gport, 1, 65535, &gp, NULL) < 0)
        goto bad;
    *host_port = (int)hp;
    *guest_port = (int)gp;
    return 0;
bad:
    return vs_error(err, EINVAL, "hostfwd '%s': expected tcp|udp:[hostaddr]:port-[guestaddr]:port",
                    spec);
}

int net_slirp_open(const struct vm_net_config *nc, unsigned instance, struct net_backend **out,
                   vs_err *err)
{
    struct slirp_net *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "user networking: out of memory");
    SlirpConfig cfg = {
        .version = 1,
        .in_enabled = true,
        .if_mtu = 1500,
        .if_mru = 1500,
        .vhostname = "vessel",
    };
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
    if (!s->slirp) {
        free(s);
        return vs_error(err, EIO, "user networking: slirp_new failed");
    }
    for (unsigned i = 0; i < nc->nhostfwd; i++) {
        bool udp;
        uint32_t ha, ga;
        int hp, gp;
        if (net_parse_hostfwd(nc->hostfwd[i], &udp, &ha, &hp, &ga, &gp, err) < 0)
            goto fail;
        struct in_addr h = {.s_addr = ha}, g = {.s_addr = ga};
        if (slirp_add_hostfwd(s->slirp, udp, h, hp, g, gp) < 0) {
            vs_error(err, EADDRINUSE, "hostfwd '%s': cannot listen on host port %d", nc->hostfwd[i],
                     hp);
            goto fail;
        }
    }
    slirp_state_attach(&s->st, s->slirp, &s->b, &cfg, instance);
    s->b.ops = &slirp_ops;
    s->b.offloads = false;
    *out = &s->b;
    return 0;
fail:
    slirp_cleanup(s->slirp);
    free(s);
    return -1;
}
