/* A host tap device with IFF_VNET_HDR: frames carry the virtio-net header,
 * so checksum and segmentation offloads pass straight through. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "net/net.h"

struct tap {
    struct net_backend b;
    int fd;
    uint8_t *buf;
};

static int tap_poll_fill(struct net_backend *b, struct pollfd *fds, int max, int *timeout,
                         bool can_rx)
{
    struct tap *t = (struct tap *)b;
    if (!can_rx || max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = t->fd, .events = POLLIN};
    return 1;
}

static void tap_poll_done(struct net_backend *b, struct pollfd *fds, int n)
{
    struct tap *t = (struct tap *)b;
    if (n < 1 || !(fds[0].revents & POLLIN))
        return;
    /* bounded batch so tx gets its turn */
    for (int i = 0; i < 64 && b->can_receive(b->opaque); i++) {
        ssize_t got = read(t->fd, t->buf, NET_MAX_FRAME);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= NET_VNET_HDR_LEN)
            break;
        b->receive(b->opaque, t->buf, (size_t)got);
    }
}

static int tap_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct tap *t = (struct tap *)b;
    for (;;) {
        ssize_t n = writev(t->fd, iov, iovcnt);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        /* a full tap queue drops the frame, as a wire would */
        return errno == EAGAIN ? 0 : -errno;
    }
}

static void tap_set_offloads(struct net_backend *b, unsigned flags)
{
    struct tap *t = (struct tap *)b;
    ioctl(t->fd, TUNSETOFFLOAD, flags);
}

static void tap_close(struct net_backend *b)
{
    struct tap *t = (struct tap *)b;
    close(t->fd);
    free(t->buf);
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .poll_fill = tap_poll_fill,
    .poll_done = tap_poll_done,
    .send = tap_send,
    .set_offloads = tap_set_offloads,
    .close = tap_close,
};

/* /dev/net/tun attached to the tap ifname, with the virtio-net header. */
static int tap_fd_open(const char *ifname, vs_err *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vs_error_errno(err, "tap %s: /dev/net/tun", ifname);
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return vs_error_errno(err, "tap %s: TUNSETIFF", ifname);
    }
    int hdr = NET_VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return vs_error_errno(err, "tap %s: TUNSETVNETHDRSZ", ifname);
    }
    return fd;
}

/* Taps opened while the process was still in the host's network namespace
 * (net_tap_preopen, called by the jail before it unshares it): a tap is
 * found there by name, and its fd keeps working from any namespace. One
 * process, one VM: a table of the process's, filled before any thread. */
static struct {
    char name[IFNAMSIZ];
    int fd;
} preopened[VM_MAX_NETS];
static unsigned npreopened;

int net_tap_preopen(const char *ifname, vs_err *err)
{
    if (npreopened == VM_MAX_NETS)
        return vs_error(err, E2BIG, "tap %s: too many taps", ifname);
    int fd = tap_fd_open(ifname, err);
    if (fd < 0)
        return -1;
    snprintf(preopened[npreopened].name, IFNAMSIZ, "%s", ifname);
    preopened[npreopened++].fd = fd;
    return 0;
}

int net_tap_open(const char *ifname, struct net_backend **out, vs_err *err)
{
    int fd = -1;
    for (unsigned i = 0; i < npreopened && fd < 0; i++)
        if (preopened[i].fd >= 0 && !strncmp(preopened[i].name, ifname, IFNAMSIZ)) {
            fd = preopened[i].fd;
            preopened[i].fd = -1; /* the backend's now */
        }
    if (fd < 0 && (fd = tap_fd_open(ifname, err)) < 0)
        return -1;
    ioctl(fd, TUNSETOFFLOAD, 0);
    struct tap *t = calloc(1, sizeof(*t));
    uint8_t *buf = malloc(NET_MAX_FRAME);
    if (!t || !buf) {
        free(t);
        free(buf);
        close(fd);
        return vs_error(err, ENOMEM, "tap %s: out of memory", ifname);
    }
    t->fd = fd;
    t->buf = buf;
    t->b.ops = &tap_ops;
    t->b.offloads = true;
    *out = &t->b;
    return 0;
}
