/* Host-side network backends for virtio-net: a tap device (with the
 * virtio-net header and offloads passed through) or user-mode networking
 * through libslirp (no privileges; port forwarding into the guest).
 *
 * A backend is driven by its device's thread: poll_fill/poll_done wrap that
 * thread's poll(); received frames reach the device through `receive`, and
 * every frame in either direction starts with a 12-byte virtio_net_hdr
 * (virtio 1.x layout, num_buffers included). */
#ifndef VESSEL_NET_NET_H
#define VESSEL_NET_NET_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "state/state.h"
#include "util/err.h"
#include "vm/config.h"

#define NET_VNET_HDR_LEN 12
#define NET_MAX_FRAME (65536 + NET_VNET_HDR_LEN + 64)

struct virtio_net_hdr_v1 {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

struct net_backend;

struct net_backend_ops {
    /* Add up to max pollfds; may lower *timeout_ms (-1 = none). can_rx is
     * false while the guest has no receive buffers (the backend should not
     * read then, where it can wait). Returns how many fds were added. */
    int (*poll_fill)(struct net_backend *b, struct pollfd *fds, int max, int *timeout_ms,
                     bool can_rx);
    /* After poll(): read frames (calling receive), run timers. */
    void (*poll_done)(struct net_backend *b, struct pollfd *fds, int n);
    /* Send one frame (header first); 0 or -errno. */
    int (*send)(struct net_backend *b, const struct iovec *iov, int iovcnt);
    /* Optional: which offloads the guest accepts (TUN_F_* bits). */
    void (*set_offloads)(struct net_backend *b, unsigned tun_flags);
    /* Optional: the backend's own state, saved with its device (VM paused)
     * and loaded after it is created, before the VM runs. */
    int (*save)(struct net_backend *b, struct state_writer *w, vs_err *err);
    int (*load)(struct net_backend *b, struct state_reader *r, vs_err *err);
    void (*close)(struct net_backend *b);
};

struct net_backend {
    const struct net_backend_ops *ops;
    /* Whether the backend understands offloaded frames (partial checksums,
     * GSO); virtio-net offers the offload features only then. */
    bool offloads;
    void (*receive)(void *opaque, const uint8_t *frame, size_t len);
    bool (*can_receive)(void *opaque);
    void *opaque;
};

int net_tap_open(const char *ifname, struct net_backend **out, vs_err *err);
/* Open the tap ifname now, for the net_tap_open of the same name later:
 * the jail opens a VM's taps before it leaves the host's network
 * namespace, where they stay (on their bridge). */
int net_tap_preopen(const char *ifname, vs_err *err);
/* instance: the backend's order among its VM's user networks (its state
 * section's instance). */
int net_slirp_open(const struct vm_net_config *nc, unsigned instance, struct net_backend **out,
                   vs_err *err);
/* Parse "tcp::2222-:22" / "udp:127.0.0.1:5353-10.0.2.15:53". */
int net_parse_hostfwd(const char *spec, bool *udp, uint32_t *host_addr, int *host_port,
                      uint32_t *guest_addr, int *guest_port, vs_err *err);

#endif
